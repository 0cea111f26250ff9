//! Votes end to end on a two-shard engine: every rule, the quorum, duplicate, late, foreign
//! and undelivered votes, query electorates, dead voters, and the agent-side API.
//!
//! Deadlines here are generous and no test asserts a duration: a ballot that should close
//! early is checked by `closed_by`, one that should wait by its outcome.

use super::*;
use crate::tests::{engine, Worker, WorkerMsg};
use crate::{Coord, CoordConfig};
use nexus_engine::agent::{Addr, Agent, AgentId, Ctx, SpawnPlacement};
use nexus_engine::ask::ReplyTo;
use nexus_engine::engine::{Engine, EngineHandle};
use nexus_engine::metrics::DeadLetterReason;

/// Long enough never to be what closes a ballot that should close early.
const LONG: Duration = Duration::from_secs(20);
/// For ballots that must wait for their deadline.
const SHORT: Duration = Duration::from_millis(80);

fn setup() -> (Engine, EngineHandle, Coord, Ballots) {
    let engine = engine();
    let h = engine.handle();
    let coord = Coord::start(&h, &CoordConfig::default()).expect("coord starts");
    let ballots = Ballots::start(&h, &coord).expect("boxes start");
    (engine, h, coord, ballots)
}

fn elector(h: &EngineHandle, shard: usize, choice: Option<Choice>) -> AgentId {
    let voter = move |_: &BallotInfo| choice.clone();
    h.spawn(SpawnPlacement::Shard(shard), move || Elector::new(voter)).expect("spawn").id()
}

/// One elector per entry (`None` abstains), alternating shards.
fn electors(h: &EngineHandle, choices: &[Option<u16>]) -> Vec<AgentId> {
    choices.iter().enumerate().map(|(i, c)| elector(h, i % 2, c.map(Choice::One))).collect()
}

fn ones(n: usize, option: u16) -> Vec<Option<u16>> {
    vec![Some(option); n]
}

fn spec(voters: Vec<AgentId>, options: &[&str]) -> BallotSpec {
    BallotSpec::new("test", options, Electorate::Agents(voters)).deadline(LONG)
}

/// A voter that misbehaves on purpose.
enum Script {
    Silent,
    Twice(u16),
    Late(u16, Duration),
    Die,
    /// A vote naming another voter at this one's index, then its own.
    Foreign(u16),
}

struct Scripted(Script);

impl Agent for Scripted {
    type Msg = VoterMsg;
    fn handle(&mut self, msg: VoterMsg, ctx: &mut Ctx<'_>) {
        let VoterMsg::Ballot(req) = msg;
        match self.0 {
            Script::Silent => {}
            Script::Twice(o) => {
                req.cast(ctx, Some(Choice::One(o))).expect("sent");
                req.cast(ctx, Some(Choice::One(o))).expect("sent");
            }
            Script::Late(o, delay) => {
                let vote = req.vote_msg(ctx.id(), Some(Choice::One(o)));
                ctx.send_after(req.ballot_box, vote, delay);
            }
            Script::Die => ctx.stop_self(),
            Script::Foreign(o) => {
                let forged = req.vote_msg(AgentId::new(0, 999_999, 0), Some(Choice::One(o)));
                ctx.send(req.ballot_box, forged).expect("sent");
                req.cast(ctx, Some(Choice::One(o))).expect("sent");
            }
        }
    }
}

fn scripted(h: &EngineHandle, shard: usize, script: Script) -> AgentId {
    h.spawn(SpawnPlacement::Shard(shard), move || Scripted(script)).expect("spawn").id()
}

#[test]
fn majority_wins_across_both_shards_and_a_tie_decides_nothing() {
    let (engine, h, _coord, ballots) = setup();
    let mut choices = ones(5, 0);
    choices.extend(ones(4, 1));
    let voters = electors(&h, &choices);
    assert!(voters.iter().any(|v| v.shard() == 0) && voters.iter().any(|v| v.shard() == 1));
    let r = vote_blocking(&h, &ballots, spec(voters.clone(), &["yes", "no"])).unwrap();
    assert_eq!(r.outcome, Outcome::Winner(0));
    assert_eq!(r.winner_name(), Some("yes"));
    assert_eq!((r.votes.clone(), r.weights.clone()), (vec![5, 4], vec![5, 4]));
    assert_eq!(r.closed_by, ClosedBy::Complete, "everyone voted: no wait for the deadline");
    assert_eq!((r.participation.eligible, r.participation.participants), (9, 9));
    assert_eq!(r.participation.turnout(), 1.0);
    assert_eq!(r.electorate, voters);

    let tie = electors(&h, &[Some(0), Some(1), Some(1), Some(0)]);
    let r = vote_blocking(&h, &ballots, spec(tie, &["a", "b"])).unwrap();
    assert_eq!(r.outcome, Outcome::NoDecision(NoDecision::Tie(vec![0, 1])));
    assert_eq!(r.winner(), None);
    engine.shutdown().unwrap();
}

#[test]
fn supermajority_met_and_missed() {
    let (engine, h, _coord, ballots) = setup();
    let mut choices = ones(6, 0);
    choices.extend(ones(3, 1));
    let voters = electors(&h, &choices);
    let met = spec(voters.clone(), &["a", "b"]).rule(Rule::Supermajority { percent: 66 });
    assert_eq!(vote_blocking(&h, &ballots, met).unwrap().outcome, Outcome::Winner(0));
    let missed = spec(voters, &["a", "b"]).rule(Rule::Supermajority { percent: 75 });
    assert_eq!(
        vote_blocking(&h, &ballots, missed).unwrap().outcome,
        Outcome::NoDecision(NoDecision::BelowThreshold { best: 0, share_permille: 666 })
    );
    engine.shutdown().unwrap();
}

#[test]
fn unanimity_met_and_broken() {
    let (engine, h, _coord, ballots) = setup();
    let all = electors(&h, &ones(5, 1));
    let r = vote_blocking(&h, &ballots, spec(all, &["a", "b"]).rule(Rule::Unanimity)).unwrap();
    assert_eq!(r.outcome, Outcome::Winner(1));
    let mut choices = ones(4, 1);
    choices.push(Some(0));
    let split = electors(&h, &choices);
    let r = vote_blocking(&h, &ballots, spec(split, &["a", "b"]).rule(Rule::Unanimity)).unwrap();
    assert_eq!(r.outcome, Outcome::NoDecision(NoDecision::NotUnanimous));
    let abstain = electors(&h, &[Some(1), Some(1), None]);
    let r = vote_blocking(&h, &ballots, spec(abstain, &["a", "b"]).rule(Rule::Unanimity)).unwrap();
    assert_eq!(r.outcome, Outcome::NoDecision(NoDecision::NotUnanimous), "an abstention breaks unanimity");
    engine.shutdown().unwrap();
}

#[test]
fn weights_flip_the_outcome() {
    let (engine, h, _coord, ballots) = setup();
    let voters = electors(&h, &[Some(0), Some(1), Some(1)]);
    let plain = vote_blocking(&h, &ballots, spec(voters.clone(), &["a", "b"])).unwrap();
    assert_eq!(plain.outcome, Outcome::Winner(1), "one head, one vote: b wins 2 to 1");
    let rule = Rule::Weighted { weights: vec![(voters[0], 5)], default_weight: 1 };
    let weighted = vote_blocking(&h, &ballots, spec(voters, &["a", "b"]).rule(rule)).unwrap();
    assert_eq!(weighted.outcome, Outcome::Winner(0), "a weighs 5 against 2");
    assert_eq!((weighted.votes.clone(), weighted.weights.clone()), (vec![1, 2], vec![5, 2]));
    assert_eq!((weighted.participation.weight_cast, weighted.participation.weight_eligible), (7, 7));
    engine.shutdown().unwrap();
}

#[test]
fn without_quorum_there_is_no_decision_and_the_deadline_closes_it() {
    let (engine, h, _coord, ballots) = setup();
    let mut voters = electors(&h, &[Some(0), Some(0)]);
    voters.extend((0..3).map(|i| scripted(&h, i % 2, Script::Silent)));
    let s = spec(voters.clone(), &["a", "b"]).quorum(Quorum::Percent(60)).deadline(SHORT);
    let r = vote_blocking(&h, &ballots, s).unwrap();
    assert_eq!(r.outcome, Outcome::NoDecision(NoDecision::NoQuorum { participants: 2, needed: 3 }));
    assert_eq!(r.closed_by, ClosedBy::Deadline);
    assert_eq!((r.participation.participants, r.participation.eligible), (2, 5));
    // The same two votes with a quorum of two decide.
    let s = spec(voters, &["a", "b"]).quorum(Quorum::Voters(2)).deadline(SHORT);
    assert_eq!(vote_blocking(&h, &ballots, s).unwrap().outcome, Outcome::Winner(0));
    engine.shutdown().unwrap();
}

#[test]
fn a_duplicate_vote_counts_once_and_is_counted() {
    let (engine, h, _coord, ballots) = setup();
    // A silent voter keeps the ballot open until the deadline, so the duplicate is not late.
    let voters =
        vec![scripted(&h, 1, Script::Twice(1)), elector(&h, 0, Some(Choice::One(0))), scripted(&h, 0, Script::Silent)];
    let s = spec(voters, &["a", "b"]).quorum(Quorum::Voters(2)).deadline(SHORT);
    let r = vote_blocking(&h, &ballots, s).unwrap();
    assert_eq!(r.votes, vec![1, 1], "the double voter counted once");
    assert_eq!(r.participation.duplicates, 1);
    assert_eq!(r.participation.participants, 2);
    assert_eq!(r.outcome, Outcome::NoDecision(NoDecision::Tie(vec![0, 1])));
    let stats = ballots.stats_blocking(&h).unwrap();
    assert_eq!(stats[0].duplicates, 1);
    engine.shutdown().unwrap();
}

#[test]
fn a_late_vote_is_ignored_and_counted() {
    let (engine, h, _coord, ballots) = setup();
    let mut voters = electors(&h, &[Some(0), Some(0)]);
    voters.push(scripted(&h, 1, Script::Late(1, SHORT * 3)));
    let s = spec(voters, &["a", "b"]).quorum(Quorum::Voters(2)).deadline(SHORT);
    let r = vote_blocking(&h, &ballots, s).unwrap();
    assert_eq!((r.closed_by, r.votes.clone()), (ClosedBy::Deadline, vec![2, 0]));
    assert_eq!(r.outcome, Outcome::Winner(0));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let closed = ballots.closed_blocking(&h, r.ballot).unwrap().expect("remembered");
        if closed.late_votes == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the late vote reached the box");
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = ballots.stats_blocking(&h).unwrap();
    assert_eq!((stats[0].late_votes, stats[0].votes), (1, 2), "ignored: not tallied");
    engine.shutdown().unwrap();
}

#[test]
fn closed_ballots_are_remembered_within_a_bound_and_older_late_votes_still_count() {
    let (engine, h, _coord, ballots) = setup();
    let first = vote_blocking(&h, &ballots, spec(Vec::new(), &["a"])).unwrap();
    assert_eq!(first.outcome, Outcome::NoDecision(NoDecision::NoElectorate));
    for _ in 0..CLOSED_RETAINED {
        vote_blocking(&h, &ballots, spec(Vec::new(), &["a"])).unwrap();
    }
    assert_eq!(ballots.closed_blocking(&h, first.ballot).unwrap(), None, "forgotten: the memory is bounded");
    let bx = ballots.box_of(0).unwrap();
    let stray = AgentId::new(1, 1, 0);
    let vote = |ballot| BallotMsg::Vote(Vote { ballot, index: 0, voter: stray, choice: None });
    h.send(bx, vote(first.ballot)).unwrap();
    h.send(bx, vote(BallotId::new(0, 1 << 40))).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = ballots.stats_blocking(&h).unwrap()[0];
        if s.late_votes == 1 && s.unknown_votes == 1 {
            assert_eq!((s.opened, s.closed, s.open), (CLOSED_RETAINED as u64 + 1, CLOSED_RETAINED as u64 + 1, 0));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{s:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    engine.shutdown().unwrap();
}

#[test]
fn a_query_electorate_is_found_by_discovery() {
    let (engine, h, coord, ballots) = setup();
    let judge = coord.cap_set(&["judge"]).unwrap();
    let mut ids = Vec::new();
    for i in 0..6usize {
        let choice = Some(Choice::One(u16::from(i >= 4)));
        let voter = move |_: &BallotInfo| choice.clone();
        let c = coord.clone();
        ids.push(h.spawn(SpawnPlacement::Shard(i % 2), move || Elector::new(voter).declared(&c, judge)).unwrap().id());
    }
    // An agent without the capability is not asked.
    elector(&h, 0, Some(Choice::One(1)));
    let s = BallotSpec::new("q", &["a", "b"], Electorate::Query(crate::index::Query::all(judge, 100))).deadline(LONG);
    let r = vote_blocking(&h, &ballots, s).unwrap();
    assert_eq!(r.outcome, Outcome::Winner(0));
    assert_eq!((r.participation.eligible, r.votes.clone()), (6, vec![4, 2]));
    let mut found = r.electorate.clone();
    found.sort();
    ids.sort();
    assert_eq!(found, ids);
    assert_eq!(r.closed_by, ClosedBy::Complete);
    engine.shutdown().unwrap();
}

#[test]
fn a_voter_dying_mid_ballot_closes_it_at_the_deadline() {
    let (engine, h, _coord, ballots) = setup();
    let mut voters = electors(&h, &[Some(0), Some(0), Some(1), Some(0)]);
    voters.push(scripted(&h, 1, Script::Die));
    let r = vote_blocking(&h, &ballots, spec(voters, &["a", "b"]).deadline(SHORT)).unwrap();
    assert_eq!(r.closed_by, ClosedBy::Deadline);
    assert_eq!(r.outcome, Outcome::Winner(0));
    assert_eq!((r.participation.participants, r.participation.eligible), (4, 5));
    // Now it is gone: its ballot is a dead letter, and the box closes without waiting.
    let dead = r.electorate[4];
    let mut voters = electors(&h, &[Some(1), Some(1)]);
    voters.push(dead);
    let r = vote_blocking(&h, &ballots, spec(voters, &["a", "b"])).unwrap();
    assert_eq!((r.closed_by, r.participation.undelivered), (ClosedBy::Complete, 1));
    assert_eq!(r.outcome, Outcome::Winner(1));
    engine.shutdown().unwrap();
}

#[test]
fn an_agent_of_another_message_type_gets_a_type_mismatch_dead_letter() {
    let (engine, h, coord, ballots) = setup();
    let caps = coord.cap_set(&["other"]).unwrap();
    let c = coord.clone();
    let load = crate::index::LoadSource::Mailbox;
    let worker = h.spawn(SpawnPlacement::Shard(1), move || Worker { coord: c, caps, load }).unwrap().id();
    let mut voters = electors(&h, &[Some(0), Some(0)]);
    voters.push(worker);
    let r = vote_blocking(&h, &ballots, spec(voters, &["a", "b"])).unwrap();
    assert_eq!((r.closed_by, r.participation.undelivered), (ClosedBy::Complete, 1));
    assert_eq!(r.participation.eligible, 3);
    let stats = h.stats().unwrap();
    assert!(stats.totals().dead(DeadLetterReason::TypeMismatch) >= 1);
    h.send(Addr::<WorkerMsg>::from_id(worker), WorkerMsg::Stop).unwrap();
    engine.shutdown().unwrap();
}

#[test]
fn participation_counts_abstentions_spoiled_and_foreign_votes() {
    let (engine, h, _coord, ballots) = setup();
    let mut voters = electors(&h, &[Some(0), Some(0), Some(1), None, Some(9)]);
    voters.push(scripted(&h, 0, Script::Silent));
    voters.push(scripted(&h, 1, Script::Foreign(1)));
    let s = spec(voters.clone(), &["a", "b"]).deadline(SHORT).quorum(Quorum::Voters(0));
    let r = vote_blocking(&h, &ballots, s).unwrap();
    let p = r.participation;
    assert_eq!((p.eligible, p.participants, p.abstained, p.spoiled), (7, 6, 1, 1));
    assert_eq!((p.weight_cast, p.weight_eligible, p.undelivered), (4, 7, 0));
    assert_eq!((p.foreign, p.duplicates), (1, 0), "a forged vote is ignored, and counted");
    assert!((p.turnout() - 6.0 / 7.0).abs() < 1e-9);
    assert_eq!(r.outcome, Outcome::NoDecision(NoDecision::Tie(vec![0, 1])), "2 to 2 of the 4 cast for an option");
    engine.shutdown().unwrap();
}

#[test]
fn instant_runoff_transfers_preferences_end_to_end() {
    let (engine, h, _coord, ballots) = setup();
    let rankings: [&[u16]; 5] = [&[0], &[0, 1], &[1], &[1, 0], &[2, 1]];
    let voters: Vec<AgentId> = rankings
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let choice = Choice::Ranked((*r).into());
            let voter = move |b: &BallotInfo| {
                assert!(b.ranked);
                Some(choice.clone())
            };
            h.spawn(SpawnPlacement::Shard(i % 2), move || Elector::new(voter)).unwrap().id()
        })
        .collect();
    let r = vote_blocking(&h, &ballots, spec(voters, &["a", "b", "c"]).rule(Rule::InstantRunoff)).unwrap();
    assert_eq!(r.outcome, Outcome::Winner(1));
    assert_eq!((r.rounds, r.votes.clone(), r.weights.clone()), (2, vec![2, 2, 1], vec![2, 3, 0]));
    engine.shutdown().unwrap();
}

#[test]
fn invalid_specs_are_typed_errors_with_a_hint() {
    let (engine, h, _coord, ballots) = setup();
    let v = electors(&h, &[Some(0)]);
    let err = vote_blocking(&h, &ballots, spec(v.clone(), &[])).unwrap_err();
    assert_eq!(err, VoteError::NoOptions);
    assert!(err.to_string().contains("hint:"), "{err}");
    let err = vote_blocking(&h, &ballots, spec(vec![v[0], v[0]], &["a"])).unwrap_err();
    assert_eq!(err, VoteError::DuplicateVoter(v[0]));
    let bad = spec(v.clone(), &["a"]).rule(Rule::Supermajority { percent: 40 });
    assert_eq!(vote_blocking(&h, &ballots, bad).unwrap_err(), VoteError::BadThreshold(40));
    let many: Vec<&str> = (0..=MAX_OPTIONS).map(|_| "x").collect();
    assert!(matches!(vote_blocking(&h, &ballots, spec(v, &many)), Err(VoteError::TooManyOptions { .. })));
    engine.shutdown().unwrap();
}

/// Opens ballots from inside an agent and hands the results to the host.
struct Proposer {
    ballots: Ballots,
}

enum ProposerMsg {
    Propose(BallotSpec, ReplyTo<BallotReply>),
    /// The result of a ballot, for the host's `ReplyTo`.
    Decided(ReplyTo<BallotReply>, BallotReply),
}

impl Agent for Proposer {
    type Msg = ProposerMsg;
    fn handle(&mut self, msg: ProposerMsg, ctx: &mut Ctx<'_>) {
        match msg {
            ProposerMsg::Propose(spec, reply) => {
                // `open` drops the closure (and the host's token in it) when it refuses, so
                // the spec is checked here first to answer the host with the typed error.
                if let Err(e) = spec.validate() {
                    return ctx.reply(reply, Err(e));
                }
                let opened = self.ballots.open(ctx, spec, move |result| ProposerMsg::Decided(reply, result));
                assert!(opened.is_ok(), "{opened:?}");
            }
            ProposerMsg::Decided(to, result) => ctx.reply(to, result),
        }
    }
}

#[test]
fn an_agent_opens_a_ballot_and_gets_the_result_as_its_own_message() {
    let (engine, h, _coord, ballots) = setup();
    let b = ballots.clone();
    let proposer = h.spawn(SpawnPlacement::Shard(1), move || Proposer { ballots: b }).unwrap();
    let voters = electors(&h, &[Some(2), Some(2), Some(0)]);
    let s = spec(voters, &["a", "b", "c"]);
    let r = h.ask(proposer, Duration::from_secs(30), |reply| ProposerMsg::Propose(s, reply)).unwrap().unwrap();
    assert_eq!(r.outcome, Outcome::Winner(2));
    assert_eq!(r.ballot.shard(), 1, "opened in the proposer's shard's box");
    let err =
        h.ask(proposer, Duration::from_secs(30), |reply| ProposerMsg::Propose(spec(Vec::new(), &[]), reply)).unwrap();
    assert_eq!(err.unwrap_err(), VoteError::NoOptions);
    engine.shutdown().unwrap();
}

#[test]
fn hot_messages_travel_inline() {
    assert!(nexus_engine::payload::travels_unboxed::<BallotMsg>(), "{}", std::mem::size_of::<BallotMsg>());
    assert!(nexus_engine::payload::travels_unboxed::<VoterMsg>(), "{}", std::mem::size_of::<VoterMsg>());
}

#[test]
fn public_types_are_send_and_sync_where_they_travel() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<BallotMsg>();
    send::<VoterMsg>();
    send::<BallotResult>();
    send::<Ballots>();
    sync::<Ballots>();
}
