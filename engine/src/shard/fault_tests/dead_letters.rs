//! Fault tests: the dead-letter subscriber (sampling, panicked messages).

use super::*;

// ---------------------------------------------------------------------------------------------
// 9. The dead-letter subscriber.

#[test]
fn the_dead_letter_subscriber_gets_one_notice_in_every_n() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let subscriber = spawn_on(&mut shards, 0, DeadLetterSubscriber { journal: j.clone() });
    let sender = spawn_on(&mut shards, 0, j.probe());
    let gone = dead_probe(&mut shards, &j, 0);
    shards[0].dead_letter_sink = Some(DeadLetterSink::new(subscriber, 2));
    tell(&mut shards, sender, Cmd::Burst { to: gone, notes: 10, tracked: false, ask: false, control: None });
    settle(&mut shards);

    let notice = Event::DeadLetter(DeadLetter {
        to: gone,
        from: Some(sender),
        reason: DeadLetterReason::Stopped,
        message_type: std::any::type_name::<Cmd>(),
        shard: 0,
    });
    assert_eq!(j.of(subscriber), vec![notice; 5]);
    let k = shards[0].stats().counters;
    assert_eq!(k.dead_letter_notices, 5, "{k:?}");
    assert_eq!(k.dead(DeadLetterReason::Stopped), 10, "{k:?}");
    // Notices are not messages of the accounting: only `StopSelf` and the burst were delivered.
    assert_eq!((k.sent, k.delivered), (10, 2), "{k:?}");
    assert_accounted(&shards);
}

#[test]
fn a_panicked_message_is_reported_to_the_dead_letter_subscriber() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let subscriber = spawn_on(&mut shards, 0, DeadLetterSubscriber { journal: j.clone() });
    let victim = spawn_on(&mut shards, 0, j.probe());
    shards[0].dead_letter_sink = Some(DeadLetterSink::new(subscriber, 1));
    tell(&mut shards, victim, Cmd::Panic("boom"));
    settle(&mut shards);

    let k = shards[0].stats().counters;
    assert_eq!(k.dead(DeadLetterReason::Panicked), 1, "{k:?}");
    assert_eq!(k.dead_letter_notices, 1, "every counted dead letter is sampled: {k:?}");
    assert_eq!(
        j.of(subscriber),
        [Event::DeadLetter(DeadLetter {
            to: victim,
            from: None,
            reason: DeadLetterReason::Panicked,
            message_type: std::any::type_name::<Cmd>(),
            shard: 0,
        })]
    );
}
