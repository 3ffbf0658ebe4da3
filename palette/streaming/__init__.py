"""Stream feature groups: the streaming job and backfills (Spark). See docs/streaming.md.

>>> query = palette.streaming.start("restaurant:orders_fg", checkpoint="/chk/orders",      # doctest: +SKIP
...                                 online_store="sqlite:////data/online.db", trigger="5 seconds")
>>> query.awaitTermination()                                                                # doctest: +SKIP
>>> palette.streaming.stop(query)                # between micro-batches                    # doctest: +SKIP
>>> palette.streaming.backfill("restaurant:orders_fg", start="2026-12-01", end="2026-12-06")  # doctest: +SKIP

``start`` runs Spark Structured Streaming over the group's source: a windowed group is a
stateful event-time aggregation into tiles (watermark = the newest event time seen minus
the group's lateness; RocksDB state store), a latest-value group a stateless pass; each
micro-batch goes through ``palette.streaming.apply`` — Delta first, then the online store
from the executors — and Spark commits the batch to the checkpoint only after both, so a
job killed anywhere re-runs the uncommitted batch, whose writes are idempotent.

``backfill`` computes the same from the event history with Spark's batch engine.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import datetime, timezone

from palette import uris
from palette.errors import InvalidArgument, JobError

log = logging.getLogger("palette.streaming")

ROCKSDB = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
_DEFINITION = "palette-definition.json"
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hours?)\s*$")
_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _stream_group(store, group_id: str):
    group = store.group(group_id)
    if group.source is None:
        raise JobError(f"feature group {group_id} is a {group.kind} group without a stream source: it is filled by "
                       "ingest; declare kind='stream' with source=StreamSource(...) to stream it")
    return store.entity(group.entity), group


def trigger_seconds(trigger: str) -> float:
    """'10 seconds', '500 ms', '1 minute' as seconds."""
    m = _INTERVAL.match(str(trigger).lower())
    if not m:
        raise JobError(f"trigger {trigger!r}: use an interval like '10 seconds', '500 ms' or '1 minute'")
    unit = m.group(2)
    return float(m.group(1)) * _UNITS["ms" if unit == "ms" or unit.startswith("mil") else unit[0]]


def checkpoint_path(root: str, group_id: str) -> str:
    """Where the stream of ``group_id`` keeps its checkpoint under ``root``: one per group
    (``palette stream --checkpoint ROOT``)."""
    return f"{str(root).rstrip('/')}/{group_id.replace(':', '/')}"


def _check_checkpoint(checkpoint: str, group) -> None:
    """A checkpoint belongs to one definition: restarting with another is refused."""
    path = uris.join(checkpoint, _DEFINITION)              # beside Spark's own files, local or on object storage
    whole = json.loads(json.dumps(group.to_json()))        # what decides the values; not descriptions or tags
    definition = {k: whole[k] for k in ("entity", "name", "source", "aggregations", "hop", "lateness", "timestamp_col")}
    definition["features"] = [[f["name"], f["type"]] for f in whole["features"]]
    try:
        found = uris.exists(path)
    except InvalidArgument:                                # hdfs://, dbfs:/: Spark's files only, unchecked
        log.warning("the checkpoint %s is on a file system palette's Python side cannot open: restarting it with "
                    "another definition of %s is not detected", checkpoint, group.id)
        return
    if found:
        stored = json.loads(uris.read_bytes(path))
        if stored != definition:
            changed = sorted(k for k in set(stored) | set(definition) if stored.get(k) != definition.get(k))
            raise JobError(f"the checkpoint {checkpoint} was made by {group.id} as defined differently "
                           f"({', '.join(changed)} changed): its state would mix the two. Start the new "
                           "definition with a new checkpoint (and backfill it), or restore the old definition")
        return
    uris.write_text(path, json.dumps(definition, indent=2, sort_keys=True) + "\n")


def start(group_id: str, *, checkpoint: str, online_store: str | None = None, trigger: str = "10 seconds",
          store=None, spark=None, max_per_trigger: int | None = None, once: bool = False):
    """Start streaming ``group_id``; returns the ``StreamingQuery``. ``checkpoint``: the
    query's durable progress (one per group and definition); ``online_store``: where
    values go besides Delta (none: Delta only); ``once``: process what is there and stop
    (``availableNow``)."""
    from palette.spark import active_session
    from palette.store import FeatureStore

    from .apply import apply_latest, apply_tiles
    from .events import read_events
    from .tiles import tile_aggregation

    store = store or FeatureStore()
    spark = spark or active_session()
    entity, group = _stream_group(store, group_id)
    seconds = trigger_seconds(trigger)
    if group.windowed and group.hop_micros < seconds * 1e6:
        raise JobError(f"{group_id} slides by {group.hop} but the trigger is every {trigger}: a value would change "
                       "more often than the job runs. Trigger at least once per hop")
    _check_checkpoint(checkpoint, group)
    spark.conf.set("spark.sql.streaming.stateStore.providerClass", ROCKSDB)
    events = read_events(spark, entity, group, streaming=True, max_per_trigger=max_per_trigger)
    name = f"palette:{group_id}"
    if group.windowed:
        ts = group.source.timestamp_col
        tiles = tile_aggregation(events.withWatermark(ts, f"{group.lateness_micros} microseconds"), entity, group)

        def each(batch, batch_id):
            t0 = time.monotonic()
            result = apply_tiles(batch.sparkSession, store, entity, group, batch, online_store, streaming=True)
            _log_batch(name, batch_id, result, time.monotonic() - t0)
        writer = tiles.writeStream.outputMode("update")
    else:
        writer_id = _writer_id(checkpoint, group)

        def each(batch, batch_id):
            t0 = time.monotonic()
            result = apply_latest(batch.sparkSession, store, entity, group, batch, online_store,
                                  txn=(writer_id, batch_id))
            _log_batch(name, batch_id, result, time.monotonic() - t0)
        writer = events.writeStream.outputMode("append")
    writer = (writer.foreachBatch(each).option("checkpointLocation", checkpoint)
              .queryName(name))
    writer = writer.trigger(availableNow=True) if once else writer.trigger(processingTime=f"{round(seconds * 1000)} milliseconds")
    return writer.start()


def _writer_id(checkpoint: str, group) -> str:
    """The stream's id for Delta's idempotent writes: one per group and checkpoint, the same
    across restarts (a batch re-run after a crash is then skipped, not appended twice)."""
    import hashlib
    return f"palette-stream-{group.id}-{hashlib.sha256(checkpoint.encode()).hexdigest()[:16]}"


def stop(query, timeout: float = 120.0) -> None:
    """Stop ``query`` between micro-batches: a batch in flight first finishes its Delta
    commit and online write, so a stopped stream's stores agree. After ``timeout`` seconds
    it is stopped anyway (a restart from the checkpoint redoes the interrupted batch)."""
    deadline = time.monotonic() + timeout
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.05)
    query.stop()


_LAST_BATCH: dict[str, dict] = {}          # query name -> its last writing micro-batch's figures (this process)


def last_batch(query) -> dict | None:
    """The figures of ``query``'s last micro-batch that wrote events (empty batches, which
    only move the watermark, are left out): ``batch``, what it wrote, ``seconds``,
    ``lag_seconds`` (when it finished, minus the newest event time it wrote — for a windowed
    group, minus the start of its newest tile, so up to a hop more) and ``finished`` (epoch s)."""
    return _LAST_BATCH.get(query.name)


def _log_batch(name: str, batch_id: int, result: dict, seconds: float) -> None:
    """A line per micro-batch on stderr: what it wrote, how long it took and the lag."""
    newest = result.pop("newest", None)
    now = time.time()
    lag = None if newest is None else round(now - newest / 1e6, 3)
    if newest is not None:
        _LAST_BATCH[name] = {"batch": batch_id, **result, "seconds": round(seconds, 3), "lag_seconds": lag,
                             "finished": now}
    parts = " ".join(f"{k}={v}" for k, v in result.items())
    print(f"palette stream {name.removeprefix('palette:')} batch={batch_id} {parts} seconds={seconds:.2f}"
          f"{'' if lag is None else f' lag={lag:.1f}s'}", file=sys.stderr, flush=True)


def _micros(value) -> int:
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * 1_000_000)


def backfill(group_id: str, *, start: str | datetime | None = None, end: str | datetime | None = None,
             online_store: str | None = None, store=None, spark=None) -> dict:
    """Compute ``group_id`` from its event history (events with ``start <= event time <
    end``; default: all of it, rounded out to whole hops) with Spark's batch engine and
    MERGE it into the group's tables (and, given ``online_store``, write it there): what
    the stream would have written, late events included. Idempotent: a rerun changes nothing."""
    from pyspark.sql import functions as F

    from palette.spark import active_session
    from palette.store import FeatureStore

    from .apply import apply_latest, apply_tiles
    from .events import read_events
    from .tiles import tile_aggregation

    store = store or FeatureStore()
    spark = spark or active_session()
    entity, group = _stream_group(store, group_id)
    started = time.monotonic()
    events = read_events(spark, entity, group, streaming=False)
    ts = F.unix_micros(F.col(f"`{group.source.timestamp_col}`"))
    hop = group.hop_micros or 1
    if start is not None:
        events = events.where(ts >= F.lit(_micros(start) // hop * hop))
    if end is not None:
        events = events.where(ts < F.lit(-(-_micros(end) // hop) * hop))
    if group.windowed:
        result = apply_tiles(spark, store, entity, group, tile_aggregation(events, entity, group), online_store)
    else:
        result = apply_latest(spark, store, entity, group, events, online_store)
    result.pop("newest", None)
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


__all__ = ["start", "stop", "backfill", "last_batch", "trigger_seconds", "checkpoint_path"]
