//! The shard's side of its log: [`Journal`], which the shard's [`KvStore`](crate::kv::KvStore)
//! carries and every successful mutation appends one record to, whoever runs it (the partition
//! agent or a connection task on the shard's thread).
//!
//! Records are encoded into an in-memory buffer; [`Journal::flush`] hands the buffer to the
//! shard's writer ([`Sink`]): to the io_uring task at once (it takes everything queued when it
//! runs), to the writer thread when it is idle (or the buffer is large). Either way writes
//! arriving while the writer writes or syncs are gathered into its next batch (group commit).
//! A threads shard under `fsync = "always"` writes and syncs on its own thread instead
//! ([`Sink::Shard`]): its connections skip the hand-over after a read, and the first one to
//! write its answers commits every record buffered so far ([`Journal::commit_for_answers`]),
//! so one sync covers the reads of every connection woken together.
//! Each record gets the next log sequence number (LSN); [`Journal::lsn`] is the last one, and
//! the writer publishes how far it wrote and synced.
//!
//! While a compaction runs, every record also goes to the rewrite tail, and the keys present
//! when it started are dumped into the same stream in steps ([`Journal::dump`]), so the new log
//! replays to the store as it is when the rewrite finishes (records are idempotent key states:
//! for each key the last record in the stream is its latest state).
//!
//! Invariants: `sent_lsn <= lsn`; a record is in `buf` or was sent; the tail exists exactly while
//! a rewrite runs.

use super::record;
use super::ring::RingInbox;
use super::writer::{LogShared, Writer, WriterCmd};
use crate::kv::{Hash, Stored};
use nexus_engine::config::FsyncPolicy;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Where the journal's buffers go: the writer thread, the shard's own io_uring task, or the
/// shard's own thread.
#[derive(Debug)]
pub enum Sink {
    /// The log-writer thread (`writer`): its channel (`None` once dropped), and the thread,
    /// joined on drop.
    Thread(Option<Sender<WriterCmd>>, Option<JoinHandle<()>>),
    /// The io_uring task on the shard's glommio executor (`ring`).
    Ring(Rc<RingInbox>),
    /// The writer driven on the shard's thread (a threads shard under `fsync = "always"`):
    /// a hand-over writes and syncs before it returns.
    Shard(Box<Writer>),
}

/// A buffer this large is handed over even while the writer is busy.
const HAND_OVER_BYTES: usize = 1 << 20;

/// When a log is compacted.
#[derive(Clone, Copy, Debug)]
pub struct RewritePolicy {
    /// Never below this many bytes.
    pub min_size: u64,
    /// Once the log is this many times its size after the last rewrite.
    pub growth: u64,
}

/// See the module documentation.
pub struct Journal {
    buf: Vec<u8>,
    tail: Option<Vec<u8>>,
    lsn: u64,
    sent_lsn: u64,
    /// Bytes of the current log file (as handed over), and its size after the last rewrite.
    file_bytes: u64,
    base_bytes: u64,
    /// Bytes handed over for the new log of the running rewrite.
    rewrite_bytes: u64,
    policy: RewritePolicy,
    /// A rewrite was asked for (`BGREWRITEAOF`) and has not started yet.
    requested: bool,
    /// With [`Sink::Shard`]: the partition was notified that a rewrite is due (until it starts).
    rewrite_nudged: bool,
    fsync: FsyncPolicy,
    /// The way to the writer.
    sink: Sink,
    shared: Arc<LogShared>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("lsn", &self.lsn).field("file_bytes", &self.file_bytes).finish()
    }
}

impl Journal {
    /// A journal over a log of `file_bytes` bytes whose last record is `lsn`, feeding `sink`.
    pub fn new(
        sink: Sink,
        shared: Arc<LogShared>,
        (lsn, file_bytes): (u64, u64),
        fsync: FsyncPolicy,
        policy: RewritePolicy,
    ) -> Self {
        Self {
            buf: Vec::with_capacity(64 * 1024),
            tail: None,
            lsn,
            sent_lsn: lsn,
            file_bytes,
            base_bytes: file_bytes,
            rewrite_bytes: 0,
            policy,
            requested: false,
            rewrite_nudged: false,
            fsync,
            sink,
            shared,
        }
    }

    /// The last record's LSN.
    pub fn lsn(&self) -> u64 {
        self.lsn
    }

    /// The fsync policy.
    pub fn fsync(&self) -> FsyncPolicy {
        self.fsync
    }

    /// What the writer publishes.
    pub fn shared(&self) -> &Arc<LogShared> {
        &self.shared
    }

    /// Copies the record just encoded from `start` into the rewrite tail, and numbers it.
    fn appended(&mut self, start: usize) {
        if let Some(tail) = &mut self.tail {
            tail.extend_from_slice(&self.buf[start..]);
        }
        self.lsn += 1;
    }

    /// Logs that `key` now holds string `value`, expiring at wall-clock ms `expires_at`.
    pub fn put_str(&mut self, key: &[u8], value: &[u8], expires_at: Option<u64>) {
        let start = self.buf.len();
        record::encode_put_str(&mut self.buf, key, value, expires_at);
        self.appended(start);
    }

    /// Logs that `key` now holds hash `hash`.
    pub fn put_hash(&mut self, key: &[u8], hash: &Hash, expires_at: Option<u64>) {
        let start = self.buf.len();
        record::encode_put_hash(&mut self.buf, key, hash, expires_at);
        self.appended(start);
    }

    /// Logs that `key` is gone.
    pub fn del(&mut self, key: &[u8]) {
        let start = self.buf.len();
        record::encode_del(&mut self.buf, key);
        self.appended(start);
    }

    /// Logs that every key is gone.
    pub fn flush_all(&mut self) {
        let start = self.buf.len();
        record::encode_flush(&mut self.buf);
        self.appended(start);
    }

    /// Whether a rewrite runs.
    pub fn rewriting(&self) -> bool {
        self.tail.is_some()
    }

    /// Writes a key's current state into the new log only (a rewrite's dump step).
    pub fn dump(&mut self, key: &[u8], value: &Stored, expires_at: Option<u64>) {
        if let Some(tail) = &mut self.tail {
            record::encode_put(tail, key, value, expires_at);
        }
    }

    /// Whether the log is due for a rewrite (and none runs): it was asked for, or the log grew
    /// past the policy's bounds.
    pub fn rewrite_due(&self) -> bool {
        !self.rewriting()
            && !self.shared.failed.load(Ordering::Relaxed)
            && (self.requested
                || (self.file_bytes >= self.policy.min_size
                    && self.file_bytes >= self.base_bytes.saturating_mul(self.policy.growth)))
    }

    /// Asks for a rewrite whatever the log's size (`BGREWRITEAOF`); the shard starts it at the
    /// end of its turn ([`Journal::rewrite_due`]).
    pub fn request_rewrite(&mut self) {
        self.requested = true;
    }

    /// Starts a rewrite: from now on records also go to the new log. The caller dumps the keys.
    pub fn start_rewrite(&mut self) {
        if self.rewriting() {
            return;
        }
        self.requested = false;
        // The partition is starting it: the hand-over below must not ask for it again.
        self.rewrite_nudged = true;
        self.hand_over();
        self.tail = Some(self.fresh_buf());
        self.rewrite_nudged = false;
        self.rewrite_bytes = 0;
        self.send(WriterCmd::StartRewrite);
    }

    /// Ends a rewrite whose dump is complete: the new log replaces the old one.
    pub fn finish_rewrite(&mut self) {
        if !self.rewriting() {
            return;
        }
        self.hand_over();
        self.tail = None;
        self.file_bytes = self.rewrite_bytes;
        self.base_bytes = self.rewrite_bytes;
        self.send(WriterCmd::FinishRewrite);
    }

    /// Whether the shard writes and syncs its log itself (`Sink::Shard`): a connection then
    /// leaves its records buffered after a read, for [`Journal::commit_for_answers`].
    pub fn commits_on_shard(&self) -> bool {
        matches!(self.sink, Sink::Shard(_))
    }

    /// With `Sink::Shard`, writes and syncs every record buffered so far (a connection about
    /// to write answers that wait for their writes); otherwise nothing (the writer's notice
    /// wakes the connection).
    pub fn commit_for_answers(&mut self) {
        if self.commits_on_shard() {
            self.hand_over();
        }
    }

    /// Whether the writer has nothing queued (a flush now would hand over).
    pub fn writer_idle(&self) -> bool {
        self.shared.idle.load(Ordering::Acquire)
    }

    /// Whether records wait to be handed over.
    pub fn pending(&self) -> bool {
        !self.buf.is_empty() || self.tail.as_ref().is_some_and(|t| !t.is_empty())
    }

    /// Hands the buffered records to the writer: the io_uring task always, the thread if it is
    /// idle or the buffer is large; whether records remain buffered (the writer's next notice
    /// is the time to call again).
    pub fn flush(&mut self) -> bool {
        if !self.pending() {
            return false;
        }
        // The io_uring task takes what is queued when it runs: a hand-over costs no wake-up.
        let ring = matches!(self.sink, Sink::Ring(_));
        let large =
            ring || self.buf.len() >= HAND_OVER_BYTES || self.tail.as_ref().is_some_and(|t| t.len() >= HAND_OVER_BYTES);
        if !large && !self.shared.idle.load(Ordering::SeqCst) {
            // Ask for the writer's notice, then look again: it may have gone idle meanwhile
            // without seeing the request (see `Writer::publish`).
            self.shared.wanted.store(true, Ordering::SeqCst);
            if !self.shared.idle.load(Ordering::SeqCst) {
                return true;
            }
        }
        self.hand_over();
        if ring && self.rewrite_due() {
            // Nothing else may run the partition (a shard whose writes all ran inline): the
            // task's notice after this batch lets its turn start the compaction.
            self.shared.wanted.store(true, Ordering::SeqCst);
        }
        false
    }

    /// An empty buffer: one the writer gave back, or a new one.
    fn fresh_buf(&self) -> Vec<u8> {
        let spare = self.shared.spare.lock().ok().and_then(|mut s| s.pop());
        spare.unwrap_or_else(|| Vec::with_capacity(64 * 1024))
    }

    /// Sends everything buffered now: onto the io_uring task's queued append if it has one
    /// (the buffers keep their capacity), through the shard's own writer (written and synced
    /// on return; the buffers keep their capacity), else as a new append.
    fn hand_over(&mut self) {
        let (main, rewrite) = (self.buf.len() as u64, self.tail.as_ref().map_or(0, Vec::len) as u64);
        if main == 0 && rewrite == 0 {
            return;
        }
        self.file_bytes += main;
        self.rewrite_bytes += rewrite;
        self.sent_lsn = self.lsn;
        self.shared.idle.store(false, Ordering::Release);
        if let Sink::Ring(inbox) = &self.sink {
            if inbox.merge(&mut self.buf, self.tail.as_mut(), self.lsn) {
                return;
            }
        }
        if let Sink::Shard(writer) = &mut self.sink {
            writer.commit(&self.buf, self.tail.as_deref().unwrap_or_default(), self.lsn);
            self.buf.clear();
            if let Some(tail) = &mut self.tail {
                tail.clear();
            }
            if !self.rewrite_nudged && self.rewrite_due() {
                // As the io_uring task's notice does: the partition's turn starts compactions,
                // and a shard whose writes all run inline gives it no other. Once: its turn
                // comes after this notice whatever is queued before it.
                self.rewrite_nudged = true;
                if let Some(notify) = self.shared.notify.get() {
                    notify();
                }
            }
            return;
        }
        let fresh = self.fresh_buf();
        let main = std::mem::replace(&mut self.buf, fresh);
        // A running rewrite's records also go in a spare: its dump steps reuse buffers.
        let rewrite = match self.tail.take() {
            Some(tail) => {
                self.tail = Some(self.fresh_buf());
                tail
            }
            None => Vec::new(),
        };
        self.send(WriterCmd::Append { main, rewrite, lsn: self.lsn });
    }

    /// Hands over everything buffered, whether or not the writer is busy (the shard stops).
    pub fn flush_now(&mut self) {
        self.hand_over();
    }

    fn send(&mut self, cmd: WriterCmd) {
        let sent = match &mut self.sink {
            Sink::Thread(tx, _) => tx.as_ref().is_some_and(|tx| tx.send(cmd).is_ok()),
            Sink::Ring(inbox) => {
                inbox.send(cmd);
                true
            }
            Sink::Shard(writer) => {
                writer.command(cmd);
                true
            }
        };
        if !sent && !self.shared.failed.swap(true, Ordering::AcqRel) {
            tracing::error!("the append-only log's writer thread is gone; writes are no longer logged");
        }
    }

    /// Bytes of the current log, as handed to the writer.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Bytes of the log after its last rewrite (or at start).
    pub fn base_bytes(&self) -> u64 {
        self.base_bytes
    }
}

impl Drop for Journal {
    /// Hands over what is still buffered and waits for the writer to write and sync it (the
    /// shard is stopping: a clean stop loses nothing, whatever the fsync policy). The io_uring
    /// task was closed by the shard's stop before: what remains is written with plain calls.
    fn drop(&mut self) {
        if self.rewriting() {
            // An unfinished rewrite is abandoned; the log itself is complete.
            self.tail = None;
        }
        self.hand_over();
        match &mut self.sink {
            Sink::Thread(tx, thread) => {
                *tx = None;
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
            Sink::Ring(inbox) => inbox.abandon(),
            // `hand_over` wrote and synced it; the file closes with the writer.
            Sink::Shard(_) => {}
        }
    }
}
