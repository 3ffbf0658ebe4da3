"""Run the Python blocks of one docs page as a reader would paste them into one fresh
session: ``python tests/docs_runner.py docs/PAGE.md`` in the working directory the page
expects. Blocks run in order in one namespace; a ``>>>`` block runs as a doctest (outputs
compared); a block opening with ``# test_*.py`` is written to that file and run by pytest,
which must pass. Exit status 0 when every block ran."""
import doctest
import re
import sys
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


def main(page: str) -> int:
    blocks = python_blocks(Path(page).read_text())
    namespace: dict = {"__name__": "__main__"}
    for i, block in enumerate(blocks, 1):
        name = f"{Path(page).name} python block {i}"
        print(f"--- {name}", flush=True)
        run_block(block, name, namespace)
    print(f"--- {Path(page).name}: {len(blocks)} blocks ran", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
