//! Tests of the RESP module: the parser case by case (framing, pipelining, inline quoting, every
//! error, every limit, chunking), the encoder for every variant in both protocols, and proptest
//! properties (no panic on any bytes in any chunking, round trips, limits among valid requests).
//!
//! Property tests run a fixed 512 cases each so CI time stays bounded.

use std::borrow::Cow;

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

/// Small limits that the tests can cross cheaply.
const SMALL: Limits = Limits { max_bulk: 16, max_args: 4, max_inline: 32 };

/// Feeds `input` to `parser` in pieces of the sizes in `chunks` (cycled; empty means whole),
/// dropping consumed bytes as a connection would, and returns every non-`Incomplete` step. Checks
/// the parser's contract after every call and stops after a fatal error.
fn drive(parser: &mut RequestParser, input: &[u8], chunks: &[usize]) -> Vec<Step> {
    let limits = parser.limits();
    let tail_max = limits.max_inline.max(limits.max_bulk + 2).max(HEADER_LINE_MAX + 2);
    let mut steps = Vec::new();
    let mut buf = Vec::new();
    let mut fed = 0;
    let mut sizes = chunks.iter().copied().filter(|&n| n > 0).cycle();
    while fed < input.len() {
        let size = sizes.next().unwrap_or(input.len()).min(input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + size]);
        fed += size;
        loop {
            let (used, step) = parser.next(&buf);
            assert!(used <= buf.len(), "consumed {used} of {}", buf.len());
            buf.drain(..used);
            match step {
                Step::Incomplete => {
                    assert!(buf.len() <= tail_max, "{} bytes left unconsumed", buf.len());
                    break;
                }
                Step::Fatal(_) => {
                    steps.push(step);
                    return steps;
                }
                other => {
                    assert!(used > 0, "{other:?} consumed nothing");
                    steps.push(other);
                }
            }
        }
    }
    steps
}

/// Parses `input` whole with `limits`.
fn parse_all(limits: Limits, input: &[u8]) -> Vec<Step> {
    drive(&mut RequestParser::new(limits), input, &[])
}

/// Parses `input` one byte at a time with `limits`.
fn parse_bytewise(limits: Limits, input: &[u8]) -> Vec<Step> {
    drive(&mut RequestParser::new(limits), input, &[1])
}

/// A command step from string arguments.
fn cmd(args: &[&str]) -> Step {
    Step::Command(args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect())
}

/// A command step from byte arguments.
fn command(args: Vec<Vec<u8>>) -> Step {
    Step::Command(args.into_iter().map(Bytes::from).collect())
}

/// The RESP array encoding of a request.
fn encode_request(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    Value::Array(args.iter().map(|a| Value::Bulk(Bytes::copy_from_slice(a))).collect())
        .encode(Protocol::Resp2, &mut out);
    out
}

/// The inline encoding of a request: every byte of every argument as a `\xHH` escape in quotes.
fn encode_inline(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for arg in args {
        out.push(b'"');
        for b in arg {
            out.extend_from_slice(format!("\\x{b:02X}").as_bytes());
        }
        out.extend_from_slice(b"\" ");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The reply text of a protocol error.
fn reply_text(error: &ProtocolError) -> String {
    match error.reply() {
        Value::Error(text) => text.into_owned(),
        other => panic!("reply is not an error: {other:?}"),
    }
}

/// Encodes a value to bytes.
fn enc(value: &Value, proto: Protocol) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode(proto, &mut out);
    out
}

// ---- framing ----

#[test]
fn parses_one_array_request() {
    let mut parser = RequestParser::new(Limits::default());
    let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    assert_eq!(parser.next(input), (input.len(), cmd(&["GET", "k"])));
    assert!(parser.is_idle());
    assert_eq!(parser.next(b""), (0, Step::Incomplete));
}

#[test]
fn parses_pipelined_requests_from_one_buffer() {
    let input = b"*1\r\n$4\r\nPING\r\nECHO hi\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n";
    let mut parser = RequestParser::new(Limits::default());
    let (used, step) = parser.next(input);
    assert_eq!((used, step), (14, cmd(&["PING"])));
    let (used2, step) = parser.next(&input[used..]);
    assert_eq!((used2, step), (9, cmd(&["ECHO", "hi"])));
    let rest = &input[used + used2..];
    assert_eq!(parser.next(rest), (rest.len(), cmd(&["SET", "k", ""])));
}

#[test]
fn bytewise_feeding_matches_whole() {
    let input: &[u8] =
        b"*2\r\n$4\r\nECHO\r\n$5\r\nhe\r\nl\r\n\r\n\nset 'a b' \"c\\x41\"\n*0\r\n*-1\r\n*1\r\n$1\r\nx\r\n";
    let whole = parse_all(Limits::default(), input);
    assert_eq!(whole, vec![cmd(&["ECHO", "he\r\nl"]), cmd(&["set", "a b", "cA"]), cmd(&["x"])]);
    assert_eq!(parse_bytewise(Limits::default(), input), whole);
}

#[test]
fn consumes_headers_and_whole_args_but_keeps_a_partial_bulk() {
    let mut parser = RequestParser::new(Limits::default());
    // The headers and the first argument are consumed; the partial second one is kept until whole.
    let input = b"*2\r\n$3\r\nGET\r\n$5\r\nab";
    assert_eq!(parser.next(input), (17, Step::Incomplete));
    assert_eq!(parser.next(b"ab"), (0, Step::Incomplete));
    assert_eq!(parser.next(b"abcde\r"), (0, Step::Incomplete));
    assert_eq!(parser.next(b"abcde\r\n"), (7, cmd(&["GET", "abcde"])));
}

#[test]
fn skips_empty_arrays_and_empty_lines() {
    let input = b"*0\r\n*-1\r\n\r\n\n  \t \r\nPING\r\n";
    assert_eq!(parse_all(Limits::default(), input), vec![cmd(&["PING"])]);
    let mut parser = RequestParser::new(Limits::default());
    assert_eq!(parser.next(b"*0\r\n\r\n"), (6, Step::Incomplete));
}

#[test]
fn a_large_bulk_in_small_reads_is_accepted_once_whole() {
    let size = Limits::DEFAULT_MAX_BULK;
    let mut input = format!("*2\r\n$3\r\nSET\r\n${size}\r\n").into_bytes();
    input.resize(input.len() + size, b'v');
    input.extend_from_slice(b"\r\n");
    let steps = drive(&mut RequestParser::new(Limits::default()), &input, &[64 * 1024]);
    match steps.as_slice() {
        [Step::Command(args)] => {
            assert_eq!(args.len(), 2);
            assert_eq!(args[1].len(), size);
        }
        other => panic!("unexpected steps: {:?}", other.len()),
    }
}

#[test]
fn a_long_inline_line_bytewise_is_searched_once() {
    // Quadratic searching would take minutes here; the remembered search offset keeps it linear.
    let mut line = vec![b'a'; Limits::DEFAULT_MAX_INLINE - 2];
    line[100] = b' ';
    line.extend_from_slice(b"\r\n");
    let steps = parse_bytewise(Limits { max_bulk: 1 << 20, ..Limits::default() }, &line);
    assert_eq!(steps.len(), 1);
    assert!(matches!(&steps[0], Step::Command(args) if args.len() == 2));
}

// ---- inline ----

#[test]
fn inline_splits_on_blanks() {
    assert_eq!(parse_all(SMALL, b"  SET\tk   v \r\n"), vec![cmd(&["SET", "k", "v"])]);
    assert_eq!(parse_all(SMALL, b"PING\n"), vec![cmd(&["PING"])]);
    // A lone \r inside the line separates too; \v only between arguments.
    assert_eq!(parse_all(SMALL, b"a\rb\x0b c\x0bd\r\n"), vec![cmd(&["a", "b\x0b", "c\x0bd"])]);
}

#[test]
fn inline_double_quotes_take_escapes() {
    let input = b"SET \"a b\" \"\\n\\r\\t\\\"\\\\\\x41\\x4a\\xzz\\q\"\r\n";
    assert_eq!(parse_all(Limits::default(), input), vec![cmd(&["SET", "a b", "\n\r\t\"\\AJxzzq"])]);
    assert_eq!(parse_all(SMALL, b"\"\\b\\a\" \"\"\r\n"), vec![cmd(&["\x08\x07", ""])]);
}

#[test]
fn inline_single_quotes_are_literal_but_for_escaped_quote() {
    let input = b"SET 'a \"b\\n' 'it\\'s'\r\n";
    assert_eq!(parse_all(SMALL, input), vec![cmd(&["SET", "a \"b\\n", "it's"])]);
}

#[test]
fn inline_quote_may_open_inside_an_argument() {
    assert_eq!(parse_all(SMALL, b"ab\"c d\" e\r\n"), vec![cmd(&["abc d", "e"])]);
}

#[test]
fn inline_nul_is_an_ordinary_byte() {
    assert_eq!(parse_all(SMALL, b"a\0b c\r\n"), vec![cmd(&["a\0b", "c"])]);
}

// ---- fatal errors ----

/// Asserts `input` ends in exactly `error`, both whole and byte by byte, and that its reply reads
/// `text`.
fn assert_fatal(input: &[u8], error: ProtocolError, text: &str) {
    for steps in [parse_all(SMALL, input), parse_bytewise(SMALL, input)] {
        assert_eq!(steps.last(), Some(&Step::Fatal(error.clone())), "input {:?}", String::from_utf8_lossy(input));
    }
    assert!(error.is_fatal());
    assert_eq!(reply_text(&error), text);
}

#[test]
fn invalid_multibulk_lengths_are_fatal() {
    let text = "ERR Protocol error: invalid multibulk length";
    for input in
        [&b"*abc\r\n"[..], b"*-2\r\n", b"*01\r\n", b"*-0\r\n", b"*\r\n", b"* 1\r\n", b"*1\n", b"*2147483648\r\n"]
    {
        assert_fatal(input, ProtocolError::InvalidMultibulkLength, text);
    }
    assert_fatal(b"*99999999999999999999\r\n", ProtocolError::InvalidMultibulkLength, text);
}

#[test]
fn invalid_bulk_lengths_are_fatal() {
    let text = "ERR Protocol error: invalid bulk length";
    for input in [&b"*1\r\n$-1\r\n"[..], b"*1\r\n$x\r\n", b"*1\r\n$+3\r\n", b"*1\r\n$\r\n", b"*1\r\n$3\r\r\n"] {
        assert_fatal(input, ProtocolError::InvalidBulkLength, text);
    }
}

#[test]
fn a_non_bulk_argument_is_fatal() {
    assert_fatal(
        b"*1\r\n:3\r\n",
        ProtocolError::ExpectedBulk { got: b':' },
        "ERR Protocol error: expected '$', got ':'",
    );
    assert_fatal(
        b"*1\r\n\x01",
        ProtocolError::ExpectedBulk { got: 1 },
        "ERR Protocol error: expected '$', got '\\x01'",
    );
}

#[test]
fn overlong_header_lines_are_fatal() {
    let mut input = b"*".to_vec();
    input.resize(HEADER_LINE_MAX + 2, b'1');
    assert_fatal(&input, ProtocolError::MultibulkCountTooLong, "ERR Protocol error: too big mbulk count string");
    let mut input = b"*1\r\n$".to_vec();
    input.resize(4 + HEADER_LINE_MAX + 2, b'1');
    assert_fatal(&input, ProtocolError::BulkCountTooLong, "ERR Protocol error: too big bulk count string");
    // One byte shorter is still only incomplete.
    assert_eq!(parse_all(SMALL, &input[..input.len() - 1]), vec![]);
}

#[test]
fn a_bulk_without_crlf_is_fatal() {
    let text = "ERR Protocol error: bulk string not terminated by CRLF";
    assert_fatal(b"*1\r\n$1\r\nab\r\n", ProtocolError::MissingCrlf, text);
    assert_fatal(b"*1\r\n$1\r\na\n\r", ProtocolError::MissingCrlf, text);
}

#[test]
fn an_overlong_inline_line_is_fatal() {
    let text = "ERR Protocol error: too big inline request";
    let mut input = vec![b'a'; SMALL.max_inline + 1];
    assert_fatal(&input, ProtocolError::InlineTooLong, text);
    input.extend_from_slice(b"\r\n");
    assert_fatal(&input, ProtocolError::InlineTooLong, text);
    // Exactly max_inline bytes before the line end is accepted, `\r` included.
    let mut input = vec![b'a'; SMALL.max_inline - 1];
    input.extend_from_slice(b"\r\n");
    assert_eq!(parse_all(Limits { max_bulk: 64, ..SMALL }, &input).len(), 1);
}

#[test]
fn unbalanced_quotes_are_fatal() {
    let text = "ERR Protocol error: unbalanced quotes in request";
    for input in [&b"SET \"a\r\n"[..], b"SET 'a\r\n", b"SET \"a\"b\r\n", b"SET 'a'b\r\n", b"SET \"a\\\r\n"] {
        assert_fatal(input, ProtocolError::UnbalancedQuotes, text);
    }
}

#[test]
fn a_failed_parser_repeats_its_error() {
    let mut parser = RequestParser::new(SMALL);
    let fatal = Step::Fatal(ProtocolError::InvalidMultibulkLength);
    assert_eq!(parser.next(b"*x\r\nPING\r\n"), (0, fatal.clone()));
    assert_eq!(parser.next(b"PING\r\n"), (0, fatal));
    assert!(!parser.is_idle());
}

// ---- limits ----

#[test]
fn an_oversize_bulk_is_rejected_and_its_request_skipped() {
    let error = ProtocolError::BulkTooLong { len: 17, max: 16 };
    // The skipped third argument holds a CRLF and a `*` of its own: skipping trusts the headers.
    let mut input = b"*3\r\n$3\r\nSET\r\n$17\r\n0123456789abcdefg\r\n$30\r\n".to_vec();
    input.extend_from_slice(b"*1\r\n$4\r\nPING\r\n................\r\n*1\r\n$4\r\nPING\r\n");
    let fixed = input;
    let expected = vec![Step::Rejected(error.clone()), cmd(&["PING"])];
    assert_eq!(parse_all(SMALL, &fixed), expected);
    assert_eq!(parse_bytewise(SMALL, &fixed), expected);
    assert!(!error.is_fatal());
    assert_eq!(reply_text(&error), "ERR Protocol error: bulk string of 17 bytes exceeds max_bulk (16)");
}

#[test]
fn rejection_comes_at_the_header_and_skipping_spans_calls() {
    let mut parser = RequestParser::new(SMALL);
    let rejected = Step::Rejected(ProtocolError::BulkTooLong { len: 20, max: 16 });
    assert_eq!(parser.next(b"*1\r\n$20\r\n0123"), (9, rejected));
    assert_eq!(parser.next(b"0123"), (4, Step::Incomplete));
    assert_eq!(parser.next(b"456789abcdefghij\r"), (16, Step::Incomplete));
    assert_eq!(parser.next(b"\r"), (0, Step::Incomplete));
    assert_eq!(parser.next(b"\r\nPING\r\n"), (8, cmd(&["PING"])));
}

#[test]
fn too_many_args_are_rejected_and_skipped_without_allocating() {
    let error = ProtocolError::TooManyArgs { count: 5, max: 4 };
    let mut input = b"*5\r\n".to_vec();
    for arg in ["a", "bb", "", "0123456789abcdefghij", "e"] {
        input.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    input.extend_from_slice(b"ECHO ok\r\n");
    let expected = vec![Step::Rejected(error.clone()), cmd(&["ECHO", "ok"])];
    assert_eq!(parse_all(SMALL, &input), expected);
    assert_eq!(parse_bytewise(SMALL, &input), expected);
    assert_eq!(reply_text(&error), "ERR Protocol error: 5 arguments exceed max_args (4)");
    // A huge declared count costs nothing until its elements arrive.
    let mut parser = RequestParser::new(SMALL);
    let error = ProtocolError::TooManyArgs { count: i32::MAX as u64, max: 4 };
    assert_eq!(parser.next(b"*2147483647\r\n"), (13, Step::Rejected(error)));
}

#[test]
fn a_malformed_header_while_skipping_is_fatal() {
    let steps = parse_all(SMALL, b"*5\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(steps.last(), Some(&Step::Fatal(ProtocolError::ExpectedBulk { got: b':' })));
    let steps = parse_all(SMALL, b"*5\r\n$-1\r\n");
    assert_eq!(steps.last(), Some(&Step::Fatal(ProtocolError::InvalidBulkLength)));
    let steps = parse_all(SMALL, b"*1\r\n$17\r\n0123456789abcdefgXY");
    assert_eq!(steps.last(), Some(&Step::Fatal(ProtocolError::MissingCrlf)));
}

#[test]
fn bulk_limit_is_inclusive() {
    let mut input = b"*1\r\n$16\r\n".to_vec();
    input.extend_from_slice(&[b'x'; 16]);
    input.extend_from_slice(b"\r\n");
    assert_eq!(parse_all(SMALL, &input), vec![command(vec![vec![b'x'; 16]])]);
    assert_eq!(parse_all(SMALL, b"*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n").len(), 1);
}

#[test]
fn inline_requests_obey_the_limits() {
    let too_many = ProtocolError::TooManyArgs { count: 5, max: 4 };
    let too_long = ProtocolError::BulkTooLong { len: 17, max: 16 };
    let input = b"a b c d e\r\nSET 0123456789abcdefg\r\nPING\r\n";
    let expected = vec![Step::Rejected(too_many), Step::Rejected(too_long), cmd(&["PING"])];
    assert_eq!(parse_all(SMALL, input), expected);
}

// ---- encoder ----

#[test]
fn encodes_every_variant_in_both_protocols() {
    let cases: Vec<(Value, &[u8], &[u8])> = vec![
        (Value::Ok, b"+OK\r\n", b"+OK\r\n"),
        (Value::simple("PONG"), b"+PONG\r\n", b"+PONG\r\n"),
        (Value::error("ERR bad"), b"-ERR bad\r\n", b"-ERR bad\r\n"),
        (Value::Int(-42), b":-42\r\n", b":-42\r\n"),
        (Value::Int(i64::MIN), b":-9223372036854775808\r\n", b":-9223372036854775808\r\n"),
        (Value::Int(i64::MAX), b":9223372036854775807\r\n", b":9223372036854775807\r\n"),
        (Value::bulk(&b"a\r\nb"[..]), b"$4\r\na\r\nb\r\n", b"$4\r\na\r\nb\r\n"),
        (Value::bulk(Bytes::new()), b"$0\r\n\r\n", b"$0\r\n\r\n"),
        (Value::Stored(crate::kv::Compact::copy_from_slice(b"a\r\nb")), b"$4\r\na\r\nb\r\n", b"$4\r\na\r\nb\r\n"),
        (
            Value::Stored(crate::kv::Compact::from(Bytes::from(vec![b'x'; 30]))),
            b"$30\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n",
            b"$30\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n",
        ),
        (Value::Nil, b"$-1\r\n", b"_\r\n"),
        (Value::NilArray, b"*-1\r\n", b"_\r\n"),
        (Value::Array(vec![]), b"*0\r\n", b"*0\r\n"),
        (Value::Array(vec![Value::Int(1), Value::Nil]), b"*2\r\n:1\r\n$-1\r\n", b"*2\r\n:1\r\n_\r\n"),
        (
            Value::Map(vec![(Value::simple("a"), Value::Int(1)), (Value::bulk("b"), Value::Bool(true))]),
            b"*4\r\n+a\r\n:1\r\n$1\r\nb\r\n:1\r\n",
            b"%2\r\n+a\r\n:1\r\n$1\r\nb\r\n#t\r\n",
        ),
        (Value::Set(vec![Value::Int(7)]), b"*1\r\n:7\r\n", b"~1\r\n:7\r\n"),
        (Value::Double(1.5), b"$3\r\n1.5\r\n", b",1.5\r\n"),
        (Value::Double(3.0), b"$1\r\n3\r\n", b",3\r\n"),
        (Value::Double(0.0), b"$1\r\n0\r\n", b",0\r\n"),
        (Value::Double(-2.25), b"$5\r\n-2.25\r\n", b",-2.25\r\n"),
        (Value::Double(1e300), b"$5\r\n1e300\r\n", b",1e300\r\n"),
        (Value::Double(-1.5e-7), b"$7\r\n-1.5e-7\r\n", b",-1.5e-7\r\n"),
        (Value::Double(f64::INFINITY), b"$3\r\ninf\r\n", b",inf\r\n"),
        (Value::Double(f64::NEG_INFINITY), b"$4\r\n-inf\r\n", b",-inf\r\n"),
        (Value::Double(f64::NAN), b"$3\r\nnan\r\n", b",nan\r\n"),
        (Value::Bool(false), b":0\r\n", b"#f\r\n"),
        (Value::Bool(true), b":1\r\n", b"#t\r\n"),
        (Value::Push(vec![Value::bulk("msg")]), b"*1\r\n$3\r\nmsg\r\n", b">1\r\n$3\r\nmsg\r\n"),
        (Value::Verbatim(Bytes::from_static(b"hi")), b"$2\r\nhi\r\n", b"=6\r\ntxt:hi\r\n"),
    ];
    for (value, resp2, resp3) in cases {
        assert_eq!(enc(&value, Protocol::Resp2), resp2, "{value:?} in RESP2");
        assert_eq!(enc(&value, Protocol::Resp3), resp3, "{value:?} in RESP3");
    }
}

#[test]
fn line_replies_never_carry_line_breaks() {
    let error = Value::Error(Cow::Owned("ERR a\r\nb\nc\r".to_string()));
    assert_eq!(enc(&error, Protocol::Resp2), b"-ERR a  b c \r\n");
    assert_eq!(enc(&Value::simple("x\ny"), Protocol::Resp3), b"+x y\r\n");
}

#[test]
fn encoding_appends() {
    let mut out = b"head".to_vec();
    Value::Ok.encode(Protocol::Resp2, &mut out);
    Value::Int(0).encode(Protocol::Resp2, &mut out);
    assert_eq!(out, b"head+OK\r\n:0\r\n");
}

#[test]
fn defaults_and_thread_bounds() {
    assert_eq!(Protocol::default(), Protocol::Resp2);
    let limits = Limits::default();
    assert_eq!((limits.max_bulk, limits.max_args, limits.max_inline), (16 << 20, 1 << 20, 64 << 10));
    fn is_send<T: Send>() {}
    fn is_sync<T: Sync>() {}
    is_send::<RequestParser>();
    is_sync::<RequestParser>();
    is_send::<Value>();
    is_send::<Step>();
}

// ---- properties ----

/// Byte strings rich in protocol tokens, so random input reaches deep parser states.
fn protocolish() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        Just(b"*".to_vec()),
        Just(b"$".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"-".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"'".to_vec()),
        Just(b"\\".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\\x4".to_vec()),
        (0u32..24).prop_map(|n| n.to_string().into_bytes()),
        vec(any::<u8>(), 0..8),
    ];
    vec(fragment, 0..96).prop_map(|parts| parts.concat())
}

/// One request's arguments: 1 to 6 arguments of arbitrary bytes.
fn request_args() -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(vec(any::<u8>(), 0..48), 1..7)
}

/// A request sent within or beyond the `SMALL` limits, and the step it must produce.
fn limited_request() -> impl Strategy<Value = (Vec<u8>, Step)> {
    let arg = || vec(any::<u8>(), 0..=SMALL.max_bulk);
    let valid = vec(arg(), 1..=SMALL.max_args).prop_map(|args| (encode_request(&args), command(args)));
    let big_bulk =
        (vec(arg(), 1..=SMALL.max_args), vec(any::<u8>(), SMALL.max_bulk + 1..64), any::<prop::sample::Index>())
            .prop_map(|(mut args, big, at)| {
                let len = big.len() as u64;
                let at = at.index(args.len());
                args[at] = big;
                let error = ProtocolError::BulkTooLong { len, max: SMALL.max_bulk };
                (encode_request(&args), Step::Rejected(error))
            });
    let big_array = vec(vec(any::<u8>(), 0..40), SMALL.max_args + 1..12).prop_map(|args| {
        let error = ProtocolError::TooManyArgs { count: args.len() as u64, max: SMALL.max_args };
        (encode_request(&args), Step::Rejected(error))
    });
    prop_oneof![3 => valid, 1 => big_bulk, 1 => big_array]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_in_any_chunking_are_handled(
        input in prop_oneof![protocolish(), vec(any::<u8>(), 0..512)],
        chunks in vec(1usize..40, 1..8),
    ) {
        // `drive` checks the contract on every call; chunking must not change the outcome.
        let whole = parse_all(SMALL, &input);
        let chunked = drive(&mut RequestParser::new(SMALL), &input, &chunks);
        prop_assert_eq!(whole, chunked);
    }

    #[test]
    fn encoded_requests_parse_back(
        requests in vec((request_args(), any::<bool>()), 1..16),
        chunks in vec(1usize..200, 1..8),
    ) {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for (args, inline) in requests {
            input.extend(if inline { encode_inline(&args) } else { encode_request(&args) });
            expected.push(command(args));
        }
        let steps = drive(&mut RequestParser::new(Limits::default()), &input, &chunks);
        prop_assert_eq!(steps, expected);
    }

    #[test]
    fn oversize_requests_are_rejected_among_valid_ones(
        requests in vec(limited_request(), 1..12),
        chunks in vec(1usize..100, 1..8),
    ) {
        let input: Vec<u8> = requests.iter().flat_map(|(bytes, _)| bytes.iter().copied()).collect();
        let expected: Vec<Step> = requests.into_iter().map(|(_, step)| step).collect();
        let steps = drive(&mut RequestParser::new(SMALL), &input, &chunks);
        prop_assert_eq!(steps, expected);
    }
}

#[test]
fn unauthenticated_limits_are_fatal_before_anything_is_buffered() {
    let mut parser = RequestParser::new(Limits::default());
    parser.set_unauthenticated(true);
    assert_eq!(parser.next(b"*10\r\n").1, Step::Incomplete, "10 arguments are allowed");
    let mut parser = RequestParser::new(Limits::default());
    parser.set_unauthenticated(true);
    assert_eq!(parser.next(b"*11\r\n").1, Step::Fatal(ProtocolError::UnauthenticatedMultibulkLength));
    let mut parser = RequestParser::new(Limits::default());
    parser.set_unauthenticated(true);
    let (_, step) = parser.next(b"*2\r\n$3\r\nGET\r\n$16385\r\n");
    assert_eq!(step, Step::Fatal(ProtocolError::UnauthenticatedBulkLength));
    assert_eq!(
        ProtocolError::UnauthenticatedBulkLength.reply(),
        Value::error("ERR Protocol error: unauthenticated bulk length")
    );
    let mut parser = RequestParser::new(Limits::default());
    parser.set_unauthenticated(true);
    assert_eq!(parser.next(b"*2\r\n$3\r\nGET\r\n$16384\r\n").1, Step::Incomplete, "16384 bytes are allowed");
    parser.set_unauthenticated(false);
    let mut parser = RequestParser::new(Limits::default());
    assert_eq!(parser.next(b"*11\r\n$16385\r\n").1, Step::Incomplete, "no such limit once authenticated");
}

#[test]
fn held_counts_the_arguments_of_the_request_in_progress() {
    let mut parser = RequestParser::new(Limits::default());
    let (used, step) = parser.next(b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$2\r\n");
    assert_eq!((used, step), (28, Step::Incomplete));
    assert_eq!(parser.held(), 8);
    assert_eq!(parser.next(b"hi\r\n").1, cmd(&["SET", "hello", "hi"]));
    assert_eq!(parser.held(), 0, "nothing held between requests");
}

/// A read buffer holding `wire`, then `room` bytes of room the parser must not touch.
fn read_buffer(wire: &[u8], room: usize) -> bytes::BytesMut {
    let mut buf = bytes::BytesMut::from(wire);
    buf.resize(wire.len() + room, b'#');
    buf
}

#[test]
fn next_from_slices_large_arguments_off_the_read_buffer_and_copies_small_ones() {
    let value = vec![b'v'; SLICE_MIN];
    let mut wire = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", value.len()).into_bytes();
    wire.extend_from_slice(&value);
    wire.extend_from_slice(b"\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPI");
    let mut buf = read_buffer(&wire, 8);
    let region = buf.as_ptr_range();
    let mut waiting = wire.len();
    let mut parser = RequestParser::new(Limits::default());
    let mut next = |buf: &mut bytes::BytesMut, waiting: &mut usize| {
        let (used, step) = parser.next_from(buf, *waiting);
        *waiting -= used;
        step
    };
    let Step::Command(set) = next(&mut buf, &mut waiting) else { panic!("no SET") };
    let Step::Command(get) = next(&mut buf, &mut waiting) else { panic!("no GET") };
    assert_eq!(set, [&b"SET"[..], b"k", &value[..]]);
    assert_eq!(get, [&b"GET"[..], b"k"]);
    assert!(region.contains(&set[2].as_ptr()), "the value was copied");
    for arg in set[..2].iter().chain(&get) {
        assert!(!region.contains(&arg.as_ptr()), "{arg:?} is a slice: small arguments are copied");
    }
    // The partial request stays at the front of the buffer (headers consumed), the room after it
    // untouched.
    assert_eq!(next(&mut buf, &mut waiting), Step::Incomplete);
    assert_eq!(&buf[..waiting], b"PI");
    assert_eq!(&buf[waiting..], b"########");
    buf[waiting..waiting + 4].copy_from_slice(b"NG\r\n");
    waiting += 4;
    assert_eq!(next(&mut buf, &mut waiting), Step::Command(vec![Bytes::from_static(b"PING")]));
    assert_eq!((waiting, &buf[..]), (0, &b"####"[..]));
}

#[test]
fn next_from_and_next_agree_on_every_chunking() {
    let limits = Limits { max_bulk: SLICE_MIN + 8, ..SMALL };
    let mut wire =
        b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\nPING x\r\n*5\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n"
            .to_vec();
    wire.extend_from_slice(format!("*2\r\n$4\r\nECHO\r\n${}\r\n", SLICE_MIN).as_bytes());
    wire.extend(std::iter::repeat_n(b'z', SLICE_MIN));
    wire.extend_from_slice(b"\r\n*2\r\n$3\r\nGET\r\n$2\r\nkk\r\n*x\r\n");
    for (size, slice_min) in
        [1, 2, 3, 5, 7, 16, 100, 999, wire.len()].into_iter().zip([0, 3, SLICE_MIN, usize::MAX].into_iter().cycle())
    {
        let expected = drive(&mut RequestParser::new(limits), &wire, &[size]);
        let mut parser = RequestParser::new(limits).with_slice_min(slice_min);
        let mut buf = bytes::BytesMut::new();
        let mut steps = Vec::new();
        'feed: for chunk in wire.chunks(size) {
            buf.extend_from_slice(chunk);
            loop {
                let waiting = buf.len();
                let (used, step) = parser.next_from(&mut buf, waiting);
                assert_eq!(buf.len(), waiting - used, "consumed bytes stay in the buffer");
                match step {
                    Step::Incomplete => break,
                    Step::Fatal(_) => {
                        steps.push(step);
                        break 'feed;
                    }
                    _ => steps.push(step),
                }
            }
        }
        assert_eq!(steps, expected, "chunks of {size}, slicing from {slice_min} bytes");
    }
}
