//! One shard's key-value partition: values, expiry, and the operations the commands need.
//!
//! Keys are byte strings; a value is a string (immutable `Bytes`, so `GET` hands out a
//! reference-counted view instead of a copy) or a hash ([`Hash`](type@Hash), fields kept in insertion
//! order as Redis's small hashes are). A key with a deadline is also in a min-heap of
//! deadlines: every operation first removes the keys whose deadline passed (active expiry,
//! bounded work per call), and every read checks the deadline of the key it reads (lazy
//! expiry), so an expired key is never seen. A heap entry whose key was deleted or given
//! another deadline is stale and skipped. Times are milliseconds on the engine clock.
//!
//! Invariants: `expiring` counts the entries whose deadline is `Some`; a hash is never empty
//! (removing its last field removes the key); an operation of one type on a key of the other
//! fails with [`WrongType`] and changes nothing.
//!
//! The string commands beyond GET/SET live in `strings`, the hash commands in `hash`, the
//! pattern matching of KEYS and SCAN in `glob`, and the per-key commands' parsing-free
//! execution in `exec`. The memory accounting and the limit are `memory`'s, LRU eviction
//! `evict`'s, the log hook (an optional journal every mutation appends to) `journal`'s.

mod compact;
mod evict;
pub mod exec;
pub mod glob;
mod hash;
mod journal;
pub use compact::Compact;
mod longdouble;
pub mod memory;
#[cfg(test)]
mod memory_tests;
mod strings;

pub use hash::HashIncrError;
pub use journal::wall_now_ms;
pub use memory::{MemoryLimit, OutOfMemory};
pub use strings::{FloatError, GetExpiry};

use bytes::Bytes;
use hashbrown::HashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Most expired keys removed by one operation's active-expiry step.
const EXPIRE_PER_CALL: usize = 64;

/// A hash's fields, in insertion order.
pub type Hash = indexmap::IndexMap<Bytes, Bytes>;

/// A stored value.
#[derive(Clone, Debug, PartialEq)]
pub enum Stored {
    /// A string (inline when short, see [`Compact`]).
    Str(Compact),
    /// A hash, boxed: the map's own fields would double a string's table slot (see
    /// `memory_tests::a_table_slot_stays_small`).
    Hash(Box<Hash>),
}

impl Stored {
    /// The name `TYPE` answers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Stored::Str(_) => "string",
            Stored::Hash(_) => "hash",
        }
    }
}

/// A stored value and its deadline.
#[derive(Clone, Debug)]
struct Entry {
    value: Stored,
    expires_at_ms: Option<u64>,
    /// Last read or write, on `evict`'s coarse clock.
    access: u32,
    /// Position in the eviction sampler (used only under `allkeys-lru`).
    slot: u32,
}

impl Entry {
    fn new(value: Stored, expires_at_ms: Option<u64>, now_ms: u64) -> Self {
        Self { value, expires_at_ms, access: evict::clock(now_ms), slot: 0 }
    }
}

/// A key taken out of one store to be put into another (RENAME across shards): its value and
/// the milliseconds it had left.
#[derive(Clone, Debug, PartialEq)]
pub struct Taken {
    /// The value.
    pub value: Stored,
    /// Milliseconds left (`None`: no deadline).
    pub ttl_ms: Option<u64>,
}

/// An operation met a key holding the other type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
pub struct WrongType;

/// `SET`'s condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetCondition {
    /// Always set.
    Always,
    /// `NX`: only when the key does not exist.
    IfMissing,
    /// `XX`: only when it exists.
    IfExists,
}

/// What `SET` does with the key's deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetExpiry {
    /// No option: the key loses any deadline.
    Clear,
    /// `EX`/`PX` (and `EXAT`/`PXAT`, made relative by the caller): expire this many
    /// milliseconds from now (0: at once).
    After(u64),
    /// `KEEPTTL`: keep the current deadline.
    Keep,
}

/// `EXPIRE`'s condition (Redis 7's NX, XX, GT, LT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExpireCondition {
    /// Always.
    #[default]
    Always,
    /// `NX`: only when the key has no deadline.
    NoDeadline,
    /// `XX`: only when it has one.
    HasDeadline,
    /// `GT`: only when the new deadline is later (no deadline counts as infinite).
    Later,
    /// `LT`: only when the new deadline is sooner (no deadline counts as infinite).
    Sooner,
}

/// Why an increment failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IncrError {
    /// The value is not a 64-bit integer.
    #[error("ERR value is not an integer or out of range")]
    NotAnInteger,
    /// The result would overflow.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// The key holds a hash.
    #[error("{}", WrongType)]
    WrongType,
}

impl From<WrongType> for IncrError {
    fn from(_: WrongType) -> Self {
        IncrError::WrongType
    }
}

/// A key's time to live, as `TTL`/`PTTL` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// No such key (-2).
    Missing,
    /// The key never expires (-1).
    Forever,
    /// Milliseconds left.
    Millis(u64),
}

impl Ttl {
    /// The integer `TTL` (`millis` false: seconds, rounded as Redis does) or `PTTL` answers.
    pub fn reply(self, millis: bool) -> i64 {
        match self {
            Ttl::Missing => -2,
            Ttl::Forever => -1,
            Ttl::Millis(ms) if millis => ms as i64,
            Ttl::Millis(ms) => (ms.saturating_add(500) / 1000) as i64,
        }
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct KvStore {
    map: HashMap<compact::Compact, Entry>,
    deadlines: BinaryHeap<Reverse<(u64, Bytes)>>,
    expiring: usize,
    /// Accounted bytes (see `memory`).
    used: u64,
    limit: MemoryLimit,
    evicted: u64,
    /// Every key once, for eviction's random samples (`allkeys-lru` only).
    sampler: Option<Vec<compact::Compact>>,
    rng: u64,
    journal: Option<Box<crate::persist::Journal>>,
}

impl Default for KvStore {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            deadlines: BinaryHeap::new(),
            expiring: 0,
            used: 0,
            limit: MemoryLimit::default(),
            evicted: 0,
            sampler: None,
            rng: 0x9E37_79B9_7F4A_7C15,
            journal: None,
        }
    }
}

impl KvStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes up to `EXPIRE_PER_CALL` keys whose deadline is at or before `now_ms`.
    pub fn expire_due(&mut self, now_ms: u64) {
        for _ in 0..EXPIRE_PER_CALL {
            let Some(Reverse((at, _))) = self.deadlines.peek() else { return };
            if *at > now_ms {
                return;
            }
            let Some(Reverse((at, key))) = self.deadlines.pop() else { return };
            if self.map.get(&key[..]).is_some_and(|e| e.expires_at_ms == Some(at)) {
                self.remove_entry(&key);
                self.expiring -= 1;
            }
        }
    }

    /// The live entry for `key`, removing it first if it expired.
    fn live(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let expired = self.map.get(key).is_some_and(|e| e.expires_at_ms.is_some_and(|at| at <= now_ms));
        if expired {
            self.remove_entry(key);
            self.expiring -= 1;
            return None;
        }
        let entry = self.map.get_mut(key)?;
        entry.access = evict::clock(now_ms);
        Some(entry)
    }

    /// Counts a key's deadline change and files its new deadline in the heap (under a key of
    /// its own, never a slice of a read buffer: see [`memory::own`]).
    fn set_deadline(&mut self, key: &Bytes, old: Option<u64>, new: Option<u64>) {
        match (old.is_some(), new.is_some()) {
            (false, true) => self.expiring += 1,
            (true, false) => self.expiring -= 1,
            _ => {}
        }
        if let Some(at) = new {
            if old != new {
                self.deadlines.push(Reverse((at, memory::own(key.clone()))));
            }
        }
    }

    /// Stores `value` under `key` with deadline `at`, replacing any entry.
    fn put(&mut self, key: Bytes, value: Stored, at: Option<u64>, now_ms: u64) {
        let old = self.live(&key, now_ms).and_then(|e| e.expires_at_ms);
        self.set_deadline(&key, old, at);
        self.note_value(&key, &value, at, now_ms);
        self.insert_entry(key, Entry::new(value, at, now_ms));
    }

    /// `GET`, as the store holds the value: a copy of a short one, a shared reference to a
    /// long one (no allocation either way).
    pub fn get_stored(&mut self, key: &[u8], now_ms: u64) -> Result<Option<Compact>, WrongType> {
        match self.live(key, now_ms).map(|e| &e.value) {
            None => Ok(None),
            Some(Stored::Str(v)) => Ok(Some(v.clone())),
            Some(Stored::Hash(_)) => Err(WrongType),
        }
    }

    /// `GET`, as a `Bytes`.
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Result<Option<Bytes>, WrongType> {
        Ok(self.get_stored(key, now_ms)?.map(|v| v.to_bytes()))
    }

    /// `SET`: returns whether it stored the value and the previous value (for `SET ... GET`,
    /// `get`: which refuses a hash, storing nothing).
    pub fn set(
        &mut self,
        key: Bytes,
        value: Bytes,
        (condition, expiry): (SetCondition, SetExpiry),
        get: bool,
        now_ms: u64,
    ) -> Result<(bool, Option<Bytes>), WrongType> {
        // The old value is cloned only for `GET` (a clone is a reference count taken and
        // dropped again).
        let logging = self.journal.is_some();
        let live = self.live(&key, now_ms);
        let (previous, old_deadline, exists) = match &live {
            Some(Entry { value: Stored::Str(v), expires_at_ms, .. }) => {
                (get.then(|| v.to_bytes()), *expires_at_ms, true)
            }
            Some(Entry { value: Stored::Hash(_), .. }) if get => return Err(WrongType),
            Some(e) => (None, e.expires_at_ms, true),
            None => (None, None, false),
        };
        let allowed = match condition {
            SetCondition::Always => true,
            SetCondition::IfMissing => !exists,
            SetCondition::IfExists => exists,
        };
        if !allowed {
            return Ok((false, previous));
        }
        let deadline = match expiry {
            SetExpiry::Clear => None,
            SetExpiry::After(ms) => Some(now_ms.saturating_add(ms)),
            SetExpiry::Keep => old_deadline,
        };
        if let Some(entry) = live.filter(|_| deadline == old_deadline) {
            // The common overwrite: the value is replaced where it lies (its deadline, and so
            // the deadline heap, stay as they are), without a second hash and probe.
            let value = Compact::from(value);
            let logged = logging.then(|| value.clone());
            let (before, after) = memory::replace_str(&key, entry, value);
            self.resized(before, after);
            if let Some(logged) = logged {
                self.note_str(&key, &logged, deadline, now_ms);
            }
            return Ok((true, previous));
        }
        self.set_deadline(&key, old_deadline, deadline);
        self.note_str(&key, &value, deadline, now_ms);
        self.insert_entry(key, Entry::new(Stored::Str(value.into()), deadline, now_ms));
        Ok((true, previous))
    }

    /// `DEL` of one key: whether it existed.
    pub fn del(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.take(key, now_ms).is_some()
    }

    /// Removes `key`, handing back its value and the time it had left.
    pub fn take(&mut self, key: &[u8], now_ms: u64) -> Option<Taken> {
        self.live(key, now_ms)?;
        let e = self.remove_entry(key)?;
        if e.expires_at_ms.is_some() {
            self.expiring -= 1;
        }
        self.note(key, now_ms);
        Some(Taken { value: e.value, ttl_ms: e.expires_at_ms.map(|at| at.saturating_sub(now_ms)) })
    }

    /// Puts a taken key back (under any name), replacing what is there.
    pub fn restore(&mut self, key: Bytes, taken: Taken, now_ms: u64) {
        let at = taken.ttl_ms.map(|ms| now_ms.saturating_add(ms));
        self.put(key, taken.value, at, now_ms);
    }

    /// `EXISTS` of one key.
    pub fn exists(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.live(key, now_ms).is_some()
    }

    /// `TYPE`: the value's type name, `none` when missing.
    pub fn type_of(&mut self, key: &[u8], now_ms: u64) -> &'static str {
        self.live(key, now_ms).map_or("none", |e| e.value.type_name())
    }

    /// `INCRBY`: the new value. A missing key counts as 0; the deadline is kept.
    pub fn incr_by(&mut self, key: Bytes, by: i64, now_ms: u64) -> Result<i64, IncrError> {
        // One lookup: the live entry is read and rewritten in place (no clone of the old value).
        let Some(entry) = self.live(&key, now_ms) else {
            self.replace_string(key, decimal(by), now_ms);
            return Ok(by);
        };
        let Stored::Str(old) = &entry.value else {
            return Err(IncrError::WrongType);
        };
        let current = crate::kinds::parse_i64(old).ok_or(IncrError::NotAnInteger)?;
        let next = current.checked_add(by).ok_or(IncrError::Overflow)?;
        let value = decimal(next);
        let logged = value.clone();
        let at = entry.expires_at_ms;
        let (before, after) = memory::replace_str(&key, entry, value);
        self.resized(before, after);
        // Logged from here, not looked up again (`note` would hash the key a second time).
        self.note_str(&key, &logged, at, now_ms);
        Ok(next)
    }

    /// Stores string `value` under `key`, keeping a live key's deadline.
    fn replace_string(&mut self, key: Bytes, value: Compact, now_ms: u64) {
        // A copy for the log, taken only when there is one (a long value's is a reference count).
        let logged = self.journal.is_some().then(|| value.clone());
        let at = match self.live(&key, now_ms) {
            Some(e) => {
                let at = e.expires_at_ms;
                let (before, after) = memory::replace_str(&key, e, value);
                self.resized(before, after);
                at
            }
            None => {
                self.insert_entry(key.clone(), Entry::new(Stored::Str(value), None, now_ms));
                None
            }
        };
        if let Some(logged) = logged {
            self.note_str(&key, &logged, at, now_ms);
        }
    }

    /// `EXPIRE` and its kin: sets the deadline `ms` from now (0 or less: deletes the key) when
    /// `condition` allows; whether it did. A missing key is `false`.
    pub fn expire(&mut self, key: &[u8], ms: i64, condition: ExpireCondition, now_ms: u64) -> bool {
        let Some(entry) = self.live(key, now_ms) else { return false };
        let old = entry.expires_at_ms;
        let at = (now_ms as i64).saturating_add(ms);
        let allowed = match (condition, old) {
            (ExpireCondition::Always, _) => true,
            (ExpireCondition::NoDeadline, d) => d.is_none(),
            (ExpireCondition::HasDeadline, d) => d.is_some(),
            (ExpireCondition::Later, d) => d.is_some_and(|d| at > d as i64),
            (ExpireCondition::Sooner, d) => d.map_or(true, |d| at < d as i64),
        };
        if !allowed {
            return false;
        }
        if ms <= 0 {
            self.del(key, now_ms);
            return true;
        }
        let at = at as u64;
        entry.expires_at_ms = Some(at);
        let key = Bytes::copy_from_slice(key);
        self.set_deadline(&key, old, Some(at));
        self.note(&key, now_ms);
        true
    }

    /// `PERSIST`: whether the key lost a deadline.
    pub fn persist(&mut self, key: &[u8], now_ms: u64) -> bool {
        let Some(entry) = self.live(key, now_ms) else { return false };
        let Some(old) = entry.expires_at_ms.take() else { return false };
        self.set_deadline(&Bytes::new(), Some(old), None);
        self.note(key, now_ms);
        true
    }

    /// `TTL`/`PTTL`.
    pub fn ttl(&mut self, key: &[u8], now_ms: u64) -> Ttl {
        match self.live(key, now_ms) {
            None => Ttl::Missing,
            Some(Entry { expires_at_ms: None, .. }) => Ttl::Forever,
            Some(Entry { expires_at_ms: Some(at), .. }) => Ttl::Millis(at.saturating_sub(now_ms)),
        }
    }

    /// `KEYS pattern`: the live keys matching the glob `pattern`.
    pub fn keys(&self, pattern: &[u8], now_ms: u64) -> Vec<Bytes> {
        self.map
            .iter()
            .filter(|(k, e)| e.expires_at_ms.map_or(true, |at| at > now_ms) && glob::matches(pattern, k))
            .map(|(k, _)| k.to_bytes())
            .collect()
    }

    /// One step of `SCAN` over this store: about `count` live keys whose scan position
    /// ([`scan_position`]) is at least `from` (the lowest positions; keys sharing a position
    /// come in one step), and the position to go on from (`None`: done). So a key present for
    /// the whole scan is returned at least once however the store changes in between. A step
    /// reads every key of the store (O(keys), no ordered index is kept).
    pub fn scan(&self, from: u64, count: usize, now_ms: u64, keep: impl Fn(&[u8], &Stored) -> bool) -> ScanStep {
        let mut found: Vec<(u64, &compact::Compact, &Entry)> = self
            .map
            .iter()
            .map(|(k, e)| (scan_position(k), k, e))
            .filter(|(p, _, e)| *p >= from && e.expires_at_ms.map_or(true, |at| at > now_ms))
            .collect();
        let count = count.max(1);
        let last = if found.len() > count {
            found.select_nth_unstable_by_key(count - 1, |(p, _, _)| *p);
            found[count - 1].0
        } else {
            u64::MAX
        };
        let next = found.iter().any(|(p, _, _)| *p > last).then(|| last + 1);
        let keys =
            found.iter().filter(|(p, k, e)| *p <= last && keep(k, &e.value)).map(|(_, k, _)| k.to_bytes()).collect();
        ScanStep { keys, next }
    }

    /// Live keys (after removing the expired ones due now).
    pub fn len(&mut self, now_ms: u64) -> usize {
        while self.deadlines.peek().is_some_and(|Reverse((at, _))| *at <= now_ms) {
            self.expire_due(now_ms);
        }
        self.map.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&mut self, now_ms: u64) -> bool {
        self.len(now_ms) == 0
    }

    /// Keys with a deadline.
    pub fn expiring(&self) -> usize {
        self.expiring
    }

    /// `FLUSHALL`.
    pub fn clear(&mut self) {
        self.map.clear();
        self.deadlines.clear();
        self.expiring = 0;
        self.clear_accounting();
        self.note_flush();
    }
}

/// Bits of a SCAN position within one shard; the cursor keeps the shard above them.
pub const SCAN_POSITION_BITS: u32 = 48;

/// `n` in decimal, in a buffer of its own of exactly its length (INCR's hot path: no formatting
/// machinery, and no spare capacity).
pub(super) fn decimal(n: i64) -> Compact {
    let mut buf = [0; 20];
    let digits = crate::resp::u64_digits(n.unsigned_abs(), &mut buf);
    let mut out = [0; 21];
    let sign = usize::from(n < 0);
    out[0] = b'-';
    out[sign..sign + digits.len()].copy_from_slice(digits);
    // At most 20 bytes: inline, no allocation.
    Compact::copy_from_slice(&out[..sign + digits.len()])
}

/// A key's SCAN position: 48 bits of its keyed hash, stable for the life of the process.
pub fn scan_position(key: &[u8]) -> u64 {
    nexus_engine::registry::key_hash(key) & ((1 << SCAN_POSITION_BITS) - 1)
}

/// One step of [`KvStore::scan`].
#[derive(Debug, PartialEq, Eq)]
pub struct ScanStep {
    /// The keys found (and kept by the filter).
    pub keys: Vec<Bytes>,
    /// Where the next step starts (`None`: this store is done).
    pub next: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn set(kv: &mut KvStore, k: &str, v: &str, how: (SetCondition, SetExpiry), now: u64) -> bool {
        kv.set(b(k), b(v), how, false, now).unwrap().0
    }

    #[test]
    fn set_get_conditions_and_expiry() {
        let mut kv = KvStore::new();
        assert!(!set(&mut kv, "k", "v", (SetCondition::IfExists, SetExpiry::Clear), 0));
        assert!(set(&mut kv, "k", "v", (SetCondition::IfMissing, SetExpiry::After(100)), 0));
        assert!(!set(&mut kv, "k", "w", (SetCondition::IfMissing, SetExpiry::Clear), 10));
        assert_eq!(kv.get(b"k", 50), Ok(Some(b("v"))));
        assert_eq!(kv.ttl(b"k", 50), Ttl::Millis(50));
        assert_eq!(kv.get(b"k", 100), Ok(None), "expired at its deadline");
        assert_eq!(kv.len(100), 0);
        assert_eq!(kv.expiring(), 0);
    }

    #[test]
    fn ttl_rounds_as_redis_does() {
        assert_eq!(Ttl::Millis(1400).reply(false), 1);
        assert_eq!(Ttl::Millis(1500).reply(false), 2);
        assert_eq!(Ttl::Millis(499).reply(false), 0);
        assert_eq!(Ttl::Millis(1400).reply(true), 1400);
        assert_eq!((Ttl::Missing.reply(false), Ttl::Forever.reply(true)), (-2, -1));
    }

    #[test]
    fn active_expiry_skips_stale_deadlines() {
        let mut kv = KvStore::new();
        set(&mut kv, "a", "1", (SetCondition::Always, SetExpiry::After(10)), 0);
        set(&mut kv, "a", "2", (SetCondition::Always, SetExpiry::Clear), 1);
        kv.expire_due(20);
        assert_eq!(kv.get(b"a", 20), Ok(Some(b("2"))), "the stale deadline removed nothing");
        assert!(kv.expire(b"a", 5, ExpireCondition::Always, 20));
        assert_eq!(kv.len(25), 0);
        assert_eq!(kv.ttl(b"a", 25), Ttl::Missing);
    }

    #[test]
    fn expire_conditions_and_persist() {
        let mut kv = KvStore::new();
        set(&mut kv, "a", "1", (SetCondition::Always, SetExpiry::Clear), 0);
        assert!(!kv.expire(b"a", 100, ExpireCondition::Later, 0), "no deadline is infinite");
        assert!(kv.expire(b"a", 100, ExpireCondition::Sooner, 0));
        assert!(!kv.expire(b"a", 50, ExpireCondition::NoDeadline, 0));
        assert!(kv.expire(b"a", 200, ExpireCondition::Later, 0));
        assert_eq!(kv.expiring(), 1);
        assert!(kv.persist(b"a", 0) && !kv.persist(b"a", 0));
        assert_eq!((kv.expiring(), kv.ttl(b"a", 0)), (0, Ttl::Forever));
        assert!(kv.expire(b"a", -1, ExpireCondition::Always, 0), "a past deadline deletes");
        assert!(!kv.exists(b"a", 0));
    }

    #[test]
    fn incr_keeps_integers_and_refuses_others() {
        let mut kv = KvStore::new();
        assert_eq!(kv.incr_by(b("n"), 5, 0), Ok(5));
        assert_eq!(kv.incr_by(b("n"), -7, 0), Ok(-2));
        set(&mut kv, "s", "007", (SetCondition::Always, SetExpiry::Clear), 0);
        assert_eq!(kv.incr_by(b("s"), 1, 0), Err(IncrError::NotAnInteger));
        set(&mut kv, "m", &i64::MAX.to_string(), (SetCondition::Always, SetExpiry::Clear), 0);
        assert_eq!(kv.incr_by(b("m"), 1, 0), Err(IncrError::Overflow));
        assert!(kv.del(b"n", 0));
        assert!(!kv.exists(b"n", 0));
    }

    #[test]
    fn decimal_writes_every_i64_as_to_string_does() {
        for n in [0, 1, -1, 9, 10, -10, 4_242, i64::MAX, i64::MIN, i64::MIN + 1] {
            assert_eq!(&super::decimal(n)[..], n.to_string().as_bytes());
        }
    }

    #[test]
    fn hashes_and_strings_refuse_each_other() {
        let mut kv = KvStore::new();
        assert_eq!(kv.hset(b("h"), vec![(b("f"), b("1")), (b("g"), b("2"))], 0), Ok(2));
        assert_eq!(kv.hset(b("h"), vec![(b("f"), b("3"))], 0), Ok(0));
        assert_eq!(kv.hgetall(b"h", 0).unwrap(), vec![(b("f"), b("3")), (b("g"), b("2"))], "insertion order");
        assert_eq!(kv.get(b"h", 0), Err(WrongType));
        assert_eq!(kv.incr_by(b("h"), 1, 0), Err(IncrError::WrongType));
        assert_eq!(kv.set(b("h"), b("v"), (SetCondition::Always, SetExpiry::Clear), true, 0), Err(WrongType));
        assert_eq!(kv.type_of(b"h", 0), "hash");
        assert_eq!(kv.hincrby(b("h"), b("f"), 2, 0), Ok(5));
        assert_eq!(kv.hdel(b"h", &[b("f"), b("g"), b("x")], 0), Ok(2));
        assert_eq!(kv.type_of(b"h", 0), "none", "the last field took the key with it");
        set(&mut kv, "s", "x", (SetCondition::Always, SetExpiry::Clear), 0);
        assert_eq!(kv.hget(b"s", b"f", 0), Err(WrongType));
        assert_eq!(kv.hincrby(b("s"), b("f"), 1, 0), Err(HashIncrError::WrongType));
    }

    #[test]
    fn take_and_restore_keep_the_time_left() {
        let mut kv = KvStore::new();
        set(&mut kv, "a", "1", (SetCondition::Always, SetExpiry::After(1000)), 0);
        let taken = kv.take(b"a", 400).unwrap();
        assert_eq!(taken.ttl_ms, Some(600));
        kv.restore(b("b"), taken, 500);
        assert_eq!((kv.exists(b"a", 500), kv.ttl(b"b", 500)), (false, Ttl::Millis(600)));
        assert_eq!(kv.expiring(), 1);
    }

    #[test]
    fn scan_returns_every_key_once_in_steps() {
        let mut kv = KvStore::new();
        for i in 0..100 {
            set(&mut kv, &format!("k{i}"), "v", (SetCondition::Always, SetExpiry::Clear), 0);
        }
        let (mut seen, mut from) = (Vec::new(), 0);
        loop {
            let step = kv.scan(from, 7, 0, |_, _| true);
            seen.extend(step.keys);
            match step.next {
                Some(n) => from = n,
                None => break,
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 100);
        // Keys added and removed between steps: every key there throughout still comes back.
        let (mut seen, mut from, mut i) = (Vec::new(), 0, 0);
        loop {
            let step = kv.scan(from, 5, 0, |_, _| true);
            seen.extend(step.keys);
            kv.del(format!("k{}", 99 - i).as_bytes(), 0);
            set(&mut kv, &format!("new{i}"), "v", (SetCondition::Always, SetExpiry::Clear), 0);
            i += 1;
            match step.next {
                Some(n) => from = n,
                None => break,
            }
        }
        let kept = (0..100 - i).map(|n| b(&format!("k{n}")));
        assert!(kept.clone().all(|k| seen.contains(&k)), "{} steps", i);
        let mut found = kv.keys(b"k1?", 0);
        found.sort();
        assert_eq!(found.len(), 10);
    }
}
