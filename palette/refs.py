"""References to values, as the DSL and PaletteTransformer spell them.

- ``@palette:entity:feature_group:feature:join_key`` (the ``@palette:`` prefix optional):
  a feature of the feature store, looked up by the entity key held in column ``join_key``;
  for an entity with a composite key, ``join_key`` lists one column per entity key, in
  the entity's key order, separated by commas (``…:qty:order_id,item_id``); an embedding
  group may name one version (``restaurant:dish_emb@v2:emb:r_id``; without it, the newest
  version when the stage first reads it);
- ``@basis:name`` or ``basis:name``: a field of the input row (the request, at serving);
- ``name``: a column produced earlier in the pipeline.

>>> parse_ref("@palette:restaurant:batch_fg:prep_time:r_id").feature
'prep_time'
>>> str(parse_ref("@basis:order_size"))
'basis:order_size'
>>> parse_ref("order_item:fg:qty:order_id,item_id").join_keys
('order_id', 'item_id')
>>> parse_ref("restaurant:dish_emb@v2:emb:r_id").group_ref
'restaurant:dish_emb@v2'
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from palette.errors import InvalidArgument

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_GROUP = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*(@v[1-9][0-9]*)?$")           # an embedding's version, optionally


@dataclass(frozen=True)
class Ref:
    kind: str                     # "palette" | "basis" | "column"
    name: str                     # the column / field name (the feature name for palette refs)
    entity: str | None = None
    group: str | None = None
    join_key: str | None = None

    @property
    def feature(self) -> str:
        return self.name

    @property
    def join_keys(self) -> tuple[str, ...]:
        """The input columns holding the entity key, one per key column of the entity."""
        return tuple(self.join_key.split(",")) if self.join_key else ()

    @property
    def group_ref(self) -> str:
        """``entity:feature_group`` of a palette reference."""
        return f"{self.entity}:{self.group}"

    def __str__(self) -> str:
        if self.kind == "palette":
            return f"{self.entity}:{self.group}:{self.name}:{self.join_key}"
        if self.kind == "basis":
            return f"basis:{self.name}"
        return self.name


def parse_ref(text: str) -> Ref:
    """Parse a reference; raises ValueError naming the accepted forms."""
    if not isinstance(text, str):
        raise InvalidArgument(f"a reference must be a string, got {type(text).__name__}")
    body = text[len("@palette:"):] if text.startswith("@palette:") else text
    parts = body.split(":")
    if len(parts) == 4 and _NAME.match(parts[0]) and _GROUP.match(parts[1]) and _NAME.match(parts[2]) and \
            all(_NAME.match(k.strip()) for k in parts[3].split(",")):
        entity, group, feature, key = parts
        return Ref("palette", feature, entity, group, ",".join(k.strip() for k in key.split(",")))
    if len(parts) == 2 and parts[0] in ("basis", "@basis") and _NAME.match(parts[1]):
        return Ref("basis", parts[1])
    if len(parts) == 1 and not text.startswith("@") and _NAME.match(text):
        return Ref("column", text)
    raise InvalidArgument(
        f"malformed reference {text!r}: expected '@palette:entity:feature_group:feature:join_key' "
        "(join_key: one column, or key1,key2 for a composite key), '@basis:name' or a column name"
    )
