//! What the append-only logs report: each shard's figures ([`figures`]) and INFO's
//! `# Persistence` section built from every shard's ([`info_section`]), with Redis's field names
//! where they mean the same, plus `aof_fsync` (the policy).
//!
//! Invariant: a shard's figures are [`FIGURES`] integers in the order [`figures`] gives them;
//! missing figures read as 0 (a shard without a log).

use super::Journal;
use nexus_engine::config::FsyncPolicy;
use std::sync::atomic::Ordering;

/// How many figures a shard reports.
pub const FIGURES: usize = 7;

/// A shard's figures: `[enabled, rewriting, rewrites, failed, current size, base size, fsync]`
/// (`fsync`: 0 always, 1 everysec, 2 no); all zero without a log.
pub fn figures(journal: Option<&Journal>) -> [i64; FIGURES] {
    let Some(j) = journal else { return [0; FIGURES] };
    let shared = j.shared();
    let fsync = match j.fsync() {
        FsyncPolicy::Always => 0,
        FsyncPolicy::EverySec => 1,
        FsyncPolicy::No => 2,
    };
    [
        1,
        i64::from(j.rewriting()),
        shared.rewrites.load(Ordering::Relaxed) as i64,
        i64::from(shared.failed.load(Ordering::Relaxed)),
        j.file_bytes() as i64,
        j.base_bytes() as i64,
        fsync,
    ]
}

/// INFO's `# Persistence` section from every shard's figures (summed; the policy is the
/// first shard's, every shard has the same).
pub fn info_section<'a>(shards: impl Iterator<Item = &'a [i64]>) -> String {
    let mut sum = [0i64; FIGURES];
    let mut fsync = None;
    for f in shards {
        for (total, v) in sum.iter_mut().zip(f) {
            *total += v;
        }
        fsync = fsync.or(f.get(6).copied().filter(|_| f.first() == Some(&1)));
    }
    let enabled = sum[0] > 0;
    let mut text = format!(
        "# Persistence\r\nloading:0\r\naof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrites:{}\r\naof_last_write_status:{}\r\n",
        u8::from(enabled),
        u8::from(sum[1] > 0),
        sum[2],
        if sum[3] > 0 { "err" } else { "ok" },
    );
    if enabled {
        let policy = match fsync {
            Some(0) => "always",
            Some(2) => "no",
            _ => "everysec",
        };
        text.push_str(&format!("aof_current_size:{}\r\naof_base_size:{}\r\naof_fsync:{policy}\r\n", sum[4], sum[5]));
    }
    text.push_str("\r\n");
    text
}
