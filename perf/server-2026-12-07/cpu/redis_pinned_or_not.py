"""redis_pinned_or_not.py ROUNDS (NEXUS=binary): nexus 1 shard, redis-server floating and
redis-server pinned to CPU 0, interleaved. See README.md."""
import os, sys
import meter

binary = os.environ.get('NEXUS', 'target/release/nexus')
servers = [meter.start_nexus(binary, 'nexus', 17830, '[placement]\nshards = 1\n'),
           meter.start_redis('redis-float', 17831, cpu=None), meter.start_redis('redis-cpu0', 17832, cpu=0)]
cases = [('get', 1, 300000), ('set', 1, 300000), ('get', 16, 2000000), ('set', 16, 2000000)]
meter.report(meter.rounds(servers, cases, int(sys.argv[1])), 'nexus')
