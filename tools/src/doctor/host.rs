//! What `nexus doctor` examines: the machine seen through a root directory ([`Host`]) and the
//! config's intent placed on it ([`Subject`]).
//!
//! Every file the checks read goes through [`Host::read`], which joins the path to
//! [`Host::root`]: `/` for this machine, a fake tree of `/proc` and `/sys` in tests. What cannot
//! be read from files (the io_uring probe, the topology and where it came from) is taken once
//! when the `Host` is made and kept as plain data, so tests inject it.
//!
//! Invariants: nothing here panics on what a file holds; a file that is missing reads as
//! `Ok(None)` and one that cannot be read as an error that names it. Only the owning thread
//! (the command's main thread) touches these values.

use nexus_engine::executor::{ExecutorKind, Machine, MemlockLimit, UringProbe};
use nexus_engine::placement::{self, Placement, PlacementPlan, PlacementRequest};
use nexus_engine::topology::{Topology, TopologySource};
use std::path::{Path, PathBuf};

/// Where the topology came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopologyOrigin {
    /// hwloc read the live machine.
    Hwloc,
    /// hwloc could not be used and `/sys` was read instead, for this reason.
    Fallback(String),
    /// Read from the sysfs tree under a root other than `/` (hwloc not consulted).
    Tree,
}

/// The machine as the checks see it.
#[derive(Clone, Debug)]
pub struct Host {
    /// The directory `proc/...` and `sys/...` are read under: `/` for this machine.
    pub root: PathBuf,
    /// The io_uring probe (run live, or given).
    pub uring: UringProbe,
    /// The locked-memory limit, or why it could not be read.
    pub memlock: Result<MemlockLimit, String>,
    /// The topology, or why it could not be read.
    pub topology: Result<Topology, String>,
    /// Where the topology came from.
    pub topology_origin: TopologyOrigin,
    /// Whether this build has the glommio executor.
    pub glommio_built: bool,
}

impl Host {
    /// This machine: probes io_uring (unless `uring` is given), reads the memlock limit
    /// (`/proc/self/limits`, else `getrlimit`) and detects the topology (hwloc, else `/sys`).
    pub fn live(uring: Option<UringProbe>) -> Self {
        let machine = Machine::probe();
        let root = PathBuf::from("/");
        let memlock = Ok(read_memlock(&root).ok().unwrap_or(machine.memlock));
        let (topology, topology_origin) = match Topology::detect() {
            Ok(t) => {
                let origin = match (t.source(), t.fallback_reason()) {
                    (TopologySource::Hwloc, _) => TopologyOrigin::Hwloc,
                    (_, Some(reason)) => TopologyOrigin::Fallback(reason.to_owned()),
                    (_, None) => TopologyOrigin::Fallback("this build reads /sys without hwloc".to_owned()),
                };
                (Ok(t), origin)
            }
            Err(e) => (Err(e.to_string()), TopologyOrigin::Fallback(e.to_string())),
        };
        Self {
            root,
            uring: uring.unwrap_or(machine.uring),
            memlock,
            topology,
            topology_origin,
            glommio_built: machine.glommio_built,
        }
    }

    /// The tree under `root`: the topology from its `sys/`, the memlock limit from its
    /// `proc/self/limits`, and `uring` as the io_uring probe.
    pub fn at(root: &Path, uring: UringProbe) -> Self {
        Self {
            root: root.to_path_buf(),
            uring,
            memlock: read_memlock(root),
            topology: Topology::from_sysfs(root).map_err(|e| e.to_string()),
            topology_origin: TopologyOrigin::Tree,
            // The build flag comes with a live probe (one ring set up and closed: cheap).
            glommio_built: Machine::probe().glommio_built,
        }
    }

    /// The path of `rel` (written as on the live machine, `/proc/...`) under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// Whether `rel` exists under the root.
    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// The text of `rel` under the root, trimmed: `Ok(None)` when it does not exist, an error
    /// naming the file when it cannot be read.
    pub fn read(&self, rel: &str) -> Result<Option<String>, String> {
        read_text(&self.path(rel))
    }

    /// The NUMA node count, 1 when the topology is unknown.
    pub fn numa_nodes(&self) -> usize {
        self.topology.as_ref().map_or(1, |t| t.numa_nodes().len())
    }
}

/// The trimmed text of `path`; `Ok(None)` when it does not exist.
fn read_text(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The "Max locked memory" line of `<root>/proc/self/limits`, or why it could not be had.
fn read_memlock(root: &Path) -> Result<MemlockLimit, String> {
    let path = root.join("proc/self/limits");
    let text = read_text(&path)?.ok_or_else(|| format!("{} does not exist", path.display()))?;
    parse_memlock(&text).ok_or_else(|| format!("no readable \"Max locked memory\" line in {}", path.display()))
}

/// Parses `Max locked memory   8388608   8388608   bytes` (or `unlimited`) from a limits file.
pub fn parse_memlock(text: &str) -> Option<MemlockLimit> {
    let line = text.lines().find_map(|l| l.strip_prefix("Max locked memory"))?;
    let mut fields = line.split_whitespace();
    let value = |v: Option<&str>| -> Option<Option<u64>> {
        match v? {
            "unlimited" => Some(None),
            n => n.parse().ok().map(Some),
        }
    };
    let soft = value(fields.next())?;
    let hard = value(fields.next())?;
    Some(MemlockLimit { soft, hard })
}

/// The host and what the config asks of it: the executor and the placement plan.
#[derive(Clone, Debug)]
pub struct Subject {
    /// The machine.
    pub host: Host,
    /// The config's `executor`.
    pub executor: ExecutorKind,
    /// Where the config came from (its file name), for the lines that point at it.
    pub config_origin: String,
    /// The config's `[placement]` as a request.
    pub request: PlacementRequest,
    /// The plan of that request on the host's topology, or why there is none.
    pub plan: Result<PlacementPlan, String>,
    /// The planned CPUs in shard order: the plan's, or when the plan failed the config's
    /// `cpus` list (so the CPU checks can still say what is wrong with them), else empty.
    pub cpus: Vec<usize>,
}

impl Subject {
    /// Places `request` on `host` for a config from `config_origin` running `executor`.
    pub fn new(host: Host, executor: ExecutorKind, request: PlacementRequest, config_origin: &str) -> Self {
        let plan = match &host.topology {
            Ok(t) => placement::plan(t, &request).map_err(|e| e.to_string()),
            Err(e) => Err(format!("no topology: {e}")),
        };
        let cpus = match (&plan, &request.placement) {
            (Ok(plan), _) => plan.cpus(),
            (Err(_), Placement::Cpus(list)) => list.clone(),
            (Err(_), _) => Vec::new(),
        };
        Self { host, executor, config_origin: config_origin.to_owned(), request, plan, cpus }
    }

    /// How many shards the config starts: the plan's count, else what the request asks for
    /// (one per core of the topology for `"auto"`, at least 1).
    pub fn shards(&self) -> usize {
        match (&self.plan, &self.request.placement) {
            (Ok(plan), _) => plan.len(),
            (Err(_), Placement::Cpus(list)) => list.len(),
            (Err(_), Placement::Shards(n)) => *n,
            (Err(_), Placement::PerCore) => self.host.topology.as_ref().map_or(1, |t| t.cores().len()),
        }
        .max(1)
    }

    /// What `executor::select` decides from: the probe, the memlock limit (unlimited when it
    /// could not be read, as the engine assumes) and the build.
    pub fn machine(&self) -> Machine {
        Machine {
            uring: self.host.uring.clone(),
            memlock: self.host.memlock.clone().unwrap_or_else(|_| MemlockLimit::unlimited()),
            glommio_built: self.host.glommio_built,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memlock_lines_parse_in_bytes_or_unlimited() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max locked memory         8388608              16777216             bytes\n";
        assert_eq!(parse_memlock(text), Some(MemlockLimit { soft: Some(8 << 20), hard: Some(16 << 20) }));
        let text = "Max locked memory         unlimited            unlimited            bytes";
        assert_eq!(parse_memlock(text), Some(MemlockLimit::unlimited()));
        assert_eq!(parse_memlock("Max locked memory  lots  bytes"), None);
        assert_eq!(parse_memlock("Max open files 1024 1024 files"), None);
    }

    #[test]
    fn the_live_host_reads_its_limits() {
        let host = Host::live(Some(UringProbe::supported()));
        assert!(host.memlock.is_ok());
        assert_eq!(host.path("/proc/self/limits"), PathBuf::from("/proc/self/limits"));
        assert_eq!(host.read("/proc/nexus-no-such-file"), Ok(None));
    }
}
