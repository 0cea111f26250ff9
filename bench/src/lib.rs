//! Workloads shared by benches, tests and `nexus bench`.
