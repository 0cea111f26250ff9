//! A trace follows its messages on hand-driven shards: a host's sampled send, an ask across
//! shards, its reply and answer, a forward, and the `Down` of an agent a traced message
//! stopped, each hop a span whose parent is the hop that sent it. With sampling off nothing is
//! recorded, and a refused traced send comes back as its own type.

use super::{Hop, Span, TraceHandle};
use crate::agent::{Addr, Agent, Ctx, Down};
use crate::ask::{AskError, ReplyTo};
use crate::shard::test_support::{assert_accounted, cluster, settle};
use crate::shard::Shard;

/// On shard 0: asks the back for a number, then tells it to stop; watches it.
struct Front {
    back: Addr<BackMsg>,
}

enum FrontMsg {
    Go,
    Answer(Result<u32, AskError>),
}

/// On shard 1: answers through a helper it forwards the question to, and stops on `Quit`.
struct Back {
    helper: Addr<HelperMsg>,
}

enum BackMsg {
    Question(ReplyTo<u32>),
    Quit,
}

struct Helper;

struct HelperMsg(ReplyTo<u32>);

impl Agent for Front {
    type Msg = FrontMsg;
    fn handle(&mut self, msg: FrontMsg, ctx: &mut Ctx<'_>) {
        match msg {
            FrontMsg::Go => {
                ctx.watch(self.back.id());
                ctx.ask(self.back, BackMsg::Question).then(FrontMsg::Answer).expect("asked");
            }
            FrontMsg::Answer(answer) => {
                assert_eq!(answer, Ok(42));
                let _ = ctx.send(self.back, BackMsg::Quit);
            }
        }
    }
    fn on_down(&mut self, _down: Down, _ctx: &mut Ctx<'_>) {}
}

impl Agent for Back {
    type Msg = BackMsg;
    fn handle(&mut self, msg: BackMsg, ctx: &mut Ctx<'_>) {
        match msg {
            BackMsg::Question(reply) => {
                let _ = ctx.send(self.helper, HelperMsg(reply));
            }
            BackMsg::Quit => ctx.stop_self(),
        }
    }
}

impl Agent for Helper {
    type Msg = HelperMsg;
    fn handle(&mut self, HelperMsg(reply): HelperMsg, ctx: &mut Ctx<'_>) {
        ctx.reply(reply, 42);
    }
}

fn setup(shards: &mut [Shard]) -> (Addr<FrontMsg>, TraceHandle) {
    let helper = shards[1].spawn(Helper).unwrap();
    let back = shards[1].spawn(Back { helper }).unwrap();
    let front = shards[0].spawn(Front { back }).unwrap();
    settle(shards);
    (front, TraceHandle { shared: shards[0].shared.trace.clone() })
}

fn by_id(spans: &[Span], id: u64) -> &Span {
    spans.iter().find(|s| s.span_id == id).unwrap_or_else(|| panic!("no span {id:x} in {spans:#?}"))
}

#[test]
fn a_sampled_host_send_is_followed_through_ask_reply_answer_forward_and_down() {
    let mut shards = cluster(2);
    let (front, tracing) = setup(&mut shards);
    tracing.set_sample(1.0);
    let handle = crate::engine::EngineHandle { shared: shards[0].shared.clone() };
    handle.send(front, FrontMsg::Go).map_err(|_| "refused").unwrap();
    settle(&mut shards);
    tracing.set_sample(0.0);
    let mut spans = Vec::new();
    tracing.drain(&mut spans);
    assert_eq!(tracing.dropped(), 0);

    let root = spans.iter().find(|s| s.parent_id == 0).expect("a root span");
    let short: Vec<_> =
        spans.iter().map(|s| (s.hop, s.name, s.span_id % 1000, s.parent_id % 1000, s.trace_id % 1000)).collect();
    assert!(spans.iter().all(|s| s.trace_id == root.trace_id), "one trace: {short:#?}");
    assert_eq!((root.hop, root.shard, root.agent), (Hop::Send, 0, front.id().to_bits()));
    // Every other span's parent is a recorded span: the chain is whole.
    for s in &spans {
        if s.parent_id != 0 {
            by_id(&spans, s.parent_id);
        }
        assert!(s.enqueued_ns <= s.dispatched_ns && s.dispatched_ns <= s.finished_ns, "{s:?}");
    }
    let ask = spans.iter().find(|s| s.hop == Hop::Ask).expect("the ask's hop");
    assert_eq!((ask.parent_id, ask.shard), (root.span_id, 1));
    let forward = spans.iter().find(|s| s.name.ends_with("HelperMsg")).expect("the forward's hop");
    assert_eq!((forward.parent_id, forward.hop), (ask.span_id, Hop::Send));
    let reply = spans.iter().find(|s| s.hop == Hop::Reply).expect("the reply's hop");
    assert_eq!((reply.parent_id, reply.shard), (forward.span_id, 0));
    let answer = spans.iter().find(|s| s.hop == Hop::Answer).expect("the answer's hop");
    assert_eq!((answer.parent_id, answer.agent), (reply.span_id, front.id().to_bits()));
    let quit = spans.iter().find(|s| s.name.ends_with("BackMsg") && s.parent_id == answer.span_id);
    let quit = quit.expect("the quit send, a child of the answer");
    let down = spans.iter().find(|s| s.hop == Hop::Signal).expect("the Down signal's hop");
    assert_eq!((down.parent_id, down.agent), (quit.span_id, front.id().to_bits()));
    assert_accounted(&shards);
}

#[test]
fn with_sampling_off_nothing_is_recorded() {
    let mut shards = cluster(2);
    let (front, tracing) = setup(&mut shards);
    shards[0].inject(front, FrontMsg::Go).map_err(|_| "refused").unwrap();
    settle(&mut shards);
    let mut spans = Vec::new();
    assert_eq!(tracing.drain(&mut spans), 0);
    assert_eq!(tracing.recorded(), 0);
    assert!(!shards.iter().any(|s| s.tracer.on()));
}

/// Starts a trace in its handler and sends to a mailbox that is full.
struct Opener {
    to: Addr<u32>,
    refused: std::rc::Rc<std::cell::Cell<Option<u32>>>,
}

impl Agent for Opener {
    type Msg = u32;
    fn handle(&mut self, n: u32, ctx: &mut Ctx<'_>) {
        let started = ctx.start_trace();
        assert_eq!(ctx.start_trace(), started, "a second start continues the trace");
        for m in [n, n + 1] {
            if let Err(e) = ctx.send(self.to, m) {
                self.refused.set(Some(e.into_inner()));
            }
        }
    }
}

struct Sink;

impl Agent for Sink {
    type Msg = u32;
    fn handle(&mut self, _n: u32, _ctx: &mut Ctx<'_>) {}
}

#[test]
fn an_opted_in_agent_starts_traces_and_a_refused_traced_send_returns_the_message() {
    let limits = crate::shard::ShardLimits {
        mailbox_capacity: 1,
        overflow: crate::mailbox::OverflowPolicy::Reject,
        ..Default::default()
    };
    let mut shards = Shard::cluster(1, limits, 64).unwrap();
    let sink = shards[0].spawn(Sink).unwrap();
    let refused = std::rc::Rc::new(std::cell::Cell::new(None));
    let opener = shards[0].spawn(Opener { to: sink, refused: refused.clone() }).unwrap();
    settle(&mut shards);
    // Two sends in one handler: the sink's one-slot mailbox refuses the second.
    shards[0].inject(opener, 1).unwrap();
    settle(&mut shards);
    assert_eq!(refused.get(), Some(2), "the refused message came back as a u32");
    let tracing = TraceHandle { shared: shards[0].shared.trace.clone() };
    let mut spans = Vec::new();
    tracing.drain(&mut spans);
    let starts: Vec<_> = spans.iter().filter(|s| s.name == "start_trace").collect();
    assert_eq!(starts.len(), 1, "{spans:#?}");
    let delivered = spans.iter().find(|s| s.agent == sink.id().to_bits()).expect("the delivered send's hop");
    assert_eq!((delivered.parent_id, delivered.trace_id), (starts[0].span_id, starts[0].trace_id));
    assert_eq!(spans.len(), 2, "the refused send left no span: {spans:#?}");
    assert_eq!(shards[0].stats().counters.rejected_full, 1);
}

/// Under a trace, sends itself a step and arms itself a timer; counts its steps.
struct Looper;

enum LoopMsg {
    Start,
    Step,
    Timer,
}

impl Agent for Looper {
    type Msg = LoopMsg;
    fn handle(&mut self, msg: LoopMsg, ctx: &mut Ctx<'_>) {
        if let LoopMsg::Start = msg {
            ctx.start_trace();
            let me = ctx.myself();
            let _ = ctx.send(me, LoopMsg::Step);
            ctx.send_after(me, LoopMsg::Timer, std::time::Duration::ZERO);
        }
    }
}

#[test]
fn a_self_send_is_a_loop_step_not_a_hop_but_a_self_armed_timer_carries_the_trace() {
    let mut shards = cluster(1);
    let looper = shards[0].spawn(Looper).unwrap();
    settle(&mut shards);
    let tracing = TraceHandle { shared: shards[0].shared.trace.clone() };
    // Sampling on as well: a self-send is not a root either.
    tracing.set_sample(1.0);
    shards[0].inject(looper, LoopMsg::Start).map_err(|_| "refused").unwrap();
    for _ in 0..50 {
        shards[0].pass();
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
    tracing.set_sample(0.0);
    settle(&mut shards);
    let mut spans = Vec::new();
    tracing.drain(&mut spans);
    let start = spans.iter().find(|s| s.name == "start_trace").expect("the opt-in's span");
    let timer: Vec<&Span> = spans.iter().filter(|s| s.parent_id == start.span_id).collect();
    assert_eq!(timer.len(), 1, "only the timer follows the trace: {spans:#?}");
    assert!(timer[0].name.ends_with("LoopMsg"));
    // One LoopMsg hop recorded, the timer: not the step, though sampling was on (the Start
    // came through the inject queue untraced).
    assert_eq!(spans.iter().filter(|s| s.name.ends_with("LoopMsg")).count(), 1, "{spans:#?}");
}

/// Starts a trace and sends `n` increments to a counter.
struct Burst {
    counter: Addr<crate::builtin::CounterMsg>,
}

impl Agent for Burst {
    type Msg = u64;
    fn handle(&mut self, n: u64, ctx: &mut Ctx<'_>) {
        ctx.start_trace();
        for _ in 0..n {
            ctx.send(self.counter, crate::builtin::CounterMsg::Add(1)).expect("room");
        }
    }
}

#[test]
fn a_full_span_buffer_loses_only_spans_and_counts_them() {
    let config = super::TraceConfig::new().buffer(8);
    let limits = crate::shard::ShardLimits::default();
    let mut shards = Shard::cluster_traced(2, limits, 64, crate::shard::Clock::new(), config).unwrap();
    let counter = shards[1].spawn(crate::builtin::Counter::default()).unwrap();
    let burst = shards[0].spawn(Burst { counter }).unwrap();
    settle(&mut shards);
    shards[0].inject(burst, 1000).map_err(|_| "refused").unwrap();
    settle(&mut shards);
    // Every message arrived: no dead letter, the counter's shard handled all 1000, and the
    // accounting balances.
    let counters = shards[1].stats().counters;
    assert_eq!((counters.delivered, counters.dead_letters_total()), (1000, 0));
    assert_accounted(&shards);
    // 1,001 spans were made (the opt-in's and one per increment); the buffers kept 8 + 1.
    let tracing = TraceHandle { shared: shards[0].shared.trace.clone() };
    assert_eq!(tracing.recorded() + tracing.dropped(), 1001);
    assert_eq!(tracing.dropped(), 992);
    let mut spans = Vec::new();
    assert_eq!(tracing.drain(&mut spans), 9);
}
