//! [`Compact`]: a key, or a string value, as the store's table holds it. Up to [`INLINE`]
//! bytes are held in the table's bucket itself; longer ones as a `Bytes` of their own (see
//! `memory::own`).
//!
//! Why: a lookup compares the key it looks for with the one in the bucket, and `GET` reads
//! the value. Held as `Bytes`, each is a separate allocation: one cache miss more for the key's
//! bytes, and for the value one on its shared header (a clone takes a reference) and one on
//! its bytes, on a table larger than the cache. The profile of GET `-P 16` put 12% of the
//! shard in `memcmp` (the key's miss) and 12% in the value's clone; held inline, they share
//! the bucket's cache line, and handing a short value out is a copy.
//!
//! Invariants: a `Compact` hashes, compares and orders exactly as its bytes do
//! (`Borrow<[u8]>`, so the table is searched with a plain `&[u8]`); one of at most `INLINE`
//! bytes is always inline, so two equal ones have the same form.

use bytes::Bytes;
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// The most bytes held inline.
pub const INLINE: usize = 22;

/// See the module documentation.
#[derive(Clone)]
pub enum Compact {
    /// `len` bytes at the start of `bytes`.
    Inline {
        /// How many of `bytes` are used.
        len: u8,
        /// The bytes, then zeros.
        bytes: [u8; INLINE],
    },
    /// More than `INLINE` (22) bytes, in an allocation of their own.
    Shared(Bytes),
}

impl Compact {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Compact::Inline { len, bytes } => &bytes[..*len as usize],
            Compact::Shared(b) => b,
        }
    }

    /// A copy of `b`: inline when short, else a `Bytes` of its own.
    pub fn copy_from_slice(b: &[u8]) -> Self {
        if b.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..b.len()].copy_from_slice(b);
            Compact::Inline { len: b.len() as u8, bytes }
        } else {
            Compact::Shared(Bytes::copy_from_slice(b))
        }
    }

    /// `b`, inline when short, else as it is: for bytes the store just built (an `APPEND`'s
    /// result), never a slice of a larger buffer (`From<Bytes>` copies long ones out of it).
    pub fn fresh(b: Bytes) -> Self {
        if b.len() <= INLINE {
            Compact::copy_from_slice(&b)
        } else {
            Compact::Shared(b)
        }
    }

    /// The bytes as a `Bytes` (a copy when inline).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Compact::Inline { .. } => Bytes::copy_from_slice(self.as_slice()),
            Compact::Shared(b) => b.clone(),
        }
    }
}

impl From<Bytes> for Compact {
    /// Inline when short; else the bytes, copied out of a larger buffer they may share.
    fn from(b: Bytes) -> Self {
        if b.len() <= INLINE {
            Compact::copy_from_slice(&b)
        } else {
            Compact::Shared(super::memory::own(b))
        }
    }
}

impl Deref for Compact {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for Compact {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Hash for Compact {
    /// As `[u8]` hashes: the table finds a key from its bytes.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl PartialEq for Compact {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Compact {}

impl std::fmt::Debug for Compact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&Bytes::copy_from_slice(self.as_slice()), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn a_compact_hashes_and_compares_as_its_bytes_inline_or_not() {
        let hasher = hashbrown::DefaultHashBuilder::default();
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 100] {
            let bytes = Bytes::from((0..len).map(|i| i as u8 + 1).collect::<Vec<u8>>());
            let compact = Compact::from(bytes.clone());
            assert_eq!(matches!(compact, Compact::Inline { .. }), len <= INLINE, "length {len}");
            assert_eq!(compact.as_slice(), &bytes[..]);
            assert_eq!(compact.to_bytes(), bytes);
            assert_eq!(hasher.hash_one(&compact), hasher.hash_one(&bytes[..]), "length {len}");
            assert_eq!(compact, Compact::from(bytes.clone()));
        }
        assert_ne!(Compact::from(Bytes::from_static(b"a")), Compact::from(Bytes::from_static(b"a\0")));
    }

    #[test]
    fn a_fresh_long_value_is_kept_and_a_long_slice_is_copied_out() {
        let long = Bytes::from(vec![7u8; crate::resp::SLICE_MIN]);
        let at = long.as_ptr();
        assert_eq!(Compact::fresh(long.clone()).as_slice().as_ptr(), at);
        assert_ne!(Compact::from(long).as_slice().as_ptr(), at);
        assert!(matches!(Compact::fresh(Bytes::from_static(b"short")), Compact::Inline { .. }));
    }

    #[test]
    fn a_compact_is_no_larger_than_a_bytes() {
        assert_eq!(std::mem::size_of::<Compact>(), std::mem::size_of::<Bytes>());
    }
}
