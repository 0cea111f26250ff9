//! `[tracing]`: message tracing's settings, and their checks.
//!
//! Invariant: a config that passed [`TracingConfig::check`] has a `sample` in 0..=1, a non-zero
//! `buffer` and `max_depth`, an `otlp_endpoint` that is empty or an `http://host:port[/path]`
//! address, and known command names in `commands`.

use serde::Deserialize;

/// `[tracing]`: which messages are traced and where their spans go (see `nexus_engine::trace`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// `sample`: the probability that an untraced message (or RESP command) starts a trace,
    /// 0 to 1. Default 0 (off); `nexus trace` turns it on in a running engine.
    pub sample: f64,
    /// `buffer`: spans each shard buffers before dropping (and counting) new ones. Default 65536.
    pub buffer: usize,
    /// `max_depth`: hops a trace follows from its root. Default 32.
    pub max_depth: u16,
    /// `otlp_endpoint`: where `nexus run` exports spans, OTLP over HTTP/protobuf (for example
    /// `http://127.0.0.1:4318/v1/traces`); empty = no export. Default empty.
    pub otlp_endpoint: String,
    /// `commands`: RESP commands traced every time, whatever `sample` says (for example
    /// `["GET", "SET"]`). Default none.
    pub commands: Vec<String>,
}

// `sample` is checked to be a number in 0..=1 (never NaN), so `==` is an equivalence.
impl Eq for TracingConfig {}

impl Default for TracingConfig {
    fn default() -> Self {
        Self { sample: 0.0, buffer: 65_536, max_depth: 32, otlp_endpoint: String::new(), commands: Vec::new() }
    }
}

impl TracingConfig {
    /// The engine's [`TraceConfig`](crate::trace::TraceConfig) for these settings.
    pub fn to_trace_config(&self) -> crate::trace::TraceConfig {
        crate::trace::TraceConfig::new().sample(self.sample).buffer(self.buffer).max_depth(self.max_depth)
    }

    /// The first problem as `(key, message, hint)`; `known_commands` are the RESP command names
    /// `commands` may list (none checked when empty).
    pub fn check(&self, known_commands: &[&str]) -> Result<(), (&'static str, String, String)> {
        if !(0.0..=1.0).contains(&self.sample) {
            return Err((
                "tracing.sample",
                format!("sample = {} is not a probability", self.sample),
                "use a number from 0 (off) to 1 (every message), such as 0.01".into(),
            ));
        }
        if self.buffer == 0 {
            return Err(("tracing.buffer", "buffer = 0 holds no span".into(), "use a span count such as 65536".into()));
        }
        if self.max_depth == 0 {
            return Err((
                "tracing.max_depth",
                "max_depth = 0 traces nothing".into(),
                "use a hop count such as 64".into(),
            ));
        }
        if !self.otlp_endpoint.is_empty() && !valid_http_endpoint(&self.otlp_endpoint) {
            return Err((
                "tracing.otlp_endpoint",
                format!("otlp_endpoint = \"{}\" is not an http://host:port address", self.otlp_endpoint),
                "use an OTLP/HTTP collector address such as \"http://127.0.0.1:4318/v1/traces\", or \"\" for none"
                    .into(),
            ));
        }
        if !known_commands.is_empty() {
            if let Some(bad) = self.commands.iter().find(|c| !known_commands.iter().any(|k| k.eq_ignore_ascii_case(c)))
            {
                return Err((
                    "tracing.commands",
                    format!("unknown command \"{bad}\" in tracing.commands"),
                    "list RESP command names such as \"GET\" or \"SET\"".into(),
                ));
            }
        }
        Ok(())
    }
}

/// `http://host:port[/path]` with a non-empty host and a numeric port.
fn valid_http_endpoint(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let authority = rest.split('/').next().unwrap_or("");
    match authority.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_each_setting() {
        assert!(TracingConfig::default().check(&[]).is_ok());
        let bad_sample = TracingConfig { sample: 1.5, ..Default::default() };
        assert_eq!(bad_sample.check(&[]).unwrap_err().0, "tracing.sample");
        let nan = TracingConfig { sample: f64::NAN, ..Default::default() };
        assert_eq!(nan.check(&[]).unwrap_err().0, "tracing.sample");
        let buffer = TracingConfig { buffer: 0, ..Default::default() };
        assert_eq!(buffer.check(&[]).unwrap_err().0, "tracing.buffer");
        let endpoint = TracingConfig { otlp_endpoint: "127.0.0.1:4318".into(), ..Default::default() };
        assert_eq!(endpoint.check(&[]).unwrap_err().0, "tracing.otlp_endpoint");
        let ok = TracingConfig { otlp_endpoint: "http://127.0.0.1:4318/v1/traces".into(), ..Default::default() };
        assert!(ok.check(&[]).is_ok());
        let commands = TracingConfig { commands: vec!["GETT".into()], ..Default::default() };
        assert_eq!(commands.check(&["GET", "SET"]).unwrap_err().0, "tracing.commands");
        let commands = TracingConfig { commands: vec!["get".into()], ..Default::default() };
        assert!(commands.check(&["GET", "SET"]).is_ok());
    }
}
