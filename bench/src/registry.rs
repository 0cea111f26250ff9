//! `registry`: local name lookups at 1e3, 1e4, 1e5 and 1e6 registered names.
//!
//! A [`Registrar`] agent on shard 0 makes up names that shard 0 owns
//! (`registry::owner_of(name, shards) == 0`), and has them registered by `Holder` agents it
//! spawns on its own shard, [`RegistryParams::names_per_holder`] names each, each holder
//! registering its names with `Ctx::register` in its `on_start` (an agent can only register
//! itself; spreading names over holders keeps the engine's per-agent name list short, as it is
//! in real use). The registrar remembers which holder got which name.
//!
//! Then it times `lookups` random lookups through `Ctx::lookup(name)`, which for a name this
//! shard owns is a plain probe of the shard's registry partition. The queried names are drawn
//! (seeded xorshift, before the clock starts) from everything registered so far and laid out
//! one after the other in one buffer, so the loop reads its input sequentially and the time is
//! the probe's: hashing the name for its owner, hashing it again for the table, one probe, and
//! the comparison with the expected id. `ns_per_op` = elapsed / lookups. Checks: every holder
//! registered every name, and every lookup found exactly the holder that registered it.
//!
//! Sizes grow in one engine (1e3, then 9e3 more, ...), so each size's table is the real table
//! of that many names, grown the way the engine grows it.

use crate::setup::{self, Placement};
use crate::stats;
use crate::BenchError;
use nexus_engine::agent::{Agent, AgentId, Ctx, Lookup, Registration};
use nexus_engine::ask::ReplyTo;
use nexus_engine::engine::EngineHandle;
use nexus_engine::registry::owner_of;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "registry";

/// What the registry workload does.
#[derive(Clone, Debug)]
pub struct RegistryParams {
    /// Registered names to measure at, ascending.
    pub sizes: Vec<u64>,
    /// Lookups timed at each size.
    pub lookups: u64,
    /// Names registered by each holder agent.
    pub names_per_holder: u32,
    /// Seed of the lookup order.
    pub seed: u64,
}

impl Default for RegistryParams {
    fn default() -> Self {
        Self {
            sizes: vec![1_000, 10_000, 100_000, 1_000_000],
            lookups: 1_000_000,
            names_per_holder: 16,
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

/// Lookup cost at one registry size.
#[derive(Clone, Copy, Debug)]
pub struct RegistryPoint {
    /// Names registered on the shard.
    pub names: u64,
    /// Lookups timed (all checked).
    pub lookups: u64,
    /// Time of all lookups.
    pub elapsed: Duration,
    /// `elapsed / lookups`, in nanoseconds.
    pub ns_per_op: f64,
}

/// Registers its names in `on_start`; counts failures in a cell shared with its registrar
/// (same shard, same thread).
struct Holder {
    names: Vec<Box<str>>,
    failures: Rc<Cell<u64>>,
}

impl Agent for Holder {
    type Msg = ();

    fn handle(&mut self, (): (), _ctx: &mut Ctx<'_>) {}

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        for name in self.names.drain(..) {
            // Every name is owned by this shard: a registration is done at once or failed.
            if ctx.register(&name, |_| ()) != Registration::Done(Ok(())) {
                self.failures.set(self.failures.get() + 1);
            }
        }
    }
}

/// Messages of the [`Registrar`].
#[derive(Debug)]
pub enum RegistrarMsg {
    /// The answer to a lookup that went to another shard. The measured lookups are all of
    /// names this shard owns; one that is not was already counted wrong, and its answer is
    /// dropped here.
    RemoteLookupAnswered,
    /// Register names until `to` are registered; reply with the count.
    Grow {
        /// Names to reach.
        to: u64,
        /// Where the count goes.
        reply: ReplyTo<Result<u64, String>>,
    },
    /// Time `count` random lookups (seeded); reply with the elapsed time.
    Lookups {
        /// Lookups to time.
        count: u64,
        /// Seed of the lookup order.
        seed: u64,
        /// Where the time goes.
        reply: ReplyTo<Result<Duration, String>>,
    },
}

/// Registers names through holders and times lookups; see the module documentation.
pub struct Registrar {
    names_per_holder: u32,
    names: Vec<Box<str>>,
    /// The holder that registered each name (same index as `names`).
    holders: Vec<AgentId>,
    next_candidate: u64,
    failures: Rc<Cell<u64>>,
}

impl Registrar {
    /// A registrar whose holders register `names_per_holder` names each.
    pub fn new(names_per_holder: u32) -> Self {
        Self {
            names_per_holder: names_per_holder.max(1),
            names: Vec::new(),
            holders: Vec::new(),
            next_candidate: 0,
            failures: Rc::new(Cell::new(0)),
        }
    }

    /// The next made-up name this shard owns.
    fn owned_name(&mut self, ctx: &Ctx<'_>) -> Box<str> {
        loop {
            let name = format!("bench.registry.agent-{}", self.next_candidate);
            self.next_candidate += 1;
            if owner_of(&name, ctx.shards()) == ctx.shard() {
                return name.into_boxed_str();
            }
        }
    }

    fn grow(&mut self, to: u64, ctx: &mut Ctx<'_>) -> Result<u64, String> {
        let per = self.names_per_holder as usize;
        let to = usize::try_from(to).map_err(|_| "too many names".to_string())?;
        while self.names.len() < to {
            let batch: Vec<Box<str>> = (0..per.min(to - self.names.len())).map(|_| self.owned_name(ctx)).collect();
            let holder = Holder { names: batch.clone(), failures: self.failures.clone() };
            let id = ctx.spawn(holder).map_err(|e| format!("cannot spawn a holder: {e}"))?.id();
            self.holders.resize(self.holders.len() + batch.len(), id);
            self.names.extend(batch);
        }
        match self.failures.get() {
            0 => Ok(self.names.len() as u64),
            n => Err(format!("{n} registrations failed")),
        }
    }

    fn lookups(&self, count: u64, seed: u64, ctx: &mut Ctx<'_>) -> Result<Duration, String> {
        if self.names.is_empty() {
            return Err("no names registered".into());
        }
        let count = usize::try_from(count).map_err(|_| "too many lookups".to_string())?;
        // The queries, laid out back to back, and the holder each must find.
        let mut text = String::with_capacity(count * 32);
        let mut ends = Vec::with_capacity(count);
        let mut expected = Vec::with_capacity(count);
        let mut rng = XorShift(seed | 1);
        for _ in 0..count {
            let i = (rng.next() % self.names.len() as u64) as usize;
            text.push_str(&self.names[i]);
            ends.push(text.len());
            expected.push(self.holders[i]);
        }
        let mut wrong = 0u64;
        let mut start = 0;
        let started = Instant::now();
        for (end, want) in ends.iter().zip(expected.iter()) {
            match ctx.lookup(&text[start..*end], |_| RegistrarMsg::RemoteLookupAnswered) {
                Lookup::Found(id) if id == *want => {}
                _ => wrong += 1,
            }
            start = *end;
        }
        let elapsed = started.elapsed();
        if wrong > 0 {
            return Err(format!("{wrong} of {count} lookups did not find the agent that registered the name"));
        }
        Ok(elapsed)
    }
}

impl Agent for Registrar {
    type Msg = RegistrarMsg;

    fn handle(&mut self, msg: RegistrarMsg, ctx: &mut Ctx<'_>) {
        match msg {
            RegistrarMsg::Grow { to, reply } => {
                let result = self.grow(to, ctx);
                ctx.reply(reply, result);
            }
            RegistrarMsg::Lookups { count, seed, reply } => {
                let result = self.lookups(count, seed, ctx);
                ctx.reply(reply, result);
            }
            RegistrarMsg::RemoteLookupAnswered => {}
        }
    }
}

/// xorshift64: a tiny deterministic generator for the lookup order (not for anything else).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// A registrar on shard 0 of a running engine, grown and measured step by step (criterion
/// keeps one at a fixed size and times lookups on it).
#[derive(Clone, Copy, Debug)]
pub struct RegistrySession {
    registrar: nexus_engine::agent::Addr<RegistrarMsg>,
}

impl RegistrySession {
    /// Spawns a registrar on shard 0.
    pub fn start(handle: &EngineHandle, names_per_holder: u32) -> Result<Self, BenchError> {
        Placement::Local.check(WORKLOAD, handle.shards())?;
        let registrar = setup::spawn_on(handle, WORKLOAD, 0, move || Registrar::new(names_per_holder))?;
        Ok(Self { registrar })
    }

    /// Registers names until `to` are registered (a no-op when there are already as many).
    pub fn grow(&self, handle: &EngineHandle, to: u64) -> Result<u64, BenchError> {
        let names = setup::ask(
            handle,
            WORKLOAD,
            "register names",
            self.registrar,
            setup::timeout_for(to, Duration::from_micros(20)),
            |reply| RegistrarMsg::Grow { to, reply },
        )?
        .map_err(|why| BenchError::check(WORKLOAD, why))?;
        if names < to {
            return Err(BenchError::check(WORKLOAD, format!("{names} names registered; expected {to}")));
        }
        Ok(names)
    }

    /// Times `count` checked lookups.
    pub fn lookups(&self, handle: &EngineHandle, count: u64, seed: u64) -> Result<Duration, BenchError> {
        setup::ask(
            handle,
            WORKLOAD,
            "time lookups",
            self.registrar,
            setup::timeout_for(count, Duration::from_micros(20)),
            |reply| RegistrarMsg::Lookups { count, seed, reply },
        )?
        .map_err(|why| BenchError::check(WORKLOAD, why))
    }
}

/// Grows a fresh registrar through `params.sizes` on a running engine, timing lookups at each.
pub fn run(handle: &EngineHandle, params: &RegistryParams) -> Result<Vec<RegistryPoint>, BenchError> {
    if params.sizes.windows(2).any(|w| w[0] >= w[1]) || params.sizes.first() == Some(&0) {
        return Err(BenchError::params(WORKLOAD, format!("sizes must be positive and ascending: {:?}", params.sizes)));
    }
    let session = RegistrySession::start(handle, params.names_per_holder)?;
    let mut points = Vec::with_capacity(params.sizes.len());
    for (i, &size) in params.sizes.iter().enumerate() {
        let names = session.grow(handle, size)?;
        let elapsed = session.lookups(handle, params.lookups, params.seed.wrapping_add(i as u64))?;
        points.push(RegistryPoint {
            names,
            lookups: params.lookups,
            elapsed,
            ns_per_op: stats::ns_per(elapsed, params.lookups),
        });
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::EngineSettings;

    #[test]
    fn every_lookup_finds_its_holder() {
        let engine = EngineSettings::test(2).build().unwrap();
        let handle = engine.handle();
        let params = RegistryParams { sizes: vec![100, 1_000], lookups: 2_000, ..RegistryParams::default() };
        let points = run(&handle, &params).unwrap();
        let names: Vec<u64> = points.iter().map(|p| p.names).collect();
        assert_eq!(names, [100, 1_000]);
        let stats = handle.stats().unwrap();
        assert_eq!(stats.shards[0].names, 1_000, "every name lives on shard 0");
        setup::shutdown(engine, WORKLOAD).unwrap();
    }
}
