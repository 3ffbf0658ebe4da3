"""The parity harness: ``transform()`` on Spark against the serving path, stage by stage.

>>> report = check_parity("/models/eta", orders, online_store="sqlite:////data/online.db")  # doctest: +SKIP
>>> print(report)                                                                          # doctest: +SKIP
parity PASS: /models/eta: 10,000 rows, 6 stages, as of 2026-12-03T17:00:00Z; ...
>>> report.write_html("parity.html")                                                       # doctest: +SKIP
>>> assert_parity(model, orders, online_store=url)      # in a pytest test                  # doctest: +SKIP

What it does:

1. saves the model when it is in memory, and scores the rows with ``load_scorer(path,
   online_store=...)`` in a separate process that cannot import pyspark
   (``palette.parity.worker``), in batches, through ``scoreBatch`` — the code a serving
   process runs — recording every stage's output columns;
2. runs ``transform`` on Spark one stage at a time, keeping every stage's outputs (a
   later stage may overwrite a column, as the ETA pipeline's imputation does), with
   every feature lookup made as of the check's instant (``as_of``, default now) and the
   current Delta versions: like with like, since the online store serves the latest
   values, read with its clock at the same instant (max age, and a windowed stream
   feature's value, are judged there on both sides);
3. reads the offline store's latest view of every key the lookups read, as of the same
   instant, and compares it with the online record (store skew);
4. compares every output column of every stage row by row (``compare.same``), and
   blames each mismatching row on the first stage where it diverged.

An RPC group (``kind="rpc"``) has no online record to compare: the serving side fetches it,
the harness writes what it answered into the group's Delta table as of the check's
instant (as ``palette backfill-rpc`` writes served fetches; fallbacks kept apart) before
``transform()`` runs, so the two sides see the same values. Rows served a fallback are
blamed on it (``rpc fallback``), not on the store or the logic.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from palette.errors import ParityError

from .compare import errors, normalize, number, same
from .report import ERROR_BINS, ColumnResult, Example, ParityReport, StageResult, StoreSkew, error_bin
from .worker import ROW_ID, _Absent

AS_OF = "__palette_parity_as_of"
_POINTS = 400                  # rows per scatter plot


# -- the model --------------------------------------------------------------------------------
def _load_spark_model(path: str):
    from pyspark.ml import PipelineModel
    from pyspark.ml.util import DefaultParamsReader
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    metadata = DefaultParamsReader.loadMetadata(path, spark.sparkContext)
    if metadata["class"] in ("org.apache.spark.ml.PipelineModel", "pyspark.ml.pipeline.PipelineModel"):
        return PipelineModel.load(path)
    return DefaultParamsReader.loadParamsInstance(path, spark.sparkContext)


def _model_and_path(model, tmp: str):
    if isinstance(model, (str, os.PathLike)):
        from palette.mlflow.uri import is_model_uri, local_model_dir
        path = local_model_dir(model) if is_model_uri(model) else str(model)
        if not (Path(path) / "metadata").exists():
            raise ParityError(f"{path} is not a saved model (no metadata/ in it): pass a fitted model or the "
                              "directory model.write().save(path) wrote")
        return _load_spark_model(path), path
    if not hasattr(model, "write"):
        raise ParityError(f"cannot check {type(model).__name__}: pass a fitted Spark ML model (a PipelineModel or "
                          "one stage) or the directory it was saved to")
    path = f"{tmp}/model"
    model.write().save(path)
    return model, path


def _flatten(model) -> list:
    stages = getattr(model, "stages", None)
    if stages is None:
        return [model]
    return [s for stage in stages for s in _flatten(stage)]


def _at(stage, as_of_col: str):
    """The stage with its feature lookups made as of ``as_of_col`` at the current Delta
    versions (a stage that reads no palette feature, unchanged)."""
    refs = stage.paletteRefs() if hasattr(stage, "paletteRefs") else []
    if not refs or not stage.hasParam("timestampCol"):
        return stage
    extra = {stage.timestampCol: as_of_col}
    if stage.hasParam("deltaVersions"):
        extra[stage.deltaVersions] = {}
    return stage.copy(extra)


# -- the two sides ------------------------------------------------------------------------
def _columns(table) -> dict[str, list]:
    return {name: [normalize(v) for v in table.column(name).to_pylist()] for name in table.column_names}


def _run_worker(path: str, online_store, columns: dict, batch_rows: int, tmp: str, as_of: datetime) -> dict:
    request, result = f"{tmp}/request.pickle", f"{tmp}/result.pickle"
    url = online_store if online_store is None or isinstance(online_store, str) else online_store.url
    with open(request, "wb") as f:
        pickle.dump({"model": path, "online_store": url, "columns": columns, "batch_rows": batch_rows,
                     "as_of": as_of.timestamp()}, f, protocol=pickle.HIGHEST_PROTOCOL)
    proc = subprocess.run([sys.executable, "-m", "palette.parity.worker", request, result],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not Path(result).exists():
        raise ParityError(f"the JVM-free scoring process failed (exit {proc.returncode}): "
                          f"{proc.stderr.strip()[-2000:] or proc.stdout.strip()[-2000:]}")
    with open(result, "rb") as f:
        got = pickle.load(f)
    if "error" in got:
        raise ParityError(f"load_scorer / scoreBatch failed on the serving side: {got['error']}")
    return got["ok"]


def _spark_side(stages: list, df: DataFrame, as_of: datetime, described: list[dict]):
    """{stage: {column: values}} in the order of the returned row ids, and the row ids
    that come out of the whole transform."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.linalg import VectorUDT

    out = df.withColumn(AS_OF, F.lit(as_of))
    names: dict[int, dict[str, str]] = {}
    for i, (stage, desc) in enumerate(zip(stages, described)):
        out = _at(stage, AS_OF).transform(out)
        types = dict((f.name, f.dataType) for f in out.schema.fields)
        snap = {}
        for j, c in enumerate(desc["outputs"]):
            if c in types:
                col = F.col(f"`{c}`")
                snap[f"__p{i}_{j}"] = (F.when(col.isNotNull(), vector_to_array(col, "float64"))    # (fails on null)
                                       if isinstance(types[c], VectorUDT) else col)
        out = out.withColumns(snap) if snap else out
        names[i] = {n: c for n, c in zip(snap, [c for c in desc["outputs"] if c in types])}
    table = out.select(ROW_ID, *[n for s in names.values() for n in s]).toArrow()
    cols = _columns(table)
    return {i: {c: cols[n] for n, c in s.items()} for i, s in names.items()}, cols[ROW_ID]


# -- store skew ----------------------------------------------------------------------------
def _micros(t: datetime) -> int:
    return int(t.replace(tzinfo=timezone.utc).timestamp() * 1_000_000) if t.tzinfo is None else \
        int(t.timestamp() * 1_000_000)


def _offline_latest(store, gid: str, keys: list[tuple], as_of: datetime) -> dict[tuple, tuple]:
    """{key tuple: (event time, {feature: value})}: the offline store's latest row per key
    at or before ``as_of``, at the table's current version."""
    from pyspark.sql import SparkSession

    from palette.offline import latest_rows
    spark = SparkSession.getActiveSession()
    group = store.group(gid)
    entity = store.entity(group.entity)
    key_cols = list(entity.join_keys)
    types = {"str": "string", "int": "bigint"}
    schema = ", ".join(f"`{k}` {types[t]}" for k, t in entity.join_keys.items())
    wanted = spark.createDataFrame([list(k) for k in keys], schema)
    table = store.read(gid, spark=spark).where(F.col(group.timestamp_col) <= F.lit(as_of))
    # the sampled keys go to the executors, not the table to the driver: unhinted, Spark can
    # broadcast the table's latest rows (a list-made frame's size is unknown to it)
    latest = latest_rows(table, entity, group).join(F.broadcast(wanted), key_cols)
    rows = latest.toArrow().to_pylist()
    features = [f.name for f in group.features]
    return {tuple(r[k] for k in key_cols): (normalize(r[group.timestamp_col]), {f: normalize(r[f]) for f in features})
            for r in rows}


def _store_skew(feature_store, online: dict, now_micros: int, as_of: datetime, rtol: float, atol: float):
    skew: list[StoreSkew] = []
    checked: dict[str, int] = {}
    at = _micros(as_of)
    for gid, info in online.items():
        records = info["records"]
        checked[gid] = len(records)
        offline = _offline_latest(feature_store, gid, list(records), as_of)
        max_age = info["max_age_micros"]
        key_names = [k for k, _ in info["keys"]]
        for key, on in records.items():
            off = offline.get(key)
            on_ts = None if on is None else on[0]
            off_ts = None if off is None else _micros(off[0])
            on_vis = on_ts is not None and (max_age is None or now_micros - on_ts <= max_age)
            off_vis = off_ts is not None and (max_age is None or at - off_ts <= max_age)
            kind = None
            if off_vis and on_vis:
                if on_ts < off_ts:
                    kind = "stale"
                elif on_ts > off_ts:
                    kind = "ahead"
                elif any(not same(off[1].get(f), v, rtol, atol) for f, v in on[1].items() if f in off[1]):
                    kind = "different_values"
            elif off_vis:
                kind = "stale" if on_ts is not None else "missing_online"
            elif on_vis:
                kind = "ahead" if off_ts is not None else "extra_online"
            if kind is not None:
                skew.append(StoreSkew(gid, dict(zip(key_names, key)), kind,
                                      None if on_ts is None else datetime.fromtimestamp(on_ts / 1e6, timezone.utc),
                                      None if on is None else on[1], None if off is None else off[0],
                                      None if off is None else off[1]))
    return skew, checked


def _write_rpc(feature_store, rpc: dict, as_of: datetime) -> dict[str, dict]:
    """What the serving side's RPC groups answered, into their Delta tables as of the check's
    instant (as ``palette backfill-rpc`` writes served fetches), so ``transform()`` reads it
    back; fallbacks are written kept apart. Returns the counts per group for the report."""
    from pyspark.sql import SparkSession

    from palette.rpc.backfill import merge_fetches, offline_schema
    spark = SparkSession.getActiveSession()
    out = {}
    at = as_of.astimezone(timezone.utc).replace(tzinfo=None)
    for gid, info in rpc.items():
        group = feature_store.group(gid)
        entity = feature_store.entity(group.entity)
        n = len(group.features)
        rows = [[*key, at, *(values if values is not None else (None,) * n), fallback]
                for key, (values, fallback) in info["fetches"].items() if key not in info["changed"]]
        if rows:
            merge_fetches(spark, feature_store, group, entity, spark.createDataFrame(rows, offline_schema(entity, group)))
        out[gid] = {"fetched": len(info["fetches"]), "changed": len(info["changed"]),
                    "fallbacks": sum(1 for _, fb in info["fetches"].values() if fb is not None)}
    return out


def _rpc_rows(desc_index: int, worker: dict) -> set:
    """Rows whose RPC reads at this stage were served a fallback, or a value the service
    changed during the check (neither can be read back by ``transform()``)."""
    out = set()
    for gid, per_row in worker.get("rpc_rows", {}).get(desc_index, {}).items():
        info = worker["rpc"][gid]
        bad = {k for k, (_, fb) in info["fetches"].items() if fb is not None} | info["changed"]
        out.update(r for r, key in per_row.items() if key in bad)
    return out


def _feature_store(stages: list):
    for s in stages:
        if hasattr(s, "paletteRefs") and s.paletteRefs():
            return s.store()
    return None


# -- comparing --------------------------------------------------------------------------
def _float_column(values: list) -> tuple[np.ndarray, np.ndarray] | None:
    """Values and null mask of a column of numbers (Python's or numpy's), else None."""
    kinds = set(map(type, values)) - {type(None)}
    if not kinds or not all(issubclass(k, (float, int, np.floating, np.integer)) and not issubclass(k, (bool, np.bool_))
                            for k in kinds):
        return None
    null = np.fromiter((v is None for v in values), bool, len(values))
    return np.array([np.nan if v is None else v for v in values], dtype=float), null


def _compare_numbers(a: list, b: list, rtol: float, atol: float):
    """(mismatch mask, abs errors, rel errors) of two float columns, or None (not floats)."""
    fa, fb = _float_column(a), _float_column(b)
    if fa is None or fb is None:
        return None
    (x, xn), (y, yn) = fa, fb
    with np.errstate(all="ignore"):
        d = np.abs(x - y)
        ok = (x == y) | (np.isnan(x) & np.isnan(y)) | (np.isfinite(x) & np.isfinite(y) & (d <= atol + rtol * np.abs(x)))
        rel = np.where(x == y, 0.0, np.where(x != 0, d / np.abs(x), np.inf))
    ok = np.where(xn | yn, xn & yn, ok)
    valid = ~(xn | yn) & np.isfinite(d)
    return ~ok, np.where(valid, d, np.nan), np.where(valid, rel, np.nan)


def _histogram(rel: np.ndarray) -> dict[str, int]:
    """Counts of relative differences per ``ERROR_BINS`` bin."""
    edges = np.array([bound for _, bound in ERROR_BINS[1:]])
    out = {"equal": int((rel == 0).sum())} if (rel == 0).any() else {}
    idx = np.minimum(np.searchsorted(edges, rel[rel > 0], side="right"), len(edges) - 1)
    for i, n in zip(*np.unique(idx, return_counts=True)):
        out[ERROR_BINS[1 + int(i)][0]] = int(n)
    return out


def _compare_column(name, spark_values, python_values, rtol, atol) -> tuple[ColumnResult, list[int]]:
    """The column's result and the positions that differ."""
    result = ColumnResult(name, compared=len(spark_values))
    fast = _compare_numbers(spark_values, python_values, rtol, atol)
    if fast is not None:
        bad, d, rel = fast
        bad_at = np.flatnonzero(bad).tolist()
        if np.isfinite(d).any():
            result.max_abs, result.max_rel = float(np.nanmax(d)), float(np.nanmax(rel))
        for key, n in _histogram(rel[~np.isnan(rel)]).items():
            result.histogram[key] = n
    else:
        bad_at, errs = [], []
        for j, (a, b) in enumerate(zip(spark_values, python_values)):
            if b is _Absent or not same(a, b, rtol, atol):
                bad_at.append(j)
            e = None if b is _Absent else errors(a, b)
            if e is not None:
                errs.append(e)
                key = error_bin(e[1])
                result.histogram[key] = result.histogram.get(key, 0) + 1
        if errs:
            result.max_abs, result.max_rel = max(e[0] for e in errs), max(e[1] for e in errs)
    result.mismatches = len(bad_at)
    return result, bad_at


def _points(spark_values, python_values, bad_at: list[int]) -> list[tuple[float, float]]:
    """A sample of (transform, scoreInstance) pairs for the scatter: the mismatches first."""
    picks = bad_at[:_POINTS // 2]
    step = max(1, len(spark_values) // (_POINTS - len(picks)))
    picks += range(0, len(spark_values), step)
    pts = [(number(spark_values[j]), number(python_values[j])) for j in dict.fromkeys(picks)]
    return [p for p in pts if p[0] is not None and p[1] is not None][:_POINTS]


def _store_rows(desc_index: int, worker: dict, skewed: dict[str, set]) -> set:
    """Rows whose keys, as looked up by this stage, have store skew."""
    out = set()
    for gid, per_row in worker["row_keys"].get(desc_index, {}).items():
        bad = skewed.get(gid)
        if bad:
            out.update(r for r, key in per_row.items() if key in bad)
    return out


def _compare(worker: dict, spark_values: dict, spark_rows: list, inputs: dict, skew: list[StoreSkew],
             rtol: float, atol: float, examples: int) -> list[StageResult]:
    request_cols = [c for c in inputs if c != ROW_ID]
    by_row = {r: j for j, r in enumerate(inputs[ROW_ID])}
    spark_pos = {r: j for j, r in enumerate(spark_rows)}
    skewed: dict[str, set] = defaultdict(set)
    for s in skew:
        skewed[s.group].add(tuple(s.key.values()))
    diverged: set = set()
    before = list(inputs[ROW_ID])
    results = []
    last = len(worker["stages"]) - 1
    for i, desc in enumerate(worker["stages"]):
        kept = desc["kept"]
        kept_set = set(kept)
        one_sided = {r for r in before if r not in kept_set and r in spark_pos}
        if i == last:
            one_sided |= {r for r in kept if r not in spark_pos}
        common = [r for r in kept if r in spark_pos]
        py_pos = {r: j for j, r in enumerate(kept)}
        store_rows = _store_rows(i, worker, skewed)
        rpc_rows = _rpc_rows(i, worker)
        stage = StageResult(i, desc["class"].rsplit(".", 1)[-1], desc["uid"], sorted({r["group"] for r in desc["reads"]}),
                            [], rows_spark=len(spark_rows), rows_python=len(kept), kept_by_one_side=len(one_sided))
        mismatched = set(one_sided)
        for c in desc["outputs"]:
            py = [desc["values"][c][py_pos[r]] for r in common]
            sp = spark_values[i].get(c)
            sp = [None] * len(common) if sp is None else [sp[spark_pos[r]] for r in common]
            if c not in spark_values[i]:
                py = [_Absent if v is None else v for v in py]       # transform() wrote no such column
            col, bad_at = _compare_column(c, sp, py, rtol, atol)
            col.points = _points(sp, py, bad_at)
            bad_rows = [common[j] for j in bad_at]
            col.own = sum(1 for r in bad_rows if r not in diverged)
            for j in bad_at[:examples * 4]:
                r = common[j]
                cause = "inherited" if r in diverged else "store" if r in store_rows else \
                    "rpc fallback" if r in rpc_rows else "logic"
                if len(col.examples) < examples or cause != "inherited" and \
                        sum(e.cause != "inherited" for e in col.examples) < examples:
                    request = {k: inputs[k][by_row[r]] for k in request_cols if k != AS_OF}
                    col.examples.append(Example(r, request, normalize(sp[j]), None if py[j] is _Absent else normalize(py[j]),
                                                cause))
            mismatched.update(bad_rows)
            stage.columns.append(col)
        own = mismatched - diverged
        stage.own_rows, stage.inherited_rows = len(own), len(mismatched & diverged)
        stage.store_rows = len(own & store_rows)
        stage.rpc_rows = len((own - store_rows) & rpc_rows)
        diverged |= mismatched
        before = kept
        results.append(stage)
    return results


def check_parity(model, df: DataFrame, *, online_store=None, as_of: datetime | None = None,
                 sample: int | None = None, rtol: float = 1e-9, atol: float = 0.0, batch_rows: int = 5000,
                 examples: int = 5, seed: int = 0) -> ParityReport:
    """Compare ``transform(df)`` with the serving path on the same rows, stage by stage.

    ``model``: a fitted PipelineModel or stage, the directory it was saved to, or the
    MLflow URI it was logged at with ``palette.mlflow.log_model`` (``models:/eta/1``).
    ``online_store``: where the serving side reads features (a URL; default: as
    ``load_scorer``, the configured one). ``as_of``: the instant both sides look features
    up at (default: now; the online side always reads the latest values, so a past
    instant only makes sense for an online store frozen then). ``sample``: check that many
    rows, drawn at random (``seed``), instead of all. Floats agree within ``rtol`` /
    ``atol`` (relative to Spark's value); everything else exactly.

    Raises ``ParityError`` when a side cannot score at all; mismatches are in the report.
    """
    as_of = (as_of or datetime.now(timezone.utc)).astimezone(timezone.utc) if \
        (as_of is None or as_of.tzinfo is not None) else as_of.replace(tzinfo=timezone.utc)
    as_of = as_of.replace(microsecond=0)
    if sample is not None:
        if sample <= 0:
            raise ParityError(f"sample must be a positive number of rows, got {sample}")
        df = df.orderBy(F.rand(seed)).limit(sample)
    if ROW_ID in df.columns or AS_OF in df.columns:
        raise ParityError(f"the data holds a column named {ROW_ID} or {AS_OF}, which the harness uses: rename it")
    timings = {}
    with tempfile.TemporaryDirectory(prefix="palette-parity-") as tmp:
        spark_model, path = _model_and_path(model, tmp)
        df = df.withColumn(ROW_ID, F.monotonically_increasing_id()).cache()
        try:
            started = time.perf_counter()
            inputs = _columns(df.toArrow())
            if not inputs[ROW_ID]:
                raise ParityError("the data has no rows to check")
            timings["read rows"] = time.perf_counter() - started
            started = time.perf_counter()
            worker = _run_worker(path, online_store, inputs, batch_rows, tmp, as_of)
            timings["scoreBatch process"] = time.perf_counter() - started
            stages = _flatten(spark_model)
            names = [d["class"].rsplit(".", 1)[-1] for d in worker["stages"]]
            if len(stages) != len(worker["stages"]):
                raise ParityError(f"the model has {len(stages)} stages on Spark but {len(names)} in the runtime "
                                  f"({', '.join(names)})")
            rpc = {}
            if worker.get("rpc"):
                rpc = _write_rpc(_feature_store(stages), worker["rpc"], as_of)
            started = time.perf_counter()
            spark_values, spark_rows = _spark_side(stages, df, as_of, worker["stages"])
            timings["transform"] = time.perf_counter() - started
            started = time.perf_counter()
            skew, checked = [], {}
            if worker["online"]:
                feature_store = _feature_store(stages)
                if feature_store is None:
                    raise ParityError("the model reads the online store but no stage knows the feature store root")
                skew, checked = _store_skew(feature_store, worker["online"], worker["now_micros"], as_of, rtol, atol)
            timings["store skew"] = time.perf_counter() - started
        finally:
            df.unpersist()
    started = time.perf_counter()
    results = _compare(worker, spark_values, spark_rows, inputs, skew, rtol, atol, examples)
    timings["compare"] = time.perf_counter() - started
    notes = []
    if worker["online"]:
        notes.append(f"feature lookups on Spark were made as of {as_of:%Y-%m-%d %H:%M:%S} UTC at each table's "
                     "current Delta version (pinned deltaVersions ignored), the serving side read the online "
                     "store's latest values: like with like")
    if any(s.kept_by_one_side for s in results):
        notes.append("rows kept by one path and dropped by the other (handleInvalid='skip') count as mismatches "
                     "of the stage that dropped them (of the last stage when only transform() dropped them)")
    model_name = str(model) if isinstance(model, (str, os.PathLike)) else f"{type(spark_model).__name__} {spark_model.uid}"
    if rpc:
        notes.append("RPC groups were fetched by the serving side during the check; what they answered was "
                     "written to their Delta tables as of the check's instant (fallbacks kept apart), as "
                     "palette backfill-rpc writes served fetches, and transform() read it back")
    return ParityReport(model=model_name, rows=len(inputs[ROW_ID]), as_of=as_of,
                        online_store=worker["online_store"], stages=results, store_skew=skew, keys_checked=checked,
                        rtol=rtol, atol=atol, seconds=timings, notes=notes, rpc=rpc)


def assert_parity(model, df: DataFrame, **kwargs: Any) -> ParityReport:
    """pytest helper: ``check_parity`` and fail with the localized report unless it passes."""
    report = check_parity(model, df, **kwargs)
    if not report.ok:
        raise AssertionError(f"transform() and the serving path differ\n{report}")
    return report
