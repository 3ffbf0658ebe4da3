"""Run one fuzz target under atheris (libFuzzer): ``python tests/fuzz/run.py TARGET [libFuzzer
flags] [CORPUS_DIR...]``, e.g. ``python tests/fuzz/run.py dsl -max_total_time=600
tests/fuzz/corpus/dsl``. A finding (any exception but a ``PaletteError``, a hang past
``-timeout``, memory past ``-rss_limit_mb``) stops the run with a nonzero exit code and
the input saved as ``crash-*`` / ``timeout-*`` / ``oom-*`` (see ``-artifact_prefix``)."""
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["palette"]):
    import palette.dsl                                   # noqa: F401  (instrumented for coverage)
    import palette.serve.app                             # noqa: F401
    import palette.serve.models                          # noqa: F401
    import palette.serve.protocols                       # noqa: F401
    import palette.transformers                          # noqa: F401
    from palette.transformers.runtime.scorers import load_all
    load_all()                                           # every scorer module, instrumented too

from targets import TARGETS                              # noqa: E402


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} TARGET [libFuzzer flags] [corpus dirs]; TARGET is one of {', '.join(TARGETS)}")
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
