//! Quorum votes: a proposer opens a ballot among voters, voters answer with messages, and the
//! ballot's owner tallies them under a rule and a quorum, until everyone voted or the deadline.
//!
//! The parts:
//!
//! * [`BallotSpec`]: what is asked: options, the electorate (an explicit list of agents or a
//!   discovery [`Query`]), a [`Rule`], a [`Quorum`] and a deadline;
//! * [`Ballots`]: one [`BallotBox`] agent per shard (start them once with
//!   [`Ballots::start`]). A box owns the ballots opened through it; [`Ballots::open`] asks the
//!   caller's shard's box from an agent (the [`BallotReply`] comes back as one of the caller's
//!   own messages, built by the closure it passes), and
//!   [`vote_blocking`] runs one ballot end to end from a host thread;
//! * voters: agents whose message type is [`VoterMsg`]. The generic [`Elector`] wraps a
//!   [`Voter`] (one method, `vote`), so most users only write that; an agent of its own can take
//!   `VoterMsg` and answer with [`BallotRequest::cast`].
//!
//! Protocol, for one ballot:
//!
//! 1. The proposer asks its box with `Open`. The box checks the limits, numbers the ballot
//!    ([`BallotId`]: its shard and a sequence number) and arms a timer for the deadline.
//! 2. With a query electorate, the box runs a global discovery (`Coord::discover`) and takes
//!    the candidates it answers with as the electorate.
//! 3. The box sends each voter a `VoterMsg::Ballot` naming the ballot, the voter's index in
//!    the electorate and the shared [`BallotInfo`] (one `Arc`, no copy per voter). It sends it
//!    tracked: a ballot that becomes a dead letter (the voter is gone, or takes another message
//!    type, which the engine counts as a `type_mismatch` dead letter) comes back and counts the
//!    voter as `undelivered`.
//! 4. Each voter sends one `BallotMsg::Vote` to the box: a message, not an ask reply, so a
//!    second vote or a vote after the close still reaches the box and is counted.
//! 5. The box closes the ballot when every eligible voter voted, abstained or was unreachable,
//!    or at the deadline, whichever is first, and replies to the proposer with a
//!    [`BallotResult`].
//!
//! Counting: an eligible voter counts once; a further vote from it is a `duplicate` (counted,
//! not tallied). A vote that arrives after its ballot closed is a late vote: ignored, and
//! counted per box ([`BoxStats::late_votes`]) and, while the box still remembers the ballot,
//! per ballot ([`Ballots::closed_blocking`]). Memory for that is bounded: a box remembers the
//! last [`CLOSED_RETAINED`] closed ballots (id and late count, in a ring with an index); since
//! ballot ids are sequential per box, a vote for an older closed ballot is still recognised as
//! late and counted per box, only not per ballot.
//!
//! Decision (see [`Rule`]): the share is taken of the weight cast for an option (abstentions and
//! spoiled ballots are not part of it), after the quorum, which counts participants (voted,
//! abstained or spoiled) among the eligible. Two options sharing the top weight are a tie.
//!
//! Limits: at most [`MAX_OPTIONS`] options, [`MAX_VOTERS`] voters and [`MAX_OPEN_BALLOTS`]
//! ballots open per box. A voter that dies after it got the ballot is not watched: the ballot
//! closes at its deadline (watching every voter would cost a cross-shard message each).

mod ballot_box;
mod tally;
mod voter;

#[cfg(test)]
mod tests;

pub use ballot_box::{vote_blocking, BallotBox, BallotMsg, Ballots, BoxStats, ClosedBallot, Opening, Vote};
pub use voter::{BallotInfo, BallotRequest, Elector, Voter, VoterMsg};

use crate::index::Query;
use nexus_engine::agent::{AgentId, SpawnError};
use nexus_engine::ask::AskError;
use std::sync::Arc;
use std::time::Duration;

/// Options a ballot may have.
pub const MAX_OPTIONS: usize = 64;
/// Voters a ballot may have (an explicit list, or a query's limit).
pub const MAX_VOTERS: usize = 4096;
/// Ballots one box keeps open at once; a further `Open` is refused with [`VoteError::TooManyOpen`].
pub const MAX_OPEN_BALLOTS: usize = 4096;
/// Closed ballots a box remembers by id, to count their late votes.
pub const CLOSED_RETAINED: usize = 1024;
/// How much longer than a ballot's deadline (plus discovery) a proposer waits for the result.
pub const REPLY_MARGIN: Duration = Duration::from_secs(2);
/// The deadline of a [`BallotSpec`] unless set.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(100);

/// Names one ballot: the shard of the box that owns it (top 16 bits) and the box's sequence
/// number (the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BallotId(u64);

impl BallotId {
    const SEQ_BITS: u32 = 48;

    pub(crate) fn new(shard: usize, seq: u64) -> Self {
        Self(((shard as u64) << Self::SEQ_BITS) | (seq & ((1 << Self::SEQ_BITS) - 1)))
    }

    /// The shard whose box owns the ballot.
    pub fn shard(self) -> usize {
        (self.0 >> Self::SEQ_BITS) as usize
    }

    /// The box's sequence number of the ballot.
    pub fn seq(self) -> u64 {
        self.0 & ((1 << Self::SEQ_BITS) - 1)
    }

    /// The raw value.
    pub fn to_bits(self) -> u64 {
        self.0
    }

    /// Rebuilds an id from [`to_bits`](Self::to_bits).
    pub fn from_bits(bits: u64) -> Self {
        Self(bits)
    }
}

impl std::fmt::Display for BallotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ballot {}:{}", self.shard(), self.seq())
    }
}

/// A voter's answer: one option, or options in order of preference (for
/// [`Rule::InstantRunoff`]; the other rules count the first preference). Options are indexes
/// into [`BallotSpec::options`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// One option.
    One(u16),
    /// Options, most preferred first; each at most once.
    Ranked(Box<[u16]>),
}

impl Choice {
    /// The most preferred option (`None` for an empty ranking).
    pub fn first(&self) -> Option<u16> {
        match self {
            Choice::One(o) => Some(*o),
            Choice::Ranked(r) => r.first().copied(),
        }
    }

    /// Whether every option named is below `options` and named once, and at least one is.
    pub fn is_valid(&self, options: usize) -> bool {
        match self {
            Choice::One(o) => (*o as usize) < options,
            Choice::Ranked(r) => {
                !r.is_empty() && r.iter().enumerate().all(|(i, o)| (*o as usize) < options && !r[..i].contains(o))
            }
        }
    }
}

/// Who may vote.
#[derive(Clone, Debug, PartialEq)]
pub enum Electorate {
    /// These agents (each once).
    Agents(Vec<AgentId>),
    /// The agents a global discovery finds for this query, when the ballot opens (at most its
    /// `limit`, itself at most [`MAX_VOTERS`]).
    Query(Query),
}

/// How the winner is decided. "Share" is the winner's weight over the weight cast for an option
/// (every voter weighs 1 except under [`Rule::Weighted`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// More than half.
    Majority,
    /// At least `percent` (51 to 100) percent.
    Supermajority {
        /// The threshold, in percent of the weight cast.
        percent: u8,
    },
    /// Every participant chose the same option: one abstention or spoiled ballot breaks it.
    /// Absent voters do not (that is the quorum's business: use [`Quorum::All`] to need
    /// everyone).
    Unanimity,
    /// More than half of the weight cast, each voter weighing its entry in `weights`, or
    /// `default_weight` when it has none.
    Weighted {
        /// Weights by agent; an agent at most once.
        weights: Vec<(AgentId, u32)>,
        /// The weight of an eligible agent without an entry.
        default_weight: u32,
    },
    /// Instant runoff over ranked choices: while no option has more than half of the ballots
    /// still ranking a remaining option, the options with the fewest first preferences are
    /// eliminated (all of them when several tie for fewest, unless that would eliminate
    /// every remaining option, which is a tie).
    InstantRunoff,
}

/// The least participation for a decision; participants are the eligible voters that voted,
/// abstained or spoiled their ballot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quorum {
    /// At least this many participants (0: no quorum).
    Voters(u32),
    /// At least this percentage of the eligible voters (rounded up; 0 to 100).
    Percent(u8),
    /// Every eligible voter.
    All,
}

impl Quorum {
    /// Participants needed among `eligible` voters.
    pub fn needed(self, eligible: u32) -> u32 {
        match self {
            Quorum::Voters(n) => n,
            Quorum::Percent(p) => ((eligible as u64 * p.min(100) as u64).div_ceil(100)) as u32,
            Quorum::All => eligible,
        }
    }
}

/// What a ballot asks; build with [`BallotSpec::new`] and the setters.
#[derive(Clone, Debug, PartialEq)]
pub struct BallotSpec {
    /// What the ballot is about (shown to voters).
    pub topic: Arc<str>,
    /// The options, indexed by [`Choice`]s (1 to [`MAX_OPTIONS`]).
    pub options: Arc<[Arc<str>]>,
    /// Who may vote.
    pub electorate: Electorate,
    /// How the winner is decided.
    pub rule: Rule,
    /// The least participation for a decision.
    pub quorum: Quorum,
    /// How long the ballot stays open at most, from when its box opens it.
    pub deadline: Duration,
}

impl BallotSpec {
    /// A ballot on `topic` among `options`, by `electorate`: majority rule, quorum of half the
    /// eligible voters, [`DEFAULT_DEADLINE`].
    pub fn new(topic: &str, options: &[&str], electorate: Electorate) -> Self {
        Self {
            topic: Arc::from(topic),
            options: options.iter().map(|o| Arc::from(*o)).collect(),
            electorate,
            rule: Rule::Majority,
            quorum: Quorum::Percent(50),
            deadline: DEFAULT_DEADLINE,
        }
    }

    /// Sets the rule.
    #[must_use]
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rule = rule;
        self
    }

    /// Sets the quorum.
    #[must_use]
    pub fn quorum(mut self, quorum: Quorum) -> Self {
        self.quorum = quorum;
        self
    }

    /// Sets the deadline.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Checks the limits and the rule's parameters.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), VoteError> {
        let n = self.options.len();
        if n == 0 {
            return Err(VoteError::NoOptions);
        }
        if n > MAX_OPTIONS {
            return Err(VoteError::TooManyOptions { options: n });
        }
        match &self.electorate {
            Electorate::Agents(ids) => {
                if ids.len() > MAX_VOTERS {
                    return Err(VoteError::TooManyVoters { voters: ids.len() });
                }
                if let Some(dup) = first_duplicate(ids.iter().copied()) {
                    return Err(VoteError::DuplicateVoter(dup));
                }
            }
            Electorate::Query(q) => {
                if q.limit > MAX_VOTERS {
                    return Err(VoteError::TooManyVoters { voters: q.limit });
                }
            }
        }
        match &self.rule {
            Rule::Supermajority { percent } if !(51..=100).contains(percent) => {
                return Err(VoteError::BadThreshold(*percent))
            }
            Rule::Weighted { weights, .. } => {
                if let Some(dup) = first_duplicate(weights.iter().map(|w| w.0)) {
                    return Err(VoteError::DuplicateWeight(dup));
                }
            }
            _ => {}
        }
        if let Quorum::Percent(p) = self.quorum {
            if p > 100 {
                return Err(VoteError::BadQuorum(p));
            }
        }
        Ok(())
    }
}

fn first_duplicate(ids: impl Iterator<Item = AgentId>) -> Option<AgentId> {
    let mut sorted: Vec<AgentId> = ids.collect();
    sorted.sort_unstable();
    sorted.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

/// How a ballot ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This option won.
    Winner(u16),
    /// No option won, and why.
    NoDecision(NoDecision),
}

/// Why a ballot decided nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoDecision {
    /// The electorate was empty (a query found nobody).
    NoElectorate,
    /// Too few participants.
    NoQuorum {
        /// Eligible voters that took part.
        participants: u32,
        /// Participants needed.
        needed: u32,
    },
    /// Participants took part but nobody chose an option (all abstained or spoiled, or the
    /// weight cast was 0).
    NoVotes,
    /// These options share the top weight (lowest index first).
    Tie(Vec<u16>),
    /// The best option's share is below the rule's threshold.
    BelowThreshold {
        /// The best option.
        best: u16,
        /// Its share of the weight cast, in per mille (rounded down).
        share_permille: u32,
    },
    /// Unanimity was asked and participants disagreed (or abstained).
    NotUnanimous,
}

/// Who took part in a ballot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Participation {
    /// Voters in the electorate.
    pub eligible: u32,
    /// Eligible voters that took part: voted for an option, abstained or spoiled.
    pub participants: u32,
    /// Of those, abstentions (a voter answering `None`).
    pub abstained: u32,
    /// Of those, spoiled ballots (an option out of range, or a bad ranking).
    pub spoiled: u32,
    /// Eligible voters the ballot could not reach (a dead letter, or a full mailbox).
    pub undelivered: u32,
    /// Further votes from voters that had voted already (counted once, these ignored).
    pub duplicates: u32,
    /// Votes from an agent not eligible at the index it named (ignored).
    pub foreign: u32,
    /// Weight cast for an option.
    pub weight_cast: u64,
    /// Weight of the whole electorate.
    pub weight_eligible: u64,
}

impl Participation {
    /// Participants over eligible voters (0 to 1; 0 for an empty electorate).
    pub fn turnout(&self) -> f64 {
        if self.eligible == 0 {
            0.0
        } else {
            self.participants as f64 / self.eligible as f64
        }
    }
}

/// Why a ballot closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClosedBy {
    /// Every eligible voter took part or was unreachable (early close).
    Complete,
    /// The deadline passed.
    Deadline,
}

/// The result of one ballot.
#[derive(Clone, Debug, PartialEq)]
pub struct BallotResult {
    /// The ballot.
    pub ballot: BallotId,
    /// The winner, or why there is none.
    pub outcome: Outcome,
    /// Per option, the voters whose first preference it was.
    pub votes: Vec<u32>,
    /// Per option, the weight counted for it (the last round's, under instant runoff).
    pub weights: Vec<u64>,
    /// Who took part.
    pub participation: Participation,
    /// Why it closed.
    pub closed_by: ClosedBy,
    /// Counting rounds (1, or more under instant runoff).
    pub rounds: u32,
    /// The electorate (in the order ballots were sent).
    pub electorate: Vec<AgentId>,
    /// The topic and options.
    pub info: Arc<BallotInfo>,
    /// Engine-clock nanoseconds from open to close.
    pub elapsed_ns: u64,
}

impl BallotResult {
    /// The winning option's index.
    pub fn winner(&self) -> Option<u16> {
        match self.outcome {
            Outcome::Winner(o) => Some(o),
            Outcome::NoDecision(_) => None,
        }
    }

    /// The winning option's name.
    pub fn winner_name(&self) -> Option<&str> {
        self.winner().and_then(|o| self.info.options.get(o as usize)).map(|s| &**s)
    }
}

/// What a proposer gets back: the result, or why the ballot could not run.
pub type BallotReply = Result<BallotResult, VoteError>;

/// Why a ballot could not be opened or run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VoteError {
    /// The spec has no option.
    #[error("a ballot needs at least one option; hint: list the options in BallotSpec::new")]
    NoOptions,
    /// The spec has too many options.
    #[error("{options} options, at most {MAX_OPTIONS}; hint: split the ballot")]
    TooManyOptions {
        /// Options given.
        options: usize,
    },
    /// The electorate is too large.
    #[error("{voters} voters, at most {MAX_VOTERS}; hint: lower the query's limit or split the electorate")]
    TooManyVoters {
        /// Voters given (or the query's limit).
        voters: usize,
    },
    /// An agent is listed twice in the electorate.
    #[error("voter {0} is listed twice; hint: list each voter once (use Rule::Weighted to give one more weight)")]
    DuplicateVoter(AgentId),
    /// An agent has two weights.
    #[error("voter {0} has two weights; hint: give each voter one weight")]
    DuplicateWeight(AgentId),
    /// A supermajority threshold out of range.
    #[error("supermajority of {0}%: must be 51 to 100; hint: use Rule::Majority for more than half")]
    BadThreshold(u8),
    /// A quorum percentage above 100.
    #[error("quorum of {0}%: must be 0 to 100")]
    BadQuorum(u8),
    /// The box has too many ballots open.
    #[error("the ballot box has {MAX_OPEN_BALLOTS} ballots open; hint: wait for some to close")]
    TooManyOpen,
    /// The discovery of a query electorate failed.
    #[error("the electorate's discovery failed: {0}")]
    Discovery(AskError),
    /// No box on that shard: the boxes were not started for this engine.
    #[error("no ballot box on shard {0}; hint: start them with Ballots::start")]
    NoBox(usize),
    /// A ballot box could not be started.
    #[error("cannot start a ballot box: {0}")]
    Spawn(#[from] SpawnError),
    /// The request could not be sent (the box's mailbox is full).
    #[error("the ballot box is overloaded; hint: retry later")]
    Full,
    /// The box did not answer.
    #[error("the ballot box did not answer: {0}")]
    Ask(#[from] AskError),
}
