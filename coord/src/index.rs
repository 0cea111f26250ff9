//! The capability index of one shard: which of its agents can do what, how loaded they are,
//! and how reputable; and the ranking that discovery uses.
//!
//! Agents declare themselves into the index of their own shard (synchronously, through
//! `Ctx::shard_local`), so each shard indexes only its own agents and no index is shared
//! between threads. Entries live in slots; each capability has a posting list of the slots
//! that declared it, so a query looks only at agents that have an asked capability.
//!
//! Posting lists are kept in (reputation descending, agent id ascending) order. Load is the
//! only part of the score that is not known in advance, and it can only lower a score, so the
//! best score an entry could have is its score at load 0, and that bound never rises along a
//! list. An `All` query walks the shortest list and stops as soon as the bound of the next
//! entry cannot beat the worst candidate kept (the threshold algorithm, on one list): with
//! mostly idle agents it reads a few entries more than it returns, however many hold the
//! capability. An `Any` query reads every list it asks for.
//!
//! Ranking: `score = w_match · shared/asked + w_load · 1/(1 + load) + w_rep · reputation`,
//! with the weights normalised to sum to 1. Ties are broken by the agent id (lower first), so
//! a result is deterministic for a given index state. A candidate's load is its mailbox depth
//! (read at query time) or the last value it reported.
//!
//! Invariants: a live slot's index is in the posting list of each of its capabilities, exactly
//! once, and every posting list is sorted by (reputation descending, id ascending); `by_id`
//! maps exactly the live slots; an entry whose agent is gone (its mailbox no longer exists) is
//! dropped at the next query that meets it.

use crate::caps::CapSet;
use nexus_engine::agent::AgentId;
use nexus_engine::config::CoordConfig;
use std::collections::HashMap;

/// Where a declared agent's load figure comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoadSource {
    /// The depth of its mailbox, read when a query meets it.
    Mailbox,
    /// The value it last reported (`report_load`), starting at `initial`.
    Reported {
        /// The load before the first report.
        initial: f64,
    },
}

/// How a query matches capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MatchMode {
    /// A candidate must have every asked capability.
    #[default]
    All,
    /// A candidate needs at least one; having more ranks it higher.
    Any,
}

/// What discovery is asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The capabilities asked for.
    pub caps: CapSet,
    /// All of them, or any.
    pub mode: MatchMode,
    /// At most this many candidates, best first.
    pub limit: usize,
    /// Agents not to return (an auction re-run without the agent that failed).
    pub exclude: Vec<AgentId>,
}

impl Query {
    /// Agents with every capability of `caps`, at most `limit` of them.
    pub fn all(caps: CapSet, limit: usize) -> Self {
        Self { caps, mode: MatchMode::All, limit, exclude: Vec::new() }
    }

    /// Agents with at least one capability of `caps`, at most `limit` of them.
    pub fn any(caps: CapSet, limit: usize) -> Self {
        Self { caps, mode: MatchMode::Any, limit, exclude: Vec::new() }
    }

    /// The same query without `ids`.
    #[must_use]
    pub fn excluding(mut self, ids: &[AgentId]) -> Self {
        self.exclude.extend_from_slice(ids);
        self
    }
}

/// One agent a query found, with the figures it was ranked by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// The agent.
    pub id: AgentId,
    /// Its capabilities.
    pub caps: CapSet,
    /// Its load when the query met it.
    pub load: f64,
    /// Its reputation (0 to 1) in the index.
    pub reputation: f64,
    /// Its score (0 to 1).
    pub score: f64,
}

impl Candidate {
    /// Whether `self` ranks before `other`: higher score, then lower id.
    pub fn ranks_before(&self, other: &Candidate) -> bool {
        match self.score.partial_cmp(&other.score) {
            Some(std::cmp::Ordering::Greater) => true,
            Some(std::cmp::Ordering::Less) => false,
            _ => self.id.to_bits() < other.id.to_bits(),
        }
    }
}

/// The ranking weights, normalised to sum to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights {
    /// Of the share of asked capabilities.
    pub matching: f64,
    /// Of `1 / (1 + load)`.
    pub load: f64,
    /// Of reputation.
    pub reputation: f64,
}

impl Weights {
    /// The config's weights, normalised (all zero gives equal weights).
    pub fn from_config(c: &CoordConfig) -> Self {
        let (m, l, r) = (c.weight_match as f64, c.weight_load as f64, c.weight_reputation as f64);
        let sum = m + l + r;
        if sum == 0.0 {
            return Self { matching: 1.0 / 3.0, load: 1.0 / 3.0, reputation: 1.0 / 3.0 };
        }
        Self { matching: m / sum, load: l / sum, reputation: r / sum }
    }

    /// The score of an agent having `shared` of `asked` capabilities at `load` and `reputation`.
    pub fn score(&self, shared: u32, asked: u32, load: f64, reputation: f64) -> f64 {
        let matching = if asked == 0 { 1.0 } else { shared as f64 / asked as f64 };
        self.matching * matching + self.load / (1.0 + load.max(0.0)) + self.reputation * reputation.clamp(0.0, 1.0)
    }
}

impl Default for Weights {
    fn default() -> Self {
        Self::from_config(&CoordConfig::default())
    }
}

/// The reputation of an agent no manager has judged yet.
pub const NEUTRAL_REPUTATION: f64 = 0.5;

struct Entry {
    id: AgentId,
    caps: CapSet,
    source: LoadSource,
    reported: f64,
    reputation: f64,
}

/// One shard's capability index; see the module docs.
pub struct CapIndex {
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_id: HashMap<u64, u32>,
    postings: Vec<Vec<u32>>,
    /// Per slot: the query stamp that last saw it (for `Any` without duplicates).
    seen: Vec<u32>,
    stamp: u32,
    dead: Vec<AgentId>,
}

impl Default for CapIndex {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            postings: (0..crate::caps::MAX_CAPS).map(|_| Vec::new()).collect(),
            seen: Vec::new(),
            stamp: 0,
            dead: Vec::new(),
        }
    }
}

impl CapIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Agents declared.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no agent is declared.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Declares `id` with `caps` (replacing an earlier declaration, keeping its reputation).
    pub fn declare(&mut self, id: AgentId, caps: CapSet, source: LoadSource) {
        let reputation = self.withdraw(id).unwrap_or(NEUTRAL_REPUTATION);
        let reported = match source {
            LoadSource::Reported { initial } => initial,
            LoadSource::Mailbox => 0.0,
        };
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.seen.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        self.slots[slot as usize] = Some(Entry { id, caps, source, reported, reputation });
        self.link(slot);
        self.by_id.insert(id.to_bits(), slot);
    }

    /// The ordering key of a live slot: reputation descending, then id ascending.
    fn key(&self, slot: u32) -> (f64, u64) {
        self.slots[slot as usize].as_ref().map_or((f64::NEG_INFINITY, u64::MAX), |e| (e.reputation, e.id.to_bits()))
    }

    /// Whether slot `a` sorts before slot `b` in a posting list.
    fn before(&self, a: u32, b: u32) -> bool {
        let (ka, kb) = (self.key(a), self.key(b));
        ka.0 > kb.0 || (ka.0 == kb.0 && ka.1 < kb.1)
    }

    /// Inserts a live slot into the posting list of each of its capabilities, in order.
    fn link(&mut self, slot: u32) {
        let Some(caps) = self.slots[slot as usize].as_ref().map(|e| e.caps) else { return };
        for cap in caps.iter() {
            let list = std::mem::take(&mut self.postings[cap.index()]);
            let pos = list.partition_point(|&other| self.before(other, slot));
            let mut list = list;
            list.insert(pos, slot);
            self.postings[cap.index()] = list;
        }
    }

    /// Removes a slot from the posting list of each of its capabilities.
    fn unlink(&mut self, slot: u32) {
        let Some(caps) = self.slots[slot as usize].as_ref().map(|e| e.caps) else { return };
        for cap in caps.iter() {
            let list = &mut self.postings[cap.index()];
            if let Some(pos) = list.iter().position(|&s| s == slot) {
                list.remove(pos);
            }
        }
    }

    /// Removes `id`; returns its reputation if it was declared.
    pub fn withdraw(&mut self, id: AgentId) -> Option<f64> {
        let slot = *self.by_id.get(&id.to_bits())?;
        self.unlink(slot);
        self.by_id.remove(&id.to_bits());
        let entry = self.slots[slot as usize].take()?;
        self.free.push(slot);
        Some(entry.reputation)
    }

    /// Records a load figure reported by `id` (ignored for an agent not declared).
    pub fn report_load(&mut self, id: AgentId, load: f64) {
        if let Some(e) = self.entry_mut(id) {
            e.reported = load;
        }
    }

    /// Sets the reputation discovery ranks `id` by (clamped to 0..=1; NaN is ignored).
    pub fn set_reputation(&mut self, id: AgentId, reputation: f64) {
        let Some(&slot) = self.by_id.get(&id.to_bits()) else { return };
        if reputation.is_nan() {
            return;
        }
        self.unlink(slot);
        if let Some(e) = self.slots[slot as usize].as_mut() {
            e.reputation = reputation.clamp(0.0, 1.0);
        }
        self.link(slot);
    }

    /// The reputation the index holds for `id`.
    pub fn reputation(&self, id: AgentId) -> Option<f64> {
        let slot = *self.by_id.get(&id.to_bits())?;
        self.slots[slot as usize].as_ref().map(|e| e.reputation)
    }

    fn entry_mut(&mut self, id: AgentId) -> Option<&mut Entry> {
        let slot = *self.by_id.get(&id.to_bits())?;
        self.slots[slot as usize].as_mut()
    }

    /// Ranks the agents that match `query` into `out` (cleared first; best first; at most
    /// `query.limit`). `mailbox` gives a local agent's mailbox depth, or `None` when it is gone:
    /// gone agents are dropped from the index.
    pub fn query(
        &mut self,
        query: &Query,
        weights: &Weights,
        mailbox: impl Fn(AgentId) -> Option<usize>,
        out: &mut Vec<Candidate>,
    ) {
        out.clear();
        if query.limit == 0 || query.caps.is_empty() {
            return;
        }
        let asked = query.caps.len();
        match query.mode {
            MatchMode::All => {
                let Some(list) = query.caps.iter().map(|c| c.index()).min_by_key(|&c| self.postings[c].len()) else {
                    return;
                };
                for &slot in &self.postings[list] {
                    let Some(e) = self.slots[slot as usize].as_ref() else { continue };
                    if !e.caps.contains_all(query.caps) || query.exclude.contains(&e.id) {
                        continue;
                    }
                    // The best this entry could score (at load 0) never rises along the list:
                    // once it cannot beat the worst kept candidate, no later entry can.
                    if out.len() == query.limit {
                        let bound = Candidate {
                            id: e.id,
                            caps: e.caps,
                            load: 0.0,
                            reputation: e.reputation,
                            score: weights.score(asked, asked, 0.0, e.reputation),
                        };
                        if out.last().is_some_and(|last| !bound.ranks_before(last)) {
                            break;
                        }
                    }
                    consider(e, query, asked, weights, &mailbox, out, &mut self.dead);
                }
            }
            MatchMode::Any => {
                self.stamp = self.stamp.wrapping_add(1);
                if self.stamp == 0 {
                    self.seen.iter_mut().for_each(|s| *s = 0);
                    self.stamp = 1;
                }
                for cap in query.caps.iter() {
                    for &slot in &self.postings[cap.index()] {
                        if self.seen[slot as usize] == self.stamp {
                            continue;
                        }
                        self.seen[slot as usize] = self.stamp;
                        let Some(e) = self.slots[slot as usize].as_ref() else { continue };
                        if query.exclude.contains(&e.id) {
                            continue;
                        }
                        consider(e, query, asked, weights, &mailbox, out, &mut self.dead);
                    }
                }
            }
        }
        for id in std::mem::take(&mut self.dead) {
            self.withdraw(id);
        }
    }
}

/// Scores one matching entry (reading its load) and keeps it if it ranks high enough; an
/// entry whose agent is gone goes to `dead`.
fn consider(
    e: &Entry,
    query: &Query,
    asked: u32,
    weights: &Weights,
    mailbox: &impl Fn(AgentId) -> Option<usize>,
    out: &mut Vec<Candidate>,
    dead: &mut Vec<AgentId>,
) {
    let Some(depth) = mailbox(e.id) else {
        dead.push(e.id);
        return;
    };
    let load = match e.source {
        LoadSource::Mailbox => depth as f64,
        LoadSource::Reported { .. } => e.reported,
    };
    let score = weights.score(e.caps.shared(query.caps), asked, load, e.reputation);
    insert_ranked(out, Candidate { id: e.id, caps: e.caps, load, reputation: e.reputation, score }, query.limit);
}

/// Inserts `c` into `out` (kept best first, at most `limit` long) if it ranks high enough.
pub fn insert_ranked(out: &mut Vec<Candidate>, c: Candidate, limit: usize) {
    if out.len() == limit {
        match out.last() {
            Some(last) if c.ranks_before(last) => {
                out.pop();
            }
            _ => return,
        }
    }
    let pos = out.iter().position(|o| c.ranks_before(o)).unwrap_or(out.len());
    out.insert(pos, c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::CapRegistry;

    fn id(slot: u32) -> AgentId {
        AgentId::new(0, slot, 1)
    }

    fn setup() -> (CapRegistry, CapIndex) {
        let r = CapRegistry::new();
        r.set(&["a", "b", "c"]).unwrap();
        (r, CapIndex::new())
    }

    fn alive(_: AgentId) -> Option<usize> {
        Some(0)
    }

    #[test]
    fn all_mode_needs_every_capability_any_mode_ranks_by_share() {
        let (r, mut ix) = setup();
        ix.declare(id(1), r.set(&["a"]).unwrap(), LoadSource::Mailbox);
        ix.declare(id(2), r.set(&["a", "b"]).unwrap(), LoadSource::Mailbox);
        ix.declare(id(3), r.set(&["b", "c"]).unwrap(), LoadSource::Mailbox);
        let w = Weights::default();
        let mut out = Vec::new();
        ix.query(&Query::all(r.set(&["a", "b"]).unwrap(), 10), &w, alive, &mut out);
        assert_eq!(out.iter().map(|c| c.id).collect::<Vec<_>>(), vec![id(2)]);
        ix.query(&Query::any(r.set(&["a", "b"]).unwrap(), 10), &w, alive, &mut out);
        assert_eq!(out.len(), 3, "each agent once, though 2 is in both lists");
        assert_eq!(out[0].id, id(2), "the one with both ranks first");
        assert_eq!((out[1].id, out[2].id), (id(1), id(3)), "a tie goes to the lower id");
    }

    #[test]
    fn load_and_reputation_move_the_ranking() {
        let (r, mut ix) = setup();
        let a = r.set(&["a"]).unwrap();
        ix.declare(id(1), a, LoadSource::Reported { initial: 0.0 });
        ix.declare(id(2), a, LoadSource::Reported { initial: 0.0 });
        let w = Weights::default();
        let mut out = Vec::new();
        ix.query(&Query::all(a, 2), &w, alive, &mut out);
        assert_eq!(out[0].id, id(1), "equal: lower id first");
        ix.report_load(id(1), 9.0);
        ix.query(&Query::all(a, 2), &w, alive, &mut out);
        assert_eq!(out[0].id, id(2), "the lighter one first");
        ix.report_load(id(1), 0.0);
        ix.set_reputation(id(2), 0.1);
        ix.query(&Query::all(a, 2), &w, alive, &mut out);
        assert_eq!(out[0].id, id(1), "the more reputable one first");
        assert_eq!(ix.reputation(id(2)), Some(0.1));
        // Mailbox depth as load.
        ix.declare(id(3), a, LoadSource::Mailbox);
        ix.query(&Query::all(a, 3), &w, |x| Some(if x == id(3) { 100 } else { 0 }), &mut out);
        assert_eq!(out[2].id, id(3));
        assert_eq!(out[2].load, 100.0);
    }

    #[test]
    fn limit_exclude_and_dead_agents() {
        let (r, mut ix) = setup();
        let a = r.set(&["a"]).unwrap();
        for s in 1..=5 {
            ix.declare(id(s), a, LoadSource::Mailbox);
        }
        let w = Weights::default();
        let mut out = Vec::new();
        ix.query(&Query::all(a, 2).excluding(&[id(1)]), &w, alive, &mut out);
        assert_eq!(out.iter().map(|c| c.id).collect::<Vec<_>>(), vec![id(2), id(3)]);
        // Agent 2 is gone: the query drops it from the index.
        ix.query(&Query::all(a, 10), &w, |x| (x != id(2)).then_some(0), &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(ix.len(), 4);
        assert!(ix.withdraw(id(2)).is_none());
        ix.query(&Query::all(a, 0), &w, alive, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn redeclaring_replaces_the_caps_and_keeps_the_reputation() {
        let (r, mut ix) = setup();
        ix.declare(id(1), r.set(&["a"]).unwrap(), LoadSource::Mailbox);
        ix.set_reputation(id(1), 0.9);
        ix.declare(id(1), r.set(&["b"]).unwrap(), LoadSource::Mailbox);
        let mut out = Vec::new();
        ix.query(&Query::all(r.set(&["a"]).unwrap(), 5), &Weights::default(), alive, &mut out);
        assert!(out.is_empty(), "no longer under a");
        ix.query(&Query::all(r.set(&["b"]).unwrap(), 5), &Weights::default(), alive, &mut out);
        assert_eq!((out.len(), out[0].reputation), (1, 0.9));
    }

    proptest::proptest! {
        /// The ranking equals a full sort of every match by (score desc, id asc), cut to limit.
        #[test]
        fn ranking_matches_a_full_sort(loads in proptest::collection::vec(0u32..20, 1..60), limit in 1usize..10) {
            let (r, mut ix) = setup();
            let a = r.set(&["a"]).unwrap();
            for (i, l) in loads.iter().enumerate() {
                ix.declare(id(i as u32 + 1), a, LoadSource::Reported { initial: *l as f64 });
            }
            let w = Weights::default();
            let mut out = Vec::new();
            ix.query(&Query::all(a, limit), &w, alive, &mut out);
            let mut all: Vec<(f64, u64)> = loads.iter().enumerate()
                .map(|(i, l)| (w.score(1, 1, *l as f64, NEUTRAL_REPUTATION), id(i as u32 + 1).to_bits())).collect();
            all.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap().then(x.1.cmp(&y.1)));
            let want: Vec<u64> = all.iter().take(limit).map(|x| x.1).collect();
            let got: Vec<u64> = out.iter().map(|c| c.id.to_bits()).collect();
            proptest::prop_assert_eq!(got, want);
        }

        /// With reputations and mailbox loads varying, the early stop of `All` still returns
        /// exactly the top of a full sort.
        #[test]
        fn the_threshold_stop_never_loses_a_better_candidate(
            agents in proptest::collection::vec((0u32..5, 0usize..4), 1..80),
            limit in 1usize..8,
        ) {
            let (r, mut ix) = setup();
            let a = r.set(&["a"]).unwrap();
            for (i, (rep, _)) in agents.iter().enumerate() {
                ix.declare(id(i as u32 + 1), a, LoadSource::Mailbox);
                ix.set_reputation(id(i as u32 + 1), *rep as f64 / 4.0);
            }
            let depth = |x: AgentId| Some(agents[x.slot() as usize - 1].1);
            let w = Weights::default();
            let mut out = Vec::new();
            ix.query(&Query::all(a, limit), &w, depth, &mut out);
            let mut all: Vec<(f64, u64)> = agents.iter().enumerate()
                .map(|(i, (rep, load))| (w.score(1, 1, *load as f64, *rep as f64 / 4.0), id(i as u32 + 1).to_bits())).collect();
            all.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap().then(x.1.cmp(&y.1)));
            let want: Vec<u64> = all.iter().take(limit).map(|x| x.1).collect();
            let got: Vec<u64> = out.iter().map(|c| c.id.to_bits()).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }
}
