"""Feature logging in the serving process: a sample of requests, as the model saw them.

``--log-dir DIR`` turns it on (``--log-sample`` the fraction, ``--log-by key|request``):
each worker writes its own files under DIR (``palette.logs.writer``). For a sampled
instance, the scorer runs with an observer that keeps what every lookup read — values,
stored keys and event times, straight from the online reads — and the record is queued
after the answer is computed. Instances not sampled run exactly as without logging.
"""
from __future__ import annotations

from datetime import datetime, timezone

from palette.logs.writer import FeatureLog, Sampler, _json, feature_entries
from palette.transformers.runtime.online_lookups import batch_keys

from . import metrics

INDEX = "__palette_request_index"


class Capture:
    """A ``ScoreObserver`` keeping each instance's reads (by its request index)."""

    def __init__(self):
        self.reads: dict[str, object] = {}
        self.values: dict[int, dict] = {}
        self.keys: dict[int, dict] = {}

    def fetched(self, stage, reads, batch, got):
        index = batch.values(INDEX) if INDEX in batch.columns else [0] * batch.n
        for b in reads:
            self.reads[b.column] = b
            keys = batch_keys(batch, b)
            for j, i in enumerate(index):
                self.values.setdefault(i, {})[b.column] = got[b.column][j]
                self.keys.setdefault(i, {})[b.column] = keys[j]

    def scored(self, stage, batch):
        pass


class ModelLog:
    """One served model's feature log: which instances to log, and their records."""

    def __init__(self, writer: FeatureLog, model: str, version: str, scorer, rate: float, by: str):
        fields = scorer.request_fields()
        keys = {k for s in scorer.stages for b in s.reads for k in b.join_keys}
        self.key_fields = [f for f in fields if f in keys]
        self.sampler = Sampler(rate, by, self.key_fields)
        self.writer, self.model = writer, model
        self.version = version                     # what X-Model-Version answers (ServedModel.version)
        self.model_inputs = list(scorer.stages[-1].input_fields()) if scorer.stages else []   # its features vector

    def sampled(self, instances: list[dict]) -> list[int]:
        keep = self.sampler.keep
        return [i for i, inst in enumerate(instances) if keep(inst)]

    def write(self, capture: Capture, instances: list[dict], rows: list[dict | None], predictions: list,
              sampled: list[int], request_id: str, started: float) -> None:
        at = datetime.fromtimestamp(started, timezone.utc)
        reads = list(capture.reads.values())
        for i in sampled:
            inst = instances[i]
            record = {"request_id": request_id if len(instances) == 1 else f"{request_id}:{i}",
                      "request_time": at, "model": self.model, "version": self.version,
                      "keys": _json({f: inst.get(f) for f in self.key_fields}),
                      "features": feature_entries(reads, capture.keys.get(i, {}), capture.values.get(i, {})),
                      "request": _json(inst), "prediction": _json(predictions[i]),
                      "inputs": _json(None if rows[i] is None else {c: rows[i].get(c) for c in self.model_inputs})}
            if self.writer.submit(record):
                metrics.LOGGED.labels(self.model).inc()


def open_log(directory: str) -> FeatureLog:
    return FeatureLog(directory, on_drop=lambda n: metrics.LOG_DROPPED.inc(n))


__all__ = ["Capture", "ModelLog", "open_log", "INDEX"]
