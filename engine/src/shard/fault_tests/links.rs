//! Fault tests: links (abnormal and normal exits, trapping, `noproc`, linked spawns, unlink).

use super::*;

// ---------------------------------------------------------------------------------------------
// 4. Links.

/// `a` (shard 0) links to `b` (shard `b_shard`); `watcher` (shard 0) watches both.
fn linked_pair(shards: &mut [Shard], j: &Journal, b_shard: usize) -> (AgentId, AgentId, AgentId) {
    let a = spawn_on(shards, 0, j.probe());
    let b = spawn_on(shards, b_shard, j.probe());
    let watcher = spawn_on(shards, 0, j.probe());
    tell(shards, a, Cmd::Link(b));
    tell(shards, watcher, Cmd::Watch(a));
    tell(shards, watcher, Cmd::Watch(b));
    settle(shards);
    assert_eq!(links(shards), 2, "one entry on each side");
    (a, b, watcher)
}

#[test]
fn an_abnormal_exit_stops_the_linked_agent_with_the_same_reason() {
    for b_shard in [0, 1] {
        // b panics: a, which linked to it, stops with b's reason (and runs its own `on_stop`).
        let mut shards = cluster(2);
        let j = Journal::default();
        let (a, b, watcher) = linked_pair(&mut shards, &j, b_shard);
        tell(&mut shards, b, Cmd::Panic("boom"));
        settle(&mut shards);
        assert_eq!(j.of(watcher), [down(b, panicked("boom")), down(a, panicked("boom"))], "b on shard {b_shard}");
        assert_eq!(j.of(a), [Event::Stopped]);
        assert_eq!(j.of(b), []);
        assert_eq!(links(&shards), 0);
        assert_eq!(shards[0].agents() + shards[1].agents(), 1);
        assert_accounted(&shards);

        // a fails: b, the agent it linked to, stops with a's reason.
        let mut shards = cluster(2);
        let j = Journal::default();
        let (a, b, watcher) = linked_pair(&mut shards, &j, b_shard);
        tell(&mut shards, a, Cmd::Fail("bad"));
        settle(&mut shards);
        let bad = ExitReason::failed("bad");
        assert_eq!(j.of(watcher), [down(a, bad.clone()), down(b, bad)], "b on shard {b_shard}");
        assert_eq!(j.of(b), [Event::Stopped]);
        assert_eq!(links(&shards), 0);
        assert_eq!(shards[0].agents() + shards[1].agents(), 1);
        assert_accounted(&shards);
    }
}

#[test]
fn a_normal_exit_does_not_stop_a_linked_agent() {
    for b_shard in [0, 1] {
        for a_quits in [false, true] {
            let mut shards = cluster(2);
            let j = Journal::default();
            let (a, b, watcher) = linked_pair(&mut shards, &j, b_shard);
            let (quitter, survivor) = if a_quits { (a, b) } else { (b, a) };
            tell(&mut shards, quitter, Cmd::StopSelf);
            settle(&mut shards);
            tell(&mut shards, survivor, Cmd::Note(1));
            settle(&mut shards);
            assert_eq!(j.of(watcher), [down(quitter, ExitReason::Normal)]);
            assert_eq!(j.of(survivor), [Event::Note(1)], "b on shard {b_shard}, a quits: {a_quits}");
            assert_eq!(links(&shards), 0, "the survivor's side of the link is gone too");
            assert_accounted(&shards);
        }
    }
}

#[test]
fn a_trapping_agent_gets_exits_and_survives() {
    for b_shard in [0, 1] {
        let mut shards = cluster(2);
        let j = Journal::default();
        let trapper = spawn_on(&mut shards, 0, j.probe().trapping());
        let panics = spawn_on(&mut shards, b_shard, j.probe());
        let fails = spawn_on(&mut shards, b_shard, j.probe());
        let quits = spawn_on(&mut shards, b_shard, j.probe());
        for other in [panics, fails, quits] {
            tell(&mut shards, trapper, Cmd::Link(other));
        }
        settle(&mut shards);
        assert_eq!(links(&shards), 6);

        tell(&mut shards, panics, Cmd::Panic("boom"));
        settle(&mut shards);
        tell(&mut shards, fails, Cmd::Fail("bad"));
        settle(&mut shards);
        tell(&mut shards, quits, Cmd::StopSelf);
        settle(&mut shards);
        tell(&mut shards, trapper, Cmd::Note(1));
        settle(&mut shards);

        assert_eq!(
            j.of(trapper),
            [
                exit(panics, panicked("boom")),
                exit(fails, ExitReason::failed("bad")),
                exit(quits, ExitReason::Normal),
                Event::Note(1),
            ],
            "others on shard {b_shard}"
        );
        assert_eq!(links(&shards), 0);
        assert_eq!(shards[0].agents() + shards[1].agents(), 1);
        assert_accounted(&shards);
    }
}

#[test]
fn linking_a_dead_agent_gives_an_exit_noproc() {
    for target_shard in [0, 1] {
        let mut shards = cluster(2);
        let j = Journal::default();
        let gone = dead_probe(&mut shards, &j, target_shard);
        let plain = spawn_on(&mut shards, 0, j.probe());
        let trapper = spawn_on(&mut shards, 0, j.probe().trapping());
        let watcher = spawn_on(&mut shards, 0, j.probe());
        tell(&mut shards, watcher, Cmd::Watch(plain));
        settle(&mut shards);
        tell(&mut shards, plain, Cmd::Link(gone));
        tell(&mut shards, trapper, Cmd::Link(gone));
        settle(&mut shards);

        // Without trapping, `NoProc` is abnormal: the agent stops with it.
        assert_eq!(j.of(plain), [Event::Stopped], "target on shard {target_shard}");
        assert_eq!(j.of(watcher), [down(plain, ExitReason::NoProc)]);
        // A trapping agent gets it and lives on.
        assert_eq!(j.of(trapper), [exit(gone, ExitReason::NoProc)]);
        assert_eq!(links(&shards), 0, "no half-link is left behind");
        assert_eq!(shards[0].agents(), 2);
        assert_accounted(&shards);
    }
}

#[test]
fn spawn_linked_children_reach_a_trapping_parent_and_die_with_their_parent() {
    for child_shard in [0, 1] {
        let placement = if child_shard == 0 { SpawnPlacement::Local } else { SpawnPlacement::Shard(1) };
        let mut shards = cluster(2);
        let j = Journal::default();

        // The child panics: its trapping parent gets the `Exit`.
        let parent = spawn_on(&mut shards, 0, j.probe().trapping());
        tell(&mut shards, parent, Cmd::SpawnLinked { placement, on_start: OnStart::Run });
        settle(&mut shards);
        let child = j.child_of(parent);
        assert_eq!(child.shard(), child_shard);
        assert_eq!(links(&shards), 2);
        tell(&mut shards, child, Cmd::Panic("child broke"));
        settle(&mut shards);
        assert_eq!(j.of(parent), [Event::Spawned(child), exit(child, panicked("child broke"))]);
        assert_eq!(links(&shards), 0);

        // The parent fails: its child stops with the parent's reason.
        let parent = spawn_on(&mut shards, 0, j.probe());
        let watcher = spawn_on(&mut shards, 0, j.probe());
        tell(&mut shards, parent, Cmd::SpawnLinked { placement, on_start: OnStart::Run });
        settle(&mut shards);
        let child = j.child_of(parent);
        tell(&mut shards, watcher, Cmd::Watch(child));
        settle(&mut shards);
        let agents_before = shards[child_shard].agents();
        tell(&mut shards, parent, Cmd::Fail("parent gave up"));
        settle(&mut shards);
        assert_eq!(j.of(child), [Event::Stopped], "child on shard {child_shard}");
        assert_eq!(j.of(watcher), [down(child, ExitReason::failed("parent gave up"))]);
        assert_eq!(shards[child_shard].agents(), agents_before - 1 - u64::from(child_shard == 0));
        assert_eq!(links(&shards), 0);
        assert_accounted(&shards);
    }
}

#[test]
fn a_child_that_panics_in_on_start_reports_the_panic_to_its_linked_parent() {
    for child_shard in [0, 1] {
        let placement = if child_shard == 0 { SpawnPlacement::Local } else { SpawnPlacement::Shard(1) };
        let mut shards = cluster(2);
        let j = Journal::default();
        let parent = spawn_on(&mut shards, 0, j.probe().trapping());
        tell(&mut shards, parent, Cmd::SpawnLinked { placement, on_start: OnStart::Panic("bad start") });
        settle(&mut shards);
        let child = j.child_of(parent);
        // "Linked to this agent from its first instant": the parent hears why the child died.
        // (From another shard the `Exit` may come before the spawn's answer.)
        let log = j.of(parent);
        assert_eq!(log.len(), 2, "{log:?}");
        assert!(log.contains(&exit(child, panicked("bad start"))), "child on shard {child_shard}: {log:?}");
        assert_eq!(links(&shards), 0);
    }
}

#[test]
fn a_child_that_stops_normally_in_on_start_leaves_its_linked_parent_running() {
    for child_shard in [0, 1] {
        let placement = if child_shard == 0 { SpawnPlacement::Local } else { SpawnPlacement::Shard(1) };
        let mut shards = cluster(2);
        let j = Journal::default();
        let parent = spawn_on(&mut shards, 0, j.probe());
        tell(&mut shards, parent, Cmd::SpawnLinked { placement, on_start: OnStart::StopSelf });
        settle(&mut shards);
        let child = j.child_of(parent);
        assert_eq!(j.of(child), [Event::Stopped]);
        // A normal exit does not travel along a link.
        assert_eq!(j.of(parent), [Event::Spawned(child)], "child on shard {child_shard}");
        assert_eq!(shards[0].agents(), 1, "child on shard {child_shard}");
        assert_eq!(links(&shards), 0);
    }
}

#[test]
fn a_remote_linked_child_that_dies_in_on_start_is_reported_even_when_its_exit_comes_first() {
    // A batch of 1: shard 0 takes the child's `Exit` and the spawn's answer in separate passes
    // (as a busy shard does when they straddle a batch), so the `Exit` is dispatched first.
    let mut shards = cluster_with(2, ShardLimits { batch: 1, ..ShardLimits::default() });
    let j = Journal::default();
    let parent = spawn_on(&mut shards, 0, j.probe().trapping());
    let placement = SpawnPlacement::Shard(1);
    tell(&mut shards, parent, Cmd::SpawnLinked { placement, on_start: OnStart::Panic("bad start") });
    settle(&mut shards);
    let child = j.child_of(parent);
    assert_eq!(shards[1].agents(), 0);
    assert_eq!(j.of(parent), [exit(child, panicked("bad start")), Event::Spawned(child)]);
    assert_eq!(links(&shards), 0, "the parent holds a link to its dead child");
}

#[test]
fn a_held_early_exit_from_another_agent_is_dropped_when_the_linked_spawn_answers() {
    // a is linked to b (shard 1), unlinks it and spawns a linked child on shard 1; b dies while
    // the spawn's answer is pending, so b's `Exit` reaches a unlinked and is held as a possible
    // early exit of the child. The answer names another agent: the held exit is dropped, a goes
    // on, linked to its live child.
    // A batch of 1 and a note ahead of them keep the `Unlink` and the spawn in shard 1's ring
    // while b dies (as in the test below).
    let mut shards = cluster_with(2, ShardLimits { batch: 1, ..ShardLimits::default() });
    let j = Journal::default();
    let a = spawn_on(&mut shards, 0, j.probe());
    let b = spawn_on(&mut shards, 1, j.probe());
    let other = spawn_on(&mut shards, 1, j.probe());
    tell(&mut shards, a, Cmd::Link(b));
    settle(&mut shards);
    tell(&mut shards, a, Cmd::Burst { to: other, notes: 1, tracked: false, ask: false, control: None });
    shards[0].pass();
    tell(&mut shards, a, Cmd::Unlink(b));
    tell(&mut shards, a, Cmd::SpawnLinked { placement: SpawnPlacement::Shard(1), on_start: OnStart::Run });
    shards[0].pass();
    shards[0].pass();
    assert_eq!(shards[0].link_on_reply.len(), 1, "the spawn is pending");
    tell(&mut shards, b, Cmd::Panic("boom"));
    shards[1].pass();
    assert_eq!(shards[1].agents(), 1, "b is gone and the child not spawned yet: only `other` lives");
    shards[0].pass();
    assert_eq!(
        shards[0].link_on_reply.values().map(|p| p.early_exits.len()).sum::<usize>(),
        1,
        "b's exit is held for the pending spawn"
    );
    settle(&mut shards);
    let child = j.child_of(a);
    assert_ne!(child, b);
    assert_eq!(shards[0].agents(), 1, "a was not stopped by b's exit");
    assert_eq!(j.of(a), [Event::Burst { queued: 1, full: 0 }, Event::Spawned(child)]);
    assert_eq!(links(&shards), 2, "a and its child are linked both ways");
    assert!(shards[0].link_on_reply.is_empty());
}

#[test]
fn an_exit_in_flight_after_unlink_does_not_stop_the_unlinking_agent() {
    // A batch of 1 makes shard 1 take one envelope per pass from each ring, so the `Unlink`
    // operation can wait behind a note while b dies: the race of two threads, made determinate.
    let mut shards = cluster_with(2, ShardLimits { batch: 1, ..ShardLimits::default() });
    let j = Journal::default();
    let a = spawn_on(&mut shards, 0, j.probe());
    let b = spawn_on(&mut shards, 1, j.probe());
    let other = spawn_on(&mut shards, 1, j.probe());
    tell(&mut shards, a, Cmd::Link(b));
    settle(&mut shards);
    assert_eq!(links(&shards), 2);

    tell(&mut shards, a, Cmd::Burst { to: other, notes: 1, tracked: false, ask: false, control: None });
    shards[0].pass();
    tell(&mut shards, a, Cmd::Unlink(b));
    shards[0].pass();
    assert_eq!(shards[0].stats().links, 0, "a's side of the link is gone");
    // b dies before its shard reads the `Unlink` (still in the ring behind the note).
    tell(&mut shards, b, Cmd::Panic("boom"));
    shards[1].pass();
    assert_eq!(shards[1].agents(), 1);
    settle(&mut shards);

    // a had unlinked before b died: b's end must not take a down.
    assert_eq!(j.of(a), [Event::Burst { queued: 1, full: 0 }], "a was stopped by a link it had removed");
    assert_eq!(shards[0].agents(), 1);
    assert_eq!(links(&shards), 0);
}

#[test]
fn an_early_exit_reaches_the_right_one_of_several_pending_linked_spawns() {
    // Eight linked spawns to shard 1 are pending at once; the first child dies in `on_start`,
    // so its `Exit` reaches the parent before any answer (a batch of 1 keeps them apart). The
    // exit was held by one pending spawn picked in hash-map order, seven times in eight the
    // wrong one, and the parent never heard of its dead child.
    let mut shards = cluster_with(2, ShardLimits { batch: 1, ..ShardLimits::default() });
    let j = Journal::default();
    let parent = spawn_on(&mut shards, 0, j.probe().trapping());
    let placement = SpawnPlacement::Shard(1);
    tell(&mut shards, parent, Cmd::SpawnLinked { placement, on_start: OnStart::Panic("bad start") });
    for _ in 0..7 {
        tell(&mut shards, parent, Cmd::SpawnLinked { placement, on_start: OnStart::Run });
    }
    // Shard 0 takes one envelope a pass: let it issue all eight spawns before shard 1 runs.
    for _ in 0..8 {
        shards[0].pass();
    }
    assert_eq!(shards[0].link_on_reply.len(), 8, "eight linked spawns pending");
    settle(&mut shards);
    let log = j.of(parent);
    let exits: Vec<&Event> = log.iter().filter(|e| matches!(e, Event::Exit(_))).collect();
    assert_eq!(exits.len(), 1, "the dead child's exit reached its parent: {log:?}");
    assert!(matches!(exits[0], Event::Exit(e) if e.reason == panicked("bad start")), "{log:?}");
    assert_eq!(shards[1].agents(), 7);
    assert!(shards[0].link_on_reply.is_empty(), "every pending spawn answered");
}
