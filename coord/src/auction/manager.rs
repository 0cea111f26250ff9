//! The auction manager: the agent that runs the contract-net protocol of the parent module,
//! for any number of auctions at once.
//!
//! State (touched only by the manager's shard thread): the auctions in flight, a small `Vec`
//! searched by id (a manager runs few at once); per auction, the current round's candidates,
//! sorted by `AgentId` (so a bid finds its candidate by bisection, and iterating in order
//! breaks ties towards the lower id) and their answers, index for index; spare buffers of
//! finished auctions, reused by the next ones; the counters; and the shard's reputation table
//! (`Ctx::shard_local`).
//!
//! Invariants:
//! * an auction is in exactly one phase: discovering (one discovery ask outstanding), bidding
//!   (one window timer armed; `pending` = the answers still `Pending`), or under contract (one
//!   deadline timer armed, the winner watched);
//! * `candidates` is sorted and free of duplicates and of `excluded` agents;
//! * a message carrying a ticket acts only on the auction, round and phase it names; anything
//!   else is stale and counted (or ignored, for timers and `Down`s that lost a race);
//! * a candidate or winner is unwatched only when no other auction of this manager still
//!   watches it (watching twice gives one `Down`, and one unwatch ends both);
//! * every auction is answered exactly once: an outcome, an error, or `ManagerStopped`.

use super::{
    AuctionError, AuctionId, AuctionMsg, AuctionSpec, AuctionStats, Bid, BidDecision, BidderMsg, CallForBids,
    Candidates, Contract, FailReason, Failure, Outcome, OutcomeKind, Report, RunRequest, ScoringRule, Task, Ticket,
};
use crate::index::Query;
use crate::reputation::{self, Judgement, ShardReputation};
use crate::{Coord, CoordError, Discovered};
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx, Down, SendOptions, TimerId, Undelivered};
use nexus_engine::ask::{AskError, ReplyTo};
use nexus_engine::metrics::DeadLetterReason;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Finished auctions' buffers kept for reuse, at most.
const SPARE_BUFFERS_MAX: usize = 64;

/// One candidate's answer in the current round.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Pending,
    Offer { cost: f64, completion: Duration },
    Declined,
    OverReserve,
    Unreachable,
}

struct Held {
    winner: AgentId,
    timer: TimerId,
    awarded_ns: u64,
    estimate: Duration,
    cost: f64,
}

enum Phase {
    /// Between rounds (or before the first): watches nothing, waits for nothing.
    Idle,
    /// The round's discovery is asked; its answer comes back as `AuctionMsg::Discovered`.
    Discovering,
    Bidding(TimerId),
    Contract(Held),
}

#[derive(Default)]
struct Buffers {
    candidates: Vec<AgentId>,
    answers: Vec<Answer>,
    excluded: Vec<AgentId>,
}

struct Auction {
    id: AuctionId,
    round: u32,
    phase: Phase,
    task: Arc<Task>,
    source: Candidates,
    guard: Duration,
    rule: ScoringRule,
    max_rounds: u32,
    watch: bool,
    reply: Option<ReplyTo<Result<Outcome, AuctionError>>>,
    buf: Buffers,
    pending: usize,
    failures: Vec<Failure>,
}

impl Auction {
    fn ticket(&self) -> Ticket {
        Ticket::new(self.id, self.round)
    }

    /// Whether this auction holds a watch on `id`.
    fn watches(&self, id: AgentId) -> bool {
        match &self.phase {
            Phase::Bidding(_) => self.watch && self.buf.candidates.binary_search(&id).is_ok(),
            Phase::Contract(h) => h.winner == id,
            Phase::Idle | Phase::Discovering => false,
        }
    }
}

/// The agent that runs auctions; see the module docs and the parent module's protocol.
pub struct AuctionManager {
    coord: Coord,
    me: Option<Addr<AuctionMsg>>,
    auctions: Vec<Auction>,
    spare: Vec<Buffers>,
    next_id: u64,
    stats: AuctionStats,
    reputation: Option<Rc<ShardReputation>>,
}

impl AuctionManager {
    /// A manager using `coord` for discovery, the default window and reputation alpha.
    pub fn new(coord: Coord) -> Self {
        Self {
            coord,
            me: None,
            auctions: Vec::new(),
            spare: Vec::new(),
            next_id: 1,
            stats: AuctionStats::default(),
            reputation: None,
        }
    }

    /// Its counters.
    pub fn stats(&self) -> AuctionStats {
        self.stats
    }

    fn me(&self, ctx: &Ctx<'_>) -> Addr<AuctionMsg> {
        self.me.unwrap_or_else(|| ctx.myself())
    }

    fn reputation(&mut self, ctx: &mut Ctx<'_>) -> Rc<ShardReputation> {
        self.reputation.get_or_insert_with(|| reputation::local(ctx)).clone()
    }

    fn find(&self, id: AuctionId) -> Option<usize> {
        self.auctions.iter().position(|a| a.id == id)
    }

    /// Whether an auction other than `except` watches `id`.
    fn watched_elsewhere(&self, id: AgentId, except: usize) -> bool {
        self.auctions.iter().enumerate().any(|(i, a)| i != except && a.watches(id))
    }

    fn unwatch(&self, id: AgentId, except: usize, ctx: &mut Ctx<'_>) {
        if !self.watched_elsewhere(id, except) {
            ctx.unwatch(id);
        }
    }

    fn start(&mut self, req: RunRequest, ctx: &mut Ctx<'_>) {
        let RunRequest { spec, reply } = req;
        if let Err(e) = spec.validate() {
            ctx.reply(reply, Err(e));
            return;
        }
        self.stats.auctions += 1;
        let (_, guard) = spec.timing(&self.coord);
        let AuctionSpec { task, candidates, rule, max_rounds, watch_bidders, .. } = spec;
        let id = AuctionId(self.next_id);
        self.next_id += 1;
        let auction = Auction {
            id,
            round: 0,
            phase: Phase::Idle,
            task: Arc::new(task),
            source: candidates,
            guard,
            rule,
            max_rounds,
            watch: watch_bidders,
            reply: Some(reply),
            buf: self.spare.pop().unwrap_or_default(),
            pending: 0,
            failures: Vec::new(),
        };
        self.auctions.push(auction);
        self.begin_round(self.auctions.len() - 1, ctx);
    }

    /// Starts the next round of auction `idx`: finds its candidates, then calls for bids.
    fn begin_round(&mut self, idx: usize, ctx: &mut Ctx<'_>) {
        self.stats.rounds += 1;
        let a = &mut self.auctions[idx];
        a.round += 1;
        a.buf.candidates.clear();
        a.buf.answers.clear();
        a.pending = 0;
        let query = match &a.source {
            Candidates::Explicit(ids) => {
                let excluded = &a.buf.excluded;
                a.buf.candidates.extend(ids.iter().filter(|id| !excluded.contains(id)));
                a.buf.candidates.sort_unstable();
                a.buf.candidates.dedup();
                None
            }
            Candidates::Discover { limit, mode } => {
                Some(Query { caps: a.task.caps, mode: *mode, limit: *limit, exclude: a.buf.excluded.clone() })
            }
        };
        let Some(query) = query else {
            self.call(idx, ctx);
            return;
        };
        let ticket = self.auctions[idx].ticket();
        match self.coord.discover(ctx, query, move |found| AuctionMsg::Discovered(ticket, found)) {
            Ok(()) => self.auctions[idx].phase = Phase::Discovering,
            Err(e) => {
                let e = match e {
                    CoordError::Ask(e) => e,
                    _ => AskError::Undelivered(DeadLetterReason::MailboxFull),
                };
                self.finish(idx, Err(AuctionError::Discovery(e)), ctx);
            }
        }
    }

    /// The answer to the discovery of one round.
    fn discovered(&mut self, idx: usize, found: Result<Discovered, AskError>, ctx: &mut Ctx<'_>) {
        match found {
            Ok(d) => {
                let a = &mut self.auctions[idx];
                let excluded = &a.buf.excluded;
                a.buf.candidates.extend(d.candidates.iter().map(|c| c.id).filter(|id| !excluded.contains(id)));
                a.buf.candidates.sort_unstable();
                a.buf.candidates.dedup();
                self.call(idx, ctx);
            }
            Err(e) => self.finish(idx, Err(AuctionError::Discovery(e)), ctx),
        }
    }

    /// Sends the round's calls for bids and opens the window.
    fn call(&mut self, idx: usize, ctx: &mut Ctx<'_>) {
        if self.auctions[idx].buf.candidates.is_empty() {
            self.finish(idx, Ok(OutcomeKind::NoBidders), ctx);
            return;
        }
        let me = self.me(ctx);
        let a = &mut self.auctions[idx];
        let ticket = a.ticket();
        for &c in &a.buf.candidates {
            let call = BidderMsg::CallForBids(CallForBids { ticket, manager: me, task: a.task.clone() });
            // Tracked: a call that becomes a dead letter (gone, wrong message type, ...) comes
            // back through `on_undelivered`.
            match ctx.send_with(Addr::<BidderMsg>::from_id(c), call, SendOptions::new().tracked()) {
                Ok(()) => {
                    self.stats.calls += 1;
                    a.buf.answers.push(Answer::Pending);
                    a.pending += 1;
                    if a.watch {
                        ctx.watch(c);
                    }
                }
                Err(_) => {
                    self.stats.unreachable += 1;
                    a.buf.answers.push(Answer::Unreachable);
                }
            }
        }
        if a.pending == 0 {
            self.close(idx, ctx);
            return;
        }
        // Control lane, as for the contract's deadline below: a timer firing into a full
        // mailbox is dropped, and the round would never close.
        let timer = ctx.send_control_after(me, AuctionMsg::CloseWindow(ticket), a.guard);
        a.phase = Phase::Bidding(timer);
    }

    fn on_bid(&mut self, bid: Bid, ctx: &mut Ctx<'_>) {
        let Some(idx) = self.find(bid.ticket.auction()) else {
            self.stats.late += 1;
            return;
        };
        let a = &mut self.auctions[idx];
        if a.round != bid.ticket.round() || !matches!(a.phase, Phase::Bidding(_)) {
            self.stats.late += 1;
            return;
        }
        let Ok(pos) = a.buf.candidates.binary_search(&bid.from) else {
            self.stats.unasked += 1;
            return;
        };
        if a.buf.answers[pos] != Answer::Pending {
            self.stats.duplicates += 1;
            return;
        }
        a.buf.answers[pos] = match bid.decision {
            BidDecision::Bid { cost, completion } => {
                self.stats.bids += 1;
                if cost.is_finite() && cost <= a.task.reserve {
                    Answer::Offer { cost, completion }
                } else {
                    self.stats.over_reserve += 1;
                    Answer::OverReserve
                }
            }
            BidDecision::Decline => {
                self.stats.declines += 1;
                Answer::Declined
            }
        };
        self.answered(idx, ctx);
    }

    /// One more candidate of auction `idx` answered (or became unreachable).
    fn answered(&mut self, idx: usize, ctx: &mut Ctx<'_>) {
        let a = &mut self.auctions[idx];
        a.pending -= 1;
        if a.pending == 0 {
            if let Phase::Bidding(timer) = a.phase {
                ctx.cancel_timer(timer);
            }
            self.close(idx, ctx);
        }
    }

    /// Marks candidate `id` of auction `idx` unreachable if it had not answered.
    fn unreachable(&mut self, idx: usize, id: AgentId, ctx: &mut Ctx<'_>) {
        let a = &mut self.auctions[idx];
        if !matches!(a.phase, Phase::Bidding(_)) {
            return;
        }
        let Ok(pos) = a.buf.candidates.binary_search(&id) else { return };
        if a.buf.answers[pos] == Answer::Pending {
            a.buf.answers[pos] = Answer::Unreachable;
            self.stats.unreachable += 1;
            self.answered(idx, ctx);
        }
    }

    /// Closes the bid window of auction `idx`: awards, or ends the auction.
    fn close(&mut self, idx: usize, ctx: &mut Ctx<'_>) {
        let rep = self.reputation(ctx);
        let a = &self.auctions[idx];
        let winner = pick(a.rule, &a.buf.candidates, &a.buf.answers, |id| rep.table.borrow().value(id));
        let (mut declined, mut over_reserve, mut silent) = (0u32, 0u32, 0u32);
        for answer in &a.buf.answers {
            match answer {
                Answer::Declined => declined += 1,
                Answer::OverReserve => over_reserve += 1,
                Answer::Pending => {
                    self.stats.silent += 1;
                    silent += 1;
                }
                Answer::Unreachable => silent += 1,
                Answer::Offer { .. } => {}
            }
        }
        if a.watch {
            let winner_id = winner.map(|w| a.buf.candidates[w]);
            for &c in &a.buf.candidates {
                if Some(c) != winner_id {
                    self.unwatch(c, idx, ctx);
                }
            }
        }
        let Some(w) = winner else {
            self.finish(idx, Ok(OutcomeKind::NoAcceptableBid { declined, over_reserve, silent }), ctx);
            return;
        };
        let me = self.me(ctx);
        let a = &mut self.auctions[idx];
        let winner = a.buf.candidates[w];
        let Answer::Offer { cost, completion } = a.buf.answers[w] else { unreachable!("pick returns an offer") };
        let ticket = a.ticket();
        let now = ctx.now_ns();
        let deadline = a.task.deadline;
        let deadline_ns = now.saturating_add(u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX));
        let contract = Contract { ticket, manager: me, task: a.task.clone(), deadline_ns, cost };
        if !a.watch {
            ctx.watch(winner);
        }
        // Control lane: a timer firing into a full mailbox is dropped, and a contract whose
        // report was lost too would then never end (the auction never answered).
        let timer = ctx.send_control_after(me, AuctionMsg::ContractDue(ticket), deadline);
        a.phase = Phase::Contract(Held { winner, timer, awarded_ns: now, estimate: completion, cost });
        self.stats.awards += 1;
        if ctx
            .send_with(Addr::<BidderMsg>::from_id(winner), BidderMsg::Award(contract), SendOptions::new().tracked())
            .is_err()
        {
            self.lose_contract(idx, FailReason::Died, ctx);
        }
    }

    fn on_report(&mut self, report: Report, ctx: &mut Ctx<'_>) {
        let idx = self.find(report.ticket.auction()).filter(|&i| {
            let a = &self.auctions[i];
            a.round == report.ticket.round() && matches!(&a.phase, Phase::Contract(h) if h.winner == report.from)
        });
        let Some(idx) = idx else {
            self.stats.stray_reports += 1;
            return;
        };
        match report.result {
            Ok(()) => {
                self.stats.completions += 1;
                let Phase::Contract(h) = &self.auctions[idx].phase else { return };
                let (winner, cost, timer) = (h.winner, h.cost, h.timer);
                let took = Duration::from_nanos(ctx.now_ns().saturating_sub(h.awarded_ns));
                let timeliness = reputation::timeliness(h.estimate, took);
                ctx.cancel_timer(timer);
                self.unwatch(winner, idx, ctx);
                self.judge(winner, Judgement::Completed { timeliness }, ctx);
                self.finish(idx, Ok(OutcomeKind::Completed { winner, cost }), ctx);
            }
            Err(why) => {
                self.stats.failures += 1;
                self.lose_contract(idx, FailReason::Failed(why), ctx);
            }
        }
    }

    fn on_contract_due(&mut self, ticket: Ticket, ctx: &mut Ctx<'_>) {
        let Some(idx) = self.find(ticket.auction()) else { return };
        let a = &self.auctions[idx];
        let Phase::Contract(h) = &a.phase else { return };
        if a.round != ticket.round() {
            return;
        }
        self.stats.deadline_misses += 1;
        // Control lane: the withdrawal must reach a winner whose mailbox is full.
        let _ = ctx.send_with(
            Addr::<BidderMsg>::from_id(h.winner),
            BidderMsg::Cancel(ticket),
            SendOptions::new().control(),
        );
        self.lose_contract(idx, FailReason::MissedDeadline, ctx);
    }

    /// The winner of auction `idx` lost its contract: judge it, exclude it, and run the next
    /// round or give up.
    fn lose_contract(&mut self, idx: usize, reason: FailReason, ctx: &mut Ctx<'_>) {
        let a = &self.auctions[idx];
        let Phase::Contract(h) = &a.phase else { return };
        let (winner, timer, round) = (h.winner, h.timer, a.round);
        ctx.cancel_timer(timer);
        let judgement = match reason {
            FailReason::Failed(_) => Judgement::Failed,
            FailReason::MissedDeadline => Judgement::MissedDeadline,
            FailReason::Died => {
                self.stats.deaths += 1;
                Judgement::Died
            }
        };
        // Also after a death: harmless then, and needed when only the award was lost.
        self.unwatch(winner, idx, ctx);
        self.judge(winner, judgement, ctx);
        let a = &mut self.auctions[idx];
        a.failures.push(Failure { round, agent: winner, reason });
        a.buf.excluded.push(winner);
        // Not bidding, not under contract: watches nothing until the next round calls.
        a.phase = Phase::Idle;
        if a.round >= a.max_rounds {
            self.finish(idx, Ok(OutcomeKind::GaveUp), ctx);
        } else {
            self.begin_round(idx, ctx);
        }
    }

    /// Records `judgement` of `id` and pushes the new value to discovery.
    fn judge(&mut self, id: AgentId, judgement: Judgement, ctx: &mut Ctx<'_>) {
        let rep = self.reputation(ctx);
        let value = rep.table.borrow_mut().record(id, judgement);
        self.coord.set_reputation(ctx, id, value);
    }

    /// Ends auction `idx`: answers its requester and recycles its buffers.
    fn finish(&mut self, idx: usize, result: Result<OutcomeKind, AuctionError>, ctx: &mut Ctx<'_>) {
        let mut a = self.auctions.swap_remove(idx);
        match &result {
            Ok(OutcomeKind::NoBidders) => self.stats.no_bidders += 1,
            Ok(OutcomeKind::NoAcceptableBid { .. }) => self.stats.no_acceptable += 1,
            Ok(OutcomeKind::GaveUp) => self.stats.gave_up += 1,
            _ => {}
        }
        let result = result.map(|kind| Outcome {
            auction: a.id,
            kind,
            rounds: a.round,
            failures: std::mem::take(&mut a.failures),
        });
        if let Some(reply) = a.reply.take() {
            ctx.reply(reply, result);
        }
        if self.spare.len() < SPARE_BUFFERS_MAX {
            a.buf.candidates.clear();
            a.buf.answers.clear();
            a.buf.excluded.clear();
            self.spare.push(a.buf);
        }
    }
}

/// The index of the winning candidate under `rule`, if any candidate made an acceptable
/// offer. Candidates are sorted by id and a later one must be strictly better, so a tie goes
/// to the lower id.
fn pick(
    rule: ScoringRule,
    candidates: &[AgentId],
    answers: &[Answer],
    reputation: impl Fn(AgentId) -> f64,
) -> Option<usize> {
    let offers = || {
        answers.iter().enumerate().filter_map(|(i, a)| match *a {
            Answer::Offer { cost, completion } => Some((i, cost, completion.as_secs_f64())),
            _ => None,
        })
    };
    let best_by = |score: &dyn Fn(usize, f64, f64) -> f64| {
        let mut best: Option<(usize, f64)> = None;
        for (i, cost, completion) in offers() {
            let s = score(i, cost, completion);
            if best.is_none_or_lower(s) {
                best = Some((i, s));
            }
        }
        best.map(|(i, _)| i)
    };
    match rule {
        ScoringRule::LowestCost => best_by(&|_, cost, _| -cost),
        ScoringRule::EarliestCompletion => best_by(&|_, _, completion| -completion),
        ScoringRule::Weighted { cost: wc, completion: wt, reputation: wr } => {
            let sum = wc + wt + wr;
            let (wc, wt, wr) =
                if sum > 0.0 { (wc / sum, wt / sum, wr / sum) } else { (1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0) };
            let (mut c_lo, mut c_hi, mut t_lo, mut t_hi) =
                (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
            for (_, cost, completion) in offers() {
                (c_lo, c_hi) = (c_lo.min(cost), c_hi.max(cost));
                (t_lo, t_hi) = (t_lo.min(completion), t_hi.max(completion));
            }
            let scaled = |x: f64, lo: f64, hi: f64| if hi > lo { (x - lo) / (hi - lo) } else { 0.0 };
            best_by(&|i, cost, completion| {
                wc * (1.0 - scaled(cost, c_lo, c_hi))
                    + wt * (1.0 - scaled(completion, t_lo, t_hi))
                    + wr * reputation(candidates[i]).clamp(0.0, 1.0)
            })
        }
    }
}

/// `best` is empty or its score is strictly lower than `s` (MSRV 1.80: no
/// `Option::is_none_or`).
trait BestSoFar {
    fn is_none_or_lower(&self, s: f64) -> bool;
}

impl BestSoFar for Option<(usize, f64)> {
    fn is_none_or_lower(&self, s: f64) -> bool {
        match self {
            None => true,
            Some((_, best)) => s > *best,
        }
    }
}

impl Agent for AuctionManager {
    type Msg = AuctionMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.me = Some(ctx.myself());
        let rep = self.reputation(ctx);
        rep.table.borrow_mut().set_alpha_pct(self.coord.config().reputation_alpha_pct);
    }

    fn on_stop(&mut self, ctx: &mut Ctx<'_>) {
        for mut a in self.auctions.drain(..) {
            if let Some(reply) = a.reply.take() {
                ctx.reply(reply, Err(AuctionError::ManagerStopped));
            }
        }
    }

    fn handle(&mut self, msg: AuctionMsg, ctx: &mut Ctx<'_>) {
        match msg {
            AuctionMsg::Run(req) => self.start(*req, ctx),
            AuctionMsg::Bid(bid) => self.on_bid(bid, ctx),
            AuctionMsg::Report(report) => self.on_report(report, ctx),
            AuctionMsg::Stats(reply) => ctx.reply(reply, self.stats),
            AuctionMsg::Reputation(id, reply) => {
                let entry = self.reputation(ctx).table.borrow().get(id);
                ctx.reply(reply, entry);
            }
            AuctionMsg::CloseWindow(ticket) => {
                let Some(idx) = self.find(ticket.auction()) else { return };
                let a = &self.auctions[idx];
                if a.round == ticket.round() && matches!(a.phase, Phase::Bidding(_)) {
                    self.close(idx, ctx);
                }
            }
            AuctionMsg::ContractDue(ticket) => self.on_contract_due(ticket, ctx),
            AuctionMsg::Discovered(ticket, found) => {
                let idx = self.find(ticket.auction()).filter(|&i| {
                    let a = &self.auctions[i];
                    a.round == ticket.round() && matches!(a.phase, Phase::Discovering)
                });
                if let Some(idx) = idx {
                    self.discovered(idx, found, ctx);
                }
            }
        }
    }

    fn on_undelivered(&mut self, undelivered: Undelivered, ctx: &mut Ctx<'_>) {
        let to = undelivered.to;
        match undelivered.message.take::<BidderMsg>() {
            Ok(BidderMsg::CallForBids(call)) => {
                if let Some(idx) = self.find(call.ticket.auction()) {
                    if self.auctions[idx].round == call.ticket.round() {
                        self.unreachable(idx, to, ctx);
                    }
                }
            }
            Ok(BidderMsg::Award(contract)) => {
                let idx = self.find(contract.ticket.auction()).filter(|&i| {
                    let a = &self.auctions[i];
                    a.round == contract.ticket.round() && matches!(&a.phase, Phase::Contract(h) if h.winner == to)
                });
                if let Some(idx) = idx {
                    self.lose_contract(idx, FailReason::Died, ctx);
                }
            }
            _ => {}
        }
    }

    fn on_down(&mut self, down: Down, ctx: &mut Ctx<'_>) {
        // Any `Down` is true (the agent is gone), whichever auction's watch produced it.
        let affected: Vec<AuctionId> = self
            .auctions
            .iter()
            .filter(|a| a.watches(down.id) || matches!(a.phase, Phase::Bidding(_)))
            .map(|a| a.id)
            .collect();
        for id in affected {
            let Some(idx) = self.find(id) else { continue };
            match &self.auctions[idx].phase {
                Phase::Bidding(_) => self.unreachable(idx, down.id, ctx),
                Phase::Contract(h) if h.winner == down.id => self.lose_contract(idx, FailReason::Died, ctx),
                _ => {}
            }
        }
    }
}
