//! The store's log hook: an optional [`Journal`] attached to the [`KvStore`], to which every
//! successful mutation appends the key's resulting state (or its removal), whoever calls the
//! store; and the store's side of replay and compaction.
//!
//! Deadlines are milliseconds on the engine clock inside the store and milliseconds since the
//! UNIX epoch in the log (the engine clock starts at zero with each process): a record's
//! deadline is converted with the wall clock read when it is written, and back when it is
//! replayed, so a key keeps its remaining time across a restart.
//!
//! Invariants: with no journal attached nothing is encoded (one branch per mutation); expiry
//! removes keys without a record (the logged deadline is absolute, so replay drops them too).

use super::{Compact, Entry, KvStore, Stored};
use crate::persist::Journal;
use bytes::Bytes;

/// Milliseconds since the UNIX epoch now.
pub fn wall_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Engine-clock deadline `at` as wall-clock ms, `now_ms` being the engine clock now.
fn to_wall(at: u64, now_ms: u64) -> u64 {
    wall_now_ms().saturating_add(at.saturating_sub(now_ms)).max(1)
}

impl KvStore {
    /// Attaches `journal`: from now on every mutation is logged to it.
    pub fn attach_journal(&mut self, journal: Journal) {
        self.journal = Some(Box::new(journal));
    }

    /// The attached journal, to read.
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_deref()
    }

    /// The attached journal.
    pub fn journal_mut(&mut self) -> Option<&mut Journal> {
        self.journal.as_deref_mut()
    }

    /// The last logged record's LSN (0 without a journal).
    pub fn lsn(&self) -> u64 {
        self.journal.as_ref().map_or(0, |j| j.lsn())
    }

    /// Logs `key`'s state now: its value and deadline, or its removal.
    pub(super) fn note(&mut self, key: &[u8], now_ms: u64) {
        let Some(j) = self.journal.as_deref_mut() else { return };
        match self.map.get(key) {
            Some(e) => {
                let at = e.expires_at_ms.map(|at| to_wall(at, now_ms));
                match &e.value {
                    Stored::Str(v) => j.put_str(key, v, at),
                    Stored::Hash(h) => j.put_hash(key, h, at),
                }
            }
            None => j.del(key),
        }
    }

    /// Logs that `key` now holds string `value` with engine deadline `at`.
    pub(super) fn note_str(&mut self, key: &[u8], value: &[u8], at: Option<u64>, now_ms: u64) {
        if let Some(j) = self.journal.as_deref_mut() {
            j.put_str(key, value, at.map(|at| to_wall(at, now_ms)));
        }
    }

    /// Logs that `key` now holds `value` with engine deadline `at` (no lookup: the caller has
    /// the value at hand).
    pub(super) fn note_value(&mut self, key: &[u8], value: &Stored, at: Option<u64>, now_ms: u64) {
        let Some(j) = self.journal.as_deref_mut() else { return };
        let at = at.map(|at| to_wall(at, now_ms));
        match value {
            Stored::Str(v) => j.put_str(key, v, at),
            Stored::Hash(h) => j.put_hash(key, h, at),
        }
    }

    /// Logs that every key is gone.
    pub(super) fn note_flush(&mut self) {
        if let Some(j) = self.journal.as_deref_mut() {
            j.flush_all();
        }
    }

    /// Replay: `key` holds `value` until wall-clock ms `expires_at` (a past deadline removes
    /// it). Not logged; `now_ms` is the engine clock and `wall_ms` the wall clock now.
    pub fn load(&mut self, key: Bytes, value: Stored, expires_at: Option<u64>, (now_ms, wall_ms): (u64, u64)) {
        let at = match expires_at {
            Some(at) if at <= wall_ms => return self.unlogged_remove(&key),
            Some(at) => Some(now_ms.saturating_add(at - wall_ms)),
            None => None,
        };
        if let Some(at) = at {
            // A key of its own, not a slice of the log file the replay read.
            self.deadlines.push(std::cmp::Reverse((at, super::memory::own(key.clone()))));
            self.expiring += 1;
        }
        // With no expiring key yet (a log of plain SETs) the old entry cannot have a deadline.
        if self.expiring > usize::from(at.is_some())
            && self.map.get(&key[..]).is_some_and(|old| old.expires_at_ms.is_some())
        {
            self.expiring -= 1;
        }
        self.insert_entry(key, Entry::new(value, at, now_ms));
    }

    /// Replay: room for `keys` more keys.
    pub fn reserve(&mut self, keys: usize) {
        self.map.reserve(keys);
    }

    /// Replay: gives back the room of a table less than a quarter full.
    pub fn shrink_if_sparse(&mut self) {
        if self.map.capacity() > 4 * self.map.len() + 1024 {
            self.map.shrink_to_fit();
        }
    }

    /// Replay: removes `key` without logging it.
    pub fn unlogged_remove(&mut self, key: &[u8]) {
        if let Some(e) = self.remove_entry(key) {
            if e.expires_at_ms.is_some() {
                self.expiring -= 1;
            }
        }
    }

    /// Replay: removes every key without logging it.
    pub fn unlogged_clear(&mut self) {
        self.map.clear();
        self.clear_accounting();
        self.deadlines.clear();
        self.expiring = 0;
    }

    /// Compaction: every key now (live or not yet removed), for the dump to visit, into `keys`
    /// (emptied first; the caller keeps it from one compaction to the next, so its memory is
    /// not allocated and faulted in again each time). The keys are clones of the table's: a
    /// short key is copied inline and a long one shares its bytes, so listing allocates
    /// nothing per key (one `Bytes` per key here was 88% of the page faults of a shard
    /// compacting under `everysec`).
    pub fn rewrite_keys(&self, keys: &mut Vec<Compact>) {
        keys.clear();
        keys.extend(self.map.keys().cloned());
    }

    /// Compaction: writes the current state of each of `keys` that is live into the new log.
    pub fn dump_keys(&mut self, keys: &[Compact], now_ms: u64) {
        let Some(j) = self.journal.as_deref_mut() else { return };
        let wall = wall_now_ms();
        for key in keys {
            let key = key.as_slice();
            let Some(e) = self.map.get(key) else { continue };
            match e.expires_at_ms {
                Some(at) if at <= now_ms => {}
                Some(at) => j.dump(key, &e.value, Some(wall.saturating_add(at - now_ms))),
                None => j.dump(key, &e.value, None),
            }
        }
    }

    /// Every live key with its value and remaining milliseconds, sorted by key (tests and
    /// checks compare stores with it).
    pub fn snapshot(&self, now_ms: u64) -> Vec<(Bytes, Stored, Option<u64>)> {
        let mut all: Vec<_> = self
            .map
            .iter()
            .filter(|(_, e)| e.expires_at_ms.map_or(true, |at| at > now_ms))
            .map(|(k, e)| (k.to_bytes(), e.value.clone(), e.expires_at_ms.map(|at| at - now_ms)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}
