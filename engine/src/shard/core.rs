//! `Shard`: everything one shard owns, and how a message finds its mailbox.
//!
//! A `Shard` is built on (or moved to, before it runs) its own thread and is touched only there.
//! It owns the slot table, the typed agent pools, the message store and the run queue, its
//! registry partition, its pending asks, its ring endpoints (one producer and one consumer per
//! peer), its metrics and its scratch arena.
//!
//! Routing is arithmetic: the target shard is `AgentId::shard()`. A message for this shard goes
//! straight into the target's mailbox; a message for another shard is *staged* in the lap ring
//! to that shard (`lap_ring`: one cache line per envelope, its full mark inside it) and becomes
//! visible to it when the dispatcher publishes the batch at the end of the pass, or as soon as
//! `batch` envelopes are staged; the peer's doorbell is rung after each publish. When a ring is full,
//! envelopes wait in a bounded per-peer backlog on the sending shard and keep their order; when the backlog is full
//! too, a new user message goes back to its sender (replies and engine operations are always
//! queued: they answer something already admitted). No shard ever waits for another.
//!
//! Two lanes: control-lane envelopes (signals, engine operations and answers, `send_control`)
//! wait in their own backlog, which is flushed before the normal one, and on arrival go to the
//! shard's control queue, which is dispatched before any mailbox; neither is ever full. When
//! the shard is overloaded (queue depth or sampled enqueue-to-dispatch latency past the
//! shedding thresholds), normal-lane user messages are shed at enqueue and counted.

use super::monitors::Monitors;
use super::shared::{Phase, Shared};
use super::timers::Timers;
use crate::agent::ExitReason;
use crate::agent::{AgentId, Kinds, SlotState, Slots};
use crate::ask::PendingAsks;
use crate::envelope::{
    Envelope, Kind, FLAG_ASK, FLAG_CONTROL, FLAG_DEAD_LETTER_NOTICE, FLAG_NOTIFY_UNDELIVERED, NO_SENDER,
};
use crate::lap_ring::{Consumer, Producer, PushError};
use crate::mailbox::{MessageStore, OverflowPolicy};
use crate::metrics::DeadLetterSink;
use crate::metrics::{DeadLetterReason, ShardMetrics};
use crate::registry::RegistryPartition;
use bumpalo::Bump;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The limits a shard runs with (from `EngineConfig`).
#[derive(Clone, Debug)]
pub struct ShardLimits {
    /// Default mailbox capacity of an agent.
    pub mailbox_capacity: u32,
    /// What a full mailbox does.
    pub overflow: OverflowPolicy,
    /// Envelopes taken from one ring (or the inject queue) per pass.
    pub batch: usize,
    /// Messages one agent handles before the dispatcher moves on.
    pub agent_budget: u32,
    /// Agents run per pass.
    pub agents_per_pass: usize,
    /// Envelopes kept per peer when its ring is full.
    pub backlog_capacity: usize,
    /// One message in this many carries a timestamp for the latency histogram.
    pub latency_sample_every: u32,
    /// Shed normal-lane messages at enqueue while this many messages are queued on the shard
    /// (0: never, on depth).
    pub shed_queue_depth: usize,
    /// Shed normal-lane messages at enqueue while the latest sampled enqueue-to-dispatch
    /// latency is at least this (0: never, on latency).
    pub shed_latency_ns: u64,
}

impl Default for ShardLimits {
    fn default() -> Self {
        Self {
            mailbox_capacity: 1024,
            overflow: OverflowPolicy::Reject,
            batch: 64,
            agent_budget: 64,
            agents_per_pass: 256,
            backlog_capacity: 65_536,
            latency_sample_every: 64,
            shed_queue_depth: 0,
            shed_latency_ns: 0,
        }
    }
}

/// The sending side of the ring to one peer.
pub(crate) struct Outbound {
    pub(crate) producer: Producer<Envelope>,
    /// Control-lane envelopes waiting for room; flushed before `backlog`, never full.
    pub(crate) control_backlog: VecDeque<Envelope>,
    pub(crate) backlog: VecDeque<Envelope>,
    pub(crate) dirty: bool,
}

/// A remote `spawn_linked_on` waiting for its answer.
pub(crate) struct PendingLink {
    /// The agent that asked (its side of the link is added with the answer).
    pub(crate) asker: AgentId,
    /// The shard the child is spawned on.
    pub(crate) shard: usize,
    /// Exits from that shard that reached the asker before the answer while it had no link:
    /// one may be the child's, dead in its `on_start` (its `Exit` can overtake the answer).
    pub(crate) early_exits: Vec<crate::agent::Exit>,
}

/// One shard; see the module documentation.
pub struct Shard {
    // --- Identity and configuration.
    /// This shard's index, `0..shards`: the shard part of every agent id it issues.
    pub(crate) index: usize,
    /// Batch sizes, budgets, capacities and shedding thresholds (from the config).
    pub(crate) limits: ShardLimits,
    /// The per-engine control plane every shard shares (clock, doorbells, inject queues).
    pub(crate) shared: Arc<Shared>,

    // --- Agents and their mailboxes.
    /// One generational slot per agent: state, mailbox queue, kind, generation.
    pub(crate) slots: Slots,
    /// The agent types known here, each with its pool and run function.
    pub(crate) kinds: Kinds,
    /// Every queued message of every mailbox, in one node store.
    pub(crate) store: MessageStore,
    /// Slots with messages to handle, in the order they became ready.
    pub(crate) run_queue: VecDeque<u32>,
    /// Agents that sent themselves a message during their own turn: they run again in the
    /// next pass, so a self-message yields to the rings and to the rest of the shard.
    pub(crate) yielded: Vec<u32>,
    /// The slot whose turn is running (`u32::MAX` when none).
    pub(crate) running: u32,
    /// Stops requested during a turn, run once the turn ends (in request order).
    pub(crate) pending_stops: Vec<(AgentId, ExitReason)>,

    // --- The control lane, supervision and timers.
    /// The control lane: dispatched before any mailbox, never full.
    pub(crate) control: VecDeque<Envelope>,
    /// The control envelope being handed to an agent's run function.
    pub(crate) control_current: Option<Envelope>,
    /// The reason of the stop being run (read by the agent's run function).
    pub(crate) stop_reason: Option<ExitReason>,
    /// Watches and links of this shard's agents.
    pub(crate) monitors: Monitors,
    /// Messages to send later (`Ctx::send_after`), by deadline.
    pub(crate) timers: Timers,
    /// Remote `spawn_linked_on` requests by reply token: the asker's side of the link is added
    /// when the spawn's answer arrives.
    /// A `BTreeMap`: walked in token order, so what a shard does never depends on a hash seed.
    pub(crate) link_on_reply: std::collections::BTreeMap<u64, PendingLink>,
    /// Where a sample of this shard's dead letters goes (`subscribe_dead_letters`).
    pub(crate) dead_letter_sink: Option<DeadLetterSink>,
    /// Normal-lane messages are being shed (decided at the start of each pass).
    pub(crate) shedding: bool,

    // --- Names and asks.
    /// The names this shard owns (owner = hash of the name).
    pub(crate) registry: RegistryPartition,
    /// Names registered for agents living here, so they are removed when the agent stops.
    pub(crate) names_of: HashMap<u32, Vec<Box<str>>>,
    /// Asks this shard's agents have in flight: reply slots with deadlines.
    pub(crate) asks: PendingAsks,
    /// Typed asks' adapters parked until their answers reach the askers, and scatter/gathers
    /// in progress (see `ask::then`).
    pub(crate) answers: crate::ask::then::Answers,

    // --- The mesh.
    /// The sending end of the lap ring to each peer (`None` for this shard), with backlogs.
    pub(crate) outbound: Vec<Option<Outbound>>,
    /// Peers this pass staged or backlogged envelopes for: the ones `flush_outbound` visits.
    pub(crate) dirty_peers: Vec<usize>,
    /// Keep this pass's staged batches unpublished (a simulator delaying their visibility;
    /// `Shard::hold_outbound`). A batch that fills still goes out.
    pub(crate) hold_outbound: bool,
    /// The receiving end of the lap ring from each peer (`None` for this shard).
    pub(crate) inbound: Vec<Option<Consumer<Envelope>>>,
    /// Envelopes pushed into rings, cumulative (drain progress for shutdown).
    pub(crate) pushed: u64,
    /// Envelopes popped from rings, cumulative (drain progress for shutdown).
    pub(crate) popped: u64,

    // --- Bookkeeping.
    /// Counters, histograms and gauges of this shard.
    pub(crate) metrics: ShardMetrics,
    /// A per-pass arena, reset at the end of every pass.
    pub(crate) scratch: Bump,
    /// The engine clock read once per pass, when a pass needs it (0: not read yet).
    pub(crate) now_cache: u64,
    /// Round-robin cursor for `SpawnPlacement::RoundRobin` from this shard's agents.
    pub(crate) rr_cursor: usize,
    /// Set by `halt`: new messages become `shutdown` dead letters.
    pub(crate) halted: bool,
    /// The load last published to the shared gauge (republished only when it changes).
    pub(crate) load_published: u64,
    /// A handler woke a task of the shard's executor: the driver yields after this pass.
    pub(crate) yield_requested: bool,
    /// Shard-local values by type (`Ctx::shard_local`): state every agent of the shard reaches
    /// without a message, such as the coordination layer's capability index.
    pub(crate) locals: HashMap<std::any::TypeId, std::rc::Rc<dyn std::any::Any>>,
    /// Where every dispatch is reported, when a driver asked (`Shard::trace_dispatches`, for
    /// a simulator's trace): one test of this field per message otherwise.
    pub(crate) dispatch_trace: Option<super::cluster::DispatchSink>,
    /// Message tracing: the one flag the send and dispatch paths test, and the traced hop
    /// being handled (see `trace`).
    pub(crate) tracer: crate::trace::shard::ShardTracer,
    /// Work services left for the shard's stop (`ShardSetup::on_stop`), run after `halt`.
    pub(crate) stop_hooks: Vec<crate::engine::service::StopHook>,
}

impl Shard {
    pub(crate) fn new(
        index: usize,
        limits: ShardLimits,
        shared: Arc<Shared>,
        outbound: Vec<Option<Producer<Envelope>>>,
        inbound: Vec<Option<Consumer<Envelope>>>,
    ) -> Self {
        let peers = outbound.len();
        let sample = limits.latency_sample_every.max(1).next_power_of_two();
        let tracer = crate::trace::shard::ShardTracer::new(shared.trace.clone(), index);
        Self {
            index,
            shared,
            slots: Slots::with_capacity(1024),
            kinds: Kinds::default(),
            store: MessageStore::with_capacity(4096),
            run_queue: VecDeque::with_capacity(4096),
            yielded: Vec::new(),
            running: u32::MAX,
            pending_stops: Vec::with_capacity(64),
            control: VecDeque::with_capacity(256),
            control_current: None,
            stop_reason: None,
            monitors: Monitors::default(),
            timers: Timers::default(),
            link_on_reply: std::collections::BTreeMap::new(),
            dead_letter_sink: None,
            shedding: false,
            registry: RegistryPartition::with_capacity(1024),
            names_of: HashMap::new(),
            asks: PendingAsks::new(index, 1024),
            answers: Default::default(),
            outbound: outbound
                .into_iter()
                .map(|p| {
                    p.map(|producer| Outbound {
                        producer,
                        control_backlog: VecDeque::new(),
                        backlog: VecDeque::new(),
                        dirty: false,
                    })
                })
                .collect(),
            dirty_peers: Vec::with_capacity(peers),
            hold_outbound: false,
            inbound,
            metrics: ShardMetrics::new(sample),
            scratch: Bump::with_capacity(64 * 1024),
            now_cache: 0,
            rr_cursor: index,
            pushed: 0,
            popped: 0,
            halted: false,
            load_published: u64::MAX,
            yield_requested: false,
            locals: HashMap::new(),
            dispatch_trace: None,
            tracer,
            stop_hooks: Vec::new(),
            limits,
        }
    }

    /// This shard's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Number of shards in the engine.
    pub fn shards(&self) -> usize {
        self.shared.shards
    }

    /// Live agents on this shard.
    pub fn agents(&self) -> u64 {
        self.slots.live()
    }

    /// Engine-clock nanoseconds, read at most once per pass.
    #[inline]
    pub(crate) fn now_ns(&mut self) -> u64 {
        if self.now_cache == 0 {
            self.now_cache = self.shared.clock.now_ns();
        }
        self.now_cache
    }

    /// Stamps a counted message for the latency histogram when it is its turn.
    #[inline]
    pub(crate) fn stamp(&mut self, env: &mut Envelope) {
        // A message with a deadline has no room for a sample: the sample goes to a later one.
        if !env.has_deadline() && self.metrics.should_sample() {
            env.set_sent_ns(self.shared.clock.now_ns());
        }
    }

    /// Sends an envelope that originates on this shard. A refusal hands it back: the target's
    /// mailbox is full under `reject`, or the backlog to its shard is full.
    #[inline]
    pub(crate) fn route(&mut self, env: Envelope) -> Result<(), Envelope> {
        // One branch for both rare cases: tracing on, or the shard halted.
        if self.tracer.on() | self.halted {
            if !self.halted && self.tracer.skips() {
                return self.route_plain(env);
            }
            return self.route_slow(env);
        }
        self.route_plain(env)
    }

    /// `route` while tracing is on or the shard halted: a message to be traced is wrapped,
    /// and a refused one is unwrapped before it goes back to its sender.
    #[cold]
    #[inline(never)]
    fn route_slow(&mut self, env: Envelope) -> Result<(), Envelope> {
        if self.halted {
            self.dead_letter(env, DeadLetterReason::Shutdown);
            return Ok(());
        }
        let env = self.trace_outgoing(env);
        self.route_plain(env).map_err(crate::trace::shard::discard)
    }

    #[inline]
    fn route_plain(&mut self, env: Envelope) -> Result<(), Envelope> {
        let to = match env.kind {
            Kind::User | Kind::Answer | Kind::Undelivered | Kind::Signal => env.target().shard(),
            Kind::Reply => AgentId::from_bits(env.to).shard(),
            Kind::System => {
                debug_assert!(false, "system envelopes go through send_system");
                return Ok(());
            }
        };
        if to == self.index {
            if env.kind == Kind::Reply {
                self.accept_reply(env);
                return Ok(());
            }
            return self.accept(env, true);
        }
        if to >= self.shared.shards {
            self.dead_letter(env, DeadLetterReason::NoSuchAgent);
            return Ok(());
        }
        self.push_outbound(to, env)
    }

    /// Whether a dispatch needs more than the plain path: tracing is on, or a driver asked for
    /// the dispatch trace. Two loads, one branch.
    #[inline(always)]
    pub(crate) fn hooked(&self) -> bool {
        self.tracer.holds_current() | self.dispatch_trace.is_some()
    }

    /// The envelope as it leaves this shard's current hop: wrapped when it is to be traced
    /// (see `ShardTracer::outgoing`; the clock is read only then).
    #[inline]
    pub(crate) fn trace_outgoing(&mut self, env: Envelope) -> Envelope {
        if !self.tracer.on() {
            return env;
        }
        let clock = &self.shared.clock;
        self.tracer.outgoing(env, || clock.now_ns())
    }

    /// A timer's message takes its trace when it is armed (the arming hop is its parent, and
    /// its queue time includes the delay), not when it fires, when nothing is current.
    #[inline]
    pub(crate) fn trace_armed(&mut self, env: Envelope) -> Envelope {
        if !self.tracer.on() {
            return env;
        }
        let clock = &self.shared.clock;
        self.tracer.outgoing_armed(env, || clock.now_ns())
    }

    /// Stages a system envelope for shard `to` (or handles it here when `to` is this shard).
    pub(crate) fn send_system(&mut self, to: usize, env: Envelope) -> Result<(), Envelope> {
        if to == self.index {
            self.handle_system(env);
            return Ok(());
        }
        self.push_outbound(to, env)
    }

    fn push_outbound(&mut self, to: usize, env: Envelope) -> Result<(), Envelope> {
        let Some(out) = self.outbound.get_mut(to).and_then(Option::as_mut) else {
            return Err(env);
        };
        let control = env.is_control();
        let result = if control && !(out.backlog.is_empty() && out.control_backlog.is_empty()) {
            // The control lane never waits behind normal messages, and is never refused.
            out.control_backlog.push_back(env);
            Ok(())
        } else if out.backlog.is_empty() {
            match out.producer.stage(env) {
                Ok(()) => {
                    // A full batch goes out now rather than at the end of the pass: a busy
                    // pass (a producer that keeps yielding to itself) must not starve the peer.
                    if out.producer.staged() >= self.limits.batch {
                        let n = out.producer.publish();
                        self.pushed += n as u64;
                        self.shared.doorbells[to].ring();
                    }
                    Ok(())
                }
                Err(PushError::Full(env)) => {
                    if control {
                        out.control_backlog.push_back(env);
                    } else {
                        out.backlog.push_back(env);
                    }
                    Ok(())
                }
                Err(PushError::Closed(env)) => Err(env),
            }
        } else if out.backlog.len() < self.limits.backlog_capacity || env.kind != Kind::User {
            // Only new user messages meet backpressure here. Replies, delivery notices and
            // engine operations answer something already admitted (an ask holds a reply slot),
            // so refusing them would turn backpressure into lost answers.
            out.backlog.push_back(env);
            Ok(())
        } else {
            Err(env)
        };
        if result.is_ok() && !out.dirty {
            out.dirty = true;
            self.dirty_peers.push(to);
        }
        match result {
            Err(env) if out.producer.is_closed() => {
                self.dead_letter(env, DeadLetterReason::Shutdown);
                Ok(())
            }
            other => other,
        }
    }

    /// Step 5: publish every staged batch (one mark store per envelope, on its own line), move
    /// backlog into rings with room, and ring the doorbells of peers that sleep. Returns the
    /// envelopes published.
    pub(crate) fn flush_outbound(&mut self) -> usize {
        if self.hold_outbound {
            return 0;
        }
        let mut published = 0;
        let mut i = 0;
        while i < self.dirty_peers.len() {
            let peer = self.dirty_peers[i];
            let Some(out) = self.outbound[peer].as_mut() else {
                i += 1;
                continue;
            };
            if !(out.backlog.is_empty() && out.control_backlog.is_empty()) {
                // `push_batch` takes an envelope from a backlog only once it holds a free slot
                // (reloading the consumer's head when its cached copy says full), so nothing
                // leaves a backlog without a place. The control backlog goes first.
                let Outbound { producer, control_backlog, backlog, .. } = out;
                let moved = producer.push_batch(&mut std::iter::from_fn(|| {
                    control_backlog.pop_front().or_else(|| backlog.pop_front())
                }));
                self.metrics.counters.backlog_flushed += moved as u64;
            }
            let n = out.producer.publish();
            if n > 0 {
                self.shared.doorbells[peer].ring();
            }
            published += n;
            self.pushed += n as u64;
            if out.backlog.is_empty() && out.control_backlog.is_empty() {
                out.dirty = false;
                self.dirty_peers.swap_remove(i);
            } else {
                i += 1;
            }
        }
        published
    }

    /// Puts an envelope that reached this shard into its target's mailbox. `local` says it was
    /// sent by an agent of this shard (so a `reject` overflow can hand it back).
    pub(crate) fn accept(&mut self, env: Envelope, local: bool) -> Result<(), Envelope> {
        let target = env.target();
        let control = env.is_control();
        let shed = !control && env.kind == Kind::User && self.overloaded();
        let Some(slot) = self.slots.get_mut(target.slot()) else {
            self.dead_letter(env, DeadLetterReason::NoSuchAgent);
            return Ok(());
        };
        if slot.state == SlotState::Free {
            // Freeing a slot bumps its generation: one past the id's means this very agent
            // stopped and nothing has lived there since.
            let reason = if slot.generation == target.generation() {
                DeadLetterReason::NoSuchAgent
            } else if slot.generation == target.generation().wrapping_add(1) & crate::agent::GENERATION_MASK {
                DeadLetterReason::Stopped
            } else {
                DeadLetterReason::StaleGeneration
            };
            self.dead_letter(env, reason);
            return Ok(());
        }
        if slot.generation != target.generation() {
            self.dead_letter(env, DeadLetterReason::StaleGeneration);
            return Ok(());
        }
        if slot.state == SlotState::Stopping {
            self.dead_letter(env, DeadLetterReason::Stopped);
            return Ok(());
        }
        if control {
            self.control.push_back(env);
            return Ok(());
        }
        if shed {
            self.dead_letter(env, DeadLetterReason::Shed);
            return Ok(());
        }
        // Replies and delivery notices always fit: they answer something the agent did.
        if env.kind == Kind::User && slot.queue.len() >= slot.capacity {
            return match (self.limits.overflow, local) {
                (OverflowPolicy::Reject, true) => Err(env),
                _ => {
                    self.dead_letter(env, DeadLetterReason::MailboxFull);
                    Ok(())
                }
            };
        }
        self.store.push(&mut slot.queue, env);
        if slot.state == SlotState::Idle {
            slot.state = SlotState::Scheduled;
            if target.slot() == self.running {
                self.yielded.push(target.slot());
            } else {
                self.run_queue.push_back(target.slot());
            }
        }
        Ok(())
    }

    /// Whether a normal-lane message arriving now is shed.
    #[inline]
    fn overloaded(&self) -> bool {
        self.shedding || (self.limits.shed_queue_depth != 0 && self.store.in_use() >= self.limits.shed_queue_depth)
    }

    /// Decides, at the start of a pass, whether the shard sheds: queue depth at or past its
    /// threshold, or the latest sampled enqueue-to-dispatch latency past its threshold while
    /// messages are still queued (an empty shard is not late).
    pub(crate) fn update_shedding(&mut self) {
        let queued = self.store.in_use();
        let deep = self.limits.shed_queue_depth != 0 && queued >= self.limits.shed_queue_depth;
        let late = self.limits.shed_latency_ns != 0
            && queued > 0
            && self.metrics.last_latency_ns >= self.limits.shed_latency_ns;
        if queued == 0 {
            self.metrics.last_latency_ns = 0;
        }
        self.shedding = deep || late;
    }

    /// Counts a message in hand that did not complete (a handler panicked on it), reports it
    /// (sampled) to the dead-letter subscriber, and fails its ask at once.
    pub(crate) fn account_in_hand(&mut self, held: crate::agent::InHand, reason: DeadLetterReason) {
        if held.counted {
            self.metrics.dead_letter(reason);
            if self.dead_letter_sink.is_some() && !held.notice {
                self.report_dead_letter(held.to, held.from, (held.type_name)(), reason);
            }
        }
        if let Some(token) = held.ask_token {
            self.fail_ask(token, reason);
        }
    }

    /// Fails the agent ask whose reply token is `token` with `AskError::Undelivered(reason)`.
    pub(crate) fn fail_ask(&mut self, token: u64, reason: DeadLetterReason) {
        self.fail_ask_with(token, crate::ask::AskError::Undelivered(reason));
    }

    /// Fails the agent ask whose reply token is `token` with `error` (uncounted, control lane).
    pub(crate) fn fail_ask_with(&mut self, token: u64, error: crate::ask::AskError) {
        if self.halted {
            return;
        }
        let failure = crate::agent::AskFailure(error);
        self.reply_payload(crate::ask::ReplyTarget::Shard(token), false, crate::payload::Payload::new(failure));
    }

    /// Counts a dead letter, hands the message back to its sender when it asked, fails the ask
    /// it carried, and reports it (sampled) to the dead-letter subscriber. Any other `ReplyTo`
    /// dropped with the message (a host ask's, one forwarded) fails its ask with
    /// `Undelivered(reason)`.
    pub(crate) fn dead_letter(&mut self, env: Envelope, reason: DeadLetterReason) {
        let env = if env.flags & crate::envelope::FLAG_TRACED != 0 {
            let now = self.shared.clock.now_ns();
            self.tracer.finish_here(env, crate::trace::Hop::DeadLetter, now)
        } else {
            env
        };
        let own = (env.kind == Kind::User && env.flags & FLAG_ASK != 0 && env.from != NO_SENDER).then_some(env.request);
        crate::ask::with_drop_reason(reason, own, || self.dead_letter_dropping(env, reason));
    }

    fn dead_letter_dropping(&mut self, env: Envelope, reason: DeadLetterReason) {
        if env.kind == Kind::Answer {
            // Nobody will run the adapter or finisher this answer names.
            self.discard_answer(env.request);
        }
        if env.counted() {
            self.metrics.dead_letter(reason);
            if self.dead_letter_sink.is_some() && env.flags & FLAG_DEAD_LETTER_NOTICE == 0 {
                self.report_dead_letter(env.to, env.from, env.payload.type_name(), reason);
            }
        }
        if env.kind == Kind::User && env.flags & FLAG_ASK != 0 && env.from != NO_SENDER {
            self.fail_ask(env.request, reason);
        }
        if env.kind == Kind::User && env.flags & FLAG_NOTIFY_UNDELIVERED != 0 && env.from != NO_SENDER && !self.halted {
            let notice = Envelope::new(Kind::Undelivered, env.from, env.to, reason as u64, 0, env.payload);
            // A notice that cannot be routed is dropped: the loss is already counted above.
            let _ = self.route(notice);
        }
    }

    /// Sends a sampled notice of a dead letter to the subscriber.
    fn report_dead_letter(
        &mut self,
        to_bits: u64,
        from_bits: u64,
        message_type: &'static str,
        reason: DeadLetterReason,
    ) {
        let Some(sink) = self.dead_letter_sink.as_mut() else { return };
        let Some(to) = sink.sample() else { return };
        let notice = crate::metrics::DeadLetter {
            to: AgentId::from_bits(to_bits),
            from: (from_bits != NO_SENDER).then(|| AgentId::from_bits(from_bits)),
            reason,
            message_type,
            shard: self.index as u16,
        };
        let mut out = Envelope::user(to, NO_SENDER, crate::payload::Payload::new(notice));
        out.flags = FLAG_DEAD_LETTER_NOTICE | FLAG_CONTROL;
        self.metrics.counters.dead_letter_notices += 1;
        // Not counted, never reported again: a lost notice is just a lost sample.
        let _ = self.route(out);
    }

    /// Messages queued on this shard: mailboxes, the control lane, outbound backlogs.
    pub(crate) fn queued_total(&self) -> u64 {
        let backlog: usize = self.outbound.iter().flatten().map(|o| o.backlog.len() + o.control_backlog.len()).sum();
        (self.store.in_use() + self.control.len() + backlog) as u64
    }

    /// Publishes the live-agent gauge when it changed.
    pub(crate) fn publish_load(&mut self) {
        let live = self.slots.live();
        if live != self.load_published {
            self.load_published = live;
            self.shared.loads[self.index].store(live, Ordering::Relaxed);
        }
    }

    /// Whether any input is waiting in a ring or the inject queue (used before parking).
    pub(crate) fn has_input(&self) -> bool {
        !self.shared.injects[self.index].is_empty() || self.inbound.iter().flatten().any(|c| !c.is_empty())
    }

    /// Announces on the doorbell that the shard is about to sleep, then re-checks its inputs and
    /// its phase. `true`: nothing came, park (and `wake_up` the doorbell after). `false`: work
    /// came after all, and the announcement was withdrawn. Call after storing the waker, if any.
    pub(crate) fn announce_sleep(&mut self, request: &super::ParkRequest) -> bool {
        let shared = Arc::clone(&self.shared);
        shared.doorbells[self.index].announce_and_recheck(|| self.has_input() || self.current_phase() != request.phase)
    }

    /// The current lifecycle phase.
    pub(crate) fn phase(&self) -> Phase {
        self.shared.phase()
    }
}
