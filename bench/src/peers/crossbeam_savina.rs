//! The crossbeam-channel peer's Savina workloads: each actor is an OS thread owning the
//! receiving end of a bounded `crossbeam_channel` and blocking in `recv`, the thread-per-actor
//! model a crossbeam user would write.
//!
//! Threads start through the core peer's gate ([`super::crossbeam_peer`]): each pins itself and
//! waits until all are spawned, so no figure includes a thread start (but fj-create's, on
//! purpose). `Cross` pins actor `k` (the driver is actor 0, worker `i` actor `i + 1`, fan-in
//! sender `j` actor `j`, as Nexus puts agent `k` on shard `k % shards`) on `cpus.first` for even
//! `k`, `cpus.second` for odd `k`. Channels hold 1,024 messages (a Nexus mailbox) unless said
//! otherwise. Per message: a slot write into a preallocated array; a `recv` on an empty channel
//! spins briefly, then parks (a futex wait the sender wakes). With tens of threads on two CPUs
//! most messages wake a parked thread, so the OS scheduler is in every figure: the honest cost
//! of a thread per actor. Every message carries its sender's CPU; every handler notes it.
//! Every blocking `send`/`recv` has a deadline scaled to the work (as Nexus host asks have a
//! timeout): a lost message or a dead thread ends the run with an error, never a hang.
//!
//! - **chameneos**: a mall thread and a thread per creature, with the Nexus protocol (the mall
//!   forwards the newcomer's `Meet`, carrying a clone of its `Sender`, to the waiting creature,
//!   which answers the newcomer with `Change`; `Exit` once the meetings are done). Timed: the
//!   `Start` broadcast to the last report; rate: mall `Meet` requests per second. Checked:
//!   reports, meetings reported (`2 * meetings`), pairings, requests (`2 * meetings + n`), no
//!   self-pairing, the complement rule on every `Change`.
//! - **big**: a sink thread and a thread per agent, each with a `Sender` to every agent, pinging
//!   one drawn by the Nexus xorshift after each pong; after the last report the sink sends
//!   `Stop` and each agent returns its answered pings. Timed: the `Start` broadcast to the last
//!   report; rate: pings plus pongs per second. Checked: every agent sent `pings` pings and got
//!   `pings` pongs; answered pings sum to `agents * pings`.
//! - **fj-throughput**: a driver thread and a thread per worker whose channel holds `window`
//!   messages: a full channel replaces the Nexus credit messages. The driver `try_send`s
//!   round-robin, up to `burst / agents` per worker per round, and blocks on one full channel
//!   only when a round sent nothing; a worker computes [`crate::fork_join::work`] per message.
//!   Timed: the first send to the last worker's report of `messages` handled; rate: messages
//!   per second. Checked: every worker was sent and handled exactly `messages` (counted until
//!   its channel closed).
//! - **fj-create**: OS thread creation, a crossbeam user's way to create an actor. A driver
//!   thread, `agents` times: spawns a thread (odd ones pin to `cpus.second`, even ones inherit
//!   the driver's `cpus.first`) and sends it one message over a new channel; the thread
//!   computes, counts itself in a shared counter and ends. At most `window` threads are left
//!   unjoined (the oldest is joined first). Timed: the first spawn to the last join (spawn +
//!   message + stop); rate: operations per second. Checked: counter and joins both `agents`.
//! - **fan-in**: `2 * senders_per_shard` sender threads (the two CPUs stand for the shards)
//!   share one channel of `senders * window` messages (the Nexus window rule; a full channel is
//!   the credit, `burst` has no use) to a collector thread on `cpus.first`. Timed: the `Start`
//!   broadcast to the last message counted; rate: messages per second. Checked: count, sum
//!   (`n(n+1)/2`) and each sender's share.
//!
//! Skipped: every `Local` run (as in the core peer, `Local` is one thread, and a thread blocked
//! in `recv` cannot run the other end); runs needing more than [`MAX_THREADS`] threads at once
//! (the OS scheduler, not the channel, would be the workload); fib (a thread per call is 242,785
//! threads for fib(25), a large share of them alive at once, each blocked on its children).

use super::crossbeam_peer::{both, hung_up, join, join_all, recv_by, send_by, timed_out, Gate, CAPACITY, LOCAL};
use super::rtrb_savina::{check_fan_in, fan_in_shape, share};
use super::{current_cpu, CrossCount, PeerCpus, PeerRate, PeerResult};
use crate::big::BigParams;
use crate::chameneos::{ChameneosParams, Colour};
use crate::fan_in::FanInParams;
use crate::fib::FibParams;
use crate::fork_join::{self, CreateParams, ThroughputParams};
use crate::setup::{self, Placement};
use crate::stats;
use crate::BenchError;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most threads one run may start at once (one per actor).
pub const MAX_THREADS: u64 = 128;

/// Why runs needing more threads are skipped.
const TOO_MANY: &str = "more than 128 threads (one per actor) on two CPUs would measure the OS scheduler";

/// Why fib is skipped.
const FIB: &str = "one thread per call is 242,785 threads for fib(25), many of them alive at once";

/// The CPU of actor `k`: `first` for even `k`, `second` for odd `k`.
fn cpu_of(cpus: PeerCpus, k: usize) -> usize {
    [cpus.first, cpus.second][k % 2]
}

/// Why a run of `threads` threads at `placement` is skipped, if it is.
fn skip(placement: Placement, threads: u64) -> Option<PeerResult<PeerRate>> {
    match placement {
        Placement::Local => Some(PeerResult::Skipped(LOCAL)),
        Placement::Cross => (threads > MAX_THREADS).then_some(PeerResult::Skipped(TOO_MANY)),
    }
}

/// A message to the chameneos mall.
enum MallMsg {
    /// Creature `from` of this colour asks to meet.
    Meet { colour: Colour, from: usize, cpu: usize },
    /// A creature exited with its meetings and colour-rule violations.
    Report { meetings: u64, violations: u64, cpu: usize },
}

/// A message to a creature.
enum CreatureMsg {
    /// Ask the mall for a first meeting.
    Start,
    /// (From the mall) meet this creature of this colour.
    Meet { colour: Colour, from: Sender<CreatureMsg>, cpu: usize },
    /// (From the partner) the new colour, and the partner's colour before the meeting.
    Change { colour: Colour, partner_was: Colour, cpu: usize },
    /// No more meetings: report and end.
    Exit { cpu: usize },
}

/// What the mall saw: elapsed, meetings arranged, requests, reports, meetings reported,
/// violations reported, self-pairings, and its messages' crossing.
type MallSaw = (Duration, u64, u64, u64, u64, u64, u64, CrossCount);

/// The mall: starts every creature, pairs them, counts the reports.
fn mall(
    rx: Receiver<MallMsg>,
    creatures: Vec<Sender<CreatureMsg>>,
    meetings: u64,
    at: Instant,
) -> Result<MallSaw, BenchError> {
    const W: &str = "chameneos";
    let n = creatures.len() as u64;
    let (mut left, mut arranged, mut requests, mut self_pairings) = (meetings, 0, 0, 0);
    let (mut reports, mut total, mut violations, mut cross) = (0, 0, 0, CrossCount::default());
    let mut waiting: Option<usize> = None;
    let started = Instant::now();
    for c in &creatures {
        send_by(W, c, CreatureMsg::Start, at)?;
    }
    while reports < n {
        match recv_by(W, &rx, at)? {
            MallMsg::Meet { colour, from, cpu } => {
                cross.note(cpu);
                requests += 1;
                let to = creatures.get(from).ok_or_else(|| BenchError::check(W, "a meeting from nowhere"))?;
                if left == 0 {
                    send_by(W, to, CreatureMsg::Exit { cpu: current_cpu() }, at)?;
                } else if let Some(w) = waiting.take() {
                    self_pairings += u64::from(w == from);
                    (left, arranged) = (left - 1, arranged + 1);
                    let meet = CreatureMsg::Meet { colour, from: to.clone(), cpu: current_cpu() };
                    send_by(W, &creatures[w], meet, at)?;
                } else {
                    waiting = Some(from);
                }
            }
            MallMsg::Report { meetings, violations: v, cpu } => {
                cross.note(cpu);
                (reports, total, violations) = (reports + 1, total + meetings, violations + v);
            }
        }
    }
    Ok((started.elapsed(), arranged, requests, reports, total, violations, self_pairings, cross))
}

/// Creature `i`: meets until `Exit`, then reports.
fn creature(i: usize, rx: Receiver<CreatureMsg>, mall: Sender<MallMsg>, at: Instant) -> Result<CrossCount, BenchError> {
    const W: &str = "chameneos";
    let mut colour = [Colour::Blue, Colour::Red, Colour::Yellow][i % 3];
    let (mut meetings, mut violations, mut cross) = (0u64, 0u64, CrossCount::default());
    loop {
        match recv_by(W, &rx, at)? {
            CreatureMsg::Start => {}
            CreatureMsg::Meet { colour: theirs, from, cpu } => {
                cross.note(cpu);
                let was = colour;
                colour = was.complement(theirs);
                meetings += 1;
                send_by(W, &from, CreatureMsg::Change { colour, partner_was: was, cpu: current_cpu() }, at)?;
            }
            CreatureMsg::Change { colour: new, partner_was, cpu } => {
                cross.note(cpu);
                violations += u64::from(colour.complement(partner_was) != new);
                colour = new;
                meetings += 1;
            }
            CreatureMsg::Exit { cpu } => {
                cross.note(cpu);
                send_by(W, &mall, MallMsg::Report { meetings, violations, cpu: current_cpu() }, at)?;
                return Ok(cross);
            }
        }
        send_by(W, &mall, MallMsg::Meet { colour, from: i, cpu: current_cpu() }, at)?;
    }
}

/// Chameneos on one thread per creature plus the mall: mall messages per second (see the
/// module doc).
pub fn chameneos(p: &ChameneosParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "chameneos";
    if let Some(skipped) = skip(p.placement, u64::from(p.creatures) + 1) {
        return Ok(skipped);
    }
    if p.creatures < 2 {
        return Err(BenchError::params(W, "creatures must be at least 2"));
    }
    let (n, meetings) = (p.creatures as usize, p.meetings);
    let at = Instant::now() + setup::timeout_for(meetings, Duration::from_micros(200));
    let (mall_tx, mall_rx) = bounded::<MallMsg>(CAPACITY);
    let mut gate = Gate::new(W);
    let (mut senders, mut handles) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let (tx, rx) = bounded::<CreatureMsg>(CAPACITY);
        let to_mall = mall_tx.clone();
        let cpu = cpu_of(cpus, i + 1);
        handles
            .push(gate.spawn(format!("crossbeam-creature-{i}"), cpu, cpus.pin, move || creature(i, rx, to_mall, at))?);
        senders.push(tx);
    }
    drop(mall_tx);
    let driver =
        gate.spawn("crossbeam-mall".into(), cpus.first, cpus.pin, move || mall(mall_rx, senders, meetings, at))?;
    gate.open();
    let (saw, creatures) = both(W, join(W, driver), join_all(W, handles))?;
    let (elapsed, arranged, requests, reports, total, violations, self_pairings, mut cross) = saw;
    creatures.into_iter().for_each(|c| cross.add(c));
    let n = n as u64;
    let (got, expected) = ((reports, total, arranged, requests), (n, 2 * meetings, meetings, 2 * meetings + n));
    if got != expected || violations != 0 || self_pairings != 0 {
        let what = format!(
            "(reports, meetings reported, arranged, requests) = {got:?}, expected {expected:?}; \
             {violations} colour changes broke the complement rule, {self_pairings} self-pairings"
        );
        return Err(BenchError::check(W, what));
    }
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(requests, elapsed), crossed: cross.share() }))
}

/// A message to a big agent.
enum BigMsg {
    /// Start pinging.
    Start,
    /// Agent `from` pings: answer it.
    Ping { from: usize, cpu: usize },
    /// The answer to this agent's ping.
    Pong { cpu: usize },
    /// Every agent is done: return the pings answered.
    Stop,
}

/// An agent's report to the sink: pings sent, pongs received, its sender's CPU.
struct Done(u64, u64, usize);

/// Big agent `me`: pings `pings` times, answers every ping, returns (answered, crossing) at
/// `Stop`.
fn big_agent(
    me: usize,
    rx: Receiver<BigMsg>,
    peers: Arc<[Sender<BigMsg>]>,
    sink: Sender<Done>,
    pings: u64,
    at: Instant,
) -> Result<(u64, CrossCount), BenchError> {
    const W: &str = "big";
    // The Nexus agent's xorshift64* and seed, so both draw the same neighbours.
    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (me as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let n = peers.len();
    let (mut sent, mut pongs, mut answered, mut cross) = (0u64, 0u64, 0u64, CrossCount::default());
    let mut ping = |sent: &mut u64| {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let mut to = (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize;
        if to == me {
            to = (me + 1) % n; // never ourselves: the next agent in the ring
        }
        *sent += 1;
        send_by(W, &peers[to], BigMsg::Ping { from: me, cpu: current_cpu() }, at)
    };
    loop {
        match recv_by(W, &rx, at)? {
            BigMsg::Ping { from, cpu } => {
                cross.note(cpu);
                answered += 1;
                let to = peers.get(from).ok_or_else(|| BenchError::check(W, "a ping from nowhere"))?;
                send_by(W, to, BigMsg::Pong { cpu: current_cpu() }, at)?;
            }
            BigMsg::Pong { cpu } => {
                cross.note(cpu);
                pongs += 1;
                if sent < pings {
                    ping(&mut sent)?;
                } else {
                    send_by(W, &sink, Done(sent, pongs, current_cpu()), at)?;
                }
            }
            BigMsg::Start if pings == 0 => send_by(W, &sink, Done(0, 0, current_cpu()), at)?,
            BigMsg::Start => ping(&mut sent)?,
            BigMsg::Stop => return Ok((answered, cross)),
        }
    }
}

/// Big on one thread per agent plus the sink: pings plus pongs per second (see the module doc).
pub fn big(p: &BigParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "big";
    if let Some(skipped) = skip(p.placement, u64::from(p.agents) + 1) {
        return Ok(skipped);
    }
    if p.agents < 2 {
        return Err(BenchError::params(W, "agents must be at least 2"));
    }
    let (n, pings) = (p.agents as usize, p.pings);
    let at = Instant::now() + setup::timeout_for(n as u64 * pings, Duration::from_micros(50));
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| bounded::<BigMsg>(CAPACITY)).unzip();
    let peers: Arc<[Sender<BigMsg>]> = txs.into();
    let (done_tx, done_rx) = bounded::<Done>(CAPACITY);
    let mut gate = Gate::new(W);
    let mut handles = Vec::with_capacity(n);
    for (i, rx) in rxs.into_iter().enumerate() {
        let (peers, sink) = (peers.clone(), done_tx.clone());
        handles.push(gate.spawn(format!("crossbeam-big-{i}"), cpu_of(cpus, i + 1), cpus.pin, move || {
            big_agent(i, rx, peers, sink, pings, at)
        })?);
    }
    drop(done_tx);
    let sink = gate.spawn("crossbeam-big-sink".into(), cpus.first, cpus.pin, move || {
        let (mut reports, mut wrong, mut sent, mut cross) = (0u64, 0u64, 0u64, CrossCount::default());
        let started = Instant::now();
        for agent in peers.iter() {
            send_by(W, agent, BigMsg::Start, at)?;
        }
        while reports < n as u64 {
            let Done(s, pongs, cpu) = recv_by(W, &done_rx, at)?;
            cross.note(cpu);
            (reports, sent) = (reports + 1, sent + s);
            wrong += u64::from(s != pings || pongs != pings);
        }
        let elapsed = started.elapsed();
        // Every ping has been answered and every pong received: nothing is in flight.
        for agent in peers.iter() {
            send_by(W, agent, BigMsg::Stop, at)?;
        }
        Ok((elapsed, reports, wrong, sent, cross))
    })?;
    gate.open();
    let ((elapsed, reports, wrong, sent, mut cross), agents) = both(W, join(W, sink), join_all(W, handles))?;
    let mut answered = 0;
    for (a, c) in agents {
        answered += a;
        cross.add(c);
    }
    let n = n as u64;
    if reports != n || wrong != 0 || sent != n * pings || answered != n * pings {
        let what = format!(
            "{reports} agents reported, {wrong} of them without {pings} pings and pongs; {sent} pings sent, \
             {answered} answered; expected {n} reports and {} pings",
            n * pings
        );
        return Err(BenchError::check(W, what));
    }
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(2 * sent, elapsed), crossed: cross.share() }))
}

/// Fork-join throughput on one thread per worker plus the driver: messages per second (see
/// the module doc).
pub fn fj_throughput(p: &ThroughputParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "fj-throughput";
    if let Some(skipped) = skip(p.placement, u64::from(p.agents) + 1) {
        return Ok(skipped);
    }
    if p.agents == 0 || p.messages == 0 || p.window == 0 || p.window as usize + 16 > CAPACITY {
        let what = format!("agents, messages and window must be positive, the window at most {}", CAPACITY - 16);
        return Err(BenchError::params(W, what));
    }
    let (n, messages) = (p.agents as usize, p.messages);
    let per_round = (u64::from(p.burst.max(1)) / n as u64).max(1);
    let at = Instant::now() + setup::timeout_for(n as u64 * messages, Duration::from_micros(20));
    let (done_tx, done_rx) = bounded::<()>(n);
    let mut gate = Gate::new(W);
    let (mut txs, mut handles) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let (tx, rx) = bounded::<usize>(p.window as usize);
        let done = done_tx.clone();
        handles.push(gate.spawn(format!("crossbeam-fj-{i}"), cpu_of(cpus, i + 1), cpus.pin, move || {
            let (mut handled, mut acc, mut cross) = (0u64, 0.0, CrossCount::default());
            // Counts until the driver closes the channel, so a surplus message would show.
            loop {
                match rx.recv_deadline(at) {
                    Ok(cpu) => {
                        cross.note(cpu);
                        acc += fork_join::work();
                        handled += 1;
                        if handled == messages {
                            send_by(W, &done, (), at)?;
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => return Err(timed_out(W)),
                }
            }
            black_box(acc);
            Ok((handled, cross))
        })?);
        txs.push(tx);
    }
    drop(done_tx);
    let driver = gate.spawn("crossbeam-fj-driver".into(), cpus.first, cpus.pin, move || {
        let mut sent = vec![0u64; n];
        let (mut unfinished, mut next) = (n, 0);
        let started = Instant::now();
        while unfinished > 0 {
            let mut progress = false;
            for (tx, sent) in txs.iter().zip(sent.iter_mut()) {
                for _ in 0..per_round.min(messages - *sent) {
                    match tx.try_send(current_cpu()) {
                        Ok(()) => *sent += 1,
                        Err(TrySendError::Full(_)) => break,
                        Err(TrySendError::Disconnected(_)) => return Err(hung_up(W)),
                    }
                    progress = true;
                    unfinished -= usize::from(*sent == messages);
                }
            }
            if !progress {
                // Every unfinished channel is full: block on the next one in turn.
                next = (next..n).chain(0..next).find(|&i| sent[i] < messages).unwrap_or(0);
                send_by(W, &txs[next], current_cpu(), at)?;
                sent[next] += 1;
                unfinished -= usize::from(sent[next] == messages);
                next = (next + 1) % n;
            }
        }
        for _ in 0..n {
            recv_by(W, &done_rx, at)?;
        }
        Ok((started.elapsed(), sent))
    })?;
    gate.open();
    let ((elapsed, sent), workers) = both(W, join(W, driver), join_all(W, handles))?;
    let mut cross = CrossCount::default();
    for (i, ((handled, c), sent)) in workers.into_iter().zip(sent).enumerate() {
        cross.add(c);
        if handled != messages || sent != messages {
            let what = format!("worker {i} was sent {sent} and handled {handled} messages; expected {messages}");
            return Err(BenchError::check(W, what));
        }
    }
    let total = n as u64 * messages;
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(total, elapsed), crossed: cross.share() }))
}

/// Fork-join creation, one OS thread per operation: spawns + messages + ends per second (see
/// the module doc).
pub fn fj_create(p: &CreateParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "fj-create";
    // Up to `window` threads are alive at once, but each only for one message: no thread cap.
    if let Some(skipped) = skip(p.placement, 1) {
        return Ok(skipped);
    }
    let (agents, window) = (p.agents, p.window.max(1) as usize);
    let at = Instant::now() + setup::timeout_for(agents, Duration::from_micros(200));
    let handled = Arc::new(AtomicU64::new(0));
    let counter = handled.clone();
    let mut gate = Gate::new(W);
    let driver = gate.spawn("crossbeam-fj-create".into(), cpus.first, cpus.pin, move || {
        let mut live = VecDeque::with_capacity(window);
        let (mut joined, mut cross) = (0u64, CrossCount::default());
        let started = Instant::now();
        for k in 0..agents {
            if live.len() == window {
                if let Some(oldest) = live.pop_front() {
                    cross.add(join(W, oldest)?);
                    joined += 1;
                }
            }
            // Even threads inherit the driver's pinning to `first`; odd ones pin to `second`.
            let pin_to = (cpus.pin && k % 2 == 1).then_some(cpus.second);
            let (tx, rx) = bounded::<usize>(1);
            let handled = counter.clone();
            let thread = std::thread::Builder::new()
                .spawn(move || {
                    if let Some(cpu) = pin_to {
                        super::pin(cpu, true)?;
                    }
                    let mut cross = CrossCount::default();
                    cross.note(recv_by(W, &rx, at)?);
                    black_box(fork_join::work());
                    handled.fetch_add(1, Ordering::Release);
                    Ok(cross)
                })
                .map_err(|e| BenchError::params(W, format!("cannot spawn thread {k}: {e}")))?;
            if let Err(e) = send_by(W, &tx, current_cpu(), at) {
                // The thread ended without its message (it could not pin): its error says why.
                return Err(join(W, thread).err().unwrap_or(e));
            }
            live.push_back(thread);
        }
        for thread in live {
            cross.add(join(W, thread)?);
            joined += 1;
        }
        Ok((started.elapsed(), joined, cross))
    })?;
    gate.open();
    let (elapsed, joined, cross) = join(W, driver)?;
    let counted = handled.load(Ordering::Acquire);
    if counted != agents || joined != agents {
        let what = format!("{counted} messages handled, {joined} threads joined; expected {agents} of each");
        return Err(BenchError::check(W, what));
    }
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(agents, elapsed), crossed: cross.share() }))
}

/// Fibonacci: skipped (see the module doc).
pub fn fib(p: &FibParams, _cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    Ok(PeerResult::Skipped(if p.placement == Placement::Local { LOCAL } else { FIB }))
}

/// A fan-in message: the value and its sender's CPU.
struct Add(u64, usize);

/// Fan-in from one thread per sender into a collector thread over one shared channel:
/// messages per second (see the module doc).
pub fn fan_in(p: &FanInParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const W: &str = "fan-in";
    let (senders, window) = fan_in_shape(p)?;
    if let Some(skipped) = skip(p.placement, senders + 1) {
        return Ok(skipped);
    }
    let messages = p.messages;
    let at = Instant::now() + setup::timeout_for(messages, Duration::from_micros(5));
    let (tx, rx) = bounded::<Add>((senders * window) as usize);
    let mut gate = Gate::new(W);
    let (mut starts, mut handles) = (Vec::new(), Vec::new());
    for j in 0..senders as usize {
        let (start_tx, start_rx) = bounded::<(u64, u64)>(1);
        let tx = tx.clone();
        handles.push(gate.spawn(format!("crossbeam-fan-in-{j}"), cpu_of(cpus, j), cpus.pin, move || {
            let (first, last) = recv_by(W, &start_rx, at)?;
            for v in first..=last {
                send_by(W, &tx, Add(v, current_cpu()), at)?;
            }
            Ok(last + 1 - first)
        })?);
        starts.push(start_tx);
    }
    drop(tx);
    let collector = gate.spawn("crossbeam-collector".into(), cpus.first, cpus.pin, move || {
        let (mut count, mut sum, mut cross, mut first) = (0u64, 0u64, CrossCount::default(), 1);
        let started = Instant::now();
        for (j, start) in starts.iter().enumerate() {
            let share = share(messages, senders, j);
            send_by(W, start, (first, first + share - 1), at)?;
            first += share;
        }
        while count < messages {
            let Add(v, cpu) = recv_by(W, &rx, at)?;
            cross.note(cpu);
            (count, sum) = (count + 1, sum.wrapping_add(v));
        }
        Ok((count, sum, started.elapsed(), cross))
    })?;
    gate.open();
    let ((count, sum, elapsed, cross), sent) = both(W, join(W, collector), join_all(W, handles))?;
    check_fan_in(messages, count, sum, &sent)?;
    Ok(PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(messages, elapsed), crossed: cross.share() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUS: PeerCpus = PeerCpus { first: 0, second: 1, pin: false };

    /// Asserts `out` ran with sane figures when `cross`, and was skipped otherwise.
    fn ran_iff(cross: bool, out: Result<PeerResult<PeerRate>, BenchError>) {
        match out.unwrap() {
            PeerResult::Ran(r) if cross => {
                assert!(r.per_s > 0.0 && r.per_s.is_finite() && (0.0..=1.0).contains(&r.crossed), "{r:?}")
            }
            PeerResult::Skipped(_) if !cross => {}
            out => panic!("cross: {cross}, got {out:?}"),
        }
    }

    #[test]
    fn every_workload_checks_its_run_and_skips_local() {
        for placement in Placement::BOTH {
            let cross = placement == Placement::Cross;
            ran_iff(cross, chameneos(&ChameneosParams { creatures: 10, meetings: 1_000, placement }, CPUS));
            ran_iff(cross, big(&BigParams { agents: 8, pings: 100, placement }, CPUS));
            let p = ThroughputParams { agents: 4, messages: 200, placement, ..ThroughputParams::default() };
            ran_iff(cross, fj_throughput(&p, CPUS));
            ran_iff(cross, fj_create(&CreateParams { agents: 500, placement, ..CreateParams::default() }, CPUS));
            ran_iff(cross, fan_in(&FanInParams { messages: 2_000, placement, ..FanInParams::default() }, CPUS));
            ran_iff(false, fib(&FibParams { n: 10, placement }, CPUS));
        }
    }

    #[test]
    fn small_windows_uneven_splits_and_limits() {
        let p = ThroughputParams { agents: 4, messages: 200, window: 3, ..ThroughputParams::default() };
        ran_iff(true, fj_throughput(&p, CPUS));
        ran_iff(true, fj_create(&CreateParams { agents: 500, window: 7, ..CreateParams::default() }, CPUS));
        // An uneven split over six senders with a small window.
        let p = FanInParams { messages: 2_001, senders_per_shard: 3, window: 5, ..FanInParams::default() };
        ran_iff(true, fan_in(&p, CPUS));
        ran_iff(false, chameneos(&ChameneosParams { creatures: 500, ..ChameneosParams::default() }, CPUS));
        assert!(big(&BigParams { agents: 1, ..BigParams::default() }, CPUS).unwrap_err().is_usage());
        assert!(fan_in(&FanInParams { window: 1_000, ..FanInParams::default() }, CPUS).unwrap_err().is_usage());
    }

    #[test]
    fn a_lost_message_times_out_instead_of_hanging() {
        let (_tx, rx) = bounded::<u64>(1);
        let err = recv_by("test", &rx, Instant::now() + Duration::from_millis(10)).unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        let (tx, _rx) = bounded::<u64>(1);
        send_by("test", &tx, 1, Instant::now() + Duration::from_secs(1)).unwrap();
        let err = send_by("test", &tx, 2, Instant::now() + Duration::from_millis(10)).unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
    }
}
