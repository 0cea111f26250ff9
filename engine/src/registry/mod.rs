//! The registry partition: names owned by one shard.
//!
//! The owner of a name is a pure function of the name: [`owner_of`] hashes it (FxHash, the same
//! on every shard and every run) modulo the number of shards. A name is registered and resolved
//! only on its owner, so there is no shared registry and no lock; a lookup on the owner is one
//! hash-map probe. Other shards ask the owner over the mesh; host threads go through
//! `EngineHandle`.
//!
//! Invariants: a name maps to at most one agent (a second registration is
//! [`RegistryError::Duplicate`]); `unregister` with an expected id removes the name only if it
//! still maps to that id, so a stale removal can never delete a newer registration.
//!
//! The hash is not keyed: a client that controls names could force collisions. Keyed hashing can
//! be switched on here if names ever come from untrusted sources.

use crate::agent::AgentId;
use std::collections::HashMap;
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

/// The shard that owns `name` among `shards` shards.
#[inline]
pub fn owner_of(name: &str, shards: usize) -> usize {
    let mut h = FxHasher::default();
    h.write(name.as_bytes());
    // Mix the high bits down: Fx leaves the low bits weak for short keys.
    let x = h.finish();
    let x = (x ^ (x >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    (x % shards.max(1) as u64) as usize
}

/// Checks a name's length.
pub fn validate_name(name: &str) -> Result<(), RegistryError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        Err(RegistryError::InvalidName)
    } else {
        Ok(())
    }
}

/// One shard's part of the registry.
#[derive(Default)]
pub struct RegistryPartition {
    names: HashMap<Box<str>, AgentId, FxBuildHasher>,
}

impl RegistryPartition {
    /// An empty partition with room for `capacity` names.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { names: HashMap::with_capacity_and_hasher(capacity, FxBuildHasher::default()) }
    }

    /// Binds `name` to `id`.
    pub fn register(&mut self, name: &str, id: AgentId) -> Result<(), RegistryError> {
        validate_name(name)?;
        match self.names.get(name) {
            Some(&holder) if holder == id => Ok(()),
            Some(&holder) => Err(RegistryError::Duplicate { name: name.to_owned(), holder }),
            None => {
                self.names.insert(name.into(), id);
                Ok(())
            }
        }
    }

    /// The agent bound to `name`.
    #[inline]
    pub fn lookup(&self, name: &str) -> Option<AgentId> {
        self.names.get(name).copied()
    }

    /// Removes `name`; with `expected`, only if it is bound to that agent. Returns whether a
    /// name was removed.
    pub fn unregister(&mut self, name: &str, expected: Option<AgentId>) -> bool {
        match (self.names.get(name), expected) {
            (Some(&holder), Some(want)) if holder != want => false,
            (Some(_), _) => self.names.remove(name).is_some(),
            (None, _) => false,
        }
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
