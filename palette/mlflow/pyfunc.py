"""The ``python_function`` flavor of a palette-logged model: palette's JVM-free runtime.

MLflow calls ``_load_pyfunc(path)`` with the saved Spark ML directory (the same one the
Spark flavor reads); nothing here imports pyspark. Lookups read the online store given as
``model_config={"online_store": URL}``, else ``$PALETTE_ONLINE_STORE``::

    model = mlflow.pyfunc.load_model("models:/eta/1", model_config={"online_store": "sqlite:////data/online.db"})
    model.predict(pd.DataFrame({"r_id": ["r1", "r2"], "order_size": [3, 1]}))

``predict`` takes a pandas DataFrame (one row per request; a missing value — None, NaN,
NaT — is a null, as Spark's ``createDataFrame`` of the same frame makes it) and gives the
model's prediction column as a numpy array (as ``mlflow.spark``'s pyfunc gives a list:
``mlflow models serve`` answers ``{"predictions": [41.1, ...]}``), or a DataFrame when
the model answers with several columns or ``model_config={"columns": [...]}`` /
``params={"columns": [...]}`` ask for others.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

import pandas as pd

from palette.errors import PaletteError
from palette.transformers.runtime import load_scorer


class PaletteModel:
    """What ``mlflow.pyfunc.load_model`` wraps: a scorer and the columns it answers with."""

    def __init__(self, scorer, columns: list[str]):
        self.scorer, self.columns = scorer, columns

    def predict(self, model_input, params: dict | None = None):
        columns = list((params or {}).get("columns") or self.columns)
        rows = [_row(r) for r in _records(model_input)]
        scored = self.scorer.scoreBatch(rows)
        if len(scored) != len(rows):
            raise PaletteError(f"{len(rows) - len(scored)} of {len(rows)} rows were dropped by a stage with "
                               "handleInvalid='skip': predict answers every row or fails")
        unknown = [c for c in columns if scored and c not in scored[0]]
        if unknown:
            raise PaletteError(f"columns {unknown} are not written by this model; it writes "
                               f"{', '.join(self.scorer.output_columns())}")
        frame = pd.DataFrame({c: [r.get(c) for r in scored] for c in columns},
                             index=getattr(model_input, "index", None))
        return frame[columns[0]].to_numpy() if len(columns) == 1 else frame


def _records(model_input) -> list[dict]:
    if isinstance(model_input, pd.DataFrame):
        return model_input.to_dict("records")
    if isinstance(model_input, dict):
        return [model_input]
    if isinstance(model_input, list) and all(isinstance(r, dict) for r in model_input):
        return model_input
    raise PaletteError(f"predict takes a pandas DataFrame (or a dict, or a list of dicts), not "
                       f"{type(model_input).__name__}")


def _value(v):
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if isinstance(v, datetime) and v.tzinfo is None:
        return v.replace(tzinfo=timezone.utc)
    return v.item() if hasattr(v, "item") and not isinstance(v, (str, bytes)) else v


def _row(record: dict) -> dict:
    return {k: _value(v) for k, v in record.items()}


def _load_pyfunc(path: str, model_config: dict | None = None) -> PaletteModel:
    config = model_config or {}
    scorer = load_scorer(path, online_store=config.get("online_store") or None)
    return PaletteModel(scorer, list(config.get("columns") or scorer.prediction_columns()))


__all__ = ["PaletteModel"]
