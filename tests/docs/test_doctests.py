"""Every docstring example in the package runs and shows what it says (examples that
need data or a cluster are marked ``+SKIP``)."""
import doctest
import importlib
import pkgutil

import pytest


PACKAGES = ["palette", "palette.dsl", "palette.transformers", "palette.parity", "palette.jobs"]


def _modules() -> list[str]:
    """Every module, subpackages included (they live in folders of their own: setup.cfg's
    package_dir)."""
    names = set(PACKAGES)
    for package in PACKAGES:
        path = importlib.import_module(package).__path__
        for info in pkgutil.walk_packages(path, package + "."):
            if not info.name.endswith("__main__"):
                names.add(info.name)
    return sorted(names)


MODULES = _modules()


def test_the_package_has_modules_to_check():
    assert {"palette.dsl.ast", "palette.refs", "palette.transformers.runtime.batch"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
