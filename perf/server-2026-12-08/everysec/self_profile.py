"""self_profile.py (NEXUS=binary, DISK=directory on a real filesystem, REPS=rounds): glommio, 1
shard, SET -P 16 (redis-benchmark -n 6 M); a fresh nexus without a log, then with an
`everysec` log in DISK, alternating; `perf record -F 4000` (no call stacks) of the shard's
thread for 3 s, with the commands it ran in that window (INFO's total_commands_processed).
Prints each symbol's self samples per million commands, summed over the rounds, for the two
setups side by side: where the log's extra cost per request lands, function by function."""
import sys, os, time, subprocess, collections
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'server-2026-12-07', 'cpu')); import meter
from self_profile_common import profile_under_set
b = os.environ.get('NEXUS', 'target/release/nexus')
log = os.environ.get('DISK', '/var/tmp') + '/nexus-perf-self'


samples = {'nolog': collections.Counter(), 'es': collections.Counter()}
done = {'nolog': 0, 'es': 0}
for rep in range(int(os.environ.get('REPS', '2'))):
    for label, cfg in [('nolog', meter.ONE_SHARD), ('es', meter.aof_config(log))]:
        n = profile_under_set(b, label, cfg, ['-F', '4000', '-o', f'/tmp/perf-self-{label}.data'], 3, log)
        rep_out = subprocess.run(['perf', 'report', '-i', f'/tmp/perf-self-{label}.data', '--stdio', '--no-children', '-F', 'sample,sym',
                                  '-g', 'none'], capture_output=True, text=True).stdout
        for line in rep_out.splitlines():
            f = line.split(None, 1)
            if len(f) == 2 and f[0].isdigit():
                samples[label][f[1].strip()] += int(f[0])
        done[label] += n
        print(f'{label}: {n / 3:.0f} commands/s in the window', file=sys.stderr, flush=True)
per = {k: {s: v * 1e6 / done[k] for s, v in samples[k].items()} for k in samples}
tot = {k: sum(per[k].values()) for k in per}
print(f'samples per million commands: nolog {tot["nolog"]:.0f}, es {tot["es"]:.0f} ({tot["es"] / tot["nolog"]:.3f}x)')
print(f'{"nolog":>8} {"es":>8} {"es-nolog":>9}  symbol')
syms = sorted(set(per['nolog']) | set(per['es']), key=lambda s: -abs(per['es'].get(s, 0) - per['nolog'].get(s, 0)))
for s in syms[:45]:
    a, e = per['nolog'].get(s, 0), per['es'].get(s, 0)
    print(f'{a:8.1f} {e:8.1f} {e - a:+9.1f}  {s}')
