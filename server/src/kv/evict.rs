//! Approximate LRU eviction (`allkeys-lru`), as Redis does it: every entry keeps a coarse
//! last-access clock (the engine clock's milliseconds, truncated to 32 bits, set by every read
//! or write of the key); over budget, the store samples [`SAMPLES`] random keys, evicts the one
//! idle longest, and repeats until it is under budget.
//!
//! Random keys come from the sampler: a vector holding every key once (kept only under
//! `allkeys-lru`, by `memory`'s insertion and removal points), indexed by a xorshift generator
//! private to the store.
//!
//! Invariants: eviction removes keys only through `remove_entry` (so the accounting stays
//! exact), keeps `expiring` right, and counts every key it removes in `evicted`; it stops when
//! the store is under budget or empty.

use super::exec::KeyCmd;
use super::KvStore;

/// Keys sampled for each eviction (Redis's `maxmemory-samples` default).
pub const SAMPLES: usize = 5;

/// The coarse access clock of time `now_ms`.
pub(super) fn clock(now_ms: u64) -> u32 {
    now_ms as u32
}

impl KvStore {
    /// The next draw of the store's xorshift generator.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Evicts sampled least-recently-used keys until the store is under budget or empty.
    pub(super) fn evict_to_budget(&mut self, now_ms: u64) {
        let now = clock(now_ms);
        while self.over_budget() {
            let Some(victim) = self.pick_victim(now) else { return };
            if let Some(entry) = self.remove_entry(&victim) {
                if entry.expires_at_ms.is_some() {
                    self.expiring -= 1;
                }
                self.evicted += 1;
                // An evicted key stays gone after a restart (logged as a removal).
                self.note(&victim, now_ms);
            }
        }
    }

    /// Of [`SAMPLES`] random keys, the one idle longest (`None`: no keys, or no sampler).
    fn pick_victim(&mut self, now: u32) -> Option<bytes::Bytes> {
        let len = self.sampler.as_ref().map_or(0, Vec::len);
        if len == 0 {
            return None;
        }
        let mut best: Option<(u32, usize)> = None;
        for _ in 0..SAMPLES {
            let slot = (self.next_random() % len as u64) as usize;
            let key = self.sampler.as_ref()?.get(slot)?;
            let idle = self.map.get(key).map_or(u32::MAX, |e| now.wrapping_sub(e.access));
            if best.map_or(true, |(b, _)| idle > b) {
                best = Some((idle, slot));
            }
        }
        let (_, slot) = best?;
        self.sampler.as_ref()?.get(slot).map(super::compact::Compact::to_bytes)
    }
}

impl KeyCmd {
    /// Whether the command may add memory, so is refused over budget under `noeviction`
    /// (Redis's `denyoom` commands among these).
    pub fn may_add_memory(&self) -> bool {
        matches!(self, KeyCmd::HSet(..) | KeyCmd::HIncrBy(..) | KeyCmd::Append(..) | KeyCmd::IncrByFloat(..))
    }
}
