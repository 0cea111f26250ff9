//! `EngineHandle` against a hand-driven cluster: what a host thread sees when the engine does
//! not answer, or cannot take a request.

use super::EngineHandle;
use crate::agent::{SpawnError, SpawnPlacement};
use crate::ask::AskError;
use crate::builtin::{Counter, CounterMsg, Echo, EchoMsg};
use crate::shard::test_support::cluster;
use std::time::Duration;

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
