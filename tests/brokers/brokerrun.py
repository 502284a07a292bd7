#!/usr/bin/python3
"""Bookkeeping for the test brokers: free ports, one directory per run,
cleanup of runs whose owner died, and a watchdog.

A *run* is what one test session (pytest) or one `make bench` starts.  It
is a directory ROOT/<owner pid>-<random>/ (ROOT is
$TMPDIR/fedmsg-c-test-brokers, TMPDIR defaulting to /tmp) holding

  owner   "PID STARTTIME" of the owning process (STARTTIME from
          /proc/PID/stat, so that a reused PID is not taken for the owner)
  ports   the TCP ports reserved for the run's brokers, one a line
  watchdog  the watchdog's PID, written by the owner as it starts one

Every process started for a run's brokers carries FM_BROKER_RUN=<run dir>
in its environment (broker.sh passes its own on); that is how they are
found again, by /proc/PID/environ: never by name, never by a PID alone.

  brokerrun.py ports N        N free ports, not reserved by a live run
  brokerrun.py new OWNER N    clean up dead runs, make a run for OWNER
                              with N reserved ports and a watchdog;
                              prints "RUNDIR PORT..."
  brokerrun.py close RUNDIR   kill what the run still has, remove RUNDIR
  brokerrun.py reap           clean up runs whose owner is gone
  brokerrun.py watch RUNDIR PID START
                              (the watchdog itself) wait until the owner
                              PID with that STARTTIME is gone, then clean
                              the run up; ends quietly when RUNDIR is
                              removed (the normal end)

Ports are picked at random in PORT_RANGE, below the kernel's ephemeral
range (so neither an outgoing connection nor a bind to port 0 takes one in
the meantime), away from the fixed ports test brokers used to have (a
system RabbitMQ or ActiveMQ, or a run of an older tree, may hold those),
checked free by binding them, and recorded under a lock so that two runs
never get the same one.
"""
import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

TAG = "FM_BROKER_RUN"
PORT_RANGE = (20000, 30000)
# the brokers' usual ports and what the old fixed setup used (25672 is
# RabbitMQ's distribution port; rabbitmqctl listens 10000 above it)
AVOID = set(range(25660, 25700)) | {4369, 4371, 5671, 5672, 15672, 61613}


def root():
    return Path(os.environ.get("TMPDIR") or "/tmp") / "fedmsg-c-test-brokers"


# ---- processes -------------------------------------------------------------

def proc_start(pid):
    """The start time of a live (not zombie) PID, or None."""
    try:
        with open("/proc/%d/stat" % int(pid), "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode()


def owner_alive(run_dir):
    """Is the process that owns run_dir still there?  (Without an owner
    file: only while the run's watchdog lives, i.e. the run is being
    closed; the owner file is written before the run is visible.)"""
    try:
        pid, start = (Path(run_dir) / "owner").read_text().split()
    except (OSError, ValueError):
        # close() removes the owner file first: while the run's watchdog
        # lives, its owner is finishing it, not dead
        try:
            wd = int((Path(run_dir) / "watchdog").read_text())
        except (OSError, ValueError):
            return False
        return proc_start(wd) is not None
    return proc_start(pid) == start


def tagged(run_dir):
    """PIDs of the live processes whose environment names run_dir."""
    want = ("%s=%s" % (TAG, run_dir)).encode()
    me = os.getpid()
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit() or int(e) == me:
            continue
        try:
            with open("/proc/%s/environ" % e, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if want in env and proc_start(e) is not None:
            out.append(int(e))
    return out


def kill_tagged(run_dir, grace=10.0):
    """SIGTERM every process of the run, SIGKILL what is left after grace
    seconds; again until none is left (a dying wrapper may have started
    a child meanwhile).  Returns the PIDs signalled."""
    seen = set()
    deadline = time.monotonic() + grace
    sig = signal.SIGTERM
    while True:
        pids = tagged(run_dir)
        if not pids:
            return sorted(seen)
        if time.monotonic() > deadline:
            sig = signal.SIGKILL
        for p in pids:
            if os.environ.get("FM_BROKERRUN_DEBUG"):
                try:
                    cmd = open("/proc/%d/cmdline" % p, "rb").read()
                except OSError:
                    cmd = b"?"
                print("brokerrun: %s %d %r" % (sig, p, cmd[:200]),
                      file=sys.stderr)
            if p not in seen or sig == signal.SIGKILL:
                try:
                    os.kill(p, sig)
                except OSError:
                    pass
            seen.add(p)
        time.sleep(0.1)
        if time.monotonic() > deadline + 20:
            return sorted(seen)     # unkillable (D state): give up


# ---- ports -----------------------------------------------------------------

def port_free(port):
    """Could a broker listen on 127.0.0.1:port?  (With SO_REUSEADDR, as
    the brokers bind: connections in TIME_WAIT do not count.)"""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _candidates():
    lo, hi = PORT_RANGE
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            elo, ehi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        elo, ehi = 32768, 60999
    return [p for p in range(lo, hi)
            if p not in AVOID and not elo <= p <= ehi]


def reserved_ports(exclude=None):
    """Ports reserved by the live runs (but exclude)."""
    out = set()
    base = root()
    if not base.is_dir():
        return out
    for d in base.iterdir():
        if d.name.startswith(".") or d == exclude or not owner_alive(d):
            continue
        try:
            out.update(int(x) for x in (d / "ports").read_text().split())
        except (OSError, ValueError):
            pass
    return out


def pick_ports(n, taken=()):
    """n distinct free ports of PORT_RANGE, none of them in taken."""
    cand = _candidates()
    random.SystemRandom().shuffle(cand)
    taken = set(taken)
    out = []
    for p in cand:
        if len(out) == n:
            break
        if p not in taken and port_free(p):
            out.append(p)
    if len(out) < n:
        raise RuntimeError("brokerrun: fewer than %d free ports in %d-%d"
                           % (n, PORT_RANGE[0], PORT_RANGE[1]))
    return out


class _Lock:
    """ROOT/.lock, held while ports are reserved or runs cleaned up."""

    def __enter__(self):
        base = root()
        base.mkdir(parents=True, exist_ok=True)
        self.f = open(base / ".lock", "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


# ---- runs ------------------------------------------------------------------

def reap():
    """Clean up every run whose owner is gone: kill its processes, remove
    its directory.  Returns [(run dir, PIDs killed)]."""
    done = []
    base = root()
    if not base.is_dir():
        return done
    with _Lock():
        for d in sorted(base.iterdir()):
            if d.name.startswith(".") or not d.is_dir() or owner_alive(d):
                continue
            killed = kill_tagged(d, grace=5.0)
            shutil.rmtree(d, ignore_errors=True)
            done.append((d, killed))
    return done


class Run:
    """One run's directory; see the module's docstring."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.watchdog = None
        self.ports = []

    @classmethod
    def create(cls, owner=None):
        """Clean up dead runs, then make a run owned by owner (a PID,
        default this process)."""
        owner = os.getpid() if owner is None else int(owner)
        start = proc_start(owner)
        if start is None:
            raise RuntimeError("brokerrun: no process %d" % owner)
        reaped = reap()
        base = root()
        base.mkdir(parents=True, exist_ok=True)
        d = base / ("%d-%s" % (owner, uuid.uuid4().hex[:8]))
        tmp = base / (".new-" + d.name)
        tmp.mkdir()
        (tmp / "owner").write_text("%d %s\n" % (owner, start))
        (tmp / "ports").write_text("")
        tmp.rename(d)
        run = cls(d)
        run.reaped = reaped         # [(run dir, PIDs killed)]
        return run

    def env(self):
        """The environment entry that marks a process as the run's."""
        return {TAG: str(self.dir)}

    def reserve(self, n):
        """n more free ports, recorded for this run."""
        with _Lock():
            ports = pick_ports(n, reserved_ports(exclude=self.dir)
                               | set(self.ports))
            with open(self.dir / "ports", "a") as f:
                f.write("".join("%d\n" % p for p in ports))
        self.ports.extend(ports)
        return ports

    def watch(self):
        """Start the watchdog (once): a process of its own session that
        outlives the owner, kills the run's processes when the owner is
        gone (even by SIGKILL) and ends when the run directory is
        removed.  The owner is named on its command line and its PID file
        written here, so the watchdog never writes into the directory: a
        file it made while close() removed the directory would keep the
        directory, and the watchdog, alive."""
        if self.watchdog is None:
            pid, start = (self.dir / "owner").read_text().split()
            env = {k: v for k, v in os.environ.items() if k != TAG}
            self.watchdog = subprocess.Popen(
                ["/usr/bin/python3", os.path.abspath(__file__), "watch",
                 str(self.dir), pid, start], start_new_session=True,
                cwd="/", env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            (self.dir / "watchdog").write_text("%d\n" % self.watchdog.pid)
        return self.watchdog

    def kill(self, grace=10.0):
        return kill_tagged(self.dir, grace)

    def close(self):
        """Kill whatever the run still has; remove its directory (which
        ends the watchdog)."""
        killed = self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.watchdog is not None:
            try:
                self.watchdog.wait(5)
            except subprocess.TimeoutExpired:
                pass
        return killed

    def on_signals(self, signals=(signal.SIGTERM, signal.SIGHUP)):
        """Clean the run up when this (owning) process gets one of the
        signals, then die of it as it would have."""
        def handler(signum, frame):
            self.close()
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        for s in signals:
            signal.signal(s, handler)


def watch(run_dir, pid, start, interval=0.5):
    run_dir = Path(run_dir)
    while run_dir.is_dir():
        if proc_start(pid) != start:
            with _Lock():
                if run_dir.is_dir():
                    kill_tagged(run_dir)
                    shutil.rmtree(run_dir, ignore_errors=True)
            return
        time.sleep(interval)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    try:
        if cmd == "ports" and len(argv) == 3:
            with _Lock():
                print(" ".join(str(p) for p in pick_ports(
                    int(argv[2]), reserved_ports())))
        elif cmd == "new" and len(argv) == 4:
            run = Run.create(int(argv[2]))
            ports = run.reserve(int(argv[3]))
            run.watch()
            print(run.dir, " ".join(str(p) for p in ports))
        elif cmd == "close" and len(argv) == 3:
            killed = Run(argv[2]).close()
            if killed:
                print("brokerrun: killed what %s still had: %s"
                      % (argv[2], " ".join(map(str, killed))), file=sys.stderr)
        elif cmd == "reap" and len(argv) == 2:
            for d, killed in reap():
                print("brokerrun: cleaned up %s (killed %s)"
                      % (d, killed or "nothing"))
        elif cmd == "watch" and len(argv) == 5:
            watch(argv[2], argv[3], argv[4])
        else:
            print("usage: brokerrun.py ports N | new OWNER_PID N | "
                  "close RUNDIR | reap | watch RUNDIR PID START",
                  file=sys.stderr)
            return 2
    except (RuntimeError, ValueError, OSError) as e:
        print("brokerrun: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
