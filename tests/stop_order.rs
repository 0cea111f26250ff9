//! A stop takes effect in order: once a host's `stop(id)` returned `Ok` (or an agent on another
//! shard asked for it), nothing that sender sends to `id` after it reaches the old instance;
//! each such message is a counted dead letter, and the accounting stays whole
//! (sent = delivered + dead letters).

use nexus_engine::agent::{Addr, Agent, Ctx, SpawnPlacement};
use nexus_engine::engine::Engine;
use nexus_engine::metrics::DeadLetterReason;
use nexus_engine::shard::ExecutorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TRIALS: u64 = 1_000;

/// Counts every message it handles in a counter the test reads.
struct Witness(Arc<AtomicU64>);

impl Agent for Witness {
    type Msg = u64;

    fn handle(&mut self, _msg: u64, _ctx: &mut Ctx<'_>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Stops the agent it is given, then at once sends it a message (from another shard).
struct Stopper;

impl Agent for Stopper {
    type Msg = Addr<u64>;

    fn handle(&mut self, target: Addr<u64>, ctx: &mut Ctx<'_>) {
        ctx.stop(target.id());
        ctx.send(target, 0).expect("send");
    }
}

fn no_message_sent_after_a_stop_reaches_the_stopped_agent(executor: ExecutorKind) {
    let engine = Engine::builder()
        .shards(2)
        .oversubscribe(true)
        .executor(executor)
        .pin_threads(false)
        .drain_timeout(Duration::from_secs(5))
        .build()
        .expect("engine starts");
    let h = engine.handle();
    let handled = Arc::new(AtomicU64::new(0));
    for trial in 0..TRIALS {
        let witness = handled.clone();
        let placement = SpawnPlacement::Shard((trial % 2) as usize);
        let addr = h.spawn(placement, move || Witness(witness)).expect("spawn");
        h.stop(addr.id()).expect("stop");
        h.send(addr, trial).expect("send");
    }
    let report = engine.shutdown().expect("shutdown");
    let totals = report.stats.totals();
    assert_eq!(handled.load(Ordering::Relaxed), 0, "{executor:?}: messages sent after a stop were handled");
    assert!(report.stats.accounted(), "{executor:?}: sent != delivered + dead letters: {totals:?}");
    assert_eq!(totals.delivered, 0, "{executor:?}: {totals:?}");
    assert_eq!(totals.dead(DeadLetterReason::Stopped), TRIALS, "{executor:?}: {totals:?}");
}

#[test]
fn no_message_an_agent_sends_after_its_stop_of_an_agent_on_another_shard_reaches_that_agent() {
    let engine = Engine::builder().shards(2).oversubscribe(true).pin_threads(false).build().expect("engine starts");
    let h = engine.handle();
    let handled = Arc::new(AtomicU64::new(0));
    let stopper = h.spawn(SpawnPlacement::Shard(0), || Stopper).expect("spawn");
    for _ in 0..TRIALS {
        let witness = handled.clone();
        let addr = h.spawn(SpawnPlacement::Shard(1), move || Witness(witness)).expect("spawn");
        h.send(stopper, addr).expect("send");
    }
    let report = engine.shutdown().expect("shutdown");
    let totals = report.stats.totals();
    assert_eq!(handled.load(Ordering::Relaxed), 0, "messages sent after a stop were handled");
    assert!(report.stats.accounted(), "sent != delivered + dead letters: {totals:?}");
    assert_eq!(totals.delivered, TRIALS, "the stopper's messages: {totals:?}");
    // `stopped`, or `stale_generation` when the next trial's witness already took the slot
    // (the host spawns it while the stopper's message is still on its way).
    let dead = totals.dead(DeadLetterReason::Stopped) + totals.dead(DeadLetterReason::StaleGeneration);
    assert_eq!(dead, TRIALS, "{totals:?}");
}

#[test]
fn no_message_sent_after_a_host_stop_reaches_the_stopped_agent_on_threads() {
    no_message_sent_after_a_stop_reaches_the_stopped_agent(ExecutorKind::Threads);
}

#[cfg(feature = "glommio")]
#[test]
fn no_message_sent_after_a_host_stop_reaches_the_stopped_agent_on_glommio() {
    no_message_sent_after_a_stop_reaches_the_stopped_agent(ExecutorKind::Glommio);
}
