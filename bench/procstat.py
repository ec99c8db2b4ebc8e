"""procstat.py — a process's CPU time from /proc, for the benchmarks."""
import os


def threads_cpu_ns(pid):
    """Sum of the run time (ns) of every thread of pid, from schedstat."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        pass
    return total
