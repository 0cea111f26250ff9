//! Fuzz target for the RESP request parser.
//!
//! The input's first byte says how many chunk sizes follow (1 to 8); those bytes give the sizes
//! (1 to 64) of the reads the rest of the input arrives in, cycled. The target feeds the reads to a
//! parser with small limits the way a connection does and checks the parser's contract:
//! - a call never consumes more than it is given;
//! - a command or a rejection always consumes something, and a command is never empty;
//! - after `Incomplete` the unconsumed tail is no longer than the largest thing the parser may wait
//!   for whole (an inline line, an argument with its CRLF, or a header line);
//! - after `Fatal` the parser keeps answering `Fatal` and the run stops;
//! - each command, encoded back as a RESP array, parses back to itself with the same limits;
//! - `next_from` on a `BytesMut` read buffer (large arguments sliced off it), with room after the
//!   waiting bytes, finds the same steps and consumes the same bytes as `next`, read by read.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_server::resp::{Limits, Protocol, RequestParser, Step, Value, HEADER_LINE_MAX};

/// What follows the waiting bytes in the `next_from` read buffer.
const ROOM: &[u8] = b"#room#";

/// Small limits, so short inputs cross them.
const LIMITS: Limits = Limits { max_bulk: 64, max_args: 8, max_inline: 128 };

fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else { return };
    let count = usize::from(count % 8) + 1;
    let (sizes, input) = rest.split_at(count.min(rest.len()));
    let sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b % 64) + 1).collect();
    let tail_max = LIMITS.max_inline.max(LIMITS.max_bulk + 2).max(HEADER_LINE_MAX + 2);

    let mut parser = RequestParser::new(LIMITS);
    let mut buf: Vec<u8> = Vec::new();
    // Slices arguments of 8 bytes or more, copies shorter ones.
    let mut sliced = RequestParser::new(LIMITS).with_slice_min(8);
    let mut read_buf = bytes::BytesMut::new();
    let mut fed = 0;
    let mut size = sizes.iter().copied().cycle();
    while fed < input.len() {
        let n = size.next().unwrap_or(input.len()).min(input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + n]);
        read_buf.truncate(buf.len() - n);
        read_buf.extend_from_slice(&input[fed..fed + n]);
        // Room after the waiting bytes, which the parser must leave alone.
        read_buf.extend_from_slice(ROOM);
        fed += n;
        loop {
            let (used, step) = parser.next(&buf);
            let (sliced_used, sliced_step) = sliced.next_from(&mut read_buf, buf.len());
            assert_eq!((sliced_used, &sliced_step), (used, &step), "next_from and next disagree");
            assert!(used <= buf.len(), "consumed {used} of {} bytes", buf.len());
            buf.drain(..used);
            assert_eq!(read_buf[..], [&buf[..], ROOM].concat()[..], "next_from left other bytes than next");
            match step {
                Step::Incomplete => {
                    assert!(buf.len() <= tail_max, "{} bytes left unconsumed", buf.len());
                    break;
                }
                Step::Command(args) => {
                    assert!(used > 0, "a command consumed nothing");
                    assert!(!args.is_empty(), "an empty command");
                    check_round_trip(&args);
                }
                Step::Rejected(error) => {
                    assert!(used > 0, "a rejection consumed nothing");
                    assert!(!error.is_fatal(), "{error} rejected as if recoverable");
                }
                Step::Fatal(error) => {
                    assert!(error.is_fatal(), "{error} treated as fatal");
                    let (again, step) = parser.next(&buf);
                    assert_eq!((again, step), (0, Step::Fatal(error)));
                    return;
                }
            }
        }
    }
});

/// Encodes `args` as a RESP array and checks a fresh parser reads back exactly them, all of it.
fn check_round_trip<A: AsRef<[u8]>>(args: &[A]) {
    let mut wire = Vec::new();
    Value::Array(args.iter().map(|arg| Value::bulk(arg.as_ref().to_vec())).collect())
        .encode(Protocol::Resp2, &mut wire);
    let (used, step) = RequestParser::new(LIMITS).next(&wire);
    assert_eq!(used, wire.len(), "round trip left bytes");
    let Step::Command(back) = step else { panic!("round trip gave {step:?}") };
    assert!(back.iter().map(|b| b.as_ref()).eq(args.iter().map(AsRef::as_ref)), "round trip changed the command");
}
