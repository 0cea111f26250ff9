//! [`TraceContext`]: a trace id and the current span id, and their W3C `traceparent` form.
//!
//! Invariant: a context from [`TraceContext::parse_traceparent`] has a non-zero trace id and
//! span id (the W3C rule: all-zero ids are invalid).

use std::fmt;

/// Where a message stands in a trace: the trace id and the id of the span that sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The W3C trace id (16 bytes).
    pub trace_id: u128,
    /// The W3C parent id: the span of the hop that is sending.
    pub span_id: u64,
}

/// Why a `traceparent` header was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad traceparent '{0}': expected 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>, ids not all zero")]
pub struct ParseTraceparentError(pub String);

impl TraceContext {
    /// The W3C `traceparent` value, version 00, sampled flag set.
    pub fn to_traceparent(&self) -> String {
        format!("00-{:032x}-{:016x}-01", self.trace_id, self.span_id)
    }

    /// Reads a W3C `traceparent` value (`00-<trace id>-<parent id>-<flags>`).
    ///
    /// # Errors
    ///
    /// [`ParseTraceparentError`] when it is not four dash-separated hex fields of 2, 32, 16 and
    /// 2 digits, the version is `ff`, or an id is all zeros.
    pub fn parse_traceparent(text: &str) -> Result<Self, ParseTraceparentError> {
        let bad = || ParseTraceparentError(text.chars().take(80).collect());
        fn hex(s: &str, len: usize) -> Option<&str> {
            (s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
        }
        let parts: Vec<&str> = text.trim().split('-').collect();
        let [version, trace, parent, flags] = parts[..] else { return Err(bad()) };
        let (Some(version), Some(trace), Some(parent), Some(_)) =
            (hex(version, 2), hex(trace, 32), hex(parent, 16), hex(flags, 2))
        else {
            return Err(bad());
        };
        if version.eq_ignore_ascii_case("ff") {
            return Err(bad());
        }
        let trace_id = u128::from_str_radix(trace, 16).map_err(|_| bad())?;
        let span_id = u64::from_str_radix(parent, 16).map_err(|_| bad())?;
        if trace_id == 0 || span_id == 0 {
            return Err(bad());
        }
        Ok(Self { trace_id, span_id })
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_traceparent())
    }
}
