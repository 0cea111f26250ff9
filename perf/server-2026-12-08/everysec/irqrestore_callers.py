"""irqrestore_callers.py (NEXUS=binary, DISK=directory on a real filesystem): glommio, 1 shard,
SET -P 16; a fresh nexus without a log, then with an `everysec` log in DISK; `perf record -g`
(kernel call chains) of the shard's thread for 3 s each, with the commands run in the window;
prints the kernel callers of `_raw_spin_unlock_irqrestore` (the shard's largest added kernel
cost under the log in self_profile.py), in samples per million commands. See README.md."""
import sys, os, time, subprocess, collections
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'server-2026-12-07', 'cpu')); import meter
from self_profile_common import profile_under_set
b = os.environ.get('NEXUS', 'target/release/nexus')
log = os.environ.get('DISK', '/var/tmp') + '/nexus-perf-irq'
for label, cfg in [('nolog', meter.ONE_SHARD), ('es', meter.aof_config(log))]:
    n = profile_under_set(b, label, cfg, ['-g', '-F', '4000', '-o', f'/tmp/perf-irq-{label}.data'], 3, log)
    script = subprocess.run(['perf', 'script', '-i', f'/tmp/perf-irq-{label}.data', '-F', 'ip,sym'], capture_output=True, text=True).stdout
    callers = collections.Counter()
    for sample in script.split('\n\n'):
        frames = [l.split()[1] if len(l.split()) > 1 else '?' for l in sample.strip().splitlines()]
        if frames and frames[0] == '_raw_spin_unlock_irqrestore':
            callers[' <- '.join(frames[1:4])] += 1
    print(f'== {label}: {n / 3:.0f} commands/s; _raw_spin_unlock_irqrestore {sum(callers.values()) * 1e6 / n:.1f} per M commands')
    for c, v in callers.most_common(8):
        print(f'  {v * 1e6 / n:6.1f}  {c}')
