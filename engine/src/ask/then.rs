//! Typed answers: what the asking shard does with the answer to a typed ask.
//!
//! A typed ask (`Ctx::ask(..).then(adapt)`) stores its adapter with its reply slot on the
//! asking shard, type-erased as a [`Then`]: the closure in a [`Payload`] (inline when it is
//! small, so a steady-state ask allocates nothing) and one monomorphised function that knows
//! its types. When the answer (or a failure, or the timeout) settles the slot, the `Then` stays
//! parked in the slot (reserved: neither live nor free) and the shard queues a `Kind::Answer`
//! envelope to the asker that names the slot. The asker's dispatch takes it out
//! (`PendingAsks::take_parked`, which frees the slot), unpacks the reply as the `R` that
//! `ReplyTo<R>` promised, calls the adapter and writes its message straight into storage of the
//! asker's message type, which goes to `Agent::handle`. The adapter is user code, so it runs
//! inside the agent's panic isolation, never on the shard itself; the adapter is moved once,
//! in and once out, and the message is never boxed.
//!
//! Scatter/gather (`Ctx::ask_all`) gives each part's slot a [`Continuation::Part`] that files
//! the part's answer in a [`Gather`]; when the last part is filed the shard queues one
//! `Kind::Answer` naming the gather, and the asker's dispatch runs the finisher over the
//! answers in the order the requests were made.
//!
//! Invariants:
//! - every continuation runs at most once, on the asking shard's thread: exactly once when the
//!   asker is alive to receive its answer; an answer that cannot be delivered (the asker
//!   stopped) is a dead letter and its parked adapter or gather is dropped with it;
//! - a gather's finisher runs once, after all of its parts settled;
//! - accounting: a single ask's answer carries its reply's `counted` flag to the asker; a gather
//!   counts each part's reply delivered when it is filed and hands over its combined answer
//!   uncounted, like a timeout notice.

use super::AskError;
use crate::payload::Payload;
use std::any::TypeId;
use std::mem::MaybeUninit;

/// Bit of a `Kind::Answer` envelope's `request` that says it names a gather, not a single
/// parked adapter; the low 32 bits are the table index.
pub(crate) const ANSWER_GATHER_BIT: u64 = 1 << 63;

/// A typed ask's adapter, type-erased: the closure, the function that knows its types, and
/// the type of the message it builds. The message is written straight into the caller's
/// storage of that type (checked), so handing it to `handle` costs no payload of its own.
pub(crate) struct Then {
    adapter: Payload,
    /// Safety: `out` must be valid for a write of the output type.
    run: unsafe fn(Payload, Result<Payload, AskError>, *mut ()),
    output: TypeId,
}

impl Then {
    /// Wraps `adapt`, which turns the answer into a message `T` for the asker.
    pub(crate) fn new<R, T, F>(adapt: F) -> Self
    where
        R: Send + 'static,
        T: Send + 'static,
        F: FnOnce(Result<R, AskError>) -> T + Send + 'static,
    {
        Self { adapter: Payload::new(adapt), run: run_adapter::<R, T, F>, output: TypeId::of::<T>() }
    }

    /// Runs the adapter on `reply` (a reply payload, or why the ask failed) and returns its
    /// message when that is a `T`; otherwise gives the adapter back unrun.
    #[inline(always)]
    pub(crate) fn run_as<T: 'static>(self, reply: Result<Payload, AskError>) -> Result<T, Self> {
        if self.output != TypeId::of::<T>() {
            return Err(self);
        }
        let mut out = MaybeUninit::<T>::uninit();
        // SAFETY: the adapter's output type is `T` (checked above), and `out` is valid, aligned
        // storage for one `T`; `run_adapter` writes it exactly once unless the adapter panics,
        // in which case `out` is never read (a `MaybeUninit` drops nothing).
        unsafe {
            (self.run)(self.adapter, reply, out.as_mut_ptr().cast());
            Ok(out.assume_init())
        }
    }
}

/// Unpacks a reply as the `R` its `ReplyTo<R>` promised.
fn unpack<R: 'static>(reply: Result<Payload, AskError>) -> Result<R, AskError> {
    reply.and_then(|p| p.take::<R>().map_err(|_| AskError::WrongReplyType))
}

/// # Safety
///
/// `out` must be valid for a write of one `T`.
unsafe fn run_adapter<R, T, F>(adapter: Payload, reply: Result<Payload, AskError>, out: *mut ())
where
    R: Send + 'static,
    T: Send + 'static,
    F: FnOnce(Result<R, AskError>) -> T + Send + 'static,
{
    let Ok(adapt) = adapter.take::<F>() else {
        unreachable!("a Then holds the adapter type it was built with");
    };
    let message = adapt(unpack::<R>(reply));
    // SAFETY: the caller guarantees `out` is valid for a write of one `T`.
    unsafe { out.cast::<T>().write(message) };
}

/// A gather's finisher, type-erased like [`Then`]: turns every part's answer, in order, into
/// one message, written into the caller's storage.
pub(crate) struct Finish {
    finisher: Payload,
    /// Safety: `out` must be valid for a write of the output type.
    run: unsafe fn(Payload, Vec<Result<Payload, AskError>>, *mut ()),
    output: TypeId,
}

impl Finish {
    /// Wraps `finish`, which turns the parts' answers into a message `T` for the asker.
    pub(crate) fn new<R, T, F>(finish: F) -> Self
    where
        R: Send + 'static,
        T: Send + 'static,
        F: FnOnce(Vec<Result<R, AskError>>) -> T + Send + 'static,
    {
        Self { finisher: Payload::new(finish), run: run_finisher::<R, T, F>, output: TypeId::of::<T>() }
    }

    /// Runs the finisher over `parts` and returns its message when that is a `T`; otherwise
    /// `None`, unrun.
    fn run_as<T: 'static>(self, parts: Vec<Result<Payload, AskError>>) -> Option<T> {
        if self.output != TypeId::of::<T>() {
            return None;
        }
        let mut out = MaybeUninit::<T>::uninit();
        // SAFETY: as in `Then::run_as`: the output type is `T`, `out` holds one `T`, and it is
        // read only after `run_finisher` wrote it.
        unsafe {
            (self.run)(self.finisher, parts, out.as_mut_ptr().cast());
            Some(out.assume_init())
        }
    }
}

/// # Safety
///
/// `out` must be valid for a write of one `T`.
unsafe fn run_finisher<R, T, F>(finisher: Payload, parts: Vec<Result<Payload, AskError>>, out: *mut ())
where
    R: Send + 'static,
    T: Send + 'static,
    F: FnOnce(Vec<Result<R, AskError>>) -> T + Send + 'static,
{
    let Ok(finish) = finisher.take::<F>() else {
        unreachable!("a Finish holds the finisher type it was built with");
    };
    let message = finish(parts.into_iter().map(unpack::<R>).collect());
    // SAFETY: the caller guarantees `out` is valid for a write of one `T`.
    unsafe { out.cast::<T>().write(message) };
}

/// What a reply slot does with its answer when it settles.
pub(crate) enum Continuation {
    /// A single typed ask: park the adapter and queue the answer to the asker.
    Adapt(Then),
    /// Part `part` of gather `gather`: file the answer there.
    Part { gather: u32, part: u32 },
}

/// One scatter/gather in progress.
pub(crate) struct Gather {
    /// The asking agent (raw id).
    pub(crate) asker: u64,
    /// Each part's answer once it settled.
    parts: Vec<Option<Result<Payload, AskError>>>,
    remaining: usize,
    finish: Finish,
}

/// A table of entries with a free list: indices are reused, nothing moves.
struct Table<T> {
    entries: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self { entries: Vec::new(), free: Vec::new() }
    }
}

impl<T> Table<T> {
    fn insert(&mut self, value: T) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = Some(value);
                i
            }
            None => {
                self.entries.push(Some(value));
                (self.entries.len() - 1) as u32
            }
        }
    }

    fn take(&mut self, index: u32) -> Option<T> {
        let value = self.entries.get_mut(index as usize)?.take()?;
        self.free.push(index);
        Some(value)
    }

    fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        self.entries.get_mut(index as usize)?.as_mut()
    }

    #[cfg(test)]
    fn live(&self) -> usize {
        self.entries.len() - self.free.len()
    }
}

/// The asking shard's gathers in progress (single asks' adapters wait in their reply slots).
#[derive(Default)]
pub(crate) struct Answers {
    gathers: Table<Gather>,
}

/// A gather whose parts all settled, ready for its finisher.
pub(crate) struct GatherDone {
    pub(crate) asker: u64,
    pub(crate) index: u32,
}

impl Answers {
    /// Opens a gather of `parts` parts for `asker`; returns its index. The gather holds one
    /// guard count until [`Answers::close_scatter`], so parts that fail while the requests are
    /// still being sent cannot finish it early.
    pub(crate) fn open_gather(&mut self, asker: u64, parts: usize, finish: Finish) -> u32 {
        let parts = (0..parts).map(|_| None).collect();
        self.gathers.insert(Gather { asker, parts, remaining: 1, finish })
    }

    /// Drops the guard count once every request was sent; returns the gather when no part is
    /// left to wait for.
    pub(crate) fn close_scatter(&mut self, gather: u32) -> Option<GatherDone> {
        let g = self.gathers.get_mut(gather)?;
        g.remaining = g.remaining.saturating_sub(1);
        (g.remaining == 0).then_some(GatherDone { asker: g.asker, index: gather })
    }

    /// Counts one more part of `gather` whose request was sent (its answer is now awaited).
    pub(crate) fn expect_part(&mut self, gather: u32) {
        if let Some(g) = self.gathers.get_mut(gather) {
            g.remaining += 1;
        }
    }

    /// Files part `part`'s answer; returns the gather when that was the last part awaited.
    pub(crate) fn file_part(
        &mut self,
        gather: u32,
        part: u32,
        answer: Result<Payload, AskError>,
    ) -> Option<GatherDone> {
        let g = self.gathers.get_mut(gather)?;
        let entry = g.parts.get_mut(part as usize)?;
        if entry.is_some() {
            return None;
        }
        *entry = Some(answer);
        g.remaining = g.remaining.saturating_sub(1);
        (g.remaining == 0).then_some(GatherDone { asker: g.asker, index: gather })
    }

    /// Takes gather `index` (its parts all filed) and runs its finisher, building the asker's
    /// message `T`. `None` when the gather is gone; `Some(None)` when it builds another type
    /// than `T` (never: `AskAll::then` checks).
    pub(crate) fn finish_as<T: 'static>(&mut self, index: u32) -> Option<Option<T>> {
        let gather = self.gathers.take(index)?;
        let parts = gather.parts.into_iter().map(|p| p.unwrap_or(Err(AskError::Dropped))).collect();
        Some(gather.finish.run_as::<T>(parts))
    }

    /// Drops gather `index` (its answer could not be delivered).
    pub(crate) fn discard(&mut self, index: u32) {
        self.gathers.take(index);
    }

    /// Open gathers (for tests).
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.gathers.live()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adapter_gets_the_reply_as_its_promised_type() {
        let then = Then::new(|r: Result<u32, AskError>| r.map(|v| v * 2));
        let out = then.run_as::<Result<u32, AskError>>(Ok(Payload::new(21u32)));
        assert_eq!(out.ok(), Some(Ok(42)));
    }

    #[test]
    fn a_reply_of_another_type_reaches_the_adapter_as_wrong_reply_type() {
        let then = Then::new(|r: Result<u32, AskError>| r);
        let out = then.run_as::<Result<u32, AskError>>(Ok(Payload::new("text")));
        assert_eq!(out.ok(), Some(Err(AskError::WrongReplyType)));
    }

    #[test]
    fn a_gather_finishes_once_every_part_is_filed_in_request_order() {
        let mut answers = Answers::default();
        let finish = Finish::new(|parts: Vec<Result<u8, AskError>>| parts);
        let g = answers.open_gather(7, 3, finish);
        for _ in 0..3 {
            answers.expect_part(g);
        }
        assert!(answers.file_part(g, 2, Ok(Payload::new(2u8))).is_none());
        assert!(answers.file_part(g, 0, Err(AskError::Timeout)).is_none());
        assert!(answers.file_part(g, 0, Ok(Payload::new(9u8))).is_none(), "a part is filed once");
        assert!(answers.file_part(g, 1, Ok(Payload::new(1u8))).is_none(), "the scatter's guard holds it");
        let done = answers.close_scatter(g).expect("every part filed");
        assert_eq!(done.asker, 7);
        let parts = answers.finish_as::<Vec<Result<u8, AskError>>>(done.index).expect("gather");
        assert_eq!(parts, Some(vec![Err(AskError::Timeout), Ok(1), Ok(2)]));
        assert_eq!(answers.live(), 0);
    }

    #[test]
    fn a_gather_with_no_parts_is_ready_when_its_scatter_closes() {
        let mut answers = Answers::default();
        let g = answers.open_gather(1, 0, Finish::new(|parts: Vec<Result<u8, AskError>>| parts.len()));
        let done = answers.close_scatter(g).expect("nothing to wait for");
        assert_eq!(answers.finish_as::<usize>(done.index), Some(Some(0)));
    }

    #[test]
    fn an_adapter_asked_for_another_type_is_not_run() {
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = ran.clone();
        let then = Then::new(move |r: Result<u8, AskError>| {
            seen.store(true, std::sync::atomic::Ordering::Relaxed);
            r
        });
        assert!(then.run_as::<String>(Ok(Payload::new(1u8))).is_err());
        assert!(!ran.load(std::sync::atomic::Ordering::Relaxed));
    }

    #[test]
    fn a_large_message_and_a_boxed_adapter_go_through_intact() {
        let big = [7u64; 16];
        let then = Then::new(move |r: Result<String, AskError>| (big, r.ok()));
        let out = then.run_as::<([u64; 16], Option<String>)>(Ok(Payload::new("hi".to_owned())));
        assert_eq!(out.ok(), Some(([7u64; 16], Some("hi".to_owned()))));
    }

    #[test]
    fn a_discarded_gather_frees_its_entry_and_indices_are_reused() {
        let mut answers = Answers::default();
        let finish = || Finish::new(|parts: Vec<Result<u8, AskError>>| parts.len());
        let a = answers.open_gather(1, 2, finish());
        answers.discard(a);
        assert_eq!(answers.live(), 0);
        assert_eq!(answers.open_gather(1, 2, finish()), a);
    }
}
