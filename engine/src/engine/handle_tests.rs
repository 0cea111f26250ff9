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
    assert_eq!(r.unwrap_err(), AskError::Undelivered(DeadLetterReason::StaleGeneration));
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
