//! Loom models of the lap ring: `RUSTFLAGS="--cfg loom" cargo test --release --lib
//! lap_ring::loom_tests`.
//!
//! Loom explores every interleaving (and every permitted weak-memory outcome) of the two ends
//! and checks each slot-body access against the happens-before order that the marks and `head`
//! establish, so a missing `Acquire`/`Release`, or a lap bit that lets the consumer read a slot
//! the producer is still writing, shows up as a data race or a wrong value.

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::*;

/// Pushes `value`, yielding to the other thread while the ring is full.
fn push_retry<T: LapMarked>(p: &mut Producer<T>, mut value: T) {
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
fn push_pop_in_order_across_a_lap() {
    loom::model(|| {
        let (mut p, mut c) = lap_ring::<Box<u32>>(2).unwrap();
        let producer = thread::spawn(move || {
            for i in 0..3 {
                push_retry(&mut p, Box::new(i));
            }
        });
        let mut expected = 0;
        while expected < 3 {
            match c.pop() {
                Ok(v) => {
                    assert_eq!(*v, expected);
                    expected += 1;
                }
                Err(PopError::Empty) => thread::yield_now(),
                Err(PopError::Closed) => panic!("closed before all items arrived"),
            }
        }
        producer.join().unwrap();
        assert_eq!(c.pop().err(), Some(PopError::Closed));
    });
}

#[test]
fn batches_both_ways_across_a_lap() {
    // Bounded preemptions keep the search to seconds; a race on a slot shows within two.
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let (mut p, mut c) = lap_ring::<Box<u32>>(2).unwrap();
        let producer = thread::spawn(move || {
            let mut rest = (0..3).map(Box::new);
            let mut pending = rest.len();
            while pending > 0 {
                let n = p.push_batch(&mut rest);
                pending -= n;
                if n == 0 {
                    thread::yield_now();
                }
            }
            assert_eq!(p.publish(), 3);
        });
        let mut expected = 0;
        while expected < 3 {
            let n = c.pop_batch(2, |v| {
                assert_eq!(*v, expected);
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
fn items_pushed_before_the_producer_drops_are_all_seen() {
    loom::model(|| {
        let (mut p, mut c) = lap_ring::<Box<u32>>(2).unwrap();
        let producer = thread::spawn(move || {
            p.push(Box::new(0)).unwrap();
            p.push(Box::new(1)).unwrap();
        });
        let mut got = Vec::new();
        loop {
            match c.pop() {
                Ok(v) => got.push(*v),
                Err(PopError::Empty) => thread::yield_now(),
                Err(PopError::Closed) => break,
            }
        }
        assert_eq!(got, [0, 1]);
        producer.join().unwrap();
    });
}

/// A value whose mark is a box, counting its drops per id in loom-visible atomics.
#[repr(C)]
struct Counted {
    mark: Box<u32>,
    id: usize,
    drops: Arc<[AtomicUsize; 3]>,
}

// SAFETY: `mark` is a `Box<u32>` (non-null, even) at offset 0 of a `repr(C)` struct.
unsafe impl LapMarked for Counted {
    const MARK_OFFSET: usize = 0;
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
        let (mut p, mut c) = lap_ring::<Counted>(2).unwrap();
        let producer_drops = Arc::clone(&drops);
        let producer = thread::spawn(move || {
            for id in 0..3 {
                let item = Counted { mark: Box::new(0), id, drops: Arc::clone(&producer_drops) };
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
