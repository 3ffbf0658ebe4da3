"""The feature registry: entities, feature groups and features.

What a user declares (the spec) is separate from bookkeeping (which saved pipelines use
which features). Both live in one Delta table under the store root, read and written
without Spark, on a local folder or object storage (``palette.registry_table``);
``palette registry export`` prints it as sorted JSON.

>>> restaurant = Entity("restaurant", join_keys={"r_id": "str"})
>>> batch = FeatureGroup("restaurant", "batch_fg", features={"prep_time": "num"},
...                      timestamp_col="event_ts", max_age="30d", kind="batch")
>>> batch.id, batch.max_age
('restaurant:batch_fg', datetime.timedelta(days=30))
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import asdict, dataclass
from datetime import timedelta

from .errors import NotRegistered, RegistryError
from .feature_types import FEATURE_TYPES, KEY_TYPES, TYPES, feature_type
from .registry_table import RegistryTable, migrate
from .rpc.fetcher import Fetcher
from .windows import Aggregation, StreamSource, duration_micros

FORMAT_VERSION = 2          # of the registry's rows (1: registry.json); a newer row makes this palette ask to be upgraded
KINDS = ("batch", "realtime", "stream", "rpc", "embedding")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_AGE = re.compile(r"^(\d+)([smhdw])$")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}



def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(f"{kind} name {name!r} must start with a letter or _ and hold only "
                            "letters, digits and _")
    return name


def parse_age(age) -> timedelta | None:
    """'30d', '12h', '90m', '45s', '2w', a timedelta, or None (no limit)."""
    if age is None or isinstance(age, timedelta):
        return age
    m = _AGE.match(str(age))
    if not m:
        raise RegistryError(f"max_age {age!r}: use a number and a unit, e.g. '30d', '12h', '90m'")
    return timedelta(**{_AGE_UNITS[m.group(2)]: int(m.group(1))})


def format_age(age: timedelta | None) -> str:
    """The shortest exact spelling: timedelta(days=2) -> '2d' (the inverse of parse_age)."""
    if age is None:
        return ""
    secs = int(age.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if secs and secs % size == 0:
            return f"{secs // size}{unit}"
    return f"{secs}s"


@dataclass(frozen=True)
class Feature:
    """One feature. ``drift`` overrides, for this feature, the effect a monitoring test
    must reach to alert (``{"ks": 0.05, "null_rate": 0.1}``; the tests and their defaults:
    ``palette.monitor.drift.DEFAULTS``)."""
    name: str
    type: str
    description: str = ""
    tags: tuple[str, ...] = ()
    drift: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        _check_name("feature", self.name)
        try:
            t = TYPES.get(self.type)
        except RegistryError as e:
            raise RegistryError(f"feature {self.name!r}: {e}") from None
        if t is None:
            hint = " (a vector needs its dimension, e.g. 'vector(128)')" if str(self.type).startswith("vector") else ""
            raise RegistryError(f"feature {self.name!r} has type {self.type!r}; use one of {FEATURE_TYPES}{hint}")
        object.__setattr__(self, "type", t.name)          # one spelling of vector(d, ...)
        object.__setattr__(self, "tags", tuple(self.tags))
        from palette.monitor.drift import DEFAULTS
        limits = dict(self.drift.items() if isinstance(self.drift, dict) else self.drift)
        for test, value in limits.items():
            if test not in DEFAULTS or isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise RegistryError(f"feature {self.name!r}: drift={{{test!r}: {value!r}}}: the tests are "
                                    f"{', '.join(DEFAULTS)}, each with the effect (a number >= 0) it must reach to "
                                    "alert")
        object.__setattr__(self, "drift", tuple(sorted((k, float(v)) for k, v in limits.items())))


@dataclass(frozen=True)
class Entity:
    """Something features describe, identified by its join key column(s), in order: a
    lookup by a composite key names one input column per key, in this order."""
    name: str
    join_keys: dict[str, str]
    description: str = ""

    def __post_init__(self):
        _check_name("entity", self.name)
        keys = dict(self.join_keys) if self.join_keys else {}   # a dict, or [name, type] pairs (JSON)
        if not keys:
            raise RegistryError(f"entity {self.name!r} needs at least one join key, e.g. {{'id': 'str'}}")
        for col, t in keys.items():
            _check_name("join key", col)
            if t not in KEY_TYPES:
                raise RegistryError(f"join key {col!r} of entity {self.name!r} has type {t!r}; "
                                    f"use one of {KEY_TYPES}")
        object.__setattr__(self, "join_keys", keys)

    def to_json(self) -> dict:
        # Pairs, not an object: the registry file is written with sorted keys, and the
        # order of a composite key matters.
        return {"name": self.name, "join_keys": [[k, t] for k, t in self.join_keys.items()],
                "description": self.description}


@dataclass(frozen=True)
class FeatureGroup:
    """Features of one entity that are computed and stored together (one Delta table).

    A ``kind="stream"`` group reads events from ``source`` (``palette.windows.StreamSource``)
    and either keeps the latest value of event columns (``features``: columns of the
    source's schema, with their types) or aggregates events over sliding windows
    (``aggregations``, sliding by ``hop``; its features are the aggregations). Events later
    than ``lateness`` behind the newest one seen are dropped by the stream (a backfill
    counts them). See ``docs/streaming.md``.

    A ``kind="rpc"`` group is fetched at request time by its ``fetcher``
    (``palette.rpc.Fetcher``: an HTTP endpoint or a Python function, with timeout, retries,
    breaker and fallbacks); its Delta table is what serving fetched, backfilled from the
    served-feature logs (``palette backfill-rpc``). See ``docs/rpc-features.md``.

    A ``kind="embedding"`` group is one ``version`` of a table of vectors (``vector(d)``
    features): each training of the embedding registers a new version, with a table of its
    own; a version is never overwritten. Its ``id`` names the version
    (``restaurant:dish_emb@v2``); a lookup by ``restaurant:dish_emb`` reads the newest
    version registered when the stage was fitted, and a saved stage keeps reading that one.
    ``unk`` gives a vector feature the vector a lookup reads for a key the version does not
    hold (``palette embeddings compress`` keeps the top-k entities and maps the rest to
    one UNK vector), on both paths. See ``docs/embeddings.md``.

    ``slices`` names columns of the group's table (features or join keys) whose values
    monitoring profiles apart, besides overall: drift per city, not only overall
    (``docs/monitoring.md``).

    >>> src = StreamSource("delta", {"r_id": "str", "ts": "ts", "size": "num"}, "ts", path="/data/orders")
    >>> g = FeatureGroup("restaurant", "orders_fg", kind="stream", source=src, hop="1m",
    ...                  aggregations=[Aggregation("n_orders", "count", over="30m"),
    ...                                Aggregation("avg_size", "mean", "size", over="1h")])
    >>> [(f.name, f.type) for f in g.features], g.windowed, g.hop_micros
    ([('n_orders', 'num'), ('avg_size', 'num')], True, 60000000)
    """
    entity: str
    name: str
    features: dict[str, str] | list[Feature] = ()
    timestamp_col: str = "event_ts"
    max_age: str | timedelta | None = None
    kind: str = "batch"
    owner: str = ""
    tags: tuple[str, ...] = ()
    description: str = ""
    source: StreamSource | None = None
    aggregations: tuple[Aggregation, ...] = ()
    hop: str | None = None
    lateness: str = "5m"
    fetcher: Fetcher | None = None
    slices: tuple[str, ...] = ()
    version: int | None = None
    unk: dict[str, list[float]] | tuple = ()

    def __post_init__(self):
        _check_name("feature group", self.name)
        _check_name("timestamp column", self.timestamp_col)
        object.__setattr__(self, "slices", tuple(_check_name("slice column", c) for c in self.slices))
        feats = self.features
        if isinstance(feats, dict):
            feats = [Feature(n, t) for n, t in feats.items()]
        feats = tuple(f if isinstance(f, Feature) else Feature(**f) for f in feats)
        feats = self._stream_features(feats)
        self._kind_part("fetcher", Fetcher, "rpc", "an RPC group", "a palette.rpc.Fetcher")
        if not feats:
            raise RegistryError(f"feature group {self.name!r} needs at least one feature")
        names = [f.name for f in feats]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise RegistryError(f"feature group {self.name!r} declares {', '.join(sorted(dup))} twice")
        if self.kind not in KINDS:
            raise RegistryError(f"feature group {self.name!r} has kind {self.kind!r}; use one of {KINDS}")
        self._check_version(feats)
        vectors = [f.name for f in feats if feature_type(f.type).dim is not None]
        narrow = [f.name for f in feats if feature_type(f.type).storage in ("float16", "int8")]
        if narrow and self.kind != "embedding":
            raise RegistryError(f"feature group {self.name!r}: {', '.join(narrow)}: a float16/int8 online form is for "
                                "embedding versions written by `palette embeddings compress`; declare vector(d)")
        if vectors and self.kind in ("stream", "rpc"):
            raise RegistryError(f"feature group {self.name!r}: {self.kind} groups cannot hold vectors yet "
                                f"({', '.join(vectors)}); declare them in a batch or embedding group")
        age = parse_age(self.max_age)
        object.__setattr__(self, "features", feats)
        object.__setattr__(self, "max_age", age)
        object.__setattr__(self, "tags", tuple(self.tags))

    def _stream_features(self, feats: tuple) -> tuple:
        """Check a stream group's source, window and features; the features of a windowed group."""
        source = self._kind_part("source", StreamSource, "stream", "a stream group", "a StreamSource")
        aggs = tuple(a if isinstance(a, Aggregation) else Aggregation(**a) for a in self.aggregations)
        object.__setattr__(self, "aggregations", aggs)
        if source is None:
            if aggs or self.hop is not None:
                raise RegistryError(f"feature group {self.name!r}: aggregations and hop need a stream source "
                                    "(kind='stream', source=StreamSource(...))")
            return feats
        if self.lateness not in ("0s", "0"):
            duration_micros(f"feature group {self.name!r}: lateness", self.lateness)
        if not aggs:
            if self.hop is not None:
                raise RegistryError(f"feature group {self.name!r}: hop= is for aggregations; a group of latest "
                                    "values has none")
            for f in feats:
                t = source.schema.get(f.name)
                if t is None:
                    raise RegistryError(f"feature {f.name!r} of stream group {self.name!r} is the latest value of "
                                        f"an event column, but the source has no column {f.name!r}; its columns: "
                                        f"{', '.join(sorted(source.schema))}")
                if t != f.type:
                    raise RegistryError(f"feature {f.name!r} of stream group {self.name!r} is declared {f.type} but "
                                        f"the event column is {t}")
            return feats
        if feats:
            raise RegistryError(f"feature group {self.name!r}: a windowed group's features are its aggregations; "
                                "declare latest values of event columns in a group of their own")
        if self.hop is None:
            raise RegistryError(f"feature group {self.name!r}: aggregations slide by a hop: add hop='1m' (or another "
                                "step that divides every window)")
        if self.max_age is not None:
            raise RegistryError(f"feature group {self.name!r}: a windowed value is exact at every instant (it empties "
                                "when its window has no event), so max_age does not apply: leave it out")
        hop = duration_micros(f"feature group {self.name!r}: hop", self.hop)
        aggs = tuple(a.typed(source.schema) for a in aggs)
        for a in aggs:
            if a.over_micros % hop:
                raise RegistryError(f"aggregation {a.name!r}: its window {a.over} is not a multiple of the hop "
                                    f"{self.hop}; use a window of whole hops")
        object.__setattr__(self, "aggregations", aggs)
        return tuple(Feature(a.name, a.output_type) for a in aggs)

    def _check_version(self, feats: tuple) -> None:
        v = self.version
        if self.kind != "embedding":
            if self.unk:
                raise RegistryError(f"feature group {self.name!r}: unk= is for an embedding group's vectors")
            if v is not None:
                raise RegistryError(f"feature group {self.name!r}: only an embedding group (kind='embedding') has "
                                    "versions; leave version out")
            return
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise RegistryError(f"embedding group {self.name!r} needs version= (an integer >= 1; each training of "
                                f"the embedding is a new version), got {v!r}")
        if not any(feature_type(f.type).dim for f in feats):
            raise RegistryError(f"embedding group {self.name!r} holds no vector: declare its embedding as a "
                                "feature of type 'vector(d)', e.g. {'emb': 'vector(32)'}")
        types = {f.name: feature_type(f.type) for f in feats}
        unk = []
        for name, vector in (self.unk.items() if isinstance(self.unk, dict) else self.unk):
            t = types.get(name)
            if t is None or t.dim is None:
                raise RegistryError(f"embedding group {self.name!r}: unk={{{name!r}: ...}} names no vector feature "
                                    f"of the group; its vectors: {', '.join(n for n, t in types.items() if t.dim)}")
            if not t.holds(vector):
                raise RegistryError(f"embedding group {self.name!r}: the unk vector of {name!r} must be {t.dim} "
                                    "finite numbers")
            unk.append((name, tuple(float(x) for x in vector)))
        object.__setattr__(self, "unk", tuple(sorted(unk)))

    def unk_vector(self, feature: str):
        """The vector a lookup of ``feature`` reads for a key the group does not hold, or None."""
        return dict(self.unk).get(feature)

    def _kind_part(self, name: str, cls, kind: str, group: str, what: str):
        """The part only a group of ``kind`` has (a stream's ``source``, an RPC group's
        ``fetcher``), read from its JSON if need be; present exactly when the kind is."""
        part = getattr(self, name)
        if isinstance(part, dict):
            part = cls.from_json(part)
            object.__setattr__(self, name, part)
        if (self.kind == kind) != (part is not None):
            raise RegistryError(f"feature group {self.name!r}: {group} needs {name}= ({what}), and only {group} "
                                f"has one: declare kind='{kind}' with its {name}")
        return part

    @property
    def windowed(self) -> bool:
        """Whether the features are windowed aggregations."""
        return bool(self.aggregations)

    @property
    def hop_micros(self) -> int | None:
        return duration_micros("hop", self.hop) if self.hop is not None else None

    @property
    def lateness_micros(self) -> int:
        return 0 if self.lateness in ("0s", "0") else duration_micros("lateness", self.lateness)

    @property
    def id(self) -> str:
        """``entity:name``; of an embedding, ``entity:name@vN`` (each version is stored apart)."""
        base = f"{self.entity}:{self.name}"
        return base if self.version is None else f"{base}@v{self.version}"

    @property
    def base_id(self) -> str:
        """``entity:name`` whatever the version: what refs name."""
        return f"{self.entity}:{self.name}"

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise NotRegistered(f"feature group {self.id} has no feature {name!r}"
                            + suggest(name, [f.name for f in self.features]))

    def to_json(self) -> dict:
        d = asdict(self)
        d["features"] = [{k: v for k, v in asdict(f).items() if k != "drift" or v} for f in self.features]
        if not self.slices:
            del d["slices"]
        if self.version is None:
            del d["version"]
        if self.unk:
            d["unk"] = {name: list(v) for name, v in self.unk}
        else:
            del d["unk"]
        d["max_age_seconds"] = None if self.max_age is None else int(self.max_age.total_seconds())
        del d["max_age"]
        if self.fetcher is None:
            del d["fetcher"]
        else:
            d["fetcher"] = self.fetcher.to_json()
        if self.source is None:            # a batch group's JSON stays as it always was
            for k in ("source", "aggregations", "hop", "lateness"):
                del d[k]
        else:
            d["source"] = self.source.to_json()
            d["aggregations"] = [a.to_json() for a in self.aggregations]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "FeatureGroup":
        d = dict(d)
        secs = d.pop("max_age_seconds", None)
        d["max_age"] = None if secs is None else timedelta(seconds=secs)
        d["features"] = [Feature(**f) for f in d["features"]]
        if d.get("aggregations"):
            d["features"] = ()                      # derived from the aggregations
            d["aggregations"] = [Aggregation(**a) for a in d["aggregations"]]
        return cls(**d)


def newest_version(groups: dict[str, FeatureGroup], group_id: str) -> FeatureGroup | None:
    """``groups[group_id]``, or the newest version of the embedding group ``group_id`` names."""
    if group_id in groups:
        return groups[group_id]
    versions = [g for g in groups.values() if g.version is not None and g.base_id == group_id]
    return max(versions, key=lambda g: g.version) if versions else None


def suggest(name: str, known) -> str:
    """'; did you mean ...?' naming the registered names closest to ``name`` (for error messages)."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
        (f"; registered: {', '.join(sorted(known))}" if known else "; nothing is registered yet")


def _diff_group(old: FeatureGroup, new: FeatureGroup) -> list[str]:
    """Incompatible changes from old to new (adding features and editing descriptions are fine)."""
    problems = []
    if old.timestamp_col != new.timestamp_col:
        problems.append(f"timestamp column {old.timestamp_col!r} -> {new.timestamp_col!r}")
    new_types = {f.name: f.type for f in new.features}
    for f in old.features:
        if f.name not in new_types:
            problems.append(f"feature {f.name!r} removed")
        elif new_types[f.name] != f.type:
            problems.append(f"feature {f.name!r} type {f.type} -> {new_types[f.name]}")
    if old.hop != new.hop and old.windowed:
        problems.append(f"hop {old.hop} -> {new.hop}")
    new_aggs = {a.name: a for a in new.aggregations}
    for a in old.aggregations:
        if a.name in new_aggs and new_aggs[a.name] != a:
            problems.append(f"aggregation {a.name!r} {a.to_json()} -> {new_aggs[a.name].to_json()}")
    return problems


def _check_names_apart(group: FeatureGroup, registered: dict) -> None:
    """An embedding's versions and an unversioned group never share a name: refs by name
    would silently switch between them."""
    if group.version is None and any(gid.startswith(group.id + "@v") for gid in registered):
        raise RegistryError(f"{group.id} is an embedding group's name (versions {group.id}@v…): give this group "
                            "another name, or register it as a new version (kind='embedding', version=N)")
    if group.version is not None and group.base_id in registered:
        raise RegistryError(f"{group.base_id} is registered as a {registered[group.base_id].get('kind', 'batch')} group; "
                            "an embedding with versions needs a name of its own")


def _check_new_version(group: FeatureGroup, old: dict | None, registered: dict) -> None:
    """An embedding version is registered once and never changed; a new one is newer than
    every registered version of the group."""
    newest = max((FeatureGroup.from_json(g).version for gid, g in registered.items()
                  if gid.startswith(group.base_id + "@v")), default=0)
    if old is not None:
        if FeatureGroup.from_json(old).to_json() != group.to_json():
            raise RegistryError(f"embedding group {group.id} is registered differently; a version is never "
                                f"overwritten: register the new training as version={newest + 1}")
    elif newest > group.version:
        raise RegistryError(f"embedding group {group.base_id} already has version {newest}; register the new "
                            f"training as version={newest + 1}")


def _check_event_keys(group: FeatureGroup, keys: dict[str, str]) -> None:
    """A stream group's events carry its entity's key columns, with the keys' types."""
    schema = group.source.schema
    for col, t in keys.items():
        if col not in schema:
            raise RegistryError(f"stream group {group.id}: its events have no column {col!r}, the key of entity "
                                f"{group.entity!r}; add it to the source's schema (as {t!r})")
        if schema[col] != t:
            raise RegistryError(f"stream group {group.id}: event column {col!r} is {schema[col]} but the key "
                                f"{col!r} of entity {group.entity!r} is {t}")


class Registry:
    """The registry of one feature store root: a Delta table read and written without Spark
    (``palette.registry_table``)."""

    def __init__(self, root: str | os.PathLike):
        self.root = str(root)
        self.table = RegistryTable(self.root, FORMAT_VERSION)

    # -- persistence -------------------------------------------------------------
    def _load(self) -> dict:
        return self.table.load()[1]

    def export(self) -> str:
        """The registry as sorted, indented JSON, for review and version control."""
        return self.table.export()

    # -- declaring -----------------------------------------------------------------
    def register(self, *objects: Entity | FeatureGroup) -> None:
        """Register entities and feature groups. The same definition again is a no-op; an
        incompatible change (a feature's type, a removed feature, keys) is refused, naming it."""
        def change(data):
            for obj in sorted(objects, key=lambda o: isinstance(o, FeatureGroup)):
                if isinstance(obj, Entity):
                    old = data["entities"].get(obj.name)
                    old_keys = Entity(**old).join_keys if old is not None else None
                    if old_keys is not None and list(old_keys.items()) != list(obj.join_keys.items()):
                        raise RegistryError(f"entity {obj.name!r} is registered with join keys "
                                            f"{old_keys}; refusing to change them to {obj.join_keys}")
                    data["entities"][obj.name] = obj.to_json()
                elif isinstance(obj, FeatureGroup):
                    if obj.entity not in data["entities"]:
                        raise NotRegistered(f"feature group {obj.id} names entity {obj.entity!r}, which "
                                            "is not registered" + suggest(obj.entity, data["entities"]))
                    keys = Entity(**data["entities"][obj.entity]).join_keys
                    if obj.source is not None:
                        _check_event_keys(obj, keys)
                    if obj.fetcher is not None:
                        obj.fetcher.check(obj.id, {f.name: f.type for f in obj.features}, keys)
                    clash = [f.name for f in obj.features if f.name in keys or f.name == obj.timestamp_col]
                    if clash or obj.timestamp_col in keys:
                        raise RegistryError(f"feature group {obj.id}: {', '.join(clash or [obj.timestamp_col])} "
                                            "would collide with a join key or the timestamp column")
                    old = data["feature_groups"].get(obj.id)
                    _check_names_apart(obj, data["feature_groups"])
                    if obj.version is not None:
                        _check_new_version(obj, old, data["feature_groups"])
                    elif old is not None:
                        problems = _diff_group(FeatureGroup.from_json(old), obj)
                        if problems:
                            raise RegistryError(f"feature group {obj.id} is registered differently: "
                                                f"{'; '.join(problems)}. Register the new definition under "
                                                "a new group name (or a new feature name)")
                    data["feature_groups"][obj.id] = obj.to_json()
                else:
                    raise RegistryError(f"cannot register {type(obj).__name__}; register Entity or FeatureGroup")
        self.table.update(change)

    def record_usage(self, model: str, refs: list[str]) -> None:
        """Remember that the saved pipeline at ``model`` reads these feature refs."""
        self.table.update(lambda data: data["usage"].__setitem__(str(model), sorted(set(refs))))

    # -- reading ---------------------------------------------------------------------
    def entities(self) -> dict[str, Entity]:
        return {n: Entity(**e) for n, e in self._load()["entities"].items()}

    def groups(self) -> dict[str, FeatureGroup]:
        return {gid: FeatureGroup.from_json(g) for gid, g in self._load()["feature_groups"].items()}

    def usage(self) -> dict[str, list[str]]:
        return {model: list(refs) for model, refs in self._load()["usage"].items()}

    def entity(self, name: str) -> Entity:
        ents = self.entities()
        if name not in ents:
            raise NotRegistered(f"unknown entity {name!r}" + suggest(name, ents))
        return ents[name]

    def group(self, group_id: str) -> FeatureGroup:
        """A group by id; an embedding group's ``entity:name`` is its newest version
        (``entity:name@vN`` names one)."""
        groups = self.groups()
        found = newest_version(groups, group_id)
        if found is not None:
            return found
        if group_id not in groups:
            entity = group_id.split(":")[0]
            if ":" in group_id and entity not in self.entities():
                raise NotRegistered(f"unknown entity {entity!r} in {group_id!r}" + suggest(entity, self.entities()))
            raise NotRegistered(f"unknown feature group {group_id!r}" + suggest(group_id, groups))
        return groups[group_id]


def migrate_registry(root: str | os.PathLike) -> int:
    """Move the ``registry.json`` of an older palette into the registry table, once
    (``palette registry migrate --store ROOT``). Returns the number of definitions moved."""
    def check(data):
        data["entities"] = {name: Entity(**e).to_json() for name, e in data["entities"].items()}
        data["feature_groups"] = {gid: FeatureGroup.from_json(g).to_json() for gid, g in data["feature_groups"].items()}
    return migrate(str(root), FORMAT_VERSION, check)
