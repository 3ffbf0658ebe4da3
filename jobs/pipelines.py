"""Where a training job's pipeline comes from: a Python builder, or stages in a config file.

``--pipeline`` takes one of

- ``package.module:function`` or ``path/to/file.py:function``: a function returning an
  unfitted ``pyspark.ml.Pipeline``; it is given ``store_root=`` and ``label=`` when it
  takes them (``palette.examples.eta:pipeline`` is one);
- ``pipeline.json`` / ``pipeline.yaml``: the stages, in order, each a class name and its
  params — palette's stages and Spark's feature, regression and classification stages::

      stages:
        - PaletteTransformer: {features: {prep_time: "@palette:restaurant:batch_fg:prep_time:r_id"},
                               timestampCol: order_ts}
        - DSLEstimator: {lambdas: {prep: 'nFill(nVal("prep_time"), -1)', size: 'nVal("basis:order_size")'}}
        - VectorAssembler: {inputCols: [prep, size], outputCol: features}
        - GBTRegressor: {labelCol: delivery_minutes, maxIter: 50}

Palette stages without a ``storeRoot`` get the job's feature store.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
from pathlib import Path

from palette.errors import PaletteError

_SPARK_MODULES = ("pyspark.ml.feature", "pyspark.ml.regression", "pyspark.ml.classification")


class PipelineSpecError(PaletteError, ValueError):
    """A ``--pipeline`` that names no pipeline, or one that cannot be built."""


def _function(spec: str):
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise PipelineSpecError(f"--pipeline {spec!r}: use module:function, file.py:function or a .json/.yaml file")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise PipelineSpecError(f"--pipeline {spec!r}: no such file {target}")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise PipelineSpecError(f"--pipeline {spec!r}: cannot import {target}: {e}") from None
    if not callable(getattr(module, name, None)):
        raise PipelineSpecError(f"--pipeline {spec!r}: {target} has no function {name}")
    return getattr(module, name)


def _stage_class(name: str):
    import palette
    if name in getattr(palette, "__all__", ()) and isinstance(getattr(palette, name), type):
        return getattr(palette, name)
    for module in _SPARK_MODULES:
        cls = getattr(importlib.import_module(module), name, None)
        if isinstance(cls, type):
            return cls
    raise PipelineSpecError(f"unknown stage {name!r}: use a palette stage (PaletteTransformer, DSLTransformer, "
                            f"DSLEstimator) or a class of {', '.join(_SPARK_MODULES)}")


def _from_config(path: Path, store_root: str | None):
    from pyspark.ml import Pipeline

    from palette.transformers.palette_stage import HasPaletteLookup
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml
            config = yaml.safe_load(text)
        else:
            config = json.loads(text)
    except Exception as e:
        raise PipelineSpecError(f"--pipeline {path}: not valid {path.suffix[1:].upper()}: {e}") from None
    stages = config.get("stages") if isinstance(config, dict) else None
    if not isinstance(stages, list) or not stages:
        raise PipelineSpecError(f"--pipeline {path}: needs a non-empty list 'stages' of {{ClassName: {{params}}}}")
    built = []
    for i, entry in enumerate(stages):
        if not (isinstance(entry, dict) and len(entry) == 1):
            raise PipelineSpecError(f"--pipeline {path}: stage {i + 1} must be one {{ClassName: {{params}}}}, "
                                    f"not {entry!r}")
        (name, params), = entry.items()
        cls = _stage_class(name)
        try:
            stage = cls(**(params or {}))
        except (TypeError, ValueError) as e:
            raise PipelineSpecError(f"--pipeline {path}: stage {i + 1} ({name}): {e}") from None
        if isinstance(stage, HasPaletteLookup) and store_root and stage.getStoreRoot() is None:
            stage.setStoreRoot(store_root)
        built.append(stage)
    return Pipeline(stages=built)


def build_pipeline(spec: str, store_root: str | None = None, label: str | None = None,
                   args: dict | None = None):
    """The unfitted Pipeline ``spec`` names (see the module's docstring). ``args`` are
    passed to a builder function as keyword arguments (``--pipeline-arg max_iter=20``)."""
    from pyspark.ml import Pipeline
    path = Path(spec)
    if path.suffix in (".json", ".yaml", ".yml"):
        if args:
            raise PipelineSpecError(f"--pipeline-arg is for builder functions; {spec} lists its stages' params itself")
        if not path.is_file():
            raise PipelineSpecError(f"--pipeline {spec}: no such file")
        return _from_config(path, store_root)
    builder = _function(spec)
    accepted = inspect.signature(builder).parameters
    kwargs = {k: v for k, v in (("store_root", store_root), ("label", label)) if k in accepted and v is not None}
    unknown = sorted(set(args or {}) - set(accepted))
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
        raise PipelineSpecError(f"--pipeline-arg {', '.join(unknown)}: {spec} takes {', '.join(accepted) or 'no arguments'}")
    pipeline = builder(**kwargs, **(args or {}))
    if not isinstance(pipeline, Pipeline):
        raise PipelineSpecError(f"--pipeline {spec}: returned {type(pipeline).__name__}, not a pyspark.ml.Pipeline")
    return pipeline


__all__ = ["build_pipeline", "PipelineSpecError"]
