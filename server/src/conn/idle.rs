//! The idle sweeper: one task per shard that closes clients silent for `idle_timeout`.
//!
//! Redis checks its clients' last interaction from a cron; so does this. The connections only
//! set a flag when they read or write (`Front::heard`), so the request path reads no clock and
//! arms no timer: a read timeout per connection had cost a clock read, a timer insertion and a
//! removal per read (about 3% of the shard's samples at redis-benchmark `-P 1`; PERF.md,
//! "CPU per request").
//!
//! Invariants: a client is closed only after at least `idle_timeout` of silence, and at most
//! one [`SWEEP_EVERY`] (plus however late the shard runs its timers) after that; subscribers
//! and clients still owed answers are never idle. The task ends when the server stops.

use super::ConnEnv;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How often the sweeper looks: the precision of the idle timeout (Redis's is a second too).
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Sweeps shard `env.shard`'s connections every [`SWEEP_EVERY`] until the server stops,
/// marking (and waking) those silent for `timeout`; each closes itself as idle.
pub async fn sweep(env: Rc<ConnEnv>, timeout: Duration) {
    let started = Instant::now();
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    loop {
        let stop = futures_lite::future::or(
            async {
                env.rt.sleep(SWEEP_EVERY).await;
                false
            },
            async {
                env.directory.stopped().await;
                true
            },
        )
        .await;
        if stop || env.front.stopping.get() {
            return;
        }
        let now_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let expired = env.front.expire_idle(now_ms, timeout_ms);
        if expired > 0 {
            tracing::debug!(shard = env.shard, expired, "idle clients found");
        }
    }
}
