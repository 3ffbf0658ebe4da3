"""The models a serving process holds: loaded once, checked, swapped whole on reload.

Everything a request needs is resolved here, when a model loads — the scorer, its plan of
online reads, the fields a request must hold and their types, the columns it answers
with — so a request does no metadata work.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from palette import uris
from palette.errors import PaletteError, SourceUnavailable
from palette.feature_types import field_type
from palette.logs.writer import FeatureLog, new_request_id
from palette.transformers.runtime import PipelineScorer, RowSkipped, load_scorer

from . import metrics
from .config import ModelConfig, ServeConfig
from .feature_log import INDEX, Capture, ModelLog

log = logging.getLogger("palette.serve")

_INDEX = INDEX


class ModelLoadError(PaletteError, RuntimeError):
    """A model that cannot be served; the message names it and says why."""


class BadRequest(PaletteError, ValueError):
    """A request the service refuses (4xx): ``details`` names each bad instance and field."""

    def __init__(self, message: str, details: list[dict] | None = None, status: int = 400, code: str = "bad_request"):
        super().__init__(message)
        self.message, self.details, self.status, self.code = message, details or [], status, code




def _describe(kind: str) -> str:
    t = field_type(kind)
    return kind if t is None else t.describe


def _timestamp(v: str) -> datetime:
    t = datetime.fromisoformat(v[:-1] + "+00:00" if v.endswith("Z") else v)
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t


@dataclass
class ServedModel:
    name: str
    path: str
    scorer: PipelineScorer
    fields: dict[str, str]
    outputs: list[str]
    written: list[str]
    stages: list[str]
    loaded_at: float
    load_seconds: float
    _ts_fields: list[str] = field(default_factory=list)
    feature_log: ModelLog | None = None
    source: dict = field(default_factory=dict)       # what the path resolved to (an MLflow version)
    lineage: dict | None = None
    profiler: object | None = None                   # palette.monitor.served.ServedProfiler, with --log-dir
    version: str = ""                                # models:/NAME/VERSION, or the directory's real path


    def groups(self) -> list[str]:
        """The feature groups this model reads from the online store."""
        return sorted({b.group_id for reads in self.scorer.fetch_points.values() for b in reads if b.rpc is None})

    def describe(self) -> dict:
        return {"name": self.name, "path": self.path, "version": self.version, "ready": True, "stages": self.stages,
                "inputs": [{"name": f, "type": k} for f, k in self.fields.items()], "outputs": self.outputs,
                "online_round_trips": self.scorer.round_trips,
                "loaded_at": datetime.fromtimestamp(self.loaded_at, timezone.utc).isoformat(timespec="seconds"),
                "load_seconds": round(self.load_seconds, 3), "source": self.source, "lineage": self.lineage}

    # -- a request ----------------------------------------------------------------------
    def check(self, instances: list) -> list[dict]:
        """Every instance is checked before anything is scored; the problems of all of them
        (bounded) come back at once, each naming the instance and the field."""
        problems = []
        for i, inst in enumerate(instances):
            if not isinstance(inst, dict):
                problems.append({"instance": i, "problem": f"must be an object of field: value, got "
                                                          f"{type(inst).__name__}"})
            else:
                for f, kind in self.fields.items():
                    if f not in inst:
                        problems.append({"instance": i, "field": f, "problem": "missing"})
                        continue
                    v = inst[f]
                    check = field_type(kind)
                    if v is not None and check is not None and not check.accepts(v):
                        problems.append({"instance": i, "field": f, "problem": f"must be {check.describe} (or null), "
                                                                             f"got {type(v).__name__} {v!r}"[:200]})
                    elif isinstance(v, str) and kind == "ts":
                        try:
                            _timestamp(v)
                        except ValueError:
                            problems.append({"instance": i, "field": f,
                                             "problem": f"must be an ISO 8601 timestamp, got {v!r}"[:200]})
            if len(problems) >= 50:
                break
        return problems

    def _row(self, inst: dict) -> dict:
        if not self._ts_fields:
            return inst
        row = dict(inst)
        for f in self._ts_fields:
            if isinstance(row.get(f), str):
                row[f] = _timestamp(row[f])
        return row

    def score(self, instances: list[dict], features: bool = False, request_id: str | None = None,
              outputs: list[str] | None = None) -> tuple[list, list | None]:
        """(predictions, features or None), one per instance. One instance goes through
        ``scoreInstance``, several through ``scoreBatch``; an instance a stage drops
        (handleInvalid='skip') gets a null prediction. With a feature log, the sampled
        instances are logged (under ``request_id``) once answered. ``outputs``: the columns
        to answer with instead of the model's (MLflow's ``params.columns``)."""
        started = time.time()
        sampled = self.feature_log.sampled(instances) if self.feature_log is not None else None
        capture = Capture() if sampled else None
        profiler = self.profiler
        fetched = [] if profiler is not None else None
        try:
            if len(instances) == 1:
                try:
                    rows = [self.scorer.scoreInstance(self._row(instances[0]), capture, fetched)]
                except RowSkipped:
                    rows = [None]
            else:
                indexed = [{**self._row(inst), _INDEX: i} for i, inst in enumerate(instances)]
                scored = {r[_INDEX]: r for r in self.scorer.scoreBatch(indexed, capture, fetched)}
                rows = [scored.get(i) for i in range(len(instances))]
        except SourceUnavailable:
            raise
        except PaletteError as e:               # the instances' fault; anything else is palette's: a 500
            raise BadRequest(f"the instances could not be scored: {e}", self._locate(instances)) from None
        if profiler is not None:
            profiler.record(rows, fetched, started)
        predictions = [self._answer(r, outputs or self.outputs) for r in rows]
        extra = [None if r is None else {c: r.get(c) for c in self.written} for r in rows] if features else None
        if capture is not None:
            self.feature_log.write(capture, instances, rows, predictions, sampled, request_id or new_request_id(),
                                   started)
        return predictions, extra

    @staticmethod
    def _answer(row: dict | None, outputs: list[str]):
        if row is None:
            return None
        if len(outputs) == 1:
            return row.get(outputs[0])
        return {c: row.get(c) for c in outputs}

    def _locate(self, instances: list[dict]) -> list[dict]:
        """Which instances fail, and why: each scored alone (a failed batch only), with the
        feature values the batch fetched for it (one batch fetch again, observed, rather than
        a round trip — or an RPC call — per instance)."""
        fetched = Capture()
        if len(instances) > 1:
            try:
                self.scorer.scoreBatch([{**self._row(inst), _INDEX: i} for i, inst in enumerate(instances)], fetched)
            except PaletteError:
                pass                              # it fails again: what it fetched before failing is kept
        details = []
        for i, inst in enumerate(instances):
            try:
                self.scorer.scoreInstance({**self._row(inst), **fetched.values.get(i, {})})
            except RowSkipped:
                continue
            except SourceUnavailable:
                raise
            except Exception as e:            # the instance's own error, whatever the stage raised
                detail = {"instance": i, "problem": str(e)[:500]}
                nulls = [f for f in self.fields if isinstance(inst, dict) and inst.get(f) is None]
                if nulls:                     # what the caller can change: the fields it left null
                    wants = ", ".join(f"{f} ({_describe(self.fields[f])})" for f in nulls)
                    # The stage's own words advise the model's author (fill it in the pipeline): the
                    # log keeps them; the caller is told what to send (docs/serving.md, "Nulls").
                    log.info("model %s cannot score instance %d with %s null: %s", self.name, i, ", ".join(nulls),
                             detail["problem"])
                    detail["problem"] = (f"the model cannot score this instance with {', '.join(nulls)} null: send "
                                         f"{wants}")[:800]
                    detail["null_fields"] = nulls
                details.append(detail)
                if len(details) >= 20:
                    break
        return details


def load_model(m: ModelConfig, online_store, feature_log: FeatureLog | None = None,
               log_sample: float = 1.0, log_by: str = "key", rpc_clients: dict | None = None,
               profile_window: float = 0.0) -> ServedModel:
    t0 = time.perf_counter()
    try:
        source, local, lineage = _resolve(m.path)
        scorer = load_scorer(local, online_store=online_store, rpc_observer=metrics.RpcMetrics(),
                             rpc_clients=rpc_clients)
    except Exception as e:
        raise ModelLoadError(f"model {m.name!r} ({m.path}) cannot be served: {type(e).__name__}: {e}") from e
    written = scorer.output_columns()
    outputs = m.outputs or scorer.prediction_columns()
    unknown = [c for c in outputs if c not in written]
    if unknown or not outputs:
        raise ModelLoadError(f"model {m.name!r} ({m.path}): outputs {unknown or outputs} are not columns it writes; "
                             f"it writes {', '.join(written) or 'nothing'}")
    fields = scorer.request_fields()
    pinned = source.get("name") and source.get("version") is not None
    version = f"models:/{source['name']}/{source['version']}" if pinned else \
        m.path if ":/" in m.path else os.path.realpath(m.path)          # runs:/…, a URI as given; a folder's real path
    logged = None if feature_log is None else ModelLog(feature_log, m.name, version, scorer, log_sample, log_by)
    profiler = None
    if profile_window > 0:
        from palette.monitor.served import ServedProfiler
        profiler = ServedProfiler(m.name, scorer, profile_window)
    return ServedModel(m.name, m.path, scorer, fields, outputs, written,
                       [s.metadata.get("class", type(s).__name__).rsplit(".", 1)[-1] for s in scorer.stages],
                       time.time(), time.perf_counter() - t0, [f for f, k in fields.items() if k == "ts"], logged,
                       source, lineage, profiler, version)


def _resolve(path: str) -> tuple[dict, str, dict | None]:
    """(source, local directory, lineage) of a model path. A registry URI is resolved to
    its version first and that version is downloaded (an alias moved meanwhile cannot mix
    two versions); a reload resolves it again."""
    from palette.mlflow.uri import LINEAGE_FILE, is_model_uri, local_model_dir, read_lineage, resolve
    from palette.transformers.runtime.artifact import palette_refs
    if is_model_uri(path):
        source = resolve(path)
        pinned = f"models:/{source['name']}/{source['version']}" if source["version"] is not None else path
        lineage = read_lineage(pinned)
        local = local_model_dir(pinned)
    else:
        source, local = {"uri": path, "name": None, "version": None, "run_id": None}, path
        logged = Path(path).resolve().parent / LINEAGE_FILE        # a downloaded MLflow model's data dir
        lineage = read_lineage(str(Path(path).resolve().parent)) if logged.is_file() else None
    if lineage is None:
        lineage = {"feature_refs": palette_refs(local)}
    keep = ("feature_refs", "feature_groups", "feature_tables", "training_window", "palette_version")
    return source, local, {k: lineage[k] for k in keep if k in lineage}


class ModelSet:
    """The served models. ``reload`` loads every model directory again and swaps the whole
    set at once, only when every model loaded; otherwise the old set keeps serving."""

    def __init__(self, config: ServeConfig, online_store=None, feature_log: FeatureLog | None = None):
        self.config, self.online_store, self.feature_log = config, online_store, feature_log
        self.rpc_clients: dict = {}         # RPC fetchers, shared by the models and kept across reloads
        self.fetcher_grace = 30.0           # seconds a retired fetcher stays open for requests still on it
        self.models: dict[str, ServedModel] = {}
        self.profiles = None                # palette.monitor.served.ProfileFlusher, with --log-dir
        if feature_log is not None and config.profile_window > 0:
            from palette.monitor.served import ProfileFlusher
            self.profiles = ProfileFlusher(uris.join(config.log_dir, "_profiles"), on_window=metrics.served_window)
        self.generation = 0
        self.last_reload: dict | None = None
        self.reloading = False              # a reload is loading; the current set serves meanwhile
        self._lock = threading.Lock()

    def load(self) -> dict[str, ServedModel]:
        c = self.config
        window = c.profile_window if self.profiles is not None else 0.0
        models = {name: load_model(m, self.online_store, self.feature_log, c.log_sample, c.log_by, self.rpc_clients,
                                   window) for name, m in c.models.items()}
        read = {g for m in models.values() for g in m.groups()}
        unknown = sorted(set(c.require_fresh) - read)
        if unknown:
            raise ModelLoadError(f"--require-fresh names {', '.join(unknown)}, which no served model reads; they "
                                 f"read: {', '.join(sorted(read)) or 'no feature group'}")
        return models

    def freshness(self) -> tuple[dict, list[dict]]:
        """Per feature group the served models read: its newest materialized value and
        how old it is now (from the store's watermark); and the groups staler than
        ``--require-fresh`` allows (the reasons /readyz fails)."""
        from palette.registry import parse_age
        groups = sorted({g: None for m in self.models.values() for g in m.groups()})
        out, stale = {}, []
        now = self.online_store.now_micros() if self.online_store is not None else 0
        for gid in groups:
            mark = self.online_store.watermark(gid) or {}
            newest = mark.get("newest_event_micros")
            age = None if newest is None else round((now - newest) / 1e6, 3)
            out[gid] = {"newest_event": None if newest is None else
                        datetime.fromtimestamp(newest / 1e6, timezone.utc).isoformat(timespec="seconds"),
                        "age_seconds": age, "materialized_at": mark.get("at"), "delta_version": mark.get("version")}
            limit = self.config.require_fresh.get(gid)
            if limit is not None:
                allowed = parse_age(limit).total_seconds()
                out[gid]["require_fresh_seconds"] = allowed
                if age is None or age > allowed:
                    stale.append({"group": gid, "problem": f"its newest materialized value is "
                                  f"{'unknown (materialize it)' if age is None else f'{age:,.0f} s old'}; "
                                  f"--require-fresh allows {allowed:,.0f} s"})
        return out, stale

    def start(self) -> None:
        self.models = self.load()
        self._watch()
        self.generation = 1

    def _watch(self) -> None:
        if self.profiles is not None:
            for m in self.models.values():
                self.profiles.watch(m.profiler, m.version)

    def reload(self) -> dict:
        """Load every model again; swap only if all loaded. Returns what happened."""
        with self._lock:
            self.reloading = True
            try:
                return self._reload()
            finally:
                self.reloading = False

    def _reload(self) -> dict:
        t0 = time.perf_counter()
        if self.online_store is not None:
            self.online_store.reopen()       # a rebuilt or repaired store is read afresh
        try:
            new = self.load()
        except ModelLoadError as e:
            self.last_reload = {"ok": False, "error": str(e), "generation": self.generation,
                                "at": time.time()}
            log.error("reload refused, the serving version stays: %s", e)
            self._retire_fetchers()
            return self.last_reload
        self.models = new                    # one reference swap: requests see old or new, whole
        self._watch()
        self._retire_fetchers()
        self.generation += 1
        self.last_reload = {"ok": True, "generation": self.generation, "at": time.time(),
                            "seconds": round(time.perf_counter() - t0, 3)}
        log.info("reloaded %d model(s) in %.2fs (generation %d)", len(new), time.perf_counter() - t0,
                 self.generation)
        return self.last_reload

    def get(self, name: str) -> ServedModel | None:
        return self.models.get(name)

    def _retire_fetchers(self) -> None:
        """RPC fetchers no served model uses any more (a definition changed, a model
        dropped, a refused reload's) are closed once requests still on them are done."""
        used = {id(b.rpc) for m in self.models.values() for s in m.scorer.stages for b in s.reads if b.rpc}
        stale = [ident for ident, client in self.rpc_clients.items() if id(client) not in used]
        retired = [self.rpc_clients.pop(ident) for ident in stale]
        if retired:
            timer = threading.Timer(self.fetcher_grace, lambda: [c.close() for c in retired])
            timer.daemon = True
            timer.start()

    def close(self) -> None:
        if self.profiles is not None:
            self.profiles.close()                # the windows in progress are written
        for client in self.rpc_clients.values():
            client.close()


__all__ = ["ServedModel", "ModelSet", "ModelLoadError", "BadRequest", "load_model"]
