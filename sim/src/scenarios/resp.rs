//! `resp`: the RESP server's partition agents, driven the way its ingress drives them, without
//! sockets.
//!
//! One `nexus_server::partition::Partition` runs on every shard (built as the server builds
//! it, from a kind registry and a `Directory`; key operations use neither). Clients on every
//! shard play the ingress: each makes its commands one after the other, and a multi-key
//! command (MSET, MGET, DEL, EXISTS) becomes one `PartOp` per owning shard, scattered and
//! gathered with `ctx.ask_all` and the ingress's command timeout (5 s). A command covers the
//! whole key group of a seeded, non-empty set of shards; every MSET writes one value of its
//! own (`c<client>-<n>`) to all of its keys.
//!
//! Keys: ownership is the server's (`owner_of_hash(key_hash(key), shards)`), and the hash key
//! is per process. So that a run replays in any process, the keys are picked by construction
//! at start: candidates `k0, k1, ...` are hashed until every shard has `KEYS_PER_SHARD` of
//! them. Which strings are picked may differ between processes; which shard owns each key
//! group, and so everything the agents do, does not (nothing draws from `world.rng` for it).
//!
//! What the server promises: the README says only that multi-key commands gather across
//! shards; the partition applies each operation in one message (module doc of
//! `partition.rs`). So atomicity is per shard, not across shards, and only that is checked:
//!
//! - every MGET part (one shard's keys) holds one value for all of its keys: all nil, or all
//!   the same MSET's value, and that value was written by some MSET; every EXISTS and DEL part
//!   counts none or all of the shard's keys; every MSET part answers `+OK`;
//! - every command is answered exactly once (a failed part, under pressure, is an answer);
//! - at the end, a reader's MGET of every shard sees each shard's keys uniform as well;
//! - the accounting (checked by the runner).

use crate::rng::SimRng;
use crate::runner::Faults;
use crate::scenario::{Instance, Scenario, World};
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::ask::AskError;
use nexus_engine::registry::{key_hash, owner_of_hash};
use nexus_server::directory::Directory;
use nexus_server::kinds::Kinds;
use nexus_server::partition::{PartMsg, PartOp, Partition};
use nexus_server::resp::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEYS_PER_SHARD: usize = 3;
const CLIENTS_PER_SHARD: usize = 2;
const COMMANDS: usize = 12;
/// The ingress's `COMMAND_TIMEOUT`.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The scenario.
pub(crate) struct Resp;

impl Scenario for Resp {
    fn name(&self) -> &'static str {
        "resp"
    }

    fn about(&self) -> &'static str {
        "the RESP server's partitions under concurrent multi-key MSET/MGET/DEL/EXISTS: per-shard atomicity, one answer each"
    }

    fn instance(&self, _faults: &Faults) -> Box<dyn Instance> {
        Box::new(Run { shared: Arc::new(Shared::default()), reader: None, clients: 0 })
    }
}

/// What the clients and the reader share with the check.
#[derive(Default)]
struct Shared {
    /// Answers per command (`client * COMMANDS + n`).
    answers: Mutex<Vec<u32>>,
    /// Values written by some MSET.
    written: Mutex<BTreeSet<Vec<u8>>>,
    /// What broke an invariant, as seen by a client or the reader.
    violations: Mutex<Vec<String>>,
    /// Parts answered with an error (refused, timed out, ...).
    failed_parts: AtomicU64,
    /// The final read happened (every shard's part answered).
    final_read: AtomicU64,
}

impl Shared {
    fn violation(&self, what: String) {
        if let Ok(mut v) = self.violations.lock() {
            v.push(what);
        }
    }
}

struct Run {
    shared: Arc<Shared>,
    reader: Option<Addr<ClientMsg>>,
    clients: usize,
}

/// Each shard's keys, owned by that shard under this process's hash key.
fn keys_by_shard(shards: usize) -> Vec<Vec<Vec<u8>>> {
    let mut groups: Vec<Vec<Vec<u8>>> = vec![Vec::new(); shards];
    let mut i = 0u64;
    while groups.iter().any(|g| g.len() < KEYS_PER_SHARD) {
        let key = format!("k{i}").into_bytes();
        let group = &mut groups[owner_of_hash(key_hash(&key), shards)];
        if group.len() < KEYS_PER_SHARD {
            group.push(key);
        }
        i += 1;
    }
    groups
}

impl Instance for Run {
    fn start(&mut self, world: &mut World) -> Result<(), String> {
        let shards = world.shards();
        let kinds = Arc::new(Kinds::empty());
        let directory = Arc::new(Directory::new());
        let mut parts = Vec::with_capacity(shards);
        for s in 0..shards {
            parts.push(world.spawn(s, Partition::new(kinds.clone(), directory.clone(), Default::default()))?);
        }
        let keys = Arc::new(keys_by_shard(shards));
        self.clients = shards * CLIENTS_PER_SHARD;
        if let Ok(mut answers) = self.shared.answers.lock() {
            *answers = vec![0; self.clients * COMMANDS];
        }
        for c in 0..self.clients {
            let client = Client {
                index: c,
                parts: parts.clone(),
                keys: keys.clone(),
                rng: SimRng::new(world.rng.next_u64()),
                next: 0,
                shared: self.shared.clone(),
            };
            let addr = world.spawn(c % shards, client)?;
            world.send(addr, ClientMsg::Next)?;
        }
        let reader = Client {
            index: usize::MAX,
            parts,
            keys,
            rng: SimRng::new(world.rng.next_u64()),
            next: COMMANDS,
            shared: self.shared.clone(),
        };
        self.reader = Some(world.spawn(0, reader)?);
        Ok(())
    }

    fn on_quiet(&mut self, world: &mut World, phase: u32) -> bool {
        match (phase, self.reader) {
            (0, Some(reader)) => world.send(reader, ClientMsg::FinalRead).is_ok(),
            _ => false,
        }
    }

    fn check(&mut self, _world: &World) -> Result<(), String> {
        let violations = self.shared.violations.lock().map_err(|_| "poisoned")?;
        if let Some(first) = violations.first() {
            return Err(format!("{} violations; the first: {first}", violations.len()));
        }
        let answers = self.shared.answers.lock().map_err(|_| "poisoned")?;
        if let Some((id, n)) = answers.iter().enumerate().find(|(_, n)| **n != 1) {
            let (client, command) = (id / COMMANDS, id % COMMANDS);
            return Err(format!("client {client}'s command {command} was answered {n} times"));
        }
        if self.shared.final_read.load(Ordering::Relaxed) != 1 {
            return Err("the final read was not answered".into());
        }
        Ok(())
    }
}

/// A command's kind.
#[derive(Clone, Copy, Debug)]
enum Cmd {
    MSet,
    MGet,
    Del,
    Exists,
}

/// Plays the ingress: one command at a time, one `PartOp` per owning shard.
struct Client {
    /// `usize::MAX` for the reader.
    index: usize,
    parts: Vec<Addr<PartMsg>>,
    keys: Arc<Vec<Vec<Vec<u8>>>>,
    rng: SimRng,
    next: usize,
    shared: Arc<Shared>,
}

enum ClientMsg {
    Next,
    FinalRead,
    Answered {
        id: Option<usize>,
        cmd: Cmd,
        /// The shard of each part, in the order of the answers.
        shards: Vec<usize>,
        answers: Vec<Result<Value, AskError>>,
    },
}

impl Client {
    /// A seeded command over the key groups of a seeded, non-empty set of shards.
    fn draw(&mut self) -> (Cmd, Vec<Vec<u8>>) {
        let cmd = match self.rng.below(20) {
            0..=7 => Cmd::MSet,
            8..=14 => Cmd::MGet,
            15..=16 => Cmd::Del,
            _ => Cmd::Exists,
        };
        let shards = self.keys.len();
        let mut chosen: Vec<usize> = (0..shards).filter(|_| self.rng.chance(0.6)).collect();
        if chosen.is_empty() {
            chosen.push(self.rng.below(shards as u64) as usize);
        }
        let mut keys: Vec<Vec<u8>> = chosen.iter().flat_map(|&s| self.keys[s].iter().cloned()).collect();
        // Interleave the shards' keys, as a client's command would.
        for i in (1..keys.len()).rev() {
            keys.swap(i, self.rng.below(i as u64 + 1) as usize);
        }
        (cmd, keys)
    }

    /// Groups `keys` by owning shard, as the ingress does: (shard, its keys), by shard.
    fn group(&self, keys: Vec<Vec<u8>>) -> Vec<(usize, Vec<Vec<u8>>)> {
        let shards = self.parts.len();
        let mut per: Vec<Vec<Vec<u8>>> = vec![Vec::new(); shards];
        for k in keys {
            per[owner_of_hash(key_hash(&k), shards)].push(k);
        }
        per.into_iter().enumerate().filter(|(_, k)| !k.is_empty()).collect()
    }

    /// The part of `cmd` for one shard's `keys`; an MSET writes `value` to each.
    fn op(cmd: Cmd, keys: Vec<Vec<u8>>, value: &[u8]) -> PartOp {
        match cmd {
            Cmd::MSet => PartOp::MSet(keys.into_iter().map(|k| (k.into(), value.to_vec().into())).collect()),
            Cmd::MGet => PartOp::MGet(keys.into_iter().map(Into::into).collect()),
            Cmd::Del => PartOp::Del(keys.into_iter().map(Into::into).collect()),
            Cmd::Exists => PartOp::Exists(keys.into_iter().map(Into::into).collect()),
        }
    }

    /// Scatters `cmd` over the owners of `keys` and gathers the answers into one message.
    fn send(&mut self, id: Option<usize>, cmd: Cmd, keys: Vec<Vec<u8>>, ctx: &mut Ctx<'_>) {
        let value = format!("c{}-{}", self.index, self.next).into_bytes();
        if matches!(cmd, Cmd::MSet) {
            if let Ok(mut written) = self.shared.written.lock() {
                written.insert(value.clone());
            }
        }
        let groups = self.group(keys);
        let shards: Vec<usize> = groups.iter().map(|(s, _)| *s).collect();
        let requests: Vec<(Addr<PartMsg>, PartOp)> =
            groups.into_iter().map(|(s, keys)| (self.parts[s], Self::op(cmd, keys, &value))).collect();
        ctx.ask_all(requests.into_iter().map(|(part, op)| (part, move |reply| PartMsg { op, reply: Some(reply) })))
            .timeout(TIMEOUT)
            .then(move |answers| ClientMsg::Answered { id, cmd, shards, answers });
    }

    /// Checks one shard's part of an answer; `None` when it holds.
    fn check_part(&self, cmd: Cmd, keys: usize, value: &Value) -> Option<String> {
        match (cmd, value) {
            (Cmd::MSet, Value::Ok) => None,
            (Cmd::Del | Cmd::Exists, Value::Int(n)) if *n == 0 || *n == keys as i64 => None,
            (Cmd::MGet, Value::Array(values)) if values.len() == keys => {
                if values.iter().any(|v| v != &values[0]) {
                    return Some(format!("MGET saw a mix within one shard: {values:?}"));
                }
                match &values[0] {
                    Value::Nil => None,
                    Value::Bulk(b) if self.shared.written.lock().is_ok_and(|w| w.contains(&b[..])) => None,
                    other => Some(format!("MGET saw a value no MSET wrote: {other:?}")),
                }
            }
            _ => Some(format!("{cmd:?} of {keys} keys answered {value:?}")),
        }
    }

    fn answered(&mut self, id: Option<usize>, cmd: Cmd, shards: &[usize], answers: Vec<Result<Value, AskError>>) {
        if answers.len() != shards.len() {
            self.shared.violation(format!("{cmd:?}: {} answers for {} parts", answers.len(), shards.len()));
        }
        for (s, answer) in shards.iter().zip(answers) {
            match answer {
                Ok(value) => {
                    if let Some(what) = self.check_part(cmd, self.keys[*s].len(), &value) {
                        self.shared.violation(format!("shard {s}: {what}"));
                    }
                }
                Err(_) => {
                    self.shared.failed_parts.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        match id {
            Some(id) => {
                if let Ok(mut a) = self.shared.answers.lock() {
                    a[id] += 1;
                }
            }
            None => {
                self.shared.final_read.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Agent for Client {
    type Msg = ClientMsg;

    fn handle(&mut self, msg: ClientMsg, ctx: &mut Ctx<'_>) {
        match msg {
            ClientMsg::Next if self.next >= COMMANDS => {}
            ClientMsg::Next => {
                let (cmd, keys) = self.draw();
                let id = self.index * COMMANDS + self.next;
                self.send(Some(id), cmd, keys, ctx);
            }
            ClientMsg::FinalRead => {
                let keys = self.keys.iter().flatten().cloned().collect();
                self.send(None, Cmd::MGet, keys, ctx);
            }
            ClientMsg::Answered { id, cmd, shards, answers } => {
                self.answered(id, cmd, &shards, answers);
                if id.is_some() {
                    self.next += 1;
                    let _ = ctx.send(ctx.myself(), ClientMsg::Next);
                }
            }
        }
    }
}
