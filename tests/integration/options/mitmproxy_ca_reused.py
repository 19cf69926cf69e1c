#!/usr/bin/env python3
"""Moving from mitmproxy: a confdir that holds mitmproxy's CA (mitmproxy-ca.pem) and no
mitmd-ca.pem is used as it is, said so in one line, so that clients that trust
mitmproxy-ca-cert.pem keep working through mitmd; no second CA is created. The CA is made the
way mitmproxy writes it (openssl: RSA key in traditional PEM, then the certificate) and, when
mitmdump is installed, by the real mitmdump."""
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (_pdeathsig, check, curl, free_port, info, run, standard_setup,  # noqa: E402
                     step, stop_popen, wait_until)


def openssl_mitmproxy_ca(env, confdir):
    """openssl_mitmproxy_ca writes mitmproxy-ca.pem (traditional RSA key + cert) and
    mitmproxy-ca-cert.pem as mitmproxy 8 lays them out."""
    key, cert = env.path("mp.key"), env.path("mp.crt")
    env.run_cmd(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                 "-out", cert, "-days", "30", "-subj", "/CN=mitmproxy/O=mitmproxy",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"], check_rc=0)
    rsa = env.run_cmd(["openssl", "rsa", "-in", key, "-traditional"], check_rc=0).stdout
    with open(os.path.join(confdir, "mitmproxy-ca.pem"), "w") as f:
        f.write(rsa + open(cert).read())
    os.chmod(os.path.join(confdir, "mitmproxy-ca.pem"), 0o600)
    shutil.copy(cert, os.path.join(confdir, "mitmproxy-ca-cert.pem"))


def mitmdump_ca(env, confdir):
    """mitmdump_ca lets the real mitmdump create its CA in confdir (it does at start), then
    stops it by PID. Returns False when mitmdump is not installed."""
    exe = shutil.which("mitmdump")
    if exe is None:
        return False
    log = open(env.path("mitmdump.log"), "wb")
    proc = subprocess.Popen([exe, "--set", f"confdir={confdir}", "--listen-host", "127.0.0.1",
                             "-p", str(free_port())], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig)
    env.stack.callback(stop_popen, proc)
    env.add_log("mitmdump", env.path("mitmdump.log"))
    ok = wait_until(lambda: os.path.exists(os.path.join(confdir, "mitmproxy-ca-cert.pem")), 30)
    stop_popen(proc, sig=signal.SIGTERM)
    check(ok, "mitmdump did not create its CA within 30 s")
    return True


def check_reused(env, w, confdir, name):
    m = env.mitmd(confdir=confdir, name=name,
                  args=["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1"])
    err = m.stderr()
    check("using mitmproxy's CA" in err and "mitmproxy-ca.pem" in err,
          f"no line saying mitmproxy's CA is used: {err!r}")
    check(not os.path.exists(os.path.join(confdir, "mitmd-ca.pem")),
          "mitmd created its own CA beside mitmproxy's")
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"
    code, body, cerr = curl(env, m.port, url,
                            cafile=os.path.join(confdir, "mitmproxy-ca-cert.pem"))
    info(f"curl trusting only mitmproxy-ca-cert.pem: HTTP {code}")
    check(code == 200 and len(body) == 1024,
          f"a client trusting mitmproxy's CA fails through mitmd: HTTP {code} {cerr.strip()}")
    m.stop()


def test(env):
    w = standard_setup(env, origin=False)
    w.mitmd.stop()

    step("a confdir with mitmproxy's CA (made as mitmproxy makes it): used, said, trusted")
    confdir = env.mkdir("mp-openssl")
    os.chmod(confdir, 0o700)
    openssl_mitmproxy_ca(env, confdir)
    check_reused(env, w, confdir, "mitmd-openssl-ca")

    step("mitmd cert with that confdir prints a chain ending in mitmproxy's CA")
    cp = env.run_cmd([env.mitmd_bin, "--confdir", confdir, "cert", "x.test"], check_rc=0)
    check(cp.stdout.count("BEGIN CERTIFICATE") == 2, "no chain printed")
    check("created" not in cp.stderr, f"mitmd cert claims a new CA: {cp.stderr!r}")

    step("a CA created by the real mitmdump (when installed)")
    confdir2 = env.mkdir("mp-real")
    os.chmod(confdir2, 0o700)
    if mitmdump_ca(env, confdir2):
        check_reused(env, w, confdir2, "mitmd-mitmdump-ca")
    else:
        info("mitmdump is not installed: the openssl-made CA above stands in for it")


if __name__ == "__main__":
    run(test, __doc__)
