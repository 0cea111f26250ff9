//! The hash commands: HSET, HGET, HMGET, HGETALL, HDEL, HEXISTS, HLEN, HINCRBY.
//!
//! Fields keep their insertion order (an update keeps a field's place), as Redis's small
//! (listpack) hashes do, so HGETALL of a small hash answers what Redis answers.
//!
//! Invariants: each operation refuses a string with [`WrongType`] before changing anything;
//! a hash is never left empty (HDEL of the last field removes the key); writes keep the key's
//! deadline.

use super::memory::field_bytes;
use super::{Entry, Hash, KvStore, Stored, WrongType};
use bytes::Bytes;

/// Up to this many fields, HDEL keeps the order of the rest (Redis's listpack limit);
/// beyond it the order is Redis's hash-table order anyway, and removal is O(1).
const ORDERED_FIELDS: usize = 128;

/// Why an HINCRBY failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HashIncrError {
    /// The key holds a string.
    #[error("{}", WrongType)]
    WrongType,
    /// The field's value is not an integer.
    #[error("ERR hash value is not an integer")]
    NotAnInteger,
    /// The result would overflow.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
}

impl KvStore {
    /// The hash under `key` (`None`: missing), refusing a string.
    fn hash(&mut self, key: &[u8], now_ms: u64) -> Result<Option<&mut Hash>, WrongType> {
        match self.live(key, now_ms) {
            None => Ok(None),
            Some(Entry { value: Stored::Hash(h), .. }) => Ok(Some(h)),
            Some(_) => Err(WrongType),
        }
    }

    /// The hash under `key`, created empty when missing (the caller adds a field at once).
    fn hash_or_new(&mut self, key: Bytes, now_ms: u64) -> Result<&mut Hash, WrongType> {
        if self.hash(&key, now_ms)?.is_none() {
            self.insert_entry(key.clone(), Entry::new(Stored::Hash(Box::default()), None, now_ms));
        }
        self.hash(&key, now_ms)?.ok_or(WrongType)
    }

    /// `HSET`: how many fields are new.
    pub fn hset(&mut self, key: Bytes, pairs: Vec<(Bytes, Bytes)>, now_ms: u64) -> Result<usize, WrongType> {
        let hash = self.hash_or_new(key.clone(), now_ms)?;
        let (mut added, mut removed, mut new) = (0, 0, 0);
        for (f, v) in pairs {
            added += field_bytes(&f, &v);
            match hash.get_full(&f) {
                Some((_, old_f, old_v)) => removed += field_bytes(old_f, old_v),
                None => new += 1,
            }
            hash.insert(super::memory::own(f), super::memory::own(v));
        }
        self.resized(removed, added);
        self.note(&key, now_ms);
        Ok(new)
    }

    /// `HGET`.
    pub fn hget(&mut self, key: &[u8], field: &[u8], now_ms: u64) -> Result<Option<Bytes>, WrongType> {
        Ok(self.hash(key, now_ms)?.and_then(|h| h.get(field).cloned()))
    }

    /// `HMGET`: one value (or `None`) per field.
    pub fn hmget(&mut self, key: &[u8], fields: &[Bytes], now_ms: u64) -> Result<Vec<Option<Bytes>>, WrongType> {
        let hash = self.hash(key, now_ms)?;
        Ok(fields.iter().map(|f| hash.as_ref().and_then(|h| h.get(f).cloned())).collect())
    }

    /// `HGETALL`: the pairs, in field order.
    pub fn hgetall(&mut self, key: &[u8], now_ms: u64) -> Result<Vec<(Bytes, Bytes)>, WrongType> {
        let hash = self.hash(key, now_ms)?;
        Ok(hash.map(|h| h.iter().map(|(f, v)| (f.clone(), v.clone())).collect()).unwrap_or_default())
    }

    /// `HDEL`: how many fields existed.
    pub fn hdel(&mut self, key: &[u8], fields: &[Bytes], now_ms: u64) -> Result<usize, WrongType> {
        let Some(hash) = self.hash(key, now_ms)? else { return Ok(0) };
        let (mut removed, mut bytes) = (0, 0);
        for f in fields {
            let gone =
                if hash.len() <= ORDERED_FIELDS { hash.shift_remove_entry(f) } else { hash.swap_remove_entry(f) };
            if let Some((f, v)) = gone {
                removed += 1;
                bytes += field_bytes(&f, &v);
            }
        }
        let empty = hash.is_empty();
        self.resized(bytes, 0);
        if empty {
            self.del(key, now_ms);
        } else if removed > 0 {
            self.note(key, now_ms);
        }
        Ok(removed)
    }

    /// `HEXISTS`.
    pub fn hexists(&mut self, key: &[u8], field: &[u8], now_ms: u64) -> Result<bool, WrongType> {
        Ok(self.hash(key, now_ms)?.is_some_and(|h| h.contains_key(field)))
    }

    /// `HLEN`.
    pub fn hlen(&mut self, key: &[u8], now_ms: u64) -> Result<usize, WrongType> {
        Ok(self.hash(key, now_ms)?.map_or(0, |h| h.len()))
    }

    /// `HINCRBY`: the field's new value (a missing field counts as 0).
    pub fn hincrby(&mut self, key: Bytes, field: Bytes, by: i64, now_ms: u64) -> Result<i64, HashIncrError> {
        let hash = self.hash_or_new(key.clone(), now_ms).map_err(|_| HashIncrError::WrongType)?;
        let current = match hash.get(&field) {
            Some(v) => crate::kinds::parse_i64(v).ok_or(HashIncrError::NotAnInteger)?,
            None => 0,
        };
        let Some(next) = current.checked_add(by) else {
            return Err(HashIncrError::Overflow);
        };
        let value = super::decimal(next).to_bytes();
        let added = field_bytes(&field, &value);
        let removed = hash.insert(super::memory::own(field.clone()), value).map_or(0, |old| field_bytes(&field, &old));
        self.resized(removed, added);
        self.note(&key, now_ms);
        Ok(next)
    }
}
