"""builds_cpu_ab.py ROUNDS BIN:LABEL...: the builds (1 shard, glommio) and redis-server pinned
to CPU 0, interleaved; ratios over the first build. P1_ONLY=1: the -P 1 cases alone. See
README.md."""
import os, sys
import meter

count, builds = int(sys.argv[1]), [a.split(':') for a in sys.argv[2:]]
servers = [meter.start_nexus(b, label, 17800 + i, '[placement]\nshards = 1\n') for i, (b, label) in enumerate(builds)]
servers.append(meter.start_redis('redis', 17800 + len(builds)))
cases = [('get', 1, 300000), ('set', 1, 300000), ('get', 16, 2000000), ('set', 16, 2000000)]
if os.environ.get('P1_ONLY'):
    cases = cases[:2]
meter.report(meter.rounds(servers, cases, count), builds[0][1])
