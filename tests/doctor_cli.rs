//! End-to-end tests of `nexus doctor`: a healthy fake tree (exit 0, no FAIL), broken ones (exit
//! 1, the FAIL line and its fix), the JSON form, bad arguments (exit 2), and this machine (exit
//! 0 or 1, every check named).
//!
//! The fake trees come from the helpers the unit tests use (`tools/src/doctor/fake.rs`), and
//! the hidden `--root` and `--fake-io-uring` flags point the binary at them.

#[path = "../tools/src/doctor/fake.rs"]
mod fake;

use fake::FakeRoot;
use std::process::{Command, Output};

/// Every check, in the order the table prints them.
const CHECKS: &[&str] = &[
    "placement",
    "io_uring",
    "memlock",
    "hwloc",
    "governor",
    "isolation",
    "smt",
    "numa_balancing",
    "thp",
    "cgroup",
    "cpus_allowed",
];

fn nexus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nexus")).args(args).output().expect("the nexus binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The status and name columns of each check line, in order.
fn verdicts(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter(|l| ["PASS  ", "WARN  ", "FAIL  "].iter().any(|s| l.starts_with(s)))
        .map(|l| {
            let mut words = l.split_whitespace();
            (words.next().unwrap_or("").to_owned(), words.next().unwrap_or("").to_owned())
        })
        .collect()
}

#[test]
fn a_healthy_tree_passes() {
    let root = FakeRoot::healthy("cli-healthy", 2);
    let out = nexus(&["doctor", "--root", root.arg(), "--fake-io-uring", "ok"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    let v = verdicts(&stdout);
    assert_eq!(v.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(), CHECKS, "{stdout}");
    assert!(v.iter().all(|(s, _)| s == "PASS"), "{stdout}");
    assert!(stdout.trim_end().ends_with("doctor: 11 PASS, 0 WARN, 0 FAIL"), "{stdout}");
}

#[test]
fn a_cpu_quota_below_the_shards_fails_with_its_fix() {
    let root = FakeRoot::healthy("cli-quota", 2);
    root.write("sys/fs/cgroup/cpu.max", "50000 100000")
        .write("sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "powersave");
    let out = nexus(&["doctor", "--root", root.arg(), "--fake-io-uring", "ok"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("FAIL  cgroup ")).expect("the cgroup FAIL line");
    assert!(lines[at].contains("0.50 CPUs for 2 shard(s)"), "{stdout}");
    assert!(lines[at + 1].starts_with("      fix: raise the quota to at least 2 CPUs"), "{stdout}");
    assert!(stdout.contains("WARN  governor ") && stdout.contains("fix: cpupower"), "{stdout}");
    assert!(stdout.trim_end().ends_with("doctor: 9 PASS, 1 WARN, 1 FAIL"), "{stdout}");
    assert!(stderr.contains("1 check(s) failed"), "{stderr}");
}

#[test]
fn glommio_with_io_uring_blocked_fails() {
    let root = FakeRoot::healthy("cli-glommio", 2);
    root.write("nexus.toml", "executor = \"glommio\"");
    let config = root.path().join("nexus.toml");
    let args = ["doctor", "--root", root.arg(), "--fake-io-uring", "blocked", "--config", config.to_str().unwrap()];
    let out = nexus(&args);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  io_uring ") && stdout.contains("executor = \"glommio\" cannot start"), "{stdout}");
    assert!(stdout.contains("fix: ") && stdout.contains("set executor = \"threads\""), "{stdout}");
    // The same machine under auto only warns.
    let out = nexus(&["doctor", "--root", root.arg(), "--fake-io-uring", "blocked"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("WARN  io_uring ") && stdout.contains("falls back to threads"), "{stdout}");
}

#[test]
fn json_prints_one_object_per_check() {
    let root = FakeRoot::healthy("cli-json", 1);
    root.write("sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never");
    let out = nexus(&["doctor", "--json", "--root", root.arg(), "--fake-io-uring", "ok"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let objects: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("each line is a JSON object")).collect();
    let names: Vec<&str> = objects.iter().map(|o| o["check"].as_str().unwrap_or("")).collect();
    assert_eq!(names, CHECKS);
    let thp = &objects[8];
    assert_eq!(thp["status"], "WARN");
    assert!(thp["fix"].as_str().unwrap_or("").contains("echo madvise"), "{thp}");
}

#[test]
fn bad_arguments_exit_2() {
    let out = nexus(&["doctor", "--config", "/nonexistent/nexus.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("config error"));
    let out = nexus(&["doctor", "--root", "/nonexistent/nexus-root"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not a directory"));
    let out = nexus(&["doctor", "--fake-io-uring", "maybe"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn this_machine_gets_every_check() {
    let started = std::time::Instant::now();
    let out = nexus(&["doctor"]);
    let elapsed = started.elapsed();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(matches!(out.status.code(), Some(0 | 1)), "stdout: {stdout}\nstderr: {stderr}");
    let v = verdicts(&stdout);
    assert_eq!(v.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(), CHECKS, "{stdout}");
    let fails = v.iter().filter(|(s, _)| s == "FAIL").count();
    assert_eq!(out.status.code(), Some(i32::from(fails > 0)), "{stdout}");
    let fixes = stdout.lines().filter(|l| l.starts_with("      fix: ")).count();
    assert_eq!(fixes, v.iter().filter(|(s, _)| s != "PASS").count(), "a fix under each WARN and FAIL: {stdout}");
    assert!(stdout.lines().last().unwrap_or("").starts_with("doctor: "), "{stdout}");
    // Generous for a loaded machine; the checks themselves take milliseconds.
    assert!(elapsed.as_secs() < 10, "doctor took {elapsed:?}");
}
