//! The channel mesh the glommio Savina workloads run on (see the parent module): one bounded
//! `local_channel` mailbox per actor; for `Cross`, one `shared_channel` per direction between
//! the two executors and a forwarding task on each that pushes what the other executor sends
//! into the addressed actor's mailbox. An executor whose actors have all finished says `Done` on
//! its shared channel; one that fails (or never starts) closes it instead, and the other side
//! then closes its own mailboxes, so every waiting actor sees the end.

use super::super::glommio_peer::{executor, hung_up, join, pair, CAPACITY};
use super::super::{current_cpu, CrossCount, PeerCpus};
use crate::setup::Placement;
use crate::BenchError;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

/// A message between executors: one for actor `to` sent from `cpu`, or "every actor of the
/// sending executor has finished".
enum Wire<M> {
    Msg { to: usize, cpu: usize, msg: M },
    Done,
}

/// A mailbox's sending end.
type Mailbox<M> = Rc<LocalSender<(usize, M)>>;

/// One executor's routing table: the mailbox of each actor that runs here (by index), and the
/// shared channel to the other executor for the rest.
struct Hub<M: Send + 'static> {
    workload: &'static str,
    slots: RefCell<Vec<Option<Mailbox<M>>>>,
    remote: Option<ConnectedSender<Wire<M>>>,
    cross: Cell<CrossCount>,
}

impl<M: Send + 'static> Hub<M> {
    /// The mailbox of actor `to` if it lives here and runs.
    fn local(&self, to: usize) -> Option<Mailbox<M>> {
        self.slots.borrow().get(to).and_then(Option::clone)
    }

    /// Sends `msg` to actor `to`, waiting for room.
    async fn send(&self, to: usize, msg: M) -> Result<(), BenchError> {
        let cpu = if self.remote.is_some() { current_cpu() } else { usize::MAX };
        let sent = match (self.local(to), &self.remote) {
            (Some(tx), _) => tx.send((cpu, msg)).await.is_ok(),
            (None, Some(remote)) => remote.send(Wire::Msg { to, cpu, msg }).await.is_ok(),
            (None, None) => false,
        };
        ensure(self.workload, sent, || format!("actor {to} had finished, or its executor hung up"))
    }

    /// Closes every mailbox here and the shared sender: every actor waiting here, and the other
    /// executor's forwarder, sees the end.
    fn abort(&self) {
        self.slots.borrow_mut().iter_mut().for_each(|slot| *slot = None);
        if let Some(remote) = &self.remote {
            remote.close();
        }
    }
}

/// An actor's end of the mesh: its index, its mailbox and the way to every other actor.
pub(super) struct Actor<M: Send + 'static> {
    /// This actor's index (the driver is 0).
    pub(super) me: usize,
    hub: Rc<Hub<M>>,
    rx: LocalReceiver<(usize, M)>,
}

impl<M: Send + 'static> Actor<M> {
    /// Sends `msg` to actor `to`, waiting for room.
    pub(super) async fn send(&self, to: usize, msg: M) -> Result<(), BenchError> {
        self.hub.send(to, msg).await
    }

    /// The next message of this actor's mailbox (its sender's CPU noted for `Cross`).
    pub(super) async fn recv(&self) -> Result<M, BenchError> {
        let (cpu, msg) = self.rx.recv().await.ok_or_else(|| hung_up(self.hub.workload))?;
        if self.hub.remote.is_some() {
            let mut cross = self.hub.cross.get();
            cross.note(cpu);
            self.hub.cross.set(cross);
        }
        Ok(msg)
    }

    /// A failed check: this actor got a message it does not expect.
    pub(super) fn unexpected(&self) -> BenchError {
        BenchError::check(self.hub.workload, format!("actor {} got a message it does not expect", self.me))
    }
}

/// What an actor returned: the driver's (actor 0) figures or a worker's.
enum Role<D, W> {
    Driver(D),
    Worker(W),
}

/// How a mesh is laid out.
#[derive(Clone, Copy)]
pub(super) struct Layout {
    /// The workload (for errors).
    pub(super) workload: &'static str,
    /// Actors, the driver (actor 0) included.
    pub(super) actors: usize,
    /// The executor (0 or 1) of actor `k` for `Cross`.
    pub(super) home: fn(usize) -> usize,
    /// Mailbox capacity of the driver and of the other actors.
    pub(super) caps: [usize; 2],
}

/// This executor's shared channel ends: to the other executor, from it.
type Link<M> = (SharedSender<Wire<M>>, SharedReceiver<Wire<M>>);

/// Delivers what the other executor sends to this one's actors until it says it is done.
/// Returns the messages for actors that had finished and whether the other side ended cleanly
/// (if it hung up instead, this side is aborted).
async fn forward<M: Send + 'static>(hub: Rc<Hub<M>>, rx: ConnectedReceiver<Wire<M>>) -> (u64, bool) {
    let mut lost = 0;
    loop {
        match rx.recv().await {
            Some(Wire::Msg { to, cpu, msg }) => match hub.local(to) {
                Some(tx) if tx.send((cpu, msg)).await.is_ok() => {}
                _ => lost += 1,
            },
            Some(Wire::Done) => return (lost, true),
            None => {
                hub.abort();
                return (lost, false);
            }
        }
    }
}

/// Runs `run`, aborting `hub` if it fails.
async fn guarded<R>(
    hub: Rc<Hub<impl Send>>,
    run: impl Future<Output = Result<R, BenchError>>,
) -> Result<R, BenchError> {
    let result = run.await;
    if result.is_err() {
        hub.abort();
    }
    result
}

/// Runs executor `here`'s actors (and its forwarder for `Cross`); returns what each returned,
/// by index, and the crossings its actors noted.
async fn side<M, D, W, FD, FW>(
    layout: Layout,
    here: usize,
    link: Option<Link<M>>,
    driver: impl Fn(Actor<M>) -> FD,
    worker: impl Fn(Actor<M>) -> FW,
) -> Result<(Vec<(usize, Role<D, W>)>, CrossCount), BenchError>
where
    M: Send + 'static,
    D: 'static,
    W: 'static,
    FD: Future<Output = Result<D, BenchError>> + 'static,
    FW: Future<Output = Result<W, BenchError>> + 'static,
{
    let w = layout.workload;
    let (remote, incoming) = match link {
        Some((tx, rx)) => {
            // The sender connects in a task of its own: the two executors connect crosswise.
            let tx = glommio::spawn_local(tx.connect());
            let rx = rx.connect().await;
            (Some(tx.await), Some(rx))
        }
        None => (None, None),
    };
    let (mut slots, mut boxes) = (vec![None; layout.actors], Vec::new());
    for (k, slot) in slots.iter_mut().enumerate().filter(|(k, _)| (layout.home)(*k) == here) {
        let (tx, rx) = local_channel::new_bounded(layout.caps[usize::from(k > 0)]);
        *slot = Some(Rc::new(tx));
        boxes.push((k, rx));
    }
    let hub = Rc::new(Hub { workload: w, slots: RefCell::new(slots), remote, cross: Cell::default() });
    let forwarder = incoming.map(|rx| glommio::spawn_local(forward(hub.clone(), rx)));
    let mut tasks = Vec::with_capacity(boxes.len());
    for (k, rx) in boxes {
        let a = Actor { me: k, hub: hub.clone(), rx };
        let task = if k == 0 {
            let run = driver(a);
            glommio::spawn_local(guarded(hub.clone(), async move { run.await.map(Role::Driver) }))
        } else {
            let run = worker(a);
            glommio::spawn_local(guarded(hub.clone(), async move { run.await.map(Role::Worker) }))
        };
        tasks.push((k, task));
    }
    let (mut results, mut failed) = (Vec::with_capacity(tasks.len()), None);
    for (k, task) in tasks {
        match task.await {
            Ok(r) => results.push((k, r)),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let (Some(forwarder), Some(remote)) = (forwarder, &hub.remote) {
        if failed.is_none() && remote.send(Wire::Done).await.is_err() {
            failed = Some(hung_up(w));
        }
        let (lost, clean) = forwarder.await;
        if failed.is_none() && !clean {
            failed = Some(hung_up(w));
        }
        if failed.is_none() && lost > 0 {
            failed = Some(BenchError::check(w, format!("{lost} messages arrived for actors that had finished")));
        }
    }
    failed.map_or(Ok((results, hub.cross.get())), Err)
}

/// Runs the driver (actor 0) and `layout.actors - 1` workers (see the module doc); returns the
/// driver's figures, the workers' (actor 1 first) and the crossed share (0 for `Local`).
pub(super) fn mesh<M, D, W, FD, FW>(
    layout: Layout,
    placement: Placement,
    cpus: PeerCpus,
    driver: impl Fn(Actor<M>) -> FD + Clone + Send + 'static,
    worker: impl Fn(Actor<M>) -> FW + Clone + Send + 'static,
) -> Result<(D, Vec<W>, f64), BenchError>
where
    M: Send + 'static,
    D: Send + 'static,
    W: Send + 'static,
    FD: Future<Output = Result<D, BenchError>> + 'static,
    FW: Future<Output = Result<W, BenchError>> + 'static,
{
    let w = layout.workload;
    let (mut results, crossed) = if placement == Placement::Local {
        let layout = Layout { home: |_| 0, ..layout };
        let body = move || side(layout, 0, None, driver, worker);
        (join(w, executor(w, cpus.first, cpus.pin, body)?)?.0, 0.0)
    } else {
        let ((to_1, from_0), (to_0, from_1)) =
            (shared_channel::new_bounded(CAPACITY), shared_channel::new_bounded(CAPACITY));
        let (driver_1, worker_1) = (driver.clone(), worker.clone());
        let first = move || side(layout, 0, Some((to_1, from_1)), driver, worker);
        let second = move || side(layout, 1, Some((to_0, from_0)), driver_1, worker_1);
        let ((mut results, mut cross), (more, more_cross)) = pair(w, cpus, first, second)?;
        results.extend(more);
        cross.add(more_cross);
        (results, cross.share())
    };
    results.sort_by_key(|(k, _)| *k);
    let mut roles = results.into_iter().map(|(_, role)| role);
    let Some(Role::Driver(driver)) = roles.next() else {
        return Err(BenchError::check(w, "actor 0 did not return the driver's figures"));
    };
    let workers: Vec<W> = roles.filter_map(|r| if let Role::Worker(w) = r { Some(w) } else { None }).collect();
    ensure(w, workers.len() + 1 == layout.actors, || {
        format!("{} of {} actors returned", workers.len() + 1, layout.actors)
    })?;
    Ok((driver, workers, crossed))
}

/// `Ok` when `ok`, else a failed check of `workload` saying `what`.
pub(super) fn ensure(workload: &'static str, ok: bool, what: impl FnOnce() -> String) -> Result<(), BenchError> {
    if ok {
        Ok(())
    } else {
        Err(BenchError::check(workload, what()))
    }
}
