//! Graceful shutdown accounts for every message: sent = delivered + dead letters, by reason,
//! whether the engine drains completely or is stopped in the middle of endless traffic.

use nexus_engine::agent::SpawnPlacement;
use nexus_engine::builtin::{Counter, CounterMsg, PingPong, PingPongMsg};
use nexus_engine::engine::Engine;
use nexus_engine::metrics::DeadLetterReason;
use nexus_engine::shard::ExecutorKind;
use std::time::Duration;

#[test]
fn shutdown_during_endless_traffic_counts_everything() {
    for executor in [ExecutorKind::Threads, ExecutorKind::Glommio] {
        let engine = Engine::builder()
            .shards(2)
            .oversubscribe(true)
            .executor(executor)
            .pin_threads(false)
            .drain_timeout(Duration::from_millis(50))
            .build()
            .unwrap();
        let h = engine.handle();
        // Endless cross-shard ping-pong with many balls in flight: never quiescent.
        let mut host_sent = 0;
        for _ in 0..4 {
            let a = h.spawn(SpawnPlacement::Shard(0), PingPong::default).unwrap();
            let b = h.spawn(SpawnPlacement::Shard(1), PingPong::default).unwrap();
            h.send(a, PingPongMsg::Partner(b)).unwrap();
            h.send(b, PingPongMsg::Partner(a)).unwrap();
            h.send(a, PingPongMsg::Serve(64)).unwrap();
            host_sent += 3;
        }
        // Host traffic too, some of it to an agent that is gone.
        let c = h.spawn(SpawnPlacement::Shard(1), Counter::default).unwrap();
        for _ in 0..10_000 {
            if h.send(c, CounterMsg::Add(1)).is_ok() {
                host_sent += 1;
            }
        }
        h.stop(c.id()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let report = engine.shutdown().unwrap();
        let t = report.stats.totals();
        assert!(!report.drained, "ping-pong never drains: {executor:?} {:?}", report.stats.totals());
        assert!(t.delivered > 1_000, "{t:?}");
        assert!(t.dead(DeadLetterReason::Shutdown) > 0, "balls in flight at halt are counted: {t:?}");
        assert_eq!(report.stats.host_sent, host_sent);
        assert_eq!(t.sent, t.delivered + t.dead_letters_total(), "{executor:?}: {t:?}");
        // After shutdown the handle refuses work with a typed error.
        assert!(h.send(c, CounterMsg::Add(1)).is_err());
    }
}

#[test]
fn shutdown_of_a_quiet_engine_drains_completely() {
    let engine = Engine::builder()
        .shards(2)
        .oversubscribe(true)
        .executor(ExecutorKind::Threads)
        .pin_threads(false)
        .build()
        .unwrap();
    let h = engine.handle();
    let c = h.spawn(SpawnPlacement::Shard(1), Counter::default).unwrap();
    for _ in 0..1000 {
        while h.send(c, CounterMsg::Add(1)).is_err() {
            std::thread::yield_now();
        }
    }
    let report = engine.shutdown().unwrap();
    let t = report.stats.totals();
    assert!(report.drained);
    assert_eq!((t.sent, t.delivered, t.dead_letters_total()), (1000, 1000, 0), "{t:?}");
}
