"""procs.py - the processes a bench run starts, and what /proc says about them.

Owns starting servers (each in its own session, so a Ctrl-C reaches only the suite), waiting
for their ports, stopping them by PID, and reading CPU time and memory of a process tree from
/proc. Never signals a process it did not start.
"""
import os
import signal
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def free_port():
    """free_port returns a loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_stat(text):
    """parse_stat returns (pid, ppid, cpu_ticks) from one /proc/PID/stat line.

    cpu_ticks is utime + stime + cutime + cstime: the process's own CPU time plus that of
    children it has reaped, so a tree sum counts every tick once. The command name may hold
    spaces and parentheses, so fields are taken after the last ')'.
    """
    pid = int(text[: text.index(" ")])
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); utime is field 14, so rest[11]..rest[14].
    ppid = int(rest[1])
    ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
    return pid, ppid, ticks


def parse_status_kib(text, key):
    """parse_status_kib returns the value in KiB of `key` (e.g. "VmHWM") in a
    /proc/PID/status text, or 0 when the key is absent (kernel threads, zombies)."""
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def start_time(pid):
    """start_time returns the start time (clock ticks after boot) of pid, or None if it is
    gone: with the PID it names one process for certain."""
    text = _read("/proc/%d/stat" % pid)
    if text is None:
        return None
    return int(text[text.rindex(")") + 2 :].split()[19])


def tree_pids(root):
    """tree_pids returns the PIDs of `root` and all its live descendants."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        text = _read("/proc/%s/stat" % name)
        if text is None:
            continue
        try:
            pid, ppid, _ = parse_stat(text)
        except (ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def tree_cpu_seconds(root):
    """tree_cpu_seconds returns user + sys CPU seconds of `root`'s process tree."""
    ticks = 0
    for pid in tree_pids(root):
        text = _read("/proc/%d/stat" % pid)
        if text is not None:
            ticks += parse_stat(text)[2]
    return ticks / CLK_TCK


def tree_kib(root, key):
    """tree_kib sums the /proc/PID/status value `key` (VmRSS, VmHWM) over the tree, KiB."""
    total = 0
    for pid in tree_pids(root):
        text = _read("/proc/%d/status" % pid)
        if text is not None:
            total += parse_status_kib(text, key)
    return total


def system_busy_seconds():
    """system_busy_seconds returns the CPU seconds all cores have spent busy since boot
    (user, nice, system, irq, softirq, steal from /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK


def reset_peak_rss(root):
    """reset_peak_rss sets VmHWM back to VmRSS for every process of the tree (writes 5 to
    /proc/PID/clear_refs, Linux >= 4.0). Returns False if any process refused."""
    ok = True
    for pid in tree_pids(root):
        try:
            with open("/proc/%d/clear_refs" % pid, "w") as f:
                f.write("5")
        except OSError:
            ok = False
    return ok


class Procs:
    """Procs starts servers and stops exactly those, by PID, in reverse order."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.running = []  # (name, Popen, log file)

    def start(self, name, argv, env=None, stdin=subprocess.DEVNULL, stdout=None):
        """start runs argv in a new session with stderr (and stdout, unless `stdout` says
        otherwise, e.g. subprocess.PIPE) in LOG_DIR/NAME.log; returns the Popen."""
        log = open(os.path.join(self.log_dir, name + ".log"), "wb")
        try:
            p = subprocess.Popen(argv, stdin=stdin, stdout=log if stdout is None else stdout,
                                 stderr=log, env=env, start_new_session=True)
        except OSError:
            log.close()
            raise
        self.running.append((name, p, log))
        return p

    def log_tail(self, name, lines=15):
        text = _read(os.path.join(self.log_dir, name + ".log")) or ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_port(self, name, p, port, timeout=20.0):
        """wait_port waits until 127.0.0.1:port accepts; raises RuntimeError with the
        process's log tail if it exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if p.poll() is not None:
                raise RuntimeError("%s exited with %s:\n%s" % (name, p.returncode,
                                                               self.log_tail(name)))
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("%s did not listen on %d:\n%s" % (name, port,
                                                                     self.log_tail(name)))
            time.sleep(0.05)

    def stop(self, p, grace=5.0):
        """stop sends SIGTERM to p (by PID), waits up to `grace` s, then SIGKILLs it and,
        if it left any, its descendants. Forgets p only once it is stopped, so that an
        exception in the middle (a second Ctrl-C) leaves it to stop_all."""
        for i, (name, q, log) in enumerate(self.running):
            if q is p:
                break
        else:
            return
        if p.poll() is None:
            left = [(pid, start_time(pid)) for pid in tree_pids(p.pid) if pid != p.pid]
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            for pid, started in left:  # workers that outlived their master (should not happen)
                if started is not None and start_time(pid) == started:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        self.running = [x for x in self.running if x[1] is not p]
        log.close()

    def stop_all(self):
        while self.running:
            self.stop(self.running[-1][1])
