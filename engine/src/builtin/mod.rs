//! Built-in agent kinds that `nexus run` can start from a config: `echo`, `counter` and `kv`,
//! plus the `pingpong` pair that drives the self-load scenario.
//!
//! They are ordinary agents written against the public API, so they double as examples.

mod counter;
mod echo;
mod kv;
mod pingpong;

pub use counter::{Counter, CounterMsg};
pub use echo::{Echo, EchoMsg};
pub use kv::{Kv, KvMsg};
pub use pingpong::{PingPong, PingPongMsg};

/// Names of the kinds a config may list under `[[agents]]`.
pub const KINDS: &[&str] = &["echo", "counter", "kv"];
