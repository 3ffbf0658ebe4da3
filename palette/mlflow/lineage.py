"""What a logged model was made from, read from its saved directory (the Spark side).

The lineage names every palette ref the model reads, the Delta table and version of every
feature group it was trained on (so ``spark.read.format("delta").option("versionAsOf", v)``
rebuilds the training set, as the model's own pinned stages do), the training window, and
the request fields a serving call must carry — what MLflow records as its signature.
"""
from __future__ import annotations

import tempfile
from datetime import datetime

from palette import __version__
from palette.feature_types import KEYS, TYPES, field_type
from palette.online import open_store
from palette.refs import parse_ref
from palette.transformers.runtime import load_scorer
from palette.transformers.runtime.artifact import palette_refs, params_of, stage_metadata
from palette.transformers.runtime.online_lookups import definitions_of

# The signature's types for the runtime's request field kinds (palette.feature_types).
MLFLOW_TYPES = {kind: field_type(kind).mlflow for kind in (*TYPES, *KEYS)}


def request_fields(model_dir: str) -> dict[str, str]:
    """The fields a request must hold, and their kinds: the model is loaded by the serving
    runtime against an empty online store that knows the groups' layouts (no data needed)."""
    groups, entities = {}, {}
    for _, metadata in stage_metadata(model_dir):
        if metadata.get("paletteDefinitions"):
            defs = definitions_of(metadata, metadata.get("uid", "?"))
            groups.update(defs.groups)
            entities.update(defs.entities)
    with tempfile.TemporaryDirectory(prefix="palette-plan-") as tmp, \
            open_store(f"sqlite:///{tmp}/plan.db") as store:
        for g in groups.values():
            store.setup(entities[g.entity], g)
        scorer = load_scorer(model_dir, online_store=store)
        return scorer.request_fields()


def _when(t) -> str | None:
    return t.isoformat() if isinstance(t, datetime) else (None if t is None else str(t))


def lineage(model_dir: str, spark=None, training_window: tuple | None = None, timestamp_col: str | None = None,
            extra: dict | None = None) -> dict:
    """The lineage of the model saved at ``model_dir``. A group whose version a stage
    pinned (``pinVersions``) is recorded at that version; any other at the table's current
    version, read now (the version ``fit`` read, unless the table changed since)."""
    from palette.store import FeatureStore
    tables: dict[str, dict] = {}
    for _, metadata in stage_metadata(model_dir):
        params = params_of(metadata)
        refs = list((params.get("features") or {}).values()) if metadata["class"].endswith("PaletteTransformer") \
            else []
        if metadata.get("paletteDefinitions") or refs:
            store = FeatureStore(params.get("storeRoot"))
            pinned = params.get("deltaVersions") or {}
            for group in sorted(definitions_of(metadata, metadata.get("uid", "?")).groups):
                if group not in tables:
                    version = pinned.get(group)
                    tables[group] = {"table": store.table_path(group),
                                     "version": int(version if version is not None else store.version(group, spark)),
                                     "pinned": version is not None, "store_root": store.root}
            timestamp_col = timestamp_col or params.get("timestampCol")
    refs = palette_refs(model_dir)
    fields = request_fields(model_dir)
    start, end = training_window or (None, None)
    out = {"palette_version": __version__, "feature_refs": refs,
           "feature_groups": sorted({parse_ref(r).group_ref for r in refs}), "feature_tables": tables,
           "training_window": {"start": _when(start), "end": _when(end), "timestamp_col": timestamp_col},
           "request_fields": fields}
    out.update(extra or {})
    return out


_INTEGRAL = ("tinyint", "smallint", "int", "bigint", "byte", "short", "integer", "long")


def signature(fields: dict[str, str], outputs: dict[str, str] | None = None, input_schema=None):
    """An MLflow ModelSignature: the request fields in, the prediction out, and the
    ``columns`` parameter (``predict(frame, params={"columns": [...]})``).

    A numeric field takes the type ``input_schema`` (the Spark schema of the training data)
    gives it: ``long`` for an integer column, ``double`` for a fractional one. Without it,
    the field is MLflow's ``any``: MLflow has no "number" type and refuses to turn integers
    into doubles, so a ``double`` field would refuse the ``3`` a caller naturally sends;
    palette's runtime then checks the value (a string gets an error naming the field)."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema
    spark_types = {f.name: f.dataType.simpleString() for f in input_schema.fields} if input_schema is not None else {}

    def kind(name: str, k: str):
        if k != "num":
            return MLFLOW_TYPES[k] if k in MLFLOW_TYPES else AnyType()     # a vector: a list, checked by palette
        given = spark_types.get(name)
        return "long" if given in _INTEGRAL else "double" if given in ("float", "double") else AnyType()
    inputs = Schema([ColSpec(kind(name, k), name) for name, k in fields.items()])
    outs = Schema([ColSpec(t, name) for name, t in (outputs or {"prediction": "double"}).items()])
    # ``params={"columns": [...]}``: the columns to answer with (empty: the model's prediction
    # columns). Declared, or MLflow drops the params before they reach the model.
    params = ParamSchema([ParamSpec("columns", "string", [], (-1,))])
    return ModelSignature(inputs=inputs, outputs=outs, params=params)


__all__ = ["lineage", "request_fields", "signature", "MLFLOW_TYPES"]
