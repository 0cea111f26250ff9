//! Unit tests of `nexus bench tracing`: the options it accepts and refuses, the round order,
//! the sizing step, the pairwise overheads and their medians, and the records and tables they
//! give. (The end-to-end run is `tests/cli.rs`'s.)

use super::*;

fn options() -> TracingOptions {
    TracingOptions::default()
}

fn refused(o: TracingOptions, parts: &[&str]) {
    let f = check(o).expect_err("refused");
    assert_eq!(f.status, 2, "{}", f.message);
    assert!(f.message.contains("hint:"), "{}", f.message);
    for part in parts {
        assert!(f.message.contains(part), "`{part}` missing from {}", f.message);
    }
}

#[test]
fn the_defaults_measure_two_shards_six_rounds_of_600_ms() {
    let Mode::Measure(args) = check(options()).unwrap() else { panic!("a measurement") };
    assert_eq!((args.shards, args.repeat, args.round), (2, DEFAULT_REPEAT, Duration::from_millis(600)));
    assert_eq!((args.executor, args.untraced_bin, args.json), (ExecutorKind::Auto, None, None));
}

#[test]
fn bad_values_are_refused_with_a_hint() {
    refused(TracingOptions { shards: Some(1), ..options() }, &["--shards 1", "at least 2"]);
    refused(TracingOptions { repeat: Some(0), ..options() }, &["--repeat"]);
    refused(TracingOptions { round_ms: Some(0), ..options() }, &["--round-ms 0"]);
    let missing = PathBuf::from("/nonexistent/nexus-untraced");
    refused(TracingOptions { untraced_bin: Some(missing), ..options() }, &["no such file", "nexus-engine/untraced"]);
    refused(TracingOptions { child_size: Some(5), ..options() }, &["--child-round"]);
}

#[test]
fn a_round_takes_only_its_own_options() {
    let round = TracingOptions {
        child_round: Some(TracedWorkload::Pingpong),
        child_sample: Some(0.01),
        child_size: Some(500),
        shards: Some(3),
        executor: Some(ExecutorKind::Threads),
        ..options()
    };
    let Mode::Round(r) = check(round.clone()).unwrap() else { panic!("a round") };
    assert_eq!((r.workload, r.sample, r.size, r.shards), (TracedWorkload::Pingpong, 0.01, 500, 3));
    assert_eq!(r.executor, ExecutorKind::Threads);
    refused(TracingOptions { child_sample: Some(1.5), ..round.clone() }, &["--child-sample 1.5"]);
    refused(TracingOptions { child_sample: Some(f64::NAN), ..round.clone() }, &["probability"]);
    refused(TracingOptions { child_size: None, ..round.clone() }, &["--child-size"]);
    refused(TracingOptions { json: Some(None), ..round.clone() }, &["--json"]);
    refused(TracingOptions { repeat: Some(2), ..round }, &["--repeat"]);
}

#[test]
fn every_round_runs_every_variant_once_in_a_rotated_order() {
    let all = Variant::ALL.to_vec();
    let firsts: Vec<Variant> = (0..4).map(|r| round_order(&all, r)[0]).collect();
    assert_eq!(firsts, all, "each variant leads one round in four");
    for r in 0..9 {
        let mut order = round_order(&all, r);
        order.sort_by_key(|v| *v as usize);
        assert_eq!(order, all);
    }
    let three = &all[1..];
    assert_eq!(round_order(three, 1), [Variant::Sample1pct, Variant::Sample100pct, Variant::Sample0]);
    assert_eq!(round_order(three, 3), three);
    assert!(round_order(&[], 2).is_empty());
}

#[test]
fn sizing_aims_past_the_round_and_always_grows() {
    // 20,000 in 10 ms, 600 ms wanted: x78 (1.3 x 600 / 10).
    assert_eq!(next_size(20_000, 0.010, 0.6), 1_560_000);
    assert_eq!(next_size(10, 0.0, 0.6), 10_000, "nothing measured: the largest step");
    assert_eq!(next_size(10, 1e-9, 0.6), 10_000, "at most x1000 per step");
    assert_eq!(next_size(100, 10.0, 0.6), 101, "a long run still grows, by one");
    assert_eq!(next_size(MAX_SIZE - 1, 0.001, 0.6), MAX_SIZE);
}

#[test]
fn overheads_pair_round_by_round() {
    let base = [100.0, 200.0, 0.0, 50.0];
    let traced = [99.0, 150.0, 10.0, 55.0];
    let o = pairwise_overheads(&traced, &base);
    // Round 3's baseline measured nothing: skipped, not divided by.
    assert_eq!(o.len(), 3);
    assert!((o[0] - 0.01).abs() < 1e-12 && (o[1] - 0.25).abs() < 1e-12 && (o[2] + 0.1).abs() < 1e-12, "{o:?}");
    // Pairing by round, not by sorted value: medians of ratios, not ratios of medians.
    let spread = Spread::of(&o).unwrap();
    assert!((spread.median - 0.01).abs() < 1e-12 && (spread.min + 0.1).abs() < 1e-12 && spread.max == 0.25);
    assert!(pairwise_overheads(&[1.0, 2.0], &[1.0]).len() == 1, "only rounds both ran");
    assert!(pairwise_overheads(&[1.0], &[]).is_empty());
}

fn figure(per_s: f64, recorded: u64) -> RoundFigure {
    RoundFigure {
        workload: "counting".into(),
        sample: 0.0,
        compiled_in: true,
        size: 1_000,
        elapsed_ns: 1_000_000,
        per_s,
        recorded,
        dropped: recorded / 10,
    }
}

fn outcome(untraced: bool) -> Outcome {
    let mut series = Series::default();
    if untraced {
        series.rounds[Variant::Untraced as usize] = vec![figure(100.0, 0), figure(100.0, 0)];
    }
    series.rounds[Variant::Sample0 as usize] = vec![figure(99.0, 0), figure(97.0, 0)];
    series.rounds[Variant::Sample1pct as usize] = vec![figure(96.0, 50), figure(95.0, 70)];
    series.rounds[Variant::Sample100pct as usize] = vec![figure(50.0, 5_000), figure(70.0, 7_000)];
    Outcome { workloads: vec![(TracedWorkload::Counting, 1_000, series)] }
}

fn context() -> Context {
    Context { shards: 2, executor: "threads", cpus: "0,1".into(), date: "2026-01-01".into() }
}

#[test]
fn records_carry_the_three_overheads_as_ratios() {
    let records = records(&outcome(true), &context());
    let find = |metric: &str| records.iter().find(|r| r.metric == metric).unwrap_or_else(|| panic!("{metric}"));
    let zero = find("tracing_overhead_0");
    // Rounds: 1 - 99/100 = 0.01 and 1 - 97/100 = 0.03.
    assert!((zero.value - 0.02).abs() < 1e-12 && zero.unit == "ratio" && zero.workload == "counting");
    assert_eq!((zero.repeat, zero.shards, zero.executor), (Some(2), Some(2), Some("threads")));
    let full = find("tracing_overhead_100pct");
    assert!(
        (full.min.unwrap() - (1.0 - 70.0 / 97.0)).abs() < 1e-12
            && (full.max.unwrap() - (1.0 - 50.0 / 99.0)).abs() < 1e-12
    );
    assert!(find("tracing_overhead_1pct").value > 0.0);
    assert_eq!(find("msgs_per_s_untraced").value, 100.0);
    assert_eq!(records.len(), 7, "4 throughputs, 3 overheads");

    let without = super::records(&outcome(false), &context());
    assert!(without.iter().all(|r| r.metric != "tracing_overhead_0" && r.metric != "msgs_per_s_untraced"));
    assert_eq!(without.len(), 5);
}

#[test]
fn the_tables_judge_each_target_and_say_what_is_missing() {
    let text = render(&outcome(true));
    let row = |what: &str| text.lines().find(|l| l.starts_with(what)).unwrap_or_else(|| panic!("{what}: {text}"));
    // 2.0% against <= 2%: met; 1 - 95.5/98 = 2.6% against 5%: met; 1 - 60/98 = 38.8% against 30%: not met.
    assert!(row("tracing_overhead_0 ").ends_with("met") && row("tracing_overhead_0 ").contains("2.0%"), "{text}");
    assert!(row("tracing_overhead_1pct").ends_with(" met"), "{text}");
    assert!(row("tracing_overhead_100pct").ends_with("not met"), "{text}");
    assert!(row("counting  traced, sample 1%").contains(" 60 ") || text.contains("60"), "{text}");
    assert!(text.contains("counting tracing_overhead_1pct by round: 3.0%, 2.1%"), "{text}");
    assert!(row("counting  untraced build").contains("n/a"), "{text}");

    let text = render(&outcome(false));
    assert!(row_of(&text, "tracing_overhead_0 ").contains("needs --untraced-bin"), "{text}");
    assert!(text.contains("--features nexus-engine/untraced"), "{text}");
}

fn row_of<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("{start}: {text}"))
}
