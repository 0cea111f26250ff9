//! The cluster's faults: a node that dies (asks to it fail at once with `Unreachable`, its
//! names leave the directory within the lease) and a NATS server restart (the bridge
//! reconnects; what was sent meanwhile is delivered or counted dead as `unreachable`).

use super::*;

#[test]
fn a_dead_node_is_unreachable_at_once_and_leaves_the_directory() {
    let Some(nats) = Nats::start() else { return };
    let (a, b) = (Member::join(&nats, "a"), Member::join(&nats, "b"));
    a.spawn_tally("doomed");
    let remote = b.node().resolve::<String, String>("doomed").unwrap();
    assert_eq!(b.ask(remote, "alive?"), Ok("alive?".to_owned()));
    until("a in b's directory", || b.node().nodes().contains(&"a".to_owned()));

    let Member { node, engine } = a;
    node.expect("running").kill();
    let killed = Instant::now();
    let started = Instant::now();
    let answer = b.ask(remote, "dead?");
    let took = started.elapsed();
    assert_eq!(answer, Err(ClusterError::Unreachable("doomed".into())));
    assert!(took < Duration::from_millis(500), "an ask to a dead node fails at once, took {took:?}");
    eprintln!("ask to a dead node failed in {took:?}");
    // The lease (1 s) bounds how long the name stays listed; "no responders" may drop it sooner.
    until("a's names to leave b's directory", || b.node().names().is_empty() && b.node().nodes() == ["b"]);
    assert!(killed.elapsed() < Duration::from_millis(1500), "left within the lease plus a heartbeat");
    assert_eq!(b.node().stats().dead_of(Reason::Unreachable), 1);
    // Once the node is out of the directory, one-way messages to its names are not published
    // into the void: they are counted dead as unreachable.
    b.engine().send(remote, Call::Tell("gone".into())).ok().unwrap();
    until("the tell to be counted", || b.node().stats().dead_of(Reason::Unreachable) == 2);
    engine.expect("running").shutdown().expect("engine stops");
    b.finish();
}

#[test]
fn a_nats_restart_loses_nothing_silently_and_traffic_resumes() {
    let Some(mut nats) = Nats::start() else { return };
    let (a, b) = (Member::join(&nats, "a"), Member::join(&nats, "b"));
    a.spawn_tally("steady");
    let remote = b.node().resolve::<String, String>("steady").unwrap();
    assert_eq!(b.ask(remote, "before"), Ok("before".to_owned()));

    nats.stop();
    let mut failed = 0;
    for i in 0..20 {
        b.engine().send(remote, Call::Tell(format!("lost? {i}"))).ok().unwrap();
        if b.ask(remote, "during").is_err() {
            failed += 1;
        }
    }
    nats.restart();
    let restarted = Instant::now();
    until("traffic to resume", || b.ask(remote, "after") == Ok("after".to_owned()));
    let resumed = restarted.elapsed();
    eprintln!("traffic resumed {resumed:?} after the restart; {failed} of 20 asks failed during the outage");
    assert!(resumed < Duration::from_secs(2), "resumed within 2 s, took {resumed:?}");
    assert!(failed > 0, "an outage must show");

    // Every message is accounted for: the count a got plus b's dead letters equal what b sent.
    let stats = b.node().stats();
    let told: u64 = b.ask(remote, "#count").unwrap().parse().unwrap();
    let b_stats = b.node().stats();
    assert!(b_stats.accounted(), "{}", b_stats.line());
    assert!(stats.dead_of(Reason::Unreachable) >= 20, "{}", stats.line());
    assert!(told <= 20);
    b.finish();
    a.finish();
}
