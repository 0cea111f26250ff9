//! The built-in scenarios, by name.
//!
//! Invariant: names are unique; [`all`] lists them in the order `nexus sim list` prints.
//! Scenarios named `planted-*` carry a deliberate bug: the simulator must fail them.

mod auction;
mod host;
mod ml_pipeline;
mod pool;
mod register;
mod resp;
mod supervision;
mod votes;

use crate::scenario::Scenario;

/// Every built-in scenario.
pub fn all() -> Vec<&'static dyn Scenario> {
    vec![
        &supervision::Supervision,
        &pool::PoolFailover,
        &votes::Votes,
        &auction::CORRECT,
        &host::Host,
        &register::CORRECT,
        &resp::Resp,
        &ml_pipeline::MlPipeline,
        &auction::PLANTED,
        &register::PLANTED,
    ]
}

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static dyn Scenario> {
    all().into_iter().find(|s| s.name() == name)
}
