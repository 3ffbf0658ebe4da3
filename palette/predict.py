"""``palette predict``: score a file of requests with a saved model, without a JVM.

The lightest way to try a model: the rows of a JSON-lines, CSV or Parquet file go through
the same checks and the same scorer as ``palette serve`` (``scoreBatch``, lookups from the
online store), and each row comes back with the model's prediction column(s)::

    palette predict models/eta --input requests.jsonl --online-store sqlite:////data/online.db
    palette predict models:/eta@champion --input requests.csv --output scored.parquet

Writes JSON lines to stdout unless ``--output`` names a ``.jsonl``, ``.csv`` or ``.parquet``
file (written to a temporary file beside it and renamed: never half-written). A row that
cannot be scored stops the run, naming its line and the field.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from datetime import date, datetime
from pathlib import Path

from palette.errors import InvalidArgument

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
CHUNK = 1000                 # rows per scoreBatch call


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="palette predict", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Score a file of requests with a saved model, without Spark or a JVM: the same checks "
                    "and numbers as palette serve.",
        epilog="example:\n  palette predict models/eta --input requests.jsonl "
               "--online-store sqlite:////data/online.db --output scored.csv")
    p.add_argument("model", help="the directory model.write().save() wrote, or models:/NAME@ALIAS")
    p.add_argument("--input", required=True, metavar="FILE", help="requests: .jsonl (one JSON object per line), "
                   ".csv (a header row; numbers where the model reads numbers) or .parquet")
    p.add_argument("--online-store", metavar="URL", help="for models that read the feature store (default "
                   "$PALETTE_ONLINE_STORE)")
    p.add_argument("--output", metavar="FILE", help=".jsonl, .csv or .parquet (default: JSON lines on stdout)")
    p.add_argument("--columns", metavar="COL1,COL2", help="the model's columns to write (default: its "
                   "prediction column(s))")
    return p


def _format(path: str, flag: str) -> str:
    kind = FORMATS.get(Path(path).suffix.lower())
    if kind is None:
        raise InvalidArgument(f"{flag} {path}: use a .jsonl, .csv or .parquet file")
    return kind


def read_requests(path: str, fields: dict[str, str]) -> list[dict]:
    """The rows of ``path`` as instances (CSV values typed by the model's ``fields``)."""
    kind = _format(path, "--input")
    if not Path(path).is_file():
        raise InvalidArgument(f"--input {path}: no such file")
    if kind == "parquet":
        import pyarrow.parquet as pq
        return pq.read_table(path).to_pylist()
    if kind == "csv":
        from palette.serve.protocols import csv_instances
        return csv_instances(Path(path).read_bytes(), fields, max_instances=1 << 62)
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise InvalidArgument(f"--input {path}, line {n}: not valid JSON ({e})") from None
            if not isinstance(row, dict):
                raise InvalidArgument(f"--input {path}, line {n}: a request is a JSON object, got "
                                      f"{type(row).__name__}")
            rows.append(row)
    return rows


def _plain(v):
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if hasattr(v, "tolist"):
        return v.tolist()
    if hasattr(v, "toArray"):
        return v.toArray().tolist()
    return v


def write_rows(rows: list[dict], output: str | None) -> None:
    if output is None:
        for r in rows:
            sys.stdout.write(json.dumps({k: _plain(v) for k, v in r.items()}) + "\n")
        return
    kind = _format(output, "--output")
    target = Path(output)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        if kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq
            pq.write_table(pa.Table.from_pylist([{k: _plain(v) for k, v in r.items()} for r in rows]), tmp)
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                if kind == "csv":
                    header = list(dict.fromkeys(k for r in rows for k in r))
                    w = csv.DictWriter(f, header)
                    w.writeheader()
                    for r in rows:
                        w.writerow({k: _csv_cell(_plain(v)) for k, v in r.items()})
                else:
                    for r in rows:
                        f.write(json.dumps({k: _plain(v) for k, v in r.items()}) + "\n")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _csv_cell(v):
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return "" if v is None else v


def predict(model: str, requests: list[dict] | None = None, *, input: str | None = None,
            online_store: str | None = None, columns: list[str] | None = None) -> list[dict]:
    """Each request with the model's ``columns`` (default: its prediction column(s)).

    >>> predict("models/eta", [{"r_id": "r1", "order_size": 2}],
    ...         online_store="sqlite:////data/online.db")          # doctest: +SKIP
    [{'r_id': 'r1', 'order_size': 2, 'prediction': 31.4}]
    """
    from palette.serve.config import ModelConfig
    from palette.serve.models import BadRequest, load_model
    from palette.config import default_online_store
    from palette.transformers.runtime.artifact import palette_refs
    from palette.mlflow.uri import is_model_uri, local_model_dir
    path = local_model_dir(model) if is_model_uri(model) else model
    if not is_model_uri(model) and not Path(path).is_dir():
        raise InvalidArgument(f"{model}: no such model directory (the directory model.write().save() wrote, "
                              "or models:/NAME@ALIAS)")
    url = online_store or (default_online_store() if palette_refs(path) else None)
    store = None
    if url:
        from palette.online import open_store
        store = open_store(url)
    try:
        served = load_model(ModelConfig(Path(str(path).rstrip("/")).name, str(path), columns), store)
        rows = requests if requests is not None else read_requests(input, served.fields)
        out = []
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            problems = served.check(chunk)
            try:
                if problems:
                    raise BadRequest(f"{len(problems)} problem(s)", problems)
                predictions, _ = served.score(chunk)
            except BadRequest as e:
                raise InvalidArgument(_explain(e, start, input)) from None
            for r, p in zip(chunk, predictions):
                out.append({**r, **(p if isinstance(p, dict) else {served.outputs[0]: p})})
        return out
    finally:
        if store is not None:
            store.close()


def _explain(e, start: int, input: str | None) -> str:
    where = f"{input}, request" if input else "request"
    lines = [f"{where} {start + d['instance'] + 1}"
             + (f", field {d['field']!r}" if d.get("field") else "") + f": {d['problem']}" for d in e.details[:10]]
    return "cannot score the requests: " + ("; ".join(lines) if lines else e.message)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from palette.errors import PaletteError
    try:
        if args.output:
            _format(args.output, "--output")
        rows = predict(args.model, input=args.input, online_store=args.online_store,
                       columns=args.columns.split(",") if args.columns else None)
        write_rows(rows, args.output)
    except PaletteError as e:
        print(f"palette predict: {e}", file=sys.stderr)
        return 2
    if args.output:
        print(f"palette predict: {len(rows):,} rows scored into {args.output}", file=sys.stderr)
    return 0


__all__ = ["predict", "read_requests", "write_rows", "main", "parser"]
