//! Fault tests: deadline propagation to nested asks, and timers (firing, cancelling, pending
//! at halt, control timers).

use super::*;

// ---------------------------------------------------------------------------------------------
// 7. Deadline propagation.

#[test]
fn a_nested_ask_inherits_the_deadline_of_the_request_being_handled() {
    let mut shards = cluster(2);
    let j = Journal::default();
    let a = spawn_on(&mut shards, 0, j.probe());
    let b = spawn_on(&mut shards, 1, j.probe());
    let c = spawn_on(&mut shards, 0, j.probe());
    let timeout = Duration::from_millis(50);
    let ns = |d: Duration| d.as_nanos() as u64;
    let before = shards[0].shared.clock.now_ns();
    // a asks b (50 ms); b, handling it, asks c with a 10 s timeout.
    tell(&mut shards, a, Cmd::Ask { to: b, timeout, then: Then::Relay(c) });
    settle(&mut shards);
    let after = shards[0].shared.clock.now_ns();

    let b_log = j.of(b);
    let [Event::Requested(Some(b_deadline)), Event::Asked(b_ask), Event::Reply(answered, Ok(7))] = b_log[..] else {
        panic!("{b_log:?}")
    };
    assert_eq!(answered, b_ask);
    // b's request carries a's deadline: now + 50 ms, as a's shard saw now.
    assert!((before + ns(timeout)..=after + ns(timeout)).contains(&b_deadline), "{before} {b_deadline} {after}");
    // c's request carries the same deadline, not b's own now + 10 s.
    assert_eq!(j.of(c), [Event::Requested(Some(b_deadline))]);
    assert!(b_deadline < before + ns(PATIENT));
    let a_log = j.of(a);
    let [Event::Asked(a_ask), Event::Reply(answered, Ok(7))] = a_log[..] else { panic!("{a_log:?}") };
    assert_eq!(answered, a_ask);
    assert_accounted(&shards);
}

// ---------------------------------------------------------------------------------------------
// 8. Timers.

#[test]
fn a_timer_fires_after_its_delay_and_counts_as_sent_only_then() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let arming = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, 0, j.probe());
    let delay = Duration::from_millis(20);
    let start = Instant::now();
    tell(&mut shards, arming, Cmd::After { to: target, note: 1, delay, control: false });
    settle(&mut shards);

    let s = shards[0].stats();
    assert_eq!(j.of(target), [], "not before its delay");
    assert_eq!((s.timers, s.counters.timers_fired, s.counters.sent), (1, 0, 0), "{s:?}");
    assert_accounted(&shards);

    while j.of(target).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(5), "the timer never fired");
        std::thread::sleep(Duration::from_millis(1));
        settle(&mut shards);
    }
    assert!(start.elapsed() >= delay);
    let s = shards[0].stats();
    assert_eq!(j.of(target), [Event::Note(1)]);
    assert_eq!((s.timers, s.counters.timers_fired, s.counters.sent), (0, 1, 1), "{s:?}");
    assert_accounted(&shards);
}

#[test]
fn a_cancelled_timer_never_fires() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let arming = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, 0, j.probe());
    let delay = Duration::from_millis(2);
    tell(&mut shards, arming, Cmd::After { to: target, note: 1, delay, control: false });
    tell(&mut shards, arming, Cmd::CancelLastTimer);
    settle(&mut shards);
    // Pending once, then gone.
    assert_eq!(j.of(arming), [Event::Cancelled(true), Event::Cancelled(false)]);
    assert_eq!(shards[0].stats().timers, 0);

    std::thread::sleep(delay * 2);
    settle(&mut shards);
    assert_eq!(j.of(target), []);
    let k = shards[0].stats().counters;
    assert_eq!((k.timers_fired, k.sent, k.dead_letters_total()), (0, 0, 0), "{k:?}");
    assert_accounted(&shards);
}

#[test]
fn a_timer_pending_at_halt_is_a_shutdown_dead_letter() {
    let mut shards = cluster(1);
    let j = Journal::default();
    let arming = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, 0, j.probe());
    tell(&mut shards, arming, Cmd::After { to: target, note: 1, delay: Duration::from_secs(60), control: false });
    settle(&mut shards);
    assert_eq!(shards[0].stats().timers, 1);

    let last = shards[0].halt();
    assert_eq!(last.timers, 0);
    let k = last.counters;
    assert_eq!((k.timers_fired, k.sent, k.dead(DeadLetterReason::Shutdown)), (0, 1, 1), "{k:?}");
    assert_eq!(j.of(target), [Event::Stopped], "the note never arrived");
    assert_accounted(&shards);
}

#[test]
fn a_control_timer_overtakes_queued_normal_messages() {
    let mut shards = cluster(2);
    let j = Journal::default();
    let arming = spawn_on(&mut shards, 0, j.probe());
    let target = spawn_on(&mut shards, 1, j.probe());
    // The timer is due at once: it fires at the end of the pass, after the burst was staged,
    // and reaches the target's shard behind the burst's notes.
    tell(&mut shards, arming, Cmd::After { to: target, note: 100, delay: Duration::ZERO, control: true });
    tell(&mut shards, arming, Cmd::Burst { to: target, notes: 3, tracked: false, ask: false, control: None });
    settle(&mut shards);
    assert_eq!(j.of(target), [Event::Note(100), Event::Note(0), Event::Note(1), Event::Note(2)]);
    assert_eq!(shards[0].stats().counters.timers_fired, 1);
    assert_accounted(&shards);
}
