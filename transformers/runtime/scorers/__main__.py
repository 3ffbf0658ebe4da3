"""``python -m palette.transformers.runtime.scorers [--write | --check]``: print the supported
stages table, rewrite it in docs/serving.md, or exit 1 when the doc is stale."""
import sys

from ._docs import doc_path, sync, table

if "--write" in sys.argv:
    sync(write=True)
    print(f"wrote {doc_path()}")
elif "--check" in sys.argv:
    ok = sync()
    print("docs/serving.md is current" if ok else "docs/serving.md is stale: run with --write")
    sys.exit(0 if ok else 1)
else:
    print(table())
