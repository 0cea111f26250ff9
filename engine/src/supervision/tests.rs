//! Supervisor tests: strategies, restart types, intensity, backoff, order, names, nesting,
//! on shards driven pass by pass.
