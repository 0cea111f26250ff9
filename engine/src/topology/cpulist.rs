//! Linux CPU list strings (`"0-3,8,10-11"`), as found in sysfs and taken by `taskset -c`.
//!
//! Owns parsing and printing only. Invariant: [`parse_cpu_list`] returns a sorted list without
//! duplicates, and [`format_cpu_list`] of that list parses back to the same list.

use super::TopologyError;

/// Ranges above this are rejected, so a corrupt file cannot make us allocate gigabytes.
const MAX_CPU: usize = 1 << 20;

/// Parses a Linux CPU list such as `"0-3,8,10-11"` into sorted, distinct CPU numbers.
///
/// Whitespace around items and a trailing newline are ignored; an empty string is an empty list.
///
/// # Errors
/// [`TopologyError::BadCpuList`] for a non-number, a reversed range (`5-3`) or a CPU number
/// above 2^20.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, TopologyError> {
    let bad = |reason: String| TopologyError::BadCpuList { input: text.to_owned(), reason };
    let num = |s: &str| -> Result<usize, TopologyError> {
        let n: usize = s.trim().parse().map_err(|_| bad(format!("{s:?} is not a CPU number")))?;
        if n > MAX_CPU {
            return Err(bad(format!("CPU {n} is out of range")));
        }
        Ok(n)
    };
    let mut cpus = Vec::new();
    for item in text.trim().split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        match item.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (num(lo)?, num(hi)?);
                if lo > hi {
                    return Err(bad(format!("range {item} is reversed")));
                }
                cpus.extend(lo..=hi);
            }
            None => cpus.push(num(item)?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Formats CPU numbers as a compact Linux CPU list (`[0,1,2,3,8]` → `"0-3,8"`).
///
/// The input need not be sorted; duplicates are ignored.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while let Some(&start) = sorted.get(i) {
        let mut end = start;
        while sorted.get(i + 1) == Some(&(end + 1)) {
            end += 1;
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if end == start {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}
