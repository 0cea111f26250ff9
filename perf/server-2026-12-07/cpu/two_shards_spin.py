# See README.md in this folder: what this script measures and how it was run.
import os, sys, subprocess, time, resource, statistics
rounds=int(sys.argv[1]); tck=os.sysconf('SC_CLK_TCK')
B=os.environ.get('NEXUS','target/release/nexus')
confs={'2sh-spin200':'[placement]\nshards = 2\n','2sh-spin0':'[placement]\nshards = 2\n[idle]\nspin_before_park_us = 0\n','1sh':'[placement]\nshards = 1\n'}
servers=[]; port=17840
for label,c in confs.items():
    cfg=f'/tmp/nexus-perf-{label}.toml'; open(cfg,'w').write('load = false\nagents = []\n'+c)
    p=subprocess.Popen([B,'run','-c',cfg,'--executor','glommio','--listen',f'127.0.0.1:{port}','--metrics-listen',''],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
    servers.append((label,port,p)); port+=1
p=subprocess.Popen(['taskset','-c','0','redis-server','--port',str(port),'--save','','--appendonly','no'],stdout=subprocess.DEVNULL); servers.append(('redis',port,p))
time.sleep(2)
def pid_of(port):
    return int(subprocess.run(['pgrep','-f',f'redis-server.*{port}|listen 127.0.0.1:{port}'],capture_output=True,text=True).stdout.split()[0])
pids={l:pid_of(port) for l,port,_ in servers}
def scpu(pid):
    f=open(f'/proc/{pid}/stat').read().rsplit(')',1)[1].split(); return (int(f[11])+int(f[12]))/tck
cases=[('get',1,300000),('get',16,2000000),('set',16,2000000)]
res={}
try:
  for r in range(rounds):
    for t,P,n in cases:
        order=servers[r%len(servers):]+servers[:r%len(servers)]
        for label,port,p in order:
            pid=pids[label]
            s0=scpu(pid); t0=time.time(); r0=resource.getrusage(resource.RUSAGE_CHILDREN)
            out=subprocess.run(['redis-benchmark','-p',str(port),'-c','50','-n',str(n),'-P',str(P),'-t',t,'-r','100000','--csv'],capture_output=True,text=True).stdout
            t1=time.time(); s1=scpu(pid); r1=resource.getrusage(resource.RUSAGE_CHILDREN)
            rps=float(out.strip().splitlines()[-1].split(',')[1].strip('"'))
            w=t1-t0; c=(r1.ru_utime+r1.ru_stime)-(r0.ru_utime+r0.ru_stime); s=s1-s0
            res.setdefault((t,P),{}).setdefault(label,[]).append((rps, n/s if s else 0, 100*c/w, 100*s/w))
finally:
    for _,_,p in servers: p.terminate()
for (t,P),d in res.items():
    print(f'== {t.upper()} -P {P}')
    for label,v in d.items():
        rr=[a[0]/b[0] for a,b in zip(v,d['redis'])]
        print(f'  {label:12} rps {statistics.median(x[0] for x in v):10.0f} ({statistics.median(rr):.2f}x redis, {min(rr):.2f}-{max(rr):.2f})  req/cpu-s {statistics.median(x[1] for x in v):10.0f}  client {statistics.median(x[2] for x in v):3.0f}%  server {statistics.median(x[3] for x in v):3.0f}%')
