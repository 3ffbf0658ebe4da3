"""The single-row path of ``PaletteTransformer``: its lookups, read from the online store.

What ``PaletteTransformer.scoreInstance`` runs, and what ``load_scorer(path,
online_store=...)`` builds from a saved stage. The stage's refs are planned by
``palette.lookup_plan.plan_reads`` from the definitions saved with it, exactly as its Spark
path plans them from the registry; see ``..online_lookups`` for how reads are bound and fetched.
"""
from __future__ import annotations

from palette.feature_types import TYPES
from palette.lookup_plan import plan_reads
from palette.refs import parse_ref

from ..batch import Batch
from ..online_lookups import LookupStage, definitions_of
from ..stage import LoadContext, scorer

PALETTE_TRANSFORMER = "palette.transformers.palette_stage.PaletteTransformer"


@scorer(PALETTE_TRANSFORMER)
class PaletteLookupScorer(LookupStage):
    supports = ("lookups of the latest values from the online store (SQLite, Redis), null past max age; "
                "planned at load, one round trip per dependency level")
    limitations = "deltaVersions pins and timestampCol apply to transform() only: serving reads the latest values"

    def __init__(self, path, metadata, context: LoadContext | None = None):
        super().__init__(path, metadata, context)
        self.features: dict[str, str] = dict(self.required("features", dict, of=str))
        definitions = definitions_of(metadata, f"PaletteTransformer {self.uid}")
        reads = plan_reads(self.features, definitions.resolve)
        self.bind_reads(reads, context)
        # Which read and which of its features each output column takes.
        self._outputs = [(out, b.column, b.read.features.index(feature))
                         for b in self.reads for out, feature in b.read.outputs]
        if context is not None:
            for out, ref in self.features.items():
                context.provided[str(parse_ref(ref))] = out
            for b in self.reads:
                for out, feature in b.read.outputs:
                    dim = TYPES[b.read.group.feature(feature).type].dim
                    if dim is not None:
                        context.vector_sizes[out] = dim

    def output_columns(self) -> set[str]:
        return set(self.features)

    def input_fields(self) -> dict[str, str]:
        return self.key_fields()

    def score_instance(self, row: dict) -> dict:
        got = self.looked_up(row)
        out = dict(row)
        for column in got:
            out.pop(column, None)
        for name, column, i in self._outputs:
            values = got[column]
            out[name] = None if values is None else values[i]
        return out

    def score_batch(self, batch: Batch) -> Batch:
        got = self.looked_up_batch(batch)
        columns = {name: [None if v is None else v[i] for v in got[column]] for name, column, i in self._outputs}
        return batch.without(list(got)).with_columns(columns)
