//! The kameo peer's forking Savina workloads, fj-throughput, fj-create and fib (their
//! design, timing and checks are in [`super`]'s documentation): a child of the
//! `kameo_savina` module, which re-exports their functions, so that neither file grows past
//! the size the project keeps its files to.

use super::{stop_each, unanswered, QUICK};
use crate::fib::FibParams;
use crate::fork_join::{self, CreateParams, ThroughputParams};
use crate::peers::kameo_peer::{spawn, spawn_at, stop};
use crate::peers::tokio_pair::run_placed;
use crate::peers::tokio_peer::run_on;
use crate::peers::tokio_savina::shared::{
    create_checked, fib_checked, fib_size, live_tasks, settled, sum_cross, throughput_checked, throughput_size,
    Created, FibAnswer, FibBook,
};
use crate::peers::{current_cpu, CrossCount, PeerCpus, PeerRate, PeerResult};
use crate::setup;
use crate::BenchError;
use kameo::actor::ActorRef;
use kameo::message::{Context, Message};
use kameo::reply::{DelegatedReply, ReplySender};
use kameo::Actor;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// (To the driver) tell every worker this many messages, so many per round; the reply,
/// (elapsed, failed tells), comes when every worker is done.
struct RunWork(Vec<ActorRef<Worker>>, u64, u64);
/// (To the driver) a worker handled its last message.
struct WorkerDone;

/// A run of the [`Driver`]: workers not done yet, failed tells, the start, where the reply goes.
type WorkRun = (usize, u64, Instant, ReplySender<Box<(Duration, u64)>>);

/// Sends the work round-robin.
#[derive(Actor, Default)]
struct Driver {
    run: Option<WorkRun>,
}

impl Message<RunWork> for Driver {
    type Reply = DelegatedReply<Box<(Duration, u64)>>;

    async fn handle(
        &mut self,
        RunWork(workers, messages, per_round): RunWork,
        ctx: &mut Context<Self, Self::Reply>,
    ) -> Self::Reply {
        let (delegated, reply) = ctx.reply_sender();
        if let Some(reply) = reply {
            let (started, mut sent, mut failed) = (Instant::now(), 0, 0);
            while sent < messages {
                let k = per_round.min(messages - sent);
                for w in &workers {
                    for _ in 0..k {
                        failed += u64::from(w.tell(Job(current_cpu())).await.is_err());
                    }
                }
                sent += k;
            }
            self.run = Some((workers.len(), failed, started, reply));
        }
        delegated
    }
}

impl Message<WorkerDone> for Driver {
    type Reply = ();

    async fn handle(&mut self, _: WorkerDone, _: &mut Context<Self, ()>) {
        let Some((left, ..)) = &mut self.run else { return };
        *left -= 1;
        if *left == 0 {
            if let Some((_, failed, started, reply)) = self.run.take() {
                reply.send(Box::new((started.elapsed(), failed)));
            }
        }
    }
}

/// Compute once (sent from the CPU given).
struct Job(usize);
/// Asks a worker for (messages handled, cross count).
struct CountJobs;

/// Computes each message; tells `Done` to the driver at its last.
#[derive(Actor)]
struct Worker {
    driver: ActorRef<Driver>,
    target: u64,
    handled: u64,
    acc: f64,
    cross: CrossCount,
}

impl Message<Job> for Worker {
    type Reply = ();

    async fn handle(&mut self, Job(cpu): Job, _: &mut Context<Self, ()>) {
        self.acc += fork_join::work();
        self.handled += 1;
        self.cross.note(cpu);
        if self.handled == self.target {
            let _ = self.driver.tell(WorkerDone).await;
        }
        black_box(self.acc);
    }
}

impl Message<CountJobs> for Worker {
    type Reply = (u64, CrossCount);

    async fn handle(&mut self, _: CountJobs, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        (self.handled, self.cross)
    }
}

/// Fork-join throughput: a driver actor tells every worker actor its messages (see the module
/// documentation).
pub fn fj_throughput(params: &ThroughputParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "kameo fj-throughput";
    let (n, per_round) = throughput_size(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(n as u64 * params.messages, Duration::from_micros(5)) + QUICK;
    run_placed(WORKLOAD, params.placement, cpus, limit, move |sites| async move {
        let driver = spawn_at(&sites, 0, Driver::default());
        let target = params.messages;
        let workers: Vec<_> = (0..n)
            .map(|i| {
                let worker =
                    Worker { driver: driver.clone(), target, handled: 0, acc: 0.0, cross: CrossCount::default() };
                spawn_at(&sites, i + 1, worker)
            })
            .collect();
        let ran = driver.ask(RunWork(workers.clone(), params.messages, per_round)).await;
        let ran = ran.map_err(|e| unanswered(WORKLOAD, "run fj-throughput", e));
        let mut counts = Vec::with_capacity(n);
        for w in &workers {
            counts.push(w.ask(CountJobs).reply_timeout(QUICK).await.map_err(|e| unanswered(WORKLOAD, "count", e)));
        }
        stop_each(WORKLOAD, &workers).await?;
        stop(WORKLOAD, &driver).await?;
        let (elapsed, failed) = *ran?;
        let counts = counts.into_iter().collect::<Result<Vec<_>, _>>()?;
        if failed > 0 {
            return Err(BenchError::check(WORKLOAD, format!("{failed} tells failed")));
        }
        let handled: Vec<_> = counts.iter().map(|c| c.0).collect();
        throughput_checked(WORKLOAD, &params, elapsed, &handled, sum_cross(counts.into_iter().map(|c| c.1)))
    })
}

/// The one message of a [`OneShot`] (sent from the CPU given).
struct Once(usize);

/// Handles one message, counts it and stops itself.
#[derive(Actor)]
struct OneShot {
    created: Arc<Created>,
}

impl Message<Once> for OneShot {
    type Reply = ();

    async fn handle(&mut self, Once(cpu): Once, ctx: &mut Context<Self, ()>) {
        self.created.handle(cpu);
        // Only fails if the mailbox is closed, when the actor is stopping anyway.
        let _ = ctx.actor_ref().stop_gracefully().await;
    }
}

/// Fork-join creation: spawn an actor, tell it one message; it counts itself and stops (see
/// the module documentation).
pub fn fj_create(params: &CreateParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "kameo fj-create";
    let params = params.clone();
    let limit = setup::timeout_for(params.agents, Duration::from_micros(20));
    run_on(WORKLOAD, params.placement, cpus, limit, move || async move {
        let (created, burst) = (Created::new(params.agents), u64::from(params.burst.max(1)));
        let before = live_tasks();
        let started = Instant::now();
        for k in 1..=params.agents {
            let actor = spawn(OneShot { created: created.clone() });
            actor.tell(Once(current_cpu())).await.map_err(|e| unanswered(WORKLOAD, "tell the message", e))?;
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

/// (Driver only) compute fib(n) with one actor per call; replies with the answer and the time.
struct RunFib(u32);
/// Compute fib of the argument (asked from the CPU given) and answer the parent.
struct Request(u32, usize);
/// A child's answer.
struct Response(FibAnswer);

/// The driver's run: its start, and where the reply goes.
type FibRun = (Instant, ReplySender<Box<(FibAnswer, Duration)>>);

/// A call of the recursion, or (without a parent) the driver.
#[derive(Actor)]
struct FibCall {
    parent: Option<ActorRef<FibCall>>,
    book: FibBook,
    run: Option<FibRun>,
}

/// Spawns a call with `parent` as its parent and tells it fib(`n`); whether that worked (a
/// call never told stops when its ref is dropped).
async fn spawn_call(parent: ActorRef<FibCall>, n: u32) -> bool {
    let child = spawn(FibCall { parent: Some(parent), book: FibBook::default(), run: None });
    child.tell(Request(n, current_cpu())).await.is_ok()
}

impl Message<RunFib> for FibCall {
    type Reply = DelegatedReply<Box<(FibAnswer, Duration)>>;

    async fn handle(&mut self, RunFib(n): RunFib, ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let (delegated, reply) = ctx.reply_sender();
        if let Some(reply) = reply {
            let started = Instant::now();
            if spawn_call(ctx.actor_ref(), n).await {
                self.run = Some((started, reply));
            } else {
                reply.send(Box::new((FibAnswer::default(), started.elapsed())));
            }
        }
        delegated
    }
}

impl FibCall {
    /// Answers the parent and stops, once every child has answered.
    async fn settle(&mut self, myself: ActorRef<FibCall>) {
        if let (Some(answer), Some(parent)) = (self.book.done(), &self.parent) {
            let _ = parent.tell(Response(answer)).await;
            let _ = myself.stop_gracefully().await;
        }
    }
}

impl Message<Request> for FibCall {
    type Reply = ();

    async fn handle(&mut self, Request(n, cpu): Request, ctx: &mut Context<Self, ()>) {
        self.book = FibBook::request(n, cpu);
        if n > 1 {
            for child in [n - 1, n - 2] {
                if !spawn_call(ctx.actor_ref(), child).await {
                    self.book.lost();
                }
            }
        }
        self.settle(ctx.actor_ref()).await;
    }
}

impl Message<Response> for FibCall {
    type Reply = ();

    async fn handle(&mut self, Response(mut answer): Response, ctx: &mut Context<Self, ()>) {
        if self.parent.is_none() {
            if let Some((started, reply)) = self.run.take() {
                answer.cross.note(answer.cpu);
                reply.send(Box::new((answer, started.elapsed())));
            }
            return;
        }
        self.book.answer(answer);
        self.settle(ctx.actor_ref()).await;
    }
}

/// Fibonacci: one actor per call (see the module documentation).
pub fn fib(params: &FibParams, cpus: PeerCpus) -> Result<PeerResult<PeerRate>, BenchError> {
    const WORKLOAD: &str = "kameo fib";
    let (_, calls) = fib_size(WORKLOAD, params)?;
    let params = params.clone();
    let limit = setup::timeout_for(calls, Duration::from_micros(20)) + QUICK;
    run_on(WORKLOAD, params.placement, cpus, limit, move || async move {
        let driver = spawn(FibCall { parent: None, book: FibBook::default(), run: None });
        let before = live_tasks();
        let ran = driver.ask(RunFib(params.n)).await.map_err(|e| unanswered(WORKLOAD, "compute fib", e));
        let after = settled(before).await;
        stop(WORKLOAD, &driver).await?;
        let (answer, elapsed) = *ran?;
        fib_checked(WORKLOAD, &params, answer, elapsed, (before, after))
    })
}
