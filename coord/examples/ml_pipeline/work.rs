//! The pipeline's work: a few microseconds of deterministic arithmetic per stage, timed where
//! it runs, and the job (payload and result slot) every auction carries.

use super::MODELS;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

pub(crate) fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// "Prepare data": a checksum over 512 generated records.
pub(crate) fn prepare(task: u64) -> u64 {
    (0..512u64).fold(task, |h, i| mix(h ^ (task << 16 | i)))
}

/// "Train": 256 gradient steps on a quadratic, from a start the data decides.
pub(crate) fn train(data: u64, lr: f64) -> u64 {
    let mut w = (data % 1000) as f64 / 100.0;
    for _ in 0..256 {
        w -= lr * 2.0 * (w - 3.0);
    }
    mix(w.to_bits() ^ data)
}

/// The true quality of a configuration: best at lr = 0.01.
pub(crate) fn quality(lr: f64) -> f64 {
    let d = lr.log10() + 2.0;
    0.95 - 0.08 * d * d
}

/// "Evaluate": the configuration's quality plus up to ±0.01 of noise from the trained model.
pub(crate) fn evaluate(model: u64, config: usize) -> f64 {
    let noise = (mix(model) % 2001) as f64 / 100_000.0 - 0.01;
    quality(MODELS[config].lr) + noise
}

/// Where a stage's result and costs go: an auction's outcome names only the winner, so the
/// winner writes its result here (the orchestrator reads it after the outcome).
#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) output: AtomicU64,
    pub(crate) config: AtomicU64,
    /// Nanoseconds of work inside `perform` (every attempt's, failed ones included).
    pub(crate) work_ns: AtomicU64,
    /// Nanoseconds an evaluator waited for the metrics store.
    pub(crate) service_ns: AtomicU64,
}

/// The payload of every auction (read by bidders with `Task::payload_as::<Job>()`).
pub(crate) struct Job {
    pub(crate) task: u64,
    pub(crate) input: u64,
    pub(crate) config: usize,
    pub(crate) slot: Arc<Slot>,
}

pub(crate) fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Runs `work`, adding its time to the slot's work.
pub(crate) fn timed<T>(slot: &Slot, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = work();
    slot.work_ns.fetch_add(elapsed_ns(started), Relaxed);
    out
}
