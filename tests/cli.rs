//! End-to-end tests of the `nexus` binary: config errors, `nexus run` start to graceful stop
//! (by duration and by SIGTERM), `nexus bench --json`, `nexus bench compare` on two small
//! files, a one-second `nexus bench idle`, and `nexus bench tracing` with tiny rounds.
//!
//! Each test runs the built binary (`CARGO_BIN_EXE_nexus`) as a user would. Engines started
//! here use plain unpinned threads where the test writes its own config, so tests running side
//! by side on a small machine do not fight over pinned cores.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn nexus() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nexus"));
    // Run from the workspace root so `configs/default.toml` is found as a user would find it.
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    cmd
}

/// Writes `text` to a fresh file named after `name` and returns its path.
fn config_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nexus-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn run_with(args: &[&str]) -> Output {
    nexus().args(args).output().expect("the nexus binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config error: exit 2, nothing on stdout, one line on stderr that names what `parts` say.
fn assert_config_error(out: &Output, parts: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for part in parts {
        assert!(stderr.contains(part), "`{part}` missing from: {stderr}");
    }
    assert!(stderr.contains("hint:"), "a hint: {stderr}");
}

#[test]
fn a_value_of_the_wrong_type_names_file_line_and_key() {
    let path = config_file("wrong_type.toml", "executor = \"thread\"\n\n[mailbox]\ncapacity = \"big\"\n");
    let out = run_with(&["run", "--config", path.to_str().unwrap()]);
    assert_config_error(&out, &["wrong_type.toml:4", "mailbox.capacity"]);
}

#[test]
fn an_unknown_key_names_file_line_and_key() {
    let path = config_file("unknown_key.toml", "[idle]\nspin_before_park_us = 10\nspin_forever = true\n");
    let out = run_with(&["run", "--config", path.to_str().unwrap()]);
    assert_config_error(&out, &["unknown_key.toml:3", "spin_forever"]);
}

#[test]
fn an_invalid_value_is_a_config_error() {
    let path = config_file("ring.toml", "[mesh]\nring_capacity = 1000\n");
    let out = run_with(&["run", "--config", path.to_str().unwrap()]);
    assert_config_error(&out, &["ring.toml", "mesh.ring_capacity"]);
}

#[test]
fn a_bad_hash_seed_is_a_one_line_error_not_a_panic() {
    let out = nexus().args(["run"]).env("NEXUS_HASH_SEED", "not-a-number").output().expect("the nexus binary runs");
    assert_config_error(&out, &["NEXUS_HASH_SEED", "not-a-number"]);
}

#[test]
fn a_missing_config_file_is_a_config_error() {
    let out = run_with(&["run", "--config", "/nonexistent/nexus.toml"]);
    assert_config_error(&out, &["/nonexistent/nexus.toml"]);
}

#[test]
fn run_prints_the_plan_status_lines_and_balanced_final_counters() {
    let path = config_file(
        "smoke.toml",
        "executor = \"thread\"\n[server]\nenabled = false\n\
         [placement]\nshards = 2\noversubscribe = true\n\
         [metrics]\nstatus_interval_ms = 200\n\
         [[agents]]\nkind = \"echo\"\ncount = 2\n\
         [[agents]]\nkind = \"counter\"\nname = \"counter\"\n\
         [[agents]]\nkind = \"kv\"\n\
         [load]\nscenario = \"pingpong\"\nagents = 2\n",
    );
    let out = run_with(&["run", "--config", path.to_str().unwrap(), "--duration-s", "1"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
    assert!(stdout.contains("shard |") && stdout.contains("numa"), "placement table: {stdout}");
    let status: Vec<&str> = stdout.lines().filter(|l| l.contains("msgs/s")).collect();
    assert!(!status.is_empty(), "status lines: {stdout}");
    assert!(status.iter().all(|l| l.contains("p50") && l.contains("p99") && l.contains("dead letters")));
    assert!(
        stdout.contains("accounting:") && stdout.lines().any(|l| l.starts_with("accounting:") && l.ends_with("ok"))
    );
}

#[test]
fn an_unknown_agent_kind_lists_the_kinds_agent_spawn_knows() {
    let path = config_file("wizard.toml", "[[agents]]\nkind = \"echo\"\n\n[[agents]]\nkind = \"wizard\"\n");
    let out = run_with(&["run", "--config", path.to_str().unwrap()]);
    assert_config_error(&out, &["wizard.toml:5", "agents[1].kind", "wizard", "\"counter\", \"echo\", \"kv\""]);
}

/// The `ask` and `counting` loads drive the config's `echo` and `counter` agents, which take
/// the same requests as agents spawned over RESP.
#[test]
fn ask_and_counting_loads_drive_the_config_agents() {
    for scenario in ["ask", "counting"] {
        let path = config_file(
            &format!("load-{scenario}.toml"),
            &format!(
                "executor = \"thread\"\n[server]\nenabled = false\n\
                 [placement]\nshards = 2\noversubscribe = true\n\
                 [[agents]]\nkind = \"echo\"\nname = \"e1\"\n\
                 [[agents]]\nkind = \"counter\"\nname = \"c\"\ncount = 2\n\
                 [load]\nscenario = \"{scenario}\"\nrate_per_s = 2000\nagents = 1\n"
            ),
        );
        let out = run_with(&["run", "--config", path.to_str().unwrap(), "--duration-s", "1"]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{scenario}: stdout: {stdout}\nstderr: {}", text(&out.stderr));
        let sent: u64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("host sent ")?.split(',').next()?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{scenario}: no host counters: {stdout}"));
        assert!(sent > 0, "{scenario}: the load sent nothing: {stdout}");
        assert!(
            stdout.lines().any(|l| l.starts_with("accounting:") && l.ends_with("ok")),
            "{scenario}: accounting: {stdout}"
        );
    }
}

#[test]
fn sigterm_stops_run_gracefully() {
    let path = config_file(
        "sigterm.toml",
        "executor = \"thread\"\n[server]\nenabled = false\n[placement]\nshards = 2\noversubscribe = true\n\
         [metrics]\nstatus_interval_ms = 100\n[load]\nscenario = \"counting\"\nagents = 1\n",
    );
    let mut child = nexus()
        .args(["run", "--config", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the nexus binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Wait for the first status line: the engine runs and the handler is installed.
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
            let _ = child.kill();
            panic!("no status line before the end: {seen}");
        }
        seen.push_str(&line);
        if line.contains("msgs/s") {
            break;
        }
    }
    // SAFETY: `kill` with a child's pid and a valid signal number has no memory effects.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    stdout.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "stdout: {seen}");
    assert!(seen.contains("stopped in"), "graceful stop: {seen}");
    assert!(seen.lines().any(|l| l.starts_with("accounting:") && l.ends_with("ok")), "{seen}");
}

#[test]
fn bench_json_prints_one_object_per_figure() {
    let out = run_with(&["bench", "pingpong", "--json", "--repeat", "1", "--executor", "threads"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let records: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    for r in &records {
        for key in ["workload", "system", "placement", "metric", "value", "unit"] {
            assert!(r.get(key).is_some(), "`{key}` missing from {r}");
        }
        assert!(matches!(r["placement"].as_str(), Some("local" | "cross")), "{r}");
    }
    let has = |placement: &str, metric: &str| {
        records.iter().any(|r| r["system"] == "nexus" && r["placement"] == placement && r["metric"] == metric)
    };
    for placement in ["local", "cross"] {
        assert!(has(placement, "rtt_p50_ns") && has(placement, "rtt_p99_ns"), "{stdout}");
    }
    assert!(has("cross", "wake_from_park_p50_ns"), "{stdout}");
    // A median over rounds carries its spread: min <= value <= max.
    for r in records.iter().filter(|r| r["system"] == "nexus" && r["metric"] == "rtt_p50_ns") {
        let (min, value, max) = (r["min"].as_f64(), r["value"].as_f64(), r["max"].as_f64());
        assert!(matches!((min, value, max), (Some(a), Some(v), Some(b)) if a <= v && v <= b), "{r}");
    }
}

#[test]
fn cross_shard_workloads_refuse_one_shard() {
    let out = run_with(&["bench", "counting", "--shards", "1"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("hint"), "{}", text(&out.stderr));
}

/// A record line as `nexus bench --json` writes it.
fn record(workload: &str, metric: &str, value: f64, extra: &str) -> String {
    format!(
        "{{\"workload\":\"{workload}\",\"system\":\"nexus\",\"placement\":\"local\",\"metric\":\"{metric}\",\
         \"value\":{value},\"unit\":\"u\",\"shards\":2{extra}}}\n"
    )
}

#[test]
fn bench_compare_judges_each_figure_by_its_direction() {
    let old = [
        record("pingpong", "rtt_p50_ns", 200.0, ""),
        record("counting", "msgs_per_s", 1000.0, ""),
        record("spawn", "memory_bytes", 512.0, ""),
        record("registry", "lookup_ns", 40.0, ""),
    ]
    .concat();
    let new = [
        record("pingpong", "rtt_p50_ns", 150.0, ",\"min\":140.0,\"max\":170.0,\"spread\":0.2"),
        record("counting", "msgs_per_s", 800.0, ",\"cpus\":\"0,1\""),
        record("registry", "lookup_ns", 41.0, ""),
        record("idle", "cpu_pct", 3.0, ",\"executor\":\"threads\""),
    ]
    .concat();
    let (old, new) = (config_file("old.jsonl", &old), config_file("new.jsonl", &new));
    let out = run_with(&["bench", "compare", old.to_str().unwrap(), new.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let row =
        |metric: &str| stdout.lines().find(|l| l.contains(metric)).unwrap_or_else(|| panic!("{metric}: {stdout}"));
    assert!(row("rtt_p50_ns").contains("better") && row("rtt_p50_ns").contains("[140.0..170.0]"), "{stdout}");
    assert!(row("msgs_per_s").contains("worse") && row("msgs_per_s").contains("0.800"), "{stdout}");
    assert!(row("lookup_ns").contains("same"), "{stdout}");
    assert!(
        stdout.contains("memory_bytes") && stdout.contains("cpu_pct shards=2 threads"),
        "one-file figures: {stdout}"
    );
    let last = stdout.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("1 better, 1 worse, 1 same"), "summary: {last}");

    let bad = config_file("bad.jsonl", &format!("{}{{\"workload\":\"x\"}}\n", record("w", "m", 1.0, "")));
    let out = run_with(&["bench", "compare", old.to_str().unwrap(), bad.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("bad.jsonl:2:") && stderr.contains("hint:"), "{stderr}");
}

#[test]
fn bench_idle_prints_the_cpu_share_of_an_idle_server() {
    let out = run_with(&["bench", "idle", "--executor", "threads", "--duration", "1s"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
    assert!(stdout.contains("CPU % of a core"), "{stdout}");
    let row = stdout.lines().find(|l| l.starts_with("threads")).unwrap_or_else(|| panic!("no threads row: {stdout}"));
    // executor, shards, threads, CPU %, wake-ups/s, verdict.
    let cells: Vec<&str> = row.split_whitespace().collect();
    let cpu: f64 = cells.get(3).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no percentage: {row}"));
    assert!((0.0..=200.0 * 64.0).contains(&cpu), "{row}");
    assert!(row.ends_with("met"), "a verdict: {row}");
}

/// A smoke run: one round of tiny runs (sized for 1 ms), so it checks that every variant runs
/// in its child process and the output names the three overheads, never how fast anything is.
#[test]
fn bench_tracing_runs_every_variant_and_names_the_three_overheads() {
    let json = config_file("tracing.jsonl", "");
    let args = ["bench", "tracing", "--repeat", "1", "--round-ms", "1", "--executor", "threads", "--json"];
    let out = run_with(&[&args[..], &[json.to_str().unwrap()]].concat());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
    for name in ["tracing_overhead_0", "tracing_overhead_1pct", "tracing_overhead_100pct"] {
        assert!(stdout.contains(name), "{name} missing: {stdout}");
    }
    assert!(stdout.contains("needs --untraced-bin") && stdout.contains("nexus-engine/untraced"), "{stdout}");
    let lines = std::fs::read_to_string(&json).unwrap();
    let records: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for workload in ["counting", "pingpong"] {
        for metric in ["tracing_overhead_1pct", "tracing_overhead_100pct"] {
            let found =
                records.iter().any(|r| r["workload"] == workload && r["metric"] == metric && r["unit"] == "ratio");
            assert!(found, "{workload} {metric} missing: {lines}");
        }
    }
    assert!(records.iter().all(|r| r["metric"] != "tracing_overhead_0"), "no baseline was given: {lines}");
}

#[test]
fn bench_tracing_refuses_what_does_not_apply() {
    for args in [
        &["bench", "tracing", "--peers"][..],
        &["bench", "tracing", "--shards", "1"],
        &["bench", "tracing", "--untraced-bin", "/nonexistent/nexus"],
        &["bench", "counting", "--untraced-bin", "/nonexistent/nexus"],
        &["bench", "tracing", "--executor", "both"],
    ] {
        let out = run_with(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("hint:") && stderr.trim_end().lines().count() == 1, "{args:?}: {stderr}");
    }
}

/// `bench server` runs a warm-up round before the measured ones, and leaves it out of the
/// figures: a smoke run of one tiny round against nexus (threads) and redis-server.
#[test]
fn bench_server_warms_up_before_it_measures() {
    let args = ["bench", "server", "--repeat", "1", "--requests", "2000", "--executor", "threads"];
    let out = run_with(&args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    let warm_up = stderr.find("warm-up: SET -P 1 on").unwrap_or_else(|| panic!("no warm-up: {stderr}"));
    let measured = stderr.find("round 1/1: SET -P 1 on").unwrap_or_else(|| panic!("no round 1: {stderr}"));
    assert!(warm_up < measured, "the warm-up comes first: {stderr}");
    assert!(!stderr.contains("round 2/"), "one measured round: {stderr}");
    assert!(stdout.contains("medians of 1 round after it"), "{stdout}");
    assert!(stdout.contains("targets of nexus"), "{stdout}");
}
