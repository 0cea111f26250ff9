//! Supervisor tests: restart types (`Permanent`, `Transient`, `Temporary`) after normal exits,
//! failures, panics and outside shutdowns.

use super::*;

// ---------------------------------------------------------------------------------------------
// 5. Restart types
// ---------------------------------------------------------------------------------------------

#[test]
fn permanent_child_restarts_after_a_normal_exit_and_after_a_failure() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("p", &log).restart(Restart::Permanent));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let first = running_ids(&mut shards, sup)[0];
    log.take();

    send(&mut shards, first, Job::Quit);
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["stop:p", "start:p"]));
    let second = running_ids(&mut shards, sup)[0];
    assert_ne!(second, first);

    send(&mut shards, second, Job::Fail);
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["stop:p", "start:p"]));
    let third = running_ids(&mut shards, sup)[0];
    assert_ne!(third, second);

    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (1, 1, 2));
    assert_accounted(&shards);
}

#[test]
fn transient_child_restarts_after_a_failure_or_a_panic() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("t", &log).restart(Restart::Transient));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let first = running_ids(&mut shards, sup)[0];
    log.take();

    send(&mut shards, first, Job::Fail);
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["stop:t", "start:t"]));
    let second = running_ids(&mut shards, sup)[0];
    assert_ne!(second, first);

    send(&mut shards, second, Job::Crash);
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["start:t"]));
    let third = running_ids(&mut shards, sup)[0];
    assert_ne!(third, second);

    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (1, 1, 2));
    assert_accounted(&shards);
}

#[test]
fn transient_child_is_not_restarted_after_a_normal_exit() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("t", &log).restart(Restart::Transient))
        .child(worker("p", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let ids = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, ids[0], Job::Quit);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:t"]));
    let infos = children(&mut shards, sup);
    assert_eq!(infos[0].agent, None);
    assert_eq!(infos[1].agent, Some(ids[1]));
    let st = stats(&mut shards, sup);
    assert_eq!(st, SupervisorStats { children: 1, running: 1, restarts: 0, stop_timeouts: 0, start_failures: 0 });
    assert_eq!(shards[0].agents(), 2, "the supervisor and p");
    assert_accounted(&shards);
}

#[test]
fn transient_child_is_not_restarted_after_being_shut_down_by_another_agent() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("t", &log).restart(Restart::Transient));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let t = running_ids(&mut shards, sup)[0];
    log.take();

    let stopper = shards[0].spawn(Stopper).unwrap();
    post(&mut shards[0], stopper, t);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:t"]));
    assert_eq!(children(&mut shards, sup)[0].agent, None);
    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (0, 0, 0));
    assert_eq!(ping(&mut shards, t), None);
    assert_accounted(&shards);
}

#[test]
fn permanent_child_is_restarted_after_being_shut_down_by_another_agent() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("p", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let p = running_ids(&mut shards, sup)[0];
    log.take();

    let stopper = shards[0].spawn(Stopper).unwrap();
    post(&mut shards[0], stopper, p);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:p", "start:p"]));
    let again = running_ids(&mut shards, sup)[0];
    assert_ne!(again, p);
    assert_eq!(stats(&mut shards, sup).restarts, 1);
    assert_accounted(&shards);
}

#[test]
fn temporary_child_is_never_restarted_and_leaves_the_children() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("t1", &log).restart(Restart::Temporary))
        .child(worker("t2", &log).restart(Restart::Temporary))
        .child(worker("p", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let ids = running_ids(&mut shards, sup);
    assert_eq!(stats(&mut shards, sup).children, 3);
    log.take();

    // A panic does not restart it ...
    send(&mut shards, ids[0], Job::Crash);
    settle(&mut shards);
    assert_eq!(log.take(), Vec::<String>::new());
    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (2, 2, 0));

    // ... nor does a normal exit.
    send(&mut shards, ids[1], Job::Quit);
    settle(&mut shards);
    assert_eq!(log.take(), lines(&["stop:t2"]));
    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (1, 1, 0));

    let infos = children(&mut shards, sup);
    assert_eq!(infos.iter().map(|c| c.agent).collect::<Vec<_>>(), [None, None, Some(ids[2])]);
    assert_eq!(shards[0].agents(), 2, "the supervisor and p");
    assert_accounted(&shards);
}

/// `Restart::Temporary` is documented as "Never" restarted; a sibling's failure under
/// `one_for_all` stops it (as OTP does) but must not start it again.
#[test]

fn one_for_all_does_not_restart_a_temporary_sibling() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .child(worker("t", &log).restart(Restart::Temporary))
        .child(worker("p", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    let ids = running_ids(&mut shards, sup);
    log.take();

    send(&mut shards, ids[1], Job::Crash);
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["stop:t", "start:p"]));
    let infos = children(&mut shards, sup);
    assert_eq!(infos[0].agent, None, "the temporary child stays down");
    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running), (1, 1));
    assert_accounted(&shards);
}

/// A one-shot job: logs its start and ends normally right away, in `on_start`.
struct OneShot {
    log: Log,
}

impl Agent for OneShot {
    type Msg = ();

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.log.push("run:job".into());
        ctx.stop_self();
    }

    fn handle(&mut self, (): (), _ctx: &mut Ctx<'_>) {}
}

/// A transient child that finishes normally is never restarted, even when it finishes in
/// `on_start`.
#[test]
fn transient_child_that_ends_normally_in_on_start_is_not_restarted() {
    let log = Log::default();
    let mut shards = cluster(1);
    let job_log = log.clone();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(ChildSpec::new("job", move || OneShot { log: job_log.clone() }).restart(Restart::Transient))
        .child(worker("p", &log));
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    let downs = watch(&mut shards, sup.id());
    settle(&mut shards);

    assert_eq!(log.take(), lines(&["run:job", "start:p"]), "the job ran once");
    assert!(downs.lock().unwrap().is_empty(), "the supervisor is alive: {:?}", downs.lock().unwrap());
    let st = stats(&mut shards, sup);
    assert_eq!((st.children, st.running, st.restarts), (1, 1, 0));
    assert_accounted(&shards);
}
