//! `EngineHandle` against a hand-driven cluster: what a host thread sees when the engine does
//! not answer, or cannot take a request.

use super::EngineHandle;
use crate::agent::{Agent, Ctx, SpawnError, SpawnPlacement};
use crate::ask::{AskError, ReplyTo};
use crate::builtin::{Counter, CounterMsg, Echo, EchoMsg};
use crate::metrics::DeadLetterReason;
use crate::shard::test_support::{cluster, settle};
use crate::shard::Shard;
use std::time::{Duration, Instant};

/// Long enough that an ask which waits its timeout out is plain to see.
const PATIENT: Duration = Duration::from_secs(3);

/// Runs `ask` on a host thread while this thread drives the shards' passes; returns what it
/// returned and how long it took.
fn host_ask<T: Send>(shards: &mut [Shard], ask: impl FnOnce(&EngineHandle) -> T + Send) -> (T, Duration) {
    let h = EngineHandle { shared: shards[0].shared.clone() };
    std::thread::scope(|scope| {
        let host = scope.spawn(move || {
            let started = Instant::now();
            let r = ask(&h);
            (r, started.elapsed())
        });
        while !host.is_finished() {
            for shard in shards.iter_mut() {
                shard.pass();
            }
            std::thread::yield_now();
        }
        host.join().expect("the host thread panicked")
    })
}

/// Drops every `ReplyTo` it gets, unanswered.
struct Drops;
impl Agent for Drops {
    type Msg = ReplyTo<u64>;
    fn handle(&mut self, _unanswered: ReplyTo<u64>, _ctx: &mut Ctx<'_>) {}
}

/// Panics on every message.
struct Panics;
impl Agent for Panics {
    type Msg = ReplyTo<u64>;
    fn handle(&mut self, _reply: ReplyTo<u64>, _ctx: &mut Ctx<'_>) {
        panic!("handler fails on purpose");
    }
}

#[test]
fn a_host_ask_to_a_stopped_agent_fails_at_once_with_undelivered() {
    let mut shards = cluster(2);
    let gone = shards[1].spawn(Drops).unwrap();
    let h = EngineHandle { shared: shards[0].shared.clone() };
    h.stop(gone.id()).unwrap();
    settle(&mut shards);
    let (r, took) = host_ask(&mut shards, |h| h.ask(gone, PATIENT, |reply| reply));
    assert_eq!(r.unwrap_err(), AskError::Undelivered(DeadLetterReason::Stopped));
    assert!(took < PATIENT / 2, "took {took:?}");
}

#[test]
fn a_host_ask_whose_handler_panics_fails_at_once_with_panicked() {
    let mut shards = cluster(2);
    let panics = shards[1].spawn(Panics).unwrap();
    let (r, took) = host_ask(&mut shards, |h| h.ask(panics, PATIENT, |reply| reply));
    assert_eq!(r.unwrap_err(), AskError::Undelivered(DeadLetterReason::Panicked));
    assert!(took < PATIENT / 2, "took {took:?}");
}

#[test]
fn a_host_ask_whose_reply_to_is_dropped_fails_at_once_with_dropped() {
    let mut shards = cluster(2);
    let drops = shards[1].spawn(Drops).unwrap();
    let (r, took) = host_ask(&mut shards, |h| h.ask(drops, PATIENT, |reply| reply));
    assert_eq!(r.unwrap_err(), AskError::Dropped);
    assert!(took < PATIENT / 2, "took {took:?}");
}

#[test]
fn a_host_spawn_the_shard_never_answers_is_a_timeout_not_overloaded() {
    let shards = cluster(1);
    let h = EngineHandle { shared: shards[0].shared.clone() };
    // Nobody runs the shard's passes: the request is queued and never answered.
    let r = h.spawn_within(SpawnPlacement::Shard(0), None, Duration::from_millis(20), Echo::default);
    assert_eq!(r.unwrap_err(), SpawnError::Timeout(0));
}

#[test]
fn a_host_ask_into_a_full_inject_queue_is_overloaded_not_a_full_mailbox() {
    let mut shards = cluster(1);
    let echo = shards[0].spawn(Echo::default()).unwrap();
    let counter = shards[0].spawn(Counter::default()).unwrap();
    let h = EngineHandle { shared: shards[0].shared.clone() };
    // Nobody runs the shard's passes: fill its inject queue.
    while h.send(counter, CounterMsg::Add(1)).is_ok() {}
    let r = h.ask(echo, Duration::from_secs(5), |reply| EchoMsg::Echo { value: 1, reply });
    assert_eq!(r.unwrap_err(), AskError::Overloaded(0));
}

/// From inside its handler, makes blocking host calls through an `EngineHandle` (an ask of an
/// agent on its own shard, then `stats`) and reports what each did: in debug builds the call
/// panics (caught here), in release builds it returns `BlockingOnShard`.
struct BlocksInHandler {
    handle: EngineHandle,
    echo: crate::agent::Addr<EchoMsg>,
}

impl Agent for BlocksInHandler {
    type Msg = ReplyTo<String>;
    fn handle(&mut self, reply: ReplyTo<String>, ctx: &mut Ctx<'_>) {
        use std::panic::{catch_unwind, AssertUnwindSafe};
        let ask = catch_unwind(AssertUnwindSafe(|| {
            self.handle.ask(self.echo, PATIENT, |reply| EchoMsg::Echo { value: 1, reply })
        }));
        let stats = catch_unwind(AssertUnwindSafe(|| self.handle.stats().map(|_| ())));
        let ask = match ask {
            Err(_) => "panicked".to_string(),
            Ok(r) => format!("{r:?}"),
        };
        let stats = match stats {
            Err(_) => "panicked".to_string(),
            Ok(r) => format!("{r:?}"),
        };
        ctx.reply(reply, format!("ask: {ask}; stats: {stats}"));
    }
}

#[test]
fn a_blocking_host_call_inside_a_handler_is_refused_at_once_instead_of_freezing_its_shard() {
    use crate::engine::Engine;
    use crate::shard::ExecutorKind;
    let engine = Engine::builder()
        .shards(2)
        .oversubscribe(true)
        .executor(ExecutorKind::Threads)
        .pin_threads(false)
        .build()
        .expect("engine starts");
    let h = engine.handle();
    let echo = h.spawn(SpawnPlacement::Shard(0), Echo::default).unwrap();
    let inner = h.clone();
    let blocker = h.spawn(SpawnPlacement::Shard(0), move || BlocksInHandler { handle: inner, echo }).unwrap();
    let started = Instant::now();
    let what = h.ask(blocker, PATIENT * 3, |reply| reply).expect("the blocker answers");
    let took = started.elapsed();
    let expected = if cfg!(debug_assertions) {
        "ask: panicked; stats: panicked".to_string()
    } else {
        format!(
            "ask: {:?}; stats: {:?}",
            Err::<u64, _>(AskError::BlockingOnShard(0)),
            Err::<(), _>(super::EngineError::BlockingOnShard(0))
        )
    };
    assert_eq!(what, expected);
    assert!(took < Duration::from_secs(1), "the shard froze for {took:?}");
    // Outside a handler the same handle blocks as usual.
    assert_eq!(h.ask(echo, PATIENT, |reply| EchoMsg::Echo { value: 7, reply }).unwrap(), 7);
    engine.shutdown().expect("clean shutdown");
}

#[test]
fn host_sends_are_sampled_for_the_routing_latency() {
    let mut shards = cluster(1);
    let counter = shards[0].spawn(Counter::default()).unwrap();
    let h = EngineHandle { shared: shards[0].shared.clone() };
    // Sent from a fresh thread: its sampling tick starts at zero.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..128 {
                h.send(counter, CounterMsg::Add(1)).map_err(|_| "refused").unwrap();
            }
        });
    });
    settle(&mut shards);
    assert_eq!(shards[0].stats().latency_histogram.len(), 128 / 64, "one host send in 64 is sampled");
}
