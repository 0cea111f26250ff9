//! Durability for the RESP server: an append-only log per shard (`[persistence] mode = "aof"`).
//!
//! - `record`: the records (a key's resulting state, its removal, a flush), framed with length
//!   and CRC-32C (`crc`);
//! - `journal`: the shard's side, attached to its `KvStore`: encodes each mutation, numbers it
//!   (LSN) and hands buffers to the writer; it also carries a running compaction's new log;
//! - `writer`: the per-shard log-writer thread of a threads shard (write, fsync per policy,
//!   rename on compaction), which publishes the written and durable LSNs and notifies the shard;
//! - `ring`: the same on a glommio shard, as a task on the shard's executor writing through
//!   io_uring (direct I/O and io_uring's fdatasync);
//! - `durability`: the shard-local handle on the durable LSN (with a waiting future) and the
//!   replies a partition holds under `fsync = "always"`;
//! - `replay`: rebuilding the store at start (torn tails truncated, corruption refused);
//! - `info`: the figures INFO's `# Persistence` section reports;
//! - `open`: the directory (its shard count), opening a shard's log, the recovery summary.
//!
//! Invariant: with persistence off none of this exists (the store has no journal).

mod crc;
mod durability;
mod info;
mod journal;
mod open;
pub mod record;
mod replay;
mod ring;
mod writer;

#[cfg(test)]
mod ring_tests;
#[cfg(test)]
mod tests;

pub use durability::{Durability, HeldReplies, LogFailed, WaitDurable};
pub use info::{figures as aof_figures, info_section, FIGURES as AOF_FIGURES};
pub use journal::{Journal, RewritePolicy};
pub use open::{check_dir, log_path, open_shard, Recovery, ShardLog, WriterKind};
pub use replay::{replay_bytes, replay_file, Replayed};
pub use ring::{close as close_ring, RingInbox};
pub use writer::{LogShared, WriterCmd};

/// Keys a compaction dumps per step (one partition turn).
pub const DUMP_KEYS_PER_STEP: usize = 2048;

/// Why persistence could not start.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// A file or directory could not be read or written.
    #[error("append-only log: {path}: {source}; hint: check the path and its permissions ([persistence] dir)")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A bad record with valid bytes after it.
    #[error(
        "append-only log {path} is corrupt at offset {offset} of {size} bytes (not at its end); refusing to start; \
         hint: restore it from a backup, or move it away to start without its keys"
    )]
    Corrupt {
        /// The log.
        path: String,
        /// Where the bad record starts.
        offset: u64,
        /// The log's size.
        size: u64,
    },
    /// The directory holds the logs of another shard count.
    #[error(
        "[persistence] dir {dir} holds the logs of {found} shards but this server runs {shards}; \
         hint: run with [placement] shards = {found}, or use another dir"
    )]
    ShardCount {
        /// The directory.
        dir: String,
        /// The shard count its logs were written with.
        found: usize,
        /// The shard count now.
        shards: usize,
    },
}
