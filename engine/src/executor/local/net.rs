//! TCP for the threads executor: a listener and a stream on the shard's epoll reactor.
//!
//! Both own a non-blocking socket registered with the runtime of the thread that made them
//! ([`super::Runtime::enter`]) and must be used on that thread. Every operation tries its
//! system call first and waits (stores its task's waker in the socket's `Source`) only on
//! `EAGAIN`. [`TcpStream`] implements the `futures-io` `AsyncRead` and `AsyncWrite` traits, and
//! has a read timeout measured from when a read starts waiting (an idle client), reported as
//! `ErrorKind::TimedOut`, as glommio's stream does.
//!
//! Invariant: a socket is deregistered from epoll before its descriptor is closed (`Drop`).

use super::reactor::Source;
use super::wheel::TimerKey;
use super::Runtime;
use futures_lite::io::{AsyncRead, AsyncWrite};
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A socket registered with the current thread's runtime.
struct Registered<T: AsRawFd> {
    io: Option<T>,
    index: usize,
    source: Rc<RefCell<Source>>,
    runtime: Runtime,
}

impl<T: AsRawFd> Registered<T> {
    fn new(io: T) -> io::Result<Self> {
        let runtime = Runtime::current()
            .ok_or_else(|| io::Error::other("no threads runtime on this thread (sockets belong to a shard)"))?;
        let (index, source) = runtime.reactor().register(io.as_raw_fd())?;
        Ok(Self { io: Some(io), index, source, runtime })
    }

    fn io(&self) -> &T {
        self.io.as_ref().expect("the socket is open until drop")
    }
}

impl<T: AsRawFd> Drop for Registered<T> {
    fn drop(&mut self) {
        if let Some(io) = self.io.take() {
            self.runtime.reactor().deregister(io.as_raw_fd(), self.index);
            drop(io);
        }
    }
}

/// A listening socket; every shard may bind the same address (`SO_REUSEPORT`).
pub struct TcpListener {
    socket: Registered<std::net::TcpListener>,
}

/// A TCP socket bound to `addr` with `SO_REUSEADDR` and `SO_REUSEPORT`, listening; blocking
/// or not as `nonblocking` says. Every shard binds the same address (`SO_REUSEPORT`), and
/// `SO_REUSEADDR` lets a restarted server bind while the connections its predecessor closed
/// linger in `TIME_WAIT` (their sockets carry the listener's options). Both executors' listeners
/// are made here (glommio's from the descriptor).
///
/// # Errors
/// When the socket cannot be made or bound (the address is in use without reuse, ...).
pub fn listening_socket(addr: SocketAddr, nonblocking: bool) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain syscall; the result is checked and owned below.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | if nonblocking { libc::SOCK_NONBLOCK } else { 0 },
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    for option in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
        let one: libc::c_int = 1;
        // SAFETY: `one` lives across the call and its size is passed; fd is open.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes for `addr`'s family.
    if unsafe { libc::bind(fd.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain syscall on an open, bound socket.
    if unsafe { libc::listen(fd.as_raw_fd(), 1024) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

impl TcpListener {
    /// Binds `addr` with `SO_REUSEADDR` and `SO_REUSEPORT` and listens ([`listening_socket`]).
    ///
    /// # Errors
    /// When the socket cannot be made or bound (the address is in use without reuse, ...).
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let fd = listening_socket(addr, true)?;
        let listener = std::net::TcpListener::from(fd);
        Ok(Self { socket: Registered::new(listener)? })
    }

    /// The bound address.
    ///
    /// # Errors
    /// As `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.io().local_addr()
    }

    /// Waits for the next connection.
    ///
    /// # Errors
    /// As `accept4` (other than `EAGAIN`), or when the stream cannot be registered.
    pub async fn accept(&self) -> io::Result<TcpStream> {
        let stream = std::future::poll_fn(|cx| match self.socket.io().accept() {
            Ok((stream, _)) => Poll::Ready(Ok(stream)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.socket.source.borrow_mut().wait_read(cx);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        })
        .await?;
        TcpStream::from_std(stream)
    }
}

/// Encodes `addr` for `bind`.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// A connected stream; see the module docs.
pub struct TcpStream {
    socket: Registered<std::net::TcpStream>,
    read_timeout: Option<Duration>,
    /// While a read waits: when it started waiting and its timeout timer.
    read_wait: Option<(u64, Option<TimerKey>)>,
}

impl TcpStream {
    fn from_std(stream: std::net::TcpStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(Self { socket: Registered::new(stream)?, read_timeout: None, read_wait: None })
    }

    /// Connects to `addr` (blocking until connected, then non-blocking): for tests and tools.
    ///
    /// # Errors
    /// As `connect`.
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        Self::from_std(std::net::TcpStream::connect(addr)?)
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    /// As `setsockopt`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.socket.io().set_nodelay(on)
    }

    /// A read that waits longer than `timeout` for data fails with `ErrorKind::TimedOut`
    /// (`None`: waits for ever).
    ///
    /// # Errors
    /// Never; the signature matches glommio's.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.read_timeout = timeout;
        self.clear_read_wait();
        Ok(())
    }

    /// The peer's address.
    ///
    /// # Errors
    /// As `getpeername`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.io().peer_addr()
    }

    /// Shuts the stream down in both directions (the descriptor closes on drop).
    ///
    /// # Errors
    /// As `shutdown`, except `NotConnected` (the peer went first), which is success.
    pub async fn close(&mut self) -> io::Result<()> {
        match self.socket.io().shutdown(Shutdown::Both) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
            _ => Ok(()),
        }
    }

    fn clear_read_wait(&mut self) {
        if let Some((_, Some(key))) = self.read_wait.take() {
            self.socket.runtime.cancel_timer(key);
        }
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.io().as_raw_fd()
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        self.clear_read_wait();
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = this.socket.io().read(buf);
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                this.socket.source.borrow_mut().wait_read(cx);
                let Some(timeout) = this.read_timeout else { return Poll::Pending };
                let runtime = &this.socket.runtime;
                let now = runtime.now_ns();
                match this.read_wait {
                    None => {
                        let deadline = now.saturating_add(timeout.as_nanos() as u64);
                        let key = runtime.add_timer(deadline, cx.waker().clone());
                        this.read_wait = Some((now, Some(key)));
                        Poll::Pending
                    }
                    Some((since, _)) if now.saturating_sub(since) >= timeout.as_nanos() as u64 => {
                        this.clear_read_wait();
                        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out")))
                    }
                    Some((_, Some(key))) => {
                        runtime.update_timer(key, cx.waker());
                        Poll::Pending
                    }
                    Some((_, None)) => Poll::Pending,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            other => {
                this.clear_read_wait();
                Poll::Ready(other)
            }
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.socket.io().write(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.socket.source.borrow_mut().wait_write(cx);
                Poll::Pending
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            other => Poll::Ready(other),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(match self.socket.io().shutdown(Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
            _ => Ok(()),
        })
    }
}
