"""A profile: what one feature's values looked like over a window, in a few kilobytes,
mergeable with the profile of the next window.

- every feature: ``count`` (values seen, nulls included) and ``nulls``;
- numbers (``num``, ``ts`` as epoch seconds, integer keys): ``nans``, exact mergeable
  moments (``mean`` and the sum of squared deviations, merged with Chan's formula),
  ``min``/``max``, and a quantile sketch (Apache DataSketches KLL, float items, k=480:
  normalized rank error 0.57 % at 99 % confidence; 5.9 KB at ten million values);
- categories (``str``, ``bool``): a frequent-items sketch (the heaviest categories with
  error bounds; exact while there are at most 96 distinct ones) and an HLL distinct count.

Profiles of adjacent windows merge into the profile of their union with the same
guarantees as one built from all its rows (counts and moments exactly, up to floating
point; quantiles within the sketch's error): a day from 1,440 minutes, a month from 30 days.

>>> import numpy as np
>>> a, b = Profile.of(np.arange(0, 500.0)), Profile.of(np.array([500.0, np.nan, None], dtype=float))
>>> day = Profile.from_bytes(a.merge(b).to_bytes())
>>> day.count, day.nulls + day.nans, day.min, day.max, round(day.mean, 3)
(503, 2, 0.0, 500.0, 250.0)
>>> Profile.of(["a", "b", "a", None], "cat").top(2)
[('a', 2), ('b', 1)]
"""
from __future__ import annotations

import math
import struct

import numpy as np

from palette.errors import InvalidArgument

KLL_K = 480
FREQ_LG_MAX = 7          # frequent-items map of 2**7 slots: exact up to 96 distinct categories
HLL_LG_K = 11            # HLL: about 2.3 % relative error on distinct counts
KINDS = ("num", "cat")
_HEADER = struct.Struct("<BBqqqdddd")      # version, kind, count, nulls, nans, mean, m2, min, max
_VERSION = 1


def _ds():
    import datasketches
    return datasketches


class Profile:
    """One feature's values over a window (see the module)."""
    __slots__ = ("kind", "count", "nulls", "nans", "mean", "m2", "min", "max", "kll", "freq", "hll")

    def __init__(self, kind: str = "num"):
        if kind not in KINDS:
            raise InvalidArgument(f"unknown profile kind {kind!r}; use num or cat")
        self.kind = kind
        self.count = self.nulls = self.nans = 0
        self.mean = self.m2 = 0.0
        self.min, self.max = math.inf, -math.inf
        ds = _ds()
        self.kll = ds.kll_floats_sketch(KLL_K) if kind == "num" else None
        self.freq = ds.frequent_strings_sketch(FREQ_LG_MAX) if kind == "cat" else None
        self.hll = ds.hll_sketch(HLL_LG_K) if kind == "cat" else None

    @classmethod
    def of(cls, values, kind: str = "num") -> "Profile":
        p = cls(kind)
        p.update(values)
        return p

    # -- building ----------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Values that are neither null nor NaN."""
        return self.count - self.nulls - self.nans

    def update(self, values) -> "Profile":
        """Add a batch of values (a sequence, numpy array or pandas Series; None is null)."""
        if self.kind == "num":
            self._update_numbers(values)
        else:
            self._update_categories(values)
        return self

    def _update_numbers(self, values) -> None:
        x = np.asarray(values)
        if x.dtype.kind == "M":                                  # timestamps: epoch seconds
            nat = np.isnat(x)
            x = np.where(nat, np.nan, x.astype("datetime64[us]").astype(np.int64) / 1e6)
            self.nulls += int(nat.sum())
            nulls = 0
        elif x.dtype.kind == "O":
            missing = np.fromiter((v is None for v in x), bool, len(x))
            nulls = int(missing.sum())
            x = np.where(missing, np.nan, x).astype(np.float64)
        else:
            x = x.astype(np.float64, copy=False)
            nulls = 0
        self.count += len(x)
        self.nulls += nulls
        bad = np.isnan(x)
        self.nans += int(bad.sum()) - nulls
        x = x[~bad]
        if x.size:
            self._add_moments(x.size, float(x.mean()), float(((x - x.mean()) ** 2).sum()), float(x.min()),
                              float(x.max()))
            self.kll.update(x.astype(np.float32))

    def _add_moments(self, n: int, mean: float, m2: float, lo: float, hi: float) -> None:
        before = self.n - n                       # counts were already added
        total = before + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * before * n / total
        self.min, self.max = min(self.min, lo), max(self.max, hi)

    def _update_categories(self, values) -> None:
        import pandas as pd
        s = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
        self.count += len(s)
        missing = s.isna()
        self.nulls += int(missing.sum())
        counts = s[~missing].value_counts(sort=False)           # then each distinct value spelled once
        for item, c in zip(counts.index, counts.to_numpy()):
            item = _category(item)
            self.freq.update(item, int(c))
            self.hll.update(item)

    def merge(self, other: "Profile") -> "Profile":
        """Add another window's profile of the same feature (in place; returns self)."""
        if other.kind != self.kind:
            raise InvalidArgument(f"cannot merge a {other.kind} profile into a {self.kind} profile")
        self.count += other.count
        self.nulls += other.nulls
        self.nans += other.nans
        if self.kind == "num":
            if other.n:
                self._add_moments(other.n, other.mean, other.m2, other.min, other.max)
                self.kll.merge(other.kll)
        else:
            self.freq.merge(other.freq)
            union = _ds().hll_union(HLL_LG_K)
            union.update(self.hll)
            union.update(other.hll)
            self.hll = union.get_result()
        return self

    # -- reading ---------------------------------------------------------------------------
    @property
    def variance(self) -> float | None:
        return self.m2 / (self.n - 1) if self.n > 1 else None

    @property
    def std(self) -> float | None:
        v = self.variance
        return None if v is None else math.sqrt(max(v, 0.0))

    @property
    def null_rate(self) -> float | None:
        """The share of values missing: null, or NaN."""
        return ((self.nulls + self.nans) / self.count) if self.count else None

    @property
    def rank_error(self) -> float:
        """The quantile sketch's normalized rank error (99 % confidence), 0 while exact."""
        return self.kll.normalized_rank_error(False) if self.kll.is_estimation_mode() else 0.0

    def quantiles(self, ranks) -> list[float]:
        return [] if not self.n else list(self.kll.get_quantiles(list(ranks)))

    def cdf(self, points) -> np.ndarray:
        """P(X <= x) at each point (of the non-null values)."""
        if not self.n:
            return np.zeros(len(points))
        return np.asarray(self.kll.get_cdf(list(np.asarray(points, dtype=np.float32))), float)[:-1]

    def top(self, k: int = 20) -> list[tuple[str, int]]:
        """The ``k`` most frequent categories and their estimated counts."""
        items = self.freq.get_frequent_items(_ds().frequent_items_error_type.NO_FALSE_NEGATIVES)
        return [(item, int(est)) for item, est, _lo, _hi in items[:k]]

    def category_bounds(self) -> dict[str, tuple[int, int]]:
        """Every category the sketch tracks: (lower, upper) bound of its count."""
        items = self.freq.get_frequent_items(_ds().frequent_items_error_type.NO_FALSE_NEGATIVES)
        return {item: (int(lo), int(hi)) for item, _est, lo, hi in items}

    @property
    def distinct(self) -> float | None:
        return None if self.kind != "cat" else self.hll.get_estimate()

    def summary(self) -> dict:
        """The numbers a table or a gauge shows."""
        out = {"count": self.count, "nulls": self.nulls, "null_rate": self.null_rate, "nans": self.nans,
               "mean": None, "std": None, "min": None, "max": None, "p50": None, "p99": None, "distinct": None}
        if self.kind == "num" and self.n:
            p50, p99 = self.quantiles([0.5, 0.99])
            out.update(mean=self.mean, std=self.std, min=self.min, max=self.max, p50=p50, p99=p99)
        elif self.kind == "cat":
            out["distinct"] = self.distinct
        return out

    # -- bytes -----------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        head = _HEADER.pack(_VERSION, KINDS.index(self.kind), self.count, self.nulls, self.nans, self.mean,
                            self.m2, self.min, self.max)
        parts = [self.kll.serialize()] if self.kind == "num" else [self.freq.serialize(),
                                                                     self.hll.serialize_compact()]
        return head + b"".join(struct.pack("<I", len(p)) + p for p in parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Profile":
        version, kind, count, nulls, nans, mean, m2, lo, hi = _HEADER.unpack_from(data)
        if version != _VERSION:
            raise InvalidArgument(f"a profile of format {version}; this palette reads format {_VERSION}")
        p = cls.__new__(cls)
        p.kind, p.count, p.nulls, p.nans, p.mean, p.m2, p.min, p.max = (KINDS[kind], count, nulls, nans, mean, m2,
                                                                         lo, hi)
        parts, at = [], _HEADER.size
        while at < len(data):
            (size,) = struct.unpack_from("<I", data, at)
            parts.append(bytes(data[at + 4:at + 4 + size]))
            at += 4 + size
        ds = _ds()
        p.kll = ds.kll_floats_sketch.deserialize(parts[0]) if p.kind == "num" else None
        p.freq = ds.frequent_strings_sketch.deserialize(parts[0]) if p.kind == "cat" else None
        p.hll = ds.hll_sketch.deserialize(parts[1]) if p.kind == "cat" else None
        return p

    def __repr__(self) -> str:
        return f"Profile({self.kind}, count={self.count}, nulls={self.nulls})"


def _category(v) -> str:
    return ("true" if v else "false") if isinstance(v, (bool, np.bool_)) else str(v)


def merge_into(into: dict[str, "Profile"], profiles: dict[str, "Profile"]) -> dict[str, "Profile"]:
    """Merge each of ``profiles`` into the profile of the same name in ``into`` (or add it
    there); returns ``into``."""
    for name, p in profiles.items():
        into[name] = into[name].merge(p) if name in into else p
    return into


def merged(profiles) -> Profile | None:
    """One profile of all of ``profiles`` (None if there are none)."""
    out = None
    for p in profiles:
        out = Profile.from_bytes(p.to_bytes()) if out is None else out.merge(p)
    return out
