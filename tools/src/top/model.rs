//! `nexus top`'s model: what the view shows, built from successive scrapes.
//!
//! A [`Snapshot`] is one scrape's samples sorted into per-shard figures (and the busiest
//! agents). [`Model::update`] keeps the previous snapshot and turns the counters into rates:
//! `(now - before) / seconds between the scrapes`. A counter that went down was reset (the
//! engine restarted), so its increase is its whole new value, as Prometheus' `rate` counts it;
//! a rate is never negative. A shard that was not in the previous scrape has no rate yet.
//! The history holds the last [`HISTORY`] total message rates, one per scrape, oldest first;
//! a failed scrape adds a zero there, keeps the last figures on show, and marks the model
//! disconnected until the next scrape answers.

use super::scrape::Sample;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

/// How many samples the sparkline keeps (a minute at the default one-second interval).
pub const HISTORY: usize = 60;

/// How many of the busiest agents the view lists.
pub const BUSIEST: usize = 10;

/// One shard's figures from one scrape; `None` where the endpoint had no such sample.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardFigures {
    /// `nexus_messages_delivered_total`.
    pub delivered: Option<f64>,
    /// `nexus_queued_messages`.
    pub queued: Option<f64>,
    /// `nexus_agents`.
    pub agents: Option<f64>,
    /// `nexus_routing_latency_seconds{quantile="0.5"}`.
    pub p50: Option<f64>,
    /// `nexus_routing_latency_seconds{quantile="0.99"}`.
    pub p99: Option<f64>,
    /// `nexus_dead_letters_total` by reason (every reason the endpoint lists, zeros included).
    pub dead: BTreeMap<String, f64>,
    /// `nexus_server_connections`: the RESP clients served by the shard.
    pub clients: Option<f64>,
    /// `nexus_server_commands_total`.
    pub commands: Option<f64>,
}

/// One scrape, sorted by shard.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Per shard index.
    pub shards: BTreeMap<usize, ShardFigures>,
    /// `(agent, shard, mailbox depth)` from `nexus_mailbox_depth`, deepest first.
    pub busiest: Vec<(String, usize, f64)>,
}

impl Snapshot {
    /// Sorts `samples` into figures; samples without a readable `shard` label are ignored.
    pub fn from_samples(samples: &[Sample]) -> Self {
        let mut snap = Snapshot::default();
        for s in samples {
            let Some(shard) = s.label("shard").and_then(|v| v.parse::<usize>().ok()) else {
                continue;
            };
            let entry = || ShardFigures::default();
            let fig = snap.shards.entry(shard).or_insert_with(entry);
            match s.name.as_str() {
                "nexus_messages_delivered_total" => fig.delivered = Some(s.value),
                "nexus_queued_messages" => fig.queued = Some(s.value),
                "nexus_agents" => fig.agents = Some(s.value),
                "nexus_server_connections" => fig.clients = Some(s.value),
                "nexus_server_commands_total" => fig.commands = Some(s.value),
                "nexus_routing_latency_seconds" => match s.label("quantile") {
                    Some("0.5") => fig.p50 = Some(s.value),
                    Some("0.99") => fig.p99 = Some(s.value),
                    _ => {}
                },
                "nexus_dead_letters_total" => {
                    let reason = s.label("reason").unwrap_or("unknown").to_owned();
                    *fig.dead.entry(reason).or_default() += s.value;
                }
                "nexus_mailbox_depth" => {
                    let agent = s.label("agent").unwrap_or("?").to_owned();
                    snap.busiest.push((agent, shard, s.value));
                }
                _ => {}
            }
        }
        // Deepest first; equal depths by shard, then agent, so the list does not shuffle.
        snap.busiest.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.1.cmp(&b.1)).then(a.0.cmp(&b.0)));
        snap.busiest.truncate(BUSIEST);
        snap
    }

    /// The sum of one figure over every shard that has it (`None` if none has).
    pub fn total(&self, figure: impl Fn(&ShardFigures) -> Option<f64>) -> Option<f64> {
        self.shards.values().filter_map(figure).fold(None, |sum, v| Some(sum.unwrap_or(0.0) + v))
    }
}

/// Per-second rates between two scrapes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates {
    /// Messages delivered per second, per shard.
    pub messages: BTreeMap<usize, f64>,
    /// Commands per second, per shard.
    pub commands: BTreeMap<usize, f64>,
}

impl Rates {
    /// The rates from `before` to `now`, `seconds` apart; see the module documentation.
    pub fn between(before: &Snapshot, now: &Snapshot, seconds: f64) -> Self {
        let mut rates = Rates::default();
        if seconds <= 0.0 {
            return rates;
        }
        for (shard, fig) in &now.shards {
            let Some(old) = before.shards.get(shard) else {
                continue;
            };
            if let (Some(a), Some(b)) = (old.delivered, fig.delivered) {
                rates.messages.insert(*shard, increase(a, b) / seconds);
            }
            if let (Some(a), Some(b)) = (old.commands, fig.commands) {
                rates.commands.insert(*shard, increase(a, b) / seconds);
            }
        }
        rates
    }

    /// Messages per second over every shard (`None` before the second scrape).
    pub fn total_messages(&self) -> Option<f64> {
        (!self.messages.is_empty()).then(|| self.messages.values().sum())
    }

    /// Commands per second over every shard (`None` before the second scrape).
    pub fn total_commands(&self) -> Option<f64> {
        (!self.commands.is_empty()).then(|| self.commands.values().sum())
    }
}

/// How much a counter grew from `before` to `now`: a drop means it was reset to zero and has
/// counted `now` since.
pub fn increase(before: f64, now: f64) -> f64 {
    if now >= before {
        now - before
    } else {
        now.max(0.0)
    }
}

/// Whether the last scrape answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Link {
    /// It did.
    Connected,
    /// It failed, for this reason; the figures on show are the last ones that came.
    Disconnected(String),
}

/// Everything the view draws; see the module documentation.
#[derive(Debug)]
pub struct Model {
    /// The latest snapshot and when it was taken.
    last: Option<(Instant, Snapshot)>,
    /// Rates between the last two answered scrapes.
    pub rates: Rates,
    /// Total messages per second, one per scrape, oldest first, at most [`HISTORY`].
    pub history: VecDeque<u64>,
    /// Whether the endpoint answers.
    pub link: Link,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Model {
    /// A model with nothing scraped yet.
    pub fn new() -> Self {
        Self { last: None, rates: Rates::default(), history: VecDeque::with_capacity(HISTORY), link: Link::Connected }
    }

    /// The latest snapshot, if any scrape answered.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.last.as_ref().map(|(_, s)| s)
    }

    /// Takes a scrape that answered at `at`.
    pub fn update(&mut self, at: Instant, snap: Snapshot) {
        if let Some((before_at, before)) = &self.last {
            let seconds = at.saturating_duration_since(*before_at).as_secs_f64();
            self.rates = Rates::between(before, &snap, seconds);
            if let Some(total) = self.rates.total_messages() {
                self.push_history(total.round() as u64);
            }
        }
        self.last = Some((at, snap));
        self.link = Link::Connected;
    }

    /// Takes a scrape that failed.
    pub fn disconnected(&mut self, why: String) {
        self.link = Link::Disconnected(why);
        self.rates = Rates::default();
        self.push_history(0);
    }

    fn push_history(&mut self, value: u64) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::scrape::parse;
    use std::time::Duration;

    fn scrape(delivered: [u64; 2], commands: [u64; 2]) -> Snapshot {
        let mut text = String::new();
        for shard in 0..2 {
            text.push_str(&format!(
                "nexus_messages_delivered_total{{shard=\"{shard}\"}} {}\n\
                 nexus_server_commands_total{{shard=\"{shard}\"}} {}\n\
                 nexus_server_connections{{shard=\"{shard}\"}} {}\n\
                 nexus_queued_messages{{shard=\"{shard}\"}} 7\n\
                 nexus_routing_latency_seconds{{shard=\"{shard}\",quantile=\"0.5\"}} 0.000002\n\
                 nexus_routing_latency_seconds{{shard=\"{shard}\",quantile=\"0.99\"}} 0.00004\n\
                 nexus_dead_letters_total{{shard=\"{shard}\",reason=\"stopped\"}} 3\n\
                 nexus_dead_letters_total{{shard=\"{shard}\",reason=\"shed\"}} 0\n",
                delivered[shard],
                commands[shard],
                shard + 1,
            ));
        }
        text.push_str(
            "nexus_mailbox_depth{shard=\"1\",agent=\"1:4.0\"} 9\nnexus_mailbox_depth{shard=\"0\",agent=\"0:2.1\"} 30\n",
        );
        text.push_str("nexus_mailbox_depth{shard=\"1\",agent=\"1:5.0\"} 9\nunrelated_total 5\n");
        Snapshot::from_samples(&parse(&text))
    }

    #[test]
    fn a_scrape_sorts_into_shards() {
        let snap = scrape([10, 20], [1, 2]);
        assert_eq!(snap.shards.len(), 2);
        let s1 = &snap.shards[&1];
        assert_eq!((s1.delivered, s1.commands, s1.clients, s1.queued), (Some(20.0), Some(2.0), Some(2.0), Some(7.0)));
        assert_eq!((s1.p50, s1.p99), (Some(0.000002), Some(0.00004)));
        assert_eq!(s1.dead.get("stopped"), Some(&3.0));
        assert_eq!(s1.agents, None, "absent from the text");
        assert_eq!(snap.total(|s| s.clients), Some(3.0));
        assert_eq!(snap.total(|s| s.agents), None);
        let busiest: Vec<_> = snap.busiest.iter().map(|(a, s, d)| (a.as_str(), *s, *d)).collect();
        assert_eq!(busiest, [("0:2.1", 0, 30.0), ("1:4.0", 1, 9.0), ("1:5.0", 1, 9.0)]);
    }

    #[test]
    fn rates_come_from_two_scrapes() {
        let mut model = Model::new();
        let t0 = Instant::now();
        model.update(t0, scrape([100, 1_000], [10, 0]));
        assert_eq!(model.rates.total_messages(), None, "one scrape gives no rate");
        assert!(model.history.is_empty());
        model.update(t0 + Duration::from_millis(500), scrape([150, 1_400], [60, 0]));
        assert_eq!(model.rates.messages[&0], 100.0, "50 in half a second");
        assert_eq!(model.rates.messages[&1], 800.0);
        assert_eq!(model.rates.total_messages(), Some(900.0));
        assert_eq!(model.rates.total_commands(), Some(100.0));
        assert_eq!(model.history, [900]);
        assert_eq!(model.link, Link::Connected);
    }

    #[test]
    fn a_counter_that_goes_down_was_reset() {
        assert_eq!(increase(5.0, 8.0), 3.0);
        assert_eq!(increase(500.0, 40.0), 40.0, "reset: everything since counts");
        let mut model = Model::new();
        let t0 = Instant::now();
        model.update(t0, scrape([5_000, 5_000], [900, 900]));
        model.update(t0 + Duration::from_secs(2), scrape([30, 5_100], [4, 950]));
        assert_eq!(model.rates.messages[&0], 15.0, "the restarted shard counts from zero");
        assert_eq!(model.rates.messages[&1], 50.0);
        assert_eq!(model.rates.commands[&0], 2.0);
        assert!(model.rates.messages.values().all(|r| *r >= 0.0));
    }

    #[test]
    fn a_new_shard_has_no_rate_until_its_second_scrape() {
        let before = Snapshot::from_samples(&parse("nexus_messages_delivered_total{shard=\"0\"} 1\n"));
        let now = scrape([11, 50], [0, 0]);
        let rates = Rates::between(&before, &now, 1.0);
        assert_eq!(rates.messages.get(&0), Some(&10.0));
        assert_eq!(rates.messages.get(&1), None);
        assert_eq!(Rates::between(&before, &now, 0.0), Rates::default(), "no time, no rate");
    }

    #[test]
    fn history_keeps_the_last_minute_and_failures_show() {
        let mut model = Model::new();
        let t0 = Instant::now();
        for i in 0..=(HISTORY as u64 + 5) {
            model.update(t0 + Duration::from_secs(i), scrape([i * 10, 0], [0, 0]));
        }
        assert_eq!(model.history.len(), HISTORY);
        assert!(model.history.iter().all(|&v| v == 10));
        model.disconnected("connection refused".into());
        assert_eq!(model.link, Link::Disconnected("connection refused".into()));
        assert_eq!(model.history.back(), Some(&0));
        assert_eq!(model.history.len(), HISTORY);
        assert!(model.snapshot().is_some(), "the last figures stay on show");
        model.update(t0 + Duration::from_secs(100), scrape([2_000, 0], [0, 0]));
        assert_eq!(model.link, Link::Connected);
    }
}
