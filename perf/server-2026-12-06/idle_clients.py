# usage: python3 idle.py BIN CONFIG EXECUTOR N -- RSS growth of `nexus run` for N idle clients
import os, socket, subprocess, sys, time
bin_, cfg, exe, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
p = subprocess.Popen([bin_, "run", "-c", cfg, "--listen", "127.0.0.1:7421", "--metrics-listen", "", "--executor", exe],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def rss():
    for line in open(f"/proc/{p.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
time.sleep(1.5)
conns = []
def ping(s):
    s.sendall(b"*1\r\n$4\r\nPING\r\n")
    assert s.recv(64) == b"+PONG\r\n"
for _ in range(20):
    s = socket.create_connection(("127.0.0.1", 7421)); ping(s); conns.append(s)
time.sleep(0.5)
before = rss()
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", 7421)); ping(s); conns.append(s)
time.sleep(1.0)
after = rss()
print(f"{exe}: {n} idle clients: RSS {before} KiB -> {after} KiB, {(after-before)*1024/n:.0f} bytes per client, {(after-before)/1024:.1f} MiB")
for s in conns: s.close()
p.terminate(); p.wait()
