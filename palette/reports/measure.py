"""A measured quantity, the limit it must keep, and its verdict."""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass

from palette.errors import InvalidArgument

_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq}


@dataclass(frozen=True)
class Limit:
    """``value op limit`` must hold: ``Limit("<=", 0.01)``."""
    op: str
    value: float

    def __post_init__(self):
        if self.op not in _OPS:
            raise InvalidArgument(f"unknown comparison {self.op!r}; use one of {', '.join(_OPS)}")

    def holds(self, x: float) -> bool:
        return _OPS[self.op](x, self.value)

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}" if math.isfinite(x) else str(x)
    return f"{x:,}" if isinstance(x, int) else str(x)


@dataclass
class Measure:
    """One figure of a report: what was measured (``name``), of what (``subject``), its
    ``value``, and the ``limit`` it must keep (None: shown, never judged). A value that
    could not be measured (None) is not a breach; the report says it is missing.

    >>> m = Measure("match_rate", "2026-12-02 eta restaurant:fg:prep", 0.82, Limit(">=", 0.9))
    >>> m.status, str(m)
    ('fail', '2026-12-02 eta restaurant:fg:prep: match_rate 0.82 (must be >= 0.9)')
    """
    name: str
    subject: str
    value: float | int | None
    limit: Limit | None = None
    detail: str = ""
    failed: bool | None = None        # a decision the limit alone does not make (a significance test's)

    @property
    def status(self) -> str:
        """``pass``, ``fail`` (the limit does not hold, or ``failed``) or ``info`` (no limit,
        or no value)."""
        if self.failed is not None:
            return "fail" if self.failed else "pass"
        if self.limit is None or self.value is None:
            return "info"
        return "pass" if self.limit.holds(self.value) else "fail"

    @property
    def passed(self) -> bool:
        return self.status != "fail"

    def __str__(self) -> str:
        limit = f" (must be {self.limit})" if self.limit is not None else ""
        detail = f"; {self.detail}" if self.detail else ""
        return f"{self.subject}: {self.name} {_fmt(self.value)}{limit}{detail}"

    def to_json(self) -> dict:
        return {"name": self.name, "subject": self.subject, "value": self.value,
                "limit": None if self.limit is None else {"op": self.limit.op, "value": self.limit.value},
                "status": self.status, "detail": self.detail}
