"""palette: feature-store lookups and a feature DSL that compile to Spark ML stages,
and score one row without a JVM.

The DSL builders are plain Python; the Spark stages load pyspark only when used.

>>> from palette import nVal, nFill, regionId
>>> str(nFill(nVal("restaurant:batch_fg:prep_time:r_id"), -1))
'nFill(nVal("restaurant:batch_fg:prep_time:r_id"), -1)'
"""
from palette.dsl.builders import *  # noqa: F401,F403
from palette.dsl.builders import __all__ as _builders
from palette.dsl import DSLError, evaluate, parse
from palette.errors import *  # noqa: F401,F403
from palette.errors import __all__ as _errors
from palette.registry import Entity, Feature, FeatureGroup
from palette.windows import Aggregation, StreamSource
from palette.rpc import FAIL, Fetcher
from palette.config import configure
from palette.lazy import lazy_exports

__version__ = "0.1.0"

# Imported on first use, so that `import palette` loads nothing that can reach pyspark
# (tests/runtime/test_runtime_layout.py): the feature store (its Spark methods) and the Spark ML stages.
_LAZY = {
    "FeatureStore": "palette.store",
    "DSLTransformer": "palette.transformers.dsl_stage",
    "DSLEstimator": "palette.transformers.dsl_stage",
    "DSLModel": "palette.transformers.dsl_stage",
    "load_scorer": "palette.transformers.runtime.pipeline",
    "PaletteTransformer": "palette.transformers.palette_stage",
}

__all__ = [*_builders, *_errors, "DSLError", "evaluate", "parse", "Entity", "Feature", "FeatureGroup",
           "Aggregation", "StreamSource", "Fetcher", "FAIL", "configure", *_LAZY]


__getattr__ = lazy_exports(__name__, _LAZY)
