"""``FeatureStore(root)``: the registry plus the Delta tables, under one root.

    <root>/_registry/                         the registry: entities, feature groups, usage (Delta)
    <root>/tables/<entity>/<feature_group>/   one Delta table per feature group

The root may be a local folder or any URI Spark and Delta can write (``s3a://bucket/palette``,
``abfss://…``, ``gs://…``): the registry is a Delta table read and written with delta-rs
(no Spark), the feature tables are written by Spark.

>>> store = FeatureStore("/tmp/palette-store")                       # doctest: +SKIP
>>> store.register(Entity("restaurant", {"r_id": "str"}),
...                FeatureGroup("restaurant", "batch_fg", {"prep_time": "num"}))  # doctest: +SKIP
>>> store.ingest(df, "restaurant:batch_fg")                          # doctest: +SKIP
{'version': 1, 'inserted': 1000, 'updated': 0, 'source_rows': 1000}
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from palette import uris
from palette.refs import Ref, parse_ref

from .config import configure, default_online_store, default_root
from .errors import InvalidArgument
from .feature_types import TYPES
from .lookup_plan import Definitions, resolve_ref
from .registry import Entity, FeatureGroup, Registry, format_age

@dataclass(frozen=True)
class FeatureInfo:
    """One row of a search result."""
    entity: str
    group: str
    feature: str
    type: str
    kind: str
    max_age: str
    tags: tuple[str, ...]
    description: str
    models: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.entity}:{self.group}:{self.feature}"


class FeatureStore:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = default_root(str(root) if root is not None else None)
        self.registry = Registry(self.root)

    def __repr__(self):
        return f"FeatureStore({self.root!r})"

    # -- registry ---------------------------------------------------------------------
    def register(self, *objects: Entity | FeatureGroup) -> None:
        self.registry.register(*objects)

    def entity(self, name: str) -> Entity:
        return self.registry.entity(name)

    def group(self, group_id: str) -> FeatureGroup:
        return self.registry.group(group_id)

    def resolve(self, ref: str | Ref) -> tuple[Entity, FeatureGroup, Ref]:
        """Check a palette reference against the registry; errors name the closest registered names."""
        return resolve_ref(ref, self.entity, self.group)

    def definitions(self, refs) -> Definitions:
        """The entities and groups ``refs`` read, as a saved stage carries them."""
        return Definitions.for_refs(refs, self.resolve)

    def search(self, text: str | None = None, *, entity: str | None = None, type: str | None = None,
               tag: str | None = None, model: str | None = None) -> list[FeatureInfo]:
        """Features matching every given criterion. ``text`` matches feature names by substring,
        then by closeness; ``model`` lists the features a saved pipeline uses: its recorded
        name (``record_model``), or an MLflow model URI (``models:/eta/1``), whose logged
        lineage is read when the registry has no record under that name."""
        usage = self.registry.usage()
        if model is not None and model not in usage:
            from palette.mlflow.uri import is_model_uri, read_lineage
            if is_model_uri(model):
                usage = {**usage, model: [str(parse_ref(r)) for r in read_lineage(model)["feature_refs"]]}
        rows = []
        for g in self.registry.groups().values():
            for f in g.features:
                fid = f"{g.base_id}:{f.name}"
                models = tuple(sorted(m for m, refs in usage.items()
                                      if any(r.startswith(fid + ":") or r == fid for r in refs)))
                rows.append(FeatureInfo(g.entity, g.name, f.name, f.type, g.kind,
                                        format_age(g.max_age), tuple(g.tags) + f.tags,
                                        f.description or g.description, models))
        if entity is not None:
            rows = [r for r in rows if r.entity == entity]
        if type is not None:
            rows = [r for r in rows if r.type == type]
        if tag is not None:
            rows = [r for r in rows if tag in r.tags]
        if model is not None:
            is_uri = model.startswith(("models:/", "runs:/"))
            rows = [r for r in rows if any(model == m if is_uri else model in m for m in r.models)]
        if text:
            exact = [r for r in rows if text.lower() in r.feature.lower()]
            if exact:
                rows = exact
            else:
                import difflib
                close = set(difflib.get_close_matches(text, [r.feature for r in rows], n=5, cutoff=0.5))
                rows = [r for r in rows if r.feature in close]
        return sorted(rows, key=lambda r: r.id)

    def record_model(self, path: str | os.PathLike, name: str | None = None) -> list[str]:
        """Record which features the model saved at ``path`` reads (read from its saved
        stages, no Spark), so that ``search(model=...)`` finds them; returns the refs.
        ``name`` defaults to the path.

        >>> store.record_model("/models/eta")                      # doctest: +SKIP
        ['restaurant:batch_fg:prep_time:r_id', ...]
        """
        from palette.transformers.runtime.artifact import palette_refs
        refs = palette_refs(path)
        self.record_usage(name or str(path), refs)
        return refs

    def record_usage(self, model: str, refs) -> None:
        # Canonical spelling ('entity:group:feature:key'), so '@palette:...' refs are found by search.
        self.registry.record_usage(model, [str(parse_ref(r) if isinstance(r, str) else r) for r in refs])

    # -- offline store (Spark) --------------------------------------------------------
    def table_path(self, group_id: str) -> str:
        """``<root>/tables/<entity>/<group>``; an embedding version's ``.../<group>/v<N>``."""
        g = self.group(group_id)
        parts = [g.entity, g.name] + ([f"v{g.version}"] if g.version is not None else [])
        return uris.join(self.root, "tables", *parts)

    def tiles_path(self, group_id: str) -> str:
        """Where a windowed stream group keeps its tiles (``palette.streaming``), beside the tables."""
        g = self.group(group_id)
        return uris.join(self.root, "tiles", g.entity, g.name)

    def ingest(self, df, group_id: str, *, fixed_points: bool = False) -> dict:
        """Validate ``df`` against the group and MERGE it into the group's Delta table.

        Returns ``{"version", "inserted", "updated", "source_rows"}``. A row with an existing
        (key, event time) replaces it when its values differ; rows identical to the table are
        left alone, so a rerun commits nothing and ``version`` stays the table's current one.

        An embedding version stored online as float16/int8 takes only vectors that are
        fixed points of that codec (``fixed_points=True``; what ``palette embeddings
        compress`` writes), or the online store would hold other numbers than Delta.
        """
        from . import offline

        group = self.group(group_id)
        if group.windowed:
            where = group.source.path or f"topic {group.source.topic}"
            raise InvalidArgument(f"{group_id} holds windowed aggregations computed from its events, which ingest "
                                  f"would contradict: add the events to its source ({where}) and let `palette "
                                  f"stream` or `palette backfill --group {group_id}` compute them")
        narrow = [f.name for f in group.features if TYPES[f.type].storage in ("float16", "int8")]
        if narrow and not fixed_points:
            raise InvalidArgument(f"{group_id} stores {', '.join(narrow)} as float16/int8 online, so Delta must hold "
                                  "the values that codec gives back: write it with `palette embeddings compress`, or "
                                  "pass fixed_points=True for vectors already quantized "
                                  "(palette.embeddings.quantize.fixed_point)")
        entity = self.entity(group.entity)
        source, rows = offline.conform(df, entity, group)
        spark = df.sparkSession
        path = self.table_path(group_id)
        offline.ensure_table(spark, path, offline.table_schema(entity, group))
        return offline.merge(spark, path, source, list(entity.join_keys), group.timestamp_col,
                             [f.name for f in group.features], rows)

    def materialize(self, groups=None, *, online_store: str, full: bool = False, spark=None,
                    batch_rows: int | None = None) -> dict[str, dict]:
        """Copy the latest value per key of each group's Delta table into the online store
        at ``online_store`` (default: every registered group but RPC groups, which are
        fetched at request time): incrementally from the Delta
        version that store last reached, or ``full``. Returns, per group, ``{"rows",
        "version", "mode", "seconds"}``. Unknown groups, an unreachable store and groups the
        online store holds differently fail before anything is written. See
        ``palette.materialize`` and docs/online-store.md.

        >>> store.materialize(online_store="sqlite:////data/online.db")    # doctest: +SKIP
        {'restaurant:batch_fg': {'rows': 1000, 'version': 3, 'mode': 'full', 'seconds': 2.1}}
        """
        from .materialize import BATCH_ROWS, check_groups, materialize_group
        from .spark import active_session
        ids = list(groups) if groups else sorted(g for g, d in self.registry.groups().items() if d.kind != "rpc")
        check_groups(self, ids, online_store)
        spark = spark or active_session()
        return {g: materialize_group(spark, self, g, online_store, full, batch_rows or BATCH_ROWS) for g in ids}

    def read(self, group_id: str, spark=None, version: int | None = None, timestamp: str | None = None):
        """The group's Delta table, optionally as of a version or timestamp (time travel)."""
        from . import offline
        from .spark import active_session
        spark = spark or active_session()
        return offline.read_table(spark, self.table_path(group_id), version, timestamp)

    def version(self, group_id: str, spark=None) -> int:
        from . import offline
        from .spark import active_session
        return offline.current_version(spark or active_session(), self.table_path(group_id))


__all__ = ["FeatureStore", "FeatureInfo", "configure", "default_root", "default_online_store"]
