//! End-to-end tests of `nexus c2c`: a tiny matrix on this machine's default CPUs with an SVG,
//! and the usage error for a single CPU.
//!
//! The default CPUs are one per physical core; a machine (or container) with a single core has
//! nothing to pair, so the matrix test then checks for the usage error instead.

use std::path::PathBuf;
use std::process::{Command, Output};

fn nexus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nexus")).args(args).output().expect("the nexus binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh path for the SVG (removed first if an earlier run left it).
fn svg_path() -> PathBuf {
    let path = std::env::temp_dir().join(format!("nexus-c2c-cli-{}.svg", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn c2c_prints_the_matrix_and_writes_the_svg() {
    let path = svg_path();
    let out = nexus(&["c2c", "--round-trips", "200", "--svg", path.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    if out.status.code() == Some(2) && stderr.contains("one usable core") {
        // A single-core machine: nothing to pair by default.
        return;
    }
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.starts_with("nexus c2c: CPUs "), "{stdout}");
    assert!(stdout.contains("round trip p50") && stdout.contains("one way"), "{stdout}");
    assert!(stdout.contains("cpu") && stdout.contains(" -"), "a row with its diagonal: {stdout}");
    assert!(stderr.contains("CPU") && stderr.contains("->"), "progress on stderr: {stderr}");
    let svg = std::fs::read_to_string(&path).expect("the SVG was written");
    assert!(svg.contains("<svg") && svg.contains("initiator CPU"), "{svg}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn c2c_needs_two_cpus() {
    let out = nexus(&["c2c", "--cpus", "0"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("at least 2") && stderr.contains("hint:"), "{stderr}");
    assert!(out.stdout.is_empty());
}
