//! Monitors and links: which agents hear of an agent's end, and how signals reach them.
//!
//! The shard that owns an agent keeps its watchers and its links, keyed by the agent's slot:
//! - `watchers[slot]`: agents that called `watch` on it; each gets one `Down` when it stops;
//! - `links[slot]`: agents linked to it; each gets one `Exit` when it stops. A link is recorded
//!   on both agents' shards, so it works in both directions.
//!
//! Requests from other shards arrive as system operations (`Watch`, `Link`, ...). Watching or
//! linking an agent that is already gone answers at once with `ExitReason::NoProc`.
//!
//! Invariants: entries exist only for live slots (the stop removes them, then notifies); a
//! watcher or link is listed at most once per slot; only the owning shard's thread touches
//! these tables. Signals are `Kind::Signal` envelopes in the control lane, not counted in the
//! message accounting (`signals_sent` counts them).

use super::core::Shard;
use crate::agent::{run_agent_stop, AgentId, Down, Exit, ExitReason, RunMode, Signal};
use crate::envelope::{Envelope, Kind};
use crate::metrics::DeadLetterReason;
use crate::payload::Payload;
use std::collections::HashMap;

/// The watcher and link tables of one shard; see the module documentation.
#[derive(Default)]
pub(crate) struct Monitors {
    watchers: HashMap<u32, Vec<AgentId>>,
    links: HashMap<u32, Vec<AgentId>>,
}

impl Monitors {
    fn add(table: &mut HashMap<u32, Vec<AgentId>>, slot: u32, who: AgentId) {
        let list = table.entry(slot).or_default();
        if !list.contains(&who) {
            list.push(who);
        }
    }

    fn remove(table: &mut HashMap<u32, Vec<AgentId>>, slot: u32, who: AgentId) {
        if let Some(list) = table.get_mut(&slot) {
            list.retain(|&w| w != who);
            if list.is_empty() {
                table.remove(&slot);
            }
        }
    }

    /// Watches registered on this shard's agents.
    pub(crate) fn watch_count(&self) -> usize {
        self.watchers.values().map(Vec::len).sum()
    }

    /// Links held by this shard's agents.
    pub(crate) fn link_count(&self) -> usize {
        self.links.values().map(Vec::len).sum()
    }
}

impl Shard {
    /// `watcher` watches `target`, an agent of this shard.
    pub(crate) fn add_watch(&mut self, target: AgentId, watcher: AgentId) {
        if self.slots.is_live(target.slot(), target.generation()) {
            Monitors::add(&mut self.monitors.watchers, target.slot(), watcher);
        } else {
            self.send_signal(watcher, Signal::Down(Down { id: target, reason: ExitReason::NoProc }));
        }
    }

    /// `watcher` no longer watches `target` (an agent of this shard).
    pub(crate) fn remove_watch(&mut self, target: AgentId, watcher: AgentId) {
        if self.slots.is_live(target.slot(), target.generation()) {
            Monitors::remove(&mut self.monitors.watchers, target.slot(), watcher);
        }
    }

    /// Records `target`'s side of a link to `other` (`target` lives here). When `target` is
    /// already gone, `other` gets an `Exit` with `NoProc`.
    pub(crate) fn add_link(&mut self, target: AgentId, other: AgentId) {
        if self.slots.is_live(target.slot(), target.generation()) {
            Monitors::add(&mut self.monitors.links, target.slot(), other);
        } else {
            self.send_signal(other, Signal::Exit(Exit { from: target, reason: ExitReason::NoProc }));
        }
    }

    /// Removes `target`'s side of its link to `other`.
    pub(crate) fn remove_link(&mut self, target: AgentId, other: AgentId) {
        if self.slots.is_live(target.slot(), target.generation()) {
            Monitors::remove(&mut self.monitors.links, target.slot(), other);
        }
    }

    /// Sends a signal to `to` (here or on another shard), in the control lane.
    pub(crate) fn send_signal(&mut self, to: AgentId, signal: Signal) {
        let env = Envelope::new(Kind::Signal, to.to_bits(), crate::envelope::NO_SENDER, 0, 0, Payload::new(signal));
        self.metrics.counters.signals_sent += 1;
        // Control envelopes are never refused; one for a shard that is gone is just dropped.
        let _ = self.route(env);
    }

    /// The agent `id` (slot `slot`) stopped with `reason`: tell its watchers and links.
    pub(crate) fn notify_exit(&mut self, slot: u32, id: AgentId, reason: &ExitReason) {
        if let Some(watchers) = self.monitors.watchers.remove(&slot) {
            for watcher in watchers {
                self.send_signal(watcher, Signal::Down(Down { id, reason: reason.clone() }));
            }
        }
        if let Some(links) = self.monitors.links.remove(&slot) {
            for other in links {
                self.send_signal(other, Signal::Exit(Exit { from: id, reason: reason.clone() }));
            }
        }
    }

    /// Dispatches the control lane: signals, control messages and the engine's answers, each
    /// before any normal-lane message. Handles at most what was queued when it began (what
    /// this produces waits for the next call). Returns envelopes handled.
    pub(crate) fn run_control(&mut self) -> usize {
        let n = self.control.len();
        for _ in 0..n {
            let Some(env) = self.control.pop_front() else { break };
            self.dispatch_control(env);
            if !self.pending_stops.is_empty() {
                self.run_pending_stops();
            }
        }
        n
    }

    fn dispatch_control(&mut self, mut env: Envelope) {
        self.metrics.counters.control_dispatched += 1;
        let target = env.target();
        let Some(slot) = self.slots.get(target.slot()).copied() else {
            self.dead_letter(env, DeadLetterReason::NoSuchAgent);
            return;
        };
        if !self.slots.is_live(target.slot(), target.generation()) {
            // It stopped after the envelope was queued.
            let reason = if self.halted { DeadLetterReason::Shutdown } else { DeadLetterReason::Stopped };
            self.dead_letter(env, reason);
            return;
        }
        if env.kind == Kind::Signal {
            // A traced signal is looked at plain and traced again for its dispatch.
            let traced = (env.flags & crate::envelope::FLAG_TRACED != 0).then(|| {
                let (plain, ctx, depth, enqueued) =
                    crate::trace::shard::unwrap(env_take(&mut env), self.shared.clock.now_ns());
                env = plain;
                (ctx, depth, enqueued)
            });
            match env.payload.take::<Signal>() {
                Ok(Signal::Exit(exit)) => {
                    let linked =
                        self.monitors.links.get(&target.slot()).is_some_and(|links| links.contains(&exit.from));
                    if !linked {
                        // A linked spawn of this agent on the sender's shard is still waiting for
                        // its answer: this may be its child, dead in `on_start`; hold it for the
                        // answer, which decides.
                        // Several may be waiting: each holds the exit, and the answer naming
                        // this child delivers it (the others drop theirs).
                        for pending in self
                            .link_on_reply
                            .values_mut()
                            .filter(|p| p.asker == target && p.shard == exit.from.shard())
                        {
                            pending.early_exits.push(exit.clone());
                        }
                        // Otherwise unlinked since the signal left: an unlink means no exit from it.
                        return;
                    }
                    Monitors::remove(&mut self.monitors.links, target.slot(), exit.from);
                    if !slot.trap_exits {
                        if !exit.reason.is_normal() {
                            run_agent_stop(self, target, exit.reason);
                        }
                        return;
                    }
                    env.payload = Payload::new(Signal::Exit(exit));
                }
                Ok(signal) => env.payload = Payload::new(signal),
                Err(payload) => {
                    debug_assert!(false, "signal envelope with a {} payload", payload.type_name());
                    return;
                }
            }
            if let Some((ctx, depth, enqueued)) = traced {
                env = crate::trace::shard::wrap(env_take(&mut env), ctx, depth, enqueued);
            }
        }
        let run = self.kinds.run_fn(slot.kind);
        self.control_current = Some(env);
        run(self, target.slot(), RunMode::Control);
        if let Some(env) = self.control_current.take() {
            // Not taken: the agent's value was out of its pool (it cannot be, between turns).
            debug_assert!(false, "control envelope left undelivered");
            self.dead_letter(env, DeadLetterReason::Stopped);
        }
    }
}

/// Moves an envelope out of `env`, leaving an empty system envelope in its place.
fn env_take(env: &mut Envelope) -> Envelope {
    std::mem::replace(env, Envelope::system(Payload::new(())))
}
