//! Supervision: OTP-style supervisors that restart failed agents by themselves.
//!
//! A [`Supervisor`] is an ordinary agent built from a [`SupervisorSpec`]: a [`Strategy`]
//! (`OneForOne`, `OneForAll`, `RestForOne`), a restart intensity (default 3 restarts in 5 s,
//! past which it stops its children and fails, escalating to its own supervisor), an optional
//! [`Backoff`], and [`ChildSpec`]s started in order and stopped in reverse, each with a
//! [`Restart`] type (`Permanent`, `Transient`, `Temporary`), a placement (any shard), an
//! optional registered name kept across restarts, and a shutdown timeout.
//!
//! Supervisors nest: a supervisor is a child like any other (`ChildSpec::new("sub", move ||
//! Supervisor::new(sub_spec.clone()))`).
//!
//! It rests on the engine's fault primitives: panics are caught at the agent boundary,
//! children are linked from their spawn (`Ctx::spawn_linked_on`), exits reach the supervisor
//! as signals in the control lane (never refused, dispatched before normal messages), and a
//! restarted child's name is taken over from its previous instance (`Ctx::register_for`).

mod quiet;
mod spec;
mod supervisor;
#[cfg(test)]
mod tests;

pub use quiet::quiet_panics_starting_with;
pub use spec::{
    Backoff, ChildSpec, Restart, SpecError, Strategy, SupervisorSpec, DEFAULT_MAX_RESTARTS, DEFAULT_RESTART_PERIOD,
    DEFAULT_SHUTDOWN_TIMEOUT,
};
pub use supervisor::{ChildInfo, Supervisor, SupervisorMsg, SupervisorStats};
