"""The HTTP app (Starlette on uvicorn): thin handlers over the loaded models.

Errors are JSON of one shape, ``{"error": {"code", "message", "details"}}``, and the
status says who is at fault: 4xx the request (each bad instance and field named), 503 the
online store or an RPC group whose fallback is to fail (within its timeout; the next request
tries again), 500 a bug (logged with
its traceback; the response has none).

>>> app = create_app(ServeConfig.from_sources(["--model", "eta=/models/eta"]))   # doctest: +SKIP
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from palette.errors import OnlineStoreUnavailable, RpcUnavailable, SourceUnavailable
from palette.online import open_store

from . import metrics, reloads
from .config import ServeConfig
from .feature_log import open_log
from .models import BadRequest, ModelSet
from .protocols import JSON, kserve_request, mlflow_request

log = logging.getLogger("palette.serve")
_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
# Every answer of a served model names the version that computed it (ServedModel.version:
# models:/NAME/VERSION or the model directory's real path, as its feature-log records do).
VERSION_HEADER = "X-Model-Version"


def _json(payload, status: int = 200) -> Response:
    return Response(orjson.dumps(payload, option=_OPTS), status_code=status, media_type=JSON)


def _error(status: int, code: str, message: str, details: list | None = None, mlflow: bool = False) -> Response:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    if mlflow:                  # what mlflow models serve answers, beside palette's own shape
        body.update(error_code=_MLFLOW_CODES.get(status, "BAD_REQUEST"), message=message)
    return _json(body, status)


# MLflow's ErrorCode names (mlflow/protos/databricks.proto) for palette's statuses.
_MLFLOW_CODES = {400: "BAD_REQUEST", 404: "RESOURCE_DOES_NOT_EXIST", 413: "BAD_REQUEST", 415: "BAD_REQUEST",
                 500: "INTERNAL_ERROR", 503: "TEMPORARILY_UNAVAILABLE"}
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, e: HTTPException) -> Response:
    """Starlette's own errors (an unknown route, a wrong method) in the one JSON shape."""
    message = {404: f"no route {request.url.path}: see GET /v1/models for the served models",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(e.status_code, str(e.detail))
    response = _error(e.status_code, _HTTP_CODES.get(e.status_code, "http_error"), message,
                      mlflow=request.url.path == "/invocations")
    if e.headers:
        response.headers.update(e.headers)
    return response


async def _server_error(request: Request, e: Exception) -> Response:
    """A bug outside the scoring handler (which answers its own): a logged 500, JSON."""
    ref = request.headers.get("x-request-id") or uuid.uuid4().hex[:12]
    log.error("request %s to %s failed", ref, request.url.path, exc_info=e)
    return _error(500, "internal", f"internal error (request {ref}); the server log has the details",
                  mlflow=request.url.path == "/invocations")


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    declared = int(length) if length is not None and length.isdigit() else None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit or (declared or 0) > limit:
            # Read on (discarding) up to _DRAIN_FACTOR times the limit before answering: a
            # server that answers and closes while the client is still sending makes the kernel
            # reset the connection, and the client sees that instead of the 413 (nginx's
            # lingering close does the same). Beyond that bound the connection closes unread.
            if size > limit * _DRAIN_FACTOR:
                break
            continue
        chunks.append(chunk)
    if declared is not None and declared > limit:
        raise BadRequest(f"the body is {declared:,} bytes; the limit is {limit:,} (--max-body-bytes)",
                         status=413, code="body_too_large")
    if size > limit:
        raise BadRequest(f"the body is over the limit of {limit:,} bytes (--max-body-bytes)", status=413,
                         code="body_too_large")
    return b"".join(chunks)


_DRAIN_FACTOR = 8


def _want_features(request: Request, payload) -> bool:
    flag = request.query_params.get("features", "")
    return flag.lower() in ("1", "true", "yes") or (isinstance(payload, dict) and payload.get("features") is True)


def _columns_param(payload, model) -> list[str] | None:
    """``params: {"columns": [...]}`` on /invocations: the columns to answer with, as the
    pyfunc flavor's ``predict(..., params={"columns": [...]})`` takes them; other params are
    ignored (a palette pipeline takes no inference parameters), as MLflow ignores params a
    model does not take."""
    params = payload.get("params") if isinstance(payload, dict) else None
    columns = (params or {}).get("columns")
    if columns is None:
        return None
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
        raise BadRequest('params.columns is a list of the columns to answer with, e.g. ["prediction"]')
    unknown = [c for c in columns if c not in model.written]
    if unknown:
        raise BadRequest(f"params.columns {unknown} are not columns model {model.name!r} writes; it writes "
                         f"{', '.join(model.written)}")
    return columns


def create_app(config: ServeConfig, models: ModelSet | None = None, on_ready=None) -> Starlette:
    """The app serving ``config``'s models (loaded here unless ``models`` is given);
    ``on_ready()`` is called once it serves."""
    loaded_from = time.time()
    if models is None:
        url = config.online_store_url()
        store = metrics.InstrumentedStore(open_store(url)) if url else None
        models = ModelSet(config, store, open_log(config.log_dir) if config.log_dir else None)
        models.start()
    for name, m in models.models.items():
        metrics.MODEL_LOAD.labels(name).set(m.load_seconds)
    metrics.GENERATION.set(models.generation)
    supervisor = int(os.environ.get("PALETTE_SERVE_SUPERVISOR", "0") or 0)
    scoring = ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="palette-score")

    async def score(request: Request, name: str, endpoint: str, parse) -> Response:
        model = models.get(name)            # the version that answers, whatever a reload swaps meanwhile
        response = await answer(request, model, name, endpoint, parse)
        if model is not None:
            response.headers[VERSION_HEADER] = model.version
        return response

    async def answer(request: Request, model, name: str, endpoint: str, parse) -> Response:
        t0 = time.perf_counter()
        status = 500
        label = "unknown"                   # metric labels come from the served models only
        mlflow = endpoint == "invocations"
        try:
            if model is None:
                status = 404
                return _error(404, "unknown_model", f"no model {name!r} is served; served: "
                                                    f"{', '.join(models.models)}", mlflow=mlflow)
            label = name
            body = await _body(request, config.max_body_bytes)
            instances, payload = parse(request, body, model)
            problems = model.check(instances)
            if problems:
                raise BadRequest(f"{len(problems)} problem(s) with the instances", problems, code="invalid_instances")
            want = _want_features(request, payload)
            outputs = _columns_param(payload, model)
            # Scoring waits on the online store: in a thread, so a slow or failing store holds
            # one thread, never the event loop (health checks, other models, other requests).
            predictions, features = await asyncio.get_running_loop().run_in_executor(
                scoring, model.score, instances, want, request.headers.get("x-request-id"), outputs)
            metrics.INSTANCES.labels(label).inc(len(instances))
            status = 200
            out = {"predictions": predictions}
            if features is not None:
                out["features"] = features
            return _json(out)
        except BadRequest as e:
            status = e.status
            return _error(e.status, e.code, e.message, e.details, mlflow=mlflow)
        except RpcUnavailable as e:
            status = 503
            return _error(503, "rpc_unavailable", str(e), [{"group": e.group, "reason": e.reason}], mlflow=mlflow)
        except SourceUnavailable as e:
            status = 503
            return _error(503, "online_store_unavailable", str(e), mlflow=mlflow)
        except Exception:
            ref = request.headers.get("x-request-id") or uuid.uuid4().hex[:12]
            log.exception("request %s to model %s failed", ref, name)
            return _error(500, "internal", f"internal error (request {ref}); the server log has the details",
                          mlflow=mlflow)
        finally:
            metrics.REQUESTS.labels(label, endpoint, str(status)).inc()
            metrics.LATENCY.labels(label, endpoint).observe(time.perf_counter() - t0)

    def kserve(request: Request, body: bytes, model):
        return kserve_request(request.headers.get("content-type", ""), body, config.max_instances)

    def mlflow(request: Request, body: bytes, model):
        return mlflow_request(request.headers.get("content-type", ""), body, model.fields, config.max_instances)

    async def predict(request: Request) -> Response:
        return await score(request, request.path_params["name"], "predict", kserve)

    async def invocations(request: Request) -> Response:
        name = config.default_model or (next(iter(models.models)) if len(models.models) == 1 else None)
        if name is None:
            return _error(400, "no_default_model", "several models are served: start with --default-model NAME, "
                                                   "or use POST /v1/models/NAME:predict", mlflow=True)
        return await score(request, name, "invocations", mlflow)

    async def healthz(request: Request) -> Response:
        return _json({"status": "alive"})

    async def readyz(request: Request) -> Response:
        if not models.models:
            return _error(503, "not_ready", "no model is loaded")
        groups = {}
        if models.online_store is not None:
            try:
                models.online_store.ping()
                groups, stale = await asyncio.get_running_loop().run_in_executor(None, models.freshness)
            except OnlineStoreUnavailable as e:
                return _error(503, "online_store_unavailable", str(e))
            if stale:
                return _error(503, "stale_features", f"{len(stale)} feature group(s) staler than --require-fresh "
                                                     "allows: materialize them", stale)
        return _json({"status": "ready", "models": sorted(models.models), "generation": models.generation,
                      "reloading": models.reloading, "feature_groups": groups})

    async def list_models(request: Request) -> Response:
        return _json({"models": [m.describe() for m in models.models.values()],
                      "generation": models.generation, "last_reload": models.last_reload})

    async def one_model(request: Request) -> Response:
        m = models.get(request.path_params["name"])
        if m is None:
            return _error(404, "unknown_model", f"no model {request.path_params['name']!r} is served")
        return _json(m.describe())

    async def metrics_endpoint(request: Request) -> Response:
        text, kind = metrics.render()
        return Response(text, media_type=kind)

    async def reload_here() -> dict:
        began = time.time()
        result = await asyncio.get_running_loop().run_in_executor(None, models.reload)
        reloads.record(result, began)
        for name, m in models.models.items():
            metrics.MODEL_LOAD.labels(name).set(m.load_seconds)
        metrics.GENERATION.set(models.generation)
        return result

    def admin_refused(request: Request) -> Response | None:
        """None when the request may use the admin routes: they are off (404) without
        --admin-token, and need ``Authorization: Bearer TOKEN`` (compared in constant time)."""
        if not config.admin_token:
            return _error(404, "not_found", f"no route {request.url.path}: the admin routes are off; start with "
                                            "--admin-token (or PALETTE_SERVE_ADMIN_TOKEN) to turn them on")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), config.admin_token.encode()):
            response = _error(401, "unauthorized", "the admin routes need 'Authorization: Bearer TOKEN' with the "
                                                   "server's --admin-token")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return None

    async def admin_reload(request: Request) -> Response:
        refused = admin_refused(request)
        if refused is not None:
            return refused
        if supervisor:
            asked = time.time()
            os.kill(supervisor, signal.SIGHUP)      # every worker reloads; answer for all of them
            result = await reloads.every_worker(asked, config.workers)
        else:
            result = await reload_here()
        return _json(result, 200 if result and result["ok"] else 409)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(reload_here()))
        except (NotImplementedError, RuntimeError, ValueError):      # not the main thread (a test client)
            pass
        reloads.record({"ok": True, "generation": models.generation}, loaded_from)
        if os.environ.pop("PALETTE_SERVE_RELOAD_PENDING", None):      # asked for while this worker started
            asyncio.ensure_future(reload_here())
        if on_ready is not None:
            on_ready()
        yield
        scoring.shutdown(wait=True)                    # uvicorn has drained the requests by now
        if models.feature_log is not None:
            models.feature_log.close()                 # what is queued is written before the worker exits
        if models.online_store is not None:
            models.online_store.close()
        models.close()

    routes = [
        Route("/v1/models/{name}:predict", predict, methods=["POST"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/healthz", healthz), Route("/ping", healthz), Route("/readyz", readyz),
        Route("/v1/models", list_models), Route("/v1/models/{name}", one_model),
        Route("/metrics", metrics_endpoint), Route("/admin/reload", admin_reload, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error,
                                                                          Exception: _server_error})
    app.state.models = models
    return app


__all__ = ["create_app", "VERSION_HEADER"]
