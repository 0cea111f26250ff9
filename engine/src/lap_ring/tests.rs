//! Single- and two-thread tests of the lap ring, on values whose mark sits at the start, in the
//! middle and at the end of their bytes. Miri runs these (`.ci/run`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use super::*;

/// A value with its mark in the middle and plain bytes on both sides, counting its drops.
#[repr(C)]
struct Wide {
    id: u64,
    mark: Box<u32>,
    tail: [u32; 5],
    drops: Option<Arc<[AtomicUsize]>>,
}

// SAFETY: `mark` is a `Box<u32>` (non-null, even) at a pointer-aligned offset inside `Wide`.
unsafe impl LapMarked for Wide {
    const MARK_OFFSET: usize = std::mem::offset_of!(Wide, mark);
}

impl Wide {
    fn new(id: u64, drops: Option<&Arc<[AtomicUsize]>>) -> Self {
        let small = id as u32;
        Self { id, mark: Box::new(small ^ 0xA5A5), tail: [small; 5], drops: drops.cloned() }
    }

    /// Every byte the ring moved came back: the id, the boxed value and the tail agree.
    fn check(&self) -> u64 {
        let small = self.id as u32;
        assert_eq!(*self.mark, small ^ 0xA5A5, "mark of {} corrupted", self.id);
        assert_eq!(self.tail, [small; 5], "body of {} corrupted", self.id);
        self.id
    }
}

impl Drop for Wide {
    fn drop(&mut self) {
        if let Some(drops) = &self.drops {
            drops[self.id as usize].fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn counters(n: usize) -> Arc<[AtomicUsize]> {
    (0..n).map(|_| AtomicUsize::new(0)).collect()
}

fn counts(drops: &Arc<[AtomicUsize]>) -> Vec<usize> {
    drops.iter().map(|d| d.load(Ordering::SeqCst)).collect()
}

#[test]
fn capacity_validation() {
    assert_eq!(lap_ring::<Box<u32>>(0).err(), Some(RingError::TooSmall(0)));
    assert_eq!(lap_ring::<Box<u32>>(1).err(), Some(RingError::TooSmall(1)));
    assert_eq!(lap_ring::<Box<u32>>(6).err(), Some(RingError::NotPowerOfTwo(6)));
    assert_eq!(lap_ring::<Box<u32>>(MAX_CAPACITY * 2).err(), Some(RingError::TooLarge(MAX_CAPACITY * 2)));
    assert!(lap_ring::<Box<u32>>(2).is_ok());
}

#[test]
fn envelope_slot_is_one_cache_line() {
    use crate::envelope::Envelope;
    assert_eq!(std::mem::size_of::<Slot<Envelope>>(), 64);
    assert_eq!(std::mem::align_of::<Slot<Envelope>>(), 64);
}

#[test]
fn push_pop_full_empty_in_order() {
    let (mut p, mut c) = lap_ring::<Box<u32>>(4).unwrap();
    assert_eq!(c.pop().err(), Some(PopError::Empty));
    assert!(c.is_empty());
    for i in 0..4 {
        p.push(Box::new(i)).unwrap();
    }
    assert!(matches!(p.push(Box::new(9)), Err(PushError::Full(v)) if *v == 9));
    assert_eq!(p.publish(), 0, "push publishes, and its count went with it");
    for i in 0..4 {
        assert_eq!(*c.pop().unwrap(), i);
    }
    assert!(c.is_empty());
    p.push(Box::new(4)).unwrap();
    assert_eq!(*c.pop().unwrap(), 4);
}

#[test]
fn many_laps_keep_every_byte() {
    let (mut p, mut c) = lap_ring::<Wide>(4).unwrap();
    let mut next = 0;
    for id in 0..100u64 {
        p.push(Wide::new(id, None)).unwrap();
        if id % 3 == 2 {
            while let Ok(w) = c.pop() {
                assert_eq!(w.check(), next);
                next += 1;
            }
        }
    }
    c.pop_batch(usize::MAX, |w| {
        assert_eq!(w.check(), next);
        next += 1;
    });
    assert_eq!(next, 100);
}

#[test]
fn counters_wrap_past_usize_max() {
    // Start mid-lap, 6 items before the wrap, so laps with both bits cross it.
    let (mut p, mut c) = lap_ring_starting_at::<Box<u32>>(4, usize::MAX - 5).unwrap();
    for i in 0..40 {
        p.push(Box::new(i)).unwrap();
        if i % 2 == 1 {
            assert_eq!(*c.pop().unwrap(), i - 1);
            assert_eq!(*c.pop().unwrap(), i);
            assert!(c.is_empty());
        }
    }
}

#[test]
fn push_batch_takes_only_what_fits() {
    let (mut p, mut c) = lap_ring::<Box<u32>>(4).unwrap();
    let mut items = (0..10).map(Box::new);
    assert_eq!(p.push_batch(&mut items), 4);
    assert_eq!(*items.next().unwrap(), 4, "the item that did not fit stays in the iterator");
    let mut seen = Vec::new();
    assert_eq!(c.pop_batch(3, |v| seen.push(*v)), 3);
    assert_eq!(p.push_batch(&mut items), 3);
    assert_eq!(c.pop_batch(usize::MAX, |v| seen.push(*v)), 4);
    assert_eq!(seen, [0, 1, 2, 3, 5, 6, 7]);
    assert_eq!(p.publish(), 7);
}

#[test]
fn consumer_drop_closes_producer() {
    let (mut p, c) = lap_ring::<Box<u32>>(2).unwrap();
    drop(c);
    assert!(p.is_closed());
    assert!(matches!(p.push(Box::new(1)), Err(PushError::Closed(v)) if *v == 1));
    assert_eq!(p.push_batch(&mut (0..3).map(Box::new)), 0);
}

#[test]
fn producer_drop_closes_consumer_after_drain() {
    let (mut p, mut c) = lap_ring::<Box<u32>>(2).unwrap();
    p.push(Box::new(7)).unwrap();
    drop(p);
    assert!(c.is_closed());
    assert_eq!(*c.pop().unwrap(), 7);
    assert_eq!(c.pop().err(), Some(PopError::Closed));
}

#[test]
fn remaining_items_dropped_exactly_once() {
    let drops = counters(12);
    let (mut p, mut c) = lap_ring::<Wide>(8).unwrap();
    for id in 0..8 {
        p.push(Wide::new(id, Some(&drops))).unwrap();
    }
    for _ in 0..5 {
        c.pop().unwrap().check();
    }
    for id in 8..12 {
        p.push(Wide::new(id, Some(&drops))).unwrap();
    }
    drop(p);
    drop(c);
    assert_eq!(counts(&drops), vec![1; 12]);
}

#[test]
fn pop_batch_panic_keeps_head_and_drops_once() {
    let drops = counters(4);
    let (mut p, mut c) = lap_ring::<Wide>(4).unwrap();
    for id in 0..4 {
        p.push(Wide::new(id, Some(&drops))).unwrap();
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        c.pop_batch(4, |w| assert_ne!(w.check(), 1, "boom"));
    }));
    assert!(result.is_err());
    assert_eq!(counts(&drops), [1, 1, 0, 0], "the panicking item was dropped by the unwind");
    assert_eq!(c.pop().unwrap().check(), 2);
    drop((p, c));
    assert_eq!(counts(&drops), [1, 1, 1, 1]);
}

#[test]
fn two_thread_stress_in_order() {
    let total: u64 = if cfg!(miri) { 300 } else { 200_000 };
    let (mut p, mut c) = lap_ring::<Wide>(8).unwrap();
    let producer = thread::spawn(move || {
        let mut id = 0;
        while id < total {
            match p.push(Wide::new(id, None)) {
                Ok(()) => id += 1,
                Err(PushError::Full(_)) => thread::yield_now(),
                Err(PushError::Closed(_)) => panic!("consumer dropped"),
            }
        }
    });
    let mut next = 0;
    while next < total {
        let got = c.pop_batch(5, |w| {
            assert_eq!(w.check(), next);
            next += 1;
        });
        if got == 0 {
            thread::yield_now();
        }
    }
    producer.join().unwrap();
    assert_eq!(c.pop().err(), Some(PopError::Closed));
}

#[test]
fn envelopes_cross_with_inline_pooled_and_boxed_payloads() {
    use crate::envelope::{Envelope, Kind, NO_SENDER};
    use crate::payload::Payload;
    let (mut p, mut c) = lap_ring::<Envelope>(2).unwrap();
    let payloads = || {
        [
            Payload::new(7u64),
            Payload::new([3u64; 6]),
            Payload::new(String::from("a boxed payload that owns heap memory")),
            Payload::new(vec![1u8, 2, 3]),
        ]
    };
    for (i, payload) in payloads().into_iter().enumerate() {
        p.push(Envelope::new(Kind::User, i as u64, NO_SENDER, 0, 0, payload)).unwrap();
        let env = c.pop().unwrap();
        assert_eq!(env.to, i as u64);
        match i {
            0 => assert_eq!(env.payload.take::<u64>().ok(), Some(7)),
            1 => assert_eq!(env.payload.take::<[u64; 6]>().ok(), Some([3; 6])),
            2 => {
                assert_eq!(env.payload.take::<String>().ok().as_deref(), Some("a boxed payload that owns heap memory"))
            }
            _ => assert_eq!(env.payload.take::<Vec<u8>>().ok(), Some(vec![1, 2, 3])),
        }
    }
    // Envelopes left in the ring are dropped with their payloads (Miri reports a leak).
    for payload in payloads().into_iter().take(2) {
        p.push(Envelope::new(Kind::User, 0, NO_SENDER, 0, 0, payload)).unwrap();
    }
}

#[test]
fn staged_items_are_invisible_until_publish() {
    let (mut p, mut c) = lap_ring::<Box<u32>>(4).unwrap();
    p.stage(Box::new(0)).unwrap();
    p.stage(Box::new(1)).unwrap();
    assert!(c.is_empty(), "staged items must not be visible");
    assert_eq!(p.staged(), 2);
    p.stage(Box::new(2)).unwrap();
    p.stage(Box::new(3)).unwrap();
    assert!(matches!(p.stage(Box::new(4)), Err(PushError::Full(_))), "staged items take slots");
    assert_eq!(p.publish(), 4);
    let mut seen = Vec::new();
    assert_eq!(c.pop_batch(usize::MAX, |v| seen.push(*v)), 4);
    assert_eq!(seen, [0, 1, 2, 3]);
}

#[test]
fn a_full_stage_buffer_publishes_early_and_counts_once() {
    let n = STAGE_MAX * 2 + 3;
    let (mut p, mut c) = lap_ring::<Box<u32>>(512).unwrap();
    for i in 0..n {
        p.stage(Box::new(i as u32)).unwrap();
    }
    // The first two buffers' worth went out early; the last 3 wait.
    let mut seen = Vec::new();
    assert_eq!(c.pop_batch(usize::MAX, |v| seen.push(*v)), STAGE_MAX * 2);
    assert_eq!(p.publish(), n, "every staged item counts once, early or not");
    assert_eq!(c.pop_batch(usize::MAX, |v| seen.push(*v)), 3);
    assert_eq!(seen, (0..n as u32).collect::<Vec<_>>());
}

#[test]
fn dropping_the_producer_publishes_what_is_staged() {
    let (mut p, mut c) = lap_ring::<Box<u32>>(4).unwrap();
    p.stage(Box::new(5)).unwrap();
    drop(p);
    assert_eq!(*c.pop().unwrap(), 5);
    assert_eq!(c.pop().err(), Some(PopError::Closed));
}
