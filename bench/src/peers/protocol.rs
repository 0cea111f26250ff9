//! Messages and checks that the thread- and executor-based peers (crossbeam, rtrb, glommio)
//! share: the ping-pong ball, the tally's messages, the thread-ring token, what one ring member
//! saw, and the check that turns the ring members into a rate.

use super::{CrossCount, PeerRate, PeerResult};
use crate::stats;
use crate::BenchError;
use std::time::Instant;

/// A pingpong message: the sequence number and the sender's CPU.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ball {
    pub(super) seq: u64,
    pub(super) cpu: usize,
}

/// A message to the tally.
#[derive(Clone, Copy, Debug)]
pub(super) enum Count {
    /// An increment and its sender's CPU.
    Add(u64, usize),
    /// Answer (count, sum) and stop.
    Total,
}

/// A message around the ring.
#[derive(Clone, Copy, Debug)]
pub(super) enum Hop {
    /// The token: hops still to go after this one, and its sender's CPU.
    Token(u64, usize),
    /// The run is over: forward once and stop.
    Stop,
}

/// What one ring member saw.
#[derive(Debug, Default)]
pub(super) struct Member {
    pub(super) hops: u64,
    pub(super) cross: CrossCount,
    pub(super) started: Option<Instant>,
    pub(super) ended: Option<Instant>,
}

/// Checks the hops the members counted (exactly `hops`, one start, one end) and turns the run
/// into a rate.
pub(super) fn ring_rate(
    workload: &'static str,
    hops: u64,
    members: &[Member],
) -> Result<PeerResult<PeerRate>, BenchError> {
    let counted: u64 = members.iter().map(|m| m.hops).sum();
    let mut cross = CrossCount::default();
    members.iter().for_each(|m| cross.add(m.cross));
    let started = members.iter().find_map(|m| m.started);
    let ended: Vec<Instant> = members.iter().filter_map(|m| m.ended).collect();
    let (Some(started), [ended]) = (started, ended.as_slice()) else {
        return Err(BenchError::check(workload, format!("the ring did not start and end once ({} ends)", ended.len())));
    };
    if counted != hops {
        return Err(BenchError::check(workload, format!("{counted} hops counted; expected {hops}")));
    }
    let elapsed = ended.saturating_duration_since(started);
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(hops, elapsed), crossed: cross.share() }))
}
