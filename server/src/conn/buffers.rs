//! A connection's input and output buffers, lent from its shard while in use.
//!
//! An idle connection should cost a few KiB, not two 16 KiB buffers. Each shard keeps one
//! spare read buffer and one spare output buffer ([`Spares`]); a connection borrows the read
//! buffer for one read-and-parse and the output buffer for one collect-and-write, and gives each
//! back when it holds nothing afterwards. Only a connection left with bytes it could not finish
//! (half a request, output the client has not read) keeps a buffer: a small leftover moves into
//! a buffer of its own size, a large one keeps the lent buffer (the next borrower gets a new one).
//!
//! The read buffer is a `BytesMut`: the parser consumes requests from its front and splits each
//! large argument off it as a `Bytes` slice (see [`crate::resp::RequestParser::next_from`]), so
//! such an argument is not copied on the way in. A region whose room runs low is reclaimed in
//! place once no request holds a slice of it any more (`BytesMut::reserve`), or replaced when
//! one still does.
//!
//! Invariants: [`Input`]'s buffer holds the waiting bytes at `buf[..filled]`, then initialised
//! room up to `buf.len()` (reads go into `buf[filled..]` with no zeroing per read; a new or
//! reclaimed region is zeroed once). A spare holds no bytes of any connection, only room.

use crate::resp::{RequestParser, Step};
use bytes::{Buf, BytesMut};
use std::cell::RefCell;

/// Size of a read buffer (and of the largest output buffer kept as a spare).
pub const READ_CHUNK: usize = 16 * 1024;
/// A read with less free room than this first moves to a larger buffer.
const MIN_ROOM: usize = 4 * 1024;
/// A leftover this small moves out of a lent read buffer into one of its own size.
const SMALL_LEFTOVER: usize = 1024;
/// A region larger than this (grown for a large argument) is not kept as the shard's spare.
const SPARE_MAX: usize = 4 * READ_CHUNK;

/// Makes `buf` (holding `keep` waiting bytes, room after them ignored) hold at least `room`
/// bytes of initialised room after them: in place when no slice of its region is alive,
/// else in a new region. Returns the region's size.
fn regrow(buf: &mut BytesMut, keep: usize, room: usize) -> usize {
    buf.truncate(keep);
    buf.reserve(room);
    let capacity = buf.capacity();
    buf.resize(capacity, 0);
    capacity
}

/// A shard's spare buffers, lent to its connections (one connection uses them at a time).
#[derive(Default)]
pub struct Spares {
    input: RefCell<BytesMut>,
    output: RefCell<Vec<u8>>,
}

impl Spares {
    /// A read buffer with at least `MIN_ROOM + need` bytes of initialised room: the spare (its
    /// region reclaimed when it ran low), or a new one.
    fn take_input(&self, need: usize) -> BytesMut {
        let mut spare = std::mem::take(&mut *self.input.borrow_mut());
        if spare.len() < MIN_ROOM + need {
            regrow(&mut spare, 0, READ_CHUNK.max(MIN_ROOM + need));
        }
        spare
    }

    /// Gives back a read buffer that holds no waiting bytes (dropped when the spare is there
    /// already, or it is a large region).
    fn give_input(&self, buf: BytesMut, region: usize) {
        let mut spare = self.input.borrow_mut();
        if spare.capacity() == 0 && region <= SPARE_MAX {
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
    /// `buf[..filled]` waits; `buf[filled..]` is room.
    buf: BytesMut,
    filled: usize,
    /// The size of `buf`'s region when it was last made (0: a spare's, or none).
    region: usize,
}

impl Input {
    /// The bytes waiting to be parsed.
    pub fn waiting(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// How many bytes wait.
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Parses the next request from the waiting bytes (see `RequestParser::next_from`), which
    /// removes what it consumed from the front of the buffer.
    pub fn parse_next(&mut self, parser: &mut RequestParser) -> Step {
        let (used, step) = parser.next_from(&mut self.buf, self.filled);
        self.filled -= used;
        step
    }

    /// Room to read into: at least [`MIN_ROOM`] free bytes after the waiting ones (borrowing
    /// the shard's spare read buffer, reclaiming the region, or growing, when there is less).
    pub fn room(&mut self, spares: &Spares) -> &mut [u8] {
        if self.buf.len() - self.filled < MIN_ROOM {
            let waiting = self.filled;
            if waiting + MIN_ROOM <= READ_CHUNK {
                let mut lent = spares.take_input(waiting);
                lent[..waiting].copy_from_slice(self.waiting());
                self.buf = lent;
                self.region = 0;
            } else {
                self.region = regrow(&mut self.buf, waiting, (waiting + MIN_ROOM).next_power_of_two() - waiting);
            }
        }
        &mut self.buf[self.filled..]
    }

    /// Records that `n` bytes were read into [`Self::room`].
    pub fn filled(&mut self, n: usize) {
        self.filled += n;
    }

    /// After parsing: gives the buffer back when nothing waits, or keeps a small leftover in a
    /// buffer of its own size.
    pub fn settle(&mut self, spares: &Spares) {
        let waiting = self.filled;
        if waiting == 0 {
            spares.give_input(std::mem::take(&mut self.buf), self.region);
            self.region = 0;
        } else if waiting <= SMALL_LEFTOVER && self.buf.len() > waiting {
            let own = BytesMut::from(self.waiting());
            let mut lent = std::mem::replace(&mut self.buf, own);
            lent.advance(waiting);
            spares.give_input(lent, self.region);
            self.region = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{Limits, SLICE_MIN};

    /// Reads `bytes` into `input` as a connection does.
    fn read(input: &mut Input, spares: &Spares, bytes: &[u8]) {
        let room = input.room(spares);
        room[..bytes.len()].copy_from_slice(bytes);
        input.filled(bytes.len());
    }

    /// A SET request whose value is `len` bytes of `fill`.
    fn set(len: usize, fill: u8) -> Vec<u8> {
        let mut wire = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${len}\r\n").into_bytes();
        wire.extend(std::iter::repeat_n(fill, len));
        wire.extend_from_slice(b"\r\n");
        wire
    }

    #[test]
    fn a_parsed_request_leaves_the_rest_in_front_of_the_room() {
        let spares = Spares::default();
        let mut input = Input::default();
        let mut parser = RequestParser::new(Limits::default());
        read(&mut input, &spares, b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI");
        assert!(matches!(input.parse_next(&mut parser), Step::Command(_)));
        assert_eq!(input.parse_next(&mut parser), Step::Incomplete);
        assert_eq!(input.waiting(), b"PI");
        read(&mut input, &spares, b"NG\r\n");
        assert!(matches!(input.parse_next(&mut parser), Step::Command(_)));
        assert_eq!(input.len(), 0);
    }

    #[test]
    fn a_small_leftover_moves_into_a_buffer_of_its_own_and_the_region_goes_back() {
        let spares = Spares::default();
        let mut input = Input::default();
        let mut parser = RequestParser::new(Limits::default());
        // Most of the region used up first, so only a little room is left behind the leftover.
        let filler = set(READ_CHUNK - MIN_ROOM - 200, b'f');
        read(&mut input, &spares, &filler);
        assert!(matches!(input.parse_next(&mut parser), Step::Command(_)));
        read(&mut input, &spares, b"*1\r\n$4\r\nPI");
        assert_eq!(input.parse_next(&mut parser), Step::Incomplete);
        input.settle(&spares);
        assert_eq!(input.waiting(), b"PI");
        assert!(input.buf.capacity() <= SMALL_LEFTOVER, "a {}-byte buffer kept for 2 bytes", input.buf.capacity());
        assert!(spares.input.borrow().capacity() > 0, "the region went back to the shard");
    }

    /// Two connections on one shard: `first` parses a SET with a `SLICE_MIN` value (a slice of
    /// the region), then `second` parses one that uses up the rest of the region's room. Returns
    /// the region's start, and the first value.
    fn use_up_a_region(spares: &Spares, first: &mut Input, second: &mut Input) -> (*const u8, bytes::Bytes) {
        let mut parser = RequestParser::new(Limits::default());
        read(first, spares, &set(SLICE_MIN, b'v'));
        let start = first.waiting().as_ptr();
        let Step::Command(mut args) = first.parse_next(&mut parser) else { panic!("no command") };
        first.settle(spares);
        assert_eq!(first.buf.capacity(), 0, "an idle connection keeps no buffer");
        let rest = READ_CHUNK - set(SLICE_MIN, b'v').len() - MIN_ROOM;
        read(second, spares, &set(rest - set(0, b'x').len() + 1, b'x'));
        assert!(matches!(second.parse_next(&mut parser), Step::Command(_)));
        second.settle(spares);
        (start, args.swap_remove(2))
    }

    #[test]
    fn a_region_is_reclaimed_in_place_once_no_slice_holds_it() {
        let spares = Spares::default();
        let (mut first, mut second) = (Input::default(), Input::default());
        let (start, value) = use_up_a_region(&spares, &mut first, &mut second);
        drop(value);
        read(&mut first, &spares, b"PING\r\n");
        assert_eq!(first.waiting().as_ptr(), start, "the region was reclaimed, not reallocated");
    }

    #[test]
    fn a_region_a_slice_still_holds_is_replaced_not_overwritten() {
        let spares = Spares::default();
        let (mut first, mut second) = (Input::default(), Input::default());
        let (start, value) = use_up_a_region(&spares, &mut first, &mut second);
        read(&mut first, &spares, &vec![b'w'; READ_CHUNK - MIN_ROOM]);
        assert_ne!(first.waiting().as_ptr(), start, "a region a slice holds is not reused");
        assert!(value.len() == SLICE_MIN && value.iter().all(|&b| b == b'v'), "a live slice keeps its bytes");
    }
}
