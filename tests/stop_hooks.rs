//! Work a service registers with `ShardSetup::on_stop` runs when its shard stops, inside the
//! shard's executor (its timers still fire), before `Engine::shutdown` returns, on both
//! executors; work that never finishes is dropped after `STOP_HOOK_LIMIT`, not waited for
//! forever.

use nexus_engine::engine::{Engine, ShardService, ShardSetup, STOP_HOOK_LIMIT};
use nexus_engine::shard::ExecutorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long each shard's stop work sleeps on its executor's timer before it counts itself.
const STOP_WORK: Duration = Duration::from_millis(50);

/// Registers, on every shard, stop work that sleeps on the executor and then counts; with
/// `hang`, stop work that never completes.
struct CountingStops {
    done: Arc<AtomicUsize>,
    hang: bool,
}

impl ShardService for CountingStops {
    fn start(&self, setup: &mut ShardSetup<'_>) -> Result<(), String> {
        let done = self.done.clone();
        let executor = setup.executor();
        let hang = self.hang;
        setup.on_stop(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            match executor {
                #[cfg(feature = "glommio")]
                ExecutorKind::Glommio => {
                    glommio::timer::sleep(STOP_WORK).await;
                }
                _ => nexus_engine::executor::local::sleep(STOP_WORK).await,
            }
            done.fetch_add(1, Ordering::SeqCst);
        });
        Ok(())
    }
}

fn run(executor: ExecutorKind, hang: bool) -> (usize, Duration) {
    let done = Arc::new(AtomicUsize::new(0));
    let engine = Engine::builder()
        .shards(2)
        .oversubscribe(true)
        .executor(executor)
        .pin_threads(false)
        .service(Arc::new(CountingStops { done: done.clone(), hang }))
        .build()
        .expect("engine starts");
    let started = Instant::now();
    engine.shutdown().expect("clean shutdown");
    (done.load(Ordering::SeqCst), started.elapsed())
}

fn assert_stop_work_runs(executor: ExecutorKind) {
    let (done, took) = run(executor, false);
    assert_eq!(done, 2, "{executor:?}: every shard's stop work ran to its end before shutdown returned");
    assert!(took >= STOP_WORK, "{executor:?}: shutdown waited for the stop work ({took:?})");
}

#[test]
fn stop_work_runs_on_the_threads_executor_before_shutdown_returns() {
    assert_stop_work_runs(ExecutorKind::Threads);
}

#[cfg(feature = "glommio")]
#[test]
fn stop_work_runs_on_glommio_before_shutdown_returns() {
    assert_stop_work_runs(ExecutorKind::Glommio);
}

#[test]
fn stop_work_that_never_finishes_is_dropped_after_the_limit() {
    let (done, took) = run(ExecutorKind::Threads, true);
    assert_eq!(done, 0);
    assert!(took >= STOP_HOOK_LIMIT && took < STOP_HOOK_LIMIT * 3, "shutdown took {took:?}");
}
