//! The slowest paths through traces: root-to-leaf chains of spans, ranked by how long the
//! chain took end to end, and a plain-text rendering of them.
//!
//! A path is found by following parent links inside one trace (spans are keyed by
//! `(trace_id, span_id)`). A span whose parent is not in the input is the root of its own
//! chain (spans can be lost to full buffers or sampling limits); a leaf is a span no other
//! span names as its parent. A path's duration is its leaf's `finished_ns` minus its root's
//! start: the root's `enqueued_ns`, or its `dispatched_ns` for an external hop (which has no
//! queue).
//!
//! Invariants: [`slowest`] never panics and terminates on any input, cycles included (a
//! walk up stops at the first span it would visit twice: that span is the chain's root);
//! when a span id repeats within a trace, the first occurrence is the one parents resolve
//! to; ties are ordered by trace id, then path start, then leaf span id, so the output is
//! deterministic.

use crate::record::SpanRecord;
use nexus_engine::trace::Hop;
use std::collections::HashMap;
use std::fmt::Write as _;

/// One root-to-leaf chain of spans in a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracePath {
    /// The trace the chain belongs to.
    pub trace_id: u128,
    /// The chain, root first, leaf last (never empty).
    pub spans: Vec<SpanRecord>,
    /// Engine-clock nanoseconds when the chain started (see the module documentation).
    pub start_ns: u64,
    /// The leaf's end minus the chain's start, in nanoseconds.
    pub duration_ns: u64,
}

impl TracePath {
    /// The chain's first span.
    pub fn root(&self) -> Option<&SpanRecord> {
        self.spans.first()
    }

    /// The chain's last span.
    pub fn leaf(&self) -> Option<&SpanRecord> {
        self.spans.last()
    }
}

/// Where a chain rooted at `root` starts: its enqueue, or its dispatch for an external hop.
pub fn path_start_ns(root: &SpanRecord) -> u64 {
    if root.hop == Hop::External {
        root.dispatched_ns
    } else {
        root.enqueued_ns
    }
}

/// The `n` slowest root-to-leaf paths in `spans`, slowest first.
pub fn slowest(spans: &[SpanRecord], n: usize) -> Vec<TracePath> {
    if n == 0 || spans.is_empty() {
        return Vec::new();
    }
    let parents = parent_indices(spans);
    let mut has_child = vec![false; spans.len()];
    for p in parents.iter().flatten() {
        has_child[*p] = true;
    }
    let roots = root_indices(&parents);
    let mut ranked: Vec<(u64, u64, usize)> = (0..spans.len())
        .filter(|&i| !has_child[i])
        .map(|leaf| {
            let start = path_start_ns(&spans[roots[leaf]]);
            (spans[leaf].finished_ns.saturating_sub(start), start, leaf)
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(spans[a.2].trace_id.cmp(&spans[b.2].trace_id))
            .then(a.1.cmp(&b.1))
            .then(spans[a.2].span_id.cmp(&spans[b.2].span_id))
    });
    ranked
        .into_iter()
        .take(n)
        .map(|(duration_ns, start_ns, leaf)| {
            let mut chain = vec![leaf];
            let mut at = leaf;
            while at != roots[leaf] {
                match parents[at] {
                    Some(p) => at = p,
                    None => break,
                }
                chain.push(at);
            }
            chain.reverse();
            TracePath {
                trace_id: spans[leaf].trace_id,
                spans: chain.into_iter().map(|i| spans[i].clone()).collect(),
                start_ns,
                duration_ns,
            }
        })
        .collect()
}

/// Each span's parent's index, when the parent is in `spans` (and is not the span itself).
fn parent_indices(spans: &[SpanRecord]) -> Vec<Option<usize>> {
    let mut by_id: HashMap<(u128, u64), usize> = HashMap::with_capacity(spans.len());
    for (i, s) in spans.iter().enumerate() {
        by_id.entry((s.trace_id, s.span_id)).or_insert(i);
    }
    spans
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if s.parent_id == 0 {
                return None;
            }
            by_id.get(&(s.trace_id, s.parent_id)).copied().filter(|&p| p != i)
        })
        .collect()
}

/// Each span's chain root: the first ancestor with no parent, or, in a cycle, the first span
/// the walk up would visit twice. Memoised, so linear overall.
fn root_indices(parents: &[Option<usize>]) -> Vec<usize> {
    const UNKNOWN: usize = usize::MAX;
    const WALKING: usize = usize::MAX - 1;
    let mut roots = vec![UNKNOWN; parents.len()];
    let mut walk = Vec::new();
    for start in 0..parents.len() {
        let mut at = start;
        let root = loop {
            match roots[at] {
                UNKNOWN => {}
                WALKING => break at,
                known => break known,
            }
            roots[at] = WALKING;
            walk.push(at);
            match parents[at] {
                Some(p) => at = p,
                None => break at,
            }
        };
        for i in walk.drain(..) {
            roots[i] = root;
        }
    }
    roots
}

/// The paths as text: a header line per path (rank, total µs, trace id, hop count) and one
/// indented line per hop (hop, short type, shard, agent, queued µs, handler µs, and when its
/// message was sent relative to the path's start).
pub fn render_paths(paths: &[TracePath]) -> String {
    let mut out = String::new();
    for (rank, path) in paths.iter().enumerate() {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "#{:<3} {:>12} µs  trace {:032x}  ({} hops)",
            rank + 1,
            fmt_micros(path.duration_ns),
            path.trace_id,
            path.spans.len()
        );
        for span in &path.spans {
            let _ = writeln!(
                out,
                "     {:<11} {:<28} shard {:<3} agent {:<14} queued {:>10} µs  handler {:>10} µs  at +{} µs",
                span.hop.name(),
                span.short_name(),
                span.shard,
                span.agent_text(),
                fmt_micros(span.queued_ns()),
                fmt_micros(span.handler_ns()),
                fmt_micros(span.enqueued_ns.saturating_sub(path.start_ns)),
            );
        }
    }
    out
}

/// Nanoseconds as microseconds with three decimals, exactly (`1234` → `1.234`).
pub fn fmt_micros(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

#[cfg(test)]
mod tests;
