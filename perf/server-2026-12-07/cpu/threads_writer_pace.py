# See README.md in this folder: what this script measures and how it was run.
import os, sys, subprocess, time, resource, statistics, shutil
rounds=int(sys.argv[1]); tck=os.sysconf('SC_CLK_TCK')
defs=[('off',os.environ.get('BASE','target/release/nexus'),''),('es2ms',os.environ.get('BASE','target/release/nexus'),'es'),('es10ms',os.environ['PACE10'],'es')]
servers=[]; port=17860
for label,b,kind in defs:
    d=f'/tmp/nexus-perf-log-{label}'; shutil.rmtree(d,ignore_errors=True)
    c='load = false\nagents = []\n[placement]\nshards = 1\n'
    if kind: c+=f'[persistence]\nmode = "aof"\nfsync = "everysec"\ndir = "{d}"\n'
    cfg=f'/tmp/nexus-perf-w-{label}.toml'; open(cfg,'w').write(c)
    p=subprocess.Popen([b,'run','-c',cfg,'--executor','threads','--listen',f'127.0.0.1:{port}','--metrics-listen',''],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
    servers.append((label,port,p)); port+=1
time.sleep(3)
def scpu(pid):
    f=open(f'/proc/{pid}/stat').read().rsplit(')',1)[1].split(); return (int(f[11])+int(f[12]))/tck
cases=[('set',16,3000000),('incr',16,3000000)]
res={}
try:
  for r in range(rounds):
    for t,P,n in cases:
        order=servers[r%len(servers):]+servers[:r%len(servers)]
        for label,port,p in order:
            s0=scpu(p.pid); t0=time.time()
            out=subprocess.run(['redis-benchmark','-p',str(port),'-c','50','-n',str(n),'-P',str(P),'-t',t,'-r','100000','--csv'],capture_output=True,text=True).stdout
            t1=time.time(); s1=scpu(p.pid)
            rps=float(out.strip().splitlines()[-1].split(',')[1].strip('"'))
            res.setdefault((t,P),{}).setdefault(label,[]).append((rps, n/(s1-s0)))
finally:
    for _,_,p in servers: p.terminate()
for (t,P),d in res.items():
    print(f'== {t.upper()} -P {P}')
    for label,v in d.items():
        rr=[a[0]/b[0] for a,b in zip(v,d['off'])]; rc=[a[1]/b[1] for a,b in zip(v,d['off'])]
        print(f'  {label:7} rps {statistics.median(x[0] for x in v):10.0f}  /off {statistics.median(rr):.2f}x ({min(rr):.2f}-{max(rr):.2f})  req/cpu-s /off {statistics.median(rc):.2f}x ({min(rc):.2f}-{max(rc):.2f})')
    rr=[a[0]/b[0] for a,b in zip(d['es10ms'],d['es2ms'])]
    print(f'  es10ms/es2ms {statistics.median(rr):.2f}x ({min(rr):.2f}-{max(rr):.2f})')
