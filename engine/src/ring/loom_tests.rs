//! Loom models of the ring: `RUSTFLAGS="--cfg loom" cargo test --release --lib ring::loom_tests`.
//!
//! Loom explores every interleaving (and every permitted weak-memory outcome) of the two ends,
//! and checks each `UnsafeCell` access against the happens-before order the atomics establish,
//! so a missing `Acquire`/`Release` shows up as a data race on a slot.

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::*;

/// Pushes `value`, yielding to the other thread while the ring is full.
fn push_retry<T>(p: &mut Producer<T>, mut value: T) {
    loop {
        match p.push(value) {
            Ok(()) => return,
            Err(PushError::Full(v)) => {
                value = v;
                thread::yield_now();
            }
            Err(PushError::Closed(_)) => panic!("consumer dropped"),
        }
    }
}

#[test]
fn push_pop_in_order_through_a_full_ring() {
    loom::model(|| {
        let (mut p, mut c) = ring::<usize>(2).unwrap();
        let producer = thread::spawn(move || {
            for i in 0..3 {
                push_retry(&mut p, i);
            }
        });
        let mut expected = 0;
        while expected < 3 {
            match c.pop() {
                Ok(v) => {
                    assert_eq!(v, expected);
                    expected += 1;
                }
                Err(PopError::Empty) => thread::yield_now(),
                Err(PopError::Closed) => panic!("closed before all items arrived"),
            }
        }
        producer.join().unwrap();
        assert_eq!(c.pop(), Err(PopError::Closed));
    });
}

#[test]
fn batch_publish_and_batch_pop() {
    loom::model(|| {
        let (mut p, mut c) = ring::<usize>(4).unwrap();
        let producer = thread::spawn(move || {
            p.stage(0).unwrap();
            p.stage(1).unwrap();
            assert_eq!(p.publish(), 2);
            let mut rest = 2..4;
            while !rest.is_empty() {
                if p.push_batch(&mut rest) == 0 {
                    thread::yield_now();
                }
            }
        });
        let mut expected = 0;
        while expected < 4 {
            let n = c.pop_batch(4, |v| {
                assert_eq!(v, expected);
                expected += 1;
            });
            if n == 0 {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
    });
}

#[test]
fn staged_items_published_on_producer_drop() {
    loom::model(|| {
        let (mut p, mut c) = ring::<usize>(2).unwrap();
        let producer = thread::spawn(move || {
            p.push(0).unwrap();
            p.stage(1).unwrap();
            // Dropping `p` publishes item 1, then closes.
        });
        let mut got = Vec::new();
        loop {
            match c.pop() {
                Ok(v) => got.push(v),
                Err(PopError::Empty) => thread::yield_now(),
                Err(PopError::Closed) => break,
            }
        }
        assert_eq!(got, [0, 1]);
        producer.join().unwrap();
    });
}

/// Counts drops per id in loom-visible atomics.
struct Counted {
    id: usize,
    drops: Arc<[AtomicUsize; 3]>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops[self.id].fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn dropping_both_ends_with_items_in_flight_drops_each_once() {
    loom::model(|| {
        let drops = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)]);
        let (mut p, mut c) = ring::<Counted>(2).unwrap();
        let producer_drops = Arc::clone(&drops);
        let producer = thread::spawn(move || {
            for id in 0..3 {
                let item = Counted { id, drops: Arc::clone(&producer_drops) };
                // Full or Closed: the rejected item comes back and is dropped here.
                let _ = p.push(item);
            }
        });
        let consumer = thread::spawn(move || {
            // Take at most one item, then drop the consumer with the rest in flight.
            drop(c.pop());
        });
        producer.join().unwrap();
        consumer.join().unwrap();
        for d in drops.iter() {
            assert_eq!(d.load(Ordering::Relaxed), 1);
        }
    });
}
