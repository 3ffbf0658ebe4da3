"""The single-row path of the DSL stages (``DSLTransformer``, ``DSLModel``).

What ``DSLTransformer.scoreInstance`` runs, and what ``load_scorer`` builds from a saved
stage: the stage's lambdas, parsed by the DSL grammar and compiled to Python closures.
Every lambda reads the stage's input row. A palette ref reads the column an earlier
stage of the pipeline looked it up into, as on Spark.

>>> s = DSLScorer.of({"tip2": 'nFill(nVal("basis:tip"), 0) * 2'})
>>> s.scoreInstance({"tip": None})
{'tip': None, 'tip2': 0.0}
"""
from __future__ import annotations

from palette.dsl import parse, to_python
from palette.dsl.fields import default_field

from ..stage import LoadContext, StageScorer, scorer

DSL_CLASSES = ("palette.transformers.dsl_stage.DSLTransformer", "palette.transformers.dsl_stage.DSLModel")


@scorer(*DSL_CLASSES)
class DSLScorer(StageScorer):
    supports = "DSL lambdas, parsed by the DSL grammar (nothing unpickled); DSLModel's fitted values"
    limitations = "a batch is scored row by row (each lambda is a Python closure over one row)"

    def __init__(self, path, metadata, context: LoadContext | None = None):
        super().__init__(path, metadata, context)
        self.lambdas: dict[str, str] = dict(self.param("lambdas"))
        provided = context.provided if context is not None else {}

        def field_of(read):
            if read.parsed.kind == "palette" and read.ref in provided:
                return provided[read.ref]
            return default_field(read)
        self._compiled = [(name, to_python(parse(text), field_of).row_function)
                          for name, text in self.lambdas.items()]

    @classmethod
    def of(cls, lambdas: dict[str, str], context: LoadContext | None = None) -> "DSLScorer":
        """A scorer for lambdas held in memory (an unsaved stage)."""
        return cls(None, {"class": DSL_CLASSES[0], "paramMap": {"lambdas": dict(lambdas)}}, context)

    def score_row(self, row: dict) -> dict:
        return {name: fn(row) for name, fn in self._compiled}

    def output_columns(self) -> set[str]:
        return set(self.lambdas)
