//! A connection's input and output buffers, lent from its shard while in use.
//!
//! An idle connection should cost a few KiB, not two 16 KiB buffers. Each shard keeps one
//! spare read buffer and one spare output buffer ([`Spares`]); a connection borrows the read
//! buffer for one read-and-parse and the output buffer for one collect-and-write, and gives each
//! back when it holds nothing afterwards. Only a connection left with bytes it could not finish
//! (half a request, output the client has not read) keeps a buffer: a small leftover moves into
//! a buffer of its own size, a large one keeps the lent buffer (the next borrower gets a new one).
//!
//! Invariants: [`Input`]'s buffer is initialised over its whole length (reads go into
//! `buf[end..]` with no zeroing per read); `start <= end <= buf.len()`; the bytes waiting are
//! `buf[start..end]`. A spare holds no bytes of any connection.

use std::cell::RefCell;

/// Size of a read buffer (and of the largest output buffer kept as a spare).
pub const READ_CHUNK: usize = 16 * 1024;
/// A read with less free room than this first moves to a larger buffer.
const MIN_ROOM: usize = 4 * 1024;
/// A leftover this small moves out of a lent read buffer into one of its own size.
const SMALL_LEFTOVER: usize = 1024;

/// A shard's spare buffers, lent to its connections (one connection uses them at a time).
#[derive(Default)]
pub struct Spares {
    input: RefCell<Vec<u8>>,
    output: RefCell<Vec<u8>>,
}

impl Spares {
    /// A read buffer: the spare (initialised once), or a new one.
    fn take_input(&self) -> Vec<u8> {
        let spare = std::mem::take(&mut *self.input.borrow_mut());
        if spare.len() >= READ_CHUNK {
            spare
        } else {
            vec![0; READ_CHUNK]
        }
    }

    /// Gives a read buffer back (dropped when the spare is there already, or it is oversized).
    fn give_input(&self, buf: Vec<u8>) {
        let mut spare = self.input.borrow_mut();
        if spare.is_empty() && buf.len() == READ_CHUNK {
            *spare = buf;
        }
    }

    /// An empty output buffer: the spare, or a new one.
    pub fn take_output(&self) -> Vec<u8> {
        std::mem::take(&mut *self.output.borrow_mut())
    }

    /// Gives an empty output buffer back (dropped when the spare is there, or it grew large).
    pub fn give_output(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut spare = self.output.borrow_mut();
        if spare.capacity() == 0 && buf.capacity() <= 4 * READ_CHUNK {
            *spare = buf;
        }
    }
}

/// A connection's input: the bytes read and not yet parsed.
#[derive(Default)]
pub struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Input {
    /// The bytes waiting to be parsed.
    pub fn waiting(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// How many bytes wait.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Marks `n` waiting bytes parsed.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Room to read into: at least [`MIN_ROOM`] free bytes after the waiting ones (borrowing
    /// the shard's spare read buffer, or growing, when there is less).
    pub fn room(&mut self, spares: &Spares) -> &mut [u8] {
        if self.buf.len() - self.end < MIN_ROOM {
            let waiting = self.len();
            if self.buf.len() - waiting >= MIN_ROOM && self.buf.len() >= READ_CHUNK {
                self.buf.copy_within(self.start..self.end, 0);
            } else {
                let mut bigger = if waiting + MIN_ROOM <= READ_CHUNK {
                    spares.take_input()
                } else {
                    vec![0; (waiting + MIN_ROOM).next_power_of_two()]
                };
                bigger[..waiting].copy_from_slice(self.waiting());
                let old = std::mem::replace(&mut self.buf, bigger);
                spares.give_input(old);
            }
            self.start = 0;
            self.end = waiting;
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into [`Self::room`].
    pub fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// After parsing: gives the buffer back when nothing waits, or keeps a small leftover in a
    /// buffer of its own size.
    pub fn settle(&mut self, spares: &Spares) {
        let waiting = self.len();
        if waiting == 0 {
            spares.give_input(std::mem::take(&mut self.buf));
            self.start = 0;
            self.end = 0;
        } else if waiting <= SMALL_LEFTOVER && self.buf.len() >= READ_CHUNK {
            let own = self.waiting().to_vec();
            spares.give_input(std::mem::replace(&mut self.buf, own));
            self.start = 0;
            self.end = waiting;
        }
    }
}
