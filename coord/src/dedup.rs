//! Idempotency keys: a bounded window of recently seen keys ([`DedupWindow`]) that any agent
//! can keep as a field, and a wrapper agent ([`Deduped`]) that drops duplicate deliveries of a
//! message type with a key ([`Keyed`]).
//!
//! The window remembers the last `capacity` distinct keys it accepted, in insertion order: a
//! set for the O(1) membership test and a ring (`VecDeque`) for the order; when a fresh key
//! would exceed the capacity, the oldest key is evicted first. Both are sized at construction
//! and never hold more than `capacity` keys, so memory is bounded (the set's table may rehash
//! in place as it churns, within twice its initial size).
//!
//! Semantics worth knowing:
//!
//! * a duplicate does not refresh its key (the order is first-seen, not least-recently-used),
//!   so a key seen repeatedly is still evicted `capacity` fresh keys after it was first seen;
//! * a key evicted long ago is fresh again: the window recognises duplicates only among the
//!   last `capacity` fresh keys. Size it to cover the retry horizon of the senders (how many
//!   distinct keys can arrive between a message and its last possible redelivery);
//! * every duplicate is counted ([`DedupStats::duplicates`]), and so is every eviction.
//!
//! Invariants: `set` and `ring` hold the same keys, each once; `ring.len() <= capacity`.
//! Everything is owned by one agent, on its shard.

use nexus_engine::agent::{Agent, Ctx, Down, Exit, Undelivered};
use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

/// Keys a window holds unless told otherwise.
pub const DEFAULT_DEDUP_CAPACITY: usize = 4096;

/// The answer of [`DedupWindow::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not in the window: now remembered (the oldest key may have been evicted for it).
    Fresh,
    /// In the window: a duplicate, counted.
    Duplicate,
}

/// A window's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DedupStats {
    /// Keys accepted as fresh.
    pub fresh: u64,
    /// Keys refused as duplicates.
    pub duplicates: u64,
    /// Keys evicted to make room.
    pub evicted: u64,
}

/// Why a window could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DedupError {
    /// A capacity of 0 would remember nothing.
    #[error("a dedup window needs a capacity of at least 1; hint: use DEFAULT_DEDUP_CAPACITY")]
    ZeroCapacity,
}

/// The last `capacity` distinct keys; see the module docs.
#[derive(Debug)]
pub struct DedupWindow<K> {
    set: HashSet<K>,
    ring: VecDeque<K>,
    capacity: usize,
    stats: DedupStats,
}

impl<K: Hash + Eq + Clone> DedupWindow<K> {
    /// A window of `capacity` keys, allocated now.
    ///
    /// # Errors
    /// A capacity of 0.
    pub fn new(capacity: usize) -> Result<Self, DedupError> {
        if capacity == 0 {
            return Err(DedupError::ZeroCapacity);
        }
        Ok(Self {
            set: HashSet::with_capacity(capacity),
            ring: VecDeque::with_capacity(capacity),
            capacity,
            stats: DedupStats::default(),
        })
    }

    /// Whether `key` was seen among the last `capacity` fresh keys; remembers it if not.
    /// O(1) (amortised: a hash probe, and at most one eviction).
    pub fn check(&mut self, key: K) -> Seen {
        if self.set.contains(&key) {
            self.stats.duplicates += 1;
            return Seen::Duplicate;
        }
        if self.ring.len() == self.capacity {
            if let Some(oldest) = self.ring.pop_front() {
                self.set.remove(&oldest);
                self.stats.evicted += 1;
            }
        }
        self.set.insert(key.clone());
        self.ring.push_back(key);
        self.stats.fresh += 1;
        debug_assert!(self.ring.len() <= self.capacity && self.set.len() == self.ring.len());
        Seen::Fresh
    }

    /// Whether `key` is in the window (without remembering it or counting).
    pub fn contains(&self, key: &K) -> bool {
        self.set.contains(key)
    }

    /// Keys remembered now (at most the capacity).
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The most keys it remembers.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Its counters.
    pub fn stats(&self) -> DedupStats {
        self.stats
    }

    /// Forgets every key (the counters stay).
    pub fn clear(&mut self) {
        self.set.clear();
        self.ring.clear();
    }
}

/// A message with an idempotency key: deliveries with the same key are one message.
pub trait Keyed {
    /// The key's type.
    type Key: Hash + Eq + Clone + 'static;

    /// The message's key, or `None` for a message that is never deduplicated (a query, or
    /// the answer to an ask the agent made, which comes back as one of its own messages).
    fn key(&self) -> Option<Self::Key>;
}

/// An agent whose messages [`Deduped`] filters. It gets each duplicate it dropped through
/// [`on_duplicate`](DedupAgent::on_duplicate) (nothing is dropped unseen).
pub trait DedupAgent: Agent
where
    Self::Msg: Keyed,
{
    /// Called with a duplicate delivery instead of `handle`, and the window's counters after
    /// it was counted. The default drops it.
    fn on_duplicate(&mut self, _msg: Self::Msg, _stats: DedupStats, _ctx: &mut Ctx<'_>) {}
}

/// Wraps agent `A`: a message whose key is in the window goes to `A::on_duplicate` instead of
/// `A::handle`. Every other hook passes through. The answers to `A`'s own asks arrive as
/// `A::Msg` too (the wrapper has `A`'s message type), so they pass the window like any other
/// message: give them no key.
pub struct Deduped<A: DedupAgent>
where
    A::Msg: Keyed,
{
    inner: A,
    window: DedupWindow<<A::Msg as Keyed>::Key>,
}

impl<A: DedupAgent> Deduped<A>
where
    A::Msg: Keyed,
{
    /// `inner`, behind a window of `capacity` keys.
    ///
    /// # Errors
    /// A capacity of 0.
    pub fn new(inner: A, capacity: usize) -> Result<Self, DedupError> {
        Ok(Self { inner, window: DedupWindow::new(capacity)? })
    }

    /// The wrapped agent.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// The window's counters.
    pub fn stats(&self) -> DedupStats {
        self.window.stats()
    }
}

impl<A: DedupAgent> Agent for Deduped<A>
where
    A::Msg: Keyed,
{
    type Msg = A::Msg;

    fn handle(&mut self, msg: A::Msg, ctx: &mut Ctx<'_>) {
        let seen = match msg.key() {
            Some(key) => self.window.check(key),
            None => Seen::Fresh,
        };
        match seen {
            Seen::Fresh => self.inner.handle(msg, ctx),
            Seen::Duplicate => self.inner.on_duplicate(msg, self.window.stats(), ctx),
        }
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.inner.on_start(ctx);
    }

    fn on_undelivered(&mut self, undelivered: Undelivered, ctx: &mut Ctx<'_>) {
        self.inner.on_undelivered(undelivered, ctx);
    }

    fn on_down(&mut self, down: Down, ctx: &mut Ctx<'_>) {
        self.inner.on_down(down, ctx);
    }

    fn on_exit(&mut self, exit: Exit, ctx: &mut Ctx<'_>) {
        self.inner.on_exit(exit, ctx);
    }

    fn on_stop(&mut self, ctx: &mut Ctx<'_>) {
        self.inner.on_stop(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::engine;
    use nexus_engine::agent::SpawnPlacement;
    use nexus_engine::ask::ReplyTo;
    use std::time::Duration;

    #[test]
    fn duplicates_are_dropped_and_counted() {
        let mut w = DedupWindow::new(4).unwrap();
        assert_eq!(w.check(1u64), Seen::Fresh);
        assert_eq!(w.check(2), Seen::Fresh);
        assert_eq!(w.check(1), Seen::Duplicate);
        assert_eq!(w.check(1), Seen::Duplicate);
        assert_eq!(w.stats(), DedupStats { fresh: 2, duplicates: 2, evicted: 0 });
        assert!(w.contains(&2) && !w.contains(&3));
        assert_eq!(DedupWindow::<u64>::new(0).unwrap_err(), DedupError::ZeroCapacity);
        assert!(DedupError::ZeroCapacity.to_string().contains("hint:"));
    }

    #[test]
    fn memory_stays_at_capacity_and_an_evicted_key_is_fresh_again() {
        let mut w = DedupWindow::new(100).unwrap();
        for k in 0..100_000u64 {
            assert_eq!(w.check(k), Seen::Fresh);
            assert!(w.len() <= 100);
        }
        assert_eq!(w.len(), 100);
        assert_eq!(w.stats().evicted, 100_000 - 100);
        // The table never grows past its start-up size class (it rehashes in place).
        assert!(w.set.capacity() <= 4 * 100 && w.ring.capacity() <= 4 * 100, "{}", w.set.capacity());
        // Key 0 was evicted long ago: fresh again (documented). The last 100 are duplicates.
        assert_eq!(w.check(0), Seen::Fresh);
        assert_eq!(w.check(99_999), Seen::Duplicate);
        // A duplicate does not refresh its key: first-seen order.
        let mut w = DedupWindow::new(2).unwrap();
        w.check("a");
        w.check("b");
        assert_eq!(w.check("a"), Seen::Duplicate);
        w.check("c"); // evicts "a", the oldest first-seen
        assert_eq!(w.check("a"), Seen::Fresh);
    }

    proptest::proptest! {
        #[test]
        fn matches_a_reference_model(cap in 1usize..8, keys in proptest::collection::vec(0u8..16, 0..200)) {
            let mut w = DedupWindow::new(cap).unwrap();
            let mut model: VecDeque<u8> = VecDeque::new();
            let (mut dups, mut evicted) = (0u64, 0u64);
            for k in keys {
                let want = if model.contains(&k) {
                    dups += 1;
                    Seen::Duplicate
                } else {
                    if model.len() == cap {
                        model.pop_front();
                        evicted += 1;
                    }
                    model.push_back(k);
                    Seen::Fresh
                };
                proptest::prop_assert_eq!(w.check(k), want);
                proptest::prop_assert_eq!(w.len(), model.len());
            }
            proptest::prop_assert_eq!(w.stats().duplicates, dups);
            proptest::prop_assert_eq!(w.stats().evicted, evicted);
            for k in 0..16u8 {
                proptest::prop_assert_eq!(w.contains(&k), model.contains(&k));
            }
        }
    }

    enum SinkMsg {
        Job(u64),
        Report(ReplyTo<(Vec<u64>, Vec<u64>, u64)>),
    }

    impl Keyed for SinkMsg {
        type Key = u64;
        fn key(&self) -> Option<u64> {
            match self {
                SinkMsg::Job(k) => Some(*k),
                SinkMsg::Report(_) => None,
            }
        }
    }

    #[derive(Default)]
    struct Sink {
        handled: Vec<u64>,
        duplicates: Vec<u64>,
        counted: u64,
    }

    impl Agent for Sink {
        type Msg = SinkMsg;
        fn handle(&mut self, msg: SinkMsg, ctx: &mut Ctx<'_>) {
            match msg {
                SinkMsg::Job(k) => self.handled.push(k),
                SinkMsg::Report(r) => ctx.reply(r, (self.handled.clone(), self.duplicates.clone(), self.counted)),
            }
        }
    }

    impl DedupAgent for Sink {
        fn on_duplicate(&mut self, msg: SinkMsg, stats: DedupStats, _ctx: &mut Ctx<'_>) {
            if let SinkMsg::Job(k) = msg {
                self.duplicates.push(k);
            }
            self.counted = stats.duplicates;
        }
    }

    #[test]
    fn the_wrapper_agent_drops_duplicate_deliveries() {
        let engine = engine();
        let h = engine.handle();
        let sink = h.spawn(SpawnPlacement::Shard(1), || Deduped::new(Sink::default(), 16).unwrap()).unwrap();
        for k in [1u64, 2, 1, 3, 2, 4] {
            h.send(sink, SinkMsg::Job(k)).unwrap();
        }
        let (handled, duplicates, counted) = h.ask(sink, Duration::from_secs(5), SinkMsg::Report).unwrap();
        assert_eq!(handled, vec![1, 2, 3, 4]);
        assert_eq!(duplicates, vec![1, 2], "each duplicate is handed over, not dropped unseen");
        assert_eq!(counted, 2);
        engine.shutdown().unwrap();
    }
}
