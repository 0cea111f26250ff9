//! Opening persistence: the directory (which records the shard count it was written with), a
//! shard's log (replayed, then appended to by a fresh writer: a thread, or an io_uring task on
//! a glommio shard), and the one-line recovery summary `nexus run` prints.
//!
//! Invariants: a directory is used only with the shard count it records in `shards` (keys are
//! placed by shard count, so another count would put them on the wrong shards); a shard serves
//! only after its log replayed whole.

use super::durability::Durability;
use super::journal::{Journal, RewritePolicy, Sink};
use super::replay::{replay_file, Replayed};
use super::ring::RingInbox;
use super::writer::{self, LogShared};
use super::PersistError;
use crate::kv::KvStore;
use nexus_engine::config::PersistenceConfig;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The file in a log directory that records its shard count.
const SHARDS_FILE: &str = "shards";

/// Shard `shard`'s log in `dir`.
pub fn log_path(dir: &Path, shard: usize) -> PathBuf {
    dir.join(format!("shard-{shard}.aof"))
}

/// Creates `dir` if needed and checks (or records) that its logs are for `shards` shards.
pub fn check_dir(dir: &Path, shards: usize) -> Result<(), PersistError> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| PersistError::Io { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let meta = dir.join(SHARDS_FILE);
    let mismatch = |found| PersistError::ShardCount { dir: dir.display().to_string(), found, shards };
    match std::fs::read_to_string(&meta) {
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(found) if found == shards => Ok(()),
            Ok(found) => Err(mismatch(found)),
            Err(_) => Err(PersistError::Io {
                path: meta.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not a shard count"),
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Logs without the record: the highest shard index tells the count they need.
            let highest = std::fs::read_dir(dir)
                .map_err(io(dir))?
                .filter_map(|e| {
                    e.ok()?.file_name().to_str()?.strip_prefix("shard-")?.strip_suffix(".aof")?.parse().ok()
                })
                .max();
            if let Some(h) = highest.filter(|h: &usize| *h >= shards) {
                return Err(mismatch(h + 1));
            }
            std::fs::write(&meta, format!("{shards}\n")).map_err(io(&meta))
        }
        Err(e) => Err(io(&meta)(e)),
    }
}

/// The writer a shard's log gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriterKind {
    /// A plain thread beside the shard (`write` and `fdatasync`): the threads executor, under
    /// `fsync = "everysec"` or `"no"`.
    Thread,
    /// The same writes and syncs on the shard's own thread: the threads executor under
    /// `fsync = "always"`, where the answers wait for the sync anyway (see `writer`).
    Shard,
    /// A task on the shard's glommio executor, on io_uring (`ring`): register its
    /// [`ShardLog::ring`] close with `ShardSetup::on_stop`.
    Ring,
}

/// A shard's store rebuilt from its log, with the journal attached.
pub struct ShardLog {
    /// The store.
    pub kv: KvStore,
    /// The shard's durability handle.
    pub durability: Rc<Durability>,
    /// What the replay did.
    pub replayed: Replayed,
    /// The io_uring writer's inbox (with [`WriterKind::Ring`]), for [`super::ring::close`].
    pub ring: Option<Rc<RingInbox>>,
}

/// Replays shard `shard`'s log into a new store and starts its writer of kind `writer`;
/// `clocks` are the engine and wall clocks now (ms). Call [`check_dir`] first; a
/// [`WriterKind::Ring`] writer needs the calling thread to run a glommio executor.
pub fn open_shard(
    config: &PersistenceConfig,
    shard: usize,
    clocks: (u64, u64),
    writer: WriterKind,
) -> Result<ShardLog, PersistError> {
    let path = log_path(Path::new(&config.dir), shard);
    let io = |source| PersistError::Io { path: path.display().to_string(), source };
    let mut kv = KvStore::new();
    let replayed = replay_file(&path, &mut kv, clocks)?;
    let _ = std::fs::remove_file(writer::rewrite_path(&path));
    let shared = Arc::new(LogShared::default());
    let durability = Durability::new(shared.clone());
    let file = writer::open_log(&path).map_err(io)?;
    let (sink, ring) = match writer {
        WriterKind::Thread => {
            let (tx, rx) = std::sync::mpsc::channel();
            let start = (replayed.records, replayed.bytes);
            let thread = writer::spawn(path.clone(), file, config.fsync, shared.clone(), rx, start).map_err(io)?;
            (Sink::Thread(Some(tx), Some(thread)), None)
        }
        WriterKind::Shard => {
            let start = (replayed.records, replayed.bytes);
            let writer = writer::Writer::new(path.clone(), file, config.fsync, shared.clone(), start).map_err(io)?;
            (Sink::Shard(Box::new(writer)), None)
        }
        WriterKind::Ring => {
            // The task opens it again for direct I/O; it exists from here on either way.
            drop(file);
            let positions = (replayed.bytes, replayed.records);
            let inbox = super::ring::spawn(path.clone(), positions, config.fsync, shared.clone(), durability.clone());
            (Sink::Ring(inbox.clone()), Some(inbox))
        }
    };
    let policy = RewritePolicy { min_size: config.rewrite_min_size, growth: config.rewrite_growth.max(1) };
    kv.attach_journal(Journal::new(sink, shared, (replayed.records, replayed.bytes), config.fsync, policy));
    Ok(ShardLog { kv, durability, replayed, ring })
}

/// Every shard's replay, summed for the one line `nexus run` prints.
#[derive(Debug, Default)]
pub struct Recovery {
    inner: Mutex<RecoverySums>,
}

#[derive(Debug, Default)]
struct RecoverySums {
    keys: u64,
    logs: u64,
    slowest: Duration,
}

impl Recovery {
    /// Adds one shard's replay: the live keys it recovered, whether it had a non-empty log,
    /// and how long it took.
    pub fn add(&self, keys: u64, had_log: bool, took: Duration) {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        s.keys += keys;
        s.logs += u64::from(had_log);
        s.slowest = s.slowest.max(took);
    }

    /// "recovered N keys from M logs in S s" (the shards replay side by side: S is the slowest).
    pub fn summary(&self) -> String {
        let s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        format!("recovered {} keys from {} logs in {:.2} s", s.keys, s.logs, s.slowest.as_secs_f64())
    }
}
