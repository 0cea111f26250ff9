//! The front: what a shard's connection tasks and its ingress agent share.
//!
//! Both run on the shard's thread (the tasks on its glommio executor, the agent in its
//! dispatcher), so the front is an `Rc` with `RefCell`s and no locks. A connection task parses
//! requests and appends [`Job`]s; it pokes the ingress agent with one message through the
//! engine when the job queue was idle (at most one poke is in flight, so the agent's mailbox
//! can never fill). The ingress agent answers into the connection's reply slots, in the order
//! of the requests, and wakes the task.
//!
//! Idle clients: a connection sets its `heard` flag on every read and write; nothing on the
//! request path reads the clock or arms a timer. The shard's idle sweeper (`conn::idle`)
//! calls [`Front::expire_idle`] every so often: a flag found set is cleared and the sweep's
//! time kept as `quiet_since` (the client was last heard at or before it), so silence is
//! measured from an upper bound of the last activity and no client is closed early.
//!
//! Invariants: a connection's slots are answered in any order but written in request order;
//! a [`ConnId`] names one connection for its whole life (the slab slot's generation changes
//! when a connection closes, so late answers for a closed connection are dropped).

use crate::resp::{Protocol, Value};
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::{HashSet, VecDeque};
use std::task::Waker;

/// One connection on one shard (slab index and generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

/// Work a connection hands to its shard's ingress agent.
pub enum Job {
    /// Execute a request (already checked for arity and permission); answer slot `seq`.
    Command {
        /// The connection.
        conn: ConnId,
        /// The request's slot.
        seq: u64,
        /// Its command, as the connection looked it up.
        spec: &'static crate::commands::Spec,
        /// The request, name first.
        args: Vec<Bytes>,
        /// Its trace, when the connection traces it.
        trace: Option<crate::command_trace::CommandTrace>,
    },
    /// Single-key operations of one read that shard `shard` owns, squashed into one ask;
    /// answer `seqs[i]` with the answer to `ops[i]`.
    Batch {
        /// The connection.
        conn: ConnId,
        /// The owning shard.
        shard: usize,
        /// The requests' slots, in request order.
        seqs: Vec<u64>,
        /// Their operations (each one that `partition::run_key_op` answers).
        ops: Vec<crate::partition::PartOp>,
    },
    /// The connection closed: drop its subscriptions.
    Closed(ConnId),
}

/// An answer slot.
pub enum Slot {
    /// Not answered yet.
    Pending,
    /// Answered with one reply.
    One(Value),
    /// Answered with several replies (SUBSCRIBE of several channels).
    Many(Vec<Value>),
    /// Not answered yet, and its answer is dropped when it comes: a job the connection runs
    /// for its own sake (RESET's unsubscription), ordered with the others.
    Silent,
}

/// The part of a connection the ingress agent writes.
pub struct ConnShared {
    generation: u32,
    /// The task to wake when an answer or a push arrives.
    pub waker: Option<Waker>,
    /// Sequence number of `slots[0]`.
    pub first_seq: u64,
    /// Answers, in request order.
    pub slots: VecDeque<Slot>,
    /// Pub/sub messages to write, already encoded.
    pub pushes: Vec<u8>,
    /// The protocol the connection speaks (pushes are encoded with it).
    pub protocol: Protocol,
    /// Channels the connection is subscribed to (kept by the ingress agent).
    pub channels: HashSet<Bytes>,
    /// Traced answers: the hop that answered slot `seq` (the parent of the connection's
    /// `resp.reply` span), taken when the slot is written. Empty unless a traced hop answered.
    pub answer_traces: Vec<(u64, nexus_engine::trace::TraceContext)>,
    /// The connection read or wrote something since the last idle sweep.
    heard: bool,
    /// The idle sweep that last found `heard` set, or found the connection exempt (the
    /// sweeper's clock, milliseconds): the client has been silent since at least then.
    quiet_since_ms: u64,
    /// The idle sweeper found the connection silent past the timeout: it closes.
    pub idle: bool,
}

impl ConnShared {
    /// Fills slot `seq`; returns false if no such slot is waiting.
    pub fn answer(&mut self, seq: u64, slot: Slot) -> bool {
        let Some(i) = seq.checked_sub(self.first_seq) else { return false };
        match self.slots.get_mut(i as usize) {
            Some(s @ Slot::Pending) => {
                *s = slot;
                true
            }
            Some(s @ Slot::Silent) => {
                *s = Slot::Many(Vec::new());
                true
            }
            _ => false,
        }
    }

    /// Records that a traced hop (`context`) answered slot `seq`.
    pub fn answered_in_trace(&mut self, seq: u64, context: nexus_engine::trace::TraceContext) {
        self.answer_traces.push((seq, context));
    }

    /// The hop that answered slot `seq`, if it was traced (taken: asked once per slot).
    pub fn take_answer_trace(&mut self, seq: u64) -> Option<nexus_engine::trace::TraceContext> {
        let i = self.answer_traces.iter().position(|(s, _)| *s == seq)?;
        Some(self.answer_traces.swap_remove(i).1)
    }

    /// Wakes the connection's task.
    pub fn wake(&self) {
        if let Some(w) = &self.waker {
            w.wake_by_ref();
        }
    }
}

/// See the module documentation.
pub struct Front {
    /// Jobs for the ingress agent, in arrival order.
    pub jobs: RefCell<VecDeque<Job>>,
    /// Whether a poke is on its way to the ingress agent (or it is draining).
    pub poke_pending: Cell<bool>,
    conns: RefCell<Vec<Option<ConnShared>>>,
    generations: RefCell<Vec<u32>>,
    free: RefCell<Vec<u32>>,
    /// Set when the server stops; connection tasks finish and close.
    pub stopping: Cell<bool>,
}

impl Default for Front {
    fn default() -> Self {
        Self {
            jobs: RefCell::new(VecDeque::with_capacity(1024)),
            poke_pending: Cell::new(false),
            conns: RefCell::new(Vec::new()),
            generations: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            stopping: Cell::new(false),
        }
    }
}

impl Front {
    /// Registers a new connection.
    pub fn open(&self) -> ConnId {
        let mut conns = self.conns.borrow_mut();
        let mut generations = self.generations.borrow_mut();
        let index = match self.free.borrow_mut().pop() {
            Some(i) => i,
            None => {
                conns.push(None);
                generations.push(0);
                (conns.len() - 1) as u32
            }
        };
        let generation = generations[index as usize];
        conns[index as usize] = Some(ConnShared {
            generation,
            waker: None,
            first_seq: 0,
            slots: VecDeque::new(),
            pushes: Vec::new(),
            protocol: Protocol::Resp2,
            channels: HashSet::new(),
            answer_traces: Vec::new(),
            heard: true,
            quiet_since_ms: 0,
            idle: false,
        });
        ConnId { index, generation }
    }

    /// Forgets a closed connection; later answers for it are dropped.
    pub fn close(&self, id: ConnId) {
        let mut conns = self.conns.borrow_mut();
        if self.with_matching(&conns, id) {
            conns[id.index as usize] = None;
            let mut generations = self.generations.borrow_mut();
            generations[id.index as usize] = generations[id.index as usize].wrapping_add(1);
            self.free.borrow_mut().push(id.index);
        }
    }

    fn with_matching(&self, conns: &[Option<ConnShared>], id: ConnId) -> bool {
        conns.get(id.index as usize).and_then(Option::as_ref).is_some_and(|c| c.generation == id.generation)
    }

    /// Runs `f` on connection `id` if it is still open.
    pub fn with<R>(&self, id: ConnId, f: impl FnOnce(&mut ConnShared) -> R) -> Option<R> {
        let mut conns = self.conns.borrow_mut();
        match conns.get_mut(id.index as usize).and_then(Option::as_mut) {
            Some(c) if c.generation == id.generation => Some(f(c)),
            _ => None,
        }
    }

    /// Notes that connection `id` read or wrote something.
    pub fn heard(&self, id: ConnId) {
        self.with(id, |c| c.heard = true);
    }

    /// One idle sweep at `now_ms` (the sweeper's clock): marks, and wakes, every connection
    /// silent for at least `timeout_ms` since a sweep last found it heard, except subscribers
    /// and connections still owed answers (their client waits on the server, so their quiet
    /// starts again now); returns how many it marked.
    pub fn expire_idle(&self, now_ms: u64, timeout_ms: u64) -> usize {
        let mut expired = 0;
        for c in self.conns.borrow_mut().iter_mut().flatten() {
            let exempt = !c.channels.is_empty() || !c.slots.is_empty();
            if std::mem::take(&mut c.heard) || exempt {
                c.quiet_since_ms = now_ms;
            } else if !c.idle && now_ms.saturating_sub(c.quiet_since_ms) >= timeout_ms {
                c.idle = true;
                c.wake();
                expired += 1;
            }
        }
        expired
    }

    /// Wakes every connection (the server is stopping).
    pub fn wake_all(&self) {
        for c in self.conns.borrow().iter().flatten() {
            c.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_idle_only_after_a_whole_timeout_since_a_sweep_found_it_heard() {
        let front = Front::default();
        let quiet = front.open();
        let busy = front.open();
        // Opened: heard. The first sweep starts both quiet periods at 0.
        assert_eq!(front.expire_idle(0, 1_000), 0);
        // Heard at some time up to the 1,000 ms sweep: its quiet starts again there.
        front.heard(busy);
        assert_eq!(front.expire_idle(1_000, 1_000), 1, "silent since the 0 ms sweep: a whole timeout");
        assert_eq!(front.with(quiet, |c| c.idle), Some(true));
        assert_eq!(front.with(busy, |c| c.idle), Some(false));
        assert_eq!(front.expire_idle(1_999, 1_000), 0, "999 ms since the busy client's last sweep");
        assert_eq!(front.expire_idle(2_000, 1_000), 1);
        assert_eq!(front.expire_idle(9_000, 1_000), 0, "each idle client is counted once");
    }

    #[test]
    fn subscribers_and_clients_owed_answers_are_never_idle() {
        let front = Front::default();
        let subscriber = front.open();
        let waiting = front.open();
        front.with(subscriber, |c| c.channels.insert(Bytes::from_static(b"news")));
        front.with(waiting, |c| c.slots.push_back(Slot::Pending));
        assert_eq!(front.expire_idle(0, 1_000), 0);
        assert_eq!(front.expire_idle(60_000, 1_000), 0);
        // Answered and written: the quiet counts from the last sweep that saw it waiting.
        front.with(waiting, |c| c.slots.clear());
        assert_eq!(front.expire_idle(60_999, 1_000), 0);
        assert_eq!(front.expire_idle(61_000, 1_000), 1);
        assert_eq!(front.with(waiting, |c| c.idle), Some(true));
    }

    #[test]
    fn a_closed_connection_is_not_swept() {
        let front = Front::default();
        let id = front.open();
        front.close(id);
        assert_eq!(front.expire_idle(0, 1), 0);
        assert_eq!(front.expire_idle(10, 1), 0);
        front.heard(id);
        assert_eq!(front.with(id, |c| c.idle), None);
    }
}
