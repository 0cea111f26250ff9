"""shard_profile.py (NEXUS=binary, EXEC=glommio|threads, DISK=directory on a real filesystem):
a fresh 1-shard nexus without a log, then with an `everysec` log in DISK; under SET -P 16
(redis-benchmark -n 6 M), `perf record --call-graph dwarf` of the shard's thread for 3 s into
/tmp/perf-nolog.data and /tmp/perf-es.data. Compare with `perf report -i FILE --children
--stdio -g none --sort sym`. See README.md."""
import sys, os, time, subprocess
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cpu')); import meter
b = os.environ.get('NEXUS', 'target/release/nexus'); EXEC = os.environ.get('EXEC', 'glommio')
log = os.environ.get('DISK', '/var/tmp') + '/nexus-perf-profile'
for label, cfg in [('nolog', meter.ONE_SHARD), ('es', meter.aof_config(log))]:
    subprocess.run(['rm','-rf',log])
    _,port,proc = meter.start_nexus(b,label,17899,cfg,EXEC)
    time.sleep(1.5)
    tid=[t for t in os.listdir(f'/proc/{proc.pid}/task') if open(f'/proc/{proc.pid}/task/{t}/comm').read().startswith('nexus-shard') and '0\n'==next(l.split()[1]+'\n' for l in open(f'/proc/{proc.pid}/task/{t}/status') if l.startswith('Cpus_allowed_list'))][0]
    bench=subprocess.Popen(['redis-benchmark','-p',str(port),'-c','50','-n','6000000','-P','16','-t','set','-r','100000','-q'],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    subprocess.run(['perf','record','-q','--call-graph','dwarf,16384','-F','2000','-t',tid,'-o',f'/tmp/perf-{label}.data','--','sleep','3'],stderr=subprocess.DEVNULL)
    bench.wait(); proc.terminate(); proc.wait()
subprocess.run(['rm','-rf',log])
