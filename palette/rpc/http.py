"""The HTTP transport of RPC fetchers: kept-alive connections, and a call split in two.

``HttpTransport.send`` writes a request on an idle kept-alive connection (or a new one)
and returns at once; ``receive`` reads the answer. Between the two, the caller does other
work — the online store's read of the same fetch point — on its own thread, so one RPC
call overlaps it without handing off to a thread and waking up again (which costs about
0.3 ms here on a busy core). ``call`` is both at once, for the fetcher's thread pool.

Timeouts are socket timeouts, set to what is left of the request's deadline at each
step: a call never outlives its deadline by more than the kernel's timer slack.

Standard library only (``http.client``): connections are per (scheme, host, port), reused
last in, first out; one that failed, or whose answer was not read to the end, is closed,
never reused.
"""
from __future__ import annotations

import http.client
import socket
import threading
import time
from urllib.parse import urlsplit

from palette.errors import PaletteError


class HttpTimeout(PaletteError, TimeoutError):
    """No answer within the time left."""


class HttpFailed(PaletteError, ConnectionError):
    """The connection failed, or the answer was not HTTP."""


class Sent:
    """A request written, its answer not read yet (and what to write again on a fresh
    connection if a kept-alive one turns out closed)."""
    __slots__ = ("conn", "key", "deadline", "request", "reused", "started")

    def __init__(self, conn, key, deadline, request, reused):
        self.conn, self.key, self.deadline, self.request, self.reused = conn, key, deadline, request, reused
        self.started = time.perf_counter()


class HttpTransport:
    def __init__(self, max_idle: int = 32):
        self.max_idle = max_idle
        self._idle: dict[tuple, list] = {}
        self._lock = threading.Lock()

    def _connection(self, key: tuple, timeout: float, fresh: bool = False):
        if not fresh:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is not None:
                conn.sock.settimeout(timeout)
                return conn, True
        scheme, host, port = key
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = cls(host, port, timeout=timeout)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, False

    def send(self, method: str, url: str, body: bytes | None, headers: dict, deadline: float) -> Sent:
        """Write the request (raises ``HttpTimeout`` / ``HttpFailed``)."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        request = (method, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body, headers)
        return self._send(key, request, deadline, fresh=False)

    def _send(self, key: tuple, request: tuple, deadline: float, fresh: bool) -> Sent:
        for attempt in (0, 1):                    # a kept-alive connection the server closed: once more, fresh
            left = deadline - time.monotonic()
            if left <= 0:
                raise HttpTimeout()
            conn = None
            try:
                conn, reused = self._connection(key, left, fresh or attempt > 0)
                method, path, body, headers = request
                conn.request(method, path, body=body, headers=headers)
                return Sent(conn, key, deadline, request, reused)
            except (socket.timeout, TimeoutError):
                _close(conn)
                raise HttpTimeout() from None
            except (OSError, http.client.HTTPException) as e:
                _close(conn)
                if attempt:
                    raise HttpFailed(str(e)) from None
        raise AssertionError("unreachable")

    def receive(self, sent: Sent) -> tuple[int, bytes]:
        """The answer's status and body (raises ``HttpTimeout`` / ``HttpFailed``)."""
        conn = sent.conn
        try:
            left = sent.deadline - time.monotonic()
            if left <= 0:
                raise HttpTimeout()
            conn.sock.settimeout(left)
            response = conn.getresponse()
            body = response.read()
        except (socket.timeout, TimeoutError, HttpTimeout):
            _close(conn)
            raise HttpTimeout() from None
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            _close(conn)
            if sent.reused:                       # the server had closed the kept-alive connection: afresh
                return self.receive(self._send(sent.key, sent.request, sent.deadline, fresh=True))
            raise HttpFailed(str(e)) from None
        except (OSError, http.client.HTTPException) as e:
            _close(conn)
            raise HttpFailed(str(e)) from None
        if response.will_close:
            _close(conn)
        else:
            with self._lock:
                idle = self._idle.setdefault(sent.key, [])
                if len(idle) < self.max_idle:
                    idle.append(conn)
                    conn = None
            _close(conn)
        return response.status, body

    def call(self, method: str, url: str, body: bytes | None, headers: dict, deadline: float) -> tuple[int, bytes]:
        return self.receive(self.send(method, url, body, headers, deadline))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                _close(conn)


def _close(conn) -> None:
    if conn is not None:
        try:
            conn.close()
        except OSError:
            pass


__all__ = ["HttpTransport", "HttpTimeout", "HttpFailed", "Sent"]
