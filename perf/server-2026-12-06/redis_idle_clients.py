import socket,subprocess,time
p=subprocess.Popen(["redis-server","--port","7422","--save","","--appendonly","no","--maxclients","20000"],stdout=subprocess.DEVNULL)
time.sleep(1)
def rss():
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])
cs=[]
def c():
    s=socket.create_connection(("127.0.0.1",7422)); s.sendall(b"*1\r\n$4\r\nPING\r\n"); assert s.recv(64)==b"+PONG\r\n"; cs.append(s)
for _ in range(20): c()
time.sleep(0.5); b=rss()
for _ in range(10000): c()
time.sleep(1); a=rss()
print(f"redis-server: 10000 idle clients: RSS {b} KiB -> {a} KiB, {(a-b)*1024/10000:.0f} bytes per client")
for s in cs: s.close()
p.terminate(); p.wait()
