//! `AgentId` and `Addr<M>`: where an agent lives, as arithmetic.
//!
//! An `AgentId` is one `u64`: `[shard: 12 bits | generation: 20 bits | slot: 32 bits]`. Routing
//! a message is a shift and a mask; no table is consulted to find the shard. The generation is
//! bumped each time a slot is reused, so an id kept after its agent stopped can never reach the
//! slot's next occupant: the generation won't match and the message becomes a counted dead
//! letter. Generations wrap after 2^20 reuses of one slot.
//!
//! `Addr<M>` is an `AgentId` that also says, at compile time, which message type the agent
//! takes. It is what `spawn` returns and what `send` wants.

use std::fmt;
use std::marker::PhantomData;

/// Number of bits that hold the shard index.
pub const SHARD_BITS: u32 = 12;
/// Number of bits that hold the generation.
pub const GENERATION_BITS: u32 = 20;
/// The largest number of shards an engine may have.
pub const MAX_SHARDS: usize = 1 << SHARD_BITS;
/// Generations are taken modulo this.
pub const GENERATION_MASK: u32 = (1 << GENERATION_BITS) - 1;

/// The identity of one agent: its shard, its slot on that shard, and the slot's generation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(u64);

impl AgentId {
    /// Builds an id from its parts. `shard` must be below [`MAX_SHARDS`]; the generation is taken
    /// modulo 2^20.
    #[inline]
    pub const fn new(shard: usize, slot: u32, generation: u32) -> Self {
        debug_assert!(shard < MAX_SHARDS);
        Self(((shard as u64) << (64 - SHARD_BITS)) | (((generation & GENERATION_MASK) as u64) << 32) | slot as u64)
    }

    /// Rebuilds an id from [`AgentId::to_bits`].
    #[inline]
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The raw `u64`.
    #[inline]
    pub const fn to_bits(self) -> u64 {
        self.0
    }

    /// The shard that owns the agent.
    #[inline]
    pub const fn shard(self) -> usize {
        (self.0 >> (64 - SHARD_BITS)) as usize
    }

    /// The slot index on the owning shard.
    #[inline]
    pub const fn slot(self) -> u32 {
        self.0 as u32
    }

    /// The generation of the slot when the agent was spawned.
    #[inline]
    pub const fn generation(self) -> u32 {
        ((self.0 >> 32) as u32) & GENERATION_MASK
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentId({}:{}.{})", self.shard(), self.slot(), self.generation())
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}.{}", self.shard(), self.slot(), self.generation())
    }
}

/// A typed address: an [`AgentId`] whose agent takes messages of type `M`.
pub struct Addr<M> {
    id: AgentId,
    _msg: PhantomData<fn(M)>,
}

impl<M> Addr<M> {
    /// Treats `id` as an agent that takes `M`. A wrong type is caught when the message is
    /// dispatched: it becomes a dead letter counted as a type mismatch.
    #[inline]
    pub const fn from_id(id: AgentId) -> Self {
        Self { id, _msg: PhantomData }
    }

    /// The untyped id.
    #[inline]
    pub const fn id(self) -> AgentId {
        self.id
    }

    /// The shard that owns the agent.
    #[inline]
    pub const fn shard(self) -> usize {
        self.id.shard()
    }
}

impl<M> Clone for Addr<M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for Addr<M> {}
impl<M> PartialEq for Addr<M> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl<M> Eq for Addr<M> {}
impl<M> std::hash::Hash for Addr<M> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}
impl<M> fmt::Debug for Addr<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Addr({})", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let id = AgentId::new(4095, u32::MAX, GENERATION_MASK);
        assert_eq!((id.shard(), id.slot(), id.generation()), (4095, u32::MAX, GENERATION_MASK));
        let id = AgentId::new(3, 17, GENERATION_MASK + 2);
        assert_eq!((id.shard(), id.slot(), id.generation()), (3, 17, 1));
        assert_eq!(AgentId::from_bits(id.to_bits()), id);
        assert_eq!(id.to_string(), "3:17.1");
    }
}
