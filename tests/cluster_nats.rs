//! A real `nats-server` for the cluster tests: started on a free loopback port, killed (and
//! waited for) when its guard drops, restartable on the same port for the fault tests.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server`; killed on drop.
pub struct Nats {
    pub port: u16,
    child: Option<Child>,
}

impl Nats {
    /// Starts one on a free port, or returns `None` (with a line on stderr) when `nats-server`
    /// is not installed (`tools/setup.sh` installs it).
    pub fn start() -> Option<Nats> {
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let mut nats = Nats { port, child: None };
        if !nats.spawn() {
            eprintln!("nats-server not found: skipping (run tools/setup.sh)");
            return None;
        }
        Some(nats)
    }

    /// The URL nodes connect to.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Kills the server (a crash, not a shutdown).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    #[allow(dead_code)] // the fault tests restart it; the RESP test does not
    pub fn restart(&mut self) {
        self.stop();
        assert!(self.spawn(), "nats-server restarts");
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}
