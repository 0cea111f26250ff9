//! A shard thread that panics outside an agent (in a service's task, or in engine code) must not
//! hang shutdown: the shard is marked halted as it unwinds, so its peers finish halting, and
//! `Engine::shutdown` returns `EngineError::ShardPanicked` naming it.

use nexus_engine::engine::{Engine, EngineError, ShardService, ShardSetup, ShutdownReport};
use nexus_engine::shard::ExecutorKind;
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How long after its shard starts the service's task panics.
const PANIC_AFTER: Duration = Duration::from_millis(20);

/// Spawns, on shard 0 only, an executor task that panics once the engine has started.
struct PanickingService;

impl ShardService for PanickingService {
    fn start(&self, setup: &mut ShardSetup<'_>) -> Result<(), String> {
        if setup.index() != 0 {
            return Ok(());
        }
        match setup.executor() {
            #[cfg(feature = "glommio")]
            ExecutorKind::Glommio => {
                glommio::spawn_local(async {
                    glommio::timer::sleep(PANIC_AFTER).await;
                    panic!("a service task panicked (on purpose, in a test)");
                })
                .detach();
            }
            _ => nexus_engine::executor::local::spawn(async {
                nexus_engine::executor::local::sleep(PANIC_AFTER).await;
                panic!("a service task panicked (on purpose, in a test)");
            }),
        }
        Ok(())
    }
}

/// Starts a two-shard engine whose shard 0 panics in its service, lets the panic happen, and
/// shuts down on a helper thread; returns what shutdown said, or `None` if it hung for `limit`.
fn shutdown_after_service_panic(
    executor: ExecutorKind,
    limit: Duration,
) -> Option<Result<ShutdownReport, EngineError>> {
    let engine = Engine::builder()
        .shards(2)
        .oversubscribe(true)
        .executor(executor)
        .pin_threads(false)
        .drain_timeout(Duration::from_secs(5))
        .service(Arc::new(PanickingService))
        .build()
        .expect("engine starts");
    // The task runs at the shard's first yield to its executor: give it the time.
    std::thread::sleep(Duration::from_millis(100));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(engine.shutdown());
    });
    rx.recv_timeout(limit).ok()
}

fn assert_shutdown_reports_the_panic(executor: ExecutorKind) {
    match shutdown_after_service_panic(executor, Duration::from_secs(1)) {
        Some(Err(EngineError::ShardPanicked(0))) => {}
        Some(other) => panic!("{executor:?}: expected ShardPanicked(0), got {other:?}"),
        None => panic!("{executor:?}: shutdown hung for more than a second after a shard panicked"),
    }
}

#[test]
fn a_service_panic_on_the_threads_executor_makes_shutdown_return_shard_panicked_within_a_second() {
    assert_shutdown_reports_the_panic(ExecutorKind::Threads);
}

#[cfg(feature = "glommio")]
#[test]
fn a_service_panic_on_glommio_makes_shutdown_return_shard_panicked_within_a_second() {
    assert_shutdown_reports_the_panic(ExecutorKind::Glommio);
}
