//! `nexus bench server --recovery`: how long a restarted `nexus run` takes to recover its keys
//! from its append-only logs.
//!
//! A fresh nexus (the first shard count, `[persistence] mode = "aof"`, `fsync = "everysec"`,
//! logs in the scratch directory) is loaded by redis-benchmark (`-t set -P 16 -r N -n 2N`:
//! about 86% of the N keys), its `DBSIZE` read, then it is stopped (SIGTERM) and started again
//! on the same config. The recovery time and key count are the ones its log states
//! ([`parse_recovery`]); its `DBSIZE` after the restart must equal the one before.
//!
//! Invariants: a config this binary refuses skips the measurement with a note (a build without
//! `[persistence]`); a restarted server whose log has no recovery line is an error saying so,
//! never a figure.

use super::targets::{parse_recovery, Fsync, NexusSide, Recovery, RECOVERY_TARGET_S};
use super::{accepted, fail, free_ports, grouped, run_timeout, side_config, start_nexus, ServerBenchArgs, SETUP_HINT};
use crate::child::{dbsize, plan_shards, Process, Scratch};
use crate::Failure;
use nexus_bench::report::Record;
use nexus_engine::executor::ExecutorKind;
use std::process::Command;

/// The recovery measured.
#[derive(Debug)]
pub(super) struct Measured {
    /// The configuration.
    pub side: NexusSide,
    /// Its shards.
    pub shards: usize,
    /// `DBSIZE` before the stop.
    pub loaded: u64,
    /// `DBSIZE` after the restart.
    pub restarted: u64,
    /// What the restarted server's log says.
    pub recovery: Recovery,
}

impl Measured {
    /// Within [`RECOVERY_TARGET_S`], every key back.
    pub fn met(&self) -> bool {
        self.recovery.seconds <= RECOVERY_TARGET_S && self.restarted == self.loaded
    }

    /// The report's line.
    pub fn render(&self) -> String {
        let mut why = Vec::new();
        if self.recovery.seconds > RECOVERY_TARGET_S {
            why.push("too slow".to_string());
        }
        if self.restarted != self.loaded {
            why.push(format!("{} keys before the stop, {} after", grouped(self.loaded), grouped(self.restarted)));
        }
        let why = if why.is_empty() { String::new() } else { format!(" ({})", why.join(", ")) };
        format!(
            "recovery of {} after loading {} keys: {} keys recovered in {:.3} s (target {RECOVERY_TARGET_S:.1} s), \
             {} keys served after the restart: {}{why}",
            self.side.label(),
            grouped(self.loaded),
            grouped(self.recovery.keys),
            self.recovery.seconds,
            grouped(self.restarted),
            if self.met() { "met" } else { "not met" },
        )
    }

    /// Its JSON records: the time, the keys, the verdict.
    pub fn records(&self, executor: &'static str) -> Vec<Record> {
        let system = self.side.system();
        let rec = |metric, value, unit| Record::new("server", system, "local", metric, value, unit);
        [
            rec("recovery_s", self.recovery.seconds, "s"),
            rec("recovery_keys", self.recovery.keys as f64, "keys"),
            rec("recovery_target_met", if self.met() { 1.0 } else { 0.0 }, "bool"),
        ]
        .into_iter()
        .map(|r| r.engine(self.shards, executor))
        .collect()
    }
}

/// Loads `keys` keys into a fresh aof nexus, restarts it and reads its recovery. `Ok(Err(note))`:
/// skipped, this binary refuses the config.
pub(super) fn measure(
    args: &ServerBenchArgs,
    scratch: &Scratch,
    keys: u64,
    executor: ExecutorKind,
) -> Result<Result<Measured, String>, Failure> {
    let (plan, oversubscribe) = plan_shards(args.shards.first().copied(), "bench server").map_err(fail)?;
    let side = NexusSide { shards: plan.len(), aof: Some(Fsync::EverySec) };
    let port = free_ports(1)?[0];
    let text = side_config(args, &side, oversubscribe, port, &scratch.path("recovery-aof"));
    if let Err(why) = accepted(&text) {
        let note = format!("note: recovery skipped: this nexus refuses the config of {}: {why}", side.label());
        eprintln!("nexus: bench server: {note}");
        return Ok(Err(note));
    }
    eprintln!("nexus: bench server: recovery: loading {} keys into {} on port {port}", grouped(keys), side.label());
    let mut first = start_nexus(scratch, "recovery", &text, port, executor)?;
    first.wait_ready().map_err(fail)?;
    load(scratch, port, keys)?;
    first.check_alive().map_err(fail)?;
    let loaded = dbsize(&first).map_err(fail)?;
    first.stop();
    eprintln!("nexus: bench server: recovery: restarting with {} keys", grouped(loaded));
    let mut second = start_nexus(scratch, "recovery-restarted", &text, port, executor)?;
    second.wait_ready().map_err(fail)?;
    let restarted = dbsize(&second).map_err(fail)?;
    second.stop();
    let log_path = scratch.path("recovery-restarted.log");
    let log = std::fs::read_to_string(&log_path)
        .map_err(|e| Failure::runtime(format!("bench server: cannot read {}: {e}", log_path.display())))?;
    let recovery = parse_recovery(&log).map_err(|e| Failure::runtime(format!("bench server: recovery: {e}")))?;
    Ok(Ok(Measured { side, shards: plan.len(), loaded, restarted, recovery }))
}

/// redis-benchmark SETs of `keys` random keys (twice as many requests, pipelined) into `port`.
fn load(scratch: &Scratch, port: u16, keys: u64) -> Result<(), Failure> {
    let requests = keys.saturating_mul(2);
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-c", "50", "-P", "16", "-t", "set", "-q"]);
    cmd.args(["-n", &requests.to_string(), "-r", &keys.to_string()]);
    let (out, err) = (scratch.path("recovery-load.out"), scratch.path("recovery-load.err"));
    let mut run = Process::tool("redis-benchmark", cmd, port, &out, err, SETUP_HINT).map_err(fail)?;
    let timeout = run_timeout(requests);
    match run.wait_timeout(timeout).map_err(fail)? {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(Failure::runtime(format!(
            "bench server: recovery: loading the keys failed ({status}): {}",
            run.log_tail()
        ))),
        None => Err(Failure::runtime(format!(
            "bench server: recovery: loading {} keys did not finish within {} s",
            grouped(keys),
            timeout.as_secs()
        ))),
    }
}
