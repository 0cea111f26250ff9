//! What happens to a [`ReplyTo`](super::ReplyTo) dropped without an answer: the ask fails at
//! once instead of waiting out its timeout.
//!
//! A dropped token cannot reach its shard by itself (it holds no handle on the engine, and the
//! drop may run in the middle of a handler that has the shard borrowed), so it leaves a note on
//! its thread:
//! - a host ask's cell is failed right away (it is shared with the waiting host thread);
//! - a shard ask's token is pushed onto this thread's fixed list of dropped tokens, which the
//!   shard running on this thread drains every pass (`Shard::fail_dropped_asks`). The list
//!   never allocates; past [`DROPPED_CAPACITY`] per pass, or on a thread that runs no shard,
//!   the ask times out as it did before.
//!
//! Where the engine itself drops a message that carries a token (a dead letter, a handler that
//! panicked), the reason is known: [`with_drop_reason`] names it for the drops it covers, and a
//! drop while the thread unwinds a panic names `Panicked`. The ask fails with
//! `Undelivered(reason)` then, whether the token was the request's own or one it carried on
//! someone's behalf; the request's own shard token is skipped, since the dead-letter path fails
//! that ask itself from the envelope's `request`.

use super::AskError;
use crate::metrics::DeadLetterReason;
use std::cell::{Cell, RefCell};

/// Dropped shard-ask tokens one thread remembers between two passes of its shard.
pub(crate) const DROPPED_CAPACITY: usize = 256;

/// A dropped token and why (`None`: its holder let go of it).
type Noted = (u64, Option<DeadLetterReason>);

struct DroppedTokens {
    len: usize,
    tokens: [Noted; DROPPED_CAPACITY],
}

/// Why the engine is dropping messages right now, and the shard token it fails itself.
#[derive(Clone, Copy)]
struct DropContext {
    reason: DeadLetterReason,
    own_token: Option<u64>,
}

thread_local! {
    /// Set while the engine drops messages on this thread.
    static DROP_CONTEXT: Cell<Option<DropContext>> = const { Cell::new(None) };
    /// Whether `DROPPED` holds any token: the shard's per-pass look is this one load.
    static ANY_DROPPED: Cell<bool> = const { Cell::new(false) };
    /// Tokens of shard asks dropped unanswered on this thread.
    static DROPPED: RefCell<DroppedTokens> =
        const { RefCell::new(DroppedTokens { len: 0, tokens: [(0, None); DROPPED_CAPACITY] }) };
}

/// Runs `f` (which drops messages) with `reason` as the reason of any token it drops, except
/// `own_token`, the ask the caller fails itself.
#[inline]
pub(crate) fn with_drop_reason<T>(reason: DeadLetterReason, own_token: Option<u64>, f: impl FnOnce() -> T) -> T {
    let previous = DROP_CONTEXT.replace(Some(DropContext { reason, own_token }));
    let out = f();
    DROP_CONTEXT.set(previous);
    out
}

/// Why a token dropped now was dropped: the engine's reason (with the token it fails itself),
/// a panic, or `None` (the holder let go of it).
fn engine_context() -> Option<DropContext> {
    DROP_CONTEXT.try_with(Cell::get).ok().flatten().or_else(|| {
        std::thread::panicking().then_some(DropContext { reason: DeadLetterReason::Panicked, own_token: None })
    })
}

/// The error a host ask whose token is dropped now fails with.
pub(crate) fn host_drop_error() -> AskError {
    drop_error(engine_context().map(|c| c.reason))
}

/// The error an ask fails with when its token was dropped for `reason`.
pub(crate) fn drop_error(reason: Option<DeadLetterReason>) -> AskError {
    reason.map_or(AskError::Dropped, AskError::Undelivered)
}

/// Notes that the shard-ask `token` was dropped unanswered (unless it is the token the engine
/// is failing itself).
pub(crate) fn note_dropped_token(token: u64) {
    let context = engine_context();
    if context.is_some_and(|c| c.own_token == Some(token)) {
        return;
    }
    let _ = DROPPED.try_with(|d| {
        if let Ok(mut d) = d.try_borrow_mut() {
            if d.len < DROPPED_CAPACITY {
                let i = d.len;
                d.tokens[i] = (token, context.map(|c| c.reason));
                d.len += 1;
                ANY_DROPPED.set(true);
            }
        }
    });
}

/// Hands every token dropped on this thread since the last call to `fail`, with why.
#[inline]
pub(crate) fn drain_dropped_tokens(mut fail: impl FnMut(u64, Option<DeadLetterReason>)) -> usize {
    if !ANY_DROPPED.get() {
        return 0;
    }
    ANY_DROPPED.set(false);
    let taken = DROPPED.with(|d| {
        let mut d = d.borrow_mut();
        if d.len == 0 {
            return None;
        }
        let n = std::mem::take(&mut d.len);
        Some((n, d.tokens))
    });
    let Some((n, tokens)) = taken else { return 0 };
    for &(token, reason) in &tokens[..n] {
        fail(token, reason);
    }
    n
}
