//! `[coord]`: the settings of the coordination layer (crate `nexus-coord`), kept in the
//! engine's config so one file configures a whole deployment. The engine itself reads none of
//! them; `EngineConfig::validate` checks them.

use serde::Deserialize;

/// `[coord]`: the coordination layer (`nexus-coord`): how discovery ranks candidates, and the
/// default windows of auctions and votes. Weights are relative (they need not sum to 100).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoordConfig {
    /// `weight_match`: weight of the share of the asked capabilities a candidate has.
    /// Default 50.
    pub weight_match: u32,
    /// `weight_load`: weight of a candidate's lightness, `1 / (1 + load)`. Default 30.
    pub weight_load: u32,
    /// `weight_reputation`: weight of a candidate's reputation (0 to 1, kept by auction
    /// managers). Default 20.
    pub weight_reputation: u32,
    /// `discovery_timeout_ms`: how long a global discovery waits for every shard. Default 100.
    pub discovery_timeout_ms: u64,
    /// `bid_window_ms`: how long an auction waits for bids by default. Default 15.
    pub bid_window_ms: u64,
    /// `reputation_alpha_pct`: the weight of the newest outcome in a reputation's moving
    /// average (percent, 1 to 100). Default 20.
    pub reputation_alpha_pct: u32,
}

impl Default for CoordConfig {
    fn default() -> Self {
        Self {
            weight_match: 50,
            weight_load: 30,
            weight_reputation: 20,
            discovery_timeout_ms: 100,
            bid_window_ms: 15,
            reputation_alpha_pct: 20,
        }
    }
}

impl CoordConfig {
    /// The first problem with these settings, as (key, message, hint), for
    /// `EngineConfig::validate` to report with the file and line.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String, String)> {
        if self.weight_match == 0 && self.weight_load == 0 && self.weight_reputation == 0 {
            return Err((
                "coord.weight_match",
                "every discovery weight is 0: no candidate could be ranked above another".into(),
                "give at least one of weight_match, weight_load, weight_reputation a positive weight (defaults 50, 30, 20)"
                    .into(),
            ));
        }
        if self.discovery_timeout_ms == 0 {
            return Err((
                "coord.discovery_timeout_ms",
                "discovery_timeout_ms = 0 gives other shards no time to answer".into(),
                "use a positive timeout such as 100".into(),
            ));
        }
        if !(1..=100).contains(&self.reputation_alpha_pct) {
            return Err((
                "coord.reputation_alpha_pct",
                format!("reputation_alpha_pct = {} is outside 1..=100", self.reputation_alpha_pct),
                "use a percentage from 1 (slow to change) to 100 (only the last outcome counts), such as 20".into(),
            ));
        }
        Ok(())
    }
}
