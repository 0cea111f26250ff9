//! The RESP server suite of `server.rs`, run on the threads executor (epoll, no io_uring).
//!
//! Every test of `server.rs` and `support/server_limits.rs` runs again with
//! `executor = "threads"` in its config, so both backends answer the same commands, limits,
//! hostile clients and shutdowns.

/// The executor every server of this suite runs on.
pub const EXECUTOR: &str = "threads";

#[path = "server.rs"]
mod suite;
