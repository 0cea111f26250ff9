//! [`Key`]: a key as the store's table holds it. A key of up to [`INLINE`] bytes is held in
//! the table's bucket itself; a longer one as a `Bytes` of its own (see `memory::own`).
//!
//! Why: a lookup compares the key it looks for with the one in the bucket. Held as a `Bytes`,
//! the stored key's bytes are a separate allocation, one more cache miss per lookup on a
//! table larger than the cache (the profile of GET `-P 16` put 12% of the shard in `memcmp`,
//! most of it that miss); held inline, they share the bucket's cache line.
//!
//! Invariants: a key hashes, compares and orders exactly as its bytes do (`Borrow<[u8]>`, so
//! the table is searched with a plain `&[u8]`); a key of at most `INLINE` bytes is always
//! inline, so two equal keys have the same form.

use bytes::Bytes;
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// The longest key held inline.
pub const INLINE: usize = 22;

/// See the module documentation.
#[derive(Clone)]
pub enum Key {
    /// `len` bytes at the start of `bytes`.
    Inline {
        /// How many of `bytes` are the key.
        len: u8,
        /// The key, then zeros.
        bytes: [u8; INLINE],
    },
    /// A key longer than [`INLINE`] bytes, in an allocation of its own.
    Shared(Bytes),
}

impl Key {
    /// The key's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..*len as usize],
            Key::Shared(b) => b,
        }
    }

    /// The key as a `Bytes` (a copy for an inline key).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Key::Inline { .. } => Bytes::copy_from_slice(self.as_slice()),
            Key::Shared(b) => b.clone(),
        }
    }
}

impl From<Bytes> for Key {
    /// Inline when short; else the bytes, copied out of a larger buffer they may share.
    fn from(b: Bytes) -> Self {
        if b.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..b.len()].copy_from_slice(&b);
            Key::Inline { len: b.len() as u8, bytes }
        } else {
            Key::Shared(super::memory::own(b))
        }
    }
}

impl Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Hash for Key {
    /// As `[u8]` hashes: the table finds a key from its bytes.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&Bytes::copy_from_slice(self.as_slice()), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn a_key_hashes_and_compares_as_its_bytes_inline_or_not() {
        let hasher = hashbrown::DefaultHashBuilder::default();
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 100] {
            let bytes = Bytes::from((0..len).map(|i| i as u8 + 1).collect::<Vec<u8>>());
            let key = Key::from(bytes.clone());
            assert_eq!(matches!(key, Key::Inline { .. }), len <= INLINE, "length {len}");
            assert_eq!(key.as_slice(), &bytes[..]);
            assert_eq!(key.to_bytes(), bytes);
            assert_eq!(hasher.hash_one(&key), hasher.hash_one(&bytes[..]), "length {len}");
            assert_eq!(key, Key::from(bytes.clone()));
        }
        assert_ne!(Key::from(Bytes::from_static(b"a")), Key::from(Bytes::from_static(b"a\0")));
    }

    #[test]
    fn a_key_is_no_larger_than_a_bytes() {
        assert_eq!(std::mem::size_of::<Key>(), std::mem::size_of::<Bytes>());
    }
}
