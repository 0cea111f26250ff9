//! Tests of the memory accounting and eviction: the count never drifts from a recount under
//! random operations, `noeviction` refuses, `allkeys-lru` evicts the keys idle longest.

use super::memory::{entry_bytes, field_bytes, MemoryLimit, OutOfMemory, ENTRY_OVERHEAD};
use super::{Compact, ExpireCondition, KvStore, SetCondition, SetExpiry, Stored};
use bytes::Bytes;
use nexus_engine::config::EvictionPolicy;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

const ALWAYS: (SetCondition, SetExpiry) = (SetCondition::Always, SetExpiry::Clear);

/// One random operation on a small key space, at time `now`.
fn random_op(kv: &mut KvStore, draw: u64, now: u64) {
    let key = b(&format!("k{}", draw % 17));
    let field = b(&format!("f{}", (draw >> 8) % 5));
    let value = b(&"v".repeat(((draw >> 16) % 40) as usize));
    let _ = match (draw >> 24) % 14 {
        0 => {
            let expiry = if draw & 1 == 0 { SetExpiry::Clear } else { SetExpiry::Keep };
            kv.set(key, value, (SetCondition::Always, expiry), false, now).is_ok()
        }
        1 => kv.set(key, value, (SetCondition::Always, SetExpiry::After(draw % 50)), false, now).is_ok(),
        2 => kv.del(&key, now),
        3 => kv.append(key, &value, now).is_ok(),
        4 => kv.incr_by(key, 7, now).is_ok(),
        5 => kv.hset(key, vec![(field, value.clone()), (b("g"), value)], now).is_ok(),
        6 => kv.hdel(&key, &[field, b("g")], now).is_ok(),
        7 => kv.hincrby(key, field, 3, now).is_ok(),
        8 => kv.expire(&key, (draw % 30) as i64 - 5, ExpireCondition::Always, now),
        9 => kv.getdel(&key, now).is_ok(),
        10 => kv.incr_by_float(key, b"1.5", now).is_ok(),
        11 => kv.take(&key, now).map(|t| kv.restore(b(&format!("k{}", draw % 13)), t, now)).is_some(),
        12 => {
            kv.expire_due(now);
            kv.get(&key, now).is_ok()
        }
        _ => {
            if draw % 97 == 0 {
                kv.clear();
            }
            kv.exists(&key, now)
        }
    };
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Under `allkeys-lru`, the sampler holds every key once, each at its entry's slot.
fn check_sampler(kv: &KvStore) {
    let Some(sampler) = &kv.sampler else { return };
    assert_eq!(sampler.len(), kv.map.len());
    for (i, key) in sampler.iter().enumerate() {
        assert_eq!(kv.map.get(key).map(|e| e.slot as usize), Some(i), "the slot of {key:?}");
    }
}

#[test]
fn the_count_never_drifts_from_a_recount() {
    for policy in [EvictionPolicy::NoEviction, EvictionPolicy::AllKeysLru] {
        let mut kv = KvStore::new().with_memory_limit(MemoryLimit::new(1500, policy, 1));
        let mut seed = 0x1234_5678_9abc_def1;
        for step in 0..20_000u64 {
            let now = step / 10;
            random_op(&mut kv, xorshift(&mut seed), now);
            if kv.make_room(now).is_ok() {
                assert!(!kv.over_budget() || policy == EvictionPolicy::NoEviction);
            }
            assert_eq!(kv.used_memory(), kv.recount(), "step {step} ({policy:?})");
            check_sampler(&kv);
        }
        assert_eq!(kv.evicted_keys() > 0, policy == EvictionPolicy::AllKeysLru, "evictions under {policy:?}");
        kv.clear();
        assert_eq!(kv.used_memory(), 0);
    }
}

#[test]
fn the_estimate_is_key_value_and_overheads() {
    let mut kv = KvStore::new();
    kv.set(b("key"), b("value"), ALWAYS, false, 0).unwrap();
    assert_eq!(kv.used_memory(), 3 + 5 + ENTRY_OVERHEAD);
    kv.hset(b("h"), vec![(b("f"), b("12")), (b("gg"), b("3"))], 0).unwrap();
    let hash = 1 + ENTRY_OVERHEAD + field_bytes(b"f", b"12") + field_bytes(b"gg", b"3");
    assert_eq!(kv.used_memory(), 3 + 5 + ENTRY_OVERHEAD + hash);
    assert_eq!(entry_bytes(b"key", &Stored::Str(b("value").into())), 3 + 5 + ENTRY_OVERHEAD);
    kv.expire(b"key", 10, ExpireCondition::Always, 0);
    kv.expire_due(10);
    assert_eq!(kv.used_memory(), hash, "expiry uncounts the key");
}

#[test]
fn noeviction_refuses_over_budget_and_frees_on_delete() {
    let mut kv = KvStore::new().with_memory_limit(MemoryLimit::new(1000, EvictionPolicy::NoEviction, 1));
    let mut n = 0;
    while kv.make_room(0).is_ok() {
        kv.set(b(&format!("k{n}")), b(&"x".repeat(50)), ALWAYS, false, 0).unwrap();
        n += 1;
    }
    assert_eq!(kv.make_room(0), Err(OutOfMemory));
    assert_eq!(OutOfMemory.to_string(), "OOM command not allowed when used memory > 'maxmemory'.", "Redis 7's text");
    assert!(kv.del(b"k0", 0) && kv.make_room(0).is_ok(), "deleting makes room");
    assert_eq!(kv.evicted_keys(), 0);
}

#[test]
fn allkeys_lru_evicts_the_keys_idle_longest() {
    let value = b(&"x".repeat(40));
    let per_key = entry_bytes(b"new000", &Stored::Str(value.clone().into()));
    let limit = MemoryLimit::new(2 * 100 * per_key, EvictionPolicy::AllKeysLru, 2);
    assert_eq!(limit.budget, 100 * per_key);
    let mut kv = KvStore::new().with_memory_limit(limit);
    for i in 0..100 {
        kv.set(b(&format!("old{i:02}")), value.clone(), ALWAYS, false, 0).unwrap();
    }
    // 300 new keys in batches of 10; the 20 hot keys are read after each batch.
    for batch in 0..30u64 {
        let now = 10 + 10 * batch;
        for i in 0..10 {
            kv.make_room(now).unwrap();
            kv.set(b(&format!("new{batch:02}{i}")), value.clone(), ALWAYS, false, now).unwrap();
            assert!(kv.used_memory() <= limit.budget + per_key, "over budget by more than the write");
        }
        for i in 0..20 {
            kv.get(format!("old{i:02}").as_bytes(), now + 5).unwrap();
        }
    }
    let hot = (0..20).filter(|i| kv.exists(format!("old{i:02}").as_bytes(), 400)).count();
    let cold = (20..100).filter(|i| kv.exists(format!("old{i:02}").as_bytes(), 400)).count();
    assert!(kv.evicted_keys() >= 200, "{} evicted", kv.evicted_keys());
    assert!(hot >= 16, "{hot} of 20 hot keys kept");
    assert!(cold <= 8, "{cold} of 80 cold keys kept");
    assert_eq!(kv.used_memory(), kv.recount());
}

/// Whether `kept` points into `buf`'s bytes.
fn inside(kept: &[u8], buf: &Bytes) -> bool {
    buf.as_ptr_range().contains(&kept.as_ptr())
}

#[test]
fn the_store_keeps_copies_never_slices_of_the_callers_buffer() {
    // Long arguments arrive as slices of the connection's read buffer (short ones are copies).
    let n = crate::resp::SLICE_MIN;
    let read = Bytes::from((0..6 * n).map(|i| (i / n) as u8 + b'a').collect::<Vec<u8>>());
    let arg = |i: usize| read.slice(i * n..(i + 1) * n);
    let (k1, v1, k2, f2, v2, k3) = (arg(0), arg(1), arg(2), arg(3), arg(4), arg(5));
    let mut kv = KvStore::new();
    kv.set(k1.clone(), v1, (SetCondition::Always, SetExpiry::After(60_000)), false, 0).unwrap();
    kv.hset(k2.clone(), vec![(f2.clone(), v2)], 0).unwrap();
    kv.hincrby(k2.clone(), arg(0), 1, 0).unwrap();
    kv.incr_by(k3.clone(), 5, 0).unwrap();
    kv.expire(&k3, 60_000, ExpireCondition::Always, 0);
    for (key, _) in kv.map.iter() {
        assert!(!inside(key, &read), "a key is a slice of the read buffer");
    }
    let Some(Stored::Str(v)) = kv.map.get(&k1[..]).map(|e| e.value.clone()) else { panic!("no string") };
    assert!(!inside(&v, &read), "a string value is a slice of the read buffer");
    let Some(Stored::Hash(h)) = kv.map.get(&k2[..]).map(|e| e.value.clone()) else { panic!("no hash") };
    for (field, value) in h.iter() {
        assert!(!inside(field, &read) && !inside(value, &read), "a hash field is a slice of the read buffer");
    }
    for std::cmp::Reverse((_, key)) in kv.deadlines.iter() {
        assert!(!inside(key, &read), "a deadline's key is a slice of the read buffer");
    }
    assert_eq!(kv.deadlines.len(), 2);
}

/// Sets `key` to `value` in an empty store; what the table holds for them, and where the
/// caller's key and value bytes were.
fn stored_string(key: &'static str, value: &'static str) -> (Compact, Compact, (*const u8, *const u8)) {
    let (key, value) = (b(key), b(value));
    let given = (key.as_ptr(), value.as_ptr());
    let mut kv = KvStore::new();
    kv.set(key, value, ALWAYS, false, 0).unwrap();
    let (stored_key, entry) = kv.map.iter().next().expect("one key");
    let Stored::Str(stored) = &entry.value else { panic!("not a string") };
    (stored_key.clone(), stored.clone(), given)
}

#[test]
fn a_short_key_and_value_live_in_the_bucket() {
    let (stored_key, stored, given) = stored_string("short-key", "short value");
    // A short key and value live in the table's bucket (no allocation of their own).
    assert!(matches!(stored_key, Compact::Inline { .. }), "a short key is inline");
    assert!(matches!(stored, Compact::Inline { .. }), "a short value is inline");
    assert_ne!((stored_key.as_ptr(), stored.as_ptr()), given);
}

#[test]
fn a_string_between_inline_and_slice_sizes_is_kept_as_it_is() {
    let (stored_key, stored, given) =
        stored_string("a key longer than twenty-two bytes", "a value longer than twenty-two bytes");
    assert_eq!((stored_key.as_ptr(), stored.as_ptr()), given, "a string was copied again");
}

/// An overwrite that keeps the deadline replaces the value where it lies: the deadline, the
/// count of expiring keys and the accounting stay right, and the key still expires on time.
#[test]
fn an_overwrite_in_place_keeps_the_deadline_the_counts_and_the_expiry() {
    let mut kv = KvStore::new();
    kv.set(b("k"), b("short"), (SetCondition::Always, SetExpiry::After(1000)), false, 0).unwrap();
    kv.set(b("k"), b(&"long".repeat(20)), (SetCondition::Always, SetExpiry::Keep), false, 10).unwrap();
    assert_eq!(kv.expiring(), 1);
    assert_eq!(kv.used_memory(), kv.recount());
    assert_eq!(kv.get(b"k", 20).unwrap().unwrap(), b(&"long".repeat(20)));
    kv.set(b("plain"), b("1"), ALWAYS, false, 0).unwrap();
    kv.set(b("plain"), b("2"), ALWAYS, false, 5).unwrap();
    assert_eq!(kv.get(b"plain", 6).unwrap().unwrap(), b("2"));
    assert_eq!((kv.expiring(), kv.used_memory()), (1, kv.recount()));
    kv.expire_due(1000);
    assert_eq!(kv.get(b"k", 1000).unwrap(), None, "expired at its first deadline");
    assert_eq!((kv.expiring(), kv.len(1000)), (0, 1));
    assert_eq!(kv.used_memory(), kv.recount());
}

/// A table slot is a key and its entry: a hash lives behind a box, so a string's slot (most
/// keys) is not sized by the map's fields; a smaller slot is fewer cache lines per lookup.
#[test]
fn a_table_slot_stays_small() {
    let slot = std::mem::size_of::<(Compact, super::Entry)>();
    assert!(slot <= 96, "a table slot is {slot} bytes");
}
