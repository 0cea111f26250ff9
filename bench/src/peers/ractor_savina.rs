//! The ractor peer's Savina workloads: ractor actors (`Actor` impls spawned with
//! `Actor::spawn`, one-way messages with `cast`, requests with `call` and an `RpcReplyPort`)
//! on the tokio runtimes the tokio version uses ([`super::tokio_savina`]: for `Cross`, actor `k`
//! on one of two spinning pinned `current_thread` runtimes, `k % 2`, in chameneos, big,
//! fj-throughput and fan-in; two pinned `multi_thread` workers, where tokio places each actor's
//! task, in fj-create and fib). The bookkeeping, limits and checks are those of the tokio
//! version ([`super::tokio_savina::shared`]), so all three tokio-based peers run and check alike.
//!
//! Per workload (parameters, timed span and checks of the Nexus module named):
//!
//! - **chameneos** (`crate::chameneos`): a mall actor and one actor per creature; the host calls
//!   the mall's `Run`, which starts the clock and casts `Start` to every creature; `Meet`
//!   carries the creature's `ActorRef`. Timed from the first `Start` to the last report; rate =
//!   mall `Meet` requests per second. Checks: reports, meetings, pairings, the complement rule.
//! - **big** (`crate::big`): a sink actor (the driver) and one actor per agent, pinging
//!   neighbours drawn by the Nexus xorshift; a ping carries its sender's index. The host first
//!   gives every agent the table of all (acknowledged and untimed, as Savina's
//!   `NeighborMessage`), so a ping never reaches an agent that cannot answer it yet. Timed from
//!   the first `Start` to the last report; rate = (pings + pongs) per second. Checks: every
//!   report, and the pings answered.
//! - **fj-throughput** (`crate::fork_join`): a driver actor casts `messages` messages to each
//!   worker actor, round-robin `burst / agents` at a time, in its `Run` handler (ractor's
//!   mailboxes are unbounded: the driver never waits, `window` has no use); each worker casts
//!   `Done` at its last. Timed from the first cast to the last `Done`; rate = messages per
//!   second. Checks: every worker handled exactly `messages`.
//! - **fj-create** (`crate::fork_join`): a driver task spawns `agents` actors, casts each one
//!   message and yields every `burst` spawns; the actor computes, counts itself and stops
//!   itself (`myself.stop`). Timed from the first spawn to the last count; rate = spawn +
//!   message + stop per second. Checks: the count, and the runtime's live tasks fall back.
//! - **fib** (`crate::fib`): one actor per call; a call spawns its children with its own
//!   `ActorRef` as their parent, casts them `Request(n)`, and casts its answer to its parent
//!   before stopping itself; the host calls the driver actor's `Run`. Timed from the root's
//!   spawn to its answer; rate = calls per second. Checks: fib(n), the calls, nothing lost,
//!   and the runtime's live tasks fall back.
//! - **fan-in** (`crate::fan_in`): `2 * senders_per_shard` sender actors cast their share of
//!   `1..=messages` to one collector actor in their `Start` handler (unbounded: no credits).
//!   Timed from the collector's first `Start` to its counting the last message; rate = messages
//!   per second. Checks: count, sum, and every sender's share.
//!
//! A failed `cast` (only to a stopped actor) is counted where the driver sends, and elsewhere
//! stalls the run, which the time limit then reports as a failed check. Per message (see
//! [`super::ractor_peer`]): two allocations (the boxed message and the boxed handler future),
//! no lock; a spawn also runs `pre_start` inline and allocates the actor's ports and task.

use super::ractor_peer::{answer, spawn_at, stop_all, QUICK};
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
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;
use std::time::Duration;

mod forks;

pub use self::forks::{fib, fj_create, fj_throughput};

/// A spawned actor and its loop's handle.
type Spawned<M> = (ActorRef<M>, JoinHandle<()>);

/// Calls every actor with `ask` (at most [`QUICK`] each) and returns the answers in order.
async fn gather<M: ractor::Message, T: Send + 'static>(
    workload: &'static str,
    what: &str,
    actors: &[Spawned<M>],
    ask: fn(RpcReplyPort<T>) -> M,
) -> Result<Vec<T>, BenchError> {
    let mut out = Vec::with_capacity(actors.len());
    for (actor, _) in actors {
        out.push(answer(workload, what, actor.call(ask, Some(QUICK)).await)?);
    }
    Ok(out)
}

/// Messages of the [`Mall`].
enum MallMsg {
    /// Start the creatures, arrange `meetings`, reply when every creature has reported.
    Run { creatures: Vec<ActorRef<CreatureMsg>>, meetings: u64, reply: RpcReplyPort<ChameneosTally> },
    /// A creature of `colour` asks to meet.
    Meet { colour: Colour, from: ActorRef<CreatureMsg>, cpu: usize },
    /// A creature exited with (meetings, violations).
    Report { meetings: u64, violations: u64, cpu: usize },
}

/// Pairs creatures; the driver of the run.
struct Mall;

impl Actor for Mall {
    type Msg = MallMsg;
    type State = Option<(MallBook<ActorRef<CreatureMsg>>, RpcReplyPort<ChameneosTally>)>;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<MallMsg>, _: ()) -> Result<Self::State, ActorProcessingErr> {
        Ok(None)
    }

    async fn handle(
        &self,
        _: ActorRef<MallMsg>,
        msg: MallMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            MallMsg::Run { creatures, meetings, reply } => {
                let mut book = MallBook::start(creatures.len(), meetings);
                for c in &creatures {
                    book.tally.failed += u64::from(c.cast(CreatureMsg::Start(current_cpu())).is_err());
                }
                *state = Some((book, reply));
            }
            MallMsg::Meet { colour, from, cpu } => {
                let Some((book, _)) = state else { return Ok(()) };
                let sent = match book.meet(from, cpu) {
                    Meeting::Wait => Ok(()),
                    Meeting::Pair { waiting, newcomer } => {
                        waiting.cast(CreatureMsg::Meet { colour, from: newcomer, cpu: current_cpu() })
                    }
                    Meeting::Exit(to) => to.cast(CreatureMsg::Exit(current_cpu())),
                };
                book.tally.failed += u64::from(sent.is_err());
            }
            MallMsg::Report { meetings, violations, cpu } => {
                let Some((book, _)) = state else { return Ok(()) };
                if let Some(tally) = book.report(meetings, violations, cpu) {
                    if let Some((_, reply)) = state.take() {
                        let _ = reply.send(tally);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Messages of a [`Creature`].
enum CreatureMsg {
    /// Ask the mall for a first meeting.
    Start(usize),
    /// (From the mall) meet `from`, of `colour`.
    Meet { colour: Colour, from: ActorRef<CreatureMsg>, cpu: usize },
    /// (From the partner) the new colour and the partner's colour before.
    Change { colour: Colour, partner_was: Colour, cpu: usize },
    /// No more meetings: report.
    Exit(usize),
    /// Reply with the cross count.
    Count(RpcReplyPort<CrossCount>),
}

/// One chameneos.
struct Creature;

impl Actor for Creature {
    type Msg = CreatureMsg;
    type State = (Chameneo, ActorRef<MallMsg>);
    type Arguments = (usize, ActorRef<MallMsg>);

    async fn pre_start(
        &self,
        _: ActorRef<CreatureMsg>,
        (index, mall): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok((Chameneo::new(index), mall))
    }

    async fn handle(
        &self,
        myself: ActorRef<CreatureMsg>,
        msg: CreatureMsg,
        (me, mall): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CreatureMsg::Start(cpu) => me.cross.note(cpu),
            CreatureMsg::Meet { colour, from, cpu } => {
                me.cross.note(cpu);
                let (colour, partner_was) = me.met(colour);
                let _ = from.cast(CreatureMsg::Change { colour, partner_was, cpu: current_cpu() });
            }
            CreatureMsg::Change { colour, partner_was, cpu } => {
                me.cross.note(cpu);
                me.changed(colour, partner_was);
            }
            CreatureMsg::Exit(cpu) => {
                me.cross.note(cpu);
                let _ =
                    mall.cast(MallMsg::Report { meetings: me.meetings, violations: me.violations, cpu: current_cpu() });
                return Ok(());
            }
            CreatureMsg::Count(reply) => {
                let _ = reply.send(me.cross);
                return Ok(());
            }
        }
        let _ = mall.cast(MallMsg::Meet { colour: me.colour, from: myself, cpu: current_cpu() });
        Ok(())
    }
}

/// Chameneos: a mall actor pairs creature actors (see the module documentation).
pub fn chameneos(params: &ChameneosParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "ractor chameneos";
    let n = chameneos_size(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(params.meetings, Duration::from_micros(50)) + QUICK;
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let mall = spawn_at(WORKLOAD, &sites, 0, Mall, ()).await?;
        let mut creatures = Vec::with_capacity(n);
        for i in 0..n {
            creatures.push(spawn_at(WORKLOAD, &sites, i + 1, Creature, (i, mall.0.clone())).await?);
        }
        let (refs, meetings) = (creatures.iter().map(|c| c.0.clone()).collect(), params.meetings);
        let run = |reply| MallMsg::Run { creatures: refs, meetings, reply };
        let tally = answer(WORKLOAD, "run the meetings", mall.0.call(run, None).await);
        let counts = gather(WORKLOAD, "count messages", &creatures, CreatureMsg::Count).await;
        stop_all(WORKLOAD, creatures).await?;
        stop_all(WORKLOAD, vec![mall]).await?;
        chameneos_checked(WORKLOAD, &params, tally?, sum_cross(counts?))
    })
}

/// Messages of the [`Sink`].
enum SinkMsg {
    /// Start every agent (`pings` each), reply when all have reported.
    Run { agents: Arc<[ActorRef<BigMsg>]>, pings: u64, reply: RpcReplyPort<BigTally> },
    /// An agent is done: (pings sent, pongs received, sender's CPU).
    Done(u64, u64, usize),
}

/// Counts the agents' reports; the driver of the run.
struct Sink;

impl Actor for Sink {
    type Msg = SinkMsg;
    type State = Option<(SinkBook, RpcReplyPort<BigTally>)>;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<SinkMsg>, _: ()) -> Result<Self::State, ActorProcessingErr> {
        Ok(None)
    }

    async fn handle(
        &self,
        _: ActorRef<SinkMsg>,
        msg: SinkMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SinkMsg::Run { agents, pings, reply } => {
                *state = Some((SinkBook::start(agents.len(), pings), reply));
                for agent in agents.iter() {
                    let _ = agent.cast(BigMsg::Start { pings, cpu: current_cpu() });
                }
            }
            SinkMsg::Done(sent, pongs, cpu) => {
                let Some((book, _)) = state else { return Ok(()) };
                if let Some(tally) = book.done(sent, pongs, cpu) {
                    if let Some((_, reply)) = state.take() {
                        let _ = reply.send(tally);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Messages of a [`BigAgent`].
enum BigMsg {
    /// (Before the run) every agent, by index; acknowledge.
    Link(Arc<[ActorRef<BigMsg>]>, RpcReplyPort<()>),
    /// Send `pings` pings to random neighbours, then report.
    Start { pings: u64, cpu: usize },
    /// Agent `from` pings: answer it.
    Ping { from: usize, cpu: usize },
    /// The answer to this agent's ping.
    Pong(usize),
    /// Reply with (pings answered, cross count).
    Answered(RpcReplyPort<(u64, CrossCount)>),
}

/// One agent of the run.
struct BigAgent;

impl Actor for BigAgent {
    type Msg = BigMsg;
    type State = (BigBook, Arc<[ActorRef<BigMsg>]>, ActorRef<SinkMsg>);
    type Arguments = (usize, usize, ActorRef<SinkMsg>);

    async fn pre_start(
        &self,
        _: ActorRef<BigMsg>,
        (index, agents, sink): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok((BigBook::new(index, agents), Arc::from(Vec::new()), sink))
    }

    async fn handle(
        &self,
        _: ActorRef<BigMsg>,
        msg: BigMsg,
        (book, peers, sink): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let step = match msg {
            BigMsg::Start { pings, cpu } => book.start(pings, cpu),
            BigMsg::Link(all, reply) => {
                *peers = all;
                let _ = reply.send(());
                return Ok(());
            }
            BigMsg::Pong(cpu) => book.pong(cpu),
            BigMsg::Ping { from, cpu } => {
                book.ping(cpu);
                let _ = peers.get(from).map(|p| p.cast(BigMsg::Pong(current_cpu())));
                return Ok(());
            }
            BigMsg::Answered(reply) => {
                let _ = reply.send((book.answered, book.cross));
                return Ok(());
            }
        };
        match step {
            BigStep::Ping(to) => {
                let _ = peers.get(to).map(|p| p.cast(BigMsg::Ping { from: book.index, cpu: current_cpu() }));
            }
            BigStep::Report => {
                let _ = sink.cast(SinkMsg::Done(book.sent, book.pongs, current_cpu()));
            }
        }
        Ok(())
    }
}

/// Big: agent actors ping random neighbours (see the module documentation).
pub fn big(params: &BigParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "ractor big";
    let n = big_size(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(n as u64 * params.pings, Duration::from_micros(5)) + QUICK;
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let sink = spawn_at(WORKLOAD, &sites, 0, Sink, ()).await?;
        let mut agents = Vec::with_capacity(n);
        for i in 0..n {
            agents.push(spawn_at(WORKLOAD, &sites, i + 1, BigAgent, (i, n, sink.0.clone())).await?);
        }
        let (all, pings): (Arc<[_]>, _) = (agents.iter().map(|a| a.0.clone()).collect(), params.pings);
        // Every agent knows every other before any ping can reach it (as Savina's `NeighborMessage`).
        let mut linked = Ok(());
        for (agent, _) in &agents {
            let link = |reply| BigMsg::Link(all.clone(), reply);
            linked = answer(WORKLOAD, "link the agents", agent.call(link, Some(QUICK)).await);
            if linked.is_err() {
                break;
            }
        }
        let run = |reply| SinkMsg::Run { agents: all, pings, reply };
        let tally = match linked {
            Ok(()) => answer(WORKLOAD, "run the pings", sink.0.call(run, None).await),
            Err(e) => Err(e),
        };
        let counts = gather(WORKLOAD, "count answered pings", &agents, BigMsg::Answered).await;
        stop_all(WORKLOAD, agents).await?;
        stop_all(WORKLOAD, vec![sink]).await?;
        let counts = counts?;
        let answered = counts.iter().map(|c| c.0).sum();
        big_checked(WORKLOAD, &params, tally?, answered, sum_cross(counts.into_iter().map(|c| c.1)))
    })
}

/// Messages of the [`Collector`].
enum CollectorMsg {
    /// Start every sender on its share, reply when `messages` are counted.
    Run { senders: Vec<(ActorRef<SenderMsg>, (u64, u64))>, messages: u64, reply: RpcReplyPort<FanInTally> },
    /// One value, and its sender's CPU.
    Add(u64, usize),
}

/// Counts and sums the values; the driver of the run.
struct Collector;

impl Actor for Collector {
    type Msg = CollectorMsg;
    type State = Option<(CollectorBook, RpcReplyPort<FanInTally>)>;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<CollectorMsg>, _: ()) -> Result<Self::State, ActorProcessingErr> {
        Ok(None)
    }

    async fn handle(
        &self,
        _: ActorRef<CollectorMsg>,
        msg: CollectorMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let tally = match msg {
            CollectorMsg::Run { senders, messages, reply } => {
                let book = CollectorBook::start(messages);
                for (sender, (first, last)) in &senders {
                    let _ = sender.cast(SenderMsg::Start { first: *first, last: *last, cpu: current_cpu() });
                }
                let tally = book.done();
                *state = Some((book, reply));
                tally
            }
            CollectorMsg::Add(value, cpu) => state.as_mut().and_then(|(book, _)| book.add(value, cpu)),
        };
        if let Some(tally) = tally {
            if let Some((_, reply)) = state.take() {
                let _ = reply.send(tally);
            }
        }
        Ok(())
    }
}

/// Messages of a [`FanInSender`].
enum SenderMsg {
    /// Cast `first..=last` to the collector.
    Start { first: u64, last: u64, cpu: usize },
    /// Reply with (messages sent, cross count).
    Sent(RpcReplyPort<(u64, CrossCount)>),
}

/// Casts its share of the values to the collector.
struct FanInSender;

impl Actor for FanInSender {
    type Msg = SenderMsg;
    type State = (ActorRef<CollectorMsg>, u64, CrossCount);
    type Arguments = ActorRef<CollectorMsg>;

    async fn pre_start(
        &self,
        _: ActorRef<SenderMsg>,
        collector: ActorRef<CollectorMsg>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok((collector, 0, CrossCount::default()))
    }

    async fn handle(
        &self,
        _: ActorRef<SenderMsg>,
        msg: SenderMsg,
        (collector, sent, cross): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SenderMsg::Start { first, last, cpu } => {
                cross.note(cpu);
                for value in first..=last {
                    if collector.cast(CollectorMsg::Add(value, current_cpu())).is_err() {
                        break;
                    }
                    *sent += 1;
                }
            }
            SenderMsg::Sent(reply) => {
                let _ = reply.send((*sent, *cross));
            }
        }
        Ok(())
    }
}

/// Fan-in: sender actors cast to one collector actor (see the module documentation).
pub fn fan_in(params: &FanInParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "ractor fan-in";
    let shares = fan_in_shares(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(params.messages, Duration::from_micros(5)) + QUICK;
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let collector = spawn_at(WORKLOAD, &sites, 0, Collector, ()).await?;
        let mut senders = Vec::with_capacity(shares.len());
        for j in 0..shares.len() {
            senders.push(spawn_at(WORKLOAD, &sites, j, FanInSender, collector.0.clone()).await?);
        }
        let given = senders.iter().map(|s| s.0.clone()).zip(shares.iter().copied()).collect();
        let messages = params.messages;
        let run = |reply| CollectorMsg::Run { senders: given, messages, reply };
        let total = answer(WORKLOAD, "run the fan-in", collector.0.call(run, None).await);
        let sent = gather(WORKLOAD, "count sent", &senders, SenderMsg::Sent).await;
        stop_all(WORKLOAD, senders).await?;
        stop_all(WORKLOAD, vec![collector]).await?;
        fan_in_checked(WORKLOAD, &params, total?, &shares, &sent?)
    })
}

#[cfg(test)]
mod tests {
    use crate::peers::Peer;

    #[test]
    fn six_workloads_check_both_ways() {
        crate::peers::tokio_savina::tests::six_workloads(Peer::Ractor);
    }
}
