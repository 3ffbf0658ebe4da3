"""The README's Python blocks run as written, in order, as a reader pastes them into one
session: the ETA pipeline, the DSL quick start, the feature store, serving from the online
store, parity."""
from pathlib import Path

from docs_runner import python_blocks

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_python_blocks_run_in_order(spark_session, capsys):
    blocks = python_blocks(README.read_text())
    assert len(blocks) == 5
    namespace: dict = {"__name__": "readme"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "'prep_f': 8.5" in out                   # the median of 12.0 and 8.5, as Spark's (a value it holds)
    assert "'prep_time': 14.0" in out and "'prep': 14.0" in out       # r1's latest value, online
    assert "parity PASS" in out and namespace["report"].ok
