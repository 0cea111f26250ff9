//! Example agents with typed messages: `echo`, `counter` and `kv`, plus the `pingpong` pair
//! that drives `nexus run`'s pingpong load.
//!
//! They are ordinary agents written against the public API, used by tests and benchmarks and
//! meant as examples. They are not the agent kinds a config's `[[agents]]` or `AGENT.SPAWN`
//! name: that registry is `nexus_server::kinds::Kinds`, whose agents take RESP payloads.

mod counter;
mod echo;
mod kv;
mod pingpong;

pub use counter::{Counter, CounterMsg};
pub use echo::{Echo, EchoMsg};
pub use kv::{Kv, KvMsg};
pub use pingpong::{PingPong, PingPongMsg};
