//! One server per listen address: the claim a server holds on its address while it runs.
//!
//! Every shard binds the listen address with `SO_REUSEPORT`, so a second server on the same
//! address would bind too, and the kernel would split the clients (and so the data) between
//! the two. [`AddressLock::claim`] stops that before any shard binds:
//!
//! 1. an exclusive `flock` on a lock file named after the address, in `$XDG_RUNTIME_DIR` (or
//!    the temporary directory), held for the server's life; the kernel releases it when the
//!    process ends, even after `kill -9`, so a stale file never blocks a restart; the file
//!    holds the owner's pid for the error message, and a clean exit removes it;
//! 2. a plain bind of the address (no `SO_REUSEPORT`), closed at once: on Linux it fails while
//!    any socket listens there, which catches a server whose lock file is elsewhere (another
//!    runtime directory) and any other program.
//!
//! Port 0 (a port per shard, picked by the kernel) claims nothing.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The claim on a listen address; dropping it releases the address.
#[derive(Debug)]
pub struct AddressLock {
    /// The locked file and its path (`None`: nothing to lock, or no lock file could be
    /// opened).
    file: Option<(File, PathBuf)>,
}

impl Drop for AddressLock {
    /// Removes the lock file while still holding the lock: a server that opened the old file
    /// meanwhile finds on locking that its path names another file (or none) and opens again.
    fn drop(&mut self) {
        if let Some((file, path)) = self.file.take() {
            let _ = std::fs::remove_file(&path);
            drop(file);
        }
    }
}

impl AddressLock {
    /// Claims `addr` for this process.
    ///
    /// # Errors
    /// One line naming the address, who holds it when known, and a hint, when another server
    /// holds the lock or another socket listens on the address.
    pub fn claim(addr: SocketAddr) -> Result<Self, String> {
        if addr.port() == 0 {
            return Ok(Self { file: None });
        }
        let hint = "hint: stop the other server, or set another [server] listen (or --listen)";
        let file = match lock_file(addr) {
            Ok(file) => file,
            Err(Held(pid)) => {
                let who = pid.map_or_else(|| "another nexus run".to_owned(), |p| format!("nexus run (pid {p})"));
                return Err(format!("cannot listen on {addr}: {who} already serves that address; {hint}"));
            }
        };
        match TcpListener::bind(addr) {
            Ok(probe) => drop(probe),
            Err(e) if e.kind() == ErrorKind::AddrInUse => {
                return Err(format!("cannot listen on {addr}: another program already listens there ({e}); {hint}"));
            }
            // Any other problem (an address not on this host, a privileged port) is the
            // shards' bind to report, with its own wording.
            Err(_) => {}
        }
        Ok(Self { file })
    }
}

/// The address is locked by another process (its pid, when the file names one).
struct Held(Option<u32>);

/// Opens and locks the address's lock file; `Ok(None)` when no lock file can be opened (the
/// probe bind still guards the address).
fn lock_file(addr: SocketAddr) -> Result<Option<(File, PathBuf)>, Held> {
    let path = lock_path(addr);
    // A holder that exits removes the file it locked: the lock is good only on the file the
    // path still names, else open the new one and lock again.
    for _ in 0..8 {
        let opened = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
        let Ok(mut file) = opened.or_else(|_| File::open(&path)) else {
            tracing::debug!("cannot open {}; relying on the bind probe alone", path.display());
            return Ok(None);
        };
        // SAFETY: `flock` takes a descriptor this function owns (open for the call) and flags
        // by value; it touches no memory of ours.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == ErrorKind::WouldBlock {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(Held(text.trim().parse().ok()));
            }
            tracing::debug!("cannot lock {}: {err}; relying on the bind probe alone", path.display());
            return Ok(None);
        }
        let same = match (file.metadata(), std::fs::metadata(&path)) {
            (Ok(held), Ok(named)) => held.ino() == named.ino() && held.dev() == named.dev(),
            _ => false,
        };
        if same {
            let _ =
                file.set_len(0).and_then(|()| file.rewind()).and_then(|()| writeln!(file, "{}", std::process::id()));
            return Ok(Some((file, path)));
        }
    }
    tracing::debug!("{} keeps changing; relying on the bind probe alone", path.display());
    Ok(None)
}

/// `nexus-<ip>-<port>.lock` in `$XDG_RUNTIME_DIR`, else in the temporary directory.
fn lock_path(addr: SocketAddr) -> PathBuf {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let ip = addr.ip().to_string().replace(':', "_");
    dir.join(format!("nexus-{ip}-{}.lock", addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_addr() -> SocketAddr {
        TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port")
    }

    #[test]
    fn a_second_claim_fails_until_the_first_is_dropped() {
        let addr = free_addr();
        let first = AddressLock::claim(addr).expect("the first claim");
        let err = AddressLock::claim(addr).expect_err("a second claim on the same address");
        assert!(err.contains(&addr.to_string()) && err.contains("hint:") && !err.contains('\n'), "{err}");
        assert!(err.contains(&format!("pid {}", std::process::id())), "names the holder: {err}");
        let path = lock_path(addr);
        assert!(path.exists(), "{}", path.display());
        drop(first);
        assert!(!path.exists(), "the lock file goes with its lock: {}", path.display());
        AddressLock::claim(addr).expect("the address is free again");
    }

    #[test]
    fn a_listening_socket_of_another_program_is_found() {
        let other = TcpListener::bind("127.0.0.1:0").expect("bind");
        let err = AddressLock::claim(other.local_addr().unwrap()).expect_err("the address has a listener");
        assert!(err.contains("another program") && err.contains("hint:"), "{err}");
        AddressLock::claim("127.0.0.1:0".parse().unwrap()).expect("port 0 claims nothing");
    }
}
