"""compaction_cost.py ROUNDS REQUESTS (NEXUS=binary, DISK=directory, default /var/tmp): glommio,
1 shard, SET -P 16 with REQUESTS requests a run, against three servers started once and kept
(as `nexus bench server` keeps its servers): no log, an `everysec` log with the default
compaction policy, and an `everysec` log that is never compacted in these runs
(rewrite_min_size = 64 GiB); the order rotates every round. Prints each log setup over no
log per round, median and min-max: what compactions cost the everysec figure. See README.md."""
import sys, os, time, subprocess
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'server-2026-12-07', 'cpu')); import meter
b = os.environ.get('NEXUS', 'target/release/nexus')
base = os.environ.get('DISK', '/var/tmp')
rounds, requests = int(sys.argv[1]), int(sys.argv[2])
d1, d2 = base + '/nexus-perf-cc1', base + '/nexus-perf-cc2'
subprocess.run(['rm', '-rf', d1, d2])
servers = [meter.start_nexus(b, 'nolog', 17899, meter.ONE_SHARD), meter.start_nexus(b, 'es', 17898, meter.aof_config(d1)),
           meter.start_nexus(b, 'es-nocompact', 17897, meter.aof_config(d2) + f'rewrite_min_size = {64 << 30}\n')]
time.sleep(2)
res = {s[0]: [] for s in servers}
try:
    for r in range(rounds):
        for label, port, proc in servers[r % 3:] + servers[:r % 3]:
            res[label].append(meter.run(port, proc.pid, 'set', 16, requests))
        print(f'round {r + 1}: ' + '  '.join(f'{l} {v[-1][0]:.0f}' for l, v in res.items()), flush=True)
finally:
    for _, _, proc in servers:
        proc.terminate(); proc.wait()
    subprocess.run(['rm', '-rf', d1, d2])
for label in ('es', 'es-nocompact'):
    print(f'{label}/nolog SET -P 16, {requests} a run: rps {meter.ratio(res[label], res["nolog"], 0)}, req/cpu-s {meter.ratio(res[label], res["nolog"], 1)}')
