//! The glommio peer's Savina workloads: the Nexus workloads' actors as glommio tasks, each with
//! a bounded `local_channel` as its mailbox, on executors built as in [`super::glommio_peer`]
//! (`io_memory` 256 KiB, `ring_depth` 64, `spin_before_park` 50 ms, `Placement::Fixed(cpu)`
//! when `cpus.pin`; glommio's default 100 ms preemption timer).
//!
//! **Placement.** `Local`: one executor on `cpus.first` runs every actor. `Cross`: executors on
//! `cpus.first` and `cpus.second`, actor `k` on executor `k % 2` as Nexus puts agent `k` on
//! shard `k % shards` (the driver is actor 0; fan-in's sender `j`, actor `j + 1`, goes on
//! executor `j % 2` as on Nexus). A `shared_channel` joins one producer executor to one consumer
//! executor, so the executors form a channel mesh, as glommio users build many-to-one patterns:
//! one shared channel per ordered pair of executors, and on each executor a forwarding task that
//! pushes what the other sends into the addressed actor's mailbox. Within an executor actors
//! push straight into each other's mailboxes. In `Cross` every message carries its sender's CPU
//! and its receiver notes it (`crossed`); `Local` reports 0.
//!
//! **Per message.** Within an executor: an `Rc` clone of the mailbox's sender from the
//! executor's routing table, a `RefCell` borrow, a push onto the mailbox's preallocated
//! `VecDeque` and the wake of a waiting receiver. Across: a push onto the shared channel's
//! lock-free SPSC ring (plus an eventfd write only if the other executor sleeps), then the
//! forwarding task's local push. No allocation in steady state, no lock. glommio looks at its
//! shared channels only when its task queues run dry (or at the preemption timer), so while an
//! executor has local work, messages from the other wait: `crossed` shows how much crossed.
//!
//! **Workloads** (parameters, timed span and checks of the Nexus versions):
//! - chameneos: the mall starts the clock, sends `Start` to every creature, pairs `Meet`
//!   requests and answers with `Exit` once `meetings` are arranged; the clock stops at the last
//!   report. Rate: `Meet` requests per second. Checks: every creature reported, meetings sum to
//!   `2 * meetings`, `2 * meetings + creatures` requests, no self-pairing, the complement rule.
//! - big: the sink starts the clock and every agent; an agent pings a random other one (the
//!   Nexus xorshift and seeds), the next when the pong returns, and reports after `pings` pongs;
//!   the clock stops at the last report, then the sink sends `Stop` (nothing is in flight) and
//!   each agent returns the pings it answered. Rate: pings plus pongs per second. Checks: every
//!   agent reported `pings` pings and pongs, answered pings sum to `agents * pings`.
//! - fj-throughput: the driver sends `Work` round-robin (`burst / agents` per worker per round)
//!   and yields every `burst` sends; a worker computes [`crate::fork_join::work`] per message and
//!   reports at its last. The Nexus window (against dead letters across shards) is the worker's
//!   mailbox capacity: a full bounded channel makes the driver wait. Timed: first send to the
//!   last report. Checks: every worker reported and handled exactly `messages`.
//! - fj-create (`Local`): the driver spawns `agents` tasks with `spawn_local`, `burst` per turn,
//!   and sends each one `Work` on its own one-slot `local_channel`; the task computes, counts
//!   itself and ends. Timed: first spawn to the turn that sees the count complete. Checks: every
//!   message handled, no task left running.
//! - fib (`Local`): one `spawn_local` task per call of the naive recursion, awaiting its two
//!   children's tasks (their output is the answer). Timed: root spawn to root answer. Checks:
//!   fib(n), and calls counted up the tree and tasks spawned both equal 2 fib(n + 1) - 1.
//! - fan-in: `2 * senders_per_shard` senders (as on a two-shard engine) send `1..=messages` in
//!   even consecutive shares to the collector, yielding every `burst` sends; the collector's
//!   mailbox holds `senders * window`, the bound the Nexus credits put on its queue. Timed: the
//!   `Start` broadcast to the last message. Checks: count, sum n(n+1)/2, every sender's share.
//!
//! Allocations: fj-create allocates a task and a channel per operation, fib a task per call;
//! the others none per message. `Cross` fib and fj-create are skipped: they need a task spawned
//! on the other executor, which glommio does not offer from inside a task. The mesh is the
//! `mesh` submodule: an actor that fails (the other executor hung up or could not start) closes
//! its executor's mailboxes and shared sender, so a run ends with an error, never a hang.

mod mesh;

use super::glommio_peer::{executor, join, CAPACITY};
use super::{PeerCpus, PeerRate, PeerResult};
use crate::big::BigParams;
use crate::chameneos::{ChameneosParams, Colour};
use crate::fan_in::FanInParams;
use crate::fib::{self, FibParams};
use crate::fork_join::{self, CreateParams, ThroughputParams};
use crate::setup::Placement;
use crate::stats;
use crate::BenchError;
use glommio::channels::local_channel;
use mesh::{ensure, mesh, Actor, Layout};
use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Why `Cross` fib and fj-create are skipped.
const NO_REMOTE_SPAWN: &str = "glommio cannot spawn a task on another executor from inside a task";

/// Mailbox room the Nexus versions keep free (chameneos, big, fj-throughput).
const SPARE: usize = 16;

/// Yields to the other tasks of this executor.
async fn yield_now() {
    glommio::executor().yield_now().await;
}

/// A chameneos message (see `crate::chameneos`).
#[derive(Clone, Copy, Debug)]
enum Cham {
    Start,
    Meet(Colour, usize),
    Change(Colour, Colour),
    Exit,
    Report(u64, u64),
}

/// The mall's figures: elapsed, meetings arranged, `Meet` requests, (reports, meetings,
/// violations) summed over the creatures, self-pairings.
type MallOut = (Duration, u64, u64, (u64, u64, u64), u64);

async fn mall(a: Actor<Cham>, creatures: usize, meetings: u64) -> Result<MallOut, BenchError> {
    let started = Instant::now();
    for c in 1..=creatures {
        a.send(c, Cham::Start).await?;
    }
    let (mut left, mut waiting, mut requests, mut self_pairings) = (meetings, None, 0, 0);
    let mut reports = (0u64, 0u64, 0u64);
    while reports.0 < creatures as u64 {
        match a.recv().await? {
            Cham::Meet(colour, from) => {
                requests += 1;
                if left == 0 {
                    a.send(from, Cham::Exit).await?;
                } else if let Some(w) = waiting.take() {
                    self_pairings += u64::from(w == from);
                    left -= 1;
                    a.send(w, Cham::Meet(colour, from)).await?;
                } else {
                    waiting = Some(from);
                }
            }
            Cham::Report(met, violations) => reports = (reports.0 + 1, reports.1 + met, reports.2 + violations),
            _ => return Err(a.unexpected()),
        }
    }
    Ok((started.elapsed(), meetings - left, requests, reports, self_pairings))
}

async fn creature(a: Actor<Cham>) -> Result<(), BenchError> {
    const COLOURS: [Colour; 3] = [Colour::Blue, Colour::Red, Colour::Yellow];
    let (me, mut colour, mut met, mut violations) = (a.me, COLOURS[(a.me - 1) % 3], 0, 0);
    loop {
        match a.recv().await? {
            Cham::Start => {}
            Cham::Meet(other, from) => {
                let was = colour;
                colour = was.complement(other);
                met += 1;
                a.send(from, Cham::Change(colour, was)).await?;
            }
            Cham::Change(new, partner_was) => {
                violations += u64::from(colour.complement(partner_was) != new);
                colour = new;
                met += 1;
            }
            Cham::Exit => return a.send(0, Cham::Report(met, violations)).await,
            Cham::Report(..) => return Err(a.unexpected()),
        }
        a.send(0, Cham::Meet(colour, me)).await?;
    }
}

/// Chameneos: the mall's `Meet` requests per second (see the module doc).
pub fn chameneos(p: &ChameneosParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "chameneos";
    let room = CAPACITY - SPARE;
    if p.creatures < 2 || p.creatures as usize > room {
        return Err(BenchError::params(W, format!("creatures must be within 2..={room}")));
    }
    let (n, meetings) = (p.creatures as usize, p.meetings);
    let layout = Layout { workload: W, actors: n + 1, home: |k| k % 2, caps: [CAPACITY; 2] };
    let (out, _, crossed) = mesh(layout, p.placement, cpus, move |a| mall(a, n, meetings), creature)?;
    let (elapsed, arranged, requests, (reports, total, violations), self_pairings): MallOut = out;
    let (n, (m2, expected)) = (n as u64, (2 * meetings, 2 * meetings + n as u64));
    ensure(W, reports == n && arranged == meetings && total == m2 && requests == expected, || {
        format!(
            "{reports} creatures reported {total} meetings, the mall arranged {arranged} from {requests} requests; \
             expected {n} reports, {m2} meetings, {meetings} arranged, {expected} requests"
        )
    })?;
    ensure(W, violations == 0 && self_pairings == 0, || {
        format!("{violations} colour changes broke the complement rule, {self_pairings} self-pairings")
    })?;
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(requests, elapsed), crossed }))
}

/// A big message (see `crate::big`).
#[derive(Clone, Copy, Debug)]
enum Big {
    Start,
    Ping(usize),
    Pong,
    Done(u64, u64),
    Stop,
}

/// The sink's figures: elapsed, reports, reports without `pings` pings and pongs, pings sent.
type SinkOut = (Duration, u64, u64, u64);

async fn sink(a: Actor<Big>, agents: usize, pings: u64) -> Result<SinkOut, BenchError> {
    let started = Instant::now();
    for k in 1..=agents {
        a.send(k, Big::Start).await?;
    }
    let (mut reports, mut wrong, mut sent) = (0, 0, 0);
    while reports < agents as u64 {
        let Big::Done(s, pongs) = a.recv().await? else { return Err(a.unexpected()) };
        reports += 1;
        wrong += u64::from(s != pings || pongs != pings);
        sent += s;
    }
    let elapsed = started.elapsed();
    // Every ping has had its pong: nothing is in flight.
    for k in 1..=agents {
        a.send(k, Big::Stop).await?;
    }
    Ok((elapsed, reports, wrong, sent))
}

async fn big_agent(a: Actor<Big>, agents: usize, pings: u64) -> Result<u64, BenchError> {
    let index = a.me - 1;
    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let (mut sent, mut pongs, mut answered) = (0, 0, 0);
    loop {
        let ping = match a.recv().await? {
            Big::Start => pings > 0,
            Big::Ping(from) => {
                answered += 1;
                a.send(from, Big::Pong).await?;
                continue;
            }
            Big::Pong => {
                pongs += 1;
                sent < pings
            }
            Big::Stop => return Ok(answered),
            Big::Done(..) => return Err(a.unexpected()),
        };
        if !ping {
            a.send(0, Big::Done(sent, pongs)).await?;
            continue;
        }
        // xorshift64*, as the Nexus agents draw their neighbours; never this agent itself.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let mut pick = (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) % agents as u64) as usize;
        if pick == index {
            pick = (index + 1) % agents;
        }
        sent += 1;
        a.send(pick + 1, Big::Ping(a.me)).await?;
    }
}

/// Big: pings plus pongs per second (see the module doc).
pub fn big(p: &BigParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "big";
    let room = CAPACITY - SPARE;
    if p.agents < 2 || p.agents as usize > room {
        return Err(BenchError::params(W, format!("agents must be within 2..={room}")));
    }
    let (n, pings) = (p.agents as usize, p.pings);
    let layout = Layout { workload: W, actors: n + 1, home: |k| k % 2, caps: [CAPACITY; 2] };
    let (sink, agent) = (move |a| sink(a, n, pings), move |a| big_agent(a, n, pings));
    let ((elapsed, reports, wrong, sent), answered, crossed) = mesh(layout, p.placement, cpus, sink, agent)?;
    let (answered, n) = (answered.iter().sum::<u64>(), n as u64);
    ensure(W, reports == n && wrong == 0 && sent == n * pings && answered == n * pings, || {
        format!(
            "{reports} agents reported, {wrong} of them without {pings} pings and pongs; {sent} pings sent, \
             {answered} answered; expected {n} reports and {} pings",
            n * pings
        )
    })?;
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(2 * sent, elapsed), crossed }))
}

/// A fork-join throughput message: work, or a worker's final report (messages handled).
#[derive(Clone, Copy, Debug)]
enum Fj {
    Work,
    Done(u64),
}

/// Sends every worker `messages` `Work`s (see the module doc); returns the elapsed time and
/// the reports that did not say `messages`.
async fn fj_driver(a: Actor<Fj>, workers: usize, messages: u64, burst: u64) -> Result<(Duration, u64), BenchError> {
    let started = Instant::now();
    let per_round = (burst / workers as u64).max(1);
    let (mut sent, mut next, mut budget, mut left) = (vec![0u64; workers], 0, burst, workers as u64 * messages);
    while left > 0 {
        let i = next;
        next = (next + 1) % workers;
        let k = (messages - sent[i]).min(per_round).min(budget);
        for _ in 0..k {
            a.send(i + 1, Fj::Work).await?;
        }
        (sent[i], budget, left) = (sent[i] + k, budget - k, left - k);
        if budget == 0 {
            budget = burst;
            yield_now().await;
        }
    }
    let mut wrong = 0;
    for _ in 0..workers {
        let Fj::Done(handled) = a.recv().await? else { return Err(a.unexpected()) };
        wrong += u64::from(handled != messages);
    }
    Ok((started.elapsed(), wrong))
}

async fn fj_worker(a: Actor<Fj>, messages: u64) -> Result<u64, BenchError> {
    let (mut handled, mut acc) = (0, 0.0);
    while handled < messages {
        let Fj::Work = a.recv().await? else { return Err(a.unexpected()) };
        acc += fork_join::work();
        handled += 1;
        black_box(acc);
    }
    a.send(0, Fj::Done(handled)).await?;
    Ok(handled)
}

/// Fork-join throughput: messages per second (see the module doc).
pub fn fj_throughput(p: &ThroughputParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "fj-throughput";
    // The Nexus version's limits, so that both accept the same parameters.
    let (cap, window) = (CAPACITY as u64, u64::from(p.window));
    let progress = u64::from(p.agents) * (window.div_ceil((window / 2).max(1)) + 1);
    let max = cap - SPARE as u64;
    if p.agents == 0 || p.messages == 0 || window == 0 || window > max || progress > max {
        let what = format!(
            "agents, messages and window must be positive, the window at most {max}, agents at most {}",
            max / 3
        );
        return Err(BenchError::params(W, what));
    }
    let (n, messages, burst) = (p.agents as usize, p.messages, u64::from(p.burst.max(1)));
    let layout = Layout { workload: W, actors: n + 1, home: |k| k % 2, caps: [CAPACITY, window as usize] };
    let (driver, worker) = (move |a| fj_driver(a, n, messages, burst), move |a| fj_worker(a, messages));
    let ((elapsed, wrong), handled, crossed) = mesh(layout, p.placement, cpus, driver, worker)?;
    if let Some((i, h)) = handled.iter().enumerate().find(|(_, &h)| h != messages) {
        return Err(BenchError::check(W, format!("worker {i} handled {h} messages; expected {messages}")));
    }
    ensure(W, wrong == 0, || format!("{wrong} workers reported a count other than {messages}"))?;
    let total = n as u64 * messages;
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(total, elapsed), crossed }))
}

/// Spawns `agents` one-shot tasks, `burst` per turn, and sends each its message; returns the
/// messages handled, the tasks still running and the elapsed time.
async fn create(agents: u64, burst: u64) -> Result<(u64, u64, Duration), BenchError> {
    let (handled, live) = (Rc::new(Cell::new(0u64)), Rc::new(Cell::new(0u64)));
    let started = Instant::now();
    let mut next = 0;
    while next < agents {
        for _ in 0..burst.min(agents - next) {
            let (tx, rx) = local_channel::new_bounded(1);
            let (h, l) = (handled.clone(), live.clone());
            live.set(live.get() + 1);
            glommio::spawn_local(async move {
                if rx.recv().await.is_some() {
                    black_box(fork_join::work());
                    h.set(h.get() + 1);
                }
                l.set(l.get() - 1);
            })
            .detach();
            tx.try_send(()).map_err(|_| BenchError::check("fj-create", "a new task's channel refused its message"))?;
            next += 1;
        }
        yield_now().await;
    }
    while handled.get() < agents && live.get() > 0 {
        yield_now().await;
    }
    Ok((handled.get(), live.get(), started.elapsed()))
}

/// Fork-join creation: spawn + message + stop per second (see the module doc).
pub fn fj_create(p: &CreateParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "fj-create";
    if p.placement == Placement::Cross {
        return Ok(PeerResult::Skipped(NO_REMOTE_SPAWN));
    }
    let (agents, burst) = (p.agents, u64::from(p.burst.max(1)));
    let (handled, live, elapsed) = join(W, executor(W, cpus.first, cpus.pin, move || create(agents, burst))?)?;
    ensure(W, handled == agents && live == 0, || {
        format!("{handled} messages handled, {live} tasks still running; expected {agents} and none")
    })?;
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(agents, elapsed), crossed: 0.0 }))
}

/// One call of the naive recursion as a task: (fib(n), calls in its subtree, itself included).
/// `spawned` counts the tasks spawned.
async fn call(n: u32, spawned: Rc<Cell<u64>>) -> (u64, u64) {
    if n <= 1 {
        return (u64::from(n), 1);
    }
    spawned.set(spawned.get() + 2);
    let left = glommio::spawn_local(call(n - 1, spawned.clone()));
    let right = glommio::spawn_local(call(n - 2, spawned));
    let ((a, calls_a), (b, calls_b)) = (left.await, right.await);
    (a + b, calls_a + calls_b + 1)
}

/// Fibonacci: calls per second (see the module doc).
pub fn fib(p: &FibParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "fib";
    if p.placement == Placement::Cross {
        return Ok(PeerResult::Skipped(NO_REMOTE_SPAWN));
    }
    if p.n > 40 {
        return Err(BenchError::params(W, "n above 40 would spawn hundreds of millions of tasks"));
    }
    let n = p.n;
    let body = move || async move {
        let spawned = Rc::new(Cell::new(1));
        let started = Instant::now();
        let (value, calls) = glommio::spawn_local(call(n, spawned.clone())).await;
        Ok((value, calls, spawned.get(), started.elapsed()))
    };
    let (got, calls, spawned, elapsed) = join(W, executor(W, cpus.first, cpus.pin, body)?)?;
    let (value, expected) = fib::expected(n);
    ensure(W, got == value && calls == expected && spawned == expected, || {
        format!("fib({n}) = {got} from {calls} calls counted, {spawned} tasks spawned; expected {value}, {expected}")
    })?;
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(calls, elapsed), crossed: 0.0 }))
}

/// A fan-in message: a sender's range of values, or one value for the collector.
#[derive(Clone, Copy, Debug)]
enum Fan {
    Start(u64, u64),
    Add(u64),
}

/// Starts every sender with its share and collects `messages` values: (count, sum, elapsed).
async fn collector(a: Actor<Fan>, senders: u64, messages: u64) -> Result<(u64, u64, Duration), BenchError> {
    let started = Instant::now();
    let mut first = 1;
    for j in 0..senders {
        let share = messages / senders + u64::from(j < messages % senders);
        a.send(j as usize + 1, Fan::Start(first, first + share - 1)).await?;
        first += share;
    }
    let (mut count, mut sum) = (0, 0u64);
    while count < messages {
        let Fan::Add(v) = a.recv().await? else { return Err(a.unexpected()) };
        count += 1;
        sum = sum.wrapping_add(v);
    }
    Ok((count, sum, started.elapsed()))
}

async fn fan_sender(a: Actor<Fan>, burst: u64) -> Result<u64, BenchError> {
    let Fan::Start(first, last) = a.recv().await? else { return Err(a.unexpected()) };
    let mut sent = 0;
    for v in first..=last {
        a.send(0, Fan::Add(v)).await?;
        sent += 1;
        if sent % burst == 0 {
            yield_now().await;
        }
    }
    Ok(sent)
}

/// Fan-in: messages per second into the one collector (see the module doc).
pub fn fan_in(p: &FanInParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "fan-in";
    // As the Nexus version on its two-shard engine: the same senders, windows and limits.
    let senders = u64::from(p.senders_per_shard) * 2;
    let budget = CAPACITY as u64 - 32;
    let window = if p.window == 0 { budget / senders.max(1) } else { u64::from(p.window) };
    if senders == 0 || window == 0 || senders * window > budget {
        return Err(BenchError::params(
            W,
            format!("{senders} senders with a window of {window} need at least 1 each and at most {budget} in all"),
        ));
    }
    let (messages, burst) = (p.messages, u64::from(p.burst.max(1)));
    // The collector is actor 0 on executor 0; sender `j` (actor `j + 1`) on executor `j % 2`.
    let home = |k: usize| k.saturating_sub(1) % 2;
    let layout = Layout { workload: W, actors: senders as usize + 1, home, caps: [(senders * window) as usize, 2] };
    let (collect, send) = (move |a| collector(a, senders, messages), move |a| fan_sender(a, burst));
    let ((count, sum, elapsed), sent, crossed) = mesh(layout, p.placement, cpus, collect, send)?;
    let expected_sum = (u128::from(messages) * (u128::from(messages) + 1) / 2) as u64;
    ensure(W, count == messages && sum == expected_sum, || {
        format!("collected {count} messages summing to {sum}; expected {messages} summing to {expected_sum}")
    })?;
    for (j, &s) in sent.iter().enumerate() {
        let share = messages / senders + u64::from((j as u64) < messages % senders);
        ensure(W, s == share, || format!("sender {j} sent {s} messages; expected {share}"))?;
    }
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(messages, elapsed), crossed }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUS: PeerCpus = PeerCpus { first: 0, second: 1, pin: false };

    /// Asserts a `Ran` with a positive rate and a crossed share in 0..=1 (0 for `Local`).
    fn sane(what: &str, placement: Placement, result: Result<PeerResult<PeerRate>, BenchError>) {
        let Ok(PeerResult::Ran(rate)) = result else { panic!("{what} {placement:?}: {result:?}") };
        assert!(rate.per_s > 0.0 && rate.per_s.is_finite(), "{what} {placement:?}: {rate:?}");
        assert!((0.0..=1.0).contains(&rate.crossed), "{what} {placement:?}: {rate:?}");
        assert!(placement == Placement::Cross || rate.crossed == 0.0, "{what}: {rate:?}");
    }

    #[test]
    fn every_workload_runs_and_checks_both_ways() {
        for placement in Placement::BOTH {
            sane(
                "chameneos",
                placement,
                chameneos(&ChameneosParams { creatures: 10, meetings: 1_000, placement }, CPUS),
            );
            sane("big", placement, big(&BigParams { agents: 8, pings: 100, placement }, CPUS));
            let p = ThroughputParams { agents: 4, messages: 200, placement, ..ThroughputParams::default() };
            sane("fj-throughput", placement, fj_throughput(&p, CPUS));
            // A window and a burst below the work: the drivers wait on full mailboxes and yield.
            let p = ThroughputParams { agents: 5, messages: 1_000, window: 64, burst: 100, placement };
            sane("fj-throughput, small window", placement, fj_throughput(&p, CPUS));
            sane(
                "fan-in",
                placement,
                fan_in(&FanInParams { messages: 2_000, placement, ..FanInParams::default() }, CPUS),
            );
            let p = FanInParams { messages: 10_001, senders_per_shard: 3, window: 40, burst: 16, placement };
            sane("fan-in, uneven", placement, fan_in(&p, CPUS));
            let p = CreateParams { agents: 500, placement, ..CreateParams::default() };
            let (create, fib) = (fj_create(&p, CPUS), fib(&FibParams { n: 10, placement }, CPUS));
            if placement == Placement::Local {
                sane("fj-create", placement, create);
                sane("fib", placement, fib);
            } else {
                assert!(matches!(create, Ok(PeerResult::Skipped(NO_REMOTE_SPAWN))), "{create:?}");
                assert!(matches!(fib, Ok(PeerResult::Skipped(NO_REMOTE_SPAWN))), "{fib:?}");
            }
        }
    }

    #[test]
    fn edge_sizes_and_bad_parameters() {
        for n in [0, 1, 2] {
            sane("fib", Placement::Local, fib(&FibParams { n, placement: Placement::Local }, CPUS));
        }
        let big_idle = big(&BigParams { agents: 2, pings: 0, placement: Placement::Cross }, CPUS);
        assert!(matches!(big_idle, Ok(PeerResult::Ran(_))), "{big_idle:?}");
        let p =
            FanInParams { messages: 1, senders_per_shard: 2, placement: Placement::Cross, ..FanInParams::default() };
        sane("fan-in, one message", Placement::Cross, fan_in(&p, CPUS));
        let p = ChameneosParams { creatures: 1, meetings: 10, placement: Placement::Local };
        assert!(chameneos(&p, CPUS).unwrap_err().is_usage());
        assert!(fan_in(&FanInParams { window: 1_000, ..FanInParams::default() }, CPUS).unwrap_err().is_usage());
        assert!(fib(&FibParams { n: 41, placement: Placement::Local }, CPUS).unwrap_err().is_usage());
    }

    #[test]
    fn an_executor_that_cannot_start_is_an_error_not_a_hang() {
        let cpus = PeerCpus { first: usize::MAX / 2, second: 0, pin: true };
        let p = ChameneosParams { creatures: 10, meetings: 100, placement: Placement::Cross };
        let err = chameneos(&p, cpus).unwrap_err();
        assert!(err.is_usage(), "{err}");
    }
}
