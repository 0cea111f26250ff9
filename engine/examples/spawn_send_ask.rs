//! The host side of the engine, end to end: build an engine, spawn an agent on a chosen shard,
//! send it messages, ask it for an answer, and shut down with every message accounted for.
//!
//! Run: `cargo run --release -p nexus-engine --example spawn_send_ask`

use nexus_engine::agent::{Agent, Ctx, SpawnPlacement};
use nexus_engine::ask::ReplyTo;
use nexus_engine::engine::Engine;
use std::time::Duration;

/// Keeps a running total of what it is sent.
#[derive(Default)]
struct Tally {
    total: u64,
}

/// What a `Tally` takes: a number to add, or a request for the total.
enum TallyMsg {
    Add(u64),
    Get(ReplyTo<u64>),
}

impl Agent for Tally {
    type Msg = TallyMsg;

    fn handle(&mut self, msg: TallyMsg, ctx: &mut Ctx<'_>) {
        match msg {
            TallyMsg::Add(n) => self.total += n,
            TallyMsg::Get(reply) => ctx.reply(reply, self.total),
        }
    }
}

fn main() {
    // Two shards, each a thread; unpinned so the example runs on any machine.
    let engine = Engine::builder().shards(2).pin_threads(false).oversubscribe(true).build().expect("engine starts");
    let host = engine.handle();

    // Spawn: the factory runs on the target shard, which owns the agent from then on.
    let tally = host.spawn(SpawnPlacement::Shard(1), Tally::default).expect("spawn");

    // Send: fire and forget; `Full` comes back if the shard's inject queue is full.
    for n in 1..=1_000 {
        host.send(tally, TallyMsg::Add(n)).expect("send");
    }

    // Ask: blocks this (host) thread until the agent replies or the timeout passes. Messages
    // from one sender arrive in order, so the total includes every `Add` above.
    let total = host.ask(tally, Duration::from_secs(5), TallyMsg::Get).expect("ask");
    println!("total = {total}");
    assert_eq!(total, 500_500);

    // Shutdown: drains, stops every agent, joins the shards, and reports the accounting.
    let report = engine.shutdown().expect("shutdown");
    let totals = report.stats.totals();
    println!("sent {} = delivered {} + dead letters {}", totals.sent, totals.delivered, totals.dead_letters_total());
    assert!(report.stats.accounted());
}
