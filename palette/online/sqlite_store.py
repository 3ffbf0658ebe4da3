"""The embedded online store: one SQLite file, no server.

``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's spelling),
with optional ``?timeout_ms=`` (how long a read or write waits for a lock; default 1000
for reads, 60000 for writes).

Layout: one table per feature group, ``"fg:<entity>:<group>"(k TEXT PRIMARY KEY, ts
INTEGER, run INTEGER, v BLOB) WITHOUT ROWID``: the encoded key, the event time in µs, the
materialization run that wrote it, the encoded values (a BLOB, so floats keep every bit:
a REAL column would turn NaN into NULL and store -0.0 as 0). Two more tables hold the
layouts and the watermarks.

The file is in WAL mode: readers never wait for the writer and never see part of a
batch (each batch is one transaction); any number of reader processes and one writer at a
time (several writers queue on the lock). Each thread gets its own connection; readers
open the file read-only. A connection that failed is closed and the next call opens the
file again (a repaired file serves without a restart), and a reader checks every 0.25 s
that the path still names the file it opened, so a file replaced under it (a new inode:
``publish``) is read within a second.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable
from urllib.parse import parse_qs, urlsplit

from palette.errors import BadStoreURL, OnlineStoreError, OnlineStoreUnavailable

from .base import Found, GroupLayout, OnlineStore, Record, redact

_MAX_VARS = 10_000          # keys per SELECT ... IN (...) statement
_RECHECK_SECONDS = 0.25     # how often a reader checks that the path still names the file it opened


def _table(group_id: str) -> str:
    return '"fg:' + group_id.replace('"', '""') + '"'


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:`` URL names: ``sqlite:///rel.db`` -> ``rel.db``, ``sqlite:////abs.db`` -> ``/abs.db``."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise BadStoreURL(f"{redact(url)!r} is not a SQLite URL: use sqlite:///relative/path.db or "
                          "sqlite:////absolute/path.db")
    if parts.netloc:
        raise BadStoreURL(f"{redact(url)!r} has a host part ({parts.netloc!r}), but a SQLite store is a local file: "
                          f"sqlite:///{parts.netloc}{parts.path} names the relative path {parts.netloc}{parts.path}, "
                          f"sqlite:////{parts.netloc}{parts.path} the absolute path /{parts.netloc}{parts.path}")
    if not parts.path.startswith("/") or parts.path == "/" or parts.path.endswith("/"):
        raise BadStoreURL(f"{redact(url)!r} names no file: use sqlite:///relative/path.db or "
                          "sqlite:////absolute/path.db")
    return Path(parts.path[1:])


def publish(source: "str | os.PathLike", url: str) -> Path:
    """Put the SQLite file ``source`` (a store filled in a new file, e.g. by ``palette
    materialize --full --online-store sqlite:///new.db``) in place of the store at ``url``,
    atomically: running readers (``palette serve``) go on with the old file and move to the
    new one within a second, without a restart.

    Checks the new file (``PRAGMA quick_check``) and folds its write-ahead log into it first,
    and removes the old file's ``-wal`` / ``-shm`` beside the target: a plain ``os.replace``
    over a file in WAL mode leaves those behind, and SQLite then reads the *old* log over the
    new file (the new file looks like the old one, silently). No writer may be using the old
    file meanwhile. ``source`` must be on the same file system as the target.

    >>> publish("/data/online-new.db", "sqlite:////data/online.db")      # doctest: +SKIP
    PosixPath('/data/online.db')
    """
    target, source = sqlite_path(url), Path(source)
    if not source.is_file():
        raise BadStoreURL(f"cannot publish {source}: no such file")
    try:
        conn = sqlite3.connect(f"file:{source}?mode=rw", uri=True, isolation_level=None)
        try:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
            if problems != ["ok"]:
                raise OnlineStoreError(f"cannot publish {source}: it is damaged ({'; '.join(problems[:3])})")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode=DELETE")
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise OnlineStoreError(f"cannot publish {source}: {type(e).__name__}: {e}") from e
    with open(source, "rb") as f:
        os.fsync(f.fileno())
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{target}{suffix}")
    os.replace(source, target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return target


class SQLiteStore(OnlineStore):
    scheme = "sqlite"

    def __init__(self, url: str, *, timeout_ms: float | None = None, write_timeout_ms: float | None = None,
                 clock=None):
        super().__init__(url, **({"clock": clock} if clock else {}))
        self.path = sqlite_path(url)
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.timeout = float(timeout_ms if timeout_ms is not None else query.get("timeout_ms", 1000)) / 1000
        self.write_timeout = float(write_timeout_ms if write_timeout_ms is not None
                                   else query.get("write_timeout_ms", 60_000)) / 1000
        self._local = threading.local()
        self._connections: set[sqlite3.Connection] = set()
        self._lock = threading.Lock()
        self._generation = 0
        self._sql: dict[tuple, str] = {}

    # -- connections --------------------------------------------------------------------
    def _fail(self, e: Exception, doing: str, conn: sqlite3.Connection | None = None):
        if conn is not None:
            self._discard(conn)          # the next call opens the file afresh (it may be repaired by then)
        raise OnlineStoreUnavailable(f"online store {self.url} ({self.path}) is unavailable while {doing}: "
                                     f"{type(e).__name__}: {e}") from e

    def _missing(self) -> OnlineStoreUnavailable:
        if self.path.exists():
            return OnlineStoreUnavailable(f"online store {self.url} is unavailable: {self.path} is not a file")
        where = self.path if self.path.is_absolute() else f"{self.path} (relative to {os.getcwd()})"
        return OnlineStoreUnavailable(
            f"online store {self.url} is unavailable: the file {where} does not exist. Check the URL "
            "(sqlite:///relative/path.db, sqlite:////absolute/path.db), or fill it with "
            "palette materialize --online-store URL")

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _connect(self, write: bool) -> sqlite3.Connection:
        key = "writer" if write else "reader"
        held = getattr(self._local, key, None)
        if held is not None:
            conn, identity, generation, checked = held
            now = time.monotonic()
            if generation == self._generation and now - checked < _RECHECK_SECONDS:
                return conn
            if generation == self._generation and self._identity() == identity:
                self._local.__dict__[key] = (conn, identity, generation, now)
                return conn
            self._discard(conn)          # reopened, or the file was replaced (a new inode): open it afresh
        if not write and not self.path.is_file():
            raise self._missing()
        try:
            if write:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            mode = "rwc" if write else "ro"
            conn = sqlite3.connect(f"file:{self.path}?mode={mode}", uri=True, isolation_level=None,
                                   timeout=self.write_timeout if write else self.timeout,
                                   check_same_thread=False, cached_statements=256)
            if not write:                # up to 32 MiB of pages kept per reader: lookups rarely leave it
                conn.execute("PRAGMA cache_size=-32768")
            if write:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript("""
                    CREATE TABLE IF NOT EXISTS palette_layouts (gid TEXT PRIMARY KEY, layout TEXT NOT NULL);
                    CREATE TABLE IF NOT EXISTS palette_watermarks (gid TEXT PRIMARY KEY, info TEXT NOT NULL);
                """)
        except sqlite3.Error as e:
            self._fail(e, "connecting")
        except OSError as e:
            self._fail(e, "creating its folder")
        self._local.__dict__[key] = (conn, self._identity(), self._generation, time.monotonic())
        with self._lock:
            self._connections.add(conn)
        return conn

    def _discard(self, conn: sqlite3.Connection) -> None:
        """Close ``conn`` and forget it (this thread's connection)."""
        for key in ("reader", "writer"):
            held = self._local.__dict__.get(key)
            if held is not None and held[0] is conn:
                del self._local.__dict__[key]
        with self._lock:
            self._connections.discard(conn)
        try:
            conn.close()
        except sqlite3.Error:
            pass

    def _query(self, sql: str, params=(), write: bool = False) -> list:
        conn = self._connect(write)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return []
            self._fail(e, "reading" if not write else "writing", conn)
        except sqlite3.Error as e:
            self._fail(e, "reading" if not write else "writing", conn)

    def reopen(self) -> None:
        """Open the file afresh on every thread's next call (``palette serve`` reload)."""
        with self._lock:
            self._generation += 1
        self._layouts.clear()

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._connections.clear()
            self._generation += 1
        self._local = threading.local()

    def ping(self) -> None:
        self._query("SELECT count(*) FROM sqlite_master")

    # -- layouts and watermarks ----------------------------------------------------------
    def _load_layout(self, group_id: str) -> GroupLayout | None:
        if not self.path.is_file():
            return None
        rows = self._query("SELECT layout FROM palette_layouts WHERE gid = ?", (group_id,))
        return GroupLayout.from_json(json.loads(rows[0][0])) if rows else None

    def _layout_ids(self) -> list[str]:
        if not self.path.is_file():
            return []
        return [r[0] for r in self._query("SELECT gid FROM palette_layouts")]

    def _save_layout(self, layout: GroupLayout) -> None:
        conn = self._connect(True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {_table(layout.group_id)} "
                         "(k TEXT PRIMARY KEY, ts INTEGER NOT NULL, run INTEGER NOT NULL, v BLOB NOT NULL) WITHOUT ROWID")
            conn.execute("INSERT INTO palette_layouts (gid, layout) VALUES (?, ?) "
                         "ON CONFLICT(gid) DO UPDATE SET layout = excluded.layout",
                         (layout.group_id, json.dumps(layout.to_json())))
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback(conn)
            self._fail(e, f"setting up {layout.group_id}", conn)

    def watermark(self, group_id: str) -> dict | None:
        if not self.path.is_file():
            return None
        rows = self._query("SELECT info FROM palette_watermarks WHERE gid = ?", (group_id,))
        return json.loads(rows[0][0]) if rows else None

    def set_watermark(self, group_id: str, info: dict) -> None:
        self._query("INSERT INTO palette_watermarks (gid, info) VALUES (?, ?) "
                    "ON CONFLICT(gid) DO UPDATE SET info = excluded.info", (group_id, json.dumps(info)), write=True)
        # The watermark ends a group's run: fold the write-ahead log into the file, so that the
        # .db alone holds the run (a copy of it, an image built from it). PASSIVE waits for no
        # reader; one reading an older snapshot keeps those frames in the log until the next run.
        self._query("PRAGMA wal_checkpoint(PASSIVE)", write=True)

    def drop(self, group_id: str) -> None:
        conn = self._connect(True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"DROP TABLE IF EXISTS {_table(group_id)}")
            conn.execute("DELETE FROM palette_layouts WHERE gid = ?", (group_id,))
            conn.execute("DELETE FROM palette_watermarks WHERE gid = ?", (group_id,))
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback(conn)
            self._fail(e, f"dropping {group_id}", conn)
        self._layouts.pop(group_id, None)

    @staticmethod
    def _rollback(conn):
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    # -- rows -------------------------------------------------------------------------------
    def write(self, layout: GroupLayout, records: Iterable[Record]) -> int:
        table = _table(layout.group_id)
        # Latest wins: the value changes only when the stored event time is at most the
        # bound; the run stamp moves forward either way (the run saw the key).
        upsert = (f"INSERT INTO {table} (k, ts, run, v) SELECT ?1, ?2, ?3, ?4 WHERE true "
                  f"ON CONFLICT(k) DO UPDATE SET "
                  f"ts = CASE WHEN {table}.ts <= ?5 THEN excluded.ts ELSE {table}.ts END, "
                  f"v = CASE WHEN {table}.ts <= ?5 THEN excluded.v ELSE {table}.v END, "
                  f"run = max({table}.run, excluded.run)")
        delete = f"DELETE FROM {table} WHERE k = ?1 AND ts <= ?2"
        touch = f"UPDATE {table} SET run = max(run, ?2) WHERE k = ?1"
        puts, removes, touches = [], [], []
        for r in records:
            if r.payload is None:
                removes.append((r.key, r.bound))
                touches.append((r.key, r.run))
            else:
                puts.append((r.key, r.ts, r.run, r.payload, r.bound))
        conn = self._connect(True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            if puts:
                conn.executemany(upsert, puts)
            if removes:
                conn.executemany(delete, removes)
                conn.executemany(touch, touches)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback(conn)
            if "no such table" in str(e):
                raise OnlineStoreUnavailable(f"online store {self.url}: feature group {layout.group_id} is not "
                                             "set up here (OnlineStore.setup)") from e
            self._fail(e, f"writing {layout.group_id}", conn)
        return len(puts) + len(removes)

    def _select(self, table: str, n: int) -> str:
        key = (table, n)
        sql = self._sql.get(key)
        if sql is None:
            sql = (f"SELECT k, ts, v FROM {table} WHERE k = ?" if n == 1 else
                   f"SELECT k, ts, v FROM {table} WHERE k IN ({','.join('?' * n)})")
            if len(self._sql) < 512:
                self._sql[key] = sql
        return sql

    def _read(self, requests: list[tuple[GroupLayout, list[str]]]) -> list[list[Found | None]]:
        conn = self._connect(False)
        out = []
        try:
            for layout, keys in requests:
                table = _table(layout.group_id)
                if len(keys) == 1:
                    row = conn.execute(self._select(table, 1), keys).fetchone()
                    out.append([None if row is None else (row[1], row[2])])
                    continue
                found = {}
                unique = list(dict.fromkeys(keys))
                for i in range(0, len(unique), _MAX_VARS):
                    chunk = unique[i:i + _MAX_VARS]
                    for k, ts, v in conn.execute(self._select(table, len(chunk)), chunk):
                        found[k] = (ts, v)
                out.append([found.get(k) for k in keys])
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                raise OnlineStoreUnavailable(f"online store {self.url}: feature group {layout.group_id} is not "
                                             "set up here; materialize it first") from e
            self._fail(e, "reading", conn)
        except sqlite3.Error as e:
            self._fail(e, "reading", conn)
        return out

    def _prepare_read(self, layouts):
        """One statement for one key of each layout: a UNION ALL of primary-key lookups (a
        null key matches no row)."""
        sql = " UNION ALL ".join(f"SELECT {i}, ts, v FROM {_table(layout.group_id)} WHERE k = ?{i + 1}"
                                 for i, layout in enumerate(layouts))
        n = len(layouts)

        def read_one(keys: list) -> list:
            conn = self._connect(False)
            out = [None] * n
            try:
                for i, ts, v in conn.execute(sql, keys):
                    out[i] = (ts, v)
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):
                    raise OnlineStoreUnavailable(f"online store {self.url}: a feature group of "
                                                 f"{', '.join(lay.group_id for lay in layouts)} is not set up here; "
                                                 "materialize it first") from e
                self._fail(e, "reading", conn)
            except sqlite3.Error as e:
                self._fail(e, "reading", conn)
            return out
        return read_one

    def count(self, group_id: str) -> int:
        rows = self._query(f"SELECT count(*) FROM {_table(group_id)}")
        return rows[0][0] if rows else 0

    def purge(self, layout: GroupLayout, before_run: int) -> int:
        conn = self._connect(True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            before = conn.total_changes
            conn.execute(f"DELETE FROM {_table(layout.group_id)} WHERE run < ?", (before_run,))
            changed = conn.total_changes - before
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback(conn)
            self._fail(e, f"purging {layout.group_id}", conn)
        return changed


__all__ = ["SQLiteStore", "publish", "sqlite_path"]
