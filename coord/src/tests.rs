//! Discovery end to end on a two-shard engine: declarations, local and global ranking, dead
//! agents, and determinism.

use super::*;
use nexus_engine::agent::{Agent, AgentId};
use nexus_engine::ask::ReplyTo;
use nexus_engine::engine::Engine;
use nexus_engine::shard::ExecutorKind;

const T: Duration = Duration::from_secs(5);

pub(crate) fn engine() -> Engine {
    Engine::builder()
        .shards(2)
        .oversubscribe(true)
        .executor(ExecutorKind::Threads)
        .pin_threads(false)
        .build()
        .expect("engine starts")
}

/// Declares `caps` at start; stops on `Stop`.
pub(crate) struct Worker {
    pub coord: Coord,
    pub caps: CapSet,
    pub load: LoadSource,
}

pub(crate) enum WorkerMsg {
    Report(f64),
    Stop,
}

impl Agent for Worker {
    type Msg = WorkerMsg;
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.coord.declare(ctx, self.caps, self.load);
    }
    fn handle(&mut self, msg: WorkerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            WorkerMsg::Report(l) => self.coord.report_load(ctx, l),
            WorkerMsg::Stop => ctx.stop_self(),
        }
    }
}

/// Runs discoveries for the host: local at once, global through a typed ask whose answer
/// comes back as `Found`, carrying the host's reply token.
struct Finder {
    coord: Coord,
}

enum FinderMsg {
    Local(Query, ReplyTo<Vec<Candidate>>),
    Global(Query, ReplyTo<Discovered>),
    Found(ReplyTo<Discovered>, Result<Discovered, AskError>),
}

impl Agent for Finder {
    type Msg = FinderMsg;
    fn handle(&mut self, msg: FinderMsg, ctx: &mut Ctx<'_>) {
        match msg {
            FinderMsg::Local(q, r) => {
                let found = self.coord.discover_local(ctx, &q);
                ctx.reply(r, found);
            }
            FinderMsg::Global(q, r) => {
                self.coord.discover(ctx, q, move |found| FinderMsg::Found(r, found)).expect("sent");
            }
            FinderMsg::Found(r, found) => ctx.reply(r, found.expect("discovered")),
        }
    }
}

fn spawn_worker(h: &EngineHandle, coord: &Coord, shard: usize, caps: CapSet, load: LoadSource) -> AgentId {
    let c = coord.clone();
    h.spawn(SpawnPlacement::Shard(shard), move || Worker { coord: c, caps, load }).unwrap().id()
}

#[test]
fn local_and_global_discovery_rank_every_shard() {
    let engine = engine();
    let h = engine.handle();
    let coord = Coord::start(&h, &CoordConfig::default()).unwrap();
    let train = coord.cap_set(&["train"]).unwrap();
    let gpu_train = coord.cap_set(&["gpu", "train"]).unwrap();
    let mut ids = Vec::new();
    for i in 0..6u32 {
        let caps = if i % 3 == 0 { gpu_train } else { train };
        ids.push(spawn_worker(&h, &coord, (i % 2) as usize, caps, LoadSource::Reported { initial: i as f64 }));
    }
    let c = coord.clone();
    let finder = h.spawn(SpawnPlacement::Shard(0), move || Finder { coord: c }).unwrap();

    // Local: only shard 0's workers (0, 2, 4), lightest first.
    let local = h.ask(finder, T, |r| FinderMsg::Local(Query::all(train, 10), r)).unwrap();
    assert_eq!(local.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[0], ids[2], ids[4]]);

    // Global: all six, lightest first, both shards answered.
    let all = h.ask(finder, T, |r| FinderMsg::Global(Query::all(train, 10), r)).unwrap();
    assert_eq!((all.shards_answered, all.shards_missing), (2, 0));
    assert_eq!(all.candidates.iter().map(|c| c.id).collect::<Vec<_>>(), ids);

    // `All` needs both capabilities; `Any` ranks having both above having one.
    let both = coord.discover_blocking(&h, Query::all(gpu_train, 10)).unwrap();
    assert_eq!(both.candidates.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[0], ids[3]]);
    let any = coord.discover_blocking(&h, Query::any(gpu_train, 3)).unwrap();
    assert_eq!(any.candidates[0].id, ids[0]);
    assert_eq!(any.candidates[1].id, ids[3], "the second agent with both caps outranks lighter single-cap ones");
    assert_eq!(any.candidates.len(), 3, "the limit holds after the merge");

    // A limit and an exclusion.
    let top = coord.discover_blocking(&h, Query::all(train, 2).excluding(&[ids[0]])).unwrap();
    assert_eq!(top.candidates.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[1], ids[2]]);
    engine.shutdown().unwrap();
}

#[test]
fn reported_load_and_reputation_change_the_order_and_dead_agents_drop_out() {
    let engine = engine();
    let h = engine.handle();
    let coord = Coord::start(&h, &CoordConfig::default()).unwrap();
    let eval = coord.cap_set(&["eval"]).unwrap();
    let a = spawn_worker(&h, &coord, 0, eval, LoadSource::Reported { initial: 0.0 });
    let b = spawn_worker(&h, &coord, 1, eval, LoadSource::Reported { initial: 0.0 });
    let first = |coord: &Coord| coord.discover_blocking(&h, Query::all(eval, 1)).unwrap().candidates[0].id;
    assert_eq!(first(&coord), a, "a tie goes to the lower id (shard 0)");
    h.send(Addr::<WorkerMsg>::from_id(a), WorkerMsg::Report(50.0)).unwrap();
    let deadline = std::time::Instant::now() + T;
    while first(&coord) != b {
        assert!(std::time::Instant::now() < deadline, "the report reached the index");
        std::thread::yield_now();
    }
    // b stops: the next query drops it.
    h.send(Addr::<WorkerMsg>::from_id(b), WorkerMsg::Stop).unwrap();
    let deadline = std::time::Instant::now() + T;
    loop {
        let found = coord.discover_blocking(&h, Query::all(eval, 5)).unwrap();
        if found.candidates.len() == 1 {
            assert_eq!(found.candidates[0].id, a);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "a stopped agent leaves the results");
        std::thread::sleep(Duration::from_millis(1));
    }
    engine.shutdown().unwrap();
}

#[test]
fn discovery_is_deterministic_for_a_given_state() {
    let engine = engine();
    let h = engine.handle();
    let coord = Coord::start(&h, &CoordConfig::default()).unwrap();
    let cap = coord.cap_set(&["x"]).unwrap();
    for i in 0..40u32 {
        spawn_worker(&h, &coord, (i % 2) as usize, cap, LoadSource::Reported { initial: (i % 4) as f64 });
    }
    let first = coord.discover_blocking(&h, Query::all(cap, 15)).unwrap();
    assert_eq!(first.candidates.len(), 15);
    for _ in 0..20 {
        assert_eq!(coord.discover_blocking(&h, Query::all(cap, 15)).unwrap(), first);
    }
    // Ties are ordered by id within equal scores.
    for w in first.candidates.windows(2) {
        assert!(w[0].ranks_before(&w[1]));
    }
    engine.shutdown().unwrap();
}

#[test]
fn bad_capability_names_are_typed_errors() {
    let engine = engine();
    let coord = Coord::start(&engine.handle(), &CoordConfig::default()).unwrap();
    let err = coord.cap_set(&["has space"]).unwrap_err();
    assert!(err.to_string().contains("hint:"), "{err}");
    engine.shutdown().unwrap();
}

#[test]
fn a_second_coord_on_one_engine_fails_and_leaves_the_first_working() {
    let engine = engine();
    let h = engine.handle();
    let coord = Coord::start(&h, &CoordConfig::default()).unwrap();
    let cap = coord.cap_set(&["solo"]).unwrap();
    spawn_worker(&h, &coord, 1, cap, LoadSource::Mailbox);
    assert!(Coord::start(&h, &CoordConfig::default()).is_err(), "one index per shard");
    assert!(Coord::start(&h, &CoordConfig::default()).is_err(), "still refused after the failed one stopped");
    let found = coord.discover_blocking(&h, Query::all(cap, 5)).unwrap();
    assert_eq!((found.candidates.len(), found.shards_missing), (1, 0));
    engine.shutdown().unwrap();
}
