"""harness_factors.py ROUNDS REQUESTS (NEXUS=binary, DISK=directory, default /var/tmp): glommio,
1 shard, SET -P 16 with REQUESTS requests a run; nexus without a log and with an `everysec`
log in DISK, both started once and kept for every round (as `nexus bench server` does), the
order swapped each round. Prints each run's requests/s, then everysec over no log per round:
median and min-max. With where_log.py (a fresh server per run, 3 M requests), which part of
the yardstick's setup moves the everysec ratio. See README.md."""
import sys, os, time, subprocess, statistics
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'server-2026-12-07', 'cpu')); import meter
b = os.environ.get('NEXUS', 'target/release/nexus')
d = os.environ.get('DISK', '/var/tmp') + '/nexus-perf-factors'
rounds, requests = int(sys.argv[1]), int(sys.argv[2])
subprocess.run(['rm', '-rf', d])
servers = [meter.start_nexus(b, 'nolog', 17899, meter.ONE_SHARD), meter.start_nexus(b, 'es', 17898, meter.aof_config(d))]
time.sleep(2)
res = {'nolog': [], 'es': []}
try:
    for r in range(rounds):
        for label, port, proc in (servers if r % 2 == 0 else servers[::-1]):
            res[label].append(meter.run(port, proc.pid, 'set', 16, requests))
        print(f'round {r + 1}: nolog {res["nolog"][-1][0]:.0f}  es {res["es"][-1][0]:.0f}', flush=True)
finally:
    for _, _, proc in servers:
        proc.terminate(); proc.wait()
    subprocess.run(['rm', '-rf', d])
print(f'es/nolog SET -P 16, {requests} requests a run, servers kept: rps {meter.ratio(res["es"], res["nolog"], 0)}, req/cpu-s {meter.ratio(res["es"], res["nolog"], 1)}')
