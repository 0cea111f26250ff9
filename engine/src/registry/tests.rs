//! Tests of the registry partition and its table: fixed cases, growth through many doublings,
//! forced hash collisions (the table takes the hash as an argument, so a test can hand it any
//! value), and model-based proptests against a `HashMap`.

use super::table::{NameTable, Probe};
use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

fn agent(slot: u32) -> AgentId {
    AgentId::new(0, slot, 0)
}

/// Name number `i` of a pool whose lengths run from 2 to about 90 bytes, so short, inline-edge
/// and heap names all occur; the `{i}:` prefix keeps them distinct.
fn pool_name(i: usize) -> String {
    let prefix = format!("{i}:");
    let pad = (i * 7) % 88;
    prefix + &"n".repeat(pad)
}

#[test]
fn register_lookup_unregister() {
    let mut r = RegistryPartition::default();
    let (a, b) = (agent(1), agent(2));
    assert_eq!(r.lookup("alpha"), None, "an empty partition finds nothing");
    assert!(!r.unregister("alpha", None));
    r.register("alpha", a).unwrap();
    r.register("alpha", a).unwrap();
    assert!(matches!(r.register("alpha", b), Err(RegistryError::Duplicate { holder, .. }) if holder == a));
    assert_eq!(r.lookup("alpha"), Some(a));
    assert!(!r.unregister("alpha", Some(b)), "a stale removal leaves a newer binding alone");
    assert!(r.unregister("alpha", Some(a)));
    assert_eq!(r.lookup("alpha"), None);
    assert!(r.is_empty());
    assert_eq!(r.register("", a), Err(RegistryError::InvalidName));
    assert_eq!(r.register(&"z".repeat(MAX_NAME_BYTES + 1), a), Err(RegistryError::InvalidName));
    r.register(&"z".repeat(MAX_NAME_BYTES), a).unwrap();
}

#[test]
fn register_replacing_takes_over_only_from_the_named_agent() {
    let mut r = RegistryPartition::with_capacity(8);
    let (old, new, other) = (agent(1), agent(2), agent(3));
    r.register("svc", old).unwrap();
    assert!(matches!(
        r.register_replacing("svc", new, Some(other)),
        Err(RegistryError::Duplicate { holder, .. }) if holder == old
    ));
    r.register_replacing("svc", new, Some(old)).unwrap();
    assert_eq!(r.lookup("svc"), Some(new));
    assert_eq!(r.len(), 1);
    assert!(!r.unregister("svc", Some(old)), "the replaced agent's removal arrives late");
    assert_eq!(r.lookup("svc"), Some(new));
    r.register_replacing("fresh", other, Some(old)).unwrap();
    assert_eq!(r.lookup("fresh"), Some(other));
    assert_eq!(r.register_replacing("", other, None), Err(RegistryError::InvalidName));
}

#[test]
fn short_and_long_names_are_told_apart() {
    let mut r = RegistryPartition::with_capacity(4);
    let long = "x".repeat(INLINE_NAME_BYTES + 1);
    let edge = "y".repeat(INLINE_NAME_BYTES);
    let ids: Vec<AgentId> = (1..=4).map(agent).collect();
    for (name, id) in [("a", ids[0]), (long.as_str(), ids[1]), (edge.as_str(), ids[2]), ("a\0", ids[3])] {
        r.register(name, id).unwrap();
    }
    assert_eq!(r.len(), 4);
    assert_eq!(r.lookup("a"), Some(ids[0]));
    assert_eq!(r.lookup(&long), Some(ids[1]));
    assert_eq!(r.lookup_hashed(&edge, name_hash(&edge)), Some(ids[2]));
    assert_eq!(r.lookup("a\0"), Some(ids[3]));
    assert_eq!(r.lookup(&long[..INLINE_NAME_BYTES]), None, "a prefix is another name");
    assert!(r.unregister(&long, None));
    assert_eq!(r.lookup(&long), None);
    assert!(!r.unregister(&long, None));
}

#[test]
fn growth_through_many_doublings_keeps_every_name() {
    let mut r = RegistryPartition::default();
    let mut doublings = 0;
    let mut slots = r.names.slot_count();
    for i in 0..50_000usize {
        r.register(&pool_name(i), agent(i as u32)).unwrap();
        if r.names.slot_count() != slots {
            slots = r.names.slot_count();
            doublings += 1;
            r.names.check_invariants();
            assert!((0..=i).all(|k| r.lookup(&pool_name(k)) == Some(agent(k as u32))), "after growing to {slots}");
        }
    }
    assert!(doublings >= 12, "{doublings} doublings");
    // Remove every other name, then check the rest and the holes.
    for i in (0..50_000usize).step_by(2) {
        assert!(r.unregister(&pool_name(i), Some(agent(i as u32))));
    }
    r.names.check_invariants();
    assert_eq!(r.len(), 25_000);
    for i in 0..50_000usize {
        let want = (i % 2 == 1).then(|| agent(i as u32));
        assert_eq!(r.lookup(&pool_name(i)), want, "{}", pool_name(i));
    }
}

#[test]
fn with_capacity_holds_that_many_without_growing() {
    for capacity in [1, 12, 13, 1_000, 1_024, 3_000] {
        let mut t = NameTable::with_capacity(capacity);
        let slots = t.slot_count();
        for i in 0..capacity {
            let name = pool_name(i);
            let Probe::Vacant(at) = t.probe(name.as_bytes(), key_hash(name.as_bytes())) else { panic!() };
            t.insert_at(at, name.as_bytes(), key_hash(name.as_bytes()), agent(i as u32));
        }
        assert_eq!(t.slot_count(), slots, "capacity {capacity}");
        t.check_invariants();
    }
    assert_eq!(NameTable::with_capacity(0).slot_count(), 0, "no allocation for nothing");
}

/// Inserts `name` with a forged `hash` into `t` unless it is there; returns the holder found.
fn forged_insert(t: &mut NameTable, name: &str, hash: u64, id: AgentId) -> Option<AgentId> {
    match t.probe(name.as_bytes(), hash) {
        Probe::Found(at) => Some(t.id_at(at)),
        Probe::Vacant(at) => {
            t.insert_at(at, name.as_bytes(), hash, id);
            None
        }
    }
}

fn forged_remove(t: &mut NameTable, name: &str, hash: u64) -> bool {
    match t.probe(name.as_bytes(), hash) {
        Probe::Found(at) => {
            t.remove_at(at);
            true
        }
        Probe::Vacant(_) => false,
    }
}

#[test]
fn equal_hashes_are_told_apart_by_name() {
    let mut t = NameTable::default();
    // 0 and 1 share a stored hash (0 marks a free slot); u32::MAX homes on the last slot,
    // so its run wraps around to slot 0.
    for hash in [0, 1, u64::from(u32::MAX), 0xABCD_0000_0000_0000] {
        let names: Vec<String> = (0..200).map(|i| format!("{hash:x}/{}", pool_name(i))).collect();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(forged_insert(&mut t, name, hash, agent(i as u32)), None);
        }
        t.check_invariants();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(t.find(name.as_bytes(), hash), Some(agent(i as u32)));
            assert_eq!(forged_insert(&mut t, name, hash, agent(9_999)), Some(agent(i as u32)), "no second binding");
        }
        assert_eq!(t.find(b"absent", hash), None);
        // Remove from the middle and the ends of the run.
        for i in [100, 0, 199, 50, 51, 52] {
            assert!(forged_remove(&mut t, &names[i], hash));
            assert!(!forged_remove(&mut t, &names[i], hash));
            t.check_invariants();
        }
        for (i, name) in names.iter().enumerate() {
            let gone = [100, 0, 199, 50, 51, 52].contains(&i);
            assert_eq!(t.find(name.as_bytes(), hash), (!gone).then(|| agent(i as u32)));
        }
    }
    assert_eq!(t.len(), 4 * 194);
}

#[test]
fn a_run_that_wraps_around_the_end_shifts_back_across_it() {
    let mut t = NameTable::with_capacity(8);
    let slots = t.slot_count() as u64;
    // Homes on the last slot and on slot 0, interleaved so the run crosses the end.
    let last = u64::from(u32::MAX);
    let first = 1u64; // home 0
    let entries: Vec<(String, u64)> =
        (0..6).map(|i| (format!("w{i}"), if i % 2 == 0 { last } else { first })).collect();
    for (i, (name, hash)) in entries.iter().enumerate() {
        assert_eq!(forged_insert(&mut t, name, *hash, agent(i as u32)), None);
    }
    assert_eq!(t.slot_count() as u64, slots, "no growth in this test");
    t.check_invariants();
    assert!(t.max_displacement() >= 3);
    assert!(forged_remove(&mut t, "w0", last));
    t.check_invariants();
    for (i, (name, hash)) in entries.iter().enumerate().skip(1) {
        assert_eq!(t.find(name.as_bytes(), *hash), Some(agent(i as u32)), "{name}");
    }
}

#[test]
fn a_million_names_resolve_to_their_holders() {
    let mut r = RegistryPartition::default();
    for i in 0..1_000_000u32 {
        r.register(&format!("agent-{i}"), agent(i)).unwrap();
    }
    assert_eq!(r.len(), 1_000_000);
    for i in (0..1_000_000u32).step_by(997) {
        assert_eq!(r.lookup(&format!("agent-{i}")), Some(agent(i)));
    }
    assert_eq!(r.lookup("agent-1000000"), None);
    assert!(r.names.max_displacement() < 64, "probe runs stay short: {}", r.names.max_displacement());
}

#[test]
fn owners_are_stable_and_spread() {
    let mut counts = [0usize; 4];
    for i in 0..10_000 {
        let name = format!("agent-{i}");
        let o = owner_of(&name, 4);
        assert_eq!(o, owner_of(&name, 4));
        counts[o] += 1;
    }
    for c in counts {
        assert!((2_000..3_000).contains(&c), "{counts:?}");
    }
    assert_eq!(owner_of("x", 1), 0);
}

#[test]
fn hash_values_are_fixed_by_the_key() {
    // Within a process every shard must compute the same owner: one key, one value.
    let (a, b, c) = (NameHasher::with_seed(7), NameHasher::with_seed(7), NameHasher::with_seed(8));
    assert_eq!(a.name_hash("agent-0"), b.name_hash("agent-0"), "the same seed, the same hash");
    assert_eq!(a.name_hash("agent-0"), a.key_hash(b"agent-0"), "names and keys are placed alike");
    assert_ne!(a.name_hash("agent-0"), c.name_hash("agent-0"), "another seed, another hash");
    assert_eq!(name_hash("agent-0"), key_hash(b"agent-0"));
    assert_eq!(name_hash("a"), NameHasher::process().name_hash("a"));
    assert_eq!(owner_of("a", 7), owner_of_hash(name_hash("a"), 7));
    assert_eq!(owner_of("x", 1), 0);
    let moved = (0..1_000).filter(|i| a.owner_of(&format!("agent-{i}"), 4) != c.owner_of(&format!("agent-{i}"), 4));
    assert!(moved.count() > 500, "another key places names elsewhere (3/4 of them, on average)");
    assert_eq!(format!("{a:?}"), "NameHasher { .. }", "the key stays out of logs");
}

#[test]
fn a_partition_with_a_fixed_key_hashes_under_it() {
    let hasher = NameHasher::with_seed(42);
    let mut r = RegistryPartition::with_hasher(16, hasher.clone());
    r.register("fixed", agent(1)).unwrap();
    assert_eq!(r.lookup("fixed"), Some(agent(1)));
    assert_eq!(r.lookup_hashed("fixed", hasher.name_hash("fixed")), Some(agent(1)));
    assert!(r.unregister("fixed", Some(agent(1))));
}

/// One step of a model-based run.
#[derive(Clone, Debug)]
enum Op {
    Register(usize, u32),
    Replace(usize, u32, Option<u32>),
    Unregister(usize, Option<u32>),
    Lookup(usize),
}

fn op(names: usize) -> impl Strategy<Value = Op> {
    let id = 0..4u32;
    prop_oneof![
        4 => (0..names, id.clone()).prop_map(|(n, i)| Op::Register(n, i)),
        1 => (0..names, id.clone(), proptest::option::of(id.clone())).prop_map(|(n, i, r)| Op::Replace(n, i, r)),
        3 => (0..names, proptest::option::of(id)).prop_map(|(n, e)| Op::Unregister(n, e)),
        2 => (0..names).prop_map(Op::Lookup),
    ]
}

/// What `RegistryPartition` must answer, from a `HashMap`.
fn model_step(model: &mut HashMap<String, AgentId>, op: &Op) -> String {
    let (name, id, replace) = match *op {
        Op::Register(n, i) => (pool_name(n), agent(i), None),
        Op::Replace(n, i, r) => (pool_name(n), agent(i), r.map(agent)),
        Op::Unregister(n, e) => {
            let name = pool_name(n);
            let removed = model.get(&name).is_some_and(|h| e.is_none_or(|e| agent(e) == *h));
            if removed {
                model.remove(&name);
            }
            return format!("{removed}");
        }
        Op::Lookup(n) => return format!("{:?}", model.get(&pool_name(n))),
    };
    match model.get(&name).copied() {
        Some(holder) if holder == id => "Ok(())".into(),
        Some(holder) if Some(holder) == replace => {
            model.insert(name, id);
            "Ok(())".into()
        }
        Some(holder) => format!("{:?}", Err::<(), _>(RegistryError::Duplicate { name, holder })),
        None => {
            model.insert(name, id);
            "Ok(())".into()
        }
    }
}

fn partition_step(r: &mut RegistryPartition, op: &Op) -> String {
    match *op {
        Op::Register(n, i) => format!("{:?}", r.register(&pool_name(n), agent(i))),
        Op::Replace(n, i, rep) => format!("{:?}", r.register_replacing(&pool_name(n), agent(i), rep.map(agent))),
        Op::Unregister(n, e) => format!("{}", r.unregister(&pool_name(n), e.map(agent))),
        Op::Lookup(n) => format!("{:?}", r.lookup(&pool_name(n))),
    }
}

/// Forged hashes for the table-level run: few values, so most names collide on all 64 bits.
const FORGED: [u64; 5] = [0, 1, u32::MAX as u64, 0x5555_5555_8000_0000, 7];

proptest! {
    #[test]
    fn partition_matches_a_hashmap(
        capacity in 0..40usize,
        ops in proptest::collection::vec(op(120), 1..600),
    ) {
        let mut r = RegistryPartition::with_capacity(capacity);
        let mut model = HashMap::new();
        for op in &ops {
            prop_assert_eq!(partition_step(&mut r, op), model_step(&mut model, op), "{:?}", op);
            prop_assert_eq!(r.len(), model.len());
        }
        r.names.check_invariants();
        for (name, id) in &model {
            prop_assert_eq!(r.lookup(name), Some(*id));
        }
    }

    #[test]
    fn table_with_colliding_hashes_matches_a_hashmap(
        ops in proptest::collection::vec((any::<bool>(), 0..80usize, 0..4u32), 1..400),
    ) {
        let mut t = NameTable::default();
        let mut model: HashMap<usize, AgentId> = HashMap::new();
        for &(insert, n, i) in &ops {
            let (name, hash) = (pool_name(n), FORGED[n % FORGED.len()]);
            if insert {
                prop_assert_eq!(forged_insert(&mut t, &name, hash, agent(i)), model.get(&n).copied());
                model.entry(n).or_insert(agent(i));
            } else {
                prop_assert_eq!(forged_remove(&mut t, &name, hash), model.remove(&n).is_some());
            }
            prop_assert_eq!(t.len(), model.len());
        }
        t.check_invariants();
        for n in 0..80 {
            let hash = FORGED[n % FORGED.len()];
            prop_assert_eq!(t.find(pool_name(n).as_bytes(), hash), model.get(&n).copied());
        }
    }
}

/// The registry's hash before it was keyed (FxHash with a final mix), kept to build names that
/// collide under it.
fn reference_key_hash(key: &[u8]) -> u64 {
    let mut h = 0u64;
    for chunk in key.chunks(8) {
        let mut buf = [0u8; 8];
        buf[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    (h ^ (h >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[test]
fn key_hash_reads_every_byte_at_every_short_length() {
    let hasher = NameHasher::with_seed(3);
    let bytes: Vec<u8> = (0..64u8).map(|b| b.wrapping_mul(37) ^ 0xA5).collect();
    for len in 1..=40 {
        let key = &bytes[..len];
        let h = hasher.key_hash(key);
        for pos in 0..len {
            let mut other = key.to_vec();
            other[pos] ^= 1;
            assert_ne!(hasher.key_hash(&other), h, "len {len}, flipped at {pos}");
        }
        assert_ne!(hasher.key_hash(&bytes[..len - 1]), h, "a prefix, len {len}");
    }
}

proptest! {
    #[test]
    fn key_hash_is_a_function_of_key_and_seed(key in proptest::collection::vec(any::<u8>(), 0..200), seed in any::<u64>()) {
        prop_assert_eq!(NameHasher::with_seed(seed).key_hash(&key), NameHasher::with_seed(seed).key_hash(&key));
    }
}

#[test]
fn names_differing_in_one_byte_are_different_at_every_length() {
    // One forged hash for all, so every lookup below reaches the byte comparison.
    let hash = 0x0123_4567_89AB_CDEF;
    for len in 1..=INLINE_NAME_BYTES + 2 {
        let mut t = NameTable::default();
        let held = vec![b'a'; len];
        let Probe::Vacant(at) = t.probe(&held, hash) else { panic!() };
        t.insert_at(at, &held, hash, agent(1));
        assert_eq!(t.find(&held, hash), Some(agent(1)));
        for pos in 0..len {
            let mut other = held.clone();
            other[pos] = b'b';
            assert_eq!(t.find(&other, hash), None, "len {len}, differing at {pos}");
        }
        assert_eq!(t.find(&held[..len - 1], hash), None, "a prefix, len {len}");
        let mut longer = held.clone();
        longer.push(b'a');
        assert_eq!(t.find(&longer, hash), None, "an extension, len {len}");
    }
}

/// `count` distinct 16-byte ASCII names that all have one and the same unkeyed FxHash (the
/// registry's hash before it was keyed, [`reference_key_hash`]), built the way an attacker
/// would: FxHash is `h = (rotl(h, 5) ^ word) * K` per 8-byte word, so for any first word the
/// second word that lands on a chosen state is `target ^ rotl(first * K, 5)`; about one first
/// word in 256 gives a second word that is plain ASCII (every byte below 0x80).
fn fx_colliding_names(count: usize) -> Vec<String> {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    const TARGET: u64 = u64::from_le_bytes(*b"--------");
    let mut names = Vec::with_capacity(count);
    let mut i = 0u64;
    while names.len() < count {
        let first = format!("{i:08x}");
        i += 1;
        let w1 = u64::from_le_bytes(first.as_bytes().try_into().unwrap());
        let w2 = TARGET ^ w1.wrapping_mul(K).rotate_left(5);
        if w2 & 0x8080_8080_8080_8080 == 0 {
            let second = w2.to_le_bytes();
            names.push(format!("{first}{}", std::str::from_utf8(&second).unwrap()));
        }
    }
    names
}

#[test]
fn names_colliding_under_the_unkeyed_hash_spread_and_resolve() {
    const HELD: usize = 2_000;
    const SHARDS: usize = 8;
    let names = fx_colliding_names(HELD + 100);
    let old = reference_key_hash(names[0].as_bytes());
    assert!(names.iter().all(|n| reference_key_hash(n.as_bytes()) == old), "the flood collides fully under FxHash");
    assert_eq!(names.iter().collect::<std::collections::HashSet<_>>().len(), names.len(), "distinct names");

    let mut r = RegistryPartition::default();
    for (i, name) in names[..HELD].iter().enumerate() {
        r.register(name, agent(i as u32)).unwrap();
    }
    r.names.check_invariants();
    for (i, name) in names.iter().enumerate() {
        let want = (i < HELD).then(|| agent(i as u32));
        assert_eq!(r.lookup(name), want, "{name}");
    }

    // With the keyed hash the flood spreads like random names: no shared hash values, short
    // probe runs, and every shard's share near 1/SHARDS (250 expected, about 16 sd).
    let hashes: std::collections::HashSet<u64> = names.iter().map(|n| name_hash(n)).collect();
    assert_eq!(hashes.len(), names.len(), "the keyed hash separates the flood");
    assert!(r.names.max_displacement() < 64, "probe runs stay short: {}", r.names.max_displacement());
    let mut per_shard = [0usize; SHARDS];
    for name in &names[..HELD] {
        per_shard[owner_of(name, SHARDS)] += 1;
    }
    assert!(per_shard.iter().all(|&c| c <= HELD / SHARDS * 3 / 2), "one shard takes the flood: {per_shard:?}");
}
