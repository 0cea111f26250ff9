"""threads_writer_pace.py ROUNDS (BASE=binary, PACE10=the same build with writer::PACE = 10
ms): the threads executor without persistence, and with fsync everysec at the writer's 2 ms
and 10 ms pace, SET/INCR -P 16, interleaved; ratios over no persistence. See README.md."""
import os, shutil, sys
import meter

base, pace10 = os.environ.get('BASE', 'target/release/nexus'), os.environ['PACE10']
servers = []
for i, (label, binary, aof) in enumerate([('off', base, False), ('es2ms', base, True), ('es10ms', pace10, True)]):
    config = '[placement]\nshards = 1\n'
    if aof:
        log = f'/tmp/nexus-perf-log-{label}'
        shutil.rmtree(log, ignore_errors=True)
        config += f'[persistence]\nmode = "aof"\nfsync = "everysec"\ndir = "{log}"\n'
    servers.append(meter.start_nexus(binary, label, 17860 + i, config, executor='threads'))
cases = [('set', 16, 3000000), ('incr', 16, 3000000)]
meter.report(meter.rounds(servers, cases, int(sys.argv[1])), 'off')
