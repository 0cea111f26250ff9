//! The tokio peer's Savina workloads: tokio tasks as actors, each with a bounded
//! `tokio::sync::mpsc` channel of [`CAPACITY`] as its mailbox (a send waits while it is full),
//! `oneshot` channels for single answers. The bookkeeping, limits and checks shared with the
//! ractor and kameo versions live in [`shared`].
//!
//! Runtimes: `Local` runs every task on one `current_thread` runtime. `Cross`: chameneos, big,
//! fj-throughput and fan-in run on [`super::tokio_pair::run_placed`]'s two spinning pinned
//! `current_thread` runtimes, actor `k` on runtime `k % 2` as Nexus puts agent `k` on shard
//! `k % 2` (the mall, sink, driver or collector is actor 0; creature, agent or worker `i` is
//! actor `i + 1`; fan-in sender `j` goes on `j % 2`), so messages cross as they do on Nexus;
//! fj-create and fib, whose tasks spawn tasks, run on [`super::tokio_peer::run_on`]'s two
//! pinned `multi_thread` workers, where tokio places each spawned task (`crossed` says how
//! often their messages crossed).
//!
//! Per workload (parameters, timed span and checks of the Nexus module named):
//!
//! - **chameneos** (`crate::chameneos`): a mall task and one task per creature. Timed from the
//!   mall's first `Start` to the last creature's report; rate = mall `Meet` requests
//!   (`2 * meetings + creatures`) per second. Checked: every creature reported, the meetings
//!   sum to `2 * meetings`, the mall paired `meetings` times and never a creature with itself,
//!   and every colour change followed the complement rule.
//! - **big** (`crate::big`): a sink task and one task per agent, each pinging neighbours drawn
//!   by the Nexus xorshift, the next ping when the pong is back. Timed from the sink's first
//!   `Start` to the last report; rate = (pings + pongs) per second. Checked: every agent
//!   reported `pings` pings and pongs, and the pings answered sum to `agents * pings`.
//! - **fj-throughput** (`crate::fork_join`): the driver sends `messages` messages to each
//!   worker, round-robin `burst / agents` at a time, each computed with `fork_join::work`; the
//!   bounded channels are the flow control (`window` is the Nexus engine's). Timed from the
//!   first send to the last worker's `Done`; rate = messages per second. Checked: every worker
//!   handled exactly `messages`.
//! - **fj-create** (`crate::fork_join`): the driver spawns `agents` tasks, each with its own
//!   bounded channel, sends each one message and yields every `burst` spawns; a task computes,
//!   counts itself and ends. Timed from the first spawn to the last count (the last task wakes
//!   the driver through a `Notify`); rate = spawn + message + stop per second. Checked: the
//!   count is exactly `agents`, and the runtime's live tasks fall back to their number before.
//! - **fib** (`crate::fib`): one task per call, spawned by its parent with its argument and
//!   answering through a `oneshot`. Timed from the root's spawn to its answer; rate = calls per
//!   second. Checked: fib(n), the calls counted up the tree are `2 fib(n + 1) - 1`, no spawn or
//!   answer was lost, and the runtime's live tasks fall back to their number before.
//! - **fan-in** (`crate::fan_in`): `2 * senders_per_shard` sender tasks (the two CPUs stand for
//!   two shards) send their share of `1..=messages` into the collector's one channel, whose
//!   bound is the flow control (no credits). Timed from the collector's first `Start` to its
//!   counting the last message; rate = messages per second. Checked: count, sum n(n+1)/2, and
//!   every sender sent exactly its share.
//!
//! Every message carries its sender's CPU (`crossed` is 0 for `Local` by definition). Per
//! message, a bounded channel stores the value inline and its `recv` takes one uncontended lock
//! (see [`super::tokio_peer`]); a `oneshot` allocates once; a spawn allocates the task once;
//! a new channel (fj-create's) allocates its shared state and a first block of 32 slots.

pub(super) mod shared;

use self::shared::{
    big_checked, big_size, chameneos_checked, chameneos_size, create_checked, fan_in_checked, fan_in_shares,
    fib_checked, fib_size, live_tasks, settled, sum_cross, throughput_checked, throughput_size, BigBook, BigStep,
    Chameneo, ChameneosTally, CollectorBook, Created, FanInTally, FibAnswer, FibBook, MallBook, Meeting, SinkBook,
};
use super::tokio_pair::run_placed;
use super::tokio_peer::{panicked, run_on, CAPACITY};
use super::{current_cpu, CrossCount, PeerCpus, PeerRate, PeerResult};
use crate::big::BigParams;
use crate::chameneos::{ChameneosParams, Colour};
use crate::fan_in::FanInParams;
use crate::fib::FibParams;
use crate::fork_join::{self, CreateParams, ThroughputParams};
use crate::setup;
use crate::BenchError;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Why a task could not go on: its partner's channel closed.
const GONE: &str = "a task stopped before the end of the run";

/// `n` bounded channels.
fn channels<T>(n: usize) -> (Vec<mpsc::Sender<T>>, Vec<mpsc::Receiver<T>>) {
    (0..n).map(|_| mpsc::channel(CAPACITY)).unzip()
}

/// Awaits every task; a panicked one is a failed check of `workload`.
async fn join_all<T>(workload: &'static str, tasks: Vec<tokio::task::JoinHandle<T>>) -> Result<Vec<T>, BenchError> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.map_err(|e| panicked(workload, &e))?);
    }
    Ok(out)
}

/// A message to the mall: a creature's request to meet, or its report.
enum MallMsg {
    /// Creature `from`, of `colour`, asks to meet.
    Meet { colour: Colour, from: usize, cpu: usize },
    /// A creature exited with (meetings, violations).
    Report { meetings: u64, violations: u64, cpu: usize },
}

/// A message to a creature.
enum CreatureMsg {
    /// Ask the mall for a first meeting.
    Start(usize),
    /// (From the mall) meet creature `from` of `colour`.
    Meet { colour: Colour, from: usize, cpu: usize },
    /// (From the partner) the new colour and the partner's colour before.
    Change { colour: Colour, partner_was: Colour, cpu: usize },
    /// No more meetings: report and end.
    Exit(usize),
}

/// Pairs the creatures until `meetings` are done and every creature has reported.
async fn mall(
    mut rx: mpsc::Receiver<MallMsg>,
    creatures: Arc<[mpsc::Sender<CreatureMsg>]>,
    meetings: u64,
) -> Result<ChameneosTally, &'static str> {
    let mut book = MallBook::start(creatures.len(), meetings);
    for to in creatures.iter() {
        to.send(CreatureMsg::Start(current_cpu())).await.map_err(|_| GONE)?;
    }
    while let Some(msg) = rx.recv().await {
        let (to, msg) = match msg {
            MallMsg::Meet { colour, from, cpu } => match book.meet(from, cpu) {
                Meeting::Wait => continue,
                Meeting::Pair { waiting, newcomer } => {
                    (waiting, CreatureMsg::Meet { colour, from: newcomer, cpu: current_cpu() })
                }
                Meeting::Exit(to) => (to, CreatureMsg::Exit(current_cpu())),
            },
            MallMsg::Report { meetings, violations, cpu } => match book.report(meetings, violations, cpu) {
                Some(tally) => return Ok(tally),
                None => continue,
            },
        };
        creatures[to].send(msg).await.map_err(|_| GONE)?;
    }
    Err(GONE)
}

/// Creature `index`: meets through the mall until told to exit; returns its cross count.
async fn creature(
    index: usize,
    mut rx: mpsc::Receiver<CreatureMsg>,
    mall: mpsc::Sender<MallMsg>,
    creatures: Arc<[mpsc::Sender<CreatureMsg>]>,
) -> CrossCount {
    let mut me = Chameneo::new(index);
    while let Some(msg) = rx.recv().await {
        let sent = match msg {
            CreatureMsg::Start(cpu) => {
                me.cross.note(cpu);
                true
            }
            CreatureMsg::Meet { colour, from, cpu } => {
                me.cross.note(cpu);
                let (colour, partner_was) = me.met(colour);
                let change = CreatureMsg::Change { colour, partner_was, cpu: current_cpu() };
                creatures[from].send(change).await.is_ok()
            }
            CreatureMsg::Change { colour, partner_was, cpu } => {
                me.cross.note(cpu);
                me.changed(colour, partner_was);
                true
            }
            CreatureMsg::Exit(cpu) => {
                me.cross.note(cpu);
                let report = MallMsg::Report { meetings: me.meetings, violations: me.violations, cpu: current_cpu() };
                let _ = mall.send(report).await;
                break;
            }
        };
        let meet = MallMsg::Meet { colour: me.colour, from: index, cpu: current_cpu() };
        if !sent || mall.send(meet).await.is_err() {
            break;
        }
    }
    me.cross
}

/// Chameneos: a mall task pairs creature tasks (see the module documentation).
pub fn chameneos(params: &ChameneosParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "tokio chameneos";
    let n = chameneos_size(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(params.meetings, Duration::from_micros(50));
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let (mall_tx, mall_rx) = mpsc::channel(CAPACITY);
        let (txs, rxs) = channels(n);
        let table: Arc<[_]> = txs.into();
        let creatures = rxs
            .into_iter()
            .enumerate()
            .map(|(i, rx)| sites.spawn(i + 1, creature(i, rx, mall_tx.clone(), table.clone())))
            .collect();
        drop(mall_tx);
        let tally = sites.spawn(0, mall(mall_rx, table, params.meetings)).await.map_err(|e| panicked(WORKLOAD, &e))?;
        let tally = tally.map_err(|why| BenchError::check(WORKLOAD, why))?;
        chameneos_checked(WORKLOAD, &params, tally, sum_cross(join_all(WORKLOAD, creatures).await?))
    })
}

/// A message to a big agent.
enum BigMsg {
    /// Send `pings` pings, then report.
    Start { pings: u64, cpu: usize },
    /// Agent `from` pings: answer it.
    Ping { from: usize, cpu: usize },
    /// The answer to this agent's ping.
    Pong(usize),
    /// The run is over: end.
    Finish,
}

/// An agent's report: (pings sent, pongs received, sender's CPU).
type Done = (u64, u64, usize);

/// Big agent `index`: pings random neighbours, answers pings; returns (answered, cross).
async fn big_agent(
    index: usize,
    mut rx: mpsc::Receiver<BigMsg>,
    peers: Arc<[mpsc::Sender<BigMsg>]>,
    sink: mpsc::Sender<Done>,
) -> (u64, CrossCount) {
    let mut book = BigBook::new(index, peers.len());
    while let Some(msg) = rx.recv().await {
        let step = match msg {
            BigMsg::Start { pings, cpu } => book.start(pings, cpu),
            BigMsg::Pong(cpu) => book.pong(cpu),
            BigMsg::Ping { from, cpu } => {
                book.ping(cpu);
                match peers[from].send(BigMsg::Pong(current_cpu())).await {
                    Ok(()) => continue,
                    Err(_) => break,
                }
            }
            BigMsg::Finish => break,
        };
        let sent = match step {
            BigStep::Ping(to) => peers[to].send(BigMsg::Ping { from: index, cpu: current_cpu() }).await.is_ok(),
            BigStep::Report => sink.send((book.sent, book.pongs, current_cpu())).await.is_ok(),
        };
        if !sent {
            break;
        }
    }
    (book.answered, book.cross)
}

/// Starts every agent and counts their reports.
async fn sink(
    mut rx: mpsc::Receiver<Done>,
    peers: Arc<[mpsc::Sender<BigMsg>]>,
    pings: u64,
) -> Result<shared::BigTally, &'static str> {
    let mut book = SinkBook::start(peers.len(), pings);
    for to in peers.iter() {
        to.send(BigMsg::Start { pings, cpu: current_cpu() }).await.map_err(|_| GONE)?;
    }
    while let Some((sent, pongs, cpu)) = rx.recv().await {
        if let Some(tally) = book.done(sent, pongs, cpu) {
            return Ok(tally);
        }
    }
    Err(GONE)
}

/// Big: agent tasks ping random neighbours (see the module documentation).
pub fn big(params: &BigParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "tokio big";
    let n = big_size(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(n as u64 * params.pings, Duration::from_micros(5));
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let (sink_tx, sink_rx) = mpsc::channel(CAPACITY);
        let (txs, rxs) = channels(n);
        let peers: Arc<[_]> = txs.into();
        let agents = rxs
            .into_iter()
            .enumerate()
            .map(|(i, rx)| sites.spawn(i + 1, big_agent(i, rx, peers.clone(), sink_tx.clone())));
        let agents: Vec<_> = agents.collect();
        drop(sink_tx);
        let tally = sites.spawn(0, sink(sink_rx, peers.clone(), params.pings));
        let tally = tally.await.map_err(|e| panicked(WORKLOAD, &e))?.map_err(|why| BenchError::check(WORKLOAD, why))?;
        for to in peers.iter() {
            to.send(BigMsg::Finish).await.map_err(|_| BenchError::check(WORKLOAD, GONE))?;
        }
        let (mut answered, mut cross) = (0, CrossCount::default());
        for (a, c) in join_all(WORKLOAD, agents).await? {
            answered += a;
            cross.add(c);
        }
        big_checked(WORKLOAD, &params, tally, answered, cross)
    })
}

/// A worker: computes each message; tells `done` at its `target`-th. Returns (handled, cross).
async fn worker(mut rx: mpsc::Receiver<usize>, done: mpsc::Sender<()>, target: u64) -> (u64, CrossCount) {
    let (mut handled, mut acc, mut cross) = (0, 0.0, CrossCount::default());
    while let Some(cpu) = rx.recv().await {
        acc += fork_join::work();
        handled += 1;
        cross.note(cpu);
        if handled == target && done.send(()).await.is_err() {
            break;
        }
    }
    black_box(acc);
    (handled, cross)
}

/// Fork-join throughput: the driver sends every worker task its messages (see the module
/// documentation).
pub fn fj_throughput(params: &ThroughputParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "tokio fj-throughput";
    let (n, per_round) = throughput_size(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(n as u64 * params.messages, Duration::from_micros(5));
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let messages = params.messages;
        let (done_tx, mut done_rx) = mpsc::channel(CAPACITY);
        let (txs, rxs) = channels(n);
        let workers = rxs
            .into_iter()
            .enumerate()
            .map(|(i, rx)| sites.spawn(i + 1, worker(rx, done_tx.clone(), messages)))
            .collect();
        drop(done_tx);
        let started = Instant::now();
        let mut sent = 0;
        while sent < messages {
            let k = per_round.min(messages - sent);
            for tx in &txs {
                for _ in 0..k {
                    tx.send(current_cpu()).await.map_err(|_| BenchError::check(WORKLOAD, GONE))?;
                }
            }
            sent += k;
        }
        for _ in 0..n {
            done_rx.recv().await.ok_or_else(|| BenchError::check(WORKLOAD, GONE))?;
        }
        let elapsed = started.elapsed();
        drop(txs);
        let (mut counts, mut cross) = (Vec::with_capacity(n), CrossCount::default());
        for (handled, c) in join_all(WORKLOAD, workers).await? {
            counts.push(handled);
            cross.add(c);
        }
        throughput_checked(WORKLOAD, &params, elapsed, &counts, cross)
    })
}

/// Fork-join creation: spawn a task, send it one message; it counts itself and ends (see the
/// module documentation).
pub fn fj_create(params: &CreateParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "tokio fj-create";
    let params = params.clone();
    let limit = setup::timeout_for(params.agents, Duration::from_micros(20));
    run_on(WORKLOAD, params.placement, cpus, limit, move || async move {
        let (created, burst) = (Created::new(params.agents), u64::from(params.burst.max(1)));
        let before = live_tasks();
        let started = Instant::now();
        for k in 1..=params.agents {
            let (tx, mut rx) = mpsc::channel::<usize>(CAPACITY);
            let count = created.clone();
            tokio::spawn(async move {
                if let Some(cpu) = rx.recv().await {
                    count.handle(cpu);
                }
            });
            tx.send(current_cpu()).await.map_err(|_| BenchError::check(WORKLOAD, GONE))?;
            if k % burst == 0 {
                tokio::task::yield_now().await;
            }
        }
        created.all().await;
        let elapsed = started.elapsed();
        let after = settled(before).await;
        create_checked(WORKLOAD, &params, elapsed, &created, (before, after))
    })
}

/// Spawns the call computing fib(`n`), asked from `cpu`; it answers through `reply`.
fn spawn_call(n: u32, cpu: usize, reply: oneshot::Sender<FibAnswer>) {
    tokio::spawn(async move {
        let mut book = FibBook::request(n, cpu);
        if n > 1 {
            let (first, second) = (oneshot::channel(), oneshot::channel());
            spawn_call(n - 1, current_cpu(), first.0);
            spawn_call(n - 2, current_cpu(), second.0);
            for answer in [first.1.await, second.1.await] {
                match answer {
                    Ok(a) => book.answer(a),
                    Err(_) => book.lost(),
                }
            }
        }
        if let Some(answer) = book.done() {
            let _ = reply.send(answer);
        }
    });
}

/// Fibonacci: one task per call, answering through a `oneshot` (see the module documentation).
pub fn fib(params: &FibParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "tokio fib";
    let (_, calls) = fib_size(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(calls, Duration::from_micros(20));
    run_on(WORKLOAD, params.placement, cpus, limit, move || async move {
        let before = live_tasks();
        let (reply, answer) = oneshot::channel();
        let started = Instant::now();
        spawn_call(params.n, current_cpu(), reply);
        let mut answer = answer.await.map_err(|_| BenchError::check(WORKLOAD, "the root call did not answer"))?;
        let elapsed = started.elapsed();
        answer.cross.note(answer.cpu);
        let after = settled(before).await;
        fib_checked(WORKLOAD, &params, answer, elapsed, (before, after))
    })
}

/// One value for the collector, and its sender's CPU.
struct Add(u64, usize);

/// Where a sender's start goes: (first value, last value, the collector's CPU).
type StartSender = oneshot::Sender<(u64, u64, usize)>;

/// A fan-in sender: waits for its range, sends it; returns (sent, cross).
async fn fan_in_sender(start: oneshot::Receiver<(u64, u64, usize)>, to: mpsc::Sender<Add>) -> (u64, CrossCount) {
    let (mut sent, mut cross) = (0, CrossCount::default());
    if let Ok((first, last, cpu)) = start.await {
        cross.note(cpu);
        for value in first..=last {
            if to.send(Add(value, current_cpu())).await.is_err() {
                break;
            }
            sent += 1;
        }
    }
    (sent, cross)
}

/// Starts the senders and counts `messages` values.
async fn collector(
    mut rx: mpsc::Receiver<Add>,
    starts: Vec<(StartSender, (u64, u64))>,
    messages: u64,
) -> Result<FanInTally, &'static str> {
    let mut book = CollectorBook::start(messages);
    for (start, (first, last)) in starts {
        start.send((first, last, current_cpu())).map_err(|_| GONE)?;
    }
    if let Some(tally) = book.done() {
        return Ok(tally);
    }
    while let Some(Add(value, cpu)) = rx.recv().await {
        if let Some(tally) = book.add(value, cpu) {
            return Ok(tally);
        }
    }
    Err(GONE)
}

/// Fan-in: sender tasks send into one collector channel (see the module documentation).
pub fn fan_in(params: &FanInParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "tokio fan-in";
    let shares = fan_in_shares(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(params.messages, Duration::from_micros(5));
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let (tx, rx) = mpsc::channel(CAPACITY);
        let (mut starts, mut senders) = (Vec::with_capacity(shares.len()), Vec::with_capacity(shares.len()));
        for (j, &share) in shares.iter().enumerate() {
            let (start, started) = oneshot::channel();
            starts.push((start, share));
            senders.push(sites.spawn(j, fan_in_sender(started, tx.clone())));
        }
        drop(tx);
        let total = sites.spawn(0, collector(rx, starts, params.messages));
        let total = total.await.map_err(|e| panicked(WORKLOAD, &e))?.map_err(|why| BenchError::check(WORKLOAD, why))?;
        let sent = join_all(WORKLOAD, senders).await?;
        fan_in_checked(WORKLOAD, &params, total, &shares, &sent)
    })
}

#[cfg(test)]
pub(super) mod tests {
    use crate::big::BigParams;
    use crate::chameneos::ChameneosParams;
    use crate::fan_in::FanInParams;
    use crate::fib::FibParams;
    use crate::fork_join::{CreateParams, ThroughputParams};
    use crate::peers::{savina, Peer, PeerCpus, PeerResult, Savina};
    use crate::setup::Placement;

    const CPUS: PeerCpus = PeerCpus { first: 0, second: 1, pin: false };

    /// Runs `peer`'s six Savina workloads tiny, both placements, asserting each ran with a
    /// positive rate and a crossed share within 0..=1 (0 for `Local`); then two refused sizes.
    pub(in crate::peers) fn six_workloads(peer: Peer) {
        for placement in Placement::BOTH {
            let chameneos = ChameneosParams { creatures: 10, meetings: 1_000, placement };
            let big = BigParams { agents: 8, pings: 100, placement };
            let throughput = ThroughputParams { agents: 4, messages: 200, window: 64, burst: 100, placement };
            let create = CreateParams { agents: 500, burst: 100, window: 50, placement };
            let fibs = [0, 1, 10].map(|n| FibParams { n, placement });
            let fan_in = FanInParams { messages: 2_001, senders_per_shard: 2, window: 0, burst: 16, placement };
            let mut runs = vec![
                Savina::Chameneos(&chameneos),
                Savina::Big(&big),
                Savina::FjThroughput(&throughput),
                Savina::FjCreate(&create),
                Savina::FanIn(&fan_in),
            ];
            runs.extend(fibs.iter().map(Savina::Fib));
            for run in runs {
                match savina(peer, run, CPUS) {
                    Ok(PeerResult::Ran(rate)) => {
                        assert!(rate.per_s > 0.0 && (0.0..=1.0).contains(&rate.crossed), "{run:?}: {rate:?}");
                        assert!(placement == Placement::Cross || rate.crossed == 0.0, "{run:?}: {rate:?}");
                    }
                    Ok(PeerResult::Skipped(why)) => panic!("{peer:?} skipped {run:?}: {why}"),
                    Err(e) => panic!("{peer:?} {run:?}: {e}"),
                }
            }
        }
        let one = ChameneosParams { creatures: 1, meetings: 10, placement: Placement::Local };
        assert!(savina(peer, Savina::Chameneos(&one), CPUS).is_err_and(|e| e.is_usage()));
        let huge = FibParams { n: 41, placement: Placement::Local };
        assert!(savina(peer, Savina::Fib(&huge), CPUS).is_err_and(|e| e.is_usage()));
    }

    #[test]
    fn six_workloads_check_both_ways() {
        six_workloads(Peer::Tokio);
    }

    #[test]
    fn the_shared_books_follow_the_nexus_rules() {
        use super::shared::*;
        use crate::chameneos::Colour;
        // The mall pairs two requests, then answers every request with `Exit`.
        let mut mall = MallBook::start(2, 1);
        assert!(matches!(mall.meet(0, 0), Meeting::Wait));
        assert!(matches!(mall.meet(1, 0), Meeting::Pair { waiting: 0, newcomer: 1 }));
        assert!(matches!(mall.meet(0, 0), Meeting::Exit(0)));
        assert!(mall.report(1, 0, 0).is_none());
        let tally = mall.report(1, 0, 0).unwrap();
        assert_eq!((tally.arranged, tally.requests, tally.self_pairings, tally.reports), (1, 3, 0, (2, 2, 0)));
        // Both creatures take the complement; a change against the rule is counted.
        let (mut blue, mut red) = (Chameneo::new(0), Chameneo::new(1));
        let (colour, red_was) = red.met(blue.colour);
        blue.changed(colour, red_was);
        assert_eq!((blue.colour, red.colour, blue.violations), (Colour::Yellow, Colour::Yellow, 0));
        blue.changed(Colour::Blue, Colour::Blue);
        assert_eq!(blue.violations, 1);
        // A big agent never pings itself and sends exactly its pings.
        let mut agent = BigBook::new(3, 4);
        let mut step = agent.start(50, 0);
        while let BigStep::Ping(to) = step {
            assert!(to != 3 && to < 4);
            step = agent.pong(0);
        }
        assert_eq!((agent.sent, agent.pongs), (50, 50));
        // The fan-in shares are 1..=messages, the first `messages % senders` one longer.
        let params =
            FanInParams { messages: 10, senders_per_shard: 2, window: 0, burst: 1, placement: Placement::Local };
        assert_eq!(fan_in_shares("test", &params).unwrap(), [(1, 3), (4, 6), (7, 8), (9, 10)]);
        // fib(2) = 1 from three calls.
        let mut call = FibBook::request(2, 0);
        assert!(call.done().is_none());
        call.answer(FibBook::request(1, 0).done().unwrap());
        call.answer(FibBook::request(0, 0).done().unwrap());
        let answer = call.done().unwrap();
        assert_eq!((answer.value, answer.calls, answer.ok), (1, 3, true));
    }
}
