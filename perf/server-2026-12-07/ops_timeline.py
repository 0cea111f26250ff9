# Prints the server's commands per second in 50 ms windows from INFO (total_commands_processed),
# with aof_rewrite_in_progress and aof_rewrites. Usage: python3 ops_timeline.py PORT SECONDS
import socket, time, sys, re
port=int(sys.argv[1]); dur=float(sys.argv[2])
s=socket.create_connection(('127.0.0.1',port))
def info():
    s.sendall(b'*1\r\n$4\r\nINFO\r\n')
    buf=b''
    while True:
        buf+=s.recv(65536)
        m=re.match(rb'\$(\d+)\r\n',buf)
        if m and len(buf)>=m.end()+int(m.group(1))+2: break
    t=buf.decode()
    cmds=int(re.search(r'total_commands_processed:(\d+)',t).group(1))
    rw=re.search(r'aof_rewrite_in_progress:(\d+)',t); n=re.search(r'aof_rewrites:(\d+)',t)
    return cmds, (rw.group(1) if rw else '-'), (n.group(1) if n else '-')
t0=time.time(); prev=None
while time.time()-t0<dur:
    now=time.time(); c,rw,n=info()
    if prev: print(f"{now-t0:6.2f} {(c-prev[1])/(now-prev[0])/1e6:6.3f} Mops rw={rw} n={n}")
    prev=(now,c)
    time.sleep(0.05)
