"""CPU seconds (user + system) as the Python bench scripts report them;
tests/bench/bench_util.h does the same for the C ones.  Imported from the
scripts' own directory (python puts it first on sys.path)."""
import os


def cpu_of(pid):
    """Process pid's CPU time so far; -1.0 without a pid or when /proc
    cannot say (the process is gone)."""
    if not pid:
        return -1.0
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return -1.0


def cpu_self():
    """This process's CPU time so far."""
    t = os.times()
    return t.user + t.system
