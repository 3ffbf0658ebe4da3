"""MLflow packaging: one logged model, two flavors, read from one saved directory.

``log_model(pipeline_model, "eta", registered_model_name="eta")`` logs a fitted
PipelineModel with Spark's own flavor (``mlflow.spark.load_model`` gives the
PipelineModel back, for Spark users) and a ``python_function`` flavor whose loader is
palette's JVM-free runtime: ``mlflow.pyfunc.load_model(uri).predict(pandas_df)`` scores in
a process with no pyspark and no JVM, with Spark's predictions. With the model goes its
lineage — the palette refs it reads, the Delta version of every feature table it was
trained on, the training window, the request fields it needs (its input signature).

``palette serve --model eta=models:/eta@champion`` and ``load_scorer("models:/eta/1")``
take registry URIs as they take paths.

>>> from palette.mlflow import log_model                                     # doctest: +SKIP
>>> info = log_model(model, "eta", registered_model_name="eta",             # doctest: +SKIP
...                  training_window=(start, split))
>>> mlflow.pyfunc.load_model(info.model_uri).predict(requests_df)            # doctest: +SKIP
"""
from __future__ import annotations

from palette.lazy import lazy_exports

# Submodule per name, imported on first use: the serving side (``uri``, ``pyfunc``) must
# not import the Spark side (``flavor``) by importing this package.
_LAZY = {"log_model": ".flavor", "save_model": ".flavor", "FLAVOR_NAME": ".flavor", "lineage": ".lineage",
         "read_lineage": ".uri", "is_model_uri": ".uri", "local_model_dir": ".uri", "PaletteModel": ".pyfunc"}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = sorted(_LAZY)
