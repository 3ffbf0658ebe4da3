"""The single-row side of the parity harness, run in a process that cannot import pyspark.

``check_parity`` starts ``python -m palette.parity.worker REQUEST RESULT``: this module
refuses every import of pyspark, py4j and delta (an import hook, installed before the
runtime is imported, and a check that none was imported before), loads the saved model
with ``load_scorer`` — as a serving process does, reading the online store — and scores
the rows in batches through ``PipelineScorer.scoreBatch``, the code ``palette serve``
runs. An observer records what each stage wrote, which rows it kept, and each lookup's
keys; then the online records of those keys are read once more, with their event times,
for the store-skew check. What RPC groups answered (values, fallbacks) is recorded per key
for the harness to write into their tables before ``transform()`` reads them back.

The store is read with a read timeout of ``READ_TIMEOUT_MS`` unless its URL sets
``timeout_ms``: a server's default (5 ms for Redis) budgets one request's keys, the check
reads batches of thousands in one round trip, which a busy or big store (a million keys)
answers in more.

REQUEST and RESULT are pickle files the harness writes and reads in a temporary
directory of its own (rows and results between two processes of one run; a saved model
is never pickled).
"""
from __future__ import annotations

import pickle
import sys
import time
from urllib.parse import parse_qs, urlsplit

from palette.nospark import block_spark, spark_modules

ROW_ID = "__palette_parity_row"
READ_TIMEOUT_MS = 10_000


def _forbid_spark() -> None:
    loaded = spark_modules()
    if loaded:
        raise SystemExit(f"palette parity worker: {', '.join(loaded)} already imported; it must run without Spark")
    block_spark("the parity harness scores the single-row side in a process without Spark, as a serving "
                "process runs")


class _Recorder:
    """A ``ScoreObserver``: each stage's outputs by row id, and each read's keys."""

    def __init__(self, scorer):
        from palette.transformers.runtime.online_lookups import batch_keys
        self._batch_keys = batch_keys
        self.owner = {id(b): s for s, stage in enumerate(scorer.stages) for b in stage.reads}
        self.outputs = []
        for stage in scorer.stages:
            cols = stage.output_columns()
            self.outputs.append(None if cols is None else sorted(cols))
        self.values: list[dict[str, list]] = [{} for _ in scorer.stages]
        self.kept: list[list] = [[] for _ in scorer.stages]
        self.row_keys: dict[int, dict[str, dict]] = {}     # stage -> group -> row id -> key tuple
        self.keys: dict[str, dict[str, tuple]] = {}        # group -> stored key -> key tuple
        self.layouts = {}
        self.hidden = {b.column for stage in scorer.stages for b in stage.reads}
        self.rpc: dict[str, dict[tuple, tuple]] = {}       # RPC group -> key tuple -> (values, fallback)
        self.rpc_changed: dict[str, set] = {}              # keys whose fetches disagreed during the check
        self.rpc_rows: dict[int, dict[str, dict]] = {}     # stage -> group -> row id -> key tuple
        self.rpc_keys: dict[str, list] = {}

    def _fetched_rpc(self, b, batch, rows, got) -> None:
        fetches = self.rpc.setdefault(b.group_id, {})
        per_row = self.rpc_rows.setdefault(self.owner[id(b)], {}).setdefault(b.group_id, {})
        self.rpc_keys[b.group_id] = list(b.read.entity.join_keys)
        for i, (record, key) in enumerate(zip(got[b.column], zip(*(batch.values(c) for c in b.join_keys)))):
            if any(k is None for k in key):
                continue
            per_row[rows[i]] = key
            fallbacks = getattr(record, "fallbacks", None)
            entry = (None if record is None else tuple(record[:-1]),
                     None if not fallbacks else next(r for r in fallbacks if r))
            if fetches.setdefault(key, entry) != entry:
                self.rpc_changed.setdefault(b.group_id, set()).add(key)

    def fetched(self, stage, reads, batch, got):
        rows = batch.values(ROW_ID)
        for b in reads:
            if b.rpc is not None:
                self._fetched_rpc(b, batch, rows, got)
                continue
            stored = self._batch_keys(batch, b)
            columns = [batch.values(c) for c in b.join_keys]
            per_row = self.row_keys.setdefault(self.owner[id(b)], {}).setdefault(b.group_id, {})
            known = self.keys.setdefault(b.group_id, {})
            self.layouts[b.group_id] = b.layout
            for i, key in enumerate(stored):
                if key is not None:
                    raw = tuple(col[i] for col in columns)
                    per_row[rows[i]] = raw
                    known[key] = raw

    def scored(self, stage, batch):
        self.kept[stage].extend(batch.values(ROW_ID))
        cols = self.outputs[stage]
        if cols is None:                          # a stage that cannot say: every visible column
            cols = [c for c in batch.columns if c != ROW_ID and c not in self.hidden]
            self.outputs[stage] = cols
        out = self.values[stage]
        for c in cols:
            out.setdefault(c, []).extend(batch.values(c) if c in batch.columns else [_Absent] * batch.n)


class _Absent:
    """A column the stage did not write (pickled by reference)."""


def _online_records(store, recorder: _Recorder, chunk: int = 5000) -> dict:
    """{group: {key tuple: (event time µs, {feature: value}) or None}} as stored now."""
    out = {}
    for gid, keys in recorder.keys.items():
        layout = recorder.layouts[gid]
        codec = layout.codec()
        names = [f for f, _ in layout.features]
        stored = list(keys)
        records = {}
        for start in range(0, len(stored), chunk):
            part = stored[start:start + chunk]
            for key, hit in zip(part, store.read([(layout, part)])[0]):
                records[keys[key]] = None if hit is None else (hit[0], dict(zip(names, codec.decode(hit[1]))))
        out[gid] = {"records": records, "keys": list(layout.keys), "max_age_micros": layout.max_age_micros}
    return out


def score(request: dict) -> dict:
    """Score ``request["columns"]`` (column -> values, with the row ids) with the model at
    ``request["model"]``; what the harness compares."""
    from palette.transformers.runtime import load_scorer

    started = time.perf_counter()
    online_store = request.get("online_store")
    if request.get("as_of") is not None:            # the store's clock at the harness's instant
        from palette.config import default_online_store
        from palette.errors import NotConfigured
        from palette.online import open_store
        try:
            url = online_store if online_store is not None else default_online_store()
        except NotConfigured:                        # a model without lookups needs none
            url = None
        if url is not None:
            as_of = request["as_of"]
            patient = {} if "timeout_ms" in parse_qs(urlsplit(url).query) else {"timeout_ms": READ_TIMEOUT_MS}
            online_store = open_store(url, clock=lambda: as_of, **patient)
    scorer = load_scorer(request["model"], online_store=online_store)
    loaded = time.perf_counter()
    columns, n, size = request["columns"], len(request["columns"][ROW_ID]), request["batch_rows"]
    recorder = _Recorder(scorer)
    now = None
    for start in range(0, n, size):
        rows = [dict(zip(columns, values)) for values in zip(*(v[start:start + size] for v in columns.values()))]
        scorer.scoreBatch(rows, observer=recorder)
    if scorer.online_store is not None:
        now = scorer.online_store.now_micros()
    scored = time.perf_counter()
    online = _online_records(scorer.online_store, recorder) if scorer.online_store is not None else {}
    stages = [{"class": s.metadata.get("class", type(s).__name__), "uid": s.uid, "outputs": recorder.outputs[i],
               "reads": [{"group": b.group_id, "join_keys": list(b.join_keys), "features": list(b.read.features),
                          "outputs": [list(o) for o in b.read.outputs]} for b in s.reads],
               "kept": recorder.kept[i], "values": recorder.values[i]}
              for i, s in enumerate(scorer.stages)]
    rpc = {gid: {"keys": recorder.rpc_keys[gid], "fetches": fetches, "changed": recorder.rpc_changed.get(gid, set())}
           for gid, fetches in recorder.rpc.items()}
    result = {"stages": stages, "online": online, "row_keys": recorder.row_keys, "now_micros": now,
              "rpc": rpc, "rpc_rows": recorder.rpc_rows,
              "online_store": None if scorer.online_store is None else scorer.online_store.url,
              "seconds": {"load": loaded - started, "score": scored - loaded}}
    scorer.close()
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _forbid_spark()
    with open(argv[0], "rb") as f:
        request = pickle.load(f)
    try:
        result = {"ok": score(request)}
    except Exception as e:             # the harness raises it, named, in the caller's process
        result = {"error": f"{type(e).__name__}: {e}"}
    with open(argv[1], "wb") as f:
        pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
