"""The JVM-free runtime cannot import pyspark, by its layout.

Every import statement of every module the runtime can reach — at module level or inside
a function, relative or absolute, following palette's own modules transitively (a
package's ``__init__`` counts whenever one of its modules is imported) — is read from the
source. None of them may name pyspark, py4j or delta, or a palette module that does.
So no code path of the serving runtime can import Spark, whatever a caller does;
``test_runtime_jvm_free.py`` checks the same thing by running it where pyspark is blocked.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# setup.cfg's package_dir: import name prefix -> folder.
FOLDERS = {"palette.dsl": "dsl", "palette.transformers": "transformers", "palette.parity": "parity",
           "palette.jobs": "jobs", "palette": "palette"}
FORBIDDEN = ("pyspark", "py4j", "delta")
# The runtime and everything that serves requests with it.
JVM_FREE_ROOTS = ["palette.transformers.runtime", "palette.online", "palette.serve", "palette.lookup_plan", "palette.errors",
                  "palette.parity.worker", "palette.parity.compare", "palette.logs.writer", "palette.mlflow.pyfunc",
                  "palette.mlflow.uri"]


def source_of(module: str) -> Path | None:
    for prefix, folder in FOLDERS.items():
        if module == prefix or module.startswith(prefix + "."):
            rest = module[len(prefix):].lstrip(".").replace(".", "/")
            base = ROOT / folder / rest if rest else ROOT / folder
            if (base / "__init__.py").is_file():
                return base / "__init__.py"
            if base.with_suffix(".py").is_file():
                return base.with_suffix(".py")
            return None
    return None


def module_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    folder, parts = rel.parts[0], list(rel.with_suffix("").parts[1:])
    prefix = next(p for p, f in FOLDERS.items() if f == folder)
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([prefix, *parts])


def imports_of(path: Path) -> set[str]:
    """Every module an import statement in ``path`` names (with ``from X import y``, both X
    and X.y, since y may be a submodule)."""
    module = module_of(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            out.add(target)
            lazy = lazy_names(target)
            out.update(lazy.get(a.name, f"{target}.{a.name}") for a in node.names)
    return out


def lazy_names(package: str) -> dict[str, str]:
    """A package's names imported on first use (its ``_LAZY`` table: name -> module)."""
    src = source_of(package)
    if src is None or src.name != "__init__.py":
        return {}
    for node in ast.parse(src.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_LAZY" for t in node.targets):
            table = ast.literal_eval(node.value)
            return {k: f"{package}{v}" if v.startswith(".") else v for k, v in table.items()}
    return {}


def parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def closure(roots: list[str]) -> dict[str, set[str]]:
    """module -> the modules it imports, for every palette module reachable from ``roots``
    (every module under a root package included)."""
    todo = []
    for r in roots:
        src = source_of(r)
        assert src is not None, f"{r} has no source"
        todo.append(r)
        if src.name == "__init__.py":
            todo += [module_of(p) for p in src.parent.rglob("*.py")]
    seen: dict[str, set[str]] = {}
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        src = source_of(m)
        if src is None:
            continue
        seen[m] = imports_of(src)
        todo += [x for x in seen[m] | set(parents(m)) if x not in seen]
    return seen


def test_the_layout_walk_sees_spark_imports():
    """The check can fail: the Spark stages and the offline store are found importing pyspark,
    also through a name the package imports lazily."""
    graph = closure(["palette.transformers.dsl_stage", "palette.offline"])
    assert any(i.split(".")[0] == "pyspark" for i in graph["palette.transformers.dsl_stage"])
    assert any(i.split(".")[0] == "delta" for i in graph["palette.offline"])
    assert lazy_names("palette")["FeatureStore"] == "palette.store"
    assert lazy_names("palette.transformers")["DSLTransformer"] == "palette.transformers.dsl_stage"
    store = closure(["palette.store"])
    assert any(i.split(".")[0] == "pyspark" for imps in store.values() for i in imps)


@pytest.mark.parametrize("root", JVM_FREE_ROOTS)
def test_runtime_import_closure_has_no_spark(root):
    graph = closure([root])
    assert len(graph) > 1
    bad = sorted(f"{m} imports {i}" for m, imps in graph.items() for i in imps if i.split(".")[0] in FORBIDDEN)
    assert not bad, "the JVM-free runtime can reach Spark:\n" + "\n".join(bad)
