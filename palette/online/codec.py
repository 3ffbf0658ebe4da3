"""How the online stores encode keys and feature values: exact, compact, no pickles.

A stored record is one byte string::

    count:u16  null bitmap (ceil(count / 8) bytes)  value per feature, in layout order

where a ``num`` is an IEEE float64 (8 bytes: -0.0, NaN, infinities and subnormals come
back bit for bit), a ``bool`` one byte, a ``ts`` int64 microseconds since the epoch
(UTC), a ``str`` a u32 byte length and its UTF-8 bytes, and a ``vector(d)`` its d
elements in its storage form: float32 (4d bytes), float64, float16 (2d bytes) or int8 (a
float32 scale and d bytes: element = int8 × scale; ``palette.embeddings.quantize`` encodes it).
A vector is read back as a float64 numpy array in one numpy call, whatever its storage.
A null keeps its slot (zeros) and sets its bit. Values are little-endian and in the group's layout order, which only
grows at the end (the registry allows adding features, never removing or retyping one):
a reader decodes the first features it knows of a longer record, and reads the missing
trailing features of a shorter one as null.

>>> c = RecordCodec(["num", "str", "bool"])
>>> c.decode(c.encode((-0.0, "é", None)))
(-0.0, 'é', None)
>>> RecordCodec(["num", "str", "bool", "num"]).decode(c.encode((1.5, "x", True)))
(1.5, 'x', True, None)
>>> v = RecordCodec(["vector(3, float16)", "num"])
>>> v.decode(v.encode(([0.5, -2.0, 0.1], 1.0)))
(array([ 0.5       , -2.        ,  0.09997559]), 1.0)
>>> encode_key(("r42",), ("str",)), encode_key((7, "a"), ("int", "str"))
('r42', '[7,"a"]')
"""
from __future__ import annotations

import json
import struct
from datetime import datetime, timedelta, timezone
from numbers import Integral

import numpy as np

from palette.errors import InvalidArgument, InvalidArgumentType, OnlineSchemaMismatch
from palette.feature_types import TYPES

_COUNT = struct.Struct("<H")
_LEN = struct.Struct("<I")
# Fixed-size types: their struct code and a null's slot value (palette.feature_types).
_FIXED = {name: t.online for name, t in TYPES.items() if t.online is not None}
_ZERO = {name: t.online_null for name, t in TYPES.items() if t.online is not None}
_SCALE = struct.Struct("<f")
_ELEMENT = {"float32": "<f4", "float64": "<f8", "float16": "<f2"}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)


def micros(value) -> int:
    """A timestamp as int microseconds since the epoch: a datetime (naive is UTC, as
    the DSL defines timestamps) or an int already in microseconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return (value - EPOCH) // _MICRO
    if isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    raise InvalidArgumentType(f"a timestamp must be a datetime or int microseconds, got {type(value).__name__} {value!r}")


def from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


class EncodedVector(bytes):
    """A vector already in its online form (``RecordCodec.encode_columns`` encodes a whole
    column of them with one matrix call)."""


def encode_vector(v, t) -> bytes:
    """A vector in its storage form (``t``: its FeatureType); a null is zeros."""
    if v is None:
        return bytes(t.online_bytes)
    if isinstance(v, EncodedVector):
        return v
    if hasattr(v, "toArray") and not isinstance(v, np.ndarray):
        v = v.toArray()
    if np.size(v) != t.dim:                  # a wrong length would shift every value after it
        raise InvalidArgument(f"a {t.name} value holds {np.size(v)} numbers, not {t.dim}")
    if t.storage in ("int8", "float16"):     # the codecs of compress (float16 saturates at ±65504)
        from palette.embeddings.quantize import CODECS
        return CODECS[t.storage].encode(np.asarray(v, dtype=np.float32).reshape(1, -1)).tobytes()
    return np.asarray(v, dtype=_ELEMENT[t.storage]).tobytes()


def decode_vector(buf, offset: int, t) -> np.ndarray:
    """The vector at ``offset`` of ``buf`` as float64 (``t``: its FeatureType)."""
    if t.storage == "int8":                   # palette.embeddings.quantize's row layout, read in place
        (scale,) = _SCALE.unpack_from(buf, offset)
        q = np.frombuffer(buf, dtype=np.int8, count=t.dim, offset=offset + 4)
        return (q.astype(np.float32) * np.float32(scale)).astype(np.float64)
    return np.frombuffer(buf, dtype=_ELEMENT[t.storage], count=t.dim, offset=offset).astype(np.float64)


def _plan(types: tuple[str, ...]) -> list[tuple]:
    """Decoding steps for records holding ``types``: runs of fixed-size values read with
    one struct each, and strings and vectors in between."""
    steps, run, idx = [], "", []
    for i, t in enumerate(types):
        if t == "str" or TYPES[t].dim is not None:
            if run:
                steps.append(("fixed", struct.Struct("<" + run), tuple(idx)))
                run, idx = "", []
            steps.append(("str", None, (i,)) if t == "str" else ("vec", TYPES[t], (i,)))
        else:
            run += _FIXED[t]
            idx.append(i)
    if run:
        steps.append(("fixed", struct.Struct("<" + run), tuple(idx)))
    return steps


class RecordCodec:
    """Encodes and decodes the values of one feature group's layout (feature types in
    storage order)."""

    def __init__(self, types):
        self.types = tuple(types)
        for t in self.types:
            if t not in TYPES:
                raise OnlineSchemaMismatch(f"unknown feature type {t!r}: the online codec stores "
                                           f"{', '.join(TYPES)}")
        self.n = len(self.types)
        self._ts = tuple(i for i, t in enumerate(self.types) if t == "ts")
        self._vectors = {i: TYPES[t] for i, t in enumerate(self.types) if TYPES[t].dim is not None}
        self._plans: dict[int, list[tuple]] = {}      # record's count -> steps for min(count, n) values
        self._bitmap_bytes = (self.n + 7) // 8
        self._fixed = self._fixed_layout()
        # The same record as one struct: count, bitmap bytes, values.
        self._values_at = 1 + self._bitmap_bytes
        self._whole = None if self._fixed is None else struct.Struct(
            "<H" + "B" * self._bitmap_bytes + "".join(_FIXED[t] for t in self.types))

    # -- writing ----------------------------------------------------------------------
    def encode(self, values) -> bytes:
        n = self.n
        if len(values) != n:
            raise InvalidArgument(f"a record of this layout holds {n} values, got {len(values)}")
        bitmap = bytearray((n + 7) // 8)
        parts = [b""]
        run, run_values = "", []
        for i, (t, v) in enumerate(zip(self.types, values)):
            if v is None:
                bitmap[i >> 3] |= 1 << (i & 7)
            if t == "str" or i in self._vectors:
                if run:
                    parts.append(struct.pack("<" + run, *run_values))
                    run, run_values = "", []
                if i in self._vectors:
                    parts.append(encode_vector(v, self._vectors[i]))
                    continue
                data = b"" if v is None else str(v).encode("utf-8")
                parts.append(_LEN.pack(len(data)))
                parts.append(data)
                continue
            run += _FIXED[t]
            if v is None:
                run_values.append(_ZERO[t])
            elif t == "num":
                run_values.append(float(v))
            elif t == "bool":
                run_values.append(bool(v))
            else:
                run_values.append(micros(v))
        if run:
            parts.append(struct.pack("<" + run, *run_values))
        parts[0] = _COUNT.pack(n) + bytes(bitmap)
        return b"".join(parts)

    def encode_columns(self, columns: list[list]) -> list[list]:
        """``columns`` (one list per feature, layout order) with each quantized vector column
        (float16, int8) encoded with one matrix call of its codec, as ``EncodedVector``s
        ``encode`` passes through: a row at a time, the codec's numpy calls cost ~25 µs."""
        out = list(columns)
        for i, t in self._vectors.items():
            if t.storage not in ("float16", "int8"):
                continue
            col = columns[i]
            rows = [j for j, v in enumerate(col) if v is not None and not isinstance(v, EncodedVector)]
            if not rows:
                continue
            from palette.embeddings.quantize import CODECS
            vectors = [np.asarray(col[j].toArray() if hasattr(col[j], "toArray") else col[j], np.float32)
                       for j in rows]
            for j, v in zip(rows, vectors):
                if v.size != t.dim or not np.isfinite(v).all():
                    raise InvalidArgument(f"row {j}: a {t.name} value must be {t.dim} finite numbers")
            encoded = CODECS[t.storage].encode(np.stack(vectors))
            new = list(col)
            for j, b in zip(rows, encoded):
                new[j] = EncodedVector(b.tobytes())
            out[i] = new
        return out

    # -- reading ----------------------------------------------------------------------
    def decode(self, buf: bytes) -> tuple:
        """The values of ``buf``, one per feature of this layout (timestamps as UTC
        datetimes)."""
        whole = self._whole
        if whole is not None and len(buf) == whole.size:     # numbers and booleans, no null: one unpack
            values = whole.unpack(buf)
            if values[0] == self.n and not any(values[1:self._values_at]):
                return values[self._values_at:]
        (count,) = _COUNT.unpack_from(buf, 0)
        plan = self._plans.get(count)
        if plan is None:
            plan = self._plans[count] = _plan(self.types[:min(count, self.n)])
        out = [None] * self.n
        offset = 2 + (count + 7) // 8
        for kind, st, idx in plan:
            if kind == "fixed":
                for i, v in zip(idx, st.unpack_from(buf, offset)):
                    out[i] = v
                offset += st.size
            elif kind == "vec":
                out[idx[0]] = decode_vector(buf, offset, st)
                offset += st.online_bytes
            else:
                (length,) = _LEN.unpack_from(buf, offset)
                offset += 4
                out[idx[0]] = buf[offset:offset + length].decode("utf-8")
                offset += length
        bitmap = buf[2:2 + (count + 7) // 8]
        if any(bitmap):
            for i in range(min(count, self.n)):
                if bitmap[i >> 3] >> (i & 7) & 1:
                    out[i] = None
        for i in self._ts:
            if out[i] is not None:
                out[i] = from_micros(out[i])
        return tuple(out)


    def decode_many(self, payloads: list[bytes]) -> list[tuple]:
        """``decode`` of each payload. Records of fixed-size values only (no ``str``) that
        all hold this layout's count are read with one numpy call; a record with a null,
        a timestamp or another count goes through ``decode``."""
        if self._fixed is None or len(payloads) < 8:
            return [self.decode(p) for p in payloads]
        dtype, size = self._fixed
        buf = b"".join(payloads)
        if len(buf) != size * len(payloads):
            return [self.decode(p) for p in payloads]
        arr = np.frombuffer(buf, dtype=dtype)
        if (arr["count"] != self.n).any():
            return [self.decode(p) for p in payloads]
        out = arr[list(dtype.names[2:])].tolist()
        for i in np.flatnonzero(arr["nulls"].any(axis=1) if self._bitmap_bytes > 1 else arr["nulls"]).tolist():
            out[i] = self.decode(payloads[i])
        return out

    def _fixed_layout(self):
        """(numpy dtype, record size) of a record whose values are all numbers or booleans."""
        if not self.n or any(t not in ("num", "bool") for t in self.types):
            return None
        fields = [("count", "<u2"), ("nulls", "u1", (self._bitmap_bytes,)) if self._bitmap_bytes > 1
                  else ("nulls", "u1")]
        fields += [(f"v{i}", "<f8" if t == "num" else "?") for i, t in enumerate(self.types)]
        dtype = np.dtype(fields)
        return dtype, dtype.itemsize


# -- keys ---------------------------------------------------------------------------------

def encode_key(values: tuple, types: tuple[str, ...]) -> str:
    """An entity key as stored: the value itself for one key column, a JSON array for a
    composite key (unambiguous whatever the strings hold). Values must already have the
    key's types (``check_key`` in the runtime)."""
    if len(values) == 1:
        v = values[0]
        return v if types[0] == "str" else str(int(v))
    return json.dumps([v if t == "str" else int(v) for v, t in zip(values, types)],
                      separators=(",", ":"), ensure_ascii=False)


__all__ = ["RecordCodec", "EncodedVector", "encode_key", "micros", "from_micros", "EPOCH"]
