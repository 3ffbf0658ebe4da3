"""MLflow model URIs to local directories, for the serving side (no pyspark, no JVM).

>>> is_model_uri("models:/eta/1"), is_model_uri("models:/eta@champion"), is_model_uri("/models/eta")
(True, True, False)
"""
from __future__ import annotations

import json
import os

from palette.errors import ArtifactError

SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")
LINEAGE_FILE = "palette_lineage.json"


def is_model_uri(path) -> bool:
    return isinstance(path, str) and path.startswith(SCHEMES)


def _download(uri: str) -> str:
    try:
        import mlflow.artifacts
    except ImportError:
        raise ArtifactError(f"{uri} is an MLflow model URI: reading it needs mlflow "
                            "(pip install 'palette-ml[mlflow]')") from None
    try:
        return mlflow.artifacts.download_artifacts(artifact_uri=uri)
    except Exception as e:                    # MlflowException: unknown name, version, alias or run
        raise ArtifactError(f"cannot fetch MLflow model {uri}: {e} (is MLFLOW_TRACKING_URI / "
                            "MLFLOW_REGISTRY_URI set to the registry that holds it?)") from None


def _flavor(local: str, uri: str) -> dict:
    import yaml
    try:
        with open(os.path.join(local, "MLmodel")) as f:
            flavors = yaml.safe_load(f).get("flavors", {})
    except FileNotFoundError:
        raise ArtifactError(f"{uri} is not an MLflow model (no MLmodel file)") from None
    if "palette" not in flavors:
        raise ArtifactError(f"{uri} was not logged by palette.mlflow.log_model (its flavors: "
                            f"{', '.join(sorted(flavors))}); log the PipelineModel with palette.mlflow.log_model")
    return flavors["palette"]


def resolve(uri: str) -> dict:
    """Where a model URI points now: ``{"uri", "name", "version", "run_id"}`` for a registry
    URI (``models:/eta@champion``, ``models:/eta/3``, ``models:/eta/latest``), the run for
    ``runs:/``; ``name`` and ``version`` are None where the URI names no registered version."""
    out = {"uri": uri, "name": None, "version": None, "run_id": None}
    if uri.startswith("runs:/"):
        out["run_id"] = uri[len("runs:/"):].split("/")[0]
        return out
    if not uri.startswith("models:/"):
        return out
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise ArtifactError(f"{uri} is an MLflow model URI: reading it needs mlflow "
                            "(pip install 'palette-ml[mlflow]')") from None
    rest = uri[len("models:/"):]
    client = MlflowClient()
    try:
        if "@" in rest:
            name, alias = rest.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        else:
            name, _, version = rest.partition("/")
            if version.isdigit():
                mv = client.get_model_version(name, version)
            elif version in ("", "latest"):
                mv = max(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version), default=None)
            else:                                # a stage: models:/eta/Production
                mv = next(iter(client.get_latest_versions(name, stages=[version])), None)
            if mv is None:
                raise ArtifactError(f"{uri}: the registry has no version of {name!r} there")
    except ArtifactError:
        raise
    except Exception as e:                     # MlflowException: unknown name, version or alias
        if rest.startswith("m-"):                # a logged model's id (models:/m-…), not a registered name
            return out
        raise ArtifactError(f"cannot resolve MLflow model {uri}: {e} (is MLFLOW_TRACKING_URI / "
                            "MLFLOW_REGISTRY_URI set to the registry that holds it?)") from None
    return {**out, "name": mv.name, "version": int(mv.version), "run_id": mv.run_id}


def local_model_dir(uri: str) -> str:
    """The saved Spark ML directory inside the MLflow model at ``uri``, downloaded."""
    local = _download(uri)
    return os.path.join(local, _flavor(local, uri)["data"])


def read_lineage(uri_or_dir: str) -> dict:
    """The lineage logged with a model: an MLflow URI, or a local MLflow model directory."""
    local = _download(uri_or_dir) if is_model_uri(uri_or_dir) else uri_or_dir
    _flavor(local, uri_or_dir)
    with open(os.path.join(local, LINEAGE_FILE)) as f:
        return json.load(f)


__all__ = ["is_model_uri", "local_model_dir", "read_lineage", "resolve", "SCHEMES", "LINEAGE_FILE"]
