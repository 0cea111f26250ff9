"""What the profiling scripts in this folder share: the pinned shard's thread id and the
server's command count (INFO's total_commands_processed)."""
import os, subprocess


def shard_tid(pid):
    """The thread of a 1-shard nexus's shard: named nexus-shard-*, pinned to CPU 0."""
    return [t for t in os.listdir(f'/proc/{pid}/task')
            if open(f'/proc/{pid}/task/{t}/comm').read().startswith('nexus-shard')
            and any(l.startswith('Cpus_allowed_list') and l.split()[1] == '0' for l in open(f'/proc/{pid}/task/{t}/status'))][0]


def commands(port):
    out = subprocess.run(['redis-cli', '-p', str(port), 'info', 'stats'], capture_output=True, text=True).stdout
    return int(next(l for l in out.splitlines() if l.startswith('total_commands_processed')).split(':')[1])
