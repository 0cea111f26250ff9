//! Fault tests: panic isolation (the panicking agent stops, its neighbours keep working) and
//! asks that cannot be answered failing at once.

use super::*;

// ---------------------------------------------------------------------------------------------
// 1. Panic isolation.

#[test]
fn a_panicking_handler_stops_its_agent_and_its_message_is_a_panicked_dead_letter() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let victim = spawn_on(&mut shards, 0, j.probe());
    tell(&mut shards, victim, Cmd::Note(1));
    tell(&mut shards, victim, Cmd::Panic("boom"));
    tell(&mut shards, victim, Cmd::Note(2));
    settle(&mut shards);

    assert_eq!(shards[0].agents(), 0);
    let k = shards[0].stats().counters;
    assert_eq!((k.panics, k.stopped), (1, 1), "{k:?}");
    // Only the note before the panic was delivered; the panicking message is not.
    assert_eq!(k.delivered, 1, "{k:?}");
    assert_eq!(k.dead(DeadLetterReason::Panicked), 1, "{k:?}");
    // The note queued behind the panic went down with the agent.
    assert_eq!(k.dead(DeadLetterReason::Stopped), 1, "{k:?}");
    assert_eq!(k.dead_letters_total(), 2, "{k:?}");
    // No `Stopped` event: `on_stop` is not run after a panic.
    assert_eq!(j.of(victim), [Event::Note(1)]);
    assert_accounted(&shards);
}

#[test]
fn a_panicked_agent_is_gone_and_its_neighbours_keep_working() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let victim = spawn_on(&mut shards, 0, j.probe());
    let neighbour = spawn_on(&mut shards, 0, j.probe());
    tell(&mut shards, victim, Cmd::Panic("boom"));
    tell(&mut shards, neighbour, Cmd::Note(1));
    settle(&mut shards);
    assert_eq!(shards[0].agents(), 1);

    tell(&mut shards, victim, Cmd::Note(2));
    tell(&mut shards, neighbour, Cmd::Note(3));
    settle(&mut shards);
    // The freed slot is reused with a new generation: the old id still reaches nobody.
    let newcomer = spawn_on(&mut shards, 0, j.probe());
    assert_eq!(newcomer.slot(), victim.slot());
    assert_ne!(newcomer.generation(), victim.generation());
    tell(&mut shards, victim, Cmd::Note(4));
    settle(&mut shards);

    let k = shards[0].stats().counters;
    assert_eq!((k.dead(DeadLetterReason::Stopped), k.dead(DeadLetterReason::StaleGeneration)), (1, 1), "{k:?}");
    assert_eq!(k.panics, 1);
    assert_eq!(j.of(neighbour), [Event::Note(1), Event::Note(3)]);
    assert_eq!(j.of(newcomer), []);
    assert_eq!(j.of(victim), []);
    assert_eq!(shards[0].agents(), 2);
    assert_accounted(&shards);
}

#[test]
fn on_stop_runs_after_a_stop_but_not_after_a_panic() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let quitter = spawn_on(&mut shards, 0, j.probe());
    let stopped = spawn_on(&mut shards, 0, j.probe());
    let stopper = spawn_on(&mut shards, 0, j.probe());
    let failing = spawn_on(&mut shards, 0, j.probe());
    let panicking = spawn_on(&mut shards, 0, j.probe());
    tell(&mut shards, quitter, Cmd::StopSelf);
    tell(&mut shards, stopper, Cmd::Stop(stopped));
    tell(&mut shards, failing, Cmd::Fail("bad"));
    tell(&mut shards, panicking, Cmd::Panic("boom"));
    settle(&mut shards);

    assert_eq!(j.of(quitter), [Event::Stopped]);
    assert_eq!(j.of(stopped), [Event::Stopped]);
    assert_eq!(j.of(failing), [Event::Stopped]);
    assert_eq!(j.of(panicking), []);
    assert_eq!(j.of(stopper), []);
    assert_eq!(shards[0].agents(), 1);
    let k = shards[0].stats().counters;
    assert_eq!((k.stopped, k.panics), (4, 1), "{k:?}");
    assert_accounted(&shards);
}

#[test]
fn a_panic_in_on_start_stops_the_agent() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let bystander = spawn_on(&mut shards, 0, j.probe());
    // The spawn itself succeeds: the agent dies in its first instant.
    let broken = spawn_on(&mut shards, 0, j.probe().panicking_on_start("bad start"));
    assert_eq!(shards[0].agents(), 1);
    let k = shards[0].stats().counters;
    assert_eq!((k.spawned, k.stopped, k.panics), (2, 1, 1), "{k:?}");

    tell(&mut shards, broken, Cmd::Note(1));
    tell(&mut shards, bystander, Cmd::Note(2));
    settle(&mut shards);
    assert_eq!(shards[0].stats().counters.dead(DeadLetterReason::Stopped), 1);
    // Its `on_stop` did not run.
    assert_eq!(j.of(broken), []);
    assert_eq!(j.of(bystander), [Event::Note(2)]);
    assert_accounted(&shards);
}

#[test]
fn watchers_see_the_panic_message_as_the_exit_reason() {
    let mut shards = cluster(2);
    let j = Journal::default();
    let victim = spawn_on(&mut shards, 0, j.probe());
    let near = spawn_on(&mut shards, 0, j.probe());
    let far = spawn_on(&mut shards, 1, j.probe());
    tell(&mut shards, near, Cmd::Watch(victim));
    tell(&mut shards, far, Cmd::Watch(victim));
    settle(&mut shards);
    assert_eq!(shards[0].stats().watches, 2);

    tell(&mut shards, victim, Cmd::Panic("boom: the disk is on fire"));
    settle(&mut shards);
    let expected = [down(victim, panicked("boom: the disk is on fire"))];
    assert_eq!(j.of(near), expected);
    assert_eq!(j.of(far), expected);
    assert_eq!(shards[0].stats().watches, 0);
    assert_eq!(shards[0].stats().counters.signals_sent, 2);
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 2. Asks that cannot be answered fail at once.

#[test]
fn an_ask_whose_handler_panics_fails_at_once_with_panicked() {
    for (target_shard, max_rounds) in [(0, 1), (1, 2)] {
        let mut shards = cluster(2);
        let j = Journal::default();
        let asker = spawn_on(&mut shards, 0, j.probe());
        let target = spawn_on(&mut shards, target_shard, j.probe());
        tell(&mut shards, asker, Cmd::Ask { to: target, timeout: PATIENT, then: Then::Panic });
        // One round to ask and fail here, two when the failure crosses the mesh back.
        let rounds = rounds_until(&mut shards, 10, || j.of(asker).len() == 2);
        assert!(rounds <= max_rounds, "took {rounds} rounds (target on shard {target_shard})");

        let log = j.of(asker);
        let Event::Asked(id) = log[0] else { panic!("{log:?}") };
        assert_eq!(log[1], Event::Reply(id, Err(AskError::Undelivered(DeadLetterReason::Panicked))));
        assert_eq!(j.of(target).len(), 1, "the target got the request, then panicked");
        let k0 = shards[0].stats();
        assert_eq!((k0.pending_asks, k0.counters.ask_timeouts), (0, 0));
        let k = shards[target_shard].stats().counters;
        assert_eq!((k.panics, k.dead(DeadLetterReason::Panicked)), (1, 1), "{k:?}");
        settle(&mut shards);
        assert_accounted(&shards);
    }
}

#[test]
fn an_ask_queued_behind_a_panic_fails_at_once_with_stopped() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let asker = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, 0, j.probe());
    // The asker runs first and queues its request behind the panic.
    tell(&mut shards, asker, Cmd::Ask { to: target, timeout: PATIENT, then: Then::Answer });
    tell(&mut shards, target, Cmd::Panic("boom"));
    rounds_until(&mut shards, 1, || j.of(asker).len() == 2);

    let log = j.of(asker);
    let Event::Asked(id) = log[0] else { panic!("{log:?}") };
    assert_eq!(log[1], Event::Reply(id, Err(AskError::Undelivered(DeadLetterReason::Stopped))));
    let k = shards[0].stats().counters;
    assert_eq!((k.dead(DeadLetterReason::Panicked), k.dead(DeadLetterReason::Stopped)), (1, 1), "{k:?}");
    assert_eq!(k.ask_timeouts, 0);
    assert_accounted(&shards);
}

#[test]
fn an_ask_to_a_stopped_agent_fails_at_once_with_stopped() {
    for (target_shard, max_rounds) in [(0, 1), (1, 2)] {
        let mut shards = cluster(2);
        let j = Journal::default();
        let asker = spawn_on(&mut shards, 0, j.probe());
        let gone = dead_probe(&mut shards, &j, target_shard);
        tell(&mut shards, asker, Cmd::Ask { to: gone, timeout: PATIENT, then: Then::Answer });
        let rounds = rounds_until(&mut shards, 10, || j.of(asker).len() == 2);
        assert!(rounds <= max_rounds, "took {rounds} rounds (target on shard {target_shard})");

        let log = j.of(asker);
        let Event::Asked(id) = log[0] else { panic!("{log:?}") };
        assert_eq!(log[1], Event::Reply(id, Err(AskError::Undelivered(DeadLetterReason::Stopped))));
        let k0 = shards[0].stats();
        assert_eq!((k0.pending_asks, k0.counters.ask_timeouts), (0, 0));
        assert_eq!(totals(&shards).dead(DeadLetterReason::Stopped), 1);
        assert_accounted(&shards);
    }
}
