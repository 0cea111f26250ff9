//! What a supervisor is told: its strategy, restart intensity, backoff and child specs.
//!
//! A [`ChildSpec`] holds a factory (a `Fn() -> A` that may be called once per restart, on any
//! shard), the child's restart type, where to place it, an optional registered name (kept
//! across restarts) and its shutdown timeout. A [`SupervisorSpec`] lists children in start
//! order. Both are plain builders; [`SupervisorSpec::validate`] rejects nonsense with a typed
//! error before a supervisor starts.

use super::SupervisorMsg;
use crate::agent::{Agent, AgentId, Ctx, SpawnError, SpawnPlacement, Spawned};
use crate::ask::AskError;
use crate::registry::{validate_name, RegistryError};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Default restart intensity: at most this many restarts ...
pub const DEFAULT_MAX_RESTARTS: u32 = 3;
/// ... within this period; one more and the supervisor gives up.
pub const DEFAULT_RESTART_PERIOD: Duration = Duration::from_secs(5);
/// Default time a child gets to stop before the supervisor moves on.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Which children a supervisor restarts when one fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Only the child that stopped.
    #[default]
    OneForOne,
    /// Every child: the others are stopped (in reverse order), then all start again in order.
    OneForAll,
    /// The child that stopped and every child started after it.
    RestForOne,
}

/// When a child is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Restart {
    /// Always.
    #[default]
    Permanent,
    /// Only when it failed (any reason but `Normal` and `Shutdown`).
    Transient,
    /// Never; it is dropped from the supervisor's children when it stops.
    Temporary,
}

/// Delay before restarting: `min * 2^(restarts in the period - 1)`, at most `max`, then
/// spread by `jitter` (a fraction: 0.2 means up to 20% shorter).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Delay of the first restart in a period.
    pub min: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Fraction of the delay taken off at random, in [0, 1].
    pub jitter: f64,
}

impl Backoff {
    /// The delay before a restart when `recent` restarts (this one included) happened in the
    /// period; `unit` is a uniform draw in [0, 1).
    pub fn delay(&self, recent: u32, unit: f64) -> Duration {
        let doublings = recent.saturating_sub(1).min(32);
        let base = self.min.saturating_mul(1u32 << doublings.min(31)).min(self.max);
        let cut = base.mul_f64((self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0)).min(1.0));
        base.saturating_sub(cut)
    }
}

/// How a child start went, as the supervisor sees it.
pub(crate) enum Started {
    /// Running now, with this id.
    Here(AgentId),
    /// Spawned on another shard: the outcome comes back through the answer adapter.
    Pending,
}

/// Turns a remote spawn's outcome into the supervisor's message.
pub(crate) type SpawnAnswer = Box<dyn FnOnce(Result<Result<AgentId, SpawnError>, AskError>) -> SupervisorMsg + Send>;

type StartFn = dyn Fn(&mut Ctx<'_>, SpawnPlacement, SpawnAnswer) -> Result<Started, SpawnError> + Send + Sync;

/// One supervised child; see the module documentation.
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) label: Arc<str>,
    pub(crate) start: Arc<StartFn>,
    pub(crate) restart: Restart,
    pub(crate) placement: SpawnPlacement,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) shutdown_timeout: Duration,
}

impl ChildSpec {
    /// A permanent child called `label` (for reports), built by `factory` on the supervisor's
    /// shard, unnamed, with the default shutdown timeout.
    pub fn new<A, F>(label: impl Into<Arc<str>>, factory: F) -> Self
    where
        A: Agent,
        F: Fn() -> A + Send + Sync + 'static,
    {
        let factory = Arc::new(factory);
        let start = move |ctx: &mut Ctx<'_>, placement: SpawnPlacement, answer: SpawnAnswer| {
            let factory = factory.clone();
            match ctx.spawn_linked_on::<A, _, _, _>(placement, move || factory(), answer)? {
                Spawned::Here(addr) => Ok(Started::Here(addr.id())),
                Spawned::Pending => Ok(Started::Pending),
            }
        };
        Self {
            label: label.into(),
            start: Arc::new(start),
            restart: Restart::Permanent,
            placement: SpawnPlacement::Local,
            name: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// When to restart it.
    #[must_use]
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Where to run it (each restart places it again).
    #[must_use]
    pub fn placement(mut self, placement: SpawnPlacement) -> Self {
        self.placement = placement;
        self
    }

    /// Registers every instance under `name`, so senders that use the name reach the newest.
    #[must_use]
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How long it gets to stop before the supervisor moves on.
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The label given at construction.
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("label", &self.label)
            .field("restart", &self.restart)
            .field("placement", &self.placement)
            .field("name", &self.name)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish()
    }
}

/// Why a supervisor spec is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// A zero restart period.
    #[error("the restart period is zero; hint: use a period such as 5 s (the default)")]
    ZeroPeriod,
    /// A backoff whose minimum is above its maximum, or whose jitter is outside [0, 1].
    #[error("invalid backoff {0:?}; hint: min <= max and 0 <= jitter <= 1")]
    Backoff(Backoff),
    /// A child name that is not a valid registry name.
    #[error("child {label}: {error}")]
    Name {
        /// The child's label.
        label: String,
        /// What is wrong with its name.
        error: RegistryError,
    },
    /// Two children with the same name.
    #[error("children {first} and {second} both use the name {name}; hint: names must be unique")]
    DuplicateName {
        /// The name.
        name: String,
        /// The first child using it.
        first: String,
        /// The second.
        second: String,
    },
}

/// A supervisor's configuration; see the module documentation.
#[derive(Clone, Debug)]
pub struct SupervisorSpec {
    pub(crate) strategy: Strategy,
    pub(crate) max_restarts: u32,
    pub(crate) period: Duration,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) children: Vec<ChildSpec>,
}

impl SupervisorSpec {
    /// A spec with `strategy`, the default intensity (3 restarts in 5 s), no backoff and no
    /// children.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            max_restarts: DEFAULT_MAX_RESTARTS,
            period: DEFAULT_RESTART_PERIOD,
            backoff: None,
            children: Vec::new(),
        }
    }

    /// Restart intensity: past `max_restarts` restarts within `period`, the supervisor stops
    /// its children and fails, escalating to its parent.
    #[must_use]
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.period = period;
        self
    }

    /// Waits before each restart (see [`Backoff`]).
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Adds a child; children start in the order they are added and stop in reverse.
    #[must_use]
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    /// The children, in start order.
    pub fn children(&self) -> &[ChildSpec] {
        &self.children
    }

    /// Checks the spec.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.period.is_zero() {
            return Err(SpecError::ZeroPeriod);
        }
        if let Some(b) = self.backoff {
            if b.min > b.max || !(0.0..=1.0).contains(&b.jitter) {
                return Err(SpecError::Backoff(b));
            }
        }
        for (i, child) in self.children.iter().enumerate() {
            let Some(name) = &child.name else { continue };
            validate_name(name).map_err(|error| SpecError::Name { label: child.label.to_string(), error })?;
            if let Some(first) = self.children[..i].iter().find(|c| c.name.as_deref() == Some(&**name)) {
                return Err(SpecError::DuplicateName {
                    name: name.to_string(),
                    first: first.label.to_string(),
                    second: child.label.to_string(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_down() {
        let b = Backoff { min: Duration::from_millis(10), max: Duration::from_millis(50), jitter: 0.5 };
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(10));
        assert_eq!(b.delay(2, 0.0), Duration::from_millis(20));
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(40));
        assert_eq!(b.delay(4, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(200, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(5));
        assert_eq!(b.delay(2, 0.5), Duration::from_millis(15));
    }
}
