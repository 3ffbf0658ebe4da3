"""docs/serving.md lists every stage the JVM-free runtime scores (it is generated)."""
from pathlib import Path

from palette.transformers.runtime import supported_stages
from palette.transformers.runtime import SCORERS
from palette.transformers.runtime.scorers import load_all
from palette.transformers.runtime.scorers._docs import sync

DOC = Path(__file__).resolve().parents[2] / "docs" / "serving.md"


def test_serving_doc_is_current():
    assert sync(DOC), "docs/serving.md is stale: run python -m palette.transformers.runtime.scorers --write"


def test_serving_doc_lists_every_registered_class():
    text = DOC.read_text()
    for name in supported_stages():
        assert f"`{name}`" in text, name


def test_every_scorer_documents_itself():
    load_all()
    for name, cls in SCORERS.items():
        assert getattr(cls, "supports", ""), f"{cls.__name__} ({name}) has no 'supports' text"
        assert getattr(cls, "limitations", ""), f"{cls.__name__} ({name}) has no 'limitations' text"
