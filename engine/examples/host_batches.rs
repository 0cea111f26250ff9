//! A host that spawns and sends a lot: one by one against the batch calls, timed.
//!
//! `cargo run --release -p nexus-engine --example host_batches [AGENTS] [MESSAGES]`
//! (defaults 1,000,000 and 1,000,000). It spawns `AGENTS / 50` counters one round trip at a
//! time and `AGENTS` with `spawn_batch`, then sends `MESSAGES` increments in a plain `send`
//! loop (counting the refusals of a full inject queue) and with `send_batch`, and checks that
//! every message sent was delivered and the accounting holds at shutdown.

use nexus_engine::builtin::{Counter, CounterMsg};
use nexus_engine::prelude::*;
use std::time::Instant;

fn arg(n: usize, default: usize) -> usize {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (agents, messages) = (arg(1, 1_000_000), arg(2, 1_000_000));
    let engine = Engine::builder().shards(2).oversubscribe(true).pin_threads(false).build()?;
    let host = engine.handle();

    let singles = (agents / 50).max(1);
    let started = Instant::now();
    for _ in 0..singles {
        host.spawn(SpawnPlacement::RoundRobin, Counter::default)?;
    }
    let one_by_one = started.elapsed().as_secs_f64() / singles as f64;
    let started = Instant::now();
    let counters = host.spawn_batch(SpawnPlacement::RoundRobin, agents, |_| Counter::default())?;
    let batched = started.elapsed().as_secs_f64() / agents as f64;
    println!(
        "spawn: one by one {:.2} us/agent ({singles} agents), spawn_batch {:.3} us/agent ({agents} agents), {:.0}x",
        one_by_one * 1e6,
        batched * 1e6,
        one_by_one / batched
    );

    let targets = [counters[0], counters[1]];
    let started = Instant::now();
    let mut refused = 0u64;
    for i in 0..messages {
        if host.send(targets[i % 2], CounterMsg::Add(1)).is_err() {
            refused += 1;
        }
    }
    let plain = started.elapsed();
    let started = Instant::now();
    let sent = host.send_batch((0..messages).map(|i| (targets[i % 2], CounterMsg::Add(1))), Duration::from_secs(10))?;
    let batch = started.elapsed();
    let total: u64 =
        targets.iter().map(|c| host.ask(*c, Duration::from_secs(30), CounterMsg::Get)).sum::<Result<u64, _>>()?;
    println!(
        "send: plain loop {:.1} ms with {refused} refused (full inject queue), send_batch {:.1} ms with 0 refused; delivered {total} of {}",
        plain.as_secs_f64() * 1e3,
        batch.as_secs_f64() * 1e3,
        messages as u64 - refused + sent as u64
    );
    assert_eq!(total, messages as u64 - refused + sent as u64, "every message sent was delivered");
    let report = engine.shutdown()?;
    assert!(report.stats.accounted(), "sent = delivered + dead letters");
    Ok(())
}
