//! Supervisor tests: the parent's exit (failure, panic, normal exit) and a supervisor stopped
//! from outside.

use super::*;

// ---------------------------------------------------------------------------------------------
// 12. The parent's exit
// ---------------------------------------------------------------------------------------------

/// Spawns a supervisor linked to itself on start, then fails or quits when told.
struct Parent {
    spec: Option<SupervisorSpec>,
    sup: Arc<Mutex<Option<AgentId>>>,
}

enum ParentMsg {
    Fail,
    Crash,
    Quit,
}

impl Agent for Parent {
    type Msg = ParentMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        let spec = self.spec.take().unwrap();
        let never = |_| -> ParentMsg { unreachable!("a local spawn is never pending") };
        match ctx.spawn_linked_on(SpawnPlacement::Local, move || Supervisor::new(spec), never) {
            Ok(Spawned::Here(addr)) => *self.sup.lock().unwrap() = Some(addr.id()),
            Ok(Spawned::Pending) => panic!("a local spawn is never pending"),
            Err(e) => panic!("the supervisor could not be spawned: {e}"),
        }
    }

    fn handle(&mut self, msg: ParentMsg, ctx: &mut Ctx<'_>) {
        match msg {
            ParentMsg::Fail => ctx.fail("the parent failed"),
            ParentMsg::Crash => panic!("the parent crashed (expected in supervision tests)"),
            ParentMsg::Quit => ctx.stop_self(),
        }
    }
}

/// Spawns a parent that starts a supervisor of [a, b, c]; returns the parent, the supervisor
/// and the supervisor's watcher record.
fn parent_with_supervisor(
    shards: &mut [Shard],
    log: &Log,
) -> (Addr<ParentMsg>, Addr<SupervisorMsg>, Arc<Mutex<Vec<Down>>>) {
    let slot = Arc::new(Mutex::new(None));
    let parent = shards[0].spawn(Parent { spec: Some(three(Strategy::OneForOne, log)), sup: slot.clone() }).unwrap();
    let sup = Addr::<SupervisorMsg>::from_id(slot.lock().unwrap().expect("the parent spawned a supervisor"));
    let downs = watch(shards, sup.id());
    settle(shards);
    assert_eq!(log.take(), lines(&["start:a", "start:b", "start:c"]));
    (parent, sup, downs)
}

#[test]
fn a_parent_failure_shuts_the_supervisor_down_with_the_same_reason() {
    let log = Log::default();
    let mut shards = cluster(1);
    let (parent, sup, downs) = parent_with_supervisor(&mut shards, &log);
    let ids = running_ids(&mut shards, sup);

    post(&mut shards[0], parent, ParentMsg::Fail);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:c", "stop:b", "stop:a"]));
    assert_eq!(*downs.lock().unwrap(), [Down { id: sup.id(), reason: ExitReason::failed("the parent failed") }]);
    assert_eq!(shards[0].agents(), 1, "only the watcher is left");
    for id in ids {
        assert_eq!(ping(&mut shards, id), None);
    }
    assert_accounted(&shards);
}

#[test]
fn a_parent_panic_shuts_the_supervisor_down_with_the_panic() {
    let log = Log::default();
    let mut shards = cluster(1);
    let (parent, sup, downs) = parent_with_supervisor(&mut shards, &log);

    post(&mut shards[0], parent, ParentMsg::Crash);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:c", "stop:b", "stop:a"]));
    let downs = downs.lock().unwrap();
    assert_eq!(downs.len(), 1);
    assert_eq!(downs[0].id, sup.id());
    assert!(
        matches!(&downs[0].reason, ExitReason::Panicked(m) if m.contains("the parent crashed")),
        "{:?}",
        downs[0].reason
    );
    assert_eq!(shards[0].agents(), 1);
    assert_accounted(&shards);
}

#[test]
fn a_parent_normal_exit_leaves_the_supervisor_running() {
    let log = Log::default();
    let mut shards = cluster(1);
    let (parent, sup, downs) = parent_with_supervisor(&mut shards, &log);
    let ids = running_ids(&mut shards, sup);

    post(&mut shards[0], parent, ParentMsg::Quit);
    settle(&mut shards);

    assert_eq!(log.take(), Vec::<String>::new());
    assert!(downs.lock().unwrap().is_empty());
    assert_eq!(running_ids(&mut shards, sup), ids);
    assert_eq!(stats(&mut shards, sup).running, 3);
    assert_accounted(&shards);
}

#[test]
fn a_supervisor_stopped_from_outside_stops_all_its_children() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::OneForOne, &log))).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    log.take();

    let stopper = shards[0].spawn(Stopper).unwrap();
    post(&mut shards[0], stopper, sup.id());
    settle(&mut shards);

    assert_eq!(*downs.lock().unwrap(), [Down { id: sup.id(), reason: ExitReason::Shutdown }]);
    let mut stopped = log.take();
    stopped.sort();
    assert_eq!(stopped, lines(&["stop:a", "stop:b", "stop:c"]));
    assert_eq!(shards[0].agents(), 2, "the watcher and the stopper");
    assert_accounted(&shards);
}
