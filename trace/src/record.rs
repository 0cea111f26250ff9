//! [`SpanRecord`]: an owned copy of one engine [`Span`], the unit every exporter in this crate
//! works on, so spans drained in-process and spans decoded off the wire are handled alike.
//!
//! Also the small naming helpers the exporters share: [`short_type_name`] (a message type
//! without its module paths) and [`hop_from_name`] (the inverse of [`Hop::name`]).
//!
//! Invariants: a record holds exactly what its span held (times stay on the engine clock; the
//! wall-clock helpers add an epoch and saturate, never wrap); `agent` is `None` exactly when
//! the span's agent was [`NO_AGENT`].

use nexus_engine::agent::AgentId;
use nexus_engine::trace::{Hop, Span, NO_AGENT};

/// One hop of a traced message, owned (see [`Span`] for the meaning of each field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanRecord {
    /// The trace this hop belongs to (never 0 for an engine span).
    pub trace_id: u128,
    /// This hop's span id.
    pub span_id: u64,
    /// The span id of the hop that sent this hop's message; 0 for a root.
    pub parent_id: u64,
    /// How the message travelled.
    pub hop: Hop,
    /// The message type (a full `type_name`), or an external span's label.
    pub name: String,
    /// The shard the hop ran on.
    pub shard: u16,
    /// The agent that handled the hop, if any.
    pub agent: Option<AgentId>,
    /// Engine-clock nanoseconds when the message was sent.
    pub enqueued_ns: u64,
    /// Engine-clock nanoseconds when its handler started.
    pub dispatched_ns: u64,
    /// Engine-clock nanoseconds when its handler returned.
    pub finished_ns: u64,
}

impl From<&Span> for SpanRecord {
    fn from(span: &Span) -> Self {
        Self {
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent_id: span.parent_id,
            hop: span.hop,
            name: span.name.to_owned(),
            shard: span.shard,
            agent: (span.agent != NO_AGENT).then(|| AgentId::from_bits(span.agent)),
            enqueued_ns: span.enqueued_ns,
            dispatched_ns: span.dispatched_ns,
            finished_ns: span.finished_ns,
        }
    }
}

impl From<Span> for SpanRecord {
    fn from(span: Span) -> Self {
        Self::from(&span)
    }
}

impl SpanRecord {
    /// Whether this span started its trace (it has no parent).
    pub fn is_root(&self) -> bool {
        self.parent_id == 0
    }

    /// Time in the queue: enqueue to dispatch (0 if the clock readings are out of order).
    pub fn queued_ns(&self) -> u64 {
        self.dispatched_ns.saturating_sub(self.enqueued_ns)
    }

    /// Time in the handler: dispatch to end (0 if the clock readings are out of order).
    pub fn handler_ns(&self) -> u64 {
        self.finished_ns.saturating_sub(self.dispatched_ns)
    }

    /// The agent's bits as the engine stores them ([`NO_AGENT`] for none).
    pub fn agent_bits(&self) -> u64 {
        self.agent.map_or(NO_AGENT, AgentId::to_bits)
    }

    /// The agent as text (`shard:slot.generation`), or `-` for none.
    pub fn agent_text(&self) -> String {
        self.agent.map_or_else(|| "-".to_owned(), |a| a.to_string())
    }

    /// The message type without module paths (`Option<String>` for
    /// `core::option::Option<alloc::string::String>`).
    pub fn short_name(&self) -> String {
        short_type_name(&self.name)
    }

    /// `"<hop> <short type>"`, the display name exporters give the span.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.hop.name(), self.short_name())
    }

    /// Unix nanoseconds when the hop's work started: the dispatch time plus `epoch_unix_ns`
    /// (the engine's [`TraceHandle::epoch_unix_ns`](nexus_engine::trace::TraceHandle::epoch_unix_ns)).
    pub fn wall_start_ns(&self, epoch_unix_ns: u64) -> u64 {
        epoch_unix_ns.saturating_add(self.dispatched_ns)
    }

    /// Unix nanoseconds when the hop was enqueued (its message sent).
    pub fn wall_enqueued_ns(&self, epoch_unix_ns: u64) -> u64 {
        epoch_unix_ns.saturating_add(self.enqueued_ns)
    }

    /// Unix nanoseconds when the hop's handler returned.
    pub fn wall_end_ns(&self, epoch_unix_ns: u64) -> u64 {
        epoch_unix_ns.saturating_add(self.finished_ns)
    }
}

/// The hop a [`Hop::name`] names (`"send"` gives [`Hop::Send`]), or `None`.
pub fn hop_from_name(name: &str) -> Option<Hop> {
    const ALL: [Hop; 8] =
        [Hop::Send, Hop::Ask, Hop::Reply, Hop::Answer, Hop::Signal, Hop::Undelivered, Hop::DeadLetter, Hop::External];
    ALL.into_iter().find(|h| h.name() == name)
}

/// `name` with every module path dropped, generics kept: `a::b::C<d::E, f::G>` becomes
/// `C<E, G>`. Text without `::` comes back unchanged.
pub fn short_type_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    // Where the identifier being copied began in `out`: a `::` cuts `out` back to it.
    let mut segment_start = 0;
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("::") {
            out.truncate(segment_start);
            rest = after;
            continue;
        }
        if !(c.is_alphanumeric() || c == '_') {
            out.push(c);
            segment_start = out.len();
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_type_names_drop_module_paths_and_keep_generics() {
        assert_eq!(short_type_name("app::FrontMsg"), "FrontMsg");
        assert_eq!(short_type_name("core::option::Option<alloc::string::String>"), "Option<String>");
        assert_eq!(short_type_name("a::b::C<d::E, (f::G, u32)>"), "C<E, (G, u32)>");
        assert_eq!(short_type_name("resp.connection"), "resp.connection");
        assert_eq!(short_type_name("&[x::Y]"), "&[Y]");
        assert_eq!(short_type_name(""), "");
        assert_eq!(short_type_name("::"), "");
    }

    #[test]
    fn hop_names_round_trip() {
        for hop in [Hop::Send, Hop::Ask, Hop::Reply, Hop::Answer, Hop::Signal, Hop::Undelivered, Hop::DeadLetter] {
            assert_eq!(hop_from_name(hop.name()), Some(hop));
        }
        assert_eq!(hop_from_name("external"), Some(Hop::External));
        assert_eq!(hop_from_name("Send"), None);
    }

    #[test]
    fn a_record_copies_its_span_and_maps_no_agent_to_none() {
        let span = Span {
            trace_id: 7,
            span_id: 9,
            parent_id: 0,
            hop: Hop::Send,
            name: "m::Msg",
            shard: 1,
            agent: NO_AGENT,
            enqueued_ns: 10,
            dispatched_ns: 15,
            finished_ns: 40,
        };
        let r = SpanRecord::from(&span);
        assert_eq!((r.agent, r.agent_bits(), r.agent_text()), (None, NO_AGENT, "-".to_owned()));
        assert_eq!((r.queued_ns(), r.handler_ns()), (5, 25));
        assert_eq!((r.wall_enqueued_ns(1000), r.wall_start_ns(1000), r.wall_end_ns(1000)), (1010, 1015, 1040));
        assert_eq!(r.wall_end_ns(u64::MAX), u64::MAX, "saturates");
        assert_eq!(r.display_name(), "send Msg");
        let with_agent = SpanRecord::from(Span { agent: 5, ..span });
        assert_eq!(with_agent.agent.map(AgentId::to_bits), Some(5));
        assert!(r.is_root());
    }
}
