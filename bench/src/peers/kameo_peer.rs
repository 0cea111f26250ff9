//! The kameo peer: the three core workloads as kameo actors (`#[derive(Actor)]` plus one
//! `Message<T>` impl per message type, spawned with `Actor::spawn_with_mailbox` on a bounded
//! mailbox of [`CAPACITY`], the Nexus mailbox default; kameo's own default is 64), one-way
//! messages with `tell`, requests with `ask`, deferred answers with `Context::reply_sender`.
//! They run on the tokio runtimes of [`super::tokio_pair::run_placed`]: one `current_thread`
//! runtime for `Local`; for `Cross`, two spinning `current_thread` runtimes pinned to
//! `cpus.first` and `cpus.second`, actor `i` spawned on runtime `i % 2` (pinger and producer on
//! the first, ponger and tally on the second, ring member `i` on `i % 2`), so every message
//! crosses, as on Nexus. kameo runs each actor as a task on the runtime it was spawned from;
//! `crossed` shows how often a message was handled on another CPU than its sender's.
//!
//! Measuring: the pinger times each trip with the shared [`super::tokio_peer::PingClock`] (one
//! clock read per pong); the counting producer is a plain task telling `Add(i)` and then
//! asking for the total; agent 0 of the ring times the token's trip from its start to the
//! `Done` of the last hop. The checks are the Nexus ones (counts, sums, sequence numbers).
//! Every actor is stopped (`stop_gracefully`, `wait_for_shutdown`) and the runtime shut down
//! at the end of each run.
//!
//! Per message (checked in kameo 0.17.2's source): `tell` boxes the message
//! (`Box<dyn DynMessage>`, one allocation) and clones the target's `ActorRef` into the envelope
//! (seven `Arc`/sender-count increments, and decrements when it is dropped); the actor's loop
//! wraps each handler in `catch_unwind` and runs it through `handle_dyn`, which boxes the
//! handler's future (`BoxFuture`, a second allocation). The mailbox is a bounded tokio mpsc
//! channel, whose `recv` locks the semaphore's waiter-list mutex to return the permit (see
//! [`super::tokio_peer`]): one uncontended lock per message. `ask` adds a oneshot channel and
//! boxes the reply (`Box<dyn Any>`).

use super::tokio_pair::{run_placed, Sites};
use super::tokio_peer::{counted, panicked, ring_size, ringed, PingClock, CAPACITY};
use super::{current_cpu, CrossCount, PeerCpus, PeerLatency, PeerRate, PeerResult};
use crate::counting::CountingParams;
use crate::pingpong::PingPongParams;
use crate::setup;
use crate::thread_ring::ThreadRingParams;
use crate::BenchError;
use kameo::actor::ActorRef;
use kameo::mailbox;
use kameo::message::{Context, Message};
use kameo::reply::{DelegatedReply, ReplySender};
use kameo::Actor;
use std::time::{Duration, Instant};

/// Spawns `actor` on a bounded mailbox of [`CAPACITY`].
pub(super) fn spawn<A: Actor<Args = A>>(actor: A) -> ActorRef<A> {
    A::spawn_with_mailbox(actor, mailbox::bounded(CAPACITY))
}

/// Spawns `actor` (as [`spawn`]) as end `i` of `sites`: on that end's runtime.
pub(super) fn spawn_at<A: Actor<Args = A>>(sites: &Sites, i: usize, actor: A) -> ActorRef<A> {
    let _on = sites.of(i).enter();
    spawn(actor)
}

/// Stops `actor` once its mailbox is drained and waits until it has stopped.
pub(super) async fn stop<A: Actor>(workload: &'static str, actor: &ActorRef<A>) -> Result<(), BenchError> {
    actor.stop_gracefully().await.map_err(|e| panicked(workload, &e))?;
    actor.wait_for_shutdown().await;
    Ok(())
}

/// Starts the trips: the ponger to use and how many trips.
struct Run {
    ponger: ActorRef<Ponger>,
    round_trips: u64,
    warmup: u64,
}

/// A ping or a pong: sequence number and sender's CPU.
struct Ball(u64, usize);

/// Sends pings one at a time and times each trip.
#[derive(Actor, Default)]
struct Pinger {
    run: Option<(ActorRef<Ponger>, PingClock, ReplySender<Box<PingClock>>)>,
}

impl Pinger {
    /// Tells ping `next` to the ponger, or replies with the clock when there is none.
    async fn ping(&mut self, next: Option<u64>) {
        let Some((ponger, mut clock, reply)) = self.run.take() else { return };
        if let Some(seq) = next {
            if ponger.tell(Ball(seq, current_cpu())).await.is_ok() {
                self.run = Some((ponger, clock, reply));
                return;
            }
            clock.failed = true;
        }
        reply.send(Box::new(clock));
    }
}

impl Message<Run> for Pinger {
    type Reply = DelegatedReply<Box<PingClock>>;

    async fn handle(&mut self, msg: Run, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let (delegated, reply) = ctx.reply_sender();
        if let Some(reply) = reply {
            let (clock, next) = PingClock::start(msg.round_trips, msg.warmup);
            self.run = Some((msg.ponger, clock, reply));
            self.ping(next).await;
        }
        delegated
    }
}

impl Message<Ball> for Pinger {
    type Reply = ();

    async fn handle(&mut self, Ball(seq, cpu): Ball, _: &mut Context<Self, ()>) {
        let next = match &mut self.run {
            Some((_, clock, _)) => clock.pong(seq, cpu),
            None => return,
        };
        self.ping(next).await;
    }
}

/// Asks the ponger for (pings answered, cross count).
struct Count;

/// Answers every ping to its pinger.
#[derive(Actor)]
struct Ponger {
    pinger: ActorRef<Pinger>,
    answered: u64,
    cross: CrossCount,
}

impl Message<Ball> for Ponger {
    type Reply = ();

    async fn handle(&mut self, Ball(seq, cpu): Ball, _: &mut Context<Self, ()>) {
        self.cross.note(cpu);
        if self.pinger.tell(Ball(seq, current_cpu())).await.is_ok() {
            self.answered += 1;
        }
    }
}

impl Message<Count> for Ponger {
    type Reply = (u64, CrossCount);

    async fn handle(&mut self, _: Count, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        (self.answered, self.cross)
    }
}

/// Ping-pong between a pinger and a ponger actor, one message in flight.
pub fn pingpong(params: &PingPongParams, cpus: PeerCpus) -> Result<PeerResult<PeerLatency>, BenchError> {
    const WORKLOAD: &str = "kameo pingpong";
    let (round_trips, warmup) = (params.round_trips, params.warmup);
    let limit = setup::timeout_for(round_trips + warmup, Duration::from_micros(100));
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let pinger = spawn_at(&sites, 0, Pinger::default());
        let ponger = spawn_at(&sites, 1, Ponger { pinger: pinger.clone(), answered: 0, cross: CrossCount::default() });
        let run = Run { ponger: ponger.clone(), round_trips, warmup };
        let clock = pinger.ask(run).await.map_err(|e| BenchError::check(WORKLOAD, format!("run the pinger: {e}")));
        let counts = ponger.ask(Count).await.map_err(|e| BenchError::check(WORKLOAD, format!("count pings: {e}")));
        stop(WORKLOAD, &pinger).await?;
        stop(WORKLOAD, &ponger).await?;
        let (answered, cross) = counts?;
        clock?.finish(WORKLOAD, answered, cross)
    })
}

/// Counts one increment: the value and the sender's CPU.
struct Add(u64, usize);

/// Asks the tally for (count, sum, cross count).
struct Get;

/// Counts increments and sums them.
#[derive(Actor, Default)]
struct Tally {
    count: u64,
    sum: u64,
    cross: CrossCount,
}

impl Message<Add> for Tally {
    type Reply = ();

    async fn handle(&mut self, Add(n, cpu): Add, _: &mut Context<Self, ()>) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(n);
        self.cross.note(cpu);
    }
}

impl Message<Get> for Tally {
    type Reply = (u64, u64, CrossCount);

    async fn handle(&mut self, _: Get, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        (self.count, self.sum, self.cross)
    }
}

/// Counting: a producer task tells `messages` increments to a tally actor, then asks the total.
pub fn counting(params: &CountingParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "kameo counting";
    let n = params.messages;
    let limit = setup::timeout_for(n, Duration::from_micros(20));
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let tally = spawn_at(&sites, 1, Tally::default());
        let started = Instant::now();
        let mut total = Ok(());
        for i in 1..=n {
            if let Err(e) = tally.tell(Add(i, current_cpu())).await {
                total = Err(BenchError::check(WORKLOAD, format!("cannot tell an increment: {e}")));
                break;
            }
        }
        let total = match total {
            Ok(()) => tally.ask(Get).await.map_err(|e| BenchError::check(WORKLOAD, format!("get the total: {e}"))),
            Err(e) => Err(e),
        };
        let elapsed = started.elapsed();
        stop(WORKLOAD, &tally).await?;
        counted(WORKLOAD, n, total?, elapsed)
    })
}

/// Sets a ring agent's successor and agent 0.
struct Link(ActorRef<RingAgent>, ActorRef<RingAgent>);
/// (Agent 0) sends the token around for the hops given; replies with the elapsed time.
struct Start(u64);
/// The token: hops still to go after this one, sender's CPU.
struct Token(u64, usize);
/// (To agent 0) the last hop arrived.
struct Done;
/// Asks an agent for (hops counted, forwards failed, cross count).
struct Counts;

/// One agent of the ring.
#[derive(Actor, Default)]
struct RingAgent {
    next: Option<ActorRef<RingAgent>>,
    leader: Option<ActorRef<RingAgent>>,
    hops: u64,
    failed: u64,
    cross: CrossCount,
    started: Option<(Instant, ReplySender<Box<Duration>>)>,
}

impl Message<Link> for RingAgent {
    type Reply = ();

    async fn handle(&mut self, Link(next, leader): Link, _: &mut Context<Self, ()>) {
        self.next = Some(next);
        self.leader = Some(leader);
    }
}

impl Message<Start> for RingAgent {
    type Reply = DelegatedReply<Box<Duration>>;

    async fn handle(&mut self, Start(hops): Start, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        if hops == 0 {
            return ctx.reply(Box::new(Duration::ZERO));
        }
        let (delegated, reply) = ctx.reply_sender();
        if let Some(reply) = reply {
            self.started = Some((Instant::now(), reply));
            let sent = match &self.next {
                Some(next) => next.tell(Token(hops - 1, current_cpu())).await.is_ok(),
                None => false,
            };
            self.failed += u64::from(!sent);
        }
        delegated
    }
}

impl Message<Token> for RingAgent {
    type Reply = ();

    async fn handle(&mut self, Token(left, cpu): Token, _: &mut Context<Self, ()>) {
        self.hops += 1;
        self.cross.note(cpu);
        let sent = if left == 0 {
            // The leader may be this agent: `try_send`, as kameo advises for bounded self-sends.
            self.leader.as_ref().is_some_and(|leader| leader.tell(Done).try_send().is_ok())
        } else {
            match &self.next {
                Some(next) => next.tell(Token(left - 1, current_cpu())).await.is_ok(),
                None => false,
            }
        };
        self.failed += u64::from(!sent);
    }
}

impl Message<Done> for RingAgent {
    type Reply = ();

    async fn handle(&mut self, _: Done, _: &mut Context<Self, ()>) {
        if let Some((started, reply)) = self.started.take() {
            reply.send(Box::new(started.elapsed()));
        }
    }
}

impl Message<Counts> for RingAgent {
    type Reply = (u64, u64, CrossCount);

    async fn handle(&mut self, _: Counts, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        (self.hops, self.failed, self.cross)
    }
}

/// Links the ring, runs it and sums the counts: (elapsed, (hops, failed, cross)).
async fn run_ring(
    workload: &'static str,
    ring: &[ActorRef<RingAgent>],
    hops: u64,
) -> Result<(Duration, (u64, u64, CrossCount)), BenchError> {
    let leader = &ring[0];
    for (i, agent) in ring.iter().enumerate() {
        let link = Link(ring[(i + 1) % ring.len()].clone(), leader.clone());
        agent.ask(link).await.map_err(|e| BenchError::check(workload, format!("link the ring: {e}")))?;
    }
    let elapsed = leader.ask(Start(hops)).await.map_err(|e| BenchError::check(workload, format!("run the ring: {e}")));
    let mut totals = (0, 0, CrossCount::default());
    for agent in ring {
        let (h, f, c) = agent.ask(Counts).await.map_err(|e| BenchError::check(workload, format!("count hops: {e}")))?;
        totals.0 += h;
        totals.1 += f;
        totals.2.add(c);
    }
    Ok((*elapsed?, totals))
}

/// Thread-ring: `agents` actors pass one token `hops` times around.
pub fn thread_ring(params: &ThreadRingParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "kameo thread-ring";
    let agents = ring_size(WORKLOAD, params)?;
    let hops = params.hops;
    let limit = setup::timeout_for(hops, Duration::from_micros(100)) + Duration::from_secs(10);
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let ring: Vec<_> = (0..agents).map(|i| spawn_at(&sites, i, RingAgent::default())).collect();
        let result = run_ring(WORKLOAD, &ring, hops).await;
        for agent in &ring {
            stop(WORKLOAD, agent).await?;
        }
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
            let PeerResult::Ran(lat) = out else { panic!("kameo pingpong skipped {placement:?}") };
            assert_eq!(lat.rtt.samples, 200);
            assert!(lat.rtt.p50_ns > 0.0 && lat.rtt.p50_ns <= lat.rtt.p99_ns);
            assert!((0.0..=1.0).contains(&lat.crossed));
        }
    }

    #[test]
    fn counting_counts_every_increment_both_ways() {
        for placement in Placement::BOTH {
            let out = counting(&CountingParams { messages: 1_000, burst: 256, placement }, CPUS).unwrap();
            let PeerResult::Ran(rate) = out else { panic!("kameo counting skipped {placement:?}") };
            assert!(rate.per_s > 0.0 && (0.0..=1.0).contains(&rate.crossed));
        }
    }

    #[test]
    fn the_token_makes_every_hop_both_ways() {
        for placement in Placement::BOTH {
            let out = thread_ring(&ThreadRingParams { agents: 10, hops: 100, placement }, CPUS).unwrap();
            let PeerResult::Ran(rate) = out else { panic!("kameo thread-ring skipped {placement:?}") };
            assert!(rate.per_s > 0.0 && (0.0..=1.0).contains(&rate.crossed));
        }
    }
}
