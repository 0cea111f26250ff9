//! Ordering shards around the ring by measured latency: which CPU is shard `i`, so that
//! neighbouring shards (`i` and `i + 1`, and the last with the first) sit on the CPUs that
//! exchange cache lines fastest.
//!
//! Owns a pure function of a CPU list and a latency function; nothing here measures or binds.
//! The cost of an order is the length of the closed tour through it, each edge weighted by the
//! mean of the two directions (`(lat(a, b) + lat(b, a)) / 2`), because ring neighbours talk
//! both ways. Unmeasured pairs (`NaN`) cost [`UNMEASURED_COST`], so they are avoided rather than
//! poisoning the sums.
//!
//! Invariants of [`order_by_latency`]: the result is a permutation of the input (duplicates
//! kept), starts with the input's first CPU (shard 0 stays where it was), and its
//! [`cycle_cost`] is never above the input order's. Up to [`EXACT_MAX`] CPUs the order is
//! optimal (every tour is tried); above, it is nearest neighbour followed by 2-opt, run from
//! the nearest-neighbour tour and from the input order, keeping the cheaper.

/// Largest CPU count ordered by trying every tour ((n-1)! of them: 5040 at 8).
pub const EXACT_MAX: usize = 8;

/// The cost given to a pair whose latency is `NaN` (not measured).
pub const UNMEASURED_COST: f64 = 1e12;

/// Most 2-opt improvement passes over the tour; each pass is O(n²), and every pass but the
/// last strictly lowers the cost, so this only bounds pathological float behaviour.
const MAX_TWO_OPT_PASSES: usize = 1000;

/// Improvements smaller than this (in the latency's unit) are ignored, so float noise cannot
/// make 2-opt cycle.
const EPSILON: f64 = 1e-9;

/// The symmetric edge weights between positions of `cpus`.
fn weights(cpus: &[usize], latency: &impl Fn(usize, usize) -> f64) -> Vec<Vec<f64>> {
    let clean = |v: f64| if v.is_nan() { UNMEASURED_COST } else { v };
    (0..cpus.len())
        .map(|i| {
            (0..cpus.len())
                .map(|j| {
                    if i == j {
                        0.0
                    } else {
                        (clean(latency(cpus[i], cpus[j])) + clean(latency(cpus[j], cpus[i]))) / 2.0
                    }
                })
                .collect()
        })
        .collect()
}

/// The closed-tour cost of a tour of positions.
fn tour_cost(tour: &[usize], w: &[Vec<f64>]) -> f64 {
    (0..tour.len()).map(|k| w[tour[k]][tour[(k + 1) % tour.len()]]).sum()
}

/// The cost of the ring in the order `cpus`: the sum over every shard `i` of the mean latency
/// between its CPU and the next shard's (the last shard's next is shard 0). Zero for fewer
/// than two CPUs.
pub fn cycle_cost(cpus: &[usize], latency: impl Fn(usize, usize) -> f64) -> f64 {
    if cpus.len() < 2 {
        return 0.0;
    }
    let w = weights(cpus, &latency);
    tour_cost(&(0..cpus.len()).collect::<Vec<_>>(), &w)
}

/// Reorders `cpus` so that ring neighbours are on low-latency pairs; see the module docs for
/// the cost, the method and the guarantees.
pub fn order_by_latency(cpus: &[usize], latency: impl Fn(usize, usize) -> f64) -> Vec<usize> {
    let n = cpus.len();
    if n <= 3 {
        // Every cyclic order of three or fewer is the same ring.
        return cpus.to_vec();
    }
    let w = weights(cpus, &latency);
    let identity: Vec<usize> = (0..n).collect();
    let tour = if n <= EXACT_MAX {
        exact(&w)
    } else {
        let from_nn = two_opt(nearest_neighbour(&w), &w);
        let from_input = two_opt(identity.clone(), &w);
        if tour_cost(&from_nn, &w) < tour_cost(&from_input, &w) {
            from_nn
        } else {
            from_input
        }
    };
    let tour = if tour_cost(&tour, &w) < tour_cost(&identity, &w) - EPSILON { tour } else { identity };
    let start = tour.iter().position(|&p| p == 0).unwrap_or(0);
    (0..n).map(|k| cpus[tour[(start + k) % n]]).collect()
}

/// The optimal tour by trying every order of positions 1.. after position 0 (Heap's algorithm).
fn exact(w: &[Vec<f64>]) -> Vec<usize> {
    let mut rest: Vec<usize> = (1..w.len()).collect();
    let mut best: Vec<usize> = (0..w.len()).collect();
    let mut best_cost = tour_cost(&best, w);
    let mut consider = |rest: &[usize]| {
        let tour: Vec<usize> = std::iter::once(0).chain(rest.iter().copied()).collect();
        let cost = tour_cost(&tour, w);
        if cost < best_cost - EPSILON {
            best_cost = cost;
            best = tour;
        }
    };
    // Iterative Heap's algorithm over `rest`.
    let k = rest.len();
    let mut c = vec![0usize; k];
    consider(&rest);
    let mut i = 0;
    while i < k {
        if c[i] < i {
            if i % 2 == 0 {
                rest.swap(0, i);
            } else {
                rest.swap(c[i], i);
            }
            consider(&rest);
            c[i] += 1;
            i = 0;
        } else {
            c[i] = 0;
            i += 1;
        }
    }
    best
}

/// A tour built by always going to the cheapest unvisited position, from position 0.
fn nearest_neighbour(w: &[Vec<f64>]) -> Vec<usize> {
    let n = w.len();
    let mut visited = vec![false; n];
    let mut tour = Vec::with_capacity(n);
    let mut at = 0;
    visited[0] = true;
    tour.push(0);
    for _ in 1..n {
        let next = (0..n).filter(|&j| !visited[j]).min_by(|&a, &b| w[at][a].total_cmp(&w[at][b])).unwrap_or(at);
        visited[next] = true;
        tour.push(next);
        at = next;
    }
    tour
}

/// Improves a tour with 2-opt moves (reverse a stretch when that shortens the tour) until
/// none helps or [`MAX_TWO_OPT_PASSES`] passes are done.
pub(crate) fn two_opt(mut tour: Vec<usize>, w: &[Vec<f64>]) -> Vec<usize> {
    let n = tour.len();
    if n < 4 {
        return tour;
    }
    for _ in 0..MAX_TWO_OPT_PASSES {
        let mut improved = false;
        for i in 0..n - 1 {
            for j in i + 2..n {
                if i == 0 && j == n - 1 {
                    continue; // the two edges share a vertex
                }
                let (a, b, c, d) = (tour[i], tour[i + 1], tour[j], tour[(j + 1) % n]);
                let delta = w[a][c] + w[b][d] - w[a][b] - w[c][d];
                if delta < -EPSILON {
                    tour[i + 1..=j].reverse();
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
    tour
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random latency table (xorshift), symmetric or not.
    fn table(n: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut x = seed | 1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 1000) as f64 + 1.0
        };
        (0..n).map(|_| (0..n).map(|_| next()).collect()).collect()
    }

    fn lat(t: &[Vec<f64>]) -> impl Fn(usize, usize) -> f64 + '_ {
        move |a, b| t[a][b]
    }

    fn is_permutation(a: &[usize], b: &[usize]) -> bool {
        let (mut a, mut b) = (a.to_vec(), b.to_vec());
        a.sort_unstable();
        b.sort_unstable();
        a == b
    }

    /// The optimum by brute force over all permutations (recursive, independent of `exact`).
    fn brute_force(cpus: &[usize], latency: &impl Fn(usize, usize) -> f64) -> f64 {
        fn go(prefix: &mut Vec<usize>, left: &mut Vec<usize>, f: &dyn Fn(&[usize]) -> f64, best: &mut f64) {
            if left.is_empty() {
                *best = best.min(f(prefix));
                return;
            }
            for k in 0..left.len() {
                let c = left.remove(k);
                prefix.push(c);
                go(prefix, left, f, best);
                prefix.pop();
                left.insert(k, c);
            }
        }
        let cost = |order: &[usize]| cycle_cost(order, latency);
        let mut best = f64::INFINITY;
        go(&mut Vec::new(), &mut cpus.to_vec(), &cost, &mut best);
        best
    }

    #[test]
    fn two_clusters_end_up_contiguous() {
        // CPUs 0..8 interleaved between two clusters: even CPUs in one, odd in the other.
        // Inside a cluster 10 ns, across 100 ns.
        for n in [6, 8, 12, 16, 24] {
            let cpus: Vec<usize> = (0..n).collect();
            let latency = |a: usize, b: usize| if a % 2 == b % 2 { 10.0 } else { 100.0 };
            let order = order_by_latency(&cpus, latency);
            assert!(is_permutation(&order, &cpus), "{order:?}");
            assert_eq!(order[0], 0, "shard 0 keeps its CPU");
            let switches = (0..n).filter(|&k| order[k] % 2 != order[(k + 1) % n] % 2).count();
            assert_eq!(switches, 2, "each cluster is one stretch of the ring: {order:?}");
            assert!(cycle_cost(&order, latency) < cycle_cost(&cpus, latency));
        }
    }

    #[test]
    fn results_are_permutations_never_worse_than_the_input() {
        for n in [0, 1, 2, 3, 4, 5, 9, 17, 40] {
            for seed in 1..6u64 {
                let t = table(n.max(1) * 2, seed);
                // Sparse, unsorted CPU numbers (and a duplicate, as under oversubscription).
                let mut cpus: Vec<usize> = (0..n).map(|k| (k * 7 + seed as usize) % (n.max(1) * 2)).collect();
                if n > 4 {
                    cpus[n - 1] = cpus[0];
                }
                let order = order_by_latency(&cpus, lat(&t));
                assert!(is_permutation(&order, &cpus), "n={n} {order:?}");
                assert_eq!(order.first(), cpus.first());
                assert!(cycle_cost(&order, lat(&t)) <= cycle_cost(&cpus, lat(&t)) + 1e-9, "n={n} seed={seed}");
            }
        }
    }

    #[test]
    fn exact_up_to_seven_matches_brute_force() {
        for n in 2..=7 {
            for seed in 1..8u64 {
                let t = table(n, seed * 31 + n as u64);
                let cpus: Vec<usize> = (0..n).collect();
                let order = order_by_latency(&cpus, lat(&t));
                let best = brute_force(&cpus, &lat(&t));
                let got = cycle_cost(&order, lat(&t));
                assert!((got - best).abs() < 1e-6, "n={n} seed={seed}: {got} vs optimum {best}");
            }
        }
    }

    #[test]
    fn heuristic_is_close_to_brute_force() {
        // The 2-opt path (used above EXACT_MAX) on instances small enough to brute-force.
        for n in 5..=7 {
            for seed in 1..8u64 {
                let t = table(n, seed * 17 + n as u64);
                let cpus: Vec<usize> = (0..n).collect();
                let w = weights(&cpus, &lat(&t));
                let tour = two_opt(nearest_neighbour(&w), &w);
                let best = brute_force(&cpus, &lat(&t));
                assert!(tour_cost(&tour, &w) <= best * 1.25 + 1e-9, "n={n} seed={seed}");
            }
        }
    }

    #[test]
    fn unmeasured_pairs_are_avoided() {
        // A ring 0-1-2-3-4 where every other pair is unmeasured (NaN).
        let cpus = [0, 2, 4, 1, 3];
        let latency = |a: usize, b: usize| {
            let d = (a as i64 - b as i64).rem_euclid(5);
            if d == 1 || d == 4 {
                5.0
            } else {
                f64::NAN
            }
        };
        let order = order_by_latency(&cpus, latency);
        assert_eq!(cycle_cost(&order, latency), 25.0, "{order:?}");
        assert!(cycle_cost(&cpus, latency) >= UNMEASURED_COST);
    }
}
