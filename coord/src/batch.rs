//! Batching: [`Batcher`] coalesces small messages to one target into one message of up to
//! `max_items` items, sent when it is full or at the end of a tick, whichever is first.
//!
//! A batcher is a field of the agent that produces the items (the owner), and runs on its
//! shard. Protocol:
//!
//! 1. `push(ctx, item)` queues the item. The first item of a batch arms a timer
//!    (`Ctx::send_after`) that sends the owner a tick message, built by the `tick_msg` function
//!    the owner gave, carrying a [`BatchTick`] token.
//! 2. The batch is sent (wrapped into the target's message type by `wrap`) when it reaches
//!    `max_items` (and the timer is cancelled), or when the owner hands the tick back with
//!    [`Batcher::on_tick`], or on [`Batcher::flush`] (call it in `on_stop`).
//! 3. A tick whose batch already left (it fired before the cancel) carries an old token, and
//!    is counted as stale and ignored.
//!
//! Items keep their push order within a batch, and batches leave in order (the engine keeps the
//! order of messages from one sender to one target). Nothing is dropped silently: a batch whose
//! send fails comes back in a [`BatchError`] (with its message, to retry or log) and is counted
//! in [`BatchStats`]. Items still queued when the batcher is dropped are lost, so flush on stop.
//!
//! Invariants: `buf.len() < max_items` between calls; a timer is armed exactly when `buf` is
//! not empty; `epoch` names the armed timer.

use nexus_engine::agent::{Addr, Ctx, SendError, TimerId};
use std::fmt;
use std::time::Duration;

/// The most items a batch may be configured to hold.
pub const MAX_BATCH_ITEMS: usize = 1 << 16;

/// The token a tick message carries back to [`Batcher::on_tick`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BatchTick(u64);

/// How a [`Batcher`] batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// Items per batch at most (1 to [`MAX_BATCH_ITEMS`]): a batch this full is sent at once.
    pub max_items: usize,
    /// How long the first item of a batch waits for more before the batch is sent.
    pub tick: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { max_items: 64, tick: Duration::from_micros(100) }
    }
}

/// Why a batcher could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BatchConfigError {
    /// `max_items` out of range.
    #[error("max_items {0}: must be 1 to {MAX_BATCH_ITEMS}; hint: 1 disables batching")]
    MaxItems(usize),
}

/// A batch that could not be sent: the message (to retry) and how many items it holds.
pub struct BatchError<M> {
    /// Items in the batch.
    pub items: usize,
    /// The send error, holding the batch's message.
    pub error: SendError<M>,
}

impl<M> fmt::Debug for BatchError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchError").field("items", &self.items).field("error", &self.error).finish()
    }
}

impl<M> fmt::Display for BatchError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a batch of {} items was not sent: {}", self.items, self.error)
    }
}

impl<M> std::error::Error for BatchError<M> {}

/// A batcher's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Items pushed.
    pub items: u64,
    /// Batches sent.
    pub batches: u64,
    /// Of those, sent because they were full.
    pub by_size: u64,
    /// Of those, sent by a tick.
    pub by_tick: u64,
    /// Of those, sent by `flush`.
    pub by_flush: u64,
    /// Batches whose send failed (returned to the caller).
    pub failed_batches: u64,
    /// Items in those batches.
    pub failed_items: u64,
    /// Ticks that came after their batch had left (ignored).
    pub stale_ticks: u64,
}

#[derive(Clone, Copy)]
enum Cause {
    Size,
    Tick,
    Flush,
}

/// Coalesces items of type `T` for one target taking `M`, in an owner taking `S`; see the
/// module docs.
pub struct Batcher<T, M, S> {
    target: Addr<M>,
    wrap: fn(Vec<T>) -> M,
    tick_msg: fn(BatchTick) -> S,
    config: BatchConfig,
    buf: Vec<T>,
    timer: Option<TimerId>,
    epoch: u64,
    stats: BatchStats,
}

impl<T, M: Send + 'static, S: Send + 'static> Batcher<T, M, S> {
    /// A batcher sending `wrap(items)` to `target`; `tick_msg` builds the owner's own message
    /// that carries a tick back (the owner's `handle` passes it to [`on_tick`](Self::on_tick)).
    /// The owner's message type must be `S`: the tick is sent to the running agent.
    ///
    /// # Errors
    /// `max_items` out of range.
    pub fn new(
        target: Addr<M>,
        config: BatchConfig,
        wrap: fn(Vec<T>) -> M,
        tick_msg: fn(BatchTick) -> S,
    ) -> Result<Self, BatchConfigError> {
        if config.max_items == 0 || config.max_items > MAX_BATCH_ITEMS {
            return Err(BatchConfigError::MaxItems(config.max_items));
        }
        Ok(Self {
            target,
            wrap,
            tick_msg,
            config,
            buf: Vec::with_capacity(config.max_items),
            timer: None,
            epoch: 0,
            stats: BatchStats::default(),
        })
    }

    /// Queues `item`; sends the batch if it is now full, or arms the tick if it is the first.
    ///
    /// # Errors
    /// The full batch could not be sent: it comes back in the error (and is counted).
    pub fn push(&mut self, ctx: &mut Ctx<'_>, item: T) -> Result<(), BatchError<M>> {
        self.buf.push(item);
        self.stats.items += 1;
        if self.buf.len() >= self.config.max_items {
            return self.send(ctx, Cause::Size);
        }
        if self.timer.is_none() {
            self.epoch += 1;
            let me = ctx.myself::<S>();
            self.timer = Some(ctx.send_after(me, (self.tick_msg)(BatchTick(self.epoch)), self.config.tick));
        }
        Ok(())
    }

    /// Handles a tick the owner received: sends the partial batch it was armed for (a stale
    /// tick is counted and ignored).
    ///
    /// # Errors
    /// The batch could not be sent: it comes back in the error (and is counted).
    pub fn on_tick(&mut self, ctx: &mut Ctx<'_>, tick: BatchTick) -> Result<(), BatchError<M>> {
        if self.timer.is_none() || tick.0 != self.epoch {
            self.stats.stale_ticks += 1;
            return Ok(());
        }
        self.timer = None;
        self.send(ctx, Cause::Tick)
    }

    /// Sends whatever is queued now (nothing if empty); call it in the owner's `on_stop`.
    ///
    /// # Errors
    /// The batch could not be sent: it comes back in the error (and is counted).
    pub fn flush(&mut self, ctx: &mut Ctx<'_>) -> Result<(), BatchError<M>> {
        self.send(ctx, Cause::Flush)
    }

    /// Items queued now.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Its counters.
    pub fn stats(&self) -> BatchStats {
        self.stats
    }

    fn send(&mut self, ctx: &mut Ctx<'_>, cause: Cause) -> Result<(), BatchError<M>> {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_timer(timer);
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.buf, Vec::with_capacity(self.config.max_items));
        let items = batch.len();
        match ctx.send(self.target, (self.wrap)(batch)) {
            Ok(()) => {
                self.stats.batches += 1;
                match cause {
                    Cause::Size => self.stats.by_size += 1,
                    Cause::Tick => self.stats.by_tick += 1,
                    Cause::Flush => self.stats.by_flush += 1,
                }
                Ok(())
            }
            Err(error) => {
                self.stats.failed_batches += 1;
                self.stats.failed_items += items as u64;
                Err(BatchError { items, error })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::engine;
    use nexus_engine::agent::{Agent, SpawnPlacement};
    use nexus_engine::ask::ReplyTo;
    use nexus_engine::engine::EngineHandle;

    const T: Duration = Duration::from_secs(5);
    const NEVER: Duration = Duration::from_secs(600);

    enum CollectorMsg {
        Batch(Vec<u32>),
        Report(ReplyTo<Vec<Vec<u32>>>),
    }

    #[derive(Default)]
    struct Collector(Vec<Vec<u32>>);

    impl Agent for Collector {
        type Msg = CollectorMsg;
        fn handle(&mut self, msg: CollectorMsg, ctx: &mut Ctx<'_>) {
            match msg {
                CollectorMsg::Batch(b) => self.0.push(b),
                CollectorMsg::Report(r) => ctx.reply(r, self.0.clone()),
            }
        }
    }

    enum OwnerMsg {
        Items(std::ops::Range<u32>),
        Tick(BatchTick),
        Stats(ReplyTo<(BatchStats, usize)>),
        Stop,
    }

    struct Owner {
        batcher: Batcher<u32, CollectorMsg, OwnerMsg>,
        errors: usize,
    }

    impl Agent for Owner {
        type Msg = OwnerMsg;
        fn handle(&mut self, msg: OwnerMsg, ctx: &mut Ctx<'_>) {
            match msg {
                OwnerMsg::Items(items) => {
                    for i in items {
                        if self.batcher.push(ctx, i).is_err() {
                            self.errors += 1;
                        }
                    }
                }
                OwnerMsg::Tick(t) => {
                    if self.batcher.on_tick(ctx, t).is_err() {
                        self.errors += 1;
                    }
                }
                OwnerMsg::Stats(r) => ctx.reply(r, (self.batcher.stats(), self.errors)),
                OwnerMsg::Stop => ctx.stop_self(),
            }
        }
        fn on_stop(&mut self, ctx: &mut Ctx<'_>) {
            if self.batcher.flush(ctx).is_err() {
                self.errors += 1;
            }
        }
    }

    fn pair(
        h: &EngineHandle,
        config: BatchConfig,
        collector_capacity: Option<u32>,
    ) -> (Addr<OwnerMsg>, Addr<CollectorMsg>) {
        let collector =
            h.spawn_with_capacity(SpawnPlacement::Shard(1), collector_capacity, Collector::default).unwrap();
        let owner = h
            .spawn(SpawnPlacement::Shard(1), move || Owner {
                batcher: Batcher::new(collector, config, CollectorMsg::Batch, OwnerMsg::Tick).unwrap(),
                errors: 0,
            })
            .unwrap();
        (owner, collector)
    }

    /// Waits until the collector holds `items` items in all, and returns its batches.
    fn collected(h: &EngineHandle, collector: Addr<CollectorMsg>, items: usize) -> Vec<Vec<u32>> {
        let deadline = std::time::Instant::now() + T;
        loop {
            let got = h.ask(collector, T, CollectorMsg::Report).unwrap();
            if got.iter().map(Vec::len).sum::<usize>() >= items {
                return got;
            }
            assert!(std::time::Instant::now() < deadline, "collected {got:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn n_items_make_one_message() {
        let engine = engine();
        let h = engine.handle();
        let (owner, collector) = pair(&h, BatchConfig { max_items: 4, tick: NEVER }, None);
        h.send(owner, OwnerMsg::Items(0..4)).unwrap();
        assert_eq!(collected(&h, collector, 4), vec![vec![0, 1, 2, 3]]);
        let (stats, errors) = h.ask(owner, T, OwnerMsg::Stats).unwrap();
        assert_eq!((stats.batches, stats.by_size, stats.items, errors), (1, 1, 4, 0));
        engine.shutdown().unwrap();
    }

    #[test]
    fn a_partial_batch_is_flushed_by_the_tick() {
        let engine = engine();
        let h = engine.handle();
        let (owner, collector) = pair(&h, BatchConfig { max_items: 100, tick: Duration::from_millis(10) }, None);
        h.send(owner, OwnerMsg::Items(0..3)).unwrap();
        assert_eq!(collected(&h, collector, 3), vec![vec![0, 1, 2]]);
        let (stats, _) = h.ask(owner, T, OwnerMsg::Stats).unwrap();
        assert_eq!((stats.batches, stats.by_tick), (1, 1));
        engine.shutdown().unwrap();
    }

    #[test]
    fn order_is_preserved_across_batches() {
        let engine = engine();
        let h = engine.handle();
        let (owner, collector) = pair(&h, BatchConfig { max_items: 3, tick: Duration::from_millis(2) }, None);
        for chunk in 0..10u32 {
            h.send(owner, OwnerMsg::Items(chunk * 7..chunk * 7 + 7)).unwrap();
        }
        let got = collected(&h, collector, 70);
        assert!(got.iter().all(|b| !b.is_empty() && b.len() <= 3), "{got:?}");
        assert_eq!(got.concat(), (0..70).collect::<Vec<u32>>());
        engine.shutdown().unwrap();
    }

    #[test]
    fn stopping_flushes_the_partial_batch() {
        let engine = engine();
        let h = engine.handle();
        let (owner, collector) = pair(&h, BatchConfig { max_items: 100, tick: NEVER }, None);
        h.send(owner, OwnerMsg::Items(0..2)).unwrap();
        h.send(owner, OwnerMsg::Stop).unwrap();
        assert_eq!(collected(&h, collector, 2), vec![vec![0, 1]]);
        engine.shutdown().unwrap();
    }

    #[test]
    fn a_failed_send_comes_back_and_is_counted() {
        let engine = engine();
        let h = engine.handle();
        // One slot in the collector's mailbox, and both on one shard: within one handler the
        // collector cannot drain it, so the second and third batches are refused.
        let (owner, collector) = pair(&h, BatchConfig { max_items: 1, tick: NEVER }, Some(1));
        h.send(owner, OwnerMsg::Items(0..3)).unwrap();
        let (stats, errors) = h.ask(owner, T, OwnerMsg::Stats).unwrap();
        assert_eq!((stats.batches, stats.failed_batches, stats.failed_items, errors), (1, 2, 2, 2));
        assert_eq!(collected(&h, collector, 1), vec![vec![0]]);
        engine.shutdown().unwrap();
    }

    #[test]
    fn a_bad_config_is_a_typed_error() {
        let engine = engine();
        let h = engine.handle();
        let collector = h.spawn(SpawnPlacement::Shard(0), Collector::default).unwrap();
        let zero = BatchConfig { max_items: 0, ..BatchConfig::default() };
        let err = Batcher::<u32, _, OwnerMsg>::new(collector, zero, CollectorMsg::Batch, OwnerMsg::Tick).err();
        assert_eq!(err, Some(BatchConfigError::MaxItems(0)));
        assert!(BatchConfigError::MaxItems(0).to_string().contains("hint:"));
        engine.shutdown().unwrap();
    }
}
