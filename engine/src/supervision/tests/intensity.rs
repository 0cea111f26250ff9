//! Supervisor tests: restart intensity (escalation past the limit, restarts spread over the
//! period, failed starts) and nested supervisors restarted after escalating.

use super::*;

// ---------------------------------------------------------------------------------------------
// 6. Intensity
// ---------------------------------------------------------------------------------------------

#[test]
fn the_restart_past_the_intensity_stops_all_children_and_fails_the_supervisor() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = three(Strategy::OneForOne, &log).intensity(3, Duration::from_secs(1));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    let ids = running_ids(&mut shards, sup);
    log.take();

    for round in 1..=3u64 {
        let b = running_ids(&mut shards, sup)[1];
        send(&mut shards, b, Job::Crash);
        settle(&mut shards);
        assert_eq!(log.take(), lines(&["start:b"]), "crash {round} is restarted");
        assert_eq!(stats(&mut shards, sup).restarts, round);
    }
    assert!(downs.lock().unwrap().is_empty());
    let last = running_ids(&mut shards, sup);
    assert_eq!((last[0], last[2]), (ids[0], ids[2]));

    // The fourth crash within the period: c then a are stopped, and the supervisor fails.
    send(&mut shards, last[1], Job::Crash);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:c", "stop:a"]));
    assert_eq!(
        *downs.lock().unwrap(),
        [Down { id: sup.id(), reason: ExitReason::failed("restart intensity reached") }]
    );
    assert_eq!(shards[0].agents(), 1, "only the watcher is left");
    for id in last {
        assert_eq!(ping(&mut shards, id), None, "child {id} is gone");
    }
    assert_eq!(try_ask(&mut shards, sup, SupervisorMsg::Stats), None, "the supervisor is gone");
    assert_accounted(&shards);
}

#[test]
fn restarts_spread_beyond_the_period_do_not_escalate() {
    let log = Log::default();
    let mut shards = cluster(1);
    let period = Duration::from_millis(10);
    let spec = SupervisorSpec::new(Strategy::OneForOne).intensity(1, period).child(worker("a", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    log.take();

    for round in 1..=3u64 {
        if round > 1 {
            // Past the period: the previous restart no longer counts.
            std::thread::sleep(period + Duration::from_millis(2));
        }
        let a = running_ids(&mut shards, sup)[0];
        send(&mut shards, a, Job::Crash);
        settle(&mut shards);
        assert_eq!(log.take(), lines(&["start:a"]), "crash {round} is restarted");
    }
    assert!(downs.lock().unwrap().is_empty(), "{:?}", downs.lock().unwrap());
    let st = stats(&mut shards, sup);
    assert_eq!((st.running, st.restarts), (1, 3));
    assert_accounted(&shards);
}

#[test]
fn an_intensity_of_zero_gives_up_at_the_first_failure() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = three(Strategy::OneForOne, &log).intensity(0, Duration::from_secs(1));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    let ids = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, ids[0], Job::Fail);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:a", "stop:c", "stop:b"]));
    assert_eq!(
        *downs.lock().unwrap(),
        [Down { id: sup.id(), reason: ExitReason::failed("restart intensity reached") }]
    );
    assert_eq!(shards[0].agents(), 1);
    assert_accounted(&shards);
}

#[test]
fn a_child_that_cannot_be_started_counts_against_the_intensity() {
    let log = Log::default();
    let mut shards = cluster(1);
    // Shard 7 does not exist: every start of "bad" fails. The backoff makes the retries wait,
    // so the supervisor outlives its own start.
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(2, Duration::from_secs(1))
        .backoff(Backoff { min: Duration::from_millis(10), max: Duration::from_millis(10), jitter: 0.0 })
        .child(worker("a", &log))
        .child(worker("bad", &log).placement(SpawnPlacement::Shard(7)));
    let spawned_at = Instant::now();
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);
    let st = stats(&mut shards, sup);
    if spawned_at.elapsed() < Duration::from_millis(10) {
        // The first retry waits for the backoff.
        assert_eq!((st.running, st.restarts, st.start_failures), (1, 1, 1));
    }

    // Three 10 ms backoffs end it in about 30 ms; the limit only bounds a stalled machine (a
    // CI run once missed 45 ms) and stays inside the 1 s intensity period.
    let gone = settle_until(&mut shards, Duration::from_millis(900), |_| !downs.lock().unwrap().is_empty());
    assert!(gone, "the supervisor never gave up");
    assert_eq!(log.take(), lines(&["start:a", "stop:a"]));
    assert_eq!(
        *downs.lock().unwrap(),
        [Down { id: sup.id(), reason: ExitReason::failed("restart intensity reached") }]
    );
    assert_eq!(shards[0].agents(), 1);
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 7. Nesting
// ---------------------------------------------------------------------------------------------

#[test]
fn a_nested_supervisor_that_escalates_is_restarted_with_its_children() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sub_spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(1, Duration::from_secs(1))
        .child(worker("w1", &log))
        .child(worker("w2", &log));
    let root_spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(1))
        .child(ChildSpec::new("sub", move || Supervisor::new(sub_spec.clone())))
        .child(worker("r", &log));
    let root = shards[0].spawn(Supervisor::new(root_spec)).unwrap();
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["start:w1", "start:w2", "start:r"]));
    let root_ids = running_ids(&mut shards, root);
    let sub = Addr::<SupervisorMsg>::from_id(root_ids[0]);
    let workers = running_ids(&mut shards, sub);

    // The first crash is within the sub-supervisor's intensity.
    send(&mut shards, workers[0], Job::Crash);
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["start:w1"]));
    let w1 = running_ids(&mut shards, sub)[0];
    assert_eq!(stats(&mut shards, root).restarts, 0);

    // The second is not: the sub-supervisor stops w2 and fails; the root restarts it, and it
    // starts both workers again.
    send(&mut shards, w1, Job::Crash);
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["stop:w2", "start:w1", "start:w2"]));

    let root_infos = children(&mut shards, root);
    let new_sub = root_infos[0].agent.expect("the sub-supervisor runs again");
    assert_ne!(new_sub, sub.id());
    assert_eq!(root_infos[0].restarts, 1);
    assert_eq!(root_infos[1].agent, Some(root_ids[1]), "the root's other child is untouched");
    assert_eq!(try_ask(&mut shards, sub, SupervisorMsg::Stats), None, "the old sub-supervisor is gone");

    let new_sub = Addr::<SupervisorMsg>::from_id(new_sub);
    let new_workers = running_ids(&mut shards, new_sub);
    for (i, &id) in new_workers.iter().enumerate() {
        assert!(!workers.contains(&id) && id != w1, "worker {i} is a new instance");
        assert_eq!(ping(&mut shards, id), Some(id));
    }
    assert_eq!(stats(&mut shards, new_sub), SupervisorStats { children: 2, running: 2, ..Default::default() });
    assert_eq!(shards[0].agents(), 5, "root, sub, w1, w2, r");
    assert_accounted(&shards);
}
