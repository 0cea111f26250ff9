//! The ractor peer: the three core workloads as ractor actors (`Actor` impls spawned with
//! `Actor::spawn`, one-way messages with `cast`, requests with `call` and an `RpcReplyPort`),
//! on the tokio runtimes of [`super::tokio_pair::run_placed`]: one `current_thread` runtime for
//! `Local`; for `Cross`, two spinning `current_thread` runtimes pinned to `cpus.first` and
//! `cpus.second`, actor `i` spawned on runtime `i % 2` (pinger and producer on the first, ponger
//! and tally on the second, ring member `i` on `i % 2`), so every message crosses, as on Nexus.
//! ractor runs each actor as a task on the runtime that spawned it; `crossed` shows how often a
//! message was handled on another CPU than its sender's.
//!
//! Measuring: the pinger times each trip with the shared [`super::tokio_peer::PingClock`] (one
//! clock read per pong); the counting producer is a plain task casting `Add(i)` and then
//! calling for the total; agent 0 of the ring times the token's trip from its start to the
//! `Done` of the last hop. The checks are the Nexus ones (counts, sums, sequence numbers).
//! Every actor is stopped and joined, and the runtime shut down, at the end of each run.
//!
//! Per message (checked in ractor 0.15.13's source): `cast` boxes the message into a
//! `Box<dyn Any + Send>` (one allocation) with the sender's current `tracing::Span` (the
//! default `message_span_propogation` feature), and pushes it on the actor's **unbounded**
//! tokio mpsc channel (ractor has no bounded mailbox, so the producer never waits); the
//! receiving loop boxes the `process_message` future (`Box::pin`, a second allocation per
//! message), polls the actor's four ports (signal, stop, supervision, messages) in a
//! `select!`, clones the `ActorRef` (an `Arc`), downcasts the message and races the handler
//! against the signal port. No lock per message: the unbounded channel counts with atomics
//! (unlike a bounded one, see [`super::tokio_peer`]), and the signal and stop ports' mutexes
//! are taken only when those are sent. `call` adds a oneshot channel per request.

use super::tokio_pair::{run_placed, Sites};
use super::tokio_peer::{counted, panicked, ring_size, ringed, PingClock};
use super::{current_cpu, CrossCount, PeerCpus, PeerLatency, PeerRate, PeerResult};
use crate::counting::CountingParams;
use crate::pingpong::PingPongParams;
use crate::setup;
use crate::thread_ring::ThreadRingParams;
use crate::BenchError;
use ractor::concurrency::JoinHandle;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};
use std::time::{Duration, Instant};

/// Timeout for a request that does no measured work (counts, links).
pub(super) const QUICK: Duration = Duration::from_secs(10);

/// Spawns `handler` with `args`, naming `workload` if it fails.
pub(super) async fn spawn<A: Actor>(
    workload: &'static str,
    handler: A,
    args: A::Arguments,
) -> Result<(ActorRef<A::Msg>, JoinHandle<()>), BenchError> {
    A::spawn(None, handler, args).await.map_err(|e| BenchError::check(workload, format!("cannot spawn an actor: {e}")))
}

/// Spawns `handler` with `args` as end `i` of `sites` (on that end's runtime).
pub(super) async fn spawn_at<A: Actor>(
    workload: &'static str,
    sites: &Sites,
    i: usize,
    handler: A,
    args: A::Arguments,
) -> Result<(ActorRef<A::Msg>, JoinHandle<()>), BenchError> {
    sites.spawn(i, spawn(workload, handler, args)).await.map_err(|e| panicked(workload, &e))?
}

/// The reply of a `call`, or why it did not come.
pub(super) fn answer<T, M>(
    workload: &'static str,
    what: &str,
    result: Result<CallResult<T>, MessagingErr<M>>,
) -> Result<T, BenchError> {
    match result {
        Ok(CallResult::Success(value)) => Ok(value),
        Ok(CallResult::Timeout) => Err(BenchError::check(workload, format!("{what}: timed out"))),
        Ok(CallResult::SenderError) => Err(BenchError::check(workload, format!("{what}: no reply"))),
        Err(e) => Err(BenchError::check(workload, format!("{what}: {e}"))),
    }
}

/// Stops `actors` and waits for their loops to end (a panicked loop is a failed check).
pub(super) async fn stop_all<M>(
    workload: &'static str,
    actors: Vec<(ActorRef<M>, JoinHandle<()>)>,
) -> Result<(), BenchError> {
    for (actor, _) in &actors {
        actor.stop(None);
    }
    for (_, join) in actors {
        join.await.map_err(|e| panicked(workload, &e))?;
    }
    Ok(())
}

/// Messages of the [`Pinger`].
enum PingerMsg {
    /// Run the trips with `ponger`, then reply with the clock.
    Run { ponger: ActorRef<PongerMsg>, round_trips: u64, warmup: u64, reply: RpcReplyPort<Box<PingClock>> },
    /// A pong: sequence number and sender's CPU.
    Pong(u64, usize),
}

/// Sends pings one at a time and times each trip.
struct Pinger;

/// The pinger's run in progress.
struct PingerRun {
    ponger: ActorRef<PongerMsg>,
    clock: PingClock,
    reply: RpcReplyPort<Box<PingClock>>,
}

impl PingerRun {
    /// Sends ping `next`, or replies with the clock when there is none (or the send failed).
    fn ping(mut self, next: Option<u64>) -> Option<Self> {
        if let Some(seq) = next {
            if self.ponger.cast(PongerMsg::Ping(seq, current_cpu())).is_ok() {
                return Some(self);
            }
            self.clock.failed = true;
        }
        let _ = self.reply.send(Box::new(self.clock));
        None
    }
}

impl Actor for Pinger {
    type Msg = PingerMsg;
    type State = Option<PingerRun>;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<PingerMsg>, _: ()) -> Result<Self::State, ActorProcessingErr> {
        Ok(None)
    }

    async fn handle(
        &self,
        _: ActorRef<PingerMsg>,
        msg: PingerMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PingerMsg::Run { ponger, round_trips, warmup, reply } => {
                let (clock, next) = PingClock::start(round_trips, warmup);
                *state = PingerRun { ponger, clock, reply }.ping(next);
            }
            PingerMsg::Pong(seq, cpu) => {
                if let Some(mut run) = state.take() {
                    let next = run.clock.pong(seq, cpu);
                    *state = run.ping(next);
                }
            }
        }
        Ok(())
    }
}

/// Messages of the [`Ponger`].
enum PongerMsg {
    /// A ping: sequence number and sender's CPU.
    Ping(u64, usize),
    /// Reply with (pings answered, cross count).
    Count(RpcReplyPort<(u64, CrossCount)>),
}

/// Answers every ping to the pinger it was started with.
struct Ponger;

/// The ponger's pinger and counts.
struct PongerState {
    pinger: ActorRef<PingerMsg>,
    answered: u64,
    cross: CrossCount,
}

impl Actor for Ponger {
    type Msg = PongerMsg;
    type State = PongerState;
    type Arguments = ActorRef<PingerMsg>;

    async fn pre_start(
        &self,
        _: ActorRef<PongerMsg>,
        pinger: ActorRef<PingerMsg>,
    ) -> Result<PongerState, ActorProcessingErr> {
        Ok(PongerState { pinger, answered: 0, cross: CrossCount::default() })
    }

    async fn handle(
        &self,
        _: ActorRef<PongerMsg>,
        msg: PongerMsg,
        s: &mut PongerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PongerMsg::Ping(seq, cpu) => {
                s.cross.note(cpu);
                if s.pinger.cast(PingerMsg::Pong(seq, current_cpu())).is_ok() {
                    s.answered += 1;
                }
            }
            PongerMsg::Count(reply) => {
                let _ = reply.send((s.answered, s.cross));
            }
        }
        Ok(())
    }
}

/// Ping-pong between a pinger and a ponger actor, one message in flight.
pub fn pingpong(params: &PingPongParams, cpus: PeerCpus) -> Result<PeerResult<PeerLatency>, BenchError> {
    const WORKLOAD: &str = "ractor pingpong";
    let (round_trips, warmup) = (params.round_trips, params.warmup);
    let limit = setup::timeout_for(round_trips + warmup, Duration::from_micros(100));
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let (pinger, pinger_join) = spawn_at(WORKLOAD, &sites, 0, Pinger, ()).await?;
        let (ponger, ponger_join) = spawn_at(WORKLOAD, &sites, 1, Ponger, pinger.clone()).await?;
        let to = ponger.clone();
        let run = |reply| PingerMsg::Run { ponger: to, round_trips, warmup, reply };
        let clock = answer(WORKLOAD, "run the pinger", pinger.call(run, None).await);
        let counts = answer(WORKLOAD, "count pings", ponger.call(PongerMsg::Count, Some(QUICK)).await);
        stop_all(WORKLOAD, vec![(pinger, pinger_join)]).await?;
        stop_all(WORKLOAD, vec![(ponger, ponger_join)]).await?;
        let (answered, cross) = counts?;
        clock?.finish(WORKLOAD, answered, cross)
    })
}

/// Messages of the [`Tally`].
enum TallyMsg {
    /// Count one and add the value (sent from the CPU given).
    Add(u64, usize),
    /// Reply with (count, sum, cross count).
    Get(RpcReplyPort<(u64, u64, CrossCount)>),
}

/// Counts increments and sums them.
struct Tally;

impl Actor for Tally {
    type Msg = TallyMsg;
    type State = (u64, u64, CrossCount);
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<TallyMsg>, _: ()) -> Result<Self::State, ActorProcessingErr> {
        Ok((0, 0, CrossCount::default()))
    }

    async fn handle(
        &self,
        _: ActorRef<TallyMsg>,
        msg: TallyMsg,
        s: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TallyMsg::Add(n, cpu) => {
                s.0 += 1;
                s.1 = s.1.wrapping_add(n);
                s.2.note(cpu);
            }
            TallyMsg::Get(reply) => {
                let _ = reply.send(*s);
            }
        }
        Ok(())
    }
}

/// Counting: a producer task casts `messages` increments to a tally actor, then calls for
/// the total.
pub fn counting(params: &CountingParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "ractor counting";
    let n = params.messages;
    let limit = setup::timeout_for(n, Duration::from_micros(20));
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let (tally, join) = spawn_at(WORKLOAD, &sites, 1, Tally, ()).await?;
        let started = Instant::now();
        let mut sent = Ok(());
        for i in 1..=n {
            if let Err(e) = tally.cast(TallyMsg::Add(i, current_cpu())) {
                sent = Err(BenchError::check(WORKLOAD, format!("cannot cast an increment: {e}")));
                break;
            }
        }
        let total = match sent {
            Ok(()) => answer(WORKLOAD, "get the total", tally.call(TallyMsg::Get, None).await),
            Err(e) => Err(e),
        };
        let elapsed = started.elapsed();
        stop_all(WORKLOAD, vec![(tally, join)]).await?;
        counted(WORKLOAD, n, total?, elapsed)
    })
}

/// Messages of a [`RingAgent`].
enum RingMsg {
    /// Set the successor and agent 0; acknowledge.
    Link(ActorRef<RingMsg>, ActorRef<RingMsg>, RpcReplyPort<()>),
    /// (Agent 0) send the token around for the hops given; reply with the elapsed time.
    Start(u64, RpcReplyPort<Duration>),
    /// The token: hops still to go after this one, sender's CPU.
    Token(u64, usize),
    /// (To agent 0) the last hop arrived.
    Done,
    /// Reply with (hops counted, forwards failed, cross count).
    Counts(RpcReplyPort<(u64, u64, CrossCount)>),
}

/// One agent of the ring.
struct RingAgent;

/// A ring agent's links, counts and (agent 0) run in progress.
#[derive(Default)]
struct RingState {
    next: Option<ActorRef<RingMsg>>,
    leader: Option<ActorRef<RingMsg>>,
    hops: u64,
    failed: u64,
    cross: CrossCount,
    started: Option<(Instant, RpcReplyPort<Duration>)>,
}

/// Casts `msg` to `to`; whether it was sent.
fn forward(to: &Option<ActorRef<RingMsg>>, msg: RingMsg) -> bool {
    to.as_ref().is_some_and(|to| to.cast(msg).is_ok())
}

impl Actor for RingAgent {
    type Msg = RingMsg;
    type State = RingState;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<RingMsg>, _: ()) -> Result<RingState, ActorProcessingErr> {
        Ok(RingState::default())
    }

    async fn handle(&self, _: ActorRef<RingMsg>, msg: RingMsg, s: &mut RingState) -> Result<(), ActorProcessingErr> {
        match msg {
            RingMsg::Token(left, cpu) => {
                s.hops += 1;
                s.cross.note(cpu);
                let sent = if left == 0 {
                    forward(&s.leader, RingMsg::Done)
                } else {
                    forward(&s.next, RingMsg::Token(left - 1, current_cpu()))
                };
                s.failed += u64::from(!sent);
            }
            RingMsg::Link(next, leader, reply) => {
                s.next = Some(next);
                s.leader = Some(leader);
                let _ = reply.send(());
            }
            RingMsg::Start(hops, reply) => {
                if hops == 0 {
                    let _ = reply.send(Duration::ZERO);
                } else {
                    s.started = Some((Instant::now(), reply));
                    s.failed += u64::from(!forward(&s.next, RingMsg::Token(hops - 1, current_cpu())));
                }
            }
            RingMsg::Done => {
                if let Some((started, reply)) = s.started.take() {
                    let _ = reply.send(started.elapsed());
                }
            }
            RingMsg::Counts(reply) => {
                let _ = reply.send((s.hops, s.failed, s.cross));
            }
        }
        Ok(())
    }
}

/// Thread-ring: `agents` actors pass one token `hops` times around.
pub fn thread_ring(params: &ThreadRingParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "ractor thread-ring";
    let agents = ring_size(WORKLOAD, params)?;
    let hops = params.hops;
    let limit = setup::timeout_for(hops, Duration::from_micros(100)) + QUICK;
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let mut ring = Vec::with_capacity(agents);
        for i in 0..agents {
            ring.push(spawn_at(WORKLOAD, &sites, i, RingAgent, ()).await?);
        }
        let leader = ring[0].0.clone();
        let mut result = Ok((Duration::ZERO, (0, 0, CrossCount::default())));
        for (i, (agent, _)) in ring.iter().enumerate() {
            let next = ring[(i + 1) % agents].0.clone();
            let link = |reply| RingMsg::Link(next, leader.clone(), reply);
            if let Err(e) = answer(WORKLOAD, "link the ring", agent.call(link, Some(QUICK)).await) {
                result = Err(e);
                break;
            }
        }
        if result.is_ok() {
            let elapsed =
                answer(WORKLOAD, "run the ring", leader.call(|reply| RingMsg::Start(hops, reply), None).await);
            let mut totals = (0, 0, CrossCount::default());
            for (agent, _) in &ring {
                let (h, f, c) = answer(WORKLOAD, "count hops", agent.call(RingMsg::Counts, Some(QUICK)).await)?;
                totals.0 += h;
                totals.1 += f;
                totals.2.add(c);
            }
            result = elapsed.map(|elapsed| (elapsed, totals));
        }
        drop(leader);
        stop_all(WORKLOAD, ring).await?;
        let (elapsed, totals) = result?;
        ringed(WORKLOAD, hops, totals, elapsed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::Placement;

    const CPUS: PeerCpus = PeerCpus { first: 0, second: 1, pin: false };

    #[test]
    fn pingpong_checks_every_trip_both_ways() {
        for placement in Placement::BOTH {
            let out = pingpong(&PingPongParams { round_trips: 200, warmup: 10, placement }, CPUS).unwrap();
            let PeerResult::Ran(lat) = out else { panic!("ractor pingpong skipped {placement:?}") };
            assert_eq!(lat.rtt.samples, 200);
            assert!(lat.rtt.p50_ns > 0.0 && lat.rtt.p50_ns <= lat.rtt.p99_ns);
            assert!((0.0..=1.0).contains(&lat.crossed));
        }
    }

    #[test]
    fn counting_counts_every_increment_both_ways() {
        for placement in Placement::BOTH {
            let out = counting(&CountingParams { messages: 1_000, burst: 256, placement }, CPUS).unwrap();
            let PeerResult::Ran(rate) = out else { panic!("ractor counting skipped {placement:?}") };
            assert!(rate.per_s > 0.0 && (0.0..=1.0).contains(&rate.crossed));
        }
    }

    #[test]
    fn the_token_makes_every_hop_both_ways() {
        for placement in Placement::BOTH {
            let out = thread_ring(&ThreadRingParams { agents: 10, hops: 100, placement }, CPUS).unwrap();
            let PeerResult::Ran(rate) = out else { panic!("ractor thread-ring skipped {placement:?}") };
            assert!(rate.per_s > 0.0 && (0.0..=1.0).contains(&rate.crossed));
        }
    }
}
