"""The request formats clients already send, turned into instances (dicts of field: value).

- KServe v1 / TF-Serving: ``POST /v1/models/{name}:predict`` with
  ``{"instances": [{"r_id": "r42", "order_size": 3}, ...]}`` → ``{"predictions": [...]}``.
- MLflow's scoring server: ``POST /invocations`` with ``{"dataframe_split": {"columns": [...],
  "data": [[...], ...]}}``, ``{"dataframe_records": [{...}, ...]}``, ``{"instances": [...]}``,
  ``{"inputs": {"col": [...], ...}}`` (``instances`` and ``inputs`` as rows, columns or one
  row of scalars), each with optional ``params``; a CSV body (``text/csv``, a header row)
  or a Parquet one (``application/vnd.apache.parquet``) → ``{"predictions": [...]}``, as
  ``mlflow models serve`` answers.

Anything else is a ``BadRequest`` naming what is wrong and what would be right.

>>> mlflow_instances({"dataframe_split": {"columns": ["r_id", "order_size"], "data": [["r1", 2]]}})
([{'r_id': 'r1', 'order_size': 2}], {})
>>> mlflow_instances({"inputs": {"r_id": ["r1", "r2"], "order_size": [2, 1]}, "params": {"columns": ["prediction"]}})
([{'r_id': 'r1', 'order_size': 2}, {'r_id': 'r2', 'order_size': 1}], {'columns': ['prediction']})
"""
from __future__ import annotations

import csv
import io

import orjson

from palette.feature_types import field_type

from .models import BadRequest

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
MLFLOW_CONTENT_TYPES = [CSV, JSON, PARQUET]        # what mlflow models serve takes, in its order


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


MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def mlflow_instances(payload, max_instances: int = 10_000, fields: dict | None = None) -> tuple[list, dict]:
    """The instances and the ``params`` of an /invocations JSON body, as ``mlflow models
    serve`` reads them: exactly one of ``dataframe_split``, ``dataframe_records``,
    ``instances``, ``inputs`` (rows, columns as ``{"field": [values...]}``, one row as
    ``{"field": value}``, or, for a model of one field, a list of its values), beside an
    optional ``params`` object; other keys are ignored, as MLflow ignores them."""
    if not isinstance(payload, dict):
        raise BadRequest(f"an /invocations body is a JSON object, got {_shape(payload)}")
    keys = [k for k in MLFLOW_FORMATS if k in payload]
    if len(keys) != 1:
        raise BadRequest("an /invocations body holds exactly one of dataframe_split, dataframe_records, instances, "
                         f"inputs (MLflow's formats); got {', '.join(map(repr, payload)) or 'none'}")
    params = payload.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise BadRequest(f'"params" is an object of parameter: value, got {_shape(params)}')
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
        return out, params
    if key in ("instances", "inputs") and isinstance(value, dict):
        return require_instances(_columns(value, key), key, max_instances), params
    if key in ("instances", "inputs") and isinstance(value, list) and value and \
            not any(isinstance(v, dict) for v in value) and fields is not None and len(fields) == 1:
        (field,) = fields                            # a model of one field: a list of its values
        return require_instances([{field: v} for v in value], key, max_instances), params
    return require_instances(value, key, max_instances), params


def _columns(value: dict, key: str) -> list:
    """``{"field": [values...]}`` (columns of one length) or ``{"field": value}`` (one row)."""
    lists = [v for v in value.values() if isinstance(v, list)]
    if not lists:
        return [dict(value)]
    lengths = {len(v) for v in lists}
    if len(lists) != len(value) or len(lengths) != 1:
        raise BadRequest(f'{key} as columns is {{"field": [values...], ...}}, every list of one length (or '
                         '{"field": value, ...} for one instance)')
    n = lengths.pop()
    return [{k: v[i] for k, v in value.items()} for i in range(n)]


def parquet_instances(body: bytes, max_instances: int = 10_000) -> list:
    """A Parquet body (``application/vnd.apache.parquet``, as MLflow takes it): one instance per row."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        rows = pq.read_table(io.BytesIO(body)).to_pylist()
    except (pa.ArrowException, OSError, ValueError) as e:      # ValueError: UnicodeDecodeError of a damaged name
        raise BadRequest(f"the Parquet body cannot be read: {type(e).__name__}: {str(e)[:200]}") from None
    return require_instances(rows, "the Parquet body", max_instances)


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
            elif field_type(kind) is not None:
                t = field_type(kind)
                try:
                    inst[k] = t.from_text(v)
                except ValueError:
                    raise BadRequest(f"CSV row {i}: {k!r} must be {t.describe}, got {v!r}",
                                     [{"instance": i, "field": k, "problem": f"not {t.describe}: {v!r}"}]) from None
            else:
                inst[k] = v
        out.append(inst)
    return require_instances(out, "the CSV body", max_instances)


def kserve_request(content_type_header: str, body: bytes, max_instances: int = 10_000) -> tuple[list, object]:
    """(instances, payload) of a KServe v1 ``:predict`` request."""
    kind = content_type_header.split(";")[0].strip().lower()
    if kind != JSON:
        raise BadRequest(f"Content-Type must be application/json, got {kind or 'none'}", status=415,
                         code="unsupported_media_type")
    payload = parse_json(body)
    return kserve_instances(payload, max_instances), payload


def mlflow_request(content_type_header: str, body: bytes, fields: dict, max_instances: int = 10_000) \
        -> tuple[list, dict | None]:
    """(instances, payload with its ``params``) of an /invocations request: MLflow's content
    types, its charset and parameter rules (the 415s worded as ``mlflow models serve`` words
    them), its payloads."""
    kind, *parts = [p.strip() for p in content_type_header.split(";")]
    options = {k.strip().lower(): v.strip().strip('"') for k, _, v in (p.partition("=") for p in parts if p)}
    if options.get("charset", "utf-8").lower() != "utf-8":
        raise BadRequest("The scoring server only supports UTF-8", status=415, code="unsupported_media_type")
    if set(options) - {"charset"}:
        raise BadRequest(f"Unrecognized content type parameters: {', '.join(sorted(set(options) - {'charset'}))}",
                         status=415, code="unsupported_media_type")
    kind = kind.lower()
    if kind == JSON:
        payload = parse_json(body)
        instances, params = mlflow_instances(payload, max_instances, fields)
        return instances, {**payload, "params": params}
    if kind in (CSV, "application/csv"):
        return csv_instances(body, fields, max_instances), None
    if kind == PARQUET:
        return parquet_instances(body, max_instances), None
    raise BadRequest(f"This predictor only supports the following content types: Types: {MLFLOW_CONTENT_TYPES}. "
                     f"Got '{content_type_header}'.", status=415, code="unsupported_media_type")


def _shape(payload) -> str:
    if isinstance(payload, dict):
        return "an object with " + (", ".join(map(repr, list(payload)[:5])) or "no keys")
    return type(payload).__name__


__all__ = ["kserve_request", "mlflow_request", "kserve_instances", "mlflow_instances", "csv_instances", "parquet_instances", "parse_json", "content_type",
           "JSON", "CSV", "PARQUET", "MLFLOW_CONTENT_TYPES", "MLFLOW_FORMATS"]
