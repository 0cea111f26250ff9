//! One agent asking another, across shards, without blocking either shard.
//!
//! `ctx.ask(to, make)` builds a request around a `ReplyTo`, the target answers it with
//! `Ctx::reply`, and `.then(adapt)` says how the answer becomes one of the asker's own messages:
//! it arrives later through `Agent::handle`, like any other message. What the asker needs when
//! the answer comes (here, which number was squared) travels inside the `adapt` closure.
//!
//! Run: `cargo run --release -p nexus-engine --example agent_ask`

use nexus_engine::prelude::*;

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

/// Asks the squarer for 1², 2², … 10², one after the other, and reports the sum to the host.
struct Asker {
    squarer: Addr<Square>,
    sum: u64,
    report: Option<ReplyTo<u64>>,
}

enum AskerMsg {
    /// The host's request: start, and answer with the sum of the squares.
    Start(ReplyTo<u64>),
    /// The squarer's answer for `n`, or why there is none (timeout, squarer gone, ...).
    Squared { n: u64, square: Result<u64, AskError> },
}

impl Asker {
    fn ask_square(&self, n: u64, ctx: &mut Ctx<'_>) {
        ctx.ask(self.squarer, |reply| Square(n, reply))
            .timeout(Duration::from_secs(1))
            .then(move |square| AskerMsg::Squared { n, square })
            .expect("the squarer's mailbox has room");
    }
}

impl Agent for Asker {
    type Msg = AskerMsg;

    fn handle(&mut self, msg: AskerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            AskerMsg::Start(report) => {
                self.report = Some(report);
                self.ask_square(1, ctx);
            }
            AskerMsg::Squared { n, square } => {
                self.sum += square.expect("squared");
                if n < 10 {
                    self.ask_square(n + 1, ctx);
                } else if let Some(report) = self.report.take() {
                    ctx.reply(report, self.sum);
                }
            }
        }
    }
}

fn main() {
    let engine = Engine::builder().shards(2).pin_threads(false).oversubscribe(true).build().expect("engine starts");
    let host = engine.handle();
    let squarer = host.spawn(SpawnPlacement::Shard(1), || Squarer).expect("spawn squarer");
    let asker =
        host.spawn(SpawnPlacement::Shard(0), move || Asker { squarer, sum: 0, report: None }).expect("spawn asker");
    let sum = host.ask(asker, Duration::from_secs(5), AskerMsg::Start).expect("ask");
    println!("1² + … + 10² = {sum}");
    assert_eq!(sum, 385);
    assert!(engine.shutdown().expect("shutdown").stats.accounted());
}
