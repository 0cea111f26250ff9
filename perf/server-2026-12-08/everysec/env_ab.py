"""env_ab.py ROUNDS VAR=VALUE [VAR=VALUE...] (NEXUS=binary, DISK=directory on a real
filesystem): glommio, 1 shard, an `everysec` log in DISK; SET -P 16 (redis-benchmark -n 3 M),
fresh servers each round, alternating A (the environment as is) and B (with the given
variables), order swapped every round. Per run: requests/s and the shard process's minor
page faults per second (/proc/PID/stat); then B/A per round, median and min-max. Whether an
allocator setting changes the log's cost. See README.md."""
import sys, os, time, subprocess, statistics
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'server-2026-12-07', 'cpu')); import meter
b = os.environ.get('NEXUS', 'target/release/nexus')
log = os.environ.get('DISK', '/var/tmp') + '/nexus-perf-envab'
rounds = int(sys.argv[1])
extra = dict(kv.split('=', 1) for kv in sys.argv[2:])


def minflt(pid):
    return int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[7])


def one(env):
    subprocess.run(['rm', '-rf', log])
    path = '/tmp/nexus-perf-envab.toml'
    open(path, 'w').write('load = false\nagents = []\n' + meter.aof_config(log))
    proc = subprocess.Popen([b, 'run', '-c', path, '--listen', '127.0.0.1:17899', '--metrics-listen', ''],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    f0, t0 = minflt(proc.pid), time.time()
    out = subprocess.run(['redis-benchmark', '-p', '17899', '-c', '50', '-n', '3000000', '-P', '16', '-t', 'set', '-r', '100000', '--csv'],
                         capture_output=True, text=True).stdout
    f1, t1 = minflt(proc.pid), time.time()
    proc.terminate(); proc.wait()
    return float(out.strip().splitlines()[-1].split(',')[1].strip('"')), (f1 - f0) / (t1 - t0)


res = {'A': [], 'B': []}
for r in range(rounds):
    for label in (['A', 'B'] if r % 2 == 0 else ['B', 'A']):
        res[label].append(one(extra if label == 'B' else {}))
    print(f'round {r + 1}: A {res["A"][-1][0]:.0f} rps {res["A"][-1][1]:.0f} faults/s, B {res["B"][-1][0]:.0f} rps {res["B"][-1][1]:.0f} faults/s', flush=True)
rs = [b_[0] / a[0] for a, b_ in zip(res['A'], res['B'])]
print(f'B = {extra}: B/A SET -P 16 {statistics.median(rs):.3f}x ({min(rs):.3f}-{max(rs):.3f}) over {rounds} rounds; '
      f'faults/s A {statistics.median(x[1] for x in res["A"]):.0f}, B {statistics.median(x[1] for x in res["B"]):.0f}')
subprocess.run(['rm', '-rf', log])
