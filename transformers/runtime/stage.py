"""The scorer protocol and its registry: one for palette's stages and Spark's own.

A scorer scores one saved stage without Spark. Every scorer is a ``StageScorer``
registered, with ``@scorer("saved.class.Name", ...)``, under the class names Spark
writes into the stage's ``metadata/``; ``load_scorer`` picks it by that name. A scorer
answers two calls:

- ``scoreInstance(row) -> row``: the row plus the stage's output columns;
- ``score_batch(batch) -> batch``: the same over a columnar ``Batch`` (see
  ``batch.py``), with numpy where the stage can (``score_columns``), else row by row.

``scoreInstance`` and ``scoreBatch`` (of a ``PipelineScorer``) are the public names, the
tutorial's. ``score_instance`` and ``score_batch`` are this runtime's internal protocol
between the pipeline and its stages (``score_instance`` is ``scoreInstance`` for a caller
that has set ``np.errstate`` itself); users call the public ones.

A stage that reads the feature store also declares its ``reads`` (see ``online_lookups.py``):
the pipeline plans them at load time, to fetch each dependency level in one round trip.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from palette.errors import (ArtifactError, MissingColumn, NotConfigured, PaletteError, ScoringError,
                            UnsupportedStageError)

from .batch import Batch, row_by_row
from .vectors import as_array

SCORERS: dict[str, type] = {}

# Params that name a column a Spark stage writes (for planning: what a stage produces)...
OUTPUT_PARAMS = ("outputCol", "outputCols", "predictionCol", "rawPredictionCol", "probabilityCol",
                 "varianceCol", "leafCol")
# ... and the columns it reads (what a request must hold when no earlier stage writes them).
INPUT_PARAMS = ("inputCol", "inputCols", "featuresCol", "offsetCol")


def _columns(params: dict, names) -> list[str]:
    out = []
    for name in names:
        value = params.get(name)
        if isinstance(value, str) and value:
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, str) and v)
    return out


class RowSkipped(PaletteError):
    """Spark's transform would drop this row (handleInvalid='skip'). Not an error: a
    single-row caller decides what a dropped row means; ``scoreBatch`` leaves it out."""


@dataclass
class LoadContext:
    """What ``load_scorer`` knows while it loads a pipeline's stages.

    ``online_store``: where lookups read — a URL, an opened ``palette.online.OnlineStore``,
    or None for the configured default (``palette.configure`` / ``$PALETTE_ONLINE_STORE``);
    it is opened when the first stage that reads stored features loads. ``rpc_observer``:
    told what the RPC fetchers do (``palette.rpc.client.RpcObserver``; serving's metrics). ``provided``: palette ref
    -> column, for refs an earlier stage of the pipeline looked up (a DSL stage reads those
    instead of looking up again). ``vector_sizes``: column -> the size of the vectors it
    holds, from the feature types an earlier stage looked up (what Spark reads from the
    column's metadata; ``VectorAssembler`` keeps a missing vector as that many NaN).
    """
    online_store: Any = None
    provided: dict[str, str] = field(default_factory=dict)
    vector_sizes: dict[str, int] = field(default_factory=dict)
    opened: Any = None
    rpc_observer: Any = None
    rpc_clients: dict[str, Any] = field(default_factory=dict)

    def rpc(self, read):
        """The client of an RPC group's fetcher (``palette.rpc.RpcClient``), one per group
        definition for the whole pipeline (and, when ``rpc_clients`` is shared, for every model
        and reload of a serving process): its breaker, pool and concurrency limit are the group's."""
        import json
        ident = json.dumps([read.entity.to_json(), read.group.to_json()], sort_keys=True, default=str)
        client = self.rpc_clients.get(ident)
        if client is None:
            from palette.rpc.client import RpcClient
            client = self.rpc_clients[ident] = RpcClient(read.group, read.entity, self.rpc_observer)
        return client

    def store(self, who: str, groups: list[str]):
        """The online store, opened on first use; a clear error when none is configured."""
        if self.opened is None:
            from palette.config import default_online_store
            from palette.online import open_store
            try:
                url = self.online_store if self.online_store is not None else default_online_store()
            except NotConfigured:
                raise NotConfigured(
                    f"{who} reads feature groups ({', '.join(sorted(set(groups)))}) from the online store, but none "
                    "is configured: pass online_store=... to load_scorer (e.g. 'sqlite:////data/online.db' or "
                    "'redis://host:6379/0'), call palette.configure(online_store=...), or set "
                    "PALETTE_ONLINE_STORE; from the command line, palette serve / palette predict "
                    "--online-store URL") from None
            self.opened = open_store(url)
        return self.opened


def scorer(*class_names: str) -> Callable[[type], type]:
    """Register a scorer class for the saved class names it scores."""
    def register(cls: type) -> type:
        for name in class_names:
            SCORERS[name] = cls
        cls.saved_classes = class_names
        return cls
    return register


class StageScorer:
    """One saved stage. Subclasses implement ``score_row`` (the output columns of one
    row) and, where numpy can, ``score_columns`` (of a whole ``Batch``); a stage that drops
    rows (handleInvalid='skip') says which in ``skipped_rows``."""

    saved_classes: tuple[str, ...] = ()
    batch_fallback = ""          # when a batch still goes row by row (for the docs table)
    reads: tuple = ()            # the feature-store reads of the stage (online_lookups.BoundRead)

    def __init__(self, path: Path | None, metadata: dict, context: LoadContext | None = None):
        self.path = Path(path) if path is not None else None
        self.metadata = metadata
        self.params: dict[str, Any] = {**metadata.get("defaultParamMap", {}), **metadata.get("paramMap", {})}
        self.uid = metadata.get("uid", "?")
        self.batches_row_by_row = 0      # batches score_batch scored with score_row (a diagnostic)

    # -- artifact -------------------------------------------------------------------
    def read_parquet(self, subdir: str = "data") -> list[dict]:
        try:
            return pq.read_table(self.path / subdir).to_pylist()
        except (pa.ArrowException, OSError) as e:
            raise ArtifactError(f"{self.path / subdir}: the data of stage {self.uid} "
                                f"({self.metadata.get('class')}) cannot be read ({type(e).__name__}: {e}); the "
                                "directory is damaged or half-copied: save or copy the model again") from None

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def required(self, name: str, kind: type = str, of: type | None = None) -> Any:
        """A param the stage cannot do without, of type ``kind`` (and, for a list or a dict,
        of items or keys of type ``of``): anything else fails at load time, naming the stage
        and its metadata, as Spark fails to load a stage whose metadata lacks it."""
        value = self.params.get(name)
        ok = isinstance(value, kind) and not isinstance(value, bool) and (
            of is None or all(isinstance(v, of) and not isinstance(v, bool) for v in value))
        if not ok:
            cls = self.metadata.get("class", type(self).__name__).rsplit(".", 1)[-1]
            got = "missing" if name not in self.params else f"{type(value).__name__} {value!r}"[:120]
            raise ArtifactError(f"{cls} {self.uid} ({self.path}): its param {name!r} must be a {kind.__name__}"
                                f"{f' of {of.__name__}' if of else ''}, but the saved metadata has {got}; the "
                                "metadata is damaged: save the model again")
        return value

    def param_in(self, name: str, allowed: tuple, default: Any) -> Any:
        """A param that must be one of ``allowed``: anything else (a mode a later Spark
        adds, say) fails at load time instead of scoring as some other mode."""
        value = self.param(name, default)
        if value not in allowed:
            self.unsupported(f"{name}={value!r}", f"{name} in {', '.join(map(repr, allowed))}")
        return value

    def unsupported(self, what: str, supported: str):
        raise UnsupportedStageError(f"{self.metadata.get('class', type(self).__name__)} {self.uid} ({self.path}): "
                                    f"{what} is not supported by the JVM-free runtime; it supports {supported}")

    def output_columns(self) -> set[str] | None:
        """The columns this stage writes, or None when it cannot tell (the planner then
        treats it as writing anything)."""
        return set(_columns(self.params, OUTPUT_PARAMS))

    def input_fields(self) -> dict[str, str]:
        """The columns this stage reads and what each must hold: ``num``, ``str``, ``bool``,
        ``ts``, ``int`` (an integer key) or ``any`` (the stage itself checks it)."""
        return dict.fromkeys(_columns(self.params, INPUT_PARAMS), "any")

    # -- features -------------------------------------------------------------------
    def features_of(self, row: dict, col: str, size: int | None) -> np.ndarray:
        """A row's vector in ``col``; null or of another size than ``size`` is an error,
        as in Spark's transform."""
        v = row[col]
        if v is None:
            raise ScoringError(f"{self.uid}: the vector in column {col!r} is null (Spark's transform fails on it)")
        x = as_array(v, f"column {col!r}")
        if size is not None and x.size != size:
            raise ScoringError(f"{self.uid}: column {col!r} holds a vector of size {x.size}; the model expects {size}")
        return x

    def feature_matrix(self, batch: Batch, col: str, size: int | None,
                       invalid: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray | None:
        """The batch's features as an (n, size) matrix, or None (row by row) when the
        column holds other values or vectors of several sizes. Rows Spark fails on — a
        null, the wrong size, or what ``invalid(X)`` marks — raise the row path's error
        for the first of them."""
        got = batch.nullable_matrix(col, size or 0)
        if got is None:
            return None
        X, bad = got
        if size is not None and X.shape[1] != size:
            bad = np.ones(batch.n, dtype=bool)
        elif invalid is not None:
            bad = bad | invalid(X)
        self.raise_row_error(batch, bad)
        return X

    # -- scoring --------------------------------------------------------------------
    def score_row(self, row: dict) -> dict:
        raise NotImplementedError

    def scoreInstance(self, row: dict) -> dict:
        with np.errstate(all="ignore"):             # x / 0, inf - inf, overflow: IEEE, as Java
            return self.score_instance(row)

    def score_instance(self, row: dict) -> dict:
        """``scoreInstance`` for a caller that has set ``np.errstate(all="ignore")``
        itself (a pipeline sets it once for all its stages)."""
        out = dict(row)
        try:
            out.update(self.score_row(row))
        except KeyError as e:
            raise self.missing_column(e, row) from None
        return out

    def missing_column(self, e: KeyError, row: dict) -> Exception:
        """A ``KeyError`` of ``score_row``: a ``MissingColumn`` naming the stage when the row
        lacks the key (a column the stage reads), else the error itself (a bug)."""
        col = e.args[0] if len(e.args) == 1 else None
        cls = self.metadata.get("class", type(self).__name__).rsplit(".", 1)[-1]
        if col is None and not isinstance(e, PaletteError):
            return ArtifactError(f"{cls} {self.uid} ({self.path}): a column param of the saved stage is missing or "
                                 "null; its metadata is damaged: save the model again")
        if isinstance(e, PaletteError) or not isinstance(col, str) or col in row:
            return e
        return MissingColumn(f"{cls} {self.uid} reads column {col!r}, which the row does not have (it has "
                             f"{', '.join(sorted(map(str, row)))[:300] or 'none'}): give it in the request, or have "
                             "an earlier stage write it")

    def skipped_rows(self, batch: Batch) -> np.ndarray | bool | None:
        """A mask of the rows Spark's transform drops (handleInvalid='skip'), False when
        it drops none, None when only the row path can tell."""
        return False

    def score_columns(self, batch: Batch) -> dict | None:
        """The output columns computed with numpy over the whole batch (whose skipped
        rows are gone), or None when this batch is scored row by row."""
        return None

    def score_batch(self, batch: Batch) -> Batch:
        with np.errstate(all="ignore"):             # x / 0, inf - inf, overflow: IEEE, as Java
            return self._score_batch(batch)

    def _score_batch(self, batch: Batch) -> Batch:
        if not batch.n:
            return batch
        skipped = self.skipped_rows(batch)
        if skipped is not None:
            if skipped is not False and skipped.any():
                batch = batch.where(~skipped)
            out = self.score_columns(batch) if batch.n else {}
            if out is not None:
                return batch.with_columns(out)
        self.batches_row_by_row += 1
        return row_by_row(self.score_instance, batch, RowSkipped)

    def raise_row_error(self, batch: Batch, bad: np.ndarray):
        """Spark fails on the rows ``bad`` marks: raise what ``score_row`` raises for the
        first of them, so that the batch path fails with the row path's error."""
        if not bad.any():
            return
        i = int(np.argmax(bad))
        self.score_row(batch.row(i))
        raise RuntimeError(f"{type(self).__name__} {self.uid}: the batch path found row {i} invalid "
                           "but score_row scored it")


__all__ = ["StageScorer", "RowSkipped", "LoadContext", "SCORERS", "scorer", "OUTPUT_PARAMS"]
