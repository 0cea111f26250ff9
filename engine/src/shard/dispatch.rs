//! The dispatcher pass: the loop body every executor runs, with no executor in it.
//!
//! One pass does, in order (docs/ARCHITECTURE.md numbers the steps the same way):
//! 1. drain each inbound ring, up to `batch` envelopes per ring, with one release store of the
//!    ring's head per ring;
//! 2. drain the host inject queue, up to `batch` envelopes;
//! 3. dispatch the control lane (signals, control messages, engine answers), then run ready
//!    agents from the run queue, up to `agents_per_pass` turns (agents that another agent's
//!    local send schedules during the pass included; a self-message waits for the next pass),
//!    each for up to `agent_budget` messages, then the stops requested meanwhile; control
//!    envelopes queued meanwhile are dispatched before the next turn (a stop from a peer or a
//!    host thread does not wait for this step: it runs as steps 1 and 2 take it in, in order);
//! 4. fail the asks whose `ReplyTo` was dropped unanswered on this thread and those whose
//!    deadline passed, and send the timers that are due;
//! 5. publish every staged outbound batch (the lap ring marks each envelope's slot full), move
//!    backlogs into rings with room, and ring the doorbells of peers that announced they sleep.
//!
//! It returns the amount of work done, so the caller (a glommio task, a plain thread, a test, a
//! simulator) decides what idling means: spin, yield, or park. No system call is made on the way
//! unless a peer sleeps (one `futex` wake) or a clock read is needed (a vDSO call).

use super::core::Shard;
use super::shared::Phase;
use crate::agent::{RunMode, SlotState};
use crate::envelope::{Envelope, Kind};
use crate::metrics::DeadLetterReason;
use std::sync::atomic::Ordering;

impl Shard {
    /// Runs one dispatcher pass; returns the work done (envelopes taken in, messages handled,
    /// stops, expired asks, envelopes published). Zero means the shard is idle.
    ///
    /// Its cost follows its work: each step that has nothing to do (an empty ring, inject
    /// queue, control queue, run queue or stop list, no due timer or ask, no peer to flush to)
    /// costs one check of state this shard's cache already holds, and no call.
    pub fn pass(&mut self) -> usize {
        self.now_cache = 0;
        self.tracer.refresh();
        self.update_shedding();
        let mut work = self.drain_inbound();
        work += self.drain_inject();
        if !self.control.is_empty() {
            work += self.run_control();
        }
        if !self.run_queue.is_empty() {
            work += self.run_ready();
        }
        if !self.pending_stops.is_empty() {
            work += self.run_pending_stops();
        }
        work += self.fail_dropped_asks();
        work += self.expire_asks();
        work += self.fire_timers();
        if !self.dirty_peers.is_empty() {
            work += self.flush_outbound();
        }
        self.scratch.reset();
        if self.tracer.holds_current() {
            self.tracer.clear();
        }
        self.metrics.counters.passes += 1;
        self.publish_load();
        work
    }

    fn drain_inbound(&mut self) -> usize {
        let batch = self.limits.batch;
        let mut n = 0;
        let mut from = 0;
        // Empty rings cost one load each of their next slot's mark (a line this core holds
        // until the producer writes it), in one tight scan.
        while let Some(offset) = self.inbound[from..].iter().position(|c| c.as_ref().is_some_and(|c| !c.is_empty())) {
            let peer = from + offset;
            from = peer + 1;
            // Taken out while its envelopes are accepted (`accept_inbound` borrows the shard).
            let Some(mut consumer) = self.inbound[peer].take() else { continue };
            n += consumer.pop_batch(batch, |env| self.accept_inbound(env));
            self.inbound[peer] = Some(consumer);
        }
        self.popped += n as u64;
        n
    }

    fn drain_inject(&mut self) -> usize {
        // `ArrayQueue::pop` on an empty queue issues a SeqCst fence (tens of ns on every pass);
        // `is_empty` is two plain loads on x86, so look before taking.
        if self.shared.injects[self.index].is_empty() {
            return 0;
        }
        let mut n = 0;
        while n < self.limits.batch {
            let Some(env) = self.shared.injects[self.index].pop() else { break };
            self.accept_inbound(env);
            n += 1;
        }
        n
    }

    /// Routes an envelope that arrived from a peer or a host thread.
    pub(crate) fn accept_inbound(&mut self, env: Envelope) {
        match env.kind {
            Kind::User | Kind::Answer | Kind::Undelivered | Kind::Signal => {
                if env.target().shard() != self.index {
                    // Injected for another shard: forward it (or count it when that fails).
                    if let Err(env) = self.route(env) {
                        self.dead_letter(env, DeadLetterReason::MailboxFull);
                    }
                    return;
                }
                // `accept` hands an envelope back only for local senders.
                let _ = self.accept(env, false);
            }
            Kind::Reply => self.accept_reply(env),
            Kind::System => self.handle_system(env),
        }
    }

    /// Runs up to `agents_per_pass` agent turns. Agents scheduled during the pass by another
    /// agent's send run in the same pass, so a local exchange does not pay a whole pass per
    /// message; an agent that sends itself a message yields: it runs again in the next pass,
    /// after the rings were drained and flushed. The turn limit bounds the pass.
    fn run_ready(&mut self) -> usize {
        let budget = self.limits.agent_budget;
        let limit = self.limits.agents_per_pass;
        let mut handled = 0;
        for _ in 0..limit {
            if !self.control.is_empty() {
                handled += self.run_control();
            }
            let Some(slot_index) = self.run_queue.pop_front() else { break };
            let Some(slot) = self.slots.get_mut(slot_index) else { continue };
            if slot.state != SlotState::Scheduled {
                continue;
            }
            slot.state = SlotState::Idle;
            let run = self.kinds.run_fn(slot.kind);
            self.running = slot_index;
            handled += run(self, slot_index, RunMode::Messages(budget)) as usize;
            self.running = u32::MAX;
            if let Some(slot) = self.slots.get_mut(slot_index) {
                if slot.state == SlotState::Idle && !slot.queue.is_empty() {
                    slot.state = SlotState::Scheduled;
                    self.run_queue.push_back(slot_index);
                }
            }
            if !self.pending_stops.is_empty() {
                self.run_pending_stops();
            }
        }
        if !self.yielded.is_empty() {
            // `extend` costs a capacity check and a drain set-up even when empty: most passes
            // have no self-message, so look first.
            self.run_queue.extend(self.yielded.drain(..));
        }
        handled
    }

    /// Whether the last pass left anything to do (staged output, backlog or queued agents).
    pub(crate) fn has_pending_work(&self) -> bool {
        !self.run_queue.is_empty()
            || !self.dirty_peers.is_empty()
            || !self.pending_stops.is_empty()
            || !self.control.is_empty()
    }

    /// Publishes drain progress (only while the engine drains).
    pub(crate) fn publish_progress(&mut self, idle: bool) {
        let p = &self.shared.progress[self.index];
        p.pushed.store(self.pushed, Ordering::Relaxed);
        p.popped.store(self.popped, Ordering::Relaxed);
        p.idle.store(idle && !self.has_pending_work(), Ordering::Release);
    }

    /// Stops dispatching for good: waits until every shard has stopped pushing, then counts
    /// everything still in flight as `shutdown` dead letters, stops every agent (their queued
    /// messages too become `shutdown` dead letters), and returns the final figures.
    pub fn halt(&mut self) -> crate::metrics::ShardStats {
        self.now_cache = 0;
        self.flush_outbound();
        self.halted = true;
        self.shared.progress[self.index].halted.store(true, Ordering::Release);
        // Wait for every peer to stop pushing. Peers never wait for us, so this cannot deadlock.
        while !self.shared.progress.iter().all(|p| p.halted.load(Ordering::Acquire)) {
            std::thread::yield_now();
        }
        let mut inbound = std::mem::take(&mut self.inbound);
        for consumer in inbound.iter_mut().flatten() {
            while consumer.pop_batch(usize::MAX, |env| self.discard(env)) > 0 {}
        }
        self.inbound = inbound;
        while let Some(env) = self.shared.injects[self.index].pop() {
            self.discard(env);
        }
        for peer in 0..self.outbound.len() {
            let backlogs = self.outbound[peer]
                .as_mut()
                .map(|o| (std::mem::take(&mut o.control_backlog), std::mem::take(&mut o.backlog)));
            if let Some((control, normal)) = backlogs {
                for env in control.into_iter().chain(normal) {
                    self.discard(env);
                }
            }
        }
        while let Some(env) = self.control.pop_front() {
            self.discard(env);
        }
        // A pending timer's message was never sent: it is counted as sent now, and lost.
        for env in self.timers.drain() {
            if env.counted() {
                self.metrics.counters.sent += 1;
            }
            self.discard(env);
        }
        for slot in self.slots.live_indices() {
            if let Some(s) = self.slots.get(slot) {
                let id = crate::agent::AgentId::new(self.index, slot, s.generation);
                crate::agent::run_agent_stop(self, id, crate::agent::ExitReason::Shutdown);
            }
        }
        // Stops at halt may have queued control envelopes (signals) for this shard.
        while let Some(env) = self.control.pop_front() {
            self.discard(env);
        }
        self.run_pending_stops();
        self.publish_load();
        self.shared.halted_count.fetch_add(1, Ordering::AcqRel);
        self.stats()
    }

    /// Counts an envelope found in flight at halt; system requests are dropped (their askers
    /// time out or see the shutdown).
    fn discard(&mut self, env: Envelope) {
        if env.kind != Kind::System {
            self.dead_letter(env, DeadLetterReason::Shutdown);
        }
    }

    /// Sends every timer that is due. Its message counts as sent now.
    fn fire_timers(&mut self) -> usize {
        let Some(next) = self.timers.next_due() else { return 0 };
        if next > self.now_ns() {
            return 0;
        }
        let now = self.now_ns();
        let mut n = 0;
        while let Some(env) = self.timers.pop_due(now) {
            n += 1;
            self.metrics.counters.timers_fired += 1;
            if env.counted() {
                self.metrics.counters.sent += 1;
            }
            if let Err(env) = self.route(env) {
                self.dead_letter(env, DeadLetterReason::MailboxFull);
            }
        }
        n
    }

    /// The engine's lifecycle phase.
    pub(crate) fn current_phase(&self) -> Phase {
        self.phase()
    }
}
