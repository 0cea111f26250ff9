//! Supervisor tests: named children (the name follows restarts across shards, a name already
//! taken).

use super::*;

// ---------------------------------------------------------------------------------------------
// 11. Named children
// ---------------------------------------------------------------------------------------------

/// A named child on `child_shard`, its name owned by `name_owner`, in a 2-shard cluster with the
/// supervisor on shard 0: the name follows the child across a restart.
fn named_child_follows_its_restarts(child_shard: usize, name_owner: usize) {
    let log = Log::default();
    let mut shards = cluster(2);
    let name = name_owned_by("worker-x", name_owner, 2);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("x", &log).name(name.as_str()).placement(SpawnPlacement::Shard(child_shard)));
    spec.validate().unwrap();
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);

    let infos = children(&mut shards, sup);
    assert_eq!(infos[0].name.as_deref(), Some(name.as_str()));
    let first = infos[0].agent.expect("running");
    assert_eq!(first.shard(), child_shard);
    assert_eq!(shards[name_owner].registry.lookup(&name), Some(first));
    assert_eq!(shards[1 - name_owner].registry.lookup(&name), None);

    send(&mut shards, first, Job::Crash);
    settle(&mut shards);
    let second = running_ids(&mut shards, sup)[0];
    assert_ne!(second, first);
    assert_eq!(second.shard(), child_shard);
    assert_eq!(shards[name_owner].registry.lookup(&name), Some(second), "the name maps to the new instance");

    // A clean failure too (the old instance's name removal races the new registration).
    send(&mut shards, second, Job::Fail);
    settle(&mut shards);
    let third = running_ids(&mut shards, sup)[0];
    assert_ne!(third, second);
    assert_eq!(shards[name_owner].registry.lookup(&name), Some(third));
    assert_eq!(shards[0].registry.len() + shards[1].registry.len(), 1);
    let st = stats(&mut shards, sup);
    assert_eq!((st.running, st.restarts, st.start_failures), (1, 2, 0));
    assert_eq!(log.take(), lines(&["start:x", "start:x", "stop:x", "start:x"]));

    // Shutting down removes the name.
    post(&mut shards[0], sup, SupervisorMsg::Shutdown);
    settle(&mut shards);
    assert_eq!(shards[name_owner].registry.lookup(&name), None);
    assert_eq!(shards[0].agents() + shards[1].agents(), 0);
    assert_accounted(&shards);
}

#[test]
fn named_child_here_with_its_name_owned_here() {
    named_child_follows_its_restarts(0, 0);
}

#[test]
fn named_child_here_with_its_name_owned_by_another_shard() {
    named_child_follows_its_restarts(0, 1);
}

#[test]
fn named_child_on_another_shard_that_owns_its_name() {
    named_child_follows_its_restarts(1, 1);
}

#[test]
fn named_child_on_another_shard_with_its_name_owned_by_the_supervisors_shard() {
    named_child_follows_its_restarts(1, 0);
}

#[test]
fn named_children_under_one_for_all_are_renamed_after_the_restart() {
    let log = Log::default();
    let mut shards = cluster(2);
    let n0 = name_owned_by("nx", 0, 2);
    let n1 = name_owned_by("ny", 1, 2);
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .child(worker("a", &log).name(n0.as_str()))
        .child(worker("b", &log).name(n1.as_str()).placement(SpawnPlacement::Shard(1)));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let before = running_ids(&mut shards, sup);
    assert_eq!(shards[0].registry.lookup(&n0), Some(before[0]));
    assert_eq!(shards[1].registry.lookup(&n1), Some(before[1]));

    send(&mut shards, before[0], Job::Crash);
    settle(&mut shards);

    let after = running_ids(&mut shards, sup);
    assert!(after[0] != before[0] && after[1] != before[1]);
    assert_eq!(shards[0].registry.lookup(&n0), Some(after[0]));
    assert_eq!(shards[1].registry.lookup(&n1), Some(after[1]));
    assert_eq!(log.take(), lines(&["start:a", "start:b", "stop:b", "start:a", "start:b"]));
    assert_eq!(stats(&mut shards, sup).start_failures, 0);
    assert_accounted(&shards);
}

#[test]
fn a_named_child_whose_name_is_taken_fails_to_start_until_the_supervisor_gives_up() {
    let log = Log::default();
    let mut shards = cluster(1);
    // Someone else holds the name.
    let squatter = shards[0].spawn(Stopper).unwrap();
    shards[0].registry.register("taken", squatter.id()).unwrap();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(2, Duration::from_secs(1))
        .child(worker("a", &log))
        .child(worker("n", &log).name("taken"));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);

    // Each instance of n is stopped for want of its name; the third failure escalates.
    assert_eq!(
        log.take(),
        lines(&["start:a", "start:n", "stop:n", "start:n", "stop:n", "start:n", "stop:n", "stop:a"])
    );
    assert_eq!(
        *downs.lock().unwrap(),
        [Down { id: sup.id(), reason: ExitReason::failed("restart intensity reached") }]
    );
    assert_eq!(shards[0].registry.lookup("taken"), Some(squatter.id()), "the holder keeps its name");
    assert_eq!(shards[0].agents(), 2, "the squatter and the watcher");
    assert_accounted(&shards);
}

/// `Supervisor::started` says "a child that cannot hold its name is stopped; its exit restarts
/// it": a start that fails for want of the name is a failed start, whatever the restart type.
#[test]
fn a_transient_named_child_whose_name_is_taken_is_restarted_like_a_failed_start() {
    let log = Log::default();
    let mut shards = cluster(1);
    let squatter = shards[0].spawn(Stopper).unwrap();
    shards[0].registry.register("taken", squatter.id()).unwrap();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(2, Duration::from_secs(1))
        .child(worker("a", &log))
        .child(worker("n", &log).name("taken").restart(Restart::Transient));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);

    assert_eq!(
        log.take(),
        lines(&["start:a", "start:n", "stop:n", "start:n", "stop:n", "start:n", "stop:n", "stop:a"])
    );
    assert_eq!(
        *downs.lock().unwrap(),
        [Down { id: sup.id(), reason: ExitReason::failed("restart intensity reached") }]
    );
    assert_accounted(&shards);
}
