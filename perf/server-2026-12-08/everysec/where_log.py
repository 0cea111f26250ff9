"""where_log.py ROUNDS (NEXUS=binary): glommio, 1 shard, SET -P 16 (redis-benchmark -n 3 M)
against a fresh nexus each run: without a log ('nolog'), with an `everysec` log on tmpfs
(/dev/shm, 'es-shm': no block device), and with one on the root filesystem (/var/tmp, the
virtio disk, 'es-disk': where `nexus bench server` puts its logs); the order rotates every
round. Prints per run requests/s and the server's requests per CPU-second; then each log
setup over 'nolog' per round, median and min-max. Whether the everysec cost is the log's work
or the disk's. See README.md."""
import sys, os, time, subprocess, statistics
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'server-2026-12-07', 'cpu')); import meter
b = os.environ.get('NEXUS', 'target/release/nexus')
test = os.environ.get('TEST', 'set')
setups = [('nolog', None), ('es-shm', '/dev/shm/nexus-perf-where'), ('es-disk', '/var/tmp/nexus-perf-where')]
res = {s: [] for s, _ in setups}
for r in range(int(sys.argv[1])):
    order = setups[r % 3:] + setups[:r % 3]
    for label, d in order:
        if d:
            subprocess.run(['rm', '-rf', d])
        _, port, proc = meter.start_nexus(b, label, 17899, meter.aof_config(d) if d else meter.ONE_SHARD, 'glommio')
        time.sleep(1.5)
        res[label].append(meter.run(port, proc.pid, test, 16, 3000000))
        proc.terminate(); proc.wait()
        if d:
            subprocess.run(['rm', '-rf', d])
    print(f'round {r + 1}: ' + '  '.join(f'{l} {res[l][-1][0]:.0f} rps {res[l][-1][1]:.0f} req/cpu-s' for l, _ in setups), flush=True)
for label in ('es-shm', 'es-disk'):
    print(f'{label}/nolog {test.upper()} -P 16: rps {meter.ratio(res[label], res["nolog"], 0)}, req/cpu-s {meter.ratio(res[label], res["nolog"], 1)}')
