"""Load generators on loopback, shared by the HTTP benchmarks: `vegeta` (open loop: requests
leave at their scheduled times however long the answers take, so queueing shows in the
latency) and `wrk` (closed loop: each connection waits for its answer).

Not a benchmark itself (``run.py`` skips modules whose name starts with ``_``).
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))


def vegeta_binary() -> str:
    local = os.path.join(HERE, "..", ".venv", "bin", "vegeta")
    found = shutil.which("vegeta") or (local if os.path.exists(local) else None)
    if found is None:
        raise RuntimeError("vegeta is not installed: `make vegeta` builds it (go install github.com/tsenart/vegeta/v12)")
    return found


def write_targets(path: str, requests: list[tuple[str, bytes]]) -> str:
    """A vegeta targets file of POSTs of JSON bodies: ``(url, body)`` each; vegeta cycles
    through them in order."""
    with open(path, "w") as f:
        for url, body in requests:
            f.write(json.dumps({"method": "POST", "url": url, "body": base64.b64encode(body).decode(),
                                "header": {"Content-Type": ["application/json"]}}) + "\n")
    return path


def start_attack(targets: str, rate: int, seconds: float, results: str, timeout_s: float = 10) -> subprocess.Popen:
    """Start an open-loop attack at ``rate`` requests/s for ``seconds``; results in ``results``."""
    out = open(results, "wb")
    return subprocess.Popen([vegeta_binary(), "attack", "-format=json", f"-targets={targets}", f"-rate={rate}/s",
                             f"-duration={seconds}s", f"-timeout={timeout_s}s"], stdout=out)


def read_results(results: str) -> list[dict]:
    """Every request of an attack: ``t`` (when it was sent, s since the epoch), ``ms``
    (latency), ``code`` (0: no answer), ``url``, ``error``, ``body``."""
    lines = subprocess.run([vegeta_binary(), "encode", "--to=json", results], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    out = []
    for line in lines:
        r = json.loads(line)
        out.append({"t": _epoch(r["timestamp"]), "ms": r["latency"] / 1e6, "code": r["code"], "url": r["url"],
                    "error": r.get("error", ""), "body": base64.b64decode(r.get("body") or b"")})
    out.sort(key=lambda r: r["t"])
    return out


def _epoch(stamp: str) -> float:
    """RFC 3339 with nanoseconds (vegeta's) as seconds since the epoch."""
    m = re.match(r"(.*?)(\.\d+)?(Z|[+-]\d\d:\d\d)$", stamp)
    base, frac, zone = m.group(1), m.group(2) or "", m.group(3)
    t = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone)).timestamp()
    return t + (float(frac) if frac else 0.0)


def attack(targets: str, rate: int, seconds: float, workdir: str) -> list[dict]:
    results = f"{workdir}/results.bin"
    proc = start_attack(targets, rate, seconds, results)
    proc.wait(timeout=seconds + 120)
    return read_results(results)


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))] if s else float("nan")


def summary(records: list[dict]) -> dict:
    ms = [r["ms"] for r in records]
    return {"requests": len(records), "errors": sum(r["code"] != 200 for r in records),
            "p50_ms": percentile(ms, 0.50), "p99_ms": percentile(ms, 0.99), "p999_ms": percentile(ms, 0.999),
            "max_ms": max(ms) if ms else float("nan")}


WRK_SCRIPT = """
math.randomseed(7)
local ids = {IDS}
local per = PER
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local parts = {}
  for i = 1, per do
    parts[i] = '{"r_id":"' .. ids[math.random(#ids)] .. '","order_size":' .. math.random(1, 6) .. '}'
  end
  return wrk.format(nil, "/v1/models/eta:predict", nil, '{"instances":[' .. table.concat(parts, ",") .. ']}')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %f %f %f %f\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.mean))
end
"""


def wrk(url: str, ids: list[str], per: int, connections: int, seconds: int, workdir: str) -> dict:
    """A closed-loop wrk run of ETA requests: ``connections`` connections, each sending its
    next request (``per`` random restaurants of ``ids``) when the last one was answered."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: `make wrk` installs it (apt-get install wrk)")
    script = f"{workdir}/load.lua"
    with open(script, "w") as f:
        f.write(WRK_SCRIPT.replace("IDS", ",".join(f'"{i}"' for i in ids)).replace("PER", str(per)))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script, url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    n, micros, errors, p50, p99, p999, mean = re.search(r"RESULT (.*)", out).group(1).split()
    return {"rps": int(n) / (int(micros) / 1e6), "errors": int(errors), "p50_ms": float(p50) / 1000,
            "p99_ms": float(p99) / 1000, "p999_ms": float(p999) / 1000, "requests": int(n)}
