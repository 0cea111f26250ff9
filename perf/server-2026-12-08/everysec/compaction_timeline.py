"""compaction_timeline.py (NEXUS=binary, DISK=directory, default /var/tmp): glommio, 1 shard,
an `everysec` log in DISK, SET -P 16 (redis-benchmark, 100,000 keys) for about 8 s; one
connection samples INFO every 5 ms (commands processed, aof_rewrite_in_progress, aof_rewrites).
Prints how long the dump phase was seen, and the server's commands/s in 200 ms windows from
600 ms before to 600 ms after each finished compaction (the log's aof_rewrites counter steps
when its new log is in place) against the whole run: what one compaction costs the shard, and
when. See README.md."""
import os, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'server-2026-12-07', 'cpu')); import meter
b = os.environ.get('NEXUS', 'target/release/nexus')
d = os.environ.get('DISK', '/var/tmp') + '/nexus-perf-timeline'
subprocess.run(['rm', '-rf', d])
_, port, proc = meter.start_nexus(b, 'timeline', 17896, meter.aof_config(d))
time.sleep(1.5)
s = socket.create_connection(('127.0.0.1', port))


def info():
    s.sendall(b'*1\r\n$4\r\nINFO\r\n')
    data = b''
    while True:
        data += s.recv(65536)
        head, _, rest = data.partition(b'\r\n')
        if head.startswith(b'$') and len(rest) >= int(head[1:]) + 2:
            text = rest[:int(head[1:])].decode()
            f = dict(l.split(':', 1) for l in text.splitlines() if ':' in l)
            return int(f['total_commands_processed']), f['aof_rewrite_in_progress'] == '1', int(f['aof_rewrites'])


bench = subprocess.Popen(['redis-benchmark', '-p', str(port), '-c', '50', '-n', '10000000', '-P', '16', '-t', 'set', '-r', '100000', '-q'],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.5)
samples = []
end = time.time() + 7
while time.time() < end:
    samples.append((time.time(), *info()))
    time.sleep(0.005)
bench.kill(); bench.wait(); proc.terminate(); proc.wait()
subprocess.run(['rm', '-rf', d])
dumping = sum(t1 - t0 for (t0, _, r0, _), (t1, _, r1, _) in zip(samples, samples[1:]) if r0 or r1)
done = [t1 for (t0, _, _, w0), (t1, _, _, w1) in zip(samples, samples[1:]) if w1 > w0]
print(f'{len(done)} compactions finished in {samples[-1][0] - samples[0][0]:.1f} s; dump phase seen for {dumping * 1000:.0f} ms in all')
# Commands/s in 200 ms windows around each finished compaction, against the whole run.
overall = (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])
for lo in (-0.6, -0.4, -0.2, 0.0, 0.2, 0.4):
    span = [0.0, 0]
    for (t0, c0, _, _), (t1, c1, _, _) in zip(samples, samples[1:]):
        if any(lo <= t1 - d < lo + 0.2 for d in done):
            span[0] += t1 - t0; span[1] += c1 - c0
    rate = span[1] / max(span[0], 1e-9)
    print(f'{lo * 1000:+5.0f} to {(lo + 0.2) * 1000:+5.0f} ms from a finish: {rate:9.0f} commands/s ({rate / overall:.2f}x the run)')
