//! Instructions per message, for `valgrind --tool=cachegrind` (or any instruction counter).
//!
//! Runs the dispatcher by hand on the calling thread, with no executor and no clock in the
//! loop, so an instruction count divided by the messages delivered is the path's own cost:
//!
//! - `local N`: the `dispatch` workload (a blaster and a sink on one shard), N messages;
//! - `cross N`: a ball volleyed between two shards of one cluster (every message crosses a
//!   ring), for N rounds of one pass on each shard (about one message a round).
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

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "local".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let delivered = match mode.as_str() {
        "local" => dispatch::run(&DispatchParams { messages: n, burst: 64 }).expect("dispatch check").messages,
        "cross" => cross(n),
        other => {
            eprintln!("instructions: unknown mode {other:?}; use local or cross");
            std::process::exit(2);
        }
    };
    println!("{mode}: {delivered} messages delivered");
}
