//! The ractor peer's forking Savina workloads, fj-throughput, fj-create and fib (their
//! design, timing and checks are in [`super`]'s documentation): a child of the
//! `ractor_savina` module, which re-exports their functions, so that neither file grows past
//! the size the project keeps its files to.

use super::gather;
use crate::fib::FibParams;
use crate::fork_join::{self, CreateParams, ThroughputParams};
use crate::peers::ractor_peer::{answer, spawn, spawn_at, stop_all, QUICK};
use crate::peers::tokio_pair::run_placed;
use crate::peers::tokio_peer::run_on;
use crate::peers::tokio_savina::shared::{
    create_checked, fib_checked, fib_size, live_tasks, settled, sum_cross, throughput_checked, throughput_size,
    Created, FibAnswer, FibBook,
};
use crate::peers::{current_cpu, CrossCount, PeerCpus, PeerRate, PeerResult};
use crate::setup;
use crate::BenchError;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages of the [`Driver`].
enum DriverMsg {
    /// Cast `messages` to every worker, `per_round` at a time; reply (elapsed, failed casts)
    /// when every worker is done.
    Run { workers: Vec<ActorRef<WorkerMsg>>, messages: u64, per_round: u64, reply: RpcReplyPort<(Duration, u64)> },
    /// A worker handled its last message.
    Done,
}

/// Sends the work round-robin.
struct Driver;

impl Actor for Driver {
    type Msg = DriverMsg;
    type State = Option<(usize, u64, Instant, RpcReplyPort<(Duration, u64)>)>;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<DriverMsg>, _: ()) -> Result<Self::State, ActorProcessingErr> {
        Ok(None)
    }

    async fn handle(
        &self,
        _: ActorRef<DriverMsg>,
        msg: DriverMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DriverMsg::Run { workers, messages, per_round, reply } => {
                let (started, mut sent, mut failed) = (Instant::now(), 0, 0);
                while sent < messages {
                    let k = per_round.min(messages - sent);
                    for w in &workers {
                        for _ in 0..k {
                            failed += u64::from(w.cast(WorkerMsg::Work(current_cpu())).is_err());
                        }
                    }
                    sent += k;
                }
                *state = Some((workers.len(), failed, started, reply));
            }
            DriverMsg::Done => {
                let Some((left, ..)) = state else { return Ok(()) };
                *left -= 1;
                if *left == 0 {
                    if let Some((_, failed, started, reply)) = state.take() {
                        let _ = reply.send((started.elapsed(), failed));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Messages of a [`Worker`].
enum WorkerMsg {
    /// Compute once (sent from the CPU given).
    Work(usize),
    /// Reply with (messages handled, cross count).
    Count(RpcReplyPort<(u64, CrossCount)>),
}

/// Computes each message; casts `Done` to the driver at its last.
struct Worker;

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = (ActorRef<DriverMsg>, u64, u64, f64, CrossCount);
    type Arguments = (ActorRef<DriverMsg>, u64);

    async fn pre_start(
        &self,
        _: ActorRef<WorkerMsg>,
        (driver, target): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok((driver, target, 0, 0.0, CrossCount::default()))
    }

    async fn handle(
        &self,
        _: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        (driver, target, handled, acc, cross): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Work(cpu) => {
                *acc += fork_join::work();
                *handled += 1;
                cross.note(cpu);
                if *handled == *target {
                    let _ = driver.cast(DriverMsg::Done);
                }
                black_box(*acc);
            }
            WorkerMsg::Count(reply) => {
                let _ = reply.send((*handled, *cross));
            }
        }
        Ok(())
    }
}

/// Fork-join throughput: a driver actor casts every worker actor its messages (see the module
/// documentation).
pub fn fj_throughput(params: &ThroughputParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "ractor fj-throughput";
    let (n, per_round) = throughput_size(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(n as u64 * params.messages, Duration::from_micros(5)) + QUICK;
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let driver = spawn_at(WORKLOAD, &sites, 0, Driver, ()).await?;
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            workers.push(spawn_at(WORKLOAD, &sites, i + 1, Worker, (driver.0.clone(), params.messages)).await?);
        }
        let (refs, messages) = (workers.iter().map(|w| w.0.clone()).collect(), params.messages);
        let run = |reply| DriverMsg::Run { workers: refs, messages, per_round, reply };
        let ran = answer(WORKLOAD, "run fj-throughput", driver.0.call(run, None).await);
        let counts = gather(WORKLOAD, "count handled", &workers, WorkerMsg::Count).await;
        stop_all(WORKLOAD, workers).await?;
        stop_all(WORKLOAD, vec![driver]).await?;
        let ((elapsed, failed), counts) = (ran?, counts?);
        if failed > 0 {
            return Err(BenchError::check(WORKLOAD, format!("{failed} casts failed")));
        }
        let handled: Vec<_> = counts.iter().map(|c| c.0).collect();
        throughput_checked(WORKLOAD, &params, elapsed, &handled, sum_cross(counts.into_iter().map(|c| c.1)))
    })
}

/// Handles one message, counts it and stops itself.
struct OneShot;

impl Actor for OneShot {
    type Msg = usize;
    type State = Arc<Created>;
    type Arguments = Arc<Created>;

    async fn pre_start(&self, _: ActorRef<usize>, created: Arc<Created>) -> Result<Arc<Created>, ActorProcessingErr> {
        Ok(created)
    }

    async fn handle(
        &self,
        myself: ActorRef<usize>,
        cpu: usize,
        created: &mut Arc<Created>,
    ) -> Result<(), ActorProcessingErr> {
        created.handle(cpu);
        myself.stop(None);
        Ok(())
    }
}

/// Fork-join creation: spawn an actor, cast it one message; it counts itself and stops (see
/// the module documentation).
pub fn fj_create(params: &CreateParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "ractor fj-create";
    let params = params.clone();
    let limit = setup::timeout_for(params.agents, Duration::from_micros(20));
    run_on(WORKLOAD, params.placement, cpus, limit, move || async move {
        let (created, burst) = (Created::new(params.agents), u64::from(params.burst.max(1)));
        let before = live_tasks();
        let started = Instant::now();
        for k in 1..=params.agents {
            let (actor, _) = spawn(WORKLOAD, OneShot, created.clone()).await?;
            actor.cast(current_cpu()).map_err(|e| BenchError::check(WORKLOAD, format!("cannot cast: {e}")))?;
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

/// Messages of a [`FibCall`].
enum FibMsg {
    /// (Driver only) compute fib(n) with one actor per call; reply with the answer and the time.
    Run { n: u32, reply: RpcReplyPort<(FibAnswer, Duration)> },
    /// Compute fib of the argument (asked from the CPU given) and answer the parent.
    Request(u32, usize),
    /// A child's answer.
    Response(FibAnswer),
}

/// A call of the recursion, or (without a parent) the driver.
struct FibCall;

/// A call's parent, sums, and (driver) the run's start and reply.
type FibState = (Option<ActorRef<FibMsg>>, FibBook, Option<(Instant, RpcReplyPort<(FibAnswer, Duration)>)>);

/// Spawns a call with `parent` as its parent and asks it fib(`n`); whether that worked.
async fn spawn_call(parent: &ActorRef<FibMsg>, n: u32) -> bool {
    let Ok((child, _)) = Actor::spawn(None, FibCall, Some(parent.clone())).await else { return false };
    let asked = child.cast(FibMsg::Request(n, current_cpu())).is_ok();
    if !asked {
        child.stop(None);
    }
    asked
}

impl Actor for FibCall {
    type Msg = FibMsg;
    type State = FibState;
    type Arguments = Option<ActorRef<FibMsg>>;

    async fn pre_start(
        &self,
        _: ActorRef<FibMsg>,
        parent: Option<ActorRef<FibMsg>>,
    ) -> Result<FibState, ActorProcessingErr> {
        Ok((parent, FibBook::default(), None))
    }

    async fn handle(&self, myself: ActorRef<FibMsg>, msg: FibMsg, s: &mut FibState) -> Result<(), ActorProcessingErr> {
        let (parent, book, run) = s;
        match msg {
            FibMsg::Run { n, reply } => {
                let started = Instant::now();
                if spawn_call(&myself, n).await {
                    *run = Some((started, reply));
                } else {
                    let _ = reply.send((FibAnswer::default(), started.elapsed()));
                }
                return Ok(());
            }
            FibMsg::Response(mut answer) if parent.is_none() => {
                if let Some((started, reply)) = run.take() {
                    answer.cross.note(answer.cpu);
                    let _ = reply.send((answer, started.elapsed()));
                }
                return Ok(());
            }
            FibMsg::Request(n, cpu) => {
                *book = FibBook::request(n, cpu);
                if n > 1 {
                    for child in [n - 1, n - 2] {
                        if !spawn_call(&myself, child).await {
                            book.lost();
                        }
                    }
                }
            }
            FibMsg::Response(answer) => book.answer(answer),
        }
        if let (Some(answer), Some(parent)) = (book.done(), parent) {
            let _ = parent.cast(FibMsg::Response(answer));
            myself.stop(None);
        }
        Ok(())
    }
}

/// Fibonacci: one actor per call (see the module documentation).
pub fn fib(params: &FibParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "ractor fib";
    let (_, calls) = fib_size(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(calls, Duration::from_micros(20)) + QUICK;
    run_on(WORKLOAD, params.placement, cpus, limit, move || async move {
        let driver = spawn(WORKLOAD, FibCall, None).await?;
        let before = live_tasks();
        let n = params.n;
        let ran = answer(WORKLOAD, "compute fib", driver.0.call(|reply| FibMsg::Run { n, reply }, None).await);
        let after = settled(before).await;
        stop_all(WORKLOAD, vec![driver]).await?;
        let (answer, elapsed) = ran?;
        fib_checked(WORKLOAD, &params, answer, elapsed, (before, after))
    })
}
