//! `nexus bench cluster`'s baseline: the same traffic with async-nats alone, no engine: a
//! request/reply echo (one responder task, one requester awaiting each answer in turn) and
//! publish to a counting subscriber, with the same payloads as the Nexus side.
//!
//! Invariant: the raw side runs on its own current-thread runtime per client, as the
//! bridge's NATS thread does, so both sides pay the same client and thread layout.

use futures_util::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A responder (echo) and a counting subscriber on their own thread, and a requester.
pub struct Raw {
    rt: tokio::runtime::Runtime,
    client: async_nats::Client,
    pub counted: Arc<AtomicU64>,
    _server: std::thread::JoinHandle<()>,
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

impl Raw {
    /// Connects both clients to `url`.
    pub fn start(url: &str) -> Result<Raw, String> {
        let counted = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (url_owned, count) = (url.to_owned(), counted.clone());
        let server = std::thread::spawn(move || {
            let Ok(rt) = runtime() else { return };
            rt.block_on(async move {
                let options = async_nats::ConnectOptions::new().event_callback(|_| async {});
                let Ok(client) = options.connect(url_owned.as_str()).await else { return };
                let (Ok(mut echo), Ok(mut sink)) =
                    (client.subscribe("raw.echo").await, client.subscribe("raw.sink").await)
                else {
                    return;
                };
                let _ = client.flush().await;
                let _ = ready_tx.send(());
                loop {
                    tokio::select! {
                        Some(m) = echo.next() => if let Some(reply) = m.reply {
                            let _ = client.publish(reply, m.payload).await;
                        },
                        Some(_) = sink.next() => { count.fetch_add(1, Ordering::Relaxed); },
                        else => return,
                    }
                }
            });
        });
        ready_rx.recv_timeout(Duration::from_secs(5)).map_err(|_| "the raw responder did not start".to_owned())?;
        let rt = runtime().map_err(|e| e.to_string())?;
        let options = async_nats::ConnectOptions::new().event_callback(|_| async {});
        let client = rt.block_on(options.connect(url)).map_err(|e| e.to_string())?;
        Ok(Raw { rt, client, counted, _server: server })
    }

    /// Request/reply round trips for `window`: their latencies in ns.
    pub fn asks(&self, payload: &[u8], window: Duration) -> Vec<u64> {
        let payload = bytes::Bytes::copy_from_slice(payload);
        self.rt.block_on(async {
            let mut out = Vec::new();
            let end = Instant::now() + window;
            while Instant::now() < end {
                let t = Instant::now();
                if self.client.request("raw.echo", payload.clone()).await.is_ok() {
                    out.push(t.elapsed().as_nanos() as u64);
                }
            }
            out
        })
    }

    /// Publishes for `window`, then waits until the subscriber counted them all: messages/s.
    pub fn one_way(&self, payload: &[u8], window: Duration) -> f64 {
        let payload = bytes::Bytes::copy_from_slice(payload);
        let before = self.counted.load(Ordering::Relaxed);
        let started = Instant::now();
        let sent = self.rt.block_on(async {
            let mut sent = 0u64;
            while started.elapsed() < window {
                for _ in 0..256 {
                    if self.client.publish("raw.sink", payload.clone()).await.is_ok() {
                        sent += 1;
                    }
                }
                // The same flow control as the Nexus side: never more than MAX_AHEAD in flight.
                while sent > self.counted.load(Ordering::Relaxed) - before + crate::bench_cluster::MAX_AHEAD {
                    tokio::time::sleep(Duration::from_micros(50)).await;
                }
            }
            let _ = self.client.flush().await;
            sent
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.counted.load(Ordering::Relaxed) - before < sent && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        (self.counted.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64()
    }
}
