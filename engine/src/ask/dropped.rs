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
//! drop while the thread unwinds a panic names `Panicked`. Such a host ask fails with
//! `Undelivered(reason)`; a shard ask is left alone there, since the dead-letter and panic
//! paths fail it themselves from the envelope's `request`.

use super::AskError;
use crate::metrics::DeadLetterReason;
use std::cell::{Cell, RefCell};

/// Dropped shard-ask tokens one thread remembers between two passes of its shard.
pub(crate) const DROPPED_CAPACITY: usize = 256;

struct DroppedTokens {
    len: usize,
    tokens: [u64; DROPPED_CAPACITY],
}

thread_local! {
    /// Why the engine is dropping messages right now on this thread, if it is.
    static DROP_REASON: Cell<Option<DeadLetterReason>> = const { Cell::new(None) };
    /// Tokens of shard asks dropped unanswered on this thread.
    static DROPPED: RefCell<DroppedTokens> =
        const { RefCell::new(DroppedTokens { len: 0, tokens: [0; DROPPED_CAPACITY] }) };
}

/// Runs `f` (which drops messages) with `reason` as the reason of any token it drops.
#[inline]
pub(crate) fn with_drop_reason<T>(reason: DeadLetterReason, f: impl FnOnce() -> T) -> T {
    let previous = DROP_REASON.replace(Some(reason));
    let out = f();
    DROP_REASON.set(previous);
    out
}

/// Why a token dropped now was dropped: the engine's reason, a panic, or `None` (the holder
/// let go of it).
fn engine_reason() -> Option<DeadLetterReason> {
    DROP_REASON
        .try_with(Cell::get)
        .ok()
        .flatten()
        .or_else(|| std::thread::panicking().then_some(DeadLetterReason::Panicked))
}

/// The error a host ask whose token is dropped now fails with.
pub(crate) fn host_drop_error() -> AskError {
    engine_reason().map_or(AskError::Dropped, AskError::Undelivered)
}

/// Notes that the shard-ask `token` was dropped unanswered (unless the engine dropped it for
/// a reason, and fails the ask itself).
pub(crate) fn note_dropped_token(token: u64) {
    if engine_reason().is_some() {
        return;
    }
    let _ = DROPPED.try_with(|d| {
        if let Ok(mut d) = d.try_borrow_mut() {
            if d.len < DROPPED_CAPACITY {
                let i = d.len;
                d.tokens[i] = token;
                d.len += 1;
            }
        }
    });
}

/// Hands every token dropped on this thread since the last call to `fail`.
#[inline]
pub(crate) fn drain_dropped_tokens(mut fail: impl FnMut(u64)) -> usize {
    let taken = DROPPED.with(|d| {
        let mut d = d.borrow_mut();
        if d.len == 0 {
            return None;
        }
        let n = std::mem::take(&mut d.len);
        Some((n, d.tokens))
    });
    let Some((n, tokens)) = taken else { return 0 };
    for &token in &tokens[..n] {
        fail(token);
    }
    n
}
