//! The differential test of issue 19: the same commands to redis-server 7 and to `nexus run`,
//! over raw TCP in RESP2 and then again in RESP3, with the replies compared byte for byte.
//!
//! The test starts `redis-server --port P --save "" --appendonly no` on a free loopback port
//! (and stops it), starts `nexus run` through the fixture of `support/nexus.rs` (two shards, so
//! multi-key commands span shards), sends every case of `support/redis_diff_cases.rs` to both
//! in order, and prints every mismatch (the command, redis's bytes, nexus's bytes) before it
//! fails. Without `redis-server` installed (tools/setup.sh installs it) it prints why and
//! passes.
//!
//! A case compares exactly unless it names a normalisation ([`Norm`]); each one there is
//! for a difference by design, and says which.
//!
//! `rename_and_scan_cross_shards` checks, on `nexus run` alone, what one-shard Redis cannot
//! show: RENAME between shards and SCAN's cursor moving from shard to shard.

/// The executor the fixture's server runs on.
#[allow(dead_code)]
pub const EXECUTOR: &str = "glommio";

#[path = "support/redis_diff_cases.rs"]
mod cases;
#[allow(dead_code)]
#[path = "support/nexus.rs"]
mod nexus;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a case's replies are made comparable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// Byte for byte.
    Exact,
    /// The array's elements sorted first: KEYS gathers from every shard, so its order is the
    /// shards' order (Redis's is its hash table's: neither is promised). Also HGETALL of a
    /// hash Redis keeps as a hash table (a value over 64 bytes, or over 128 fields), whose
    /// order is its table's; Nexus keeps insertion order.
    Sorted,
    /// A whole SCAN from cursor 0 with the case's options: the union of the keys, sorted.
    /// Cursor values differ by design (Nexus's carries the shard in its high bits).
    ScanAll,
    /// Each element cut to its first 6 fields (name, arity, flags, keys): `COMMAND INFO`'s
    /// ACL categories, tips, key specs and subcommands are not modelled.
    CommandHead,
    /// An integer within this much of redis's (PTTL: the two servers read their clocks a few
    /// milliseconds apart).
    Near(i64),
    /// A difference known and not fixed yet (each says why in the cases): compared and
    /// printed, but not a failure; one that matches is printed too, to drop the tag.
    Known,
}

/// One reply, raw: its header line, its payload (bulk strings) and its elements (aggregates).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Raw {
    head: Vec<u8>,
    body: Vec<u8>,
    items: Vec<Raw>,
}

impl Raw {
    fn bytes(&self) -> Vec<u8> {
        let mut out = self.head.clone();
        out.extend_from_slice(&self.body);
        for item in &self.items {
            out.extend(item.bytes());
        }
        out
    }

    fn int(&self) -> Option<i64> {
        self.head.strip_prefix(b":").and_then(|r| std::str::from_utf8(r).ok()?.trim_end().parse().ok())
    }

    /// A bulk string's text.
    fn text(&self) -> Option<String> {
        self.head.starts_with(b"$").then(|| String::from_utf8_lossy(&self.body[..self.body.len() - 2]).into_owned())
    }

    fn array(items: Vec<Raw>) -> Raw {
        Raw { head: format!("*{}\r\n", items.len()).into_bytes(), body: Vec::new(), items }
    }
}

/// Reads one whole reply.
fn read_raw(r: &mut impl BufRead) -> std::io::Result<Raw> {
    let mut head = Vec::new();
    r.read_until(b'\n', &mut head)?;
    if head.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    let n: i64 = std::str::from_utf8(&head[1..]).ok().and_then(|t| t.trim_end().parse().ok()).unwrap_or(-1);
    let mut raw = Raw { head, body: Vec::new(), items: Vec::new() };
    match raw.head[0] {
        b'$' | b'=' if n >= 0 => {
            raw.body = vec![0; n as usize + 2];
            r.read_exact(&mut raw.body)?;
        }
        b'*' | b'~' | b'>' if n >= 0 => {
            for _ in 0..n {
                raw.items.push(read_raw(r)?);
            }
        }
        b'%' if n >= 0 => {
            for _ in 0..2 * n {
                raw.items.push(read_raw(r)?);
            }
        }
        _ => {}
    }
    Ok(raw)
}

/// A RESP2 connection that sends commands and reads raw replies.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        Conn { reader: BufReader::new(s.try_clone().expect("clone")), writer: s }
    }

    fn call(&mut self, args: &[String]) -> Raw {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend(format!("${}\r\n", a.len()).into_bytes());
            out.extend(a.as_bytes());
            out.extend(b"\r\n");
        }
        self.writer.write_all(&out).expect("send");
        read_raw(&mut self.reader).expect("a reply")
    }

    /// A whole SCAN from 0 with `opts`: every key met, sorted and deduplicated.
    fn scan_all(&mut self, opts: &[String]) -> Raw {
        let mut cursor = "0".to_owned();
        let mut keys = Vec::new();
        for _ in 0..10_000 {
            let mut args = vec!["SCAN".to_owned(), cursor.clone()];
            args.extend(opts.iter().cloned());
            let reply = self.call(&args);
            if reply.items.len() != 2 {
                return reply;
            }
            keys.extend(reply.items[1].items.iter().cloned());
            cursor = reply.items[0].text().unwrap_or_default();
            if cursor == "0" {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        Raw::array(keys)
    }
}

/// `redis-server` on a free port, stopped on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// `None` when `redis-server` is not installed.
    fn start() -> Option<Redis> {
        Command::new("redis-server").arg("--version").output().ok()?;
        let port = nexus::free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let redis = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(redis)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reply made comparable as `norm` says.
fn normalise(reply: Raw, norm: Norm) -> Raw {
    match norm {
        Norm::Sorted => {
            let mut items = reply.items.clone();
            items.sort();
            Raw { items, ..reply }
        }
        Norm::CommandHead => {
            let items = reply.items.into_iter().map(|i| Raw::array(i.items.into_iter().take(6).collect())).collect();
            Raw { items, ..reply }
        }
        _ => reply,
    }
}

/// The bytes as text with `\r\n` spelled out, cut at 400 characters.
fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes).replace('\r', "\\r").replace('\n', "\\n");
    match text.char_indices().nth(400) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], bytes.len()),
        None => text,
    }
}

/// Runs every case on both connections; the mismatches, described.
fn compare(r: &mut Conn, n: &mut Conn, protocol: &str) -> Vec<String> {
    let mut mismatches = Vec::new();
    let all = cases::cases();
    for (norm, args) in &all {
        let (want, got) = match norm {
            Norm::ScanAll => (r.scan_all(&args[2..]), n.scan_all(&args[2..])),
            _ => (normalise(r.call(args), *norm), normalise(n.call(args), *norm)),
        };
        let same = match (norm, want.int(), got.int()) {
            (Norm::Near(tol), Some(a), Some(b)) => (a - b).abs() <= *tol,
            _ => want == got,
        };
        let line = format!(
            "{protocol} {}\n    redis: {}\n    nexus: {}",
            args.join(" "),
            show(&want.bytes()),
            show(&got.bytes())
        );
        if *norm == Norm::Known {
            println!("{line}\n    {}", if same { "now matches: drop its [known] tag" } else { "differs (known)" });
        } else if !same {
            mismatches.push(line);
        }
    }
    println!("{protocol}: {} commands compared, {} mismatches", all.len(), mismatches.len());
    mismatches
}

#[test]
fn nexus_answers_as_redis_server_7_does() {
    let Some(redis) = Redis::start() else {
        println!("SKIPPED: redis-server is not installed (tools/setup.sh installs it)");
        return;
    };
    let server = nexus::Server::start();
    let (mut r, mut n) = (Conn::open(redis.port), Conn::open(server.port));
    let mut mismatches = compare(&mut r, &mut n, "RESP2");
    // The same cases again in RESP3. HELLO's own reply is not compared: it describes the
    // server (name, version, id), which differs by design.
    let (mut r, mut n) = (Conn::open(redis.port), Conn::open(server.port));
    let hello: Vec<String> = vec!["HELLO".into(), "3".into()];
    let _ = (r.call(&hello), n.call(&hello));
    mismatches.extend(compare(&mut r, &mut n, "RESP3"));
    assert!(mismatches.is_empty(), "replies that differ from redis-server's:\n{}", mismatches.join("\n"));
}

/// The shard that owns `key` in the fixture's servers (their hash seed is fixed).
fn owner_of(key: &str) -> usize {
    nexus_engine::registry::NameHasher::with_seed(nexus::HASH_SEED).owner_of(key, nexus::SHARDS)
}

/// The first key `prefix0`, `prefix1`, ... that shard `shard` owns.
fn key_on(prefix: &str, shard: usize) -> String {
    (0..).map(|i| format!("{prefix}{i}")).find(|k| owner_of(k) == shard).expect("some key fits")
}

fn words(line: &str) -> Vec<String> {
    line.split(' ').map(str::to_owned).collect()
}

/// What the differential test cannot pin down, since redis-server has one shard: RENAME from
/// one shard to the other keeps the value, its type and its TTL; SCAN's cursor moves to the
/// next shard (its bits above 48) and a whole scan meets every key of both shards.
#[test]
fn rename_and_scan_cross_shards() {
    let server = nexus::Server::start();
    let mut n = Conn::open(server.port);
    let (a, b) = (key_on("src", 0), key_on("dst", 1));
    let text = |r: Raw| String::from_utf8_lossy(&r.bytes()).into_owned();
    assert_eq!(text(n.call(&words(&format!("SET {a} v EX 100")))), "+OK\r\n");
    assert_eq!(text(n.call(&words(&format!("RENAME {a} {b}")))), "+OK\r\n");
    assert_eq!(text(n.call(&words(&format!("GET {b}")))), "$1\r\nv\r\n");
    assert_eq!(text(n.call(&words(&format!("TTL {b}")))), ":100\r\n");
    assert_eq!(text(n.call(&words(&format!("EXISTS {a}")))), ":0\r\n");
    assert_eq!(
        text(n.call(&words(&format!("HSET {b} f 1")))),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    let h = key_on("hash", 1);
    let back = key_on("back", 0);
    n.call(&words(&format!("HSET {h} f 1 g 2")));
    assert_eq!(text(n.call(&words(&format!("RENAME {h} {back}")))), "+OK\r\n");
    assert_eq!(text(n.call(&words(&format!("HGETALL {back}")))), "*4\r\n$1\r\nf\r\n$1\r\n1\r\n$1\r\ng\r\n$1\r\n2\r\n");
    assert_eq!(text(n.call(&words(&format!("TTL {back}")))), ":-1\r\n");
    // Ten keys on each shard; SCAN COUNT 100 takes one shard per call.
    for shard in 0..nexus::SHARDS {
        for i in 0..10 {
            n.call(&words(&format!("SET {} v", key_on(&format!("scan{i}-"), shard))));
        }
    }
    let first = n.call(&words("SCAN 0 MATCH scan* COUNT 100"));
    let cursor: u64 = first.items[0].text().expect("a cursor").parse().expect("a number");
    assert_eq!(cursor >> 48, 1, "after shard 0, the cursor points at shard 1");
    assert_eq!(first.items[1].items.len(), 10, "shard 0's keys");
    let all = n.scan_all(&words("MATCH scan* COUNT 3"));
    assert_eq!(all.items.len(), 10 * nexus::SHARDS);
}
