"""builds_ab.py ROUNDS A_BINARY B_BINARY [TESTS] (DISK=directory on a real filesystem,
FSYNC=everysec|always|off, default everysec): glommio, 1 shard, a log in DISK under FSYNC
(`off`: none); each test of TESTS (default set,incr) at -P 16 (redis-benchmark -n 3 M),
fresh servers each round, A and B alternating, the order swapped every round. Prints each
run's requests/s and, per test, B/A per round: median and min-max. See README.md."""
import sys, os, time, subprocess, statistics
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'server-2026-12-07', 'cpu')); import meter
log = os.environ.get('DISK', '/var/tmp') + '/nexus-perf-buildsab'
fsync = os.environ.get('FSYNC', 'everysec')
rounds, bins = int(sys.argv[1]), {'A': sys.argv[2], 'B': sys.argv[3]}
tests = (sys.argv[4] if len(sys.argv) > 4 else 'set,incr').split(',')


def one(binary, test):
    subprocess.run(['rm', '-rf', log])
    path = '/tmp/nexus-perf-buildsab.toml'
    cfg = meter.ONE_SHARD if fsync == 'off' else meter.aof_config(log, fsync)
    open(path, 'w').write('load = false\nagents = []\n' + cfg)
    proc = subprocess.Popen([binary, 'run', '-c', path, '--listen', '127.0.0.1:17899', '--metrics-listen', ''],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    out = subprocess.run(['redis-benchmark', '-p', '17899', '-c', '50', '-n', '3000000', '-P', '16', '-t', test, '-r', '100000', '--csv'],
                         capture_output=True, text=True).stdout
    proc.terminate(); proc.wait()
    return float(out.strip().splitlines()[-1].split(',')[1].strip('"'))


res = {(t, l): [] for t in tests for l in 'AB'}
for r in range(rounds):
    for t in tests:
        for label in (['A', 'B'] if r % 2 == 0 else ['B', 'A']):
            res[(t, label)].append(one(bins[label], t))
        print(f'round {r + 1} {t}: A {res[(t, "A")][-1]:.0f}  B {res[(t, "B")][-1]:.0f}', flush=True)
for t in tests:
    rs = [b_ / a for a, b_ in zip(res[(t, 'A')], res[(t, 'B')])]
    print(f'{t.upper()} -P 16, fsync {fsync}: B/A {statistics.median(rs):.3f}x ({min(rs):.3f}-{max(rs):.3f}) over {rounds} rounds;'
          f' medians A {statistics.median(res[(t, "A")]):.0f}, B {statistics.median(res[(t, "B")]):.0f}')
subprocess.run(['rm', '-rf', log])
