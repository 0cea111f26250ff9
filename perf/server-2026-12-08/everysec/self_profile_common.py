"""What the profiling scripts in this folder share: the pinned shard's thread id, the
server's command count (INFO's total_commands_processed), and one profiled SET -P 16 load."""
import os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'server-2026-12-07', 'cpu'))
import meter


def shard_tid(pid):
    """The thread of a 1-shard nexus's shard: named nexus-shard-*, pinned to CPU 0."""
    return [t for t in os.listdir(f'/proc/{pid}/task')
            if open(f'/proc/{pid}/task/{t}/comm').read().startswith('nexus-shard')
            and any(l.startswith('Cpus_allowed_list') and l.split()[1] == '0' for l in open(f'/proc/{pid}/task/{t}/status'))][0]


def commands(port):
    out = subprocess.run(['redis-cli', '-p', str(port), 'info', 'stats'], capture_output=True, text=True).stdout
    return int(next(l for l in out.splitlines() if l.startswith('total_commands_processed')).split(':')[1])


def profile_under_set(binary, label, config, record_args, seconds, log_dir=None):
    """Starts a fresh glommio nexus with `config` (TOML text; `log_dir` emptied first), loads it
    with SET -P 16 (100,000 keys), and runs `perf record RECORD_ARGS -t SHARD -- sleep SECONDS`
    once the load runs; the commands the server ran in that window."""
    if log_dir:
        subprocess.run(['rm', '-rf', log_dir])
    _, port, proc = meter.start_nexus(binary, label, 17899, config, 'glommio')
    time.sleep(1.5)
    tid = shard_tid(proc.pid)
    bench = subprocess.Popen(['redis-benchmark', '-p', str(port), '-c', '50', '-n', '20000000', '-P', '16', '-t', 'set', '-r', '100000', '-q'],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.7)
    c0 = commands(port)
    subprocess.run(['perf', 'record', '-q', *record_args, '-t', tid, '--', 'sleep', str(seconds)], stderr=subprocess.DEVNULL)
    n = commands(port) - c0
    bench.kill(); bench.wait(); proc.terminate(); proc.wait()
    if log_dir:
        subprocess.run(['rm', '-rf', log_dir])
    return n
