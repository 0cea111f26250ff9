//! Engine operations a shard performs for others: remote spawn and stop, registry requests,
//! stats, reply delivery, and the clean-up when an agent stops.
//!
//! System operations travel as `Kind::System` envelopes (from peers over the rings, from host
//! threads through the inject queue). They are not user messages and are not part of the
//! sent/delivered accounting; their answers go back through the same `ReplyTo` tokens asks use.

use super::core::Shard;
use crate::agent::{run_agent_stop, Agent, AgentId, ExitReason, SpawnError, SpawnPlacement};
use crate::ask::{AskError, ReplyTarget, ReplyTo};
use crate::envelope::{Envelope, Kind, FLAG_CONTROL, FLAG_COUNTED, NO_SENDER};
use crate::metrics::{DeadLetterReason, DeadLetterSink, ShardStats};
use crate::payload::Payload;
use crate::registry::{owner_of, RegistryError};

/// Builds an agent on the shard that runs it.
pub(crate) type SpawnFn = Box<dyn FnOnce(&mut Shard) -> Result<AgentId, SpawnError> + Send>;

/// Builds a chunk of agents on the shard that runs them.
pub(crate) type SpawnManyFn = Box<dyn FnOnce(&mut Shard) -> crate::engine::ChunkSpawned + Send>;

/// An engine operation for a shard.
pub(crate) enum SystemOp {
    /// Spawn an agent here and answer with its id.
    Spawn(SpawnFn, ReplyTo<Result<AgentId, SpawnError>>),
    /// Spawn a chunk of agents here (a host's `spawn_batch`) and answer with their ids.
    SpawnMany(SpawnManyFn, ReplyTo<crate::engine::ChunkSpawned>),
    /// Stop an agent of this shard with a reason.
    Stop(AgentId, ExitReason),
    /// Bind a name in this shard's partition (taking it over from `replace` when it holds it).
    Register {
        name: Box<str>,
        id: AgentId,
        replace: Option<AgentId>,
        reply: Option<ReplyTo<Result<(), RegistryError>>>,
    },
    /// For an agent living here: remember the name (for removal at stop) and register it with
    /// its owner. Used by host threads and supervisors, so that a stop always removes the
    /// agent's names.
    BindName { name: Box<str>, id: AgentId, replace: Option<AgentId>, reply: ReplyTo<Result<(), RegistryError>> },
    /// `watcher` watches `target`, an agent of this shard.
    Watch { target: AgentId, watcher: AgentId },
    /// `watcher` stops watching `target`.
    Unwatch { target: AgentId, watcher: AgentId },
    /// Record `target`'s side of a link to `other` (`target` lives here).
    Link { target: AgentId, other: AgentId },
    /// Remove `target`'s side of its link to `other`.
    Unlink { target: AgentId, other: AgentId },
    /// Set (or clear) the dead-letter subscriber.
    DeadLetterSink(Option<(AgentId, u32)>, ReplyTo<()>),
    /// Remove a name from this shard's partition (only if bound to `expected`, when given).
    Unregister { name: Box<str>, expected: Option<AgentId>, reply: Option<ReplyTo<bool>> },
    /// Resolve a name in this shard's partition.
    Lookup { name: Box<str>, reply: ReplyTo<Option<AgentId>> },
    /// Answer with this shard's stats.
    Stats(ReplyTo<ShardStats>),
}

impl SystemOp {
    pub(crate) fn spawn<A: Agent, F: FnOnce() -> A + Send + 'static>(
        factory: F,
        mailbox_capacity: Option<u32>,
        reply: ReplyTo<Result<AgentId, SpawnError>>,
    ) -> Self {
        SystemOp::Spawn(Box::new(move |shard: &mut Shard| shard.spawn_here(factory(), mailbox_capacity)), reply)
    }
}

impl Shard {
    /// Handles a `Kind::System` envelope.
    pub(crate) fn handle_system(&mut self, env: Envelope) {
        let op = match env.payload.take::<SystemOp>() {
            Ok(op) => op,
            Err(p) => {
                debug_assert!(false, "system envelope with a {} payload", p.type_name());
                return;
            }
        };
        // Requests see the stops asked for before them (a host's `stop` then `stats` or
        // `lookup`): run those first, unless an agent's turn is running (they run after it).
        if !matches!(op, SystemOp::Stop(..)) && !self.pending_stops.is_empty() && self.running == u32::MAX {
            self.run_pending_stops();
        }
        match op {
            SystemOp::Spawn(build, reply) => {
                let result = if self.halted { Err(SpawnError::ShuttingDown) } else { build(self) };
                self.reply_value(reply, result);
            }
            SystemOp::SpawnMany(build, reply) => {
                let result = if self.halted { (Vec::new(), Some(SpawnError::ShuttingDown)) } else { build(self) };
                self.reply_value(reply, result);
            }
            SystemOp::Stop(id, reason) => {
                self.pending_stops.push((id, reason));
                // A stop takes effect in order: whatever reaches this shard after it (on the same
                // ring or inject queue) must not reach the old instance. Stops come from peers
                // and host threads, so no turn runs here; were one running, it would go after.
                if self.running == u32::MAX {
                    self.run_pending_stops();
                }
            }
            SystemOp::Register { name, id, replace, reply } => {
                let result = self.registry.register_replacing(&name, id, replace);
                if let Some(reply) = reply {
                    self.reply_value(reply, result);
                }
            }
            SystemOp::BindName { name, id, replace, reply } => self.bind_name(name, id, replace, reply),
            SystemOp::Watch { target, watcher } => self.add_watch(target, watcher),
            SystemOp::Unwatch { target, watcher } => self.remove_watch(target, watcher),
            SystemOp::Link { target, other } => self.add_link(target, other),
            SystemOp::Unlink { target, other } => self.remove_link(target, other),
            SystemOp::DeadLetterSink(sink, reply) => {
                self.dead_letter_sink = sink.map(|(to, every)| DeadLetterSink::new(to, every));
                self.reply_value(reply, ());
            }
            SystemOp::Unregister { name, expected, reply } => {
                let removed = self.registry.unregister(&name, expected);
                if let Some(reply) = reply {
                    self.reply_value(reply, removed);
                }
            }
            SystemOp::Lookup { name, reply } => {
                let found = self.registry.lookup(&name);
                self.reply_value(reply, found);
            }
            SystemOp::Stats(reply) => {
                let stats = self.stats();
                self.reply_value(reply, stats);
            }
        }
    }

    /// Remembers `name` for `id` (an agent of this shard) and registers it with its owner; the
    /// answer goes to `reply` (from the owner when that is another shard).
    pub(crate) fn bind_name(
        &mut self,
        name: Box<str>,
        id: AgentId,
        replace: Option<AgentId>,
        reply: ReplyTo<Result<(), RegistryError>>,
    ) {
        let owner = owner_of(&name, self.shared.shards);
        if owner == self.index {
            let result = self.register_here(&name, id, replace);
            self.reply_value(reply, result);
        } else if !self.slots.is_live(id.slot(), id.generation()) {
            self.reply_value(reply, Err(RegistryError::NoSuchAgent(id)));
        } else {
            self.remember_name(id.slot(), &name);
            let op = SystemOp::Register { name, id, replace, reply: Some(reply) };
            if let Err(env) = self.send_system(owner, Envelope::system(Payload::new(op))) {
                if let Ok(SystemOp::Register { reply: Some(reply), .. }) = env.payload.take::<SystemOp>() {
                    self.reply_value(reply, Err(RegistryError::Unreachable(format!("shard {owner} is overloaded"))));
                }
            }
        }
    }

    /// Binds `name`, which this shard owns, to `id`, a live agent of this shard (taking it over
    /// from `replace`), and remembers it so the agent's stop removes it.
    pub(crate) fn register_here(
        &mut self,
        name: &str,
        id: AgentId,
        replace: Option<AgentId>,
    ) -> Result<(), RegistryError> {
        if !self.slots.is_live(id.slot(), id.generation()) {
            return Err(RegistryError::NoSuchAgent(id));
        }
        self.registry.register_replacing(name, id, replace)?;
        self.remember_name(id.slot(), name);
        Ok(())
    }

    /// Sends an uncounted engine answer.
    pub(crate) fn reply_value<R: Send + 'static>(&mut self, to: ReplyTo<R>, value: R) {
        let (target, counted) = to.take();
        self.reply_payload(target, counted, Payload::new(value));
    }

    /// Sends a reply to its asker: a shard's pending-ask slot (over the mesh, or here), or a
    /// host thread's reply cell. Counted replies answer agents' asks (normal lane); uncounted
    /// ones are the engine's own answers and failures (control lane).
    pub(crate) fn reply_payload(&mut self, target: ReplyTarget, counted: bool, payload: Payload) {
        if counted {
            self.metrics.counters.sent += 1;
        }
        match target {
            ReplyTarget::Host(cell) => {
                if cell.fulfil(payload) {
                    if counted {
                        self.metrics.counters.delivered += 1;
                    }
                } else if counted {
                    self.metrics.dead_letter(DeadLetterReason::LateReply);
                }
            }
            ReplyTarget::Spent => {
                if counted {
                    self.metrics.dead_letter(DeadLetterReason::LateReply);
                }
            }
            ReplyTarget::Shard(token) => {
                let flags = if counted { FLAG_COUNTED } else { FLAG_CONTROL };
                let env = Envelope::new(Kind::Reply, token, NO_SENDER, token, flags, payload);
                if let Err(env) = self.route(env) {
                    // The backlog to the asking shard is full: the asker will time out.
                    self.dead_letter(env, DeadLetterReason::LateReply);
                }
            }
        }
    }

    /// A reply reached the asking shard: settle the ask and queue the answer to the asker.
    pub(crate) fn accept_reply(&mut self, env: Envelope) {
        if env.flags & crate::envelope::FLAG_TRACED != 0 {
            return self.accept_traced_reply(env);
        }
        let Some(settled) = self.asks.settle(env.to) else {
            self.dead_letter(env, DeadLetterReason::LateReply);
            return;
        };
        let mut env = env;
        let pending = if self.link_on_reply.is_empty() { None } else { self.link_on_reply.remove(&env.to) };
        if let Some(pending) = pending {
            self.link_spawned(settled.asker, pending, &mut env.payload);
        }
        let flags = env.flags & (FLAG_COUNTED | FLAG_CONTROL);
        let reply = match env.payload.take::<crate::agent::AskFailure>() {
            Ok(crate::agent::AskFailure(e)) => Err(e),
            Err(payload) => Ok(payload),
        };
        self.continue_ask(settled.asker, settled.then, reply, flags);
    }

    /// A traced reply: its hop's span covers settling the ask and queueing the answer, which
    /// carries the trace on to the asking agent.
    #[cold]
    #[inline(never)]
    fn accept_traced_reply(&mut self, env: Envelope) {
        let now = self.shared.clock.now_ns();
        let (env, open) = self.tracer.begin(env, crate::trace::NO_AGENT, now);
        self.accept_reply(env);
        let now = self.shared.clock.now_ns();
        self.tracer.end(open, now);
    }

    /// A remote `spawn_linked_on` answered: adds the asker's side of the link, and delivers the
    /// child's `Exit` when it died before the answer came (its exit was held for this).
    fn link_spawned(&mut self, asker: AgentId, pending: super::PendingLink, payload: &mut Payload) {
        let answer = std::mem::replace(payload, Payload::new(()));
        *payload = match answer.take::<Result<AgentId, SpawnError>>() {
            Ok(result) => {
                if let Ok(child) = result {
                    self.add_link(asker, child);
                    // Control lane, so before the answer.
                    if let Some(exit) = pending.early_exits.into_iter().find(|e| e.from == child) {
                        self.send_signal(asker, crate::agent::Signal::Exit(exit));
                    }
                }
                Payload::new(result)
            }
            Err(payload) => payload,
        };
    }

    /// Runs a typed ask's continuation on its answer: a single ask's adapter is parked and its
    /// answer queued to the asker (the adapter runs in the asker's dispatch, under its panic
    /// isolation); a gather part is filed, and the gather queued to the asker once complete.
    fn continue_ask(
        &mut self,
        asker: AgentId,
        then: crate::ask::SettledThen,
        reply: Result<Payload, AskError>,
        flags: u8,
    ) {
        let counted = flags & FLAG_COUNTED != 0;
        match then {
            crate::ask::SettledThen::Parked(slot) => {
                let request = u64::from(slot);
                let payload = match reply {
                    Ok(payload) => payload,
                    Err(e) => Payload::new(crate::agent::AskFailure(e)),
                };
                // A traced reply's hop is current: the answer carries its trace on.
                let env = Envelope::new(Kind::Answer, asker.to_bits(), NO_SENDER, request, flags, payload);
                let env = self.trace_outgoing(env);
                // Answers bypass the mailbox bound; a stopped asker makes this a dead letter,
                // which discards the parked adapter.
                let _ = self.accept(env, false);
            }
            crate::ask::SettledThen::Part { gather, part } => {
                if counted {
                    self.metrics.counters.delivered += 1;
                }
                if let Some(done) = self.answers.file_part(gather, part, reply) {
                    self.deliver_gather(done.asker, done.index);
                }
            }
        }
    }

    /// Runs the continuation a `Kind::Answer` envelope names on `reply`: the adapter parked in
    /// its reply slot, or its gather's finisher, building the asker's message `T`. `None` when
    /// it is gone, `Some(None)` when it builds another type (neither happens; see `ask::then`).
    #[inline(always)]
    pub(crate) fn run_answer_as<T: 'static>(
        &mut self,
        request: u64,
        reply: Result<Payload, AskError>,
    ) -> Option<Option<T>> {
        if request & crate::ask::then::ANSWER_GATHER_BIT != 0 {
            return self.answers.finish_as::<T>(request as u32);
        }
        Some(self.asks.take_parked(request as u32)?.run_as::<T>(reply).ok())
    }

    /// Drops the continuation of a `Kind::Answer` envelope that cannot be delivered.
    pub(crate) fn discard_answer(&mut self, request: u64) {
        if request & crate::ask::then::ANSWER_GATHER_BIT != 0 {
            self.answers.discard(request as u32);
        } else {
            drop(self.asks.take_parked(request as u32));
        }
    }

    /// Queues gather `index`'s combined answer to its asker (uncounted; see `ask::then`).
    pub(crate) fn deliver_gather(&mut self, asker: u64, index: u32) {
        let request = crate::ask::then::ANSWER_GATHER_BIT | u64::from(index);
        // The last part's reply is current: the gathered answer carries its trace on.
        let env = Envelope::new(Kind::Answer, asker, NO_SENDER, request, 0, Payload::new(()));
        let env = self.trace_outgoing(env);
        let _ = self.accept(env, false);
    }

    /// Step 4 (asks): fails at once every ask whose `ReplyTo` was dropped unanswered on this
    /// thread since the last pass (see `ask::dropped`).
    #[inline]
    pub(crate) fn fail_dropped_asks(&mut self) -> usize {
        crate::ask::drain_dropped_tokens(|token, why| self.fail_ask_with(token, crate::ask::drop_error(why)))
    }

    /// Step 5 (timers): fails every ask whose deadline has passed.
    pub(crate) fn expire_asks(&mut self) -> usize {
        let Some(next) = self.asks.next_deadline() else { return 0 };
        if next > self.now_ns() {
            return 0;
        }
        let now = self.now_ns();
        let mut n = 0;
        while let Some(settled) = self.asks.pop_expired(now) {
            n += 1;
            self.metrics.counters.ask_timeouts += 1;
            if !self.link_on_reply.is_empty() {
                self.link_on_reply.remove(&settled.request);
            }
            self.continue_ask(settled.asker, settled.then, Err(AskError::Timeout), 0);
        }
        n
    }

    /// Records that the agent in `slot` holds `name`.
    pub(crate) fn remember_name(&mut self, slot: u32, name: &str) {
        let names = self.names_of.entry(slot).or_default();
        if !names.iter().any(|n| &**n == name) {
            names.push(name.into());
        }
    }

    /// Forgets that the agent in `slot` holds `name`.
    pub(crate) fn forget_name(&mut self, slot: u32, name: &str) {
        if let Some(names) = self.names_of.get_mut(&slot) {
            names.retain(|n| &**n != name);
            if names.is_empty() {
                self.names_of.remove(&slot);
            }
        }
    }

    /// Removes `name` from its owner's partition (here, or by a request over the mesh).
    pub(crate) fn unregister_name(&mut self, name: &str, expected: Option<AgentId>) {
        let owner = owner_of(name, self.shared.shards);
        if owner == self.index {
            self.registry.unregister(name, expected);
        } else {
            let op = SystemOp::Unregister { name: name.into(), expected, reply: None };
            let _ = self.send_system(owner, Envelope::system(Payload::new(op)));
        }
    }

    /// Ends a stopped agent's life: its names are removed (here now, elsewhere by one message),
    /// queued messages become `stopped` dead letters, its watchers and links are told why
    /// (after the names, so a restart that reuses a name finds it released first on the same
    /// ring), and its slot goes back to the free list with a new generation.
    pub(crate) fn finish_stop(&mut self, slot_index: u32, exit: ExitReason) {
        let Some(slot) = self.slots.get_mut(slot_index) else { return };
        slot.state = crate::agent::SlotState::Stopping;
        let id = AgentId::new(self.index, slot_index, slot.generation);
        if let Some(names) = self.names_of.remove(&slot_index) {
            for name in names.iter() {
                self.unregister_name(name, Some(id));
            }
        }
        let reason = if self.halted { DeadLetterReason::Shutdown } else { DeadLetterReason::Stopped };
        while let Some(env) = self.slots.get_mut(slot_index).and_then(|s| self.store.pop(&mut s.queue)) {
            self.dead_letter(env, reason);
        }
        self.notify_exit(slot_index, id, &exit);
        self.slots.release(slot_index);
        self.metrics.counters.stopped += 1;
    }

    /// Stops every agent whose stop was requested during the pass.
    pub(crate) fn run_pending_stops(&mut self) -> usize {
        // In request order (a supervisor asks for its children's stops in reverse start order).
        let mut n = 0;
        while !self.pending_stops.is_empty() {
            for (id, reason) in std::mem::take(&mut self.pending_stops) {
                run_agent_stop(self, id, reason);
                n += 1;
            }
        }
        n
    }

    /// Which shard a placement means, from this shard.
    pub(crate) fn resolve_placement(&mut self, placement: SpawnPlacement) -> Result<usize, SpawnError> {
        let shards = self.shared.shards;
        match placement {
            SpawnPlacement::Local => Ok(self.index),
            SpawnPlacement::Shard(s) if s < shards => Ok(s),
            SpawnPlacement::Shard(shard) => Err(SpawnError::NoSuchShard { shard, shards }),
            SpawnPlacement::RoundRobin => {
                self.rr_cursor = (self.rr_cursor + 1) % shards;
                Ok(self.rr_cursor)
            }
            SpawnPlacement::LeastLoaded => Ok(self.shared.least_loaded()),
        }
    }

    /// A snapshot of this shard's figures.
    pub fn stats(&self) -> ShardStats {
        ShardStats {
            shard: self.index,
            counters: self.metrics.counters.clone(),
            agents: self.slots.live(),
            names: self.registry.len() as u64,
            pending_asks: self.asks.live() as u64,
            queued: self.queued_total(),
            timers: self.timers.armed() as u64,
            ring_pushed: self.pushed,
            ring_popped: self.popped,
            shedding: self.shedding,
            watches: self.monitors.watch_count() as u64,
            links: self.monitors.link_count() as u64,
            busiest: self.slots.busiest(self.index, crate::metrics::BUSIEST_AGENTS),
            latency: self.metrics.latency_summary(),
            latency_histogram: self.metrics.latency_histogram(),
        }
    }
}
