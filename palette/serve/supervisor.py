"""``palette serve``: a supervisor process and its workers, sharing one listening socket.

The supervisor loads every model once — a model that cannot be served stops it here,
non-zero, naming the model and why — binds the socket, and starts ``--workers``
processes (uvicorn servers on that socket; they share nothing but the online store). It
restarts a worker that dies, and forwards signals:

- SIGTERM / SIGINT: every worker stops accepting, finishes its in-flight requests (up to
  ``--graceful-seconds``) and exits; then the supervisor exits 0;
- SIGHUP (also what ``POST /admin/reload`` sends): every worker reloads the model
  directories in the background and swaps only when all loaded; the old version serves
  until then, and stays when the new one fails.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from . import reloads
from .config import ConfigError, ServeConfig

log = logging.getLogger("palette.serve")


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s")


def _worker(env: dict, sock: socket.socket, ready) -> None:
    # A reload asked for while this worker still starts is kept for when it serves
    # (the default action of SIGHUP would kill it).
    signal.signal(signal.SIGHUP, lambda *a: os.environ.__setitem__("PALETTE_SERVE_RELOAD_PENDING", "1"))
    os.environ.update(env)
    import uvicorn

    from .app import create_app
    config = ServeConfig.from_env()
    _logging(config.log_level)
    app = create_app(config, on_ready=lambda: ready.put(os.getpid()))
    # uvicorn re-raises the signal that stopped it once it has drained; a no-op handler
    # there makes a graceful stop exit 0.
    signal.signal(signal.SIGTERM, lambda *a: None)
    signal.signal(signal.SIGINT, lambda *a: None)
    options = {"lifespan": "on", "log_level": config.log_level, "access_log": False,
               "timeout_graceful_shutdown": max(int(config.graceful_seconds), 1)}
    for key, module, value in (("http", "httptools", "httptools"), ("loop", "uvloop", "uvloop")):
        try:
            __import__(module)
            options[key] = value
        except ImportError:
            pass
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])


def serve(config: ServeConfig) -> int:
    """Run the service until SIGTERM; returns the exit code."""
    from palette.online import open_store

    from .models import ModelSet
    try:
        store = open_store(config.online_store_url()) if config.online_store else None
        ModelSet(config, store).start()
        if store is not None:
            store.close()
    except Exception as e:
        log.error("cannot start: %s", e)
        print(f"palette serve: {e}", file=sys.stderr)
        return 1
    sock = socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as e:
        print(f"palette serve: cannot listen on {config.host}:{config.port}: {e}", file=sys.stderr)
        return 1
    sock.listen(2048)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    # The supervisor's private directory: the workers' metric samples (unless
    # PROMETHEUS_MULTIPROC_DIR names another) and their reload outcomes (reloads.py).
    _remove_orphaned_run_dirs()
    run_dir = tempfile.mkdtemp(prefix=f"{_RUN_DIR_PREFIX}{os.getpid()}-")
    own_metrics = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own_metrics:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = run_dir
    os.environ["PALETTE_SERVE_RUN_DIR"] = run_dir
    try:
        return _supervise(config, sock, port)
    finally:
        sock.close()
        if own_metrics:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR")
        shutil.rmtree(os.environ.pop("PALETTE_SERVE_RUN_DIR"), ignore_errors=True)


_RUN_DIR_PREFIX = "palette-serve-metrics-"


def _remove_orphaned_run_dirs() -> None:
    """The directories of supervisors that died without cleaning up (kill -9)."""
    for d in Path(tempfile.gettempdir()).glob(f"{_RUN_DIR_PREFIX}*-*"):
        pid = d.name[len(_RUN_DIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:                 # alive, someone else's
            pass


def _supervise(config: ServeConfig, sock: socket.socket, port: int) -> int:
    os.environ["PALETTE_SERVE_SUPERVISOR"] = str(os.getpid())
    env = {**config.to_env(), "PROMETHEUS_MULTIPROC_DIR": os.environ["PROMETHEUS_MULTIPROC_DIR"],
           "PALETTE_SERVE_RUN_DIR": os.environ["PALETTE_SERVE_RUN_DIR"], "PALETTE_SERVE_SUPERVISOR": str(os.getpid())}
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()

    def start():
        p = ctx.Process(target=_worker, args=(env, sock, ready), daemon=False)
        p.start()
        return p, time.monotonic()

    workers = [start() for _ in range(config.workers)]
    state = {"stopping": False}

    def forward(sig):
        for p, _ in workers:
            if p.is_alive():
                try:
                    os.kill(p.pid, sig)
                except ProcessLookupError:
                    pass

    def on_stop(sig, frame):
        if not state["stopping"]:
            log.info("stopping: draining %d worker(s)", len(workers))
        state["stopping"] = True
        forward(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, lambda sig, frame: forward(signal.SIGHUP))
    ready_workers = 0
    deadline = time.monotonic() + 300
    while ready_workers < config.workers and not state["stopping"] and time.monotonic() < deadline:
        try:
            ready.get(timeout=0.2)
            ready_workers += 1
        except queue.Empty:
            if any(not p.is_alive() for p, _ in workers):
                print(f"palette serve: a worker died while starting (exit code "
                      f"{next(p.exitcode for p, _ in workers if not p.is_alive())})", file=sys.stderr)
                on_stop(signal.SIGTERM, None)
                break
    if ready_workers == config.workers:
        print(f"palette serve: {len(config.models)} model(s) ({', '.join(config.models)}) on "
              f"http://{config.host}:{port} with {config.workers} worker(s)", flush=True)
    quick_deaths = 0
    while not state["stopping"]:
        time.sleep(0.2)
        for i, (p, born) in enumerate(workers):
            if p.is_alive() or state["stopping"]:
                continue
            from .metrics import worker_exited
            worker_exited(p.pid)
            reloads.forget(p.pid)
            quick_deaths = quick_deaths + 1 if time.monotonic() - born < 10 else 0
            if quick_deaths >= 3 * config.workers:
                log.error("workers keep dying at start (exit code %s); giving up", p.exitcode)
                on_stop(signal.SIGTERM, None)
                break
            log.warning("worker %d exited with %s; starting another", p.pid, p.exitcode)
            workers[i] = start()
    deadline = time.monotonic() + config.graceful_seconds + 5
    codes = []
    for p, _ in workers:
        p.join(max(deadline - time.monotonic(), 0.1))
        if p.is_alive():
            p.kill()
            p.join()
        codes.append(p.exitcode)
    ok = ready_workers == config.workers and quick_deaths < 3 * config.workers and all(c == 0 for c in codes)
    log.info("stopped (worker exit codes %s)", codes)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    _logging(os.environ.get("PALETTE_SERVE_LOG_LEVEL", "info"))
    try:
        config = ServeConfig.from_sources(argv)
    except ConfigError as e:
        print(f"palette serve: {e}", file=sys.stderr)
        return 2
    return serve(config)


__all__ = ["main", "serve"]
