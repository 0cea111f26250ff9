"""syscalls_per_request.py (NEXUS=binary, DISK=directory on a real filesystem): glommio, 1
shard, SET -P 16 (redis-benchmark -n 6 M), a fresh nexus without a log then with an
`everysec` log in DISK, twice; over 3 s of each, the shard thread's sendto, recvfrom and
io_uring_enter calls and context switches (`perf stat -t`), per second and per 1,000 requests.
Whether the log changes how the shard batches its replies. See README.md."""
import sys, os, time, subprocess
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cpu')); import meter
b = os.environ.get('NEXUS', 'target/release/nexus')
log = os.environ.get('DISK', '/var/tmp') + '/nexus-perf-syscalls'
for rep in range(2):
  for label, cfg in [('nolog', meter.ONE_SHARD), ('es', meter.aof_config(log))]:
    subprocess.run(['rm','-rf',log])
    _,port,proc = meter.start_nexus(b,label,17899,cfg,'glommio')
    time.sleep(1.5)
    tid=[t for t in os.listdir(f'/proc/{proc.pid}/task') if open(f'/proc/{proc.pid}/task/{t}/comm').read().startswith('nexus-shard') and '0\n'==next(l.split()[1]+'\n' for l in open(f'/proc/{proc.pid}/task/{t}/status') if l.startswith('Cpus_allowed_list'))][0]
    bench=subprocess.Popen(['redis-benchmark','-p',str(port),'-c','50','-n','6000000','-P','16','-t','set','-r','100000','--csv'],stdout=subprocess.PIPE,stderr=subprocess.DEVNULL,text=True)
    time.sleep(0.5)
    r=subprocess.run(['perf','stat','-x,','-e','syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_io_uring_enter,context-switches','-t',tid,'--','sleep','3'],capture_output=True,text=True)
    out=bench.communicate()[0]; proc.terminate(); proc.wait()
    rps=float(out.strip().splitlines()[-1].split(',')[1].strip('"'))
    counts={l.split(',')[2]:float(l.split(',')[0]) for l in r.stderr.strip().splitlines() if l and l[0].isdigit()}
    print(label, f'{rps:.0f} rps', {k: f'{v/3:.0f}/s, {v/3/rps*1000:.1f} per 1k req' for k,v in counts.items()})
subprocess.run(['rm','-rf',log])
