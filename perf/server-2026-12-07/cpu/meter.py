"""What the scripts in this folder share: starting the servers, one metered redis-benchmark
run, interleaved rounds, and the medians. See README.md.

A run's figures: redis-benchmark's requests/s (its CSV), the server's requests per second of
its own CPU (utime+stime of /proc/PID/stat, all threads, over the run), and redis-benchmark's
and the server's CPU as % of one CPU over the run's wall time (the client's from
getrusage(RUSAGE_CHILDREN) across its reap)."""
import os, resource, statistics, subprocess, sys, time

TCK = os.sysconf('SC_CLK_TCK')


ONE_SHARD = '[placement]\nshards = 1\n'


def aof_config(directory, fsync='everysec', shards=1):
    """A nexus config (TOML text) of `shards` shards with an append-only log in `directory`."""
    return f'[placement]\nshards = {shards}\n[persistence]\nmode = "aof"\nfsync = "{fsync}"\ndir = "{directory}"\n'


def start_nexus(binary, label, port, config, executor='glommio'):
    """`binary run` with `config` (TOML text) on 127.0.0.1:port."""
    path = f'/tmp/nexus-perf-{label}.toml'
    with open(path, 'w') as f:
        f.write('load = false\nagents = []\n' + config)
    cmd = [binary, 'run', '-c', path, '--executor', executor, '--listen', f'127.0.0.1:{port}', '--metrics-listen', '']
    return (label, port, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def start_redis(label, port, cpu=0):
    """redis-server without persistence on `port`, pinned to `cpu` (None: floating); taskset
    execs it, so the process keeps taskset's pid."""
    cmd = ['redis-server', '--port', str(port), '--save', '', '--appendonly', 'no']
    if cpu is not None:
        cmd = ['taskset', '-c', str(cpu)] + cmd
    return (label, port, subprocess.Popen(cmd, stdout=subprocess.DEVNULL))


def server_cpu_s(pid):
    fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TCK


def run(port, pid, test, pipeline, requests):
    """One redis-benchmark run: (req/s, req per server CPU-second, client %, server %)."""
    s0, t0, r0 = server_cpu_s(pid), time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(['redis-benchmark', '-p', str(port), '-c', '50', '-n', str(requests), '-P', str(pipeline),
                          '-t', test, '-r', '100000', '--csv'], capture_output=True, text=True).stdout
    s1, t1, r1 = server_cpu_s(pid), time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    rps = float(out.strip().splitlines()[-1].split(',')[1].strip('"'))
    wall, server = t1 - t0, s1 - s0
    client = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return (rps, requests / server if server else 0.0, 100 * client / wall, 100 * server / wall)


def rounds(servers, cases, count):
    """Every case against every server, the order rotated each round: {(test, P): {label: [run]}}."""
    time.sleep(2)
    results = {}
    try:
        for r in range(count):
            for test, pipeline, requests in cases:
                for label, port, proc in servers[r % len(servers):] + servers[:r % len(servers)]:
                    figures = run(port, proc.pid, test, pipeline, requests)
                    results.setdefault((test, pipeline), {}).setdefault(label, []).append(figures)
            print(f'round {r + 1}/{count} done', file=sys.stderr)
    finally:
        for _, _, proc in servers:
            proc.terminate()
    return results


def ratio(runs, base, i):
    """Median and min-max of the per-round ratios of figure `i` of `runs` over `base`'s."""
    rs = [a[i] / b[i] for a, b in zip(runs, base)]
    return f'{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})'


def report(results, base):
    """Medians per server, and each server's ratios over `base` (req/s, req per CPU-second)."""
    for (test, pipeline), by_label in results.items():
        print(f'== {test.upper()} -P {pipeline}')
        for label, runs in by_label.items():
            med = [statistics.median(r[i] for r in runs) for i in range(4)]
            line = f'  {label:12} rps {med[0]:10.0f}  req/cpu-s {med[1]:10.0f}  client {med[2]:3.0f}%  server {med[3]:3.0f}%'
            if label != base:
                line += f'  /{base}: rps {ratio(runs, by_label[base], 0)}, req/cpu-s {ratio(runs, by_label[base], 1)}'
            print(line)
