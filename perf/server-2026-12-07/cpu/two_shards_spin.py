"""two_shards_spin.py ROUNDS (NEXUS=binary): nexus 2 shards with spin_before_park_us 200 (the
default) and 0, nexus 1 shard, and redis-server pinned to CPU 0, interleaved; ratios over
redis-server. See README.md."""
import os, sys
import meter

binary = os.environ.get('NEXUS', 'target/release/nexus')
configs = {'2sh-spin200': '[placement]\nshards = 2\n',
           '2sh-spin0': '[placement]\nshards = 2\n[idle]\nspin_before_park_us = 0\n',
           '1sh': '[placement]\nshards = 1\n'}
servers = [meter.start_nexus(binary, label, 17840 + i, c) for i, (label, c) in enumerate(configs.items())]
servers.append(meter.start_redis('redis', 17843))
cases = [('get', 1, 300000), ('get', 16, 2000000), ('set', 16, 2000000)]
meter.report(meter.rounds(servers, cases, int(sys.argv[1])), 'redis')
