"""The single-row path of the DSL stages: no pyspark, no JVM.

``DSLRowScorer`` is what ``DSLTransformer.scoreInstance`` / ``DSLModel.scoreInstance``
run, and what ``load_scorer`` builds from a saved stage's metadata.

>>> s = DSLRowScorer({"tip2": 'nFill(nVal("basis:tip"), 0) * 2'})
>>> s.scoreInstance({"tip": None})
{'tip': None, 'tip2': 0.0}
"""
from __future__ import annotations

from typing import Iterable

from palette.dsl import parse, to_python

from .batch import Batch, row_by_row


class DSLRowScorer:
    """Scores one row: the row plus one output per lambda, all reading the input row."""

    def __init__(self, lambdas: dict[str, str]):
        self.lambdas = dict(lambdas)
        self._compiled = [(name, to_python(parse(text)).row_function) for name, text in self.lambdas.items()]

    def scoreInstance(self, row: dict) -> dict:
        out = dict(row)
        for name, fn in self._compiled:
            out[name] = fn(row)
        return out

    def scoreBatch(self, rows: Iterable[dict]) -> list[dict]:
        return [self.scoreInstance(r) for r in rows]

    def score_batch(self, batch: Batch) -> Batch:
        """The runtime's batch path: DSL lambdas are scored row by row."""
        return row_by_row(self.scoreInstance, batch)

    @property
    def output_cols(self) -> list[str]:
        return list(self.lambdas)
