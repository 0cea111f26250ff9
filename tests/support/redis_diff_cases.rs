//! The commands `redis_diff.rs` sends to redis-server and to `nexus run`, in order, one a
//! line: words split on spaces, `"..."` for a word with spaces or an empty one, and an
//! optional leading `[norm]` naming the comparison ([`Norm`]; exact without one). Every
//! engine command is here, with its errors: wrong arity, wrong type, not an integer,
//! overflow, missing keys, bad options, and edge values. Key names are many and short, so
//! multi-key commands and RENAME span both shards.
//!
//! Known differences left out (see the report of issue 19): SCAN with a cursor Redis never handed out (`SCAN -1`: Redis walks its table from there, Nexus
//! answers the end of the scan), `COMMAND INFO` with no names (Redis lists its 240
//! commands, Nexus its own), `INFO persistence` (Redis reports its RDB and AOF fields, Nexus
//! the AOF fields it has) and a bare `BGREWRITEAOF` (Redis, started without an AOF, writes one
//! into its working directory and answers that it started; Nexus without a log refuses).
//!
//! `[known]` marks a difference not fixed yet, printed on every run: the connection's own
//! commands (answered in `conn.rs`) with AUTH of a user when no password is set (Redis:
//! WRONGPASS), CLIENT SETNAME with a space (Redis refuses it), CONFIG of an unknown
//! subcommand, and SELECT of a database other than 0 (by design: Nexus has one).

use super::Norm;

const CASES: &str = r#"
FLUSHALL
PING
PING hi
ECHO hello
PUBLISH ch msg
DBSIZE
DBSIZE x
SET s1 hello
GET s1
GET missing
GET
GET a b
SET s1 world GET
SET s1 x NX
SET s1 x XX
SET new1 x XX
GET new1
SET nx1 v NX GET
SET s1 v EX 100
TTL s1
SET s1 v PX 1400
TTL s1
[near 250] PTTL s1
SET s1 v KEEPTTL
TTL s1
SET s1 v EX 10 EX 20
TTL s1
SET s1 v EX 0
SET s1 v EX -1
SET s1 v EX abc
SET s1 v EX 007
SET s1 v EX 9223372036854775807
SET s1 v EX 9223372036854775
SET s1 v PX 9223372036854775807
SET s1 v PX 9223372036854775000
SET s1 v EX abc NX XX
SET s1 v EX 10 PX 10
SET s1 v KEEPTTL EX 10
SET s1 v EX
SET s1 v FOO
SET s1 v NX XX
SET s1
SET s1 v EXAT 1
EXISTS s1
SET s1 v PXAT 99999999999999
[near 2] TTL s1
SET s1 v EXAT 9223372036854775
[near 2] TTL s1
SET s1 plain
TTL s1
SET n 10
INCR n
INCRBY n 5
DECR n
DECRBY n 3
GET n
INCRBY n abc
INCRBY n 007
INCRBY n -0
INCRBY n " 1"
INCRBY n +1
INCRBY n 9223372036854775808
INCRBY n ""
DECRBY n -9223372036854775808
SET n 007
INCR n
SET n -0
INCR n
SET n " 1"
DECR n
SET n +1
INCR n
SET n 1.5
INCR n
SET n ""
INCR n
SET n 9223372036854775807
INCR n
SET n -9223372036854775808
DECR n
INCR newcounter
DECR newcounter2
INCR
INCRBY n
MSET a 1 b 2 c 3 d 4 e 5
MGET a b c d e missing
MSET a
MSET a 1 b
MGET
SETEX se 100 v
TTL se
GET se
SETEX se 0 v
SETEX se -1 v
SETEX se abc v
SETEX se 9223372036854775807 v
SETEX se 10
PSETEX pse 100000 v
TTL pse
PSETEX pse 0 v
PSETEX pse 9223372036854775807 v
GETDEL missing
SET gd v
GETDEL gd
GET gd
GETDEL
SET ge v
GETEX ge
TTL ge
GETEX ge EX 100
TTL ge
GETEX ge PERSIST
TTL ge
GETEX ge PX 100000
TTL ge
GETEX ge EX 10 EX 20
TTL ge
GETEX ge EX 0
GETEX ge EX abc
GETEX ge PERSIST EX 1
GETEX ge FOO
GETEX ge EX
GETEX ge EXAT 1
EXISTS ge
GETEX missing EX 0
GETEX missing
GETEX
APPEND ap hello
APPEND ap " world"
GET ap
STRLEN ap
STRLEN missing
SET ap2 v EX 100
APPEND ap2 x
TTL ap2
APPEND ap
STRLEN
INCRBYFLOAT f 10.5
INCRBYFLOAT f 0.1
INCRBYFLOAT f -5
INCRBYFLOAT f 5.0e3
INCRBYFLOAT f 2.0e-2
GET f
INCRBYFLOAT f abc
INCRBYFLOAT f " 1"
INCRBYFLOAT f nan
INCRBYFLOAT f inf
INCRBYFLOAT f +1.5
INCRBYFLOAT f .5
INCRBYFLOAT f 1e400
INCRBYFLOAT f 1e6000
INCRBYFLOAT f -inf
INCRBYFLOAT f 1.23456789012345678901234567890
INCRBYFLOAT f -1e400
INCRBYFLOAT f 0.000000000000000000001
SET f 1e3
INCRBYFLOAT f 1
SET f abc
INCRBYFLOAT f 1
SET f 0.1
INCRBYFLOAT f 0.2
INCRBYFLOAT f2 3
INCRBYFLOAT f2 -3
INCRBYFLOAT f3 -1.5
INCRBYFLOAT f4 1e20
INCRBYFLOAT f
HSET h1 f1 v1 f2 v2
HSET h1 f1 x f3 v3
HSET h1 f3
HSET h1
HGET h1 f1
HGET h1 nof
HGET nokey f
HGET h1
HMGET h1 f1 nof f2
HMGET nokey a b
HMGET h1
HGETALL h1
HGETALL nokey
HLEN h1
HLEN nokey
HEXISTS h1 f1
HEXISTS h1 z
HEXISTS nokey z
HINCRBY h1 cnt 5
HINCRBY h1 cnt -10
HINCRBY h1 f1 1
HINCRBY h1 cnt abc
HINCRBY h1 cnt 007
HINCRBY h1 cnt 9223372036854775807
HINCRBY h1 cnt 9223372036854775807
HINCRBY newh cnt 1
HINCRBY h1 cnt
HGETALL h1
HDEL h1 f1 nof
HGETALL h1
HDEL h1 f2 f3 cnt
EXISTS h1
TYPE h1
HDEL nokey f
HDEL h1
HSET h2 a 1 b 2
GET h2
INCR h2
INCRBY h2 2
DECR h2
INCRBYFLOAT h2 1
APPEND h2 x
STRLEN h2
GETDEL h2
GETEX h2
GETEX h2 EX 0
SET h2 v GET
MGET h2 a
TYPE h2
HGET s1 f
HSET s1 f v
HLEN s1
HDEL s1 f
HEXISTS s1 f
HMGET s1 f
HGETALL s1
HINCRBY s1 f 1
SET h2 now-a-string
TYPE h2
GET h2
TYPE s1
TYPE missing
TYPE
SET k v
EXPIRE k 100
TTL k
EXPIRE k 100 NX
EXPIRE k 50 GT
EXPIRE k 200 GT
TTL k
EXPIRE k 50 LT
TTL k
EXPIRE k 10 XX
TTL k
PERSIST k
EXPIRE k 10 XX
EXPIRE k 10 GT
EXPIRE k 10 LT
TTL k
EXPIRE k 10 nx
EXPIRE nokey 10
EXPIRE k abc
EXPIRE k 007
EXPIRE k 10 NX XX
EXPIRE k 10 GT LT
EXPIRE k 10 FOO
EXPIRE k abc FOO
EXPIRE k 9223372036854775807
EXPIRE k -9223372036854775808
EXPIRE k 9223372036854775
EXPIRE k
PEXPIRE k 100000
TTL k
PEXPIRE k 9223372036854775807
PEXPIRE k 9223372036854770000
EXPIREAT k 99999999999
[near 5] TTL k
PEXPIREAT k 99999999999999
[near 5] TTL k
EXPIREAT k 9223372036854775807
PEXPIREAT k 9223372036854775807
EXPIREAT k abc
EXPIREAT k 10 NX
EXPIREAT k 1
EXISTS k
EXPIREAT k 1
SET k v
PEXPIREAT k 1
EXISTS k
SET k v
EXPIRE k -1
EXISTS k
SET k v
EXPIRE k 0
EXISTS k
SET k v
PEXPIRE k 0
EXISTS k
PERSIST k
PERSIST missing
PERSIST
TTL missing
PTTL missing
SET k v
TTL k
PTTL k
TTL
SET r1 v EX 100
RENAME r1 r2
GET r1
GET r2
TTL r2
RENAME r2 r3
RENAME r3 r4
RENAME r4 r5
RENAME r5 r6
GET r6
TTL r6
RENAME missing x
RENAME r6 r6
GET r6
HSET rh f v g w
RENAME rh rh2
HGETALL rh2
TYPE rh2
SET rs old
RENAME rh2 rs
TYPE rs
HGETALL rs
RENAME rs
SET rt1 v
SET rt2 w EX 100
RENAME rt1 rt2
TTL rt2
GET rt2
SET nt 5 EX 100
INCR nt
TTL nt
INCRBYFLOAT nt 1.5
TTL nt
APPEND nt x
TTL nt
HSET hk f v
EXPIRE hk 100
HSET hk g w
TTL hk
SET hk v KEEPTTL
TTL hk
TYPE hk
HSET hbig f 0123456789012345678901234567890123456789012345678901234567890123456789 g v
[sorted] HGETALL hbig
HSET hd f v
EXISTS hd
DEL hd
EXISTS hd
SET s1 old
SET s1 v NX GET
GET s1
SET s1 new XX GET
SET nothere v XX GET
EXISTS nothere
DEL a b c missing
UNLINK d e missing
UNLINK
DEL
EXISTS s1 s1 missing n
EXISTS
MSET k1 1 k2 2 k3 3 kx 4 ky 5 other 6 "a*b" 7 "a\\b" 8
HSET hk1 f v
HSET hk2 f v
[sorted] KEYS *
[sorted] KEYS k?
[sorted] KEYS k[1-2]
[sorted] KEYS k[^1]
[sorted] KEYS k[2-1]
[sorted] KEYS *k*
[sorted] KEYS hk*
[sorted] KEYS a\*b
[sorted] KEYS a\\b
[sorted] KEYS nomatch*
[sorted] KEYS k[
[sorted] KEYS "k\\"
[sorted] KEYS [k-k]?
[sorted] KEYS [k-
[sorted] KEYS ?
[sorted] KEYS ***
[sorted] KEYS *[[]*
[sorted] KEYS
[sorted] KEYS a b
[scan] SCAN 0
[scan] SCAN 0 COUNT 1
[scan] SCAN 0 COUNT 1000
[scan] SCAN 0 MATCH k*
[scan] SCAN 0 MATCH k* COUNT 2
[scan] SCAN 0 TYPE hash
[scan] SCAN 0 TYPE string MATCH *1
SCAN abc
SCAN " 1"
SCAN 1x
SCAN 0 COUNT 0
SCAN 0 COUNT -1
SCAN 0 COUNT abc
SCAN 0 FOO bar
SCAN 0 MATCH
SCAN 0 COUNT
SCAN
DBSIZE
FLUSHDB
DBSIZE
SET x 1
FLUSHALL ASYNC
DBSIZE
FLUSHALL SYNC
FLUSHALL foo
FLUSHDB foo
FLUSHALL ASYNC SYNC
FLUSHDB SYNC x
BGREWRITEAOF x
flushall async
SET k v GET GET
SET k v nx NX
set K V
get K
Get k
MGET k K
SET "" empty
GET ""
EXISTS ""
HSET "" "" ""
TYPE ""
KEYS ""
SETEX k 1 ""
STRLEN k
APPEND k ""
GETEX k PXAT 1
EXISTS k
PING ""
ECHO ""
[head] COMMAND INFO get set del unlink exists incr decr incrby decrby mget mset expire pexpire ttl pttl
[head] COMMAND INFO hset hget hmget hgetall hdel hexists hlen hincrby keys scan type persist expireat pexpireat
[head] COMMAND INFO rename setex psetex getdel getex append strlen incrbyfloat dbsize flushall flushdb publish
[head] COMMAND INFO ping echo nosuchcommand
[head] COMMAND INFO bgrewriteaof
COMMAND INFO nosuchcommand
COMMAND DOCS nosuchcommand
COMMAND FOO
NOSUCHCOMMAND
NOSUCHCOMMAND a b
nosuch "with space"
PING a b
ECHO
ECHO a b
SELECT 0
[known] SELECT 1
SELECT abc
SELECT 16
SELECT -1
SELECT
AUTH pass
[known] AUTH user pass
AUTH
CLIENT SETNAME myname
CLIENT GETNAME
[known] CLIENT SETNAME "bad name"
CLIENT FOO
CLIENT
CONFIG GET nosuchparam
[known] CONFIG FOO
CONFIG
PUBLISH
PUBLISH ch
INFO a b
UNSUBSCRIBE
SUBSCRIBE ch1
SUBSCRIBE ch1
SUBSCRIBE ch2
PING
PING hi
GET s1
UNSUBSCRIBE ch1
UNSUBSCRIBE nosuch
UNSUBSCRIBE ch2
SUBSCRIBE
PUBLISH
RESET
"#;

/// Splits one line into words (`"..."` quotes a word; `\\` in it is one backslash).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut w = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => w.extend(chars.next()),
                    c => w.push(c),
                }
            }
            out.push(w);
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                w.push(c);
                chars.next();
            }
            out.push(w);
        }
    }
    out
}

/// Every case: how to compare, and the command's words.
pub fn cases() -> Vec<(Norm, Vec<String>)> {
    let mut out = Vec::new();
    for line in CASES.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (norm, rest) = match line.strip_prefix('[').and_then(|l| l.split_once("] ")) {
            Some(("sorted", rest)) => (Norm::Sorted, rest),
            Some(("scan", rest)) => (Norm::ScanAll, rest),
            Some(("head", rest)) => (Norm::CommandHead, rest),
            Some(("known", rest)) => (Norm::Known, rest),
            Some((tag, rest)) if tag.starts_with("near ") => (Norm::Near(tag[5..].parse().expect("a tolerance")), rest),
            Some((tag, _)) => panic!("unknown normalisation [{tag}]"),
            None => (Norm::Exact, line),
        };
        out.push((norm, words(rest)));
    }
    out
}
