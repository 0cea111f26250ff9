"""pace_ab.py ROUNDS (BASE=binary, VAR=the same with ring.rs PACE = 2 ms instead of 10 ms):
glommio, 1 shard; BASE without a log, BASE and VAR with an `everysec` log in DISK
(default /var/tmp; the run here: DISK=/work, ext4);
SET and INCR -P 16, interleaved. Whether smaller batches (less of the cache streamed through
per write) make a logged request cheaper. See README.md."""
import os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cpu'))
import meter
base, var = os.environ['BASE'], os.environ['VAR']
disk = os.environ.get('DISK', '/var/tmp')
a, b = f'{disk}/nexus-perf-pace-a', f'{disk}/nexus-perf-pace-b'
subprocess.run(['rm', '-rf', a, b], check=True)
servers = [meter.start_nexus(base, 'nolog', 17870, meter.ONE_SHARD, 'glommio'),
           meter.start_nexus(base, 'es-base', 17871, meter.aof_config(a), 'glommio'),
           meter.start_nexus(var, 'es-var', 17872, meter.aof_config(b), 'glommio')]
results = meter.rounds(servers, [('set', 16, 2000000), ('incr', 16, 2000000)], int(sys.argv[1]))
meter.report(results, 'nolog')
for case, runs in sorted(results.items()):
    print(f'{case[0]} -P {case[1]}: es-var over es-base, req/s {meter.ratio(runs["es-var"], runs["es-base"], 0)}')
subprocess.run(['rm', '-rf', a, b], check=True)
