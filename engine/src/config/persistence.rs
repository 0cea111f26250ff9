//! `[persistence]`: whether and how `nexus run`'s RESP server logs its writes to disk.
//!
//! Invariant: a config that passed [`PersistenceConfig::check`] has a non-empty `dir` when
//! `mode = "aof"`, a `rewrite_min_size` of at least 1 MiB and a `rewrite_growth` of at least 1.
//! Bad `mode` and `fsync` values are refused when parsing (unknown variants, with the list).

use serde::Deserialize;

/// `persistence.mode`: off, or an append-only log per shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersistenceMode {
    /// `"off"`: nothing is written; a restart starts empty.
    #[default]
    Off,
    /// `"aof"`: every shard appends its writes to `dir/shard-<i>.aof` and replays it on start.
    Aof,
}

/// `persistence.fsync`: when the log is forced to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// `"always"`: a write is answered only once an fsync covers it (one fsync covers every
    /// write buffered so far: group commit).
    Always,
    /// `"everysec"`: the log is fsynced about once a second; a crash loses at most the last
    /// second or so of acknowledged writes.
    #[default]
    EverySec,
    /// `"no"`: never fsync; the kernel writes the log back when it likes.
    No,
}

/// `[persistence]`; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersistenceConfig {
    /// `mode`: `"off"` (the default) or `"aof"`.
    pub mode: PersistenceMode,
    /// `fsync`: `"always"`, `"everysec"` (the default) or `"no"`.
    pub fsync: FsyncPolicy,
    /// `dir`: the directory holding the shards' logs (created when missing). Default
    /// `"nexus-data"`, relative to the working directory.
    pub dir: String,
    /// `rewrite_min_size`: a shard's log is not compacted before it reaches this many bytes.
    /// Default 64 MiB.
    pub rewrite_min_size: u64,
    /// `rewrite_growth`: a log is compacted once it is this many times its size after the last
    /// compaction (and at least `rewrite_min_size`). Default 2.
    pub rewrite_growth: u64,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        Self {
            mode: PersistenceMode::Off,
            fsync: FsyncPolicy::EverySec,
            dir: "nexus-data".to_owned(),
            rewrite_min_size: 64 * 1024 * 1024,
            rewrite_growth: 2,
        }
    }
}

impl PersistenceConfig {
    /// The first problem as `(key, message, hint)`.
    pub fn check(&self) -> Result<(), (&'static str, String, String)> {
        if self.mode == PersistenceMode::Aof && self.dir.is_empty() {
            return Err((
                "persistence.dir",
                "dir = \"\" names no directory for the logs".into(),
                "use a directory such as \"nexus-data\"".into(),
            ));
        }
        if self.rewrite_min_size < 1024 * 1024 {
            return Err((
                "persistence.rewrite_min_size",
                format!("rewrite_min_size = {} would compact the log all the time", self.rewrite_min_size),
                "use at least 1048576 (1 MiB), such as 67108864 (64 MiB)".into(),
            ));
        }
        if self.rewrite_growth == 0 {
            return Err((
                "persistence.rewrite_growth",
                "rewrite_growth = 0 would compact the log all the time".into(),
                "use a factor of at least 1, such as 2".into(),
            ));
        }
        Ok(())
    }
}
