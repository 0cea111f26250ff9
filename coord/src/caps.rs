//! Capabilities: interned tags and the sets agents declare and queries ask for.
//!
//! A capability is a short name (`"gpu"`, `"train"`, `"eval"`). The [`CapRegistry`] of a
//! [`crate::Coord`] interns each name once into a [`Cap`] (a bit position), so that a
//! [`CapSet`] is one 128-bit word: membership, intersection and counting are single
//! instructions, and the capability index compares sets without touching strings. The registry
//! is shared by every shard (interning happens when an agent declares or a query is built, not
//! per message), so a tag means the same bit everywhere.
//!
//! Invariants: a name maps to one bit for the registry's whole life; at most [`MAX_CAPS`]
//! distinct names; names are 1 to 64 bytes of ASCII letters, digits, `-`, `_`, `.` or `:`.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

/// How many distinct capability names one registry holds.
pub const MAX_CAPS: usize = 128;

/// One interned capability: a bit position in a [`CapSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cap(u8);

impl Cap {
    /// The bit position (0 to 127).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A set of capabilities (one bit per interned name).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CapSet(u128);

impl CapSet {
    /// The empty set.
    pub const EMPTY: CapSet = CapSet(0);

    /// The set holding `caps`.
    pub fn of(caps: &[Cap]) -> Self {
        caps.iter().fold(CapSet::EMPTY, |s, c| s.with(*c))
    }

    /// This set plus `cap`.
    #[must_use]
    pub fn with(self, cap: Cap) -> Self {
        CapSet(self.0 | (1u128 << cap.0))
    }

    /// Every capability of either set.
    #[must_use]
    pub fn union(self, other: CapSet) -> Self {
        CapSet(self.0 | other.0)
    }

    /// Whether `cap` is in the set.
    pub fn contains(self, cap: Cap) -> bool {
        self.0 & (1u128 << cap.0) != 0
    }

    /// Whether every capability of `other` is in this set.
    pub fn contains_all(self, other: CapSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// How many capabilities the two sets share.
    pub fn shared(self, other: CapSet) -> u32 {
        (self.0 & other.0).count_ones()
    }

    /// How many capabilities the set holds.
    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The capabilities in the set, lowest bit first.
    pub fn iter(self) -> impl Iterator<Item = Cap> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros() as u8;
            bits &= bits - 1;
            Some(Cap(i))
        })
    }
}

/// Why a capability name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// The name is empty, too long, or has a character outside the allowed set.
    #[error("invalid capability name {0:?}; hint: use 1 to 64 ASCII letters, digits, '-', '_', '.' or ':'")]
    BadName(String),
    /// The registry already holds [`MAX_CAPS`] names.
    #[error("capability {0:?} would be the 129th name; hint: at most 128 distinct capabilities exist per engine, reuse tags")]
    Full(String),
}

/// The engine-wide interner of capability names; see the module docs.
#[derive(Default)]
pub struct CapRegistry {
    inner: RwLock<Names>,
}

#[derive(Default)]
struct Names {
    by_name: HashMap<Box<str>, Cap>,
    names: Vec<Box<str>>,
}

impl fmt::Debug for CapRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.inner.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("CapRegistry").field("names", &names.names).finish()
    }
}

fn valid(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

impl CapRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The capability named `name`, interned on first use.
    ///
    /// # Errors
    /// [`CapError`] for an invalid name or a full registry.
    pub fn intern(&self, name: &str) -> Result<Cap, CapError> {
        if let Some(cap) = self.get(name) {
            return Ok(cap);
        }
        if !valid(name) {
            return Err(CapError::BadName(name.to_owned()));
        }
        let mut names = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(cap) = names.by_name.get(name) {
            return Ok(*cap);
        }
        if names.names.len() >= MAX_CAPS {
            return Err(CapError::Full(name.to_owned()));
        }
        let cap = Cap(names.names.len() as u8);
        names.names.push(name.into());
        names.by_name.insert(name.into(), cap);
        Ok(cap)
    }

    /// The capability named `name`, if it was interned.
    pub fn get(&self, name: &str) -> Option<Cap> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).by_name.get(name).copied()
    }

    /// The set of the named capabilities, interning each.
    ///
    /// # Errors
    /// The first name refused.
    pub fn set(&self, names: &[&str]) -> Result<CapSet, CapError> {
        names.iter().try_fold(CapSet::EMPTY, |s, n| Ok(s.with(self.intern(n)?)))
    }

    /// The name of `cap`.
    pub fn name(&self, cap: Cap) -> Option<String> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).names.get(cap.index()).map(|n| n.to_string())
    }

    /// The names in `set`, in bit order.
    pub fn names(&self, set: CapSet) -> Vec<String> {
        set.iter().filter_map(|c| self.name(c)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_intern_once_and_sets_compare_by_bits() {
        let r = CapRegistry::new();
        let gpu = r.intern("gpu").unwrap();
        assert_eq!(r.intern("gpu").unwrap(), gpu, "the same name, the same bit");
        let train = r.intern("train").unwrap();
        assert_ne!(gpu, train);
        let both = r.set(&["gpu", "train"]).unwrap();
        assert!(both.contains_all(CapSet::of(&[gpu])));
        assert!(!CapSet::of(&[gpu]).contains_all(both));
        assert_eq!(both.shared(CapSet::of(&[train])), 1);
        assert_eq!(both.len(), 2);
        assert_eq!(both.iter().collect::<Vec<_>>(), vec![gpu, train]);
        assert_eq!(r.names(both), vec!["gpu".to_string(), "train".to_string()]);
    }

    #[test]
    fn bad_names_and_a_full_registry_are_refused() {
        let r = CapRegistry::new();
        for bad in ["", "has space", "é", &"x".repeat(65)] {
            assert!(matches!(r.intern(bad), Err(CapError::BadName(_))), "{bad:?}");
        }
        for i in 0..MAX_CAPS {
            r.intern(&format!("c{i}")).unwrap();
        }
        assert!(matches!(r.intern("one-more"), Err(CapError::Full(_))));
        assert!(r.intern("c127").is_ok(), "known names still resolve");
        let all = (0..MAX_CAPS).fold(CapSet::EMPTY, |s, i| s.with(r.get(&format!("c{i}")).unwrap()));
        assert_eq!(all.len(), 128);
    }
}
