//! Unit tests of the log: records round-trip, replay rebuilds the store, torn tails and
//! corruption are told apart, a compaction's log replays to the store it was taken from, and
//! the writer gives buffers back and notifies the shard under `everysec` only when it waits.

use super::record::{self, Frame, Record};
use super::*;
use crate::kv::{ExpireCondition, Hash, KvStore, SetCondition, SetExpiry, Stored};
use bytes::Bytes;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn records_round_trip() {
    let mut h = Hash::new();
    h.insert(b("f"), b("1"));
    h.insert(b("g"), b("2"));
    let records = vec![
        Record::Put { key: b("k"), value: Stored::Str(b("v").into()), expires_at: None },
        Record::Put { key: b("h"), value: Stored::Hash(Box::new(h)), expires_at: Some(1_700_000_000_000) },
        Record::Del(b("k")),
        Record::Flush,
    ];
    let mut log = Vec::new();
    for r in &records {
        match r {
            Record::Put { key, value, expires_at } => record::encode_put(&mut log, key, value, *expires_at),
            Record::Del(key) => record::encode_del(&mut log, key),
            Record::Flush => record::encode_flush(&mut log),
        }
    }
    let (mut pos, mut decoded) = (0, Vec::new());
    while let Frame::Whole(payload, next) = record::frame_at(&log, pos) {
        decoded.push(record::decode(&Bytes::copy_from_slice(payload)).unwrap());
        pos = next;
    }
    assert_eq!(decoded, records);
    assert_eq!(record::frame_at(&log, pos), Frame::End);
}

/// An empty scratch directory for test `name` (also used by `ring_tests`).
pub(super) fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nexus-persist-unit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `aof`, `always`, in `dir` (also used by `ring_tests`).
pub(super) fn config(dir: &std::path::Path) -> nexus_engine::config::PersistenceConfig {
    nexus_engine::config::PersistenceConfig {
        mode: nexus_engine::config::PersistenceMode::Aof,
        fsync: nexus_engine::config::FsyncPolicy::Always,
        dir: dir.display().to_string(),
        rewrite_min_size: 1 << 20,
        rewrite_growth: 2,
    }
}

fn set(kv: &mut KvStore, k: &str, v: &str, expiry: SetExpiry, now: u64) {
    kv.set(b(k), b(v), (SetCondition::Always, expiry), false, now).unwrap();
}

/// Hands everything buffered to the writer and waits until it is durable.
fn settle(kv: &mut KvStore, durability: &Durability) {
    let lsn = kv.lsn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while kv.journal_mut().unwrap().flush() || durability.durable_lsn() < lsn {
        assert!(std::time::Instant::now() < deadline, "the writer never caught up");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A store replayed from `dir`'s shard 0 log at engine time `now`.
/// Opens shard 0's log in `dir` at engine time `now`: its store and durability handle.
fn open(dir: &std::path::Path, now: u64) -> (KvStore, std::rc::Rc<Durability>) {
    let log = open_shard(&config(dir), 0, (now, crate::kv::wall_now_ms()), WriterKind::Thread).unwrap();
    (log.kv, log.durability)
}

/// Opens shard 0's log in `dir` at engine time 0 under `fsync`, with a writer of `kind`.
fn open_with(dir: &std::path::Path, fsync: nexus_engine::config::FsyncPolicy, kind: WriterKind) -> super::ShardLog {
    let cfg = nexus_engine::config::PersistenceConfig { fsync, ..config(dir) };
    open_shard(&cfg, 0, (0, crate::kv::wall_now_ms()), kind).unwrap()
}

/// Counts the notices `durability`'s writer sends the shard.
fn count_notices(durability: &Durability) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    let notices = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = notices.clone();
    durability.set_notify(Box::new(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }));
    notices
}

/// Waits (up to 10 s) until this process holds no descriptor on a deleted file in `dir`: the
/// log a compaction replaced is closed (off the writing thread, `writer::close_elsewhere`),
/// not leaked. Also used by `ring_tests`.
pub(super) fn assert_replaced_log_closed(dir: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let open_deleted = || {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir) && target.to_string_lossy().ends_with(" (deleted)"))
            .count()
    };
    while open_deleted() > 0 {
        assert!(std::time::Instant::now() < deadline, "a replaced log in {} is still open", dir.display());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The bytes of shard 0's log in `dir` up to its last record (without the zeros ahead).
fn records_len(dir: &std::path::Path) -> u64 {
    let data = std::fs::read(log_path(dir, 0)).unwrap();
    data.iter().rposition(|&b| b != 0).map_or(0, |last| last as u64 + 1)
}

fn reopen(dir: &std::path::Path, now: u64) -> (KvStore, Replayed) {
    let mut kv = KvStore::new();
    let r = replay_file(&log_path(dir, 0), &mut kv, (now, crate::kv::wall_now_ms())).unwrap();
    (kv, r)
}

/// The writer thread writes zeros ahead of its records (a record write then overwrites blocks,
/// and its sync changes no file size); replay cuts them off, and the next writer appends right
/// after the last record.
#[test]
fn the_writer_thread_writes_zeros_ahead_and_appends_after_a_restart() {
    let dir = scratch("zeros-ahead");
    check_dir(&dir, 1).unwrap();
    let (mut kv, durability) = open(&dir, 0);
    set(&mut kv, "a", "1", SetExpiry::Clear, 0);
    settle(&mut kv, &durability);
    assert_eq!(std::fs::metadata(log_path(&dir, 0)).unwrap().len(), super::ring::PREALLOCATE, "a chunk of zeros ahead");
    drop(kv);
    let (mut kv, durability) = open(&dir, 0);
    assert_eq!(kv.get(b"a", 0), Ok(Some(b("1"))));
    set(&mut kv, "b", "2", SetExpiry::Clear, 0);
    kv.hset(b("h"), vec![(b("f"), b(&"v".repeat(1 << 20)))], 0).unwrap();
    settle(&mut kv, &durability);
    drop(kv);
    let (mut back, r) = reopen(&dir, 0);
    assert_eq!((r.records, r.truncated), (3, 0));
    assert!(r.padding > 0 && (r.bytes + r.padding) % super::ring::PREALLOCATE == 0, "zeros up to a whole chunk: {r:?}");
    assert_eq!((back.get(b"a", 0), back.get(b"b", 0)), (Ok(Some(b("1"))), Ok(Some(b("2")))));
    assert_eq!(back.hgetall(b"h", 0).unwrap(), vec![(b("f"), b(&"v".repeat(1 << 20)))]);
}

#[test]
fn replay_rebuilds_strings_hashes_counters_and_deadlines() {
    let dir = scratch("replay");
    check_dir(&dir, 1).unwrap();
    let (mut kv, durability) = open(&dir, 1_000);
    set(&mut kv, "a", "1", SetExpiry::Clear, 1_000);
    set(&mut kv, "ttl", "x", SetExpiry::After(60_000), 1_000);
    set(&mut kv, "gone", "x", SetExpiry::After(1), 1_000);
    kv.hset(b("h"), vec![(b("f"), b("1")), (b("g"), b("2"))], 1_000).unwrap();
    kv.hdel(b"h", &[b("f")], 1_000).unwrap();
    kv.incr_by(b("n"), 5, 1_000).unwrap();
    kv.incr_by(b("n"), 2, 1_000).unwrap();
    kv.append(b("a"), b"23", 1_000).unwrap();
    set(&mut kv, "d", "x", SetExpiry::Clear, 1_000);
    kv.del(b"d", 1_000);
    kv.expire(b"a", 30_000, ExpireCondition::Always, 1_000);
    kv.persist(b"a", 1_000);
    assert!(kv.lsn() >= 10);
    settle(&mut kv, &durability);
    std::thread::sleep(std::time::Duration::from_millis(5));
    // Another process: its engine clock starts elsewhere (here at 5).
    let (mut back, r) = reopen(&dir, 5);
    assert_eq!(r.records, kv.lsn());
    assert_eq!(back.get(b"a", 5), Ok(Some(b("123"))));
    assert_eq!(back.ttl(b"a", 5), crate::kv::Ttl::Forever);
    assert_eq!(back.get(b"n", 5), Ok(Some(b("7"))));
    assert_eq!(back.hgetall(b"h", 5).unwrap(), vec![(b("g"), b("2"))]);
    assert!(!back.exists(b"d", 5) && !back.exists(b"gone", 5), "deleted and expired keys stay gone");
    match back.ttl(b"ttl", 5) {
        crate::kv::Ttl::Millis(ms) => assert!((55_000..=60_000).contains(&ms), "{ms} ms left"),
        other => panic!("the deadline was lost: {other:?}"),
    }
    kv.clear();
    settle(&mut kv, &durability);
    assert_eq!(reopen(&dir, 5).0.len(5), 0, "FLUSHALL is logged");
}

#[test]
fn a_torn_tail_is_cut_off_and_corruption_in_the_middle_refused() {
    let dir = scratch("torn");
    let path = log_path(&dir, 0);
    let mut log = Vec::new();
    for i in 0..10 {
        record::encode_put_str(&mut log, format!("k{i}").as_bytes(), b"v", None);
    }
    let whole = log.len();
    // A write cut short: half a frame at the end.
    let mut torn = log.clone();
    record::encode_put_str(&mut torn, b"k10", b"v", None);
    torn.truncate(whole + 7);
    std::fs::write(&path, &torn).unwrap();
    let (mut kv, r) = reopen(&dir, 0);
    assert_eq!((r.records, r.bytes, r.truncated), (10, whole as u64, 7));
    assert_eq!(kv.len(0), 10);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), whole as u64, "the file was truncated");
    // A whole last frame with a bad checksum: torn too, never applied.
    let mut bad_last = log.clone();
    record::encode_put_str(&mut bad_last, b"k10", b"v", None);
    let n = bad_last.len();
    bad_last[n - 1] ^= 0xff;
    std::fs::write(&path, &bad_last).unwrap();
    let (mut kv, r) = reopen(&dir, 0);
    assert_eq!((r.records, kv.exists(b"k10", 0)), (10, false));
    // A bad byte in the middle, in a length field or in a payload: refused, naming the offset.
    for at in [whole / 2, whole / 2 + 12] {
        let mut corrupt = log.clone();
        corrupt[at] ^= 0xff;
        std::fs::write(&path, &corrupt).unwrap();
        let err = replay_file(&path, &mut KvStore::new(), (0, 0)).unwrap_err();
        assert!(matches!(err, PersistError::Corrupt { offset: 140, .. }), "{err}");
        assert!(err.to_string().contains("refusing to start"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), corrupt, "a corrupt log is left as it is");
    }
}

#[test]
fn a_directory_of_another_shard_count_is_refused() {
    let dir = scratch("shards");
    check_dir(&dir, 2).unwrap();
    check_dir(&dir, 2).unwrap();
    let err = check_dir(&dir, 3).unwrap_err();
    assert!(err.to_string().contains("holds the logs of 2 shards but this server runs 3"), "{err}");
    let bare = scratch("shards-bare");
    std::fs::write(log_path(&bare, 3), b"").unwrap();
    assert!(matches!(check_dir(&bare, 2), Err(PersistError::ShardCount { found: 4, .. })));
}

#[test]
fn compaction_while_writing_replays_to_the_store() {
    compaction_while_writing_replays(WriterKind::Thread, "rewrite");
}

/// The writer the shard drives (threads, `always`): the dump passes `REWRITE_SYNC_BYTES`, so
/// the new log is synced on the way as well as at the end.
#[test]
fn compaction_on_the_shards_thread_replays_to_the_store() {
    compaction_while_writing_replays(WriterKind::Shard, "rewrite-shard");
}

fn compaction_while_writing_replays(kind: WriterKind, name: &str) {
    let dir = scratch(name);
    let log = open_with(&dir, nexus_engine::config::FsyncPolicy::Always, kind);
    let (mut kv, durability) = (log.kv, log.durability);
    for round in 0..3 {
        for i in 0..3000 {
            set(&mut kv, &format!("k{i}"), &format!("v{round}-{i}"), SetExpiry::Clear, 0);
        }
    }
    let large = "v".repeat(super::writer::REWRITE_SYNC_BYTES as usize / 2);
    for i in 0..3 {
        set(&mut kv, &format!("large{i}"), &large, SetExpiry::Clear, 0);
    }
    kv.hset(b("h"), vec![(b("f"), b("1"))], 0).unwrap();
    set(&mut kv, "ttl", "t", SetExpiry::After(600_000), 0);
    settle(&mut kv, &durability);
    let before = records_len(&dir);
    kv.journal_mut().unwrap().start_rewrite();
    let mut keys = Vec::new();
    kv.rewrite_keys(&mut keys);
    let mut step = 0;
    while !keys.is_empty() {
        let from = keys.len().saturating_sub(500);
        kv.dump_keys(&keys[from..], 0);
        keys.truncate(from);
        // Writes between the steps: to keys dumped already, not yet, and new ones.
        set(&mut kv, &format!("k{}", step * 7), "changed", SetExpiry::Clear, 0);
        kv.del(format!("k{}", 2999 - step).as_bytes(), 0);
        set(&mut kv, &format!("new{step}"), "n", SetExpiry::Clear, 0);
        kv.hset(b("h"), vec![(Bytes::from(format!("f{step}")), b("x"))], 0).unwrap();
        kv.journal_mut().unwrap().flush();
        step += 1;
    }
    kv.journal_mut().unwrap().finish_rewrite();
    set(&mut kv, "after", "a", SetExpiry::Clear, 0);
    settle(&mut kv, &durability);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while durability_rewrites(&durability) == 0 {
        assert!(std::time::Instant::now() < deadline, "the rewrite never finished");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let after = records_len(&dir);
    assert!(after < before, "compacted: {after} bytes after, {before} before");
    assert_replaced_log_closed(&dir);
    let (back, _) = reopen(&dir, 0);
    let strip = |s: Vec<(Bytes, Stored, Option<u64>)>| -> Vec<(Bytes, Stored, bool)> {
        s.into_iter().map(|(k, v, t)| (k, v, t.is_some())).collect()
    };
    assert_eq!(strip(back.snapshot(0)), strip(kv.snapshot(0)));
    assert!(!dir.join("shard-0.aof.rewrite").exists());
}

fn durability_rewrites(d: &Durability) -> u64 {
    d.rewrites()
}

/// Under `always` on threads the shard writes and syncs itself: a connection's commit makes
/// every buffered record durable before it returns, with no thread to wait for; the writer
/// thread's journal leaves that to its thread.
#[test]
fn the_writer_on_the_shards_thread_commits_before_the_call_returns() {
    let dir = scratch("shard-writer");
    let log = open_with(&dir, nexus_engine::config::FsyncPolicy::Always, WriterKind::Shard);
    let (mut kv, durability) = (log.kv, log.durability);
    set(&mut kv, "a", "1", SetExpiry::Clear, 0);
    set(&mut kv, "b", "2", SetExpiry::Clear, 0);
    let journal = kv.journal_mut().unwrap();
    assert!(journal.commits_on_shard());
    assert_eq!((journal.lsn(), durability.durable_lsn()), (2, 0), "buffered until the commit");
    journal.commit_for_answers();
    assert_eq!(durability.durable_lsn(), 2, "durable when the commit returns");
    assert!(!journal.pending() && journal.writer_idle());
    kv.del(b"a", 0);
    assert!(!kv.journal_mut().unwrap().flush(), "a flush commits at once");
    assert_eq!(durability.durable_lsn(), 3);
    let (mut back, r) = reopen(&dir, 0);
    assert_eq!(r.records, 3);
    assert_eq!((back.get(b"a", 0), back.get(b"b", 0)), (Ok(None), Ok(Some(b("2")))));

    let threaded = scratch("thread-writer-commit");
    let (mut kv, durability) = open(&threaded, 0);
    set(&mut kv, "a", "1", SetExpiry::Clear, 0);
    kv.journal_mut().unwrap().commit_for_answers();
    assert!(!kv.journal_mut().unwrap().commits_on_shard());
    assert!(kv.journal_mut().unwrap().pending(), "the thread's journal hands over in flush, not here");
    settle(&mut kv, &durability);
}

/// A shard that syncs its log itself gives its partition no writer notices, so a commit that
/// finds a compaction due notifies it (the partition's turn starts compactions): once, not
/// again by the hand-over of the start, and again for the next compaction.
#[test]
fn the_writer_on_the_shards_thread_notifies_once_when_a_compaction_is_due() {
    let dir = scratch("shard-writer-nudge");
    let log = open_with(&dir, nexus_engine::config::FsyncPolicy::Always, WriterKind::Shard);
    let (mut kv, durability) = (log.kv, log.durability);
    let notices = count_notices(&durability);
    let count = || notices.load(std::sync::atomic::Ordering::SeqCst);
    let large = "v".repeat(600 << 10);
    let grow = |kv: &mut KvStore| {
        for i in 0..2 {
            set(kv, &format!("k{i}"), &large, SetExpiry::Clear, 0);
            kv.journal_mut().unwrap().commit_for_answers();
        }
    };
    grow(&mut kv);
    assert_eq!(count(), 1, "due after 1.2 MiB of records");
    set(&mut kv, "small", "1", SetExpiry::Clear, 0);
    kv.journal_mut().unwrap().commit_for_answers();
    assert_eq!(count(), 1, "asked once");
    // A record still buffered when the compaction starts: the start hands it over first.
    set(&mut kv, "pending", "1", SetExpiry::Clear, 0);
    kv.journal_mut().unwrap().start_rewrite();
    assert_eq!(count(), 1, "the start's own hand-over does not ask again");
    let mut keys = Vec::new();
    kv.rewrite_keys(&mut keys);
    kv.dump_keys(&keys, 0);
    kv.journal_mut().unwrap().finish_rewrite();
    grow(&mut kv);
    grow(&mut kv);
    assert_eq!(count(), 2, "the next compaction is asked for");
}

#[test]
fn waiting_for_durability_ends_when_the_writer_covers_the_lsn_or_fails() {
    let shared = std::sync::Arc::new(LogShared::default());
    let durability = Durability::new(shared.clone());
    let mut wait = std::pin::pin!(durability.wait_durable(3));
    assert_eq!(futures_lite::future::block_on(futures_lite::future::poll_once(wait.as_mut())), None);
    shared.durable.store(2, std::sync::atomic::Ordering::Release);
    durability.wake();
    assert_eq!(futures_lite::future::block_on(futures_lite::future::poll_once(wait.as_mut())), None);
    shared.durable.store(3, std::sync::atomic::Ordering::Release);
    durability.wake();
    assert_eq!(futures_lite::future::block_on(futures_lite::future::poll_once(wait.as_mut())), Some(Ok(())));
    let mut later = std::pin::pin!(durability.wait_durable(10));
    shared.failed.store(true, std::sync::atomic::Ordering::Release);
    assert_eq!(futures_lite::future::block_on(later.as_mut()), Err(LogFailed), "a failed log ends the wait");
}

#[test]
fn a_replayed_store_is_counted_and_its_evictions_are_logged() {
    let dir = scratch("evict");
    check_dir(&dir, 1).unwrap();
    let (mut kv, durability) = open(&dir, 1_000);
    for i in 0..100 {
        set(&mut kv, &format!("k{i}"), "0123456789", SetExpiry::Clear, 1_000);
    }
    settle(&mut kv, &durability);
    let used = kv.used_memory();
    // The replayed store counts what it loaded, so a limit applies to it at once.
    let (back, _) = reopen(&dir, 5);
    assert_eq!(back.used_memory(), used);
    assert_eq!(back.recount(), used);
    let limit = crate::kv::MemoryLimit::new(used / 2, nexus_engine::config::EvictionPolicy::AllKeysLru, 1);
    let mut kv = kv.with_memory_limit(limit);
    kv.make_room(2_000).unwrap();
    let evicted = kv.evicted_keys();
    assert!(evicted >= 50, "evicted only {evicted} keys");
    settle(&mut kv, &durability);
    // An evicted key stays evicted after a restart.
    let (mut again, _) = reopen(&dir, 5);
    assert_eq!(again.len(5) as u64, 100 - evicted);
    drop(kv);
}

#[test]
fn under_everysec_buffers_come_back_and_the_shard_is_notified_only_when_it_waits() {
    use std::sync::atomic::Ordering;
    let dir = scratch("notices");
    let mut log = open_with(&dir, nexus_engine::config::FsyncPolicy::EverySec, WriterKind::Thread);
    let notices = count_notices(&log.durability);
    let shared = log.kv.journal_mut().unwrap().shared().clone();
    let written = |kv: &KvStore| shared.written.load(Ordering::Acquire) == kv.lsn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);

    // Handed over to an idle writer: written, its buffer given back, no notice.
    set(&mut log.kv, "a", "1", SetExpiry::Clear, 0);
    assert!(!log.kv.journal_mut().unwrap().flush(), "an idle writer takes the buffer");
    while !written(&log.kv) || !shared.idle.load(Ordering::Acquire) {
        assert!(std::time::Instant::now() < deadline, "the writer never wrote");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(shared.spare.lock().unwrap().len(), 1, "the written buffer came back");
    assert_eq!(notices.load(Ordering::SeqCst), 0, "nobody waited: no notice");

    // Records held back while the writer is busy: it notifies once it is free.
    let mut held = false;
    for i in 0..1000 {
        set(&mut log.kv, "b", &i.to_string(), SetExpiry::Clear, 0);
        if log.kv.journal_mut().unwrap().flush() {
            held = true;
            break;
        }
    }
    assert!(held, "the writer, paced, was never busy");
    while notices.load(Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "the writer never notified the waiting shard");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(!log.kv.journal_mut().unwrap().flush(), "after the notice the writer takes the buffer");
    drop(log);
    let (kv, _) = reopen(&dir, 0);
    assert_eq!(kv.snapshot(0).len(), 2);
}

#[test]
fn a_rewrite_hands_its_buffers_back_for_the_next_records() {
    use std::sync::atomic::Ordering;
    let dir = scratch("rewrite-spares");
    let mut log = open_with(&dir, nexus_engine::config::FsyncPolicy::EverySec, WriterKind::Thread);
    let shared = log.kv.journal_mut().unwrap().shared().clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    set(&mut log.kv, "a", "1", SetExpiry::Clear, 0);
    log.kv.journal_mut().unwrap().start_rewrite();
    let mut keys = Vec::new();
    log.kv.rewrite_keys(&mut keys);
    log.kv.dump_keys(&keys, 0);
    set(&mut log.kv, "b", "2", SetExpiry::Clear, 0);
    while log.kv.journal_mut().unwrap().flush() {
        assert!(std::time::Instant::now() < deadline, "the writer never took the records");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    while shared.written.load(Ordering::Acquire) != log.kv.lsn() || !shared.idle.load(Ordering::Acquire) {
        assert!(std::time::Instant::now() < deadline, "the writer never wrote");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // Both the log's records and the new log's come back: a compaction's dump does not
    // allocate (and fault in) a fresh buffer for every step.
    let spares = shared.spare.lock().unwrap().iter().filter(|b| b.capacity() > 0).count();
    assert!(spares >= 2, "{spares} buffers came back");
}
