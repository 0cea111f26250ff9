//! `chameneos`: Savina's Chameneos. Creatures meet in pairs through one mall agent.
//!
//! The [`Mall`] (agent 0, on shard 0) is the driver. The host asks it to run; it starts the
//! clock and sends `Start` to every [`Creature`]. A creature (colour `i % 3` at start) asks the
//! mall to meet by sending `Meet { colour, from }`. The mall keeps one waiting creature; the
//! next `Meet` pairs the two: the mall forwards the newcomer's `Meet` to the waiting creature
//! (one meeting done). The waiting creature takes the complement colour of the two (same colour
//! stays, two different colours give the third), sends `Change { colour, partner_was }` to the
//! newcomer, which takes the same colour, and both ask the mall again. Once `meetings` meetings
//! are done, the mall answers every `Meet` with `Exit`; a creature receiving `Exit` reports its
//! meetings and the colour-rule violations it saw, and the mall stops the clock when every
//! creature has reported.
//!
//! Placement: `local` puts the mall and every creature on shard 0; `cross` puts agent `k` (the
//! mall is agent 0, creature `i` is agent `i + 1`) on shard `k % shards`.
//!
//! Timed: the mall's `Start` broadcast to the last report arriving. `msgs_per_s` counts the
//! mall's `Meet` requests (two per meeting, plus the last one of each creature, answered with
//! `Exit`) over that time; `meetings_per_s` counts meetings. Checks: every creature reported
//! once, the meetings over all creatures sum to exactly `2 * meetings`, the mall paired exactly
//! `meetings` times and never paired a creature with itself, and every `Change` a creature
//! received followed the complement rule from its own colour and the partner's old colour.

use crate::setup::{self, Placement};
use crate::stats;
use crate::BenchError;
use nexus_engine::agent::{Addr, Agent, Ctx};
use nexus_engine::ask::ReplyTo;
use nexus_engine::engine::EngineHandle;
use nexus_engine::shard::ShardLimits;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "chameneos";

/// What one chameneos run does.
#[derive(Clone, Debug)]
pub struct ChameneosParams {
    /// Creatures (Savina: 100).
    pub creatures: u32,
    /// Meetings the mall arranges (Savina: 200,000).
    pub meetings: u64,
    /// Where the mall and the creatures live.
    pub placement: Placement,
}

impl Default for ChameneosParams {
    fn default() -> Self {
        Self { creatures: 100, meetings: 200_000, placement: Placement::Cross }
    }
}

/// What one chameneos run measured.
#[derive(Clone, Debug)]
pub struct ChameneosOutcome {
    /// Where the agents lived.
    pub placement: Placement,
    /// Creatures.
    pub creatures: u32,
    /// Meetings arranged (checked).
    pub meetings: u64,
    /// `Meet` requests the mall handled (`2 * meetings + creatures`).
    pub mall_msgs: u64,
    /// From the `Start` broadcast to the last creature's report.
    pub elapsed: Duration,
    /// Mall `Meet` requests per second.
    pub msgs_per_s: f64,
    /// Meetings per second.
    pub meetings_per_s: f64,
}

/// A creature's colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    /// Blue.
    Blue,
    /// Red.
    Red,
    /// Yellow.
    Yellow,
}

impl Colour {
    /// The colour both creatures take when `self` meets `other`.
    pub fn complement(self, other: Colour) -> Colour {
        use Colour::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Blue, Red) | (Red, Blue) => Yellow,
            (Blue, Yellow) | (Yellow, Blue) => Red,
            _ => Blue,
        }
    }

    fn of(i: u32) -> Colour {
        [Colour::Blue, Colour::Red, Colour::Yellow][(i % 3) as usize]
    }
}

/// What a creature reports when it exits: (meetings, colour-rule violations seen).
type CreatureReport = (u64, u64);

/// The mall's answer to the host: elapsed, meetings arranged, `Meet` requests handled, the
/// creatures' reports summed (reports, meetings, violations), self-pairings seen; or why not.
type MallReport = Result<(Duration, u64, u64, (u64, u64, u64), u64), String>;

/// Messages of the [`Mall`].
#[derive(Debug)]
pub enum MallMsg {
    /// Start the creatures and arrange `meetings` meetings, then reply.
    Run {
        /// Every creature.
        creatures: Vec<Addr<CreatureMsg>>,
        /// Meetings to arrange.
        meetings: u64,
        /// Where the report goes.
        reply: ReplyTo<MallReport>,
    },
    /// A creature asks to meet.
    Meet {
        /// Its colour.
        colour: Colour,
        /// The creature.
        from: Addr<CreatureMsg>,
    },
    /// A creature exited with (meetings, violations).
    Report(CreatureReport),
    /// Resend what came back `Full` (sent to itself).
    Retry,
}

/// Messages of a [`Creature`].
#[derive(Debug)]
pub enum CreatureMsg {
    /// Ask the mall for a first meeting.
    Start,
    /// (From the mall) meet this creature of this colour.
    Meet {
        /// The partner's colour.
        colour: Colour,
        /// The partner.
        from: Addr<CreatureMsg>,
    },
    /// (From the partner) the meeting's new colour, and the partner's colour before it.
    Change {
        /// The new colour.
        colour: Colour,
        /// The partner's colour before the meeting.
        partner_was: Colour,
    },
    /// No more meetings: report and wait to be stopped.
    Exit,
    /// Resend what came back `Full` (sent to itself).
    Retry,
}

/// Sends `retry` to the running agent (a yield until its next turn).
fn retry_later<M: Send + 'static>(ctx: &mut Ctx<'_>, retry: M) -> bool {
    ctx.send(ctx.myself::<M>(), retry).is_ok()
}

/// Pairs creatures and counts; the driver of the run.
#[derive(Default)]
pub struct Mall {
    /// Sends not made yet (refused ones are resent in order on a later turn).
    out: VecDeque<(Addr<CreatureMsg>, CreatureMsg)>,
    waiting: Option<Addr<CreatureMsg>>,
    left: u64,
    arranged: u64,
    requests: u64,
    self_pairings: u64,
    creatures: u64,
    reports: (u64, u64, u64),
    started: Option<Instant>,
    reply: Option<ReplyTo<MallReport>>,
    retrying: bool,
}

impl Mall {
    fn meet(&mut self, colour: Colour, from: Addr<CreatureMsg>) {
        self.requests += 1;
        if self.left == 0 {
            return self.out.push_back((from, CreatureMsg::Exit));
        }
        match self.waiting.take() {
            None => self.waiting = Some(from),
            Some(waiting) => {
                self.self_pairings += u64::from(waiting == from);
                self.left -= 1;
                self.arranged += 1;
                self.out.push_back((waiting, CreatureMsg::Meet { colour, from }));
            }
        }
    }
}

impl Agent for Mall {
    type Msg = MallMsg;

    fn handle(&mut self, msg: MallMsg, ctx: &mut Ctx<'_>) {
        match msg {
            MallMsg::Meet { colour, from } => self.meet(colour, from),
            MallMsg::Report((meetings, violations)) => {
                self.reports.0 += 1;
                self.reports.1 += meetings;
                self.reports.2 += violations;
                if self.reports.0 == self.creatures {
                    let elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
                    let report = (elapsed, self.arranged, self.requests, self.reports, self.self_pairings);
                    if let Some(reply) = self.reply.take() {
                        ctx.reply(reply, Ok(report));
                    }
                }
            }
            MallMsg::Run { creatures, meetings, reply } => {
                self.creatures = creatures.len() as u64;
                self.left = meetings;
                self.reply = Some(reply);
                self.started = Some(Instant::now());
                self.out.extend(creatures.into_iter().map(|c| (c, CreatureMsg::Start)));
            }
            MallMsg::Retry => self.retrying = false,
        }
        while let Some((to, msg)) = self.out.pop_front() {
            if let Err(e) = ctx.send(to, msg) {
                self.out.push_front((to, e.into_inner()));
                break;
            }
        }
        if !self.out.is_empty() && !self.retrying {
            self.retrying = retry_later(ctx, MallMsg::Retry);
            if !self.retrying {
                if let Some(reply) = self.reply.take() {
                    ctx.reply(reply, Err("the mall could not send itself a retry".into()));
                }
            }
        }
    }
}

/// Messages a creature sends: to the mall, or to its partner.
enum Out {
    Mall(MallMsg),
    Partner(Addr<CreatureMsg>, CreatureMsg),
}

/// One chameneos.
pub struct Creature {
    mall: Addr<MallMsg>,
    colour: Colour,
    meetings: u64,
    violations: u64,
    out: VecDeque<Out>,
    retrying: bool,
}

impl Creature {
    fn new(mall: Addr<MallMsg>, colour: Colour) -> Self {
        Self { mall, colour, meetings: 0, violations: 0, out: VecDeque::new(), retrying: false }
    }

    fn ask_mall(&mut self, ctx: &mut Ctx<'_>) {
        let me = ctx.myself();
        self.out.push_back(Out::Mall(MallMsg::Meet { colour: self.colour, from: me }));
    }

    /// Sends the queued messages in order; stops at the first refusal (kept for a retry).
    fn flush(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(out) = self.out.pop_front() {
            let refused = match out {
                Out::Mall(msg) => ctx.send(self.mall, msg).err().map(|e| Out::Mall(e.into_inner())),
                Out::Partner(to, msg) => ctx.send(to, msg).err().map(|e| Out::Partner(to, e.into_inner())),
            };
            if let Some(out) = refused {
                self.out.push_front(out);
                break;
            }
        }
        if !self.out.is_empty() && !self.retrying {
            // If even the self-message is refused the run stalls and the host's ask times out.
            self.retrying = retry_later(ctx, CreatureMsg::Retry);
        }
    }
}

impl Agent for Creature {
    type Msg = CreatureMsg;

    fn handle(&mut self, msg: CreatureMsg, ctx: &mut Ctx<'_>) {
        match msg {
            CreatureMsg::Meet { colour, from } => {
                let was = self.colour;
                self.colour = was.complement(colour);
                self.meetings += 1;
                self.out.push_back(Out::Partner(from, CreatureMsg::Change { colour: self.colour, partner_was: was }));
                self.ask_mall(ctx);
            }
            CreatureMsg::Change { colour, partner_was } => {
                if self.colour.complement(partner_was) != colour {
                    self.violations += 1;
                }
                self.colour = colour;
                self.meetings += 1;
                self.ask_mall(ctx);
            }
            CreatureMsg::Start => self.ask_mall(ctx),
            CreatureMsg::Exit => self.out.push_back(Out::Mall(MallMsg::Report((self.meetings, self.violations)))),
            CreatureMsg::Retry => self.retrying = false,
        }
        self.flush(ctx);
    }
}

/// Spawns a mall and `params.creatures` creatures on a running engine, runs the meetings once,
/// checks them (see the module documentation) and stops every agent.
pub fn run(handle: &EngineHandle, params: &ChameneosParams) -> Result<ChameneosOutcome, BenchError> {
    let shards = handle.shards();
    params.placement.check(WORKLOAD, shards)?;
    // Each creature has at most one message on its way to the mall: keep them within its mailbox.
    let room = u64::from(ShardLimits::default().mailbox_capacity).saturating_sub(16);
    if params.creatures < 2 || u64::from(params.creatures) > room {
        return Err(BenchError::params(WORKLOAD, format!("creatures must be within 2..={room}")));
    }
    let shard_of = |k: usize| params.placement.shard_of(k, shards);
    let mall = setup::spawn_on(handle, WORKLOAD, shard_of(0), Mall::default)?;
    let mut creatures = Vec::with_capacity(params.creatures as usize);
    for i in 0..params.creatures {
        let colour = Colour::of(i);
        creatures
            .push(setup::spawn_on(handle, WORKLOAD, shard_of(i as usize + 1), move || Creature::new(mall, colour))?);
    }
    let meetings = params.meetings;
    let ids: Vec<_> = creatures.iter().map(|c| c.id()).collect();
    let report = setup::ask(
        handle,
        WORKLOAD,
        "run the meetings",
        mall,
        setup::timeout_for(meetings, Duration::from_micros(50)),
        move |reply| MallMsg::Run { creatures, meetings, reply },
    );
    for id in ids {
        handle.stop(id)?;
    }
    handle.stop(mall.id())?;
    let (elapsed, arranged, requests, (reports, total, violations), self_pairings) =
        report?.map_err(|why| BenchError::check(WORKLOAD, why))?;
    let n = u64::from(params.creatures);
    if reports != n || arranged != meetings || total != 2 * meetings || requests != 2 * meetings + n {
        return Err(BenchError::check(
            WORKLOAD,
            format!(
                "{reports} creatures reported {total} meetings, the mall arranged {arranged} from {requests} requests; \
                 expected {n} reports, {} meetings, {meetings} arranged, {} requests",
                2 * meetings,
                2 * meetings + n
            ),
        ));
    }
    if violations != 0 || self_pairings != 0 {
        return Err(BenchError::check(
            WORKLOAD,
            format!("{violations} colour changes broke the complement rule, {self_pairings} self-pairings"),
        ));
    }
    Ok(ChameneosOutcome {
        placement: params.placement,
        creatures: params.creatures,
        meetings,
        mall_msgs: requests,
        elapsed,
        msgs_per_s: stats::per_second(requests, elapsed),
        meetings_per_s: stats::per_second(meetings, elapsed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::EngineSettings;

    #[test]
    fn complement_rule() {
        use Colour::*;
        assert_eq!(Blue.complement(Blue), Blue);
        assert_eq!(Blue.complement(Red), Yellow);
        assert_eq!(Yellow.complement(Red), Blue);
        assert_eq!(Yellow.complement(Blue), Red);
    }

    #[test]
    fn every_meeting_is_counted_both_ways() {
        let engine = EngineSettings::test(2).build().unwrap();
        let handle = engine.handle();
        for placement in Placement::BOTH {
            let out = run(&handle, &ChameneosParams { creatures: 7, meetings: 2_000, placement }).unwrap();
            assert_eq!((out.meetings, out.mall_msgs), (2_000, 4_007));
        }
        setup::shutdown(engine, WORKLOAD).unwrap();
    }

    /// Full Savina size, for figures: `cargo test --release -p nexus-bench --lib chameneos -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn full_size() {
        let engine = EngineSettings::bench(2).build().unwrap();
        let handle = engine.handle();
        for placement in Placement::BOTH {
            let out = run(&handle, &ChameneosParams { placement, ..ChameneosParams::default() }).unwrap();
            println!("{WORKLOAD} {}: {out:?}", placement.as_str());
        }
        setup::shutdown(engine, WORKLOAD).unwrap();
    }
}
