"""Fuzz targets: what palette does with untrusted bytes, which may raise a ``PaletteError``
(the caller's fault, named) and nothing else — no other exception, no hang, bounded memory.

- ``dsl``: DSL text (parse, type check, print, parse back, evaluate on a row);
- ``requests``: an HTTP body of either protocol (KServe v1 JSON, MLflow JSON or CSV),
  decoded, checked and scored by a served model as ``palette serve`` does;
- ``model_dir``: a saved PipelineModel with one of its files damaged (truncated, bytes
  flipped or inserted), loaded and scored by the JVM-free runtime.

``run.py`` drives them with atheris (coverage-guided); ``tests/fuzz/test_fuzz.py`` replays the
committed corpus and runs each briefly; ``make fuzz`` runs each for long.
"""
from __future__ import annotations

import atexit
import math
import os
import shutil
import tempfile
from pathlib import Path

from palette.errors import PaletteError

HERE = Path(__file__).resolve().parent
MODEL = HERE.parent / "fixtures" / "spark_artifacts" / "4.0.5" / "pipeline_gbt_regressor"
ROW = {"a": 1.0, "b": -0.5, "c": 2.0, "cat": "x", "n": 0, "k": 1.0}


class Finding(AssertionError):
    """An input made palette fail in a way a caller cannot act on."""


def _expect_palette_errors(fn, data: bytes) -> None:
    try:
        fn(data)
    except PaletteError:
        pass
    except RecursionError:
        raise Finding("unbounded recursion") from None


# -- dsl ---------------------------------------------------------------------------------

def dsl(data: bytes) -> None:
    from palette.dsl import evaluate, parse
    text = data.decode("utf-8", errors="replace")

    def run(_):
        expr = parse(text)
        again = parse(str(expr))
        if str(again) != str(expr) or again.type != expr.type:
            raise Finding(f"{text!r} prints as {str(expr)!r}, which parses back as {str(again)!r}")
        values = (1.5, "x", None, True, -2.0, 0.0, math.nan)
        row = {r.parsed.name: values[i % len(values)] for i, r in enumerate(expr.reads())}
        evaluate(expr, row)
    _expect_palette_errors(run, data)


# -- requests ----------------------------------------------------------------------------

_SERVED = None


def _served():
    global _SERVED
    if _SERVED is None:
        from palette.serve.config import ModelConfig
        from palette.serve.models import load_model
        _SERVED = load_model(ModelConfig("m", str(MODEL / "model")), None)
    return _SERVED


CONTENT_TYPES = ["application/json", "text/csv", "application/vnd.apache.parquet", "application/json; charset=latin-1",
                 "text/plain", "application/json; format=pandas-records"]


def requests(data: bytes) -> None:
    """The first byte picks the route (KServe or MLflow) and the Content-Type; the rest is the body."""
    from palette.serve.app import _columns_param, _json
    from palette.serve.models import BadRequest
    from palette.serve.protocols import kserve_request, mlflow_request
    model = _served()
    head, body = (data[0], data[1:]) if data else (0, b"")
    kind = CONTENT_TYPES[(head >> 1) % len(CONTENT_TYPES)]

    def run(_):
        if head & 1:
            instances, payload = mlflow_request(kind, body, model.fields, 100)
        else:
            instances, payload = kserve_request(kind, body, 100)
        outputs = _columns_param(payload, model)
        problems = model.check(instances)
        if problems:
            raise BadRequest("problems", problems)
        predictions, _ = model.score(instances, outputs=outputs)
        if len(predictions) != len(instances):
            raise Finding(f"{len(instances)} instances got {len(predictions)} predictions")
        _json({"predictions": predictions})                # as the app answers it
    _expect_palette_errors(run, data)


# -- model_dir ---------------------------------------------------------------------------

_COPY = None


def _model_copy() -> tuple[Path, list[Path]]:
    global _COPY
    if _COPY is None:
        root = Path(tempfile.mkdtemp(prefix="palette-fuzz-model-"))
        atexit.register(shutil.rmtree, root, True)
        shutil.copytree(MODEL / "model", root / "model")
        files = sorted(p for p in (root / "model").rglob("*") if p.is_file() and not p.name.startswith("."))
        _COPY = root / "model", files
    return _COPY


def damaged(original: bytes, data: bytes) -> bytes:
    """``original`` damaged as ``data`` says: its first byte picks truncation, flipped
    bytes or inserted bytes; the rest gives positions and values."""
    if not data:
        return original
    op, rest = data[0] % 3, data[1:]
    n = len(original)
    if op == 0:                                          # truncated
        cut = int.from_bytes(rest[:4].ljust(4, b"\0"), "little") % (n + 1)
        return original[:cut]
    out = bytearray(original)
    for i in range(0, len(rest) - 2, 3):
        pos = int.from_bytes(rest[i:i + 2], "little") * max(n, 1) // 65536
        if op == 1 and out:                              # bytes changed
            out[min(pos, len(out) - 1)] = rest[i + 2]
        else:                                            # bytes inserted
            out[pos:pos] = bytes([rest[i + 2]])
    return bytes(out)


def model_dir(data: bytes) -> None:
    from palette.transformers import load_scorer
    model, files = _model_copy()
    target = files[data[0] % len(files)] if data else files[0]
    original = target.read_bytes()
    try:
        target.write_bytes(damaged(original, data[1:]))

        def run(_):
            load_scorer(model).scoreInstance(dict(ROW))
        _expect_palette_errors(run, data)
    finally:
        target.write_bytes(original)
        for p in model.rglob("*"):                       # anything the load wrote beside (a .crc)
            if p.is_file() and p not in files:
                os.unlink(p)


TARGETS = {"dsl": dsl, "requests": requests, "model_dir": model_dir}
