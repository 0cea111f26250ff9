//! Why agents stop, and the signals that tell others: `ExitReason`, `Down`, `Exit`.
//!
//! Every agent ends with exactly one [`ExitReason`]. When it ends, its shard sends:
//! - a [`Down`] to each agent that watches it (`Ctx::watch`), whatever the reason;
//! - an [`Exit`] to each agent linked to it (`Ctx::link`). A linked agent that does not trap
//!   exits stops too, with the same reason, unless the reason is [`ExitReason::Normal`]; an
//!   agent that traps exits (`Ctx::trap_exits`) receives the `Exit` in `Agent::on_exit` instead.
//!
//! Signals travel in the control lane: they are never refused for a full mailbox or ring, and
//! a shard dispatches them before any normal-lane message. Watching or linking an agent that
//! is already gone answers at once with the reason [`ExitReason::NoProc`].
//!
//! Reasons are cheap to clone (an `Arc<str>` at most), so one stop can notify many watchers.

use super::AgentId;
use std::fmt;
use std::sync::Arc;

/// Why an agent stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// It stopped itself (`Ctx::stop_self`) or returned from its work: not a failure.
    Normal,
    /// It was stopped by another agent, a host thread, its supervisor, or the engine's
    /// shutdown.
    Shutdown,
    /// A handler (or its start or stop hook) panicked; the payload is the panic message. The
    /// agent was never run again.
    Panicked(Arc<str>),
    /// It stopped itself with an error (`Ctx::fail`), or a supervisor gave up (restart
    /// intensity reached).
    Failed(Arc<str>),
    /// It was already gone when it was watched or linked.
    NoProc,
}

impl ExitReason {
    /// Whether the reason is [`ExitReason::Normal`]: links do not propagate it.
    pub fn is_normal(&self) -> bool {
        matches!(self, Self::Normal)
    }

    /// Whether the agent failed: anything but `Normal` and `Shutdown`. A `transient` child is
    /// restarted only after a failure.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Self::Normal | Self::Shutdown)
    }

    /// A `Failed` reason with `message`.
    pub fn failed(message: impl Into<Arc<str>>) -> Self {
        Self::Failed(message.into())
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normal => f.write_str("normal"),
            Self::Shutdown => f.write_str("shutdown"),
            Self::Panicked(m) => write!(f, "panicked: {m}"),
            Self::Failed(m) => write!(f, "failed: {m}"),
            Self::NoProc => f.write_str("noproc (the agent was already gone)"),
        }
    }
}

/// A watched agent stopped (`Agent::on_down`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Down {
    /// The agent that stopped.
    pub id: AgentId,
    /// Why.
    pub reason: ExitReason,
}

/// A linked agent stopped (`Agent::on_exit`, for agents that trap exits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    /// The linked agent that stopped.
    pub from: AgentId,
    /// Why.
    pub reason: ExitReason,
}

/// The payload of a `Kind::Signal` envelope.
#[derive(Debug)]
pub(crate) enum Signal {
    Down(Down),
    Exit(Exit),
}

/// Turns a panic payload into a message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> Arc<str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Arc::from(*s)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        Arc::from(s.as_str())
    } else {
        Arc::from("a panic with a non-string payload")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_classify_as_otp_does() {
        assert!(ExitReason::Normal.is_normal() && !ExitReason::Normal.is_failure());
        assert!(!ExitReason::Shutdown.is_normal() && !ExitReason::Shutdown.is_failure());
        assert!(ExitReason::failed("x").is_failure());
        assert!(ExitReason::Panicked("boom".into()).is_failure());
        assert!(ExitReason::NoProc.is_failure());
        assert_eq!(ExitReason::Panicked("boom".into()).to_string(), "panicked: boom");
        const { assert!(crate::payload::travels_unboxed::<Down>()) };
    }

    #[test]
    fn panic_payloads_become_messages() {
        let caught = std::panic::catch_unwind(|| panic!("at {}", 3)).unwrap_err();
        assert_eq!(&*panic_message(&*caught), "at 3");
        let caught = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert!(panic_message(&*caught).contains("non-string"));
    }
}
