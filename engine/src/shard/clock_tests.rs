//! Shards on a manual clock: time moves only when the driver says, and every engine deadline
//! (ask timeouts, `send_after`) follows it; `next_deadline` says where to jump.

use super::test_support::{assert_accounted, settle};
use super::{Clock, ManualClock, Shard, ShardLimits};
use crate::agent::{Addr, Agent, Ctx};
use crate::ask::{AskError, ReplyTo};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// Holds every request it is asked with, never answering.
#[derive(Default)]
struct Silent {
    held: Vec<ReplyTo<u64>>,
}

impl Agent for Silent {
    type Msg = ReplyTo<u64>;
    fn handle(&mut self, reply: ReplyTo<u64>, _ctx: &mut Ctx<'_>) {
        self.held.push(reply);
    }
}

enum Msg {
    Start(Addr<ReplyTo<u64>>),
    Answer(Result<u64, AskError>),
    Tick,
}

/// Asks the silent agent with a 5 s timeout and arms a 2 s timer; logs what comes back.
struct Asker {
    log: Rc<RefCell<Vec<String>>>,
}

impl Agent for Asker {
    type Msg = Msg;
    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        let now = ctx.now_ns();
        match msg {
            Msg::Start(silent) => {
                ctx.ask(silent, |reply| reply).timeout(Duration::from_secs(5)).then(Msg::Answer).expect("asked");
                ctx.send_after(ctx.myself(), Msg::Tick, Duration::from_secs(2));
            }
            Msg::Answer(answer) => {
                self.log.borrow_mut().push(format!("Answer({answer:?}) at {}s", now / 1_000_000_000))
            }
            Msg::Tick => self.log.borrow_mut().push(format!("Tick at {}s", now / 1_000_000_000)),
        }
    }
}

#[test]
fn deadlines_follow_the_manual_clock_and_next_deadline_says_where_to_jump() {
    let clock = ManualClock::new();
    let mut shards = Shard::cluster_with_clock(2, ShardLimits::default(), 64, Clock::manual(&clock)).unwrap();
    let silent = shards[1].spawn(Silent::default()).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let asker = shards[0].spawn(Asker { log: log.clone() }).unwrap();
    assert!(shards[0].inject(asker, Msg::Start(silent)).is_ok());
    settle(&mut shards);
    assert!(log.borrow().is_empty(), "no time has passed, however many passes run");
    let mut jumps = Vec::new();
    while let Some(next) = shards.iter_mut().filter_map(Shard::next_deadline).min() {
        clock.advance_to(next);
        jumps.push(next / 1_000_000_000);
        settle(&mut shards);
    }
    assert_eq!(jumps, vec![2, 5], "the timer, then the ask's deadline");
    assert_eq!(*log.borrow(), vec!["Tick at 2s".to_string(), "Answer(Err(Timeout)) at 5s".to_string()]);
    assert_accounted(&shards);
}
