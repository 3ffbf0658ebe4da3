"""An embedding version's table as numpy (Spark): read it whole, write a new version.

``read_version`` gives the latest vector of every key of one version — the keys as the
online store spells them (``palette.online.codec.encode_key``), a float32 matrix and, when
asked, a count per key from a frequency column — through one Arrow collect: the
stability measures (Procrustes, EIS) are global and need the matrices whole. At 1M × 128
that is 512 MB on the driver; give it ``spark.driver.memory`` accordingly.

``write_version`` registers a new version of the group and ingests its rows: a new
training or a compressed copy, never an overwrite.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from palette.errors import InvalidArgument
from palette.feature_types import TYPES
from palette.online.codec import encode_key
from palette.registry import Entity, FeatureGroup


@dataclass
class Version:
    """One embedding version as numpy: ``keys`` (encoded entity keys, sorted), ``matrix``
    (float32, one row per key), ``times`` (each row's event time, µs since the epoch),
    ``counts`` (the frequency column, or None)."""
    group: FeatureGroup
    entity: Entity
    feature: str
    keys: np.ndarray
    matrix: np.ndarray
    times: np.ndarray | None = None
    counts: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def rows(self, keys) -> np.ndarray:
        """Row index of each key (encoded), -1 where this version does not hold it."""
        keys = np.asarray(keys, dtype=object).astype(str)
        at = np.searchsorted(self.keys, keys)
        at = np.minimum(at, len(self.keys) - 1) if len(self.keys) else np.zeros(len(keys), np.int64)
        return np.where(len(self.keys) and (self.keys[at] == keys), at, -1).astype(np.int64)


def vector_feature(group: FeatureGroup, feature: str | None) -> str:
    vectors = [f.name for f in group.features if TYPES[f.type].dim is not None]
    if feature is None:
        if len(vectors) != 1:
            raise InvalidArgument(f"{group.id} holds the vectors {', '.join(vectors) or 'none'}: name one with "
                                  "--feature")
        return vectors[0]
    if feature not in vectors:
        raise InvalidArgument(f"{group.id} has no vector feature {feature!r}; its vectors: {', '.join(vectors)}")
    return feature


def read_version(spark, store, group_id: str, feature: str | None = None, by: str | None = None) -> Version:
    """The latest vector per key of the embedding version ``group_id`` (``entity:name`` is
    the newest version); ``by`` a numeric column of its table counting each key's use."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    group = store.group(group_id)
    if group.kind != "embedding":
        raise InvalidArgument(f"{group.id} is a {group.kind} group, not an embedding (kind='embedding')")
    entity = store.entity(group.entity)
    feature = vector_feature(group, feature)
    keys = list(entity.join_keys)
    numbers = [f.name for f in group.features if f.type == "num"]
    if by is not None and by not in numbers:
        raise InvalidArgument(f"--by {by!r}: the top-k ranks by a number column of {group.id}; its number columns: "
                              f"{', '.join(numbers) or 'none'}")
    df = store.read(group.id, spark)
    latest = (df.where(F.col(f"`{feature}`").isNotNull())
              .withColumn("__n", F.row_number().over(Window.partitionBy(*keys).orderBy(F.col(group.timestamp_col).desc())))
              .where("__n = 1").select(*keys, F.unix_micros(group.timestamp_col).alias("__ts"), feature,
                                       *([by] if by else [])))
    table = latest.toArrow()
    dim = TYPES[group.feature(feature).type].dim
    vectors = table.column(feature).combine_chunks()
    matrix = vectors.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)
    key_types = tuple(entity.join_keys.values())
    if len(keys) == 1 and key_types[0] == "str":
        encoded = np.asarray(table.column(keys[0]).to_pylist(), dtype=object).astype(str)
    else:
        cols = [table.column(k).to_pylist() for k in keys]
        encoded = np.array([encode_key(tuple(v), key_types) for v in zip(*cols)], dtype=str)
    order = np.argsort(encoded, kind="stable")
    counts = None if by is None else np.nan_to_num(
        np.asarray(table.column(by).to_numpy(zero_copy_only=False), dtype=np.float64))[order]
    times = table.column("__ts").to_numpy(zero_copy_only=False).astype(np.int64)[order]
    return Version(group, entity, feature, encoded[order], np.ascontiguousarray(matrix[order]), times, counts)


def write_version(spark, store, source: Version, keys: np.ndarray, matrix: np.ndarray, storage: str,
                  unk: np.ndarray | None, version: int | None = None, description: str = "") -> FeatureGroup:
    """Register the next version of ``source``'s group holding ``matrix`` (float32 rows for
    ``keys``, each at its event time in ``source``) in the online form ``storage``, with
    ``unk`` read for every other key, and ingest it. The new version holds only the vector
    feature."""
    import pyarrow as pa

    base = source.group
    entity = source.entity
    if len(entity.join_keys) != 1:
        raise InvalidArgument(f"{base.id}: compressing an embedding of a composite key is not supported yet")
    version = version or max(g.version for g in store.registry.groups().values()
                             if g.version is not None and g.base_id == base.base_id) + 1
    dim = matrix.shape[1]
    ftype = f"vector({dim})" if storage == "float32" else f"vector({dim}, {storage})"
    group = FeatureGroup(base.entity, base.name, {source.feature: ftype}, timestamp_col=base.timestamp_col,
                         max_age=base.max_age, kind="embedding", version=version, owner=base.owner, tags=base.tags,
                         description=description or base.description,
                         unk={} if unk is None else {source.feature: [float(x) for x in unk]})
    store.register(group)
    (key, key_type), = entity.join_keys.items()
    key_values = pa.array(keys.tolist() if key_type == "str" else [int(k) for k in keys],
                          pa.string() if key_type == "str" else pa.int64())
    times = source.times[source.rows(keys)]
    flat = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1))
    offsets = pa.array(np.arange(0, len(flat) + 1, dim, dtype=np.int32))
    table = pa.table({key: key_values, base.timestamp_col: pa.array(times, pa.timestamp("us", "UTC")),
                      source.feature: pa.ListArray.from_arrays(offsets, flat)})
    store.ingest(spark.createDataFrame(table), group.id, fixed_points=True)
    return group


__all__ = ["Version", "read_version", "write_version", "vector_feature"]
