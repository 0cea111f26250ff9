//! How the planned CPUs behave: `governor` (the cpufreq scaling governor of each), `isolation`
//! (`isolcpus` / `nohz_full`, from sysfs and the kernel command line) and `smt` (the SMT state
//! and whether two shards share a core).
//!
//! Each looks only at the planned CPUs ([`Subject::cpus`]); with no plan there is nothing to
//! judge and the line says so (the `placement` check owns that failure).

use super::{cpus, cpus_named, outside, parse_cpu_text, read_cpu_list, Subject};
use crate::doctor::report::{Check, Status};
use std::collections::BTreeMap;

/// The planned CPUs, ascending, each once.
fn planned(s: &Subject) -> Vec<usize> {
    let mut list = s.cpus.clone();
    list.sort_unstable();
    list.dedup();
    list
}

/// The cpufreq governor of each planned CPU.
pub fn governor(s: &Subject) -> Check {
    const NAME: &str = "governor";
    let planned = planned(s);
    if planned.is_empty() {
        return Check::pass(NAME, "no planned CPU to check (see placement)");
    }
    let mut by_governor: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut no_cpufreq = Vec::new();
    let mut problems = Vec::new();
    for &cpu in &planned {
        let dir = format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq");
        let rel = format!("{dir}/scaling_governor");
        match s.host.read(&rel) {
            Ok(Some(g)) if !g.is_empty() && !g.contains(char::is_whitespace) => {
                by_governor.entry(g).or_default().push(cpu);
            }
            Ok(Some(g)) => problems.push(format!("{} holds {g:?}", s.host.path(&rel).display())),
            Ok(None) if !s.host.exists(&dir) => no_cpufreq.push(cpu),
            Ok(None) => problems.push(format!("{} is missing", s.host.path(&rel).display())),
            Err(e) => problems.push(e),
        }
    }
    let performance = by_governor.remove("performance").unwrap_or_default();
    let mut parts = Vec::new();
    for (g, list) in &by_governor {
        parts.push(format!("{g} on {}", cpus_named(list)));
    }
    let slow = !by_governor.is_empty();
    if slow {
        parts.push("the clock drops while a shard idles and ramps back slowly (latency after every lull)".to_owned());
    }
    if !performance.is_empty() {
        parts.push(format!("performance on {}", cpus_named(&performance)));
    }
    if !no_cpufreq.is_empty() {
        parts.push(format!(
            "no cpufreq on {}: the hypervisor or firmware sets the clock (typical in a VM), nothing to set from here",
            cpus_named(&no_cpufreq)
        ));
    }
    parts.extend(problems.iter().cloned());
    let detail = parts.join("; ");
    if slow {
        let list = cpus(&by_governor.values().flatten().copied().collect::<Vec<_>>());
        Check::warn(
            NAME,
            detail,
            format!("cpupower -c {list} frequency-set -g performance (or write performance to each cpuN/cpufreq/scaling_governor)"),
        )
    } else if !problems.is_empty() {
        Check::warn(NAME, detail, "check the cpufreq driver: `cpupower frequency-info` shows the policy and governor")
    } else {
        Check::pass(NAME, detail)
    }
}

/// The CPUs a kernel command-line parameter (`isolcpus=`, `nohz_full=`) lists; flags such as
/// `domain` or `managed_irq` before the list are skipped. Arguments after `--` go to init and
/// are ignored.
fn cmdline_cpus(cmdline: &str, key: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for token in cmdline.split_whitespace().take_while(|t| *t != "--") {
        let Some(value) = token.strip_prefix(key).and_then(|t| t.strip_prefix('=')) else {
            continue;
        };
        let list: Vec<&str> = value.split(',').filter(|p| p.starts_with(|c: char| c.is_ascii_digit())).collect();
        out.extend(parse_cpu_text(&list.join(",")).map_err(|e| format!("{key}={value}: {e}"))?);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Whether the planned CPUs are isolated from the scheduler (`isolcpus`) and the tick
/// (`nohz_full`).
pub fn isolation(s: &Subject) -> Check {
    const NAME: &str = "isolation";
    let planned = planned(s);
    if planned.is_empty() {
        return Check::pass(NAME, "no planned CPU to check (see placement)");
    }
    let mut problems = Vec::new();
    let mut isolated = Vec::new();
    let mut nohz = Vec::new();
    for (rel, into) in
        [("/sys/devices/system/cpu/isolated", &mut isolated), ("/sys/devices/system/cpu/nohz_full", &mut nohz)]
    {
        match read_cpu_list(s, rel) {
            Ok(list) => into.extend(list.unwrap_or_default()),
            Err(e) => problems.push(e),
        }
    }
    match s.host.read("/proc/cmdline") {
        Ok(text) => {
            let text = text.unwrap_or_default();
            for (key, into) in [("isolcpus", &mut isolated), ("nohz_full", &mut nohz)] {
                match cmdline_cpus(&text, key) {
                    Ok(list) => into.extend(list),
                    Err(e) => problems.push(format!("{}: {e}", s.host.path("/proc/cmdline").display())),
                }
            }
        }
        Err(e) => problems.push(e),
    }
    let not_isolated = outside(&planned, &isolated);
    let not_nohz = outside(&planned, &nohz);
    let list = cpus(&planned);
    let problems_tail = if problems.is_empty() { String::new() } else { format!("; {}", problems.join("; ")) };
    if !not_isolated.is_empty() {
        return Check::warn(
            NAME,
            format!(
                "{} not isolated: other tasks and kernel threads share them and can preempt a shard{problems_tail}",
                cpus_named(&not_isolated)
            ),
            format!(
                "boot with isolcpus={list} nohz_full={list} rcu_nocbs={list} and start nexus under taskset -c {list}, or keep those CPUs otherwise idle"
            ),
        );
    }
    let tick = if not_nohz.is_empty() {
        "and nohz_full (no scheduler tick while one task runs)".to_owned()
    } else {
        format!("but nohz_full leaves out {}: the scheduler tick still interrupts it", cpus_named(&not_nohz))
    };
    if problems.is_empty() {
        Check::pass(NAME, format!("{} isolated {tick}", cpus_named(&planned)))
    } else {
        Check::warn(
            NAME,
            format!("{} isolated {tick}{problems_tail}", cpus_named(&planned)),
            "check the files named above",
        )
    }
}

/// The SMT state, and whether the plan puts two shards on one core.
pub fn smt(s: &Subject) -> Check {
    const NAME: &str = "smt";
    let mut problems = Vec::new();
    let control = match s.host.read("/sys/devices/system/cpu/smt/control") {
        Ok(Some(c)) => match c.as_str() {
            "on" => "SMT on".to_owned(),
            "off" => "SMT off".to_owned(),
            "forceoff" => "SMT forced off".to_owned(),
            "notsupported" => "no SMT".to_owned(),
            "notimplemented" => "SMT control not implemented".to_owned(),
            other => {
                let path = s.host.path("/sys/devices/system/cpu/smt/control");
                problems.push(format!("{} holds {other:?}", path.display()));
                "SMT state unknown".to_owned()
            }
        },
        Ok(None) => {
            let smt = s.host.topology.as_ref().is_ok_and(|t| t.has_smt());
            format!("{} (no smt/control; from the topology)", if smt { "SMT on" } else { "no SMT" })
        }
        Err(e) => {
            problems.push(e);
            "SMT state unknown".to_owned()
        }
    };
    let active = match s.host.read("/sys/devices/system/cpu/smt/active") {
        Ok(Some(a)) if a == "1" => ", active",
        _ => "",
    };
    let state = format!("{control}{active}");
    let problems_tail = if problems.is_empty() { String::new() } else { format!("; {}", problems.join("; ")) };
    let (Ok(plan), Ok(topology)) = (&s.plan, &s.host.topology) else {
        return Check::with_status(
            NAME,
            if problems.is_empty() { Status::Pass } else { Status::Warn },
            format!("{state}; no plan to check (see placement){problems_tail}"),
            "check the file named above",
        );
    };
    // Shards by core, in shard order.
    let mut by_core: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for shard in plan {
        by_core.entry(shard.core).or_default().push(shard.shard);
    }
    let shared: Vec<String> = by_core
        .iter()
        .filter(|(_, shards)| shards.len() > 1)
        .map(|(core, shards)| {
            let on: Vec<usize> = shards.iter().filter_map(|&i| plan.shards.get(i).map(|p| p.cpu)).collect();
            let shards: Vec<String> = shards.iter().map(usize::to_string).collect();
            format!("shards {} share core {core} ({})", shards.join(","), cpus_named(&on))
        })
        .collect();
    if !shared.is_empty() {
        return Check::warn(
            NAME,
            format!("{state}; {}: they split one core's execution units and caches{problems_tail}", shared.join("; ")),
            "run one shard per core: shards = \"auto\", fewer shards, or one CPU per core in [placement] cpus (oversubscribe = false refuses more)",
        );
    }
    let mut siblings: Vec<usize> = plan
        .iter()
        .filter_map(|p| topology.cores().get(p.core))
        .flat_map(|core| core.pus.iter().copied())
        .filter(|cpu| !s.cpus.contains(cpu))
        .collect();
    siblings.sort_unstable();
    siblings.dedup();
    let idle = if siblings.is_empty() {
        String::new()
    } else {
        format!("; their siblings ({}) get no shard: keep them idle for steady latency", cpus_named(&siblings))
    };
    let detail = format!("{state}; {} shard(s) on as many cores{idle}{problems_tail}", plan.len());
    if problems.is_empty() {
        Check::pass(NAME, detail)
    } else {
        Check::warn(NAME, detail, "check the file named above")
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn governor_performance_passes_powersave_warns() {
        let root = FakeRoot::healthy("governor", 2);
        expect(&governor(&default_subject(&root)), Status::Pass, &["performance on CPUs 0-1"]);
        root.write("sys/devices/system/cpu/cpu1/cpufreq/scaling_governor", "powersave");
        let c = governor(&default_subject(&root));
        expect(
            &c,
            Status::Warn,
            &["powersave on CPU 1", "performance on CPU 0", "cpupower -c 1 frequency-set -g performance"],
        );
    }

    #[test]
    fn no_cpufreq_passes_and_says_why() {
        let root = FakeRoot::healthy("governor-vm", 2);
        root.remove("sys/devices/system/cpu/cpu0/cpufreq").remove("sys/devices/system/cpu/cpu1/cpufreq");
        expect(&governor(&default_subject(&root)), Status::Pass, &["no cpufreq on CPUs 0-1", "VM"]);
    }

    #[test]
    fn a_malformed_governor_warns_naming_the_file() {
        let root = FakeRoot::healthy("governor-bad", 1);
        root.write("sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "");
        expect(&governor(&default_subject(&root)), Status::Warn, &["cpu0/cpufreq/scaling_governor holds"]);
        root.remove("sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
        expect(&governor(&default_subject(&root)), Status::Warn, &["scaling_governor is missing"]);
    }

    #[test]
    fn isolation_covering_the_plan_passes_and_a_gap_warns() {
        let root = FakeRoot::healthy("isolation", 2);
        expect(&isolation(&default_subject(&root)), Status::Pass, &["CPUs 0-1 isolated and nohz_full"]);
        // The sysfs list alone is enough, and nohz_full may be missing.
        root.write("proc/cmdline", "root=/dev/vda1").write("sys/devices/system/cpu/nohz_full", "(null)");
        expect(&isolation(&default_subject(&root)), Status::Pass, &["nohz_full leaves out CPUs 0-1"]);
        root.write("sys/devices/system/cpu/isolated", "1");
        expect(&isolation(&default_subject(&root)), Status::Warn, &["CPU 0 not isolated", "isolcpus=0-1"]);
        // The command line covers what sysfs does not (and flags before the list are skipped).
        root.write("proc/cmdline", "root=/dev/vda1 isolcpus=managed_irq,domain,0 -- isolcpus=1");
        expect(&isolation(&default_subject(&root)), Status::Pass, &["isolated"]);
    }

    #[test]
    fn a_malformed_isolated_list_warns_naming_the_file() {
        let root = FakeRoot::healthy("isolation-bad", 2);
        root.write("sys/devices/system/cpu/isolated", "zero-one");
        expect(&isolation(&default_subject(&root)), Status::Warn, &["cpu/isolated holds \"zero-one\""]);
    }

    #[test]
    fn cmdline_lists_parse() {
        assert_eq!(cmdline_cpus("a isolcpus=domain,2-3,5 b", "isolcpus"), Ok(vec![2, 3, 5]));
        assert_eq!(cmdline_cpus("nohz_full=1 nohz=on", "nohz_full"), Ok(vec![1]));
        assert_eq!(cmdline_cpus("quiet", "isolcpus"), Ok(vec![]));
        assert!(cmdline_cpus("isolcpus=3-1", "isolcpus").is_err());
    }

    /// Two cores of two SMT siblings each: CPUs 0,2 on core 0 and 1,3 on core 1.
    fn smt_root(name: &str) -> FakeRoot {
        let root = FakeRoot::healthy(name, 4);
        root.cpu(0, "0,2", 0).cpu(2, "0,2", 0).cpu(1, "1,3", 1).cpu(3, "1,3", 1);
        root.write("sys/devices/system/cpu/smt/control", "on").write("sys/devices/system/cpu/smt/active", "1");
        root
    }

    #[test]
    fn smt_passes_with_one_shard_per_core_and_warns_when_shards_share_one() {
        let root = smt_root("smt");
        expect(&smt(&default_subject(&root)), Status::Pass, &["SMT on, active", "2 shard(s)", "siblings (CPUs 2-3)"]);
        let s = subject(&root, ExecutorKind::Auto, PlacementRequest::cpus(&[0, 2]));
        expect(&smt(&s), Status::Warn, &["shards 0,1 share core 0 (CPUs 0,2)", "one shard per core"]);
        let s = subject(&root, ExecutorKind::Auto, PlacementRequest::shards(3).oversubscribe(true));
        expect(&smt(&s), Status::Warn, &["share core"]);
    }

    #[test]
    fn smt_states_read_from_control() {
        let root = FakeRoot::healthy("smt-states", 2);
        expect(&smt(&default_subject(&root)), Status::Pass, &["no SMT"]);
        root.write("sys/devices/system/cpu/smt/control", "forceoff");
        expect(&smt(&default_subject(&root)), Status::Pass, &["SMT forced off"]);
        root.write("sys/devices/system/cpu/smt/control", "sideways");
        expect(&smt(&default_subject(&root)), Status::Warn, &["smt/control holds \"sideways\""]);
    }
}
