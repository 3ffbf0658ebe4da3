"""Names a package exports but imports on first use (PEP 562), so that importing the
package loads nothing heavy — nothing that can reach pyspark (tests/runtime/test_runtime_layout.py).

>>> __getattr__ = lazy_exports(__name__, {"log_model": ".flavor"})        # doctest: +SKIP
"""
from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, table: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name of ``table`` comes from its module
    (``".flavor"``: a submodule of the package; ``"palette.store"``: absolute) when first used."""
    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)
    return __getattr__


__all__ = ["lazy_exports"]
