//! nexus-server: the RESP (Redis protocol) front end of a Nexus engine.
//!
//! Every shard accepts connections on the same address (SO_REUSEPORT), through glommio's
//! io_uring networking or, on the threads executor, through epoll (`rt` hides which). A connection's commands go to its shard's ingress agent, which sends
//! each one to the partition agent that owns its key, agent name or channel, on whichever shard
//! that is (over the mesh), and hands the replies back to the connection in request order.
//!
//! - [`resp`]: the request parser and the reply encoder (RESP2 and RESP3);
//! - [`commands`]: the command table (arity, where a command runs);
//! - [`server`]: [`ServerBuilder`] and [`ServerHandle`]: install on an engine, stop;
//! - `conn`, `front`, `ingress`: a connection task, what it shares with its shard's ingress
//!   agent, and that agent;
//! - [`partition`], [`kv`], [`topic`]: the owners of keys, agent names and channels;
//! - [`persist`]: the append-only log per shard (`[persistence]`): journal, writer, replay;
//! - [`kinds`]: the one registry of agent kinds, which `AGENT.SPAWN` and a host (`nexus run`'s
//!   config agents, through [`ServerHandle::spawn_agent`]) start;
//! - [`metrics`]: the HTTP `/metrics` and `/health` endpoint;
//! - [`auth_guard`]: the AUTH backoff of one connection;
//! - [`address_lock`]: one server per listen address; [`nofile`]: `max_clients` fitted to the
//!   open-file limit;
//! - [`stats`], [`directory`]: the server's counters and where each shard's agents are.

pub mod address_lock;
pub mod auth_guard;
pub mod cluster_cmds;
pub mod command_trace;
pub mod commands;
mod conn;
pub mod directory;
mod front;
mod ingress;
pub mod kinds;
pub mod kv;
pub mod metrics;
pub mod nofile;
mod off_shard;
pub mod partition;
pub mod persist;
pub mod resp;
mod rt;
pub mod server;
pub mod stats;
pub mod topic;

pub use front::ConnId;
pub use ingress::{Gathered, IngressMsg};
pub use kinds::{AgentKind, AgentRequest, Kinds};
pub use server::{ServerBuilder, ServerError, ServerHandle};
