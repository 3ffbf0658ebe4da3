"""Where the registry lives: a Delta table at ``<store root>/_registry``, one row per
entity, feature group (or embedding version) and model usage record.

It is read and written with delta-rs, so it needs no Spark and works wherever Delta does
— a local folder or an object store (``s3a://``, ``gs://``, ``abfss://``) — and Spark can
read it like any Delta table. A registration reads the table at some version, checks the
new definitions against it and commits a MERGE of the rows it changes; Delta's optimistic
concurrency refuses the commit if another writer committed since (locally by an atomic
create-if-absent of the log file; on S3 by a conditional PUT), and the registration is
checked again against the newer table and retried. So two writers registering different
groups both land; two registering the same group differently get the usual "registered
differently" error for the second, never a lost write. Its history is Delta's log
(``DESCRIBE HISTORY``, time travel); ``palette registry export`` prints it as sorted JSON
for review or version control.

A root whose registry is the ``registry.json`` file of palette 0.x is read only after
``palette registry migrate --store ROOT``, which copies it into the table in one commit
and keeps the file as ``registry.json.migrated``: never silently.
"""
from __future__ import annotations

import json
import random
import re
import threading
import time

from . import uris
from .errors import RegistryConflict, RegistryError

TABLE = "_registry"
LEGACY_FILE = "registry.json"
PARTS = ("entities", "feature_groups", "usage")
_KIND = {"entities": "entity", "feature_groups": "feature_group", "usage": "usage"}
_PART = {v: k for k, v in _KIND.items()}
COMPACT_AT = 32               # data files before a registration compacts them into one
ATTEMPTS = 40                  # commits refused because another writer got there first, then give up


def _schema():
    import pyarrow as pa
    return pa.schema([("kind", pa.string()), ("id", pa.string()), ("definition", pa.string()),
                      ("format", pa.int32())])


def _dump(value) -> str:
    return json.dumps(value, sort_keys=True)


def empty() -> dict:
    return {part: {} for part in PARTS}


class RegistryTable:
    def __init__(self, root: str, format_version: int):
        self.root = str(root)
        self.uri = uris.join(self.root, TABLE)
        self.format = format_version
        self._table = None
        self._cached: tuple[int, dict] | None = None
        self._lock = threading.RLock()        # one DeltaTable object: a check and its commit see one version

    # -- reading ------------------------------------------------------------------------
    def _open(self):
        from deltalake import DeltaTable
        if self._table is None:
            target, opts = uris.python_uri(self.uri), uris.storage_options(self.uri)
            try:
                found = DeltaTable.is_deltatable(target, storage_options=opts)
            except OSError as e:
                raise RegistryError(f"cannot reach the registry table {self.uri} ({_one_line(e)}): on object storage palette signs "
                                    "with the standard environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                                    "AWS_ENDPOINT_URL for an S3-compatible server, AWS_REGION)") from None
            except BaseException as e:                    # delta-rs panics (a BaseException) on a malformed URL
                if type(e).__name__ != "PanicException":
                    raise
                raise RegistryError(f"the store root {self.root!r} is not a URL the registry can open ({e}): use a "
                                    "local path or e.g. s3a://bucket/palette (letters, digits, - _ . / only)") from None
            if not found:
                self._refuse_legacy()
                return None
            self._table = DeltaTable(target, storage_options=opts)
        else:
            self._table.update_incremental()
        return self._table

    def _refuse_legacy(self) -> None:
        legacy = uris.join(self.root, LEGACY_FILE)
        if uris.is_local(self.root) and uris.exists(legacy):
            raise RegistryError(f"{legacy} is a registry of an older palette; this one keeps the registry in the Delta "
                                f"table {self.uri}. Migrate it once with: palette registry migrate --store {self.root}")

    def load(self) -> tuple[int, dict]:
        """(table version or -1, the registry as {part: {id: definition}}), shared with later
        reads of the same version: read it, do not change it."""
        with self._lock:
            return self._load()

    def _load(self) -> tuple[int, dict]:
        table = self._open()
        if table is None:
            return -1, empty()
        version = table.version()
        if self._cached is None or self._cached[0] != version:
            self._cached = (version, self._decode(_rows(table)))
        return self._cached

    def _decode(self, rows: list[dict]) -> dict:
        data = empty()
        for row in rows:
            if row["format"] > self.format:
                raise RegistryError(f"{self.uri} holds {row['kind']} {row['id']!r} in registry format {row['format']}; "
                                    f"this palette reads formats up to {self.format}: upgrade palette to read it")
            data[_PART[row["kind"]]][row["id"]] = json.loads(row["definition"])
        return data

    # -- writing ------------------------------------------------------------------------
    def update(self, change) -> None:
        """Run ``change(data)`` on the newest registry and commit what it changed; when another
        writer commits first, run it again on the newer registry (``change`` re-checks)."""
        from deltalake.exceptions import DeltaError
        for attempt in range(ATTEMPTS):
            with self._lock:
                version, current = self._load()
                data = json.loads(json.dumps(current))
                change(data)
                rows = [{"kind": _KIND[part], "id": key, "definition": _dump(value), "format": self.format}
                        for part in PARTS for key, value in data[part].items()
                        if key not in current[part] or _dump(current[part][key]) != _dump(value)]
                if not rows:
                    return
                try:
                    self._commit(version, rows)
                except (DeltaError, OSError) as e:
                    self._table = None
                    if self._newest_version() <= version:         # nobody else committed: a real failure
                        raise RegistryError(f"could not commit to the registry table {self.uri}: "
                                            f"{_one_line(e)}") from None
                else:
                    self._compact()
                    return
            time.sleep(random.uniform(0, min(1.0, 0.02 * 2 ** attempt)))    # lost a race: full jitter, check again
        raise RegistryConflict(f"the registry at {self.uri} changed under each of {ATTEMPTS} attempts to commit this "
                               "registration (many writers at once): run it again")

    def _newest_version(self) -> int:
        table = self._open()
        return -1 if table is None else table.version()

    def _compact(self) -> None:
        """Each MERGE adds a small file: past COMPACT_AT of them, rewrite them as one, so a
        reader on object storage makes a few GETs, not hundreds (a lost race is left to the
        next writer)."""
        from deltalake.exceptions import DeltaError
        table = self._open()
        if table is not None and len(table.file_uris()) > COMPACT_AT:
            try:
                table.optimize.compact()
            except (DeltaError, OSError):                  # the registration is in; the next one compacts
                self._table = None

    def _commit(self, version: int, rows: list[dict]) -> None:
        """Commit ``rows`` on top of ``version`` (-1: create the table) or fail: delta-rs's own
        retries are off, since they would re-apply a commit to a newer table (even a create,
        as an append) without the registration being checked against it."""
        import pyarrow as pa
        from deltalake import CommitProperties, write_deltalake
        source = pa.Table.from_pylist(rows, schema=_schema())
        once = CommitProperties(max_commit_retries=0)
        if version < 0:
            write_deltalake(uris.python_uri(self.uri), source, mode="error",
                            storage_options=uris.storage_options(self.uri), commit_properties=once)
        else:
            (self._table.merge(source, predicate="t.kind = s.kind AND t.id = s.id", source_alias="s",
                               target_alias="t", commit_properties=once)
             .when_matched_update_all().when_not_matched_insert_all().execute())

    def export(self) -> str:
        """The registry as sorted, indented JSON (what ``registry.json`` held)."""
        return json.dumps({"format": self.format, **self.load()[1]}, indent=2, sort_keys=True) + "\n"


def _one_line(e: BaseException) -> str:
    """delta-rs's error message on one line (it spreads causes over indented, coloured lines)."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m|↳", " ", str(e)).split())


def _rows(table) -> list[dict]:
    """The table's rows, read file by file with pyarrow (delta-rs's own Arrow export leaves
    some processes aborting at exit: delta-io/delta-rs#2184)."""
    import pyarrow.parquet as pq
    rows = []
    for uri in table.file_uris():
        fs, path = uris.filesystem(uri)
        rows += pq.read_table(path, filesystem=fs).to_pylist()
    return rows


def migrate(root: str, format_version: int, check) -> int:
    """Copy ``<root>/registry.json`` into the registry table (one commit), after ``check``
    validates its definitions; keep the file as ``registry.json.migrated``. Returns the
    number of rows written."""
    import os
    table = RegistryTable(root, format_version)
    legacy = uris.join(table.root, LEGACY_FILE)
    if not uris.is_local(root) or not os.path.exists(uris.local_path(legacy)):
        from deltalake import DeltaTable
        if DeltaTable.is_deltatable(uris.python_uri(table.uri), storage_options=uris.storage_options(table.uri)):
            raise RegistryError(f"{root} is already migrated: its registry is the Delta table {table.uri}")
        raise RegistryError(f"{legacy} does not exist: there is nothing to migrate at {root}")
    path = uris.local_path(legacy)
    try:
        data = json.loads(open(path).read())
    except ValueError as e:
        raise RegistryError(f"{legacy} is not valid JSON ({e}); restore it from version control or a backup, "
                            "then migrate") from None
    if not isinstance(data, dict) or not isinstance(data.get("format"), int) or isinstance(data.get("format"), bool):
        raise RegistryError(f"{legacy} is not a palette registry: it has no integer 'format' field")
    if data["format"] > 1:
        raise RegistryError(f"{legacy} has registry file format {data['format']}; palette's registry files stopped "
                            "at format 1: it was not written by palette")
    for part in PARTS:
        data.setdefault(part, {})
    try:
        check(data)
    except (TypeError, KeyError, AttributeError) as e:
        raise RegistryError(f"{legacy} holds a definition this palette cannot read ({e!r}); fix it or restore it "
                            "from version control, then migrate") from None
    from deltalake import DeltaTable
    if DeltaTable.is_deltatable(uris.python_uri(table.uri)):
        raise RegistryError(f"{root} has both {legacy} and the registry table {table.uri}: the table wins; move "
                            f"{legacy} away once you have checked the table holds what you expect "
                            "(palette registry export)")
    rows = [{"kind": _KIND[part], "id": key, "definition": _dump(value), "format": format_version}
            for part in PARTS for key, value in data[part].items()]
    from deltalake.exceptions import DeltaError
    try:
        table._commit(-1, rows)
    except DeltaError as e:
        raise RegistryError(f"could not create the registry table {table.uri} ({_one_line(e)}): another migration "
                            "may have run at the same time; check it with palette registry export") from None
    os.replace(path, path + ".migrated")
    return len(rows)
