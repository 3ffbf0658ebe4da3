"""Lookup planning: which feature groups a stage reads, by which key columns.

One plan, two executions. ``palette.offline.point_in_time_lookup`` runs it on Spark (one
as-of sort per key tuple, point in time); the JVM-free runtime runs it against an online
store (``palette.transformers.runtime.online_lookups``: latest values, one round trip per
dependency level). Both start here, so a ref resolves
to the same group, features and key columns on both paths, and both apply the same
max-age rule (``within_max_age``).

A saved stage carries the ``Definitions`` (entities and groups) of what it reads, so a
serving process needs the model directory and an online store, and no registry.

>>> from palette.registry import Entity, FeatureGroup
>>> defs = Definitions.of([Entity("restaurant", {"r_id": "str"})],
...                       [FeatureGroup("restaurant", "batch_fg", {"prep_time": "num", "cuisine": "str"})])
>>> [(r.group.id, r.join_keys, r.outputs) for r in plan_reads(
...     {"prep": "@palette:restaurant:batch_fg:prep_time:r_id",
...      "c": "restaurant:batch_fg:cuisine:r_id"}, defs.resolve)]
[('restaurant:batch_fg', ('r_id',), (('prep', 'prep_time'), ('c', 'cuisine')))]
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Iterable

from .errors import FeatureLookupError, NotRegistered
from .refs import Ref, parse_ref
from .registry import Entity, FeatureGroup, newest_version, suggest

Resolver = Callable[["str | Ref"], "tuple[Entity, FeatureGroup, Ref]"]


def resolve_ref(ref: str | Ref, entity: Callable[[str], Entity],
                group: Callable[[str], FeatureGroup]) -> tuple[Entity, FeatureGroup, Ref]:
    """A palette reference checked against entity and group definitions; errors name the
    closest defined names and, for a key of the wrong arity, the right spelling."""
    r = parse_ref(ref) if isinstance(ref, str) else ref
    if r.kind != "palette":
        raise FeatureLookupError(f"{ref!r} is not a palette reference "
                                 "('@palette:entity:feature_group:feature:join_key')")
    e = entity(r.entity)
    g = group(r.group_ref)
    g.feature(r.feature)
    if len(r.join_keys) != len(e.join_keys):
        keys = ",".join(e.join_keys)
        raise FeatureLookupError(
            f"{str(ref)!r} names {len(r.join_keys)} join key column(s) ({r.join_key}), but entity "
            f"{e.name!r} is keyed by {len(e.join_keys)} ({keys}): name one input column per key, in "
            f"that order, e.g. '{r.entity}:{r.group}:{r.feature}:{keys}'")
    return e, g, r


@dataclass(frozen=True)
class Definitions:
    """The entities and feature groups a stage reads, as saved with it."""
    entities: dict[str, Entity]
    groups: dict[str, FeatureGroup]

    @classmethod
    def of(cls, entities: Iterable[Entity], groups: Iterable[FeatureGroup]) -> "Definitions":
        return cls({e.name: e for e in entities}, {g.id: g for g in groups})

    def entity(self, name: str) -> Entity:
        if name not in self.entities:
            raise NotRegistered(f"unknown entity {name!r}" + suggest(name, self.entities))
        return self.entities[name]

    def group(self, group_id: str) -> FeatureGroup:
        """A group by id; an embedding group by ``entity:name`` is the version saved here."""
        found = newest_version(self.groups, group_id)
        if found is None:
            raise NotRegistered(f"unknown feature group {group_id!r}" + suggest(group_id, self.groups))
        return found

    def resolve(self, ref: str | Ref) -> tuple[Entity, FeatureGroup, Ref]:
        return resolve_ref(ref, self.entity, self.group)

    def to_json(self) -> dict:
        return {"entities": {n: e.to_json() for n, e in sorted(self.entities.items())},
                "groups": {gid: g.to_json() for gid, g in sorted(self.groups.items())}}

    @classmethod
    def from_json(cls, d: dict) -> "Definitions":
        return cls({n: Entity(**e) for n, e in d.get("entities", {}).items()},
                   {gid: FeatureGroup.from_json(g) for gid, g in d.get("groups", {}).items()})

    @classmethod
    def for_refs(cls, refs: Iterable[str], resolve: Resolver) -> "Definitions":
        """The definitions ``refs`` need, resolved (and so checked) by ``resolve``."""
        entities, groups = {}, {}
        for ref in refs:
            e, g, _ = resolve(ref)
            entities[e.name], groups[g.id] = e, g
        return cls(entities, groups)


@dataclass(frozen=True)
class GroupRead:
    """One feature group read by one tuple of input key columns, and the features wanted:
    ``outputs`` pairs (output column, feature)."""
    entity: Entity
    group: FeatureGroup
    join_keys: tuple[str, ...]
    outputs: tuple[tuple[str, str], ...]

    @property
    def features(self) -> tuple[str, ...]:
        """The features read, each once, in first-wanted order; of an RPC group, all of them
        (one call answers them all, and the served-feature log keeps what it answered)."""
        if self.group.kind == "rpc":
            return tuple(f.name for f in self.group.features)
        return tuple(dict.fromkeys(f for _, f in self.outputs))

    @property
    def key_types(self) -> tuple[str, ...]:
        return tuple(self.entity.join_keys.values())


def plan_reads(outputs: dict[str, str | Ref], resolve: Resolver) -> list[GroupRead]:
    """``{output column: palette ref}`` as reads: one per (group, key columns), in the
    order first named. Every ref is resolved, so an unknown name fails here."""
    reads: dict[tuple, dict] = {}
    for out, ref in outputs.items():
        entity, group, r = resolve(ref)
        slot = reads.setdefault((group.id, r.join_keys), {"entity": entity, "group": group, "outputs": []})
        slot["outputs"].append((out, r.feature))
    return [GroupRead(s["entity"], s["group"], keys, tuple(s["outputs"]))
            for (_, keys), s in reads.items()]


def auto_lookups(refs: Iterable[str], provided: dict[str, str]) -> dict[str, str]:
    """A DSL stage's own lookups: ``{temporary column: ref}`` for every ref in ``refs`` that
    no earlier stage provided (``provided``: ref -> column). The stage reads the values
    from these columns and drops them afterwards, on both paths."""
    missing = [r for r in sorted(set(refs)) if r not in provided]
    return {f"__palette_lookup_{i}": ref for i, ref in enumerate(missing)}


def check_readers(reads, looked_up: Iterable[str], resolve: Resolver, who: str) -> None:
    """A DSL expression reads a palette feature it looks up itself with the reader of the
    feature's type (``nVal`` a ``num`` ...: ``palette.feature_types``), on both paths; any
    other reader is refused here, naming the right one."""
    from .dsl.functions import READERS
    from .feature_types import feature_type
    wanted = set(looked_up)
    for r in reads:
        if r.parsed.kind != "palette" or r.ref not in wanted:
            continue
        _, group, ref = resolve(r.ref)
        ftype = group.feature(ref.feature).type
        dsl_type = feature_type(ftype).dsl
        if READERS[r.reader] != dsl_type:
            right = next(name for name, t in READERS.items() if t == dsl_type)
            raise FeatureLookupError(f"{who}: {r.reader}(\"{r.ref}\") reads {ref.feature} of {group.id}, a {ftype} "
                                     f"feature, as {READERS[r.reader]}: read it with {right}(\"{r.ref}\")")


def max_age_micros(group: FeatureGroup) -> int | None:
    return None if group.max_age is None else int(group.max_age / timedelta(microseconds=1))


def within_max_age(feature_micros: int, at_micros: int, max_age: int | None) -> bool:
    """The max-age rule both paths apply: a value of event time ``feature_micros`` counts
    at instant ``at_micros`` when it is at most ``max_age`` microseconds old (and, for the
    point-in-time path, not from the future, which the as-of join already ensures)."""
    return max_age is None or at_micros - feature_micros <= max_age


__all__ = ["Definitions", "GroupRead", "plan_reads", "resolve_ref", "auto_lookups", "check_readers", "within_max_age",
           "max_age_micros"]
