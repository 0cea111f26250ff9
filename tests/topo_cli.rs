//! End-to-end tests of `nexus topo`: the text tree, distance matrix and plan table, and the
//! JSON document, on each hwloc XML fixture (`tests/fixtures/`); the usage errors (missing or
//! malformed XML, a bad config, `--c2c` with `--xml`); and `--c2c` on this machine.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nexus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nexus")).args(args).output().expect("the nexus binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name).to_string_lossy().into_owned()
}

/// Runs `nexus topo` with `args`, expecting success; returns stdout.
fn topo_ok(args: &[&str]) -> String {
    let out = nexus(&[&["topo"], args].concat());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    stdout
}

/// Runs `nexus topo --json` with `args` and parses the document.
fn topo_json(args: &[&str]) -> Value {
    let stdout = topo_ok(&[&["--json"], args].concat());
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Runs `nexus topo` with `args`, expecting a usage error: exit 2, one `nexus: ...` line with
/// a hint, nothing on stdout. Returns the line.
fn topo_usage_error(args: &[&str]) -> String {
    let out = nexus(&[&["topo"], args].concat());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].starts_with("nexus: ") && lines[0].contains("hint:"), "{stderr}");
    lines[0].to_owned()
}

/// A config file in the temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("nexus-topo-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The rows of the plan table: (shard, cpu, core, numa, l3) as strings.
fn plan_rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("shard |"))
        .skip(2)
        .take_while(|l| l.contains('|'))
        .map(|l| l.split('|').map(|c| c.trim().to_owned()).collect())
        .collect()
}

fn numbers(v: &Value) -> Vec<u64> {
    v.as_array().expect("an array").iter().map(|x| x.as_u64().expect("a number")).collect()
}

#[test]
fn two_socket_text() {
    let out = topo_ok(&["--xml", &fixture("2s32c-smt.xml")]);
    assert!(out.starts_with("nexus topo: hwloc XML "), "{out}");
    assert!(out.contains("2 package(s), 2 NUMA node(s), 2 L3, 64 cores, 128 PUs (128 allowed)"), "{out}");
    assert!(out.contains("package 1 (P#1)\n  NUMA node 1 (64 GiB)\n    L3 1 (48 MiB)\n"), "{out}");
    assert!(out.contains("      core 0 (L2 2 MiB, L1d 48 KiB): PU 0, 64\n"), "{out}");
    assert!(out.contains("NUMA distances"), "{out}");
    assert!(out.contains("     0    10    21\n     1    21    10\n"), "{out}");
    let rows = plan_rows(&out);
    assert_eq!(rows.len(), 64);
    assert_eq!(rows[0], ["0", "0", "0", "0", "0"]);
    assert_eq!(rows[63], ["63", "63", "63", "1", "1"]);
}

#[test]
fn two_socket_json() {
    let doc = topo_json(&["--xml", &fixture("2s32c-smt.xml")]);
    assert_eq!(doc["source"], "xml");
    assert_eq!(doc["packages"].as_array().unwrap().len(), 2);
    assert_eq!(doc["cores"].as_array().unwrap().len(), 64);
    assert_eq!(doc["pus"].as_array().unwrap().len(), 128);
    assert_eq!(doc["cores"][5]["pus"], serde_json::json!([5, 69]));
    assert_eq!(doc["cores"][5]["l2_bytes"], 2 << 20);
    assert_eq!(doc["l3_domains"][0]["size_bytes"], 48 << 20);
    assert_eq!(numbers(&doc["distances"]["nodes"]), [0, 1]);
    assert_eq!(doc["distances"]["matrix"], serde_json::json!([[10, 21], [21, 10]]));
    assert_eq!(doc["request"]["placement"], "per_core");
    let plan = doc["plan"].as_array().unwrap();
    assert_eq!(plan.len(), 64);
    for (i, s) in plan.iter().enumerate() {
        assert_eq!(s["shard"], i);
        assert_eq!(s["cpu"], i, "first PUs only");
        assert_eq!(s["numa_node"], i / 32);
    }
    assert!(doc["c2c"].is_null());
}

#[test]
fn epyc_text_and_json_with_a_config() {
    let config = TempFile::new("epyc.toml", "[placement]\nshards = 12\nreserve_cpus = [0]\n");
    let out = topo_ok(&["--xml", &fixture("epyc-1s8l3.xml"), "--config", config.path()]);
    assert!(out.contains("4 NUMA node(s), 8 L3, 64 cores, 128 PUs (126 allowed)"), "{out}");
    assert!(out.contains("core 63 (L2 512 KiB, L1d 32 KiB): PU 63 (not allowed), 127 (not allowed)"), "{out}");
    assert!(out.contains("    L3 7 (32 MiB)\n"), "{out}");
    assert!(out.contains("12 shard(s), 12 shards, reserve_cpus 0"), "{out}");
    let rows = plan_rows(&out);
    let l3: Vec<&str> = rows.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(l3, ["0", "0", "0", "0", "0", "0", "0", "1", "1", "1", "1", "1"], "core 0 reserved: 7 in L3 0");

    let doc = topo_json(&["--xml", &fixture("epyc-1s8l3.xml"), "--config", config.path()]);
    assert_eq!(doc["l3_domains"].as_array().unwrap().len(), 8);
    assert_eq!(doc["numa_nodes"].as_array().unwrap().len(), 4);
    assert_eq!(doc["distances"]["matrix"][0], serde_json::json!([10, 12, 12, 12]));
    let denied: Vec<u64> = doc["pus"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["allowed"] == false)
        .map(|p| p["os_index"].as_u64().unwrap())
        .collect();
    assert_eq!(denied, [63, 127]);
    assert_eq!(doc["request"]["placement"]["shards"], 12);
    assert_eq!(numbers(&doc["request"]["reserved_cpus"]), [0]);
    let cpus: Vec<u64> = doc["plan"].as_array().unwrap().iter().map(|s| s["cpu"].as_u64().unwrap()).collect();
    assert_eq!(cpus, (1..13).collect::<Vec<_>>());
}

#[test]
fn laptop_text_and_json() {
    let out = topo_ok(&["--xml", &fixture("laptop-4p4e.xml")]);
    assert!(out.contains("      core 0 P (L2 1.25 MiB, L1d 48 KiB): PU 0, 1\n"), "{out}");
    assert!(out.contains("      core 7 E (L2 2 MiB, L1d 32 KiB): PU 11\n"), "{out}");
    assert!(!out.contains("NUMA distances"), "one node, no matrix: {out}");
    let cpus: Vec<String> = plan_rows(&out).iter().map(|r| r[1].clone()).collect();
    assert_eq!(cpus, ["0", "2", "4", "6", "8", "9", "10", "11"], "P cores first");

    let doc = topo_json(&["--xml", &fixture("laptop-4p4e.xml")]);
    let kinds: Vec<&str> = doc["cores"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, [["performance"; 4], ["efficiency"; 4]].concat());
    assert_eq!(doc["plan"][4]["cpu"], 8);
}

#[test]
fn this_machine_text() {
    let out = topo_ok(&[]);
    assert!(out.starts_with("nexus topo: this machine"), "{out}");
    assert!(out.contains("package 0") && out.contains("core 0") && out.contains("shard |"), "{out}");
    assert!(!plan_rows(&out).is_empty());
}

#[test]
fn c2c_orders_this_machine() {
    let out = nexus(&["topo", "--c2c", "--round-trips", "200"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("\ncpus = ["), "{stdout}");
    let shards = plan_rows(&stdout).len();
    if shards >= 2 {
        assert!(stdout.contains("ring cost"), "{stdout}");
    } else {
        assert!(stdout.contains("nothing to measure"), "{stdout}");
    }
}

#[test]
fn bad_input_is_a_usage_error() {
    let line = topo_usage_error(&["--xml", &fixture("no-such-machine.xml")]);
    assert!(line.contains("no-such-machine.xml"), "{line}");
    let junk = TempFile::new("junk.xml", "<?xml version=\"1.0\"?>\n<topology version=\"2.0\">\n  <object type=");
    let line = topo_usage_error(&["--xml", junk.path()]);
    assert!(line.contains("hwloc XML"), "{line}");
    let not_xml = TempFile::new("not.xml", "hello\n");
    topo_usage_error(&["--xml", not_xml.path(), "--json"]);

    let bad = TempFile::new("bad.toml", "[placement]\nshards = 0\n");
    let line = topo_usage_error(&["--config", bad.path(), "--xml", &fixture("laptop-4p4e.xml")]);
    assert!(line.contains("config error") && line.contains("placement.shards"), "{line}");
    let typo = TempFile::new("typo.toml", "[placement]\nshard = 2\n");
    topo_usage_error(&["--config", typo.path()]);
    topo_usage_error(&["--config", "/no/such/config.toml"]);

    // A config the machine cannot hold: 9 shards on 8 cores, and a CPU the laptop lacks.
    let big = TempFile::new("big.toml", "[placement]\nshards = 9\n");
    let line = topo_usage_error(&["--config", big.path(), "--xml", &fixture("laptop-4p4e.xml")]);
    assert!(line.contains("does not fit"), "{line}");
    let cpus = TempFile::new("cpus.toml", "[placement]\ncpus = [12]\n");
    topo_usage_error(&["--config", cpus.path(), "--xml", &fixture("laptop-4p4e.xml")]);

    let line = topo_usage_error(&["--c2c", "--xml", &fixture("laptop-4p4e.xml")]);
    assert!(line.contains("--c2c"), "{line}");
}
