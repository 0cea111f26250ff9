//! Reputation: what auction managers learn about the agents they hire.
//!
//! Each judged agent has two exponentially weighted moving averages (EWMA), both in `0..=1`:
//!
//! * **success**: 1 for a contract completed, 0 for one failed, abandoned past its deadline,
//!   or ended by the contractor's death;
//! * **timeliness**: 1 for a contract completed by the time the contractor estimated in its
//!   bid (plus [`TIMELINESS_SLACK`]), less the later it is (`estimate / actual`), and 0 for a
//!   missed deadline. A failure or a death says nothing about timeliness and leaves it as is.
//!
//! An update is `avg += alpha · (sample − avg)`, with `alpha` from `[coord]
//! reputation_alpha_pct` (1 to 100 percent). Both averages start at
//! [`NEUTRAL_REPUTATION`] (0.5), so an agent nobody judged is neither trusted nor
//! distrusted. The single figure discovery ranks by is [`ReputationEntry::value`]:
//! `SUCCESS_SHARE · success + (1 − SUCCESS_SHARE) · timeliness`.
//!
//! Where it lives: one [`Reputation`] table per shard, in that shard's `Ctx::shard_local`
//! storage ([`ShardReputation`]), shared by every auction manager of the shard and touched only
//! by the shard's thread. Agents of that shard read it synchronously ([`local`]); others ask a
//! manager (`AuctionMsg::Reputation`, or `reputation_blocking` from a host thread). After
//! each judgement the manager pushes the new value to discovery (`Coord::set_reputation`), so
//! discovery ranks by it; the manager's table stays the authoritative copy.
//!
//! Invariants: every stored average is finite and in `0..=1`; `alpha` is in `0.01..=1`.

use crate::index::NEUTRAL_REPUTATION;
use nexus_engine::agent::{AgentId, Ctx};
use nexus_engine::config::CoordConfig;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// The share of `success` in [`ReputationEntry::value`]; timeliness has the rest.
pub const SUCCESS_SHARE: f64 = 0.75;

/// A completion within `estimate + TIMELINESS_SLACK` counts as on time: an estimate of "at
/// once" should not be punished for the few microseconds a message takes.
pub const TIMELINESS_SLACK: Duration = Duration::from_millis(1);

/// What a manager concluded about one contract.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Judgement {
    /// Completed; `timeliness` in `0..=1` (see [`timeliness`]).
    Completed {
        /// 1 on time, less the later it was.
        timeliness: f64,
    },
    /// The contractor reported a failure.
    Failed,
    /// The contract's deadline passed without a report.
    MissedDeadline,
    /// The contractor stopped while holding the contract.
    Died,
}

/// The timeliness sample of a contract estimated to take `estimated` that took `actual`:
/// 1 when `actual <= estimated + TIMELINESS_SLACK`, else `(estimated + slack) / actual`.
pub fn timeliness(estimated: Duration, actual: Duration) -> f64 {
    let allowed = estimated.saturating_add(TIMELINESS_SLACK);
    if actual <= allowed {
        1.0
    } else {
        (allowed.as_secs_f64() / actual.as_secs_f64()).clamp(0.0, 1.0)
    }
}

/// One agent's reputation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReputationEntry {
    /// EWMA of success (0 to 1).
    pub success: f64,
    /// EWMA of timeliness (0 to 1).
    pub timeliness: f64,
    /// Judgements recorded.
    pub samples: u64,
}

impl Default for ReputationEntry {
    fn default() -> Self {
        Self { success: NEUTRAL_REPUTATION, timeliness: NEUTRAL_REPUTATION, samples: 0 }
    }
}

impl ReputationEntry {
    /// The single figure (0 to 1) discovery and the weighted scoring rule use.
    pub fn value(&self) -> f64 {
        SUCCESS_SHARE * self.success + (1.0 - SUCCESS_SHARE) * self.timeliness
    }
}

/// A table of reputations; see the module docs.
#[derive(Clone, Debug)]
pub struct Reputation {
    alpha: f64,
    table: HashMap<AgentId, ReputationEntry>,
}

impl Default for Reputation {
    fn default() -> Self {
        Self::from_config(&CoordConfig::default())
    }
}

impl Reputation {
    /// An empty table whose averages weigh the newest sample by `alpha_pct` percent (clamped
    /// to 1..=100).
    pub fn new(alpha_pct: u32) -> Self {
        Self { alpha: Self::alpha_of(alpha_pct), table: HashMap::new() }
    }

    /// An empty table with the config's `reputation_alpha_pct`.
    pub fn from_config(config: &CoordConfig) -> Self {
        Self::new(config.reputation_alpha_pct)
    }

    fn alpha_of(pct: u32) -> f64 {
        f64::from(pct.clamp(1, 100)) / 100.0
    }

    /// The weight of the newest sample (0.01 to 1).
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Changes the weight of the newest sample (percent, clamped to 1..=100); recorded
    /// averages stay.
    pub fn set_alpha_pct(&mut self, alpha_pct: u32) {
        self.alpha = Self::alpha_of(alpha_pct);
    }

    /// Records `judgement` of `id`; returns its new [`ReputationEntry::value`].
    pub fn record(&mut self, id: AgentId, judgement: Judgement) -> f64 {
        let alpha = self.alpha;
        let e = self.table.entry(id).or_default();
        let ewma = |avg: &mut f64, sample: f64| {
            let sample = if sample.is_finite() { sample.clamp(0.0, 1.0) } else { 0.0 };
            *avg = (*avg + alpha * (sample - *avg)).clamp(0.0, 1.0);
        };
        match judgement {
            Judgement::Completed { timeliness } => {
                ewma(&mut e.success, 1.0);
                ewma(&mut e.timeliness, timeliness);
            }
            Judgement::Failed | Judgement::Died => ewma(&mut e.success, 0.0),
            Judgement::MissedDeadline => {
                ewma(&mut e.success, 0.0);
                ewma(&mut e.timeliness, 0.0);
            }
        }
        e.samples += 1;
        e.value()
    }

    /// The entry of `id`, if it was ever judged.
    pub fn get(&self, id: AgentId) -> Option<ReputationEntry> {
        self.table.get(&id).copied()
    }

    /// The value of `id` ([`NEUTRAL_REPUTATION`] when never judged).
    pub fn value(&self, id: AgentId) -> f64 {
        self.table.get(&id).map_or(NEUTRAL_REPUTATION, ReputationEntry::value)
    }

    /// Agents judged.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no agent was judged.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// The reputation table of one shard, in its `Ctx::shard_local` storage; see the module docs.
#[derive(Default)]
pub struct ShardReputation {
    /// The table; borrow it briefly, never across a call that may run another agent.
    pub table: RefCell<Reputation>,
}

/// The reputation table of the caller's shard: a synchronous reader (and writer) for agents
/// of the managers' shard. Keep the `Rc` rather than looking it up per message.
pub fn local(ctx: &mut Ctx<'_>) -> Rc<ShardReputation> {
    ctx.shard_local::<ShardReputation>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> AgentId {
        AgentId::new(0, n, 1)
    }

    #[test]
    fn an_unjudged_agent_is_neutral() {
        let r = Reputation::new(20);
        assert_eq!(r.value(id(1)), NEUTRAL_REPUTATION);
        assert!(r.get(id(1)).is_none());
        assert_eq!(ReputationEntry::default().value(), NEUTRAL_REPUTATION);
    }

    #[test]
    fn ewma_follows_the_formula() {
        let mut r = Reputation::new(20);
        let v = r.record(id(1), Judgement::Completed { timeliness: 1.0 });
        let e = r.get(id(1)).unwrap();
        assert!((e.success - 0.6).abs() < 1e-12, "0.5 + 0.2 * (1 - 0.5)");
        assert!((e.timeliness - 0.6).abs() < 1e-12);
        assert!((v - 0.6).abs() < 1e-12);
        r.record(id(1), Judgement::Failed);
        let e = r.get(id(1)).unwrap();
        assert!((e.success - 0.48).abs() < 1e-12, "0.6 + 0.2 * (0 - 0.6)");
        assert!((e.timeliness - 0.6).abs() < 1e-12, "a failure leaves timeliness alone");
        assert_eq!(e.samples, 2);
    }

    #[test]
    fn bad_outcomes_lower_good_ones_raise_and_values_stay_in_range() {
        let mut r = Reputation::new(50);
        let before = r.value(id(1));
        assert!(r.record(id(1), Judgement::MissedDeadline) < before);
        let e = r.get(id(1)).unwrap();
        assert_eq!((e.success, e.timeliness), (0.25, 0.25));
        assert!(r.record(id(2), Judgement::Died) < NEUTRAL_REPUTATION);
        assert!(r.record(id(3), Judgement::Completed { timeliness: 1.0 }) > NEUTRAL_REPUTATION);
        for _ in 0..1000 {
            r.record(id(4), Judgement::Completed { timeliness: f64::NAN });
            r.record(id(5), Judgement::Completed { timeliness: 7.0 });
        }
        for n in 1..=5 {
            let e = r.get(id(n)).unwrap();
            assert!((0.0..=1.0).contains(&e.success) && (0.0..=1.0).contains(&e.timeliness), "{e:?}");
        }
        assert!(r.get(id(4)).unwrap().timeliness < 1e-6, "NaN counts as 0");
    }

    #[test]
    fn alpha_is_clamped_and_100_pct_keeps_only_the_last_sample() {
        assert_eq!(Reputation::new(0).alpha(), 0.01);
        assert_eq!(Reputation::new(1000).alpha(), 1.0);
        let mut r = Reputation::new(100);
        r.record(id(1), Judgement::Failed);
        assert_eq!(r.get(id(1)).unwrap().success, 0.0);
        r.record(id(1), Judgement::Completed { timeliness: 0.5 });
        let e = r.get(id(1)).unwrap();
        assert_eq!((e.success, e.timeliness), (1.0, 0.5));
        assert_eq!(Reputation::default().alpha(), 0.2, "the config's default, 20 %");
    }

    #[test]
    fn timeliness_is_one_on_time_and_falls_with_lateness() {
        let ms = Duration::from_millis;
        assert_eq!(timeliness(ms(10), ms(5)), 1.0);
        assert_eq!(timeliness(ms(10), ms(11)), 1.0, "within the slack");
        let half = timeliness(ms(9), ms(20));
        assert!((half - 0.5).abs() < 1e-9, "{half}");
        assert!(timeliness(ms(9), ms(200)) < half);
        assert_eq!(timeliness(Duration::ZERO, Duration::ZERO), 1.0);
    }
}
