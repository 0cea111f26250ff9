//! Fault tests: monitors (`Down` with the reason of the end, `noproc`, unwatch).

use super::*;

// ---------------------------------------------------------------------------------------------
// 3. Monitors.

#[test]
fn watchers_get_a_down_with_the_reason_of_the_end() {
    for target_shard in [0, 1] {
        let mut shards = cluster(2);
        let j = Journal::default();
        let watcher = spawn_on(&mut shards, 0, j.probe());
        let quits = spawn_on(&mut shards, target_shard, j.probe());
        let is_stopped = spawn_on(&mut shards, target_shard, j.probe());
        let fails = spawn_on(&mut shards, target_shard, j.probe());
        // Watching twice still gives one `Down`.
        for target in [quits, quits, is_stopped, fails] {
            tell(&mut shards, watcher, Cmd::Watch(target));
        }
        settle(&mut shards);
        assert_eq!(shards[target_shard].stats().watches, 3);

        tell(&mut shards, quits, Cmd::StopSelf);
        settle(&mut shards);
        tell(&mut shards, watcher, Cmd::Stop(is_stopped));
        settle(&mut shards);
        tell(&mut shards, fails, Cmd::Fail("bad input"));
        settle(&mut shards);

        assert_eq!(
            j.of(watcher),
            [
                down(quits, ExitReason::Normal),
                down(is_stopped, ExitReason::Shutdown),
                down(fails, ExitReason::failed("bad input")),
            ],
            "target on shard {target_shard}"
        );
        assert_eq!(shards[target_shard].stats().watches, 0);
        assert_eq!(shards[target_shard].stats().counters.signals_sent, 3);
        assert_eq!(shards[0].agents() + shards[1].agents(), 1);
        assert_accounted(&shards);
    }
}

#[test]
fn watching_a_dead_agent_gives_a_down_noproc() {
    for target_shard in [0, 1] {
        let mut shards = cluster(2);
        let j = Journal::default();
        let watcher = spawn_on(&mut shards, 0, j.probe());
        let gone = dead_probe(&mut shards, &j, target_shard);
        tell(&mut shards, watcher, Cmd::Watch(gone));
        settle(&mut shards);
        assert_eq!(j.of(watcher), [down(gone, ExitReason::NoProc)], "target on shard {target_shard}");
        assert_eq!(shards[target_shard].stats().watches, 0);
        assert_accounted(&shards);
    }
}

#[test]
fn unwatch_prevents_the_down() {
    for target_shard in [0, 1] {
        let mut shards = cluster(2);
        let j = Journal::default();
        let watcher = spawn_on(&mut shards, 0, j.probe());
        let target = spawn_on(&mut shards, target_shard, j.probe());
        tell(&mut shards, watcher, Cmd::Watch(target));
        settle(&mut shards);
        assert_eq!(shards[target_shard].stats().watches, 1);
        tell(&mut shards, watcher, Cmd::Unwatch(target));
        settle(&mut shards);
        assert_eq!(shards[target_shard].stats().watches, 0);

        tell(&mut shards, target, Cmd::Fail("bad"));
        settle(&mut shards);
        assert_eq!(j.of(target), [Event::Stopped]);
        assert_eq!(j.of(watcher), [], "target on shard {target_shard}");
        assert_eq!(shards[target_shard].stats().counters.signals_sent, 0);
        assert_accounted(&shards);
    }
}
