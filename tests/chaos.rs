//! The chaos test: 10,000 supervised agents on 2 shards under steady ask traffic, with panics
//! injected into 1% of the handlers for a few seconds.
//!
//! It asserts what the engine promises about faults: every supervised agent is running at the
//! end (each was restarted under its name as often as it panicked), every ask got a reply or a
//! typed error and none hung (no ask timed out; the loaders ended with nothing in flight), and
//! the accounting invariant (sent = delivered + dead letters) holds exactly on a quiescent
//! snapshot. The workload is `nexus_bench::chaos`, the one `nexus bench restart` measures.

use nexus_bench::chaos::{self, ChaosParams};
use nexus_bench::EngineSettings;
use std::time::Duration;

#[test]
fn ten_thousand_supervised_agents_survive_one_percent_panics() {
    chaos::quiet_injected_panics();
    let engine = EngineSettings::test(2).build().expect("engine starts");
    let handle = engine.handle();
    let params = ChaosParams { duration: Duration::from_secs(3), ..ChaosParams::default() };
    assert_eq!((params.agents, params.panic_ppm), (10_000, 10_000), "the scenario the issue asks for");
    let setup = chaos::start(&handle, params).expect("the supervision tree starts");

    let figures = chaos::run(&handle, &setup, params.panic_ppm).expect("the chaos run passes its checks");
    eprintln!("chaos: {figures:?}");
    assert!(figures.replies > 10_000, "traffic flowed: {figures:?}");
    assert!(figures.panics > 50, "panics were injected: {figures:?}");
    assert_eq!(figures.restarts, figures.panics, "every panic was followed by a restart");
    assert_eq!(figures.timeouts, 0, "no ask hung until its timeout");

    let accounting = chaos::check_accounting(&handle).expect("the accounting balances at quiescence");
    eprintln!("chaos accounting: {accounting}");
    let stats = handle.stats().expect("stats");
    let totals = stats.totals();
    assert_eq!(totals.dead(nexus_engine::metrics::DeadLetterReason::Panicked), figures.panics);
    let report = engine.shutdown().expect("shutdown");
    assert!(report.stats.accounted(), "{}", report.stats.accounting_line());
}
