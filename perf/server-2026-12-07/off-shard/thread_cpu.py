"""thread_cpu.py (NEXUS=binary, DISK=a directory on a real filesystem): glommio, 1 shard, SET
-P 16 (3 M requests) against an `everysec` log on tmpfs, on DISK, and an `always` log on
tmpfs; each thread's CPU (utime+stime from /proc) as % of one CPU over the run, with the CPUs it
may run on. See README.md."""
import os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cpu'))
import meter

TCK = os.sysconf('SC_CLK_TCK')
binary = os.environ.get('NEXUS', 'target/release/nexus')
disk = os.environ.get('DISK', '/var/tmp')


def threads(pid):
    """{tid: (name, CPU seconds, Cpus_allowed_list)} of every thread of `pid`."""
    out = {}
    for tid in os.listdir(f'/proc/{pid}/task'):
        base = f'/proc/{pid}/task/{tid}'
        name = open(f'{base}/comm').read().strip()
        fields = open(f'{base}/stat').read().rsplit(')', 1)[1].split()
        cpus = next(l.split()[1] for l in open(f'{base}/status') if l.startswith('Cpus_allowed_list'))
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / TCK, cpus)
    return out


for directory, fsync in [('/dev/shm/nexus-perf-threads', 'everysec'), (f'{disk}/nexus-perf-threads', 'everysec'),
                         ('/dev/shm/nexus-perf-threads', 'always')]:
    subprocess.run(['rm', '-rf', directory], check=True)
    _, port, proc = meter.start_nexus(binary, 'threads', 17899, meter.aof_config(directory, fsync), 'glommio')
    time.sleep(1.5)
    before, t0 = threads(proc.pid), time.time()
    subprocess.run(['redis-benchmark', '-p', str(port), '-c', '50', '-n', '3000000', '-P', '16', '-t', 'set',
                    '-r', '100000', '-q'], capture_output=True, check=True)
    after, wall = threads(proc.pid), time.time() - t0
    print(f'== {fsync}, log in {directory} ({wall:.1f} s)')
    for tid, (name, cpu_s, cpus) in sorted(after.items()):
        used = cpu_s - before.get(tid, (name, 0.0, cpus))[1]
        print(f'  {name:18} tid {tid:>7}  {100 * used / wall:5.1f}% of a CPU  on CPUs {cpus}')
    proc.terminate()
    proc.wait()
    subprocess.run(['rm', '-rf', directory], check=True)
