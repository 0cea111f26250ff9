//! Inbound batches against a small mailbox: one-way messages that arrive faster than the
//! target drains its mailbox (capacity 4, batches of up to 256) all reach it, in order, and
//! node a's accounting shows every one handed, none dead; and what still waits when the engine stops
//! is counted dead, not lost.

use super::{until, Member, WAIT};
use crate::cluster_nats::Nats;
use nexus_cluster::Call;
use nexus_engine::agent::{Agent, Ctx, SpawnOptions, SpawnPlacement};

/// Counts one-way messages `0, 1, 2, ...` and whether they came in that order.
struct Ordered {
    next: u64,
    out_of_order: u64,
}

impl Agent for Ordered {
    type Msg = Call<String, String>;
    fn handle(&mut self, msg: Call<String, String>, ctx: &mut Ctx<'_>) {
        match msg {
            Call::Tell(q) => {
                if q.parse::<u64>().ok() != Some(self.next) {
                    self.out_of_order += 1;
                }
                self.next += 1;
            }
            Call::Ask(_, reply) => ctx.reply(reply, Ok(format!("{} {}", self.next, self.out_of_order))),
        }
    }
}

#[test]
fn one_way_bursts_wait_for_room_in_a_small_mailbox_and_keep_their_order() {
    let Some(nats) = Nats::start() else { return };
    let (a, b) = (Member::join(&nats, "a"), Member::join(&nats, "b"));
    let options = SpawnOptions::on(SpawnPlacement::Local).mailbox_capacity(4);
    let target = a.engine().spawn(options, || Ordered { next: 0, out_of_order: 0 }).unwrap();
    a.node().register_global("ordered", target).expect("claim wins");
    let remote = b.node().resolve::<String, String>("ordered").expect("resolves from b");
    const N: u64 = 20_000;
    for i in 0..N {
        assert!(b.engine().send_timeout(remote, Call::Tell(i.to_string()), WAIT).is_ok(), "proxy takes it");
    }
    until("every one-way message", || b.ask(remote, "#count") == Ok(format!("{N} 0")));
    let stats = a.node().stats();
    assert_eq!(stats.received, stats.handed, "{}", stats.line());
    assert_eq!(stats.dead_inbound, 0, "{}", stats.line());
    b.finish();
    a.finish();
}

/// Takes one one-way message every 20 ms: a backlog builds up behind its mailbox.
struct Slow;

impl Agent for Slow {
    type Msg = Call<String, String>;
    fn handle(&mut self, msg: Call<String, String>, ctx: &mut Ctx<'_>) {
        match msg {
            Call::Tell(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Call::Ask(_, reply) => ctx.reply(reply, Ok(String::new())),
        }
    }
}

#[test]
fn one_way_messages_still_waiting_when_the_engine_stops_are_counted_dead() {
    let Some(nats) = Nats::start() else { return };
    let (mut a, b) = (Member::join(&nats, "a"), Member::join(&nats, "b"));
    let options = SpawnOptions::on(SpawnPlacement::Local).mailbox_capacity(4);
    let target = a.engine().spawn(options, || Slow).unwrap();
    a.node().register_global("slow", target).expect("claim wins");
    let remote = b.node().resolve::<String, String>("slow").expect("resolves from b");
    const N: u64 = 500;
    for i in 0..N {
        assert!(b.engine().send_timeout(remote, Call::Tell(i.to_string()), WAIT).is_ok(), "proxy takes it");
    }
    until("node a received every one-way message", || a.node().stats().received == N);
    // 500 messages at 20 ms each: most still wait in the bridge's backlog when the engine stops.
    let _ = a.engine.take().expect("running").shutdown();
    let stats = a.node().stats();
    assert_eq!(stats.received, stats.handed + stats.dead_inbound, "{}", stats.line());
    assert!(stats.dead_inbound > 0, "the waiting messages are counted dead: {}", stats.line());
    a.node.take().expect("running").shutdown();
    b.finish();
}
