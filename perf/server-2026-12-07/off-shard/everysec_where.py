"""everysec_where.py ROUNDS EXECUTOR (NEXUS=binary): where an `everysec` log's cost is. nexus
1 shard without a log, with the log on disk (/tmp), with it on tmpfs (/dev/shm); redis-server
without AOF and with `appendonly yes`, `appendfsync everysec` (both pinned to CPU 0). SET -P 16,
interleaved; ratios over nexus without a log. See README.md."""
import os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cpu'))
import meter

binary, executor = os.environ.get('NEXUS', 'target/release/nexus'), sys.argv[2]
one = meter.ONE_SHARD

servers = [meter.start_nexus(binary, 'nolog', 17850, one, executor),
           meter.start_nexus(binary, 'es-disk', 17851, meter.aof_config('/tmp/nexus-perf-aof-disk'), executor),
           meter.start_nexus(binary, 'es-tmpfs', 17852, meter.aof_config('/dev/shm/nexus-perf-aof-tmpfs'), executor),
           meter.start_redis('redis', 17853)]
os.makedirs('/tmp/nexus-perf-redis-aof', exist_ok=True)
redis_es = ['taskset', '-c', '0', 'redis-server', '--port', '17854', '--save', '', '--appendonly', 'yes',
            '--appendfsync', 'everysec', '--dir', '/tmp/nexus-perf-redis-aof']
servers.append(('redis-es', 17854, subprocess.Popen(redis_es, stdout=subprocess.DEVNULL)))
meter.report(meter.rounds(servers, [('set', 16, 2000000)], int(sys.argv[1])), 'nolog')
