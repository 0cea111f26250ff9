//! Kernel memory policies that cost a shard latency: `numa_balancing` (automatic NUMA page
//! migration, which only matters with more than one node) and `thp` (transparent huge pages:
//! `enabled` and `defrag`).

use super::Subject;
use crate::doctor::report::Check;

/// Automatic NUMA balancing against the node count.
pub fn numa_balancing(s: &Subject) -> Check {
    const NAME: &str = "numa_balancing";
    let rel = "/proc/sys/kernel/numa_balancing";
    let nodes = s.host.numa_nodes();
    let value = match s.host.read(rel) {
        Ok(None) => return Check::pass(NAME, "this kernel has no automatic NUMA balancing"),
        Ok(Some(text)) => match text.parse::<u32>() {
            Ok(v) => v,
            Err(_) => {
                return Check::warn(
                    NAME,
                    format!("{} holds {text:?}, not a number", s.host.path(rel).display()),
                    "check the sysctl kernel.numa_balancing: it should hold 0 (off), 1 or 2",
                )
            }
        },
        Err(e) => return Check::warn(NAME, e, "check the sysctl kernel.numa_balancing"),
    };
    if value == 0 {
        Check::pass(NAME, format!("off ({nodes} NUMA node(s))"))
    } else if nodes <= 1 {
        Check::pass(NAME, format!("on ({value}), but this machine has one NUMA node: nothing to migrate"))
    } else {
        Check::warn(
            NAME,
            format!(
                "on ({value}) with {nodes} NUMA nodes: the kernel unmaps pages to sample them and migrates memory placement bound to each shard's node (latency spikes)"
            ),
            "sysctl -w kernel.numa_balancing=0 (and kernel.numa_balancing = 0 in /etc/sysctl.d/ to keep it)",
        )
    }
}

/// The selected value of a sysfs choice file such as `always [madvise] never`.
fn selected(text: &str) -> Option<&str> {
    let start = text.find('[')?;
    let end = start + text.get(start..)?.find(']')?;
    text.get(start + 1..end).filter(|v| !v.is_empty())
}

/// Transparent huge pages: `enabled` and `defrag`.
pub fn thp(s: &Subject) -> Check {
    const NAME: &str = "thp";
    const DIR: &str = "/sys/kernel/mm/transparent_hugepage";
    let mut found = Vec::new();
    let mut warnings = Vec::new();
    let mut fixes = Vec::new();
    for (file, fix) in [("enabled", "madvise"), ("defrag", "defer+madvise")] {
        let rel = format!("{DIR}/{file}");
        match s.host.read(&rel) {
            Ok(None) if file == "enabled" => {
                return Check::pass(NAME, "this kernel has no transparent huge pages");
            }
            Ok(None) => {}
            Ok(Some(text)) => match selected(&text) {
                Some("always") => {
                    found.push(format!("{file} always"));
                    fixes.push(format!("echo {fix} > {DIR}/{file}"));
                }
                Some(v) => found.push(format!("{file} {v}")),
                None => {
                    warnings.push(format!("{} holds {text:?}, no [selected] value", s.host.path(&rel).display()));
                    fixes.push(format!("check {DIR}/{file}"));
                }
            },
            Err(e) => {
                warnings.push(e);
                fixes.push(format!("check {DIR}/{file}"));
            }
        }
    }
    let always = found.iter().any(|f| f.ends_with("always"));
    let mut detail = found.join(", ");
    if always {
        detail.push_str(
            ": page faults may stall on compaction and khugepaged rewrites memory in the background (latency spikes, bloat)",
        );
    }
    for w in &warnings {
        detail.push_str("; ");
        detail.push_str(w);
    }
    if fixes.is_empty() {
        Check::pass(NAME, detail)
    } else {
        Check::warn(NAME, detail, fixes.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn numa_balancing_warns_only_on_several_nodes() {
        let root = FakeRoot::healthy("numa", 2);
        expect(&numa_balancing(&default_subject(&root)), Status::Pass, &["off"]);
        root.write("proc/sys/kernel/numa_balancing", "1");
        expect(&numa_balancing(&default_subject(&root)), Status::Pass, &["one NUMA node"]);
        root.write("sys/devices/system/node/node0/cpulist", "0").write("sys/devices/system/node/node1/cpulist", "1");
        expect(
            &numa_balancing(&default_subject(&root)),
            Status::Warn,
            &["with 2 NUMA nodes", "sysctl -w kernel.numa_balancing=0"],
        );
        root.remove("proc/sys/kernel/numa_balancing");
        expect(&numa_balancing(&default_subject(&root)), Status::Pass, &["no automatic NUMA balancing"]);
        root.write("proc/sys/kernel/numa_balancing", "yes");
        expect(&numa_balancing(&default_subject(&root)), Status::Warn, &["numa_balancing holds \"yes\""]);
    }

    #[test]
    fn thp_always_warns_madvise_passes() {
        let root = FakeRoot::healthy("thp", 1);
        expect(&thp(&default_subject(&root)), Status::Pass, &["enabled madvise, defrag madvise"]);
        root.write("sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never");
        expect(&thp(&default_subject(&root)), Status::Warn, &["enabled always", "echo madvise >"]);
        root.write("sys/kernel/mm/transparent_hugepage/enabled", "always madvise [never]");
        root.write("sys/kernel/mm/transparent_hugepage/defrag", "[always] defer defer+madvise madvise never");
        expect(&thp(&default_subject(&root)), Status::Warn, &["enabled never, defrag always", "echo defer+madvise >"]);
    }

    #[test]
    fn thp_missing_passes_and_malformed_warns() {
        let root = FakeRoot::healthy("thp-odd", 1);
        root.write("sys/kernel/mm/transparent_hugepage/enabled", "always madvise never");
        expect(&thp(&default_subject(&root)), Status::Warn, &["transparent_hugepage/enabled holds"]);
        root.remove("sys/kernel/mm/transparent_hugepage");
        expect(&thp(&default_subject(&root)), Status::Pass, &["no transparent huge pages"]);
        assert_eq!(selected("a [b] c"), Some("b"));
        assert_eq!(selected("a [] c"), None);
        assert_eq!(selected("a ]b[ c"), None);
    }
}
