"""``palette embeddings compress GROUP --top-k K [--by COLUMN] [--quantize float16|int8]``:
a smaller version of an embedding, and its measured price.

Keeps the K entities with the largest ``by`` count (ties: the smaller key; without
``by``, every entity is ranked equal, so the smallest keys are kept) exactly, maps every
other entity to one UNK vector (the mean of the dropped ones, or ``unk=`` a declared
one), quantizes what is kept (``palette.embeddings.quantize``: float16, or int8 with a
scale per vector; the values written are fixed points of the codec, so the Delta table and
the online store agree bit for bit), and writes it as a new version of the group — never
over the old one; models keep reading the version they were fitted on.

The report gives the online bytes before and after (encoded keys, event times and
records, as both online stores hold them; a store adds its own per-key overhead) and the
Delta bytes, and for a model that reads the group and a held-out set of requests, the
price: its metric (RMSE, AUC) and how many predictions change, for every setting of a sweep
(``sweep=[(K, quantize), ...]``) — measured JVM-free by substituting each candidate for the
model's version (``palette.embeddings.downstream``), with nothing written but the chosen
version (``write=False``: nothing at all).
"""
from __future__ import annotations

import time

import numpy as np

from palette.errors import InvalidArgument
from palette.feature_types import TYPES
from palette.online.codec import RecordCodec

from . import quantize as q
from .comparison import model_versions, substitute
from .downstream import downstream
from .report import Candidate, CompressReport
from .tables import Version, read_version, write_version

QUANTIZE = ("float32", "float16", "int8")


def online_bytes(keys: np.ndarray, dim: int, storage: str) -> int:
    """Bytes the online stores hold for ``keys`` of a ``vector(dim, storage)`` group: each
    key (UTF-8), its event time (8) and its record."""
    name = f"vector({dim})" if storage == "float32" else f"vector({dim}, {storage})"
    record = len(RecordCodec([name]).encode((np.zeros(dim, np.float32),)))
    key_bytes = int(np.char.str_len(keys.astype(str)).sum()) if len(keys) else 0
    return key_bytes + len(keys) * (8 + record)


def candidate(source: Version, top_k: int | None, quantize: str, unk: np.ndarray | None = None):
    """(kept keys, their float32 vectors as written, the UNK vector or None) for a setting:
    ``unk`` when declared; else the mean of the dropped rows (read by them and by keys the
    source never held); else, nothing dropped, the source's own UNK — quantized as the
    online store gives it back."""
    if quantize not in QUANTIZE:
        raise InvalidArgument(f"--quantize {quantize!r}: use one of {', '.join(QUANTIZE)}")
    n = len(source.keys)
    if top_k is None or top_k >= n:
        kept = np.arange(n)
    else:
        if top_k < 1:
            raise InvalidArgument(f"--top-k {top_k}: keep at least one entity")
        counts = source.counts if source.counts is not None else np.zeros(n)
        kept = np.sort(q.top_k(source.keys, counts, top_k))
    mask = np.zeros(n, bool)
    mask[kept] = True
    matrix = source.matrix[kept]
    if quantize != "float32":
        matrix = q.fixed_point(matrix, quantize)
    if unk is not None:
        vector = unk
    elif mask.all():                       # nothing dropped: the source's own UNK (if any) for what it lacks
        vector = source.group.unk_vector(source.feature)
        if vector is None:
            return source.keys[kept], matrix, None
    else:
        vector = q.unk_vector(source.matrix, mask)
    if quantize != "float32":                                # the UNK as the online store gives it back
        vector = q.fixed_point(np.asarray(vector, np.float32).reshape(1, -1), quantize)[0]
    return source.keys[kept], matrix, np.asarray(vector, np.float32)


def _delta_bytes(spark, path: str) -> int | None:
    try:
        return int(spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["sizeInBytes"])
    except Exception:                  # a table that cannot be described: the report leaves the figure out
        return None


def compress(spark, store, group: str, top_k: int | None = None, *, by: str | None = None,
             quantize: str = "float32", unk=None, feature: str | None = None, sweep=(), model: str | None = None,
             requests: list[dict] | None = None, online_store=None, label: str | None = None, write: bool = True,
             tolerance: float | None = None, **limits) -> CompressReport:
    """See the module docstring. ``group``: ``entity:name`` (its newest version) or a version."""
    if set(limits) - {"max_change_rate"}:
        raise InvalidArgument(f"unknown limits {sorted(set(limits) - {'max_change_rate'})}; use max_change_rate")
    source = read_version(spark, store, group, feature, by)
    if not len(source.keys):
        raise InvalidArgument(f"{source.group.id} holds no vector: nothing to compress")
    if len(source.entity.join_keys) != 1:
        raise InvalidArgument(f"{source.group.id}: compressing an embedding of a composite key is not supported yet")
    if unk is not None:
        unk = np.asarray(unk, np.float32)
        if unk.shape != (source.dim,) or not np.isfinite(unk).all():
            raise InvalidArgument(f"unk: a vector of {source.dim} finite numbers is needed")
    settings = [(top_k, quantize)] + [s for s in sweep if tuple(s) != (top_k, quantize)]
    pinned = None
    if model is not None:
        if requests is None or online_store is None:
            raise InvalidArgument("measuring the price on a model needs requests (--requests) and the online store "
                                  "it is served from (--online-store)")
        pinned = model_versions(model).get(source.group.base_id)
        if pinned is None:
            raise InvalidArgument(f"{model} does not read {source.group.base_id}: measure on a model that does")
        if TYPES[pinned.feature(source.feature).type].dim != source.dim:
            raise InvalidArgument(f"{model} reads {pinned.id}, not {source.dim}-d vectors like {source.group.id}: "
                                  "measure on a model trained on this dimension")
    baseline = None if pinned is None else (source if pinned.id == source.group.id
                                            else read_version(spark, store, pinned.id, source.feature))
    now = int(time.time() * 1e6)
    candidates, chosen = [], None
    for k, quant in settings:
        keys, matrix, unk_vec = candidate(source, k, quant, unk)
        change = None
        if pinned is not None:
            cand = Version(source.group, source.entity, source.feature, keys, matrix, source.times[source.rows(keys)])
            args = substitute(cand, pinned, now)
            args["unk"] = unk_vec
            change = downstream(model, requests, online_store, substitute(baseline, pinned, now), args, label,
                                tolerance)
        candidates.append(Candidate(k, quant, len(keys), online_bytes(keys, source.dim, quant), change))
        if chosen is None:
            chosen = (keys, matrix, unk_vec, quant)
    written, after, notes = None, None, []
    before_delta = _delta_bytes(spark, store.table_path(source.group.id))
    limit, first = limits.get("max_change_rate"), candidates[0].change
    if write and limit is not None and first is not None and first.changed_rate > limit:
        write = False                                     # held: the report fails, nothing is written
        notes.append(f"not written: {first.changed_rate:.2%} of the model's predictions change, over the limit "
                     f"{limit:.2%}")
    if write:
        keys, matrix, unk_vec, quant = chosen
        new = write_version(spark, store, source, keys, matrix, quant, unk_vec,
                            description=f"{source.group.id} compressed: top-{top_k or 'all'} {quant}")
        written = new.id
        after = _delta_bytes(spark, store.table_path(new.id))
    return CompressReport(source.group.id, written, len(source.keys), source.dim,
                          online_bytes(source.keys, source.dim, TYPES[source.group.feature(source.feature).type].storage),
                          candidates, before_delta, after, limits, notes)


__all__ = ["compress", "candidate", "online_bytes", "QUANTIZE"]
