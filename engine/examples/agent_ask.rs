//! One agent asking another, across shards: `Ctx::ask` sends a request carrying a `ReplyTo`,
//! the target answers with `Ctx::reply`, and the answer comes back to the asker's `on_reply`,
//! without blocking either shard.
//!
//! Run: `cargo run --release -p nexus-engine --example agent_ask`

use nexus_engine::agent::{Addr, Agent, Ctx, RequestId, SpawnPlacement};
use nexus_engine::ask::{AskError, Reply, ReplyTo};
use nexus_engine::engine::Engine;
use std::time::Duration;

/// Squares numbers on request.
struct Squarer;

/// A number to square, and where to send the square.
struct Square(u64, ReplyTo<u64>);

impl Agent for Squarer {
    type Msg = Square;

    fn handle(&mut self, Square(n, reply): Square, ctx: &mut Ctx<'_>) {
        ctx.reply(reply, n * n);
    }
}

/// Asks the squarer for 1² … 10² and reports the sum to the host.
struct Asker {
    squarer: Addr<Square>,
    pending: usize,
    sum: u64,
    report: Option<ReplyTo<u64>>,
}

impl Agent for Asker {
    /// The host's request: start, and answer with the sum of the squares.
    type Msg = ReplyTo<u64>;

    fn handle(&mut self, report: ReplyTo<u64>, ctx: &mut Ctx<'_>) {
        self.report = Some(report);
        for n in 1..=10 {
            if ctx.ask_untyped(self.squarer, Duration::from_secs(1), |reply| Square(n, reply)).is_ok() {
                self.pending += 1;
            }
        }
    }

    fn on_reply(&mut self, _request: RequestId, reply: Result<Reply, AskError>, ctx: &mut Ctx<'_>) {
        // A failed ask (timeout, target gone) arrives here too, as an `AskError`.
        if let Ok(square) = reply.and_then(|r| r.take::<u64>()) {
            self.sum += square;
        }
        self.pending -= 1;
        if self.pending == 0 {
            if let Some(report) = self.report.take() {
                ctx.reply(report, self.sum);
            }
        }
    }
}

fn main() {
    let engine = Engine::builder().shards(2).pin_threads(false).oversubscribe(true).build().expect("engine starts");
    let host = engine.handle();
    let squarer = host.spawn(SpawnPlacement::Shard(1), || Squarer).expect("spawn squarer");
    let asker = host
        .spawn(SpawnPlacement::Shard(0), move || Asker { squarer, pending: 0, sum: 0, report: None })
        .expect("spawn asker");
    let sum = host.ask(asker, Duration::from_secs(5), |reply| reply).expect("ask");
    println!("1² + … + 10² = {sum}");
    assert_eq!(sum, 385);
    assert!(engine.shutdown().expect("shutdown").stats.accounted());
}
