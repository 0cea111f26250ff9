//! Unit tests of the io_uring log writer (`ring`), run on a glommio executor: records written
//! in batches of every size across block boundaries replay to the same store, before the log
//! is closed (the crash image, padded with zeros) and after (truncated to its records); records
//! after the close go through the plain fallback; replay reads trailing zeros as padding; a
//! compacted log zero-fills ahead with the first log's zeros, keeps them when it becomes the log
//! (the next write overwrites, not extends) and stays O_DSYNC under `always`; a batch larger
//! than one write goes out as several.

use super::record::{self, Frame};
use super::tests::scratch;
use super::*;
use crate::kv::{KvStore, SetCondition, SetExpiry};
use bytes::Bytes;
use nexus_engine::config::{FsyncPolicy, PersistenceConfig};
use std::path::Path;
use std::time::{Duration, Instant};

/// Opens shard 0's log in `dir` with the io_uring writer (on the calling glommio executor).
fn open_ring(dir: &Path, fsync: FsyncPolicy) -> (KvStore, std::rc::Rc<Durability>, std::rc::Rc<RingInbox>) {
    let config = PersistenceConfig { fsync, ..super::tests::config(dir) };
    let log = open_shard(&config, 0, (0, crate::kv::wall_now_ms()), WriterKind::Ring).unwrap();
    (log.kv, log.durability, log.ring.unwrap())
}

/// Runs `test` on a glommio executor set up as the engine sets up its shards.
fn on_glommio<F: std::future::Future<Output = ()> + 'static>(test: impl FnOnce() -> F + Send + 'static) {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(nexus_engine::engine::GLOMMIO_IO_MEMORY_BYTES)
        .ring_depth(64)
        .spawn(test)
        .unwrap()
        .join()
        .unwrap();
}

/// The key and value of write `i`: values from 0 to 1,300 bytes, so batches end anywhere in a
/// block and some span several.
fn entry(i: usize) -> (Bytes, Bytes) {
    (Bytes::from(format!("key-{i}")), Bytes::from(vec![b'a' + (i % 26) as u8; (i * 37) % 1300]))
}

fn write(kv: &mut KvStore, i: usize) {
    let (k, v) = entry(i);
    kv.set(k, v, (SetCondition::Always, SetExpiry::Clear), false, 0).unwrap();
}

/// Hands the journal's records over and waits (on the executor) until they are durable.
async fn settle(kv: &mut KvStore, durability: &Durability) {
    let lsn = kv.lsn();
    kv.journal_mut().unwrap().flush();
    let deadline = Instant::now() + Duration::from_secs(10);
    while durability.durable_lsn() < lsn {
        assert!(Instant::now() < deadline, "the io_uring writer never caught up");
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

/// Writes 0..20, then compacts the log as the partition does (start, list and dump every key,
/// finish) and waits until the compacted log has replaced it.
async fn write_and_compact(kv: &mut KvStore, durability: &Durability) {
    for i in 0..20 {
        write(kv, i);
    }
    settle(kv, durability).await;
    kv.journal_mut().unwrap().start_rewrite();
    let mut keys = Vec::new();
    kv.rewrite_keys(&mut keys);
    kv.dump_keys(&keys, 0);
    kv.journal_mut().unwrap().finish_rewrite();
    settle(kv, durability).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while durability.rewrites() == 0 {
        assert!(Instant::now() < deadline, "the compaction never finished");
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

/// Sized write `n`: key `sized-{n}` holds `size` bytes of one letter per `n`.
fn sized(n: usize, size: usize) -> (Bytes, Vec<u8>) {
    (Bytes::from(format!("sized-{n}")), vec![b'A' + n as u8; size])
}

fn write_sized(kv: &mut KvStore, n: usize, size: usize) {
    let (key, value) = sized(n, size);
    kv.set(key, Bytes::from(value), (SetCondition::Always, SetExpiry::Clear), false, 0).unwrap();
}

/// Replays shard 0's log in `dir`: `records` records, and every sized write of `sizes` in it.
fn assert_replays_sized(dir: &Path, records: u64, sizes: &[usize]) {
    let (mut kv, replayed) = replay(std::fs::read(log_path(dir, 0)).unwrap());
    assert_eq!(replayed.records, records);
    for (n, size) in sizes.iter().enumerate() {
        let (key, value) = sized(n, *size);
        assert_eq!(kv.get(&key, 0).unwrap().unwrap(), value, "sized write {n}");
    }
}

fn replay(bytes: Vec<u8>) -> (KvStore, Replayed) {
    let mut kv = KvStore::new();
    let replayed = replay_bytes(&Bytes::from(bytes), &mut kv, (0, crate::kv::wall_now_ms())).unwrap();
    (kv, replayed)
}

fn assert_holds_writes(kv: &mut KvStore, writes: std::ops::Range<usize>) {
    assert_eq!(kv.len(0), writes.len());
    for i in writes {
        let (k, v) = entry(i);
        assert_eq!(kv.get(&k, 0).unwrap(), Some(v), "write {i}");
    }
}

#[test]
fn batches_of_every_size_replay_before_and_after_the_close() {
    let dir = scratch("batches");
    check_dir(&dir, 1).unwrap();
    on_glommio(move || async move {
        let (mut kv, durability, ring) = open_ring(&dir, FsyncPolicy::Always);
        let mut i = 0;
        for batch in [1, 2, 3, 5, 8, 13, 21, 34, 55, 89] {
            for _ in 0..batch {
                write(&mut kv, i);
                i += 1;
            }
            settle(&mut kv, &durability).await;
        }
        // What a crash now leaves: the records, then zeros to the block's end.
        let image = std::fs::read(log_path(&dir, 0)).unwrap();
        let (mut crashed, replayed) = replay(image.clone());
        assert_eq!((replayed.records, replayed.truncated), (i as u64, 0));
        assert_eq!(replayed.bytes + replayed.padding, image.len() as u64);
        assert_eq!(image.len() % 512, 0, "the file ends at a block boundary while open");
        assert_holds_writes(&mut crashed, 0..i);

        write(&mut kv, i);
        close_ring(ring, || kv.journal_mut().unwrap().flush_now()).await;
        assert!(durability.durable_lsn() >= kv.lsn(), "the close syncs what it was handed");
        let closed = std::fs::read(log_path(&dir, 0)).unwrap();
        let (mut reopened, replayed) = replay(closed.clone());
        assert_eq!((replayed.padding, replayed.bytes), (0, closed.len() as u64), "the close cuts the padding");
        assert_holds_writes(&mut reopened, 0..i + 1);

        // After the close, records go through the plain fallback, appended and synced at once.
        write(&mut kv, i + 1);
        kv.journal_mut().unwrap().flush_now();
        assert!(durability.durable_lsn() >= kv.lsn());
        let (mut after, _) = replay(std::fs::read(log_path(&dir, 0)).unwrap());
        assert_holds_writes(&mut after, 0..i + 2);
    });
}

#[test]
fn flushes_before_the_task_runs_merge_and_writes_of_every_size_reuse_one_buffer() {
    let dir = scratch("merge");
    check_dir(&dir, 1).unwrap();
    on_glommio(move || async move {
        let (mut kv, durability, ring) = open_ring(&dir, FsyncPolicy::No);
        settle(&mut kv, &durability).await;
        // The task cannot run between these flushes (nothing here yields): one queued append.
        for i in 0..50 {
            write(&mut kv, i);
            kv.journal_mut().unwrap().flush();
        }
        assert_eq!(ring.queued(), 1, "fifty flushes queued one append");
        settle(&mut kv, &durability).await;
        // Batches larger than one write (3 MiB: four writes, the record across them, and
        // several zero-fill chunks), between the least buffer and one write, and small, in
        // turn: each write reuses or replaces the buffer.
        let sizes = [3 << 20, 10, 300 << 10, 1, 70 << 10, 5000];
        for (n, size) in sizes.iter().enumerate() {
            write_sized(&mut kv, n, *size);
            settle(&mut kv, &durability).await;
        }
        close_ring(ring, || {}).await;
        drop(kv);
        assert_replays_sized(&dir, 50 + sizes.len() as u64, &sizes);
    });
}

/// Any range of the parts' concatenation is copied whole, wherever it starts and ends (a
/// large batch goes out as several writes, each a range of it).
#[test]
fn a_range_of_the_parts_is_copied_across_their_bounds() {
    let parts: Vec<Vec<u8>> = vec![(0..10).collect(), Vec::new(), (10..13).collect(), (13..40).collect()];
    let whole: Vec<u8> = parts.concat();
    for from in 0..whole.len() {
        for len in 0..=whole.len() - from {
            let mut out = vec![0xFF; len];
            super::ring::copy_range(&parts, from, &mut out);
            assert_eq!(out, &whole[from..from + len], "bytes {from}..{}", from + len);
        }
    }
}

#[test]
fn a_flush_that_does_not_fit_the_queued_append_queues_another_and_all_are_written() {
    let dir = scratch("no-regrow");
    check_dir(&dir, 1).unwrap();
    on_glommio(move || async move {
        let (mut kv, durability, ring) = open_ring(&dir, FsyncPolicy::No);
        settle(&mut kv, &durability).await;
        // Nothing here yields, so the task takes nothing between the flushes. The first queues
        // the journal's buffer (64 KiB); the second does not fit beside it and is queued apart
        // instead of growing it; the small ones fit into the second.
        let sizes = [40 << 10, 40 << 10, 10, 20];
        for (n, size) in sizes.iter().enumerate() {
            write_sized(&mut kv, n, *size);
            kv.journal_mut().unwrap().flush();
        }
        assert_eq!(ring.queued(), 2, "two appends queued for four flushes");
        settle(&mut kv, &durability).await;
        close_ring(ring, || {}).await;
        drop(kv);
        assert_replays_sized(&dir, sizes.len() as u64, &sizes);
    });
}

#[test]
fn everysec_syncs_within_a_second_without_more_writes() {
    let dir = scratch("everysec");
    check_dir(&dir, 1).unwrap();
    on_glommio(move || async move {
        let (mut kv, durability, ring) = open_ring(&dir, FsyncPolicy::EverySec);
        // The first batch may be synced at once (a second has passed since the task started).
        glommio::timer::sleep(Duration::from_millis(50)).await;
        write(&mut kv, 0);
        settle(&mut kv, &durability).await;
        write(&mut kv, 1);
        kv.journal_mut().unwrap().flush();
        let handed = Instant::now();
        while durability.durable_lsn() < kv.lsn() {
            assert!(handed.elapsed() < Duration::from_secs(3), "everysec never synced the last write");
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        close_ring(ring, || {}).await;
        drop(kv);
        let (mut kv, _) = replay(std::fs::read(log_path(&dir, 0)).unwrap());
        assert_holds_writes(&mut kv, 0..2);
    });
}

#[test]
fn zeros_after_the_last_record_are_padding_not_a_torn_tail() {
    let mut log = Vec::new();
    record::encode_put_str(&mut log, b"k", b"v\0\0", None);
    let records = log.len() as u64;
    assert_eq!(record::frame_at(&log, log.len()), Frame::End);
    log.extend_from_slice(&[0; 300]);
    assert_eq!(record::frame_at(&log, records as usize), Frame::Padding);
    let (mut kv, replayed) = replay(log.clone());
    assert_eq!(replayed, Replayed { records: 1, bytes: records, truncated: 0, padding: 300 });
    assert_eq!(kv.get(b"k", 0).unwrap(), Some(Bytes::from_static(b"v\0\0")));
    // A torn record before the zeros is still a torn tail.
    log.truncate(records as usize);
    log.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3, 4, 1, 0, 0, 0, 0]);
    let (_, replayed) = replay(log);
    assert_eq!((replayed.records, replayed.truncated, replayed.padding), (1, 13, 0));
}

#[test]
fn a_damaged_last_record_before_the_zeros_is_torn_but_one_before_a_record_is_corruption() {
    let mut log = Vec::new();
    record::encode_put_str(&mut log, b"a", b"1", None);
    let first = log.len();
    record::encode_put_str(&mut log, b"b", b"2", None);
    let whole = log.clone();
    // A crash in the middle of the last direct write: its blocks half old zeros.
    log[first + record::HEADER + 2] ^= 0xff;
    log.extend_from_slice(&[0; 4096]);
    let (_, replayed) = replay(log.clone());
    assert_eq!((replayed.records, replayed.bytes), (1, first as u64));
    assert_eq!(replayed.truncated, (log.len() - first) as u64);
    // The same damage with a whole record after it is corruption, refused at its offset.
    let mut middle = log[..whole.len()].to_vec();
    middle.extend_from_slice(&whole[first..]);
    let mut kv = KvStore::new();
    let refused = replay_bytes(&Bytes::from(middle), &mut kv, (0, crate::kv::wall_now_ms()));
    assert_eq!(refused, Err(first as u64));
}

/// Whether every descriptor this process holds on `path` was opened `O_DSYNC`
/// (`/proc/self/fdinfo` gives the flags in octal); panics when none is open.
fn open_dsync(path: &Path) -> bool {
    let mut seen = 0;
    let mut all = true;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if std::fs::read_link(entry.path()).ok().as_deref() != Some(path) {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", entry.file_name().to_string_lossy()));
        let flags = info.ok().and_then(|i| {
            let line = i.lines().find(|l| l.starts_with("flags:"))?.to_owned();
            u32::from_str_radix(line.trim_start_matches("flags:").trim(), 8).ok()
        });
        seen += 1;
        all &= flags.is_some_and(|f| f & libc::O_DSYNC as u32 != 0);
    }
    assert!(seen > 0, "no descriptor open on {}", path.display());
    all
}

#[test]
fn under_always_the_log_stays_o_dsync_after_a_compaction() {
    let dir = scratch("rewrite-dsync");
    check_dir(&dir, 1).unwrap();
    on_glommio(move || async move {
        let (mut kv, durability, ring) = open_ring(&dir, FsyncPolicy::Always);
        let path = log_path(&dir, 0).canonicalize().unwrap();
        for i in 0..20 {
            write(&mut kv, i);
        }
        settle(&mut kv, &durability).await;
        assert!(open_dsync(&path), "the log is written O_DSYNC under always");
        // A compaction by hand, as the partition runs one: start, dump every key, finish.
        kv.journal_mut().unwrap().start_rewrite();
        for i in 0..20 {
            let (k, v) = entry(i);
            kv.journal_mut().unwrap().dump(&k, &crate::kv::Stored::Str(v.into()), None);
        }
        kv.journal_mut().unwrap().finish_rewrite();
        write(&mut kv, 20);
        settle(&mut kv, &durability).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while durability.rewrites() == 0 {
            assert!(Instant::now() < deadline, "the compaction never finished");
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        assert!(open_dsync(&path), "the compacted log, now the log, is written O_DSYNC too");
        close_ring(ring, || kv.journal_mut().unwrap().flush_now()).await;
        let (mut reopened, _) = replay(std::fs::read(&path).unwrap());
        assert_holds_writes(&mut reopened, 0..21);
    });
}

#[test]
fn the_first_write_after_a_compaction_overwrites_zeros() {
    let dir = scratch("rewrite-ahead");
    check_dir(&dir, 1).unwrap();
    on_glommio(move || async move {
        let (mut kv, durability, ring) = open_ring(&dir, FsyncPolicy::No);
        write_and_compact(&mut kv, &durability).await;
        // The compacted log was zero-filled ahead of its records as it was written; the log
        // keeps those zeros, so the next write overwrites them rather than extend the file
        // (which io_uring cannot complete inline).
        write(&mut kv, 20);
        settle(&mut kv, &durability).await;
        let len = std::fs::metadata(log_path(&dir, 0)).unwrap().len();
        assert_eq!(len % ring::PREALLOCATE, 0, "the first write after the compaction extended the log to {len} bytes");
        close_ring(ring, || kv.journal_mut().unwrap().flush_now()).await;
        let (mut back, _) = replay(std::fs::read(log_path(&dir, 0)).unwrap());
        assert_holds_writes(&mut back, 0..21);
    });
}

#[test]
fn a_compacted_log_zero_fills_ahead_with_the_shared_zeros_and_replays() {
    let dir = scratch("rewrite-zeros");
    check_dir(&dir, 1).unwrap();
    on_glommio(move || async move {
        // `no`: a write counts as durable once written, so the test waits for no sync.
        let (mut kv, durability, ring) = open_ring(&dir, FsyncPolicy::No);
        write_and_compact(&mut kv, &durability).await;
        // 2.5 MiB into the compacted log, in batches: it is zero-filled ahead, a whole chunk a
        // write, with the zeros the first log made, three chunks past its start.
        let sizes = vec![64 << 10; 40];
        for (n, size) in sizes.iter().enumerate() {
            write_sized(&mut kv, n, *size);
            if n % 8 == 7 {
                settle(&mut kv, &durability).await;
            }
        }
        settle(&mut kv, &durability).await;
        super::tests::assert_replaced_log_closed(&dir);
        let allocated = std::fs::metadata(log_path(&dir, 0)).unwrap().len();
        assert_eq!(allocated % ring::PREALLOCATE, 0, "zeros go ahead in whole chunks: {allocated} bytes");
        assert!(allocated >= 3 * ring::PREALLOCATE, "{allocated} bytes");
        close_ring(ring, || kv.journal_mut().unwrap().flush_now()).await;
        assert_replays_sized(&dir, 60, &sizes);
        let (mut back, _) = replay(std::fs::read(log_path(&dir, 0)).unwrap());
        for i in 0..20 {
            let (k, v) = entry(i);
            assert_eq!(back.get(&k, 0).unwrap(), Some(v), "write {i}, dumped by the compaction");
        }
    });
}
