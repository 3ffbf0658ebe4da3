"""Processes the tests start for real: the serving process where pyspark cannot be
imported and java is not on PATH (``Service``), a small HTTP client and steady traffic
(``Traffic``)."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import namedtuple

from palette.nospark import sitecustomize

BLOCKER = sitecustomize("the serving process must not import it")


def http(method, url, body=None, content_type="application/json", timeout=30, headers=None):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None and content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


Answer = namedtuple("Answer", "tag sent answered status")     # status: an HTTP code or a connection error


class Traffic:
    """``with Traffic(url, {"a": body, "b": other}):`` POSTs each body to ``url`` over and
    over, one thread per body (``pause`` seconds apart), until the block ends; ``answers``
    holds an ``Answer`` per request."""

    def __init__(self, url, bodies: dict, pause: float = 0.0):
        self.url, self.pause, self.answers, self._stop = url, pause, [], threading.Event()
        self._threads = [threading.Thread(target=self._post, args=(tag, body)) for tag, body in bodies.items()]

    def _post(self, tag, body):
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                status, _ = http("POST", self.url, body, timeout=10)
            except OSError as e:
                status = f"connection error {e}"
            self.answers.append(Answer(tag, sent, time.monotonic(), status))
            time.sleep(self.pause)

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(30)


def jvm_free_env(tmp_path) -> dict:
    """The environment of a process where pyspark cannot be imported and java is not on PATH."""
    site = tmp_path / f"nospark{time.monotonic_ns()}"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "SPARK_HOME", "PROMETHEUS_MULTIPROC_DIR")}
    env.update(PYTHONPATH=str(site), PATH=os.path.dirname(sys.executable), PYTHONUNBUFFERED="1")
    return env


class Service:
    """A `python -m palette.serve` subprocess; ``url`` once it is ready."""

    def __init__(self, tmp_path, args, wait=True, env=None):
        env = {**jvm_free_env(tmp_path), **(env or {})}
        self.log = tmp_path / f"serve{time.monotonic_ns()}.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "palette.serve", "--port", "0", *args],
                                     env=env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        self.url = None
        if wait:
            self.wait_ready()

    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.url is None:
                for line in self.output().splitlines():
                    if " on http://" in line:
                        self.url = line.split(" on ", 1)[1].split(" ")[0]
            if self.url is not None:
                try:
                    if http("GET", self.url + "/readyz", timeout=2)[0] == 200:
                        return
                except OSError:
                    pass
            if self.proc.poll() is not None:
                raise AssertionError(f"the service exited with {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"the service did not become ready:\n{self.output()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
