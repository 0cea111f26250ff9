//! The log writer of a threads shard: a thread per shard, outside the shards, so no shard ever
//! waits on disk (a glommio shard writes through io_uring instead: `ring`). Under
//! `fsync = "always"` the shard drives the same [`Writer`] on its own thread instead
//! ([`Writer::commit`]): its answers wait for the sync anyway, and a hand-over to a thread and
//! the thread's notice back cost two thread wake-ups per group commit (30-50 us each on a VM,
//! against a 120 us `fdatasync`).
//!
//! The shard hands it buffers of encoded records ([`WriterCmd::Append`]) over a channel; it
//! writes them with plain positioned writes (`pwrite(2)`; no io_uring: one large write per
//! batch leaves little for it to save), then publishes the LSNs it wrote and made durable in
//! [`LogShared`] and calls the shard's notifier. Zeros are written ahead of the records, a
//! chunk at a time ([`PREALLOCATE`], as the io_uring task does), so a record write only
//! overwrites blocks: its `fdatasync(2)` flushes data, not a change of the file's size (on ext4
//! a journal commit; replay cuts the zeros off as padding). Everything queued when it wakes is
//! written before one sync: group commit, so `always` costs one fsync per batch, not per write.
//! Under `everysec` it syncs when a second has passed since the last sync (waking on its own
//! for it), under `no` never. Under those two it also takes at most one batch per [`PACE`]: it
//! stays busy that long after a batch, so a loaded shard gathers its records for up to 2 ms
//! instead of handing over (and hearing back) once per client read, which cost a thread
//! wake-up and a shard notice per read. Under `always` a batch goes as soon as it comes:
//! there the answers wait for it.
//!
//! Compaction ([`WriterCmd::StartRewrite`] .. [`WriterCmd::FinishRewrite`]): meanwhile each
//! append also carries the bytes for the new log, which go to `<log>.rewrite`; finishing syncs
//! it, renames it over the log (atomic), syncs the directory and goes on appending to it.
//!
//! Written buffers go back to the shard ([`LogShared::spare`]), so a hand-over allocates
//! nothing. The shard is notified after a batch under `always` (its held answers wait for the
//! sync), and under `everysec` and `no` only when it asked ([`LogShared::wanted`]: it holds
//! records back until the writer is idle); a notice nobody needs costs the shard a wake-up.
//!
//! Driven by the shard, a rewrite's new log is synced whenever [`REWRITE_SYNC_BYTES`] were
//! written to it unsynced, so the sync that finishes a rewrite, on the shard's thread, is short.
//!
//! Invariants: `durable <= written`, both only grow; a shard that holds back its buffer while
//! the writer is busy always hears when it is free; a failed write or sync sets `failed` for
//! good (the log may have a hole) and is logged.

use super::ring::PREALLOCATE;
use nexus_engine::config::FsyncPolicy;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Under `everysec` and `no`, the least time from one batch to the next (see the module docs).
pub const PACE: Duration = Duration::from_millis(2);

/// A rewrite's new log driven by the shard is synced once this much was written to it unsynced.
pub const REWRITE_SYNC_BYTES: u64 = 1 << 20;

/// Written buffers up to this capacity go back to the shard for reuse; larger ones are freed.
const SPARE_MAX_CAPACITY: usize = 4 << 20;

/// At most this many spare buffers wait for the shard: a glommio shard's log task writes every
/// 10 ms (`ring::PACE`), by when a shard at a million writes a second has filled about seven
/// 64 KiB buffers; with fewer spares, each batch allocated the rest afresh.
const SPARES: usize = 16;

/// What the shard asks of its writer.
#[derive(Debug)]
pub enum WriterCmd {
    /// Append `main` to the log (and `rewrite` to the log being rewritten); `lsn` is the last
    /// record's.
    Append {
        /// Records for the current log.
        main: Vec<u8>,
        /// Records for the new log, while a rewrite runs.
        rewrite: Vec<u8>,
        /// The LSN of the last record in `main`.
        lsn: u64,
    },
    /// Start a new log beside the current one.
    StartRewrite,
    /// The new log is complete: make it the log.
    FinishRewrite,
}

/// What the writer publishes to its shard (and to INFO-like readers).
#[derive(Default)]
pub struct LogShared {
    /// The last LSN written to the file.
    pub written: AtomicU64,
    /// The last LSN covered by an fsync (under `no`: written).
    pub durable: AtomicU64,
    /// The writer has nothing queued (the shard may hand it a buffer now).
    pub idle: AtomicBool,
    /// A write, sync or rewrite failed.
    pub failed: AtomicBool,
    /// The shard holds records back until the writer is idle: the next batch must notify it
    /// (under `everysec` and `no` nothing else needs a notice).
    pub wanted: AtomicBool,
    /// Written buffers, emptied, for the shard to fill again (no allocation per hand-over).
    pub spare: Mutex<Vec<Vec<u8>>>,
    /// Rewrites completed.
    pub rewrites: AtomicU64,
    /// Called after every batch (the shard's wake-up; set once the shard's agent exists).
    pub notify: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for LogShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogShared")
            .field("written", &self.written.load(Ordering::Relaxed))
            .field("durable", &self.durable.load(Ordering::Relaxed))
            .field("failed", &self.failed.load(Ordering::Relaxed))
            .finish()
    }
}

impl LogShared {
    /// Starts at a log whose last record is `lsn`, all of it durable, the writer idle.
    pub(super) fn start_at(&self, lsn: u64) {
        self.written.store(lsn, Ordering::Release);
        self.durable.store(lsn, Ordering::Release);
        self.idle.store(true, Ordering::Release);
    }

    /// After a batch: `lsn` is written (and durable when `synced`), and the writer is idle.
    /// `idle` is sequentially consistent, paired with `wanted` (see `Writer::publish`).
    pub(super) fn published(&self, lsn: u64, synced: bool) {
        self.written.store(lsn, Ordering::Release);
        if synced {
            self.durable.fetch_max(lsn, Ordering::AcqRel);
        }
        self.idle.store(true, Ordering::SeqCst);
    }

    /// Marks the log failed for good, logging the first failure (of the log at `path`).
    pub(super) fn fail(&self, path: &Path, what: &str, e: &std::io::Error) {
        if !self.failed.swap(true, Ordering::AcqRel) {
            tracing::error!("append-only log {}: {what} failed: {e}", path.display());
        }
    }
}

/// A log's writer: the thread's state, or the shard's own under `always`; see the module
/// documentation.
pub struct Writer {
    path: PathBuf,
    file: File,
    /// The byte after the last record, and the file's length (zeros after `end`).
    end: u64,
    allocated: u64,
    /// One chunk of zeros, once the log first grows.
    zeros: Vec<u8>,
    rewrite: Option<File>,
    /// Bytes written to the rewrite's new log since its last sync.
    rewrite_unsynced: u64,
    policy: FsyncPolicy,
    shared: Arc<LogShared>,
    /// The last LSN written, and whether bytes were written since the last sync.
    lsn: u64,
    dirty: bool,
    last_sync: Instant,
}

/// Opens the log at `path` for the writer's positioned writes (never `O_APPEND`, whose writes
/// ignore the position).
pub fn open_log(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(path)
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("path", &self.path).field("end", &self.end).field("lsn", &self.lsn).finish()
    }
}

/// Starts the writer thread of the log at `path`, opened with [`open_log`] as `file`, whose
/// records end at byte `start.1` with LSN `start.0`.
pub fn spawn(
    path: PathBuf,
    file: File,
    policy: FsyncPolicy,
    shared: Arc<LogShared>,
    rx: Receiver<WriterCmd>,
    start: (u64, u64),
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let name = format!("nexus-aof-{}", path.file_stem().and_then(|s| s.to_str()).unwrap_or("log"));
    let writer = Writer::new(path, file, policy, shared, start)?;
    // Off the shard's CPU: the shard starts it, and would otherwise hand it its own pin.
    crate::off_shard::spawn(name, move || writer.run(rx))
}

impl Writer {
    /// The writer of the log at `path`, opened with [`open_log`] as `file`, whose records end
    /// at byte `end` with LSN `start_lsn`; it publishes to `shared`.
    pub(super) fn new(
        path: PathBuf,
        file: File,
        policy: FsyncPolicy,
        shared: Arc<LogShared>,
        (start_lsn, end): (u64, u64),
    ) -> std::io::Result<Self> {
        shared.start_at(start_lsn);
        let allocated = file.metadata()?.len().max(end);
        Ok(Writer {
            path,
            file,
            end,
            allocated,
            zeros: Vec::new(),
            rewrite: None,
            rewrite_unsynced: 0,
            policy,
            shared,
            lsn: start_lsn,
            dirty: false,
            last_sync: Instant::now(),
        })
    }

    /// On the shard's thread: writes `main` (and `rewrite` to a running rewrite's new log),
    /// whose last record is `lsn`, syncs, and publishes both LSNs (no notice: the caller is the
    /// shard). The new log is synced too once [`REWRITE_SYNC_BYTES`] wait in it.
    pub(super) fn commit(&mut self, main: &[u8], rewrite: &[u8], lsn: u64) {
        self.write_records(main, rewrite, lsn);
        self.sync();
        if self.rewrite_unsynced >= REWRITE_SYNC_BYTES {
            if let Some(Err(e)) = self.rewrite.as_ref().map(File::sync_data) {
                self.fail("fdatasync of the rewritten log", &e);
                self.rewrite = None;
            }
            self.rewrite_unsynced = 0;
        }
        self.publish(false);
    }

    /// On the shard's thread: starts or finishes a rewrite ([`WriterCmd::StartRewrite`],
    /// [`WriterCmd::FinishRewrite`]; an append goes through [`Writer::commit`]).
    pub(super) fn command(&mut self, cmd: WriterCmd) {
        self.apply(cmd);
        self.publish(false);
    }

    fn run(mut self, rx: Receiver<WriterCmd>) {
        loop {
            let wait = Duration::from_secs(1).saturating_sub(self.last_sync.elapsed()).max(Duration::from_millis(10));
            match rx.recv_timeout(wait) {
                Ok(cmd) => {
                    let started = Instant::now();
                    self.apply(cmd);
                    while let Ok(cmd) = rx.try_recv() {
                        self.apply(cmd);
                    }
                    if self.policy != FsyncPolicy::Always {
                        std::thread::sleep(PACE.saturating_sub(started.elapsed()));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // The shard is stopping: make what it wrote durable whatever the policy (it
                    // waits for this thread; nobody listens for a notice any more).
                    self.sync();
                    self.publish(false);
                    return;
                }
            }
            let due = match self.policy {
                FsyncPolicy::Always => true,
                FsyncPolicy::EverySec => self.last_sync.elapsed() >= Duration::from_secs(1),
                FsyncPolicy::No => false,
            };
            if due {
                self.sync();
            }
            self.publish(true);
        }
    }

    /// Publishes the LSNs, marks the writer idle and (`notify`) wakes the shard: always under
    /// `always` (held answers wait for the durable LSN), otherwise only when the shard holds
    /// records back (`wanted`). `idle` and `wanted` are sequentially consistent on both sides:
    /// either the shard sees the writer idle and hands over, or the writer sees it wanted.
    fn publish(&mut self, notify: bool) {
        self.shared.published(self.lsn, self.policy == FsyncPolicy::No || !self.dirty);
        let wanted = self.shared.wanted.swap(false, Ordering::SeqCst);
        let notify = notify && (wanted || self.policy == FsyncPolicy::Always);
        if let Some(wake) = self.shared.notify.get().filter(|_| notify) {
            wake();
        }
    }

    fn fail(&self, what: &str, e: &std::io::Error) {
        self.shared.fail(&self.path, what, e);
    }

    fn sync(&mut self) {
        if !self.dirty {
            return;
        }
        match self.file.sync_data() {
            Ok(()) => {
                self.dirty = false;
                self.last_sync = Instant::now();
            }
            Err(e) => self.fail("fdatasync", &e),
        }
    }

    fn apply(&mut self, cmd: WriterCmd) {
        match cmd {
            WriterCmd::Append { main, rewrite, lsn } => {
                self.write_records(&main, &rewrite, lsn);
                give_back(&self.shared, main);
                give_back(&self.shared, rewrite);
            }
            WriterCmd::StartRewrite => match File::create(rewrite_path(&self.path)) {
                Ok(f) => {
                    self.rewrite = Some(f);
                    self.rewrite_unsynced = 0;
                }
                Err(e) => self.fail("creating the rewritten log", &e),
            },
            WriterCmd::FinishRewrite => self.finish_rewrite(),
        }
    }

    /// Writes `main` to the log and `rewrite` to a running rewrite's new log; `lsn` is the last
    /// record's. A failed write marks the log failed (and abandons the rewrite).
    fn write_records(&mut self, main: &[u8], rewrite: &[u8], lsn: u64) {
        if let Err(e) = self.append(main) {
            self.fail("write", &e);
            return;
        }
        if let Some(r) = &mut self.rewrite {
            if let Err(e) = r.write_all(rewrite) {
                self.fail("write of the rewritten log", &e);
                self.rewrite = None;
            }
            self.rewrite_unsynced += rewrite.len() as u64;
        }
        self.lsn = lsn;
        self.dirty |= !main.is_empty();
    }

    /// Writes `records` at the log's end, after writing zeros ahead when they reach past the
    /// file's length (see [`PREALLOCATE`]).
    fn append(&mut self, records: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        if records.is_empty() {
            return Ok(());
        }
        let end = self.end + records.len() as u64;
        while end > self.allocated {
            if self.zeros.is_empty() {
                self.zeros = vec![0; PREALLOCATE as usize];
            }
            // Up to the next whole chunk, so the file's length stays a multiple of one.
            let to = (self.allocated / PREALLOCATE + 1) * PREALLOCATE;
            self.file.write_all_at(&self.zeros[..(to - self.allocated) as usize], self.allocated)?;
            self.allocated = to;
        }
        self.file.write_all_at(records, self.end)?;
        self.end = end;
        Ok(())
    }

    /// Syncs the new log, renames it over the log and appends to it from now on.
    fn finish_rewrite(&mut self) {
        let Some(new) = self.rewrite.take() else { return };
        let tmp = rewrite_path(&self.path);
        let switched =
            new.sync_data().and_then(|()| std::fs::rename(&tmp, &self.path)).and_then(|()| sync_dir(&self.path));
        match switched {
            Ok(()) => {
                // Everything written so far is in the new, synced log, which ends at its length.
                match new.metadata() {
                    Ok(meta) => (self.end, self.allocated) = (meta.len(), meta.len()),
                    Err(e) => self.fail("reading the rewritten log's length", &e),
                }
                close_elsewhere(std::mem::replace(&mut self.file, new));
                self.dirty = false;
                self.last_sync = Instant::now();
                self.shared.durable.fetch_max(self.lsn, Ordering::AcqRel);
                self.shared.rewrites.fetch_add(1, Ordering::Relaxed);
                tracing::info!("append-only log {} rewritten", self.path.display());
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!("append-only log {}: rewrite abandoned: {e}", self.path.display());
            }
        }
    }
}

/// Closes a log that a compaction replaced, on a thread of its own. Renamed over, the old log
/// is named nowhere, so its last close frees its blocks, and ext4 does that inside the close:
/// 16-18 ms for a 64 MiB log on this VM, nearly all of it waiting on the filesystem (the
/// closing thread used 0.5-1 ms of CPU), during which a shard that closed it served nothing.
/// When no thread can be started, the file is closed here.
pub(super) fn close_elsewhere(file: File) {
    // When the spawn fails, the closure, and the file with it, is dropped here.
    let _ = crate::off_shard::spawn("nexus-log-close".into(), move || drop(file));
}

/// Gives a written buffer back to the shard, emptied, unless it is large or enough wait.
pub(super) fn give_back(shared: &LogShared, mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > SPARE_MAX_CAPACITY {
        return;
    }
    buf.clear();
    if let Ok(mut spare) = shared.spare.lock() {
        if spare.len() < SPARES {
            spare.push(buf);
        }
    }
}

/// Where a log's rewrite is built.
pub fn rewrite_path(log: &Path) -> PathBuf {
    let mut p = log.as_os_str().to_owned();
    p.push(".rewrite");
    PathBuf::from(p)
}

/// Syncs the directory holding `path`, so a rename in it is durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    File::open(log_dir(path))?.sync_all()
}

/// The directory holding the log at `path` (where a rename must be synced).
pub(super) fn log_dir(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}
