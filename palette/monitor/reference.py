"""A model's reference: the profile of its training set, column by column as the model's
stages computed it, and the model's feature importances — saved with the model
(``palette_reference.json``) so monitoring needs nothing but the model to compare against.

- ``build_reference(model, train_df)`` (Spark): the training rows through the fitted
  pipeline, every scalar column profiled (request fields, looked-up features, DSL outputs,
  the label and the prediction), and the importances of the last stage's inputs: tree
  models' ``featureImportances``; linear models' ``|coefficient| x std`` (the column's
  standard deviation in training), each vector slot named by the assembler's metadata;
- ``save_reference(reference, directory)``; ``palette.mlflow.log_model(...,
  reference_data=train_df)`` does both, beside the lineage;
- ``load_reference(path_or_uri)`` (JVM-free): a saved model's directory, an MLflow model
  directory, or a ``models:/`` / ``runs:/`` URI.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from palette.errors import PaletteError
from palette import uris

from .profile import Profile
from .table import entries, from_entries

REFERENCE_FILE = "palette_reference.json"
_FORMAT = 1


class NoReference(PaletteError, LookupError):
    """A model saved without a training profile to compare against."""


def _scalar_columns(df) -> dict[str, str]:
    """Columns a profile can hold: name -> feature type."""
    from pyspark.sql import types as T
    out = {}
    for f in df.schema.fields:
        t = f.dataType
        if isinstance(t, T.BooleanType):
            out[f.name] = "bool"
        elif isinstance(t, (T.StringType,)):
            out[f.name] = "str"
        elif isinstance(t, (T.TimestampType, T.TimestampNTZType)):
            out[f.name] = "ts"
        elif isinstance(t, T.NumericType):
            out[f.name] = "num"
    return out


def _slot_names(df, column: str) -> list[str]:
    attrs = df.schema[column].metadata.get("ml_attr", {}).get("attrs", {})
    slots = sorted((a["idx"], a.get("name", f"{column}[{a['idx']}]")) for group in attrs.values() for a in group)
    return [name for _, name in slots]


def importances(model, transformed, profiles: dict[str, Profile]) -> tuple[dict[str, float], str | None]:
    """The last stage's importance per input column (normalized to sum 1), and how it was
    measured; ({}, None) when the stage has neither importances nor coefficients."""
    import numpy as np
    last = model.stages[-1] if hasattr(model, "stages") else model
    if not hasattr(last, "getFeaturesCol"):
        return {}, None
    names = _slot_names(transformed, last.getFeaturesCol())
    if hasattr(last, "featureImportances"):
        raw, method = np.abs(last.featureImportances.toArray()), "featureImportances"
    elif hasattr(last, "coefficients") or hasattr(last, "coefficientMatrix"):
        multinomial = getattr(last, "numClasses", 2) > 2
        coef = (np.abs(last.coefficientMatrix.toArray()).sum(axis=0) if multinomial
                else np.abs(last.coefficients.toArray()))
        std = np.array([(profiles[n].std or 0.0) if n in profiles else 1.0 for n in names[:len(coef)]])
        raw, method = coef * std, "|coefficient| x std"
    else:
        return {}, None
    names = names if len(names) == len(raw) else [f"slot {i}" for i in range(len(raw))]
    total = float(raw.sum())
    weights = {n: (float(v) / total if total else 0.0) for n, v in zip(names, raw)}
    return weights, method


def build_reference(model, train_df, *, label: str | None = None, training_window: tuple | None = None,
                    request_fields=(), keys=()) -> dict:
    """The reference of ``model`` fitted on ``train_df`` (see the module). ``request_fields``:
    the fields a request sends the model (its lineage's), tested too, except the entity
    ``keys`` it looks features up by."""
    from .offline import arrow_batches, profile_frame
    transformed = model.transform(train_df)
    columns = _scalar_columns(transformed)
    with arrow_batches(train_df.sparkSession):
        rows = profile_frame(transformed, None, columns, None).collect()
    profiles = {r.feature: Profile.from_bytes(bytes(r.sketch)) for r in rows}
    weights, method = importances(model, transformed, profiles)
    n = max((p.count for p in profiles.values()), default=0)
    window = None if training_window is None else [str(t) for t in training_window]
    # What monitoring tests: the request's fields and what the model computed from them
    # (looked-up features, DSL outputs, the prediction) — not the entity keys, nor the training
    # rows' other columns (ids, the label), which serving sees only in part.
    monitored = sorted(({c for c in profiles if c not in train_df.columns} | set(weights)
                        | {f for f in request_fields if f in profiles}) - set(keys))
    return {"format": _FORMAT, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "rows": n,
            "training_window": window, "label": label, "importance": weights, "importance_method": method,
            "monitored": monitored, "profiles": profiles}


def save_reference(reference: dict, directory: str | os.PathLike) -> str:
    path = uris.join(os.fspath(directory), REFERENCE_FILE)
    uris.write_text(path, json.dumps({**reference, "profiles": entries(reference["profiles"])}, indent=1, default=str))
    return path


def load_reference(model: str) -> dict:
    """The reference saved with ``model`` (a directory or an MLflow model URI):
    ``{"importance", "importance_method", "rows", "training_window", "profiles": {column: Profile}}``."""
    from palette.mlflow.uri import is_model_uri
    if is_model_uri(model):
        from palette.mlflow.uri import local_model_dir
        candidates = [Path(local_model_dir(model)).parent]
    else:
        here = Path(model)
        candidates = [here, here.parent]
    for folder in candidates:
        path = folder / REFERENCE_FILE
        if path.is_file():
            doc = json.loads(path.read_text())
            if doc.get("format") != _FORMAT:
                raise NoReference(f"{path} is of reference format {doc.get('format')}; this palette reads {_FORMAT}")
            doc["profiles"] = from_entries(doc["profiles"])
            doc["path"] = str(path)
            return doc
    raise NoReference(f"model {model} has no training profile ({REFERENCE_FILE}): log it with "
                      "palette.mlflow.log_model(model, ..., reference_data=train_df) (the train job does), or save one "
                      "with palette.monitor.reference.save_reference(build_reference(model, train_df), directory)")
