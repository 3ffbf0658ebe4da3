"""DSL stages for Spark ML: ``DSLTransformer``, ``DSLEstimator`` and its ``DSLModel``.

Each lambda maps an output column to a DSL expression (text or builder). All lambdas
of one stage read the stage's input; to use one output in another expression, put
the second in a later stage. ``transform`` adds the outputs in one projection of native
Spark Columns; ``scoreInstance`` computes the same values for one dict, without Spark.

>>> from pyspark.ml import Pipeline, PipelineModel                   # doctest: +SKIP
>>> from palette import DSLEstimator, DSLTransformer, nVal, nFill, impute, regionId
>>> region = DSLTransformer(lambdas={"region_id": regionId(nVal("lat"), nVal("lng"))})
>>> fill = DSLEstimator(lambdas={"prep": impute(nVal("prep_time")), "size": nFill(nVal("basis:order_size"), 1)})
>>> model = Pipeline(stages=[region, fill]).fit(train_df)           # doctest: +SKIP
>>> model.write().overwrite().save("/tmp/eta")                      # doctest: +SKIP
>>> PipelineModel.load("/tmp/eta").transform(df)                    # doctest: +SKIP
>>> region.scoreInstance({"lat": 57.64911, "lng": 10.40744})["region_id"]
'u4pruy'
"""
from __future__ import annotations

from pyspark import keyword_only
from pyspark.ml import Estimator, Model, Transformer
from pyspark.ml.param import Param, Params, TypeConverters

from palette.dsl import Node, parse
from palette.dsl.errors import DSLUnsupportedError
from palette.dsl.fields import default_field
from palette.dsl.spark_backend import to_column, with_dsl_columns

from .learning import fit_lambdas
from .palette_stage import HasPaletteLookup
from .persistence import PaletteReadable, PaletteWritable
from .runtime.scorers.dsl import DSLScorer
from palette.errors import InvalidArgumentType


def _to_lambdas(value) -> dict[str, str]:
    """Param converter: {output column: expression text or builder} -> {column: canonical text}.
    Parses every expression, so syntax and type errors surface when the stage is built."""
    if not isinstance(value, dict) or not value:
        raise InvalidArgumentType("lambdas must be a non-empty dict {output_column: DSL expression}, "
                        f"got {type(value).__name__}")
    out = {}
    for name, expr in value.items():
        if not isinstance(name, str) or not name:
            raise InvalidArgumentType(f"lambdas keys are output column names (non-empty strings), got {name!r}")
        if not isinstance(expr, (str, Node)):
            raise InvalidArgumentType(f"lambda {name!r} must be DSL text or an expression, got {type(expr).__name__}")
        out[name] = str(parse(expr))
    return out


class _DSLParams(HasPaletteLookup):
    """Params and both paths shared by DSLTransformer, DSLEstimator and DSLModel."""

    @keyword_only
    def __init__(self, *, lambdas: dict | None = None, timestampCol: str | None = None,
                 storeRoot: str | None = None):
        super().__init__()
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, *, lambdas: dict | None = None, timestampCol: str | None = None,
                  storeRoot: str | None = None):
        return self._set(**self._input_kwargs)

    lambdas = Param(Params._dummy(), "lambdas",
                    "output column -> DSL expression; every expression reads the stage's input",
                    typeConverter=TypeConverters.identity)

    def getLambdas(self) -> dict[str, str]:
        return self.getOrDefault(self.lambdas)

    def setLambdas(self, value):
        return self._set(lambdas=value)

    def _set(self, **kwargs):
        if "lambdas" in kwargs and kwargs["lambdas"] is not None:
            kwargs["lambdas"] = self._check_lambdas(_to_lambdas(kwargs["lambdas"]))
        return super()._set(**kwargs)

    def _check_lambdas(self, lambdas: dict[str, str]) -> dict[str, str]:
        return lambdas

    def paletteRefs(self) -> list[str]:
        """The palette feature refs the lambdas read."""
        return sorted({r.ref for e in self.expressions().values() for r in e.reads()
                       if r.parsed.kind == "palette"})

    def expressions(self) -> dict[str, Node]:
        """The lambdas as typed expressions."""
        return {name: parse(text) for name, text in self.getLambdas().items()}

    def scoreInstance(self, row: dict) -> dict:
        """The row plus this stage's outputs, computed in Python (no Spark); palette refs
        are read from the online store, as a served model reads them."""
        return self._runtime_scorer(DSLScorer, {"lambdas": self.getLambdas()}).scoreInstance(row)

    def _with_palette_values(self, dataset, lambdas: dict[str, str]):
        """The dataset with a column for every palette ref the lambdas read, and where each is.

        Refs an earlier PaletteTransformer provided are found by their column metadata; the
        others are looked up here (``palette.lookup_plan.auto_lookups``), exactly as a
        PaletteTransformer would, into temporary columns.
        """
        from palette.lookup_plan import auto_lookups, check_readers
        from palette.offline import provided_refs

        reads = [r for text in lambdas.values() for r in parse(text).reads()]
        refs = {r.ref for r in reads if r.parsed.kind == "palette"}
        if not refs:
            return dataset, default_field, []
        where = provided_refs(dataset.schema)
        missing = auto_lookups(refs, where)
        if missing:
            check_readers(reads, missing.values(), self._resolver(), f"{type(self).__name__} {self.uid}")
            dataset = self._lookup(dataset, missing)
            where.update({ref: col for col, ref in missing.items()})

        def field_of(read):
            return where[read.ref] if read.parsed.kind == "palette" else read.parsed.name
        return dataset, field_of, list(missing)

    def _transform_with(self, dataset, lambdas: dict[str, str]):
        dataset, field_of, temporary = self._with_palette_values(dataset, lambdas)
        out = with_dsl_columns(dataset, lambdas, field_of)
        return out.drop(*temporary) if temporary else out


class DSLTransformer(Transformer, _DSLParams, PaletteReadable, PaletteWritable):
    """Adds columns computed by DSL expressions. Learned functions need ``DSLEstimator``.

    >>> t = DSLTransformer(lambdas={"tip2": 'nFill(nVal("basis:tip"), 0) * 2'})
    >>> t.scoreInstance({"tip": 1.5})
    {'tip': 1.5, 'tip2': 3.0}
    >>> t.getLambdas()
    {'tip2': 'nFill(nVal("basis:tip"), 0) * 2'}
    """

    def _check_lambdas(self, lambdas):
        for name, text in lambdas.items():
            learned = [n.name for n in parse(text).walk() if getattr(n, "signature", None)
                       and n.signature.learned]
            if learned:
                raise DSLUnsupportedError(
                    f"lambda {name!r} uses {', '.join(sorted(set(learned)))}, which is learned from data: "
                    "use DSLEstimator, whose fit() learns it")
        return lambdas

    def _transform(self, dataset):
        return self._transform_with(dataset, self.getLambdas())


class DSLModel(Model, _DSLParams, PaletteReadable, PaletteWritable):
    """A fitted ``DSLEstimator``: its lambdas hold the learned numbers as literals."""

    def _transform(self, dataset):
        return self._transform_with(dataset, self.getLambdas())


class DSLEstimator(Estimator, _DSLParams, PaletteReadable, PaletteWritable):
    """Like ``DSLTransformer``, and may use learned functions, which ``fit`` learns.

    >>> e = DSLEstimator(lambdas={"prep": 'impute(nVal("prep_time"), "median")'})
    >>> model = e.fit(train_df)                                        # doctest: +SKIP
    >>> model.getLambdas()                                              # doctest: +SKIP
    {'prep': 'nFill(nVal("prep_time"), 12.0)'}
    """

    def _fit(self, dataset):
        dataset, field_of, _ = self._with_palette_values(dataset, self.getLambdas())
        fitted = fit_lambdas(dataset, self.expressions(), field_of=field_of)
        for e in fitted.values():           # reads that fit did not need are checked now, not later
            to_column(e, schema=dataset.schema, field_of=field_of)
        model = self._copyValues(DSLModel())      # timestampCol, storeRoot, deltaVersions
        model._pins = dict(self.__dict__.get("_pins", {}))    # the embedding versions fit read
        return model._set(lambdas={name: str(e) for name, e in fitted.items()})
