"""The serving process's configuration: flags, environment variables, an optional file.

Precedence: a flag, then its environment variable (``PALETTE_SERVE_<NAME>``), then the
file (``--config serve.toml`` / ``.yaml`` / ``.json``), then the default. The file may
hold everything::

    online_store = "redis://cache:6379/0"
    workers = 2
    [models.eta]
    path = "/models/eta"
    outputs = ["prediction"]

>>> c = ServeConfig.from_sources(["--model", "eta=/models/eta", "--output", "eta=prediction,n_busy_f"], env={})
>>> c.models["eta"].path, c.models["eta"].outputs, c.port
('/models/eta', ['prediction', 'n_busy_f'], 8080)
"""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from palette.errors import PaletteError


class ConfigError(PaletteError, ValueError):
    """A serving configuration that cannot work; the message names the option and the fix."""


@dataclass
class ModelConfig:
    name: str
    path: str
    outputs: list[str] | None = None           # None: the model's prediction column(s)


@dataclass
class ServeConfig:
    models: dict[str, ModelConfig] = field(default_factory=dict)
    online_store: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    threads: int = 16                          # per worker: scoring off the event loop
    max_body_bytes: int = 1 << 20
    max_instances: int = 10_000
    store_timeout_ms: float | None = None
    default_model: str | None = None
    graceful_seconds: float = 30.0
    log_level: str = "info"
    log_dir: str | None = None                 # feature logging (palette.logs) off unless set
    log_sample: float = 1.0
    log_by: str = "key"
    profile_window: float = 60.0               # served profiles' window (seconds), with --log-dir; 0: none
    admin_token: str | None = None             # the admin routes are off unless set
    require_fresh: dict[str, str] = field(default_factory=dict)     # group -> age: /readyz fails beyond

    # -- building -----------------------------------------------------------------------
    @classmethod
    def from_sources(cls, argv: list[str] | None = None, env: dict | None = None) -> "ServeConfig":
        env = os.environ if env is None else env
        args = parser().parse_args(argv)
        file_values = _read_file(args.config or env.get("PALETTE_SERVE_CONFIG"))
        c = cls()
        for name, conv in (("online_store", str), ("host", str), ("port", int), ("workers", int), ("threads", int),
                           ("max_body_bytes", int), ("max_instances", int), ("store_timeout_ms", float),
                           ("default_model", str), ("graceful_seconds", float), ("log_level", str),
                           ("log_dir", str), ("log_sample", float), ("log_by", str), ("admin_token", str),
                           ("profile_window", float)):
            value = getattr(args, name)
            if value is None:
                value = env.get(f"PALETTE_SERVE_{name.upper()}")
            if value is None and name == "online_store":
                value = env.get("PALETTE_ONLINE_STORE")
            if value is None:
                value = file_values.get(name)
            if value is not None:
                try:
                    setattr(c, name, conv(value))
                except ValueError:
                    raise ConfigError(f"{name} must be {conv.__name__}, got {value!r}") from None
        models = _file_models(file_values.get("models", {}))
        env_models = env.get("PALETTE_SERVE_MODELS")
        for spec in (args.model or (env_models.split() if env_models else [])):
            name, path = _model_spec(spec)
            models[name] = ModelConfig(name, path, models.get(name, ModelConfig(name, path)).outputs)
        for spec in args.output or []:
            name, cols = _pair(spec, "--output", "NAME=COL1,COL2")
            if name not in models:
                raise ConfigError(f"--output {spec!r} names model {name!r}, which is not served; "
                                  f"served: {', '.join(models) or 'none'}")
            models[name].outputs = [c.strip() for c in cols.split(",") if c.strip()]
        c.models = models
        fresh = file_values.get("require_fresh") or {}
        env_fresh = env.get("PALETTE_SERVE_REQUIRE_FRESH")
        for spec in args.require_fresh or (env_fresh.split() if env_fresh else []):
            group, age = _pair(spec, "--require-fresh", "ENTITY:GROUP=AGE (e.g. restaurant:location_fg=3d)")
            fresh[group] = age
        c.require_fresh = dict(fresh)
        c.check()
        return c

    def check(self) -> None:
        if not self.models:
            raise ConfigError("no model to serve: pass --model NAME=PATH (repeatable), set PALETTE_SERVE_MODELS "
                              "or list [models.NAME] in the --config file")
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {self.threads}")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"--port must be 0..65535, got {self.port}")
        if self.default_model is not None and self.default_model not in self.models:
            raise ConfigError(f"--default-model {self.default_model!r} is not served; served: {', '.join(self.models)}")
        if not 0.0 <= self.log_sample <= 1.0:
            raise ConfigError(f"--log-sample must be a fraction between 0 and 1, got {self.log_sample}")
        if self.profile_window < 0:
            raise ConfigError(f"--profile-window must be seconds >= 0 (0: no served profiles), got "
                              f"{self.profile_window}")
        if self.log_by not in ("key", "request"):
            raise ConfigError(f"--log-by must be 'key' or 'request', got {self.log_by!r}")
        from palette.registry import parse_age
        for group, age in self.require_fresh.items():
            try:
                ok = parse_age(age) is not None
            except PaletteError:
                ok = False
            if not ok:
                raise ConfigError(f"--require-fresh {group}={age}: the age is like 90s, 15m, 2h or 1d")
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise ConfigError("--admin-token must be at least 16 characters (e.g. the output of "
                              "python -c 'import secrets; print(secrets.token_urlsafe())')")
        if self.max_body_bytes < 1024 or self.max_instances < 1:
            raise ConfigError("--max-body-bytes must be at least 1024 and --max-instances at least 1")

    def online_store_url(self) -> str | None:
        """The online store URL with the read timeout applied (a ``timeout_ms`` query parameter)."""
        url = self.online_store
        if url is None or self.store_timeout_ms is None:
            return url
        return f"{url}{'&' if '?' in url else '?'}timeout_ms={self.store_timeout_ms:g}"

    def to_env(self) -> dict[str, str]:
        """The configuration for worker processes (spawned: they read it back from here)."""
        return {"PALETTE_SERVE_STATE": json.dumps({
            **{k: v for k, v in self.__dict__.items() if k != "models"},
            "models": {n: {"path": m.path, "outputs": m.outputs} for n, m in self.models.items()}})}

    @classmethod
    def from_env(cls, env: dict | None = None) -> "ServeConfig":
        state = json.loads((os.environ if env is None else env)["PALETTE_SERVE_STATE"])
        models = _file_models(state.pop("models"))
        return cls(models=models, **state)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="palette serve",
        description="Serve saved palette/Spark ML pipelines over HTTP without a JVM: KServe v1 "
                    "(POST /v1/models/NAME:predict) and MLflow (POST /invocations) payloads, health "
                    "(/healthz, /readyz), model listing (/v1/models) and Prometheus metrics (/metrics).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n"
               "  palette serve --model models/eta --online-store sqlite:////data/online.db --port 8080\n"
               "  curl -d '{\"instances\": [{\"r_id\": \"r1\", \"order_size\": 2}]}' "
               "localhost:8080/v1/models/eta:predict\n\n"
               "Every option may also come from the environment (PALETTE_SERVE_<OPTION>, e.g.\n"
               "PALETTE_SERVE_WORKERS=2; models as PALETTE_SERVE_MODELS='eta=/m/eta fraud=/m/fraud'; the\n"
               "online store also from PALETTE_ONLINE_STORE) or from the --config file. SIGTERM drains\n"
               "in-flight requests and exits 0; SIGHUP (or POST /admin/reload with --admin-token) reloads\n"
               "every model directory, keeping the old version until the new one has loaded.")
    p.add_argument("--model", action="append", metavar="[NAME=]PATH",
                   help="a model to serve: its name in URLs and the directory model.write().save() wrote, or a "
                        "models:/NAME@ALIAS URI (repeatable); without NAME=, the directory's (or registered) name")
    p.add_argument("--output", action="append", metavar="NAME=COL1,COL2",
                   help="the columns a model's predictions hold (default: its prediction column(s))")
    p.add_argument("--online-store", metavar="URL", help="sqlite:///path/online.db or redis://host:port/db, for "
                   "models that read the feature store")
    p.add_argument("--store-timeout-ms", type=float, metavar="MS",
                   help="an online read gives up after this long (503): default the store's (Redis 5)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, help="port to listen on (default 8080; 0 picks a free one)")
    p.add_argument("--workers", type=int, help="worker processes sharing the port (default 1)")
    p.add_argument("--threads", type=int, help="threads per worker that score requests (default 16): a request "
                   "waiting on the online store holds one, while the worker goes on answering others")
    p.add_argument("--default-model", metavar="NAME", help="the model /invocations scores (default: the only one)")
    p.add_argument("--max-body-bytes", type=int, help="larger request bodies get 413 (default 1 MiB)")
    p.add_argument("--max-instances", type=int, help="more instances in one request get 413 (default 10000)")
    p.add_argument("--graceful-seconds", type=float, help="on SIGTERM, how long in-flight requests may take")
    p.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--log-dir", metavar="DIR", help="log the features each sampled request read, its keys and "
                   "prediction as Parquet files under DIR (date=/model= partitions; see palette.logs)")
    p.add_argument("--log-sample", type=float, metavar="FRACTION",
                   help="the fraction of requests to log (default 1.0 with --log-dir)")
    p.add_argument("--log-by", choices=["key", "request"],
                   help="sample by a hash of the request's entity key, keeping every request of a sampled key "
                        "(default), or by request")
    p.add_argument("--profile-window", type=float, metavar="SECONDS",
                   help="with --log-dir: profile what each model is fed per window of this many seconds (default "
                        "60) into DIR/_profiles, for palette monitor; 0 turns it off")
    p.add_argument("--require-fresh", action="append", metavar="GROUP=AGE",
                   help="/readyz fails (503) while the newest materialized value of feature group GROUP is older "
                        "than AGE (e.g. restaurant:location_fg=3d; repeatable)")
    p.add_argument("--admin-token", metavar="TOKEN",
                   help="turn on POST /admin/reload for requests with 'Authorization: Bearer TOKEN' (at least 16 "
                        "characters; better from PALETTE_SERVE_ADMIN_TOKEN, which ps does not show); without it "
                        "the admin routes answer 404")
    p.add_argument("--config", metavar="FILE", help="a TOML, YAML or JSON file with the options above")
    return p


def _model_spec(spec: str) -> tuple[str, str]:
    """``NAME=PATH``, or a bare PATH named after its directory (``models:/eta@champion``: eta)."""
    if "=" in spec:
        return _pair(spec, "--model", "NAME=PATH or PATH")
    path = spec.strip()
    if path.startswith("models:/"):
        name = path[len("models:/"):].split("/")[0].split("@")[0]
    else:
        name = Path(path.rstrip("/")).name
    if not name:
        raise ConfigError(f"--model {spec!r}: no name can be taken from it; use NAME=PATH")
    return name, path


def _pair(spec: str, flag: str, form: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep or not name or not value:
        raise ConfigError(f"{flag} {spec!r}: use {form}")
    return name.strip(), value.strip()


def _file_models(models: dict) -> dict[str, ModelConfig]:
    out = {}
    for name, m in models.items():
        if isinstance(m, str):
            m = {"path": m}
        if not isinstance(m, dict) or "path" not in m:
            raise ConfigError(f"model {name!r} in the config file needs a path")
        out[name] = ModelConfig(name, str(m["path"]), m.get("outputs"))
    return out


def _read_file(path: str | None) -> dict:
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config {path}: no such file")
    text = p.read_text()
    try:
        if p.suffix == ".toml":
            import tomllib
            return tomllib.loads(text)
        if p.suffix in (".yaml", ".yml"):
            import yaml
            return yaml.safe_load(text) or {}
        return json.loads(text)
    except ImportError as e:
        raise ConfigError(f"--config {path}: reading it needs {e.name} (pip install it, or use JSON)") from None
    except Exception as e:
        raise ConfigError(f"--config {path} cannot be read: {e}") from None


__all__ = ["ServeConfig", "ModelConfig", "ConfigError", "parser"]
