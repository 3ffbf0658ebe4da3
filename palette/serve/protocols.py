"""The request formats clients already send, turned into instances (dicts of field: value).

- KServe v1 / TF-Serving: ``POST /v1/models/{name}:predict`` with
  ``{"instances": [{"r_id": "r42", "order_size": 3}, ...]}`` → ``{"predictions": [...]}``.
- MLflow's scoring server: ``POST /invocations`` with ``{"dataframe_split": {"columns": [...],
  "data": [[...], ...]}}``, ``{"dataframe_records": [{...}, ...]}``, ``{"instances": [...]}``,
  ``{"inputs": {"col": [...], ...}}`` or a CSV body (``text/csv``, a header row) →
  ``{"predictions": [...]}``, as ``mlflow models serve`` answers.

Anything else is a ``BadRequest`` naming what is wrong and what would be right.

>>> mlflow_instances({"dataframe_split": {"columns": ["r_id", "order_size"], "data": [["r1", 2]]}})
[{'r_id': 'r1', 'order_size': 2}]
"""
from __future__ import annotations

import csv
import io

import orjson

from .models import BadRequest

JSON = "application/json"


def content_type(headers) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def parse_json(body: bytes):
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"the body is not valid JSON: {e}", code="malformed_json") from None


def require_instances(instances, where: str, max_instances: int) -> list:
    if not isinstance(instances, list):
        raise BadRequest(f"{where} must be a list of objects (one per instance), got {type(instances).__name__}")
    if not instances:
        raise BadRequest(f"{where} is empty: send at least one instance", code="no_instances")
    if len(instances) > max_instances:
        raise BadRequest(f"{where} holds {len(instances):,} instances; the limit is {max_instances:,} per request "
                         "(--max-instances): split it", status=413, code="too_many_instances")
    return instances


def kserve_instances(payload, max_instances: int = 10_000) -> list:
    if not isinstance(payload, dict) or "instances" not in payload:
        raise BadRequest('a predict request is {"instances": [{field: value, ...}, ...]} (KServe v1); '
                         f"got {_shape(payload)}")
    return require_instances(payload["instances"], '"instances"', max_instances)


def mlflow_instances(payload, max_instances: int = 10_000) -> list:
    if not isinstance(payload, dict):
        raise BadRequest(f"an /invocations body is a JSON object, got {_shape(payload)}")
    keys = [k for k in ("dataframe_split", "dataframe_records", "instances", "inputs") if k in payload]
    if len(keys) != 1:
        raise BadRequest("an /invocations body holds exactly one of dataframe_split, dataframe_records, instances, "
                         f"inputs (MLflow's formats); got {', '.join(map(repr, payload)) or 'none'}")
    key, value = keys[0], payload[keys[0]]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("columns"), list) \
                or not isinstance(value.get("data"), list):
            raise BadRequest('dataframe_split is {"columns": [...], "data": [[...], ...]}')
        cols = value["columns"]
        if not all(isinstance(c, str) for c in cols):
            raise BadRequest("dataframe_split.columns must be a list of column names (strings)")
        rows = require_instances(value["data"], "dataframe_split.data", max_instances)
        out = []
        for i, r in enumerate(rows):
            if not isinstance(r, list) or len(r) != len(cols):
                raise BadRequest(f"dataframe_split.data[{i}] must be a list of {len(cols)} values (one per column)",
                                 [{"instance": i, "problem": "wrong number of values"}])
            out.append(dict(zip(cols, r)))
        return out
    if key == "inputs" and isinstance(value, dict):
        lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise BadRequest('inputs as columns is {"field": [values...], ...}, every list of one length')
        n = lengths.pop()
        return require_instances([{k: v[i] for k, v in value.items()} for i in range(n)], "inputs", max_instances)
    return require_instances(value, key, max_instances)


def csv_instances(body: bytes, fields: dict[str, str], max_instances: int = 10_000) -> list:
    """A CSV body with a header row; numbers for the fields the model reads as numbers."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the CSV body is not UTF-8") from None
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise BadRequest(f"the CSV body cannot be read: {e} (a header row, then one row per instance; quote a "
                         "field that holds a comma, a quote or a line break)") from None
    out = []
    for i, r in enumerate(rows):
        inst = {}
        for k, v in r.items():
            kind = fields.get(k)
            if v == "":
                inst[k] = None
            elif kind in ("num", "int"):
                try:
                    inst[k] = int(v) if kind == "int" else float(v)
                except ValueError:
                    raise BadRequest(f"CSV row {i}: {k!r} must be a number, got {v!r}",
                                     [{"instance": i, "field": k, "problem": f"not a number: {v!r}"}]) from None
            elif kind == "bool":
                inst[k] = v.strip().lower() in ("true", "1")
            else:
                inst[k] = v
        out.append(inst)
    return require_instances(out, "the CSV body", max_instances)


def _shape(payload) -> str:
    if isinstance(payload, dict):
        return "an object with " + (", ".join(map(repr, list(payload)[:5])) or "no keys")
    return type(payload).__name__


__all__ = ["kserve_instances", "mlflow_instances", "csv_instances", "parse_json", "content_type", "JSON"]
