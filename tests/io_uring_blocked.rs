//! `nexus` where io_uring is blocked, as in a container whose seccomp profile denies it.
//!
//! Each test starts the real binary under a seccomp filter that makes `io_uring_setup` fail
//! with `EPERM` (what Docker's default profile does) and checks that `executor = "auto"`
//! falls back to threads with one warning line and still serves, and that an explicit
//! `executor = "glommio"` fails at once with a clear error and a hint.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

/// A `nexus` command whose process cannot set up an io_uring.
fn nexus_without_io_uring() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nexus"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    // SAFETY: the closure runs in the forked child before exec and only calls `prctl`, which
    // is async-signal-safe; the filter program it points at lives until the call returns.
    unsafe {
        cmd.pre_exec(deny_io_uring_setup);
    }
    cmd
}

/// Installs a seccomp filter: `io_uring_setup` fails with `EPERM`, every other call is allowed.
fn deny_io_uring_setup() -> io::Result<()> {
    // BPF_LD | BPF_W | BPF_ABS, BPF_JMP | BPF_JEQ | BPF_K, BPF_RET | BPF_K (BPF_LD, BPF_W and
    // BPF_K are 0).
    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
    const BPF_RET_K: u16 = 0x06;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_MODE_FILTER: libc::c_ulong = 2;
    let stmt = |code, k| libc::sock_filter { code, jt: 0, jf: 0, k };
    let filter = [
        // Load the syscall number (offset 0 of struct seccomp_data).
        stmt(BPF_LD_W_ABS, 0),
        libc::sock_filter { code: BPF_JMP_JEQ_K, jt: 0, jf: 1, k: libc::SYS_io_uring_setup as u32 },
        stmt(BPF_RET_K, SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
    ];
    let program = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr() as *mut libc::sock_filter };
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `program` points at `filter`, both alive for the duration of the call; the
    // kernel copies the program.
    if unsafe { libc::prctl(libc::PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program as *const libc::sock_fprog, 0, 0) } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn config(name: &str, executor: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nexus-uring-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let text = format!(
        "executor = \"{executor}\"\nload = false\n[placement]\nshards = 2\noversubscribe = true\n\
         [server]\nlisten = \"127.0.0.1:{}\"\nmetrics_listen = \"\"\n",
        free_port()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn output(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn auto_falls_back_to_threads_with_one_warning_and_still_serves() {
    let path = config("auto.toml", "auto");
    let out = nexus_without_io_uring()
        .args(["run", "--config", path.to_str().unwrap(), "--duration-s", "1"])
        .output()
        .expect("nexus runs");
    let text = output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("executor auto:")).collect();
    assert_eq!(warnings.len(), 1, "one warning line:\n{text}");
    assert!(
        warnings[0].contains("io_uring is unavailable") && warnings[0].contains("Operation not permitted"),
        "{text}"
    );
    assert!(text.contains("executor threads"), "{text}");
    assert!(text.contains("serving RESP on"), "the server runs on threads:\n{text}");
    assert!(text.lines().any(|l| l.starts_with("accounting:") && l.ends_with("ok")), "{text}");
}

#[test]
fn explicit_glommio_fails_with_a_clear_error() {
    let path = config("glommio.toml", "glommio");
    let out = nexus_without_io_uring()
        .args(["run", "--config", path.to_str().unwrap(), "--duration-s", "1"])
        .output()
        .expect("nexus runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", output(&out));
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("nexus:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("executor = \"glommio\" but io_uring is unavailable"), "{stderr}");
    assert!(lines[0].contains("hint: set executor = \"threads\""), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("serving RESP"), "nothing started");
}

#[test]
fn the_command_line_executor_overrides_the_config() {
    // The config asks for glommio; `--executor threads` wins, so the blocked ring does not matter.
    let path = config("override.toml", "glommio");
    let out = nexus_without_io_uring()
        .args(["run", "--config", path.to_str().unwrap(), "--duration-s", "1", "--executor", "threads"])
        .output()
        .expect("nexus runs");
    let text = output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("executor threads") && !text.contains("executor auto:"), "{text}");
}

#[test]
fn doctor_reports_the_blocked_ring() {
    // Under auto the fallback is a WARN (exit 0); under glommio it is a FAIL (exit 1).
    let out = nexus_without_io_uring()
        .args(["doctor", "--config", config("doctor-auto.toml", "auto").to_str().unwrap()])
        .output()
        .unwrap();
    let text = output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = text.lines().find(|l| l.contains("io_uring ")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.starts_with("WARN") && line.contains("Operation not permitted"), "{line}");
    let out = nexus_without_io_uring()
        .args(["doctor", "--config", config("doctor-glommio.toml", "glommio").to_str().unwrap()])
        .output()
        .unwrap();
    let text = output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.lines().any(|l| l.starts_with("FAIL") && l.contains("io_uring")), "{text}");
}
