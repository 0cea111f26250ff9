//! The pool end to end on a two-shard engine: every balancer answers every ask with counts
//! that add up, load-aware balancers steer away from a slow worker, a worker that stops is no
//! longer picked (with and without failover), tells are spread, and what cannot be placed is
//! reported. Outcomes and distributions only: no timing is asserted.

use super::*;
use crate::balance::BalancerKind;
use crate::tests::engine;
use nexus_engine::agent::SpawnPlacement;
use nexus_engine::engine::EngineHandle;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Generous: only a broken test waits this long.
const T: Duration = Duration::from_secs(20);

type Msg = PoolMsg<EchoMsg, u64, u64>;

/// A worker: answers `Work(x)` with `2x` (at once, or after `delay` through a timer), counts
/// notes, and stops itself after `stop_after` requests.
struct Echo {
    delay: Option<Duration>,
    stop_after: Option<u64>,
    handled: Arc<AtomicU64>,
    notes: Arc<AtomicU64>,
}

enum EchoMsg {
    Work(u64, ReplyTo<u64>),
    Note(u64),
    Finish(u64, ReplyTo<u64>),
}

impl Agent for Echo {
    type Msg = EchoMsg;
    fn handle(&mut self, msg: EchoMsg, ctx: &mut Ctx<'_>) {
        match msg {
            EchoMsg::Work(x, r) => {
                let n = self.handled.fetch_add(1, Ordering::SeqCst) + 1;
                match self.delay {
                    Some(d) => {
                        ctx.send_after(ctx.myself(), EchoMsg::Finish(x, r), d);
                    }
                    None => ctx.reply(r, 2 * x),
                }
                if self.stop_after == Some(n) {
                    ctx.stop_self();
                }
            }
            EchoMsg::Finish(x, r) => ctx.reply(r, 2 * x),
            EchoMsg::Note(x) => {
                debug_assert!(x < u64::MAX);
                self.notes.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

#[derive(Default)]
struct Spec {
    delay: Option<Duration>,
    stop_after: Option<u64>,
}

struct Workers {
    addrs: Vec<Addr<EchoMsg>>,
    handled: Vec<Arc<AtomicU64>>,
    notes: Vec<Arc<AtomicU64>>,
}

impl Workers {
    fn handled(&self) -> Vec<u64> {
        self.handled.iter().map(|h| h.load(Ordering::SeqCst)).collect()
    }
    fn notes(&self) -> Vec<u64> {
        self.notes.iter().map(|h| h.load(Ordering::SeqCst)).collect()
    }
}

/// Worker `i` goes on shard `i % 2`.
fn spawn_workers(h: &EngineHandle, specs: Vec<Spec>) -> Workers {
    spawn_workers_on(h, specs, |i| i % 2)
}

fn spawn_workers_on(h: &EngineHandle, specs: Vec<Spec>, shard: impl Fn(usize) -> usize) -> Workers {
    let mut w = Workers { addrs: Vec::new(), handled: Vec::new(), notes: Vec::new() };
    for (i, spec) in specs.into_iter().enumerate() {
        let (handled, notes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (h2, n2) = (handled.clone(), notes.clone());
        let addr = h
            .spawn(SpawnPlacement::Shard(shard(i)), move || Echo {
                delay: spec.delay,
                stop_after: spec.stop_after,
                handled: h2,
                notes: n2,
            })
            .expect("worker starts");
        w.addrs.push(addr);
        w.handled.push(handled);
        w.notes.push(notes);
    }
    w
}

fn spawn_pool(h: &EngineHandle, w: &Workers, kind: BalancerKind, failover: u32) -> Addr<Msg> {
    let pool = Pool::new(w.addrs.iter().copied(), kind.build()).with_asks(EchoMsg::Work).with_failover(failover);
    h.spawn(SpawnPlacement::Shard(0), move || pool).expect("pool starts")
}

fn stats(h: &EngineHandle, pool: Addr<Msg>) -> PoolStats {
    h.ask(pool, T, PoolMsg::Stats).expect("stats")
}

/// What a driver run saw.
#[derive(Debug, Default)]
struct Summary {
    ok: u64,
    wrong_answers: u64,
    errors: Vec<PoolError>,
    lost: Vec<AskError>,
}

/// Asks the pool `n` times, keeping `window` asks in flight (closed loop), then reports.
struct Driver {
    pool: Addr<Msg>,
    left: u64,
    in_flight: u64,
    next: u64,
    summary: Summary,
    done: Option<ReplyTo<Summary>>,
}

enum DriverMsg {
    Run {
        n: u64,
        window: u64,
        reply: ReplyTo<Summary>,
    },
    /// The pool's answer to the ask for `x`.
    Answer {
        x: u64,
        answer: Result<Result<u64, PoolError>, AskError>,
    },
}

impl Driver {
    fn issue(&mut self, ctx: &mut Ctx<'_>) {
        self.left -= 1;
        let x = self.next;
        self.next += 1;
        let asked =
            ctx.ask(self.pool, |r| PoolMsg::Ask(x, r)).timeout(T).then(move |answer| DriverMsg::Answer { x, answer });
        match asked {
            Ok(()) => self.in_flight += 1,
            Err(_) => self.summary.lost.push(AskError::Undelivered(DeadLetterReason::MailboxFull)),
        }
    }
    fn maybe_done(&mut self, ctx: &mut Ctx<'_>) {
        if self.left == 0 && self.in_flight == 0 {
            if let Some(r) = self.done.take() {
                ctx.reply(r, std::mem::take(&mut self.summary));
            }
        }
    }
}

impl Agent for Driver {
    type Msg = DriverMsg;
    fn handle(&mut self, msg: DriverMsg, ctx: &mut Ctx<'_>) {
        match msg {
            DriverMsg::Run { n, window, reply } => {
                self.left = n;
                self.done = Some(reply);
                for _ in 0..window.min(n) {
                    self.issue(ctx);
                }
            }
            DriverMsg::Answer { x, answer } => {
                self.in_flight -= 1;
                match answer {
                    Ok(Ok(v)) if v == 2 * x => self.summary.ok += 1,
                    Ok(Ok(_)) => self.summary.wrong_answers += 1,
                    Ok(Err(e)) => self.summary.errors.push(e),
                    Err(e) => self.summary.lost.push(e),
                }
                if self.left > 0 {
                    self.issue(ctx);
                }
            }
        }
        self.maybe_done(ctx);
    }
}

/// Runs `n` asks through `pool` from a driver on shard 1.
fn drive(h: &EngineHandle, pool: Addr<Msg>, n: u64, window: u64) -> Summary {
    let driver = h
        .spawn(SpawnPlacement::Shard(1), move || Driver {
            pool,
            left: 0,
            in_flight: 0,
            next: 1,
            summary: Summary::default(),
            done: None,
        })
        .expect("driver starts");
    h.ask(driver, T, |reply| DriverMsg::Run { n, window, reply }).expect("the run finishes")
}

/// The per-worker identities the module docs promise.
fn assert_counts_add_up(s: &PoolStats) {
    for w in &s.workers {
        assert_eq!(w.picks, w.tells + w.asks + w.refused, "{w:?}");
        assert_eq!(w.asks, w.ok + w.failed + u64::from(w.outstanding), "{w:?}");
    }
    assert_eq!(s.asks_ok, s.workers.iter().map(|w| w.ok).sum::<u64>());
    assert_eq!(s.in_flight, s.workers.iter().map(|w| w.outstanding as usize).sum::<usize>());
}

fn kinds() -> [BalancerKind; 4] {
    [
        BalancerKind::RoundRobin,
        BalancerKind::LeastLoaded,
        BalancerKind::PowerOfTwo { seed: 5 },
        BalancerKind::ResponseTime { alpha: 0.3 },
    ]
}

#[test]
fn every_balancer_answers_every_ask_and_the_counts_add_up() {
    let engine = engine();
    let h = engine.handle();
    for kind in kinds() {
        let w = spawn_workers(&h, (0..4).map(|_| Spec::default()).collect());
        let pool = spawn_pool(&h, &w, kind, 0);
        let n = 400;
        let s = drive(&h, pool, n, 16);
        assert_eq!((s.ok, s.wrong_answers), (n, 0), "{kind:?}: {s:?}");
        assert!(s.errors.is_empty() && s.lost.is_empty(), "{kind:?}: {s:?}");

        let st = stats(&h, pool);
        assert_counts_add_up(&st);
        assert_eq!((st.asks_ok, st.asks_failed, st.in_flight), (n, 0, 0), "{kind:?}");
        assert_eq!(st.picks().iter().sum::<u64>(), n);
        assert_eq!(st.picks(), w.handled(), "{kind:?}: the pool's picks are what the workers handled");
        assert!(st.picks().iter().all(|&p| p > 0), "{kind:?}: every worker was used: {:?}", st.picks());
        assert!(st.workers.iter().all(|w| w.alive && w.latency_ewma_ns.is_some()));
        if kind == BalancerKind::RoundRobin {
            assert_eq!(st.picks(), [100; 4]);
        }
        if let BalancerKind::ResponseTime { .. } = kind {
            assert!(st.workers.iter().all(|w| w.balancer_estimate_ns.is_some()));
        }
    }
    engine.shutdown().expect("clean shutdown");
}

#[test]
fn least_loaded_and_response_time_steer_away_from_a_slow_worker() {
    let engine = engine();
    let h = engine.handle();
    let slow = 2; // on shard 0, with the pool
    let n = 400;
    let fair = n / 4;
    for kind in [BalancerKind::RoundRobin, BalancerKind::LeastLoaded, BalancerKind::ResponseTime { alpha: 0.3 }] {
        let specs = (0..4)
            .map(|i| Spec { delay: (i == slow).then_some(Duration::from_millis(20)), stop_after: None })
            .collect();
        let w = spawn_workers(&h, specs);
        let pool = spawn_pool(&h, &w, kind, 0);
        let s = drive(&h, pool, n, 8);
        assert_eq!(s.ok, n, "{kind:?}: every ask answered: {s:?}");
        let st = stats(&h, pool);
        assert_counts_add_up(&st);
        let picks = st.picks();
        if kind == BalancerKind::RoundRobin {
            assert_eq!(picks[slow], fair, "round robin does not steer (the control)");
        } else {
            assert!(picks[slow] * 2 < fair, "{kind:?}: the slow worker got {picks:?}");
        }
        let (slow_ns, fast_ns) = (st.workers[slow].latency_ewma_ns.unwrap(), st.workers[0].latency_ewma_ns.unwrap());
        assert!(slow_ns > fast_ns, "{kind:?}: the pool saw the slow worker as slower ({slow_ns} vs {fast_ns})");
    }
    engine.shutdown().expect("clean shutdown");
}

#[test]
fn a_worker_that_stops_mid_run_is_no_longer_picked_and_failover_hides_it() {
    let engine = engine();
    let h = engine.handle();
    let quits = 1; // on shard 1, away from the pool
    let specs = (0..3).map(|i| Spec { delay: None, stop_after: (i == quits).then_some(10) }).collect();
    let w = spawn_workers(&h, specs);
    let pool = spawn_pool(&h, &w, BalancerKind::RoundRobin, 3);
    let n = 300;
    let s = drive(&h, pool, n, 16);
    assert_eq!(s.ok, n, "failover answered every ask: {s:?}");
    let st = stats(&h, pool);
    assert_counts_add_up(&st);
    let q = &st.workers[quits];
    assert!(!q.alive, "{q:?}");
    assert_eq!(q.ok, 10, "it answered the requests it handled");
    assert_eq!(st.asks_retried, q.failed, "every failed ask to it was sent elsewhere");
    assert_eq!(w.handled()[quits], 10);

    // From now on it is never picked.
    let s = drive(&h, pool, 100, 16);
    assert_eq!(s.ok, 100);
    let after = stats(&h, pool);
    assert_eq!(after.workers[quits].picks, q.picks, "a dead worker is not picked");
    assert_eq!(after.picks().iter().sum::<u64>() - st.picks().iter().sum::<u64>(), 100);
    engine.shutdown().expect("clean shutdown");
}

#[test]
fn without_failover_asks_to_a_stopped_worker_fail_with_a_typed_error() {
    let engine = engine();
    let h = engine.handle();
    let quits = 0; // on shard 0, with the pool
    let specs = (0..3).map(|i| Spec { delay: None, stop_after: (i == quits).then_some(10) }).collect();
    let w = spawn_workers(&h, specs);
    let pool = spawn_pool(&h, &w, BalancerKind::RoundRobin, 0);
    let n = 300;
    let s = drive(&h, pool, n, 32);
    assert!(s.lost.is_empty() && s.wrong_answers == 0, "{s:?}");
    assert_eq!(s.ok + s.errors.len() as u64, n, "every ask answered, well or not: {s:?}");
    let gone = w.addrs[quits].id();
    for e in &s.errors {
        let PoolError::Worker { worker, error: AskError::Undelivered(reason) } = e else { panic!("{e:?}") };
        assert_eq!(*worker, gone);
        assert!(worker_gone(*reason), "{e}");
        assert!(!e.to_string().is_empty());
    }
    let st = stats(&h, pool);
    assert_counts_add_up(&st);
    assert_eq!((st.workers[quits].ok, st.workers[quits].failed), (10, s.errors.len() as u64));
    assert_eq!(st.asks_failed, s.errors.len() as u64);
    assert!(!st.workers[quits].alive);
    let s = drive(&h, pool, 60, 8);
    assert_eq!(s.ok, 60, "once it is known dead, nothing goes to it: {s:?}");
    engine.shutdown().expect("clean shutdown");
}

/// Waits until the workers noted `n` tells in all.
fn wait_notes(w: &Workers, n: u64) -> Vec<u64> {
    let deadline = Instant::now() + T;
    loop {
        let notes = w.notes();
        if notes.iter().sum::<u64>() >= n {
            return notes;
        }
        assert!(Instant::now() < deadline, "tells arrived: {notes:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn tells_are_spread_per_the_balancer() {
    let engine = engine();
    let h = engine.handle();
    for kind in kinds() {
        // The load-aware balancers see the depth of mailboxes on the pool's shard only (a tell
        // has no answer to observe), so for them the workers share the pool's shard; round
        // robin needs no load and spreads over both shards.
        let on = move |i: usize| if kind == BalancerKind::RoundRobin { i % 2 } else { 0 };
        let w = spawn_workers_on(&h, (0..4).map(|_| Spec::default()).collect(), on);
        let pool = spawn_pool(&h, &w, kind, 0);
        let n = 400u64;
        for i in 0..n {
            h.send(pool, PoolMsg::Tell(EchoMsg::Note(i))).expect("sent");
        }
        let notes = wait_notes(&w, n);
        let st = stats(&h, pool);
        assert_counts_add_up(&st);
        assert_eq!(st.tells_sent, n);
        assert_eq!(st.picks(), notes, "{kind:?}");
        match kind {
            BalancerKind::RoundRobin => assert_eq!(notes, [100; 4]),
            _ => assert!(notes.iter().all(|&c| c >= n / 16), "{kind:?}: {notes:?}"),
        }
    }
    engine.shutdown().expect("clean shutdown");
}

#[test]
fn tells_to_a_stopped_worker_go_elsewhere_and_nothing_is_lost() {
    let engine = engine();
    let h = engine.handle();
    let w = spawn_workers(&h, (0..3).map(|_| Spec::default()).collect());
    // Worker 1 (shard 1) is gone before the pool starts; the pool hears it from its watch a
    // round trip later, and tells it sends meanwhile bounce and are re-placed.
    h.stop(w.addrs[1].id()).expect("stopped");
    let deadline = Instant::now() + T;
    while h.ask(w.addrs[1], Duration::from_secs(1), |r| EchoMsg::Work(1, r)).is_ok() {
        assert!(Instant::now() < deadline, "the worker stopped");
    }
    let pool = spawn_pool(&h, &w, BalancerKind::RoundRobin, 0);
    let n = 300u64;
    for i in 0..n {
        h.send(pool, PoolMsg::Tell(EchoMsg::Note(i))).expect("sent");
    }
    let notes = wait_notes(&w, n);
    assert_eq!(notes.iter().sum::<u64>(), n, "every tell reached a live worker: {notes:?}");
    let st = stats(&h, pool);
    assert_eq!(notes[1], 0);
    assert!(!st.workers[1].alive);
    assert_eq!((st.tells_unplaced, st.tells_lost, st.tells_refused), (0, 0, 0));
    assert_eq!(st.tells_sent - st.tells_redirected, n);
    engine.shutdown().expect("clean shutdown");
}

#[test]
fn with_no_live_worker_asks_fail_with_no_worker_and_tells_are_counted() {
    let engine = engine();
    let h = engine.handle();
    let w = spawn_workers(&h, (0..2).map(|_| Spec::default()).collect());
    let pool = spawn_pool(&h, &w, BalancerKind::LeastLoaded, 2);
    for a in &w.addrs {
        h.stop(a.id()).expect("stopped");
    }
    // Until the pool hears of both ends, an ask may still go to one and fail over or fail.
    let deadline = Instant::now() + T;
    loop {
        match h.ask(pool, T, |r| PoolMsg::Ask(1, r)).expect("the pool answers") {
            Err(PoolError::NoWorker) => break,
            // Answered before the stop took effect, or sent to a worker as it went.
            Ok(2) | Err(PoolError::Worker { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(Instant::now() < deadline, "the pool learnt its workers stopped");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(PoolError::NoWorker.to_string().contains("hint:"));
    h.send(pool, PoolMsg::Tell(EchoMsg::Note(0))).expect("sent");
    let st = stats(&h, pool);
    assert_eq!((st.live_workers(), st.tells_unplaced), (0, 1));
    assert!(st.asks_failed >= 1);

    // A tell-only pool refuses asks with a typed error.
    let tell_only: Pool<EchoMsg> = Pool::new(w.addrs.iter().copied(), BalancerKind::RoundRobin.build());
    let pool = h.spawn(SpawnPlacement::Shard(1), move || tell_only).expect("pool starts");
    let err = h.ask(pool, T, |r| PoolMsg::Ask((), r)).expect("the pool answers").unwrap_err();
    assert_eq!(err, PoolError::NoAsks);
    assert!(err.to_string().contains("hint:"));
    engine.shutdown().expect("clean shutdown");
}

#[test]
fn saturation_is_a_typed_error() {
    let engine = engine();
    let h = engine.handle();
    let w = spawn_workers(&h, vec![Spec { delay: Some(Duration::from_millis(50)), stop_after: None }]);
    let pool = Pool::new(w.addrs.iter().copied(), BalancerKind::RoundRobin.build())
        .with_asks(EchoMsg::Work)
        .with_config(PoolConfig { max_in_flight: 2, ..PoolConfig::default() });
    let pool = h.spawn(SpawnPlacement::Shard(0), move || pool).expect("pool starts");
    let s = drive(&h, pool, 3, 3);
    assert_eq!(s.ok, 2, "{s:?}");
    assert_eq!(s.errors, [PoolError::Saturated { limit: 2 }]);
    engine.shutdown().expect("clean shutdown");
}

#[test]
fn an_ask_a_full_worker_mailbox_refuses_is_failed_over_or_a_typed_error() {
    let engine = engine();
    let h = engine.handle();
    // Workers on the pool's shard with room for one message each: a burst of asks finds them
    // full, and the refused sends are what this test is about.
    let spawn_small = |n: usize| {
        let mut w = Workers { addrs: Vec::new(), handled: Vec::new(), notes: Vec::new() };
        for _ in 0..n {
            let (handled, notes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
            let (h2, n2) = (handled.clone(), notes.clone());
            let delay = Some(Duration::from_millis(2));
            let addr = h
                .spawn_with_capacity(SpawnPlacement::Shard(0), Some(1), move || Echo {
                    delay,
                    stop_after: None,
                    handled: h2,
                    notes: n2,
                })
                .expect("worker starts");
            w.addrs.push(addr);
            w.handled.push(handled);
            w.notes.push(notes);
        }
        w
    };
    let n = 64;
    for failover in [0, 1] {
        let w = spawn_small(2);
        let pool = spawn_pool(&h, &w, BalancerKind::RoundRobin, failover);
        let s = drive(&h, pool, n, n);
        assert!(s.lost.is_empty() && s.wrong_answers == 0, "{s:?}");
        assert_eq!(s.ok + s.errors.len() as u64, n, "every ask answered, well or not: {s:?}");
        for e in &s.errors {
            assert!(matches!(e, PoolError::Full { worker } if w.addrs.iter().any(|a| a.id() == *worker)), "{e:?}");
        }
        let st = stats(&h, pool);
        assert_counts_add_up(&st);
        let refused: u64 = st.workers.iter().map(|w| w.refused).sum();
        assert!(refused > 0, "the burst found a full mailbox: {st:?}");
        assert_eq!(st.in_flight, 0);
        assert_eq!(st.asks_ok, s.ok);
        assert_eq!(st.asks_failed, s.errors.len() as u64);
        if failover == 0 {
            assert_eq!(refused, s.errors.len() as u64, "each refusal is one Full error");
        } else {
            assert_eq!(refused, st.asks_retried + s.errors.len() as u64, "a refusal is retried once, then fails");
        }
    }
    engine.shutdown().expect("clean shutdown");
}

#[test]
fn public_types_are_send() {
    fn send<T: Send>() {}
    send::<Pool<EchoMsg, u64, u64>>();
    send::<Msg>();
    send::<PoolError>();
    send::<PoolStats>();
    send::<Box<dyn Balancer + Send>>();
}
