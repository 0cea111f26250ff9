"""alloc_callers.py (NEXUS=binary, DISK=directory on a real filesystem): glommio, 1 shard,
SET -P 16; a fresh nexus without a log, then with an `everysec` log in DISK; `perf record
--call-graph dwarf` of the shard's thread for 2 s each, with the commands run in the window;
prints who calls mimalloc's free and malloc (the callers two frames up), in samples per
million commands: where the log adds allocations. See README.md."""
import sys, os, time, subprocess, collections
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'server-2026-12-07', 'cpu')); import meter
from self_profile_common import profile_under_set
b = os.environ.get('NEXUS', 'target/release/nexus')
log = os.environ.get('DISK', '/var/tmp') + '/nexus-perf-alloc'
for label, cfg in [('nolog', meter.ONE_SHARD), ('es', meter.aof_config(log))]:
    n = profile_under_set(b, label, cfg, ['--call-graph', 'dwarf,16384', '-F', '2000', '-o', f'/tmp/perf-alloc-{label}.data'], 2, log)
    script = subprocess.run(['perf', 'script', '-i', f'/tmp/perf-alloc-{label}.data', '-F', 'ip,sym', '--no-inline'], capture_output=True, text=True).stdout
    callers = collections.Counter()
    for sample in script.split('\n\n'):
        frames = [l.split(None, 1)[1] if len(l.split()) > 1 else '?' for l in sample.strip().splitlines()]
        if frames and frames[0].startswith(('mi_free', '_mi_theap_malloc', 'mi_theap_malloc', '_mi_page_malloc', 'mi_malloc', '_mi_malloc')):
            rest = [f for f in frames[1:] if not f.startswith(('mi_', '_mi_', '__rust', 'alloc::', 'core::ptr::drop'))]
            callers[frames[0].split('(')[0][:28] + ' <- ' + ' <- '.join(x[:70] for x in rest[:2])] += 1
    print(f'== {label}: {n / 2:.0f} commands/s; allocator {sum(callers.values()) * 1e6 / n:.1f} per M commands (samples at 2 kHz)')
    for c, v in callers.most_common(12):
        print(f'  {v * 1e6 / n:6.1f}  {c}')
