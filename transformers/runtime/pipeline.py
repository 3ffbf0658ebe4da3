"""Loading a saved stage or PipelineModel for scoring, and scoring it stage by stage.

It reads exactly what ``write().save(path)`` wrote — ``metadata/`` JSON (and, for
stages that have them, ``data/`` parquet via pyarrow) — and never imports pyspark.
Nothing is unpickled and nothing in the artifact is executed: DSL lambdas are parsed
by the DSL's own grammar. A stage class the runtime cannot score fails here, at load
time, naming the class; so does a feature group the online store lacks.

Feature-store reads are planned once, here: every read is fetched at the earliest point
where its key columns are known, and reads that can share a point do, so a pipeline costs
one online round trip per dependency level (the tutorial's ETA pipeline: one for the
restaurant's features, one for the region's, keyed by the ``region_id`` a DSL stage
computes from them).

>>> scorer = load_scorer("/tmp/eta_model", online_store="sqlite:////data/online.db")  # doctest: +SKIP
>>> scorer.scoreInstance({"r_id": "r42", "order_size": 3})                           # doctest: +SKIP
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Protocol

import numpy as np

from palette.errors import ArtifactError, PaletteError, UnsupportedStageError

from .artifact import PIPELINE_MODELS, check_format, read_metadata, stage_dirs
from .batch import Batch
from .online_lookups import BoundRead, RowFetch, fetch_batch
from .stage import LoadContext, StageScorer

if TYPE_CHECKING:
    import pandas as pd

    from palette.online import OnlineReader


def supported_stages() -> dict[str, type]:
    """Every saved class the runtime scores (palette's stages and Spark's own), by name."""
    from .scorers import load_all
    return dict(load_all())


def plan_fetches(stages: list[StageScorer]) -> dict[int, list[BoundRead]]:
    """{stage index: the reads to fetch, in one round trip, right before that stage}.

    A read of stage ``s`` can be fetched at any point from just after the last earlier
    stage that writes one of its key columns, up to ``s``; the fewest points that cover
    every read are found greedily (each interval, by its end, joins the last point if
    it can). A stage that cannot say what it writes counts as writing every column.
    """
    intervals = []
    written: dict[str, int] = {}
    writes_all = -1
    for s, stage in enumerate(stages):
        for b in stage.reads:
            start = max([writes_all] + [written.get(k, -1) for k in b.read.join_keys]) + 1
            intervals.append((s, start, b))
        outputs = stage.output_columns()
        if outputs is None:
            writes_all = s
        else:
            written.update(dict.fromkeys(outputs, s))
    points: dict[int, list[BoundRead]] = {}
    last = None
    for end, start, b in sorted(intervals, key=lambda t: t[0]):
        if last is None or start > last:
            last = end
        points.setdefault(last, []).append(b)
    return points


class ScoreObserver(Protocol):
    """What ``scoreInstance`` and ``scoreBatch`` tell an observer, stage by stage (the
    parity harness records every stage's outputs this way, a feature log the values and
    event times the lookups read, both through the serving code path)."""

    def fetched(self, stage: int, reads: list[BoundRead], batch: Batch, got: dict[str, list]) -> None:
        """Before stage ``stage``, ``reads`` were fetched in one round trip for the rows
        of ``batch``: ``got`` holds, per read's column, each row's values and event time
        (``online_lookups._read_keys``)."""

    def scored(self, stage: int, batch: Batch) -> None:
        """The rows after stage ``stage`` (its outputs added, the rows it skips gone)."""


class PipelineScorer:
    """Scores a row through a sequence of stage scorers, in order, fetching feature-store
    reads as planned (``plan_fetches``)."""

    def __init__(self, stages: list[StageScorer], online_store: "OnlineReader | None" = None,
                 rpc_clients: Iterable = ()):
        self.stages = stages
        self.online_store = online_store
        self.rpc_clients = list(rpc_clients)
        self.fetch_points = plan_fetches(stages) if any(s.reads for s in stages) else {}
        self._steps: list[tuple[RowFetch | None, Callable]] = [
            (None if i not in self.fetch_points else RowFetch(online_store, self.fetch_points[i]), s.score_instance)
            for i, s in enumerate(stages)]

    def request_fields(self) -> dict[str, str]:
        """The fields a request must hold (no earlier stage writes them) and what each must
        be (``StageScorer.input_fields``): what a serving process checks up front."""
        required: dict[str, str] = {}
        written: set[str] = set()
        for stage in self.stages:
            for field, kind in stage.input_fields().items():
                if field not in written and field not in required:
                    required[field] = kind
            outputs = stage.output_columns()
            if outputs is None:
                break
            written |= outputs
        return required

    def prediction_columns(self) -> list[str]:
        """The model's answer: every ``predictionCol`` its stages write, else what the last
        stage writes (what a service returns and a pyfunc's ``predict`` gives)."""
        preds = [s.params["predictionCol"] for s in self.stages if s.params.get("predictionCol")]
        if preds:
            return list(dict.fromkeys(preds))
        last = self.stages[-1].output_columns() if self.stages else None
        return sorted(last or [])

    def output_columns(self) -> list[str]:
        """Every column the stages write, in order."""
        out: dict[str, None] = {}
        for stage in self.stages:
            out.update(dict.fromkeys(sorted(stage.output_columns() or ())))
        return list(out)

    @property
    def round_trips(self) -> int:
        """Online-store round trips per request."""
        return len(self.fetch_points)

    def scoreInstance(self, row: dict, observer: "ScoreObserver | None" = None, fetched: list | None = None) -> dict:
        """Score one row. Raises ``RowSkipped`` when a stage's transform would drop it
        (handleInvalid='skip'): a single-row caller decides what a dropped row means.
        ``observer`` (see ``ScoreObserver``) sees each fetch and each stage's output. A row
        that already holds a fetch point's values (what an observer saw fetched for it in a
        batch) is not fetched for again. ``fetched``: a list that receives, per fetch point,
        what it read (read column -> the values tuple, event time last; the cheap way to see
        reads — served profiles use it)."""
        if observer is not None:
            return self._observed_instance(row, observer, fetched)
        with np.errstate(all="ignore"):             # x / 0, inf - inf, overflow: IEEE, as Java
            first = True
            for fetch, step in self._steps:
                if fetch is not None and fetch.columns[0] not in row:
                    if first:
                        row = dict(row)
                    got = fetch(row)
                    if fetched is not None:
                        fetched.append(got)
                    row.update(got)
                row = step(row)
                first = False
        return row

    def _observed_instance(self, row: dict, observer: "ScoreObserver", fetched: list | None) -> dict:
        with np.errstate(all="ignore"):
            row = dict(row)
            for i, (fetch, step) in enumerate(self._steps):
                if fetch is not None:
                    got = fetch(row)
                    if fetched is not None:
                        fetched.append(got)
                    observer.fetched(i, fetch.reads, Batch.of([row]), {c: [v] for c, v in got.items()})
                    row.update(got)
                row = step(row)
                observer.scored(i, Batch.of([row]))
        return row

    def scoreBatch(self, rows: "Iterable[dict] | pd.DataFrame", observer: "ScoreObserver | None" = None,
                   fetched: list | None = None) -> "list[dict] | pd.DataFrame":
        """Score many rows at once: a list of dicts gives a list of dicts, a pandas
        DataFrame gives a DataFrame. Each stage works on whole columns with numpy where
        it can (see ``batch.py``), with the same numbers as ``scoreInstance``, and each
        dependency level's lookups are one multi-key read per group for the whole batch.
        Rows a stage would drop (``RowSkipped``) are left out, as Spark's transform leaves
        them out of its output.

        ``observer`` (see ``ScoreObserver``) sees each fetch and each stage's output;
        ``fetched`` receives each fetch point's reads (read column -> a values tuple per row
        the batch held at that point)."""
        import pandas as pd
        batch = Batch.of(rows)
        for i, stage in enumerate(self.stages):
            reads = self.fetch_points.get(i)
            if reads is not None and batch.n:
                got = fetch_batch(self.online_store, reads, batch)
                if observer is not None:
                    observer.fetched(i, reads, batch, got)
                if fetched is not None:
                    fetched.append(got)
                batch = batch.with_columns(got)
            batch = stage.score_batch(batch)
            if observer is not None:
                observer.scored(i, batch)
        return batch.frame() if isinstance(rows, pd.DataFrame) else batch.rows()

    def close(self) -> None:
        if self.online_store is not None:
            self.online_store.close()
        for client in self.rpc_clients:
            client.close()


def _load_stages(path: Path, context: LoadContext) -> list[StageScorer]:
    metadata = read_metadata(path)
    cls = metadata.get("class")
    if cls in PIPELINE_MODELS:
        return [s for d in stage_dirs(path, metadata) for s in _load_stages(d, context)]
    check_format(metadata, path)
    supported = supported_stages()
    factory = supported.get(cls)
    if factory is None:
        names = "\n  ".join(sorted(set(supported) | PIPELINE_MODELS))
        raise UnsupportedStageError(
            f"cannot score stage {metadata.get('uid', '?')} of class {cls} (saved at {path}) without "
            f"Spark; the JVM-free runtime supports:\n  {names}")
    try:
        return [factory(path, metadata, context)]
    except PaletteError:
        raise
    except Exception as e:             # a param missing or of the wrong shape: a damaged metadata file
        raise ArtifactError(f"{path}: the saved stage {metadata.get('uid', '?')} ({cls}) cannot be loaded "
                            f"({type(e).__name__}: {e}); its metadata or data is damaged: save the model "
                            "again") from e


def load_scorer(path: str | os.PathLike, online_store: "str | OnlineReader | None" = None,
                rpc_observer=None, rpc_clients: dict | None = None) -> PipelineScorer:
    """Load a saved stage or PipelineModel for scoring without Spark.

    ``path`` is the directory ``write().save(path)`` wrote, or an MLflow model URI
    (``models:/eta/1``, ``models:/eta@champion``, ``runs:/<run id>/model``) of a model
    logged with ``palette.mlflow.log_model`` (downloaded through MLflow; no Spark either).
    Returns an object with ``scoreInstance(row) -> dict`` and ``scoreBatch(rows)``. A
    model that reads the feature store reads it from ``online_store`` (a URL such as
    ``sqlite:////data/online.db`` or ``redis://host:6379/0``, or an opened
    ``palette.online.OnlineStore``), else from ``palette.configure(online_store=...)`` or
    ``$PALETTE_ONLINE_STORE``; the definitions of the groups it reads were saved with it,
    so no registry and no Delta table is needed. An RPC group's fetcher is made ready here
    (its function imported, its header secrets read from the environment);
    ``rpc_observer`` is told what the fetchers do (``palette.rpc.client.RpcObserver``);
    ``rpc_clients``, a dict the caller keeps (and closes), shares fetchers between loads —
    a serving process keeps one breaker per group across models and reloads.

    Fails at load time, never at request time: ``UnsupportedStageError`` for a stage it
    cannot score, ``ArtifactError`` for a directory that is not a saved stage or was
    written by a newer palette, ``OnlineSchemaMismatch`` for a feature group the online
    store lacks or holds differently, ``OnlineStoreUnavailable`` when it does not answer.
    """
    from palette.mlflow.uri import is_model_uri, local_model_dir
    if is_model_uri(path):
        path = local_model_dir(str(path))
    shared = rpc_clients is not None
    context = LoadContext(online_store=online_store, rpc_observer=rpc_observer,
                          rpc_clients=rpc_clients if shared else {})
    try:
        stages = _load_stages(Path(path), context)
    except BaseException:
        if not shared:
            for client in context.rpc_clients.values():
                client.close()
        raise
    store = context.opened
    if store is not None:
        store.ping()
    return PipelineScorer(stages, store, () if shared else context.rpc_clients.values())
