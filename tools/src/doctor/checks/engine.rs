//! Can the engine start as configured, and on which executor: `placement` (the plan of the
//! config's `[placement]`), `io_uring` (the ring probe, `kernel.io_uring_disabled`, and what
//! `executor = "auto"` picks), `memlock` (the locked-memory limit against what glommio shards
//! need) and `hwloc` (where the topology came from).
//!
//! Ownership of causes: io_uring problems belong to `io_uring`, a memlock shortfall to
//! `memlock` (the `io_uring` line only names it as the reason auto picks threads), a plan
//! that cannot be made to `placement`.

use super::cgroup::container;
use super::{cpus_named, Subject};
use crate::doctor::host::TopologyOrigin;
use crate::doctor::report::{Check, Status};
use nexus_engine::executor::{self, glommio_memlock_need, ExecutorKind, REQUIRED_OPCODES};

/// The plan of the config's `[placement]` on this machine.
pub fn placement(s: &Subject) -> Check {
    match &s.plan {
        Ok(plan) => Check::pass(
            "placement",
            format!(
                "{} shard(s) on {} ({}, executor = \"{}\")",
                plan.len(),
                cpus_named(&plan.cpus()),
                s.config_origin,
                s.executor
            ),
        ),
        Err(e) => Check::fail(
            "placement",
            format!("cannot place the shards of {}: {e}", s.config_origin),
            format!(
                "edit [placement] in {}: shards = \"auto\" uses what this machine allows, or list CPUs it has",
                s.config_origin
            ),
        ),
    }
}

/// `kernel.io_uring_disabled`: 0 allows everyone, 1 only root and `kernel.io_uring_group`, 2
/// nobody. `Ok(None)` when the kernel has no such knob (before 6.6).
fn io_uring_disabled(s: &Subject) -> Result<Option<u8>, String> {
    let rel = "/proc/sys/kernel/io_uring_disabled";
    match s.host.read(rel)? {
        None => Ok(None),
        Some(text) => match text.parse::<u8>() {
            Ok(v @ 0..=2) => Ok(Some(v)),
            _ => Err(format!("{} holds {text:?}, not 0, 1 or 2", s.host.path(rel).display())),
        },
    }
}

/// The io_uring probe and the executor choice.
pub fn io_uring(s: &Subject) -> Check {
    const NAME: &str = "io_uring";
    let machine = s.machine();
    let shards = s.shards();
    let disabled = io_uring_disabled(s);
    // `select` never fails for auto.
    let auto = executor::select(ExecutorKind::Auto, shards, &machine);
    let auto_line = match &auto {
        Ok(sel) if sel.kind == ExecutorKind::Glommio => "auto picks glommio".to_owned(),
        Ok(_) if !machine.glommio_built => "auto picks threads (no glommio in this build)".to_owned(),
        Ok(_) if machine.uring.usable().is_ok() => {
            "auto picks threads: the memlock limit is too small (see memlock)".to_owned()
        }
        Ok(_) => "auto falls back to threads (epoll)".to_owned(),
        Err(e) => format!("auto cannot choose: {e}"),
    };
    let knob = match &disabled {
        Ok(Some(1)) => "; kernel.io_uring_disabled = 1 (root and io_uring_group only)",
        Ok(Some(2)) => "; kernel.io_uring_disabled = 2 (off for everyone)",
        _ => "",
    };

    if !machine.glommio_built {
        let status = if s.executor == ExecutorKind::Glommio { Status::Fail } else { Status::Pass };
        return Check::with_status(
            NAME,
            status,
            format!("this build has no glommio executor; {auto_line}"),
            "build nexus with the engine's `glommio` feature, or set executor = \"threads\"",
        );
    }

    let usable = machine.uring.usable();
    let (status, detail, fix) = match &usable {
        Ok(()) => {
            let detail = format!(
                "ring set up; {n}/{n} opcodes; {auto_line}{knob}{threads}",
                n = REQUIRED_OPCODES.len(),
                threads = if s.executor == ExecutorKind::Threads { "; the config runs threads" } else { "" },
            );
            (Status::Pass, detail, String::new())
        }
        Err(reason) => {
            let status = match s.executor {
                ExecutorKind::Glommio => Status::Fail,
                ExecutorKind::Auto => Status::Warn,
                ExecutorKind::Threads => Status::Pass,
            };
            let consequence = match s.executor {
                ExecutorKind::Glommio => "executor = \"glommio\" cannot start".to_owned(),
                ExecutorKind::Auto => auto_line,
                ExecutorKind::Threads => "not needed: the config runs threads".to_owned(),
            };
            let opcodes = if machine.uring.setup.is_ok() {
                format!("{}/{} opcodes", REQUIRED_OPCODES.len() - machine.uring.missing.len(), REQUIRED_OPCODES.len())
            } else {
                "no ring".to_owned()
            };
            (status, format!("{reason}; {opcodes}; {consequence}{knob}"), blocked_fix(s, &disabled))
        }
    };
    match disabled {
        Err(e) => Check::warn(NAME, format!("{detail}; {e}"), "check the sysctl: it should hold 0, 1 or 2"),
        Ok(_) => Check::with_status(NAME, status, detail, fix),
    }
}

/// How to unblock io_uring, by the most likely cause.
fn blocked_fix(s: &Subject, disabled: &Result<Option<u8>, String>) -> String {
    let or_threads = "or set executor = \"threads\"";
    if !s.host.uring.missing.is_empty() && s.host.uring.setup.is_ok() {
        return format!("run a newer kernel (5.19 or later has every opcode glommio uses), {or_threads}");
    }
    match disabled {
        Ok(Some(2)) => format!("sysctl -w kernel.io_uring_disabled=0 (as root), {or_threads}"),
        Ok(Some(1)) => {
            format!("add the user's group to kernel.io_uring_group or sysctl -w kernel.io_uring_disabled=0, {or_threads}")
        }
        _ => match container(s) {
            Some(evidence) => format!(
                "in a container ({evidence}): allow io_uring in its seccomp profile (io_uring_setup, io_uring_enter, io_uring_register), {or_threads}"
            ),
            None => format!("check that the kernel has CONFIG_IO_URING and no seccomp filter blocks it, {or_threads}"),
        },
    }
}

/// The locked-memory limit against what the planned glommio shards need.
pub fn memlock(s: &Subject) -> Check {
    const NAME: &str = "memlock";
    let shards = s.shards();
    let need = glommio_memlock_need(shards);
    let need_kib = need.div_ceil(1024);
    if !s.host.glommio_built {
        return Check::pass(NAME, "not needed: this build has no glommio executor");
    }
    let limit = match &s.host.memlock {
        Ok(limit) => *limit,
        Err(e) => {
            return Check::warn(
                NAME,
                format!("{e}; cannot compare with the {need_kib} KiB {shards} glommio shard(s) need"),
                "check `ulimit -l` by hand; glommio needs it at least that large",
            )
        }
    };
    if limit.allows(need) {
        return Check::pass(NAME, format!("limit {limit} covers the {need_kib} KiB {shards} glommio shard(s) need"));
    }
    let (status, consequence) = match s.executor {
        ExecutorKind::Glommio => (Status::Fail, "executor = \"glommio\" cannot start"),
        ExecutorKind::Auto => (Status::Warn, "auto falls back to threads"),
        ExecutorKind::Threads => (Status::Pass, "not needed: the config runs threads, which lock no memory"),
    };
    let hard_allows = limit.hard.map_or(true, |hard| need <= hard);
    let fix = if hard_allows {
        format!("run `ulimit -l {need_kib}` (the hard limit allows it) in the shell that starts nexus, or set executor = \"threads\"")
    } else {
        format!(
            "raise the hard limit to at least {need_kib} KiB (memlock in /etc/security/limits.conf, LimitMEMLOCK= in a systemd unit, docker run --ulimit memlock=-1), or set executor = \"threads\""
        )
    };
    Check::with_status(
        NAME,
        status,
        format!("limit {limit} is below the {need_kib} KiB {shards} glommio shard(s) need; {consequence}"),
        fix,
    )
}

/// Whether hwloc read the topology.
pub fn hwloc(s: &Subject) -> Check {
    const NAME: &str = "hwloc";
    let topology = match &s.host.topology {
        Ok(t) => t,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("no topology at all: {e}"),
                format!("check that sysfs is mounted and readable at {}", s.host.path("/sys").display()),
            )
        }
    };
    let shape = format!(
        "{} core(s), {} PU(s), {} NUMA node(s)",
        topology.cores().len(),
        topology.pus().len(),
        topology.numa_nodes().len()
    );
    match &s.host.topology_origin {
        TopologyOrigin::Hwloc => Check::pass(NAME, format!("topology from hwloc: {shape}")),
        TopologyOrigin::Tree => Check::pass(
            NAME,
            format!("topology from {} (a given tree; hwloc not consulted): {shape}", s.host.path("/sys").display()),
        ),
        TopologyOrigin::Fallback(reason) => Check::warn(
            NAME,
            format!("{reason}; {shape} from /sys (no cache-sharing or hybrid-core detail from hwloc)"),
            "install the hwloc library: apt-get install libhwloc15 (dnf install hwloc-libs), or run tools/setup.sh",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use nexus_engine::executor::{UringProbe, GLOMMIO_MEMLOCK_PER_SHARD};

    #[test]
    fn placement_passes_with_a_plan_and_fails_without() {
        let root = FakeRoot::healthy("placement", 2);
        expect(&placement(&default_subject(&root)), Status::Pass, &["2 shard(s) on CPUs 0-1", "test.toml"]);
        let s = subject(&root, ExecutorKind::Auto, PlacementRequest::shards(3));
        expect(&placement(&s), Status::Fail, &["3 shards requested", "edit [placement] in test.toml"]);
        let s = subject(&root, ExecutorKind::Auto, PlacementRequest::cpus(&[7]));
        expect(&placement(&s), Status::Fail, &["cpu 7 does not exist"]);
    }

    #[test]
    fn io_uring_passes_and_names_the_auto_pick() {
        let root = FakeRoot::healthy("uring-ok", 2);
        expect(
            &io_uring(&default_subject(&root)),
            Status::Pass,
            &["ring set up", "16/16 opcodes", "auto picks glommio"],
        );
        // A memlock shortfall is memlock's to report; io_uring only names it.
        root.memlock("65536");
        expect(&io_uring(&default_subject(&root)), Status::Pass, &["auto picks threads", "see memlock"]);
    }

    #[test]
    fn blocked_io_uring_warns_under_auto_fails_under_glommio_passes_under_threads() {
        let root = FakeRoot::healthy("uring-blocked", 2);
        let blocked = || UringProbe::failed("io_uring_setup failed: Operation not permitted (os error 1)");
        let s = subject_with(&root, ExecutorKind::Auto, PlacementRequest::per_core(), blocked());
        expect(&io_uring(&s), Status::Warn, &["Operation not permitted", "falls back to threads", "seccomp"]);
        let s = subject_with(&root, ExecutorKind::Glommio, PlacementRequest::per_core(), blocked());
        expect(&io_uring(&s), Status::Fail, &["glommio\" cannot start", "executor = \"threads\""]);
        let s = subject_with(&root, ExecutorKind::Threads, PlacementRequest::per_core(), blocked());
        expect(&io_uring(&s), Status::Pass, &["not needed"]);
    }

    #[test]
    fn io_uring_disabled_by_sysctl_names_the_sysctl() {
        let root = FakeRoot::healthy("uring-sysctl", 2);
        root.write("proc/sys/kernel/io_uring_disabled", "2");
        let blocked = UringProbe::failed("io_uring_setup failed: Operation not permitted (os error 1)");
        let s = subject_with(&root, ExecutorKind::Glommio, PlacementRequest::per_core(), blocked);
        expect(&io_uring(&s), Status::Fail, &["io_uring_disabled = 2", "sysctl -w kernel.io_uring_disabled=0"]);
        let missing = UringProbe { setup: Ok(()), missing: vec!["SEND", "RECV"] };
        root.write("proc/sys/kernel/io_uring_disabled", "0");
        let s = subject_with(&root, ExecutorKind::Auto, PlacementRequest::per_core(), missing);
        expect(&io_uring(&s), Status::Warn, &["lacks opcodes SEND, RECV", "14/16 opcodes", "newer kernel"]);
    }

    #[test]
    fn a_malformed_io_uring_sysctl_warns_naming_the_file() {
        let root = FakeRoot::healthy("uring-bad-sysctl", 2);
        root.write("proc/sys/kernel/io_uring_disabled", "maybe");
        expect(&io_uring(&default_subject(&root)), Status::Warn, &["io_uring_disabled holds \"maybe\""]);
    }

    #[test]
    fn memlock_is_judged_per_executor() {
        let root = FakeRoot::healthy("memlock", 2);
        expect(&memlock(&default_subject(&root)), Status::Pass, &["unlimited covers"]);
        let enough = (2 * GLOMMIO_MEMLOCK_PER_SHARD).to_string();
        root.memlock(&enough);
        expect(&memlock(&default_subject(&root)), Status::Pass, &["covers", "2 glommio shard(s)"]);
        root.memlock("65536");
        expect(&memlock(&default_subject(&root)), Status::Warn, &["64 KiB is below", "auto falls back", "--ulimit"]);
        let s = subject(&root, ExecutorKind::Glommio, PlacementRequest::per_core());
        expect(&memlock(&s), Status::Fail, &["cannot start"]);
        let s = subject(&root, ExecutorKind::Threads, PlacementRequest::per_core());
        expect(&memlock(&s), Status::Pass, &["lock no memory"]);
    }

    #[test]
    fn a_soft_limit_under_a_high_hard_limit_suggests_ulimit() {
        let root = FakeRoot::healthy("memlock-soft", 1);
        root.write("proc/self/limits", "Max locked memory         65536                unlimited            bytes");
        expect(&memlock(&default_subject(&root)), Status::Warn, &["ulimit -l"]);
    }

    #[test]
    fn an_unreadable_memlock_warns_naming_the_file() {
        let root = FakeRoot::healthy("memlock-missing", 1);
        root.write("proc/self/limits", "Max locked memory  plenty");
        expect(&memlock(&default_subject(&root)), Status::Warn, &["proc/self/limits"]);
        root.remove("proc/self/limits");
        expect(&memlock(&default_subject(&root)), Status::Warn, &["does not exist"]);
    }

    #[test]
    fn hwloc_passes_for_hwloc_and_a_given_tree_and_warns_on_fallback() {
        let root = FakeRoot::healthy("hwloc", 2);
        let mut s = default_subject(&root);
        expect(&hwloc(&s), Status::Pass, &["hwloc not consulted", "2 core(s)"]);
        s.host.topology_origin = TopologyOrigin::Hwloc;
        expect(&hwloc(&s), Status::Pass, &["topology from hwloc"]);
        s.host.topology_origin = TopologyOrigin::Fallback("hwloc unavailable, used /sys: no libhwloc".into());
        expect(&hwloc(&s), Status::Warn, &["no libhwloc", "libhwloc15", "tools/setup.sh"]);
        s.host.topology = Err("cannot read /x: gone".into());
        expect(&hwloc(&s), Status::Fail, &["no topology"]);
    }
}
