//! Inbound traffic for the names a node holds: the NATS task that serves one name
//! ([`serve_name`]) gathers the messages already buffered in its subscription into one
//! [`Batch`] per wake-up, and the bridge agent that gets the batch delivers it ([`Backlog`]).
//!
//! Invariants: every message that came in is counted `received` once, and then `handed` (the
//! local agent took it, or an ask was passed on: its asker learns any later failure through
//! the answer) or `dead_inbound` (undecodable, refused by the engine, or over the backlog's
//! limit), never both and never silently dropped. A one-way message the target's mailbox has
//! no room for is not a failure: it stays, in order, in the bridge agent's backlog, and the
//! agent retries on its next turn (it sends itself [`BridgeMsg::Resume`]), so a batch never
//! overflows the target's mailbox.

use crate::agents::BridgeMsg;
use crate::link::Link;
use crate::serve::{Answer, Offer, Serve};
use crate::stats::Counters;
use crate::wire::{parse_request, ASK};
use async_nats::{Client, Message, Subscriber};
use futures_util::{FutureExt, StreamExt};
use nexus_engine::agent::Ctx;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// The most messages gathered into one batch (one job, one inject).
const BATCH: usize = 256;
/// The most one-way messages a bridge agent keeps waiting for room; beyond, they are dead.
const BACKLOG_LIMIT: usize = 65_536;

/// One incoming message, parsed.
pub(crate) enum Item {
    /// A one-way message's body.
    Tell(bytes::Bytes),
    /// An ask's body, its deadline and the way back.
    Ask { body: bytes::Bytes, timeout: Duration, answer: Answer },
}

/// The messages for one name gathered in one wake-up of its NATS task (opaque: only the
/// bridge agents open it).
pub struct Batch {
    serve: Arc<dyn Serve>,
    items: Vec<Item>,
    counters: Arc<Counters>,
}

/// Serves one held name: its message subject (in batches) and its whois subject.
pub(crate) async fn serve_name(
    link: Link,
    client: Client,
    serve: Arc<dyn Serve>,
    mut messages: Subscriber,
    mut whois: Subscriber,
) {
    loop {
        tokio::select! {
            msg = messages.next() => match msg {
                Some(first) => dispatch(&link, &serve, gather(&link, first, &mut messages)),
                None => return,
            },
            who = whois.next() => match who {
                Some(who) => if let Some(reply) = who.reply {
                    let _ = client.publish(reply, link.config.node.clone().into()).await;
                },
                None => return,
            },
        }
    }
}

/// `first` and every message already buffered behind it (up to [`BATCH`]), parsed.
fn gather(link: &Link, first: Message, messages: &mut Subscriber) -> Vec<Item> {
    let mut items = Vec::with_capacity(16);
    items.extend(parse(link, first));
    while items.len() < BATCH {
        match messages.next().now_or_never() {
            Some(Some(msg)) => items.extend(parse(link, msg)),
            _ => break,
        }
    }
    items
}

/// Hands `items` to a bridge agent as one job; what the engine refuses is counted dead (and
/// the asks in it answered, by their dropped [`Answer`]).
fn dispatch(link: &Link, serve: &Arc<dyn Serve>, items: Vec<Item>) {
    if items.is_empty() {
        return;
    }
    let n = items.len();
    let batch = Batch { serve: serve.clone(), items, counters: link.counters.clone() };
    if !link.try_send(BridgeMsg::Inbound(batch)) {
        for _ in 0..n {
            link.counters.dead_inbound();
        }
    }
}

/// One message, counted `received`, parsed; `None` (counted dead, and answered when it was an
/// ask) for a frame that does not parse.
fn parse(link: &Link, msg: Message) -> Option<Item> {
    link.counters.received();
    match parse_request(&msg.payload) {
        Ok((kind, timeout_ms, b)) => {
            let body = msg.payload.slice(msg.payload.len() - b.len()..);
            match (kind, msg.reply) {
                (ASK, Some(reply)) => Some(Item::Ask {
                    body,
                    timeout: Duration::from_millis(u64::from(timeout_ms.max(1))),
                    answer: Answer::new(link.tx.clone(), reply),
                }),
                _ => Some(Item::Tell(body)),
            }
        }
        Err(e) => {
            link.counters.dead_inbound();
            if let Some(reply) = msg.reply {
                Answer::new(link.tx.clone(), reply).send(Err(e));
            }
            None
        }
    }
}

/// A bridge agent's one-way messages still waiting for room in their target's mailbox, oldest
/// first; see the module documentation.
#[derive(Default)]
pub(crate) struct Backlog {
    waiting: VecDeque<(Arc<dyn Serve>, Arc<Counters>, bytes::Bytes)>,
    resume_queued: bool,
}

impl Backlog {
    /// Delivers `batch`, behind whatever is already waiting.
    pub(crate) fn take(&mut self, batch: Batch, ctx: &mut Ctx<'_>) {
        let Batch { serve, items, counters } = batch;
        for item in items {
            match item {
                Item::Ask { body, timeout, answer } => {
                    // The asker learns of any failure from here on through the answer.
                    counters.handed();
                    serve.ask(&body, timeout, answer, ctx);
                }
                Item::Tell(body) if self.waiting.is_empty() => match serve.offer(&body, ctx) {
                    Offer::Handed => counters.handed(),
                    Offer::Failed(e) => failed(&counters, &e),
                    Offer::Full => self.keep(serve.clone(), counters.clone(), body),
                },
                Item::Tell(body) => self.keep(serve.clone(), counters.clone(), body),
            }
        }
        self.schedule(ctx);
    }

    /// Delivers what waits, in order, until a target is full again.
    pub(crate) fn resume(&mut self, ctx: &mut Ctx<'_>) {
        self.resume_queued = false;
        while let Some((serve, counters, body)) = self.waiting.pop_front() {
            match serve.offer(&body, ctx) {
                Offer::Handed => counters.handed(),
                Offer::Failed(e) => failed(&counters, &e),
                Offer::Full => {
                    self.waiting.push_front((serve, counters, body));
                    break;
                }
            }
        }
        self.schedule(ctx);
    }

    /// Keeps a one-way message for later, or counts it dead past the limit.
    fn keep(&mut self, serve: Arc<dyn Serve>, counters: Arc<Counters>, body: bytes::Bytes) {
        if self.waiting.len() >= BACKLOG_LIMIT {
            tracing::debug!("cluster: inbound backlog full; a one-way message was dropped");
            return counters.dead_inbound();
        }
        self.waiting.push_back((serve, counters, body));
    }

    /// With messages waiting, makes sure this agent runs again (a turn of its own, so the
    /// targets drain their mailboxes in between).
    fn schedule(&mut self, ctx: &mut Ctx<'_>) {
        if self.waiting.is_empty() || self.resume_queued {
            return;
        }
        self.resume_queued = true;
        let me = ctx.myself::<BridgeMsg>();
        if let Err(e) = ctx.send(me, BridgeMsg::Resume) {
            // Our own mailbox is full: it holds work, and a timer brings the resume.
            drop(e);
            ctx.send_after(me, BridgeMsg::Resume, Duration::from_micros(100));
        }
    }
}

impl Drop for Backlog {
    /// The engine stopped with messages still waiting: each is counted dead, not lost silently.
    fn drop(&mut self) {
        if !self.waiting.is_empty() {
            tracing::debug!(waiting = self.waiting.len(), "cluster: one-way messages still waiting at shutdown");
        }
        for (_, counters, _) in self.waiting.drain(..) {
            counters.dead_inbound();
        }
    }
}

/// Counts a one-way message the local agent could not take (not for want of room).
fn failed(counters: &Counters, why: &crate::error::ClusterError) {
    counters.dead_inbound();
    tracing::debug!("cluster: a one-way message was not delivered locally: {why}");
}
