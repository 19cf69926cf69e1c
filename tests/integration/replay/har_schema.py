"""har_schema: a HAR 1.2 checker written from the spec (http://www.softwareishard.com/blog/
har-12-spec/), Python stdlib only, and the optional run of npm's har-validator that
tests/install-deps puts in /opt/mitmd-npm. check_har(doc) returns a list of problems."""
import json
import os
import shutil
import subprocess

NPM_PREFIX = os.environ.get("MITMD_NPM_PREFIX", "/opt/mitmd-npm")

# type checks: "s" string, "n" number, "i" integer, "a" array, "o" object, "b" bool
LOG = {"version": "s", "creator": "o", "entries": "a"}
CREATOR = {"name": "s", "version": "s"}
ENTRY = {"startedDateTime": "s", "time": "n", "request": "o", "response": "o", "cache": "o",
         "timings": "o"}
REQUEST = {"method": "s", "url": "s", "httpVersion": "s", "cookies": "a", "headers": "a",
           "queryString": "a", "headersSize": "i", "bodySize": "i"}
RESPONSE = {"status": "i", "statusText": "s", "httpVersion": "s", "cookies": "a",
            "headers": "a", "content": "o", "redirectURL": "s", "headersSize": "i",
            "bodySize": "i"}
CONTENT = {"size": "i", "mimeType": "s"}
TIMINGS = {"send": "n", "wait": "n", "receive": "n"}
NV = {"name": "s", "value": "s"}
ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"


def _type_ok(v, t):
    num = isinstance(v, (int, float)) and not isinstance(v, bool)
    return {"s": isinstance(v, str), "n": num, "i": num and float(v).is_integer(),
            "a": isinstance(v, list), "o": isinstance(v, dict), "b": isinstance(v, bool)}[t]


def _fields(obj, spec, where, out):
    if not isinstance(obj, dict):
        out.append(f"{where}: not an object")
        return
    for k, t in spec.items():
        if k not in obj:
            out.append(f"{where}.{k}: missing")
        elif not _type_ok(obj[k], t):
            out.append(f"{where}.{k}: {obj[k]!r} is not of type {t}")
    for k in obj:  # custom fields must start with an underscore
        if k not in spec and not k.startswith("_") and k not in OPTIONAL.get(id(spec), ()):
            out.append(f"{where}.{k}: not a HAR 1.2 field (custom ones start with _)")


OPTIONAL = {
    id(LOG): ("browser", "pages", "comment"),
    id(CREATOR): ("comment",),
    id(ENTRY): ("pageref", "serverIPAddress", "connection", "comment"),
    id(REQUEST): ("postData", "comment"),
    id(RESPONSE): ("comment",),
    id(CONTENT): ("compression", "text", "encoding", "comment"),
    id(TIMINGS): ("blocked", "dns", "connect", "ssl", "comment"),
    id(NV): ("comment",),
}


def check_har(doc):
    import re
    out = []
    if not isinstance(doc, dict) or set(doc) != {"log"}:
        return ["top level: must be {\"log\": ...}"]
    log = doc["log"]
    _fields(log, LOG, "log", out)
    if log.get("version") != "1.2":
        out.append(f"log.version: {log.get('version')!r}")
    _fields(log.get("creator"), CREATOR, "log.creator", out)
    for i, e in enumerate(log.get("entries", [])):
        w = f"entries[{i}]"
        _fields(e, ENTRY, w, out)
        if not isinstance(e, dict):
            continue
        if not re.match(ISO, str(e.get("startedDateTime"))):
            out.append(f"{w}.startedDateTime: {e.get('startedDateTime')!r} is not ISO 8601")
        rq, rs = e.get("request", {}), e.get("response", {})
        _fields(rq, REQUEST, f"{w}.request", out)
        _fields(rs, RESPONSE, f"{w}.response", out)
        for part, arrs in ((rq, ("headers", "queryString", "cookies")),
                           (rs, ("headers", "cookies"))):
            for a in arrs:
                for j, h in enumerate(part.get(a, []) if isinstance(part, dict) else []):
                    if a == "cookies":
                        if not isinstance(h, dict) or not {"name", "value"} <= set(h):
                            out.append(f"{w}.{a}[{j}]: needs name and value")
                    else:
                        _fields(h, NV, f"{w}.{a}[{j}]", out)
        pd = rq.get("postData") if isinstance(rq, dict) else None
        if pd is not None and (not isinstance(pd, dict) or not isinstance(pd.get("mimeType"), str)):
            out.append(f"{w}.request.postData: needs mimeType")
        c = rs.get("content") if isinstance(rs, dict) else None
        _fields(c, CONTENT, f"{w}.response.content", out)
        if isinstance(c, dict) and "encoding" in c and c["encoding"] != "base64":
            out.append(f"{w}.response.content.encoding: {c['encoding']!r}")
        t = e.get("timings", {})
        _fields(t, TIMINGS, f"{w}.timings", out)
        for k in ("send", "wait", "receive"):
            if isinstance(t, dict) and _type_ok(t.get(k), "n") and t[k] < 0:
                out.append(f"{w}.timings.{k}: {t[k]} (must be >= 0)")
        for k in ("blocked", "dns", "connect", "ssl"):
            if isinstance(t, dict) and k in t and (not _type_ok(t[k], "n") or t[k] < -1):
                out.append(f"{w}.timings.{k}: {t[k]!r} (a number >= -1)")
    return out


def har_validator_path():
    """Returns the har-validator module directory, or None when it is not installed."""
    d = os.path.join(NPM_PREFIX, "node_modules", "har-validator")
    return d if os.path.isdir(d) and shutil.which("node") else None


def run_har_validator(path):
    """Validates the HAR file with npm's har-validator (its JSON schemas, ajv). Returns
    (ok, message); raises if the validator is not installed (check har_validator_path)."""
    script = ("const v=require(process.argv[1]);const h=JSON.parse(require('fs')"
              ".readFileSync(process.argv[2]));v.har(h).then(()=>console.log('valid'))"
              ".catch(e=>{console.log(JSON.stringify(e.errors||e.message));process.exit(1)})")
    cp = subprocess.run(["node", "-e", script, har_validator_path(), path], capture_output=True,
                        text=True, timeout=60, env=dict(os.environ, NODE_PATH=os.path.join(
                            NPM_PREFIX, "node_modules")))
    return cp.returncode == 0, (cp.stdout + cp.stderr).strip()[:2000]


def load(path):
    with open(path, "rb") as f:
        return json.loads(f.read())
