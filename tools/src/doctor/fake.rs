//! Fake `/proc` and `/sys` trees for the doctor's tests: a temporary directory that small
//! helper calls fill with the files the checks read, removed when the [`FakeRoot`] drops.
//!
//! Shared by the unit tests (`mod fake` under `cfg(test)`) and the CLI test
//! (`tests/doctor_cli.rs` includes this file by path), so it depends on `std` only, and each
//! user takes only some of the helpers.
//!
//! Invariant: every root is a fresh directory of its own (name, process id and a counter), so
//! tests running in parallel never share files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A temporary root directory holding a fake `proc/` and `sys/`.
pub struct FakeRoot {
    path: PathBuf,
}

impl FakeRoot {
    /// An empty root named after `name`.
    pub fn empty(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("nexus-doctor-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("the temporary directory is writable");
        Self { path }
    }

    /// A healthy machine of `cpus` CPUs, one per core, one NUMA node: governor performance,
    /// every CPU isolated and `nohz_full`, no SMT, NUMA balancing off, THP on `madvise`, a
    /// cgroup v2 with no quota and every CPU in its cpuset, unlimited locked memory.
    pub fn healthy(name: &str, cpus: usize) -> Self {
        let root = Self::empty(name);
        let all = if cpus == 1 { "0".to_owned() } else { format!("0-{}", cpus - 1) };
        root.write("sys/devices/system/cpu/online", &all);
        for cpu in 0..cpus {
            root.cpu(cpu, &cpu.to_string(), cpu);
            root.write(&format!("sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"), "performance");
        }
        root.write("sys/devices/system/node/node0/cpulist", &all)
            .write("sys/devices/system/cpu/isolated", &all)
            .write("sys/devices/system/cpu/nohz_full", &all)
            .write("sys/devices/system/cpu/smt/control", "notsupported")
            .write("sys/devices/system/cpu/smt/active", "0")
            .write("proc/cmdline", &format!("BOOT_IMAGE=/vmlinuz root=/dev/vda1 isolcpus={all} nohz_full={all}"))
            .write("proc/sys/kernel/numa_balancing", "0")
            .write("proc/sys/kernel/io_uring_disabled", "0")
            .write("sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never")
            .write("sys/kernel/mm/transparent_hugepage/defrag", "always defer defer+madvise [madvise] never")
            .write("proc/self/cgroup", "0::/\n")
            .write("sys/fs/cgroup/cpu.max", "max 100000")
            .write("sys/fs/cgroup/cpuset.cpus.effective", &all)
            .write("proc/self/status", &format!("Name:\tnexus\nCpus_allowed_list:\t{all}\nThreads:\t1\n"))
            .memlock("unlimited");
        root
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root as a string, for command lines.
    pub fn arg(&self) -> &str {
        self.path.to_str().expect("the temporary directory has a UTF-8 path")
    }

    /// Writes `text` (and a newline) to `rel` under the root, creating its directories.
    pub fn write(&self, rel: &str, text: &str) -> &Self {
        let path = self.path.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the fake tree is writable");
        }
        std::fs::write(&path, format!("{text}\n")).expect("the fake file is writable");
        self
    }

    /// Removes `rel` (a file or a directory) under the root, if it is there.
    pub fn remove(&self, rel: &str) -> &Self {
        let path = self.path.join(rel);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir_all(&path);
        self
    }

    /// Describes `cpuN`: its core's thread siblings (a CPU list) and its core id, package 0.
    pub fn cpu(&self, cpu: usize, siblings: &str, core_id: usize) -> &Self {
        let topo = format!("sys/devices/system/cpu/cpu{cpu}/topology");
        self.write(&format!("{topo}/thread_siblings_list"), siblings)
            .write(&format!("{topo}/core_id"), &core_id.to_string())
            .write(&format!("{topo}/physical_package_id"), "0")
    }

    /// Sets the soft and hard "Max locked memory" of `proc/self/limits` (bytes or `unlimited`).
    pub fn memlock(&self, value: &str) -> &Self {
        self.write(
            "proc/self/limits",
            &format!(
                "Limit                     Soft Limit           Hard Limit           Units\n\
                 Max open files            1024                 1048576              files\n\
                 Max locked memory         {value:<20} {value:<20} bytes"
            ),
        )
    }
}

impl Drop for FakeRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
