//! What a container or an affinity mask allows: `cgroup` (container detection, the CPU quota
//! against the shard count) and `cpus_allowed` (the planned CPUs against `Cpus_allowed_list`
//! and the cgroup cpuset).
//!
//! The cgroup is found from `/proc/self/cgroup`: a v2 line `0::/path` and v1 lines
//! `N:controllers:/path`. Its files live under `/sys/fs/cgroup` (v2; `/sys/fs/cgroup/unified`
//! on a hybrid host) or `/sys/fs/cgroup/<controllers>` (v1). Where the process's path does not
//! exist under the mount (a cgroup namespace shows the container's own cgroup at the mount
//! root), the mount root is used. A v1 controller, where one is mounted, wins over v2 (that is
//! the hierarchy the kernel enforces it in). The CPU quota is the tightest from the cgroup up
//! to the mount root, since any ancestor's quota throttles its children.

use super::{cpus, cpus_named, outside, parse_cpu_text, Subject};
use crate::doctor::report::Check;

/// Files whose presence says "container".
const CONTAINER_MARKERS: &[&str] = &["/.dockerenv", "/run/.containerenv"];

/// Words in a cgroup path that say "container".
const CONTAINER_WORDS: &[&str] = &["docker", "kubepods", "containerd", "libpod", "lxc", "crio"];

/// A CPU bandwidth limit: `quota_us` of CPU time per `period_us` of wall time.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Quota {
    quota_us: u64,
    period_us: u64,
    /// Where it was read, and the text found, for the line.
    source: String,
}

impl Quota {
    /// The limit in CPUs.
    fn cpus(&self) -> f64 {
        self.quota_us as f64 / self.period_us as f64
    }

    /// Whether it allows fewer CPUs than `other`.
    fn tighter_than(&self, other: &Quota) -> bool {
        u128::from(self.quota_us) * u128::from(other.period_us)
            < u128::from(other.quota_us) * u128::from(self.period_us)
    }
}

/// What `/proc/self/cgroup` and the cgroup files say.
#[derive(Clone, Debug, Default)]
struct Cgroup {
    /// Whether v1 lines and a v2 line were found.
    v1: bool,
    v2: bool,
    /// Every path listed, for container detection.
    paths: Vec<String>,
    /// The tightest CPU quota, if any.
    quota: Option<Quota>,
    /// The cpuset and the file it came from, if one was found.
    cpuset: Option<(Vec<usize>, String)>,
    /// Malformed lines and files, each naming its file.
    problems: Vec<String>,
}

/// The directories of one hierarchy from the process's cgroup up to the mount root (just the
/// mount root when the cgroup's directory is not under it).
fn chain(s: &Subject, base: &str, path: &str) -> Vec<String> {
    let leaf = format!("{base}/{}", path.trim_matches('/'));
    let leaf = leaf.trim_end_matches('/').to_owned();
    let mut dirs = Vec::new();
    // A path outside the namespace's root shows as `/../..`: it is not under the mount.
    if leaf != base && !path.split('/').any(|part| part == "..") && s.host.exists(&leaf) {
        let mut dir = leaf.as_str();
        while dir.len() > base.len() {
            dirs.push(dir.to_owned());
            dir = dir.rfind('/').map_or(base, |i| &dir[..i]);
        }
    }
    dirs.push(base.to_owned());
    dirs
}

/// Reads the quota files of one directory: v2 `cpu.max` or v1 `cpu.cfs_quota_us` and
/// `cpu.cfs_period_us`. `Ok(None)` for no limit or no file.
fn read_quota(s: &Subject, dir: &str, v1: bool) -> Result<Option<Quota>, String> {
    let malformed = |rel: &str, text: &str| format!("{} holds {text:?}", s.host.path(rel).display());
    if v1 {
        let (q_rel, p_rel) = (format!("{dir}/cpu.cfs_quota_us"), format!("{dir}/cpu.cfs_period_us"));
        let (Some(q), Some(p)) = (s.host.read(&q_rel)?, s.host.read(&p_rel)?) else {
            return Ok(None);
        };
        if q == "-1" {
            return Ok(None);
        }
        let quota_us = q.parse::<u64>().map_err(|_| malformed(&q_rel, &q))?;
        let period_us = p.parse::<u64>().ok().filter(|&p| p > 0).ok_or_else(|| malformed(&p_rel, &p))?;
        let source = format!("{} = {q}, cfs_period_us = {p}", s.host.path(&q_rel).display());
        return Ok(Some(Quota { quota_us, period_us, source }));
    }
    let rel = format!("{dir}/cpu.max");
    let Some(text) = s.host.read(&rel)? else {
        return Ok(None);
    };
    let mut fields = text.split_whitespace();
    let (quota, period) = (fields.next(), fields.next().unwrap_or("100000"));
    let period_us = period.parse::<u64>().ok().filter(|&p| p > 0).ok_or_else(|| malformed(&rel, &text))?;
    match quota {
        Some("max") => Ok(None),
        Some(q) => {
            let quota_us = q.parse::<u64>().map_err(|_| malformed(&rel, &text))?;
            Ok(Some(Quota { quota_us, period_us, source: format!("{} = \"{text}\"", s.host.path(&rel).display()) }))
        }
        None => Err(malformed(&rel, &text)),
    }
}

/// The first cpuset file found up the chain, as a CPU list.
fn read_cpuset(s: &Subject, dirs: &[String], files: &[&str]) -> Result<Option<(Vec<usize>, String)>, String> {
    for dir in dirs {
        for file in files {
            let rel = format!("{dir}/{file}");
            if let Some(text) = s.host.read(&rel)? {
                if text.is_empty() {
                    continue;
                }
                let path = s.host.path(&rel).display().to_string();
                let list = parse_cpu_text(&text).map_err(|e| format!("{path} holds {text:?}: {e}"))?;
                return Ok(Some((list, path)));
            }
        }
    }
    Ok(None)
}

/// Reads `/proc/self/cgroup` and the quota and cpuset files it leads to; `Ok(None)` when the
/// process has no cgroup file (not Linux, or no /proc).
fn read_cgroup(s: &Subject) -> Result<Option<Cgroup>, String> {
    let Some(text) = s.host.read("/proc/self/cgroup")? else {
        return Ok(None);
    };
    let mut cg = Cgroup::default();
    // (controllers, path) of each v1 line; the v2 path.
    let mut v1_lines: Vec<(Vec<&str>, &str)> = Vec::new();
    let mut v2_path = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("0"), Some(""), Some(path)) => {
                cg.v2 = true;
                v2_path = Some(path);
                cg.paths.push(path.to_owned());
            }
            (Some(_), Some(controllers), Some(path)) => {
                cg.v1 = true;
                v1_lines.push((controllers.split(',').collect(), path));
                cg.paths.push(path.to_owned());
            }
            _ => cg
                .problems
                .push(format!("{} has a malformed line {line:?}", s.host.path("/proc/self/cgroup").display())),
        }
    }
    let v2_base = if s.host.exists("/sys/fs/cgroup/unified") && !s.host.exists("/sys/fs/cgroup/cgroup.controllers") {
        "/sys/fs/cgroup/unified"
    } else {
        "/sys/fs/cgroup"
    };
    // The v1 mount of `controller`, and the process's path in it.
    let v1_mount = |controller: &str| -> Option<(String, &str)> {
        let (controllers, path) = v1_lines.iter().find(|(c, _)| c.contains(&controller))?;
        [format!("/sys/fs/cgroup/{}", controllers.join(",")), format!("/sys/fs/cgroup/{controller}")]
            .into_iter()
            .find(|base| s.host.exists(base))
            .map(|base| (base, *path))
    };

    // The quota: the tightest up the chain.
    let quota_dirs = match (v1_mount("cpu"), v2_path) {
        (Some((base, path)), _) => Some((chain(s, &base, path), true)),
        (None, Some(path)) => Some((chain(s, v2_base, path), false)),
        (None, None) => None,
    };
    if let Some((dirs, v1)) = quota_dirs {
        for dir in &dirs {
            match read_quota(s, dir, v1) {
                Ok(Some(q)) if cg.quota.as_ref().map_or(true, |best| q.tighter_than(best)) => cg.quota = Some(q),
                Ok(_) => {}
                Err(e) => cg.problems.push(e),
            }
        }
    }
    // The cpuset: the first file up the chain.
    let cpuset = match (v1_mount("cpuset"), v2_path) {
        (Some((base, path)), _) => read_cpuset(s, &chain(s, &base, path), &["cpuset.effective_cpus", "cpuset.cpus"]),
        (None, Some(path)) => read_cpuset(s, &chain(s, v2_base, path), &["cpuset.cpus.effective"]),
        (None, None) => Ok(None),
    };
    match cpuset {
        Ok(c) => cg.cpuset = c,
        Err(e) => cg.problems.push(e),
    }
    Ok(Some(cg))
}

/// Why this process looks like it runs in a container (`/.dockerenv`, a cgroup path naming
/// docker, ...), or `None`.
pub fn container(s: &Subject) -> Option<String> {
    if let Some(marker) = CONTAINER_MARKERS.iter().find(|m| s.host.exists(m)) {
        return Some((*marker).to_owned());
    }
    let text = s.host.read("/proc/self/cgroup").ok().flatten()?;
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .find(|path| CONTAINER_WORDS.iter().any(|w| path.contains(w)))
        .map(|path| format!("cgroup {path}"))
}

/// Container detection and the CPU quota against the shard count.
pub fn cgroup(s: &Subject) -> Check {
    const NAME: &str = "cgroup";
    let place = container(s).map_or_else(|| "not in a container".to_owned(), |e| format!("in a container ({e})"));
    let cg = match read_cgroup(s) {
        Ok(Some(cg)) => cg,
        Ok(None) => return Check::pass(NAME, format!("{place}; no /proc/self/cgroup, so no cgroup limits")),
        Err(e) => return Check::warn(NAME, format!("{place}; {e}"), "check that /proc is mounted and readable"),
    };
    let version = match (cg.v1, cg.v2) {
        (true, true) => "cgroup v1+v2 (hybrid)",
        (true, false) => "cgroup v1",
        _ => "cgroup v2",
    };
    let shards = s.shards();
    let cpuset = cg.cpuset.as_ref().map_or_else(String::new, |(list, _)| format!("; cpuset {}", cpus(list)));
    let problems = if cg.problems.is_empty() { String::new() } else { format!("; {}", cg.problems.join("; ")) };
    if let Some(q) = &cg.quota {
        if u128::from(q.quota_us) < u128::from(q.period_us) * shards as u128 {
            let most = q.quota_us / q.period_us;
            let fewer = if most == 0 {
                "or remove the CPU limit".to_owned()
            } else {
                format!("or run at most {most} shard(s) ([placement] shards = {most})")
            };
            return Check::fail(
                NAME,
                format!(
                    "{place}; {version}; {} allows {:.2} CPUs for {shards} shard(s): each shard keeps a CPU busy (it spins before parking), so the group spends its quota early in every {} ms period and every shard stalls until the next{problems}",
                    q.source,
                    q.cpus(),
                    q.period_us / 1000
                ),
                format!("raise the quota to at least {shards} CPUs (docker run --cpus={shards}, Kubernetes limits.cpu: {shards}) {fewer}"),
            );
        }
    }
    let quota = cg.quota.as_ref().map_or_else(
        || "no CPU quota".to_owned(),
        |q| format!("CPU quota {:.2} CPUs for {shards} shard(s) ({})", q.cpus(), q.source),
    );
    let detail = format!("{place}; {version}; {quota}{cpuset}{problems}");
    if cg.problems.is_empty() {
        Check::pass(NAME, detail)
    } else {
        Check::warn(NAME, detail, "check the cgroup files named above")
    }
}

/// `Cpus_allowed_list` of `/proc/self/status`: `Ok(None)` when the file is missing.
fn allowed_list(s: &Subject) -> Result<Option<Vec<usize>>, String> {
    let rel = "/proc/self/status";
    let Some(text) = s.host.read(rel)? else {
        return Ok(None);
    };
    let path = s.host.path(rel);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .ok_or_else(|| format!("{} has no Cpus_allowed_list line", path.display()))?;
    parse_cpu_text(line).map(Some).map_err(|e| format!("{} Cpus_allowed_list {:?}: {e}", path.display(), line.trim()))
}

/// Whether every planned CPU is in the affinity mask and the cgroup cpuset.
pub fn cpus_allowed(s: &Subject) -> Check {
    const NAME: &str = "cpus_allowed";
    let mut planned = s.cpus.clone();
    planned.sort_unstable();
    planned.dedup();
    if planned.is_empty() {
        return Check::pass(NAME, "no planned CPU to check (see placement)");
    }
    let mut problems = Vec::new();
    let mut found = Vec::new();
    let mut refused = Vec::new();
    let mut allowed_everywhere: Option<Vec<usize>> = None;
    let mut narrow = |list: &[usize]| {
        allowed_everywhere = Some(match allowed_everywhere.take() {
            None => list.to_vec(),
            Some(prev) => prev.into_iter().filter(|c| list.contains(c)).collect(),
        });
    };
    match allowed_list(s) {
        Ok(Some(list)) => {
            found.push(format!("Cpus_allowed_list {}", cpus(&list)));
            let out = outside(&planned, &list);
            if !out.is_empty() {
                refused.push(format!(
                    "{} not in Cpus_allowed_list {} ({})",
                    cpus_named(&out),
                    cpus(&list),
                    s.host.path("/proc/self/status").display()
                ));
            }
            narrow(&list);
        }
        Ok(None) => {}
        Err(e) => problems.push(e),
    }
    match read_cgroup(s) {
        Ok(Some(cg)) => {
            if let Some((list, file)) = &cg.cpuset {
                found.push(format!("cpuset {}", cpus(list)));
                let out = outside(&planned, list);
                if !out.is_empty() {
                    refused.push(format!("{} not in the cgroup cpuset {} ({file})", cpus_named(&out), cpus(list)));
                }
                narrow(list);
            }
            problems.extend(cg.problems);
        }
        Ok(None) => {}
        Err(e) => problems.push(e),
    }
    let problems = if problems.is_empty() { String::new() } else { format!("; {}", problems.join("; ")) };
    if !refused.is_empty() {
        let within = allowed_everywhere.map_or_else(String::new, |l| format!(" (allowed: {})", cpus(&l)));
        return Check::fail(
            NAME,
            format!("planned {}: {}{problems}", cpus_named(&planned), refused.join("; ")),
            format!(
                "start nexus where they are allowed (taskset -c {list}, docker run --cpuset-cpus={list}), or plan within what is allowed{within}: [placement] in {}",
                s.config_origin,
                list = cpus(&planned)
            ),
        );
    }
    let seen = if found.is_empty() { "no affinity or cpuset found to limit them".to_owned() } else { found.join(", ") };
    let detail = format!("planned {} allowed ({seen}){problems}", cpus_named(&planned));
    if problems.is_empty() {
        Check::pass(NAME, detail)
    } else {
        Check::warn(NAME, detail, "check the files named above")
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn no_quota_passes_and_a_quota_below_the_shards_fails() {
        let root = FakeRoot::healthy("quota", 2);
        expect(&cgroup(&default_subject(&root)), Status::Pass, &["not in a container", "cgroup v2", "no CPU quota"]);
        root.write("sys/fs/cgroup/cpu.max", "200000 100000");
        expect(&cgroup(&default_subject(&root)), Status::Pass, &["CPU quota 2.00 CPUs for 2 shard(s)"]);
        root.write("sys/fs/cgroup/cpu.max", "50000 100000");
        let c = cgroup(&default_subject(&root));
        expect(
            &c,
            Status::Fail,
            &["allows 0.50 CPUs for 2 shard(s)", "spins", "100 ms", "--cpus=2", "remove the CPU limit"],
        );
        root.write("sys/fs/cgroup/cpu.max", "150000 100000");
        expect(&cgroup(&default_subject(&root)), Status::Fail, &["1.50 CPUs", "shards = 1"]);
    }

    #[test]
    fn the_tightest_quota_up_the_chain_counts_and_containers_are_named() {
        let root = FakeRoot::healthy("quota-chain", 2);
        root.write("proc/self/cgroup", "0::/system.slice/docker-abc.scope")
            .write("sys/fs/cgroup/system.slice/docker-abc.scope/cpu.max", "max 100000")
            .write("sys/fs/cgroup/system.slice/cpu.max", "100000 100000");
        let c = cgroup(&default_subject(&root));
        expect(&c, Status::Fail, &["in a container (cgroup /system.slice/docker-abc.scope)", "system.slice/cpu.max"]);
        root.write(".dockerenv", "");
        expect(&cgroup(&default_subject(&root)), Status::Fail, &["in a container (/.dockerenv)"]);
        // A path outside the cgroup namespace falls back to the mount root, whose quota is none.
        root.write("proc/self/cgroup", "0::/../system.slice").write("sys/fs/system.slice/cpu.max", "50000 100000");
        expect(&cgroup(&default_subject(&root)), Status::Pass, &["no CPU quota"]);
    }

    #[test]
    fn cgroup_v1_quota_and_hybrid_mounts_are_read() {
        let root = FakeRoot::healthy("quota-v1", 2);
        root.write("proc/self/cgroup", "4:cpu,cpuacct:/\n3:cpuset:/\n0::/")
            .write("sys/fs/cgroup/unified/cgroup.procs", "1")
            .write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1")
            .write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000")
            .write("sys/fs/cgroup/cpuset/cpuset.cpus", "0-1");
        expect(
            &cgroup(&default_subject(&root)),
            Status::Pass,
            &["cgroup v1+v2 (hybrid)", "no CPU quota", "cpuset 0-1"],
        );
        root.write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "100000");
        expect(&cgroup(&default_subject(&root)), Status::Fail, &["1.00 CPUs for 2 shard(s)", "cfs_period_us = 100000"]);
    }

    #[test]
    fn malformed_cgroup_files_warn_naming_them() {
        let root = FakeRoot::healthy("quota-bad", 2);
        root.write("sys/fs/cgroup/cpu.max", "lots 100000");
        expect(&cgroup(&default_subject(&root)), Status::Warn, &["cgroup/cpu.max holds \"lots 100000\""]);
        root.write("proc/self/cgroup", "garbage");
        expect(&cgroup(&default_subject(&root)), Status::Warn, &["malformed line \"garbage\""]);
        root.remove("proc/self/cgroup");
        expect(&cgroup(&default_subject(&root)), Status::Pass, &["no cgroup limits"]);
    }

    #[test]
    fn planned_cpus_inside_the_mask_and_cpuset_pass() {
        let root = FakeRoot::healthy("allowed", 2);
        expect(&cpus_allowed(&default_subject(&root)), Status::Pass, &["Cpus_allowed_list 0-1, cpuset 0-1"]);
    }

    #[test]
    fn a_cpuset_excluding_a_planned_cpu_fails() {
        let root = FakeRoot::healthy("cpuset", 2);
        root.write("sys/fs/cgroup/cpuset.cpus.effective", "0");
        let c = cpus_allowed(&default_subject(&root));
        expect(
            &c,
            Status::Fail,
            &["CPU 1 not in the cgroup cpuset 0", "cpuset.cpus.effective", "allowed: 0", "taskset -c 0-1"],
        );
    }

    #[test]
    fn an_affinity_mask_excluding_a_planned_cpu_fails() {
        let root = FakeRoot::healthy("affinity", 4);
        root.write("proc/self/status", "Name:\tnexus\nCpus_allowed_list:\t0-1\n");
        let s = subject(&root, ExecutorKind::Auto, PlacementRequest::cpus(&[1, 3]));
        expect(&cpus_allowed(&s), Status::Fail, &["CPU 3 not in Cpus_allowed_list 0-1"]);
        root.write("proc/self/status", "Name:\tnexus\n");
        expect(&cpus_allowed(&s), Status::Warn, &["no Cpus_allowed_list line"]);
    }
}
