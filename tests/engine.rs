//! The engine end to end through its public API: host sends, asks, spawns, names, stops, stats,
//! and 100,000 agents on two shards asking each other across shards.

use nexus_engine::agent::{Addr, Agent, AgentId, Ctx, SpawnPlacement};
use nexus_engine::ask::{AskError, ReplyTo};
use nexus_engine::builtin::{Counter, CounterMsg, Echo, EchoMsg};
use nexus_engine::engine::{Engine, EngineBuilder};
use nexus_engine::metrics::DeadLetterReason;
use nexus_engine::shard::ExecutorKind;
use std::time::{Duration, Instant};

const ASK: Duration = Duration::from_secs(10);

fn two_shards(executor: ExecutorKind) -> EngineBuilder {
    Engine::builder().shards(2).oversubscribe(true).executor(executor).pin_threads(false)
}

#[test]
fn host_api_round_trip_on_both_executors() {
    for executor in [ExecutorKind::Threads, ExecutorKind::Glommio] {
        let engine = two_shards(executor).build().expect("engine starts");
        let h = engine.handle();
        assert_eq!(h.shards(), 2);
        let echo = h.spawn(SpawnPlacement::Shard(1), Echo::default).unwrap();
        assert_eq!(echo.shard(), 1);
        let v = h.ask(echo, ASK, |reply| EchoMsg::Echo { value: 42, reply }).unwrap();
        assert_eq!(v, 42);
        let counter = h.spawn(SpawnPlacement::Shard(0), Counter::default).unwrap();
        for _ in 0..1000 {
            h.send(counter, CounterMsg::Add(2)).unwrap();
        }
        assert_eq!(h.ask(counter, ASK, CounterMsg::Get).unwrap(), 2000);

        h.register("the-counter", counter.id()).unwrap();
        assert!(h.register("the-counter", echo.id()).is_err(), "duplicate names are refused");
        assert_eq!(h.lookup("the-counter").unwrap(), Some(counter.id()));
        // A stats request after a stop sees it (both go through shard 0's inject queue, in
        // order). The stop removes the name at once: it tells the name's owner shard, so a
        // lookup sent straight to the owner may arrive first and still see it, briefly.
        let agents_before = h.stats().unwrap().shards[0].agents;
        h.stop(counter.id()).unwrap();
        assert_eq!(h.stats().unwrap().shards[0].agents, agents_before - 1, "the stop is seen by stats");
        let deadline = Instant::now() + ASK;
        while h.lookup("the-counter").unwrap().is_some() {
            assert!(Instant::now() < deadline, "name removed after stop");
            std::thread::yield_now();
        }
        // A message to the stopped agent is a counted dead letter.
        h.send(counter, CounterMsg::Add(1)).unwrap();
        let report = engine.shutdown().unwrap();
        let t = report.stats.totals();
        assert!(report.drained);
        assert!(report.stats.accounted(), "{t:?}");
        assert_eq!(t.dead(DeadLetterReason::Stopped), 1, "{t:?}");
    }
}

#[test]
fn bad_placement_requests_are_typed_errors() {
    let e = Engine::builder().shards(10_000).build().err().expect("too many shards");
    assert!(e.to_string().contains("oversubscribe") || e.to_string().contains("shards"), "{e}");
    let e = Engine::builder().shards(0).build().err().expect("zero shards");
    assert!(!e.to_string().is_empty());
    let e = Engine::builder().ring_capacity(1000).shards(1).build().err().expect("ring not a power of two");
    assert!(e.to_string().contains("power of two"), "{e}");
}

#[test]
fn host_asks_time_out_with_a_typed_error() {
    /// Keeps every token and never answers (dropping one would fail the ask at once).
    #[derive(Default)]
    struct Silent(Vec<ReplyTo<u64>>);
    impl Agent for Silent {
        type Msg = ReplyTo<u64>;
        fn handle(&mut self, never_answered: ReplyTo<u64>, _ctx: &mut Ctx<'_>) {
            self.0.push(never_answered);
        }
    }
    let engine = two_shards(ExecutorKind::Threads).build().unwrap();
    let h = engine.handle();
    let silent = h.spawn(SpawnPlacement::Shard(1), Silent::default).unwrap();
    let r: Result<u64, AskError> = h.ask(silent, Duration::from_millis(20), |reply| reply);
    assert_eq!(r.unwrap_err(), AskError::Timeout);
    assert!(engine.shutdown().unwrap().stats.accounted());
}

// ---- 100,000 agents asking across shards ----

/// A peer: asks its partner on the other shard once, checks the answer, tells its tally.
struct Peer {
    partner: Option<Addr<PeerMsg>>,
    tally: Addr<TallyMsg>,
    seed: u64,
    /// An ask is out and not yet answered.
    pending: bool,
}

enum PeerMsg {
    /// Meet your partner and ask it.
    Start(Addr<PeerMsg>),
    /// Answer `x * 2 + 1`.
    Compute(u64, ReplyTo<u64>),
    /// The partner's answer to `Compute(asked, ..)`, through the ask's adapter.
    Computed { asked: u64, answer: Result<u64, AskError> },
}

impl Agent for Peer {
    type Msg = PeerMsg;
    fn handle(&mut self, msg: PeerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            PeerMsg::Start(partner) => {
                assert_ne!(partner.shard(), ctx.shard(), "partners live on different shards");
                self.partner = Some(partner);
                let seed = self.seed;
                ctx.ask(partner, move |r| PeerMsg::Compute(seed, r))
                    .timeout(ASK)
                    .then(move |answer| PeerMsg::Computed { asked: seed, answer })
                    .unwrap_or_else(|_| panic!("mailbox full"));
                self.pending = true;
            }
            PeerMsg::Compute(x, reply) => ctx.reply(reply, x * 2 + 1),
            PeerMsg::Computed { asked, answer } => {
                // One answer, to the one ask made, with the right value.
                let ok = std::mem::take(&mut self.pending) && asked == self.seed && answer == Ok(self.seed * 2 + 1);
                ctx.send(self.tally, if ok { TallyMsg::Right } else { TallyMsg::Wrong })
                    .unwrap_or_else(|_| panic!("tally full"));
            }
        }
    }
}

enum TallyMsg {
    Right,
    Wrong,
    Read(ReplyTo<(u64, u64)>),
}

#[derive(Default)]
struct Tally {
    right: u64,
    wrong: u64,
}

impl Agent for Tally {
    type Msg = TallyMsg;
    fn handle(&mut self, msg: TallyMsg, ctx: &mut Ctx<'_>) {
        match msg {
            TallyMsg::Right => self.right += 1,
            TallyMsg::Wrong => self.wrong += 1,
            TallyMsg::Read(r) => ctx.reply(r, (self.right, self.wrong)),
        }
    }
}

/// Spawns `n` peers on its own shard, then pairs them with the other shard's peers.
struct Spawner {
    n: u64,
    tally: Option<Addr<TallyMsg>>,
    peers: Vec<Addr<PeerMsg>>,
}

enum SpawnerMsg {
    Spawn(ReplyTo<Vec<Addr<PeerMsg>>>),
    Pair(Vec<Addr<PeerMsg>>),
    Tally(ReplyTo<Addr<TallyMsg>>),
}

impl Agent for Spawner {
    type Msg = SpawnerMsg;
    fn handle(&mut self, msg: SpawnerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            SpawnerMsg::Spawn(reply) => {
                // Every peer reports to the tally within one pass or two: give it room for all of them.
                let options = nexus_engine::agent::SpawnOptions::new().mailbox_capacity(2 * self.n as u32);
                let local = |_| -> SpawnerMsg { unreachable!("a local spawn answers at once") };
                let tally = match ctx.spawn_on(options, Tally::default, local).unwrap() {
                    nexus_engine::agent::Spawned::Here(tally) => tally,
                    nexus_engine::agent::Spawned::Pending => unreachable!("spawned on this shard"),
                };
                self.tally = Some(tally);
                let base = ctx.shard() as u64 * 1_000_000;
                for i in 0..self.n {
                    let peer = Peer { partner: None, tally, seed: base + i, pending: false };
                    self.peers.push(ctx.spawn(peer).unwrap());
                }
                ctx.reply(reply, self.peers.clone());
            }
            SpawnerMsg::Pair(others) => {
                for (mine, theirs) in self.peers.iter().zip(others) {
                    ctx.send(*mine, PeerMsg::Start(theirs)).unwrap_or_else(|_| panic!("mailbox full"));
                }
            }
            SpawnerMsg::Tally(reply) => ctx.reply(reply, self.tally.expect("spawned")),
        }
    }
}

#[test]
fn hundred_thousand_agents_ask_across_two_shards() {
    const PER_SHARD: u64 = 50_000;
    let engine = two_shards(ExecutorKind::Glommio).build().unwrap();
    let h = engine.handle();
    let spawners: Vec<_> = (0..2)
        .map(|s| {
            h.spawn(SpawnPlacement::Shard(s), move || Spawner { n: PER_SHARD, tally: None, peers: vec![] }).unwrap()
        })
        .collect();
    let peers: Vec<Vec<Addr<PeerMsg>>> = spawners.iter().map(|s| h.ask(*s, ASK, SpawnerMsg::Spawn).unwrap()).collect();
    assert_eq!(peers[0].len() + peers[1].len(), 100_000);
    h.send(spawners[0], SpawnerMsg::Pair(peers[1].clone())).unwrap();
    h.send(spawners[1], SpawnerMsg::Pair(peers[0].clone())).unwrap();
    let tallies: Vec<_> = spawners.iter().map(|s| h.ask(*s, ASK, SpawnerMsg::Tally).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts: Vec<(u64, u64)> = tallies.iter().map(|t| h.ask(*t, ASK, TallyMsg::Read).unwrap()).collect();
        let right: u64 = counts.iter().map(|c| c.0).sum();
        let wrong: u64 = counts.iter().map(|c| c.1).sum();
        assert_eq!(wrong, 0, "every reply is checked");
        if right == 2 * PER_SHARD {
            break;
        }
        assert!(Instant::now() < deadline, "only {right} of {} answers arrived", 2 * PER_SHARD);
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = h.stats().unwrap();
    assert_eq!(stats.agents(), 100_000 + 2 + 2);
    let report = engine.shutdown().unwrap();
    let t = report.stats.totals();
    assert!(report.stats.accounted(), "{t:?}");
    assert_eq!(t.ask_timeouts, 0);
    assert_eq!(t.dead_letters_total(), 0, "{t:?}");
}

#[test]
fn remote_spawn_from_an_agent_reports_the_new_id() {
    struct Parent {
        child: Option<Result<AgentId, String>>,
        asker: Option<ReplyTo<Option<AgentId>>>,
    }
    enum ParentMsg {
        Go,
        Child(ReplyTo<Option<AgentId>>),
        Spawned(Result<Result<AgentId, nexus_engine::agent::SpawnError>, AskError>),
    }
    impl Agent for Parent {
        type Msg = ParentMsg;
        fn handle(&mut self, msg: ParentMsg, ctx: &mut Ctx<'_>) {
            match msg {
                ParentMsg::Go => {
                    let placement = SpawnPlacement::Shard(1 - ctx.shard());
                    let r = ctx.spawn_on(placement, Counter::default, ParentMsg::Spawned).unwrap();
                    assert!(matches!(r, nexus_engine::agent::Spawned::Pending));
                }
                ParentMsg::Child(reply) => match &self.child {
                    Some(Ok(id)) => ctx.reply(reply, Some(*id)),
                    _ => self.asker = Some(reply),
                },
                ParentMsg::Spawned(answer) => {
                    let id = answer.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string()));
                    if let (Ok(id), Some(asker)) = (&id, self.asker.take()) {
                        ctx.reply(asker, Some(*id));
                    }
                    self.child = Some(id);
                }
            }
        }
    }
    let engine = two_shards(ExecutorKind::Threads).build().unwrap();
    let h = engine.handle();
    let parent = h.spawn(SpawnPlacement::Shard(0), || Parent { child: None, asker: None }).unwrap();
    h.send(parent, ParentMsg::Go).unwrap();
    let child = h.ask(parent, ASK, ParentMsg::Child).unwrap().expect("child spawned");
    assert_eq!(child.shard(), 1);
    let counter: Addr<CounterMsg> = Addr::from_id(child);
    h.send(counter, CounterMsg::Add(3)).unwrap();
    assert_eq!(h.ask(counter, ASK, CounterMsg::Get).unwrap(), 3);
    assert!(engine.shutdown().unwrap().stats.accounted());
}

/// A machine where io_uring is blocked: `auto` runs on threads and says why in one line; an
/// explicit `glommio` is refused with a typed error and a hint, before any shard starts.
#[test]
fn a_failed_io_uring_probe_makes_auto_fall_back_and_glommio_fail() {
    use nexus_engine::engine::EngineError;
    use nexus_engine::executor::{ExecutorError, Machine, MemlockLimit, UringProbe};
    let blocked = Machine {
        uring: UringProbe::failed("io_uring_setup failed: Operation not permitted (os error 1)"),
        memlock: MemlockLimit::unlimited(),
        glommio_built: true,
    };
    let engine = two_shards(ExecutorKind::Auto).machine(blocked.clone()).build().expect("auto still starts");
    assert_eq!(engine.executor(), ExecutorKind::Threads);
    let warning = engine.executor_warning().expect("auto says why it fell back");
    assert!(warning.contains("Operation not permitted") && !warning.contains('\n'), "{warning}");
    let h = engine.handle();
    let echo = h.spawn(SpawnPlacement::Shard(1), Echo::default).unwrap();
    assert_eq!(h.ask(echo, ASK, |reply| EchoMsg::Echo { value: 7, reply }).unwrap(), 7);
    engine.shutdown().unwrap();

    match two_shards(ExecutorKind::Glommio).machine(blocked).build() {
        Err(EngineError::Executor(ExecutorError::UringUnavailable(reason))) => {
            assert!(reason.contains("Operation not permitted"), "{reason}")
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("glommio must not start where io_uring is blocked"),
    }

    // A working machine: auto picks glommio without a word.
    let fine = Machine { uring: UringProbe::supported(), memlock: MemlockLimit::unlimited(), glommio_built: true };
    let engine = two_shards(ExecutorKind::Auto).machine(fine).build().unwrap();
    assert_eq!((engine.executor(), engine.executor_warning()), (ExecutorKind::Glommio, None));
    engine.shutdown().unwrap();
}
