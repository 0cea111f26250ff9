//! Where a connection's engine requests run: inline, squashed, or through the ingress agent.
//!
//! A single-key request (see [`crate::ingress::plan`]) whose key the connection's own shard
//! owns runs inline, on the shard's store shared with its partition agent, through the same
//! [`run_key_op`] the partition runs: no agent hop. One whose key another shard owns waits in
//! that shard's batch until the read is parsed, and each batch goes to the ingress agent as one
//! [`Job::Batch`] (one ask per remote shard per read). Every other request is a
//! [`Job::Command`] for the ingress agent, as before.
//!
//! Invariants (order): a connection's requests on one key run in request order. Batches are
//! handed over before any later job, so the ingress agent sees the connection's jobs in request
//! order; once a request that may touch this shard's store went to the ingress agent (a
//! multi-key command, RENAME, a traced command...), the connection is *fenced*: its own keys go
//! through the ingress agent too (behind that request, in the partition's mailbox) until every
//! answer it owes has come back. The store's borrow is held only while one operation runs,
//! never across an await.

use super::Conn;
use crate::front::{Job, Slot};
use crate::partition::{run_key_op, PartOp};

/// Requests of one read waiting to go to their shard as one batch: `(seqs, ops)` per shard.
#[derive(Default)]
pub struct Batches {
    per_shard: Vec<(Vec<u64>, Vec<PartOp>)>,
    /// Whether any shard's batch holds a request.
    any: bool,
}

impl Conn {
    /// Runs a planned single-key operation on `shard` inline when this shard owns it (and the
    /// connection is not fenced), else adds it to the shard's batch; true when handed over.
    pub(super) fn run_one(&mut self, shard: usize, op: PartOp) -> bool {
        if shard == self.env.shard && !self.fenced {
            let handle = &self.env.handle;
            let now = *self.now_ms.get_or_insert_with(|| handle.now_ns() / 1_000_000);
            let value = {
                let mut kv = self.env.kv.borrow_mut();
                kv.expire_due(now);
                run_key_op(&mut kv, op, now)
            };
            self.reply_inline(value);
            return false;
        }
        let Some(seq) = self.env.front.with(self.id, |c| {
            c.slots.push_back(Slot::Pending);
            c.first_seq + c.slots.len() as u64 - 1
        }) else {
            return false;
        };
        let mut batches = self.env.batches.borrow_mut();
        let shards = self.env.directory.shards();
        if batches.per_shard.len() < shards {
            batches.per_shard.resize_with(shards, Default::default);
        }
        let (seqs, ops) = &mut batches.per_shard[shard];
        seqs.push(seq);
        ops.push(op);
        batches.any = true;
        true
    }

    /// The point where the reply of an inline operation (a write's included) becomes the
    /// client's: it fills the next slot at once. Under `fsync = "always"` the connection's
    /// answers then wait for the log's position now (`durable_gate`, see `Conn::gated`).
    fn reply_inline(&mut self, value: crate::resp::Value) {
        if self.env.always.is_some() {
            self.durable_gate = self.env.kv.borrow().lsn();
        }
        self.push_answer(value);
    }

    /// Hands the records the read's inline writes appended to the shard's log writer: the
    /// io_uring task takes them when it next runs; the writer thread when it is idle (one
    /// hand-over per read: a group commit). When the thread is busy they wait in the journal:
    /// its notice of the batch it finishes reaches the partition agent, whose turn hands them
    /// over, so no record waits for another write. A shard that syncs its log itself
    /// (`fsync = "always"` on threads) commits when the first connection writes its answers
    /// instead (`Conn::gated`): one sync for every connection that read in the same batch.
    pub(super) fn flush_journal(&mut self) {
        if let Some(journal) = self.env.kv.borrow_mut().journal_mut().filter(|j| !j.commits_on_shard()) {
            journal.flush();
        }
    }

    /// Hands the waiting batches to the ingress agent, one job per shard (before any later job,
    /// to keep the connection's jobs in request order).
    pub(super) fn flush_batches(&mut self) {
        let mut batches = self.env.batches.borrow_mut();
        if !batches.any {
            return;
        }
        batches.any = false;
        let mut jobs = self.env.front.jobs.borrow_mut();
        for (shard, (seqs, ops)) in batches.per_shard.iter_mut().enumerate() {
            if !seqs.is_empty() {
                let (seqs, ops) = (std::mem::take(seqs), std::mem::take(ops));
                jobs.push_back(Job::Batch { conn: self.id, shard, seqs, ops });
            }
        }
    }
}
