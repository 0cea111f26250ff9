//! Supervisor tests: children placed on another shard (start order, restarts, `OneForAll`).

use super::*;

// ---------------------------------------------------------------------------------------------
// 10. Children on another shard
// ---------------------------------------------------------------------------------------------

#[test]
fn children_on_another_shard_start_in_order_and_restart_there() {
    let log = Log::default();
    let mut shards = cluster(2);
    let on1 = |label| worker(label, &log).placement(SpawnPlacement::Shard(1));
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(on1("a")).child(on1("b")).child(on1("c"));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["start:a", "start:b", "start:c"]));
    let before = running_ids(&mut shards, sup);
    assert!(before.iter().all(|id| id.shard() == 1), "{before:?}");
    assert_eq!((shards[0].agents(), shards[1].agents()), (1, 3));

    send(&mut shards, before[1], Job::Crash);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["start:b"]));
    let after = running_ids(&mut shards, sup);
    assert_eq!((after[0], after[2]), (before[0], before[2]));
    assert_ne!(after[1], before[1]);
    assert_eq!(after[1].shard(), 1);
    assert_eq!(ping(&mut shards, after[1]), Some(after[1]));
    assert_eq!(ping(&mut shards, before[1]), None);
    assert_eq!(shards[1].stats().counters.panics, 1);
    assert_eq!(stats(&mut shards, sup).restarts, 1);
    assert_accounted(&shards);
}

#[test]
fn one_for_all_with_children_on_another_shard_keeps_the_order() {
    let log = Log::default();
    let mut shards = cluster(2);
    let on1 = |label| worker(label, &log).placement(SpawnPlacement::Shard(1));
    let spec = SupervisorSpec::new(Strategy::OneForAll).child(on1("a")).child(on1("b")).child(on1("c"));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let before = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, before[0], Job::Fail);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:a", "stop:c", "stop:b", "start:a", "start:b", "start:c"]));
    let after = running_ids(&mut shards, sup);
    assert!(after.iter().all(|id| id.shard() == 1 && !before.contains(id)), "{after:?}");
    assert_eq!(shards[1].agents(), 3);
    assert_accounted(&shards);
}
