//! What the tokio, ractor and kameo versions of the Savina workloads share (all three run on
//! tokio): each workload's bookkeeping, written once after the rules of its Nexus agents (the
//! mall's pairing, a creature's colour changes, big's xorshift neighbours, fib's sums up the
//! tree, fan-in's shares), its size limits and its checks, so that the three peers run, time
//! and check exactly alike. Nothing here sends a message: each peer moves these values through
//! its own channels or mailboxes. A child of [`super`] (the tokio version) so that the peers'
//! module list stays as it is.

use crate::big::BigParams;
use crate::chameneos::{ChameneosParams, Colour};
use crate::fan_in::FanInParams;
use crate::fib::{self, FibParams};
use crate::fork_join::{self, CreateParams, ThroughputParams};
use crate::peers::tokio_peer::CAPACITY;
use crate::peers::{current_cpu, CrossCount, PeerRate, PeerResult};
use crate::setup::Placement;
use crate::stats;
use crate::BenchError;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Agents that may each have a message on its way to one mailbox (the mall, the sink, a
/// driver): the mailbox's capacity less 16 slots for the run's own requests, as in Nexus.
pub(in crate::peers) const MAX_AGENTS: u64 = CAPACITY as u64 - 16;
/// The shards the peers' two CPUs stand for (fan-in's senders are per shard).
const SHARDS: u64 = 2;
/// How long the live tasks may take to fall back after a run.
const SETTLE: Duration = Duration::from_secs(5);

/// A run's rate: `count` over `elapsed`, with the crossed share (0 for `Local`).
pub(in crate::peers) fn rate(
    placement: Placement,
    count: u64,
    elapsed: Duration,
    cross: CrossCount,
) -> PeerResult<PeerRate> {
    let crossed = if placement == Placement::Local { 0.0 } else { cross.share() };
    PeerResult::Ran(PeerRate { elapsed, per_s: stats::per_second(count, elapsed), crossed })
}

/// The live tasks of the runtime running the caller (always a task of `run_on`).
pub(in crate::peers) fn live_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

/// The live tasks once those ending have ended: waits up to [`SETTLE`] (outside any timed
/// span) for them to fall back to `before`.
pub(in crate::peers) async fn settled(before: usize) -> usize {
    let deadline = Instant::now() + SETTLE;
    loop {
        let live = live_tasks();
        if live <= before || Instant::now() >= deadline {
            return live;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The sum of `counts`.
pub(in crate::peers) fn sum_cross(counts: impl IntoIterator<Item = CrossCount>) -> CrossCount {
    let mut sum = CrossCount::default();
    counts.into_iter().for_each(|c| sum.add(c));
    sum
}

/// A failed check unless `agents` is within `min..=MAX_AGENTS`.
fn within(workload: &'static str, what: &str, agents: u64, min: u64) -> Result<usize, BenchError> {
    if agents < min || agents > MAX_AGENTS {
        return Err(BenchError::params(workload, format!("{what} must be within {min}..={MAX_AGENTS}")));
    }
    Ok(agents as usize)
}

/// The creatures of a chameneos run (2..=[`MAX_AGENTS`]).
pub(in crate::peers) fn chameneos_size(workload: &'static str, params: &ChameneosParams) -> Result<usize, BenchError> {
    within(workload, "creatures", u64::from(params.creatures), 2)
}

/// What the mall answers a `Meet`.
pub(in crate::peers) enum Meeting<A> {
    /// Wait for a partner.
    Wait,
    /// Forward the newcomer's `Meet` to the waiting creature.
    Pair {
        /// The creature that waited.
        waiting: A,
        /// The one that just asked.
        newcomer: A,
    },
    /// No more meetings: tell it to exit.
    Exit(A),
}

/// What a chameneos run counted.
#[derive(Clone, Copy, Debug, Default)]
pub(in crate::peers) struct ChameneosTally {
    /// From the first `Start` to the last report.
    pub(in crate::peers) elapsed: Duration,
    /// Meetings arranged.
    pub(in crate::peers) arranged: u64,
    /// `Meet` requests handled.
    pub(in crate::peers) requests: u64,
    /// Creatures paired with themselves.
    pub(in crate::peers) self_pairings: u64,
    /// Sends that failed.
    pub(in crate::peers) failed: u64,
    /// Reports, and the meetings and colour-rule violations they summed.
    pub(in crate::peers) reports: (u64, u64, u64),
    /// The mall's messages, by their sender's CPU.
    pub(in crate::peers) cross: CrossCount,
}

/// The mall's bookkeeping (the rules of `crate::chameneos::Mall`); `A` names a creature.
pub(in crate::peers) struct MallBook<A> {
    waiting: Option<A>,
    left: u64,
    creatures: u64,
    started: Instant,
    /// The counts so far.
    pub(in crate::peers) tally: ChameneosTally,
}

impl<A: PartialEq> MallBook<A> {
    /// Starts the clock for `meetings` meetings among `creatures`.
    pub(in crate::peers) fn start(creatures: usize, meetings: u64) -> Self {
        let tally = ChameneosTally::default();
        Self { waiting: None, left: meetings, creatures: creatures as u64, started: Instant::now(), tally }
    }

    /// Notes `from`'s request to meet, sent from `cpu`, and says what to answer.
    pub(in crate::peers) fn meet(&mut self, from: A, cpu: usize) -> Meeting<A> {
        self.tally.requests += 1;
        self.tally.cross.note(cpu);
        if self.left == 0 {
            return Meeting::Exit(from);
        }
        match self.waiting.take() {
            None => {
                self.waiting = Some(from);
                Meeting::Wait
            }
            Some(waiting) => {
                self.tally.self_pairings += u64::from(waiting == from);
                self.left -= 1;
                self.tally.arranged += 1;
                Meeting::Pair { waiting, newcomer: from }
            }
        }
    }

    /// Notes a creature's report; the tally (clock stopped) once every creature has reported.
    pub(in crate::peers) fn report(&mut self, meetings: u64, violations: u64, cpu: usize) -> Option<ChameneosTally> {
        self.tally.cross.note(cpu);
        let r = &mut self.tally.reports;
        (r.0, r.1, r.2) = (r.0 + 1, r.1 + meetings, r.2 + violations);
        (r.0 == self.creatures).then(|| ChameneosTally { elapsed: self.started.elapsed(), ..self.tally })
    }
}

/// A creature's colour and counts (the rules of `crate::chameneos::Creature`).
#[derive(Debug)]
pub(in crate::peers) struct Chameneo {
    /// Its colour now.
    pub(in crate::peers) colour: Colour,
    /// Meetings it took part in.
    pub(in crate::peers) meetings: u64,
    /// Changes that broke the complement rule.
    pub(in crate::peers) violations: u64,
    /// Its messages, by their sender's CPU.
    pub(in crate::peers) cross: CrossCount,
}

impl Chameneo {
    /// Creature `i` (colour `i % 3`, as in Nexus).
    pub(in crate::peers) fn new(i: usize) -> Self {
        let colour = [Colour::Blue, Colour::Red, Colour::Yellow][i % 3];
        Self { colour, meetings: 0, violations: 0, cross: CrossCount::default() }
    }

    /// Met a partner of `colour` through the mall: takes the complement and returns the
    /// partner's `Change` (new colour, this creature's colour before).
    pub(in crate::peers) fn met(&mut self, colour: Colour) -> (Colour, Colour) {
        let was = self.colour;
        self.colour = was.complement(colour);
        self.meetings += 1;
        (self.colour, was)
    }

    /// The partner's `Change`: checks the complement rule and takes the colour.
    pub(in crate::peers) fn changed(&mut self, colour: Colour, partner_was: Colour) {
        self.violations += u64::from(self.colour.complement(partner_was) != colour);
        self.colour = colour;
        self.meetings += 1;
    }
}

/// Checks a chameneos run (`creatures` counts the creatures' messages) and returns its rate.
pub(in crate::peers) fn chameneos_checked(
    workload: &'static str,
    params: &ChameneosParams,
    t: ChameneosTally,
    creatures: CrossCount,
) -> Result<PeerResult<PeerRate>, BenchError> {
    let (n, m) = (u64::from(params.creatures), params.meetings);
    let (reports, total, violations) = t.reports;
    if (reports, total, t.arranged, t.requests) != (n, 2 * m, m, 2 * m + n) {
        return Err(BenchError::check(
            workload,
            format!(
                "{reports} creatures reported {total} meetings, the mall arranged {} from {} requests; expected {n} \
                 reports, {} meetings, {m} arranged, {} requests",
                t.arranged,
                t.requests,
                2 * m,
                2 * m + n
            ),
        ));
    }
    if violations != 0 || t.self_pairings != 0 || t.failed != 0 {
        return Err(BenchError::check(
            workload,
            format!(
                "{violations} colour changes broke the rule, {} self-pairings, {} failed sends",
                t.self_pairings, t.failed
            ),
        ));
    }
    let mut cross = t.cross;
    cross.add(creatures);
    Ok(rate(params.placement, t.requests, t.elapsed, cross))
}

/// The agents of a big run (2..=[`MAX_AGENTS`]).
pub(in crate::peers) fn big_size(workload: &'static str, params: &BigParams) -> Result<usize, BenchError> {
    within(workload, "agents", u64::from(params.agents), 2)
}

/// What a big agent does next.
pub(in crate::peers) enum BigStep {
    /// Ping this agent.
    Ping(usize),
    /// Report to the sink.
    Report,
}

/// A big agent's neighbours and counts (the rules of `crate::big::BigAgent`).
#[derive(Debug)]
pub(in crate::peers) struct BigBook {
    /// The agent's index.
    pub(in crate::peers) index: usize,
    agents: usize,
    seed: u64,
    target: u64,
    /// Pings sent.
    pub(in crate::peers) sent: u64,
    /// Pongs received.
    pub(in crate::peers) pongs: u64,
    /// Pings answered.
    pub(in crate::peers) answered: u64,
    /// Its messages, by their sender's CPU.
    pub(in crate::peers) cross: CrossCount,
}

impl BigBook {
    /// Agent `index` of `agents` (seeded as in Nexus).
    pub(in crate::peers) fn new(index: usize, agents: usize) -> Self {
        let seed = 0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
        Self { index, agents, seed, target: 0, sent: 0, pongs: 0, answered: 0, cross: CrossCount::default() }
    }

    /// A neighbour drawn at random (xorshift64*), never this agent.
    fn neighbour(&mut self) -> BigStep {
        self.seed ^= self.seed >> 12;
        self.seed ^= self.seed << 25;
        self.seed ^= self.seed >> 27;
        let pick = (self.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) % self.agents.max(1) as u64) as usize;
        self.sent += 1;
        BigStep::Ping(if pick == self.index { (pick + 1) % self.agents } else { pick })
    }

    /// `Start` with `pings` to send (from `cpu`): the first step.
    pub(in crate::peers) fn start(&mut self, pings: u64, cpu: usize) -> BigStep {
        self.cross.note(cpu);
        self.target = pings;
        if pings == 0 {
            BigStep::Report
        } else {
            self.neighbour()
        }
    }

    /// A pong (from `cpu`): the next step.
    pub(in crate::peers) fn pong(&mut self, cpu: usize) -> BigStep {
        self.cross.note(cpu);
        self.pongs += 1;
        if self.sent < self.target {
            self.neighbour()
        } else {
            BigStep::Report
        }
    }

    /// A ping (from `cpu`), to be answered.
    pub(in crate::peers) fn ping(&mut self, cpu: usize) {
        self.cross.note(cpu);
        self.answered += 1;
    }
}

/// What a big run counted: elapsed, reports, agents whose (sent, pongs) were not (`pings`,
/// `pings`), pings sent, the sink's messages by sender CPU.
pub(in crate::peers) type BigTally = (Duration, u64, u64, u64, CrossCount);

/// The sink's bookkeeping (the rules of `crate::big::Sink`).
pub(in crate::peers) struct SinkBook {
    agents: u64,
    pings: u64,
    started: Instant,
    tally: BigTally,
}

impl SinkBook {
    /// Starts the clock for `agents` agents sending `pings` pings each.
    pub(in crate::peers) fn start(agents: usize, pings: u64) -> Self {
        Self { agents: agents as u64, pings, started: Instant::now(), tally: Default::default() }
    }

    /// Notes a report (from `cpu`); the tally once every agent has reported.
    pub(in crate::peers) fn done(&mut self, sent: u64, pongs: u64, cpu: usize) -> Option<BigTally> {
        let t = &mut self.tally;
        t.4.note(cpu);
        (t.1, t.2, t.3) = (t.1 + 1, t.2 + u64::from(sent != self.pings || pongs != self.pings), t.3 + sent);
        (t.1 == self.agents).then(|| (self.started.elapsed(), t.1, t.2, t.3, t.4))
    }
}

/// Checks a big run (`answered` pings over all agents, whose messages `agents` counts).
pub(in crate::peers) fn big_checked(
    workload: &'static str,
    params: &BigParams,
    (elapsed, reports, wrong, sent, mut cross): BigTally,
    answered: u64,
    agents: CrossCount,
) -> Result<PeerResult<PeerRate>, BenchError> {
    let (n, pings) = (u64::from(params.agents), params.pings);
    if reports != n || wrong != 0 || sent != n * pings || answered != n * pings {
        return Err(BenchError::check(
            workload,
            format!(
                "{reports} agents reported, {wrong} of them without {pings} pings and pongs; {sent} pings sent, \
                 {answered} answered; expected {n} reports and {} pings",
                n * pings
            ),
        ));
    }
    cross.add(agents);
    Ok(rate(params.placement, 2 * sent, elapsed, cross))
}

/// fj-throughput's workers and messages per worker per round (`burst / agents`, at least 1).
pub(in crate::peers) fn throughput_size(
    workload: &'static str,
    params: &ThroughputParams,
) -> Result<(usize, u64), BenchError> {
    let n = within(workload, "agents", u64::from(params.agents), 1)?;
    if params.messages == 0 {
        return Err(BenchError::params(workload, "messages must be positive"));
    }
    Ok((n, (u64::from(params.burst) / n as u64).max(1)))
}

/// Checks an fj-throughput run (`counts`: the messages each worker handled).
pub(in crate::peers) fn throughput_checked(
    workload: &'static str,
    params: &ThroughputParams,
    elapsed: Duration,
    counts: &[u64],
    cross: CrossCount,
) -> Result<PeerResult<PeerRate>, BenchError> {
    let m = params.messages;
    if let Some((i, c)) = counts.iter().enumerate().find(|(_, &c)| c != m) {
        return Err(BenchError::check(workload, format!("worker {i} handled {c} messages; expected {m}")));
    }
    if counts.len() != params.agents as usize {
        return Err(BenchError::check(workload, format!("{} workers counted of {}", counts.len(), params.agents)));
    }
    Ok(rate(params.placement, counts.len() as u64 * m, elapsed, cross))
}

/// fj-create's shared count: every one-shot counts itself here; the last one wakes the driver.
#[derive(Debug, Default)]
pub(in crate::peers) struct Created {
    total: u64,
    handled: AtomicU64,
    crossed: AtomicU64,
    all: Notify,
}

impl Created {
    /// A count for `total` one-shots.
    pub(in crate::peers) fn new(total: u64) -> Arc<Self> {
        Arc::new(Self { total, ..Self::default() })
    }

    /// A one-shot's message (sent from `cpu`): computes once and counts it.
    pub(in crate::peers) fn handle(&self, cpu: usize) {
        black_box(fork_join::work());
        if cpu != current_cpu() {
            self.crossed.fetch_add(1, Ordering::Relaxed);
        }
        if self.handled.fetch_add(1, Ordering::AcqRel) + 1 == self.total {
            self.all.notify_one();
        }
    }

    /// Waits until every one-shot has counted itself.
    pub(in crate::peers) async fn all(&self) {
        if self.total > 0 {
            self.all.notified().await;
        }
    }
}

/// Checks an fj-create run (`live`: the runtime's live tasks before and after it).
pub(in crate::peers) fn create_checked(
    workload: &'static str,
    params: &CreateParams,
    elapsed: Duration,
    created: &Created,
    live: (usize, usize),
) -> Result<PeerResult<PeerRate>, BenchError> {
    let (n, handled) = (params.agents, created.handled.load(Ordering::Acquire));
    if handled != n || live.0 != live.1 {
        return Err(BenchError::check(
            workload,
            format!(
                "{handled} messages handled, {} live tasks before and {} after; expected {n} and no change",
                live.0, live.1
            ),
        ));
    }
    let cross = CrossCount { messages: handled, crossed: created.crossed.load(Ordering::Relaxed) };
    Ok(rate(params.placement, n, elapsed, cross))
}

/// fib's expected (value, calls); `n` above 40 is refused.
pub(in crate::peers) fn fib_size(workload: &'static str, params: &FibParams) -> Result<(u64, u64), BenchError> {
    if params.n > 40 {
        return Err(BenchError::params(workload, "n above 40 would spawn hundreds of millions of calls"));
    }
    Ok(fib::expected(params.n))
}

/// A call's answer: fib of its argument, the calls of its subtree (itself included), whether
/// nothing was lost, the subtree's messages by sender CPU, and the answering CPU.
#[derive(Clone, Copy, Debug, Default)]
pub(in crate::peers) struct FibAnswer {
    /// fib of the call's argument.
    pub(in crate::peers) value: u64,
    /// Calls in the subtree.
    pub(in crate::peers) calls: u64,
    /// Whether every spawn and answer of the subtree got through.
    pub(in crate::peers) ok: bool,
    /// The subtree's messages, by their sender's CPU.
    pub(in crate::peers) cross: CrossCount,
    /// The CPU the answer was sent from.
    pub(in crate::peers) cpu: usize,
}

/// A call's bookkeeping (the rules of `crate::fib::FibAgent`).
#[derive(Debug, Default)]
pub(in crate::peers) struct FibBook {
    sum: FibAnswer,
    waiting: u8,
}

impl FibBook {
    /// A call whose request came from `cpu`; a leaf (`n <= 1`) needs no child.
    pub(in crate::peers) fn request(n: u32, cpu: usize) -> Self {
        let mut sum = FibAnswer { ok: true, ..FibAnswer::default() };
        sum.cross.note(cpu);
        if n <= 1 {
            sum.value = u64::from(n);
        }
        Self { sum, waiting: if n <= 1 { 0 } else { 2 } }
    }

    /// A child answered.
    pub(in crate::peers) fn answer(&mut self, a: FibAnswer) {
        self.sum.cross.note(a.cpu);
        self.sum.cross.add(a.cross);
        (self.sum.value, self.sum.calls, self.sum.ok) =
            (self.sum.value + a.value, self.sum.calls + a.calls, self.sum.ok && a.ok);
        self.waiting = self.waiting.saturating_sub(1);
    }

    /// A child could not be spawned or did not answer.
    pub(in crate::peers) fn lost(&mut self) {
        self.sum.ok = false;
        self.waiting = self.waiting.saturating_sub(1);
    }

    /// This call's answer once every child has answered.
    pub(in crate::peers) fn done(&self) -> Option<FibAnswer> {
        (self.waiting == 0).then(|| FibAnswer { calls: self.sum.calls + 1, cpu: current_cpu(), ..self.sum })
    }
}

/// Checks a fib run (`live`: the runtime's live tasks before and after it).
pub(in crate::peers) fn fib_checked(
    workload: &'static str,
    params: &FibParams,
    answer: FibAnswer,
    elapsed: Duration,
    live: (usize, usize),
) -> Result<PeerResult<PeerRate>, BenchError> {
    let (value, calls) = fib::expected(params.n);
    if (answer.value, answer.calls, answer.ok, live.0) != (value, calls, true, live.1) {
        return Err(BenchError::check(
            workload,
            format!(
                "fib({}) = {} from {} calls (nothing lost: {}), {} live tasks before and {} after; expected {value} \
                 from {calls} calls and no change",
                params.n, answer.value, answer.calls, answer.ok, live.0, live.1
            ),
        ));
    }
    Ok(rate(params.placement, calls, elapsed, answer.cross))
}

/// fan-in's senders' values: sender `j` sends `first..=last` (an even split of `1..=messages`,
/// the first `messages % senders` taking one more, as in Nexus).
pub(in crate::peers) fn fan_in_shares(
    workload: &'static str,
    params: &FanInParams,
) -> Result<Vec<(u64, u64)>, BenchError> {
    let senders = u64::from(params.senders_per_shard) * SHARDS;
    within(workload, "senders", senders, 1)?;
    let (m, mut first) = (params.messages, 1);
    Ok((0..senders)
        .map(|j| {
            let share = m / senders + u64::from(j < m % senders);
            first += share;
            (first - share, first - 1)
        })
        .collect())
}

/// What the fan-in collector counted: (count, sum, elapsed, its messages by sender CPU).
pub(in crate::peers) type FanInTally = (u64, u64, Duration, CrossCount);

/// The collector's bookkeeping (the count and sum of `crate::fan_in::Collector`).
pub(in crate::peers) struct CollectorBook {
    expected: u64,
    started: Instant,
    tally: FanInTally,
}

impl CollectorBook {
    /// Starts the clock for `expected` messages.
    pub(in crate::peers) fn start(expected: u64) -> Self {
        Self { expected, started: Instant::now(), tally: Default::default() }
    }

    /// The tally, once every message is counted (at once for none).
    pub(in crate::peers) fn done(&self) -> Option<FanInTally> {
        let t = self.tally;
        (t.0 == self.expected).then(|| (t.0, t.1, self.started.elapsed(), t.3))
    }

    /// Counts `value` (sent from `cpu`); the tally once every message is counted.
    pub(in crate::peers) fn add(&mut self, value: u64, cpu: usize) -> Option<FanInTally> {
        let t = &mut self.tally;
        (t.0, t.1) = (t.0 + 1, t.1.wrapping_add(value));
        t.3.note(cpu);
        self.done()
    }
}

/// Checks a fan-in run: the collector's (count, sum, elapsed, cross) and what each sender sent.
pub(in crate::peers) fn fan_in_checked(
    workload: &'static str,
    params: &FanInParams,
    (count, sum, elapsed, mut cross): FanInTally,
    shares: &[(u64, u64)],
    sent: &[(u64, CrossCount)],
) -> Result<PeerResult<PeerRate>, BenchError> {
    let m = params.messages;
    let expected = (u128::from(m) * (u128::from(m) + 1) / 2) as u64;
    if count != m || sum != expected {
        return Err(BenchError::check(
            workload,
            format!("collected {count} messages summing to {sum}; expected {m} summing to {expected}"),
        ));
    }
    for (j, (&(first, last), &(s, c))) in shares.iter().zip(sent).enumerate() {
        if s != last + 1 - first {
            return Err(BenchError::check(workload, format!("sender {j} sent {s}; expected {}", last + 1 - first)));
        }
        cross.add(c);
    }
    if sent.len() != shares.len() {
        return Err(BenchError::check(workload, format!("{} senders counted of {}", sent.len(), shares.len())));
    }
    Ok(rate(params.placement, m, elapsed, cross))
}
