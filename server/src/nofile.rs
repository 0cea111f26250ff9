//! Fitting `max_clients` to the open-file limit, as Redis does.
//!
//! Every client is a file descriptor. When the soft `RLIMIT_NOFILE` is below `max_clients`
//! plus what the process needs for itself, accepts fail with `EMFILE` long before
//! `max_clients` is reached: clients hang in the backlog and never hear why. So at start
//! [`fit_max_clients`] raises the soft limit toward `max_clients + reserve` (up to the hard
//! limit), and if that is still too low, lowers the effective `max_clients` to what fits and
//! says so in one warning line with both numbers. Clients over the effective limit then get
//! `-ERR max number of clients reached` instead of a silent hang.
//!
//! The reserve is [`RESERVED_FDS`] for the process (standard streams, the metrics endpoint and
//! its requests, the lock file, the log) plus [`FDS_PER_SHARD`] per shard (io_uring rings,
//! eventfds, the listener).

/// Descriptors kept for the process itself, whatever the shard count.
pub const RESERVED_FDS: u64 = 32;
/// Descriptors kept for each shard.
pub const FDS_PER_SHARD: u64 = 8;

/// What fitting decided, from the limits it found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fit {
    /// The soft limit to set (`None`: leave it).
    pub raise_to: Option<u64>,
    /// The `max_clients` to enforce.
    pub max_clients: u64,
}

/// The decision for `max_clients` and `reserve` descriptors under `soft` and `hard` limits
/// (pure; `u64::MAX` stands for unlimited).
pub fn plan(max_clients: u64, reserve: u64, soft: u64, hard: u64) -> Fit {
    let need = max_clients.saturating_add(reserve);
    let raise_to = (soft < need).then(|| need.min(hard)).filter(|&to| to > soft);
    let limit = raise_to.unwrap_or(soft);
    let max_clients = if limit >= need { max_clients } else { limit.saturating_sub(reserve).max(1) };
    Fit { raise_to, max_clients }
}

/// Raises the soft open-file limit toward `max_clients` plus the reserve for `shards` shards
/// and returns the `max_clients` that fits, logging a raise at info and a lowered
/// `max_clients` as one warning line.
pub fn fit_max_clients(max_clients: u64, shards: usize) -> u64 {
    let reserve = RESERVED_FDS + FDS_PER_SHARD * shards as u64;
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `getrlimit` writes the limits into `rl`, a local of the right type.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return max_clients;
    }
    let (soft, hard): (u64, u64) = (rl.rlim_cur, rl.rlim_max);
    let mut fit = plan(max_clients, reserve, soft, hard);
    let mut limit = soft;
    if let Some(to) = fit.raise_to {
        let new = libc::rlimit { rlim_cur: to, rlim_max: rl.rlim_max };
        // SAFETY: `setrlimit` reads `new`, a local of the right type.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
            tracing::info!("nexus: raised the open-file limit from {soft} to {to} for max_clients {max_clients}");
            limit = to;
        } else {
            fit = plan(max_clients, reserve, soft, soft);
        }
    }
    if fit.max_clients < max_clients {
        tracing::warn!(
            "nexus: max_clients {max_clients} lowered to {}: the open-file limit is {limit} (hard limit {hard}) and {reserve} descriptors are kept for the server itself; hint: raise it (ulimit -n, systemd LimitNOFILE=) or lower [server] max_clients",
            fit.max_clients
        );
    }
    fit.max_clients
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_toward_the_need_up_to_the_hard_limit() {
        assert_eq!(plan(100, 48, 1024, 4096), Fit { raise_to: None, max_clients: 100 }, "enough already");
        assert_eq!(plan(10_000, 48, 1024, 1 << 20), Fit { raise_to: Some(10_048), max_clients: 10_000 });
        assert_eq!(plan(10_000, 48, 1024, u64::MAX), Fit { raise_to: Some(10_048), max_clients: 10_000 });
        assert_eq!(plan(10_000, 48, 1024, 4096), Fit { raise_to: Some(4096), max_clients: 4048 });
    }

    #[test]
    fn max_clients_is_lowered_to_what_the_limit_leaves() {
        assert_eq!(plan(10_000, 48, 128, 128), Fit { raise_to: None, max_clients: 80 });
        assert_eq!(plan(10_000, 48, 40, 40), Fit { raise_to: None, max_clients: 1 }, "at least one client");
    }
}
