//! The memory a [`KvStore`] accounts for its keys and values, the limit it keeps to, and the
//! store's single points of insertion and removal that keep the count exact.
//!
//! The estimate of one key is: key bytes + value bytes + [`ENTRY_OVERHEAD`] (the map slot: the
//! key's `Bytes` header, the `Entry`, one control byte); a hash's value bytes are the sum,
//! over its fields, of field bytes + value bytes + [`FIELD_OVERHEAD`] (two `Bytes` headers,
//! the stored hash, the index slot, one control byte). Spare capacity of the tables and the
//! deadline heap are not counted: the figure is a consistent estimate of the data, not the
//! process's resident memory.
//!
//! Invariants: `used` always equals [`KvStore::recount`] (the estimate recomputed from
//! scratch): every insertion and removal of an entry goes through `KvStore::insert_entry` and
//! `KvStore::remove_entry`, and every change inside an entry (a string rewritten in place,
//! a hash field added, changed or removed) reports its size change through
//! `KvStore::resized`. With the `allkeys-lru` policy, the sampler holds every key exactly once
//! and each entry's `slot` is its position there (see `evict`).
//!
//! The count holds only because the bytes counted are the bytes kept: a key, string or hash field
//! the store keeps is in a buffer of its own (`own` copies a long one), since the caller's
//! `Bytes` may be a slice of a connection's read buffer or of a whole log file read at start,
//! which a kept slice would hold in memory entire.
//!
//! The tests (`memory_tests`) replay random operations and compare `used` with `recount` after
//! each.

use super::{Entry, KvStore, Stored};
use crate::resp::SLICE_MIN;
use bytes::Bytes;
use nexus_engine::config::EvictionPolicy;

/// `bytes` in a buffer of its own, for the store to keep: never a slice that would hold a larger
/// buffer (a read buffer, a log file) in memory. Only the parser and replay make slices, and
/// both copy what is shorter than [`SLICE_MIN`] (copying a short string costs less than sharing
/// a buffer), so a shorter `Bytes` is kept as it is and a longer one is copied.
pub(super) fn own(bytes: Bytes) -> Bytes {
    if bytes.len() >= SLICE_MIN {
        Bytes::copy_from_slice(&bytes)
    } else {
        bytes
    }
}

/// Bytes counted for each key besides its key and value bytes.
pub const ENTRY_OVERHEAD: u64 = (std::mem::size_of::<(super::Compact, Entry)>() + 1) as u64;

/// Bytes counted for each hash field besides its field and value bytes.
pub const FIELD_OVERHEAD: u64 = (std::mem::size_of::<(Bytes, Bytes)>() + 2 * std::mem::size_of::<usize>() + 1) as u64;

/// The text of the error a write gets when the store is over its budget under `noeviction`
/// (Redis 7's, byte for byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("OOM command not allowed when used memory > 'maxmemory'.")]
pub struct OutOfMemory;

/// The memory limit of one shard's store: its share of `maxmemory` and the policy. Built with
/// [`MemoryLimit::new`] from the server's `maxmemory`, `maxmemory_policy` and shard count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryLimit {
    /// The server's `maxmemory` (0: no limit).
    pub maxmemory: u64,
    /// This store's share: `maxmemory / shards` (at least 1 when there is a limit).
    pub budget: u64,
    /// What a write does over the budget.
    pub policy: EvictionPolicy,
}

impl MemoryLimit {
    /// The limit of one of `shards` stores under the server's `maxmemory` and `policy`.
    pub fn new(maxmemory: u64, policy: EvictionPolicy, shards: usize) -> Self {
        let budget = if maxmemory == 0 { 0 } else { (maxmemory / shards.max(1) as u64).max(1) };
        Self { maxmemory, budget, policy }
    }
}

/// Bytes counted for one field of a hash.
pub fn field_bytes(field: &[u8], value: &[u8]) -> u64 {
    (field.len() + value.len()) as u64 + FIELD_OVERHEAD
}

/// Bytes counted for one key holding `value`.
pub fn entry_bytes(key: &[u8], value: &Stored) -> u64 {
    let value_bytes = match value {
        Stored::Str(v) => v.len() as u64,
        Stored::Hash(h) => h.iter().map(|(f, v)| field_bytes(f, v)).sum(),
    };
    key.len() as u64 + value_bytes + ENTRY_OVERHEAD
}

/// Puts string `value` in `key`'s `entry` and gives back the entry's accounted bytes before and
/// after, for [`KvStore::resized`] once the entry is no longer borrowed.
pub(super) fn replace_str(key: &[u8], entry: &mut Entry, value: super::Compact) -> (u64, u64) {
    let before = entry_bytes(key, &entry.value);
    entry.value = Stored::Str(value);
    (before, entry_bytes(key, &entry.value))
}

impl KvStore {
    /// The store with memory limit `limit` (the default: none).
    pub fn with_memory_limit(mut self, limit: MemoryLimit) -> Self {
        self.limit = limit;
        self.sampler = None;
        if limit.budget > 0 && limit.policy == EvictionPolicy::AllKeysLru {
            // A store replayed from its log already holds keys: each gets its sampler slot.
            let mut sampler = Vec::with_capacity(self.map.len());
            for (key, entry) in self.map.iter_mut() {
                entry.slot = sampler.len() as u32;
                sampler.push(key.clone());
            }
            self.sampler = Some(sampler);
        }
        self
    }

    /// The memory limit.
    pub fn memory_limit(&self) -> MemoryLimit {
        self.limit
    }

    /// The accounted bytes of every key and value (see the module documentation).
    pub fn used_memory(&self) -> u64 {
        self.used
    }

    /// Keys evicted to stay under the budget, since the start.
    pub fn evicted_keys(&self) -> u64 {
        self.evicted
    }

    /// The accounted bytes recomputed from scratch; equals [`Self::used_memory`] always.
    pub fn recount(&self) -> u64 {
        self.map.iter().map(|(k, e)| entry_bytes(k, &e.value)).sum()
    }

    /// Stores `entry` under `key`, replacing (and uncounting) any entry there. The key and the
    /// value are kept as buffers of their own ([`own`]).
    pub(super) fn insert_entry(&mut self, key: Bytes, mut entry: Entry) {
        entry.value = match entry.value {
            Stored::Hash(h) if h.keys().chain(h.values()).any(|b| b.len() >= SLICE_MIN) => {
                Stored::Hash(Box::new(h.into_iter().map(|(f, v)| (own(f), own(v))).collect()))
            }
            hash => hash,
        };
        let added = entry_bytes(&key, &entry.value);
        match self.map.entry(super::compact::Compact::from(key)) {
            hashbrown::hash_map::Entry::Occupied(mut old) => {
                self.used -= entry_bytes(old.key(), &old.get().value);
                entry.slot = old.get().slot;
                old.insert(entry);
            }
            hashbrown::hash_map::Entry::Vacant(slot) => {
                if let Some(sampler) = self.sampler.as_mut() {
                    entry.slot = sampler.len() as u32;
                    sampler.push(slot.key().clone());
                }
                slot.insert(entry);
            }
        }
        self.used += added;
    }

    /// Removes `key`'s entry (expired or not) and uncounts it. The caller keeps `expiring`.
    pub(super) fn remove_entry(&mut self, key: &[u8]) -> Option<Entry> {
        let entry = self.map.remove(key)?;
        self.used -= entry_bytes(key, &entry.value);
        if let Some(sampler) = self.sampler.as_mut() {
            let slot = entry.slot as usize;
            sampler.swap_remove(slot);
            if let Some(moved) = sampler.get(slot) {
                if let Some(e) = self.map.get_mut(moved) {
                    e.slot = slot as u32;
                }
            }
        }
        Some(entry)
    }

    /// An entry changed size in place from `before` to `after` bytes.
    pub(super) fn resized(&mut self, before: u64, after: u64) {
        self.used = self.used - before + after;
    }

    /// Forgets every entry's bytes (FLUSHALL).
    pub(super) fn clear_accounting(&mut self) {
        self.used = 0;
        if let Some(sampler) = self.sampler.as_mut() {
            sampler.clear();
        }
    }

    /// Whether the store is over its budget (never, without a limit).
    pub fn over_budget(&self) -> bool {
        self.limit.budget > 0 && self.used > self.limit.budget
    }

    /// Before a write that may add memory: under `noeviction`, refuses it when over budget;
    /// under `allkeys-lru`, evicts until under budget (see `evict`).
    pub fn make_room(&mut self, now_ms: u64) -> Result<(), OutOfMemory> {
        if !self.over_budget() {
            return Ok(());
        }
        match self.limit.policy {
            EvictionPolicy::NoEviction => Err(OutOfMemory),
            EvictionPolicy::AllKeysLru => {
                self.evict_to_budget(now_ms);
                Ok(())
            }
        }
    }
}

/// Redis's `bytesToHuman`: `123B`, `1.50K`, `2.00M`, `1.25G`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    UNITS
        .iter()
        .find(|(size, _)| n >= *size)
        .map_or_else(|| format!("{n}B"), |(size, unit)| format!("{:.2}{unit}", n as f64 / *size as f64))
}

/// INFO's `# Memory` section from the servers's used bytes, `maxmemory` and policy.
pub fn info_memory_section(used: u64, maxmemory: u64, policy: EvictionPolicy) -> String {
    format!(
        "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nmaxmemory:{maxmemory}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\n\r\n",
        human_bytes(used),
        human_bytes(maxmemory),
        policy.name()
    )
}

/// The policy from its INFO figure (0: noeviction, 1: allkeys-lru).
pub fn policy_from_figure(figure: i64) -> EvictionPolicy {
    if figure == 1 {
        EvictionPolicy::AllKeysLru
    } else {
        EvictionPolicy::NoEviction
    }
}

/// The policy's INFO figure (see [`policy_from_figure`]).
pub fn policy_figure(policy: EvictionPolicy) -> i64 {
    match policy {
        EvictionPolicy::NoEviction => 0,
        EvictionPolicy::AllKeysLru => 1,
    }
}
