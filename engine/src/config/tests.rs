//! Tests for the config module: defaults, the bundled files in `configs/`, and that every kind
//! of error names the right file, line and key, carries a hint, and prints as one line.
//!
//! The bundled files are compiled in with `include_str!("../../../configs/…")`, which resolves
//! to the workspace's `configs/` from `engine/src/config/tests.rs`.

use super::*;

/// The kind names the tests validate against: a stand-in for the caller's registry (`nexus
/// run` passes `nexus_server::kinds::Kinds::names`, which the engine cannot depend on).
const TEST_KINDS: &[&str] = &["echo", "counter", "kv"];

const DEFAULT_TOML: &str = include_str!("../../../configs/default.toml");
const LOW_LATENCY_TOML: &str = include_str!("../../../configs/low-latency.toml");
const THROUGHPUT_TOML: &str = include_str!("../../../configs/throughput.toml");
const EMBEDDED_TOML: &str = include_str!("../../../configs/embedded.toml");

/// Every file in `configs/`, by name.
const BUNDLED: &[(&str, &str)] = &[
    ("default.toml", DEFAULT_TOML),
    ("low-latency.toml", LOW_LATENCY_TOML),
    ("throughput.toml", THROUGHPUT_TOML),
    ("embedded.toml", EMBEDDED_TOML),
];

fn parse(text: &str) -> EngineConfig {
    EngineConfig::from_toml_str(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> ConfigError {
    match EngineConfig::from_toml_str(text, "test.toml") {
        Ok(config) => panic!("expected a parse error for {text:?}, got {config:?}"),
        Err(e) => e,
    }
}

fn validate_err(text: &str) -> ConfigError {
    match parse(text).validate(TEST_KINDS) {
        Ok(()) => panic!("expected a validation error for {text:?}"),
        Err(e) => e,
    }
}

/// Checks the location and the shape every error must have: a non-empty hint and a one-line
/// `Display` that names the file, the line and the key.
#[track_caller]
fn check(err: &ConfigError, line: usize, key: &str) {
    assert_eq!(err.file, "test.toml", "{err}");
    assert_eq!(err.line, Some(line), "{err}");
    assert_eq!(err.key.as_deref(), Some(key), "{err}");
    assert!(!err.message.trim().is_empty(), "{err:?}");
    assert!(!err.hint.trim().is_empty(), "{err:?}");
    let shown = err.to_string();
    assert!(!shown.contains('\n'), "not one line: {shown:?}");
    let prefix = format!("test.toml:{line}: key `{key}`: ");
    assert!(shown.starts_with(&prefix), "{shown:?} should start with {prefix:?}");
    assert!(shown.ends_with(&format!(" (hint: {})", err.hint)), "{shown:?}");
}

#[track_caller]
fn assert_hint(err: &ConfigError, needle: &str) {
    assert!(err.hint.contains(needle), "hint {:?} should mention {needle:?}", err.hint);
}

// ---- defaults and bundled files ----

#[test]
fn empty_text_gives_the_defaults() {
    let config = parse("");
    assert_eq!(config, EngineConfig::default());
    config.validate(TEST_KINDS).unwrap();
}

#[test]
fn default_toml_equals_the_defaults() {
    let config = EngineConfig::from_toml_str(DEFAULT_TOML, "default.toml").unwrap();
    assert_eq!(config, EngineConfig::default());
    config.validate(TEST_KINDS).unwrap();
}

#[test]
fn default_values_are_the_documented_ones() {
    let d = EngineConfig::default();
    assert_eq!(d.executor, ExecutorKind::Auto);
    assert_eq!(d.placement.shards, ShardCount::Auto);
    assert_eq!(d.placement.cpus, None);
    assert!(d.placement.reserve_cpus.is_empty());
    assert!(!d.placement.oversubscribe);
    assert_eq!(d.idle, IdleConfig { spin_before_park_us: 200, passes_before_yield: 256, park_timeout_us: 0 });
    assert_eq!(d.mailbox, MailboxConfig { capacity: 1024, overflow: OverflowPolicy::Reject });
    assert_eq!(d.mesh, MeshConfig { ring_capacity: 1024, batch: 64, inject_capacity: 4096, overflow_capacity: 65536 });
    assert_eq!(d.metrics, MetricsConfig { latency_sample_every: 64, status_interval_ms: 1000 });
    assert_eq!(d.shutdown, ShutdownConfig { drain_timeout_ms: 2000 });
    assert_eq!(d.shedding, SheddingConfig { max_queued: 1 << 20, max_latency_us: 500_000 });
    let kinds: Vec<&str> = d.agents.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds, ["echo", "counter", "kv"]);
    for agent in &d.agents {
        assert_eq!(agent.name.as_deref(), Some(agent.kind.as_str()));
        assert_eq!((agent.shard, agent.count), (None, 1));
    }
    assert_eq!(d.load, None);
    assert!(d.server.enabled);
    assert_eq!((d.server.listen.as_str(), d.server.metrics_listen.as_str()), ("127.0.0.1:7379", "127.0.0.1:9379"));
    assert_eq!((d.server.max_bulk, d.server.max_args), (16 * 1024 * 1024, 1024 * 1024));
}

#[test]
fn server_settings_are_checked() {
    let err = validate_err("[server]\nlisten = \"localhost\"\n");
    check(&err, 2, "server.listen");
    let err = validate_err("[server]\nmax_bulk = 0\n");
    check(&err, 2, "server.max_bulk");
    // The server runs on either executor.
    parse("executor = \"threads\"\n").validate(TEST_KINDS).unwrap();
    parse("executor = \"threads\"\n[server]\nenabled = false\n").validate(TEST_KINDS).unwrap();
}

#[test]
fn every_bundled_config_parses_and_validates() {
    for (name, text) in BUNDLED {
        let config = EngineConfig::from_toml_str(text, name).unwrap_or_else(|e| panic!("{e}"));
        config.validate(TEST_KINDS).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn bundled_profiles_set_what_they_promise() {
    let low = parse(LOW_LATENCY_TOML);
    assert_eq!(low.idle.spin_before_park_us, 5000);
    assert_eq!(low.idle.passes_before_yield, 1024);
    assert_eq!(low.mesh.batch, 16);

    let fast = parse(THROUGHPUT_TOML);
    assert_eq!(fast.mesh.ring_capacity, 4096);
    assert_eq!(fast.mesh.batch, 256);
    assert_eq!(fast.mailbox.capacity, 4096);
    assert_eq!(fast.idle.spin_before_park_us, 50);
    assert_eq!(fast.load.as_ref().map(|l| l.scenario), Some(LoadScenario::Counting));

    let small = parse(EMBEDDED_TOML);
    assert_eq!(small.placement.shards, ShardCount::Count(2));
    assert!(small.placement.oversubscribe);
    assert_eq!(small.mesh.ring_capacity, 256);
    assert_eq!(small.executor, ExecutorKind::Threads);
    assert_eq!(small.load, None);
}

#[test]
fn from_file_reads_a_bundled_config() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/default.toml");
    let config = EngineConfig::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config, EngineConfig::default());
    assert_eq!(config.source.origin(), path.display().to_string());
}

#[test]
fn from_file_reports_a_missing_file() {
    let err = EngineConfig::from_file(Path::new("/nonexistent/nexus.toml")).unwrap_err();
    assert_eq!(err.file, "/nonexistent/nexus.toml");
    assert_eq!((err.line, err.key.as_deref()), (None, None));
    assert!(!err.hint.is_empty());
    assert!(err.to_string().starts_with("/nonexistent/nexus.toml: cannot read"), "{err}");
}

#[test]
fn partial_sections_keep_the_other_defaults() {
    let config = parse("[mesh]\nbatch = 8\n");
    assert_eq!(config.mesh, MeshConfig { batch: 8, ..MeshConfig::default() });
    assert_eq!(EngineConfig { mesh: MeshConfig::default(), ..config }, EngineConfig::default());
}

#[test]
fn shards_accepts_auto_and_positive_counts() {
    assert_eq!(parse("[placement]\nshards = \"auto\"").placement.shards, ShardCount::Auto);
    assert_eq!(parse("[placement]\nshards = 4").placement.shards, ShardCount::Count(4));
    let p = parse("[placement]\ncpus = [2, 3, 5]").placement;
    assert_eq!(p.fixed_shard_count(), Some(3));
    assert_eq!(PlacementConfig::default().fixed_shard_count(), None);
}

#[test]
fn placement_turns_into_the_request_the_engine_plans() {
    assert_eq!(PlacementConfig::default().to_request(), PlacementRequest::per_core());
    assert_eq!(parse("[placement]\nshards = 4").placement.to_request(), PlacementRequest::shards(4));
    let p = parse("[placement]\ncpus = [2, 3]\nreserve_cpus = [0]\noversubscribe = true").placement;
    assert_eq!(p.to_request(), PlacementRequest::cpus(&[2, 3]).reserve(&[0]).oversubscribe(true));
}

#[test]
fn load_can_be_turned_off_or_on() {
    assert_eq!(parse("load = false").load, None);
    assert_eq!(parse("load = true").load, Some(LoadConfig::default()));
    let load = parse("[load]\nscenario = \"ask\"\nrate_per_s = 500\nduration_s = 3").load.unwrap();
    assert_eq!(load, LoadConfig { scenario: LoadScenario::Ask, rate_per_s: Some(500), agents: 2, duration_s: Some(3) });
}

#[test]
fn agents_list_replaces_the_default_list() {
    let config = parse("[[agents]]\nkind = \"kv\"\nshard = 0\ncount = 3\n");
    assert_eq!(config.agents, [AgentSpec { shard: Some(0), count: 3, ..AgentSpec::new("kv") }]);
    config.validate(TEST_KINDS).unwrap();
    assert!(parse("agents = []").agents.is_empty());
}

// ---- parse errors ----

#[test]
fn unknown_key_lists_the_valid_keys() {
    let err = parse_err("[mailbox]\ncapacity = 8\ncapacty = 5\n");
    check(&err, 3, "mailbox.capacty");
    assert_hint(&err, "capacity, overflow");
    assert_hint(&err, "did you mean `capacity`");
}

#[test]
fn unknown_table_lists_the_top_level_keys() {
    let err = parse_err("[mesh]\nbatch = 4\n\n[mailboxx]\ncapacity = 5\n");
    check(&err, 4, "mailboxx");
    assert_hint(
        &err,
        "placement, idle, mailbox, mesh, metrics, shutdown, shedding, coord, agents, load, executor, server",
    );
}

#[test]
fn unknown_key_in_an_agents_entry_names_its_index() {
    let err = parse_err("[[agents]]\nkind = \"echo\"\n\n[[agents]]\nkind = \"kv\"\ncuont = 2\n");
    check(&err, 6, "agents[1].cuont");
    assert_hint(&err, "kind, name, shard, count");
}

#[test]
fn unknown_key_as_a_dotted_key() {
    let err = parse_err("mesh.bach = 1\n");
    check(&err, 1, "mesh.bach");
    assert_hint(&err, "ring_capacity, batch, inject_capacity, overflow_capacity");
}

#[test]
fn unknown_key_in_an_inline_table() {
    let err = parse_err("[idle]\npark_timeout_us = 5\n\nmesh = { batch = 1, bach = 2 }\n");
    check(&err, 4, "idle.mesh");
    let err = parse_err("mesh = { batch = 1, bach = 2 }\n");
    check(&err, 1, "mesh.bach");
    assert_hint(&err, "did you mean `batch`");
}

#[test]
fn unknown_key_in_load() {
    let err = parse_err("[load]\nscenario = \"ask\"\nrate = 5\n");
    check(&err, 3, "load.rate");
    assert_hint(&err, "rate_per_s");
}

#[test]
fn wrong_type_names_the_key() {
    let err = parse_err("# comment\n[mailbox]\ncapacity = \"big\"\n");
    check(&err, 3, "mailbox.capacity");
    assert_hint(&err, "integer");

    let err = parse_err("[[agents]]\nkind = \"echo\"\n[[agents]]\nkind = 5\n");
    check(&err, 4, "agents[1].kind");

    let err = parse_err("[placement]\noversubscribe = \"yes\"\n");
    check(&err, 2, "placement.oversubscribe");
    assert_hint(&err, "true or false");
}

#[test]
fn wrong_type_inside_a_multiline_array() {
    let err = parse_err("[placement]\ncpus = [\n  1,\n  \"two\",\n]\n");
    check(&err, 4, "placement.cpus");
}

#[test]
fn unknown_enum_values_list_the_choices() {
    let err = parse_err("[mailbox]\noverflow = \"bounce\"\n");
    check(&err, 2, "mailbox.overflow");
    assert_hint(&err, "\"reject\" or overflow = \"drop\"");

    let err = parse_err("executor = \"tokio\"\n");
    check(&err, 1, "executor");
    assert_hint(&err, "\"threads\"");

    let err = parse_err("[load]\nscenario = \"pingpongg\"\n");
    check(&err, 2, "load.scenario");
    assert_hint(&err, "\"counting\"");
}

#[test]
fn shards_zero_is_rejected() {
    let err = parse_err("[placement]\nshards = 0\n");
    check(&err, 2, "placement.shards");
    assert!(err.message.contains("positive integer"), "{err}");
    assert_hint(&err, "\"auto\"");
}

#[test]
fn shards_other_values_say_what_is_expected() {
    for bad in ["\"many\"", "-3", "1.5", "true", "[1]"] {
        let err = parse_err(&format!("[placement]\nshards = {bad}\n"));
        check(&err, 2, "placement.shards");
        assert!(err.message.contains("\"auto\" or a positive integer"), "{err}");
    }
}

#[test]
fn load_must_be_a_table_or_false() {
    let err = parse_err("load = 5\n");
    check(&err, 1, "load");
    assert_hint(&err, "load = false");
}

#[test]
fn malformed_toml_points_at_the_line() {
    let err = parse_err("[mesh]\nbatch = 4\nring_capacity = \n");
    check(&err, 3, "mesh.ring_capacity");
    assert_eq!(err.hint, "check the TOML syntax near this line");

    let err = parse_err("[idle]\nspin_before_park_us = 1\n[mailbox\ncapacity = 1\n");
    assert_eq!(err.line, Some(3), "{err}");
    assert_eq!(err.hint, "check the TOML syntax near this line");
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn duplicate_key_points_at_the_second_one() {
    let err = parse_err("[mesh]\nbatch = 1\nbatch = 2\n");
    check(&err, 3, "mesh.batch");
}

#[test]
fn crlf_and_quoted_keys_are_located() {
    let err = parse_err("[mesh]\r\nbatch = 1\r\n\"ringg\" = 2\r\n");
    check(&err, 3, "mesh.ringg");
    let err = parse_err("[ \"mesh\" ] # the rings\nbatch = 1\nring_capacity = 'x'\n");
    check(&err, 3, "mesh.ring_capacity");
}

#[test]
fn multiline_strings_do_not_confuse_the_scanner() {
    let err = parse_err("[mesh]\nbatch = 1\n[idle]\nfoo = '''\n[mesh]\nbar = 1\n'''\n");
    check(&err, 4, "idle.foo");
}

// ---- validation errors ----

#[test]
fn ring_capacity_must_be_a_power_of_two() {
    let err = validate_err("[mesh]\nbatch = 16\nring_capacity = 1000\n");
    check(&err, 3, "mesh.ring_capacity");
    assert_hint(&err, "use a power of two such as 1024");

    let err = validate_err("[mesh]\nring_capacity = 0\n");
    check(&err, 2, "mesh.ring_capacity");
}

#[test]
fn zero_capacities_are_rejected() {
    let err = validate_err("[mailbox]\noverflow = \"drop\"\ncapacity = 0\n");
    check(&err, 3, "mailbox.capacity");
    assert_hint(&err, "at least 1");

    for key in ["batch", "inject_capacity", "overflow_capacity"] {
        let err = validate_err(&format!("[mesh]\n{key} = 0\n"));
        check(&err, 2, &format!("mesh.{key}"));
    }
}

#[test]
fn batch_cannot_exceed_the_ring() {
    let err = validate_err("[mesh]\nring_capacity = 64\nbatch = 128\n");
    check(&err, 3, "mesh.batch");
}

#[test]
fn latency_sample_every_must_be_a_power_of_two() {
    let err = validate_err("[metrics]\nlatency_sample_every = 48\n");
    check(&err, 2, "metrics.latency_sample_every");
    assert_hint(&err, "power of two");

    let err = validate_err("[metrics]\nlatency_sample_every = 0\n");
    check(&err, 2, "metrics.latency_sample_every");
}

#[test]
fn idle_and_metrics_zeroes_are_rejected() {
    let err = validate_err("[idle]\npasses_before_yield = 0\n");
    check(&err, 2, "idle.passes_before_yield");
    parse("[idle]\npark_timeout_us = 0\n").validate(TEST_KINDS).unwrap();
    let err = validate_err("[metrics]\nstatus_interval_ms = 0\n");
    check(&err, 2, "metrics.status_interval_ms");
    parse("[idle]\nspin_before_park_us = 0\n[shutdown]\ndrain_timeout_ms = 0\n").validate(TEST_KINDS).unwrap();
}

#[test]
fn shards_zero_built_in_code_is_rejected_too() {
    let config = EngineConfig {
        placement: PlacementConfig { shards: ShardCount::Count(0), ..PlacementConfig::default() },
        ..EngineConfig::default()
    };
    let err = config.validate(TEST_KINDS).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("placement.shards"));
    assert_eq!((err.file.as_str(), err.line), ("<config>", None));
    assert!(!err.hint.is_empty());
    assert!(err.to_string().starts_with("<config>: key `placement.shards`: "), "{err}");
}

#[test]
fn empty_cpus_is_rejected() {
    let err = validate_err("[placement]\noversubscribe = false\ncpus = []\n");
    check(&err, 3, "placement.cpus");
    assert_hint(&err, "at least one CPU");
}

#[test]
fn cpus_and_numeric_shards_conflict() {
    let err = validate_err("[placement]\ncpus = [0, 1]\nshards = 2\n");
    check(&err, 3, "placement.shards");
    assert_hint(&err, "remove `shards`");
    parse("[placement]\ncpus = [0, 1]\nshards = \"auto\"\n").validate(TEST_KINDS).unwrap();
}

#[test]
fn cpus_must_be_distinct_and_not_reserved() {
    let err = validate_err("[placement]\ncpus = [0, 1, 1]\n");
    check(&err, 2, "placement.cpus");
    let err = validate_err("[placement]\nreserve_cpus = [1]\ncpus = [0, 1]\n");
    check(&err, 3, "placement.cpus");
}

#[test]
fn unknown_agent_kind_lists_the_known_kinds() {
    let text = "[[agents]]\nkind = \"echo\"\n\n[[agents]]\nname = \"x\"\nkind = \"ehco\"\n";
    let err = validate_err(text);
    check(&err, 6, "agents[1].kind");
    assert_hint(&err, "\"echo\", \"counter\", \"kv\"");
}

#[test]
fn missing_agent_kind_points_at_its_entry() {
    let err = validate_err("[[agents]]\nkind = \"kv\"\n[[agents]]\ncount = 2\n");
    check(&err, 3, "agents[1].kind");
    assert!(err.message.contains("missing"), "{err}");
}

#[test]
fn agent_count_zero_is_rejected() {
    let err = validate_err("[[agents]]\nkind = \"counter\"\ncount = 0\n");
    check(&err, 3, "agents[0].count");
    assert_hint(&err, "at least 1");
}

#[test]
fn agent_names_are_unique_and_shards_in_range() {
    let text = "[[agents]]\nkind = \"kv\"\nname = \"a\"\n[[agents]]\nkind = \"echo\"\nname = \"a\"\n";
    check(&validate_err(text), 6, "agents[1].name");

    let text = "[placement]\nshards = 2\n[[agents]]\nkind = \"kv\"\nshard = 2\n";
    let err = validate_err(text);
    check(&err, 5, "agents[0].shard");
    assert_hint(&err, "0 to 1");
}

#[test]
fn default_agents_fail_against_other_kinds_without_a_line() {
    // The agents come from the defaults, not the text: the key is known, the line is not.
    let err = parse("[mesh]\nbatch = 8\n").validate(&["echo"]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("agents[1].kind"));
    assert_eq!(err.line, None);
    assert_hint(&err, "\"echo\"");
    assert!(err.to_string().starts_with("test.toml: key `agents[1].kind`: "), "{err}");
}

#[test]
fn load_zeroes_are_rejected() {
    let err = validate_err("[load]\nagents = 0\n");
    check(&err, 2, "load.agents");
    let err = validate_err("[load]\nscenario = \"ask\"\nrate_per_s = 0\n");
    check(&err, 3, "load.rate_per_s");
    assert_hint(&err, "remove `rate_per_s`");
    let err = validate_err("[load]\nduration_s = 0\n");
    check(&err, 2, "load.duration_s");
}

#[test]
fn validation_locates_dotted_and_inline_keys() {
    let err = validate_err("mesh.ring_capacity = 3\n");
    check(&err, 1, "mesh.ring_capacity");
    // Inside an inline table the key's own line is its table's line.
    let err = validate_err("\nmesh = { ring_capacity = 3 }\n");
    check(&err, 2, "mesh.ring_capacity");
}

// ---- Display ----

#[test]
fn display_is_one_line_and_drops_unknown_parts() {
    let mut err = ConfigError {
        file: "a.toml".into(),
        line: Some(7),
        key: Some("mesh.batch".into()),
        message: "batch = 0 would never move a message".into(),
        hint: "use a batch of at least 1, such as 64".into(),
    };
    assert_eq!(
        err.to_string(),
        "a.toml:7: key `mesh.batch`: batch = 0 would never move a message \
         (hint: use a batch of at least 1, such as 64)"
    );
    err.line = None;
    assert!(err.to_string().starts_with("a.toml: key `mesh.batch`: batch"));
    err.key = None;
    assert!(err.to_string().starts_with("a.toml: batch = 0"));
    err.message = "two\nlines".into();
    assert_eq!(err.to_string(), "a.toml: two; lines (hint: use a batch of at least 1, such as 64)");
}

#[test]
fn coord_section_has_its_defaults_and_is_checked() {
    assert_eq!(
        EngineConfig::default().coord,
        CoordConfig {
            weight_match: 50,
            weight_load: 30,
            weight_reputation: 20,
            discovery_timeout_ms: 100,
            bid_window_ms: 15,
            reputation_alpha_pct: 20
        }
    );
    let err = validate_err("[coord]\nweight_match = 0\nweight_load = 0\nweight_reputation = 0\n");
    check(&err, 2, "coord.weight_match");
    let err = validate_err("[coord]\nreputation_alpha_pct = 0\n");
    check(&err, 2, "coord.reputation_alpha_pct");
    let err = validate_err("[coord]\ndiscovery_timeout_ms = 0\n");
    check(&err, 2, "coord.discovery_timeout_ms");
}
