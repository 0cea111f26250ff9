//! The `nexus run` fixture of the server tests: one server process per test.
//!
//! [`Server::builder`] picks free ports, writes a config (two shards on however many cores
//! there are, no built-in load, idle shards park at once so tests side by side share the CPUs)
//! with the `[[agents]]` and `[server]` keys the test asks for, starts `nexus run`, and waits until `PING`
//! answers. Two threads drain the child's stdout and stderr into shared strings, so its pipes
//! never fill and a failing test can print what the server said. Dropping a [`Server`] sends
//! SIGTERM, then SIGKILL if the process is still there after [`STOP_TIMEOUT`];
//! [`Server::stop`] does the same politely and hands back the exit status and stdout.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How many shards every test server runs.
pub const SHARDS: usize = 2;
/// The hash seed every test server runs with (`NEXUS_HASH_SEED`), so that the tests can place
/// keys and names on chosen shards: the registry's key is otherwise random per process.
pub const HASH_SEED: u64 = 0x5eed_7e57;
/// The longest a server may take to answer its first `PING`.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a server may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the fixture polls while it waits.
const POLL: Duration = Duration::from_millis(50);

/// A port nothing listens on right now (bound to port 0, read, released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("a local address").port()
}

/// A fresh directory for one test's files.
pub fn scratch_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("nexus-server-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// The `nexus` binary, run from the workspace root, with the registry's hash key fixed to
/// [`HASH_SEED`].
pub fn nexus() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nexus"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    cmd.env(nexus_engine::registry::HASH_SEED_ENV, HASH_SEED.to_string());
    cmd
}

/// `nexus run --config FILE`, with `text` written to `file` first; stdin closed, stdout and
/// stderr piped (for `spawn` or `output`).
#[allow(dead_code)] // Not every suite that includes this file uses it.
pub fn run_with_config(file: &Path, text: &str) -> Command {
    std::fs::write(file, text).expect("write the config");
    let mut cmd = nexus();
    cmd.args(["run", "--config", file.to_str().expect("a UTF-8 path")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The config every test server starts from: two shards on the suite's executor
/// (`crate::EXECUTOR`), no load, idle shards park at once.
pub fn base_config() -> String {
    format!(
        "executor = \"{}\"\nload = false\n\
         [placement]\nshards = {SHARDS}\noversubscribe = true\n\
         [idle]\nspin_before_park_us = 0\n",
        crate::EXECUTOR
    )
}

/// Settings of one test server.
#[derive(Default)]
pub struct Builder {
    agents: String,
    server_keys: Vec<(&'static str, String)>,
    listen_on_cli: bool,
    metrics_off_on_cli: bool,
    nofile: Option<(u64, u64)>,
}

impl Builder {
    /// Adds `[[agents]]` tables (TOML text) to the config, in place of the default agents.
    #[must_use]
    pub fn agents(mut self, tables: &str) -> Self {
        self.agents.push_str(tables);
        self.agents.push('\n');
        self
    }

    /// Sets `[server] requirepass`.
    #[must_use]
    pub fn requirepass(mut self, password: &str) -> Self {
        self.server_keys.push(("requirepass", format!("{password:?}")));
        self
    }

    /// Sets a numeric `[server]` key such as `max_bulk` or `idle_timeout_s`.
    #[must_use]
    pub fn limit(mut self, key: &'static str, value: u64) -> Self {
        self.server_keys.push((key, value.to_string()));
        self
    }

    /// Sets a string `[server]` key such as `maxmemory_policy`.
    #[must_use]
    #[allow(dead_code)] // only tests/server_memory.rs sets one
    pub fn text_key(mut self, key: &'static str, value: &str) -> Self {
        self.server_keys.push((key, format!("{value:?}")));
        self
    }

    /// Gives the RESP address with `--listen` (the config names another, unused port).
    #[must_use]
    pub fn listen_on_cli(mut self) -> Self {
        self.listen_on_cli = true;
        self
    }

    /// Turns the metrics endpoint off with `--metrics-listen ""` (the config names a port).
    #[must_use]
    pub fn metrics_off_on_cli(mut self) -> Self {
        self.metrics_off_on_cli = true;
        self
    }

    /// Runs the server with its open-file limit (`RLIMIT_NOFILE`) at `soft` and `hard`.
    #[must_use]
    #[allow(dead_code)] // only tests/server_ops.rs lowers it
    pub fn nofile(mut self, soft: u64, hard: u64) -> Self {
        self.nofile = Some((soft, hard));
        self
    }

    /// Starts the server and waits until it answers `PING`; panics with its output if it
    /// exits or stays silent for [`START_TIMEOUT`].
    pub fn start(self) -> Server {
        let port = free_port();
        let metrics_port = free_port();
        let config_port = if self.listen_on_cli { free_port() } else { port };
        let mut text = base_config();
        text.push_str(&self.agents);
        writeln!(text, "[server]\nlisten = \"127.0.0.1:{config_port}\"").unwrap();
        writeln!(text, "metrics_listen = \"127.0.0.1:{metrics_port}\"").unwrap();
        for (key, value) in &self.server_keys {
            writeln!(text, "{key} = {value}").unwrap();
        }
        let dir = scratch_dir();
        let path = dir.join("nexus.toml");
        std::fs::write(&path, &text).expect("write the config");
        let mut cmd = nexus();
        cmd.args(["run", "--config", path.to_str().expect("a UTF-8 path")]);
        if self.listen_on_cli {
            cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
        }
        if self.metrics_off_on_cli {
            cmd.args(["--metrics-listen", ""]);
        }
        if let Some((soft, hard)) = self.nofile {
            limit_open_files(&mut cmd, soft, hard);
        }
        let server = Server::spawn(cmd, port, metrics_port, config_port, dir);
        server.wait_until_ready();
        server
    }
}

/// A running `nexus run` with its RESP server.
pub struct Server {
    child: Option<Child>,
    /// The RESP port.
    pub port: u16,
    /// The port `metrics_listen` names in the config.
    pub metrics_port: u16,
    /// The port `listen` names in the config (differs from `port` with `listen_on_cli`).
    pub config_port: u16,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    drains: Vec<JoinHandle<()>>,
    dir: PathBuf,
}

impl Server {
    /// A server with the default `[server]` settings.
    pub fn start() -> Server {
        Builder::default().start()
    }

    /// Settings for a server that needs more than the defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn spawn(mut cmd: Command, port: u16, metrics_port: u16, config_port: u16, dir: PathBuf) -> Server {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the nexus binary starts");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let drains = vec![
            drain(child.stdout.take().expect("piped stdout"), stdout.clone()),
            drain(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        Server { child: Some(child), port, metrics_port, config_port, stdout, stderr, drains, dir }
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.answers_ping() {
                return;
            }
            if Instant::now() > deadline {
                panic!("no PONG on port {} within {START_TIMEOUT:?}\n{}", self.port, self.output());
            }
            std::thread::sleep(POLL);
        }
    }

    /// Whether a fresh connection gets `+PONG` (or `-NOAUTH` when a password is set).
    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
            return false;
        }
        let mut reply = [0u8; 64];
        match stream.read(&mut reply) {
            Ok(n) => reply[..n].starts_with(b"+PONG") || reply[..n].starts_with(b"-NOAUTH"),
            Err(_) => false,
        }
    }

    /// `redis://127.0.0.1:PORT/` for the `redis` crate.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A `redis` crate connection to this server; panics (with the server's output) if it
    /// cannot connect.
    pub fn connect(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).expect("a valid URL");
        let con = client.get_connection().unwrap_or_else(|e| panic!("redis connect: {e}\n{}", self.output()));
        con.set_read_timeout(Some(Duration::from_secs(10))).expect("set a read timeout");
        con
    }

    /// Everything the server printed so far, for failure messages.
    pub fn output(&self) -> String {
        let stdout = self.stdout.lock().map(|s| s.clone()).unwrap_or_default();
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        format!("--- nexus stdout ---\n{stdout}--- nexus stderr ---\n{stderr}")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running child").id()
    }

    /// Sends SIGTERM to the server.
    pub fn sigterm(&self) {
        signal(self.pid(), libc::SIGTERM);
    }

    /// Sends SIGTERM, waits up to [`STOP_TIMEOUT`] for the exit and returns the exit status
    /// and the whole stdout; panics (after SIGKILL) if the server does not exit in time.
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.sigterm();
        self.wait_stopped()
    }

    /// Waits up to [`STOP_TIMEOUT`] for an exit the test has already asked for (sends no
    /// signal) and returns the exit status and the whole stdout; panics (after SIGKILL) if
    /// the server does not exit in time.
    pub fn wait_stopped(&mut self) -> (ExitStatus, String) {
        let status = self.wait_for_exit(STOP_TIMEOUT);
        for drain in self.drains.drain(..) {
            let _ = drain.join();
        }
        let stdout = self.stdout.lock().map(|s| s.clone()).unwrap_or_default();
        match status {
            Some(status) => (status, stdout),
            None => panic!("the server did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}", self.output()),
        }
    }

    /// Waits up to `limit` for the process to exit; SIGKILLs it and returns `None` if it
    /// does not.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                return None;
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            signal(child.id(), libc::SIGTERM);
            let _ = self.wait_for_exit(STOP_TIMEOUT);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Makes `cmd`'s child start with `RLIMIT_NOFILE` at `soft` and `hard`.
pub fn limit_open_files(cmd: &mut Command, soft: u64, hard: u64) {
    use std::os::unix::process::CommandExt as _;
    let rlim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: the closure runs in the forked child before exec and calls only `setrlimit`,
    // which is async-signal-safe, on a value it owns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
    // SAFETY: `kill` takes a pid and a signal number by value and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}): {}", std::io::Error::last_os_error());
}

fn drain(mut from: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut text) = into.lock() {
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    })
}
