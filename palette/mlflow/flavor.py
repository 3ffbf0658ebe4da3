"""``log_model`` / ``save_model``: a fitted PipelineModel as an MLflow model with two
flavors over one saved directory (``sparkml/``, what ``model.write().save()`` writes):

- ``spark``: MLflow's own Spark flavor — ``mlflow.spark.load_model(uri)`` is the
  PipelineModel, for batch jobs and notebooks;
- ``python_function``: palette's JVM-free runtime (``palette.mlflow.pyfunc``) —
  ``mlflow.pyfunc.load_model(uri).predict(df)`` and ``mlflow models serve`` need no pyspark
  and no JVM. Its ``requirements.txt`` lists palette's JVM-free core only;
- ``palette``: where the saved directory is and the lineage (``palette_lineage.json``);
  with ``reference_data``, the training set's profile and the model's feature importances
  (``palette_reference.json``, ``palette.monitor.reference``) that monitoring compares
  served traffic against.
"""
from __future__ import annotations

import json
import os
import sys

from palette import __version__
from palette.errors import PaletteError

from .lineage import lineage as read_lineage
from .lineage import signature as make_signature
from .uri import LINEAGE_FILE
from .uri import read_lineage as read_logged_lineage

FLAVOR_NAME = "palette"
DATA = "sparkml"                           # mlflow.spark's sub-directory for the saved model


def core_requirements() -> list[str]:
    """What the pyfunc flavor needs: palette's JVM-free core (and MLflow, to load it)."""
    import mlflow
    return [f"palette-ml=={__version__}", f"mlflow=={mlflow.__version__}"]


def save_model(spark_model, path: str, mlflow_model=None, *, spark=None, training_window: tuple | None = None,
               timestamp_col: str | None = None, lineage_extra: dict | None = None, metadata: dict | None = None,
               input_schema=None, pip_requirements: list[str] | None = None, reference_data=None, **kwargs) -> dict:
    """Save ``spark_model`` (a fitted PipelineModel or stage) as an MLflow model directory
    at ``path``; returns its lineage. ``log_model`` calls it through ``Model.log``."""
    import mlflow.spark
    from mlflow import pyfunc
    from mlflow.models import Model
    from pyspark.ml import PipelineModel, Transformer

    if not isinstance(spark_model, (PipelineModel, Transformer)):
        raise PaletteError(f"log_model takes a fitted PipelineModel (or Transformer), not "
                           f"{type(spark_model).__name__}: fit the Pipeline first")
    mlflow_model = mlflow_model if mlflow_model is not None else Model()
    mlflow.spark.save_model(spark_model, path, mlflow_model=mlflow_model, signature=False,
                            pip_requirements=pip_requirements or core_requirements(), metadata=metadata, **kwargs)
    data_dir = os.path.join(path, DATA)
    found = read_lineage(data_dir, spark=spark, training_window=training_window, timestamp_col=timestamp_col,
                         extra=lineage_extra)
    with open(os.path.join(path, LINEAGE_FILE), "w") as f:
        json.dump(found, f, indent=2, sort_keys=True)
    if reference_data is not None:
        from palette.monitor.reference import build_reference, save_reference
        keys = {ref.rsplit(":", 1)[-1] for ref in found["feature_refs"]}
        save_reference(build_reference(spark_model, reference_data, training_window=training_window,
                                       request_fields=found["request_fields"], keys=keys), path)
    mlflow_model.flavors.pop(pyfunc.FLAVOR_NAME, None)
    # The keys ``mlflow.pyfunc.load_model(uri, model_config={...})`` may set (MLflow ignores
    # any other): empty means $PALETTE_ONLINE_STORE and the model's prediction columns.
    pyfunc.add_to_model(mlflow_model, loader_module="palette.mlflow.pyfunc", data=DATA,
                        conda_env="conda.yaml", python_env="python_env.yaml",
                        model_config={"online_store": "", "columns": []})
    mlflow_model.add_flavor(FLAVOR_NAME, palette_version=__version__, data=DATA, lineage=LINEAGE_FILE,
                            python_version=f"{sys.version_info.major}.{sys.version_info.minor}")
    mlflow_model.signature = make_signature(found["request_fields"], input_schema=input_schema)
    mlflow_model.metadata = {**(mlflow_model.metadata or {}), "palette_feature_groups": found["feature_groups"],
                             "palette_feature_versions": {g: t["version"] for g, t in found["feature_tables"].items()}}
    mlflow_model.save(os.path.join(path, "MLmodel"))
    return found


def log_model(pipeline_model, name: str = "model", registered_model_name: str | None = None, *,
              training_window: tuple | None = None, timestamp_col: str | None = None, spark=None,
              input_schema=None, lineage_extra: dict | None = None, await_registration_for: int = 300,
              reference_data=None, **kwargs):
    """Log a fitted pipeline to the active MLflow run (one is started if none is) with the
    Spark, python_function (JVM-free) and palette flavors, its lineage and signature;
    register it as ``registered_model_name`` if given. The lineage also goes to the run as
    tags (``palette.feature_tables``, ``palette.training_window``) and its feature usage to
    the feature store's registry, so ``store.search(model=uri)`` finds it. Returns
    MLflow's ``ModelInfo``.

    ``training_window``: (start, end) of the rows it was fitted on; ``input_schema``: the
    Spark schema of those rows (integer request fields are then ``long`` in the signature);
    ``reference_data``: the training rows, profiled through the model as its monitoring
    reference (``palette.monitor.reference``).

    >>> info = log_model(model, "eta", registered_model_name="eta")      # doctest: +SKIP
    >>> info.model_uri, info.registered_model_version                     # doctest: +SKIP
    ('models:/m-…', 1)
    """
    import mlflow
    from mlflow.models import Model

    from palette.mlflow import flavor
    info = Model.log(artifact_path=None, name=name, flavor=flavor, flavor_name=FLAVOR_NAME, registered_model_name=registered_model_name,
                     await_registration_for=await_registration_for, spark_model=pipeline_model, spark=spark,
                     training_window=training_window, timestamp_col=timestamp_col, lineage_extra=lineage_extra,
                     input_schema=input_schema, reference_data=reference_data,
                     **kwargs)
    found = read_logged_lineage(info.model_uri)
    if info.run_id:
        mlflow.MlflowClient().set_tag(info.run_id, "palette.feature_tables", json.dumps(
            {g: t["version"] for g, t in found["feature_tables"].items()}, sort_keys=True))
        mlflow.MlflowClient().set_tag(info.run_id, "palette.training_window", json.dumps(found["training_window"]))
    roots = {t["store_root"] for t in found["feature_tables"].values()}
    if found["feature_refs"] and len(roots) == 1:
        from palette.store import FeatureStore
        uri = (f"models:/{registered_model_name}/{info.registered_model_version}"
               if registered_model_name and info.registered_model_version else info.model_uri)
        FeatureStore(roots.pop()).record_usage(uri, found["feature_refs"])
    return info


__all__ = ["log_model", "save_model", "core_requirements", "FLAVOR_NAME"]
