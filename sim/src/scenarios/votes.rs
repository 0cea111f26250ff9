//! `votes`: quorum votes of `nexus-coord` with dying, duplicate and late voters.
//!
//! One ballot box per shard (coord's `BallotBox`, wrapped in a tap that logs every message it
//! dispatches: opens, votes, deadlines and ballots that came back undelivered), nine voters
//! spread over the shards, and one proposer per shard that opens `BALLOTS` ballots in its
//! shard's box, two at a time, each with a seeded electorate, rule (majority, supermajority,
//! unanimity, weighted, instant runoff), quorum, options and deadline. Each voter draws, per
//! ballot, what it does: vote at once, vote later but in time, vote twice, vote after the
//! deadline, stay silent, abstain, spoil, or die before voting (an injected panic, or a stop).
//! A dead voter's later ballots come back undelivered. When the run is quiet an observer asks
//! every box for its counters and for the late votes of every ballot.
//!
//! Checks: every ballot is answered exactly once, with a result (or, under pressure, its `Open`
//! was refused or dropped and the box never saw it); every vote a voter sent (tracked) reached
//! its box, or came back undelivered, or was lost with the notice to its dead voter; replaying the tap's log of
//! each ballot through an independent model of the protocol (open until its deadline or until
//! every voter voted or was unreachable; a further vote is a duplicate; a vote after the close
//! is late) gives the reported close, participation, per-option counts and weights, and the
//! outcome recomputed from the accepted votes under the rule's definition; late votes per
//! ballot and the boxes' counters agree with the model; no ask timed out; the accounting
//! (checked by the runner).
//!
//! A `Coord` can only be started on a running engine, and a `BallotBox` needs one: the
//! scenario starts a throwaway one-shard engine once per process for it, and shuts it down.
//! The boxes use it only for query electorates, which this scenario does not open.

use crate::rng::SimRng;
use crate::runner::Faults;
use crate::scenario::{Instance, Scenario, World};
use crate::INJECTED;
use nexus_coord::vote::{
    BallotBox, BallotMsg, BallotReply, BallotRequest, BallotResult, BallotSpec, BoxStats, Choice, ClosedBallot,
    ClosedBy, Electorate, NoDecision, Opening, Outcome, Quorum, Rule, VoterMsg, REPLY_MARGIN,
};
use nexus_coord::Coord;
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx, SendOptions, Undelivered};
use nexus_engine::ask::AskError;
use nexus_engine::config::CoordConfig;
use nexus_engine::engine::Engine;
use nexus_engine::payload::Payload;
use nexus_engine::shard::ExecutorKind;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const VOTERS: usize = 9;
const BALLOTS: usize = 4;
const OPTIONS: [&str; 4] = ["a", "b", "c", "d"];

/// The scenario.
pub(crate) struct Votes;

impl Scenario for Votes {
    fn name(&self) -> &'static str {
        "votes"
    }

    fn about(&self) -> &'static str {
        "quorum votes with dying, duplicate and late voters: each ballot decides once, as the tally of its accepted votes"
    }

    fn instance(&self, _faults: &Faults) -> Box<dyn Instance> {
        Box::new(Run { log: Arc::new(Mutex::new(Log::default())), observer: None, boxes: Vec::new() })
    }
}

/// What a box's tap saw, per ballot, in the box's dispatch order.
#[derive(Clone, Debug)]
enum Event {
    Vote(u32, AgentId, Option<Choice>),
    Undelivered(u32),
    Deadline,
}

/// What the agents saw and did, for the check.
#[derive(Default)]
struct Log {
    /// Every ballot planned, by topic.
    specs: BTreeMap<String, BallotSpec>,
    /// The proposers' answers, by topic (several would be a bug).
    answers: BTreeMap<String, Vec<Result<BallotReply, AskError>>>,
    /// Topics whose `Open` could not be sent.
    refused: BTreeSet<String>,
    /// Topics whose `Open` reached a box.
    opened: BTreeSet<String>,
    /// The taps' logs, by ballot id (bits).
    events: BTreeMap<u64, Vec<Event>>,
    /// Ballots a voter got (ballot bits, index).
    received: BTreeSet<(u64, u32)>,
    /// Votes sent, by ballot (index, choice).
    sent: BTreeMap<u64, Vec<(u32, Option<Choice>)>>,
    /// Votes sent that came back undelivered, by ballot.
    returned: BTreeMap<u64, Vec<(u32, Option<Choice>)>>,
    /// Voters that died (their undelivered votes cannot come back).
    dead: BTreeSet<AgentId>,
    /// The observer's findings.
    stats: Vec<BoxStats>,
    closed: BTreeMap<u64, Option<ClosedBallot>>,
    failed_asks: u64,
}

type Shared = Arc<Mutex<Log>>;

fn with<R>(log: &Shared, f: impl FnOnce(&mut Log) -> R) -> R {
    f(&mut log.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The `Coord` the boxes are built with (see the module docs).
fn coord() -> Result<Coord, String> {
    static COORD: OnceLock<Coord> = OnceLock::new();
    if let Some(c) = COORD.get() {
        return Ok(c.clone());
    }
    let engine = Engine::builder()
        .shards(1)
        .oversubscribe(true)
        .executor(ExecutorKind::Threads)
        .pin_threads(false)
        .build()
        .map_err(|e| e.to_string())?;
    let coord = Coord::start(&engine.handle(), &CoordConfig::default()).map_err(|e| e.to_string())?;
    engine.shutdown().map_err(|e| e.to_string())?;
    Ok(COORD.get_or_init(|| coord).clone())
}

struct Run {
    log: Shared,
    observer: Option<Addr<ObserverMsg>>,
    boxes: Vec<Addr<BallotMsg>>,
}

impl Instance for Run {
    fn start(&mut self, world: &mut World) -> Result<(), String> {
        let coord = coord()?;
        for s in 0..world.shards() {
            let tap = Tap { inner: BallotBox::new(coord.clone()), log: self.log.clone() };
            self.boxes.push(world.spawn(s, tap)?);
        }
        let mut voters = Vec::new();
        for v in 0..VOTERS {
            let voter = Voter { rng: SimRng::new(world.rng.next_u64()), log: self.log.clone(), later: BTreeMap::new() };
            voters.push(world.spawn(v % world.shards(), voter)?.id());
        }
        for s in 0..world.shards() {
            let plans: Vec<BallotSpec> =
                (0..BALLOTS).map(|b| plan(&mut world.rng, format!("p{s}b{b}"), &voters)).collect();
            with(&self.log, |log| plans.iter().for_each(|p| drop(log.specs.insert(p.topic.to_string(), p.clone()))));
            let proposer = Proposer { ballot_box: self.boxes[s], plans, next: 0, log: self.log.clone() };
            world.spawn(s, proposer)?;
        }
        let observer = Observer { boxes: self.boxes.clone(), queue: Vec::new(), log: self.log.clone() };
        self.observer = Some(world.spawn(0, observer)?);
        Ok(())
    }

    fn on_quiet(&mut self, world: &mut World, phase: u32) -> bool {
        match (phase, self.observer) {
            (0, Some(observer)) => world.send(observer, ObserverMsg::Look).is_ok(),
            _ => false,
        }
    }

    fn check(&mut self, world: &World) -> Result<(), String> {
        let timeouts = world.totals().ask_timeouts;
        let log = self.log.lock().map_err(|_| "the log is poisoned")?;
        if timeouts != 0 || log.failed_asks != 0 {
            return Err(format!("{timeouts} asks timed out, {} observer asks failed", log.failed_asks));
        }
        let mut totals = Totals::default();
        for (topic, spec) in &log.specs {
            if let Some(result) = answered_once(&log, topic)? {
                let t = check_ballot(&log, spec, result).map_err(|e| format!("{topic} ({}): {e}", result.ballot))?;
                totals.add(&t);
            }
        }
        check_boxes(&log, &totals, self.boxes.len())
    }
}

/// A seeded ballot among a seeded subset of `voters`.
fn plan(rng: &mut SimRng, topic: String, voters: &[AgentId]) -> BallotSpec {
    let mut pool = voters.to_vec();
    for i in (1..pool.len()).rev() {
        pool.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let n = 3 + rng.below(pool.len() as u64 - 2) as usize;
    pool.truncate(n);
    let options = 2 + rng.below(3) as usize;
    let rule = match rng.below(5) {
        0 => Rule::Majority,
        1 => Rule::Supermajority { percent: 51 + rng.below(50) as u8 },
        2 => Rule::Unanimity,
        3 => {
            let mut weights = Vec::new();
            for v in &pool {
                if rng.chance(0.5) {
                    weights.push((*v, 1 + rng.below(4) as u32));
                }
            }
            Rule::Weighted { weights, default_weight: 1 + rng.below(2) as u32 }
        }
        _ => Rule::InstantRunoff,
    };
    let quorum = match rng.below(4) {
        0 => Quorum::Voters(rng.below(n as u64 / 2 + 1) as u32),
        1 => Quorum::Percent(rng.below(71) as u8),
        2 => Quorum::All,
        _ => Quorum::Percent(50),
    };
    let deadline = Duration::from_millis(20 + rng.below(40));
    BallotSpec::new(&topic, &OPTIONS[..options], Electorate::Agents(pool)).rule(rule).quorum(quorum).deadline(deadline)
}

/// Coord's ballot box, with every message it handles logged first.
struct Tap {
    inner: BallotBox,
    log: Shared,
}

impl Agent for Tap {
    type Msg = BallotMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.inner.on_start(ctx);
    }

    fn handle(&mut self, msg: BallotMsg, ctx: &mut Ctx<'_>) {
        with(&self.log, |log| match &msg {
            BallotMsg::Open(o) => drop(log.opened.insert(o.spec.topic.to_string())),
            BallotMsg::Vote(v) => {
                log.events.entry(v.ballot.to_bits()).or_default().push(Event::Vote(v.index, v.voter, v.choice.clone()))
            }
            BallotMsg::Deadline(id) => log.events.entry(id.to_bits()).or_default().push(Event::Deadline),
            _ => {}
        });
        self.inner.handle(msg, ctx);
    }

    fn on_undelivered(&mut self, undelivered: Undelivered, ctx: &mut Ctx<'_>) {
        let Undelivered { to, reason, message } = undelivered;
        let message = match message.take::<VoterMsg>() {
            Ok(VoterMsg::Ballot(request)) => {
                let (id, index) = (request.info.id.to_bits(), request.index);
                with(&self.log, |log| log.events.entry(id).or_default().push(Event::Undelivered(index)));
                Payload::new(VoterMsg::Ballot(request))
            }
            Err(other) => other,
        };
        self.inner.on_undelivered(Undelivered { to, reason, message }, ctx);
    }
}

/// Opens its ballots in its shard's box, two at a time (the next when one is answered).
struct Proposer {
    ballot_box: Addr<BallotMsg>,
    plans: Vec<BallotSpec>,
    next: usize,
    log: Shared,
}

/// A proposer's messages.
enum ProposerMsg {
    Decided(String, Result<BallotReply, AskError>),
}

impl Proposer {
    fn open_next(&mut self, ctx: &mut Ctx<'_>) {
        let Some(spec) = self.plans.get(self.next).cloned() else { return };
        self.next += 1;
        let topic = spec.topic.to_string();
        let timeout = spec.deadline + REPLY_MARGIN;
        let t = topic.clone();
        let asked = ctx
            .ask(self.ballot_box, |reply| BallotMsg::Open(Box::new(Opening { spec, reply })))
            .timeout(timeout)
            .then(move |answer| ProposerMsg::Decided(t, answer));
        if asked.is_err() {
            with(&self.log, |log| log.refused.insert(topic));
            self.open_next(ctx);
        }
    }
}

impl Agent for Proposer {
    type Msg = ProposerMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.open_next(ctx);
        self.open_next(ctx);
    }

    fn handle(&mut self, msg: ProposerMsg, ctx: &mut Ctx<'_>) {
        let ProposerMsg::Decided(topic, answer) = msg;
        with(&self.log, |log| log.answers.entry(topic).or_default().push(answer));
        self.open_next(ctx);
    }
}

/// What a voter does with one ballot.
enum Act {
    Now,
    Later(Duration),
    Twice(Option<Duration>),
    Late(Duration),
    Silent,
    Panic,
    Stop,
}

/// A voter that misbehaves at seeded points. A vote it sends later is triggered by its ballot
/// sent to itself with a delay (voters take only `VoterMsg`).
struct Voter {
    rng: SimRng,
    log: Shared,
    /// Votes still to cast, by ballot (bits), when the ballot comes back to it.
    later: BTreeMap<u64, Vec<Option<Choice>>>,
}

impl Voter {
    fn act(&mut self, deadline: Duration) -> Act {
        let span = |rng: &mut SimRng, lo: u64, hi: u64| Duration::from_micros(lo + rng.below(hi.max(lo + 1) - lo));
        let d = deadline.as_micros() as u64;
        match self.rng.below(100) {
            0..=2 => Act::Panic,
            3..=4 => Act::Stop,
            5..=10 => Act::Silent,
            11..=24 => Act::Twice(self.rng.chance(0.5).then(|| span(&mut self.rng, 0, d / 2))),
            25..=36 => Act::Late(span(&mut self.rng, d + 1_000, 2 * d)),
            37..=54 => Act::Later(span(&mut self.rng, 0, d / 2)),
            _ => Act::Now,
        }
    }

    fn choice(&mut self, options: usize, ranked: bool) -> Option<Choice> {
        match self.rng.below(100) {
            0..=7 => None,
            8..=11 => Some(Choice::One(options as u16 + self.rng.below(3) as u16)),
            _ if ranked => {
                let mut order: Vec<u16> = (0..options as u16).collect();
                for i in (1..order.len()).rev() {
                    order.swap(i, self.rng.below(i as u64 + 1) as usize);
                }
                order.truncate(1 + self.rng.below(options as u64) as usize);
                if self.rng.chance(0.05) {
                    order.push(order[0]); // a bad ranking: spoiled
                }
                Some(Choice::Ranked(order.into()))
            }
            _ => Some(Choice::One(self.rng.below(options as u64) as u16)),
        }
    }

    /// Sends a vote, tracked: one that becomes a dead letter (a full mailbox under pressure)
    /// comes back through `on_undelivered` and is logged as returned.
    fn cast(&self, request: &BallotRequest, choice: Option<Choice>, ctx: &mut Ctx<'_>) {
        let msg = request.vote_msg(ctx.id(), choice.clone());
        if ctx.send_with(request.ballot_box, msg, SendOptions::new().tracked()).is_ok() {
            let id = request.info.id.to_bits();
            with(&self.log, |log| log.sent.entry(id).or_default().push((request.index, choice)));
        }
    }

    fn die(&self, ctx: &Ctx<'_>) {
        with(&self.log, |log| log.dead.insert(ctx.id()));
    }
}

impl Agent for Voter {
    type Msg = VoterMsg;

    fn handle(&mut self, msg: VoterMsg, ctx: &mut Ctx<'_>) {
        let VoterMsg::Ballot(request) = msg;
        let id = request.info.id.to_bits();
        if let Some(mut pending) = self.later.remove(&id) {
            if let Some(choice) = pending.pop() {
                self.cast(&request, choice, ctx);
            }
            if !pending.is_empty() {
                self.later.insert(id, pending);
            }
            return;
        }
        let topic = request.info.topic.to_string();
        let deadline = with(&self.log, |log| {
            log.received.insert((id, request.index));
            log.specs.get(&topic).map(|s| s.deadline)
        });
        let choice = self.choice(request.info.options.len(), request.info.ranked);
        let me = ctx.myself();
        let later = |voter: &mut Self, ctx: &mut Ctx<'_>, delay: Duration, choice: Option<Choice>| {
            voter.later.entry(id).or_default().insert(0, choice);
            ctx.send_after(me, VoterMsg::Ballot(request.clone()), delay);
        };
        match self.act(deadline.unwrap_or(Duration::from_millis(50))) {
            Act::Now => self.cast(&request, choice, ctx),
            Act::Later(delay) | Act::Late(delay) => later(self, ctx, delay, choice),
            Act::Twice(None) => {
                self.cast(&request, choice.clone(), ctx);
                self.cast(&request, choice, ctx);
            }
            Act::Twice(Some(delay)) => {
                self.cast(&request, choice.clone(), ctx);
                later(self, ctx, delay, choice);
            }
            Act::Silent => {}
            Act::Stop => {
                self.die(ctx);
                ctx.stop_self();
            }
            Act::Panic => {
                self.die(ctx);
                panic!("{INJECTED}: a voter dies before voting");
            }
        }
    }

    fn on_undelivered(&mut self, undelivered: Undelivered, _ctx: &mut Ctx<'_>) {
        if let Ok(BallotMsg::Vote(v)) = undelivered.message.take::<BallotMsg>() {
            with(&self.log, |log| log.returned.entry(v.ballot.to_bits()).or_default().push((v.index, v.choice)));
        }
    }
}

/// Asks every box for its counters and for every ballot's late votes, one ask at a time.
struct Observer {
    boxes: Vec<Addr<BallotMsg>>,
    queue: Vec<Query>,
    log: Shared,
}

#[derive(Clone, Copy)]
enum Query {
    Stats(usize),
    Closed(nexus_coord::vote::BallotId),
}

/// The observer's messages.
enum ObserverMsg {
    Look,
    Stats(Result<BoxStats, AskError>),
    Closed(u64, Result<Option<ClosedBallot>, AskError>),
}

impl Observer {
    fn next(&mut self, ctx: &mut Ctx<'_>) {
        let Some(query) = self.queue.pop() else { return };
        let asked = match query {
            Query::Stats(s) => ctx.ask(self.boxes[s], BallotMsg::Stats).then(ObserverMsg::Stats).is_ok(),
            Query::Closed(id) => {
                let b = self.boxes[id.shard() % self.boxes.len()];
                ctx.ask(b, move |r| BallotMsg::Closed(id, r))
                    .then(move |c| ObserverMsg::Closed(id.to_bits(), c))
                    .is_ok()
            }
        };
        if !asked {
            with(&self.log, |log| log.failed_asks += 1);
        }
    }
}

impl Agent for Observer {
    type Msg = ObserverMsg;

    fn handle(&mut self, msg: ObserverMsg, ctx: &mut Ctx<'_>) {
        match msg {
            ObserverMsg::Look => {
                let ids: Vec<_> = with(&self.log, |log| {
                    let results = log.answers.values().flatten();
                    results.filter_map(|a| a.as_ref().ok()?.as_ref().ok()).map(|r| r.ballot).collect()
                });
                self.queue.extend(ids.into_iter().map(Query::Closed));
                self.queue.extend((0..self.boxes.len()).rev().map(Query::Stats));
            }
            ObserverMsg::Stats(Ok(stats)) => with(&self.log, |log| log.stats.push(stats)),
            ObserverMsg::Closed(id, Ok(closed)) => with(&self.log, |log| {
                log.closed.insert(id, closed);
            }),
            ObserverMsg::Stats(Err(_)) | ObserverMsg::Closed(_, Err(_)) => with(&self.log, |log| log.failed_asks += 1),
        }
        self.next(ctx);
    }
}

/// Sums over the ballots, for the boxes' counters.
#[derive(Default)]
struct Totals {
    ballots: u64,
    votes: u64,
    duplicates: u64,
    late: u64,
}

impl Totals {
    fn add(&mut self, t: &Totals) {
        self.ballots += t.ballots;
        self.votes += t.votes;
        self.duplicates += t.duplicates;
        self.late += t.late;
    }
}

/// The one result of ballot `topic`, `None` when its `Open` never reached a box; an error
/// when it was answered twice, not at all, or with an error although the box opened it.
fn answered_once<'l>(log: &'l Log, topic: &str) -> Result<Option<&'l BallotResult>, String> {
    let answers = log.answers.get(topic).map_or(&[][..], Vec::as_slice);
    let refused = log.refused.contains(topic);
    let opened = log.opened.contains(topic);
    match (answers, refused) {
        ([], true) if !opened => Ok(None),
        ([Ok(Ok(result))], false) if opened => {
            if &*result.info.topic != topic {
                return Err(format!("{topic}: answered with the result of {}", result.info.topic));
            }
            Ok(Some(result))
        }
        ([Err(AskError::Undelivered(_))], false) if !opened => Ok(None),
        _ => Err(format!("{topic}: opened {opened}, refused at sending {refused}, answers {answers:?}")),
    }
}

/// The model's replay of one ballot.
#[derive(Default)]
struct Replay {
    accepted: Vec<(u32, Option<Choice>)>,
    duplicates: u32,
    undelivered: u32,
    late: u32,
    closed_by: Option<ClosedBy>,
}

/// Replays `events` through the protocol: `refused` voters never got the ballot.
fn replay(events: &[Event], electorate: &[AgentId], refused: u32) -> Result<Replay, String> {
    let n = electorate.len();
    let mut r = Replay { undelivered: refused, ..Replay::default() };
    let mut state = vec![0u8; n]; // 0 pending, 1 voted, 2 undelivered
    let complete = |r: &Replay| n == 0 || r.accepted.len() + r.undelivered as usize >= n;
    if complete(&r) {
        r.closed_by = Some(ClosedBy::Complete);
    }
    for e in events {
        if r.closed_by.is_some() {
            r.late += u32::from(matches!(e, Event::Vote(..)));
            continue;
        }
        match e {
            Event::Vote(i, voter, choice) => {
                let i = *i as usize;
                if electorate.get(i) != Some(voter) {
                    return Err(format!("a vote from {voter} names index {i}"));
                }
                match state[i] {
                    1 => r.duplicates += 1,
                    s => {
                        r.undelivered -= u32::from(s == 2);
                        state[i] = 1;
                        r.accepted.push((i as u32, choice.clone()));
                    }
                }
            }
            Event::Undelivered(i) if state[*i as usize] == 0 => {
                state[*i as usize] = 2;
                r.undelivered += 1;
            }
            Event::Undelivered(_) => {}
            Event::Deadline => r.closed_by = Some(ClosedBy::Deadline),
        }
        if r.closed_by.is_none() && complete(&r) {
            r.closed_by = Some(ClosedBy::Complete);
        }
    }
    Ok(r)
}

/// Every vote sent for ballot `id` reached its box, came back undelivered, or was lost with
/// its dead voter's notice; and the box got no vote nobody sent.
fn votes_accounted(log: &Log, id: u64, events: &[Event], electorate: &[AgentId]) -> Result<(), String> {
    let mut missing = log.sent.get(&id).cloned().unwrap_or_default();
    let take = |v: (u32, Option<Choice>), missing: &mut Vec<_>| match missing.iter().position(|m| *m == v) {
        Some(at) => {
            missing.swap_remove(at);
            Ok(())
        }
        None => Err(format!("the box got {v:?}, not sent or sent once less")),
    };
    for e in events {
        if let Event::Vote(i, _, c) = e {
            take((*i, c.clone()), &mut missing)?;
        }
    }
    for v in log.returned.get(&id).into_iter().flatten() {
        take(v.clone(), &mut missing).map_err(|e| format!("returned undelivered: {e}"))?;
    }
    match missing.iter().find(|(i, _)| !log.dead.contains(&electorate[*i as usize])) {
        Some(lost) => Err(format!("the vote {lost:?} was sent and neither reached the box nor came back")),
        None => Ok(()),
    }
}

/// Checks one ballot's result against the replay of its tap log; its sums.
fn check_ballot(log: &Log, spec: &BallotSpec, result: &BallotResult) -> Result<Totals, String> {
    let Electorate::Agents(electorate) = &spec.electorate else { return Err("a query electorate".into()) };
    if &result.electorate != electorate {
        return Err("the electorate differs from the spec's".into());
    }
    let id = result.ballot.to_bits();
    let events = log.events.get(&id).map_or(&[][..], Vec::as_slice);
    let refused = (0..electorate.len() as u32)
        .filter(|&i| {
            !log.received.contains(&(id, i)) && !events.iter().any(|e| matches!(e, Event::Undelivered(j) if *j == i))
        })
        .count() as u32;
    votes_accounted(log, id, events, electorate)?;
    let r = replay(events, electorate, refused)?;
    let p = &result.participation;
    let got = (result.closed_by, p.participants, p.duplicates, p.undelivered, p.foreign);
    let want =
        (r.closed_by.ok_or("the model never closes it")?, r.accepted.len() as u32, r.duplicates, r.undelivered, 0);
    if got != want {
        return Err(format!(
            "(closed by, participants, duplicates, undelivered, foreign): got {got:?}, the model {want:?}"
        ));
    }
    let expected = tally(spec, electorate, &r.accepted);
    let reported = (&result.outcome, &result.votes, p.abstained, p.spoiled, p.weight_cast, p.weight_eligible);
    let model =
        (&expected.outcome, &expected.votes, expected.abstained, expected.spoiled, expected.cast, expected.eligible);
    if reported != model {
        return Err(format!("reported {reported:?}, the tally of the accepted votes gives {model:?}"));
    }
    if spec.rule != Rule::InstantRunoff && result.weights != expected.weights {
        return Err(format!("weights {:?}, the tally gives {:?}", result.weights, expected.weights));
    }
    let late = log.closed.get(&id).copied().flatten().map(|c| c.late_votes);
    if late != Some(r.late) {
        return Err(format!("the box counts {late:?} late votes, the model {}", r.late));
    }
    let (votes, duplicates, late) = (r.accepted.len() as u64, u64::from(r.duplicates), u64::from(r.late));
    Ok(Totals { ballots: 1, votes, duplicates, late })
}

/// The boxes' counters against the sums over the ballots.
fn check_boxes(log: &Log, totals: &Totals, boxes: usize) -> Result<(), String> {
    if log.stats.len() != boxes {
        return Err(format!("{} of {boxes} boxes answered for their counters", log.stats.len()));
    }
    let mut sum = BoxStats::default();
    for s in &log.stats {
        if s.open != 0 || s.opened != s.closed {
            return Err(format!("a box ends with ballots open: {s:?}"));
        }
        sum.opened += s.opened;
        sum.votes += s.votes;
        sum.duplicates += s.duplicates;
        sum.late_votes += s.late_votes;
        sum.refused += s.refused;
        sum.foreign_votes += s.foreign_votes;
        sum.unknown_votes += s.unknown_votes;
    }
    let got =
        (sum.opened, sum.votes, sum.duplicates, sum.late_votes, sum.refused, sum.foreign_votes, sum.unknown_votes);
    let want = (totals.ballots, totals.votes, totals.duplicates, totals.late, 0, 0, 0);
    if got != want {
        return Err(format!(
            "box counters (opened, votes, duplicates, late, refused, foreign, unknown) {got:?}, the ballots sum to {want:?}"
        ));
    }
    Ok(())
}

/// The tally of the accepted votes, by the rules' definitions (coord's `Rule` docs).
struct Expected {
    outcome: Outcome,
    votes: Vec<u32>,
    weights: Vec<u64>,
    abstained: u32,
    spoiled: u32,
    cast: u64,
    eligible: u64,
}

fn valid(choice: &Choice, options: usize) -> Option<Vec<u16>> {
    let ranking = match choice {
        Choice::One(o) => vec![*o],
        Choice::Ranked(r) => r.to_vec(),
    };
    let distinct = ranking.iter().collect::<BTreeSet<_>>().len() == ranking.len();
    (!ranking.is_empty() && distinct && ranking.iter().all(|&o| (o as usize) < options)).then_some(ranking)
}

fn tally(spec: &BallotSpec, electorate: &[AgentId], accepted: &[(u32, Option<Choice>)]) -> Expected {
    let options = spec.options.len();
    let weight = |v: AgentId| match &spec.rule {
        Rule::Weighted { weights, default_weight } => {
            u64::from(weights.iter().find(|w| w.0 == v).map_or(*default_weight, |w| w.1))
        }
        _ => 1,
    };
    let mut e = Expected {
        outcome: Outcome::NoDecision(NoDecision::NoVotes),
        votes: vec![0; options],
        weights: vec![0; options],
        abstained: 0,
        spoiled: 0,
        cast: 0,
        eligible: electorate.iter().map(|&v| weight(v)).sum(),
    };
    let mut rankings = Vec::new();
    for (i, choice) in accepted {
        let w = weight(electorate[*i as usize]);
        match choice.as_ref().map(|c| valid(c, options)) {
            None => e.abstained += 1,
            Some(None) => e.spoiled += 1,
            Some(Some(ranking)) => {
                e.votes[ranking[0] as usize] += 1;
                e.weights[ranking[0] as usize] += w;
                e.cast += w;
                rankings.push((ranking, w));
            }
        }
    }
    let participants = accepted.len() as u32;
    let needed = spec.quorum.needed(electorate.len() as u32);
    e.outcome = if participants < needed {
        Outcome::NoDecision(NoDecision::NoQuorum { participants, needed })
    } else if e.cast == 0 {
        Outcome::NoDecision(NoDecision::NoVotes)
    } else if spec.rule == Rule::InstantRunoff {
        runoff(&rankings, options)
    } else {
        decide(&spec.rule, &e)
    };
    e
}

/// Majority, supermajority, unanimity and weighted: the top weight against the weight cast.
fn decide(rule: &Rule, e: &Expected) -> Outcome {
    let top = e.weights.iter().copied().max().unwrap_or(0);
    let tops: Vec<u16> = (0..e.weights.len()).filter(|&o| e.weights[o] == top).map(|o| o as u16).collect();
    let best = tops[0];
    match rule {
        Rule::Unanimity if top == e.cast && e.abstained == 0 && e.spoiled == 0 => Outcome::Winner(best),
        Rule::Unanimity => Outcome::NoDecision(NoDecision::NotUnanimous),
        _ if tops.len() > 1 => Outcome::NoDecision(NoDecision::Tie(tops)),
        Rule::Supermajority { percent } if top * 100 >= u64::from(*percent) * e.cast => Outcome::Winner(best),
        Rule::Supermajority { .. } => below(best, top, e.cast),
        _ if top * 2 > e.cast => Outcome::Winner(best),
        _ => below(best, top, e.cast),
    }
}

fn below(best: u16, top: u64, cast: u64) -> Outcome {
    Outcome::NoDecision(NoDecision::BelowThreshold { best, share_permille: (top * 1000 / cast) as u32 })
}

/// Instant runoff: eliminate the options with the fewest first preferences (among those
/// remaining) until one has more than half of the ballots still ranking a remaining option.
fn runoff(rankings: &[(Vec<u16>, u64)], options: usize) -> Outcome {
    let mut remaining: Vec<u16> = (0..options as u16).collect();
    loop {
        let mut weights = vec![0u64; options];
        for (ranking, w) in rankings {
            if let Some(&o) = ranking.iter().find(|o| remaining.contains(o)) {
                weights[o as usize] += w;
            }
        }
        let active: u64 = weights.iter().sum();
        if active == 0 {
            return Outcome::NoDecision(NoDecision::NoVotes);
        }
        let top = remaining.iter().map(|&o| weights[o as usize]).max().unwrap_or(0);
        if top * 2 > active {
            let best = remaining.iter().copied().find(|&o| weights[o as usize] == top).unwrap_or(0);
            return Outcome::Winner(best);
        }
        let low = remaining.iter().map(|&o| weights[o as usize]).min().unwrap_or(0);
        let (lowest, rest): (Vec<u16>, Vec<u16>) = remaining.iter().partition(|&&o| weights[o as usize] == low);
        if rest.is_empty() {
            return Outcome::NoDecision(NoDecision::Tie(lowest));
        }
        remaining = rest;
    }
}
