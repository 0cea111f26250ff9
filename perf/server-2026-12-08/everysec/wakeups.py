"""wakeups.py (NEXUS=binary, DISK=directory on a real filesystem, REPS=rounds): glommio, 1
shard, SET -P 16 (redis-benchmark -n 6 M), a fresh nexus without a log then with an
`everysec` log in DISK, alternating; over 3 s of each run: requests/s, the client's voluntary
context switches (each a sleep it had to be woken from), the rescheduling and function-call
interrupts per CPU (/proc/interrupts RES, CAL), and each CPU's idle share (/proc/stat).
Whether the log makes the client sleep and be woken more often. See README.md."""
import sys, os, time, subprocess
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'server-2026-12-07', 'cpu')); import meter
b = os.environ.get('NEXUS', 'target/release/nexus')
log = os.environ.get('DISK', '/var/tmp') + '/nexus-perf-wakeups'


def irqs():
    out = {}
    for line in open('/proc/interrupts'):
        f = line.split()
        if f and f[0] in ('RES:', 'CAL:', 'LOC:'):
            out[f[0][:-1]] = [int(x) for x in f[1:3]]
    return out


def cpu_idle():
    rows = {}
    for line in open('/proc/stat'):
        f = line.split()
        if f[0] in ('cpu0', 'cpu1'):
            v = [int(x) for x in f[1:]]
            rows[f[0]] = (v[3] + v[4], sum(v))
    return rows


def vcsw(pid):
    for line in open(f'/proc/{pid}/status'):
        if line.startswith('voluntary_ctxt_switches'):
            return int(line.split()[1])


for rep in range(int(os.environ.get('REPS', '3'))):
    for label, cfg in [('nolog', meter.ONE_SHARD), ('es', meter.aof_config(log))]:
        subprocess.run(['rm', '-rf', log])
        _, port, proc = meter.start_nexus(b, label, 17899, cfg, 'glommio')
        time.sleep(1.5)
        bench = subprocess.Popen(['redis-benchmark', '-p', str(port), '-c', '50', '-n', '6000000', '-P', '16', '-t', 'set',
                                  '-r', '100000', '--csv'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(0.7)
        i0, s0, c0, sv0 = irqs(), cpu_idle(), vcsw(bench.pid), meter.server_cpu_s(proc.pid)
        time.sleep(3)
        i1, s1, c1, sv1 = irqs(), cpu_idle(), vcsw(bench.pid), meter.server_cpu_s(proc.pid)
        out = bench.communicate()[0]
        proc.terminate(); proc.wait()
        rps = float(out.strip().splitlines()[-1].split(',')[1].strip('"'))
        idle = {c: 100 * (s1[c][0] - s0[c][0]) / max(1, s1[c][1] - s0[c][1]) for c in s0}
        irq = {k: [(i1[k][j] - i0[k][j]) / 3 for j in range(2)] for k in i0}
        print(f'{label:5} {rps:9.0f} rps  client sleeps {(c1 - c0) / 3:8.0f}/s ({(c1 - c0) / 3 / rps * 1000:5.2f} per 1k req)'
              f'  server cpu {100 * (sv1 - sv0) / 3:4.0f}%'
              f'  idle cpu0 {idle["cpu0"]:4.1f}% cpu1 {idle["cpu1"]:4.1f}%'
              + ''.join(f'  {k} {v[0]:6.0f}/{v[1]:6.0f}' for k, v in irq.items()), flush=True)
subprocess.run(['rm', '-rf', log])
