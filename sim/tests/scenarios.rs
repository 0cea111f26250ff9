//! Every built-in scenario passes its invariants over a range of seeds, in both scheduling
//! modes and with every fault, and replays to the same fingerprint.

use nexus_sim::{check_determinism, quiet_injected_panics, run, scenarios, Faults, Mode, SimConfig};

fn config(seed: u64, mode: Mode, faults: &str) -> SimConfig {
    SimConfig { mode, faults: Faults::parse(faults).expect("spec"), ..SimConfig::new(seed) }
}

#[test]
fn every_scenario_holds_its_invariants_over_many_seeds() {
    quiet_injected_panics();
    for scenario in scenarios::all().into_iter().filter(|s| !s.name().starts_with("planted-")) {
        let configs = [
            (Mode::Random, ""),
            (Mode::Pct { depth: 3 }, ""),
            (Mode::Random, "stall=0.05,pressure"),
            (Mode::Random, "delay=0.2,jitter_ms=2,kill=0.01,host_timeout=0.05"),
        ];
        for (mode, faults) in configs {
            for seed in 1..=40 {
                let outcome = run(scenario, &config(seed, mode, faults));
                assert!(
                    outcome.result.is_ok(),
                    "{} seed {seed} ({mode:?}, `{faults}`): {:?}\nlast events: {:#?}",
                    scenario.name(),
                    outcome.result,
                    outcome.last_events
                );
                assert!(outcome.dispatches > 0);
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_fingerprint_and_seeds_differ() {
    quiet_injected_panics();
    for scenario in scenarios::all() {
        let mut fingerprints = std::collections::BTreeSet::new();
        for seed in 1..=10 {
            let outcome =
                check_determinism(scenario, &config(seed, Mode::Random, "stall=0.02")).expect("deterministic");
            fingerprints.insert(outcome.fingerprint);
        }
        assert!(fingerprints.len() > 1, "{}: ten seeds, one run", scenario.name());
    }
}

#[test]
fn virtual_time_runs_ahead_of_real_time() {
    quiet_injected_panics();
    let outcome = run(scenarios::find("supervision").expect("scenario"), &SimConfig::new(3));
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert!(outcome.virtual_ns > 100_000_000, "the ticks span {} ns of virtual time", outcome.virtual_ns);
}

#[test]
fn every_planted_bug_is_found_within_a_thousand_seeds_and_replays() {
    quiet_injected_panics();
    for scenario in scenarios::all().into_iter().filter(|s| s.name().starts_with("planted-")) {
        let failing = (1..=1000)
            .map(|seed| run(scenario, &SimConfig::new(seed)))
            .find(|o| o.result.is_err())
            .unwrap_or_else(|| panic!("{}: no seed of 1,000 found the planted bug", scenario.name()));
        let again = check_determinism(scenario, &SimConfig::new(failing.seed)).expect("deterministic");
        assert_eq!(again.fingerprint, failing.fingerprint);
        assert_eq!(again.result, failing.result, "the seed replays to the same failure");
    }
}
