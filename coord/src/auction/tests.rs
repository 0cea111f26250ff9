//! Auctions end to end on a two-shard engine: empty, declined and over-reserve rounds, ties,
//! dying, late, repeated and unasked bidders, re-auctions after a failure, a missed deadline
//! and a death, candidates on both shards, each scoring rule, and the trace of a traced auction. Waits have generous
//! deadlines; assertions are on outcomes and counters, never on timings.

use super::*;
use crate::index::{LoadSource, NEUTRAL_REPUTATION};
use crate::tests::{engine, Worker};
use nexus_engine::config::CoordConfig;
use std::sync::atomic::{AtomicU32, Ordering};

const LONG: Duration = Duration::from_secs(5);

#[derive(Clone, Copy)]
enum Behaviour {
    Complete,
    Fail,
    /// Keeps the contract and never reports.
    Ignore,
    /// Stops (failed) when awarded.
    Die,
}

struct TestBidder {
    offer: Option<(f64, Duration)>,
    behaviour: Behaviour,
    calls: Arc<AtomicU32>,
    cancels: Arc<AtomicU32>,
    held: Vec<Contract>,
}

impl Bidder for TestBidder {
    fn bid(&mut self, _call: &CallForBids) -> BidDecision {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.offer {
            Some((cost, completion)) => BidDecision::Bid { cost, completion },
            None => BidDecision::Decline,
        }
    }
    fn perform(&mut self, contract: Contract, ctx: &mut Ctx<'_>) {
        match self.behaviour {
            Behaviour::Complete => contract.done(ctx).expect("report sent"),
            Behaviour::Fail => contract.failed(ctx, "no luck").expect("report sent"),
            Behaviour::Ignore => self.held.push(contract),
            Behaviour::Die => ctx.fail("died on the job"),
        }
    }
    fn cancelled(&mut self, _ticket: Ticket, _ctx: &mut Ctx<'_>) {
        self.cancels.fetch_add(1, Ordering::SeqCst);
    }
}

struct Spawned {
    id: AgentId,
    calls: Arc<AtomicU32>,
    cancels: Arc<AtomicU32>,
}

fn bidder(
    h: &EngineHandle,
    coord: &Coord,
    shard: usize,
    caps: CapSet,
    offer: Option<(f64, Duration)>,
    behaviour: Behaviour,
) -> Spawned {
    let (calls, cancels) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let (c, k, coord) = (calls.clone(), cancels.clone(), coord.clone());
    let addr = h
        .spawn(SpawnPlacement::Shard(shard), move || {
            Contractor::new(coord, caps, TestBidder { offer, behaviour, calls: c, cancels: k, held: Vec::new() })
        })
        .expect("spawned");
    Spawned { id: addr.id(), calls, cancels }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn offer(cost: f64) -> Option<(f64, Duration)> {
    Some((cost, ms(1)))
}

struct Setup {
    engine: nexus_engine::engine::Engine,
    h: EngineHandle,
    coord: Coord,
    manager: Addr<AuctionMsg>,
    caps: CapSet,
}

fn setup() -> Setup {
    let engine = engine();
    let h = engine.handle();
    let coord = Coord::start(&h, &CoordConfig::default()).expect("coord starts");
    let manager = spawn_manager(&h, &coord, 0).expect("manager spawned");
    let caps = coord.cap_set(&["solve"]).expect("caps");
    Setup { engine, h, coord, manager, caps }
}

impl Setup {
    fn task(&self) -> Task {
        Task::new(self.caps, LONG)
    }
    fn run(&self, spec: AuctionSpec) -> Outcome {
        run_auction_blocking(&self.h, &self.coord, self.manager, spec).expect("auction answered")
    }
    fn stats(&self) -> AuctionStats {
        stats_blocking(&self.h, self.manager).expect("stats")
    }
    fn wait_stats(&self, what: &str, ok: impl Fn(&AuctionStats) -> bool) -> AuctionStats {
        let deadline = std::time::Instant::now() + LONG;
        loop {
            let s = self.stats();
            if ok(&s) {
                return s;
            }
            assert!(std::time::Instant::now() < deadline, "{what}: {s:?}");
            std::thread::sleep(ms(2));
        }
    }
    fn reputation(&self, id: AgentId) -> f64 {
        reputation_blocking(&self.h, self.manager, id).expect("reputation").map_or(NEUTRAL_REPUTATION, |e| e.value())
    }
    fn shutdown(self) {
        self.engine.shutdown().expect("engine stops");
    }
}

#[test]
fn messages_travel_inline() {
    assert!(nexus_engine::payload::travels_unboxed::<AuctionMsg>(), "{}", std::mem::size_of::<AuctionMsg>());
    assert!(nexus_engine::payload::travels_unboxed::<BidderMsg>(), "{}", std::mem::size_of::<BidderMsg>());
}

#[test]
fn no_bidders_by_discovery_or_by_an_empty_list() {
    let s = setup();
    let out = s.run(AuctionSpec::new(s.task()));
    assert_eq!((out.kind.clone(), out.rounds, out.winner()), (OutcomeKind::NoBidders, 1, None));
    let out = s.run(AuctionSpec::new(s.task()).candidates(Vec::new()));
    assert_eq!(out.kind, OutcomeKind::NoBidders);
    let st = s.stats();
    assert_eq!((st.auctions, st.rounds, st.calls, st.no_bidders), (2, 2, 0, 2));
    s.shutdown();
}

#[test]
fn all_declined() {
    let s = setup();
    for shard in [0, 1, 1] {
        bidder(&s.h, &s.coord, shard, s.caps, None, Behaviour::Complete);
    }
    let out = s.run(AuctionSpec::new(s.task()).window(Duration::ZERO));
    assert_eq!(out.kind, OutcomeKind::NoAcceptableBid { declined: 3, over_reserve: 0, silent: 0 });
    let st = s.stats();
    assert_eq!((st.calls, st.declines, st.bids, st.awards, st.no_acceptable), (3, 3, 0, 0, 1));
    s.shutdown();
}

#[test]
fn bids_over_the_reserve_are_refused() {
    let s = setup();
    let a = bidder(&s.h, &s.coord, 0, s.caps, offer(6.0), Behaviour::Complete);
    let b = bidder(&s.h, &s.coord, 1, s.caps, offer(f64::NAN), Behaviour::Complete);
    let c = bidder(&s.h, &s.coord, 1, s.caps, offer(7.0), Behaviour::Complete);
    let spec = AuctionSpec::new(s.task().reserve(5.0)).candidates(vec![a.id, b.id, c.id]).window(Duration::ZERO);
    let out = s.run(spec);
    assert_eq!(out.kind, OutcomeKind::NoAcceptableBid { declined: 0, over_reserve: 3, silent: 0 });
    // At the reserve is accepted.
    let d = bidder(&s.h, &s.coord, 0, s.caps, offer(5.0), Behaviour::Complete);
    let out = s.run(AuctionSpec::new(s.task().reserve(5.0)).window(Duration::ZERO));
    assert_eq!(out.winner(), Some(d.id));
    let st = s.stats();
    assert_eq!((st.over_reserve, st.bids, st.completions), (6, 7, 1));
    s.shutdown();
}

#[test]
fn a_tie_goes_to_the_lower_agent_id() {
    let s = setup();
    let ids: Vec<AgentId> = [1, 0, 1, 0]
        .iter()
        .map(|&shard| bidder(&s.h, &s.coord, shard, s.caps, offer(3.0), Behaviour::Complete).id)
        .collect();
    let lowest = *ids.iter().min().expect("four");
    for rule in [ScoringRule::LowestCost, ScoringRule::EarliestCompletion] {
        let out = s.run(AuctionSpec::new(s.task()).rule(rule).window(Duration::ZERO).candidates(ids.clone()));
        assert_eq!(out.winner(), Some(lowest), "{rule:?}");
    }
    s.shutdown();
}

/// Takes `BidderMsg` and stops (failed) when called for bids, without answering.
struct DiesWhenCalled;

impl nexus_engine::agent::Agent for DiesWhenCalled {
    type Msg = BidderMsg;
    fn handle(&mut self, msg: BidderMsg, ctx: &mut Ctx<'_>) {
        if let BidderMsg::CallForBids(_) = msg {
            ctx.fail("gone mid-auction");
        }
    }
}

#[test]
fn bidders_that_die_are_gone_or_take_another_message_type_do_not_hang_a_zero_window() {
    let s = setup();
    let dying = s.h.spawn(SpawnPlacement::Shard(1), || DiesWhenCalled).expect("spawned").id();
    let good = bidder(&s.h, &s.coord, 0, s.caps, offer(5.0), Behaviour::Complete);
    let gone = bidder(&s.h, &s.coord, 1, s.caps, offer(1.0), Behaviour::Complete);
    s.h.stop(gone.id).expect("stopped");
    let c = s.coord.clone();
    let caps = s.caps;
    let worker =
        s.h.spawn(SpawnPlacement::Shard(0), move || Worker { coord: c, caps, load: LoadSource::Mailbox })
            .expect("spawned")
            .id();
    // A long answer timeout: only the watches and the dead letters can end this round early.
    let spec = AuctionSpec::new(s.task())
        .candidates(vec![dying, good.id, gone.id, worker])
        .window(Duration::ZERO)
        .answer_timeout(Duration::from_secs(60));
    let out = s.run(spec);
    assert_eq!(out.winner(), Some(good.id));
    let st = s.stats();
    assert_eq!((st.bids, st.unreachable, st.silent), (1, 3, 0), "{st:?}");
    s.shutdown();
}

/// Takes `BidderMsg` and answers every call `delay` late with `cost`.
struct Late {
    delay: Duration,
    cost: f64,
}

impl nexus_engine::agent::Agent for Late {
    type Msg = BidderMsg;
    fn handle(&mut self, msg: BidderMsg, ctx: &mut Ctx<'_>) {
        if let BidderMsg::CallForBids(call) = msg {
            let answer = call.answer(ctx.id(), BidDecision::Bid { cost: self.cost, completion: ms(1) });
            ctx.send_after(call.manager, answer, self.delay);
        }
    }
}

#[test]
fn a_late_bid_is_ignored_and_counted() {
    let s = setup();
    let late = s.h.spawn(SpawnPlacement::Shard(1), || Late { delay: ms(600), cost: 1.0 }).expect("spawned").id();
    let good = bidder(&s.h, &s.coord, 0, s.caps, offer(5.0), Behaviour::Complete);
    let out = s.run(AuctionSpec::new(s.task()).candidates(vec![late, good.id]).window(ms(40)));
    assert_eq!(out.winner(), Some(good.id), "the window closed without the cheaper, late bid");
    let st = s.wait_stats("the late bid arrives", |st| st.late == 1);
    assert_eq!((st.bids, st.silent), (1, 1));
    s.shutdown();
}

/// Answers twice, and sends a bid in the name of an agent that was not asked.
struct Noisy {
    stranger: AgentId,
}

impl nexus_engine::agent::Agent for Noisy {
    type Msg = BidderMsg;
    fn handle(&mut self, msg: BidderMsg, ctx: &mut Ctx<'_>) {
        if let BidderMsg::CallForBids(call) = msg {
            let bid = BidDecision::Bid { cost: 2.0, completion: ms(1) };
            let _ = ctx.send(call.manager, call.answer(ctx.id(), bid));
            let _ = ctx.send(call.manager, call.answer(ctx.id(), BidDecision::Bid { cost: 0.5, completion: ms(1) }));
            let _ =
                ctx.send(call.manager, call.answer(self.stranger, BidDecision::Bid { cost: 0.1, completion: ms(1) }));
        }
    }
}

#[test]
fn repeated_and_unasked_bids_are_ignored_and_counted() {
    let s = setup();
    let stranger = bidder(&s.h, &s.coord, 0, s.caps, offer(0.1), Behaviour::Complete);
    let noisy = s.h.spawn(SpawnPlacement::Shard(1), move || Noisy { stranger: stranger.id }).expect("spawned").id();
    // Never answers, so the window stays open until its end and the repeats arrive while it is.
    let silent =
        s.h.spawn(SpawnPlacement::Shard(0), || Late { delay: Duration::from_secs(3600), cost: 0.0 }).expect("ok").id();
    let good = bidder(&s.h, &s.coord, 0, s.caps, offer(1.0), Behaviour::Complete);
    let out = s.run(AuctionSpec::new(s.task()).candidates(vec![noisy, silent, good.id]).window(ms(300)));
    assert_eq!(out.winner(), Some(good.id), "noisy's repeat at 0.5 did not count");
    let st = s.stats();
    assert_eq!((st.bids, st.duplicates, st.unasked, st.silent), (2, 1, 1, 1), "{st:?}");
    assert_eq!(stranger.calls.load(Ordering::SeqCst), 0);
    s.shutdown();
}

#[test]
fn a_failed_winner_loses_reputation_and_the_task_is_auctioned_again_without_it() {
    let s = setup();
    let a = bidder(&s.h, &s.coord, 1, s.caps, offer(1.0), Behaviour::Fail);
    let b = bidder(&s.h, &s.coord, 0, s.caps, offer(2.0), Behaviour::Complete);
    assert_eq!(s.reputation(a.id), NEUTRAL_REPUTATION);
    let out = s.run(AuctionSpec::new(s.task()).window(Duration::ZERO));
    assert_eq!(out.winner(), Some(b.id));
    assert_eq!(out.rounds, 2);
    assert_eq!(out.failures, vec![Failure { round: 1, agent: a.id, reason: FailReason::Failed("no luck".into()) }]);
    assert_eq!(a.calls.load(Ordering::SeqCst), 1, "excluded from the second round");
    assert_eq!(b.calls.load(Ordering::SeqCst), 2);
    assert!(s.reputation(a.id) < NEUTRAL_REPUTATION);
    assert!(s.reputation(b.id) > NEUTRAL_REPUTATION);
    let st = s.stats();
    assert_eq!((st.rounds, st.awards, st.failures, st.completions), (2, 2, 1, 1));
    // Discovery ranks by the pushed value (a's shard is not the manager's: a message).
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let found = s.coord.discover_blocking(&s.h, crate::index::Query::all(s.caps, 5)).expect("discovered");
        let rep = found.candidates.iter().find(|c| c.id == a.id).map(|c| c.reputation);
        if rep.is_some_and(|r| r < NEUTRAL_REPUTATION) {
            assert_eq!(found.candidates[0].id, b.id, "the reputable one ranks first");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "discovery sees the new reputation: {found:?}");
        std::thread::sleep(ms(2));
    }
    s.shutdown();
}

#[test]
fn a_missed_deadline_is_withdrawn_and_auctioned_again() {
    let s = setup();
    let a = bidder(&s.h, &s.coord, 0, s.caps, offer(1.0), Behaviour::Ignore);
    let b = bidder(&s.h, &s.coord, 1, s.caps, offer(2.0), Behaviour::Complete);
    let out = s.run(AuctionSpec::new(Task::new(s.caps, ms(50))).window(Duration::ZERO));
    assert_eq!(out.winner(), Some(b.id));
    assert_eq!(out.failures, vec![Failure { round: 1, agent: a.id, reason: FailReason::MissedDeadline }]);
    assert!(s.reputation(a.id) < NEUTRAL_REPUTATION);
    let deadline = std::time::Instant::now() + LONG;
    while a.cancels.load(Ordering::SeqCst) != 1 {
        assert!(std::time::Instant::now() < deadline, "the late winner is told");
        std::thread::sleep(ms(2));
    }
    let st = s.stats();
    assert_eq!((st.deadline_misses, st.completions, st.rounds), (1, 1, 2));
    s.shutdown();
}

#[test]
fn a_winner_that_dies_is_replaced_and_max_rounds_bounds_the_retries() {
    let s = setup();
    let a = bidder(&s.h, &s.coord, 1, s.caps, offer(1.0), Behaviour::Die);
    let b = bidder(&s.h, &s.coord, 0, s.caps, offer(2.0), Behaviour::Complete);
    let out = s.run(AuctionSpec::new(s.task()).window(Duration::ZERO));
    assert_eq!(out.winner(), Some(b.id));
    assert_eq!(out.failures, vec![Failure { round: 1, agent: a.id, reason: FailReason::Died }]);
    assert!(s.reputation(a.id) < NEUTRAL_REPUTATION);
    assert_eq!(s.stats().deaths, 1);

    // Every winner fails: two rounds, then give up.
    let fail = s.coord.cap_set(&["flaky"]).expect("caps");
    let f1 = bidder(&s.h, &s.coord, 0, fail, offer(1.0), Behaviour::Fail);
    let f2 = bidder(&s.h, &s.coord, 1, fail, offer(2.0), Behaviour::Fail);
    bidder(&s.h, &s.coord, 1, fail, offer(3.0), Behaviour::Fail);
    let out = s.run(AuctionSpec::new(Task::new(fail, LONG)).window(Duration::ZERO).max_rounds(2));
    assert_eq!((out.kind.clone(), out.rounds), (OutcomeKind::GaveUp, 2));
    assert_eq!(out.failures.iter().map(|f| f.agent).collect::<Vec<_>>(), vec![f1.id, f2.id]);
    assert_eq!(s.stats().gave_up, 1);
    s.shutdown();
}

#[test]
fn candidates_on_both_shards_are_called_and_the_best_wins() {
    let s = setup();
    let mut all = Vec::new();
    for (shard, cost) in [(0, 4.0), (1, 3.0), (0, 5.0), (1, 2.5), (1, 9.0), (0, 2.6)] {
        all.push(bidder(&s.h, &s.coord, shard, s.caps, offer(cost), Behaviour::Complete));
    }
    for window in [Duration::ZERO, ms(5_000)] {
        let out = s.run(AuctionSpec::new(s.task()).window(window));
        assert_eq!(out.winner(), Some(all[3].id), "the shard-1 bidder at 2.5");
    }
    assert!(all.iter().all(|b| b.calls.load(Ordering::SeqCst) == 2));
    let st = s.stats();
    assert_eq!((st.calls, st.bids, st.completions, st.silent), (12, 12, 2, 0));
    s.shutdown();
}

#[test]
fn each_scoring_rule_picks_what_it_should() {
    let s = setup();
    let x = bidder(&s.h, &s.coord, 0, s.caps, Some((1.0, ms(100))), Behaviour::Complete);
    let y = bidder(&s.h, &s.coord, 1, s.caps, Some((5.0, ms(1))), Behaviour::Complete);
    let z = bidder(&s.h, &s.coord, 0, s.caps, Some((2.0, ms(10))), Behaviour::Complete);
    let ids = vec![x.id, y.id, z.id];
    let run =
        |rule| s.run(AuctionSpec::new(s.task()).rule(rule).candidates(ids.clone()).window(Duration::ZERO)).winner();
    assert_eq!(run(ScoringRule::LowestCost), Some(x.id));
    assert_eq!(run(ScoringRule::EarliestCompletion), Some(y.id));
    // Cost and earliness weighed equally: z is nearly as cheap as x and nearly as quick as y.
    assert_eq!(run(ScoringRule::Weighted { cost: 1.0, completion: 1.0, reputation: 0.0 }), Some(z.id));
    // Each has completed once; z once more alone, and reputation alone picks it.
    let out = s.run(AuctionSpec::new(s.task()).candidates(vec![z.id]).window(Duration::ZERO));
    assert_eq!(out.winner(), Some(z.id));
    assert!(s.reputation(z.id) > s.reputation(x.id));
    assert_eq!(run(ScoringRule::Weighted { cost: 0.0, completion: 0.0, reputation: 1.0 }), Some(z.id));
    s.shutdown();
}

#[test]
fn an_invalid_spec_is_a_typed_error_with_a_hint() {
    let s = setup();
    let err = run_auction_blocking(&s.h, &s.coord, s.manager, AuctionSpec::new(s.task()).max_rounds(0)).unwrap_err();
    assert!(matches!(err, AuctionError::InvalidSpec(_)));
    assert!(err.to_string().contains("hint:"), "{err}");
    let bad = AuctionSpec::new(s.task()).rule(ScoringRule::Weighted { cost: -1.0, completion: 0.0, reputation: 0.0 });
    assert!(bad.validate().is_err());
    assert!(AuctionSpec::new(s.task().reserve(f64::NAN)).validate().is_err());
    s.shutdown();
}

#[test]
fn ticket_round_trips() {
    let t = Ticket::new(AuctionId(123_456), 7);
    assert_eq!((t.auction(), t.round()), (AuctionId(123_456), 7));
}

/// A bidder that asks another agent while performing, and reports once the answer comes back
/// as a `Resume` (run by the contractor on its bidder).
struct AskingBidder {
    helper: Addr<nexus_engine::builtin::EchoMsg>,
}

impl AskingBidder {
    fn answered(&mut self, contract: Contract, answer: Result<u64, AskError>, ctx: &mut Ctx<'_>) {
        match answer {
            Ok(7) => contract.done(ctx).expect("report sent"),
            _ => contract.failed(ctx, "the helper did not answer 7").expect("report sent"),
        }
    }
}

impl Bidder for AskingBidder {
    fn bid(&mut self, _call: &CallForBids) -> BidDecision {
        BidDecision::Bid { cost: 1.0, completion: ms(1) }
    }
    fn perform(&mut self, contract: Contract, ctx: &mut Ctx<'_>) {
        ctx.ask(self.helper, |reply| nexus_engine::builtin::EchoMsg::Echo { value: 7, reply })
            .timeout(LONG)
            .then(move |answer| {
                BidderMsg::Resume(Resume::new(move |b: &mut AskingBidder, ctx| b.answered(contract, answer, ctx)))
            })
            .expect("asked");
    }
}

/// A bidder of another type, for a `Resume` that reaches the wrong contractor.
struct OtherBidder;

impl Bidder for OtherBidder {
    fn bid(&mut self, _call: &CallForBids) -> BidDecision {
        BidDecision::Decline
    }
    fn perform(&mut self, _contract: Contract, _ctx: &mut Ctx<'_>) {}
}

#[test]
fn a_bidder_can_ask_while_performing_and_report_on_the_answer() {
    let s = setup();
    let helper = s.h.spawn(SpawnPlacement::Shard(1), nexus_engine::builtin::Echo::default).expect("echo");
    let (coord, caps) = (s.coord.clone(), s.caps);
    let asker =
        s.h.spawn(SpawnPlacement::Shard(0), move || Contractor::new(coord, caps, AskingBidder { helper }))
            .expect("spawned");
    let outcome = s.run(AuctionSpec::new(s.task()).candidates(vec![asker.id()]).window(Duration::ZERO));
    assert!(matches!(outcome.kind, OutcomeKind::Completed { winner, .. } if winner == asker.id()), "{outcome:?}");
    assert_eq!(outcome.rounds, 1);
    s.engine.shutdown().expect("shutdown");
}

#[test]
fn a_resume_for_another_bidder_type_stops_the_contractor_that_gets_it() {
    let s = setup();
    let (coord, caps) = (s.coord.clone(), s.caps);
    let other =
        s.h.spawn(SpawnPlacement::Shard(0), move || Contractor::new(coord, caps, OtherBidder)).expect("spawned");
    let resume = Resume::new(|_: &mut AskingBidder, _ctx| panic!("never runs on an OtherBidder"));
    assert!(format!("{resume:?}").contains("AskingBidder"));
    let panics = || s.h.stats().expect("stats").totals().panics;
    let before = panics();
    s.h.send(other, BidderMsg::Resume(resume)).expect("sent");
    let deadline = std::time::Instant::now() + LONG;
    while panics() == before {
        assert!(std::time::Instant::now() < deadline, "the mismatch stopped the contractor");
        std::thread::sleep(Duration::from_millis(1));
    }
    s.engine.shutdown().expect("shutdown");
}

#[test]
fn a_traced_auction_shows_its_call_bids_close_award_and_done_as_one_trace() {
    use nexus_engine::trace::{Hop, Span};
    let s = setup();
    let near = bidder(&s.h, &s.coord, 0, s.caps, offer(4.0), Behaviour::Complete);
    let far = bidder(&s.h, &s.coord, 1, s.caps, offer(3.0), Behaviour::Complete);
    let tracing = s.h.tracing();
    let mut spans: Vec<Span> = Vec::new();
    tracing.drain(&mut spans);
    spans.clear();
    tracing.set_sample(1.0);
    let out = s.run(AuctionSpec::new(s.task()).window(ms(20)));
    assert_eq!(out.winner(), Some(far.id));
    s.wait_stats("the winner's report", |st| st.completions == 1);
    tracing.set_sample(0.0);
    tracing.drain(&mut spans);
    assert_eq!(tracing.dropped(), 0);
    let manager = s.manager.id().to_bits();
    // The request's hop at the manager is the root; discovery's asks and answer follow it.
    let root = spans
        .iter()
        .find(|sp| sp.agent == manager && sp.parent_id == 0 && sp.name.ends_with("AuctionMsg"))
        .expect("the request's hop");
    let trace: Vec<&Span> = spans.iter().filter(|sp| sp.trace_id == root.trace_id).collect();
    let ids: Vec<u64> = trace.iter().map(|sp| sp.span_id).collect();
    assert!(trace.iter().all(|sp| sp.parent_id == 0 || ids.contains(&sp.parent_id)), "a whole tree: {trace:#?}");
    assert!(trace.iter().any(|sp| sp.hop == Hop::Ask && sp.name.ends_with("IndexMsg")), "discovery: {trace:#?}");
    // The call reached both bidders, and each bid came back as a child of its call.
    let call = |bidder: AgentId| {
        *trace
            .iter()
            .find(|sp| sp.agent == bidder.to_bits() && sp.name.ends_with("BidderMsg"))
            .unwrap_or_else(|| panic!("a call to {bidder}: {trace:#?}"))
    };
    let (call_near, call_far) = (call(near.id), call(far.id));
    let bid = |call: &Span| {
        *trace
            .iter()
            .find(|sp| sp.agent == manager && sp.parent_id == call.span_id)
            .unwrap_or_else(|| panic!("a bid from the call {call:?}: {trace:#?}"))
    };
    let bids = [bid(call_near).span_id, bid(call_far).span_id];
    // The award went to the winner from the manager's hop that closed the round (the last bid
    // or the window's timer), and the winner's report came back from the award.
    let award = trace
        .iter()
        .find(|sp| sp.agent == far.id.to_bits() && sp.span_id != call_far.span_id && sp.name.ends_with("BidderMsg"))
        .expect("the award");
    let closer = trace.iter().find(|sp| sp.span_id == award.parent_id).expect("the award's parent");
    assert_eq!(closer.agent, manager, "the award came from the manager");
    assert!(bids.contains(&closer.span_id) || closer.queued_ns() >= 10_000_000, "closed by a bid or the window");
    let done = trace
        .iter()
        .find(|sp| sp.agent == manager && sp.parent_id == award.span_id)
        .expect("the winner's report, sent from the award");
    assert_eq!(done.hop, Hop::Send);
    s.shutdown();
}
