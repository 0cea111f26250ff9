//! End-to-end tests of `nexus tune`: a tiny search (a few seconds, the yardstick's tiny sizes)
//! on this machine that prints its table, writes a config that loads and validates, with its
//! figures in comments, and reports progress on stderr; and the usage errors (exit 2, one line
//! with a hint) for a zero budget, an unknown workload and an unreadable config.

use nexus_engine::config::EngineConfig;
use std::path::PathBuf;
use std::process::{Command, Output};

fn nexus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nexus")).args(args).output().expect("the nexus binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The repository's default config (tests run in the crate's directory, `tools/`).
fn default_config() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/default.toml").display().to_string()
}

#[test]
fn tune_prints_the_table_and_writes_a_valid_config() {
    let out_path = std::env::temp_dir().join(format!("nexus-tune-cli-{}.toml", std::process::id()));
    let _ = std::fs::remove_file(&out_path);
    let config = default_config();
    let out = nexus(&["tune", "--config", &config, "--budget", "4", "--quick", "--out", out_path.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.starts_with("nexus tune: "), "{stdout}");
    assert!(stdout.contains("| #") && stdout.contains("vs start") && stdout.contains("start"), "{stdout}");
    assert!(stdout.contains("pingpong") && stdout.contains("counting"), "{stdout}");
    assert!(stdout.contains("best"), "{stdout}");
    assert!(stdout.contains("written to"), "{stdout}");
    assert!(stderr.contains("/4 s") && stderr.contains("done"), "progress on stderr: {stderr}");
    assert!(!stdout.contains("/4 s"), "no progress on stdout: {stdout}");

    let toml = std::fs::read_to_string(&out_path).expect("the tuned config was written");
    let config = EngineConfig::from_toml_str(&toml, "tuned").expect("the tuned config parses");
    let kinds = nexus_server::kinds::Kinds::builtin();
    let names: Vec<&str> = kinds.names().collect();
    config.validate(&names).expect("the tuned config validates against nexus run's agent kinds");
    let head: Vec<&str> = toml.lines().take_while(|l| l.starts_with('#')).collect();
    let head = head.join("\n");
    assert!(head.contains("nexus tune") && head.contains("Budget 4 s") && head.contains("CPUs"), "{head}");
    assert!(head.contains("ns") && head.contains("msg/s") && head.contains("noise ±"), "figures: {head}");
    let tuned: Vec<&str> = toml.lines().filter(|l| l.contains("# tuned")).collect();
    assert!(tuned.iter().any(|l| l.starts_with("batch = ")), "{toml}");
    assert!(tuned.iter().any(|l| l.starts_with("spin_before_park_us = ")), "{toml}");
    assert!(tuned.iter().all(|l| l.contains('±')), "noise next to each key: {tuned:?}");
    std::fs::remove_file(&out_path).unwrap();
}

fn usage_error(args: &[&str], needle: &str) {
    let out = nexus(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("nexus: ") && stderr.contains("hint:") && stderr.contains(needle), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn tune_refuses_bad_input() {
    let config = default_config();
    usage_error(&["tune", "--config", &config, "--budget", "0"], "--budget");
    usage_error(&["tune", "--config", &config, "--workloads", "pingpong,nope"], "\"nope\"");
    usage_error(&["tune", "--config", "/nonexistent/nexus.toml"], "cannot read");
}
