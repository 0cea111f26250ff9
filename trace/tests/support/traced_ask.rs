//! The traced workload both integration tests export: on a real two-shard engine (threads
//! executor, unpinned), an agent on shard 0 asks one on shard 1 for a number, so its trace is
//! send -> ask -> reply -> answer across the shards.

use nexus_engine::agent::{Addr, Agent, Ctx, SpawnPlacement};
use nexus_engine::ask::{AskError, ReplyTo};
use nexus_engine::engine::{Engine, EngineHandle};
use nexus_engine::shard::ExecutorKind;
use nexus_engine::trace::TraceConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What the back answers.
pub const ANSWER: u32 = 42;

/// On shard 0: asks the back for a number; sets `done` when the answer comes.
pub struct Front {
    back: Addr<BackMsg>,
    done: Arc<AtomicBool>,
}

/// The front's messages.
pub enum FrontMsg {
    /// Ask the back.
    Go,
    /// The back's answer.
    Answer(Result<u32, AskError>),
}

/// On shard 1: answers [`ANSWER`].
pub struct Back;

/// The question.
pub struct BackMsg(ReplyTo<u32>);

impl Agent for Front {
    type Msg = FrontMsg;
    fn handle(&mut self, msg: FrontMsg, ctx: &mut Ctx<'_>) {
        match msg {
            FrontMsg::Go => {
                let _ = ctx.ask(self.back, BackMsg).then(FrontMsg::Answer);
            }
            FrontMsg::Answer(answer) => {
                assert_eq!(answer, Ok(ANSWER));
                self.done.store(true, Ordering::SeqCst);
            }
        }
    }
}

impl Agent for Back {
    type Msg = BackMsg;
    fn handle(&mut self, BackMsg(reply): BackMsg, ctx: &mut Ctx<'_>) {
        ctx.reply(reply, ANSWER);
    }
}

/// A two-shard engine tracing as `config` says.
pub fn traced_engine(config: TraceConfig) -> Engine {
    Engine::builder()
        .shards(2)
        .oversubscribe(true)
        .executor(ExecutorKind::Threads)
        .pin_threads(false)
        .tracing(config)
        .build()
        .expect("engine starts")
}

/// Spawns the pair on `h`: the front's address, the back's, and the front's `done` flag.
pub fn spawn_pair(h: &EngineHandle) -> (Addr<FrontMsg>, Addr<BackMsg>, Arc<AtomicBool>) {
    let done = Arc::new(AtomicBool::new(false));
    let back = h.spawn(SpawnPlacement::Shard(1), || Back).expect("spawn back");
    let d = done.clone();
    let front = h.spawn(SpawnPlacement::Shard(0), move || Front { back, done: d }).expect("spawn front");
    (front, back, done)
}
