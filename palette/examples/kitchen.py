"""A simulated kitchen service: each restaurant's live queue, the ETA example's RPC feature.

A restaurant's kitchen display knows how many minutes of orders are queued right now; the
ETA model fetches it at request time (``restaurant:kitchen_rpc``). The value is a pure
function of the restaurant and the minute (``queue_minutes``), so the service answers
"as of" any time too, which the offline fetch job uses to fill history never served.

The HTTP service (``python -m palette.examples.kitchen --port N``, standard library only)::

    GET  /restaurants/{r_id}/queue[?at=ISO]   -> {"queue": {"minutes": 7.5, "orders": 3}}
    POST /restaurants/queue:batch             {"keys": [{"r_id": ...}, ...]} -> {"results": [...]}
    POST /_mode                               {"mode": "fast", "delay_ms": 2}

An ``r_id`` starting with ``unknown`` is a 404. Modes, for tests of the failure policy:
``fast`` (answers after ``delay_ms``), ``slow`` (after ``slow_ms``), ``failing`` (500s),
``flapping`` (every other answer a 500), ``malformed`` (not JSON), ``missing`` (JSON
without the queue fields). ``GET /_stats`` counts the requests served, those in flight now and the most that were
in flight at once (``{"reset": true}`` on ``/_mode`` zeroes the counts).

``queue`` and ``queue_async`` are the same feature as Python fetchers
(``Fetcher(function="palette.examples.kitchen:queue")``).

>>> queue_minutes("r7", 1_800_000_000) == queue_minutes("r7", 1_800_000_059)   # one value per minute
True
>>> queue({"r_id": "unknown-1"}) is None
True
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

MODES = ("fast", "slow", "failing", "flapping", "malformed", "missing")


def queue_minutes(r_id: str, at_seconds: float) -> float:
    """Minutes of orders queued at restaurant ``r_id`` during the minute of ``at_seconds``:
    a busy restaurant's queue swings through the day, quantized to 0.5 minute."""
    h = int.from_bytes(hashlib.blake2b(f"{r_id}:{int(at_seconds // 60)}".encode(), digest_size=4).digest(), "big")
    base = int.from_bytes(hashlib.blake2b(r_id.encode(), digest_size=2).digest(), "big") % 12
    return round(base + (h % 17) / 2.0, 1)


def answer(r_id: str, at_seconds: float) -> dict | None:
    if r_id.startswith("unknown"):
        return None
    minutes = queue_minutes(r_id, at_seconds)
    return {"queue": {"minutes": minutes, "orders": int(minutes // 2.5)}}


def _at(as_of: datetime | None) -> float:
    return time.time() if as_of is None else as_of.timestamp()


def queue(keys: dict, as_of: datetime | None = None) -> dict | None:
    """A Python fetcher of the same answers (one key; ``as_of``: a past time)."""
    return answer(keys["r_id"], _at(as_of))


async def queue_async(keys: dict, as_of: datetime | None = None) -> dict | None:
    """``queue`` as a coroutine, as an async client library would give it."""
    await asyncio.sleep(0)
    return answer(keys["r_id"], _at(as_of))


def queue_batch(keys: list[dict]) -> list[dict | None]:
    """``queue`` for many keys in one call (``Fetcher(function=..., batch=True)``)."""
    now = time.time()
    return [answer(k["r_id"], now) for k in keys]


class _State:
    def __init__(self):
        self.mode, self.delay_ms, self.slow_ms = "fast", 0.0, 2000.0
        self.requests = self.batch_requests = 0
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()

    def next(self, batch: bool = False) -> tuple[str, int]:
        with self.lock:
            self.requests += 1
            self.batch_requests += batch
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            return self.mode, self.requests

    def done(self) -> None:
        with self.lock:
            self.inflight -= 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True       # headers and body go out as two writes: no 40 ms delayed-ACK stall
    state: _State

    def log_message(self, *args):            # quiet: tests read the stats instead
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def _serve(self, make) -> None:
        mode, n = self.state.next(batch=self.path.startswith("/restaurants/queue:batch"))
        try:
            self._answer(mode, n, make)
        finally:
            self.state.done()

    def _answer(self, mode: str, n: int, make) -> None:
        delay = self.state.slow_ms if mode == "slow" else self.state.delay_ms
        if delay:
            time.sleep(delay / 1000.0)
        if mode == "failing" or (mode == "flapping" and n % 2 == 0):
            return self._send(500, b'{"error": "kitchen display unavailable"}')
        if mode == "malformed":
            return self._send(200, b"<html>upstream error</html>", "text/html")
        status, payload = make()
        if mode == "missing" and payload is not None:
            payload = {"status": "ok"} if "queue" in payload else {"results": [{"status": "ok"}] * len(payload["results"])}
        self._send(status, json.dumps(payload).encode())

    def do_GET(self):
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if url.path == "/_stats":
            s = self.state
            return self._send(200, json.dumps({"requests": s.requests, "batch_requests": s.batch_requests,
                                               "inflight": s.inflight, "max_inflight": s.max_inflight,
                                               "mode": s.mode}).encode())
        if len(parts) != 3 or parts[0] != "restaurants" or parts[2] != "queue":
            return self._send(404, b'{"error": "no such route"}')
        at = parse_qs(url.query).get("at")
        at_seconds = datetime.fromisoformat(at[0]).timestamp() if at else time.time()

        def make():
            body = answer(parts[1], at_seconds)
            return (404, {"error": "unknown restaurant"}) if body is None else (200, body)
        self._serve(make)

    def do_POST(self):
        body = self._body()
        if self.path == "/_mode":
            s = self.state
            with s.lock:
                s.mode = body.get("mode", s.mode)
                s.delay_ms = float(body.get("delay_ms", s.delay_ms))
                s.slow_ms = float(body.get("slow_ms", s.slow_ms))
                if body.get("reset"):
                    s.requests = s.batch_requests = s.max_inflight = 0
            return self._send(200, json.dumps({"mode": s.mode}).encode())
        if self.path != "/restaurants/queue:batch":
            return self._send(404, b'{"error": "no such route"}')
        now = time.time()
        self._serve(lambda: (200, {"results": [answer(k["r_id"], now) for k in body.get("keys", [])]}))


def serve(port: int, host: str = "127.0.0.1", delay_ms: float = 0.0) -> ThreadingHTTPServer:
    """The service on ``host:port``, answering from a thread (``server.shutdown()`` stops it)."""
    state = _State()
    state.delay_ms = delay_ms
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="kitchen-service", daemon=True).start()
    return server


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="the simulated kitchen service of the ETA example")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--delay-ms", type=float, default=0.0)
    args = p.parse_args(argv)
    server = serve(args.port, args.host, args.delay_ms)
    print(f"kitchen service on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
