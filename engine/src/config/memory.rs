//! `[server] maxmemory` and `maxmemory_policy`: the memory limit of the RESP keyspace and what
//! a write does when the keyspace is over it.
//!
//! `maxmemory` is bytes, written as an integer (`maxmemory = 104857600`) or as a string with
//! Redis's units (`"100mb"`, `"1gb"`, `"512k"`): `k`/`m`/`g` are powers of 1000 and
//! `kb`/`mb`/`gb` powers of 1024, case-insensitive, as `redis.conf` reads them. 0 = no limit.
//!
//! Invariants: a parsed size is the exact byte count (no rounding; an overflowing size is an
//! error, not a wrap); every refusal names the value and says how to write a good one.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// What a write does when the keyspace is over `maxmemory`. TOML: `"noeviction"` or
/// `"allkeys-lru"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
pub enum EvictionPolicy {
    /// Writes that may add memory are refused with Redis's `-OOM` error; reads, DEL and
    /// EXPIRE still work.
    #[default]
    #[serde(rename = "noeviction")]
    NoEviction,
    /// Keys are evicted, least recently used first (approximated by sampling, as Redis does),
    /// until the keyspace is under the limit.
    #[serde(rename = "allkeys-lru")]
    AllKeysLru,
}

impl EvictionPolicy {
    /// The name Redis (and the TOML file) uses.
    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::NoEviction => "noeviction",
            EvictionPolicy::AllKeysLru => "allkeys-lru",
        }
    }
}

/// Why a memory size did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("maxmemory = \"{text}\" is not a size; write bytes (104857600) or a number with a unit: \"100mb\", \"1gb\", \"512kb\" (k/m/g = 1000s, kb/mb/gb = 1024s)")]
pub struct MemorySizeError {
    /// The text that was refused.
    pub text: String,
}

/// Parses a Redis-style memory size: digits, then an optional unit (`b`, `k`, `kb`, `m`,
/// `mb`, `g`, `gb`; case-insensitive; no space inside).
pub fn parse_memory_size(text: &str) -> Result<u64, MemorySizeError> {
    let err = || MemorySizeError { text: text.to_owned() };
    let trimmed = text.trim();
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(err());
    }
    let (number, unit) = trimmed.split_at(digits);
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err(err()),
    };
    number.parse::<u64>().ok().and_then(|n| n.checked_mul(multiplier)).ok_or_else(err)
}

/// Deserializes `maxmemory`: a non-negative integer (bytes) or a size string.
pub(super) fn deserialize_memory_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct SizeVisitor;

    impl Visitor<'_> for SizeVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes (an integer) or a size such as \"100mb\"")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| {
                E::custom(format!("maxmemory = {v} is negative; use 0 for no limit, or a size such as \"100mb\""))
            })
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            parse_memory_size(v).map_err(E::custom)
        }
    }

    deserializer.deserialize_any(SizeVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_redis_units() {
        assert_eq!(parse_memory_size("0"), Ok(0));
        assert_eq!(parse_memory_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_memory_size("100mb"), Ok(100 << 20));
        assert_eq!(parse_memory_size("1GB"), Ok(1 << 30));
        assert_eq!(parse_memory_size("2k"), Ok(2000));
        assert_eq!(parse_memory_size("2kb"), Ok(2048));
        assert_eq!(parse_memory_size("3m"), Ok(3_000_000));
        assert!(parse_memory_size("lots").is_err());
        assert!(parse_memory_size("1tb").is_err());
        assert!(parse_memory_size("-1").is_err());
        assert!(parse_memory_size("99999999999999999999gb").is_err(), "overflow is refused");
    }

    #[test]
    fn the_server_keys_parse_and_bad_values_are_one_line_with_a_hint() {
        use crate::config::EngineConfig;
        let text = "[server]\nmaxmemory = \"100mb\"\nmaxmemory_policy = \"allkeys-lru\"\n";
        let config = EngineConfig::from_toml_str(text, "t").expect("parses");
        assert_eq!((config.server.maxmemory, config.server.maxmemory_policy), (100 << 20, EvictionPolicy::AllKeysLru));
        let plain = EngineConfig::from_toml_str("[server]\nmaxmemory = 4096\n", "t").expect("parses");
        assert_eq!((plain.server.maxmemory, plain.server.maxmemory_policy), (4096, EvictionPolicy::NoEviction));
        for (bad, wants) in [
            ("maxmemory_policy = \"lru\"", "allkeys-lru"),
            ("maxmemory = \"lots\"", "\"100mb\""),
            ("maxmemory = -1", "0 for no limit"),
        ] {
            let err = EngineConfig::from_toml_str(&format!("[server]\n{bad}\n"), "t").expect_err(bad).to_string();
            assert!(err.contains("maxmemory") && err.contains(wants) && !err.contains('\n'), "{bad}: {err}");
        }
    }
}
