//! Nexus across nodes through a real `nats-server`: two or three engines (threads in this
//! process, one shard each) joined through `nexus-cluster`. Covers send and ask from hosts and
//! from agents (the same `ctx.send` / `ctx.ask` as locally), global names and their
//! conflicts, typed errors, a node's death and a NATS restart, with the bridge's accounting
//! (`sent = delivered + dead`) checked at the end of each. Every test starts its own server on
//! a free port and kills it on drop; without `nats-server` installed the tests say so and pass.

#[path = "cluster_nats.rs"]
mod cluster_nats;

use cluster_nats::Nats;
use nexus_cluster::{settle, Call, ClusterConfig, ClusterError, Node, Reason, Reply};
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::engine::{Engine, EngineHandle};
use nexus_engine::shard::ExecutorKind;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

/// Answers an ask with its text (`#count` answers how many one-way messages it got).
struct Tally {
    told: u64,
}

impl Agent for Tally {
    type Msg = Call<String, String>;
    fn handle(&mut self, msg: Call<String, String>, ctx: &mut Ctx<'_>) {
        match msg {
            Call::Tell(_) => self.told += 1,
            Call::Ask(q, reply) if q == "#count" => ctx.reply(reply, Ok(self.told.to_string())),
            Call::Ask(q, reply) => ctx.reply(reply, Ok(q)),
        }
    }
}

/// Asks `target` from inside an agent with `ctx.ask` and hands the answer to the test.
struct Asker {
    out: mpsc::Sender<Reply<String>>,
}

enum AskerMsg {
    Go(Addr<Call<String, String>>, String),
    Tell(Addr<Call<String, String>>, String),
    Answer(Reply<String>),
}

impl Agent for Asker {
    type Msg = AskerMsg;
    fn handle(&mut self, msg: AskerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            AskerMsg::Go(to, q) => {
                let asked = ctx.ask(to, |r| Call::Ask(q, r)).timeout(WAIT).then(|a| AskerMsg::Answer(settle(a)));
                assert!(asked.is_ok());
            }
            AskerMsg::Tell(to, q) => assert!(ctx.send(to, Call::Tell(q)).is_ok()),
            AskerMsg::Answer(a) => {
                let _ = self.out.send(a);
            }
        }
    }
}

/// One engine and its cluster node.
struct Member {
    node: Option<Node>,
    engine: Option<Engine>,
}

impl Member {
    fn join(nats: &Nats, name: &str) -> Member {
        let engine = Engine::builder()
            .shards(1)
            .oversubscribe(true)
            .executor(ExecutorKind::Threads)
            .pin_threads(false)
            .build()
            .expect("engine starts");
        let config = ClusterConfig::builder(nats.url(), name).cluster("t").build().expect("config");
        let node = Node::start(&engine.handle(), config).expect("node joins");
        Member { node: Some(node), engine: Some(engine) }
    }
    fn node(&self) -> &Node {
        self.node.as_ref().expect("running")
    }
    fn engine(&self) -> EngineHandle {
        self.engine.as_ref().expect("running").handle()
    }
    fn spawn_tally(&self, name: &str) -> Addr<Call<String, String>> {
        let addr = self.engine().spawn(nexus_engine::agent::SpawnPlacement::Local, || Tally { told: 0 }).unwrap();
        self.node().register_global(name, addr).expect("claim wins");
        addr
    }
    fn ask(&self, to: Addr<Call<String, String>>, q: &str) -> Reply<String> {
        let q = q.to_owned();
        settle(self.engine().ask(to, WAIT, |r| Call::Ask(q, r)))
    }
    /// Stops the engine after the node, checking both accountings.
    fn finish(mut self) {
        let node = self.node.take().expect("running");
        let stats = node.stats();
        node.shutdown();
        assert!(stats.accounted(), "cluster accounting: {}", stats.line());
        let report = self.engine.take().expect("running").shutdown().expect("engine stops");
        assert!(report.stats.accounted(), "engine accounting");
    }
}

fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn send_and_ask_across_nodes_from_hosts_and_agents() {
    let Some(nats) = Nats::start() else { return };
    let (a, b) = (Member::join(&nats, "a"), Member::join(&nats, "b"));
    a.spawn_tally("e1");
    let remote = b.node().resolve::<String, String>("e1").expect("resolves from b");
    assert_eq!(b.ask(remote, "hi"), Ok("hi".to_owned()));

    let (tx, rx) = mpsc::channel();
    let asker = b.engine().spawn(nexus_engine::agent::SpawnPlacement::Local, move || Asker { out: tx }).unwrap();
    b.engine().send(asker, AskerMsg::Go(remote, "from an agent".into())).ok().unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Ok("from an agent".to_owned()));
    for i in 0..100 {
        b.engine().send(asker, AskerMsg::Tell(remote, i.to_string())).ok().unwrap();
    }
    let mut polls = 0;
    until("100 one-way messages", || {
        polls += 1;
        b.ask(remote, "#count") == Ok("100".to_owned())
    });

    // Resolution on a's own node is the local agent, not a proxy.
    let local = a.node().resolve::<String, String>("e1").unwrap();
    assert_eq!(a.ask(local, "x"), Ok("x".to_owned()));
    assert_eq!(a.node().stats().sent, 0, "a local ask crosses nothing");
    let stats = b.node().stats();
    // 2 asks, 100 one-way messages and the polls of the count: all delivered.
    assert_eq!((stats.sent, stats.delivered), (102 + polls, 102 + polls), "{}", stats.line());
    b.finish();
    a.finish();
}

#[test]
fn names_resolve_list_and_fail_typed() {
    let Some(nats) = Nats::start() else { return };
    let (a, b) = (Member::join(&nats, "a"), Member::join(&nats, "b"));
    a.spawn_tally("svc");
    assert_eq!(b.node().resolve::<String, String>("nobody").err(), Some(ClusterError::NotFound("nobody".into())));
    assert!(matches!(b.node().resolve::<String, String>("bad.name"), Err(ClusterError::BadName(_))));
    until("both nodes and the name in b's directory", || {
        b.node().nodes() == ["a", "b"] && b.node().names() == [("svc".to_owned(), "a".to_owned())]
    });
    // A wrongly typed remote: invalid UTF-8 where a String is expected fails as Decode.
    let wrong = b.node().resolve::<Vec<u8>, String>("svc").unwrap();
    let answer = settle(b.engine().ask(wrong, WAIT, |r| Call::Ask(vec![0xff], r)));
    assert!(matches!(answer, Err(ClusterError::Decode(_))), "{answer:?}");
    // Released names leave every directory.
    a.node().unregister_global("svc");
    until("the release to reach b", || b.node().names().is_empty());
    b.finish();
    a.finish();
}

#[test]
fn the_first_claim_of_a_name_wins_and_the_loser_is_told() {
    let Some(nats) = Nats::start() else { return };
    let members = [Member::join(&nats, "a"), Member::join(&nats, "b"), Member::join(&nats, "c")];
    for round in 0..5 {
        let name = format!("dup{round}");
        let outcomes: Vec<Result<(), ClusterError>> = std::thread::scope(|s| {
            let claims: Vec<_> = members[..2]
                .iter()
                .map(|m| {
                    let name = name.clone();
                    s.spawn(move || {
                        let addr = m.engine().spawn(nexus_engine::agent::SpawnPlacement::Local, || Tally { told: 0 });
                        m.node().register_global(&name, addr.unwrap())
                    })
                })
                .collect();
            claims.into_iter().map(|c| c.join().unwrap()).collect()
        });
        let won = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(won, 1, "exactly one claim of {name} wins: {outcomes:?}");
        let winner = if outcomes[0].is_ok() { "a" } else { "b" };
        let lost = outcomes.iter().find_map(|o| o.clone().err()).unwrap();
        assert_eq!(lost, ClusterError::Conflict { name: name.clone(), node: winner.into() });
        // A later claim from a third node is refused, naming the holder.
        let late = members[2].engine().spawn(nexus_engine::agent::SpawnPlacement::Local, || Tally { told: 0 });
        let late = members[2].node().register_global(&name, late.unwrap());
        assert_eq!(late, Err(ClusterError::Conflict { name: name.clone(), node: winner.into() }));
        let seen = members[2].node().resolve::<String, String>(&name).unwrap();
        assert_eq!(members[2].ask(seen, "who"), Ok("who".to_owned()));
    }
    for m in members {
        m.finish();
    }
}

#[path = "cluster_faults.rs"]
mod faults;

#[path = "cluster_backlog.rs"]
mod backlog;
