//! Criterion benches over the library workloads of `nexus-bench`, at small sizes.
//!
//! Each bench times exactly what its workload times, through `iter_custom`: criterion's
//! iteration count becomes the workload's size (messages, round trips, lookups, spawns) and the
//! workload's own measured time is returned, so criterion reports time per message, per round
//! trip, per lookup, per spawn. Engines are built once per bench (bench settings: glommio,
//! pinned, long spin; plain threads if glommio cannot start) and shut down with the no-loss
//! check after it. Every run still checks its own result and panics if it is wrong.
//!
//! - `local_send_dispatch`: one local send plus its dispatch on a hand-driven shard (target
//!   at most 25 ns);
//! - `pingpong_local`, `pingpong_cross`: one round trip between two agents;
//! - `registry_lookup_1e4`: one local lookup among 10,000 names;
//! - `spawn_warm`: one spawn reusing a freed slot, in cycles of at most 10,000.

use criterion::{criterion_group, criterion_main, Criterion};
use nexus_bench::dispatch::{self, DispatchParams};
use nexus_bench::pingpong::PingPongPair;
use nexus_bench::registry::{RegistryParams, RegistrySession};
use nexus_bench::setup::{self, EngineSettings};
use nexus_bench::spawn::{self, Spawner};
use nexus_bench::Placement;
use nexus_engine::engine::Engine;
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
            settings.executor = ExecutorKind::Thread;
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
    c.bench_function("spawn_warm", |b| {
        b.iter_custom(|iters| {
            let mut left = iters;
            let mut total = Duration::ZERO;
            while left > 0 {
                let n = left.min(SPAWN_CYCLE);
                total += spawn::cycle(&handle, spawner, n, true).expect("spawn check").spawn;
                left -= n;
            }
            total
        })
    });
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
    targets = local_send_dispatch, pingpong_local, pingpong_cross, registry_lookup_1e4, spawn_warm
}
criterion_main!(core);
