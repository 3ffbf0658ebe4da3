"""``palette embeddings compare GROUP --from V1 --to V2``: what a new embedding version moved
and what it would do to the models that read the group, before it reaches them.

Per entity both versions hold and overall: cosine drift after orthogonal (Procrustes)
alignment, k-NN neighbourhood overlap (k = 10, exact over every entity, for a sample of
query entities), the eigenspace instability measure of Leszczynski et al. (MLSys 2020;
``palette.embeddings.stability``); and for each model that reads the group at V1 (the
registry's record of saved models, or ``models=``), the change of its predictions when
its inputs switch from V1 to V2 — JVM-free, no retraining (``palette.embeddings.downstream``)
— on a set of requests (``requests``: rows as the model is sent them, optionally with
the label). Returns a ``StabilityReport``; limits (``max_drift``, ``min_knn_overlap``,
``max_eis``, ``max_change_rate``) make it fail, so a scheduler can hold the rollout.

>>> report = compare(spark, store, "restaurant:dish_emb", 1, 2, requests=held_out,  # doctest: +SKIP
...                  online_store="sqlite:///online.db", label="delivery_minutes", max_change_rate=0.05)
>>> report.exit_code                                                                 # doctest: +SKIP
0
"""
from __future__ import annotations

import numpy as np

from palette.errors import InvalidArgument
from palette.lookup_plan import Definitions
from palette.online.base import GroupLayout
from palette.registry import FeatureGroup

from . import stability
from .downstream import downstream
from .report import STABILITY_LIMITS, StabilityReport
from .tables import Version, read_version


def model_versions(model: str) -> dict[str, FeatureGroup]:
    """The embedding versions a saved model (a directory or an MLflow model URI) reads, by
    ``entity:name``."""
    from palette.mlflow.uri import is_model_uri, local_model_dir
    from palette.transformers.runtime.artifact import stage_metadata
    path = local_model_dir(model) if is_model_uri(model) else model
    out = {}
    for _, metadata in stage_metadata(path):
        if metadata.get("paletteDefinitions"):
            for g in Definitions.from_json(metadata["paletteDefinitions"]).groups.values():
                if g.version is not None:
                    out[g.base_id] = g
    return out


def models_reading(store, base_id: str) -> list[str]:
    """The saved models the registry knows of (``record_model``, the train job) that read the
    embedding group ``base_id``, whatever version."""
    import os
    found = []
    for model, refs in sorted(store.registry.usage().items()):
        if any(r.startswith((base_id + ":", base_id + "@v")) for r in refs) and (os.path.exists(model) or "://" in model
                                                                or model.startswith("models:/")):
            found.append(model)
    return found


def substitute(version: Version, layout_group: FeatureGroup, now_micros: int) -> dict:
    """``SubstitutedStore`` arguments answering ``layout_group``'s records from ``version``."""
    layout = GroupLayout.of(version.entity, layout_group)
    unk = version.group.unk_vector(version.feature)
    return {"layout": layout, "feature": version.feature, "keys": version.keys, "matrix": version.matrix,
            "unk": None if unk is None else np.asarray(unk, np.float32), "event_micros": now_micros}


def compare(spark, store, group: str, old: int, new: int, *, feature: str | None = None, models=None,
            requests: list[dict] | None = None, online_store=None, label: str | None = None, k: int = 10,
            sample: int = 10_000, tolerance: float | None = None, **limits) -> StabilityReport:
    unknown = set(limits) - {o for o, _ in STABILITY_LIMITS.values()}
    if unknown:
        raise InvalidArgument(f"unknown limits {sorted(unknown)}; use {sorted(o for o, _ in STABILITY_LIMITS.values())}")
    base = store.group(group).base_id
    a = read_version(spark, store, f"{base}@v{old}", feature)
    b = read_version(spark, store, f"{base}@v{new}", a.feature)
    shared, ia, ib = np.intersect1d(a.keys, b.keys, assume_unique=True, return_indices=True)
    if not len(shared):
        raise InvalidArgument(f"{base} v{old} and v{new} share no entity: nothing to compare")
    X, Y = a.matrix[ia], b.matrix[ib]
    W, _ = stability.procrustes(X, Y)
    drift = stability.cosine_drift(X, Y, W)
    knn = stability.knn_overlap(X, Y, k=k, sample=sample)
    eis = stability.eigenspace_instability(X, Y, per_entity=True)
    summary = stability.StabilitySummary(
        n=len(shared), dim_old=a.dim, dim_new=b.dim, drift_mean=float(drift.mean(dtype=np.float64)),
        drift_p50=float(np.percentile(drift, 50)), drift_p95=float(np.percentile(drift, 95)), knn_k=k,
        knn_queries=int(knn.queries.size), knn_overlap_mean=float(knn.overlap.mean(dtype=np.float64)),
        eis=eis.value, eis_alpha=3.0)
    notes, changes = [], []
    models = list(models) if models else models_reading(store, base)
    if models and requests is None:
        notes.append(f"{len(models)} model(s) read {base}; pass requests (--requests) to measure their "
                     "predictions' change")
    elif models:
        if online_store is None:
            raise InvalidArgument("measuring the models' change needs the online store they are served from "
                                  "(--online-store), for their other features")
        now = int(__import__("time").time() * 1e6)
        for model in models:
            pinned = model_versions(model).get(base)
            if pinned is None:
                notes.append(f"{model} does not read {base}; skipped")
                continue
            if pinned.version != old:
                notes.append(f"{model} reads {pinned.id}, not v{old}; its change is measured from v{pinned.version}")
            source = a if pinned.version == old else read_version(spark, store, pinned.id, a.feature)
            if source.dim != b.dim:
                notes.append(f"{model} was trained on {source.dim}-d vectors and v{new} has {b.dim}: it must be "
                             f"retrained to read v{new}; no change measured")
                continue
            changes.append(downstream(model, requests, online_store, substitute(source, pinned, now),
                                      substitute(b, pinned, now), label, tolerance))
    return StabilityReport(f"{base}", f"v{old}", f"v{new}", summary, drift, shared, knn.overlap,
                           shared[knn.queries], eis.per_entity, len(a.keys) - len(shared),
                           len(b.keys) - len(shared), changes, limits, notes)


__all__ = ["compare", "model_versions", "models_reading", "substitute"]
