//! Single- and two-thread tests of the ring, and a model-based proptest.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use proptest::prelude::*;

use super::*;

// ---------------------------------------------------------------------------------------------
// Compile-time pins: Send iff T: Send, never Sync, never Clone.

/// `AmbiguousIf<X>` has one blanket impl for every type, plus a second one for the types with
/// the property under test. Naming `<T as AmbiguousIf*<_>>::CHECK` then compiles only when
/// exactly one impl applies, i.e. when `T` does *not* have the property.
macro_rules! assert_not_impl {
    ($name:ident, $bound:path, $($ty:ty),+) => {
        #[allow(dead_code)]
        trait $name<A> {
            const CHECK: () = ();
        }
        impl<T: ?Sized> $name<()> for T {}
        #[allow(dead_code)]
        struct Witness;
        impl<T: ?Sized + $bound> $name<Witness> for T {}
        $(const _: () = <$ty as $name<_>>::CHECK;)+
    };
}

mod not_sync {
    use super::*;
    assert_not_impl!(AmbiguousIfSync, Sync, Producer<u8>, Consumer<u8>);
}
mod not_clone {
    use super::*;
    assert_not_impl!(AmbiguousIfClone, Clone, Producer<u8>, Consumer<u8>);
}
mod not_send_without_send_t {
    use super::*;
    assert_not_impl!(AmbiguousIfSend, Send, Producer<Rc<u8>>, Consumer<Rc<u8>>);
}

const fn assert_send<T: Send>() {}
const _: () = assert_send::<Producer<u8>>();
const _: () = assert_send::<Consumer<u8>>();
const _: () = assert_send::<Producer<Box<String>>>();
const _: () = assert_send::<Consumer<Box<String>>>();

#[test]
fn send_not_sync_pins_compile() {
    // The real checks are the `const` items above; this test just names them in the report.
    assert_send::<Producer<Vec<u8>>>();
}

// ---------------------------------------------------------------------------------------------
// A value that counts its drops per id, to prove every item is dropped exactly once.

#[derive(Debug)]
struct Counted {
    id: usize,
    drops: Arc<[AtomicUsize]>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops[self.id].fetch_add(1, Ordering::Relaxed);
    }
}

fn drop_counters(n: usize) -> Arc<[AtomicUsize]> {
    (0..n).map(|_| AtomicUsize::new(0)).collect()
}

fn counted(drops: &Arc<[AtomicUsize]>, id: usize) -> Counted {
    Counted { id, drops: Arc::clone(drops) }
}

fn drop_counts(drops: &Arc<[AtomicUsize]>) -> Vec<usize> {
    drops.iter().map(|d| d.load(Ordering::Relaxed)).collect()
}

// ---------------------------------------------------------------------------------------------
// Construction.

#[test]
fn capacity_validation() {
    assert_eq!(ring::<u8>(0).unwrap_err(), RingError::TooSmall(0));
    assert_eq!(ring::<u8>(1).unwrap_err(), RingError::TooSmall(1));
    assert_eq!(ring::<u8>(3).unwrap_err(), RingError::NotPowerOfTwo(3));
    assert_eq!(ring::<u8>(6).unwrap_err(), RingError::NotPowerOfTwo(6));
    assert_eq!(ring::<u8>(MAX_CAPACITY + 1).unwrap_err(), RingError::TooLarge(MAX_CAPACITY + 1));
    assert_eq!(ring::<u8>(MAX_CAPACITY * 2).unwrap_err(), RingError::TooLarge(MAX_CAPACITY * 2));
    for cap in [2, 4, 8, 1024] {
        let (p, c) = ring::<u8>(cap).unwrap();
        assert_eq!(p.capacity(), cap);
        assert_eq!(c.capacity(), cap);
    }
    assert!(RingError::TooSmall(1).to_string().contains("minimum"));
}

#[test]
fn error_types() {
    let e: PushError<String> = PushError::Full("x".to_owned());
    assert_eq!(format!("{e:?}"), "Full(..)");
    assert_eq!(e.to_string(), "ring is full");
    assert_eq!(e.into_inner(), "x");
    let e: Box<dyn std::error::Error> = Box::new(PushError::Closed(5_u32));
    assert_eq!(e.to_string(), "ring consumer was dropped");
    assert_eq!(PopError::Empty.to_string(), "ring is empty");
    let _: &dyn std::error::Error = &PopError::Closed;
    let _: &dyn std::error::Error = &RingError::TooLarge(1);
}

// ---------------------------------------------------------------------------------------------
// Single-thread behaviour.

#[test]
fn push_pop_full_empty() {
    let (mut p, mut c) = ring::<u32>(4).unwrap();
    assert_eq!(c.pop(), Err(PopError::Empty));
    assert!(c.is_empty());
    assert_eq!(p.free_slots(), 4);
    for i in 0..4 {
        p.push(i).unwrap();
    }
    assert_eq!(p.push(99), Err(PushError::Full(99)));
    assert_eq!(p.free_slots(), 0);
    assert_eq!(c.peek_len(), 4);
    assert!(!c.is_empty());
    assert_eq!(c.pop(), Ok(0));
    // The producer's cache still says full; `free_slots` must reload and see the freed slot.
    assert_eq!(p.free_slots(), 1);
    p.push(4).unwrap();
    assert_eq!(p.push(5), Err(PushError::Full(5)));
    for i in 1..5 {
        assert_eq!(c.pop(), Ok(i));
    }
    assert_eq!(c.pop(), Err(PopError::Empty));
    assert_eq!(c.peek_len(), 0);
}

#[test]
fn wraparound_many_laps() {
    let (mut p, mut c) = ring::<u64>(4).unwrap();
    let mut next_out = 0;
    for i in 0..1_000_u64 {
        p.push(i).unwrap();
        if i % 3 == 2 {
            // Let the ring fill up a bit between drains so laps start at every offset.
            while let Ok(v) = c.pop() {
                assert_eq!(v, next_out);
                next_out += 1;
            }
        }
    }
    while let Ok(v) = c.pop() {
        assert_eq!(v, next_out);
        next_out += 1;
    }
    assert_eq!(next_out, 1_000);
}

#[test]
fn counters_wrap_past_usize_max() {
    let start = usize::MAX - 5;
    let (mut p, mut c) = ring_starting_at::<usize>(4, start).unwrap();
    let mut expected = 0;
    for round in 0..10 {
        let n = p.push_batch(&mut (round * 4..round * 4 + 4));
        assert_eq!(n, 4);
        assert_eq!(p.push(0), Err(PushError::Full(0)));
        assert_eq!(c.peek_len(), 4);
        c.pop_batch(3, |v| {
            assert_eq!(v, expected);
            expected += 1;
        });
        assert_eq!(c.pop(), Ok(expected));
        expected += 1;
    }
    assert_eq!(expected, 40);
    assert_eq!(c.pop(), Err(PopError::Empty));
}

#[test]
fn staged_items_are_invisible_until_publish() {
    let (mut p, mut c) = ring::<u32>(8).unwrap();
    p.stage(1).unwrap();
    p.stage(2).unwrap();
    assert_eq!(p.staged(), 2);
    assert_eq!(c.peek_len(), 0);
    assert!(c.is_empty());
    assert_eq!(c.pop(), Err(PopError::Empty));
    assert_eq!(c.pop_batch(8, |_| panic!("staged item leaked")), 0);
    // Staged items take slots.
    assert_eq!(p.free_slots(), 6);
    assert_eq!(p.publish(), 2);
    assert_eq!(p.staged(), 0);
    assert_eq!(p.publish(), 0);
    assert_eq!(c.peek_len(), 2);
    // `push` publishes what was staged before it.
    p.stage(3).unwrap();
    p.push(4).unwrap();
    assert_eq!(p.staged(), 0);
    let mut out = Vec::new();
    assert_eq!(c.pop_batch(usize::MAX, |v| out.push(v)), 4);
    assert_eq!(out, [1, 2, 3, 4]);
}

#[test]
fn stage_reports_full() {
    let (mut p, mut c) = ring::<u32>(2).unwrap();
    p.stage(1).unwrap();
    p.stage(2).unwrap();
    assert_eq!(p.stage(3), Err(PushError::Full(3)));
    assert_eq!(p.push(3), Err(PushError::Full(3)));
    assert_eq!(p.staged(), 2);
    assert_eq!(c.pop(), Err(PopError::Empty));
    assert_eq!(p.publish(), 2);
    assert_eq!(c.pop(), Ok(1));
    assert_eq!(c.pop(), Ok(2));
}

#[test]
fn push_batch_and_pop_batch_counts_and_order() {
    let (mut p, mut c) = ring::<u32>(8).unwrap();
    let mut source = 0..20;
    assert_eq!(p.push_batch(&mut source), 8);
    // Nothing was pulled out of the iterator and lost.
    assert_eq!(source.clone().next(), Some(8));
    assert_eq!(p.push_batch(&mut source), 0);
    assert_eq!(source.clone().next(), Some(8));

    let mut out = Vec::new();
    assert_eq!(c.pop_batch(3, |v| out.push(v)), 3);
    assert_eq!(out, [0, 1, 2]);
    assert_eq!(c.pop_batch(0, |v| out.push(v)), 0);
    // The producer's cached head is stale; `push_batch` reloads it once.
    assert_eq!(p.push_batch(&mut source), 3);
    assert_eq!(source.clone().next(), Some(11));
    assert_eq!(c.pop_batch(100, |v| out.push(v)), 8);
    assert_eq!(out, (0..11).collect::<Vec<_>>());
    // A short iterator stops the batch early.
    p.stage(100).unwrap();
    assert_eq!(p.push_batch(&mut [101, 102].into_iter()), 2);
    assert_eq!(p.staged(), 0);
    out.clear();
    assert_eq!(c.pop_batch(100, |v| out.push(v)), 3);
    assert_eq!(out, [100, 101, 102]);
}

#[test]
fn consumer_drop_closes_producer() {
    let (mut p, c) = ring::<String>(4).unwrap();
    assert!(!p.is_closed());
    p.push("a".to_owned()).unwrap();
    drop(c);
    assert!(p.is_closed());
    let err = p.push("b".to_owned()).unwrap_err();
    assert!(matches!(err, PushError::Closed(_)));
    assert_eq!(err.into_inner(), "b");
    assert!(matches!(p.stage("c".to_owned()), Err(PushError::Closed(_))));
    let mut source = ["d".to_owned()].into_iter();
    assert_eq!(p.push_batch(&mut source), 0);
    assert_eq!(source.next().as_deref(), Some("d"));
}

#[test]
fn producer_drop_closes_consumer_after_drain() {
    let (mut p, mut c) = ring::<u32>(4).unwrap();
    p.push(1).unwrap();
    p.stage(2).unwrap();
    assert!(!c.is_closed());
    drop(p);
    assert!(c.is_closed());
    // The staged item was published by the drop: nothing is lost.
    assert_eq!(c.peek_len(), 2);
    assert_eq!(c.pop(), Ok(1));
    assert_eq!(c.pop(), Ok(2));
    assert_eq!(c.pop(), Err(PopError::Closed));
    assert_eq!(c.pop(), Err(PopError::Closed));
    assert_eq!(c.pop_batch(4, |_| unreachable!()), 0);
}

#[test]
fn producer_drop_is_seen_even_with_a_stale_tail_cache() {
    let (mut p, mut c) = ring::<u32>(4).unwrap();
    assert_eq!(c.pop(), Err(PopError::Empty));
    p.stage(7).unwrap();
    drop(p);
    assert_eq!(c.pop(), Ok(7));
    assert_eq!(c.pop(), Err(PopError::Closed));
}

#[test]
fn remaining_items_dropped_exactly_once() {
    for consumer_first in [false, true] {
        let drops = drop_counters(6);
        let (mut p, mut c) = ring::<Counted>(4).unwrap();
        p.push(counted(&drops, 0)).unwrap();
        p.push(counted(&drops, 1)).unwrap();
        p.push(counted(&drops, 2)).unwrap();
        drop(c.pop().unwrap()); // id 0 dropped by the test
        p.stage(counted(&drops, 3)).unwrap(); // staged, published by the producer's drop
        p.push(counted(&drops, 4)).unwrap(); // 1, 2, 3 and 4 fill the 4 slots
        let full = p.push(counted(&drops, 5)).unwrap_err();
        drop(full); // id 5 dropped by the test, never entered the ring
        assert_eq!(drop_counts(&drops), [1, 0, 0, 0, 0, 1]);
        if consumer_first {
            drop(c);
            assert_eq!(drop_counts(&drops), [1, 0, 0, 0, 0, 1]);
            drop(p);
        } else {
            drop(p);
            assert_eq!(drop_counts(&drops), [1, 0, 0, 0, 0, 1]);
            drop(c);
        }
        assert_eq!(drop_counts(&drops), [1; 6]);
    }
}

#[test]
fn full_wrapped_ring_drops_every_item_once() {
    let drops = drop_counters(10);
    let (mut p, mut c) = ring_starting_at::<Counted>(4, usize::MAX - 1).unwrap();
    for id in 0..6 {
        p.push(counted(&drops, id)).unwrap();
        if id < 2 {
            drop(c.pop().unwrap());
        }
    }
    drop((p, c));
    assert_eq!(drop_counts(&drops), [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
}

#[test]
fn pop_batch_panic_keeps_head_and_drops_once() {
    let drops = drop_counters(12);
    let (mut p, mut c) = ring::<Counted>(8).unwrap();
    for id in 0..5 {
        p.push(counted(&drops, id)).unwrap();
    }
    let mut seen = 0;
    let result = catch_unwind(AssertUnwindSafe(|| {
        c.pop_batch(4, |item| {
            seen += 1;
            if item.id == 2 {
                panic!("handler failed on item 2");
            }
        })
    }));
    assert!(result.is_err());
    assert_eq!(seen, 3);
    // Items 0 and 1 were dropped by the closure, item 2 while unwinding; 3 and 4 still queued.
    assert_eq!(drop_counts(&drops)[..5], [1, 1, 1, 0, 0]);
    assert_eq!(c.peek_len(), 2);
    assert_eq!(c.pop().unwrap().id, 3);
    // The producer sees the slots freed by the panicking batch: 7 more fit (item 4 is queued).
    let mut more = (5..12).map(|id| counted(&drops, id));
    assert_eq!(p.push_batch(&mut more), 7);
    assert_eq!(p.free_slots(), 0);
    drop((p, c));
    assert_eq!(drop_counts(&drops), [1; 12]);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn shared_layout_keeps_indices_on_their_own_128_byte_blocks() {
    use std::mem::{align_of, offset_of, size_of};
    assert_eq!(align_of::<Shared<u8>>(), 128);
    assert_eq!(offset_of!(Shared<u8>, head), 0);
    assert_eq!(offset_of!(Shared<u8>, tail), 128);
    assert!(offset_of!(Shared<u8>, producer_closed) >= 256);
    assert!(offset_of!(Shared<u8>, consumer_closed) >= 256);
    assert!(offset_of!(Shared<u8>, buffer) >= 256);
    assert!(offset_of!(Shared<u8>, mask) >= 256);
    assert_eq!(size_of::<Shared<u8>>(), 384);
}

#[test]
fn debug_output() {
    let (p, c) = ring::<Rc<u8>>(2).unwrap();
    assert!(format!("{p:?}").starts_with("Producer { capacity: 2"));
    assert!(format!("{c:?}").starts_with("Consumer { capacity: 2"));
}

// ---------------------------------------------------------------------------------------------
// Two threads.

#[cfg(not(miri))]
const STRESS_ITEMS: u64 = 100_000;
#[cfg(miri)]
const STRESS_ITEMS: u64 = 1_000;

#[test]
fn two_thread_stress_push_pop() {
    let (mut p, mut c) = ring::<u64>(64).unwrap();
    let producer = thread::spawn(move || {
        for i in 0..STRESS_ITEMS {
            let mut value = i;
            loop {
                match p.push(value) {
                    Ok(()) => break,
                    Err(PushError::Full(v)) => {
                        value = v;
                        thread::yield_now();
                    }
                    Err(PushError::Closed(_)) => panic!("consumer vanished"),
                }
            }
        }
    });
    let mut expected = 0;
    loop {
        match c.pop() {
            Ok(v) => {
                assert_eq!(v, expected);
                expected += 1;
            }
            Err(PopError::Empty) => thread::yield_now(),
            Err(PopError::Closed) => break,
        }
    }
    assert_eq!(expected, STRESS_ITEMS);
    producer.join().unwrap();
}

#[test]
fn two_thread_stress_batches() {
    let (mut p, mut c) = ring::<Box<u64>>(16).unwrap();
    let producer = thread::spawn(move || {
        let mut next_id = 0;
        let mut pending: Option<Box<u64>> = None;
        let mut stage_turn = true;
        while next_id < STRESS_ITEMS || pending.is_some() {
            // Alternate between staging a few items and `push_batch`.
            let progressed = if stage_turn {
                while p.staged() < 3 {
                    let value = match pending.take() {
                        Some(v) => v,
                        None if next_id < STRESS_ITEMS => {
                            next_id += 1;
                            Box::new(next_id - 1)
                        }
                        None => break,
                    };
                    match p.stage(value) {
                        Ok(()) => {}
                        Err(PushError::Full(v)) => {
                            pending = Some(v);
                            break;
                        }
                        Err(PushError::Closed(_)) => panic!("consumer vanished"),
                    }
                }
                p.publish()
            } else if pending.is_none() {
                let mut source = (next_id..STRESS_ITEMS).map(Box::new).take(5);
                let n = p.push_batch(&mut source);
                next_id += n as u64;
                n
            } else {
                0
            };
            if progressed == 0 {
                thread::yield_now();
            }
            stage_turn = !stage_turn;
        }
    });
    let mut expected = 0;
    while expected < STRESS_ITEMS {
        let n = c.pop_batch(7, |v| {
            assert_eq!(*v, expected);
            expected += 1;
        });
        if n == 0 {
            thread::yield_now();
        }
    }
    assert_eq!(c.pop_batch(7, |_| unreachable!()), 0);
    producer.join().unwrap();
    assert_eq!(c.pop(), Err(PopError::Closed));
}

// ---------------------------------------------------------------------------------------------
// Model-based property test.

#[derive(Debug, Clone)]
enum Op {
    Push(u32),
    Stage(u32),
    Publish,
    PushBatch(Vec<u32>),
    Pop,
    PopBatch(usize),
    FreeSlots,
    PeekLen,
    IsEmpty,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u32>().prop_map(Op::Push),
        3 => any::<u32>().prop_map(Op::Stage),
        2 => Just(Op::Publish),
        2 => proptest::collection::vec(any::<u32>(), 0..12).prop_map(Op::PushBatch),
        4 => Just(Op::Pop),
        2 => (0_usize..12).prop_map(Op::PopBatch),
        1 => Just(Op::FreeSlots),
        1 => Just(Op::PeekLen),
        1 => Just(Op::IsEmpty),
    ]
}

/// The reference: `visible` is what the consumer may see, `staged` what the producer holds back.
struct Model {
    capacity: usize,
    visible: VecDeque<u32>,
    staged: VecDeque<u32>,
}

impl Model {
    fn used(&self) -> usize {
        self.visible.len() + self.staged.len()
    }

    fn publish(&mut self) -> usize {
        let n = self.staged.len();
        self.visible.extend(self.staged.drain(..));
        n
    }
}

fn check_against_model(capacity: usize, start: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let (mut p, mut c) = ring_starting_at::<u32>(capacity, start).unwrap();
    let mut m = Model { capacity, visible: VecDeque::new(), staged: VecDeque::new() };
    for op in ops {
        match op {
            Op::Push(v) => {
                if m.used() < m.capacity {
                    prop_assert_eq!(p.push(*v), Ok(()));
                    m.staged.push_back(*v);
                    m.publish();
                } else {
                    prop_assert_eq!(p.push(*v), Err(PushError::Full(*v)));
                }
            }
            Op::Stage(v) => {
                if m.used() < m.capacity {
                    prop_assert_eq!(p.stage(*v), Ok(()));
                    m.staged.push_back(*v);
                } else {
                    prop_assert_eq!(p.stage(*v), Err(PushError::Full(*v)));
                }
            }
            Op::Publish => prop_assert_eq!(p.publish(), m.publish()),
            Op::PushBatch(items) => {
                let fits = (m.capacity - m.used()).min(items.len());
                let mut source = items.iter().copied();
                prop_assert_eq!(p.push_batch(&mut source), fits);
                prop_assert_eq!(source.collect::<Vec<_>>(), &items[fits..]);
                m.staged.extend(&items[..fits]);
                m.publish();
            }
            Op::Pop => match m.visible.pop_front() {
                Some(v) => prop_assert_eq!(c.pop(), Ok(v)),
                None => prop_assert_eq!(c.pop(), Err(PopError::Empty)),
            },
            Op::PopBatch(max) => {
                let mut got = Vec::new();
                let n = c.pop_batch(*max, |v| got.push(v));
                let want: Vec<u32> = m.visible.drain(..(*max).min(m.visible.len())).collect();
                prop_assert_eq!(n, want.len());
                prop_assert_eq!(got, want);
            }
            Op::FreeSlots => {
                let free = p.free_slots();
                let exact = m.capacity - m.used();
                prop_assert!(free <= exact, "free_slots {} > exact {}", free, exact);
                prop_assert_eq!(free == 0, exact == 0);
            }
            Op::PeekLen => prop_assert_eq!(c.peek_len(), m.visible.len()),
            Op::IsEmpty => prop_assert_eq!(c.is_empty(), m.visible.is_empty()),
        }
        prop_assert_eq!(p.staged(), m.staged.len());
    }
    // Closing: the producer's drop publishes what is staged; then the consumer drains and closes.
    drop(p);
    m.publish();
    let mut rest = Vec::new();
    loop {
        match c.pop() {
            Ok(v) => rest.push(v),
            Err(e) => {
                prop_assert_eq!(e, PopError::Closed);
                break;
            }
        }
    }
    prop_assert_eq!(rest, m.visible.into_iter().collect::<Vec<_>>());
    Ok(())
}

proptest! {
    #[test]
    #[cfg_attr(miri, ignore)]
    fn matches_vecdeque_model(
        capacity in prop_oneof![Just(2_usize), Just(4), Just(8), Just(16)],
        start in prop_oneof![Just(0_usize), Just(usize::MAX - 7), any::<usize>()],
        ops in proptest::collection::vec(op(), 0..200),
    ) {
        check_against_model(capacity, start, &ops)?;
    }
}

/// A fixed sequence through the same checker, so miri exercises the model path too.
#[test]
fn model_fixed_sequence() {
    use Op::*;
    let ops = [
        Stage(1),
        Push(2),
        Stage(3),
        Stage(4),
        Push(5),
        FreeSlots,
        PeekLen,
        PopBatch(2),
        PushBatch(vec![6, 7, 8, 9]),
        Pop,
        IsEmpty,
        Publish,
        PopBatch(10),
        Stage(10),
        IsEmpty,
    ];
    check_against_model(4, usize::MAX - 2, &ops).unwrap();
}
