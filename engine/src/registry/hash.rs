//! The registry's keyed hash: how names and keys are hashed, and which shard owns them.
//!
//! Names and keys come from outside (a RESP client picks agent names with `AGENT.SPAWN` and
//! picks every key), and one hash both places them on shards and locates them in a shard's
//! table. An unkeyed hash lets such a client compute, offline, as many inputs with one hash
//! value as it likes: every one lands on the same shard and in the same probe run, and
//! lookups turn linear (the registry used FxHash, for which two 8-byte words per name are
//! enough to collide on all 64 bits; `registry/tests.rs` builds such a flood).
//!
//! [`NameHasher`] is aHash (`ahash::RandomState`) under a 256-bit key. Why aHash:
//! - it is keyed, and documented by its authors as DoS resistant: without the key, an attacker
//!   cannot build inputs that collide, fully or partially, and seeing some outputs (the shard a
//!   name landed on, which `AGENT.INFO` shows; timings) is not meant to reveal the key;
//! - it is fast on short strings (a few ns for a 26-byte name, about FxHash's cost), so the
//!   registry's lookup targets hold; SipHash, std's keyed hash, is designed for exactly this
//!   threat and has a real security argument, but costs 15-20 ns a name, which the 30 ns
//!   lookup budget at 10k names cannot pay;
//! - foldhash, the other fast seeded hash, describes itself as only "minimally" DoS
//!   resistant (it defeats precomputed collisions but not an attacker who studies a running
//!   process), and the server tells clients which shard their names landed on.
//!
//! What it does not do: aHash is not a cryptographic hash and has no proof of security; its
//! resistance rests on its design and review, not on a reduction. Its output differs between
//! builds with and without AES instructions (`-C target-cpu`) and between aHash versions, so
//! hash values are never stored or sent anywhere: they live and die with the process. Anyone
//! who learns the key (a core dump, `NEXUS_HASH_SEED` in the environment) can flood again.
//!
//! The key: one per process, drawn at first use from std's per-process random SipHash keys
//! (the operating system's randomness), unless [`HASH_SEED_ENV`] fixes it. Every engine in a
//! process and the server's ingress must place a name on the same shard, and host-side code
//! (`EngineHandle`, the server's key placement, benchmarks, tests of other crates) computes
//! owners without holding any engine: a process-wide key gives all of them the same answer
//! without threading a key through every call site, and reading it costs one atomic load. The
//! free functions in `registry` ([`name_hash`](super::name_hash), [`owner_of`](super::owner_of),
//! ...) use it; code that needs another key (tests that want fixed values, a client that must
//! agree with a server started with a fixed seed) builds a [`NameHasher`] itself.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// The environment variable that fixes the process key: a decimal `u64` seed, read once, at
/// the first hash. For tests and reproducible runs only: a fixed, known seed gives back the
/// flooding this hash exists to prevent.
pub const HASH_SEED_ENV: &str = "NEXUS_HASH_SEED";

/// Why [`HASH_SEED_ENV`] could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{HASH_SEED_ENV}=`{value}` is not a decimal u64; hint: unset it for a random key")]
pub struct HashSeedError {
    /// The value found.
    pub value: String,
}

/// A keyed hash of names and keys (aHash under a 256-bit key); see the module documentation.
#[derive(Clone)]
pub struct NameHasher {
    state: ahash::RandomState,
}

impl fmt::Debug for NameHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.write_str("NameHasher { .. }")
    }
}

/// SplitMix64: spreads one seed over the four key words.
fn split_mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl NameHasher {
    /// A hasher under a fresh random key (std's random SipHash keys, hashed).
    pub fn random() -> Self {
        let random = std::collections::hash_map::RandomState::new();
        let k = [0u64, 1, 2, 3].map(|i| random.hash_one(i));
        Self { state: ahash::RandomState::with_seeds(k[0], k[1], k[2], k[3]) }
    }

    /// A hasher under the key derived from `seed`: the same seed gives the same hashes within
    /// one build, for tests and for clients of a server started with [`HASH_SEED_ENV`].
    pub fn with_seed(seed: u64) -> Self {
        let mut s = seed;
        let k = [(); 4].map(|()| split_mix(&mut s));
        Self { state: ahash::RandomState::with_seeds(k[0], k[1], k[2], k[3]) }
    }

    /// The seed [`HASH_SEED_ENV`] asks for, if it is set.
    pub fn seed_from_env() -> Result<Option<u64>, HashSeedError> {
        match std::env::var(HASH_SEED_ENV) {
            Err(_) => Ok(None),
            Ok(value) => value.trim().parse().map(Some).map_err(|_| HashSeedError { value }),
        }
    }

    /// The process key, drawn at the first call: [`HASH_SEED_ENV`]'s seed if set, else
    /// random.
    ///
    /// # Panics
    ///
    /// At the first call, if [`HASH_SEED_ENV`] is set to something other than a `u64`
    /// (an operator's mistake that should not silently give a random key to a test that
    /// asked for a fixed one).
    #[inline]
    pub fn process() -> &'static NameHasher {
        static PROCESS: OnceLock<NameHasher> = OnceLock::new();
        PROCESS.get_or_init(|| match Self::seed_from_env() {
            Ok(Some(seed)) => Self::with_seed(seed),
            Ok(None) => Self::random(),
            Err(e) => panic!("{e}"),
        })
    }

    /// The hash of a byte string (a key that need not be UTF-8).
    #[inline]
    pub fn key_hash(&self, key: &[u8]) -> u64 {
        let mut h = self.state.build_hasher();
        h.write(key);
        h.finish()
    }

    /// The hash of `name`: `key_hash` of its bytes, so keys and names are placed alike.
    #[inline]
    pub fn name_hash(&self, name: &str) -> u64 {
        self.key_hash(name.as_bytes())
    }

    /// The shard that owns `name` among `shards` shards under this key.
    #[inline]
    pub fn owner_of(&self, name: &str, shards: usize) -> usize {
        owner_of_hash(self.name_hash(name), shards)
    }
}

/// The shard that owns a name or key whose hash is `hash`, among `shards` shards: the high
/// half modulo the shard count (the table's home slot and tag come from other bits).
#[inline]
pub fn owner_of_hash(hash: u64, shards: usize) -> usize {
    ((hash >> 32) % shards.max(1) as u64) as usize
}
