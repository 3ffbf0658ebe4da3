"""Regenerate the notebooks: each jupytext source (``NAME.py``, the diffable twin) becomes
``NAME.ipynb``, executed top to bottom in a fresh Jupyter kernel, with its outputs — what
GitHub shows when browsing the repository. ``make notebooks`` runs it; the test suite
executes the same way on small data (``tests/docs/test_notebooks.py``).

    python notebooks/build.py                      # every notebook
    python notebooks/build.py uber_eats_eta        # one
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sources() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)


def read(source: Path):
    """The notebook of a jupytext source, without outputs."""
    import jupytext
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return nb


def execute(source: Path, env: dict[str, str] | None = None, timeout: int = 1800):
    """The notebook, executed in a fresh kernel running this interpreter (so palette and
    Spark are those of this environment), in the repository's root; ``env`` is added to
    the kernel's environment. A failing cell raises ``nbclient.exceptions.CellExecutionError``
    naming it."""
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    nb = read(source)
    km = KernelManager(kernel_name="python3")
    km._kernel_spec = KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                 display_name="Python 3 (ipykernel)", language="python", env=dict(env or {}))
    client = NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(HERE.parent)}})
    client.execute()
    return nb


def build(source: Path) -> Path:
    import nbformat
    started = time.monotonic()
    nb = execute(source)
    target = source.with_suffix(".ipynb")
    nbformat.write(nb, target)
    print(f"{target.relative_to(HERE.parent)}: executed in {time.monotonic() - started:.0f} s")
    return target


def main(argv: list[str]) -> int:
    chosen = [p for p in sources() if not argv or p.stem in argv]
    if not chosen:
        print(f"no notebook named {' '.join(argv)}; there are: {', '.join(p.stem for p in sources())}",
              file=sys.stderr)
        return 2
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for source in chosen:
        build(source)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
