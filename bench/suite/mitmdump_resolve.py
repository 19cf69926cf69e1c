"""mitmdump_resolve.py - mitmdump addon: resolve bench host names like mitmd's --resolve.

mitmdump resolves upstream names with the system resolver, and the bench must not edit
/etc/hosts. Loaded with `mitmdump -s mitmdump_resolve.py`, this wraps asyncio.open_connection
(what mitmproxy 8's server-connection manager dials with) so that a host matching a rule in
the environment variable MITMD_BENCH_RESOLVE ("*.bench.test=127.0.0.1,name=addr") is dialled
at that address. Everything else - the server address mitmproxy keeps, the SNI it sends, the
name it verifies, its connection reuse - is left as it is.
"""
import asyncio
import os

RULES = []
for item in os.environ.get("MITMD_BENCH_RESOLVE", "").split(","):
    if "=" in item:
        pattern, addr = item.split("=", 1)
        RULES.append((pattern.strip().lower(), addr.strip()))


def resolve(host):
    """resolve returns the address for `host` from RULES, or `host` itself."""
    if not isinstance(host, str):
        return host
    name = host.lower().rstrip(".")
    for pattern, addr in RULES:
        if pattern.startswith("*.") and name.endswith(pattern[1:]) or name == pattern:
            return addr
    return host


_open_connection = asyncio.open_connection


async def open_connection(host=None, port=None, *args, **kwargs):
    return await _open_connection(resolve(host), port, *args, **kwargs)


asyncio.open_connection = open_connection
