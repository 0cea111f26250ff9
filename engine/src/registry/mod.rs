//! The registry partition: names owned by one shard.
//!
//! The owner of a name is a function of the name and the process's hash key: [`name_hash`]
//! hashes it with a keyed hash (aHash, `hash.rs`, under a key drawn at random once per
//! process and shared by every shard, engine and the server's ingress in it) and
//! [`owner_of_hash`] takes the high half modulo the number of shards. A name is registered
//! and resolved only on its owner, so there is no shared registry and no lock. Other shards
//! ask the owner over the mesh; host threads go through `EngineHandle`.
//!
//! The hash is keyed because names and keys come from outside: with the old unkeyed FxHash a
//! RESP client could spawn agents (or set keys) whose names all share one hash, piling them
//! onto one shard and into one probe run, so every lookup went linear. `hash.rs` says why
//! aHash, what it resists and what it does not; `tests.rs` floods the registry with names that
//! all collide under FxHash. Hash values are not stable: they change with every process (fix
//! the key with [`HASH_SEED_ENV`], for tests only) and must never be stored or sent.
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
//! [`RegistryError::Duplicate`]); an entry's stored hash is the partition's hash of its name
//! (0 stored as 1); `unregister` with an expected id removes the name only if it still maps to
//! that id, so a stale removal can never delete a newer registration; `register_replacing`
//! takes a name over only from the agent it names as replaced; a lookup allocates nothing.
//! Within one process, [`name_hash`], [`key_hash`] and [`owner_of`] are fixed functions
//! (one key for the process's life), so every shard computes the same owner.

mod hash;
mod table;

pub use hash::{owner_of_hash, HashSeedError, NameHasher, HASH_SEED_ENV};

use crate::agent::AgentId;
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

/// The hash of `name` under the process key ([`NameHasher::process`]). It picks the owner
/// shard and the table bucket.
#[inline]
pub fn name_hash(name: &str) -> u64 {
    NameHasher::process().name_hash(name)
}

/// The hash of any byte string (a key that need not be UTF-8) under the process key;
/// `name_hash(n) == key_hash(n.as_bytes())`, so keys and names are placed alike.
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    NameHasher::process().key_hash(key)
}

/// The shard that owns `name` among `shards` shards, under the process key.
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
pub struct RegistryPartition {
    names: NameTable,
    /// The key names are hashed under: the process key, or a test's fixed one.
    hasher: NameHasher,
}

impl Default for RegistryPartition {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl RegistryPartition {
    /// An empty partition with room for `capacity` names, hashing under the process key.
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_hasher(capacity, NameHasher::process().clone())
    }

    /// An empty partition with room for `capacity` names, hashing under `hasher`'s key (a
    /// partition used with the free functions [`name_hash`] and [`owner_of`] needs the
    /// process key: [`RegistryPartition::with_capacity`]).
    pub fn with_hasher(capacity: usize, hasher: NameHasher) -> Self {
        Self { names: NameTable::with_capacity(capacity), hasher }
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
        let hash = self.hasher.name_hash(name);
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
        self.names.find(name.as_bytes(), self.hasher.name_hash(name))
    }

    /// The agent bound to `name`, whose hash under this partition's key (for a partition
    /// made by `with_capacity`, [`name_hash`]) the caller already computed (to pick the
    /// owner shard): the lookup then hashes nothing.
    #[inline]
    pub fn lookup_hashed(&self, name: &str, hash: u64) -> Option<AgentId> {
        debug_assert_eq!(hash, self.hasher.name_hash(name));
        self.names.find(name.as_bytes(), hash)
    }

    /// Removes `name`; with `expected`, only if it is bound to that agent. Returns whether a
    /// name was removed.
    pub fn unregister(&mut self, name: &str, expected: Option<AgentId>) -> bool {
        let Probe::Found(at) = self.names.probe(name.as_bytes(), self.hasher.name_hash(name)) else {
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
