"""Run the Python blocks of docs pages as a reader would paste them into one fresh
session: ``python tests/docs_runner.py docs/PAGE.md [docs/OTHER.md …] [--results FILE]`` in
the working directory the pages expect. Blocks run in order in one namespace; a ``>>>``
block runs as a doctest (outputs compared); a block opening with ``# test_*.py`` is written
to that file and run by pytest, which must pass.

Several pages run one after another in this one process — one JVM, started and warmed up
once — each as if fresh: a new namespace, the working directory emptied (but for
``demo-out``), the environment as the process found it, palette's configuration, MLflow's
tracking URI and active run, Spark's streams and cache reset. ``--results`` writes each
page's outcome (``"ok"`` or its error) as JSON. Exit status 0 when every page ran."""
import doctest
import json
import os
import re
import shutil
import sys
import traceback
from pathlib import Path

TEST_MODULE = re.compile(r"# (test_\w+\.py)\n")


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def run_block(block: str, name: str, namespace: dict) -> None:
    module = TEST_MODULE.match(block)
    if module:
        import pytest
        Path(module.group(1)).write_text(block)
        code = pytest.main([module.group(1), "-q", "-p", "no:cacheprovider", "--rootdir", "."])
        if code != pytest.ExitCode.OK:
            raise AssertionError(f"{name}: pytest exited {code!r}")
    elif block.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(block, namespace, name, name, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        runner.run(test)
        if runner.failures:
            raise AssertionError(f"{name}: {runner.failures} doctest example(s) failed (above)")
    else:
        exec(compile(block, name, "exec"), namespace)


def run_page(page: str) -> None:
    blocks = python_blocks(Path(page).read_text())
    namespace: dict = {"__name__": "__main__"}
    for i, block in enumerate(blocks, 1):
        name = f"{Path(page).name} python block {i}"
        print(f"--- {name}", flush=True)
        run_block(block, name, namespace)
    print(f"--- {Path(page).name}: {len(blocks)} blocks ran", flush=True)


KEEP = {"demo-out"}            # what the test links into the working directory for the pages


def reset(workdir: Path, environ: dict[str, str]) -> None:
    """What one page leaves behind, undone before the next: its files, its environment
    variables, palette's configuration, MLflow's tracking URI and run, Spark's running
    streams and cached tables, the test modules it wrote."""
    if "pyspark" in sys.modules:
        from pyspark.sql import SparkSession
        spark = SparkSession.getActiveSession()
        if spark is not None:
            for query in spark.streams.active:
                query.stop()
            spark.catalog.clearCache()
    if "mlflow" in sys.modules:
        import mlflow
        from mlflow.tracking._tracking_service import utils
        while mlflow.active_run():
            mlflow.end_run()
        # back to MLFLOW_TRACKING_URI or MLflow's default: set_tracking_uri would pin a URI
        # over the next page's MLFLOW_TRACKING_URI, and MLflow has no public way to unset it
        utils._tracking_uri = None
    if "palette" in sys.modules:
        sys.modules["palette"].configure("", online_store="")
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(workdir)
    for entry in workdir.iterdir():
        if entry.name not in KEEP:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(workdir) + os.sep):
            del sys.modules[name]


def main(pages: list[str], results: str | None = None) -> int:
    workdir, environ, outcome = Path.cwd(), dict(os.environ), {}
    for page in pages:
        reset(workdir, environ)
        try:
            run_page(page)
            outcome[Path(page).name] = "ok"
        except Exception as e:                          # noqa: BLE001 -- reported per page, the next one runs
            traceback.print_exc()
            outcome[Path(page).name] = f"{type(e).__name__}: {e}"[:4000]
        print(f"=== {Path(page).name}: {outcome[Path(page).name][:200]}", flush=True)
    if results:
        Path(results).write_text(json.dumps(outcome))
    return 0 if all(v == "ok" for v in outcome.values()) else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    results = args[args.index("--results") + 1] if "--results" in args else None
    sys.exit(main([a for a in args if a not in ("--results", results)], results))
