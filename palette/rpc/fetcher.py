"""Declaring an RPC feature group's fetcher: where its values come from at request time.

A ``kind="rpc"`` feature group has no table to read online: its features are fetched, per
entity key, from a service when a request needs them. The ``Fetcher`` says how:

- over HTTP: ``url`` is a template over the entity's key columns
  (``http://dispatch/couriers/{courier_id}/location``), ``fields`` maps each feature to a
  JSON path in the answer (``$.location.geohash``; default ``$.<feature>``), ``headers``
  may name secrets by environment variable (``{"Authorization": "Bearer ${DISPATCH_TOKEN}"}``:
  resolved when the model loads, never stored); ``batch_url`` (optional) is an endpoint
  taking many keys in one POST (``{"keys": [{...}, ...]}``, answering a JSON list aligned
  with them, or ``{"results": [...]}``);
- or in Python: ``function="mypkg.fetchers:courier_location"``, imported by that path
  when the model loads (never pickled), called with a dict of key values and returning a
  dict of feature values (``batch=True``: a list of such dicts, one per key, in order);
  a coroutine function is awaited on the fetcher's own event loop.

The same policy wraps both: ``timeout`` per call, ``retries`` (at most ``retry_budget`` of
the calls are retries, so a failing service is not hammered), a circuit breaker that
opens after ``breaker_failures`` failures in a row and lets one trial call through after
``breaker_reset``, at most ``concurrency`` calls in flight, and a **fallback** per
feature for whatever goes wrong: a value, ``None`` (null), or ``FAIL`` (the request fails
with a 503 naming the group). A key the service does not know (HTTP 404, or a Python
fetcher returning None) is a null, as a key the online store lacks.

``as_of``: the fetcher can answer "as of" a past time (the ``{as_of}`` placeholder in the
URL, ISO 8601, or a Python fetcher's ``as_of=`` keyword), which the offline fetch job
needs to fill history that was never served.

>>> f = Fetcher(url="http://dispatch:8080/couriers/{courier_id}/location",
...             fields={"geohash": "$.location.geohash"}, timeout="50ms", fallback={"geohash": None})
>>> f.timeout_seconds, f.path_of("geohash"), f.path_of("lat")
(0.05, ('location', 'geohash'), ('lat',))
>>> Fetcher.from_json(f.to_json()) == f
True
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Any

from palette.errors import RegistryError


class _Fail:
    """The fallback that fails the request (``FAIL``)."""

    def __repr__(self):
        return "FAIL"

    def __reduce__(self):
        return "FAIL"


FAIL = _Fail()
RPC_FALLBACK = "rpc_fallback"      # the column of an RPC group's Delta table saying a row is a fallback
METHODS = ("GET", "POST")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)$")
_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[\"([^\"]+)\"\]")
_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def seconds(what: str, value) -> float:
    """'50ms', '2s', or a number of seconds, as seconds (positive)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        secs = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise RegistryError(f"{what} {value!r}: use a number and ms or s, e.g. '50ms' or '2s'")
        secs = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
    if secs <= 0:
        raise RegistryError(f"{what} {value!r} must be positive")
    return secs


def parse_path(what: str, path: str) -> tuple:
    """``$.a.b[0]`` as ('a', 'b', 0): the JSON path subset fetchers take."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise RegistryError(f"{what}: JSON path {path!r} must start with '$', e.g. '$.location.geohash'")
    parts, pos = [], 1
    while pos < len(path):
        m = _PATH_PART.match(path, pos)
        if not m:
            raise RegistryError(f"{what}: JSON path {path!r} is not understood at {path[pos:]!r}; use "
                                "'$.field', '$.a.b', '$.items[0].x' or '$[\"odd name\"]'")
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)) if m.group(2) is not None
                     else m.group(3))
        pos = m.end()
    if not parts:
        raise RegistryError(f"{what}: JSON path {path!r} names nothing; use e.g. '$.geohash'")
    return tuple(parts)


def template_fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


@dataclass(frozen=True)
class Fetcher:
    """How an RPC group's features are fetched, and what happens when that fails (see the
    module's docstring)."""
    url: str | None = None
    function: str | None = None
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    batch_url: str | None = None
    batch: bool = False
    timeout: str | float = "100ms"
    retries: int = 0
    retry_budget: float = 0.1
    breaker_failures: int = 5
    breaker_reset: str | float = "10s"
    concurrency: int = 32
    fallback: dict[str, Any] = field(default_factory=dict)
    as_of: bool = False

    def __post_init__(self):
        if (self.url is None) == (self.function is None):
            raise RegistryError("an RPC fetcher needs url= (an HTTP endpoint) or function= (a Python function, "
                                "'package.module:function'), one of them")
        if self.function is not None and not _FUNCTION.match(self.function):
            raise RegistryError(f"function {self.function!r}: name it by import path, 'package.module:function'")
        if self.method not in METHODS:
            raise RegistryError(f"method {self.method!r}: use one of {', '.join(METHODS)}")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise RegistryError(f"url {self.url!r} must be an http:// or https:// URL template")
        if self.batch_url is not None and not self.batch_url.startswith(("http://", "https://")):
            raise RegistryError(f"batch_url {self.batch_url!r} must be an http:// or https:// URL")
        if self.batch_url is not None and self.url is None:
            raise RegistryError("batch_url is for an HTTP fetcher; a Python fetcher takes many keys with batch=True")
        if self.url is not None and self.as_of != ("as_of" in template_fields(self.url)):
            raise RegistryError("as_of=True: put {as_of} in the url template where the service takes the time, "
                                "e.g. '...?at={as_of}'" if self.as_of else
                                "the url template has {as_of}: declare as_of=True (the service answers for a time; "
                                "serving sends it empty, meaning now)")
        seconds("timeout", self.timeout)
        seconds("breaker_reset", self.breaker_reset)
        for what, v, low in (("retries", self.retries, 0), ("breaker_failures", self.breaker_failures, 1),
                             ("concurrency", self.concurrency, 1)):
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise RegistryError(f"{what}={v!r}: use an integer of at least {low}")
        if not 0.0 <= float(self.retry_budget) <= 1.0:
            raise RegistryError(f"retry_budget={self.retry_budget!r}: a fraction of the calls, between 0 and 1")
        for feature, path in dict(self.fields).items():
            parse_path(f"fields[{feature!r}]", path)
        for name, value in dict(self.headers).items():
            if not isinstance(value, str):
                raise RegistryError(f"header {name!r} must be a string (a secret: '${{ENV_VAR}}')")
        object.__setattr__(self, "headers", dict(self.headers))
        object.__setattr__(self, "fields", dict(self.fields))
        object.__setattr__(self, "fallback", {k: (FAIL if v is FAIL or v == {"fail": True} else v)
                                              for k, v in dict(self.fallback).items()})

    @property
    def timeout_seconds(self) -> float:
        return seconds("timeout", self.timeout)

    @property
    def breaker_reset_seconds(self) -> float:
        return seconds("breaker_reset", self.breaker_reset)

    def path_of(self, feature: str) -> tuple:
        return parse_path(f"fields[{feature!r}]", self.fields.get(feature, f"$.{feature}"))

    def check(self, group: str, features: dict[str, str], keys: dict[str, str]) -> None:
        """Check against the group's features and the entity's keys (at registration)."""
        from palette.feature_types import feature_type
        if RPC_FALLBACK in features:
            raise RegistryError(f"RPC group {group}: {RPC_FALLBACK!r} is the column its table keeps fallbacks in; "
                                "name the feature otherwise")
        for name in [*self.fields, *self.fallback]:
            if name not in features:
                raise RegistryError(f"RPC group {group}: the fetcher names feature {name!r}, which the group does not "
                                    f"declare; its features: {', '.join(features)}")
        for name, value in self.fallback.items():
            if value is not None and value is not FAIL and not feature_type(features[name]).accepts(value):
                raise RegistryError(f"RPC group {group}: the fallback of {name!r} is {value!r}, not a "
                                    f"{features[name]} value; use a {features[name]} value, None or FAIL")
        for template in filter(None, (self.url,)):
            unknown = [f for f in template_fields(template) if f not in keys and f != "as_of"]
            if unknown:
                raise RegistryError(f"RPC group {group}: the url template names {', '.join(unknown)}, which are not "
                                    f"keys of its entity ({', '.join(keys)}); a template takes the key columns "
                                    "(and {as_of})")

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["fallback"] = {k: ({"fail": True} if v is FAIL else v) for k, v in self.fallback.items()}
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Fetcher":
        return cls(**d)


__all__ = ["Fetcher", "FAIL", "RPC_FALLBACK", "seconds", "parse_path"]
