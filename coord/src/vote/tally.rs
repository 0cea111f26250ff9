//! The count of one ballot: votes recorded as they come, and the decision under a rule.
//!
//! Pure bookkeeping, no engine: the box records each counted vote here and asks for the
//! decision when the ballot closes. Invariants: `weights[o]` is the weight of the votes whose
//! first preference is `o`, `votes[o]` their number, and `participation.weight_cast` the sum of
//! `weights`; rankings are kept only under instant runoff (each with its voter's weight).

use super::{Choice, NoDecision, Outcome, Participation, Quorum, Rule};

/// The rule, without its parameters that the box resolved at open (the weights).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Majority,
    Super(u8),
    Unanimity,
    Weighted,
    Runoff,
}

impl Kind {
    pub(crate) fn of(rule: &Rule) -> Self {
        match rule {
            Rule::Majority => Kind::Majority,
            Rule::Supermajority { percent } => Kind::Super(*percent),
            Rule::Unanimity => Kind::Unanimity,
            Rule::Weighted { .. } => Kind::Weighted,
            Rule::InstantRunoff => Kind::Runoff,
        }
    }
}

/// The decision: the outcome, the weights it was taken on, and the rounds it took.
pub(crate) struct Decision {
    pub(crate) outcome: Outcome,
    pub(crate) weights: Vec<u64>,
    pub(crate) rounds: u32,
}

/// One ballot's count; see the module docs.
pub(crate) struct Tally {
    pub(crate) votes: Vec<u32>,
    pub(crate) weights: Vec<u64>,
    pub(crate) rankings: Vec<(Box<[u16]>, u64)>,
    pub(crate) participation: Participation,
    kind: Kind,
}

impl Tally {
    pub(crate) fn new(kind: Kind, options: usize) -> Self {
        Self {
            votes: vec![0; options],
            weights: vec![0; options],
            rankings: Vec::new(),
            participation: Participation::default(),
            kind,
        }
    }

    /// Records the vote of an eligible voter of `weight` that had not voted yet.
    pub(crate) fn record(&mut self, choice: Option<Choice>, weight: u64) {
        let p = &mut self.participation;
        p.participants += 1;
        let Some(choice) = choice else {
            p.abstained += 1;
            return;
        };
        let first = match choice.first() {
            Some(f) if choice.is_valid(self.votes.len()) => f as usize,
            _ => {
                p.spoiled += 1;
                return;
            }
        };
        self.votes[first] += 1;
        self.weights[first] += weight;
        p.weight_cast += weight;
        if self.kind == Kind::Runoff {
            let ranking = match choice {
                Choice::One(o) => Box::from([o].as_slice()),
                Choice::Ranked(r) => r,
            };
            self.rankings.push((ranking, weight));
        }
    }

    /// The decision under `quorum` and the tally's rule.
    pub(crate) fn decide(&self, quorum: Quorum) -> Decision {
        let p = &self.participation;
        let plain = |outcome| Decision { outcome, weights: self.weights.clone(), rounds: 1 };
        if p.eligible == 0 {
            return plain(Outcome::NoDecision(NoDecision::NoElectorate));
        }
        let needed = quorum.needed(p.eligible);
        if p.participants < needed {
            return plain(Outcome::NoDecision(NoDecision::NoQuorum { participants: p.participants, needed }));
        }
        if p.weight_cast == 0 {
            return plain(Outcome::NoDecision(NoDecision::NoVotes));
        }
        if self.kind == Kind::Runoff {
            return runoff(&self.rankings, self.weights.len());
        }
        let (best, top) = top_of(&self.weights, u64::MAX);
        let cast = p.weight_cast;
        let outcome = if self.kind == Kind::Unanimity {
            if top == cast && p.abstained == 0 && p.spoiled == 0 {
                Outcome::Winner(best)
            } else {
                Outcome::NoDecision(NoDecision::NotUnanimous)
            }
        } else if let Some(tie) = tie_at(&self.weights, top, u64::MAX) {
            Outcome::NoDecision(NoDecision::Tie(tie))
        } else {
            let wins = match self.kind {
                Kind::Super(percent) => top as u128 * 100 >= percent as u128 * cast as u128,
                _ => top as u128 * 2 > cast as u128,
            };
            if wins {
                Outcome::Winner(best)
            } else {
                let share_permille = (top as u128 * 1000 / cast as u128) as u32;
                Outcome::NoDecision(NoDecision::BelowThreshold { best, share_permille })
            }
        };
        plain(outcome)
    }
}

/// The first option with the top weight among those in `remaining` (a bit set), and that weight.
fn top_of(weights: &[u64], remaining: u64) -> (u16, u64) {
    let mut best = (0u16, 0u64);
    let mut found = false;
    for (o, &w) in weights.iter().enumerate() {
        if remaining & (1 << o) != 0 && (!found || w > best.1) {
            best = (o as u16, w);
            found = true;
        }
    }
    best
}

/// The options of `remaining` whose weight is `top`, when there are several.
fn tie_at(weights: &[u64], top: u64, remaining: u64) -> Option<Vec<u16>> {
    let tied: Vec<u16> =
        (0..weights.len()).filter(|&o| remaining & (1 << o) != 0 && weights[o] == top).map(|o| o as u16).collect();
    (tied.len() > 1).then_some(tied)
}

/// Instant runoff over `rankings` (see `Rule::InstantRunoff`). Options fit a `u64` bit set
/// (`MAX_OPTIONS` is 64); each round eliminates at least one option, so it ends within
/// `options` rounds.
fn runoff(rankings: &[(Box<[u16]>, u64)], options: usize) -> Decision {
    debug_assert!(options <= 64);
    let mut remaining: u64 = if options == 64 { u64::MAX } else { (1u64 << options) - 1 };
    let mut weights = vec![0u64; options];
    let mut rounds = 0;
    loop {
        rounds += 1;
        weights.iter_mut().for_each(|w| *w = 0);
        let mut active = 0u64;
        for (ranking, weight) in rankings {
            if let Some(&o) = ranking.iter().find(|&&o| remaining & (1 << o) != 0) {
                weights[o as usize] += weight;
                active += weight;
            }
        }
        let done = |outcome| Decision { outcome, weights: weights.clone(), rounds };
        if active == 0 {
            return done(Outcome::NoDecision(NoDecision::NoVotes));
        }
        let (best, top) = top_of(&weights, remaining);
        if top as u128 * 2 > active as u128 {
            return done(Outcome::Winner(best));
        }
        let low = (0..options).filter(|&o| remaining & (1 << o) != 0).map(|o| weights[o]).min().unwrap_or(0);
        let lowest: u64 =
            (0..options).filter(|&o| remaining & (1 << o) != 0 && weights[o] == low).fold(0, |s, o| s | (1 << o));
        if lowest == remaining {
            let tied = (0..options).filter(|&o| remaining & (1 << o) != 0).map(|o| o as u16).collect();
            return done(Outcome::NoDecision(NoDecision::Tie(tied)));
        }
        remaining &= !lowest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(kind: Kind, options: usize, eligible: u32, votes: &[(Option<Choice>, u64)]) -> Tally {
        let mut t = Tally::new(kind, options);
        t.participation.eligible = eligible;
        for (c, w) in votes {
            t.record(c.clone(), *w);
        }
        t
    }

    fn one(o: u16) -> (Option<Choice>, u64) {
        (Some(Choice::One(o)), 1)
    }

    fn ranked(r: &[u16]) -> (Option<Choice>, u64) {
        (Some(Choice::Ranked(r.into())), 1)
    }

    #[test]
    fn majority_needs_more_than_half_and_a_tie_decides_nothing() {
        let t = tally(Kind::Majority, 2, 3, &[one(0), one(0), one(1)]);
        assert_eq!(t.decide(Quorum::Voters(0)).outcome, Outcome::Winner(0));
        let t = tally(Kind::Majority, 2, 4, &[one(0), one(1), one(0), one(1)]);
        assert_eq!(t.decide(Quorum::Voters(0)).outcome, Outcome::NoDecision(NoDecision::Tie(vec![0, 1])));
        let t = tally(Kind::Majority, 3, 5, &[one(0), one(0), one(1), one(2), one(2)]);
        assert_eq!(t.decide(Quorum::Voters(0)).outcome, Outcome::NoDecision(NoDecision::Tie(vec![0, 2])));
        let t = tally(Kind::Majority, 3, 5, &[one(0), one(0), one(1), one(2), (None, 1)]);
        assert_eq!(
            t.decide(Quorum::Voters(0)).outcome,
            Outcome::NoDecision(NoDecision::BelowThreshold { best: 0, share_permille: 500 })
        );
    }

    #[test]
    fn quorum_empty_electorate_and_no_votes() {
        let t = tally(Kind::Majority, 2, 10, &[one(0), one(0)]);
        assert_eq!(
            t.decide(Quorum::Percent(30)).outcome,
            Outcome::NoDecision(NoDecision::NoQuorum { participants: 2, needed: 3 })
        );
        assert_eq!(t.decide(Quorum::Voters(2)).outcome, Outcome::Winner(0));
        let t = tally(Kind::Majority, 2, 0, &[]);
        assert_eq!(t.decide(Quorum::Voters(0)).outcome, Outcome::NoDecision(NoDecision::NoElectorate));
        let t = tally(Kind::Majority, 2, 2, &[(None, 1), (Some(Choice::One(7)), 1)]);
        assert_eq!(t.participation.spoiled, 1);
        assert_eq!(t.decide(Quorum::All).outcome, Outcome::NoDecision(NoDecision::NoVotes));
    }

    #[test]
    fn supermajority_unanimity_and_weights() {
        let t = tally(Kind::Super(67), 2, 3, &[one(0), one(0), one(1)]);
        assert!(matches!(t.decide(Quorum::Voters(0)).outcome, Outcome::NoDecision(NoDecision::BelowThreshold { .. })));
        let t = tally(Kind::Super(66), 2, 3, &[one(0), one(0), one(1)]);
        assert_eq!(t.decide(Quorum::Voters(0)).outcome, Outcome::Winner(0));
        let t = tally(Kind::Unanimity, 2, 3, &[one(1), one(1), one(1)]);
        assert_eq!(t.decide(Quorum::All).outcome, Outcome::Winner(1));
        let t = tally(Kind::Unanimity, 2, 3, &[one(1), one(1), (None, 1)]);
        assert_eq!(t.decide(Quorum::Voters(0)).outcome, Outcome::NoDecision(NoDecision::NotUnanimous));
        let t = tally(Kind::Weighted, 2, 3, &[(Some(Choice::One(1)), 5), one(0), one(0)]);
        assert_eq!(t.decide(Quorum::Voters(0)).outcome, Outcome::Winner(1));
        assert_eq!(t.votes, vec![2, 1]);
        assert_eq!(t.weights, vec![2, 5]);
    }

    #[test]
    fn instant_runoff_transfers_eliminated_preferences() {
        // First preferences 0:2, 1:2, 2:1; 2 goes, its voter prefers 1 next: 1 wins 3 to 2.
        let t = tally(Kind::Runoff, 3, 5, &[ranked(&[0]), ranked(&[0, 1]), ranked(&[1]), one(1), ranked(&[2, 1])]);
        let d = t.decide(Quorum::Voters(0));
        assert_eq!(d.outcome, Outcome::Winner(1));
        assert_eq!((d.rounds, d.weights.clone()), (2, vec![2, 3, 0]));
        // Exhausted rankings leave the active weight: 0:2, 1:2 after 2 is eliminated.
        let t = tally(Kind::Runoff, 3, 5, &[ranked(&[0]), ranked(&[0]), ranked(&[1]), ranked(&[1]), ranked(&[2])]);
        assert_eq!(t.decide(Quorum::Voters(0)).outcome, Outcome::NoDecision(NoDecision::Tie(vec![0, 1])));
        // A bad ranking is spoiled.
        let t = tally(Kind::Runoff, 3, 2, &[ranked(&[0, 0]), ranked(&[])]);
        assert_eq!(t.participation.spoiled, 2);
    }
}
