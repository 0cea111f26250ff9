//! `register` and `planted-register`: clients on every shard increment one shared register.
//!
//! Each client makes `INCREMENTS` increments, one after the other. In `register` an increment
//! is one `Add` message the register applies (correct). In `planted-register` it is a
//! read-modify-write over two asks (`Get`, then `Set(v + 1)`): a deliberately broken protocol
//! that loses an update whenever two clients read before either writes, an ordering bug the
//! simulator must find. The register itself is the same agent in both.
//!
//! Checks: the register ends at clients x increments; every increment was answered; the
//! accounting.

use crate::runner::Faults;
use crate::scenario::{Instance, Scenario, World};
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::ask::{AskError, ReplyTo};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const CLIENTS: usize = 3;
const INCREMENTS: u64 = 5;

/// The correct and the planted variant.
pub(crate) struct Register {
    planted: bool,
}

/// `register`.
pub(crate) const CORRECT: Register = Register { planted: false };
/// `planted-register`.
pub(crate) const PLANTED: Register = Register { planted: true };

impl Scenario for Register {
    fn name(&self) -> &'static str {
        if self.planted {
            "planted-register"
        } else {
            "register"
        }
    }

    fn about(&self) -> &'static str {
        if self.planted {
            "PLANTED BUG: increments as read-then-write over two asks; loses updates under some orderings"
        } else {
            "clients on every shard increment one register with Add: it ends at the number of increments"
        }
    }

    fn instance(&self, _faults: &Faults) -> Box<dyn Instance> {
        Box::new(Run { planted: self.planted, register: None, done: Arc::new(AtomicU64::new(0)) })
    }
}

struct Run {
    planted: bool,
    register: Option<Addr<RegisterMsg>>,
    done: Arc<AtomicU64>,
}

impl Instance for Run {
    fn start(&mut self, world: &mut World) -> Result<(), String> {
        let register = world.spawn(0, Cell::default())?;
        self.register = Some(register);
        for c in 0..CLIENTS {
            let client = Client { register, planted: self.planted, left: INCREMENTS, done: self.done.clone() };
            let addr = world.spawn(c + 1, client)?;
            world.send(addr, ClientMsg::Next)?;
        }
        Ok(())
    }

    fn on_quiet(&mut self, world: &mut World, phase: u32) -> bool {
        // Phase 0: read the register once everything settled (into `done`'s neighbour).
        match (phase, self.register) {
            (0, Some(register)) => world.send(register, RegisterMsg::Publish).is_ok(),
            _ => false,
        }
    }

    fn check(&mut self, _world: &World) -> Result<(), String> {
        let expected = CLIENTS as u64 * INCREMENTS;
        let done = self.done.load(Ordering::Relaxed);
        if done != expected {
            return Err(format!("{done} of {expected} increments were answered"));
        }
        let value = PUBLISHED.with(|p| p.get());
        if value != expected {
            return Err(format!("lost update: the register holds {value} after {expected} increments"));
        }
        Ok(())
    }
}

thread_local! {
    /// The register's final value, published at the end of a run (the simulation runs on one
    /// thread, so the run's register writes it and its check reads it).
    static PUBLISHED: std::cell::Cell<u64> = const { std::cell::Cell::new(u64::MAX) };
}

/// The shared register.
#[derive(Default)]
struct Cell {
    value: u64,
}

enum RegisterMsg {
    Add(u64, ReplyTo<()>),
    Get(ReplyTo<u64>),
    Set(u64, ReplyTo<()>),
    Publish,
}

impl Agent for Cell {
    type Msg = RegisterMsg;

    fn handle(&mut self, msg: RegisterMsg, ctx: &mut Ctx<'_>) {
        match msg {
            RegisterMsg::Add(n, reply) => {
                self.value += n;
                ctx.reply(reply, ());
            }
            RegisterMsg::Get(reply) => ctx.reply(reply, self.value),
            RegisterMsg::Set(v, reply) => {
                self.value = v;
                ctx.reply(reply, ());
            }
            RegisterMsg::Publish => PUBLISHED.with(|p| p.set(self.value)),
        }
    }
}

/// Makes its increments one after the other.
struct Client {
    register: Addr<RegisterMsg>,
    planted: bool,
    left: u64,
    done: Arc<AtomicU64>,
}

enum ClientMsg {
    Next,
    Read(Result<u64, AskError>),
    Written(Result<(), AskError>),
}

impl Agent for Client {
    type Msg = ClientMsg;

    fn handle(&mut self, msg: ClientMsg, ctx: &mut Ctx<'_>) {
        // A refused send leaves the increment unanswered: the check counts it.
        match msg {
            ClientMsg::Next if self.left == 0 => {}
            ClientMsg::Next if self.planted => {
                let _ = ctx.ask(self.register, RegisterMsg::Get).then(ClientMsg::Read);
            }
            ClientMsg::Next => {
                let _ = ctx.ask(self.register, |r| RegisterMsg::Add(1, r)).then(ClientMsg::Written);
            }
            ClientMsg::Read(Ok(v)) => {
                let _ = ctx.ask(self.register, move |r| RegisterMsg::Set(v + 1, r)).then(ClientMsg::Written);
            }
            ClientMsg::Written(Ok(())) => {
                self.left -= 1;
                self.done.fetch_add(1, Ordering::Relaxed);
                let _ = ctx.send(ctx.myself(), ClientMsg::Next);
            }
            ClientMsg::Read(Err(_)) | ClientMsg::Written(Err(_)) => {}
        }
    }
}
