//! The registry partition: names owned by one shard.
//!
//! The owner of a name is a pure function of the name: [`name_hash`] hashes it (FxHash plus a
//! multiplicative mix, the same on every shard and every run) and [`owner_of_hash`] takes it
//! modulo the number of shards. A name is registered and resolved only on its owner, so there is
//! no shared registry and no lock. Other shards ask the owner over the mesh; host threads go
//! through `EngineHandle`.
//!
//! Layout, for lookups that stay cheap at a million names: one open-addressing table
//! (`hashbrown::HashTable`) of entries holding the full 64-bit hash, the agent id and the name
//! itself when it is at most [`INLINE_NAME_BYTES`] bytes (longer names live on the heap). A
//! lookup computes the hash once (the same hash picks the owner shard), touches the control
//! bytes and one entry, and compares bytes only when the full hashes match: no pointer is
//! chased for short names.
//!
//! Invariants: a name maps to at most one agent (a second registration is
//! [`RegistryError::Duplicate`]); an entry's `hash` is `name_hash` of its name; `unregister`
//! with an expected id removes the name only if it still maps to that id, so a stale removal
//! can never delete a newer registration.
//!
//! The hash is not keyed: a client that controls names could force collisions. Keyed hashing can
//! be switched on here if names ever come from untrusted sources.

use crate::agent::AgentId;
use hashbrown::HashTable;
use std::hash::{BuildHasherDefault, Hasher};

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

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
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

/// Names of at most this many bytes are stored inside their table entry.
pub const INLINE_NAME_BYTES: usize = 22;

/// A name as the table stores it: inline when short, on the heap otherwise.
enum StoredName {
    Inline { len: u8, bytes: [u8; INLINE_NAME_BYTES] },
    Heap(Box<str>),
}

impl StoredName {
    fn new(name: &str) -> Self {
        if name.len() <= INLINE_NAME_BYTES {
            let mut bytes = [0u8; INLINE_NAME_BYTES];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            StoredName::Inline { len: name.len() as u8, bytes }
        } else {
            StoredName::Heap(name.into())
        }
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            StoredName::Inline { len, bytes } => &bytes[..usize::from(*len)],
            StoredName::Heap(name) => name.as_bytes(),
        }
    }
}

/// One binding: the name's full hash (compared first), the agent, the name.
struct Entry {
    hash: u64,
    id: AgentId,
    name: StoredName,
}

/// One shard's part of the registry.
#[derive(Default)]
pub struct RegistryPartition {
    names: HashTable<Entry>,
}

impl RegistryPartition {
    /// An empty partition with room for `capacity` names.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { names: HashTable::with_capacity(capacity) }
    }

    /// Binds `name` to `id`. Registering the same binding again is not an error.
    pub fn register(&mut self, name: &str, id: AgentId) -> Result<(), RegistryError> {
        validate_name(name)?;
        let hash = name_hash(name);
        match self.find(name, hash) {
            Some(holder) if holder == id => Ok(()),
            Some(holder) => Err(RegistryError::Duplicate { name: name.to_owned(), holder }),
            None => {
                self.names.insert_unique(hash, Entry { hash, id, name: StoredName::new(name) }, |e| e.hash);
                Ok(())
            }
        }
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
        if let Some(old) = replace {
            let hash = name_hash(name);
            if self.find(name, hash) == Some(old) {
                self.unregister(name, Some(old));
            }
        }
        self.register(name, id)
    }

    /// The agent bound to `name`.
    #[inline]
    pub fn lookup(&self, name: &str) -> Option<AgentId> {
        self.find(name, name_hash(name))
    }

    /// The agent bound to `name`, whose [`name_hash`] the caller already computed (to pick the
    /// owner shard): the lookup then hashes nothing.
    #[inline]
    pub fn lookup_hashed(&self, name: &str, hash: u64) -> Option<AgentId> {
        debug_assert_eq!(hash, name_hash(name));
        self.find(name, hash)
    }

    #[inline]
    fn find(&self, name: &str, hash: u64) -> Option<AgentId> {
        self.names.find(hash, |e| e.hash == hash && e.name.as_bytes() == name.as_bytes()).map(|e| e.id)
    }

    /// Removes `name`; with `expected`, only if it is bound to that agent. Returns whether a
    /// name was removed.
    pub fn unregister(&mut self, name: &str, expected: Option<AgentId>) -> bool {
        let hash = name_hash(name);
        let Ok(entry) = self.names.find_entry(hash, |e| e.hash == hash && e.name.as_bytes() == name.as_bytes()) else {
            return false;
        };
        if expected.is_some_and(|want| entry.get().id != want) {
            return false;
        }
        entry.remove();
        true
    }

    /// Names in this partition.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the partition holds no names.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_lookup_unregister() {
        let mut r = RegistryPartition::default();
        let a = AgentId::new(0, 1, 0);
        let b = AgentId::new(0, 2, 0);
        r.register("alpha", a).unwrap();
        r.register("alpha", a).unwrap();
        assert!(matches!(r.register("alpha", b), Err(RegistryError::Duplicate { holder, .. }) if holder == a));
        assert_eq!(r.lookup("alpha"), Some(a));
        assert!(!r.unregister("alpha", Some(b)), "a stale removal leaves a newer binding alone");
        assert!(r.unregister("alpha", Some(a)));
        assert_eq!(r.lookup("alpha"), None);
        assert_eq!(r.register("", a), Err(RegistryError::InvalidName));
    }

    #[test]
    fn short_and_long_names_are_told_apart() {
        let mut r = RegistryPartition::with_capacity(4);
        let long = "x".repeat(INLINE_NAME_BYTES + 1);
        let edge = "y".repeat(INLINE_NAME_BYTES);
        let ids: Vec<AgentId> = (1..=4).map(|i| AgentId::new(0, i, 0)).collect();
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
    fn a_million_names_resolve_to_their_holders() {
        let mut r = RegistryPartition::default();
        for i in 0..1_000_000u32 {
            r.register(&format!("agent-{i}"), AgentId::new(0, i, 0)).unwrap();
        }
        for i in (0..1_000_000u32).step_by(997) {
            assert_eq!(r.lookup(&format!("agent-{i}")), Some(AgentId::new(0, i, 0)));
        }
        assert_eq!(r.lookup("agent-1000000"), None);
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
}
