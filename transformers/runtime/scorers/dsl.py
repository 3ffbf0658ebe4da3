"""The single-row path of the DSL stages (``DSLTransformer``, ``DSLModel``).

What ``DSLTransformer.scoreInstance`` runs, and what ``load_scorer`` builds from a saved
stage: the stage's lambdas, parsed by the DSL grammar and compiled to Python closures.
Every lambda reads the stage's input row. A palette ref reads the column an earlier
stage of the pipeline looked it up into; a ref no earlier stage provided is looked up by
this stage itself (``palette.lookup_plan.auto_lookups``), from the online store, into
temporary fields dropped afterwards — as its Spark path does from the offline store.

>>> s = DSLScorer.of({"tip2": 'nFill(nVal("basis:tip"), 0) * 2'})
>>> s.scoreInstance({"tip": None})
{'tip': None, 'tip2': 0.0}
"""
from __future__ import annotations

import numpy as np

from palette.dsl import parse, to_python
from palette.dsl.batch_backend import BatchExpression, Irregular, Vec
from palette.dsl.fields import default_field
from palette.dsl.functions import READERS
from palette.lookup_plan import Definitions, auto_lookups, check_readers, plan_reads

from ..batch import Batch, with_nulls
from ..online_lookups import LookupStage, definitions_of
from ..stage import LoadContext, scorer

DSL_CLASSES = ("palette.transformers.dsl_stage.DSLTransformer", "palette.transformers.dsl_stage.DSLModel")


@scorer(*DSL_CLASSES)
class DSLScorer(LookupStage):
    supports = ("DSL lambdas, parsed by the DSL grammar (nothing unpickled); DSLModel's fitted values; palette "
                "refs no earlier stage provided are looked up in the online store")
    batch_fallback = "for values the readers do not take (the row path then raises its error)"
    limitations = ("log, log1p, sqrt, exp, pow, round and the string and timestamp functions apply the row "
                   "rule to each value of a batch (numpy's kernels may differ in the last bit)")

    def __init__(self, path, metadata, context: LoadContext | None = None):
        super().__init__(path, metadata, context)
        self.lambdas: dict[str, str] = dict(self.required("lambdas", dict, of=str))
        expressions = {name: parse(text) for name, text in self.lambdas.items()}
        refs = {r.ref for e in expressions.values() for r in e.reads() if r.parsed.kind == "palette"}
        provided = dict(context.provided) if context is not None else {}
        temporary = auto_lookups(refs, provided)
        self._temporary: list[tuple[str, str, int]] = []       # (temporary field, read column, feature index)
        if temporary:
            who = f"{metadata.get('class', 'DSL stage').rsplit('.', 1)[-1]} {self.uid}"
            resolve = definitions_of(metadata, who).resolve
            check_readers([r for e in expressions.values() for r in e.reads()], temporary.values(), resolve, who)
            self.bind_reads(plan_reads(temporary, resolve), context)
            self._temporary = [(temp, b.column, b.read.features.index(feature))
                               for b in self.reads for temp, feature in b.read.outputs]
        where = {**provided, **{ref: col for col, ref in temporary.items()}}

        def field_of(read):
            if read.parsed.kind == "palette" and read.ref in where:
                return where[read.ref]
            return default_field(read)
        self._compiled = [(name, to_python(e, field_of).row_function) for name, e in expressions.items()]
        temps = set(temporary)
        self._inputs = {}
        for e in expressions.values():
            for r in e.reads():
                field = field_of(r)
                if field not in temps:
                    self._inputs.setdefault(field, READERS[r.reader])
        self._columnar = [(name, BatchExpression(e, field_of)) for name, e in expressions.items()]

    @classmethod
    def of(cls, lambdas: dict[str, str], context: LoadContext | None = None, uid: str = "DSL",
           definitions: Definitions | None = None) -> "DSLScorer":
        """A scorer for lambdas held in memory (an unsaved stage)."""
        metadata = {"class": DSL_CLASSES[0], "uid": uid, "paramMap": {"lambdas": dict(lambdas)}}
        if definitions is not None:
            metadata["paletteDefinitions"] = definitions.to_json()
        return cls(None, metadata, context)

    def score_row(self, row: dict) -> dict:
        return {name: fn(row) for name, fn in self._compiled}

    def score_instance(self, row: dict) -> dict:
        if not self.reads:
            out = dict(row)
            for name, fn in self._compiled:
                out[name] = fn(row)
            return out
        got = self.looked_up(row)
        out = dict(row)
        for column in got:
            out.pop(column, None)
        inputs = dict(out)
        for temp, column, i in self._temporary:
            values = got[column]
            inputs[temp] = None if values is None else values[i]
        for name, fn in self._compiled:
            out[name] = fn(inputs)
        return out

    def score_columns(self, batch: Batch) -> dict | None:
        """Every lambda over the whole batch (``palette.dsl.batch_backend``: numpy where it
        is exact, the row rules elsewhere), or None when the batch's values do not fit the
        readers (it is then scored row by row, which raises the row path's error)."""
        out = {}
        try:
            for name, expr in self._columnar:
                out[name] = _column(expr(batch))
        except Irregular:
            return None
        return out

    def score_batch(self, batch: Batch) -> Batch:
        if not self.reads:
            return super().score_batch(batch)
        got = self.looked_up_batch(batch)
        rest = batch.without(list(got))
        temps = {temp: [None if v is None else v[i] for v in got[column]] for temp, column, i in self._temporary}
        inputs = rest.with_columns(temps)
        with np.errstate(all="ignore"):
            out = self.score_columns(inputs) if inputs.n else {}
        if out is None:
            self.batches_row_by_row += 1
            outputs = {name: [] for name, _ in self._compiled}
            for row in inputs.rows():
                for name, fn in self._compiled:
                    outputs[name].append(fn(row))
            out = outputs
        return rest.with_columns(out)

    def output_columns(self) -> set[str]:
        return set(self.lambdas)

    def input_fields(self) -> dict[str, str]:
        return {**self.key_fields(), **self._inputs}


def _column(v: Vec):
    """A batch backend value as a Batch column."""
    if v.kind == "num":
        values = v.values
        if v.null.any():
            values = np.where(v.null, np.nan, values)
        return with_nulls(values, v.null)
    return v.as_list()
