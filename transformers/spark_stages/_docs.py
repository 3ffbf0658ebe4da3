"""The supported-stages table of ``docs/serving.md``, generated from the registries so the
doc cannot drift: ``python -m palette.transformers.spark_stages`` prints it, and
``--write`` rewrites the generated part of docs/serving.md (``tests/test_spark_stage_docs.py``
fails when it is stale)."""
from __future__ import annotations

from pathlib import Path

BEGIN = "<!-- BEGIN GENERATED: supported stages (python -m palette.transformers.spark_stages --write) -->"
END = "<!-- END GENERATED -->"

_PALETTE = {
    "palette.transformers.dsl_stage.DSLTransformer": (
        "DSL lambdas, parsed by the DSL grammar (nothing unpickled)", "—"),
    "palette.transformers.dsl_stage.DSLModel": (
        "fitted DSL lambdas (DSLEstimator), e.g. impute with fitted values", "—"),
    "org.apache.spark.ml.PipelineModel": (
        "stages in order; rows a stage skips are dropped by scoreBatch, raise RowSkipped from scoreInstance",
        "nested PipelineModels are loaded recursively"),
}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _batch_mode(cls) -> str:
    from ._base import SparkStageScorer
    if cls.score_columns is SparkStageScorer.score_columns:
        return "row by row"
    return f"numpy; row by row {cls.batch_fallback}" if cls.batch_fallback else "numpy"


def rows() -> list[tuple[str, str, str, str, str]]:
    """(saved class, scorer, scoreBatch mode, supported, limitations) for every stage the
    runtime scores."""
    from ..runtime import STAGE_SCORERS
    from . import load_all
    out = []
    for name in sorted(STAGE_SCORERS):
        sup, lim = _PALETTE.get(name, ("", ""))
        out.append((name, "palette DSL row scorer", "row by row", sup, lim))
    out.append(("org.apache.spark.ml.PipelineModel", "PipelineScorer", "each stage's",
                *_PALETTE["org.apache.spark.ml.PipelineModel"]))
    for name, cls in sorted(load_all().items()):
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
    return Path(__file__).resolve().parents[2] / "docs" / "serving.md"


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
