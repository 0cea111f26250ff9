"""writer_off_shard.py ROUNDS (BASE=binary whose log writer inherits its shard's pin,
NEW=binary that starts it off the shard's CPU): threads executor, 1 shard; NEW without a log,
BASE and NEW with an `everysec` log on tmpfs (/dev/shm). SET and INCR -P 16, interleaved;
ratios over NEW without a log, then over BASE. See README.md."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cpu'))
import meter

base, new = os.environ['BASE'], os.environ['NEW']
one = meter.ONE_SHARD

servers = [meter.start_nexus(new, 'nolog', 17870, one, 'threads'),
           meter.start_nexus(base, 'es-base', 17871, meter.aof_config('/dev/shm/nexus-perf-aof-base'), 'threads'),
           meter.start_nexus(new, 'es-offshard', 17872, meter.aof_config('/dev/shm/nexus-perf-aof-new'), 'threads')]
results = meter.rounds(servers, [('set', 16, 2000000), ('incr', 16, 2000000)], int(sys.argv[1]))
meter.report(results, 'nolog')
print('-- pairwise, over es-base')
meter.report(results, 'es-base')
