//! Criterion benches over the library workloads of `nexus-bench`, at small sizes.
//!
//! Each bench times exactly what its workload times, through `iter_custom`: criterion's
//! iteration count becomes the workload's size (messages, round trips, lookups, spawns) and the
//! workload's own measured time is returned, so criterion reports time per message, per round
//! trip, per lookup, per spawn. Engines are built once per bench (bench settings: glommio,
//! pinned, long spin; plain threads if glommio cannot start) and shut down with the no-loss
//! check after it. Every run still checks its own result and panics if it is wrong.
//!
//! - `ring_push_pop_one`, `ring_push_pop_batch64`: the SPSC ring on one thread, one item at a
//!   time and in batches of 64 (time per item);
//! - `local_send_dispatch`: one local send plus its dispatch on a hand-driven shard (target
//!   at most 25 ns);
//! - `cross_one_way`: one message from shard 0 to a counter on shard 1, streamed (the
//!   counting workload, time per message);
//! - `ask_local`, `ask_cross`: one `Ctx::ask` round trip to an echo agent;
//! - `pingpong_local`, `pingpong_cross`: one round trip between two agents;
//! - `registry_lookup_1e4`: one local lookup among 10,000 names;
//! - `spawn_warm`, `stop_warm`: one spawn reusing a freed slot, and one stop, in cycles of at
//!   most 10,000.

use criterion::{black_box, BatchSize};
use criterion::{criterion_group, criterion_main, Criterion};
use nexus_bench::ask::AskPair;
use nexus_bench::counting::{self, CountingParams};
use nexus_bench::dispatch::{self, DispatchParams};
use nexus_bench::pingpong::PingPongPair;
use nexus_bench::registry::{RegistryParams, RegistrySession};
use nexus_bench::setup::{self, EngineSettings};
use nexus_bench::spawn::{self, Spawner};
use nexus_bench::Placement;
use nexus_engine::engine::Engine;
use nexus_engine::ring::ring;
use nexus_engine::shard::ExecutorKind;
use std::time::Duration;

/// Spawn cycles never exceed this many agents, so every spawn reuses a warmed slot.
const SPAWN_CYCLE: u64 = 10_000;

/// Starts a bench engine with `shards` shards, falling back to plain threads when glommio
/// cannot start here (io_uring blocked, locked-memory limit).
fn engine(shards: usize) -> Option<Engine> {
    let mut settings = EngineSettings::bench(shards);
    match settings.build() {
        Ok(e) => Some(e),
        Err(first) => {
            settings.executor = ExecutorKind::Threads;
            match settings.build() {
                Ok(e) => {
                    eprintln!("nexus-bench: glommio unavailable ({first}); using plain threads");
                    Some(e)
                }
                Err(e) => {
                    eprintln!("nexus-bench: cannot start a {shards}-shard engine ({e}); skipping");
                    None
                }
            }
        }
    }
}

fn local_send_dispatch(c: &mut Criterion) {
    c.bench_function("local_send_dispatch", |b| {
        b.iter_custom(|iters| {
            dispatch::run(&DispatchParams { messages: iters, burst: 64 }).expect("dispatch check").elapsed
        })
    });
}

fn ring_push_pop(c: &mut Criterion) {
    let (mut producer, mut consumer) = ring::<u64>(1024).expect("a valid ring capacity");
    c.bench_function("ring_push_pop_one", |b| {
        b.iter(|| {
            producer.push(black_box(7)).expect("an empty ring has room");
            black_box(consumer.pop().expect("the item just pushed"))
        })
    });
    let mut group = c.benchmark_group("ring_push_pop_batch64");
    group.throughput(criterion::Throughput::Elements(64));
    group.bench_function("batch", |b| {
        b.iter_batched(
            || (0..64u64).collect::<Vec<_>>(),
            |items| {
                let pushed = producer.push_batch(&mut items.into_iter());
                let mut sum = 0;
                let popped = consumer.pop_batch(64, |v| sum += v);
                assert_eq!((pushed, popped), (64, 64));
                black_box(sum)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn cross_one_way(c: &mut Criterion) {
    let Some(engine) = engine(2) else { return };
    let handle = engine.handle();
    c.bench_function("cross_one_way", |b| {
        b.iter_custom(|iters| {
            let params = CountingParams { messages: iters.max(1), placement: Placement::Cross, ..Default::default() };
            counting::run(&handle, &params).expect("counting check").elapsed
        })
    });
    setup::shutdown(engine, "counting").expect("clean shutdown");
}

fn ask(c: &mut Criterion, name: &str, placement: Placement) {
    let Some(engine) = engine(2) else { return };
    let handle = engine.handle();
    let pair = AskPair::spawn(&handle, placement).expect("spawn the pair");
    pair.run(&handle, 1_000).expect("warm-up");
    c.bench_function(name, |b| b.iter_custom(|iters| pair.run(&handle, iters).expect("ask check").elapsed));
    setup::shutdown(engine, "ask").expect("clean shutdown");
}

fn ask_local(c: &mut Criterion) {
    ask(c, "ask_local", Placement::Local);
}

fn ask_cross(c: &mut Criterion) {
    ask(c, "ask_cross", Placement::Cross);
}

fn pingpong(c: &mut Criterion, name: &str, placement: Placement) {
    let Some(engine) = engine(2) else { return };
    let handle = engine.handle();
    let pair = PingPongPair::spawn(&handle, placement).expect("spawn the pair");
    pair.run(&handle, 1_000, 0).expect("warm-up");
    c.bench_function(name, |b| b.iter_custom(|iters| pair.run(&handle, iters, 0).expect("pingpong check").elapsed));
    setup::shutdown(engine, "pingpong").expect("clean shutdown");
}

fn pingpong_local(c: &mut Criterion) {
    pingpong(c, "pingpong_local", Placement::Local);
}

fn pingpong_cross(c: &mut Criterion) {
    pingpong(c, "pingpong_cross", Placement::Cross);
}

fn registry_lookup_1e4(c: &mut Criterion) {
    let Some(engine) = engine(2) else { return };
    let handle = engine.handle();
    let session = RegistrySession::start(&handle, RegistryParams::default().names_per_holder).expect("registrar");
    session.grow(&handle, 10_000).expect("register 10,000 names");
    let mut seed = 1u64;
    c.bench_function("registry_lookup_1e4", |b| {
        b.iter_custom(|iters| {
            seed += 1;
            session.lookups(&handle, iters, seed).expect("lookup check")
        })
    });
    setup::shutdown(engine, "registry").expect("clean shutdown");
}

fn spawn_warm(c: &mut Criterion) {
    let Some(engine) = engine(2) else { return };
    let handle = engine.handle();
    let spawner = setup::spawn_on(&handle, "spawn", 0, Spawner::default).expect("spawner");
    spawn::cycle(&handle, spawner, SPAWN_CYCLE, false).expect("warm the pool");
    // One closure per figure: each times its own half of the same checked cycles.
    let handle = &handle;
    let timed = |pick: fn(&spawn::CycleReport) -> Duration| {
        move |iters: u64| {
            let mut left = iters;
            let mut total = Duration::ZERO;
            while left > 0 {
                let n = left.min(SPAWN_CYCLE);
                total += pick(&spawn::cycle(handle, spawner, n, true).expect("spawn check"));
                left -= n;
            }
            total
        }
    };
    let spawn_time = timed(|r| r.spawn);
    c.bench_function("spawn_warm", |b| b.iter_custom(&spawn_time));
    let stop_time = timed(|r| r.stop);
    c.bench_function("stop_warm", |b| b.iter_custom(&stop_time));
    setup::shutdown(engine, "spawn").expect("clean shutdown");
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = core;
    config = config();
    targets = ring_push_pop, local_send_dispatch, cross_one_way, ask_local, ask_cross, pingpong_local, pingpong_cross,
        registry_lookup_1e4, spawn_warm
}
criterion_main!(core);
