//! Supervisor tests: spec validation (period, backoff, child names) and an invalid spec at start.

use super::*;

// ---------------------------------------------------------------------------------------------
// 13. Spec validation
// ---------------------------------------------------------------------------------------------

#[test]
fn validate_rejects_a_zero_period() {
    let spec = SupervisorSpec::new(Strategy::OneForOne).intensity(3, Duration::ZERO);
    assert_eq!(spec.validate(), Err(SpecError::ZeroPeriod));
    assert!(SupervisorSpec::new(Strategy::OneForOne).intensity(0, Duration::from_nanos(1)).validate().is_ok());
}

#[test]
fn validate_rejects_a_bad_backoff() {
    let ms = Duration::from_millis;
    let bad = [
        Backoff { min: ms(10), max: ms(5), jitter: 0.0 },
        Backoff { min: ms(1), max: ms(5), jitter: 1.5 },
        Backoff { min: ms(1), max: ms(5), jitter: -0.1 },
        Backoff { min: ms(1), max: ms(5), jitter: f64::NAN },
    ];
    for b in bad {
        match SupervisorSpec::new(Strategy::OneForOne).backoff(b).validate() {
            Err(SpecError::Backoff(got)) => assert!(got.min == b.min && got.max == b.max, "{got:?}"),
            other => panic!("{b:?} gave {other:?}"),
        }
    }
    for good in
        [Backoff { min: ms(5), max: ms(5), jitter: 0.0 }, Backoff { min: Duration::ZERO, max: ms(5), jitter: 1.0 }]
    {
        assert_eq!(SupervisorSpec::new(Strategy::OneForOne).backoff(good).validate(), Ok(()));
    }
}

#[test]
fn validate_rejects_invalid_child_names() {
    let log = Log::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("a", &log)).child(worker("b", &log).name(""));
    assert_eq!(spec.validate(), Err(SpecError::Name { label: "b".into(), error: RegistryError::InvalidName }));
    let long = "x".repeat(crate::registry::MAX_NAME_BYTES + 1);
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("c", &log).name(long));
    assert_eq!(spec.validate(), Err(SpecError::Name { label: "c".into(), error: RegistryError::InvalidName }));
}

#[test]
fn validate_rejects_duplicate_child_names() {
    let log = Log::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &log).name("same"))
        .child(worker("b", &log).name("other"))
        .child(worker("c", &log))
        .child(worker("d", &log).name("same"));
    assert_eq!(
        spec.validate(),
        Err(SpecError::DuplicateName { name: "same".into(), first: "a".into(), second: "d".into() })
    );
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &log).name("one"))
        .child(worker("b", &log).name("two"))
        .child(worker("c", &log));
    assert_eq!(spec.validate(), Ok(()));
    assert_eq!(spec.children().iter().map(ChildSpec::label).collect::<Vec<_>>(), ["a", "b", "c"]);
}

#[test]
fn an_invalid_spec_makes_the_supervisor_fail_at_start_without_children() {
    let log = Log::default();
    let mut shards = cluster(1);
    let spec = three(Strategy::OneForOne, &log).intensity(3, Duration::ZERO);
    let sup = shards[0].spawn(Supervisor::new(spec)).unwrap();
    settle(&mut shards);
    assert_eq!(log.take(), Vec::<String>::new(), "no child started");
    assert_eq!(shards[0].agents(), 0, "the supervisor stopped in its on_start");
    assert_eq!(try_ask(&mut shards, sup, SupervisorMsg::Stats), None);
    assert_accounted(&shards);
}
