//! What an embedder needs, in one import: `use nexus_engine::prelude::*;`.
//!
//! The engine and its handle, the agent trait and its context, addresses, typed asks and their
//! errors, spawn placement, and the ends an agent can watch for. Everything else stays behind
//! its module path.

pub use crate::agent::{
    Addr, Agent, AgentId, Ask, AskAll, Ctx, Down, Exit, ExitReason, SendError, SendOptions, SpawnError, SpawnPlacement,
};
pub use crate::ask::{AskError, ReplyTo};
pub use crate::config::EngineConfig;
pub use crate::engine::{Engine, EngineBuilder, EngineError, EngineHandle, ShutdownReport};
pub use std::time::Duration;
