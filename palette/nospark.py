"""Refusing pyspark, py4j and delta in a process: how the tests and the parity harness
prove that the single-row path runs without Spark.

``block_spark(why)`` installs an import hook in this process; ``sitecustomize(why)`` is the
source of a ``sitecustomize.py`` doing the same in a child process from its very first
import (this module's own text: it imports nothing of palette, so the hook is in place
before palette is).

>>> block_spark("no Spark here")                 # doctest: +SKIP
>>> import pyspark                               # doctest: +SKIP
ImportError: pyspark cannot be imported: no Spark here
"""
import importlib.abc
import sys

BLOCKED = ("pyspark", "py4j", "delta")


class SparkBlocker(importlib.abc.MetaPathFinder):
    def __init__(self, why: str):
        self.why = why

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} cannot be imported: {self.why}")
        return None


def spark_modules() -> list:
    """The blocked modules this process has already imported."""
    return sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)


def block_spark(why: str) -> None:
    if not any(isinstance(f, SparkBlocker) for f in sys.meta_path):
        sys.meta_path.insert(0, SparkBlocker(why))


def sitecustomize(why: str) -> str:
    with open(__file__, encoding="utf-8") as f:
        return f.read() + f"\n\nblock_spark({why!r})\n"


__all__ = ["BLOCKED", "SparkBlocker", "block_spark", "sitecustomize", "spark_modules"]
