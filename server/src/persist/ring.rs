//! The log writer on glommio: a task on the shard's own executor that appends through io_uring
//! (glommio's `DmaFile`, `O_DIRECT` where the filesystem has it) and syncs with io_uring's
//! `fdatasync`. A glommio shard with `[persistence] mode = "aof"` thus has no writer thread and
//! no cross-thread hand-over: the journal queues its buffers in the [`RingInbox`]; the task
//! writes everything queued as one write when it runs (group commit: what arrives while a write
//! or sync is in flight goes in the next one), syncs per the fsync policy, publishes the LSNs
//! in [`LogShared`] and wakes the shard's waiters itself. Under `fsync = "always"` the file is
//! opened `O_DSYNC`: each write is durable when it completes (a FUA write on devices that have
//! it), one operation where a write and an `fdatasync` were two (measured: 65k against 49k
//! SET/s at `-P 1`).
//!
//! Direct I/O writes whole aligned blocks, so the task keeps the log's last partial block and
//! writes it again in front of the next records, zero-padded to the block's end. And it writes
//! zeros ahead of the records ([`PREALLOCATE`]), so that a write overwrites blocks and changes
//! no metadata. Until the log is closed the file thus ends in zeros after its last record;
//! replay reads zeros after the last record as that padding, and a clean close truncates them.
//!
//! Flushes that find the task's last append still queued add their records to it
//! ([`RingInbox::merge`]), and the task writes every batch from one reused DMA buffer (and
//! its zero-fill from one buffer of zeros, shared with the log a compaction writes): the write
//! path allocates nothing once warm. A compaction's new log takes over the old one's records
//! buffer when it becomes the log, so a compaction does not hand the shard fresh pages to fault
//! in every time (page faults of a shard under `everysec` at SET `-P 16`: about 410 a second
//! before, 8 to 73 after; its throughput did not change measurably).
//!
//! The shard's stop awaits [`close`] (registered with `ShardSetup::on_stop`): the task writes
//! and syncs what is queued, truncates the padding and ends. Records that come after (a
//! connection still running while the shard stops) go through [`RingInbox::send`]'s fallback,
//! a plain `pwrite` and `fdatasync` on the shard's thread.
//!
//! Invariants: at most one write or sync is in flight (the task awaits each), and while one is
//! (`in_flight`) nothing else writes the file; `end` is the byte after the last record written;
//! every block below `end` holds the records exactly, the block at `end` holds them then zeros;
//! once `ended` is set the task never touches the file again.

use super::durability::Durability;
use super::writer::{close_elsewhere, give_back, log_dir, rewrite_path, LogShared, WriterCmd};
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};
use nexus_engine::config::FsyncPolicy;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// The least alignment of the task's writes. The device's (often 512 bytes) is enough for
/// direct I/O, but a write that does not cover whole filesystem blocks makes ext4 serialize it
/// and zero the block's rest, and io_uring hands it to a worker thread: measured 3.8 ms a write
/// at 512-byte alignment against 0.1 ms at 4 KiB.
const FS_BLOCK: u64 = 4096;

/// How far ahead of the records the task zero-fills the log. A direct write that extends the
/// file (or fills a hole) changes its metadata, which ext4 cannot do without blocking: io_uring
/// hands such a write to a worker thread, whose completion reached the parked shard 4 ms late
/// (p90 3.8 ms a write, against 0.37 ms for overwrites). Writing into zeroed blocks is a pure
/// overwrite, and `fdatasync` then flushes data only, except once per chunk. The writer thread
/// of a threads shard zero-fills by the same chunk.
pub(super) const PREALLOCATE: u64 = 1 << 20;

/// The least capacity of a records buffer (grown to the next power of two past a batch).
const SPARE_DMA_MIN: usize = 64 << 10;

/// The most one records write carries, its partial first block included: a larger batch (a
/// compaction's dump, about 4.7 MB for 100,000 keys) goes out as several writes from the one
/// reused buffer. So that buffer never grows past this and is always kept: a buffer sized for a
/// whole dump (8 MiB) was allocated afresh at every compaction and freed after it, and the
/// kernel cleared its pages (huge pages, `clear_page_erms`) on the shard, 0.6% of its samples
/// under `everysec` at INCR `-P 16`. Reusing the buffer also keeps the allocator from handing
/// the shard fresh pages to fault in and clear on every write: clearing them took 10% of the
/// shard's time under `everysec` at `-P 16` before buffers were reused.
const WRITE_MAX: usize = 1 << 20;

/// Under `everysec` and `no`, the least time from one batch to the next: nobody waits for
/// those writes, so a loaded shard gathers its records and writes them a few times a second
/// instead of once per client read. Longer than the writer thread's (`writer::PACE`, 2 ms)
/// because here each write's submission runs on the shard: on a VM each direct write ends in
/// a doorbell write to the virtual disk (`iowrite16`, a trap to the hypervisor), which took
/// 1.3% of the shard's samples at 2 ms and 0.5% at 10 ms (INCR `-P 16`, about 460 against
/// 100 block requests a second). 10 ms of records at a million writes a second is about
/// 450 KiB, one write from the reused buffer ([`WRITE_MAX`]), and far inside `everysec`'s
/// second.
const PACE: Duration = Duration::from_millis(10);

/// The longest the shard's stop waits for the task to write, sync and close the log.
const CLOSE_LIMIT: Duration = Duration::from_secs(8);

/// What the journal and the log task share; see the module documentation.
#[derive(Debug)]
pub struct RingInbox {
    queue: RefCell<VecDeque<WriterCmd>>,
    /// The task's waker, while it waits for commands.
    task: RefCell<Option<Waker>>,
    /// `close`'s waker, while it waits for the task to end.
    closer: RefCell<Option<Waker>>,
    closing: Cell<bool>,
    ended: Cell<bool>,
    in_flight: Cell<bool>,
    path: PathBuf,
    /// The byte after the last record in the file.
    end: Cell<u64>,
    shared: Arc<LogShared>,
}

impl RingInbox {
    /// Queues `cmd` for the task, or writes it at once when the task has ended.
    pub fn send(&self, cmd: WriterCmd) {
        if self.ended.get() {
            self.fallback(cmd);
            return;
        }
        self.queue.borrow_mut().push_back(cmd);
        if let Some(w) = self.task.borrow_mut().take() {
            w.wake();
        }
    }

    /// Appends `main` and `rewrite` (emptied, their capacity kept) to the last queued
    /// `Append`, whose last record becomes `lsn`, if the task has not taken it yet and its
    /// buffers have room: a shard that flushes after every client read then hands over one
    /// buffer per batch instead of one per read (each a fresh allocation once the few spares
    /// are used). A full one is never grown: growing a large buffer moved it to fresh pages,
    /// which the shard faulted in and cleared (1.4% of its time under `everysec` at `-P 16`);
    /// the caller queues another append, and the task writes consecutive appends as one write.
    /// Whether it merged.
    pub fn merge(&self, main: &mut Vec<u8>, rewrite: Option<&mut Vec<u8>>, lsn: u64) -> bool {
        if self.ended.get() {
            return false;
        }
        let mut queue = self.queue.borrow_mut();
        let Some(WriterCmd::Append { main: queued, rewrite: queued_rewrite, lsn: last }) = queue.back_mut() else {
            return false;
        };
        let room = |queued: &Vec<u8>, more: usize| queued.capacity() - queued.len() >= more;
        if !room(queued, main.len()) || !rewrite.as_ref().map_or(true, |r| room(queued_rewrite, r.len())) {
            return false;
        }
        queued.extend_from_slice(main);
        main.clear();
        if let Some(r) = rewrite {
            queued_rewrite.extend_from_slice(r);
            r.clear();
        }
        *last = lsn;
        true
    }

    /// Commands queued for the task (the tests' view of merging).
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.queue.borrow().len()
    }

    /// The journal is being dropped: writes what is still queued with plain calls if the task
    /// has nothing in flight (else it cannot be waited for here, and is reported).
    pub fn abandon(&self) {
        if self.ended.get() {
            return;
        }
        if self.in_flight.get() {
            tracing::error!(
                "append-only log {}: dropped with a write in flight (the shard stopped without closing it); \
                 its last records may be lost",
                self.path.display()
            );
            return;
        }
        self.end_task();
    }

    /// Marks the task ended (it never touches the file again) and writes what is still
    /// queued through the fallback.
    fn end_task(&self) {
        self.ended.set(true);
        let queued: Vec<WriterCmd> = self.queue.borrow_mut().drain(..).collect();
        for cmd in queued {
            self.fallback(cmd);
        }
    }

    /// Writes `cmd`'s records at the log's end with `pwrite` and syncs them (the task has
    /// ended: nothing else writes the file). A rewrite then is abandoned.
    fn fallback(&self, cmd: WriterCmd) {
        let WriterCmd::Append { main, lsn, .. } = cmd else {
            let _ = std::fs::remove_file(rewrite_path(&self.path));
            return;
        };
        let end = self.end.get();
        let written = std::fs::OpenOptions::new().write(true).open(&self.path).and_then(|f| {
            f.write_all_at(&main, end)?;
            f.set_len(end + main.len() as u64)?;
            f.sync_data()
        });
        match written {
            Ok(()) => {
                self.end.set(end + main.len() as u64);
                self.shared.written.fetch_max(lsn, Ordering::AcqRel);
                self.shared.durable.fetch_max(lsn, Ordering::AcqRel);
            }
            Err(e) => self.shared.fail(&self.path, "write", &e),
        }
    }
}

/// Opens the log at `path` (whose records end at `end`, the LSN of the last being `lsn`) and
/// spawns its task on the calling glommio shard; the journal feeds the returned inbox.
pub fn spawn(
    path: PathBuf,
    (end, lsn): (u64, u64),
    policy: FsyncPolicy,
    shared: Arc<LogShared>,
    durability: Rc<Durability>,
) -> Rc<RingInbox> {
    shared.start_at(lsn);
    let inbox = Rc::new(RingInbox {
        queue: RefCell::new(VecDeque::new()),
        task: RefCell::new(None),
        closer: RefCell::new(None),
        closing: Cell::new(false),
        ended: Cell::new(false),
        in_flight: Cell::new(false),
        path,
        end: Cell::new(end),
        shared: shared.clone(),
    });
    let task = LogTask {
        inbox: inbox.clone(),
        shared,
        durability,
        policy,
        rewrite: None,
        lsn,
        dirty: false,
        last_sync: Instant::now(),
        last_batch: Instant::now(),
    };
    glommio::spawn_local(task.run()).detach();
    inbox
}

/// Closes the log: hands the task what `flush` hands over, waits until it wrote, synced and
/// truncated everything and ended (at most `CLOSE_LIMIT`, 8 s). For `ShardSetup::on_stop`.
pub async fn close(inbox: Rc<RingInbox>, flush: impl FnOnce()) {
    flush();
    inbox.closing.set(true);
    if let Some(w) = inbox.task.borrow_mut().take() {
        w.wake();
    }
    let ended = std::future::poll_fn(|cx| {
        if inbox.ended.get() {
            return Poll::Ready(true);
        }
        *inbox.closer.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    });
    let limit = async {
        glommio::timer::sleep(CLOSE_LIMIT).await;
        false
    };
    if !futures_lite::future::or(ended, limit).await {
        tracing::error!(
            "append-only log {}: not closed within {CLOSE_LIMIT:?}; its last records may be lost",
            inbox.path.display()
        );
    }
}

/// A file appended with aligned direct writes; see the module documentation.
struct Aligned {
    file: DmaFile,
    /// The byte after the last record.
    end: u64,
    /// The bytes of the last partial block (`end % align` of them).
    tail: Vec<u8>,
    align: u64,
    /// The file's size: blocks from the end's up to it are zeros, written ahead.
    allocated: u64,
    /// The buffer of the last record write, back for the next one (see [`WRITE_MAX`]).
    spare: Option<DmaBuffer>,
    /// [`PREALLOCATE`] zero bytes, written for every chunk ahead; never written to, so the
    /// log and the log a compaction writes share it.
    zeros: Option<Rc<DmaBuffer>>,
}

impl Aligned {
    /// Opens `path` (created if missing; emptied when `truncate`) to append after `end`.
    async fn open(path: &Path, end: u64, truncate: bool, dsync: bool) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(truncate)
            .custom_flags(if dsync { libc::O_DSYNC } else { 0 })
            .dma_open(path)
            .await
            .map_err(io::Error::from)?;
        let align = file.alignment().max(FS_BLOCK);
        let start = end - end % align;
        let tail = if end > start {
            file.read_at(start, (end - start) as usize).await.map_err(io::Error::from)?.to_vec()
        } else {
            Vec::new()
        };
        if tail.len() as u64 != end - start {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the log is shorter than its records"));
        }
        let allocated = file.file_size().await.map_err(io::Error::from)?;
        Ok(Self { file, end, tail, align, allocated, spare: None, zeros: None })
    }

    /// Zero-fills the file from its size to at least [`PREALLOCATE`] past `to` (see that
    /// constant), a whole chunk of `PREALLOCATE` bytes a write.
    async fn preallocate(&mut self, to: u64) -> io::Result<()> {
        let mut at = self.allocated.div_ceil(self.align) * self.align;
        let until = to + PREALLOCATE;
        while at < until {
            let zeros = self.zeros.get_or_insert_with(|| {
                let mut zeros = self.file.alloc_dma_buffer(PREALLOCATE as usize);
                zeros.as_bytes_mut().fill(0);
                Rc::new(zeros)
            });
            let zeros = zeros.clone();
            self.write_shared(zeros, at).await?;
            at += PREALLOCATE;
            self.allocated = at;
        }
        Ok(())
    }

    /// Hands this log's buffers to `new`, the log a compaction wrote, which replaces it: the
    /// larger records buffer, and the zeros.
    fn pass_buffers(&mut self, new: &mut Aligned) {
        let capacity = |b: &Option<DmaBuffer>| b.as_ref().map_or(0, DmaBuffer::capacity);
        if capacity(&self.spare) > capacity(&new.spare) {
            new.spare = self.spare.take();
        }
        if new.zeros.is_none() {
            new.zeros = self.zeros.take();
        }
    }

    /// A buffer of `size` bytes for records: the spare if it is large enough.
    fn buffer(&mut self, size: usize) -> DmaBuffer {
        let mut buf = match self.spare.take() {
            Some(buf) if buf.capacity() >= size => buf,
            _ => self.file.alloc_dma_buffer(size.next_power_of_two().max(SPARE_DMA_MIN)),
        };
        buf.set_len(size);
        buf
    }

    /// Appends `parts` with aligned writes of at most [`WRITE_MAX`] bytes each (one, but for a
    /// compaction's dump): the partial block, the records, zeros.
    async fn append(&mut self, parts: &[Vec<u8>]) -> io::Result<()> {
        let len: usize = parts.iter().map(Vec::len).sum();
        // The partial block in front is under one block, so a write stays within WRITE_MAX
        // (and a write carries at least a block, whatever the alignment).
        let most = WRITE_MAX.saturating_sub(self.align as usize).max(self.align as usize);
        let mut from = 0;
        while from < len {
            let n = (len - from).min(most);
            self.append_range(parts, from, n).await?;
            from += n;
        }
        Ok(())
    }

    /// Appends bytes `from..from + len` of the concatenation of `parts` with one aligned
    /// write: the partial block, those bytes, zeros.
    async fn append_range(&mut self, parts: &[Vec<u8>], from: usize, len: usize) -> io::Result<()> {
        let total = self.tail.len() + len;
        let size = (total as u64).div_ceil(self.align) * self.align;
        let mut buf = self.buffer(size as usize);
        let bytes = buf.as_bytes_mut();
        bytes[..self.tail.len()].copy_from_slice(&self.tail);
        copy_range(parts, from, &mut bytes[self.tail.len()..total]);
        bytes[total..].fill(0);
        let keep = (self.end + len as u64) % self.align;
        self.tail.clear();
        self.tail.extend_from_slice(&bytes[total - keep as usize..total]);
        let start = self.end - self.end % self.align;
        if start + size > self.allocated {
            self.preallocate(start + size).await?;
        }
        self.spare = self.write_whole(buf, start).await?;
        self.end += len as u64;
        Ok(())
    }

    /// Writes all of `buf` at `at` and hands the buffer back when the ring let go of it; a
    /// short write (a full disk) is an error.
    async fn write_whole(&self, buf: DmaBuffer, at: u64) -> io::Result<Option<DmaBuffer>> {
        let buf = Rc::new(buf);
        self.write_shared(buf.clone(), at).await?;
        Ok(Rc::try_unwrap(buf).ok())
    }

    /// Writes all of `buf`, which others may share (the zeros), at `at`; a short write (a full
    /// disk) is an error.
    async fn write_shared(&self, buf: Rc<DmaBuffer>, at: u64) -> io::Result<()> {
        let size = buf.len();
        let wrote = self.file.write_rc_at(buf, at).await.map_err(io::Error::from)?;
        if wrote < size {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short write (is the disk full?)"));
        }
        Ok(())
    }

    async fn sync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(io::Error::from)
    }

    /// Cuts the padding off, syncs and closes.
    async fn close(self) -> io::Result<()> {
        self.file.truncate(self.end).await.map_err(io::Error::from)?;
        self.sync().await?;
        self.file.close().await.map_err(io::Error::from)
    }
}

/// Copies bytes `from..from + out.len()` of the concatenation of `parts` into `out`.
pub(super) fn copy_range(parts: &[Vec<u8>], mut from: usize, out: &mut [u8]) {
    let mut at = 0;
    for part in parts {
        if at == out.len() {
            break;
        }
        if from >= part.len() {
            from -= part.len();
            continue;
        }
        let n = (part.len() - from).min(out.len() - at);
        out[at..at + n].copy_from_slice(&part[from..from + n]);
        at += n;
        from = 0;
    }
}

/// The task's state; see the module documentation.
struct LogTask {
    inbox: Rc<RingInbox>,
    shared: Arc<LogShared>,
    durability: Rc<Durability>,
    policy: FsyncPolicy,
    rewrite: Option<Aligned>,
    lsn: u64,
    dirty: bool,
    last_sync: Instant,
    /// When the last batch was taken (see [`PACE`]).
    last_batch: Instant,
}

impl LogTask {
    async fn run(mut self) {
        let path = self.inbox.path.clone();
        let dsync = self.policy == FsyncPolicy::Always;
        let opened = Aligned::open(&path, self.inbox.end.get(), false, dsync).await;
        let mut main = match opened {
            Ok(main) => Some(main),
            Err(e) => {
                // Degraded, not lost: every record goes through the plain fallback.
                tracing::warn!(
                    "append-only log {}: io_uring writer unavailable ({e}); writing with pwrite",
                    path.display()
                );
                None
            }
        };
        while let Some(log) = main.as_mut().filter(|_| !self.inbox.ended.get()) {
            let cmds = self.next_cmds().await;
            let closing = self.inbox.closing.get() && self.inbox.queue.borrow().is_empty();
            self.inbox.in_flight.set(true);
            self.apply(log, cmds).await;
            let due = match self.policy {
                FsyncPolicy::Always => true,
                FsyncPolicy::EverySec => self.last_sync.elapsed() >= Duration::from_secs(1),
                FsyncPolicy::No => false,
            };
            if dsync {
                // Each write was durable when it completed (O_DSYNC).
                self.dirty = false;
            } else if due || closing {
                self.sync(log).await;
            }
            self.inbox.end.set(log.end);
            self.inbox.in_flight.set(false);
            self.publish();
            if closing {
                break;
            }
        }
        if let Some(log) = main.take().filter(|_| !self.inbox.ended.get()) {
            self.inbox.in_flight.set(true);
            if let Err(e) = log.close().await {
                self.shared.fail(&path, "closing", &e);
            }
            self.inbox.in_flight.set(false);
        }
        if let Some(r) = self.rewrite.take() {
            let _ = r.file.close().await;
            let _ = std::fs::remove_file(rewrite_path(&path));
        }
        self.inbox.end_task();
        self.durability.wake();
        if let Some(w) = self.inbox.closer.borrow_mut().take() {
            w.wake();
        }
    }

    /// Waits for commands (or, under `everysec` with unsynced bytes, for the second to pass).
    async fn next_cmds(&mut self) -> Vec<WriterCmd> {
        let inbox = self.inbox.clone();
        let ready = std::future::poll_fn(move |cx| {
            if !inbox.queue.borrow().is_empty() || inbox.closing.get() || inbox.ended.get() {
                return Poll::Ready(());
            }
            *inbox.task.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        });
        if self.dirty && self.policy == FsyncPolicy::EverySec {
            let left = Duration::from_secs(1).saturating_sub(self.last_sync.elapsed());
            futures_lite::future::or(ready, glommio::timer::sleep(left)).await;
        } else {
            ready.await;
        }
        // Under everysec and no nobody waits for the write: gather for up to PACE since the
        // last batch, so a loaded shard writes a few large batches, not one per client read
        // (each direct write's submission costs the shard's CPU; measured 1.13x SET/s at -P 1).
        let paced = PACE.saturating_sub(self.last_batch.elapsed());
        if self.policy != FsyncPolicy::Always && !paced.is_zero() && !self.inbox.closing.get() {
            glommio::timer::sleep(paced).await;
        }
        self.last_batch = Instant::now();
        self.inbox.queue.borrow_mut().drain(..).collect()
    }

    /// Writes the commands' records, in order (consecutive appends as one write each file).
    async fn apply(&mut self, log: &mut Aligned, cmds: Vec<WriterCmd>) {
        let (mut mains, mut rewrites) = (Vec::new(), Vec::new());
        let mut batch_lsn = self.lsn;
        for cmd in cmds {
            match cmd {
                WriterCmd::Append { main, rewrite, lsn } => {
                    mains.push(main);
                    rewrites.push(rewrite);
                    batch_lsn = lsn;
                }
                other => {
                    self.write(log, &mut mains, &mut rewrites, batch_lsn).await;
                    match other {
                        WriterCmd::StartRewrite => self.start_rewrite(log).await,
                        _ => self.finish_rewrite(log).await,
                    }
                }
            }
        }
        self.write(log, &mut mains, &mut rewrites, batch_lsn).await;
    }

    /// Appends `mains` (and `rewrites` to a running rewrite's log); the last record is
    /// `batch_lsn`, which becomes the written LSN only if the write succeeded (a failed log
    /// publishes nothing further, so nothing after the failure is acknowledged).
    async fn write(
        &mut self,
        log: &mut Aligned,
        mains: &mut Vec<Vec<u8>>,
        rewrites: &mut Vec<Vec<u8>>,
        batch_lsn: u64,
    ) {
        let failed = self.shared.failed.load(Ordering::Acquire);
        if !failed {
            self.dirty |= mains.iter().any(|m| !m.is_empty());
            match log.append(mains).await {
                Ok(()) => self.lsn = batch_lsn,
                Err(e) => self.shared.fail(&self.inbox.path, "write", &e),
            }
            if let Some(r) = &mut self.rewrite {
                if let Err(e) = r.append(rewrites).await {
                    tracing::warn!("append-only log {}: rewrite abandoned: {e}", self.inbox.path.display());
                    self.rewrite = None;
                }
            }
        }
        for buf in mains.drain(..).chain(rewrites.drain(..)) {
            give_back(&self.shared, buf);
        }
    }

    async fn sync(&mut self, log: &Aligned) {
        if !self.dirty {
            return;
        }
        match log.sync().await {
            Ok(()) => {
                self.dirty = false;
                self.last_sync = Instant::now();
            }
            Err(e) => self.shared.fail(&self.inbox.path, "fdatasync", &e),
        }
    }

    async fn start_rewrite(&mut self, log: &Aligned) {
        // Opened as the log is: it becomes the log when the rewrite finishes, and under
        // `always` the task no longer syncs after a write (O_DSYNC made it durable).
        let dsync = self.policy == FsyncPolicy::Always;
        match Aligned::open(&rewrite_path(&self.inbox.path), 0, true, dsync).await {
            Ok(mut r) => {
                r.zeros = log.zeros.clone();
                self.rewrite = Some(r);
            }
            Err(e) => self.shared.fail(&self.inbox.path, "creating the rewritten log", &e),
        }
    }

    /// Syncs the new log, renames it over the log (syncing the directory) and appends to it.
    /// The new log keeps the zeros written ahead of its records: they are the padding a
    /// running log ends in, and the next writes overwrite them. Truncated to its records, the
    /// log grew again with each of those writes, which io_uring hands to a worker thread (up
    /// to [`PREALLOCATE`] bytes of records after every compaction).
    async fn finish_rewrite(&mut self, log: &mut Aligned) {
        let Some(mut new) = self.rewrite.take() else { return };
        let path = self.inbox.path.clone();
        // A second handle on the old log, so that its last close (which frees its blocks, see
        // `close_elsewhere`) happens off the shard; without one, it happens here.
        let mut old_handle = None;
        let switched = async {
            new.sync().await?;
            old_handle = std::fs::File::open(&path).ok();
            new.file.rename(&path).await.map_err(io::Error::from)?;
            let dir = glommio::io::Directory::open(log_dir(&path)).await.map_err(io::Error::from)?;
            dir.sync().await.map_err(io::Error::from)?;
            dir.close().await.map_err(io::Error::from)
        };
        match switched.await {
            Ok(()) => {
                log.pass_buffers(&mut new);
                let old = std::mem::replace(log, new);
                let _ = old.file.close().await;
                if let Some(file) = old_handle {
                    close_elsewhere(file);
                }
                self.dirty = false;
                self.last_sync = Instant::now();
                self.shared.durable.fetch_max(self.lsn, Ordering::AcqRel);
                self.shared.rewrites.fetch_add(1, Ordering::Relaxed);
                tracing::info!("append-only log {} rewritten", path.display());
            }
            Err(e) => {
                let _ = std::fs::remove_file(rewrite_path(&path));
                tracing::warn!("append-only log {}: rewrite abandoned: {e}", path.display());
            }
        }
    }

    /// Publishes the LSNs, marks the writer idle, wakes the shard's waiters and, when the
    /// partition asked (`wanted`: it holds answers or records back), notifies it.
    fn publish(&mut self) {
        self.shared.published(self.lsn, self.policy == FsyncPolicy::No || !self.dirty);
        self.durability.wake();
        if self.shared.wanted.swap(false, Ordering::SeqCst) {
            if let Some(wake) = self.shared.notify.get() {
                wake();
            }
        }
    }
}
