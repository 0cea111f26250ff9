//! The parsing of the options of SET, GETEX and the EXPIRE family, and of expire times, with
//! Redis 7's checks and error texts.
//!
//! Invariants: options are checked for syntax before any number is parsed (as Redis does); an
//! expire time is checked against the wall clock (Unix milliseconds, as Redis's are) and
//! handed on relative to now, since the partitions keep deadlines on the engine clock.

use crate::kinds::parse_i64;
use crate::kv::{ExpireCondition, GetExpiry, SetCondition, SetExpiry};
use crate::resp::Value;
use bytes::Bytes;

/// Milliseconds since the Unix epoch.
pub(super) fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(super) fn not_an_integer() -> Value {
    Value::error("ERR value is not an integer or out of range")
}

fn syntax() -> Value {
    Value::error("ERR syntax error")
}

fn invalid_expire(command: &str) -> Value {
    Value::error(format!("ERR invalid expire time in '{command}' command"))
}

/// How an expire time is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Unit {
    /// EX: seconds from now.
    Seconds,
    /// PX: milliseconds from now.
    Millis,
    /// EXAT: a Unix time in seconds.
    UnixSeconds,
    /// PXAT: a Unix time in milliseconds.
    UnixMillis,
}

/// An expire time of SET, SETEX, PSETEX or GETEX (Redis's `getExpireMillisecondsOrReply`):
/// milliseconds from now (0: already past).
pub(super) fn expire_after(arg: &[u8], unit: Unit, command: &str) -> Result<u64, Value> {
    let n = parse_i64(arg).ok_or_else(not_an_integer)?;
    let seconds = matches!(unit, Unit::Seconds | Unit::UnixSeconds);
    if n <= 0 || (seconds && n > i64::MAX / 1000) {
        return Err(invalid_expire(command));
    }
    let ms = if seconds { n * 1000 } else { n };
    let now = unix_ms();
    match unit {
        Unit::Seconds | Unit::Millis if ms > i64::MAX - now => Err(invalid_expire(command)),
        Unit::Seconds | Unit::Millis => Ok(ms as u64),
        Unit::UnixSeconds | Unit::UnixMillis => Ok(ms.saturating_sub(now).max(0) as u64),
    }
}

/// The options SET and GETEX share (Redis's `parseExtendedStringArgumentsOrReply`).
#[derive(Default)]
struct StringOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(Unit, Bytes)>,
}

fn parse_string_options(args: &[Bytes], set: bool) -> Result<StringOptions, Value> {
    let mut o = StringOptions::default();
    let mut i = 0;
    while i < args.len() {
        let opt = args[i].to_ascii_uppercase();
        let expire_kind = o.expire.as_ref().map(|(u, _)| *u);
        let unit = match opt.as_slice() {
            b"EX" => Some(Unit::Seconds),
            b"PX" => Some(Unit::Millis),
            b"EXAT" => Some(Unit::UnixSeconds),
            b"PXAT" => Some(Unit::UnixMillis),
            _ => None,
        };
        match (opt.as_slice(), unit) {
            (b"NX", _) if set && !o.xx => o.nx = true,
            (b"XX", _) if set && !o.nx => o.xx = true,
            (b"GET", _) if set => o.get = true,
            (b"KEEPTTL", _) if set && o.expire.is_none() => o.keepttl = true,
            (b"PERSIST", _) if !set && o.expire.is_none() => o.persist = true,
            (_, Some(u)) if !o.keepttl && !o.persist && expire_kind.map_or(true, |k| k == u) && i + 1 < args.len() => {
                o.expire = Some((u, args[i + 1].clone()));
                i += 1;
            }
            _ => return Err(syntax()),
        }
        i += 1;
    }
    Ok(o)
}

/// SET's options (after the value): condition, expiry, GET.
pub(super) fn parse_set(args: &[Bytes]) -> Result<(SetCondition, SetExpiry, bool), Value> {
    let o = parse_string_options(&args[3..], true)?;
    let condition = match (o.nx, o.xx) {
        (true, _) => SetCondition::IfMissing,
        (_, true) => SetCondition::IfExists,
        _ => SetCondition::Always,
    };
    let expiry = match (&o.expire, o.keepttl) {
        (Some((unit, arg)), _) => SetExpiry::After(expire_after(arg, *unit, "set")?),
        (None, true) => SetExpiry::Keep,
        (None, false) => SetExpiry::Clear,
    };
    Ok((condition, expiry, o.get))
}

/// GETEX's options: the syntax error at once; the expire time's error inside, since Redis
/// reports it only when the key exists.
pub(super) fn parse_getex(args: &[Bytes]) -> Result<Result<GetExpiry, Value>, Value> {
    let o = parse_string_options(&args[2..], false)?;
    Ok(match (o.expire, o.persist) {
        (Some((unit, arg)), _) => expire_after(&arg, unit, "getex").map(GetExpiry::After),
        (None, true) => Ok(GetExpiry::Persist),
        (None, false) => Ok(GetExpiry::Keep),
    })
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (`unit` says which, `command` names it): the
/// milliseconds from now (0 or less: delete) and the condition.
pub(super) fn parse_expire(args: &[Bytes], unit: Unit, command: &str) -> Result<(i64, ExpireCondition), Value> {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        match opt.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => {
                return Err(Value::error(format!("ERR Unsupported option {}", String::from_utf8_lossy(opt))));
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Value::error("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if gt && lt {
        return Err(Value::error("ERR GT and LT options at the same time are not compatible"));
    }
    let condition = match (nx, xx, gt, lt) {
        (true, ..) => ExpireCondition::NoDeadline,
        (_, _, true, _) => ExpireCondition::Later,
        (_, _, _, true) => ExpireCondition::Sooner,
        (_, true, ..) => ExpireCondition::HasDeadline,
        _ => ExpireCondition::Always,
    };
    let n = parse_i64(&args[2]).ok_or_else(not_an_integer)?;
    let seconds = matches!(unit, Unit::Seconds | Unit::UnixSeconds);
    if seconds && !(i64::MIN / 1000..=i64::MAX / 1000).contains(&n) {
        return Err(invalid_expire(command));
    }
    let ms = if seconds { n * 1000 } else { n };
    let now = unix_ms();
    let relative = matches!(unit, Unit::Seconds | Unit::Millis);
    if relative && ms > i64::MAX - now {
        return Err(invalid_expire(command));
    }
    Ok((if relative { ms } else { ms.saturating_sub(now) }, condition))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    #[test]
    fn set_options_parse_like_redis() {
        let (c, e, g) = parse_set(&args(&["set", "k", "v", "nx", "px", "1500", "get"])).unwrap();
        assert!(c == SetCondition::IfMissing && e == SetExpiry::After(1500) && g);
        let (_, e, _) = parse_set(&args(&["set", "k", "v", "EX", "2"])).unwrap();
        assert!(e == SetExpiry::After(2000));
        assert_eq!(parse_set(&args(&["set", "k", "v", "nx", "xx"])).err(), Some(syntax()));
        assert_eq!(parse_set(&args(&["set", "k", "v", "ex"])).err(), Some(syntax()));
        assert_eq!(parse_set(&args(&["set", "k", "v", "ex", "x", "nx", "xx"])).err(), Some(syntax()));
        let invalid = Some(invalid_expire("set"));
        assert_eq!(parse_set(&args(&["set", "k", "v", "ex", "0"])).err(), invalid);
        assert_eq!(parse_set(&args(&["set", "k", "v", "px", "9223372036854775807"])).err(), invalid);
        assert_eq!(parse_set(&args(&["set", "k", "v", "ex", "x"])).err(), Some(not_an_integer()));
        let (_, e, _) = parse_set(&args(&["set", "k", "v", "exat", "1"])).unwrap();
        assert_eq!(e, SetExpiry::After(0), "a time already past");
    }

    #[test]
    fn expire_options_parse_like_redis() {
        let p = |w: &[&str]| parse_expire(&args(w), Unit::Seconds, "expire");
        assert_eq!(p(&["expire", "k", "10", "gt"]).unwrap(), (10_000, ExpireCondition::Later));
        assert!(p(&["expire", "k", "10", "nx", "xx"]).is_err());
        assert_eq!(p(&["expire", "k", "x", "foo"]).err(), Some(Value::error("ERR Unsupported option foo")));
        assert_eq!(p(&["expire", "k", "9223372036854775807"]).err(), Some(invalid_expire("expire")));
    }
}
