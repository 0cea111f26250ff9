//! One shard's key-value partition: values, expiry, and the operations the commands need.
//!
//! Keys are byte strings; values are immutable `Bytes`, so `GET` hands out a reference-counted
//! view instead of a copy. A key with a deadline is also in a min-heap of deadlines: every
//! operation first removes the keys whose deadline passed (active expiry, bounded work per
//! call), and every read checks the deadline of the key it reads (lazy expiry), so an expired
//! key is never seen. A heap entry whose key was deleted or given another deadline is stale and
//! skipped. Times are milliseconds on the engine clock.

use bytes::Bytes;
use hashbrown::HashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Most expired keys removed by one operation's active-expiry step.
const EXPIRE_PER_CALL: usize = 64;

/// A stored value and its deadline.
#[derive(Clone, Debug)]
struct Entry {
    value: Bytes,
    expires_at_ms: Option<u64>,
}

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
    /// `EX`/`PX`: expire this many milliseconds from now.
    After(u64),
    /// `KEEPTTL`: keep the current deadline.
    Keep,
}

/// Why an `INCRBY` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncrError {
    /// The value is not a 64-bit integer.
    NotAnInteger,
    /// The result would overflow.
    Overflow,
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

/// See the module documentation.
#[derive(Debug, Default)]
pub struct KvStore {
    map: HashMap<Bytes, Entry>,
    deadlines: BinaryHeap<Reverse<(u64, Bytes)>>,
    expiring: usize,
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
            if self.map.get(&key).is_some_and(|e| e.expires_at_ms == Some(at)) {
                self.map.remove(&key);
                self.expiring -= 1;
            }
        }
    }

    /// The live entry for `key`, removing it first if it expired.
    fn live(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let expired = self.map.get(key).is_some_and(|e| e.expires_at_ms.is_some_and(|at| at <= now_ms));
        if expired {
            self.map.remove(key);
            self.expiring -= 1;
            return None;
        }
        self.map.get_mut(key)
    }

    fn set_deadline(&mut self, key: &Bytes, old: Option<u64>, new: Option<u64>) {
        match (old.is_some(), new.is_some()) {
            (false, true) => self.expiring += 1,
            (true, false) => self.expiring -= 1,
            _ => {}
        }
        if let Some(at) = new {
            if old != new {
                self.deadlines.push(Reverse((at, key.clone())));
            }
        }
    }

    /// `GET`.
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<Bytes> {
        self.live(key, now_ms).map(|e| e.value.clone())
    }

    /// `SET`: returns whether it stored the value and the previous value (for `SET ... GET`).
    pub fn set(
        &mut self,
        key: Bytes,
        value: Bytes,
        condition: SetCondition,
        expiry: SetExpiry,
        now_ms: u64,
    ) -> (bool, Option<Bytes>) {
        let existing = self.live(&key, now_ms).map(|e| (e.value.clone(), e.expires_at_ms));
        let allowed = match condition {
            SetCondition::Always => true,
            SetCondition::IfMissing => existing.is_none(),
            SetCondition::IfExists => existing.is_some(),
        };
        let (previous, old_deadline) = match existing {
            Some((v, d)) => (Some(v), d),
            None => (None, None),
        };
        if !allowed {
            return (false, previous);
        }
        let deadline = match expiry {
            SetExpiry::Clear => None,
            SetExpiry::After(ms) => Some(now_ms.saturating_add(ms)),
            SetExpiry::Keep => old_deadline,
        };
        self.set_deadline(&key, old_deadline, deadline);
        self.map.insert(key, Entry { value, expires_at_ms: deadline });
        (true, previous)
    }

    /// `DEL` of one key: whether it existed.
    pub fn del(&mut self, key: &[u8], now_ms: u64) -> bool {
        if self.live(key, now_ms).is_none() {
            return false;
        }
        if let Some(e) = self.map.remove(key) {
            if e.expires_at_ms.is_some() {
                self.expiring -= 1;
            }
        }
        true
    }

    /// `EXISTS` of one key.
    pub fn exists(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.live(key, now_ms).is_some()
    }

    /// `INCRBY`: the new value. A missing key counts as 0; the deadline is kept.
    pub fn incr_by(&mut self, key: Bytes, by: i64, now_ms: u64) -> Result<i64, IncrError> {
        let current = match self.live(&key, now_ms) {
            Some(e) => crate::kinds::parse_i64(&e.value).ok_or(IncrError::NotAnInteger)?,
            None => 0,
        };
        let next = current.checked_add(by).ok_or(IncrError::Overflow)?;
        let value = Bytes::from(next.to_string());
        match self.map.get_mut(&key) {
            Some(e) => e.value = value,
            None => {
                self.map.insert(key, Entry { value, expires_at_ms: None });
            }
        }
        Ok(next)
    }

    /// `EXPIRE`/`PEXPIRE`: sets the deadline `ms` from now; whether the key exists. A
    /// deadline already passed deletes the key.
    pub fn expire(&mut self, key: &[u8], ms: u64, now_ms: u64) -> bool {
        let Some(entry) = self.live(key, now_ms) else { return false };
        let old = entry.expires_at_ms;
        if ms == 0 {
            self.del(key, now_ms);
            return true;
        }
        let at = now_ms.saturating_add(ms);
        entry.expires_at_ms = Some(at);
        let key = Bytes::copy_from_slice(key);
        self.set_deadline(&key, old, Some(at));
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn set_get_conditions_and_expiry() {
        let mut kv = KvStore::new();
        assert_eq!(kv.set(b("k"), b("v"), SetCondition::IfExists, SetExpiry::Clear, 0), (false, None));
        assert_eq!(kv.set(b("k"), b("v"), SetCondition::IfMissing, SetExpiry::After(100), 0), (true, None));
        assert!(!kv.set(b("k"), b("w"), SetCondition::IfMissing, SetExpiry::Clear, 10).0);
        assert_eq!(kv.get(b"k", 50), Some(b("v")));
        assert_eq!(kv.ttl(b"k", 50), Ttl::Millis(50));
        assert_eq!(kv.get(b"k", 100), None, "expired at its deadline");
        assert_eq!(kv.len(100), 0);
        assert_eq!(kv.expiring(), 0);
    }

    #[test]
    fn active_expiry_skips_stale_deadlines() {
        let mut kv = KvStore::new();
        kv.set(b("a"), b("1"), SetCondition::Always, SetExpiry::After(10), 0);
        kv.set(b("a"), b("2"), SetCondition::Always, SetExpiry::Clear, 1);
        kv.expire_due(20);
        assert_eq!(kv.get(b"a", 20), Some(b("2")), "the stale deadline removed nothing");
        assert!(kv.expire(b"a", 5, 20));
        assert_eq!(kv.len(25), 0);
        assert_eq!(kv.ttl(b"a", 25), Ttl::Missing);
    }

    #[test]
    fn incr_keeps_integers_and_refuses_others() {
        let mut kv = KvStore::new();
        assert_eq!(kv.incr_by(b("n"), 5, 0), Ok(5));
        assert_eq!(kv.incr_by(b("n"), -7, 0), Ok(-2));
        kv.set(b("s"), b("x"), SetCondition::Always, SetExpiry::Clear, 0);
        assert_eq!(kv.incr_by(b("s"), 1, 0), Err(IncrError::NotAnInteger));
        kv.set(b("m"), b(&i64::MAX.to_string()), SetCondition::Always, SetExpiry::Clear, 0);
        assert_eq!(kv.incr_by(b("m"), 1, 0), Err(IncrError::Overflow));
        assert!(kv.del(b"n", 0));
        assert!(!kv.exists(b"n", 0));
    }
}
