//! `nexus top` end to end, in a real terminal: tmux.
//!
//! The test starts `nexus run` (the server tests' fixture, `support/nexus.rs`: free ports for
//! RESP and `metrics_listen`, two shards), loads it with SET/GET from two client threads, and
//! runs `nexus top --metrics ADDR` in a detached tmux session of a fixed size on a socket of
//! its own (`tmux -L`), so it can never touch anyone else's sessions. It reads the screen with
//! `capture-pane` until every shard shows messages/s above zero and the totals show commands/s
//! above zero; checks that a second view under `NO_COLOR=1` draws no colour sequence while the
//! first one does; stops the engine and waits for "disconnected"; then sends `q` and waits for
//! the shell around top to print its exit status, 0 (tmux's own record of a dead pane's status
//! was sometimes empty). Guards kill the tmux server, stop the load and the engine on every exit, failures
//! included. Without tmux the tmux test prints why and passes.
//!
//! The start-up error (no endpoint) needs no terminal and is checked on its own.

/// The executor of the fixture's server (the threads one: no io_uring needed).
pub const EXECUTOR: &str = "threads";

#[allow(dead_code)]
#[path = "support/nexus.rs"]
mod nexus;

use nexus::{Server, SHARDS};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the view may take to show what a check waits for (a debug build on a busy machine).
const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the screen is read while waiting.
const POLL: Duration = Duration::from_millis(200);

/// A tmux server on a socket of its own; dropping it kills that server (and its panes).
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self { socket: format!("nexus-top-test-{}-{n}", std::process::id()) }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("tmux {args:?}: {e}"))
    }

    /// Starts `command` (a shell command line) in a detached 120x40 session `name` whose pane
    /// stays after its process exits.
    fn start(&self, name: &str, command: &str) {
        let out = self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "120",
            "-y",
            "40",
            command,
            ";",
            "set-option",
            "-t",
            name,
            "remain-on-exit",
            "on",
        ]);
        assert!(out.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The pane's text; with `escapes`, its colours and attributes as escape sequences too.
    fn capture(&self, name: &str, escapes: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-t", name];
        if escapes {
            args.push("-e");
        }
        String::from_utf8_lossy(&self.run(&args).stdout).into_owned()
    }

    fn send_keys(&self, name: &str, keys: &str) {
        let out = self.run(&["send-keys", "-t", name, keys]);
        assert!(out.status.success(), "tmux send-keys: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Polls the pane until `ready` holds for its text; panics with the last screen if not.
    fn wait_for(&self, name: &str, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.capture(name, false);
            if ready(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("no {what} within {SCREEN_TIMEOUT:?}; the screen:\n{screen}");
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // kill-server leaves the socket file behind: ask where it is first, then remove it.
        // No panics here (this runs while a failed test unwinds): errors are ignored.
        let tmux = |args: &[&str]| Command::new("tmux").args(["-L", &self.socket]).args(args).output();
        let path = tmux(&["display-message", "-p", "#{socket_path}"]).map(|o| o.stdout).unwrap_or_default();
        let _ = tmux(&["kill-server"]);
        let path = String::from_utf8_lossy(&path).trim().to_owned();
        if path.contains(&self.socket) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Client threads sending SET and GET until dropped (or until the server goes away).
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(server: &Server, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|t| {
                let (stop, mut con) = (stop.clone(), server.connect());
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("top-{t}-{}", i % 64);
                        let set = redis::cmd("SET").arg(&key).arg(i).query::<()>(&mut con);
                        if set.and_then(|()| redis::cmd("GET").arg(&key).query::<Option<u64>>(&mut con)).is_err() {
                            return; // The server stopped.
                        }
                        i += 1;
                        if i % 16 == 0 {
                            // Enough load to see, not enough to starve a shared two-core machine.
                            std::thread::sleep(Duration::from_millis(2));
                        }
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The `nexus top` command line for a tmux pane.
fn top_command(metrics_port: u16, no_color: bool) -> String {
    let colour = if no_color { "NO_COLOR=1" } else { "-u NO_COLOR" };
    // The shell prints top's exit status when it ends: tmux's own record of a dead pane's
    // status is sometimes left empty (seen once in five runs), the pane's text is not.
    format!(
        "sh -c \"env {colour} '{}' top --metrics 127.0.0.1:{metrics_port} --interval 500ms; echo top-exited-\\$?; sleep 60\"",
        env!("CARGO_BIN_EXE_nexus")
    )
}

/// The number after `label ` on the screen, if it shows one.
fn figure(screen: &str, label: &str) -> Option<f64> {
    let at = screen.find(&format!("{label} "))? + label.len() + 1;
    screen[at..].split_whitespace().next()?.parse().ok()
}

/// The msgs/s column of each shard row of the shards table (`│0     1136  ...`).
fn shard_rates(screen: &str) -> Vec<(usize, f64)> {
    screen
        .lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix('│')?.split_whitespace();
            let shard = cells.next()?.parse().ok()?;
            Some((shard, cells.next()?.parse().ok()?))
        })
        .collect()
}

/// Whether every shard's row and the totals show traffic.
fn shows_traffic(screen: &str) -> bool {
    let rates = shard_rates(screen);
    rates.len() == SHARDS
        && rates.iter().all(|&(_, r)| r > 0.0)
        && figure(screen, "messages/s").is_some_and(|r| r > 0.0)
        && figure(screen, "commands/s").is_some_and(|r| r > 0.0)
}

/// The colour-setting SGR sequences in `text` (foreground or background: 30-38, 40-48, 90-97,
/// 100-107; 39 and 49, back to the default colours, set none).
fn colour_sequences(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for piece in text.split("\x1b[").skip(1) {
        let Some(end) = piece.find(|c: char| !(c.is_ascii_digit() || c == ';')) else { continue };
        if piece[end..].starts_with('m') {
            let params = &piece[..end];
            let colour = |p: &str| p.parse::<u32>().is_ok_and(|n| matches!(n, 30..=38 | 40..=48 | 90..=97 | 100..=107));
            if params.split(';').any(colour) {
                found.push(format!("ESC[{params}m"));
            }
        }
    }
    found
}

fn tmux_installed() -> bool {
    Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success())
}

#[test]
fn top_shows_a_loaded_engine_live_and_quits_on_q() {
    if !tmux_installed() {
        eprintln!("skipped: tmux is not installed (tools/setup.sh installs it)");
        return;
    }
    let server = Server::start();
    let load = Load::start(&server, 2);
    let tmux = Tmux::new();
    tmux.start("top", &top_command(server.metrics_port, false));
    let screen = tmux.wait_for("top", "traffic on every shard", shows_traffic);
    println!("{screen}");
    for want in ["connected", "shards", "busiest agents", "messages/s, last", "q quits"] {
        assert!(screen.contains(want), "no {want:?} on the screen:\n{screen}");
    }
    assert!(figure(&screen, "clients").is_some_and(|c| c >= 2.0), "two clients connected:\n{screen}");
    let coloured = tmux.capture("top", true);
    assert!(!colour_sequences(&coloured).is_empty(), "the default view has colour:\n{coloured}");

    tmux.start("plain", &top_command(server.metrics_port, true));
    tmux.wait_for("plain", "traffic under NO_COLOR", shows_traffic);
    let plain = tmux.capture("plain", true);
    assert_eq!(colour_sequences(&plain), Vec::<String>::new(), "colour under NO_COLOR:\n{plain}");

    drop(load);
    let (status, _) = server.stop();
    assert!(status.success(), "nexus run exits cleanly: {status}");
    tmux.wait_for("top", "\"disconnected\" once the engine stopped", |s| s.contains("disconnected ("));
    for name in ["top", "plain"] {
        tmux.send_keys(name, "q");
        // The shell around top prints its exit status once it ends.
        let screen = tmux.wait_for(name, "top's exit status", |s| s.contains("top-exited-"));
        assert!(screen.contains("top-exited-0"), "{name}: `q` ends top with status 0:\n{screen}");
    }
}

#[test]
fn top_without_an_endpoint_is_one_line_with_a_hint() {
    let port = nexus::free_port();
    let out = nexus::nexus().args(["top", "--metrics", &format!("127.0.0.1:{port}")]).output().expect("nexus runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "nexus: cannot reach the metrics endpoint at 127.0.0.1:{port} (connection refused); hint: start \
             `nexus run` with [server] metrics_listen set, or pass --metrics ADDR"
        ),
    );
    assert!(out.stdout.is_empty(), "nothing drawn: {:?}", String::from_utf8_lossy(&out.stdout));
}
