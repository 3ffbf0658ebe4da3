"""One root exception; public names from public modules; newer files ask for an upgrade."""
import importlib
import ast
import inspect
import json
import pkgutil
from pathlib import Path

import pytest

import palette
from palette import PaletteError

PACKAGES = ["palette", "palette.dsl", "palette.transformers", "palette.transformers.runtime",
            "palette.transformers.runtime.scorers", "palette.online", "palette.serve", "palette.parity", "palette.jobs",
            "palette.mlflow", "palette.examples", "palette.logs", "palette.rpc"]


def all_modules():
    seen = []
    for name in PACKAGES:
        pkg = importlib.import_module(name)
        seen.append(pkg)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.ispkg and info.name != "__main__":
                seen.append(importlib.import_module(f"{name}.{info.name}"))
    return seen


def test_every_exception_palette_defines_derives_from_palette_error():
    found = []
    for module in all_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                found.append(cls)
                assert issubclass(cls, PaletteError), f"{cls.__module__}.{cls.__name__} does not derive from PaletteError"
    assert len(found) >= 15


# Where a builtin ValueError/TypeError/KeyError is a bug in palette, not the caller's
# fault: a backend without a rule for a node the type checker accepted, a lookup of a
# name palette itself wrote. Everything else a caller can cause is a PaletteError.
INTERNAL_RAISES = {"dsl/batch_backend.py", "dsl/python_backend.py", "dsl/text.py", "dsl/spark_backend.py",
                   "transformers/learning.py", "palette/online/base.py"}
BUILTINS = {"ValueError", "TypeError", "KeyError"}


def test_callers_errors_are_palette_errors_not_bare_builtins():
    root = Path(__file__).resolve().parents[2]
    bare = []
    for folder in ("palette", "dsl", "transformers", "jobs", "parity"):
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel in INTERNAL_RAISES:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                exc = node.exc if isinstance(node, ast.Raise) else None
                target = exc.func if isinstance(exc, ast.Call) else exc
                if isinstance(target, ast.Name) and target.id in BUILTINS:
                    bare.append(f"{rel}:{node.lineno} raises {target.id}")
    assert not bare, "raise a PaletteError subclass (palette.errors) instead:\n" + "\n".join(bare)


def test_public_names_come_from_public_modules():
    for name in PACKAGES:
        pkg = importlib.import_module(name)
        for attr in getattr(pkg, "__all__", []):
            obj = getattr(pkg, attr)
            where = getattr(obj, "__module__", None) or name
            assert not any(part.startswith("_") for part in where.split(".")), f"{name}.{attr} comes from {where}"


def test_errors_are_exported_at_the_top_level():
    for name in ("PaletteError", "NotRegistered", "RegistryError", "OnlineStoreUnavailable", "ArtifactError",
                 "UnsupportedStageError", "FeatureLookupError", "IngestError", "DSLError"):
        assert issubclass(getattr(palette, name), PaletteError), name


def test_registry_of_a_newer_format_asks_for_an_upgrade(tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake
    write_deltalake(str(tmp_path / "_registry"), pa.Table.from_pylist(
        [{"kind": "entity", "id": "e", "definition": "{}", "format": 3}],
        schema=pa.schema([("kind", pa.string()), ("id", pa.string()), ("definition", pa.string()),
                          ("format", pa.int32())])))
    with pytest.raises(palette.RegistryError, match="entity 'e' in registry format 3.*reads formats up to 2: "
                                                    "upgrade palette"):
        palette.FeatureStore(tmp_path).registry.entities()


@pytest.mark.parametrize("text, problem", [
    ('{"entities": {}}', "no integer 'format' field"),
    ("[1, 2]", "no integer 'format' field"),
    ("{not json", "is not valid JSON"),
    ('{"format": 2, "entities": {}}', "not written by palette"),
])
def test_registry_file_that_is_not_a_registry(tmp_path, text, problem):
    (tmp_path / "registry.json").write_text(text)
    with pytest.raises(palette.RegistryError, match="palette registry migrate"):
        palette.FeatureStore(tmp_path).search()
    with pytest.raises(palette.RegistryError, match=problem):
        palette.registry.migrate_registry(tmp_path)
    assert (tmp_path / "registry.json").read_text() == text and not (tmp_path / "_registry").exists()