"""Files by URI: a local path or an object store (``s3a://``, ``s3://``, ``gs://``,
``abfss://``), for everything palette writes outside Spark — the registry's Delta table,
reports, served-feature logs, profiles' HTML.

Spark spells S3 ``s3a://`` (Hadoop's file system); Python's readers (pyarrow, delta-rs)
spell it ``s3://``: one URI names one object for both. Credentials and the endpoint come
from the standard environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_ENDPOINT_URL``, ``AWS_REGION``), the same variables ``palette.spark`` maps to
``fs.s3a.*``.

>>> join("s3a://bucket/store", "reports", "parity.html")
's3a://bucket/store/reports/parity.html'
>>> python_uri("s3a://bucket/store/_registry")
's3://bucket/store/_registry'
>>> is_local("/data/store"), is_local("file:///data/store"), is_local("s3a://b/x")
(True, True, False)
"""
from __future__ import annotations

import os
import posixpath
import tempfile
from urllib.parse import urlparse

from .errors import InvalidArgument

_S3_SCHEMES = ("s3a", "s3n", "s3")


def scheme(uri: str) -> str:
    """The URI's scheme, '' for a plain path (a Windows drive letter is not a scheme)."""
    head = str(uri).split("/", 1)[0]
    return head[:-1].lower() if head.endswith(":") and len(head) > 2 else ""


def is_local(uri: str) -> bool:
    return scheme(uri) in ("", "file")


def local_path(uri: str) -> str:
    """The file system path of a local URI (``file:///x`` -> ``/x``)."""
    return urlparse(str(uri)).path if scheme(uri) == "file" else str(uri)


def join(uri: str, *parts: str) -> str:
    uri = str(uri)
    if is_local(uri) and scheme(uri) == "":
        return os.path.join(uri, *parts)
    return posixpath.join(uri.rstrip("/"), *parts)


def python_uri(uri: str) -> str:
    """The spelling delta-rs and pyarrow read: ``s3a://``/``s3n://`` -> ``s3://``; a local
    URI -> its path."""
    s = scheme(uri)
    if s in ("", "file"):
        return local_path(uri)
    if s in _S3_SCHEMES:
        return "s3://" + str(uri).split("://", 1)[1]
    return str(uri)


def storage_options(uri: str) -> dict[str, str] | None:
    """delta-rs options for ``uri`` from the standard environment: plain HTTP endpoints (a
    local S3-compatible server) must be allowed explicitly, and S3 commits rely on S3's
    conditional writes (put-if-absent), which is what makes concurrent commits safe there."""
    if scheme(uri) not in _S3_SCHEMES:
        return None
    opts = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if endpoint:
        opts["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            opts["AWS_ALLOW_HTTP"] = "true"
        region = region or "us-east-1"                # an S3-compatible server's usual signing region
    if region:                                        # else AWS's own resolution (profile, bucket's region)
        opts["AWS_REGION"] = region
    return opts


def filesystem(uri: str):
    """(pyarrow file system, path inside it) for ``uri``."""
    import pyarrow.fs as pafs
    s = scheme(uri)
    if s in ("", "file"):
        return pafs.LocalFileSystem(), os.path.abspath(local_path(uri))
    if s in _S3_SCHEMES:
        opts = storage_options(uri)
        endpoint = opts.get("AWS_ENDPOINT_URL")
        kwargs = {"region": opts["AWS_REGION"]} if "AWS_REGION" in opts else {}
        if endpoint:
            parsed = urlparse(endpoint)
            kwargs.update(endpoint_override=parsed.netloc, scheme=parsed.scheme or "https")
        return pafs.S3FileSystem(**kwargs), str(uri).split("://", 1)[1]
    try:
        return pafs.FileSystem.from_uri(str(uri))
    except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for an unknown scheme
        raise InvalidArgument(f"cannot write to {uri!r}: {e}. Use a local path or an s3a://, gs:// or "
                              "abfss:// URI") from None


def write_bytes(uri: str, data: bytes) -> str:
    """Write ``data`` to ``uri`` whole or not at all: a local file through a temporary file
    and a rename; an object by one PUT (an object store never shows a partial object)."""
    if is_local(uri):
        path = os.path.abspath(local_path(uri))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        try:
            os.fchmod(fd, 0o666 & ~_umask())             # as open() would: readable by the readers a umask allows
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path
    fs, path = filesystem(uri)
    with fs.open_output_stream(path) as out:
        out.write(data)
    return str(uri)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def makedirs(uri: str) -> None:
    """Create the folder ``uri`` (on object storage: check the bucket answers), so a bad
    destination is found when it is named, not at the first write."""
    fs, path = filesystem(uri)
    fs.create_dir(path, recursive=True)


def write_text(uri: str, text: str) -> str:
    return write_bytes(uri, text.encode("utf-8"))


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with fs.open_input_stream(path) as f:
        return f.read()


def exists(uri: str) -> bool:
    import pyarrow.fs as pafs
    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def entries(uri: str) -> list[tuple[str, bool, int]]:
    """(name, is a folder, modification time in microseconds) of what is directly under
    ``uri``, by name (none when it does not exist)."""
    import pyarrow.fs as pafs
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    found = fs.get_file_info(pafs.FileSelector(path))
    return sorted((i.base_name, i.type == pafs.FileType.Directory, i.mtime_ns // 1000 if i.mtime_ns else 0)
                  for i in found)


def listdir(uri: str) -> list[str]:
    """The names of the files directly under ``uri``, sorted."""
    return [name for name, folder, _ in entries(uri) if not folder]


__all__ = ["entries", "exists", "listdir", "makedirs", "filesystem", "is_local", "join", "local_path", "python_uri", "read_bytes", "scheme",
           "storage_options", "write_bytes", "write_text"]
