//! Two `nexus run` processes joined through a real `nats-server` (one with `--cluster URL
//! --node NAME`, one with a config file's `[cluster]` table), driven over RESP: `AGENT.SPAWN echo e1 GLOBAL` on node a, `AGENT.ASK e1 hi` on
//! node b answers `hi`, `AGENT.SEND` crosses too, `INFO cluster` lists both nodes and the
//! name, a second GLOBAL claim of the name is refused naming its holder, and once node a is
//! killed an ask to `e1` fails at once instead of hanging. Every process is killed on drop.

#[path = "cluster_nats.rs"]
mod cluster_nats;

use cluster_nats::Nats;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `nexus run` node; killed on drop.
struct NexusNode {
    child: Child,
    port: u16,
}

impl NexusNode {
    /// Starts node `node`: with `--cluster`/`--node`, or (`from_config`) with a config file's
    /// `[cluster]` table.
    fn start(nats: &Nats, node: &str, from_config: bool) -> NexusNode {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nexus"));
        cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .args(["run", "--executor", "threads", "--metrics-listen", ""])
            .args(["--listen", &format!("127.0.0.1:{port}")]);
        if from_config {
            let path = std::env::temp_dir().join(format!("nexus-cluster-{}-{port}.toml", std::process::id()));
            let text = format!("load = false\n[cluster]\nnats = \"{}\"\nnode = \"{node}\"\n", nats.url());
            std::fs::write(&path, text).expect("writes the config");
            cmd.arg("--config").arg(&path);
        } else {
            cmd.args(["--cluster", &nats.url(), "--node", node]);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("nexus starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nexus node {node} did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        NexusNode { child, port }
    }

    /// Sends one command and reads one reply line (and a bulk's body), as text.
    fn cmd(&self, args: &[&str]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connects");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(out.as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let line = line.trim_end().to_owned();
        if let Some(len) = line.strip_prefix('$').or_else(|| line.strip_prefix('=')) {
            let len: i64 = len.parse().unwrap();
            if len < 0 {
                return "(nil)".into();
            }
            let mut body = vec![0; len as usize + 2];
            r.read_exact(&mut body).unwrap();
            return String::from_utf8_lossy(&body[..len as usize]).into_owned();
        }
        line
    }
}

impl Drop for NexusNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_nexus_nodes_ask_across_over_resp() {
    let Some(nats) = Nats::start() else { return };
    let a = NexusNode::start(&nats, "a", false);
    let b = NexusNode::start(&nats, "b", true);
    assert_eq!(a.cmd(&["AGENT.SPAWN", "echo", "e1", "GLOBAL"]), "+OK");
    until("b to answer through a", || b.cmd(&["AGENT.ASK", "e1", "hi"]) == "hi");
    assert_eq!(b.cmd(&["AGENT.SEND", "e1", "one way"]), ":1");
    let info = b.cmd(&["INFO", "cluster"]);
    assert!(info.contains("node:b") && info.contains("nodes:a,b") && info.contains("global:e1=a"), "{info}");
    let again = b.cmd(&["AGENT.SPAWN", "echo", "e1", "GLOBAL"]);
    assert!(again.starts_with("-ERR") && again.contains("held by node 'a'"), "{again}");
    // Not a global name anywhere: the local error, at once.
    assert!(b.cmd(&["AGENT.ASK", "nobody", "hi"]).contains("no such agent"));

    drop(a);
    let started = Instant::now();
    let dead = b.cmd(&["AGENT.ASK", "e1", "hi"]);
    assert!(dead.starts_with("-ERR"), "an ask to a killed node fails: {dead}");
    assert!(started.elapsed() < Duration::from_secs(1), "fails at once, took {:?}", started.elapsed());
    until("a to leave b's directory", || !b.cmd(&["INFO", "cluster"]).contains("global:e1"));
}
