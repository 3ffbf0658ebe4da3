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
>>> feature_type("vector")
Traceback (most recent call last):
...
palette.errors.RegistryError: unknown feature type 'vector': use one of num, str, bool, ts
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from numbers import Integral, Real
from typing import Any, Callable

from .errors import InvalidArgument, RegistryError


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
    profile: str = "num"               # how monitoring profiles its values: "num" (moments, quantiles) or "cat"

    def __repr__(self) -> str:
        return f"FeatureType({self.name!r})"

    def arrow_type(self):
        """The pyarrow type (pyarrow is a core dependency; imported when asked for)."""
        import pyarrow as pa
        return pa.timestamp("us", tz="UTC") if self.arrow == "timestamp" else getattr(pa, self.arrow)()


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
FEATURE_TYPES = tuple(TYPES)

# Entity keys: strings or integers (the online stores encode them as text either way).
KEYS: dict[str, FeatureType] = {"str": _STR, "int": FeatureType(
    "int", "bigint", "int64", "q", 0, "integer", "long", "num", "an integer", _int, _int, int)}
KEY_TYPES = tuple(KEYS)


def feature_type(name: str) -> FeatureType:
    """The type named ``name``; an unknown name raises ``RegistryError`` listing the known ones."""
    t = TYPES.get(name)
    if t is None:
        raise RegistryError(f"unknown feature type {name!r}: use one of {', '.join(TYPES)}")
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


__all__ = ["FeatureType", "TYPES", "FEATURE_TYPES", "KEYS", "KEY_TYPES", "feature_type", "key_type", "field_type"]
