//! Supervisor tests: shutdown (reverse order, stop timeouts, stopped from outside, a shutdown
//! during a pending remote start).

use super::*;

// ---------------------------------------------------------------------------------------------
// 9. Shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn shutdown_stops_children_in_reverse_then_exits_normally() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::OneForOne, &log))).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    let ids = running_ids(&mut shards, sup);
    log.take();

    post(&mut shards[0], sup, SupervisorMsg::Shutdown);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:c", "stop:b", "stop:a"]));
    assert_eq!(*downs.lock().unwrap(), [Down { id: sup.id(), reason: ExitReason::Normal }]);
    assert_eq!(shards[0].agents(), 1, "only the watcher is left");
    for id in ids {
        assert_eq!(ping(&mut shards, id), None);
    }
    assert_accounted(&shards);
}

#[test]
fn shutdown_moves_on_when_a_child_does_not_stop_within_its_timeout() {
    let log = Log::default();
    let mut shards = cluster(2);
    // Children on shard 1, which stands still during the shutdown: their stops cannot arrive.
    let timeout = Duration::from_millis(5);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &log).placement(SpawnPlacement::Shard(1)).shutdown_timeout(timeout))
        .child(worker("b", &log).placement(SpawnPlacement::Shard(1)).shutdown_timeout(timeout));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["start:a", "start:b"]));
    let ids = running_ids(&mut shards, sup);

    let asked_at = Instant::now();
    post(&mut shards[0], sup, SupervisorMsg::Shutdown);
    settle_one(&mut shards[0]);
    // b's stop is on its way and its timeout armed; nothing stopped yet.
    let st = ask_on_shard_only(&mut shards, 0, sup, SupervisorMsg::Stats);
    assert_eq!((st.running, st.stop_timeouts), (1, 0), "{st:?}");

    // Shard 0 alone: b times out, then a (each after its timeout), then the supervisor exits.
    let mut waited = Duration::ZERO;
    while downs.lock().unwrap().is_empty() && waited < Duration::from_millis(40) {
        std::thread::sleep(Duration::from_millis(1));
        waited += Duration::from_millis(1);
        settle_one(&mut shards[0]);
    }
    assert_eq!(*downs.lock().unwrap(), [Down { id: sup.id(), reason: ExitReason::Normal }]);
    assert!(asked_at.elapsed() >= timeout * 2, "both timeouts elapsed: {:?}", asked_at.elapsed());
    assert_eq!(log.take(), Vec::<String>::new(), "shard 1 has not run");
    assert_eq!(shards[1].agents(), 2);

    // When shard 1 runs, both late stops take effect. (Their order is not checked: the shard
    // runs stops it received in one pass last-in first-out, see
    // `a_supervisor_stopped_from_outside_stops_its_children_in_reverse_order`.)
    settle(&mut shards);
    let mut stopped = log.take();
    stopped.sort();
    assert_eq!(stopped, lines(&["stop:a", "stop:b"]));
    assert_eq!(shards[1].agents(), 0);
    for id in ids {
        assert_eq!(ping(&mut shards, id), None);
    }
    assert_accounted(&shards);
}

#[test]
fn shutdown_counts_the_stop_timeouts_and_waits_for_the_next_child() {
    let log = Log::default();
    let mut shards = cluster(2);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &log).placement(SpawnPlacement::Shard(1)))
        .child(worker("b", &log).placement(SpawnPlacement::Shard(1)).shutdown_timeout(Duration::from_millis(3)));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["start:a", "start:b"]));

    // Shard 1 stands still: b times out after 3 ms, then a's stop (default timeout) is pending.
    post(&mut shards[0], sup, SupervisorMsg::Shutdown);
    settle_one(&mut shards[0]);
    std::thread::sleep(Duration::from_millis(4));
    settle_one(&mut shards[0]);
    let st = ask_on_shard_only(&mut shards, 0, sup, SupervisorMsg::Stats);
    assert_eq!(st, SupervisorStats { children: 2, running: 0, restarts: 0, stop_timeouts: 1, start_failures: 0 });
    assert!(downs.lock().unwrap().is_empty(), "the supervisor waits for a");

    // Shard 1 runs: b's late exit is ignored, a's completes the shutdown (stops received in
    // one pass run last-in first-out: the order is not checked here).
    settle(&mut shards);
    let mut stopped = log.take();
    stopped.sort();
    assert_eq!(stopped, lines(&["stop:a", "stop:b"]));
    assert_eq!(*downs.lock().unwrap(), [Down { id: sup.id(), reason: ExitReason::Normal }]);
    assert_eq!((shards[0].agents(), shards[1].agents()), (1, 0));
    assert_accounted(&shards);
}

/// `Supervisor::on_stop` documents that the children still running are stopped "in reverse
/// order"; stopped from outside, the supervisor should stop c, then b, then a.
#[test]
fn a_supervisor_stopped_from_outside_stops_its_children_in_reverse_order() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::OneForOne, &log))).unwrap();
    settle(&mut shards);
    log.take();

    let stopper = shards[0].spawn(Stopper).unwrap();
    post(&mut shards[0], stopper, sup.id());
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:c", "stop:b", "stop:a"]));
    assert_accounted(&shards);
}

/// A shutdown asked for while a child's spawn on another shard is still pending: once the
/// child runs, it is stopped first (reverse order), before the children started before it.
#[test]
fn shutdown_during_a_pending_remote_start_still_stops_in_reverse_order() {
    let log = Log::default();
    let mut shards = cluster(2);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &log))
        .child(worker("b", &log).placement(SpawnPlacement::Shard(1)));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    // b's spawn request is on its way to shard 1 when the shutdown arrives.
    post(&mut shards[0], sup, SupervisorMsg::Shutdown);
    settle_one(&mut shards[0]);
    assert_eq!(log.take(), lines(&["start:a"]));

    settle(&mut shards);

    assert_eq!(log.take(), lines(&["start:b", "stop:b", "stop:a"]));
    assert_eq!(*downs.lock().unwrap(), [Down { id: sup.id(), reason: ExitReason::Normal }]);
    assert_eq!(shards[0].agents() + shards[1].agents(), 1, "only the watcher is left");
    assert_accounted(&shards);
}
