//! Fault tests: the control lane (passes full mailboxes, runs first) and load shedding.

use super::*;

// ---------------------------------------------------------------------------------------------
// 5. The control lane.

#[test]
fn a_control_message_passes_a_full_mailbox_and_runs_first() {
    let mut shards = cluster_with(1, ShardLimits { mailbox_capacity: 4, ..ShardLimits::default() });
    let j = Journal::default();
    let sender = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, 0, j.probe());
    tell(&mut shards, sender, Cmd::Burst { to: target, notes: 6, tracked: false, ask: false, control: Some(100) });
    settle(&mut shards);

    // 4 fit, 2 come back `Full`; the control note is taken anyway.
    assert_eq!(j.of(sender), [Event::Burst { queued: 4, full: 2 }, Event::ControlSent(true)]);
    assert_eq!(
        j.of(target),
        [Event::Note(100), Event::Note(0), Event::Note(1), Event::Note(2), Event::Note(3)],
        "the control note runs before the queued ones"
    );
    let k = shards[0].stats().counters;
    assert_eq!((k.rejected_full, k.control_dispatched, k.delivered), (2, 1, 6), "{k:?}");
    assert_accounted(&shards);
}

#[test]
fn a_control_message_from_another_shard_runs_before_queued_normal_ones() {
    let mut shards = cluster_with(2, ShardLimits { mailbox_capacity: 4, ..ShardLimits::default() });
    let j = Journal::default();
    let sender = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, 1, j.probe());
    tell(&mut shards, sender, Cmd::Burst { to: target, notes: 6, tracked: false, ask: false, control: Some(100) });
    settle(&mut shards);

    // Remote sends are all taken; the receiving shard keeps 4 and counts 2 as mailbox_full.
    assert_eq!(j.of(sender), [Event::Burst { queued: 6, full: 0 }, Event::ControlSent(true)]);
    assert_eq!(
        j.of(target),
        [Event::Note(100), Event::Note(0), Event::Note(1), Event::Note(2), Event::Note(3)],
        "the control note came last through the ring and ran first"
    );
    let k1 = shards[1].stats().counters;
    assert_eq!((k1.dead(DeadLetterReason::MailboxFull), k1.control_dispatched), (2, 1), "{k1:?}");
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 6. Load shedding.

/// One sender bursts 6 tracked notes, one ask and one control note at a target on
/// `target_shard`, whose shard sheds at a depth of 4, and checks what was shed.
fn shedding_case(target_shard: usize) {
    let mut shards = cluster_with(2, ShardLimits { shed_queue_depth: 4, ..ShardLimits::default() });
    let j = Journal::default();
    let sender = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, target_shard, j.probe());
    tell(&mut shards, sender, Cmd::Burst { to: target, notes: 6, tracked: true, ask: true, control: Some(100) });
    settle(&mut shards);

    // Notes 0..4 fill the shard to its depth; notes 4 and 5 and the ask are shed; the control
    // note gets through (and runs first).
    let log = j.of(sender);
    let Event::Asked(ask) = log[1] else { panic!("{log:?}") };
    let shed = DeadLetterReason::Shed;
    assert_eq!(
        log,
        [
            Event::Burst { queued: 6, full: 0 },
            Event::Asked(ask),
            Event::ControlSent(true),
            Event::Reply(ask, Err(AskError::Undelivered(shed))),
            Event::Undelivered(target, shed),
            Event::Undelivered(target, shed),
        ],
        "target on shard {target_shard}"
    );
    assert_eq!(
        j.of(target),
        [Event::Note(100), Event::Note(0), Event::Note(1), Event::Note(2), Event::Note(3)],
        "target on shard {target_shard}"
    );
    let k = shards[target_shard].stats().counters;
    assert_eq!(k.dead(shed), 3, "{k:?}");
    assert_eq!(k.dead_letters_total(), 3, "{k:?}");
    assert_eq!(shards[0].stats().counters.ask_timeouts, 0);
    // Once drained, the shard stops shedding.
    assert!(!shards[target_shard].stats().shedding);
    assert_accounted(&shards);
}

#[test]
fn an_overloaded_shard_sheds_normal_messages_but_not_control_ones() {
    shedding_case(0);
}

#[test]
fn a_shard_sheds_messages_from_other_shards_and_tells_their_senders() {
    shedding_case(1);
}

#[test]
fn host_messages_are_shed_past_the_queue_depth() {
    let mut shards = cluster_with(1, ShardLimits { shed_queue_depth: 3, ..ShardLimits::default() });
    let j = Journal::default();
    let target = spawn_on(&mut shards, 0, j.probe());
    for n in 0..5 {
        tell(&mut shards, target, Cmd::Note(n));
    }
    settle(&mut shards);
    assert_eq!(j.of(target), [Event::Note(0), Event::Note(1), Event::Note(2)]);
    assert_eq!(shards[0].stats().counters.dead(DeadLetterReason::Shed), 2);
    assert_accounted(&shards);
}
