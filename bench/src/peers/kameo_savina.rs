//! The kameo peer's Savina workloads: kameo actors (`#[derive(Actor)]` plus one `Message<T>`
//! impl per message type, spawned on bounded mailboxes of [`CAPACITY`](super::tokio_peer::CAPACITY) by
//! [`super::kameo_peer`]'s `spawn`; one-way messages with `tell(..).await`, which waits while
//! the target's mailbox is full; requests with `ask`; deferred answers with
//! `Context::reply_sender`), on the tokio runtimes the tokio version uses
//! ([`super::tokio_savina`]: for `Cross`, actor `k` on one of two spinning pinned
//! `current_thread` runtimes, `k % 2`, in chameneos, big, fj-throughput and fan-in; two pinned
//! `multi_thread` workers, where tokio places each actor's task, in fj-create and fib). The
//! bookkeeping, limits and checks are those of the tokio version
//! ([`super::tokio_savina::shared`]), so all three tokio-based peers run and check alike.
//!
//! Per workload (parameters, timed span and checks of the Nexus module named):
//!
//! - **chameneos** (`crate::chameneos`): a mall actor and one actor per creature; the host asks
//!   the mall to run, which starts the clock and tells `Start` to every creature; a meeting
//!   request carries the creature's `ActorRef`. Timed from the first `Start` to the last
//!   report; rate = mall meeting requests per second. Checks: reports, meetings, pairings, the
//!   complement rule.
//! - **big** (`crate::big`): a sink actor (the driver) and one actor per agent, pinging
//!   neighbours drawn by the Nexus xorshift; a ping carries its sender's index. The host first
//!   gives every agent the table of all (acknowledged and untimed, as Savina's
//!   `NeighborMessage`), so a ping never reaches an agent that cannot answer it yet. Timed from
//!   the first `Start` to the last report; rate = (pings + pongs) per second. Checks: every
//!   report, and the pings answered.
//! - **fj-throughput** (`crate::fork_join`): a driver actor tells `messages` messages to each
//!   worker actor, round-robin `burst / agents` at a time, in its run handler; the bounded
//!   mailboxes are the flow control (`window` is the Nexus engine's); each worker tells `Done`
//!   at its last. Timed from the first tell to the last `Done`; rate = messages per second.
//!   Checks: every worker handled exactly `messages`.
//! - **fj-create** (`crate::fork_join`): a driver task spawns `agents` actors, tells each one
//!   message and yields every `burst` spawns; the actor computes, counts itself and stops
//!   itself (`stop_gracefully` on its own ref). Timed from the first spawn to the last count;
//!   rate = spawn + message + stop per second. Checks: the count, and the runtime's live tasks
//!   fall back.
//! - **fib** (`crate::fib`): one actor per call; a call spawns its children with its own
//!   `ActorRef` as their parent, tells them their argument, and tells its answer to its parent
//!   before stopping itself; the host asks the driver actor. Timed from the root's spawn to its
//!   answer; rate = calls per second. Checks: fib(n), the calls, nothing lost, and the
//!   runtime's live tasks fall back.
//! - **fan-in** (`crate::fan_in`): `2 * senders_per_shard` sender actors tell their share of
//!   `1..=messages` to one collector actor, whose bounded mailbox is the flow control (no
//!   credits). Timed from the collector's first `Start` to its counting the last message; rate
//!   = messages per second. Checks: count, sum, and every sender's share.
//!
//! No mailbox can fill in a way that deadlocks: at most one message per agent is on its way to
//! a mall, sink or driver (hence [`MAX_AGENTS`](super::tokio_savina::shared::MAX_AGENTS)). A
//! failed `tell` (only to a stopped actor) is counted where the driver sends, and elsewhere
//! stalls the run, which the time limit then reports as a failed check. Per message (see
//! [`super::kameo_peer`]): two allocations (the boxed message and the boxed handler future), an
//! `ActorRef` clone into the envelope, and one uncontended lock in the bounded mailbox's
//! `recv`; `ask` adds a oneshot and a boxed reply.

use super::kameo_peer::{spawn_at, stop};
use super::tokio_pair::run_placed;
use super::tokio_savina::shared::{
    big_checked, big_size, chameneos_checked, chameneos_size, fan_in_checked, fan_in_shares, sum_cross, BigBook,
    BigStep, BigTally, Chameneo, ChameneosTally, CollectorBook, FanInTally, MallBook, Meeting, SinkBook,
};
use super::{current_cpu, CrossCount, PeerCpus, PeerRate, PeerResult};
use crate::big::BigParams;
use crate::chameneos::{ChameneosParams, Colour};
use crate::fan_in::FanInParams;
use crate::setup;
use crate::BenchError;
use kameo::actor::ActorRef;
use kameo::message::{Context, Message};
use kameo::reply::{DelegatedReply, ReplySender};
use kameo::Actor;
use std::sync::Arc;
use std::time::Duration;

mod forks;

pub use self::forks::{fib, fj_create, fj_throughput};

/// Timeout for the requests that do no measured work (counts).
const QUICK: Duration = Duration::from_secs(10);

/// Stops every actor of `actors` (mailbox drained first) and waits until each has stopped.
async fn stop_each<A: Actor>(workload: &'static str, actors: &[ActorRef<A>]) -> Result<(), BenchError> {
    for actor in actors {
        stop(workload, actor).await?;
    }
    Ok(())
}

/// A failed check of `workload`: `what` could not be asked.
fn unanswered(workload: &'static str, what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::check(workload, format!("{what}: {e}"))
}

/// (To the mall) start the creatures and arrange `meetings`; the reply comes at the last report.
struct RunMeetings(Vec<ActorRef<Creature>>, u64);
/// (To the mall) a creature of this colour asks to meet.
struct MeetMall(Colour, ActorRef<Creature>, usize);
/// (To the mall) a creature exited with (meetings, violations).
struct Report(u64, u64, usize);

/// The mall's run: its book, and where the reply goes.
type MallRun = (MallBook<ActorRef<Creature>>, ReplySender<Box<ChameneosTally>>);

/// Pairs creatures; the driver of the run.
#[derive(Actor, Default)]
struct Mall {
    run: Option<MallRun>,
}

impl Message<RunMeetings> for Mall {
    type Reply = DelegatedReply<Box<ChameneosTally>>;

    async fn handle(
        &mut self,
        RunMeetings(creatures, meetings): RunMeetings,
        ctx: &mut Context<Self, Self::Reply>,
    ) -> Self::Reply {
        let (delegated, reply) = ctx.reply_sender();
        if let Some(reply) = reply {
            let mut book = MallBook::start(creatures.len(), meetings);
            for c in &creatures {
                book.tally.failed += u64::from(c.tell(Start(current_cpu())).await.is_err());
            }
            self.run = Some((book, reply));
        }
        delegated
    }
}

impl Message<MeetMall> for Mall {
    type Reply = ();

    async fn handle(&mut self, MeetMall(colour, from, cpu): MeetMall, _: &mut Context<Self, ()>) {
        let Some((book, _)) = &mut self.run else { return };
        let sent = match book.meet(from, cpu) {
            Meeting::Wait => true,
            Meeting::Pair { waiting, newcomer } => {
                waiting.tell(MeetPartner(colour, newcomer, current_cpu())).await.is_ok()
            }
            Meeting::Exit(to) => to.tell(Exit(current_cpu())).await.is_ok(),
        };
        book.tally.failed += u64::from(!sent);
    }
}

impl Message<Report> for Mall {
    type Reply = ();

    async fn handle(&mut self, Report(meetings, violations, cpu): Report, _: &mut Context<Self, ()>) {
        let Some((book, _)) = &mut self.run else { return };
        if let Some(tally) = book.report(meetings, violations, cpu) {
            if let Some((_, reply)) = self.run.take() {
                reply.send(Box::new(tally));
            }
        }
    }
}

/// (To a creature) ask the mall for a first meeting.
struct Start(usize);
/// (From the mall) meet this creature of this colour.
struct MeetPartner(Colour, ActorRef<Creature>, usize);
/// (From the partner) the new colour and the partner's colour before.
struct Change(Colour, Colour, usize);
/// No more meetings: report.
struct Exit(usize);
/// Asks for a cross count.
struct Count;

/// One chameneos.
#[derive(Actor)]
struct Creature {
    me: Chameneo,
    mall: ActorRef<Mall>,
}

impl Creature {
    /// Asks the mall to meet, as `myself`.
    async fn ask_mall(&self, myself: ActorRef<Creature>) {
        let _ = self.mall.tell(MeetMall(self.me.colour, myself, current_cpu())).await;
    }
}

impl Message<Start> for Creature {
    type Reply = ();

    async fn handle(&mut self, Start(cpu): Start, ctx: &mut Context<Self, ()>) {
        self.me.cross.note(cpu);
        self.ask_mall(ctx.actor_ref()).await;
    }
}

impl Message<MeetPartner> for Creature {
    type Reply = ();

    async fn handle(&mut self, MeetPartner(colour, from, cpu): MeetPartner, ctx: &mut Context<Self, ()>) {
        self.me.cross.note(cpu);
        let (colour, partner_was) = self.me.met(colour);
        let _ = from.tell(Change(colour, partner_was, current_cpu())).await;
        self.ask_mall(ctx.actor_ref()).await;
    }
}

impl Message<Change> for Creature {
    type Reply = ();

    async fn handle(&mut self, Change(colour, partner_was, cpu): Change, ctx: &mut Context<Self, ()>) {
        self.me.cross.note(cpu);
        self.me.changed(colour, partner_was);
        self.ask_mall(ctx.actor_ref()).await;
    }
}

impl Message<Exit> for Creature {
    type Reply = ();

    async fn handle(&mut self, Exit(cpu): Exit, _: &mut Context<Self, ()>) {
        self.me.cross.note(cpu);
        let _ = self.mall.tell(Report(self.me.meetings, self.me.violations, current_cpu())).await;
    }
}

impl Message<Count> for Creature {
    type Reply = Box<CrossCount>;

    async fn handle(&mut self, _: Count, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        Box::new(self.me.cross)
    }
}

/// Chameneos: a mall actor pairs creature actors (see the module documentation).
pub fn chameneos(params: &ChameneosParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "kameo chameneos";
    let n = chameneos_size(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(params.meetings, Duration::from_micros(50)) + QUICK;
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let mall = spawn_at(&sites, 0, Mall::default());
        let creatures: Vec<_> =
            (0..n).map(|i| spawn_at(&sites, i + 1, Creature { me: Chameneo::new(i), mall: mall.clone() })).collect();
        let tally = mall.ask(RunMeetings(creatures.clone(), params.meetings)).await;
        let tally = tally.map_err(|e| unanswered(WORKLOAD, "run the meetings", e));
        let mut counts = Vec::with_capacity(n);
        for c in &creatures {
            counts.push(c.ask(Count).reply_timeout(QUICK).await.map_err(|e| unanswered(WORKLOAD, "count", e)));
        }
        stop_each(WORKLOAD, &creatures).await?;
        stop(WORKLOAD, &mall).await?;
        let counts = counts.into_iter().map(|c| c.map(|c| *c)).collect::<Result<Vec<_>, _>>()?;
        chameneos_checked(WORKLOAD, &params, *tally?, sum_cross(counts))
    })
}

/// (To the sink) start every agent, `pings` each; the reply comes at the last report.
struct RunPings(Arc<[ActorRef<BigAgent>]>, u64);
/// (To the sink) an agent is done: (pings sent, pongs received, sender's CPU).
struct AgentDone(u64, u64, usize);

/// Counts the agents' reports; the driver of the run.
#[derive(Actor, Default)]
struct Sink {
    run: Option<(SinkBook, ReplySender<Box<BigTally>>)>,
}

impl Message<RunPings> for Sink {
    type Reply = DelegatedReply<Box<BigTally>>;

    async fn handle(&mut self, RunPings(agents, pings): RunPings, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let (delegated, reply) = ctx.reply_sender();
        if let Some(reply) = reply {
            self.run = Some((SinkBook::start(agents.len(), pings), reply));
            for agent in agents.iter() {
                let _ = agent.tell(StartPings(pings, current_cpu())).await;
            }
        }
        delegated
    }
}

impl Message<AgentDone> for Sink {
    type Reply = ();

    async fn handle(&mut self, AgentDone(sent, pongs, cpu): AgentDone, _: &mut Context<Self, ()>) {
        let Some((book, _)) = &mut self.run else { return };
        if let Some(tally) = book.done(sent, pongs, cpu) {
            if let Some((_, reply)) = self.run.take() {
                reply.send(Box::new(tally));
            }
        }
    }
}

/// (To an agent) ping random neighbours among these, this many times, then report.
struct StartPings(u64, usize);
/// (Before the run) every agent, by index.
struct Neighbours(Arc<[ActorRef<BigAgent>]>);
/// Agent `from` pings (from the CPU given): answer it.
struct Ping(usize, usize);
/// The answer to this agent's ping.
struct Pong(usize);
/// Asks for (pings answered, cross count).
struct Answered;

/// One agent of the run.
#[derive(Actor)]
struct BigAgent {
    book: BigBook,
    peers: Arc<[ActorRef<BigAgent>]>,
    sink: ActorRef<Sink>,
}

impl BigAgent {
    /// Pings the next neighbour, or reports.
    async fn step(&mut self, step: BigStep) {
        match step {
            BigStep::Ping(to) => {
                if let Some(peer) = self.peers.get(to) {
                    let _ = peer.tell(Ping(self.book.index, current_cpu())).await;
                }
            }
            BigStep::Report => {
                let _ = self.sink.tell(AgentDone(self.book.sent, self.book.pongs, current_cpu())).await;
            }
        }
    }
}

impl Message<Neighbours> for BigAgent {
    type Reply = ();

    async fn handle(&mut self, Neighbours(peers): Neighbours, _: &mut Context<Self, ()>) {
        self.peers = peers;
    }
}

impl Message<StartPings> for BigAgent {
    type Reply = ();

    async fn handle(&mut self, StartPings(pings, cpu): StartPings, _: &mut Context<Self, ()>) {
        let step = self.book.start(pings, cpu);
        self.step(step).await;
    }
}

impl Message<Ping> for BigAgent {
    type Reply = ();

    async fn handle(&mut self, Ping(from, cpu): Ping, _: &mut Context<Self, ()>) {
        self.book.ping(cpu);
        if let Some(peer) = self.peers.get(from) {
            let _ = peer.tell(Pong(current_cpu())).await;
        }
    }
}

impl Message<Pong> for BigAgent {
    type Reply = ();

    async fn handle(&mut self, Pong(cpu): Pong, _: &mut Context<Self, ()>) {
        let step = self.book.pong(cpu);
        self.step(step).await;
    }
}

impl Message<Answered> for BigAgent {
    type Reply = (u64, CrossCount);

    async fn handle(&mut self, _: Answered, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        (self.book.answered, self.book.cross)
    }
}

/// Big: agent actors ping random neighbours (see the module documentation).
pub fn big(params: &BigParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "kameo big";
    let n = big_size(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(n as u64 * params.pings, Duration::from_micros(5)) + QUICK;
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let sink = spawn_at(&sites, 0, Sink::default());
        let agents: Vec<_> = (0..n)
            .map(|i| {
                let agent = BigAgent { book: BigBook::new(i, n), peers: Arc::from(Vec::new()), sink: sink.clone() };
                spawn_at(&sites, i + 1, agent)
            })
            .collect();
        // Every agent knows every other before any ping can reach it (as Savina's `NeighborMessage`).
        let all: Arc<[_]> = agents.iter().cloned().collect();
        let mut linked = Ok(());
        for a in &agents {
            let link = a.ask(Neighbours(all.clone())).reply_timeout(QUICK).await;
            linked = link.map_err(|e| unanswered(WORKLOAD, "link the agents", e));
            if linked.is_err() {
                break;
            }
        }
        let tally = match linked {
            Ok(()) => sink.ask(RunPings(all, params.pings)).await.map_err(|e| unanswered(WORKLOAD, "run the pings", e)),
            Err(e) => Err(e),
        };
        let mut counts = Vec::with_capacity(n);
        for a in &agents {
            counts.push(a.ask(Answered).reply_timeout(QUICK).await.map_err(|e| unanswered(WORKLOAD, "count", e)));
        }
        stop_each(WORKLOAD, &agents).await?;
        stop(WORKLOAD, &sink).await?;
        let counts = counts.into_iter().collect::<Result<Vec<_>, _>>()?;
        let answered = counts.iter().map(|c| c.0).sum();
        big_checked(WORKLOAD, &params, *tally?, answered, sum_cross(counts.into_iter().map(|c| c.1)))
    })
}

/// (To the collector) start every sender on its share; the reply comes at the last message.
struct RunFanIn(Vec<(ActorRef<FanInSender>, (u64, u64))>, u64);
/// (To the collector) one value, and its sender's CPU.
struct Add(u64, usize);

/// Counts and sums the values; the driver of the run.
#[derive(Actor, Default)]
struct Collector {
    run: Option<(CollectorBook, ReplySender<Box<FanInTally>>)>,
}

impl Message<RunFanIn> for Collector {
    type Reply = DelegatedReply<Box<FanInTally>>;

    async fn handle(
        &mut self,
        RunFanIn(senders, messages): RunFanIn,
        ctx: &mut Context<Self, Self::Reply>,
    ) -> Self::Reply {
        let (delegated, reply) = ctx.reply_sender();
        if let Some(reply) = reply {
            let book = CollectorBook::start(messages);
            for (sender, (first, last)) in &senders {
                let _ = sender.tell(StartSending(*first, *last, current_cpu())).await;
            }
            match book.done() {
                Some(tally) => reply.send(Box::new(tally)),
                None => self.run = Some((book, reply)),
            }
        }
        delegated
    }
}

impl Message<Add> for Collector {
    type Reply = ();

    async fn handle(&mut self, Add(value, cpu): Add, _: &mut Context<Self, ()>) {
        let Some((book, _)) = &mut self.run else { return };
        if let Some(tally) = book.add(value, cpu) {
            if let Some((_, reply)) = self.run.take() {
                reply.send(Box::new(tally));
            }
        }
    }
}

/// (To a sender) tell `first..=last` to the collector (sent from the CPU given).
struct StartSending(u64, u64, usize);
/// Asks a sender for (messages sent, cross count).
struct SentCount;

/// Tells its share of the values to the collector.
#[derive(Actor)]
struct FanInSender {
    collector: ActorRef<Collector>,
    sent: u64,
    cross: CrossCount,
}

impl Message<StartSending> for FanInSender {
    type Reply = ();

    async fn handle(&mut self, StartSending(first, last, cpu): StartSending, _: &mut Context<Self, ()>) {
        self.cross.note(cpu);
        for value in first..=last {
            if self.collector.tell(Add(value, current_cpu())).await.is_err() {
                break;
            }
            self.sent += 1;
        }
    }
}

impl Message<SentCount> for FanInSender {
    type Reply = (u64, CrossCount);

    async fn handle(&mut self, _: SentCount, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        (self.sent, self.cross)
    }
}

/// Fan-in: sender actors tell one collector actor (see the module documentation).
pub fn fan_in(params: &FanInParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "kameo fan-in";
    let shares = fan_in_shares(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(params.messages, Duration::from_micros(5)) + QUICK;
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let collector = spawn_at(&sites, 0, Collector::default());
        let senders: Vec<_> = shares
            .iter()
            .enumerate()
            .map(|(j, _)| {
                spawn_at(&sites, j, FanInSender { collector: collector.clone(), sent: 0, cross: CrossCount::default() })
            })
            .collect();
        let given = senders.iter().cloned().zip(shares.iter().copied()).collect();
        let total = collector.ask(RunFanIn(given, params.messages)).await;
        let total = total.map_err(|e| unanswered(WORKLOAD, "run the fan-in", e));
        let mut sent = Vec::with_capacity(senders.len());
        for s in &senders {
            sent.push(s.ask(SentCount).reply_timeout(QUICK).await.map_err(|e| unanswered(WORKLOAD, "count", e)));
        }
        stop_each(WORKLOAD, &senders).await?;
        stop(WORKLOAD, &collector).await?;
        let sent = sent.into_iter().collect::<Result<Vec<_>, _>>()?;
        fan_in_checked(WORKLOAD, &params, *total?, &shares, &sent)
    })
}

#[cfg(test)]
mod tests {
    use crate::peers::Peer;

    #[test]
    fn six_workloads_check_both_ways() {
        crate::peers::tokio_savina::tests::six_workloads(Peer::Kameo);
    }
}
