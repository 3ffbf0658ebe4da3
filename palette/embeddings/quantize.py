"""Row-wise codecs for embedding tables, and the top-k cut that goes with them.

Two codecs over a float32 matrix of shape (n, d), each row encoded on its own into a
fixed number of bytes (``Codec.row_bytes(d)``), vectorised over all rows:

* ``float16`` — d little-endian IEEE half floats (2·d bytes). Values are first clipped
  to ±65504 (the largest finite half), so a huge value saturates instead of becoming
  infinity. Error bound, per element v: ``|decode - v| <= 2**-11 * |v|`` when
  ``2**-14 <= |v| <= 65504`` (normal half range: round to nearest, unit roundoff 2^-11);
  ``|decode - v| <= 2**-25`` below it (half subnormals are spaced 2^-24).
* ``int8`` — a 4-byte little-endian float32 scale, then d int8 codes (4 + d bytes).
  ``scale = max|v| / 127`` (0 for a zero row), ``q = rint(v / scale)`` clipped to
  [-127, 127], ``decode = q.astype(float32) * scale``. The quotient is taken in float64,
  which rounds exactly like the real quotient, so the code's real value ``q * scale`` is
  within ``scale / 2`` of v. The float32 product ``decode`` adds at most half an ulp of
  itself, so per element ``|decode - v| <= scale * (1/2 + 2**-17)``.
  The scale is ``max|v| / 127`` rounded to the nearest float32, with two exceptions so
  that ``|v| / scale <= 127.5`` always holds (the clip never bites) and ``127 * scale``
  stays finite: a subnormal scale (rows whose max|v| is below ~1.5e-36) is rounded up
  where the nearest one would leave ``max|v| / scale`` above 127.5, and a scale whose
  ``127 * scale`` would overflow float32 (a row holding ~3.4e38) is stepped down one ulp.

Both codecs refuse NaN and infinite values (``ValueError``): neither has a meaningful
code for them.

``fixed_point(M, codec)`` iterates ``decode(encode(·))`` until every row is bitwise
stable, so a table holding those float32 values re-encodes to exactly the same values
(the offline store holds them; the online store re-encodes them). float16 is stable
after one round trip, and so is int8 for every row whose scale is a normal float32; rows
whose largest value is below ~1.5e-36 (a subnormal scale, coarse) can need a second one.

``top_k(keys, counts, k)`` picks the entities to keep (largest count first, ties by the
smaller key) and ``unk_vector(M, kept_mask)`` is the mean of the dropped rows.

>>> import numpy as np
>>> M = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0]], dtype=np.float32)
>>> b = encode_int8(M)
>>> b.shape, b.dtype
((2, 7), dtype('uint8'))
>>> decode_int8(b).tolist()
[[0.5039370059967041, -1.0, 0.25196850299835205], [0.0, 0.0, 0.0]]
>>> F = fixed_point(M, "int8")
>>> bool(np.array_equal(decode_int8(encode_int8(F)), F))
True
>>> decode_float16(encode_float16(M))[0].tolist()
[0.5, -1.0, 0.25]
>>> top_k(np.array(["c", "a", "b"]), np.array([5, 7, 5]), 2).tolist()
[1, 2]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from palette.errors import InvalidArgument, PaletteError

__all__ = [
    "Codec",
    "CODECS",
    "FLOAT16",
    "INT8",
    "decode_float16",
    "decode_int8",
    "encode_float16",
    "encode_int8",
    "fixed_point",
    "int8_scales",
    "top_k",
    "unk_vector",
]

CHUNK_ROWS = 65536
F16_MAX = float(np.finfo(np.float16).max)  # 65504
F32_TINY_NORMAL = np.float32(2.0**-126)
F16_REL_ERROR = 2.0**-11
F16_SUBNORMAL_ABS_ERROR = 2.0**-25
INT8_DECODE_SLACK = 2.0**-17  # |decode - v| <= scale * (1/2 + INT8_DECODE_SLACK)


def _matrix(M) -> np.ndarray:
    M = np.asarray(M)
    if M.ndim != 2:
        raise InvalidArgument(f"expected a 2-D matrix (n, d), got shape {M.shape}")
    if not np.issubdtype(M.dtype, np.floating) and not np.issubdtype(M.dtype, np.integer):
        raise InvalidArgument(f"expected a numeric matrix, got dtype {M.dtype}")
    return np.asarray(M, dtype=np.float32)


def _check_finite(chunk: np.ndarray, start: int) -> None:
    if not np.isfinite(chunk).all():
        bad = start + int(np.nonzero(~np.isfinite(chunk).all(axis=1))[0][0])
        raise InvalidArgument(f"row {bad} holds NaN or infinity; neither codec encodes them")


def _codes(B, name: str) -> np.ndarray:
    B = np.asarray(B)
    if B.ndim != 2 or B.dtype != np.uint8:
        raise InvalidArgument(f"{name}: expected a 2-D uint8 array of encoded rows, got {B.dtype} {B.shape}")
    return B


# --- float16 -----------------------------------------------------------------------


def encode_float16(M) -> np.ndarray:
    """Each row as d little-endian float16 values: uint8 array of shape (n, 2·d).

    Values beyond ±65504 saturate to ±65504. Relative error per element <= 2^-11 for
    65504 >= |v| >= 2^-14; absolute error <= 2^-25 below 2^-14.
    """
    M = _matrix(M)
    n, d = M.shape
    out = np.empty((n, 2 * d), dtype=np.uint8)
    halves = out.view("<f2")  # (n, d), shares memory
    for i in range(0, n, CHUNK_ROWS):
        chunk = M[i : i + CHUNK_ROWS]
        _check_finite(chunk, i)
        halves[i : i + CHUNK_ROWS] = np.clip(chunk, -F16_MAX, F16_MAX)
    return out


def decode_float16(B) -> np.ndarray:
    """float32 matrix (n, d) from rows written by ``encode_float16``."""
    B = _codes(B, "decode_float16")
    if B.shape[1] % 2:
        raise InvalidArgument(f"decode_float16: a row of {B.shape[1]} bytes is not whole float16 values")
    return np.ascontiguousarray(B).view("<f2").astype(np.float32)


# --- int8 with a per-row scale -----------------------------------------------------


def int8_scales(M) -> np.ndarray:
    """The float32 scale of each row, as ``encode_int8`` stores it (module docstring)."""
    M = _matrix(M)
    out = np.empty(M.shape[0], dtype=np.float32)
    for i in range(0, M.shape[0], CHUNK_ROWS):
        out[i : i + CHUNK_ROWS] = _scales(M[i : i + CHUNK_ROWS])
    return out


def _scales(chunk: np.ndarray) -> np.ndarray:
    if chunk.shape[1] == 0:
        return np.zeros(chunk.shape[0], dtype=np.float32)
    exact = np.max(np.abs(chunk), axis=1).astype(np.float64) / 127.0
    scale = exact.astype(np.float32)
    # A subnormal scale is coarse: where rounding to nearest would leave max|v| / scale
    # above 127.5 (so the clip would bite), take the next float32 up instead.
    up = (scale < F32_TINY_NORMAL) & (exact * 127.0 > scale.astype(np.float64) * 127.5)
    scale[up] = np.nextafter(scale[up], np.float32(np.inf))
    # 127 * scale must stay finite (a row holding float32's max).
    with np.errstate(over="ignore"):
        over = ~np.isfinite(np.float32(127) * scale)
    scale[over] = np.nextafter(scale[over], np.float32(0))
    return scale


def encode_int8(M) -> np.ndarray:
    """Each row as a 4-byte little-endian float32 scale, then d int8 codes: uint8 (n, 4 + d).

    ``scale = max|v| / 127`` (0 for a zero row; rounding in the module docstring),
    ``q = rint(v / scale)`` (half to even) clipped to [-127, 127]. Absolute error per
    element: ``|q * scale - v| <= scale / 2``; after the float32 decode
    ``<= scale * (1/2 + 2**-17)``.
    """
    M = _matrix(M)
    n, d = M.shape
    out = np.empty((n, 4 + d), dtype=np.uint8)
    for i in range(0, n, CHUNK_ROWS):
        chunk = M[i : i + CHUNK_ROWS]
        _check_finite(chunk, i)
        scale = _scales(chunk)
        divisor = np.where(scale == 0, np.float32(1), scale).astype(np.float64)
        q = np.divide(chunk, divisor[:, None], dtype=np.float64)
        np.rint(q, out=q)
        np.clip(q, -127, 127, out=q)
        out[i : i + CHUNK_ROWS, 4:] = q.astype(np.int8).view(np.uint8)
        out[i : i + CHUNK_ROWS, :4] = scale.astype("<f4").view(np.uint8).reshape(-1, 4)
    return out


def decode_int8(B) -> np.ndarray:
    """float32 matrix (n, d) from rows written by ``encode_int8``: ``q * scale``."""
    B = _codes(B, "decode_int8")
    if B.shape[1] < 4:
        raise InvalidArgument(f"decode_int8: a row of {B.shape[1]} bytes has no 4-byte scale")
    scale = np.ascontiguousarray(B[:, :4]).view("<f4").reshape(-1).astype(np.float32)
    q = B[:, 4:].view(np.int8)
    out = np.empty(q.shape, dtype=np.float32)
    np.multiply(q, scale[:, None], out=out, dtype=np.float32)
    return out


# --- codecs and the fixed point ------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """A row codec: ``encode`` float32 (n, d) -> uint8 (n, row_bytes(d)), ``decode`` back."""

    name: str
    encode: Callable[[np.ndarray], np.ndarray]
    decode: Callable[[np.ndarray], np.ndarray]
    row_bytes: Callable[[int], int]


FLOAT16 = Codec("float16", encode_float16, decode_float16, lambda d: 2 * d)
INT8 = Codec("int8", encode_int8, decode_int8, lambda d: 4 + d)
CODECS = {c.name: c for c in (FLOAT16, INT8)}


def _codec(codec) -> Codec:
    if isinstance(codec, Codec):
        return codec
    try:
        return CODECS[codec]
    except KeyError:
        raise InvalidArgument(f"unknown codec {codec!r}; one of {sorted(CODECS)}") from None


def fixed_point(M, codec, *, max_iter: int = 8) -> np.ndarray:
    """float32 values V near M with ``decode(encode(V)) == V`` bitwise, row by row.

    Starts from ``decode(encode(M))`` and re-applies the codec to the rows that still
    change (each pass re-checks only those). float16 and int8 rows with a normal scale
    are stable after the first round trip; int8 rows with a subnormal scale (largest
    value below ~1.5e-36) needed at most two in an exhaustive check of every such
    maximum. Raises ``RuntimeError`` if some row still moves after ``max_iter`` passes
    (never observed). Negative zeros: int8 turns them into +0.0 on the first pass,
    float16 keeps them; either way the result is stable.
    """
    codec = _codec(codec)
    current = codec.decode(codec.encode(M))
    pending = np.arange(current.shape[0])
    for _ in range(max_iter):
        rows = current[pending]
        again = codec.decode(codec.encode(rows))
        moved = np.any(again.view(np.uint32) != rows.view(np.uint32), axis=1)
        if not moved.any():
            return current
        pending = pending[moved]
        current[pending] = again[moved]
    raise PaletteError(f"{codec.name}: {pending.size} row(s) not stable after {max_iter} passes")


# --- what to keep --------------------------------------------------------------------


def top_k(keys, counts, k: int) -> np.ndarray:
    """Row indices of the k entities with the largest counts, in that order.

    Order: larger count first, then the smaller key (keys compare as numpy sorts them:
    numbers numerically, strings lexicographically), so the cut is deterministic.
    ``k >= n`` keeps everything. Keys must be unique; counts must not be NaN.
    A mask for ``unk_vector``: ``mask = np.zeros(n, bool); mask[top_k(...)] = True``.
    """
    keys = np.asarray(keys)
    counts = np.asarray(counts)
    if keys.ndim != 1 or counts.shape != keys.shape:
        raise InvalidArgument(f"keys and counts must be 1-D of the same length, got {keys.shape} and {counts.shape}")
    if k < 0:
        raise InvalidArgument(f"k must be >= 0, got {k}")
    if counts.dtype.kind == "f" and np.isnan(counts).any():
        raise InvalidArgument("counts hold NaN")
    n = keys.shape[0]
    by_key = np.argsort(keys, kind="stable")
    if n > 1 and np.any(keys[by_key][1:] == keys[by_key][:-1]):
        raise InvalidArgument("keys are not unique; ties could not be broken by key")
    key_rank = np.empty(n, dtype=np.int64)
    key_rank[by_key] = np.arange(n)
    # lexsort is ascending on (count, -key_rank); reversed: count descending, key ascending.
    order = np.lexsort((-key_rank, counts))[::-1]
    return np.ascontiguousarray(order[: min(k, n)]).astype(np.int64)


def unk_vector(M, kept_mask) -> np.ndarray:
    """Mean of the rows not kept (float32, shape (d,)); zeros when nothing is dropped.

    Summed in float64, chunk by chunk (no copy of the dropped rows).
    """
    M = _matrix(M)
    kept_mask = np.asarray(kept_mask, dtype=bool)
    if kept_mask.shape != (M.shape[0],):
        raise InvalidArgument(f"kept_mask must have shape ({M.shape[0]},), got {kept_mask.shape}")
    dropped = int(M.shape[0] - np.count_nonzero(kept_mask))
    total = np.zeros(M.shape[1], dtype=np.float64)
    if dropped == 0:
        return total.astype(np.float32)
    for i in range(0, M.shape[0], CHUNK_ROWS):
        keep = kept_mask[i : i + CHUNK_ROWS]
        total += M[i : i + CHUNK_ROWS][~keep].sum(axis=0, dtype=np.float64)
    return (total / dropped).astype(np.float32)
