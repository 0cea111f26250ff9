//! The string commands beyond GET and SET: GETDEL, GETEX, APPEND, STRLEN, INCRBYFLOAT (its
//! long double arithmetic is `longdouble`'s).
//!
//! Invariants: each operation refuses a hash with [`WrongType`] before changing anything;
//! APPEND and INCRBYFLOAT keep the key's deadline, as Redis does.

use super::longdouble::{self, Ext};
use super::{Compact, Entry, KvStore, Stored, WrongType};
use bytes::{Bytes, BytesMut};

/// The longest float text Redis parses (`MAX_LONG_DOUBLE_CHARS`).
const MAX_FLOAT_CHARS: usize = 5 * 1024;

/// What GETEX does with the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetExpiry {
    /// No option: nothing.
    Keep,
    /// EX/PX/EXAT/PXAT (made relative by the caller): this many milliseconds from now.
    After(u64),
    /// PERSIST: no deadline.
    Persist,
}

/// Why an INCRBYFLOAT failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FloatError {
    /// The key holds a hash.
    #[error("{}", WrongType)]
    WrongType,
    /// The value or the increment is not a float.
    #[error("ERR value is not a valid float")]
    NotAFloat,
    /// The result is not finite.
    #[error("ERR increment would produce NaN or Infinity")]
    NotFinite,
}

/// A float as Redis's `string2ld` reads one: the whole text as `strtold` reads it, no
/// leading space, not NaN, not out of range (an explicit `inf` is read).
fn parse_float(text: &[u8]) -> Option<Ext> {
    if text.is_empty() || text.len() >= MAX_FLOAT_CHARS || text[0].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    let v = longdouble::parse(text)?;
    let spelled_inf = text.trim_start_matches(['+', '-']).to_ascii_lowercase().starts_with("inf");
    (matches!(v, Ext::Finite { .. }) || spelled_inf).then_some(v)
}

impl KvStore {
    /// The string under `key` (`None`: missing), refusing a hash.
    fn string_entry(&mut self, key: &[u8], now_ms: u64) -> Result<Option<&mut Entry>, WrongType> {
        match self.live(key, now_ms) {
            Some(Entry { value: Stored::Hash(_), .. }) => Err(WrongType),
            other => Ok(other),
        }
    }

    /// `GETDEL`.
    pub fn getdel(&mut self, key: &[u8], now_ms: u64) -> Result<Option<Bytes>, WrongType> {
        let value = self.get(key, now_ms)?;
        if value.is_some() {
            self.del(key, now_ms);
        }
        Ok(value)
    }

    /// `GETEX`: the value, after changing the deadline as `expiry` says.
    pub fn getex(&mut self, key: &[u8], expiry: GetExpiry, now_ms: u64) -> Result<Option<Bytes>, WrongType> {
        let Some(value) = self.get(key, now_ms)? else { return Ok(None) };
        match expiry {
            GetExpiry::Keep => {}
            GetExpiry::Persist => {
                self.persist(key, now_ms);
            }
            GetExpiry::After(ms) => {
                self.expire(key, i64::try_from(ms).unwrap_or(i64::MAX), super::ExpireCondition::Always, now_ms);
            }
        }
        Ok(Some(value))
    }

    /// `APPEND`: the new length.
    pub fn append(&mut self, key: Bytes, tail: &[u8], now_ms: u64) -> Result<usize, WrongType> {
        let joined = match self.string_entry(&key, now_ms)? {
            Some(Entry { value: Stored::Str(v), .. }) => {
                let mut joined = BytesMut::with_capacity(v.len() + tail.len());
                joined.extend_from_slice(v);
                joined.extend_from_slice(tail);
                joined.freeze()
            }
            _ => Bytes::copy_from_slice(tail),
        };
        let len = joined.len();
        self.replace_string(key, Compact::fresh(joined), now_ms);
        Ok(len)
    }

    /// `STRLEN`.
    pub fn strlen(&mut self, key: &[u8], now_ms: u64) -> Result<usize, WrongType> {
        Ok(self.get(key, now_ms)?.map_or(0, |v| v.len()))
    }

    /// `INCRBYFLOAT`: the new value's text. Checks, in Redis's order: the type, the stored
    /// value, the increment, the result.
    pub fn incr_by_float(&mut self, key: Bytes, by: &[u8], now_ms: u64) -> Result<Bytes, FloatError> {
        let current = match self.get(&key, now_ms).map_err(|_| FloatError::WrongType)? {
            Some(v) => parse_float(&v).ok_or(FloatError::NotAFloat)?,
            None => Ext::Finite { neg: false, mant: 0, exp: 0 },
        };
        let by = parse_float(by).ok_or(FloatError::NotAFloat)?;
        let next = match longdouble::add(current, by) {
            Some(next @ Ext::Finite { .. }) => next,
            _ => return Err(FloatError::NotFinite),
        };
        let text = Bytes::from(longdouble::format(next));
        self.replace_string(key, Compact::fresh(text.clone()), now_ms);
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_parse_as_redis_reads_them() {
        assert!(parse_float(b"1e3").is_some() && parse_float(b"+1.5").is_some() && parse_float(b"-inf").is_some());
        assert_eq!(parse_float(b"1e6000"), None, "out of range");
        assert_eq!(parse_float(b" 1"), None);
        assert_eq!(parse_float(b"nan"), None);
        assert_eq!(parse_float(b""), None);
        assert_eq!(parse_float(b"1x"), None);
    }
}
