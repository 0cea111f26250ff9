//! Dispatcher tests: shards driven pass by pass on one thread, with no executor.

use super::test_support::{assert_accounted, cluster, settle};
use super::{Shard, ShardLimits};
use crate::agent::{Addr, Agent, Ctx, Lookup, Registration, SendOptions, Undelivered};
use crate::ask::{AskError, ReplyTo};
use crate::builtin::{Counter, CounterMsg, PingPong, PingPongMsg};
use crate::mailbox::OverflowPolicy;
use crate::metrics::DeadLetterReason;
use std::time::Duration;

#[test]
fn cross_shard_ping_pong_step_by_step() {
    let mut shards = cluster(2);
    let a = shards[0].spawn(PingPong::default()).unwrap();
    let b = shards[1].spawn(PingPong::default()).unwrap();
    shards[0].inject(a, PingPongMsg::Partner(b)).unwrap();
    shards[1].inject(b, PingPongMsg::Partner(a)).unwrap();
    shards[1].pass();
    shards[0].inject(a, PingPongMsg::Serve(1)).unwrap();
    // Pass 1 on shard 0: partner set, ball staged and published to shard 1.
    shards[0].pass();
    assert_eq!(shards[0].stats().counters.sent, 1);
    // Each pass on the receiving side returns the ball exactly once.
    for round in 0..10u64 {
        shards[1].pass();
        shards[0].pass();
        assert_eq!(shards[1].stats().counters.delivered, 2 + round, "round {round}");
        assert_eq!(shards[0].stats().counters.delivered, 3 + round, "round {round}");
    }
    shards[0].inject(a, PingPongMsg::Halt).unwrap();
    settle(&mut shards);
    assert_accounted(&shards);
}

#[test]
fn stale_ids_and_stopped_agents_become_counted_dead_letters() {
    let mut shards = cluster(1);
    let c = shards[0].spawn(Counter::default()).unwrap();
    shards[0].inject(c, CounterMsg::Add(1)).unwrap();
    settle(&mut shards);
    struct Stopper(crate::agent::AgentId);
    impl Agent for Stopper {
        type Msg = ();
        fn handle(&mut self, _: (), ctx: &mut Ctx<'_>) {
            ctx.stop(self.0);
        }
    }
    let s = shards[0].spawn(Stopper(c.id())).unwrap();
    shards[0].inject(s, ()).unwrap();
    settle(&mut shards);
    assert_eq!(shards[0].agents(), 1);
    shards[0].inject(c, CounterMsg::Add(1)).unwrap();
    // The slot is reused by a new counter with a new generation: the old id cannot reach it.
    let c2 = shards[0].spawn(Counter::default()).unwrap();
    assert_eq!(c2.id().slot(), c.id().slot());
    assert_ne!(c2.id().generation(), c.id().generation());
    shards[0].inject(c, CounterMsg::Add(1)).unwrap();
    settle(&mut shards);
    let k = shards[0].stats().counters;
    assert_eq!(k.dead(DeadLetterReason::StaleGeneration), 2, "{k:?}");
    assert_accounted(&shards);
}

/// Sends `n` messages to a target in one handler call and records what came back.
struct Flood {
    target: Addr<CounterMsg>,
    rejected: u64,
    undelivered: Vec<DeadLetterReason>,
}

impl Agent for Flood {
    type Msg = u32;
    fn handle(&mut self, n: u32, ctx: &mut Ctx<'_>) {
        for _ in 0..n {
            if ctx.send_with(self.target, CounterMsg::Add(1), SendOptions::new().tracked()).is_err() {
                self.rejected += 1;
            }
        }
    }
    fn on_undelivered(&mut self, u: Undelivered, _ctx: &mut Ctx<'_>) {
        assert!(u.message.is::<CounterMsg>());
        self.undelivered.push(u.reason);
    }
}

#[test]
fn full_mailboxes_reject_locally_and_count_remotely() {
    let limits = ShardLimits { mailbox_capacity: 4, ..ShardLimits::default() };
    let mut shards = Shard::cluster(2, limits.clone(), 64).unwrap();
    let local_target = shards[0].spawn(Counter::default()).unwrap();
    let remote_target = shards[1].spawn(Counter::default()).unwrap();
    let f1 = shards[0].spawn(Flood { target: local_target, rejected: 0, undelivered: vec![] }).unwrap();
    let f2 = shards[0].spawn(Flood { target: remote_target, rejected: 0, undelivered: vec![] }).unwrap();
    shards[0].inject(f1, 10).unwrap();
    shards[0].inject(f2, 10).unwrap();
    settle(&mut shards);
    let s0 = shards[0].stats().counters;
    let s1 = shards[1].stats().counters;
    // Local: 4 fit, 6 handed back synchronously (not sent). Remote: all 10 sent, 4 delivered,
    // 6 dead-lettered as mailbox_full on shard 1 and reported back to the sender.
    assert_eq!(s0.rejected_full, 6);
    assert_eq!(s1.dead(DeadLetterReason::MailboxFull), 6);
    assert_eq!(s1.delivered, 4);
    assert_accounted(&shards);

    let drop_limits = ShardLimits { mailbox_capacity: 2, overflow: OverflowPolicy::Drop, ..limits };
    let mut shards = Shard::cluster(1, drop_limits, 64).unwrap();
    let t = shards[0].spawn(Counter::default()).unwrap();
    let f = shards[0].spawn(Flood { target: t, rejected: 0, undelivered: vec![] }).unwrap();
    shards[0].inject(f, 5).unwrap();
    settle(&mut shards);
    let k = shards[0].stats().counters;
    assert_eq!((k.rejected_full, k.dead(DeadLetterReason::MailboxFull)), (0, 3));
    assert_accounted(&shards);
}

/// Asks a counter for its total and keeps every answer.
#[derive(Default)]
struct Asker {
    target: Option<Addr<CounterMsg>>,
    timeout_ms: u64,
    answers: Vec<Result<u64, AskError>>,
    /// Asks made so far; each answer names the ask it answers.
    asked: u32,
}

#[derive(Debug)]
enum AskerMsg {
    /// Ask this counter.
    Ask(Addr<CounterMsg>),
    /// The answer to ask number `ask`.
    Total { ask: u32, total: Result<u64, AskError> },
}

impl Agent for Asker {
    type Msg = AskerMsg;
    fn handle(&mut self, msg: AskerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            AskerMsg::Ask(target) => {
                self.target = Some(target);
                let ask = self.asked;
                self.asked += 1;
                ctx.ask(target, CounterMsg::Get)
                    .timeout(Duration::from_millis(self.timeout_ms))
                    .then(move |total| AskerMsg::Total { ask, total })
                    .unwrap();
            }
            AskerMsg::Total { ask, total } => {
                assert!(ask < self.asked);
                self.answers.push(total);
            }
        }
    }
}

/// Reads an agent's state through an ask from a host-side cell: tests use the stats instead.
#[test]
fn asks_across_shards_reply_and_time_out() {
    let mut shards = cluster(2);
    let counter = shards[1].spawn(Counter::default()).unwrap();
    shards[1].inject(counter, CounterMsg::Add(41)).unwrap();
    let asker = shards[0].spawn(Asker { timeout_ms: 10_000, ..Asker::default() }).unwrap();
    shards[0].inject(asker, AskerMsg::Ask(counter)).unwrap();
    settle(&mut shards);
    let k0 = shards[0].stats().counters;
    // The reply is a counted message: sent on shard 1, delivered on shard 0.
    assert_eq!(k0.delivered, 2, "{k0:?}");
    assert_eq!(k0.ask_timeouts, 0);

    // A timeout of zero expires before shard 1 answers; the late reply is counted.
    let quick = shards[0].spawn(Asker { timeout_ms: 0, ..Asker::default() }).unwrap();
    shards[0].inject(quick, AskerMsg::Ask(counter)).unwrap();
    shards[0].pass();
    std::thread::sleep(Duration::from_millis(2));
    shards[0].pass();
    settle(&mut shards);
    let k0 = shards[0].stats().counters;
    let k1 = shards[1].stats().counters;
    assert_eq!(k0.ask_timeouts, 1);
    // The request itself carried the deadline, so shard 1 dropped it as expired.
    assert_eq!(k1.dead(DeadLetterReason::Expired), 1, "{k1:?}");
    assert_accounted(&shards);
}

#[test]
fn registry_is_partitioned_and_names_die_with_their_agent() {
    struct Named {
        name: &'static str,
        outcome: Option<Registration>,
        lookups: Vec<Lookup>,
        replies: usize,
    }
    impl Agent for Named {
        type Msg = &'static str;
        fn on_start(&mut self, ctx: &mut Ctx<'_>) {
            self.outcome = Some(ctx.register(self.name, |r| if r.is_ok() { "answered" } else { "failed" }));
        }
        fn handle(&mut self, query: &'static str, ctx: &mut Ctx<'_>) {
            match query {
                "stop" => ctx.stop_self(),
                "answered" => self.replies += 1,
                "failed" => panic!("a registry request failed"),
                _ => self.lookups.push(ctx.lookup(query, |r| if r.is_ok() { "answered" } else { "failed" })),
            }
        }
    }
    let mut shards = cluster(2);
    // Pick names owned by each shard.
    let on = |s: usize| -> &'static str {
        (0..)
            .map(|i| &*Box::leak(format!("n{i}").into_boxed_str()))
            .find(|n| crate::registry::owner_of(n, 2) == s)
            .unwrap()
    };
    let (local_name, remote_name) = (on(0), on(1));
    let a = shards[0].spawn(Named { name: local_name, outcome: None, lookups: vec![], replies: 0 }).unwrap();
    let b = shards[0].spawn(Named { name: remote_name, outcome: None, lookups: vec![], replies: 0 }).unwrap();
    settle(&mut shards);
    assert_eq!(shards[0].registry.lookup(local_name), Some(a.id()));
    assert_eq!(shards[1].registry.lookup(remote_name), Some(b.id()));
    // A duplicate is refused.
    let dup = shards[0].spawn(Named { name: local_name, outcome: None, lookups: vec![], replies: 0 }).unwrap();
    let _ = dup;
    assert!(shards[0].registry.lookup(local_name) == Some(a.id()));
    // Stopping b removes its remote name with one message.
    shards[0].inject(b, "stop").unwrap();
    settle(&mut shards);
    assert_eq!(shards[1].registry.lookup(remote_name), None);
    assert_eq!(shards[0].registry.len() + shards[1].registry.len(), 1);
}

#[test]
fn one_shard_holds_a_million_agents() {
    let n = if cfg!(miri) { 1_000 } else { 1_000_000 };
    let mut shards = cluster(1);
    let mut last = None;
    for _ in 0..n {
        last = Some(shards[0].spawn(Counter::default()).unwrap());
    }
    assert_eq!(shards[0].agents(), n as u64);
    shards[0].inject(last.unwrap(), CounterMsg::Add(5)).unwrap();
    settle(&mut shards);
    assert_eq!(shards[0].stats().counters.delivered, 1);
}

#[test]
fn reply_token_works_for_host_style_cells() {
    // ReplyTo must be small enough that a request carrying one travels inline.
    assert!(crate::payload::fits_inline::<CounterMsg>());
    assert!(std::mem::size_of::<ReplyTo<u64>>() <= 24);
}

#[test]
fn an_ask_to_an_agent_on_the_same_shard_is_answered() {
    let mut shards = cluster(1);
    let counter = shards[0].spawn(Counter::default()).unwrap();
    shards[0].inject(counter, CounterMsg::Add(7)).unwrap();
    let asker = shards[0].spawn(Asker { timeout_ms: 10_000, ..Asker::default() }).unwrap();
    shards[0].inject(asker, AskerMsg::Ask(counter)).unwrap();
    settle(&mut shards);
    let k = shards[0].stats().counters;
    assert_eq!((k.ask_timeouts, k.dead_letters_total()), (0, 0), "{k:?}");
    // Add, the asker's start message, Get, and the reply.
    assert_eq!(k.delivered, 4, "{k:?}");
    assert_accounted(&shards);
}

#[test]
fn asks_through_a_tiny_ring_and_backlog_are_all_answered() {
    // A backlog of 1 and a ring of 2: a burst of asks meets backpressure, their answers don't.
    let limits = ShardLimits { backlog_capacity: 1, ..ShardLimits::default() };
    let mut shards = Shard::cluster(2, limits, 2).unwrap();
    let counter = shards[1].spawn(Counter::default()).unwrap();
    let askers: Vec<_> =
        (0..3).map(|_| shards[0].spawn(Asker { timeout_ms: 10_000, ..Asker::default() }).unwrap()).collect();
    for a in &askers {
        shards[0].inject(*a, AskerMsg::Ask(counter)).unwrap();
    }
    settle(&mut shards);
    let k0 = shards[0].stats().counters;
    assert_eq!(k0.ask_timeouts, 0, "{k0:?}");
    assert_accounted(&shards);
}

/// Sends itself `left` more messages, one per turn, counting its turns.
struct SelfLooper {
    left: u32,
}

impl Agent for SelfLooper {
    type Msg = ();
    fn handle(&mut self, (): (), ctx: &mut Ctx<'_>) {
        if self.left > 0 {
            self.left -= 1;
            ctx.send(ctx.myself(), ()).unwrap();
        }
    }
}

#[test]
fn a_self_message_waits_for_the_next_pass() {
    let mut shards = cluster(1);
    let looper = shards[0].spawn(SelfLooper { left: 5 }).unwrap();
    shards[0].inject(looper, ()).unwrap();
    // One handled message per pass: the self-sent one is a yield, not a busy loop.
    for pass in 1..=6u64 {
        shards[0].pass();
        assert_eq!(shards[0].stats().counters.delivered, pass, "pass {pass}");
    }
    assert_eq!(shards[0].pass(), 0);
    assert_accounted(&shards);
}

#[test]
fn a_local_exchange_runs_within_one_pass() {
    let mut shards = cluster(1);
    let a = shards[0].spawn(PingPong::default()).unwrap();
    let b = shards[0].spawn(PingPong::default()).unwrap();
    shards[0].inject(a, PingPongMsg::Partner(b)).unwrap();
    shards[0].inject(b, PingPongMsg::Partner(a)).unwrap();
    shards[0].inject(a, PingPongMsg::Serve(1)).unwrap();
    // The ball bounces between the two agents in the same pass, up to the turn limit.
    shards[0].pass();
    let delivered = shards[0].stats().counters.delivered;
    let turns = ShardLimits::default().agents_per_pass as u64;
    assert!(delivered >= turns - 3, "{delivered} messages in one pass, expected about {turns}");
    shards[0].inject(a, PingPongMsg::Halt).unwrap();
    settle(&mut shards);
    assert_accounted(&shards);
}

#[test]
fn a_shard_that_yields_after_every_idle_pass_still_parks() {
    use super::runner::{DriveOutcome, Driver, IdlePolicy};
    let mut shards = cluster(1);
    let policy = IdlePolicy {
        spin_before_park: Duration::from_micros(20),
        passes_before_yield: 1,
        park_timeout: Some(Duration::from_micros(100)),
    };
    let mut driver = Driver::new(policy);
    for _ in 0..1_000_000 {
        assert_eq!(driver.run(&mut shards[0], || false, true), DriveOutcome::Yield);
        if shards[0].stats().counters.parks > 0 {
            return;
        }
    }
    panic!("an idle shard yielding on every pass never parked");
}

/// Asks the counter it is given three times in one handler and keeps what each ask returned.
#[derive(Default)]
struct TripleAsker {
    outcomes: std::rc::Rc<std::cell::RefCell<Vec<Result<(), String>>>>,
}

impl Agent for TripleAsker {
    /// A counter to ask, or (`None`) an answer, which it ignores.
    type Msg = Option<Addr<CounterMsg>>;
    fn handle(&mut self, counter: Option<Addr<CounterMsg>>, ctx: &mut Ctx<'_>) {
        let Some(counter) = counter else { return };
        for _ in 0..3 {
            let r =
                ctx.ask(counter, CounterMsg::Get).timeout(Duration::from_secs(10)).then(|_| None::<Addr<CounterMsg>>);
            self.outcomes.borrow_mut().push(r.map_err(|e| format!("{e:?}")));
        }
    }
}

#[test]
fn an_ask_past_the_shards_reply_slots_is_refused_as_too_many_asks() {
    let mut shards = cluster(1);
    shards[0].asks.limit = 2;
    let counter = shards[0].spawn(Counter::default()).unwrap();
    let asker = TripleAsker::default();
    let outcomes = asker.outcomes.clone();
    let asker = shards[0].spawn(asker).unwrap();
    shards[0].inject(asker, Some(counter)).unwrap();
    settle(&mut shards);
    let outcomes = outcomes.borrow().clone();
    assert_eq!(outcomes, vec![Ok(()), Ok(()), Err("TooManyAsks(..)".to_string())]);
    assert_accounted(&shards);
}

/// Asks the agent it is given once and keeps the outcome.
#[derive(Default)]
struct AskOnce {
    got: std::rc::Rc<std::cell::RefCell<Option<Result<u64, AskError>>>>,
}

#[derive(Debug)]
enum AskOnceMsg {
    /// Ask this agent.
    Ask(Addr<ReplyTo<u64>>),
    /// Its answer.
    Got(Result<u64, AskError>),
}

impl Agent for AskOnce {
    type Msg = AskOnceMsg;
    fn handle(&mut self, msg: AskOnceMsg, ctx: &mut Ctx<'_>) {
        match msg {
            AskOnceMsg::Ask(target) => {
                ctx.ask(target, |reply| reply).timeout(Duration::from_secs(10)).then(AskOnceMsg::Got).expect("asked")
            }
            AskOnceMsg::Got(answer) => *self.got.borrow_mut() = Some(answer),
        }
    }
}

/// Drops every `ReplyTo` it gets, unanswered.
struct DropsReplies;
impl Agent for DropsReplies {
    type Msg = ReplyTo<u64>;
    fn handle(&mut self, _unanswered: ReplyTo<u64>, _ctx: &mut Ctx<'_>) {}
}

#[test]
fn an_agent_ask_whose_reply_to_is_dropped_fails_at_once_with_dropped() {
    for target_shard in [0, 1] {
        let mut shards = cluster(2);
        let drops = shards[target_shard].spawn(DropsReplies).unwrap();
        let asker = AskOnce::default();
        let got = asker.got.clone();
        let asker = shards[0].spawn(asker).unwrap();
        shards[0].inject(asker, AskOnceMsg::Ask(drops)).unwrap();
        // Settling does not wait for the ask's 10 s deadline: only a fast failure is seen.
        settle(&mut shards);
        assert_eq!(*got.borrow(), Some(Err(AskError::Dropped)), "target on shard {target_shard}");
        assert_eq!((shards[0].asks.live(), shards[0].answers.live()), (0, 0));
        assert_accounted(&shards);
    }
}

/// Hands every `ReplyTo` it gets on to the agent it was given, with a plain send.
struct Forwards(Addr<ReplyTo<u64>>);
impl Agent for Forwards {
    type Msg = ReplyTo<u64>;
    fn handle(&mut self, reply: ReplyTo<u64>, ctx: &mut Ctx<'_>) {
        let _ = ctx.send(self.0, reply);
    }
}

#[test]
fn an_agent_ask_forwarded_to_a_stopped_agent_fails_at_once_with_undelivered() {
    let mut shards = cluster(2);
    let gone = shards[1].spawn(DropsReplies).unwrap();
    let h = crate::engine::EngineHandle { shared: shards[0].shared.clone() };
    h.stop(gone.id()).unwrap();
    settle(&mut shards);
    let forwards = shards[1].spawn(Forwards(gone)).unwrap();
    let asker = AskOnce::default();
    let got = asker.got.clone();
    let asker = shards[0].spawn(asker).unwrap();
    shards[0].inject(asker, AskOnceMsg::Ask(forwards)).unwrap();
    settle(&mut shards);
    assert_eq!(*got.borrow(), Some(Err(AskError::Undelivered(DeadLetterReason::StaleGeneration))));
    assert_accounted(&shards);
}
