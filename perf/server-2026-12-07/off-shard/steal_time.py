"""steal_time.py (NEXUS=binary, DISK=directory on a real filesystem): glommio, 1 shard on CPU 0,
SET -P 16 (4 M requests), a fresh nexus without a log then with an `everysec` log in DISK,
twice; CPU 0's time split from /proc/stat over each run, steal included. Whether the
hypervisor takes the shard's vCPU while the log runs. See README.md."""
import sys, os, time, subprocess
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cpu')); import meter
b = os.environ.get('NEXUS', 'target/release/nexus')
log = os.environ.get('DISK', '/var/tmp') + '/nexus-perf-steal'
def cpu0():
    for l in open('/proc/stat'):
        if l.startswith('cpu0 '): f=list(map(int,l.split()[1:])); return f
for rep in range(2):
  for label, cfg in [('nolog', meter.ONE_SHARD), ('es', meter.aof_config(log))]:
    subprocess.run(['rm','-rf',log])
    _,port,proc = meter.start_nexus(b,label,17899,cfg,'glommio')
    time.sleep(1.5)
    a=cpu0(); t=time.time()
    out=subprocess.run(['redis-benchmark','-p',str(port),'-c','50','-n','4000000','-P','16','-t','set','-r','100000','--csv'],capture_output=True,text=True).stdout
    b=cpu0(); proc.terminate(); proc.wait()
    d=[y-x for x,y in zip(a,b)]; tot=sum(d)
    names=['user','nice','system','idle','iowait','irq','softirq','steal']
    print(label, out.strip().splitlines()[-1].split(',')[1], ' '.join(f'{n} {100*v/tot:.1f}%' for n,v in zip(names,d)))
subprocess.run(['rm','-rf',log])
