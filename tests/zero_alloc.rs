//! Steady-state sending allocates nothing: local, cross-shard and ask/reply traffic (a typed
//! ask whose small adapter is stored inline, its answer delivered through `handle`).
//!
//! A counting global allocator counts every allocation made by this test's thread while
//! `MEASURING` is set. Two shards are driven pass by pass on that one thread (no executor, no
//! other threads), so every allocation the message path makes is seen. After a warm-up (pools,
//! queues and the deadline heap reach their high-water marks), thousands of round trips of
//! messages of at most 48 bytes must allocate zero times.

use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::ask::AskError;
use nexus_engine::builtin::{Counter, CounterMsg, PingPong, PingPongMsg};
use nexus_engine::payload::fits_inline;
use nexus_engine::shard::{Shard, ShardLimits};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

struct Counting;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every operation to the system allocator; the counters are thread-local cells
// with const initialisers, so touching them never allocates or recurses.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if MEASURING.with(Cell::get) {
            ALLOCATIONS.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if MEASURING.with(Cell::get) {
            ALLOCATIONS.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Asks the counter again every time an answer comes back.
struct Asker {
    target: Addr<CounterMsg>,
    /// Answers received, read by the test.
    answers: Rc<Cell<u64>>,
}

#[derive(Debug)]
enum AskerMsg {
    /// Make the first ask.
    Start,
    /// The counter's answer to ask number `round`, through the ask's adapter.
    Total { round: u32, total: Result<u64, AskError> },
}

impl Asker {
    /// Asks with an adapter that captures a value: a small closure, stored inline like the
    /// messages.
    fn ask(&self, ctx: &mut Ctx<'_>) {
        let round = self.answers.get() as u32;
        ctx.ask(self.target, CounterMsg::Get)
            .timeout(Duration::from_secs(60))
            .then(move |total| AskerMsg::Total { round, total })
            .expect("ask sent");
    }
}

impl Agent for Asker {
    type Msg = AskerMsg;
    fn handle(&mut self, msg: AskerMsg, ctx: &mut Ctx<'_>) {
        if let AskerMsg::Total { round, total } = msg {
            total.expect("an answer");
            assert_eq!(u64::from(round), self.answers.get(), "each answer carries its own round");
            self.answers.set(self.answers.get() + 1);
        }
        self.ask(ctx);
    }
}

fn passes(shards: &mut [Shard], n: usize) {
    for _ in 0..n {
        for s in shards.iter_mut() {
            s.pass();
        }
    }
}

#[test]
fn steady_state_messaging_does_not_allocate() {
    assert!(fits_inline::<PingPongMsg>());
    assert!(fits_inline::<CounterMsg>());
    assert!(fits_inline::<AskerMsg>());
    let mut shards = Shard::cluster(2, ShardLimits::default(), 256).unwrap();

    // Local ping-pong on shard 0, cross-shard ping-pong between shards 0 and 1, and a
    // cross-shard asker on shard 1 asking a counter on shard 0.
    let la = shards[0].spawn(PingPong::default()).unwrap();
    let lb = shards[0].spawn(PingPong::default()).unwrap();
    let xa = shards[0].spawn(PingPong::default()).unwrap();
    let xb = shards[1].spawn(PingPong::default()).unwrap();
    let counter = shards[0].spawn(Counter::default()).unwrap();
    let answers = Rc::new(Cell::new(0));
    let asker = shards[1].spawn(Asker { target: counter, answers: answers.clone() }).unwrap();
    shards[0].inject(la, PingPongMsg::Partner(lb)).unwrap();
    shards[0].inject(lb, PingPongMsg::Partner(la)).unwrap();
    shards[0].inject(xa, PingPongMsg::Partner(xb)).unwrap();
    shards[1].inject(xb, PingPongMsg::Partner(xa)).unwrap();
    passes(&mut shards, 2);
    shards[0].inject(la, PingPongMsg::Serve(4)).unwrap();
    shards[0].inject(xa, PingPongMsg::Serve(4)).unwrap();
    shards[1].inject(asker, AskerMsg::Start).unwrap();

    passes(&mut shards, 20_000); // warm-up: every pool reaches its high-water mark
    let before: u64 = shards.iter().map(|s| s.stats().counters.delivered).sum();
    let answers_before = answers.get();

    // The counter works: one box is one allocation.
    MEASURING.with(|m| m.set(true));
    drop(std::hint::black_box(Box::new(7u64)));
    MEASURING.with(|m| m.set(false));
    assert_eq!(ALLOCATIONS.with(|c| c.replace(0)), 1, "the counting allocator counts");

    MEASURING.with(|m| m.set(true));
    passes(&mut shards, 20_000);
    MEASURING.with(|m| m.set(false));
    let allocations = ALLOCATIONS.with(Cell::get);

    let after: u64 = shards.iter().map(|s| s.stats().counters.delivered).sum();
    let delivered = after - before;
    let asked = answers.get() - answers_before;
    assert!(asked > 1_000, "the asker ran: {asked} answers while measuring");
    assert!(delivered > 100_000, "the workload ran: {delivered} messages delivered while measuring");
    assert_eq!(allocations, 0, "{allocations} allocations for {delivered} messages");
}
