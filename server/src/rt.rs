//! The server's view of its shard's executor: tasks, timers and TCP on glommio or on threads.
//!
//! The RESP server runs the same connection code on both executors. This module is the one
//! place that knows there are two: [`Rt`] (which executor the shard runs) spawns tasks and
//! sleeps, [`Listener`] accepts, and [`Stream`] is a TCP stream with `AsyncRead`/`AsyncWrite`
//! and `close`, backed by glommio's io_uring socket or by the threads
//! executor's epoll socket (`nexus_engine::executor::local::net`).
//!
//! Invariant: everything here is used on the shard thread that made it, inside that shard's
//! executor (glommio's, or the threads runtime entered by the engine).

use futures_lite::io::{AsyncRead, AsyncWrite};
use nexus_engine::executor::local;
use nexus_engine::shard::ExecutorKind;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The executor a shard's server tasks run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rt {
    /// glommio's `LocalExecutor` (io_uring).
    Glommio,
    /// The threads executor's runtime (epoll and a timer wheel).
    Threads,
}

impl Rt {
    /// The runtime of a shard that runs `kind` (never `Auto` once the engine is built).
    pub fn of(kind: ExecutorKind) -> Self {
        match kind {
            ExecutorKind::Glommio => Rt::Glommio,
            ExecutorKind::Threads | ExecutorKind::Auto => Rt::Threads,
        }
    }

    /// The executor's name (for INFO).
    pub fn name(self) -> &'static str {
        match self {
            Rt::Glommio => "glommio",
            Rt::Threads => "threads",
        }
    }

    /// Runs `future` as a detached task of this shard.
    pub fn spawn(self, future: impl Future<Output = ()> + 'static) {
        match self {
            Rt::Glommio => {
                glommio::spawn_local(future).detach();
            }
            Rt::Threads => local::spawn(future),
        }
    }

    /// Completes after `duration`.
    pub async fn sleep(self, duration: Duration) {
        match self {
            Rt::Glommio => {
                glommio::timer::sleep(duration).await;
            }
            Rt::Threads => local::sleep(duration).await,
        }
    }

    /// Lets the shard's other tasks and its dispatcher run first.
    pub async fn yield_now(self) {
        match self {
            Rt::Glommio => glommio::executor().yield_now().await,
            Rt::Threads => local::yield_now().await,
        }
    }

    /// Binds a listener on `addr` (`SO_REUSEPORT`: every shard binds the same address;
    /// `SO_REUSEADDR`: a restart binds while its predecessor's closed connections linger).
    /// glommio's own `bind` sets no `SO_REUSEADDR`, so its listener is made from the socket
    /// the threads executor's makes.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub fn bind(self, addr: SocketAddr) -> io::Result<Listener> {
        Ok(match self {
            Rt::Glommio => {
                // Blocking: glommio accepts through io_uring, which waits on the socket itself.
                let fd = local::net::listening_socket(addr, false)?;
                // SAFETY: `fd` is a bound, listening TCP socket that nothing else owns; the
                // listener takes it over (and closes it), and this runs on the shard's glommio
                // executor, whose reactor the listener registers with.
                Listener::Glommio(unsafe { glommio::net::TcpListener::from_raw_fd(fd.into_raw_fd()) })
            }
            Rt::Threads => Listener::Threads(local::net::TcpListener::bind(addr)?),
        })
    }
}

/// A listening socket on either executor.
pub enum Listener {
    /// glommio's.
    Glommio(glommio::net::TcpListener),
    /// The threads executor's.
    Threads(local::net::TcpListener),
}

impl Listener {
    /// Waits for the next connection.
    ///
    /// # Errors
    /// As the executor's accept.
    pub async fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Glommio(l) => l.accept().await.map(Stream::Glommio).map_err(io::Error::from),
            Listener::Threads(l) => l.accept().await.map(Stream::Threads),
        }
    }
}

/// A connected TCP stream on either executor.
pub enum Stream {
    /// glommio's.
    Glommio(glommio::net::TcpStream),
    /// The threads executor's.
    Threads(local::net::TcpStream),
}

impl Stream {
    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    /// As `setsockopt`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Glommio(s) => s.set_nodelay(on).map_err(io::Error::from),
            Stream::Threads(s) => s.set_nodelay(on),
        }
    }

    /// Makes the coming close reset the connection (`SO_LINGER` 0): replies still queued in
    /// the kernel for a client being dropped are discarded, not trickled out.
    ///
    /// # Errors
    /// As `setsockopt`.
    pub fn reset_on_close(&self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = match self {
            Stream::Glommio(s) => s.as_raw_fd(),
            Stream::Threads(s) => s.as_raw_fd(),
        };
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        // SAFETY: `fd` is this open stream's socket for the whole call, and the option value is
        // a `linger` that outlives the call, with its exact size passed alongside.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                std::ptr::addr_of!(linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Closes the stream.
    ///
    /// # Errors
    /// As the executor's.
    pub async fn close(&mut self) -> io::Result<()> {
        match self {
            Stream::Glommio(s) => futures_lite::io::AsyncWriteExt::close(s).await,
            Stream::Threads(s) => s.close().await,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Glommio(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Threads(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Glommio(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Threads(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Glommio(s) => Pin::new(s).poll_flush(cx),
            Stream::Threads(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Glommio(s) => Pin::new(s).poll_close(cx),
            Stream::Threads(s) => Pin::new(s).poll_close(cx),
        }
    }
}
