"""punts_after_compaction.py ROUNDS BASE_BINARY NEW_BINARY (DISK=directory, default /var/tmp;
FSYNC=everysec|always, default everysec): glommio, 1 shard, a log in DISK under FSYNC, SET -P 16 (100,000 keys) for 6 s against a
fresh server of each build, alternated; counts the io_uring requests the shard's rings hand
to io-wq worker threads (`perf stat -e io_uring:io_uring_queue_async_work`, whole process)
and the compactions finished in the window (INFO aof_rewrites). A write that extends the log
is one of those; so is each fdatasync. Prints, per run, the hand-overs per second and per
compaction. See README.md."""
import os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'server-2026-12-07', 'cpu')); import meter


def rewrites(port):
    out = subprocess.run(['redis-cli', '-p', str(port), 'info', 'persistence'], capture_output=True, text=True).stdout
    return int(next(l for l in out.splitlines() if l.startswith('aof_rewrites')).split(':')[1])


d = os.environ.get('DISK', '/var/tmp') + '/nexus-perf-punts'
for r in range(int(sys.argv[1])):
    for label, binary in (('base', sys.argv[2]), ('new', sys.argv[3])):
        subprocess.run(['rm', '-rf', d])
        _, port, proc = meter.start_nexus(binary, label, 17892, meter.aof_config(d, os.environ.get('FSYNC', 'everysec')))
        time.sleep(1.5)
        bench = subprocess.Popen(['redis-benchmark', '-p', str(port), '-c', '50', '-n', '50000000', '-P', '16', '-t', 'set', '-r', '100000', '-q'],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        w0 = rewrites(port)
        out = subprocess.run(['perf', 'stat', '-x,', '-e', 'io_uring:io_uring_queue_async_work', '-p', str(proc.pid), '--', 'sleep', '6'],
                             capture_output=True, text=True).stderr
        w1 = rewrites(port)
        bench.kill(); bench.wait(); proc.terminate(); proc.wait()
        punts = float(next(l for l in out.splitlines() if l and l[0].isdigit()).split(',')[0])
        print(f'round {r + 1} {label}: {punts / 6:.0f} hand-overs to io-wq a second, {w1 - w0} compactions, '
              f'{punts / max(1, w1 - w0):.0f} per compaction', flush=True)
subprocess.run(['rm', '-rf', d])
