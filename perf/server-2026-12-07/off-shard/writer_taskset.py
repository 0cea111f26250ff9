"""writer_taskset.py ROUNDS (NEXUS=binary): threads executor, 1 shard: no log; everysec log (tmpfs); everysec log
with its writer thread moved off the shard's CPU (taskset on the thread). SET/INCR -P 16."""
import os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cpu'))
import meter
b = os.environ.get('NEXUS', 'target/release/nexus')
one = meter.ONE_SHARD

servers = [meter.start_nexus(b, 'nolog', 17870, one, 'threads'),
           meter.start_nexus(b, 'es', 17871, meter.aof_config('/dev/shm/nexus-perf-aof-a'), 'threads'),
           meter.start_nexus(b, 'es-w1', 17872, meter.aof_config('/dev/shm/nexus-perf-aof-b'), 'threads')]
time.sleep(1.5)
pid = servers[2][2].pid
for t in os.listdir(f'/proc/{pid}/task'):
    if open(f'/proc/{pid}/task/{t}/comm').read().strip().startswith('nexus-aof'):
        subprocess.run(['taskset', '-p', '-c', '1', t], check=True, stdout=subprocess.DEVNULL)
        print('pinned writer', t, file=sys.stderr)
cases = [('set', 16, 2000000), ('incr', 16, 2000000)]
meter.report(meter.rounds(servers, cases, int(sys.argv[1])), 'nolog')
