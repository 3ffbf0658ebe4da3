"""What each worker of one ``palette serve`` last loaded, so that ``POST /admin/reload``
answers for every worker, not only the one that took the request.

Each worker writes ``reload-<pid>.json`` in the supervisor's private directory
(``$PALETTE_SERVE_RUN_DIR``) when it starts serving and after each reload: whether the load
succeeded and when it *began* (a load that began before the reload was asked for may have
read the old directories). The supervisor removes a dead worker's file; the worker it starts
instead writes its own once it serves.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

_ENV = "PALETTE_SERVE_RUN_DIR"


def _dir() -> Path | None:
    d = os.environ.get(_ENV)
    return Path(d) if d else None


def _file(run_dir: Path, pid: int) -> Path:
    return run_dir / f"reload-{pid}.json"


def record(outcome: dict, began: float) -> None:
    """This worker's outcome of a load that began at ``began`` (``time.time()``)."""
    run_dir = _dir()
    if run_dir is None:
        return
    target = _file(run_dir, os.getpid())
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps({**outcome, "pid": os.getpid(), "began": began}))
    os.replace(tmp, target)                     # a reader sees the old outcome or the new, whole


def forget(pid: int) -> None:
    """A dead worker's outcome (the supervisor's side)."""
    run_dir = _dir()
    if run_dir is not None:
        _file(run_dir, pid).unlink(missing_ok=True)


def _outcomes(run_dir: Path) -> list[dict]:
    out = []
    for f in run_dir.glob("reload-*.json"):
        try:
            out.append(json.loads(f.read_text()))
        except (OSError, ValueError):           # removed meanwhile (a dead worker's)
            pass
    return out


async def every_worker(asked: float, workers: int, timeout: float = 300.0) -> dict:
    """Wait until ``workers`` workers have each finished a load that began at or after
    ``asked``; their combined outcome: ok when all are, else the first refusal's error."""
    run_dir = _dir()
    deadline = time.monotonic() + timeout
    fresh: list[dict] = []
    while run_dir is not None and time.monotonic() < deadline:
        fresh = [o for o in _outcomes(run_dir) if o.get("began", 0) >= asked]
        if len(fresh) >= workers:
            break
        await asyncio.sleep(0.05)
    fresh.sort(key=lambda o: o["pid"])
    refused = [o for o in fresh if not o.get("ok")]
    result = {"ok": len(fresh) >= workers and not refused, "workers": fresh,
              "generation": max((o.get("generation", 0) for o in fresh), default=0)}
    if refused:
        result["error"] = refused[0].get("error")
    elif len(fresh) < workers:
        result["error"] = (f"{len(fresh)} of {workers} workers reloaded within {timeout:.0f} s; the others still "
                           f"serve the version they had (see the server log)")
    return result
