"""The one table of feature types: each type's name and its forms everywhere a value goes.

A feature's type says, in one place, how its values are held by Spark (the Delta column),
by Arrow (served-feature logs, the JVM-free runtime's batches), in the online stores (a
fixed-size struct code, or a length-prefixed string), in JSON (HTTP requests and
responses), in MLflow signatures, and by the DSL (``nVal`` reads a ``num``, and so on),
and which Python values a caller may send for it. Every module asks this table: adding a
type is one entry here.

>>> feature_type("num").spark, feature_type("num").online, feature_type("num").accepts(3)
('double', 'd', True)
>>> feature_type("str").accepts(3), feature_type("bool").describe
(False, 'true or false')

A ``vector(d)`` is a family: one entry, any fixed dimension ``d``, held as float32 (or
``vector(d, float64)``); its online form may be narrower (``vector(d, float16)``, ``vector(d,
int8)``: what ``palette embeddings compress`` writes), its Spark form stays ``array<float>``:

>>> v = feature_type("vector(3)")
>>> v.spark, v.dsl, v.accepts([1, 2, 3.5]), v.accepts([1, 2]), v.accepts([1, 2, float("nan")])
('array<float>', 'vec', True, False, False)
>>> feature_type("vector(3, int8)").online_bytes, feature_type("vector(3, float64)").spark
(7, 'array<double>')
>>> feature_type("vector")
Traceback (most recent call last):
...
palette.errors.RegistryError: unknown feature type 'vector': use one of num, str, bool, ts, vector(d) (a dimension is needed, e.g. vector(128))
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from numbers import Integral, Real
from typing import Any, Callable

import re

from .errors import InvalidArgument, RegistryError, UnknownFeatureType


def _number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


@dataclass(frozen=True)
class FeatureType:
    """One feature type and its forms (see the module docstring)."""
    name: str
    spark: str                         # Spark SQL type of the Delta column
    arrow: str                         # Arrow type name (pyarrow.<arrow>())
    online: str | None                 # struct code of the online encoding, None: length-prefixed UTF-8
    online_null: Any                   # what a null's slot holds in the online encoding
    json: str                          # its JSON form
    mlflow: str                        # MLflow ColSpec type
    dsl: str                           # the DSL type (what nVal / sVal / bVal / tVal read)
    describe: str                      # "a number": for messages that tell a caller what to send
    accepts: Callable[[Any], bool]     # a value a caller may send in a request (None aside)
    holds: Callable[[Any], bool]       # a value a row may hold for it, as written to a store
    from_text: Callable[[str], Any] = str   # its value from text (a CSV cell); ValueError if it is none
    from_json: Callable[[Any], Any] = None   # its value from a decoded JSON answer; ValueError (InvalidArgument) if none
    profile: str | None = "num"        # how monitoring profiles its values: "num" (moments, quantiles), "cat", None (not)
    dim: int | None = None             # a vector's dimension (None: a scalar type)
    storage: str | None = None         # a vector's online element form: float32, float64, float16, int8 (+ a scale)

    def __repr__(self) -> str:
        return f"FeatureType({self.name!r})"

    def arrow_type(self):
        """The pyarrow type (pyarrow is a core dependency; imported when asked for)."""
        import pyarrow as pa
        if self.arrow.startswith("list<"):
            return pa.list_(getattr(pa, self.arrow[5:-1])())
        return pa.timestamp("us", tz="UTC") if self.arrow == "timestamp" else getattr(pa, self.arrow)()

    @property
    def slot(self) -> str:
        """The family's name: ``vector`` for every ``vector(d, ...)``, else the name itself
        (served-feature logs keep one slot per family)."""
        return "vector" if self.dim is not None else self.name

    @property
    def online_bytes(self) -> int | None:
        """A vector's size in the online encoding (int8: a float32 scale and d bytes)."""
        if self.dim is None:
            return None
        return 4 + self.dim if self.storage == "int8" else self.dim * _VECTOR_BYTES[self.storage]


def _int(v) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _str(v) -> bool:
    return isinstance(v, str)


def _bool(v) -> bool:
    return isinstance(v, bool)


def _bool_text(v: str) -> bool:
    low = v.strip().lower()
    if low not in ("true", "false", "1", "0"):
        raise InvalidArgument(f"not true or false: {v!r}")
    return low in ("true", "1")


def _checked(ok: Callable[[Any], bool], convert: Callable[[Any], Any] = lambda v: v) -> Callable[[Any], Any]:
    def from_json(v):
        if not ok(v):
            raise InvalidArgument(f"{type(v).__name__} {v!r}"[:120])
        return convert(v)
    return from_json


def _ts_json(v) -> datetime:
    """A timestamp in JSON: an ISO 8601 string (UTC unless it says otherwise)."""
    from datetime import timezone
    if not isinstance(v, str):
        raise InvalidArgument(f"{type(v).__name__} {v!r}, not an ISO 8601 string"[:120])
    t = datetime.fromisoformat(v[:-1] + "+00:00" if v.endswith("Z") else v)
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


_STR = FeatureType("str", "string", "string", None, "", "string", "string", "str", "a string", _str, _str,
                   from_json=_checked(_str), profile="cat")

TYPES: dict[str, FeatureType] = {t.name: t for t in (
    FeatureType("num", "double", "float64", "d", 0.0, "number", "double", "num", "a number", _number, _number,
                float, _checked(_number, float)),
    _STR,
    FeatureType("bool", "boolean", "bool_", "?", False, "true or false", "boolean", "bool", "true or false",
                _bool, _bool, _bool_text, _checked(_bool), profile="cat"),
    FeatureType("ts", "timestamp", "timestamp", "q", 0, "string (ISO 8601)", "datetime", "ts",
                "an ISO 8601 timestamp", lambda v: isinstance(v, (str, datetime)),
                lambda v: isinstance(v, datetime) or _int(v),         # a datetime, or µs since the epoch
                from_json=_ts_json),
)}

# -- vectors: one family entry, any dimension -------------------------------------------------
_VECTOR = re.compile(r"^vector\((\d+)(?:,\s*(float32|float64|float16|int8))?\)$")
_VECTOR_BYTES = {"float32": 4, "float64": 8, "float16": 2}
MAX_DIM = 65536


FLOAT32_MAX = 3.4028234663852886e38


def _finite_vector(dim: int, wide: bool = False) -> Callable[[Any], bool]:
    """``dim`` finite numbers; unless ``wide`` (float64), within float32's range."""
    import math
    top = math.inf if wide else FLOAT32_MAX

    def ok(v) -> bool:
        if hasattr(v, "toArray") and not isinstance(v, (list, tuple)):
            v = v.toArray()
        if getattr(v, "ndim", 1) != 1 or isinstance(v, (str, bytes, dict)) or not hasattr(v, "__len__"):
            return False
        if len(v) != dim:
            return False
        if hasattr(v, "dtype"):
            import numpy as np
            return v.dtype.kind in "fiu" and bool(np.isfinite(v).all()) and bool((np.abs(v) <= top).all())
        return all(_number(x) and math.isfinite(x) and abs(x) <= top for x in v)
    return ok


def _vector_json(dim: int, dtype: str):
    ok = _finite_vector(dim, dtype == "float64")

    def from_json(v):
        if not ok(v):
            what = f"{len(v)} values" if isinstance(v, list) else type(v).__name__
            raise InvalidArgument(f"{what}, not {dim} finite numbers"[:120])
        import numpy as np
        return np.asarray(v, dtype=dtype)
    return from_json


def _vector_text(dim: int, dtype: str):
    parse = _vector_json(dim, dtype)

    def from_text(v: str):
        import json
        try:
            return parse(json.loads(v))
        except ValueError as e:
            raise InvalidArgument(f"not a JSON array of {dim} numbers: {v[:60]!r}") from e
    return from_text


def vector_type(dim: int, storage: str = "float32") -> FeatureType:
    """``vector(dim)``: ``dim`` finite numbers; Spark ``array<float>`` (``array<double>`` for
    float64), JSON an array, the DSL's ``vec``. ``storage`` is the online element form."""
    if not 1 <= dim <= MAX_DIM:
        raise RegistryError(f"vector({dim}): a dimension is between 1 and {MAX_DIM}")
    name = f"vector({dim})" if storage == "float32" else f"vector({dim}, {storage})"
    wide = storage == "float64"
    dtype = "float64" if wide else "float32"
    ok = _finite_vector(dim, wide)
    return FeatureType(name, "array<double>" if wide else "array<float>", f"list<{dtype}>", None, None,
                       f"array of {dim} numbers", "tensor", "vec", f"an array of {dim} finite numbers", ok, ok,
                       _vector_text(dim, dtype), _vector_json(dim, dtype), profile=None, dim=dim, storage=storage)


class _Types(dict):
    """The table: the scalar entries by name, and the vector family by any ``vector(d, ...)``
    spelling. Iterating gives the scalar names."""

    def __missing__(self, name):
        m = _VECTOR.match(name) if isinstance(name, str) else None
        if m is None:
            raise UnknownFeatureType(name)
        return vector_type(int(m.group(1)), m.group(2) or "float32")

    def __contains__(self, name) -> bool:
        return self.get(name) is not None

    def get(self, name, default=None):
        """The type, or ``default`` for a name that is none (a ``vector(0)`` raises: its
        error says what a dimension may be)."""
        try:
            return self[name]
        except UnknownFeatureType:
            return default
        except TypeError:                    # an unhashable name
            return default


TYPES = _Types(TYPES)
FEATURE_TYPES = (*(n for n in TYPES), "vector(d)")
# One slot per family where a record keeps a value of any type (served-feature logs): the
# scalar types, and every vector as float64 (float32 values widen exactly).
SLOTS: dict[str, FeatureType] = {**TYPES, "vector": vector_type(1, "float64")}

# Entity keys: strings or integers (the online stores encode them as text either way).
KEYS: dict[str, FeatureType] = {"str": _STR, "int": FeatureType(
    "int", "bigint", "int64", "q", 0, "integer", "long", "num", "an integer", _int, _int, int)}
KEY_TYPES = tuple(KEYS)


def feature_type(name: str) -> FeatureType:
    """The type named ``name``; an unknown name raises ``RegistryError`` listing the known ones."""
    t = TYPES.get(name)
    if t is None:
        hint = " (a dimension is needed, e.g. vector(128))" if str(name).startswith("vector") else ""
        raise RegistryError(f"unknown feature type {name!r}: use one of {', '.join(FEATURE_TYPES)}{hint}")
    return t


def key_type(name: str) -> FeatureType:
    t = KEYS.get(name)
    if t is None:
        raise RegistryError(f"unknown key type {name!r}: use one of {', '.join(KEYS)}")
    return t


def field_type(kind: str) -> FeatureType | None:
    """The type of a request field a stage reads: a feature type, a key type (``int``), or
    None for ``any`` (the stage checks it itself)."""
    return TYPES.get(kind) or KEYS.get(kind)


__all__ = ["FeatureType", "TYPES", "FEATURE_TYPES", "SLOTS", "vector_type", "MAX_DIM", "KEYS", "KEY_TYPES", "feature_type", "key_type", "field_type"]
