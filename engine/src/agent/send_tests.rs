//! `Ctx::send_with`: each option does what it says, end to end on hand-driven shards.

use crate::agent::{Addr, Agent, Ctx, SendOptions, Undelivered};
use crate::builtin::{Counter, CounterMsg};
use crate::metrics::DeadLetterReason;
use crate::shard::test_support::{assert_accounted, cluster, settle};
use crate::shard::{Shard, ShardLimits};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// Sends `count` `Add(1)`s to its target with the options it is given (a refused send is
/// dropped: the tests read the shard's counters), and keeps what came back through
/// `on_undelivered`.
struct Sender {
    options: SendOptions,
    undelivered: Rc<RefCell<Vec<DeadLetterReason>>>,
}

impl Agent for Sender {
    type Msg = (Addr<CounterMsg>, usize);
    fn handle(&mut self, (to, count): (Addr<CounterMsg>, usize), ctx: &mut Ctx<'_>) {
        for _ in 0..count {
            let _ = ctx.send_with(to, CounterMsg::Add(1), self.options);
        }
    }
    fn on_undelivered(&mut self, undelivered: Undelivered, _ctx: &mut Ctx<'_>) {
        self.undelivered.borrow_mut().push(undelivered.reason);
    }
}

fn sender(options: SendOptions) -> Sender {
    Sender { options, undelivered: Rc::default() }
}

#[test]
fn a_tracked_send_to_a_stopped_agent_comes_back_with_its_reason() {
    let mut shards = cluster(2);
    let counter = shards[1].spawn(Counter::default()).unwrap();
    crate::agent::run_agent_stop(&mut shards[1], counter.id(), crate::agent::ExitReason::Normal);
    let tracked = sender(SendOptions::new().tracked());
    let back = tracked.undelivered.clone();
    let s = shards[0].spawn(tracked).unwrap();
    shards[0].inject(s, (counter, 2)).unwrap();
    settle(&mut shards);
    assert_eq!(shards[1].stats().counters.dead(DeadLetterReason::Stopped), 2);
    assert_eq!(*back.borrow(), vec![DeadLetterReason::Stopped; 2]);
    assert_accounted(&shards);
}

#[test]
fn a_send_whose_ttl_passed_in_the_queue_is_counted_expired() {
    let mut shards = cluster(2);
    let counter = shards[1].spawn(Counter::default()).unwrap();
    let s = shards[0].spawn(sender(SendOptions::new().ttl(Duration::from_nanos(1)))).unwrap();
    shards[0].inject(s, (counter, 3)).unwrap();
    // The sender runs and publishes three messages to shard 1; they expire before it runs.
    shards[0].pass();
    std::thread::sleep(Duration::from_millis(1));
    settle(&mut shards);
    let k = shards[1].stats().counters;
    assert_eq!(k.dead(DeadLetterReason::Expired), 3, "{k:?}");
    assert_accounted(&shards);
}

#[test]
fn a_control_send_is_taken_by_a_full_mailbox_and_a_plain_one_is_refused() {
    let limits = ShardLimits { mailbox_capacity: 2, ..ShardLimits::default() };
    let mut shards = Shard::cluster(1, limits, 64).unwrap();
    let counter = shards[0].spawn(Counter::default()).unwrap();
    let plain = shards[0].spawn(sender(SendOptions::new())).unwrap();
    let control = shards[0].spawn(sender(SendOptions::new().control())).unwrap();
    shards[0].inject(plain, (counter, 5)).unwrap();
    shards[0].inject(control, (counter, 5)).unwrap();
    settle(&mut shards);
    let k = shards[0].stats().counters;
    assert_eq!(k.rejected_full, 3, "the plain sender's last three were refused: {k:?}");
    assert_eq!(k.delivered, 2 + 2 + 5, "two plain Adds, the two injections, five control Adds");
    assert_accounted(&shards);
}
