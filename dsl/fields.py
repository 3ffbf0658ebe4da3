"""Where a ``Read`` takes its value from: the name of a row field / DataFrame column."""
from __future__ import annotations

from .ast import Read
from .errors import DSLUnsupportedError


def default_field(read: Read) -> str:
    """Basis fields and columns are read by name; palette features need a lookup stage."""
    ref = read.parsed
    if ref.kind == "palette":
        raise DSLUnsupportedError(
            f"{read} reads the palette feature {ref}, which a plain expression cannot look up: put the "
            "expression in a DSL stage (its transform looks it up in the offline store, its scoreInstance "
            "and load_scorer in the online store), or read a basis field or a column instead")
    return ref.name
