# See README.md in this folder: what this script measures and how it was run.
import os, sys, subprocess, time, resource, statistics, signal
# ab.py ROUNDS bin:label ...  (redis-server is added); 1 shard glommio each
rounds=int(sys.argv[1]); bins=[a.split(':') for a in sys.argv[2:]]
tck=os.sysconf('SC_CLK_TCK')
procs=[]; port=17800
servers=[]
for b,label in bins:
    cfg=f'/tmp/nexus-perf-{label}.toml'; open(cfg,'w').write('load = false\nagents = []\n[placement]\nshards = 1\n')
    p=subprocess.Popen([b,'run','-c',cfg,'--executor','glommio','--listen',f'127.0.0.1:{port}','--metrics-listen',''],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
    servers.append((label,port,p)); port+=1
p=subprocess.Popen(['taskset','-c','0','redis-server','--port',str(port),'--save','','--appendonly','no'],stdout=subprocess.DEVNULL)
servers.append(('redis',port,p))
time.sleep(2)
def scpu(pid):
    f=open(f'/proc/{pid}/stat').read().rsplit(')',1)[1].split(); return (int(f[11])+int(f[12]))/tck
cases=[('get',1,300000),('set',1,300000),('get',16,2000000),('set',16,2000000)]
if os.environ.get('P1_ONLY'): cases=cases[:2]
res={}
try:
  for r in range(rounds):
    for t,P,n in cases:
        order=servers[r%len(servers):]+servers[:r%len(servers)]
        for label,port,p in order:
            s0=scpu(p.pid); t0=time.time(); r0=resource.getrusage(resource.RUSAGE_CHILDREN)
            out=subprocess.run(['redis-benchmark','-p',str(port),'-c','50','-n',str(n),'-P',str(P),'-t',t,'-r','100000','--csv'],capture_output=True,text=True).stdout
            t1=time.time(); s1=scpu(p.pid); r1=resource.getrusage(resource.RUSAGE_CHILDREN)
            rps=float(out.strip().splitlines()[-1].split(',')[1].strip('"'))
            w=t1-t0; c=(r1.ru_utime+r1.ru_stime)-(r0.ru_utime+r0.ru_stime); s=s1-s0
            res.setdefault((t,P),{}).setdefault(label,[]).append((rps, n/s if s else 0, 100*c/w, 100*s/w))
    print(f'round {r+1} done', file=sys.stderr)
finally:
    for _,_,p in servers: p.terminate()
for (t,P),d in res.items():
    print(f'== {t.upper()} -P {P}')
    for label,v in d.items():
        print(f'  {label:8} rps {statistics.median(x[0] for x in v):10.0f}  req/cpu-s {statistics.median(x[1] for x in v):10.0f}  client {statistics.median(x[2] for x in v):3.0f}%  server {statistics.median(x[3] for x in v):3.0f}%')
    base=bins[0][1]
    for label in d:
        if label==base: continue
        rr=[a[0]/b[0] for a,b in zip(d[label],d[base])]; rc=[a[1]/b[1] for a,b in zip(d[label],d[base])]
        print(f'  {label}/{base}: rps {statistics.median(rr):.2f}x ({min(rr):.2f}-{max(rr):.2f})  req/cpu-s {statistics.median(rc):.2f}x ({min(rc):.2f}-{max(rc):.2f})')
