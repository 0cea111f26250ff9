//! Typed answers: what the asking shard does with the answer to a typed ask.
//!
//! A typed ask (`Ctx::ask(..).then(adapt)`) stores its adapter with its reply slot on the
//! asking shard, type-erased as a [`Then`]: the closure in a [`Payload`] (inline when it is
//! small, so a steady-state ask allocates nothing) and one monomorphised function that knows
//! its types. When the answer (or a failure, or the timeout) settles the slot, the shard parks
//! the `Then` in [`Answers`] and queues a `Kind::Answer` envelope to the asker that names it.
//! The asker's dispatch takes it back, unpacks the reply as the `R` that `ReplyTo<R>` promised,
//! calls the adapter and hands its value to `Agent::handle`. The adapter is user code, so it
//! runs inside the agent's panic isolation, never on the shard itself.
//!
//! Scatter/gather (`Ctx::ask_all`) gives each part's slot a [`Continuation::Part`] that files
//! the part's answer in a [`Gather`]; when the last part is filed the shard queues one
//! `Kind::Answer` naming the gather, and the asker's dispatch runs the finisher over the
//! answers in the order the requests were made.
//!
//! Invariants:
//! - every continuation runs at most once, on the asking shard's thread: exactly once when the
//!   asker is alive to receive its answer; an answer that cannot be delivered (the asker
//!   stopped) is a dead letter and its parked entry is dropped with it;
//! - a gather's finisher runs once, after all of its parts settled;
//! - accounting: a single ask's answer carries its reply's `counted` flag to the asker; a gather
//!   counts each part's reply delivered when it is filed and hands over its combined answer
//!   uncounted, like a timeout notice.

use super::AskError;
use crate::payload::Payload;

/// Bit of a `Kind::Answer` envelope's `request` that says it names a gather, not a single
/// parked adapter; the low 32 bits are the table index.
pub(crate) const ANSWER_GATHER_BIT: u64 = 1 << 63;

/// A typed ask's adapter, type-erased: the closure and the function that knows its types.
pub(crate) struct Then {
    adapter: Payload,
    run: fn(Payload, Result<Payload, AskError>) -> Payload,
}

impl Then {
    /// Wraps `adapt`, which turns the answer into a message `T` for the asker.
    pub(crate) fn new<R, T, F>(adapt: F) -> Self
    where
        R: Send + 'static,
        T: Send + 'static,
        F: FnOnce(Result<R, AskError>) -> T + Send + 'static,
    {
        Self { adapter: Payload::new(adapt), run: run_adapter::<R, T, F> }
    }

    /// Runs the adapter on `reply` (a reply payload, or why the ask failed); returns its value.
    pub(crate) fn run(self, reply: Result<Payload, AskError>) -> Payload {
        (self.run)(self.adapter, reply)
    }
}

/// Unpacks a reply as the `R` its `ReplyTo<R>` promised.
fn unpack<R: 'static>(reply: Result<Payload, AskError>) -> Result<R, AskError> {
    reply.and_then(|p| p.take::<R>().map_err(|_| AskError::WrongReplyType))
}

fn run_adapter<R, T, F>(adapter: Payload, reply: Result<Payload, AskError>) -> Payload
where
    R: Send + 'static,
    T: Send + 'static,
    F: FnOnce(Result<R, AskError>) -> T + Send + 'static,
{
    match adapter.take::<F>() {
        Ok(adapt) => Payload::new(adapt(unpack::<R>(reply))),
        // `Then::new` stored an `F`: this cannot happen.
        Err(_) => unreachable!("a Then holds the adapter type it was built with"),
    }
}

/// A gather's finisher, type-erased: turns every part's answer, in order, into one message.
pub(crate) struct Finish {
    finisher: Payload,
    run: fn(Payload, Vec<Result<Payload, AskError>>) -> Payload,
}

impl Finish {
    /// Wraps `finish`, which turns the parts' answers into a message `T` for the asker.
    pub(crate) fn new<R, T, F>(finish: F) -> Self
    where
        R: Send + 'static,
        T: Send + 'static,
        F: FnOnce(Vec<Result<R, AskError>>) -> T + Send + 'static,
    {
        Self { finisher: Payload::new(finish), run: run_finisher::<R, T, F> }
    }
}

fn run_finisher<R, T, F>(finisher: Payload, parts: Vec<Result<Payload, AskError>>) -> Payload
where
    R: Send + 'static,
    T: Send + 'static,
    F: FnOnce(Vec<Result<R, AskError>>) -> T + Send + 'static,
{
    match finisher.take::<F>() {
        Ok(finish) => Payload::new(finish(parts.into_iter().map(unpack::<R>).collect())),
        Err(_) => unreachable!("a Finish holds the finisher type it was built with"),
    }
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

/// The asking shard's parked adapters and gathers in progress.
#[derive(Default)]
pub(crate) struct Answers {
    parked: Table<Then>,
    gathers: Table<Gather>,
}

/// A gather whose parts all settled, ready for its finisher.
pub(crate) struct GatherDone {
    pub(crate) asker: u64,
    pub(crate) index: u32,
}

impl Answers {
    /// Parks `then` until its answer reaches the asker; returns the `request` word of the
    /// `Kind::Answer` envelope that names it.
    pub(crate) fn park(&mut self, then: Then) -> u64 {
        u64::from(self.parked.insert(then))
    }

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

    /// Takes the parked entry an `Answer` envelope names and runs it: the adapter on `reply`,
    /// or the gather's finisher over its parts. `None` when the entry is gone (never, while
    /// every answer is delivered or dead-lettered exactly once).
    pub(crate) fn run(&mut self, request: u64, reply: Result<Payload, AskError>) -> Option<Payload> {
        let index = request as u32;
        if request & ANSWER_GATHER_BIT == 0 {
            return Some(self.parked.take(index)?.run(reply));
        }
        let gather = self.gathers.take(index)?;
        let parts = gather.parts.into_iter().map(|p| p.unwrap_or(Err(AskError::Dropped))).collect();
        Some((gather.finish.run)(gather.finish.finisher, parts))
    }

    /// Drops the entry an undeliverable `Answer` envelope names.
    pub(crate) fn discard(&mut self, request: u64) {
        let index = request as u32;
        if request & ANSWER_GATHER_BIT == 0 {
            self.parked.take(index);
        } else {
            self.gathers.take(index);
        }
    }

    /// Parked adapters and open gathers (for tests and stats).
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.parked.live() + self.gathers.live()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adapter_gets_the_reply_as_its_promised_type() {
        let mut answers = Answers::default();
        let request = answers.park(Then::new(|r: Result<u32, AskError>| r.map(|v| v * 2)));
        let out = answers.run(request, Ok(Payload::new(21u32))).expect("parked");
        assert_eq!(out.take::<Result<u32, AskError>>().ok(), Some(Ok(42)));
        assert_eq!(answers.live(), 0);
    }

    #[test]
    fn a_reply_of_another_type_reaches_the_adapter_as_wrong_reply_type() {
        let mut answers = Answers::default();
        let request = answers.park(Then::new(|r: Result<u32, AskError>| r));
        let out = answers.run(request, Ok(Payload::new("text"))).expect("parked");
        assert_eq!(out.take::<Result<u32, AskError>>().ok(), Some(Err(AskError::WrongReplyType)));
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
        let out = answers.run(ANSWER_GATHER_BIT | u64::from(done.index), Err(AskError::Dropped)).expect("gather");
        let parts = out.take::<Vec<Result<u8, AskError>>>().unwrap_or_else(|_| panic!("the finisher's type"));
        assert_eq!(parts, vec![Err(AskError::Timeout), Ok(1), Ok(2)]);
        assert_eq!(answers.live(), 0);
    }

    #[test]
    fn a_gather_with_no_parts_is_ready_when_its_scatter_closes() {
        let mut answers = Answers::default();
        let g = answers.open_gather(1, 0, Finish::new(|parts: Vec<Result<u8, AskError>>| parts.len()));
        let done = answers.close_scatter(g).expect("nothing to wait for");
        let out = answers.run(ANSWER_GATHER_BIT | u64::from(done.index), Err(AskError::Dropped)).expect("gather");
        assert_eq!(out.take::<usize>().ok(), Some(0));
    }

    #[test]
    fn a_discarded_answer_frees_its_entry_and_indices_are_reused() {
        let mut answers = Answers::default();
        let a = answers.park(Then::new(|r: Result<u8, AskError>| r));
        answers.discard(a);
        assert_eq!(answers.live(), 0);
        let b = answers.park(Then::new(|r: Result<u8, AskError>| r));
        assert_eq!(a, b);
    }
}
