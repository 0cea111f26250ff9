//! The registry partition: names owned by one shard.
//!
//! The owner of a name is a pure function of the name: [`name_hash`] hashes it (FxHash plus a
//! multiplicative mix, the same on every shard and every run) and [`owner_of_hash`] takes it
//! modulo the number of shards. A name is registered and resolved only on its owner, so there is
//! no shared registry and no lock. Other shards ask the owner over the mesh; host threads go
//! through `EngineHandle`.
//!
//! Layout, for lookups that stay at about one memory latency at a million names: an
//! open-addressing table (`table.rs`) of 64-byte slots, one cache line each, holding the
//! name's full 64-bit hash, the agent id and the name itself when it is at most
//! [`INLINE_NAME_BYTES`] bytes (longer names live on the heap), beside one tag byte per slot
//! (the top byte of the hash, 0 when free). A lookup computes the hash once (the same hash
//! picks the owner shard); the hash alone locates the home slot, so its tag and its line are
//! fetched together, and a present name at home reads that one slot line. Tags, small enough
//! to stay in cache, let a probe skip slots that cannot match and find an absent name without
//! reading a slot. The name bytes are compared only when the full hashes match. Probing is
//! linear, deletion shifts the probe run back (no tombstones), and the table doubles before
//! its load factor passes 3/4.
//!
//! Invariants: a name maps to at most one agent (a second registration is
//! [`RegistryError::Duplicate`]); an entry's stored hash is `name_hash` of its name (0 stored
//! as 1); `unregister` with an expected id removes the name only if it still maps to that id,
//! so a stale removal can never delete a newer registration; `register_replacing` takes a name
//! over only from the agent it names as replaced; a lookup allocates nothing.
//! [`name_hash`], [`key_hash`] and [`owner_of_hash`] are fixed functions: their values are
//! part of the engine's behaviour (they place names on shards).
//!
//! The hash is not keyed: a client that controls names could force collisions. Keyed hashing can
//! be switched on here if names ever come from untrusted sources.

mod table;

use crate::agent::AgentId;
use std::hash::{BuildHasherDefault, Hasher};
use table::{NameTable, Probe};

/// Why a registration failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The name is taken.
    #[error("the name `{name}` is already registered to {holder}; hint: unregister it first or pick another name")]
    Duplicate {
        /// The name.
        name: String,
        /// Who holds it.
        holder: AgentId,
    },
    /// The name is empty or longer than [`MAX_NAME_BYTES`].
    #[error("invalid name (empty or longer than {MAX_NAME_BYTES} bytes)")]
    InvalidName,
    /// The agent to register is not alive.
    #[error("agent {0} is not alive")]
    NoSuchAgent(AgentId),
    /// The owning shard could not be reached.
    #[error("the registry request could not be delivered: {0}")]
    Unreachable(String),
}

/// Longest name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// FxHash: a fast, deterministic, unkeyed hash (the rustc hasher), used for names.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

/// The last `rest` (1 to 7) bytes of `bytes` as a little-endian word, zero-extended: the
/// value of copying them into a zeroed `[u8; 8]`, read with fixed-size loads instead of a
/// variable-length copy (a `memcpy` call on every short name).
#[inline]
fn tail_word(bytes: &[u8], rest: usize) -> u64 {
    debug_assert!((1..8).contains(&rest) && rest <= bytes.len());
    let n = bytes.len();
    if n >= 8 {
        // The last eight bytes, shifted so that only the `rest` unhashed ones remain.
        let last = u64::from_le_bytes([
            bytes[n - 8],
            bytes[n - 7],
            bytes[n - 6],
            bytes[n - 5],
            bytes[n - 4],
            bytes[n - 3],
            bytes[n - 2],
            bytes[n - 1],
        ]);
        last >> (8 * (8 - rest))
    } else if n >= 4 {
        // Two overlapping four-byte loads; overlapping bytes land on the same positions.
        let lo = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let hi = u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]);
        u64::from(lo) | (u64::from(hi) << (8 * (n - 4)))
    } else if n >= 2 {
        let lo = u16::from_le_bytes([bytes[0], bytes[1]]);
        let hi = u16::from_le_bytes([bytes[n - 2], bytes[n - 1]]);
        u64::from(lo) | (u64::from(hi) << (8 * (n - 2)))
    } else {
        u64::from(bytes[0])
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        let rest = chunks.remainder().len();
        if rest > 0 {
            self.add(tail_word(bytes, rest));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// `BuildHasher` for [`FxHasher`].
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// The registry hash of `name`: FxHash of its bytes with the high bits mixed down (Fx leaves
/// the low bits weak for short keys). It picks the owner shard and the table bucket.
#[inline]
pub fn name_hash(name: &str) -> u64 {
    key_hash(name.as_bytes())
}

/// The hash of any byte string (a key that need not be UTF-8); `name_hash(n) ==
/// key_hash(n.as_bytes())`, so keys and names are placed alike.
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(key);
    let x = h.finish();
    (x ^ (x >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The shard that owns a name whose [`name_hash`] is `hash`, among `shards` shards.
#[inline]
pub fn owner_of_hash(hash: u64, shards: usize) -> usize {
    ((hash >> 32) % shards.max(1) as u64) as usize
}

/// The shard that owns `name` among `shards` shards.
#[inline]
pub fn owner_of(name: &str, shards: usize) -> usize {
    owner_of_hash(name_hash(name), shards)
}

/// Checks a name's length.
pub fn validate_name(name: &str) -> Result<(), RegistryError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        Err(RegistryError::InvalidName)
    } else {
        Ok(())
    }
}

/// Names of at most this many bytes are stored inline, in the name's table slot; longer ones
/// on the heap (one more pointer to follow when they are compared).
pub const INLINE_NAME_BYTES: usize = 46;

/// One shard's part of the registry.
#[derive(Default)]
pub struct RegistryPartition {
    names: NameTable,
}

impl RegistryPartition {
    /// An empty partition with room for `capacity` names.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { names: NameTable::with_capacity(capacity) }
    }

    /// Binds `name` to `id`. Registering the same binding again is not an error.
    pub fn register(&mut self, name: &str, id: AgentId) -> Result<(), RegistryError> {
        self.register_replacing(name, id, None)
    }

    /// Binds `name` to `id`, taking it over when it is bound to `replace` (a stopped agent
    /// whose removal has not arrived yet: a supervisor restarting a named child passes the
    /// child's previous id).
    pub fn register_replacing(
        &mut self,
        name: &str,
        id: AgentId,
        replace: Option<AgentId>,
    ) -> Result<(), RegistryError> {
        validate_name(name)?;
        let hash = name_hash(name);
        match self.names.probe(name.as_bytes(), hash) {
            Probe::Vacant(at) => {
                self.names.insert_at(at, name.as_bytes(), hash, id);
                Ok(())
            }
            Probe::Found(at) => {
                let holder = self.names.id_at(at);
                if holder == id {
                    Ok(())
                } else if Some(holder) == replace {
                    self.names.set_id_at(at, id);
                    Ok(())
                } else {
                    Err(RegistryError::Duplicate { name: name.to_owned(), holder })
                }
            }
        }
    }

    /// The agent bound to `name`.
    #[inline]
    pub fn lookup(&self, name: &str) -> Option<AgentId> {
        self.names.find(name.as_bytes(), name_hash(name))
    }

    /// The agent bound to `name`, whose [`name_hash`] the caller already computed (to pick the
    /// owner shard): the lookup then hashes nothing.
    #[inline]
    pub fn lookup_hashed(&self, name: &str, hash: u64) -> Option<AgentId> {
        debug_assert_eq!(hash, name_hash(name));
        self.names.find(name.as_bytes(), hash)
    }

    /// Removes `name`; with `expected`, only if it is bound to that agent. Returns whether a
    /// name was removed.
    pub fn unregister(&mut self, name: &str, expected: Option<AgentId>) -> bool {
        let Probe::Found(at) = self.names.probe(name.as_bytes(), name_hash(name)) else {
            return false;
        };
        if expected.is_some_and(|want| self.names.id_at(at) != want) {
            return false;
        }
        self.names.remove_at(at);
        true
    }

    /// Names in this partition.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the partition holds no names.
    pub fn is_empty(&self) -> bool {
        self.names.len() == 0
    }
}

#[cfg(test)]
mod tests;
