//! Connection-level commands: the ones a connection answers itself (PING, ECHO, QUIT, SELECT,
//! AUTH, HELLO, COMMAND, CLIENT, CONFIG, RESET) and the unknown-command error.
//!
//! Each answers as redis-server 7 does where Nexus has the feature: SELECT accepts database 0
//! only (Nexus has one) with Redis's errors for the others; CONFIG GET answers the Redis-named
//! parameters Nexus really has, and CONFIG SET is refused; RESET drops the subscriptions, logs
//! the client out when `requirepass` is set and goes back to RESP2; an unknown command's error
//! echoes its name and arguments cut as Redis cuts them (`commandCheckExistence`).

use super::{Conn, End};
use crate::front::{Job, Slot};
use crate::resp::{Protocol, Value};
use crate::stats::count;
use bytes::Bytes;

/// How much of an unknown command's name, and of its arguments together, the error echoes
/// (Redis's 128).
const ECHO_MAX: usize = 128;

impl Conn {
    fn check_password(&mut self, user: Option<&[u8]>, pass: &[u8]) -> Result<(), Value> {
        let Some(expected) = &self.env.password else {
            return Err(Value::error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ));
        };
        let now = std::time::Instant::now();
        self.auth_guard.admit(now).map_err(|left| Value::error(crate::auth_guard::refusal(left)))?;
        let user_ok = user.map_or(true, |u| u == b"default") && pass == expected.as_ref();
        self.auth_guard.record(user_ok, now);
        if user_ok {
            self.authed = true;
            self.parser.set_unauthenticated(false);
            Ok(())
        } else {
            count(&self.env.stats().auth_failures);
            Err(Value::error("WRONGPASS invalid username-password pair or user is disabled."))
        }
    }

    /// Connection-level commands.
    pub(super) fn local(&mut self, name: &str, args: &[Bytes]) -> Value {
        match name {
            "ping" => {
                if self.subscribed && self.protocol == Protocol::Resp2 {
                    let msg = args.get(1).cloned().unwrap_or_default();
                    return Value::Array(vec![Value::bulk("pong"), Value::Bulk(msg)]);
                }
                match args.get(1) {
                    Some(m) => Value::Bulk(m.clone()),
                    None => Value::simple("PONG"),
                }
            }
            "echo" => Value::Bulk(args[1].clone()),
            "quit" => {
                self.closing = Some(End::Quit);
                Value::Ok
            }
            // Nexus has one database, 0; Redis's errors for the rest.
            "select" => match crate::kinds::parse_i64(&args[1]) {
                Some(0) => Value::Ok,
                Some(_) => Value::error("ERR DB index is out of range"),
                None => Value::error("ERR value is not an integer or out of range"),
            },
            "auth" => {
                let (user, pass) =
                    if args.len() == 3 { (Some(&args[1][..]), &args[2][..]) } else { (None, &args[1][..]) };
                match self.check_password(user, pass) {
                    Ok(()) => Value::Ok,
                    Err(e) => e,
                }
            }
            "hello" => self.hello(args),
            "command" => crate::commands::command_reply(args),
            "client" => self.client(args),
            "config" => self.config(args),
            "nexus.trace" => self.env.tracing.admin(&self.env.handle, args),
            other => Value::error(format!("ERR unknown command '{other}'")),
        }
    }

    fn hello(&mut self, args: &[Bytes]) -> Value {
        let mut protocol = self.protocol;
        if let Some(v) = args.get(1) {
            match crate::kinds::parse_i64(v) {
                Some(2) => protocol = Protocol::Resp2,
                Some(3) => protocol = Protocol::Resp3,
                Some(_) => return Value::error("NOPROTO unsupported protocol version"),
                None => return Value::error("ERR Protocol version is not an integer or out of range"),
            }
        }
        let mut i = 2;
        while i < args.len() {
            let opt = args[i].to_ascii_uppercase();
            match opt.as_slice() {
                b"AUTH" if i + 2 < args.len() => {
                    if let Err(e) = self.check_password(Some(&args[i + 1][..]), &args[i + 2][..]) {
                        return e;
                    }
                    i += 3;
                }
                b"SETNAME" if i + 1 < args.len() => {
                    self.name = Some(Bytes::copy_from_slice(&args[i + 1]));
                    i += 2;
                }
                _ => {
                    return Value::error(format!(
                        "ERR Syntax error in HELLO option '{}'",
                        String::from_utf8_lossy(&args[i])
                    ))
                }
            }
        }
        if !self.authed {
            count(&self.env.stats().auth_failures);
            return Value::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        }
        self.protocol = protocol;
        self.env.front.with(self.id, |c| c.protocol = protocol);
        let proto = if protocol == Protocol::Resp3 { 3 } else { 2 };
        Value::Map(vec![
            (Value::bulk("server"), Value::bulk("nexus")),
            (Value::bulk("version"), Value::bulk(env!("CARGO_PKG_VERSION"))),
            (Value::bulk("proto"), Value::Int(proto)),
            (Value::bulk("id"), Value::Int(self.client_id())),
            (Value::bulk("mode"), Value::bulk("standalone")),
            (Value::bulk("role"), Value::bulk("master")),
            (Value::bulk("modules"), Value::Array(Vec::new())),
        ])
    }

    fn client_id(&self) -> i64 {
        self.client_id
    }

    fn client(&mut self, args: &[Bytes]) -> Value {
        let sub = args[1].to_ascii_uppercase();
        match (sub.as_slice(), args.len()) {
            (b"SETNAME", 3) => {
                self.name = Some(Bytes::copy_from_slice(&args[2]));
                Value::Ok
            }
            (b"GETNAME", 2) => self.name.clone().map_or(Value::Nil, Value::Bulk),
            (b"ID", 2) => Value::Int(self.client_id()),
            (b"SETINFO", 4) => Value::Ok,
            (b"SETNAME" | b"GETNAME" | b"ID" | b"SETINFO", _) => Value::error(format!(
                "ERR wrong number of arguments for 'client|{}' command",
                String::from_utf8_lossy(&args[1]).to_ascii_lowercase()
            )),
            _ => Value::error(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(&args[1])
            )),
        }
    }

    /// CONFIG GET pattern [pattern ...] (the matching parameters as pairs); other subcommands
    /// are refused.
    fn config(&mut self, args: &[Bytes]) -> Value {
        if !args[1].eq_ignore_ascii_case(b"GET") {
            return Value::error(
                "ERR CONFIG SET, REWRITE and RESETSTAT are not supported; nexus is configured by its TOML file",
            );
        }
        if args.len() < 3 {
            return Value::error("ERR wrong number of arguments for 'config|get' command");
        }
        let pairs = self
            .config_parameters()
            .into_iter()
            .filter(|(name, _)| args[2..].iter().any(|p| glob_match(p, name.as_bytes())))
            .map(|(name, value)| (Value::bulk(name), Value::Bulk(Bytes::from(value))))
            .collect();
        Value::Map(pairs)
    }

    /// The Redis-named parameters Nexus has, with their values.
    fn config_parameters(&self) -> Vec<(&'static str, String)> {
        let config = &self.env.config;
        let (bind, port) = match config.listen.parse::<std::net::SocketAddr>() {
            Ok(addr) => (addr.ip().to_string(), addr.port().to_string()),
            Err(_) => (config.listen.clone(), String::new()),
        };
        vec![
            ("bind", bind),
            ("port", port),
            ("maxclients", config.max_clients.to_string()),
            ("timeout", config.idle_timeout_s.to_string()),
            ("requirepass", config.requirepass.clone()),
            ("proto-max-bulk-len", config.max_bulk.to_string()),
            ("client-query-buffer-limit", config.client_query_buffer_limit.to_string()),
            ("databases", "1".to_owned()),
            ("save", String::new()),
            ("appendonly", "no".to_owned()),
            ("maxmemory", config.maxmemory.to_string()),
            ("maxmemory-policy", config.maxmemory_policy.name().to_owned()),
        ]
    }

    /// RESET: drops every subscription (through the ingress agent, in order with the requests
    /// before it; its answer is not written), logs the client out when `requirepass` is set,
    /// forgets the name and goes back to RESP2. Always hands a job over.
    pub(super) fn reset(&mut self) {
        self.protocol = Protocol::Resp2;
        self.name = None;
        if self.env.password.is_some() {
            self.authed = false;
            self.parser.set_unauthenticated(true);
        }
        let id = self.id;
        let seq = self.env.front.with(id, |c| {
            c.protocol = Protocol::Resp2;
            c.slots.push_back(Slot::Silent);
            c.first_seq + c.slots.len() as u64 - 1
        });
        if let (Some(seq), Some(spec)) = (seq, crate::commands::lookup(b"UNSUBSCRIBE")) {
            let args = vec![Bytes::from_static(b"UNSUBSCRIBE")];
            self.env.front.jobs.borrow_mut().push_back(Job::Command { conn: id, seq, spec, args, trace: None });
        }
        self.push_answer(Value::simple("RESET"));
    }
}

/// The error for an unknown command, as Redis words and cuts it: the name up to 128 bytes, then
/// each argument quoted while the echo is under 128 bytes, cut to what is left of them; C
/// strings, so each stops at a NUL; CR and LF become blanks.
pub(super) fn unknown_command(args: &[Bytes]) -> Value {
    let mut echo = Vec::new();
    for arg in &args[1..] {
        if echo.len() >= ECHO_MAX {
            break;
        }
        let room = ECHO_MAX - echo.len();
        echo.push(b'\'');
        echo.extend_from_slice(c_string(arg, room));
        echo.extend_from_slice(b"' ");
    }
    let mut text = b"ERR unknown command '".to_vec();
    text.extend_from_slice(c_string(&args[0], ECHO_MAX));
    text.extend_from_slice(b"', with args beginning with: ");
    text.extend_from_slice(&echo);
    for b in &mut text {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
    Value::error(String::from_utf8_lossy(&text).into_owned())
}

/// `%.*s` of `bytes`: up to the first NUL, at most `max` bytes.
fn c_string(bytes: &[u8], max: usize) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len()).min(max);
    &bytes[..end]
}

/// Redis's case-insensitive `stringmatch`: `*`, `?`, `[...]` (with `^` and ranges) and `\`.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let lower = |b: u8| b.to_ascii_lowercase();
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob_match(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && glob_match(rest, &name[1..]),
        Some((b'[', rest)) => {
            let Some((&c, tail)) = name.split_first() else { return false };
            let Some(close) = rest.iter().skip(1).position(|&b| b == b']').map(|i| i + 1) else {
                return false;
            };
            let (negate, set) = match rest[..close].split_first() {
                Some((b'^', set)) => (true, set),
                _ => (false, &rest[..close]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    let (lo, hi) = (lower(set[i].min(set[i + 2])), lower(set[i].max(set[i + 2])));
                    hit |= (lo..=hi).contains(&lower(c));
                    i += 3;
                } else {
                    hit |= lower(set[i]) == lower(c);
                    i += 1;
                }
            }
            hit != negate && glob_match(&rest[close + 1..], tail)
        }
        Some((b'\\', rest)) if !rest.is_empty() => {
            !name.is_empty() && lower(rest[0]) == lower(name[0]) && glob_match(&rest[1..], &name[1..])
        }
        Some((&p, rest)) => !name.is_empty() && lower(p) == lower(name[0]) && glob_match(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_as_redis_stringmatch_does() {
        assert!(glob_match(b"*", b"maxclients"));
        assert!(glob_match(b"MAX*", b"maxclients"));
        assert!(glob_match(b"p?rt", b"port"));
        assert!(glob_match(b"[bp]ort", b"port"));
        assert!(!glob_match(b"[^p]ort", b"port"));
        assert!(glob_match(b"[a-z]ind", b"bind"));
        assert!(!glob_match(b"port?", b"port"));
        assert!(!glob_match(b"nosuch*", b"port"));
    }

    #[test]
    fn the_unknown_command_echo_is_cut_as_redis_cuts_it() {
        let args: Vec<Bytes> = ["x", "a\r\nb", "c\0d"].iter().map(|s| Bytes::from(s.to_string())).collect();
        assert_eq!(
            unknown_command(&args),
            Value::error("ERR unknown command 'x', with args beginning with: 'a  b' 'c' ")
        );
    }
}
