"""Geohash cells, computed exactly (no pyspark).

The cell of a point is found per axis as ``k = floor((v - lo) / span * 2**bits)``,
clamped so that the upper edge (lat 90, lng 180) falls in the last cell. Grid lines
``lo + span * k / 2**bits`` are exact doubles for the precisions used here, so after
a floating-point estimate one exact comparison each way fixes ``k``; the Spark
backend runs the same steps, so both give the same cell even at cell edges.

>>> encode(57.64911, 10.40744, 11)
'u4pruydqqvj'
>>> encode(90.0, 180.0, 6), encode(-90.0, -180.0, 6)
('zzzzzz', '000000')
"""
from __future__ import annotations

import functools

BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
LAT = (-90.0, 180.0)    # (lower edge, span)
LNG = (-180.0, 360.0)


def bits_per_axis(precision: int) -> tuple[int, int]:
    """(longitude bits, latitude bits): geohash interleaves starting with longitude."""
    total = 5 * precision
    return total - total // 2, total // 2


def cell_index(v: float, axis: tuple[float, float], bits: int) -> int:
    lo, span = axis
    size = 1 << bits
    k = int((v - lo) / span * size)
    if k > size - 1:
        k = size - 1
    if k > 0 and lo + span * k / size > v:
        k -= 1
    elif k < size - 1 and lo + span * (k + 1) / size <= v:
        k += 1
    return k


def bit_source(precision: int, g: int) -> tuple[str, int]:
    """Which axis ("lng" or "lat") and which bit (counted from the least significant)
    supplies global bit ``g`` of the hash (``g = 0`` is the first, most significant)."""
    lng_bits, lat_bits = bits_per_axis(precision)
    if g % 2 == 0:
        return "lng", lng_bits - 1 - g // 2
    return "lat", lat_bits - 1 - g // 2


@functools.lru_cache(maxsize=None)
def char_tables(precision: int) -> tuple[tuple[int, int, int, int, str], ...]:
    """Per character of the hash, how to read it straight off the two cell indices:
    ``(lng_shift, lng_width, lat_shift, lat_width, alphabet)`` such that the character is
    ``alphabet[((lng_k >> lng_shift) & (2**lng_width - 1)) << lat_width
    | ((lat_k >> lat_shift) & (2**lat_width - 1))]``. The alphabet is BASE32 permuted so
    that looking a character up also interleaves its bits (what the Spark backend does:
    a few integer operations and one ``substr`` per character).

    >>> lng_shift, lng_width, lat_shift, lat_width, alphabet = char_tables(1)[0]
    >>> (lng_shift, lng_width, lat_shift, lat_width), alphabet[0b111 << 2 | 0b11]
    ((0, 3, 0, 2), 'z')
    """
    tables = []
    for j in range(precision):
        sources = [bit_source(precision, 5 * j + i) for i in range(5)]
        lng = [bit for axis, bit in sources if axis == "lng"]
        lat = [bit for axis, bit in sources if axis == "lat"]
        alphabet = []
        for index in range(32):
            a, b = index >> len(lat), index & ((1 << len(lat)) - 1)
            code = 0
            for i, (axis, bit) in enumerate(sources):
                value = a >> (bit - min(lng)) if axis == "lng" else b >> (bit - min(lat))
                code |= (value & 1) << (4 - i)
            alphabet.append(BASE32[code])
        tables.append((min(lng), len(lng), min(lat), len(lat), "".join(alphabet)))
    return tuple(tables)


def _spread(x: int) -> int:
    """Put a zero bit between the bits of x (x < 2**32)."""
    x = (x | (x << 16)) & 0x0000FFFF0000FFFF
    x = (x | (x << 8)) & 0x00FF00FF00FF00FF
    x = (x | (x << 4)) & 0x0F0F0F0F0F0F0F0F
    x = (x | (x << 2)) & 0x3333333333333333
    return (x | (x << 1)) & 0x5555555555555555


_SHIFTS = {p: tuple(5 * (p - 1 - j) for j in range(p)) for p in range(1, 13)}


def encode(lat: float, lng: float, precision: int = 6) -> str | None:
    """The geohash of (lat, lng), or None when a coordinate is missing or out of range."""
    if lat is None or lng is None or not (-90.0 <= lat <= 90.0) or not (-180.0 <= lng <= 180.0):
        return None
    lng_bits, lat_bits = bits_per_axis(precision)
    lng_k, lat_k = cell_index(lng, LNG, lng_bits), cell_index(lat, LAT, lat_bits)
    # Interleave, longitude taking the most significant bit.
    if lng_bits == lat_bits:
        h = (_spread(lng_k) << 1) | _spread(lat_k)
    else:
        h = _spread(lng_k) | (_spread(lat_k) << 1)
    return "".join([BASE32[(h >> s) & 31] for s in _SHIFTS[precision]])


def _cell_indices(v, axis: tuple[float, float], bits: int):
    """``cell_index`` over a float64 array: the same floating-point steps, elementwise."""
    import numpy as np
    lo, span = axis
    size = 1 << bits
    k = np.minimum(((v - lo) / span * size).astype(np.int64), size - 1)
    kf = k.astype(np.float64)
    down = (k > 0) & (lo + span * kf / size > v)
    up = ~down & (k < size - 1) & (lo + span * (kf + 1) / size <= v)
    return k - down + up


def encode_many(lat, lng, null, precision: int = 6) -> list:
    """``encode`` over float64 arrays (``null`` marks missing points): a list of hashes,
    None where ``encode`` gives None.

    >>> import numpy as np
    >>> encode_many(np.array([57.64911, 95.0]), np.array([10.40744, 0.0]), np.array([False, False]), 11)
    ['u4pruydqqvj', None]
    """
    import numpy as np
    n = len(lat)
    ok = ~null & (lat >= -90.0) & (lat <= 90.0) & (lng >= -180.0) & (lng <= 180.0)
    lng_bits, lat_bits = bits_per_axis(precision)
    safe_lat, safe_lng = np.where(ok, lat, 0.0), np.where(ok, lng, 0.0)
    lng_k, lat_k = _cell_indices(safe_lng, LNG, lng_bits), _cell_indices(safe_lat, LAT, lat_bits)
    chars = np.empty((n, precision), dtype=np.uint8)
    for j, (lng_shift, lng_width, lat_shift, lat_width, alphabet) in enumerate(char_tables(precision)):
        index = (((lng_k >> lng_shift) & ((1 << lng_width) - 1)) << lat_width) | \
            ((lat_k >> lat_shift) & ((1 << lat_width) - 1))
        chars[:, j] = np.frombuffer(alphabet.encode(), dtype=np.uint8)[index]
    hashes = chars.view(f"S{precision}").ravel().astype(str).tolist()
    if not ok.all():
        for i in np.flatnonzero(~ok).tolist():
            hashes[i] = None
    return hashes
