//! Supervisor tests: backoff between restarts (delay, doubling, under `OneForAll`).

use super::*;

// ---------------------------------------------------------------------------------------------
// 8. Backoff
// ---------------------------------------------------------------------------------------------

#[test]
fn backoff_delays_the_restart() {
    let log = Log::default();
    let mut shards = cluster(1);
    let min = Duration::from_millis(20);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .backoff(Backoff { min, max: Duration::from_millis(100), jitter: 0.0 })
        .child(worker("a", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let a = running_ids(&mut shards, sup)[0];
    log.take();

    let crashed_at = Instant::now();
    send(&mut shards, a, Job::Crash);
    settle(&mut shards);
    for _ in 0..10 {
        shards[0].pass();
    }
    if crashed_at.elapsed() < min {
        assert_eq!(log.take(), Vec::<String>::new(), "restarted before the backoff");
        let st = stats(&mut shards, sup);
        assert_eq!((st.children, st.running, st.restarts), (1, 0, 1), "counted, not yet running");
        assert_eq!(children(&mut shards, sup)[0].agent, None);
    }

    let restarted = settle_until(&mut shards, Duration::from_millis(45), |_| !log.0.lock().unwrap().is_empty());
    assert!(restarted, "not restarted after the backoff");
    assert!(crashed_at.elapsed() >= min, "restarted after {:?}", crashed_at.elapsed());
    assert_eq!(log.take(), lines(&["start:a"]));
    let again = running_ids(&mut shards, sup)[0];
    assert_ne!(again, a);
    assert_accounted(&shards);
}

#[test]
fn backoff_doubles_for_each_restart_within_the_period() {
    let log = Log::default();
    let mut shards = cluster(1);
    let min = Duration::from_millis(4);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(1))
        .backoff(Backoff { min, max: Duration::from_millis(100), jitter: 0.0 })
        .child(worker("a", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    log.take();

    for (round, wait) in [(1u32, min), (2, min * 2), (3, min * 4)] {
        let a = running_ids(&mut shards, sup)[0];
        let crashed_at = Instant::now();
        send(&mut shards, a, Job::Crash);
        let restarted = settle_until(&mut shards, Duration::from_millis(40), |_| !log.0.lock().unwrap().is_empty());
        assert!(restarted, "restart {round} never came");
        assert!(crashed_at.elapsed() >= wait, "restart {round} after {:?}, expected >= {wait:?}", crashed_at.elapsed());
        assert_eq!(log.take(), lines(&["start:a"]));
    }
    assert_eq!(stats(&mut shards, sup).restarts, 3);
    assert_accounted(&shards);
}

#[test]
fn backoff_under_one_for_all_stops_at_once_and_starts_after_the_delay() {
    let log = Log::default();
    let mut shards = cluster(1);
    let min = Duration::from_millis(15);
    let spec = three(Strategy::OneForAll, &log).backoff(Backoff { min, max: min, jitter: 0.0 });
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let before = running_ids(&mut shards, sup);
    log.take();

    let crashed_at = Instant::now();
    send(&mut shards, before[1], Job::Crash);
    settle(&mut shards);
    if crashed_at.elapsed() < min {
        assert_eq!(log.take(), lines(&["stop:c", "stop:a"]), "the stops do not wait for the backoff");
        assert_eq!(stats(&mut shards, sup).running, 0);
    }

    let restarted = settle_until(&mut shards, Duration::from_millis(40), |_| log.0.lock().unwrap().len() >= 3);
    assert!(restarted, "not restarted after the backoff");
    assert!(crashed_at.elapsed() >= min, "restarted after {:?}", crashed_at.elapsed());
    assert_eq!(log.take(), lines(&["start:a", "start:b", "start:c"]));
    let after = running_ids(&mut shards, sup);
    assert!(after.iter().all(|id| !before.contains(id)), "{after:?}");
    assert_accounted(&shards);
}
