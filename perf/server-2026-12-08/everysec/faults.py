"""faults.py (NEXUS=binary, DISK=directory on a real filesystem): glommio, 1 shard, SET -P 16
(redis-benchmark -n 6 M) against a fresh nexus with an `everysec` log in DISK;
`perf record -e page-faults --call-graph dwarf` of the shard's thread for 4 s into
/tmp/perf-faults.data, then the faults' call stacks (`perf report --stdio`) into
faults-report.txt. Where the shard still touches fresh pages. See README.md."""
import sys, os, time, subprocess
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'server-2026-12-07', 'cpu')); import meter
from self_profile_common import shard_tid
b = os.environ.get('NEXUS', 'target/release/nexus')
log = os.environ.get('DISK', '/var/tmp') + '/nexus-perf-faults'
subprocess.run(['rm', '-rf', log])
_, port, proc = meter.start_nexus(b, 'faults', 17899, meter.aof_config(log), 'glommio')
time.sleep(1.5)
tid = shard_tid(proc.pid)
bench = subprocess.Popen(['redis-benchmark', '-p', str(port), '-c', '50', '-n', '20000000', '-P', '16', '-t', 'set', '-r', '100000', '-q'],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(3)
subprocess.run(['perf', 'record', '-q', '-e', 'page-faults', '-c', '1', '--call-graph', 'dwarf,32768', '-t', tid, '-o', '/tmp/perf-faults.data', '--', 'sleep', '4'],
               stderr=subprocess.DEVNULL)
bench.kill(); bench.wait(); proc.terminate(); proc.wait()
subprocess.run(['rm', '-rf', log])
rep = subprocess.run(['perf', 'report', '-i', '/tmp/perf-faults.data', '--stdio', '--no-children', '-G', '--percent-limit', '2'], capture_output=True, text=True).stdout
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'faults-report.txt'), 'w').write(rep)
print(rep[:6000])
