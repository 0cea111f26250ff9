//! Supervisor tests: start order and the three strategies (`OneForOne`, `OneForAll`,
//! `RestForOne`).

use super::*;

// ---------------------------------------------------------------------------------------------
// 1. Start order
// ---------------------------------------------------------------------------------------------

#[test]
fn children_start_in_spec_order_and_are_reported_running() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::OneForOne, &log))).unwrap();
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["start:a", "start:b", "start:c"]));

    let st = stats(&mut shards, sup);
    assert_eq!(st, SupervisorStats { children: 3, running: 3, restarts: 0, stop_timeouts: 0, start_failures: 0 });
    let infos = children(&mut shards, sup);
    let labels: Vec<&str> = infos.iter().map(|c| &*c.label).collect();
    assert_eq!(labels, ["a", "b", "c"]);
    assert!(infos.iter().all(|c| c.restarts == 0 && c.name.is_none()), "{infos:?}");
    let ids = running_ids(&mut shards, sup);
    // Three distinct live agents on the supervisor's shard, each answering with its own id.
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
    for &id in &ids {
        assert_eq!(id.shard(), 0);
        assert_eq!(ping(&mut shards, id), Some(id));
    }
    assert_eq!(shards[0].agents(), 4, "the supervisor and its three children");
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 2-4. Strategies
// ---------------------------------------------------------------------------------------------

#[test]
fn one_for_one_restarts_only_the_crashed_child() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::OneForOne, &log))).unwrap();
    settle(&mut shards);
    let before = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, before[1], Job::Crash);
    settle(&mut shards);

    // No "stop:b": a panicked agent's on_stop is not run.
    assert_eq!(log.take(), lines(&["start:b"]));
    let after = running_ids(&mut shards, sup);
    assert_eq!(after[0], before[0], "a keeps its id");
    assert_eq!(after[2], before[2], "c keeps its id");
    assert_ne!(after[1], before[1], "b is a new instance");
    if after[1].slot() == before[1].slot() {
        assert_ne!(after[1].generation(), before[1].generation(), "a reused slot has a new generation");
    }
    assert_eq!(ping(&mut shards, after[1]), Some(after[1]));
    assert_eq!(ping(&mut shards, before[1]), None, "the old id of b reaches nobody");
    let infos = children(&mut shards, sup);
    assert_eq!(infos.iter().map(|c| c.restarts).collect::<Vec<_>>(), [0, 1, 0]);
    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (3, 3, 1));
    assert_eq!(shards[0].agents(), 4);
    assert_eq!(shards[0].stats().counters.panics, 1);
    assert_accounted(&shards);
}

#[test]
fn one_for_all_stops_the_others_in_reverse_then_starts_all_in_order() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::OneForAll, &log))).unwrap();
    settle(&mut shards);
    let before = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, before[1], Job::Crash);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:c", "stop:a", "start:a", "start:b", "start:c"]));
    let after = running_ids(&mut shards, sup);
    for (i, (&new, &old)) in after.iter().zip(&before).enumerate() {
        assert_ne!(new, old, "child {i} is a new instance");
        assert_eq!(ping(&mut shards, old), None, "old id of child {i} is stale");
        assert_eq!(ping(&mut shards, new), Some(new));
    }
    let st = stats(&mut shards, sup);
    // One failure, one restart (it is what the intensity counts).
    assert_eq!((st.children, st.running, st.restarts), (3, 3, 1));
    assert_eq!(children(&mut shards, sup)[1].restarts, 1);
    assert_eq!(shards[0].agents(), 4);
    assert_accounted(&shards);
}

#[test]
fn rest_for_one_restarts_the_crashed_child_and_those_after_it() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::RestForOne, &log))).unwrap();
    settle(&mut shards);
    let before = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, before[1], Job::Crash);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:c", "start:b", "start:c"]));
    let after = running_ids(&mut shards, sup);
    assert_eq!(after[0], before[0], "a is untouched");
    assert_ne!(after[1], before[1]);
    assert_ne!(after[2], before[2]);
    assert_eq!(ping(&mut shards, before[2]), None);
    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (3, 3, 1));
    assert_accounted(&shards);
}

#[test]
fn rest_for_one_on_the_last_child_restarts_only_it() {
    let log = Log::default();
    let mut shards = cluster(1);
    let sup = shards[0].spawn(Supervisor::new(three(Strategy::RestForOne, &log))).unwrap();
    settle(&mut shards);
    let before = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, before[2], Job::Fail);
    settle(&mut shards);

    // A clean failure runs on_stop, then only c starts again.
    assert_eq!(log.take(), lines(&["stop:c", "start:c"]));
    let after = running_ids(&mut shards, sup);
    assert_eq!(&after[..2], &before[..2]);
    assert_ne!(after[2], before[2]);
    assert_accounted(&shards);
}
