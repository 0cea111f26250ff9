//! A two-shard engine on the threads executor, end to end: host sends and asks across shards,
//! agents volleying across the mesh, a host that sends faster than a shard drains (timed send),
//! and a shutdown that accounts for every message.
//!
//! This is the engine test `.ci/run` runs under ThreadSanitizer (with the lap ring, the mesh and
//! the doorbell unit tests). It uses the threads executor because TSan cannot see the
//! happens-before that glommio's cross-thread task wake-ups get from io_uring and eventfd
//! syscalls, and reports races inside glommio's task code; everything here is Nexus's own code.

use nexus_engine::agent::SpawnPlacement;
use nexus_engine::builtin::{Counter, CounterMsg, Echo, EchoMsg, PingPong, PingPongMsg};
use nexus_engine::engine::Engine;
use nexus_engine::shard::ExecutorKind;
use std::time::{Duration, Instant};

const ASK: Duration = Duration::from_secs(20);

#[test]
fn two_threads_shards_exchange_messages_and_shut_down_accounted() {
    let engine = Engine::builder()
        .shards(2)
        .oversubscribe(true)
        .executor(ExecutorKind::Threads)
        .pin_threads(false)
        .build()
        .expect("engine starts");
    let h = engine.handle();

    // Host traffic to both shards.
    let echo = h.spawn(SpawnPlacement::Shard(1), Echo::default).unwrap();
    let counter = h.spawn(SpawnPlacement::Shard(0), Counter::default).unwrap();
    for i in 0..200 {
        assert_eq!(h.ask(echo, ASK, |reply| EchoMsg::Echo { value: i, reply }).unwrap(), i);
        h.send(counter, CounterMsg::Add(1)).unwrap();
    }
    assert_eq!(h.ask(counter, ASK, CounterMsg::Get).unwrap(), 200);

    // Agents volleying across the mesh: every ball crosses a ring.
    let a = h.spawn(SpawnPlacement::Shard(0), PingPong::default).unwrap();
    let b = h.spawn(SpawnPlacement::Shard(1), PingPong::default).unwrap();
    h.send(a, PingPongMsg::Partner(b)).unwrap();
    h.send(b, PingPongMsg::Partner(a)).unwrap();
    h.send(a, PingPongMsg::Serve(8)).unwrap();
    let deadline = Instant::now() + ASK;
    while h.ask(b, ASK, PingPongMsg::Hits).unwrap() < 20_000 {
        assert!(Instant::now() < deadline, "the volley stalled");
        std::thread::sleep(Duration::from_millis(1));
    }
    h.send(a, PingPongMsg::Halt).unwrap();
    h.send(b, PingPongMsg::Halt).unwrap();

    let report = engine.shutdown().unwrap();
    assert!(report.drained, "shutdown drained");
    assert!(report.stats.accounted(), "{:?}", report.stats.totals());
}

/// With a 64-envelope inject queue the host outruns the shard: the same loop with plain `send`
/// interleaved was refused 170 times. `send_timeout` waits for room instead.
#[test]
fn a_host_sending_in_a_loop_with_send_timeout_is_never_refused_and_loses_nothing() {
    const N: u64 = 200_000;
    let engine = Engine::builder()
        .shards(2)
        .oversubscribe(true)
        .executor(ExecutorKind::Threads)
        .pin_threads(false)
        .inject_capacity(64)
        .build()
        .expect("engine starts");
    let h = engine.handle();
    let counter = h.spawn(SpawnPlacement::Shard(1), Counter::default).unwrap();
    for _ in 0..N {
        h.send_timeout(counter, CounterMsg::Add(1), Duration::from_secs(10)).expect("room within the timeout");
    }
    assert_eq!(h.ask(counter, ASK, CounterMsg::Get).unwrap(), N);
    let report = engine.shutdown().unwrap();
    assert_eq!(report.stats.host_rejected_full, 0, "no send was refused");
    assert!(report.stats.accounted(), "{:?}", report.stats.totals());
}
