"""``PaletteTransformer``: feature-store lookups as a Spark ML stage.

>>> tx = PaletteTransformer({                                     # the tutorial's spelling
...     "n_meal": "@palette:restaurant:realtime_fg:n_meal:r_id",
...     "prep_time": "@palette:restaurant:batch_fg:prep_time:r_id",
... }, timestampCol="order_ts", storeRoot="/data/palette")         # doctest: +SKIP
>>> tx.transform(orders)       # point-in-time correct values     # doctest: +SKIP

With ``timestampCol`` each row gets, per feature, the latest value at or before the
row's timestamp and within the group's max age; without it, the latest value. The join
key (the ref's last part) names the input column holding the entity key; it may be a
column an earlier stage computed. The stage saves its refs and params, not data;
loading it needs the same store root (``storeRoot``, ``palette.configure`` or
``$PALETTE_STORE_ROOT``).
"""
from __future__ import annotations

import json

from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters

from palette.config import absolute_root, default_online_store
from palette.errors import InvalidArgument, InvalidArgumentType, NotConfigured, NotRegistered
from palette.lookup_plan import Definitions, resolve_ref
from palette.refs import parse_ref

from .persistence import PaletteReadable, PaletteWritable
from .runtime.scorers.palette_lookup import PaletteLookupScorer
from .runtime.stage import LoadContext


def _to_features(value) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise InvalidArgumentType("features must be a non-empty dict {output_column: '@palette:entity:group:feature:key'}")
    out = {}
    for name, ref in value.items():
        if not isinstance(name, str) or not name:
            raise InvalidArgumentType(f"features keys are output column names, got {name!r}")
        r = parse_ref(ref)
        if r.kind != "palette":
            raise InvalidArgument(f"feature {name!r}: {ref!r} is not a palette reference; expected "
                             "'@palette:entity:feature_group:feature:join_key'")
        out[name] = str(r)
    return out


class HasPaletteLookup(Params):
    """Where lookups go: the store root and the rows' timestamp column. Shared by
    PaletteTransformer and the DSL stages (which look up refs no earlier stage provided)."""

    timestampCol = Param(Params._dummy(), "timestampCol",
                         "input column with each row's event time; lookups are point in time as of it "
                         "(unset: latest values)", typeConverter=TypeConverters.toString)
    storeRoot = Param(Params._dummy(), "storeRoot",
                      "feature store root (unset: palette.configure(...) or $PALETTE_STORE_ROOT)",
                      typeConverter=lambda v: absolute_root(TypeConverters.toString(v)))
    deltaVersions = Param(Params._dummy(), "deltaVersions",
                          "feature group -> Delta version to read (unset: the latest)",
                          typeConverter=TypeConverters.identity)

    def getTimestampCol(self):
        return self.getOrDefault(self.timestampCol) if self.isDefined(self.timestampCol) else None

    def setTimestampCol(self, value):
        return self._set(timestampCol=value)

    def getStoreRoot(self):
        return self.getOrDefault(self.storeRoot) if self.isDefined(self.storeRoot) else None

    def setStoreRoot(self, value):
        return self._set(storeRoot=value)

    def getDeltaVersions(self) -> dict:
        return dict(self.getOrDefault(self.deltaVersions)) if self.isDefined(self.deltaVersions) else {}

    def setDeltaVersions(self, value: dict):
        return self._set(deltaVersions={str(k): int(v) for k, v in value.items()})

    def store(self):
        from palette.store import FeatureStore
        return FeatureStore(self.getStoreRoot())

    def paletteRefs(self) -> list[str]:
        """The palette feature refs this stage reads."""
        raise NotImplementedError

    def pinVersions(self, spark=None):
        """Pin every group this stage reads to its current Delta version, so that fitting
        and transforming read those versions even after new data lands (exact rebuilds; the
        versions are saved with the stage and logged as the model's lineage)."""
        store, resolve = self.store(), self._resolver()
        groups = {resolve(r)[1].id for r in self.paletteRefs()}        # an embedding: its pinned version's table
        return self.setDeltaVersions({g: store.version(g, spark) for g in sorted(groups)})

    def featureDefinitions(self):
        """The entities and feature groups this stage reads (``palette.lookup_plan.Definitions``),
        as saved with it: from the feature store when one is known, else as loaded from the
        saved stage; None when the stage reads no feature."""
        refs = self.paletteRefs()
        if not refs:
            return None
        saved = getattr(self, "_definitions", None)
        try:
            return Definitions.for_refs(refs, self._resolver())
        except NotConfigured:
            return saved
        except NotRegistered:
            if saved is None:
                raise
            return saved

    def copy(self, extra=None):
        """A copy with its own embedding pins (``Params.copy`` is shallow)."""
        that = super().copy(extra)
        if "_pins" in self.__dict__:
            that._pins = dict(self._pins)
        return that

    def _resolver(self):
        """Resolves refs in the feature store, keeping embedding versions pinned: a ref
        without a version reads the newest version the stage was saved with, else the
        newest when the stage first read the group — a model keeps reading the embedding
        version it was fitted on until it is refitted (a new stage); a ref naming a version
        (``…:dish_emb@v1:…``) reads that one."""
        store = self.store()
        pins = self.__dict__.setdefault("_pins", {})
        saved = getattr(self, "_definitions", None)
        if saved is not None:
            for g in saved.groups.values():
                if g.version is not None:
                    pins.setdefault(g.base_id, saved.group(g.base_id))

        def resolve(ref):
            r = parse_ref(ref) if isinstance(ref, str) else ref
            if "@v" in (r.group or ""):
                return store.resolve(r)
            entity, group, r = resolve_ref(r, store.entity, lambda gid: pins.get(gid) or store.group(gid))
            if group.version is not None:
                pins.setdefault(group.base_id, group)
            return entity, group, r
        return resolve

    def _runtime_scorer(self, cls, params: dict):
        """The JVM-free scorer of this stage as it is now (``scoreInstance``): the very
        scorer ``load_scorer`` builds from the saved stage, reading palette refs from the
        configured online store. Rebuilt only when the params or the store change."""
        definitions = self.featureDefinitions()
        refs = self.paletteRefs()
        if refs and definitions is None:
            raise NotConfigured(
                f"{type(self).__name__} {self.uid} reads palette features ({', '.join(refs)}); scoring it here needs "
                "their definitions from the feature store: set storeRoot=..., palette.configure(store_root=...) or "
                "PALETTE_STORE_ROOT (or save the stage and serve it with load_scorer)")
        url = default_online_store() if refs else None
        key = json.dumps([params, definitions and definitions.to_json(), url], sort_keys=True, default=str)
        cached = getattr(self, "_scorer_cache", None)
        if cached is None or cached[0] != key:
            metadata = {"class": f"{type(self).__module__}.{type(self).__name__}", "uid": self.uid,
                        "paramMap": params}
            if definitions is not None:
                metadata["paletteDefinitions"] = definitions.to_json()
            cached = (key, cls(None, metadata, LoadContext(online_store=url)))
            self._scorer_cache = cached
        return cached[1]

    def _lookup(self, df, outputs: dict[str, str]):
        from palette.offline import point_in_time_lookup
        return point_in_time_lookup(df, self.store(), outputs, self.getTimestampCol(), self.getDeltaVersions(),
                                    resolve=self._resolver())


class PaletteTransformer(Transformer, HasPaletteLookup, PaletteReadable, PaletteWritable):
    features = Param(Params._dummy(), "features",
                     "output column -> '@palette:entity:feature_group:feature:join_key'",
                     typeConverter=TypeConverters.identity)

    def __init__(self, features: dict | None = None, *, timestampCol: str | None = None,
                 storeRoot: str | None = None, deltaVersions: dict | None = None):
        super().__init__()
        self.setParams(features=features, timestampCol=timestampCol, storeRoot=storeRoot,
                       deltaVersions=deltaVersions)

    def setParams(self, features: dict | None = None, *, timestampCol: str | None = None,
                  storeRoot: str | None = None, deltaVersions: dict | None = None):
        if storeRoot is not None:
            self._set(storeRoot=storeRoot)
        if timestampCol is not None:
            self._set(timestampCol=timestampCol)
        if deltaVersions is not None:
            self.setDeltaVersions(deltaVersions)
        if features is not None:
            self.setFeatures(features)
        return self

    def getFeatures(self) -> dict[str, str]:
        return self.getOrDefault(self.features)

    def setFeatures(self, value: dict):
        value = _to_features(value)
        self._validate_refs(value)
        return self._set(features=value)

    def _validate_refs(self, features: dict[str, str]) -> None:
        """Unknown entity, group or feature fails when the stage is built, if a store is known."""
        try:
            store = self.store()
        except NotConfigured:
            return          # checked at transform time, when a store must be known
        for ref in features.values():
            store.resolve(ref)

    def paletteRefs(self) -> list[str]:
        """The palette feature refs this stage reads."""
        return sorted(set(self.getFeatures().values()))

    def _transform(self, dataset):
        return self._lookup(dataset, self.getFeatures())

    def scoreInstance(self, row: dict) -> dict:
        """The row plus this stage's features, read from the online store
        (``palette.configure(online_store=...)`` or ``$PALETTE_ONLINE_STORE``): the latest
        values, null past the group's max age, as a served model reads them."""
        return self._runtime_scorer(PaletteLookupScorer, {"features": self.getFeatures()}).scoreInstance(row)
