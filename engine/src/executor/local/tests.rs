//! Tests of the threads executor's runtime: tasks, cross-thread wakes, timers and TCP.

use super::net::TcpListener;
use super::*;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use std::io::{Read, Write};

/// Turns the runtime until `done` or 5 s pass.
fn drive(rt: &Runtime, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "the runtime made no progress");
        rt.turn(Duration::from_millis(5));
    }
}

#[test]
fn spawned_tasks_run_and_finish() {
    let rt = Runtime::new().unwrap();
    let _g = rt.enter();
    let hits = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let h = hits.clone();
        spawn(async move {
            yield_now().await;
            h.set(h.get() + 1);
        });
    }
    assert_eq!(rt.tasks(), 3);
    assert!(!rt.is_idle());
    drive(&rt, || hits.get() == 3);
    assert_eq!(rt.tasks(), 0);
    assert!(rt.is_idle(), "finished tasks leave nothing behind");
}

#[test]
fn a_wake_from_another_thread_ends_a_blocked_turn() {
    let rt = Runtime::new().unwrap();
    let _g = rt.enter();
    let (tx, rx) = std::sync::mpsc::channel::<Waker>();
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let mut sent = false;
    spawn(std::future::poll_fn(move |cx| {
        if sent {
            d.set(true);
            return Poll::Ready(());
        }
        sent = true;
        tx.send(cx.waker().clone()).unwrap();
        Poll::Pending
    }));
    rt.turn(Duration::ZERO);
    let waker = rx.recv().unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        waker.wake();
    });
    let start = Instant::now();
    // One long turn: only the eventfd can end it before its timeout.
    while !done.get() {
        rt.turn(Duration::from_secs(10));
    }
    assert!(start.elapsed() < Duration::from_secs(5), "the cross-thread wake ended the wait");
    t.join().unwrap();
}

#[test]
fn the_park_waker_ends_epoll_wait() {
    let rt = Runtime::new().unwrap();
    let waker = rt.park_waker();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        waker.wake();
    });
    let start = Instant::now();
    rt.turn(Duration::from_secs(10));
    assert!(start.elapsed() < Duration::from_secs(5));
    t.join().unwrap();
}

#[test]
fn sleep_waits_at_least_its_duration() {
    let rt = Runtime::new().unwrap();
    let _g = rt.enter();
    let done = Rc::new(Cell::new(None));
    let d = done.clone();
    let start = Instant::now();
    spawn(async move {
        sleep(Duration::from_millis(30)).await;
        d.set(Some(start.elapsed()));
    });
    drive(&rt, || done.get().is_some());
    assert!(done.get().unwrap() >= Duration::from_millis(30));
    assert!(rt.is_idle(), "the fired timer is gone");
}

#[test]
fn a_dropped_sleep_cancels_its_timer() {
    let rt = Runtime::new().unwrap();
    let _g = rt.enter();
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    spawn(async move {
        let long = sleep(Duration::from_secs(60));
        let short = sleep(Duration::from_millis(5));
        futures_lite::future::or(long, short).await;
        d.set(true);
    });
    drive(&rt, || done.get());
    assert!(rt.is_idle(), "the 60 s timer was cancelled when its future dropped");
}

#[test]
fn tcp_echo_over_epoll() {
    let rt = Runtime::new().unwrap();
    let _g = rt.enter();
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Rc::new(Cell::new(0usize));
    let s = served.clone();
    spawn(async move {
        let mut stream = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            stream.write_all(&buf[..n]).await.unwrap();
            s.set(s.get() + n);
        }
        stream.close().await.unwrap();
    });
    // A big payload makes both sides hit EAGAIN and wait on epoll.
    let payload: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let expected = payload.clone();
    let client = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        let mut w = c.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            w.write_all(&payload).unwrap();
            w.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        back
    });
    drive(&rt, || client.is_finished());
    let back = client.join().unwrap();
    assert_eq!(back.len(), expected.len());
    assert!(back == expected, "the echo is byte for byte");
    drive(&rt, || rt.tasks() == 0);
    assert_eq!(served.get(), expected.len());
    assert_eq!(rt.reactor().sources(), 0, "the closed sockets left epoll");
}

#[test]
fn a_silent_peer_times_the_read_out() {
    let rt = Runtime::new().unwrap();
    let _g = rt.enter();
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let outcome = Rc::new(RefCell::new(None));
    let o = outcome.clone();
    spawn(async move {
        let mut stream = listener.accept().await.unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        let mut buf = [0u8; 16];
        let start = Instant::now();
        let r = stream.read(&mut buf).await;
        *o.borrow_mut() = Some((r.map_err(|e| e.kind()), start.elapsed()));
    });
    let _client = std::net::TcpStream::connect(addr).unwrap();
    drive(&rt, || outcome.borrow().is_some());
    let (result, waited) = outcome.borrow_mut().take().unwrap();
    assert_eq!(result, Err(io::ErrorKind::TimedOut));
    assert!(waited >= Duration::from_millis(30), "{waited:?}");
}

#[test]
fn shutdown_drops_pending_tasks_and_their_sockets() {
    let rt = Runtime::new().unwrap();
    let _g = rt.enter();
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    spawn(async move {
        let _ = listener.accept().await;
    });
    rt.turn(Duration::ZERO);
    assert_eq!((rt.tasks(), rt.reactor().sources()), (1, 1));
    rt.shutdown();
    assert_eq!((rt.tasks(), rt.reactor().sources()), (0, 0));
    assert!(rt.is_idle());
}
