//! Mailboxes: one pooled store of message nodes per shard, and a bounded FIFO per agent.
//!
//! A shard keeps every queued message in one `MessageStore`: a `Vec` of nodes threaded into
//! singly linked lists by index, with a free list. An agent's mailbox is just a `Queue`
//! (head, tail, length: 12 bytes) kept in its slot, so an idle agent costs no mailbox memory and
//! a million agents cost twelve megabytes of queue headers, not a million ring buffers.
//!
//! The store grows (allocates) only when every node is in use; in steady state, nodes freed by
//! dispatch are reused by the next sends, so queuing and dispatching touch no heap.
//!
//! Invariants: a node is either on exactly one queue or on the free list; `Queue::len` equals
//! the number of nodes reachable from `head`; `tail` is the last of them. Only the owning
//! shard's thread touches the store.

use crate::envelope::Envelope;

/// End-of-list marker for node indices.
const NIL: u32 = u32::MAX;

/// What to do when a message reaches a full mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverflowPolicy {
    /// Refuse it: a local sender gets the message back (`SendError::Full`); a message from
    /// another shard becomes a `mailbox_full` dead letter and, when the sender asked for
    /// delivery status, is handed back to it through `Agent::on_undelivered`.
    #[default]
    Reject,
    /// Drop it and count it as a `mailbox_full` dead letter.
    Drop,
}

/// One agent's bounded FIFO of message nodes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Queue {
    head: u32,
    tail: u32,
    len: u32,
}

impl Queue {
    /// An empty queue.
    pub(crate) const EMPTY: Queue = Queue { head: NIL, tail: NIL, len: 0 };

    /// Messages queued.
    #[inline]
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Whether nothing is queued.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The shard's pool of message nodes: node `i` is `envs[i]` with its link `next[i]`. The two
/// live in separate arrays so an envelope keeps its own cache line (a node of both would take
/// two lines for one message).
pub(crate) struct MessageStore {
    envs: Vec<Option<Envelope>>,
    next: Vec<u32>,
    free: u32,
    in_use: usize,
}

impl MessageStore {
    /// A store with room for `capacity` queued messages before it first grows.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut store =
            Self { envs: Vec::with_capacity(capacity), next: Vec::with_capacity(capacity), free: NIL, in_use: 0 };
        for _ in 0..capacity {
            let idx = store.envs.len() as u32;
            store.envs.push(None);
            store.next.push(store.free);
            store.free = idx;
        }
        store
    }

    /// Messages queued over every mailbox.
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }

    /// Appends `env` to `queue`.
    #[inline]
    pub(crate) fn push(&mut self, queue: &mut Queue, env: Envelope) {
        let idx = if self.free != NIL {
            let idx = self.free;
            self.free = self.next[idx as usize];
            self.envs[idx as usize] = Some(env);
            self.next[idx as usize] = NIL;
            idx
        } else {
            let idx = u32::try_from(self.envs.len()).expect("fewer than 2^32 queued messages");
            assert!(idx != NIL, "message store exhausted");
            self.envs.push(Some(env));
            self.next.push(NIL);
            idx
        };
        if queue.tail == NIL {
            queue.head = idx;
        } else {
            self.next[queue.tail as usize] = idx;
        }
        queue.tail = idx;
        queue.len += 1;
        self.in_use += 1;
    }

    /// Removes the oldest message of `queue`.
    #[inline]
    pub(crate) fn pop(&mut self, queue: &mut Queue) -> Option<Envelope> {
        if queue.head == NIL {
            return None;
        }
        let idx = queue.head as usize;
        let env = self.envs[idx].take();
        queue.head = self.next[idx];
        self.next[idx] = self.free;
        self.free = idx as u32;
        if queue.head == NIL {
            queue.tail = NIL;
        }
        queue.len -= 1;
        self.in_use -= 1;
        debug_assert!(env.is_some(), "a queued node always holds an envelope");
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::AgentId;
    use crate::envelope::NO_SENDER;
    use crate::payload::Payload;

    fn env(n: u64) -> Envelope {
        Envelope::user(AgentId::new(0, 1, 0), NO_SENDER, Payload::new(n))
    }

    #[test]
    fn queues_are_fifo_and_share_nodes() {
        let mut store = MessageStore::with_capacity(2);
        let (mut a, mut b) = (Queue::EMPTY, Queue::EMPTY);
        for i in 0..5 {
            store.push(&mut a, env(i));
            store.push(&mut b, env(100 + i));
        }
        assert_eq!((a.len(), b.len(), store.in_use()), (5, 5, 10));
        for i in 0..5 {
            assert_eq!(store.pop(&mut a).unwrap().payload.take::<u64>().unwrap(), i);
        }
        assert!(store.pop(&mut a).is_none() && a.is_empty());
        store.push(&mut a, env(9));
        assert_eq!(store.envs.len(), 10, "freed nodes are reused before growing");
        assert_eq!(store.pop(&mut b).unwrap().payload.take::<u64>().unwrap(), 100);
    }
}
