"""iowq_off_shard.py ROUNDS (BASE=binary whose glommio io-wq workers inherit the shard's pin,
NEW=binary that registers them off the shard's CPU): glommio executor, 1 shard; NEW without a
log, then BASE and NEW with an `everysec` and an `always` log on tmpfs (/dev/shm). SET and INCR
-P 16, interleaved; ratios over NEW without a log, then NEW over BASE per policy. See README.md."""
import os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cpu'))
import meter

base, new = os.environ['BASE'], os.environ['NEW']
subprocess.run(['rm', '-rf'] + [f'/dev/shm/nexus-perf-iowq-{n}' for n in range(4)], check=True)
servers = [meter.start_nexus(new, 'nolog', 17870, meter.ONE_SHARD, 'glommio')]
for n, (binary, label, fsync) in enumerate([(base, 'es-base', 'everysec'), (new, 'es-new', 'everysec'),
                                            (base, 'al-base', 'always'), (new, 'al-new', 'always')]):
    config = meter.aof_config(f'/dev/shm/nexus-perf-iowq-{n}', fsync)
    servers.append(meter.start_nexus(binary, label, 17871 + n, config, 'glommio'))
results = meter.rounds(servers, [('set', 16, 2000000), ('incr', 16, 2000000)], int(sys.argv[1]))
meter.report(results, 'nolog')
for policy in ('es', 'al'):
    for case, runs in sorted(results.items()):
        print(f'{case[0]} -P {case[1]}: {policy}-new over {policy}-base, req/s {meter.ratio(runs[policy + "-new"], runs[policy + "-base"], 0)}')
