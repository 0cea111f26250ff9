//! Typed asks end to end on hand-driven shards: the answer arrives through `handle` as the
//! adapter's message, failures arrive as typed errors, a gather keeps request order, and the
//! accounting and the parked-answer table are clean afterwards.

use crate::agent::{Addr, Agent, Ctx};
use crate::ask::{AskError, ReplyTo};
use crate::builtin::{Counter, CounterMsg};
use crate::metrics::DeadLetterReason;
use crate::shard::test_support::{assert_accounted, cluster, settle};
use crate::shard::Shard;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

type Log = Rc<RefCell<Vec<String>>>;

/// Asks the counters it is given, one by one or all at once, and logs each answer.
struct Asker {
    log: Log,
    timeout: Duration,
}

#[derive(Debug)]
enum AskerMsg {
    One(Addr<CounterMsg>),
    All(Vec<Addr<CounterMsg>>),
    Total { tag: u32, total: Result<u64, AskError> },
    Totals(Vec<Result<u64, AskError>>),
}

impl Agent for Asker {
    type Msg = AskerMsg;
    fn handle(&mut self, msg: AskerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            AskerMsg::One(counter) => {
                let tag = 7;
                ctx.ask(counter, CounterMsg::Get)
                    .timeout(self.timeout)
                    .then(move |total| AskerMsg::Total { tag, total })
                    .expect("asked");
            }
            AskerMsg::All(counters) => {
                let requests = counters.into_iter().map(|c| (c, CounterMsg::Get as fn(ReplyTo<u64>) -> CounterMsg));
                ctx.ask_all(requests).timeout(self.timeout).then(AskerMsg::Totals);
            }
            AskerMsg::Total { tag, total } => self.log.borrow_mut().push(format!("{tag}:{total:?}")),
            AskerMsg::Totals(totals) => self.log.borrow_mut().push(format!("{totals:?}")),
        }
    }
}

fn asker(shard: &mut Shard, timeout: Duration) -> (Addr<AskerMsg>, Log) {
    let log = Log::default();
    let addr = shard.spawn(Asker { log: log.clone(), timeout }).unwrap();
    (addr, log)
}

#[test]
fn a_typed_answer_reaches_handle_through_the_adapter_across_shards() {
    let mut shards = cluster(2);
    let counter = shards[1].spawn(Counter::default()).unwrap();
    shards[0].inject(counter, CounterMsg::Add(41)).unwrap();
    let (asker, log) = asker(&mut shards[0], Duration::from_secs(10));
    settle(&mut shards);
    shards[0].inject(asker, AskerMsg::One(counter)).unwrap();
    settle(&mut shards);
    assert_eq!(*log.borrow(), vec!["7:Ok(41)".to_string()]);
    assert_eq!(shards[0].answers.live(), 0, "nothing stays parked");
    assert_accounted(&shards);
}

#[test]
fn an_ask_to_a_stopped_agent_ends_at_once_as_undelivered() {
    let mut shards = cluster(2);
    let counter = shards[1].spawn(Counter::default()).unwrap();
    crate::agent::run_agent_stop(&mut shards[1], counter.id(), crate::agent::ExitReason::Normal);
    let (asker, log) = asker(&mut shards[0], Duration::from_secs(3600));
    shards[0].inject(asker, AskerMsg::One(counter)).unwrap();
    settle(&mut shards);
    let line = log.borrow().first().cloned().expect("answered without waiting for the timeout");
    assert!(line.starts_with("7:Err(Undelivered("), "{line}");
    assert_accounted(&shards);
}

/// Holds every `ReplyTo` it is asked with, never answering.
#[derive(Default)]
struct Silent {
    held: Vec<ReplyTo<u64>>,
}

impl Agent for Silent {
    type Msg = CounterMsg;
    fn handle(&mut self, msg: CounterMsg, _ctx: &mut Ctx<'_>) {
        if let CounterMsg::Get(reply) = msg {
            self.held.push(reply);
        }
    }
}

#[test]
fn an_unanswered_typed_ask_times_out_into_the_adapter() {
    let mut shards = cluster(1);
    let silent: Addr<CounterMsg> = shards[0].spawn(Silent::default()).unwrap();
    let (asker, log) = asker(&mut shards[0], Duration::from_millis(1));
    shards[0].inject(asker, AskerMsg::One(silent)).unwrap();
    settle(&mut shards);
    std::thread::sleep(Duration::from_millis(3));
    settle(&mut shards);
    assert_eq!(*log.borrow(), vec!["7:Err(Timeout)".to_string()]);
    assert_eq!(shards[0].stats().counters.ask_timeouts, 1);
    assert_eq!(shards[0].answers.live(), 0);
}

#[test]
fn a_gather_answers_once_in_request_order_with_each_parts_outcome() {
    let mut shards = cluster(3);
    let a = shards[1].spawn(Counter::default()).unwrap();
    let b = shards[2].spawn(Counter::default()).unwrap();
    let c = shards[0].spawn(Counter::default()).unwrap();
    shards[0].inject(a, CounterMsg::Add(1)).unwrap();
    shards[0].inject(b, CounterMsg::Add(2)).unwrap();
    shards[0].inject(c, CounterMsg::Add(3)).unwrap();
    crate::agent::run_agent_stop(&mut shards[2], b.id(), crate::agent::ExitReason::Normal);
    let (asker, log) = asker(&mut shards[0], Duration::from_secs(3600));
    settle(&mut shards);
    shards[0].inject(asker, AskerMsg::All(vec![a, b, c])).unwrap();
    settle(&mut shards);
    let log = log.borrow();
    assert_eq!(log.len(), 1, "one answer for the whole gather: {log:?}");
    assert!(log[0].starts_with("[Ok(1), Err(Undelivered("), "{}", log[0]);
    assert!(log[0].ends_with("Ok(3)]"), "{}", log[0]);
    assert_eq!(shards[0].answers.live(), 0);
    assert_accounted(&shards);
}

#[test]
fn a_gather_of_nothing_answers_with_an_empty_list() {
    let mut shards = cluster(1);
    let (asker, log) = asker(&mut shards[0], Duration::from_secs(1));
    shards[0].inject(asker, AskerMsg::All(Vec::new())).unwrap();
    settle(&mut shards);
    assert_eq!(*log.borrow(), vec!["[]".to_string()]);
}

/// Asks with an adapter that builds the wrong type.
struct WrongAdapter;

impl Agent for WrongAdapter {
    type Msg = Addr<CounterMsg>;
    fn handle(&mut self, counter: Addr<CounterMsg>, ctx: &mut Ctx<'_>) {
        let _ = ctx.ask(counter, CounterMsg::Get).then(|total| total.unwrap_or(0));
    }
}

#[test]
fn an_adapter_that_builds_another_type_is_refused_when_the_ask_is_made() {
    let mut shards = cluster(1);
    let counter = shards[0].spawn(Counter::default()).unwrap();
    let wrong = shards[0].spawn(WrongAdapter).unwrap();
    shards[0].inject(wrong, counter).unwrap();
    settle(&mut shards);
    let k = shards[0].stats().counters;
    assert_eq!(k.panics, 1, "the mismatch panics in the asker's handler");
    assert_eq!(k.dead(DeadLetterReason::Panicked), 1);
    assert_eq!(shards[0].answers.live(), 0, "no ask was opened");
    assert_accounted(&shards);
}

/// Asks, then stops before the answer comes.
struct AskThenStop;

impl Agent for AskThenStop {
    type Msg = Option<Addr<CounterMsg>>;
    fn handle(&mut self, counter: Option<Addr<CounterMsg>>, ctx: &mut Ctx<'_>) {
        if let Some(counter) = counter {
            ctx.ask(counter, CounterMsg::Get).then(|_| None::<Addr<CounterMsg>>).expect("asked");
            ctx.stop_self();
        }
    }
}

#[test]
fn an_answer_for_a_stopped_asker_is_a_dead_letter_and_frees_its_adapter() {
    let mut shards = cluster(2);
    let counter = shards[1].spawn(Counter::default()).unwrap();
    let asker = shards[0].spawn(AskThenStop).unwrap();
    shards[0].inject(asker, Some(counter)).unwrap();
    settle(&mut shards);
    assert_eq!(shards[0].answers.live(), 0);
    assert_eq!(shards[0].stats().counters.dead(DeadLetterReason::Stopped), 1);
    assert_accounted(&shards);
}

#[test]
fn a_gather_part_that_could_not_be_queued_is_overloaded_at_once() {
    let limits = crate::shard::ShardLimits { mailbox_capacity: 1, ..crate::shard::ShardLimits::default() };
    let mut shards = Shard::cluster(1, limits, 64).unwrap();
    let counter = shards[0].spawn(Counter::default()).unwrap();
    let (asker, log) = asker(&mut shards[0], Duration::from_secs(3600));
    // Both parts go to one counter whose mailbox holds one message: the second is refused.
    shards[0].inject(asker, AskerMsg::All(vec![counter, counter])).unwrap();
    settle(&mut shards);
    assert_eq!(*log.borrow(), vec!["[Ok(0), Err(Overloaded(0))]".to_string()]);
    assert_eq!(shards[0].answers.live(), 0);
    assert_accounted(&shards);
}

/// Asks a counter twice in one handler, with an adapter that holds a shared count.
struct TwoAsks {
    held: std::sync::Arc<()>,
    refused: Rc<RefCell<usize>>,
}

impl Agent for TwoAsks {
    type Msg = Option<Addr<CounterMsg>>;
    fn handle(&mut self, counter: Option<Addr<CounterMsg>>, ctx: &mut Ctx<'_>) {
        let Some(counter) = counter else { return };
        for _ in 0..2 {
            let held = self.held.clone();
            if ctx
                .ask(counter, CounterMsg::Get)
                .then(move |_| {
                    drop(held);
                    None::<Addr<CounterMsg>>
                })
                .is_err()
            {
                *self.refused.borrow_mut() += 1;
            }
        }
    }
}

#[test]
fn an_ask_refused_at_sending_drops_its_adapter_and_frees_its_slot() {
    let limits = crate::shard::ShardLimits { mailbox_capacity: 1, ..crate::shard::ShardLimits::default() };
    let mut shards = Shard::cluster(1, limits, 64).unwrap();
    let counter = shards[0].spawn(Counter::default()).unwrap();
    let held = std::sync::Arc::new(());
    let refused = Rc::new(RefCell::new(0));
    let asker = shards[0].spawn(TwoAsks { held: held.clone(), refused: refused.clone() }).unwrap();
    shards[0].inject(asker, Some(counter)).unwrap();
    settle(&mut shards);
    assert_eq!(*refused.borrow(), 1, "the second ask met a full mailbox");
    assert_eq!(std::sync::Arc::strong_count(&held), 2, "only the asker's own handle is left");
    assert_eq!((shards[0].asks.live(), shards[0].asks.parked()), (0, 0), "no slot stays taken");
    assert_accounted(&shards);
}
