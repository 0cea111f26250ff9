//! Host batches on a running two-shard engine: every message and every agent accounted for.

use crate::agent::{SpawnOptions, SpawnPlacement};
use crate::builtin::{Counter, CounterMsg};
use crate::engine::{Engine, SPAWN_CHUNK};
use crate::shard::ExecutorKind;
use std::time::Duration;

const ASK: Duration = Duration::from_secs(20);

fn engine(inject_capacity: usize) -> Engine {
    Engine::builder()
        .shards(2)
        .oversubscribe(true)
        .executor(ExecutorKind::Threads)
        .pin_threads(false)
        .inject_capacity(inject_capacity)
        .build()
        .expect("engine starts")
}

#[test]
fn a_batch_larger_than_the_inject_queue_is_sent_whole() {
    let engine = engine(64);
    let h = engine.handle();
    let counters = h.spawn_batch(SpawnPlacement::RoundRobin, 4, |_| Counter::default()).expect("spawned");
    let n = 20_000;
    let sent = h
        .send_batch((0..n).map(|i| (counters[i % 4], CounterMsg::Add(1))), Duration::from_secs(10))
        .expect("every message sent");
    assert_eq!(sent, n);
    let total: u64 = counters.iter().map(|c| h.ask(*c, ASK, CounterMsg::Get).unwrap()).sum();
    assert_eq!(total, n as u64);
    let stats = engine.shutdown().unwrap().stats;
    assert!(stats.accounted(), "{:?}", stats.totals());
    assert_eq!(stats.totals().rejected_full, 0);
}

#[test]
fn a_spawn_batch_deals_round_robin_and_returns_addresses_in_index_order() {
    let engine = engine(4096);
    let h = engine.handle();
    let count = 2 * SPAWN_CHUNK + 7;
    let options = SpawnOptions::on(SpawnPlacement::RoundRobin).mailbox_capacity(8);
    let counters = h.spawn_batch(options, count, |i| Counter { total: i as u64 }).expect("spawned");
    assert_eq!(counters.len(), count);
    let shards: Vec<usize> = counters.iter().map(|c| c.shard()).collect();
    assert!(shards.windows(2).all(|w| w[0] != w[1]), "dealt one by one over two shards");
    for i in [0, 1, SPAWN_CHUNK, count - 1] {
        assert_eq!(h.ask(counters[i], ASK, CounterMsg::Get).unwrap(), i as u64, "agent {i} built by factory({i})");
    }
    assert_eq!(h.stats().unwrap().agents(), count as u64);
    engine.shutdown().unwrap();
}

#[test]
fn a_spawn_batch_on_a_missing_shard_is_refused_with_nothing_spawned() {
    let engine = engine(4096);
    let err = engine.handle().spawn_batch(SpawnPlacement::Shard(9), 3, |_| Counter::default()).unwrap_err();
    assert!(err.spawned.is_empty());
    assert!(matches!(err.error, crate::agent::SpawnError::NoSuchShard { shard: 9, shards: 2 }), "{err}");
    engine.shutdown().unwrap();
}
