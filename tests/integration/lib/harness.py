"""harness.py - shared fixtures for mitmd's integration tests (Python 3 standard library only).

Owns: temp dirs, free ports, the mitmd process under test (master + workers), the test PKI
(made with the openssl CLI), the nginx and Python origins, and proxy-client helpers.
Every process started here is stopped by PID when the test ends, also when it fails.
Everything listens on 127.0.0.1 only.
"""

import argparse
import contextlib
import ctypes
import hashlib
import http.client
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

LIB_DIR = os.path.dirname(os.path.abspath(__file__))
ORIGIN_PY = os.path.join(LIB_DIR, "origin.py")

# Proxy variables from the caller's environment would make curl or urllib bypass or
# re-route our proxy; the tests talk to 127.0.0.1 only, so drop them for us and children.
for _var in list(os.environ):
    if _var.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"):
        del os.environ[_var]


class TestFailure(Exception):
    """A check that a user would notice failed; the message says what was expected."""


def step(msg):
    """step prints what the test checks next."""
    print(f"CHECK: {msg}", flush=True)


def info(msg):
    print(f"  info: {msg}", flush=True)


def check(cond, msg):
    """check raises TestFailure(msg) when cond is false, and prints 'ok' otherwise."""
    if not cond:
        raise TestFailure(msg)


def wait_until(pred, timeout, interval=0.05):
    """wait_until polls pred() until it returns a true value (returned) or timeout (None)."""
    deadline = time.monotonic() + timeout
    while True:
        val = pred()
        if val:
            return val
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def free_port():
    """free_port returns a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n):
    """free_ports returns `n` distinct free_port() ports (free_port alone may repeat one)."""
    out = []
    while len(out) < n:
        p = free_port()
        if p not in out:
            out.append(p)
    return out


def read_records(path):
    """read_records returns the JSON Lines records of a -w file ([] while it does not exist)."""
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tail(path, max_bytes=6000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"


def _pdeathsig():
    """Runs in the child before exec: die with SIGTERM if the test process dies first,
    so a killed test (ctest timeout) leaves no proxy or origin behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


# ---- /proc helpers ----------------------------------------------------------------------


def proc_stat(pid):
    """proc_stat returns (state, ppid) of pid, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2:].split()
    return rest[0], int(rest[1])


def proc_alive(pid):
    """proc_alive is true while pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def children_of(ppid):
    """children_of lists live pids whose parent is ppid (scans /proc/*/stat)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st is not None and st[1] == ppid and st[0] not in ("Z", "X"):
            kids.append(int(name))
    return sorted(kids)


def kill_pid(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop_popen(proc, grace=5.0, sig=signal.SIGTERM):
    """stop_popen sends sig, waits up to grace seconds, then SIGKILLs and reaps."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ---- the test runner --------------------------------------------------------------------


class Env:
    """Env is one test's context: the mitmd binary, a temp dir, and the processes to stop."""

    def __init__(self, mitmd, tmp, stack, verbose):
        self.mitmd_bin = mitmd
        self.tmp = tmp
        self.stack = stack
        self.verbose = verbose
        self.logs = []  # (label, path) dumped on failure
        self.mitmds = []

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def mkdir(self, name):
        p = self.path(name)
        os.makedirs(p, exist_ok=True)
        return p

    def add_log(self, label, path):
        self.logs.append((label, path))

    def dump_logs(self):
        for label, path in self.logs:
            print(f"----- {label}: {path} (tail) -----")
            print(tail(path))

    def mitmd(self, args=(), workers=1, confdir=None, start=True, name="mitmd"):
        """mitmd starts (by default) a Mitmd that is stopped when the test ends."""
        m = Mitmd(self, args=args, workers=workers, confdir=confdir, name=name)
        self.stack.callback(m.stop)
        self.mitmds.append(m)
        if start:
            m.start()
        return m

    def pki(self):
        return Pki(self.mkdir("pki"))

    def nginx(self, pki, files):
        n = Nginx(self, pki, files)
        self.stack.callback(n.stop)
        n.start()
        return n

    def origin(self, pki=None):
        o = Origin(self, pki)
        self.stack.callback(o.stop)
        o.start()
        return o

    def run_cmd(self, argv, timeout=30, input=None, check_rc=None):
        """run_cmd runs argv, returns CompletedProcess with text output (bytes if input is bytes)."""
        text = not isinstance(input, bytes)
        if self.verbose:
            info("run: " + " ".join(argv))
        try:
            cp = subprocess.run(argv, input=input, capture_output=True, timeout=timeout,
                                text=text, preexec_fn=_pdeathsig)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"command timed out after {timeout}s: {' '.join(argv)}")
        if check_rc is not None and cp.returncode != check_rc:
            raise TestFailure(f"{' '.join(argv)} exited {cp.returncode}, expected {check_rc}; "
                              f"stderr: {cp.stderr!r}")
        return cp


def run(test_fn, doc=None):
    """run parses --mitmd, runs test_fn(env) in a fresh temp dir, stops every process,
    and exits 0 on success, 1 on failure (with logs of the processes involved)."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--mitmd", required=True, help="path to the mitmd binary")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir for inspection")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    doc = " ".join(doc.split()) if doc else None
    for tool in ("curl", "openssl"):
        if shutil.which(tool) is None:
            print(f"FAIL: {tool} is not installed (apt-get install {tool})")
            sys.exit(1)
    mitmd = os.path.abspath(args.mitmd)
    if not os.access(mitmd, os.X_OK):
        print(f"FAIL: mitmd binary {mitmd} is not executable")
        sys.exit(1)
    name = os.path.splitext(os.path.relpath(os.path.abspath(sys.argv[0]),
                                            os.path.dirname(LIB_DIR)))[0]
    print(f"=== integration/{name}", flush=True)
    if doc:
        print(doc, flush=True)
    tmp = tempfile.mkdtemp(prefix="itest-")
    rc = 1
    started = time.monotonic()
    env = None
    try:
        with contextlib.ExitStack() as stack:
            env = Env(mitmd, tmp, stack, args.verbose)
            try:
                test_fn(env)
                for m in env.mitmds:
                    m.stop()
                    m.check_no_crash()
                rc = 0
            except TestFailure as e:
                print(f"FAIL: {e}", flush=True)
            except Exception:
                print("FAIL: unexpected exception in the test:", flush=True)
                traceback.print_exc(file=sys.stdout)
            if rc != 0:
                for m in env.mitmds:  # so that its final lines (stats) are in the dump
                    m.stop()
                env.dump_logs()
    finally:
        if args.keep or rc != 0 and os.environ.get("MITMD_IT_KEEP"):
            print(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    took = time.monotonic() - started
    print(("PASS" if rc == 0 else "FAILED") + f" ({took:.1f}s)", flush=True)
    sys.exit(rc)


# ---- mitmd ------------------------------------------------------------------------------

# A worker that died abnormally (the master logs "worker N (pid P) killed by signal S" or
# "exited with status S>0") or
# a sanitizer report (builds with -DMITMD_ASAN/UBSAN=ON) fails the test that caused it.
CRASH_RE = re.compile(r"worker \d+ \(pid \d+\) (killed by signal|exited with status [1-9])|"
                      r"ERROR: AddressSanitizer|"
                      r"ERROR: LeakSanitizer|runtime error: |ThreadSanitizer")
LISTEN_RE = re.compile(r"listening on (\S+):(\d+) with (\d+) workers?")
CA_RE = re.compile(r"CA certificate: (\S+)")


class Mitmd:
    """Mitmd is the proxy under test: the master process, started with a temp --confdir,
    `-p 0`, `--workers N` and extra args; stdout/stderr go to files in the temp dir."""

    def __init__(self, env, args=(), workers=1, confdir=None, name="mitmd"):
        self.env = env
        self.name = name
        self.confdir = confdir or env.path(f"{name}-conf")
        self.args = list(args)
        self.workers = workers
        self.stdout_path = env.path(f"{name}.stdout")
        self.stderr_path = env.path(f"{name}.stderr")
        self.proc = None
        self.port = None
        self.seen_workers = set()
        self.expect_worker_deaths = False  # set by tests that kill workers on purpose

    @property
    def ca_cert(self):
        return os.path.join(self.confdir, "mitmd-ca-cert.pem")

    @property
    def ca_key(self):
        return os.path.join(self.confdir, "mitmd-ca.pem")

    @property
    def pid(self):
        return self.proc.pid

    @property
    def argv(self):
        return [self.env.mitmd_bin, "--confdir", self.confdir, "-p", "0",
                "--workers", str(self.workers)] + self.args

    def start(self, wait=True, timeout=10.0):
        """start spawns the master and, if wait, returns once stderr says 'listening on'."""
        self.env.add_log(f"{self.name} stderr", self.stderr_path)
        self.env.add_log(f"{self.name} stdout", self.stdout_path)
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig)
        info(f"started {' '.join(self.argv)} (pid {self.proc.pid})")
        if wait:
            self.wait_listening(timeout)
        return self

    def stderr(self):
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stdout(self):
        try:
            with open(self.stdout_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_listening(self, timeout=10.0):
        def ready():
            m = LISTEN_RE.search(self.stderr())
            if m:
                return m
            if self.proc.poll() is not None:
                raise TestFailure(f"{self.name} exited with {self.proc.returncode} before "
                                  f"'listening on'; stderr:\n{self.stderr()}")
            return None

        m = wait_until(ready, timeout)
        if m is None:
            raise TestFailure(f"{self.name} printed no 'listening on' line within {timeout}s; "
                              f"stderr:\n{self.stderr()}")
        self.port = int(m.group(2))
        check(self.port != 0, f"{self.name} reports listening on port 0")
        check(int(m.group(3)) == self.workers,
              f"{self.name} says {m.group(3)} workers, started with --workers {self.workers}")
        info(f"{self.name} listening on 127.0.0.1:{self.port}")
        return self.port

    def check_no_crash(self):
        """check_no_crash fails if stderr shows a worker death or a sanitizer report."""
        if self.expect_worker_deaths:
            return
        m = CRASH_RE.search(self.stderr())
        check(m is None, f"{self.name} stderr reports a crash: "
              f"{self.stderr()[m.start():m.start() + 300] if m else ''!r}")

    def wait_exit(self, timeout):
        """wait_exit returns the exit code, or None if still running after timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def worker_pids(self):
        """worker_pids lists live children of the master whose cmdline has --worker."""
        pids = [p for p in children_of(self.proc.pid) if "--worker" in proc_cmdline(p)]
        self.seen_workers.update(pids)
        return pids

    def wait_workers(self, n, timeout=5.0, exclude=()):
        """wait_workers waits until exactly n workers run (none of them in exclude)."""
        def ok():
            pids = self.worker_pids()
            return pids if len(pids) == n and not set(pids) & set(exclude) else None
        return wait_until(ok, timeout)

    def stop(self):
        """stop sends SIGTERM to the master, waits, then SIGKILLs; kills leftover workers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.worker_pids()
        stop_popen(self.proc, grace=5.0)
        for pid in self.seen_workers:
            if proc_alive(pid) and "--worker" in proc_cmdline(pid):
                if wait_until(lambda: not proc_alive(pid), 2.0) is None:
                    kill_pid(pid)

    # ---- client conveniences bound to this proxy ----

    def proxy_url(self):
        return f"http://127.0.0.1:{self.port}"

    def https_conn(self, host, port, timeout=10.0, cafile=None):
        return https_via_proxy(self.port, host, port, cafile or self.ca_cert, timeout)


# ---- test PKI ---------------------------------------------------------------------------

VALID_SANS = ["DNS:origin.test", "DNS:*.origin.test", "DNS:ignored.test", "DNS:localhost",
              "IP:127.0.0.1"]


class Pki:
    """Pki is a test origin CA and leaf certificates made with the openssl CLI (ECDSA P-256):
    'valid' (origin.test, *.origin.test, ignored.test, localhost, 127.0.0.1) and the broken
    ones: 'expired' (expired.origin.test, expired 2020), 'wronghost' (only other.example),
    'selfsigned' (selfsigned.origin.test, not issued by the test CA)."""

    def __init__(self, d):
        self.dir = d
        self.ca_cert = os.path.join(d, "origin-ca.pem")
        self.ca_key = os.path.join(d, "origin-ca.key")
        self.certs = {}
        self._make_ca()
        self._leaf("valid", "origin.test", VALID_SANS)
        self._leaf("wronghost", "other.example", ["DNS:other.example"])
        self._leaf("expired", "expired.origin.test", ["DNS:expired.origin.test"], expired=True)
        self._selfsigned("selfsigned", "selfsigned.origin.test")

    def _ossl(self, *args):
        cp = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=self.dir)
        if cp.returncode != 0:
            raise TestFailure(f"openssl {' '.join(args)} failed: {cp.stderr}")
        return cp.stdout

    def _ext(self, name, sans):
        path = os.path.join(self.dir, f"{name}.ext")
        with open(path, "w") as f:
            f.write("[v3]\n"
                    "basicConstraints = critical,CA:FALSE\n"
                    "keyUsage = critical,digitalSignature\n"
                    "extendedKeyUsage = serverAuth\n"
                    "subjectKeyIdentifier = hash\n"
                    "authorityKeyIdentifier = keyid\n"
                    f"subjectAltName = {','.join(sans)}\n")
        return path

    def _make_ca(self):
        self._ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                   "-nodes", "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "30",
                   "-subj", "/O=mitmd tests/CN=mitmd test origin CA",
                   "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _leaf(self, name, cn, sans, expired=False):
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        crt = os.path.join(self.dir, f"{name}.pem")
        ext = self._ext(name, sans)
        self._ossl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                   "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
        if not expired:
            self._ossl("x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                       "-set_serial", "0x" + secrets.token_hex(16), "-days", "30",
                       "-extfile", ext, "-extensions", "v3", "-out", crt)
        else:
            # `openssl x509 -req` cannot backdate in 3.0; `openssl ca` can.
            cadir = os.path.join(self.dir, "ca-db")
            os.makedirs(os.path.join(cadir, "new"), exist_ok=True)
            open(os.path.join(cadir, "index.txt"), "w").close()
            with open(os.path.join(cadir, "serial"), "w") as f:
                f.write(secrets.token_hex(8) + "\n")
            cnf = os.path.join(self.dir, "ca.cnf")
            with open(cnf, "w") as f:
                f.write("[ca]\ndefault_ca = testca\n"
                        "[testca]\n"
                        f"database = {cadir}/index.txt\nnew_certs_dir = {cadir}/new\n"
                        f"serial = {cadir}/serial\ndefault_md = sha256\npolicy = pol\n"
                        "unique_subject = no\ncopy_extensions = none\n"
                        "[pol]\ncommonName = supplied\n")
            self._ossl("ca", "-batch", "-config", cnf, "-cert", self.ca_cert, "-keyfile",
                       self.ca_key, "-in", csr, "-out", crt, "-notext",
                       "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
                       "-extfile", ext, "-extensions", "v3")
        self.certs[name] = (crt, key)

    def _selfsigned(self, name, cn):
        key = os.path.join(self.dir, f"{name}.key")
        crt = os.path.join(self.dir, f"{name}.pem")
        self._ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                   "-nodes", "-keyout", key, "-out", crt, "-days", "30", "-subj", f"/CN={cn}",
                   "-addext", f"subjectAltName=DNS:{cn}")
        self.certs[name] = (crt, key)

    def client_context(self):
        """client_context trusts only the test origin CA (for direct connections)."""
        return ssl.create_default_context(cafile=self.ca_cert)


# ---- nginx origin -----------------------------------------------------------------------


class Nginx:
    """Nginx serves `files` (name -> bytes) over one TLS port per Pki cert ('valid',
    'expired', 'wronghost', 'selfsigned'; HTTP/1.1 only), an HTTP/2 + HTTP/1.1 TLS port with
    the 'valid' cert, and one plain-HTTP port: ports[name], h2_port, plain_port.
    Started with daemon off and stopped by PID."""

    BINARY = "/usr/sbin/nginx"

    def __init__(self, env, pki, files):
        self.env = env
        self.pki = pki
        self.prefix = env.mkdir("nginx")
        self.root = env.mkdir("nginx/www")
        self.files = {}
        for name, data in files.items():
            p = os.path.join(self.root, name)
            with open(p, "wb") as f:
                f.write(data)
            self.files[name] = sha256_bytes(data)
        self._pick_ports()
        self.proc = None

    def _conf(self):
        p = self.prefix
        lines = ["daemon off;", "master_process on;", "worker_processes 1;",
                 f"pid {p}/nginx.pid;", f"error_log {p}/error.log warn;"]
        if os.geteuid() == 0:
            lines.append("user root root;")  # the temp dir is private to us
        lines += ["events { worker_connections 2048; }", "http {", "  access_log off;",
                  "  default_type application/octet-stream;", "  sendfile on;",
                  "  keepalive_requests 10000;", "  keepalive_timeout 60s;",
                  "  large_client_header_buffers 4 128k;"]
        for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(f"{p}/{t}_temp", exist_ok=True)
            lines.append(f"  {t}_temp_path {p}/{t}_temp;")
        for name, port in self.ports.items():
            crt, key = self.pki.certs[name]
            lines += ["  server {", f"    listen 127.0.0.1:{port} ssl;",
                      f"    server_name {name};", f"    ssl_certificate {crt};",
                      f"    ssl_certificate_key {key};", f"    root {self.root};", "  }"]
        crt, key = self.pki.certs["valid"]
        lines += ["  server {", f"    listen 127.0.0.1:{self.h2_port} ssl http2;",
                  f"    ssl_certificate {crt};", f"    ssl_certificate_key {key};",
                  f"    root {self.root};",
                  # the authority the request came with (HTTP/2: :authority), as text
                  '    location = /authority { default_type text/plain; '
                  'return 200 "$server_protocol $http_host\\n"; }',
                  # the Authorization field that arrived (reverse-mode --proxyauth drops it)
                  '    location = /authz { default_type text/plain; '
                  'return 200 "$server_protocol authz=[$http_authorization]\\n"; }', "  }"]
        lines += ["  server {", f"    listen 127.0.0.1:{self.plain_port};",
                  f"    root {self.root};", "  }", "}"]
        return "\n".join(lines) + "\n"

    def _pick_ports(self):
        # distinct: free_port can hand out the same port twice in a row, and nginx would then
        # put two server blocks (one TLS, one plain) on one socket (a CI flake of
        # resolve_override: the plain port answered as a TLS one)
        ports = free_ports(len(self.pki.certs) + 2)
        self.ports = dict(zip(self.pki.certs, ports))
        self.plain_port = ports[-2]
        self.h2_port = ports[-1]  # the 'valid' cert with HTTP/2 offered in ALPN

    def start(self, timeout=10.0):
        """start runs nginx; a port that another test took between free_port() and nginx's
        bind (tests run in parallel) is retried with new ports, up to three times, so that no
        test talks to another test's server."""
        for attempt in range(3):
            if self._start_once(timeout):
                return
            info(f"nginx: a port was taken by another process; retrying with new ports")
            self._pick_ports()
        raise TestFailure("nginx could not bind its ports in 3 attempts")

    def _start_once(self, timeout):
        if not os.access(self.BINARY, os.X_OK):
            raise TestFailure(f"{self.BINARY} not found: apt-get install nginx-light")
        conf = os.path.join(self.prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self._conf())
        log = os.path.join(self.prefix, "stderr.log")
        self.env.add_log("nginx error.log", os.path.join(self.prefix, "error.log"))
        with open(log, "ab") as err:
            self.proc = subprocess.Popen([self.BINARY, "-p", self.prefix + "/", "-c", conf,
                                          "-e", os.path.join(self.prefix, "error.log")],
                                         stdout=err, stderr=err, stdin=subprocess.DEVNULL,
                                         preexec_fn=_pdeathsig)
        ports = list(self.ports.values()) + [self.plain_port, self.h2_port]

        errlog = os.path.join(self.prefix, "error.log")

        def bind_failed():
            try:
                with open(errlog, errors="replace") as f:
                    return "Address already in use" in f.read()
            except FileNotFoundError:
                return False

        def up():
            if bind_failed():
                return True  # decided below
            if self.proc.poll() is not None:
                raise TestFailure(f"nginx exited {self.proc.returncode}: {tail(log)}"
                                  f"{tail(os.path.join(self.prefix, 'error.log'))}")
            for port in ports:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except OSError:
                    return False
            return True

        if not wait_until(up, timeout):
            raise TestFailure("nginx did not open its ports in time")
        if bind_failed():
            stop_popen(self.proc, grace=5.0, sig=signal.SIGTERM)
            self.proc = None
            os.rename(errlog, errlog + f".bind-failed.{time.monotonic_ns()}")
            return False
        info(f"nginx pid {self.proc.pid}: tls ports {self.ports}, h2 port {self.h2_port}, "
             f"plain port {self.plain_port}")
        return True

    def stop(self):
        if self.proc is not None:
            stop_popen(self.proc, grace=5.0, sig=signal.SIGTERM)


# ---- Python origin ----------------------------------------------------------------------


class Origin:
    """Origin runs lib/origin.py (TLS with the Pki 'valid' cert, or plain when pki is None):
    /hello, /conn (connection id headers), /stats, /chunked, /stream, POST /sha256."""

    def __init__(self, env, pki=None):
        self.env = env
        self.pki = pki
        self.port = None
        self.proc = None
        self.log = env.path("origin.log")

    def start(self, timeout=10.0):
        argv = [sys.executable, ORIGIN_PY, "--port", "0"]
        if self.pki is not None:
            crt, key = self.pki.certs["valid"]
            argv += ["--cert", crt, "--key", key]
        self.env.add_log("origin.py log", self.log)
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig)
        line = self.proc.stdout.readline().decode()
        m = re.match(r"listening (\d+)", line)
        if not m:
            raise TestFailure(f"origin.py did not start: {line!r} {tail(self.log)}")
        self.port = int(m.group(1))
        info(f"origin.py pid {self.proc.pid} on port {self.port}"
             f" ({'tls' if self.pki else 'plain'})")

    def stats(self):
        """stats asks the origin directly (not via mitmd) which connections it accepted."""
        if self.pki is not None:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=5,
                                               context=self.pki.client_context())
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", "/stats")
        resp = conn.getresponse()
        data = json.loads(resp.read())
        conn.close()
        return data

    def stop(self):
        if self.proc is not None:
            stop_popen(self.proc, grace=3.0)
            self.proc.stdout.close()


def answer_origin(env, answer, ctx=None):
    """answer_origin starts an HTTP/1.1 origin on 127.0.0.1 in a thread of the test (TLS with
    the server context `ctx` when given: each accepted connection gets its handshake, with a
    5 s timeout, so a refused one never stops the others) that answers every GET with 200 and
    the bytes answer(handler) returns (e.g. the peer's address, the connection's TLS version,
    the client certificate's name); stopped at the end of the test. Returns its port."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - http.server's name
            body = answer(self)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self):
            sock, addr = super().get_request()
            if ctx is None:
                return sock, addr
            sock.settimeout(5)
            try:
                return ctx.wrap_socket(sock, server_side=True), addr
            except (ssl.SSLError, OSError):
                sock.close()
                raise

    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    def stop():
        srv.shutdown()
        srv.server_close()
    env.stack.callback(stop)
    return srv.server_address[1]


def check_start_refused(env, args, must):
    """check_start_refused runs mitmd with `args` and checks that it refuses to start: exit 2,
    one line on stderr that mentions `must`, no confdir created."""
    never = env.path("never")
    cp = env.run_cmd([env.mitmd_bin, "--confdir", never, "-p", "0"] + list(args), timeout=10)
    lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
    info(f"{' '.join(args)} -> exit {cp.returncode}: {lines}")
    check(cp.returncode == 2 and len(lines) == 1 and must in lines[0],
          f"{args}: exit {cp.returncode}, {lines} (expected exit 2, one line naming {must})")
    check(not os.path.exists(never), f"{args}: a confdir was created")


# ---- proxy clients ----------------------------------------------------------------------


def client_context(cafile):
    """client_context verifies against cafile only (the mitmd CA, or the test origin CA)."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def https_via_proxy(proxy_port, host, port, cafile, timeout=10.0):
    """https_via_proxy returns an http.client.HTTPSConnection tunnelled with CONNECT."""
    conn = http.client.HTTPSConnection("127.0.0.1", proxy_port, timeout=timeout,
                                       context=client_context(cafile))
    conn.set_tunnel(host, port)
    return conn


def read_head(sock, limit=1 << 20):
    """read_head reads up to and including CRLFCRLF; returns (head_bytes, rest_bytes).
    head_bytes is b'' if the peer closed first."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return b"", buf
        buf += chunk
        if len(buf) > limit:
            raise TestFailure("response head larger than 1 MiB")
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def parse_status(head):
    """parse_status returns (code, reason, {lower-name: value}) of an HTTP/1 response head."""
    lines = head.decode("iso-8859-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
    if not m:
        raise TestFailure(f"not an HTTP/1 status line: {lines[0]!r}")
    hdrs = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    return int(m.group(1)), m.group(2), hdrs


def recv_all(sock, timeout=10.0, limit=64 << 20):
    """recv_all reads until EOF (or timeout/limit) and returns what arrived."""
    sock.settimeout(timeout)
    out = b""
    try:
        while len(out) < limit:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return out


def proxy_connect(proxy_port, host, port, timeout=10.0):
    """proxy_connect opens a CONNECT tunnel. Returns (sock, status, headers, body); body is
    the error body (read to Content-Length or EOF) when status != 200, else b''."""
    sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head, rest = read_head(sock)
    if not head:
        sock.close()
        raise TestFailure(f"proxy closed the connection without answering CONNECT {target}")
    status, _, hdrs = parse_status(head)
    body = b""
    if status != 200:
        n = int(hdrs.get("content-length", "-1"))
        body = rest
        if n < 0:
            body += recv_all(sock, timeout)
        else:
            while len(body) < n:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
    elif rest:
        raise TestFailure(f"proxy sent {len(rest)} unexpected bytes after 200 to CONNECT")
    return sock, status, hdrs, body


def tls_over(sock, server_hostname, cafile=None, verify=True):
    """tls_over runs a TLS client handshake on an open tunnel socket."""
    if verify:
        ctx = client_context(cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(sock, server_hostname=server_hostname)


class _KeepOpenReader(io.BufferedReader):
    """A buffered socket reader that http.client.HTTPResponse cannot close."""

    def close(self):
        pass


class ResponseReader:
    """ResponseReader parses successive HTTP/1 responses from one socket (plain or TLS) with
    one shared read buffer, so pipelined / keep-alive responses are not lost between them."""

    def __init__(self, sock):
        self._fp = _KeepOpenReader(socket.SocketIO(sock, "rb"))

    def makefile(self, *args, **kwargs):
        return self._fp

    def next(self, method="GET"):
        """next returns (status, HTTPResponse, body bytes) of the next response."""
        resp = http.client.HTTPResponse(self, method=method)
        resp.begin()
        return resp.status, resp, resp.read()


def read_http_response(sock_or_reader, method="GET"):
    """read_http_response parses one response (status, HTTPResponse, body). Pass a
    ResponseReader to read several responses from one connection."""
    if not isinstance(sock_or_reader, ResponseReader):
        sock_or_reader = ResponseReader(sock_or_reader)
    return sock_or_reader.next(method)


def cert_text(pem_or_der, der=False):
    """cert_text returns `openssl x509 -noout -text` of one certificate."""
    argv = ["openssl", "x509", "-noout", "-text", "-nameopt", "RFC2253"]
    if der:
        argv += ["-inform", "DER"]
    cp = subprocess.run(argv, input=pem_or_der if der else pem_or_der.encode(),
                        capture_output=True)
    if cp.returncode != 0:
        raise TestFailure(f"openssl x509 cannot parse the certificate: {cp.stderr!r}")
    return cp.stdout.decode()


def cert_issuer_subject(text):
    issuer = re.search(r"Issuer: (.*)", text)
    subject = re.search(r"Subject: (.*)", text)
    return (issuer.group(1).strip() if issuer else "", subject.group(1).strip() if subject else "")


def cert_sans(text):
    """cert_sans returns the SAN entries of `openssl x509 -text` output, e.g.
    ['DNS:www.origin.test', 'IP Address:127.0.0.1']."""
    m = re.search(r"X509v3 Subject Alternative Name:.*?\n\s*(.*)\n", text)
    if not m:
        return []
    return [s.strip() for s in m.group(1).split(",")]


PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


def pem_blocks(text):
    return PEM_RE.findall(text)


def s_client_chain(proxy_port, host, port, servername=None, timeout=15):
    """s_client_chain runs `openssl s_client -proxy` through mitmd and returns the list of
    PEM certificates the server sent (leaf first). servername None sends no SNI."""
    argv = ["openssl", "s_client", "-proxy", f"127.0.0.1:{proxy_port}",
            "-connect", f"{host}:{port}", "-showcerts"]
    argv += ["-servername", servername] if servername else ["-noservername"]
    try:
        cp = subprocess.run(argv, input=b"", capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TestFailure(f"openssl s_client via the proxy hung for {timeout}s")
    out = cp.stdout.decode("utf-8", "replace")
    certs = pem_blocks(out)
    if not certs:
        raise TestFailure(f"openssl s_client got no certificate (rc {cp.returncode}): "
                          f"{cp.stderr.decode('utf-8', 'replace')[-1500:]}")
    return certs


def curl(env, proxy_port, url, cafile=None, extra=(), timeout=30):
    """curl fetches url through the proxy; returns (http_code, body_bytes, stderr_text)."""
    out = env.path(f"curl-{secrets.token_hex(4)}.out")
    argv = ["curl", "-sS", "-x", f"http://127.0.0.1:{proxy_port}", "-o", out,
            "-w", "%{http_code}", "--max-time", str(timeout)]
    if cafile:
        argv += ["--cacert", cafile]
    argv += list(extra) + [url]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 5)
    body = b""
    if os.path.exists(out):
        with open(out, "rb") as f:
            body = f.read()
        os.unlink(out)
    code = int(cp.stdout.strip() or "0") if cp.stdout.strip().isdigit() else 0
    return code, body, cp.stderr


# ---- the master's statistics -------------------------------------------------------

STATS_RE = re.compile(r"stats: (.*)")


def mitmd_stats(m, timeout=5.0):
    """mitmd_stats sends SIGUSR1 to the master and returns the counters of the stats line it
    logs ({name: int}). Workers report to the master on their tick, so callers wait_until."""
    before = len(STATS_RE.findall(m.stderr()))
    os.kill(m.pid, signal.SIGUSR1)
    lines = wait_until(lambda: (lambda l: l if len(l) > before else None)(
        STATS_RE.findall(m.stderr())), timeout)
    if not lines:
        raise TestFailure("the master logged no stats line after SIGUSR1")
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}


def wait_stat(m, name, minimum, timeout=5.0):
    """wait_stat polls the master's stats until counter `name` >= minimum; returns the stats
    (the last ones seen, also when the counter never got there)."""
    last = {}

    def ok():
        nonlocal last
        last = mitmd_stats(m)
        return last.get(name, 0) >= minimum

    wait_until(ok, timeout, interval=0.3)
    return last


def standard_setup(env, workers=1, extra_args=(), flows=False, files=None, origin=True):
    """standard_setup builds the usual world: test PKI, nginx (1 KiB file `1k`), the Python
    TLS origin, and mitmd trusting the test CA with '*.origin.test' resolved to 127.0.0.1.
    Returns a namespace with pki, nginx, origin, mitmd, flows (path or None)."""
    pki = env.pki()
    if files is None:
        files = {"1k": os.urandom(1024)}
    ngx = env.nginx(pki, files)
    org = env.origin(pki) if origin else None
    args = ["--upstream-ca", pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1"]
    flow_path = None
    if flows:
        flow_path = env.path("flows.jsonl")
        args += ["-w", flow_path]
    m = env.mitmd(args=args + list(extra_args), workers=workers)
    return argparse.Namespace(pki=pki, nginx=ngx, origin=org, mitmd=m, flows=flow_path)
