"""Process-wide defaults: where the feature store lives and which online store to read.

Explicit arguments win, then ``configure(...)``, then the environment
(``$PALETTE_STORE_ROOT``, ``$PALETTE_ONLINE_STORE``).

>>> import palette
>>> palette.configure(online_store="sqlite:///tmp/online.db")
>>> default_online_store()
'sqlite:///tmp/online.db'
>>> palette.configure(online_store="")           # back to the environment
"""
from __future__ import annotations

import os

from .errors import NotConfigured

_CONFIGURED: dict[str, str] = {}


def configure(store_root: str | os.PathLike | None = None, *, online_store: str | None = None) -> None:
    """Set this process's defaults: the feature store root (else ``$PALETTE_STORE_ROOT``) and
    the online store URL (else ``$PALETTE_ONLINE_STORE``), e.g.
    ``configure("/data/palette", online_store="sqlite:////data/online.db")``. An empty
    string forgets the configured value."""
    for key, value in (("root", store_root), ("online_store", online_store)):
        if value is None:
            continue
        if value == "":
            _CONFIGURED.pop(key, None)
        else:
            _CONFIGURED[key] = absolute_root(value) if key == "root" else str(value)


def default_root(explicit: str | None = None) -> str:
    root = explicit or _CONFIGURED.get("root") or os.environ.get("PALETTE_STORE_ROOT")
    if not root:
        raise NotConfigured("no feature store is configured: pass storeRoot=... to the stage, call "
                            "palette.configure(store_root=...), or set PALETTE_STORE_ROOT")
    return absolute_root(root)


def absolute_root(root: str) -> str:
    """A local store root made absolute (against the working directory), so a stage saved
    with ``storeRoot="palette-store"`` still finds its store when loaded from elsewhere;
    a URI (``s3://…``, ``file:/…``) is kept as given."""
    root = str(root)
    return root if ":" in root.split("/", 1)[0] else os.path.abspath(root)


def default_online_store(explicit: str | None = None) -> str:
    url = explicit or _CONFIGURED.get("online_store") or os.environ.get("PALETTE_ONLINE_STORE")
    if not url:
        raise NotConfigured("no online store is configured: pass online_store=... (e.g. "
                            "'sqlite:////data/online.db' or 'redis://localhost:6379/0'), call "
                            "palette.configure(online_store=...), or set PALETTE_ONLINE_STORE (on the command line: "
                            "--online-store URL)")
    return url


__all__ = ["configure", "default_root", "default_online_store"]
