"""The supported-stages table of ``docs/serving.md``, generated from the registries so the
doc cannot drift: ``python -m palette.transformers.runtime.scorers`` prints it, and
``--write`` rewrites the generated part of docs/serving.md (``tests/runtime/test_spark_stage_docs.py``
fails when it is stale)."""
from __future__ import annotations

from pathlib import Path

BEGIN = "<!-- BEGIN GENERATED: supported stages (python -m palette.transformers.runtime.scorers --write) -->"
END = "<!-- END GENERATED -->"

_PIPELINE = ("org.apache.spark.ml.PipelineModel", "PipelineScorer", "each stage's",
             "stages in order; rows a stage skips are dropped by scoreBatch, raise RowSkipped from scoreInstance",
             "nested PipelineModels are loaded recursively")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _batch_mode(cls) -> str:
    from ..stage import StageScorer
    if cls.score_columns is StageScorer.score_columns and cls.score_batch is StageScorer.score_batch:
        return "row by row"
    return f"numpy; row by row {cls.batch_fallback}" if cls.batch_fallback else "numpy"


def rows() -> list[tuple[str, str, str, str, str]]:
    """(saved class, scorer, scoreBatch mode, supported, limitations) for every stage the
    runtime scores: palette's stages first, then the pipeline, then Spark's."""
    from . import load_all
    scorers = sorted(load_all().items(), key=lambda kv: (not kv[0].startswith("palette."), kv[0]))
    out = []
    for name, cls in scorers:
        if not name.startswith("palette.") and not any(r[0] == _PIPELINE[0] for r in out):
            out.append(_PIPELINE)
        out.append((name, f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}", _batch_mode(cls),
                    getattr(cls, "supports", ""), getattr(cls, "limitations", "")))
    return out


def table() -> str:
    lines = [BEGIN, "", "| Saved class | Scorer | scoreBatch | Supported | Limitations |",
             "| --- | --- | --- | --- | --- |"]
    for name, scorer, mode, sup, lim in rows():
        lines.append(f"| `{name}` | `{scorer}` | {mode} | {_cell(sup) or '—'} | {_cell(lim) or '—'} |")
    lines += ["", END]
    return "\n".join(lines)


def doc_path() -> Path:
    return Path(__file__).resolve().parents[3] / "docs" / "serving.md"


def sync(path: Path | None = None, write: bool = False) -> bool:
    """Whether ``path``'s generated table is current; with ``write``, make it so."""
    path = path or doc_path()
    text = path.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = head + table() + tail
    if write and new != text:
        path.write_text(new)
    return new == text
