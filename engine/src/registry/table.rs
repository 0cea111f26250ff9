//! `NameTable`: the open-addressing table behind a registry partition.
//!
//! It owns two arrays indexed by the same slot number:
//!
//! - `slots`: 64-byte [`Slot`]s, each aligned to a cache line and holding one binding whole:
//!   the name's stored hash (its 64-bit keyed hash, [`name_hash`](super::name_hash) under the process key, 0 mapped
//!   to 1), the
//!   agent id, and the name itself when it is at most [`INLINE_NAME_BYTES`] bytes (longer names
//!   live on the heap). A stored hash of 0 ([`EMPTY`]) marks a free slot.
//! - `tags`: one byte per slot, the top byte of its stored hash ([`tag_of`], never 0) or
//!   [`FREE_TAG`]: 2 MiB at a million names, small enough to stay in cache, so probing past
//!   slots that cannot match, and finding a name absent, reads no slot line.
//!
//! A lookup computes the home slot from the hash alone, so the home slot's address does not
//! depend on its tag: on a tag match the CPU fetches the slot's line together with the tag's,
//! and a present name found at home costs one memory latency, reading one slot line for the
//! hash check, the name comparison and the id. (A Swiss table reads its control bytes first
//! and only then knows which entry to fetch: two dependent misses.) Past the home slot, tags
//! are scanned eight at a time. The name bytes are compared only when the full 64-bit hashes
//! match.
//!
//! Probing is linear. Deletion shifts the rest of the probe run back (no tombstones), so a
//! probe run ends at the first free slot and lookups of absent names stay short. The table
//! doubles before its load factor passes 3/4.
//!
//! Invariants (checked by `check_invariants` in the tests):
//! - the slot count is a power of two (at least [`MIN_SLOTS`]) or zero, and `mask` is one less
//!   (0 when empty);
//! - a free slot holds [`Slot::FREE`]: no name, no heap block;
//! - `tags[i]` is [`tag_of`] slot `i`'s stored hash, or [`FREE_TAG`] when it is free, and the
//!   [`GROUP`] tags past the last slot repeat the first ones;
//! - every entry sits in the probe run that starts at its home slot: no free slot lies between
//!   its home and its slot (cyclically);
//! - no two entries hold the same name;
//! - `len` counts the occupied slots and stays at most 3/4 of the slots, so every probe meets
//!   a free slot.
//!
//! The lookup path allocates nothing and is free of `unsafe`.

use super::INLINE_NAME_BYTES;
use crate::agent::AgentId;

/// The stored hash of a free slot.
const EMPTY: u64 = 0;

/// Fewest slots of a table that holds anything.
const MIN_SLOTS: usize = 16;

/// The tag of a free slot.
const FREE_TAG: u8 = 0;

/// Tags read at once past the home slot, as one `u64`.
const GROUP: usize = 8;

/// Ones in the low bit of every byte of a group.
const LOW_BITS: u64 = u64::from_ne_bytes([0x01; GROUP]);

/// Ones in the high bit of every byte of a group.
const HIGH_BITS: u64 = u64::from_ne_bytes([0x80; GROUP]);

/// The stored form of a hash: `hash`, except that 0 (the free-slot mark) becomes 1.
#[inline]
fn stored_hash(hash: u64) -> u64 {
    hash.max(1)
}

/// The tag of an occupied slot: the top byte of its stored hash, never [`FREE_TAG`]. Those
/// are well-mixed bits of the keyed hash and not among the home bits; the owner shard is the
/// high half modulo the shard count, which leaves the top byte spread over one shard's names.
#[inline]
fn tag_of(stored: u64) -> u8 {
    ((stored >> 56) as u8).max(1)
}

/// A name as a slot stores it.
enum StoredName {
    /// The first `len` bytes of `bytes` (the rest are zero).
    Inline { len: u8, bytes: [u8; INLINE_NAME_BYTES] },
    /// A name longer than [`INLINE_NAME_BYTES`].
    Heap(Box<[u8]>),
}

/// One binding, on one cache line of its own.
#[repr(C, align(64))]
struct Slot {
    /// [`stored_hash`] of the name, or [`EMPTY`].
    hash: u64,
    /// The agent the name is bound to (meaningless when free).
    id: AgentId,
    /// The name (empty inline when free).
    name: StoredName,
}

const _: () = assert!(size_of::<StoredName>() == 48, "the name fills the line after hash and id");
const _: () = assert!(size_of::<Slot>() == 64, "a slot is one cache line");

impl Slot {
    /// A free slot.
    const FREE: Slot = Slot {
        hash: EMPTY,
        id: AgentId::from_bits(0),
        name: StoredName::Inline { len: 0, bytes: [0; INLINE_NAME_BYTES] },
    };

    fn new(stored: u64, id: AgentId, name: &[u8]) -> Self {
        let name = if name.len() <= INLINE_NAME_BYTES {
            let mut bytes = [0u8; INLINE_NAME_BYTES];
            bytes[..name.len()].copy_from_slice(name);
            StoredName::Inline { len: name.len() as u8, bytes }
        } else {
            StoredName::Heap(name.into())
        };
        Slot { hash: stored, id, name }
    }

    /// Whether the slot holds `name`. Inline names are compared with a few fixed-size loads
    /// rather than a call to `memcmp`.
    #[inline]
    fn holds(&self, name: &[u8]) -> bool {
        match &self.name {
            StoredName::Inline { len, bytes } => usize::from(*len) == name.len() && short_eq(bytes, name),
            StoredName::Heap(held) => **held == *name,
        }
    }
}

/// Whether `name` equals the first `name.len()` bytes of `held` (`name.len() <= held.len()`).
/// Two overlapping loads of the widest size that fits cover every length from that size to
/// twice it, so each branch here is a pair of fixed-size compares.
#[inline]
fn short_eq(held: &[u8; INLINE_NAME_BYTES], name: &[u8]) -> bool {
    let n = name.len();
    if n >= 32 {
        word::<32>(held, 0) == word::<32>(name, 0) && word::<32>(held, n - 32) == word::<32>(name, n - 32)
    } else if n >= 16 {
        word::<16>(held, 0) == word::<16>(name, 0) && word::<16>(held, n - 16) == word::<16>(name, n - 16)
    } else if n >= 8 {
        word::<8>(held, 0) == word::<8>(name, 0) && word::<8>(held, n - 8) == word::<8>(name, n - 8)
    } else if n >= 4 {
        word::<4>(held, 0) == word::<4>(name, 0) && word::<4>(held, n - 4) == word::<4>(name, n - 4)
    } else {
        held[..n] == *name
    }
}

/// The `N` bytes of `bytes` from `at`, as an array (compared as one or two vector words).
#[inline(always)]
fn word<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut w = [0u8; N];
    w.copy_from_slice(&bytes[at..at + N]);
    w
}

/// Where a probe for a name ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Probe {
    /// The name is in this slot.
    Found(usize),
    /// The name is absent; this is the free slot that ended its probe run, where it would go.
    Vacant(usize),
}

/// The table: see the module documentation.
#[derive(Default)]
pub(super) struct NameTable {
    slots: Vec<Slot>,
    /// One tag per slot, same index: [`tag_of`] its stored hash, or [`FREE_TAG`]; then the
    /// first [`GROUP`] tags again, so that a group read near the end wraps around.
    tags: Vec<u8>,
    /// Slots less one, or 0 when there are none.
    mask: usize,
    /// Right shift that turns the low 32 bits of a hash into a slot number.
    shift: u32,
    /// Occupied slots.
    len: usize,
}

impl NameTable {
    /// A table that takes `capacity` names before it grows (no allocation for 0).
    pub(super) fn with_capacity(capacity: usize) -> Self {
        if capacity == 0 {
            return Self::default();
        }
        Self::with_slots(slots_for(capacity))
    }

    fn with_slots(count: usize) -> Self {
        debug_assert!(count.is_power_of_two() && count >= MIN_SLOTS);
        assert!(count <= 1 << 32, "a registry partition holds at most 3 * 2^30 names");
        let mut slots = Vec::with_capacity(count);
        slots.resize_with(count, || Slot::FREE);
        let tags = vec![FREE_TAG; count + GROUP];
        Self { slots, tags, mask: count - 1, shift: 32 - count.trailing_zeros(), len: 0 }
    }

    /// Names held.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The home slot of a stored hash: the top bits of its low half. Those bits are well mixed
    /// by the keyed hash and independent of the owner-shard bits (the high half). Doubling the table appends one bit, so entries keep their relative order.
    #[inline]
    fn home(&self, stored: u64) -> usize {
        // With 2^k slots, `shift` is 32 - k, so the result is below the slot count; the empty
        // table has shift 0 and mask 0, so its home is 0 and a probe finds no slot there.
        (u64::from(stored as u32) >> self.shift) as usize & self.mask
    }

    /// The agent bound to `name`, whose hash is `hash`.
    #[inline]
    pub(super) fn find(&self, name: &[u8], hash: u64) -> Option<AgentId> {
        match self.probe(name, hash) {
            Probe::Found(i) => Some(self.slots[i].id),
            Probe::Vacant(_) => None,
        }
    }

    /// Looks for `name` (hash `hash`) along its probe run. An empty table answers
    /// `Vacant(0)`, which [`NameTable::insert_at`] handles by growing first.
    #[inline]
    pub(super) fn probe(&self, name: &[u8], hash: u64) -> Probe {
        let stored = stored_hash(hash);
        let tag = tag_of(stored);
        let home = self.home(stored);
        let Some(&t) = self.tags.get(home) else {
            return Probe::Vacant(0);
        };
        // The home slot's address does not depend on its tag, so on a (predicted) match its
        // line is fetched alongside the tag: a present name at home costs one memory latency.
        // A free tag ends the run without reading any slot.
        if t == tag {
            let slot = &self.slots[home];
            if slot.hash == stored && slot.holds(name) {
                return Probe::Found(home);
            }
        } else if t == FREE_TAG {
            return Probe::Vacant(home);
        }
        self.probe_past_home(name, stored, (home + 1) & self.mask)
    }

    /// The rest of a probe run, from slot `i` on, a group of tags at a time: only the slots
    /// whose tags match before the first free tag are read.
    fn probe_past_home(&self, name: &[u8], stored: u64, mut i: usize) -> Probe {
        let splat = LOW_BITS * u64::from(tag_of(stored));
        loop {
            let group = self.group_at(i);
            let free = zero_bytes(group);
            // Matches up to the first free tag (flags above a true match may be false; the
            // full hash check drops those).
            let mut hits = zero_bytes(group ^ splat) & (free & free.wrapping_neg()).wrapping_sub(1);
            while hits != 0 {
                let j = (i + hits.trailing_zeros() as usize / 8) & self.mask;
                let slot = &self.slots[j];
                if slot.hash == stored && slot.holds(name) {
                    return Probe::Found(j);
                }
                hits &= hits - 1;
            }
            if free != 0 {
                return Probe::Vacant((i + free.trailing_zeros() as usize / 8) & self.mask);
            }
            i = (i + GROUP) & self.mask;
        }
    }

    /// Tags `i .. i + GROUP` (wrapping around) as a little-endian word.
    #[inline]
    fn group_at(&self, i: usize) -> u64 {
        let mut w = [0u8; GROUP];
        w.copy_from_slice(&self.tags[i..i + GROUP]);
        u64::from_le_bytes(w)
    }

    /// Sets the tag of slot `i`, and its copy past the end for the first [`GROUP`] slots.
    fn set_tag(&mut self, i: usize, tag: u8) {
        self.tags[i] = tag;
        if i < GROUP {
            let count = self.slots.len();
            self.tags[count + i] = tag;
        }
    }

    /// The agent in occupied slot `i`.
    pub(super) fn id_at(&self, i: usize) -> AgentId {
        debug_assert_ne!(self.slots[i].hash, EMPTY);
        self.slots[i].id
    }

    /// Rebinds the name in occupied slot `i` to `id`.
    pub(super) fn set_id_at(&mut self, i: usize, id: AgentId) {
        debug_assert_ne!(self.slots[i].hash, EMPTY);
        self.slots[i].id = id;
    }

    /// Inserts `name` (hash `hash`, absent) bound to `id`, into `vacant`, the slot that
    /// [`NameTable::probe`] just returned, or wherever it belongs after growing.
    pub(super) fn insert_at(&mut self, vacant: usize, name: &[u8], hash: u64, id: AgentId) {
        let stored = stored_hash(hash);
        let i = if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
            self.free_slot_from(self.home(stored))
        } else {
            vacant
        };
        debug_assert_eq!(self.slots[i].hash, EMPTY);
        self.slots[i] = Slot::new(stored, id, name);
        self.set_tag(i, tag_of(stored));
        self.len += 1;
    }

    /// The first free slot at or after `i`.
    fn free_slot_from(&self, mut i: usize) -> usize {
        while self.tags[i] != FREE_TAG {
            i = (i + 1) & self.mask;
        }
        i
    }

    /// Doubles the slots (or makes the first [`MIN_SLOTS`]) and moves every entry over.
    #[cold]
    fn grow(&mut self) {
        let mut new = Self::with_slots((self.slots.len() * 2).max(MIN_SLOTS));
        for slot in std::mem::take(&mut self.slots) {
            if slot.hash != EMPTY {
                let i = new.free_slot_from(new.home(slot.hash));
                new.set_tag(i, tag_of(slot.hash));
                new.slots[i] = slot;
            }
        }
        new.len = self.len;
        *self = new;
    }

    /// Removes the entry in occupied slot `hole`, shifting the rest of its probe run back so
    /// that no lookup has to step over a hole.
    pub(super) fn remove_at(&mut self, mut hole: usize) {
        debug_assert_ne!(self.slots[hole].hash, EMPTY);
        // Drops the name (and its heap block, if any) now; the hole is free from here on.
        self.slots[hole] = Slot::FREE;
        self.set_tag(hole, FREE_TAG);
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let hash = self.slots[j].hash;
            if hash == EMPTY {
                break;
            }
            // The entry at j may fill the hole if its home is not cyclically inside (hole, j]:
            // then the hole lies on its probe run.
            let from_home = j.wrapping_sub(self.home(hash)) & self.mask;
            let from_hole = j.wrapping_sub(hole) & self.mask;
            if from_home >= from_hole {
                self.slots.swap(hole, j);
                self.set_tag(hole, tag_of(hash));
                self.set_tag(j, FREE_TAG);
                hole = j;
            }
        }
        self.len -= 1;
    }
}

/// The high bit of each byte of `x` that is zero; above the lowest such byte, a byte may be
/// flagged falsely (a borrow), never below it.
#[inline]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS
}

/// Slots for a table that takes `capacity` names at a load factor of at most 3/4.
fn slots_for(capacity: usize) -> usize {
    capacity.saturating_mul(4).div_ceil(3).max(MIN_SLOTS).next_power_of_two()
}

#[cfg(test)]
impl NameTable {
    /// Checks every invariant of the module documentation; panics on the first broken one.
    pub(super) fn check_invariants(&self) {
        let count = self.slots.len();
        assert!(count == 0 || (count.is_power_of_two() && count >= MIN_SLOTS));
        assert_eq!(self.mask, count.saturating_sub(1));
        let mut occupied = 0;
        let mut names = std::collections::HashSet::new();
        assert_eq!(self.tags.len(), if count == 0 { 0 } else { count + GROUP });
        for k in 0..GROUP.min(count) {
            assert_eq!(self.tags[count + k], self.tags[k], "the copy of tag {k} is stale");
        }
        for (i, slot) in self.slots.iter().enumerate() {
            let want = if slot.hash == EMPTY { FREE_TAG } else { tag_of(slot.hash) };
            assert_eq!(self.tags[i], want, "slot {i} has a stale tag");
            if slot.hash == EMPTY {
                assert!(matches!(slot.name, StoredName::Inline { len: 0, .. }), "free slot {i} has a name");
                continue;
            }
            occupied += 1;
            let name = match &slot.name {
                StoredName::Inline { len, bytes } => &bytes[..usize::from(*len)],
                StoredName::Heap(held) => {
                    assert!(held.len() > INLINE_NAME_BYTES, "a short name on the heap");
                    held
                }
            };
            assert!(names.insert(name.to_vec()), "a name is held twice");
            let mut k = self.home(slot.hash);
            while k != i {
                assert_ne!(self.slots[k].hash, EMPTY, "slot {i} is cut off from its home by a free slot at {k}");
                k = (k + 1) & self.mask;
            }
        }
        assert_eq!(occupied, self.len);
        assert!(self.len * 4 <= count * 3);
    }

    /// Slots allocated.
    pub(super) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The longest distance of an entry from its home slot.
    pub(super) fn max_displacement(&self) -> usize {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].hash != EMPTY)
            .map(|i| i.wrapping_sub(self.home(self.slots[i].hash)) & self.mask)
            .max()
            .unwrap_or(0)
    }
}
