//! The string commands beyond GET and SET: GETDEL, GETEX, APPEND, STRLEN, INCRBYFLOAT, and
//! the float parsing and formatting INCRBYFLOAT shares with Redis.
//!
//! Invariants: each operation refuses a hash with [`WrongType`] before changing anything;
//! APPEND and INCRBYFLOAT keep the key's deadline, as Redis does.

use super::{Entry, KvStore, Stored, WrongType};
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

/// A float as Redis's `string2ld` reads one: the whole text, no leading space, not NaN.
pub fn parse_float(text: &[u8]) -> Option<f64> {
    if text.is_empty() || text.len() >= MAX_FLOAT_CHARS || text[0].is_ascii_whitespace() {
        return None;
    }
    let v: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

/// A float as INCRBYFLOAT writes it: Redis prints a long double with 17 decimals and trims
/// the zeros; from an `f64`, rounding to 15 significant digits first gives the same text for
/// the sums of decimal numbers (`0.1 + 0.2` is `0.3`, as in Redis).
pub fn format_float(v: f64) -> String {
    let rounded: f64 = format!("{v:.14e}").parse().unwrap_or(v);
    let mut text = rounded.to_string();
    if text.split_once('.').is_some_and(|(_, decimals)| decimals.len() > 17) {
        text = format!("{rounded:.17}");
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    if text == "-0" {
        text = "0".to_owned();
    }
    text
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
        self.replace_string(key, joined, now_ms);
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
            None => 0.0,
        };
        let by = parse_float(by).ok_or(FloatError::NotAFloat)?;
        let next = current + by;
        if !next.is_finite() {
            return Err(FloatError::NotFinite);
        }
        let text = Bytes::from(format_float(next));
        self.replace_string(key, text.clone(), now_ms);
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_redis_prints_them() {
        assert_eq!(format_float(0.1 + 0.2), "0.3");
        assert_eq!(format_float(10.5 + 0.1), "10.6");
        assert_eq!(format_float(5010.5), "5010.5");
        assert_eq!(format_float(3.0), "3");
        assert_eq!(format_float(1e20), "100000000000000000000");
        assert_eq!(format_float(-0.0), "0");
        assert_eq!(format_float(1e-20), "0");
        assert_eq!(format_float(-1.5), "-1.5");
    }

    #[test]
    fn floats_parse_as_redis_reads_them() {
        assert_eq!(parse_float(b"1e3"), Some(1000.0));
        assert_eq!(parse_float(b"+1.5"), Some(1.5));
        assert_eq!(parse_float(b" 1"), None);
        assert_eq!(parse_float(b"nan"), None);
        assert_eq!(parse_float(b""), None);
        assert_eq!(parse_float(b"1x"), None);
    }
}
