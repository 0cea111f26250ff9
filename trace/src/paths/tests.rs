//! Slowest paths over hand-built trees: branching, missing parents, ties, cycles.

use super::*;
use crate::testing::span;

fn ids(path: &TracePath) -> Vec<u64> {
    path.spans.iter().map(|s| s.span_id).collect()
}

/// Trace 1: root 1 (enqueued 100) fans out to 2 and 3; 2 has children 4 (ends 900) and 5
/// (ends 400); 3 ends 700.
fn branching() -> Vec<SpanRecord> {
    vec![
        span(1, 4, 2, 1, [300, 350, 900]),
        span(1, 1, 0, 0, [100, 120, 200]),
        span(1, 2, 1, 1, [150, 210, 260]),
        span(1, 3, 1, 0, [160, 230, 700]),
        span(1, 5, 2, 0, [240, 300, 400]),
    ]
}

#[test]
fn each_leaf_is_a_path_from_its_root_ranked_slowest_first() {
    let paths = slowest(&branching(), 10);
    let got: Vec<_> = paths.iter().map(|p| (ids(p), p.duration_ns, p.start_ns)).collect();
    assert_eq!(got, [(vec![1, 2, 4], 800, 100), (vec![1, 3], 600, 100), (vec![1, 2, 5], 300, 100)]);
    assert!(paths.iter().all(|p| p.trace_id == 1));
    assert_eq!(paths[0].root().map(|s| s.span_id), Some(1));
    assert_eq!(paths[0].leaf().map(|s| s.span_id), Some(4));
}

#[test]
fn n_limits_the_output() {
    assert_eq!(slowest(&branching(), 1).len(), 1);
    assert!(slowest(&branching(), 0).is_empty());
    assert!(slowest(&[], 5).is_empty());
}

#[test]
fn a_span_whose_parent_is_missing_roots_its_own_chain() {
    let spans = vec![
        span(1, 1, 0, 0, [0, 10, 20]),
        // Parent 99 was never recorded: 7 -> 8 is a chain of its own, starting at 7's enqueue.
        span(1, 7, 99, 1, [500, 600, 650]),
        span(1, 8, 7, 0, [640, 700, 1_000]),
    ];
    let paths = slowest(&spans, 5);
    let got: Vec<_> = paths.iter().map(|p| (ids(p), p.duration_ns)).collect();
    assert_eq!(got, [(vec![7, 8], 500), (vec![1], 20)]);
}

#[test]
fn parents_resolve_within_their_trace_only() {
    // Span 2 of trace 2 names parent 1, which exists only in trace 1.
    let spans = vec![span(1, 1, 0, 0, [0, 0, 100]), span(2, 2, 1, 0, [50, 60, 70])];
    let paths = slowest(&spans, 5);
    let got: Vec<_> = paths.iter().map(|p| (p.trace_id, ids(p), p.duration_ns)).collect();
    assert_eq!(got, [(1, vec![1], 100), (2, vec![2], 20)]);
}

#[test]
fn an_external_root_starts_at_its_dispatch() {
    let mut root = span(3, 1, 0, 0, [0, 400, 500]);
    root.hop = Hop::External;
    let paths = slowest(&[root, span(3, 2, 1, 1, [450, 460, 900])], 1);
    assert_eq!((paths[0].start_ns, paths[0].duration_ns), (400, 500));
}

#[test]
fn ties_are_ordered_by_trace_then_start_then_leaf() {
    let spans = vec![
        span(9, 30, 0, 0, [0, 0, 100]),
        span(2, 21, 0, 0, [50, 50, 150]),
        span(2, 20, 0, 0, [50, 50, 150]),
        span(2, 10, 0, 0, [10, 10, 110]),
    ];
    let paths = slowest(&spans, 10);
    let got: Vec<_> = paths.iter().map(|p| (p.trace_id, ids(p))).collect();
    assert_eq!(got, [(2, vec![10]), (2, vec![20]), (2, vec![21]), (9, vec![30])]);
    // The same input in another order gives the same ranking.
    let mut reversed = spans.clone();
    reversed.reverse();
    assert_eq!(slowest(&reversed, 10), paths);
}

#[test]
fn cycles_and_self_parents_terminate() {
    let spans = vec![
        // 1 -> 2 -> 1: a cycle, with leaf 3 hanging off 2.
        span(1, 1, 2, 0, [0, 0, 10]),
        span(1, 2, 1, 0, [5, 5, 20]),
        span(1, 3, 2, 1, [30, 30, 40]),
        // A span that names itself as its parent is a root.
        span(1, 4, 4, 0, [0, 0, 7]),
    ];
    let paths = slowest(&spans, 10);
    assert_eq!(paths.len(), 2, "{paths:#?}");
    let chain = paths.iter().find(|p| p.leaf().map(|s| s.span_id) == Some(3)).expect("leaf 3");
    assert!(chain.spans.len() <= 3 && ids(chain).ends_with(&[2, 3]), "{:?}", ids(chain));
    assert!(paths.iter().any(|p| ids(p) == [4]));
}

#[test]
fn finished_before_start_saturates_to_zero() {
    let paths = slowest(&[span(1, 1, 0, 0, [500, 10, 20])], 1);
    assert_eq!(paths[0].duration_ns, 0);
}

#[test]
fn rendering_shows_rank_total_trace_and_one_line_per_hop() {
    let text = render_paths(&slowest(&branching(), 2));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 + 3 + 2, "{text}");
    assert!(lines[0].starts_with("#1 "), "{text}");
    assert!(lines[0].contains("0.800 µs") && lines[0].contains(&format!("{:032x}", 1u128)), "{text}");
    assert!(lines[0].contains("(3 hops)"), "{text}");
    let hop = lines[3];
    assert!(hop.starts_with("     ask"), "{hop}");
    for part in ["M4", "shard 1", "agent 1:4.0 ", "queued      0.050 µs", "handler      0.550 µs", "at +0.200 µs"] {
        assert!(hop.contains(part), "{part:?} in {hop:?}");
    }
    assert!(lines[4].starts_with("#2 "), "{text}");
    assert_eq!(render_paths(&[]), "");
}

#[test]
fn micros_are_exact() {
    assert_eq!(fmt_micros(0), "0.000");
    assert_eq!(fmt_micros(1_234), "1.234");
    assert_eq!(fmt_micros(u64::MAX), "18446744073709551.615");
}
