"""bench_like.py ROUNDS REQUESTS SERVERS (NEXUS=binary, DISK=directory, default /var/tmp):
SERVERS is a comma list from nolog, es, always, redis, esnc (an `everysec` log never
compacted in these runs: rewrite_min_size = 64 GiB), esno (`fsync = "no"`: never synced), esshm (`everysec`
with its log on tmpfs, /dev/shm: no block device); nolog and es required: those servers
are started once and kept, as `nexus bench server --persistence` keeps its four; each round
runs TESTS (default set: SET -P 1 with 200,000 requests then SET -P 16 with REQUESTS; `all`:
then GET and INCR the same way, as the yardstick does) on every server in the rotated order
the yardstick uses, after one unrecorded round. Prints everysec over no log for SET -P 16 per round, median and
min-max: whether the yardstick's other servers move the everysec figure. See README.md."""
import sys, os, time, subprocess
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'server-2026-12-07', 'cpu')); import meter
b = os.environ.get('NEXUS', 'target/release/nexus')
base = os.environ.get('DISK', '/var/tmp')
rounds, requests, names = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(',')
dirs = {'es': base + '/nexus-perf-bl-es', 'always': base + '/nexus-perf-bl-always', 'esnc': base + '/nexus-perf-bl-esnc',
        'esno': base + '/nexus-perf-bl-esno', 'esshm': '/dev/shm/nexus-perf-bl-esshm'}
subprocess.run(['rm', '-rf', *dirs.values()])
make = {'nolog': lambda: meter.start_nexus(b, 'nolog', 17899, meter.ONE_SHARD),
        'es': lambda: meter.start_nexus(b, 'es', 17898, meter.aof_config(dirs['es'])),
        'always': lambda: meter.start_nexus(b, 'always', 17897, meter.aof_config(dirs['always'], 'always')),
        'redis': lambda: meter.start_redis('redis', 17896),
        'esnc': lambda: meter.start_nexus(b, 'esnc', 17895, meter.aof_config(dirs['esnc']) + f'rewrite_min_size = {64 << 30}\n'),
        'esno': lambda: meter.start_nexus(b, 'esno', 17894, meter.aof_config(dirs['esno'], 'no')),
        'esshm': lambda: meter.start_nexus(b, 'esshm', 17893, meter.aof_config(dirs['esshm']))}
servers = [make[n]() for n in names]
time.sleep(2)
res = {n: [] for n in names}
tests = ['set', 'get', 'incr'] if os.environ.get('TESTS') == 'all' else ['set']
try:
    for r in range(-1, rounds):
        order = servers[r % len(servers):] + servers[:r % len(servers)]
        for test in tests:
            for label, port, proc in order:
                meter.run(port, proc.pid, test, 1, 200000)
            for label, port, proc in order:
                figures = meter.run(port, proc.pid, test, 16, requests)
                if test == 'set' and r >= 0:
                    res[label].append(figures)
        if r < 0:
            continue
        print(f'round {r + 1}: ' + '  '.join(f'{l} {v[-1][0]:.0f}' for l, v in res.items()), flush=True)
finally:
    for _, _, proc in servers:
        proc.terminate(); proc.wait()
    subprocess.run(['rm', '-rf', *dirs.values()])
for label in [n for n in ('es', 'esnc', 'esno', 'esshm') if n in res]:
    print(f'servers {",".join(names)}: {label}/nolog SET -P 16 rps {meter.ratio(res[label], res["nolog"], 0)}, req/cpu-s {meter.ratio(res[label], res["nolog"], 1)}')
