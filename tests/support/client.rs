//! Helpers shared by the server tests: queries through the `redis` crate, names placed on
//! chosen shards, INFO parsing, polling with a deadline, socket options and a plain HTTP GET.
//!
//! Everything here runs on the test's own thread and owns nothing between calls.

use super::nexus::{HASH_SEED, SHARDS};
use super::resp::{self, Reply};
use nexus_engine::registry::NameHasher;
use redis::{Connection, FromRedisValue, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// How long a test waits for something the server does in the background.
pub const SETTLE: Duration = Duration::from_secs(5);

/// Runs one command through the `redis` crate; panics with the command if it fails.
#[track_caller]
pub fn q<T: FromRedisValue>(con: &mut Connection, args: &[&str]) -> T {
    match redis::cmd(args[0]).arg(&args[1..]).query(con) {
        Ok(value) => value,
        Err(e) => panic!("{args:?}: {e}"),
    }
}

/// Runs one command that must fail and returns its error line (`CODE detail`).
#[track_caller]
pub fn q_err(con: &mut Connection, args: &[&str]) -> String {
    match redis::cmd(args[0]).arg(&args[1..]).query::<Value>(con) {
        Ok(v) => panic!("{args:?} should fail, got {v:?}"),
        Err(e) => match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            (Some(code), None) => code.to_owned(),
            _ => e.to_string(),
        },
    }
}

/// The shard that owns `name` (or a key) on a test server, among `shards` (the server's key is
/// [`HASH_SEED`]'s, not this process's).
pub fn owner_of(name: &str, shards: usize) -> usize {
    static HASHER: std::sync::OnceLock<NameHasher> = std::sync::OnceLock::new();
    HASHER.get_or_init(|| NameHasher::with_seed(HASH_SEED)).owner_of(name, shards)
}

/// The first name `prefix0`, `prefix1`, ... that shard `shard` owns.
pub fn name_on_shard(prefix: &str, shard: usize) -> String {
    (0..).map(|i| format!("{prefix}{i}")).find(|n| owner_of(n, SHARDS) == shard).expect("some name fits")
}

/// `count` distinct names starting with `prefix`, alternating shard 0, shard 1, shard 0, ...
pub fn names_on_both_shards(prefix: &str, count: usize) -> Vec<String> {
    let mut by_shard: Vec<Vec<String>> = vec![Vec::new(); SHARDS];
    let mut i = 0;
    while by_shard.iter().any(|names| names.len() < count.div_ceil(SHARDS)) {
        let name = format!("{prefix}{i}");
        by_shard[owner_of(&name, SHARDS)].push(name);
        i += 1;
    }
    (0..count).map(|k| by_shard[k % SHARDS][k / SHARDS].clone()).collect()
}

/// The value of `field` in INFO text (`field:value` lines).
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| line.trim_end().strip_prefix(field)?.strip_prefix(':'))
}

/// A numeric INFO field of the whole server.
#[track_caller]
pub fn info_u64(con: &mut Connection, field: &str) -> u64 {
    let info: String = q(con, &["INFO"]);
    let Some(value) = info_field(&info, field) else { panic!("no `{field}` in INFO:\n{info}") };
    match value.parse() {
        Ok(n) => n,
        Err(_) => panic!("`{field}:{value}` is not a number"),
    }
}

/// Polls `done` every 50 ms until it holds; panics naming `what` after `limit`.
#[track_caller]
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A field of a RESP3 map or a RESP2 flat key/value array.
pub fn field<'a>(reply: &'a Reply, key: &str) -> Option<&'a Reply> {
    match reply {
        Reply::Map(pairs) => pairs.iter().find(|(k, _)| k.text().as_deref() == Some(key)).map(|(_, v)| v),
        Reply::Array(items) => items.chunks(2).find(|kv| kv[0].text().as_deref() == Some(key)).and_then(|kv| kv.get(1)),
        _ => None,
    }
}

/// Sets `SO_LINGER` to zero so that closing the socket sends RST instead of FIN.
pub fn reset_on_close(stream: &TcpStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: the fd is open for the call, and the option value is a `linger` that outlives
    // it, with its exact size passed alongside.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::addr_of!(linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER): {}", std::io::Error::last_os_error());
}

/// Shrinks the socket's receive buffer, so that a client that stops reading backs replies up
/// into the server soon.
pub fn small_receive_buffer(stream: &TcpStream) {
    let bytes: libc::c_int = 4096;
    // SAFETY: as in `reset_on_close`: an open fd and an option value that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            std::ptr::addr_of!(bytes).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_RCVBUF): {}", std::io::Error::last_os_error());
}

/// One HTTP/1.1 GET over a plain socket: (status code, headers, body).
#[track_caller]
pub fn http_get(port: u16, path: &str) -> (u16, String, String) {
    let mut stream = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(stream) => stream,
        Err(e) => panic!("connect :{port}: {e}"),
    };
    stream.set_read_timeout(Some(resp::READ_TIMEOUT)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) => panic!("GET {path}: {e}; so far: {raw:?}"),
        };
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let length = head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
            });
            let body_len = text.len() - end - 4;
            if n == 0 || length.is_some_and(|len| body_len >= len) {
                let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                return (status, head.to_owned(), text[end + 4..].to_owned());
            }
        }
        assert!(n > 0, "GET {path}: the connection closed before the headers ended: {raw:?}");
    }
}

/// Whether `nexus run`'s stdout ends its final counters with a balanced accounting line.
pub fn accounting_ok(stdout: &str) -> bool {
    stdout.lines().any(|l| l.starts_with("accounting:") && l.trim_end().ends_with("ok"))
}
