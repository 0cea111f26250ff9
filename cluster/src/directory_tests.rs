//! The directory's rules without a network: heartbeats, leases, releases, leaves and the
//! order of competing claims; and the `[cluster]` table's checks.

use super::*;
use crate::config::{ConfigError, RawClusterConfig};

fn beat(node: &str, names: &[&str]) -> DirMsg {
    DirMsg::Heartbeat { node: node.into(), names: names.iter().map(|n| n.to_string()).collect() }
}

#[test]
fn heartbeats_list_names_and_the_lease_drops_silent_nodes() {
    let mut dir = Directory::default();
    let t0 = Instant::now();
    dir.apply(beat("a", &["x", "y"]), t0);
    dir.apply(beat("b", &["z"]), t0 + Duration::from_millis(900));
    assert_eq!(dir.owner("x"), Some("a"));
    assert_eq!(dir.nodes(), ["a", "b"]);
    let gone = dir.expire(t0 + Duration::from_millis(1100), Duration::from_secs(1));
    assert_eq!(gone, ["a"]);
    assert_eq!(dir.owner("x"), None);
    assert_eq!(dir.names().into_iter().collect::<Vec<_>>(), [("z".to_owned(), "b".to_owned())]);
}

#[test]
fn releases_and_leaves_take_names_out_at_once() {
    let mut dir = Directory::default();
    let now = Instant::now();
    dir.apply(beat("a", &["x", "y"]), now);
    dir.apply(DirMsg::Release { node: "a".into(), name: "x".into() }, now);
    assert_eq!(dir.owner("x"), None);
    assert_eq!(dir.owner("y"), Some("a"));
    dir.apply(DirMsg::Leave { node: "a".into() }, now);
    assert!(dir.nodes().is_empty());
}

#[test]
fn the_earliest_claim_wins_whatever_order_the_claims_arrive_in() {
    let claims = [
        DirMsg::Claim { node: "b".into(), name: "n".into(), at_ns: 20 },
        DirMsg::Claim { node: "a".into(), name: "n".into(), at_ns: 10 },
        DirMsg::Claim { node: "c".into(), name: "n".into(), at_ns: 10 },
    ];
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
        let mut dir = Directory::default();
        for i in order {
            dir.apply(claims[i].clone(), Instant::now());
        }
        // Same time: the node name breaks the tie, the same way on every node.
        assert_eq!(dir.best_claim("n"), Some(&(10, "a".to_owned())));
    }
}

#[test]
fn the_cluster_table_is_checked() {
    let good = RawClusterConfig { nats: "nats://127.0.0.1:4222".into(), node: "a".into(), ..Default::default() };
    let config = good.clone().build().expect("valid");
    assert_eq!((config.cluster.as_str(), config.lease), ("nexus", Duration::from_secs(1)));
    let bad_url = RawClusterConfig { nats: "127.0.0.1:4222".into(), ..good.clone() };
    assert!(matches!(bad_url.build(), Err(ConfigError::BadUrl(_))));
    let bad_node = RawClusterConfig { node: "a.b".into(), ..good.clone() };
    assert!(matches!(bad_node.build(), Err(ConfigError::BadToken { key: "node", .. })));
    let short = RawClusterConfig { heartbeat_ms: 600, lease_ms: 1000, ..good };
    assert!(matches!(short.build(), Err(ConfigError::LeaseTooShort { .. })));
}
