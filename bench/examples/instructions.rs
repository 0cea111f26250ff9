//! Instructions per message, for `valgrind --tool=cachegrind` (or any instruction counter).
//!
//! Runs the dispatcher by hand on the calling thread, with no executor and no clock in the
//! loop, so an instruction count divided by the messages delivered is the path's own cost:
//!
//! - `local N`: the `dispatch` workload (a blaster and a sink on one shard), N messages;
//! - `cross N`: a ball volleyed between two shards of one cluster (every message crosses a
//!   ring), for N rounds of one pass on each shard (about one message a round);
//! - `idle-pass N S`: N passes of shard 0 of an S-shard cluster (default 16) with nothing to
//!   do: what an empty pass costs as the mesh grows (S - 1 inbound rings to look at). It also
//!   prints the wall-clock nanoseconds per pass, for a figure without cachegrind.
//!
//! Run it twice with different N and subtract, so set-up and tear-down cancel out:
//! `valgrind --tool=cachegrind --cache-sim=no target/release/examples/instructions cross 200000`.

use nexus_bench::dispatch::{self, DispatchParams};
use nexus_engine::builtin::{PingPong, PingPongMsg};
use nexus_engine::shard::{Shard, ShardLimits};

fn cross(rounds: u64) -> u64 {
    let mut shards = Shard::cluster(2, ShardLimits::default(), 256).expect("cluster");
    let a = shards[0].spawn(PingPong::default()).expect("spawn");
    let b = shards[1].spawn(PingPong::default()).expect("spawn");
    shards[0].inject(a, PingPongMsg::Partner(b)).expect("inject");
    shards[1].inject(b, PingPongMsg::Partner(a)).expect("inject");
    for s in shards.iter_mut() {
        s.pass();
    }
    shards[0].inject(a, PingPongMsg::Serve(1)).expect("inject");
    for _ in 0..rounds {
        for s in shards.iter_mut() {
            s.pass();
        }
    }
    shards.iter().map(|s| s.stats().counters.delivered).sum::<u64>()
}

/// Runs `passes` empty passes on shard 0 of a `shards`-shard cluster; prints ns per pass.
fn idle_pass(passes: u64, shards: usize) -> u64 {
    let mut cluster = Shard::cluster(shards, ShardLimits::default(), 256).expect("cluster");
    let shard = &mut cluster[0];
    let started = std::time::Instant::now();
    let mut work = 0;
    for _ in 0..passes {
        work += shard.pass();
    }
    let ns = started.elapsed().as_nanos() as f64 / passes.max(1) as f64;
    println!("idle-pass: {shards} shards, {passes} empty passes, {ns:.1} ns per pass");
    assert_eq!(work, 0, "an empty pass found work");
    0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "local".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let delivered = match mode.as_str() {
        "local" => dispatch::run(&DispatchParams { messages: n, burst: 64 }).expect("dispatch check").messages,
        "cross" => cross(n),
        "idle-pass" => {
            let shards = match args.next().map(|s| s.parse::<usize>()) {
                None => 16,
                Some(Ok(s)) if s >= 1 => s,
                Some(_) => {
                    eprintln!("instructions: idle-pass takes a shard count of at least 1");
                    std::process::exit(2);
                }
            };
            idle_pass(n, shards)
        }
        other => {
            eprintln!("instructions: unknown mode {other:?}; use local, cross or idle-pass");
            std::process::exit(2);
        }
    };
    println!("{mode}: {delivered} messages delivered");
}
