"""What the parity harness found: per stage and column, the first divergence, store skew.

A ``ParityReport`` is a ``palette.reports.Report``: it reads as text (``str(report)``),
as JSON (``report.to_json()``, ``write_json``), as a self-contained HTML page
(``write_html``: a stage-by-stage pass/fail strip, and per column a scatter of
``transform`` against ``scoreInstance`` and a histogram of their relative differences,
inline SVG, no script and nothing fetched), and logs to MLflow (``log_to_mlflow``). Its
measures: per stage, the rows that first diverge there (must be 0), and per feature group
checked, the keys with store skew (must be 0).

Two findings are kept apart:

- **store skew**: the online store does not hold what the offline store's latest view
  holds for a key the rows read (missing online, stale, ahead, other values, or a value
  online where offline has none);
- **logic skew**: the two paths computed different values from the same inputs.

A row's mismatches are blamed on the first stage where the row diverged; later stages'
mismatches on that row are "inherited". A lookup stage's mismatches on rows whose keys
have store skew are blamed on the store.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .compare import jsonable
from palette.errors import MissingColumn
from palette.reports import Limit, Measure, Report
from palette.reports.text import fmt as _fmt, table

# Relative-difference bins of the histograms (the last catches infinite differences).
ERROR_BINS = [("equal", 0.0), ("<1e-15", 1e-15), ("<1e-12", 1e-12), ("<1e-9", 1e-9), ("<1e-6", 1e-6),
              ("<1e-3", 1e-3), ("<1", 1.0), (">=1", math.inf)]


def error_bin(rel: float) -> str:
    for label, bound in ERROR_BINS:
        if rel == 0.0 and bound == 0.0 or rel < bound:
            return label
    return ERROR_BINS[-1][0]


@dataclass
class Example:
    """One mismatching row: its id, the request's fields, both values."""
    row: int
    request: dict
    spark: Any
    python: Any
    cause: str            # "logic", "store" or "inherited"


@dataclass
class ColumnResult:
    name: str
    compared: int = 0
    mismatches: int = 0
    own: int = 0                    # on rows that agreed before this stage
    max_abs: float | None = None
    max_rel: float | None = None
    examples: list[Example] = field(default_factory=list)
    points: list[tuple[float, float]] = field(default_factory=list)     # (spark, python), a sample
    histogram: dict[str, int] = field(default_factory=dict)             # relative difference bins


@dataclass
class StageResult:
    index: int
    name: str
    uid: str
    reads: list[str]
    columns: list[ColumnResult]
    rows_spark: int = 0
    rows_python: int = 0
    kept_by_one_side: int = 0       # rows one path dropped (handleInvalid='skip') and the other kept
    own_rows: int = 0               # rows that first diverge here
    store_rows: int = 0             # of those, rows whose looked-up keys have store skew
    inherited_rows: int = 0         # rows that diverged at an earlier stage
    rpc_rows: int = 0               # of the own rows, rows served an RPC fallback (or a value that changed)

    @property
    def verdict(self) -> str:
        if self.own_rows:
            if self.rpc_rows and self.store_rows + self.rpc_rows >= self.own_rows:
                return "rpc fallback" if not self.store_rows else "store skew"
            return "store skew" if self.store_rows == self.own_rows else "logic skew"
        return "inherited" if self.inherited_rows else "pass"


@dataclass
class StoreSkew:
    """A key whose online record differs from the offline store's latest view."""
    group: str
    key: dict
    kind: str             # missing_online, stale, ahead, different_values, extra_online
    online_time: datetime | None
    online_values: dict | None
    offline_time: datetime | None
    offline_values: dict | None

    def describe(self) -> str:
        def side(t, v):
            return "nothing" if t is None else f"{t:%Y-%m-%d %H:%M:%S} {_values(v)}"
        return (f"{self.group} {_values(self.key)}: {self.kind.replace('_', ' ')} "
                f"(online {side(self.online_time, self.online_values)}; "
                f"offline {side(self.offline_time, self.offline_values)})")


def _values(d: dict | None) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in (d or {}).items())


@dataclass
class ParityReport(Report):
    kind = "parity"
    title = "palette parity report"
    model: str
    rows: int
    as_of: datetime
    online_store: str | None
    stages: list[StageResult]
    store_skew: list[StoreSkew] = field(default_factory=list)
    keys_checked: dict[str, int] = field(default_factory=dict)
    rtol: float = 1e-9
    atol: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rpc: dict[str, dict] = field(default_factory=dict)     # RPC group -> {"fetched", "fallbacks", "changed"}

    def measures(self) -> list[Measure]:
        zero = Limit("<=", 0)
        out = [Measure("rows diverging here", f"stage {s.index} {s.name}", s.own_rows, zero,
                       "" if s.verdict == "pass" else s.verdict) for s in self.stages]
        skewed: dict[str, int] = {}
        for k in self.store_skew:
            skewed[k.group] = skewed.get(k.group, 0) + 1
        out += [Measure("keys with store skew", group, skewed.get(group, 0), zero, f"of {n:,} checked")
                for group, n in {**{g: 0 for g in skewed}, **self.keys_checked}.items()]
        return out

    @property
    def first_divergence(self) -> StageResult | None:
        return next((s for s in self.stages if s.own_rows), None)

    @property
    def mismatched_rows(self) -> int:
        return sum(s.own_rows for s in self.stages)

    def column(self, name: str, stage: int | None = None) -> ColumnResult:
        """The result of a column (of the last stage that writes it, unless ``stage``)."""
        for s in reversed(self.stages):
            if stage is None or s.index == stage:
                for c in s.columns:
                    if c.name == name:
                        return c
        raise MissingColumn(f"no stage writes column {name!r}")

    # -- text ----------------------------------------------------------------------------
    def headline(self) -> str:
        return (f"{self.model}: {self.rows:,} rows, {len(self.stages)} stages, as of "
                f"{self.as_of:%Y-%m-%dT%H:%M:%SZ}; online store {self.online_store or 'none'}; "
                f"floats within rtol={self.rtol:g}, atol={self.atol:g}")

    def body_lines(self) -> list[str]:
        lines = []
        first = self.first_divergence
        if first is not None:
            lines.append(f"first divergence: stage {first.index} {first.name} ({first.uid}): {first.verdict} in "
                         f"{first.own_rows:,} rows")
        if self.keys_checked:
            checked = ", ".join(f"{g} {n:,}" for g, n in self.keys_checked.items())
            lines.append(f"store skew: {len(self.store_skew)} keys of those read ({checked})")
            for s in self.store_skew[:10]:
                lines.append(f"  {s.describe()}")
            if len(self.store_skew) > 10:
                lines.append(f"  ... {len(self.store_skew) - 10} more")
        for gid, r in self.rpc.items():
            changed = f"; {r['changed']:,} keys answered differently during the check" if r.get("changed") else ""
            lines.append(f"rpc {gid}: {r['fetched']:,} keys fetched, written to its table as of the check and read "
                         f"back by transform(); {r['fallbacks']:,} fallbacks (kept apart: transform() reads the "
                         f"service's last answer instead){changed}")
        header = ["stage", "rows", "columns", "diverge here", "of which store", "inherited", "max rel err", "verdict"]
        rows = [[f"{s.index} {s.name}", f"{s.rows_python:,}", str(len(s.columns)), f"{s.own_rows:,}",
                 f"{s.store_rows:,}", f"{s.inherited_rows:,}",
                 _fmt(max((c.max_rel for c in s.columns if c.max_rel is not None), default=None)), s.verdict]
                for s in self.stages]
        lines += ["", table(rows, header, rule=False)]
        for s in self.stages:
            for c in s.columns:
                if c.own:
                    lines.append("")
                    lines.append(f"stage {s.index} {s.name}, column {c.name}: {c.mismatches:,} of {c.compared:,} "
                                 f"rows differ ({c.own:,} here first); max abs {_fmt(c.max_abs)}, "
                                 f"max rel {_fmt(c.max_rel)}")
                    for e in [e for e in c.examples if e.cause != "inherited"][:5]:
                        lines.append(f"  row {e.row} {_values(e.request)}: transform={e.spark!r} "
                                     f"scoreInstance={e.python!r}{' (store skew)' if e.cause == 'store' else ''}")
        return lines

    def __str__(self) -> str:
        # the breaches repeat the stage table's figures: the table is the parity report's own
        return "\n".join([f"parity {self.verdict}: {self.headline()}", *self.body_lines(),
                          *(f"note: {n}" for n in self.notes)])

    # -- JSON, MLflow, HTML --------------------------------------------------------------------
    def json_body(self) -> dict:
        d = jsonable(asdict(self))
        first = self.first_divergence
        d["first_divergence"] = None if first is None else {"stage": first.index, "name": first.name,
                                                             "uid": first.uid, "verdict": first.verdict}
        for s, js in zip(self.stages, d["stages"]):
            js["verdict"] = s.verdict
            for c in js["columns"]:
                c.pop("points")
        return d

    def figures(self) -> dict[str, float]:
        """MLflow metrics ``parity_rows``, ``parity_mismatched_rows``, ``parity_store_skew_keys``,
        ``parity_max_rel_err`` (and ``parity_ok``)."""
        worst = max((c.max_rel for s in self.stages for c in s.columns if c.max_rel is not None), default=0.0)
        return {"rows": self.rows, "mismatched_rows": self.mismatched_rows, "store_skew_keys": len(self.store_skew),
                "max_rel_err": worst}

    def intro_html(self) -> str:
        from .html_report import intro
        return intro(self)

    def body_html(self) -> str:
        from .html_report import body
        return body(self)

    def to_html(self) -> str:
        first = self.first_divergence
        verdict = ("PASS: the two paths agree" if self.ok else
                   f"FAIL: first divergence at stage {first.index} {first.name} ({first.verdict})" if first else
                   "FAIL: store skew")
        from palette.reports import html
        return html.page(f"{self.title}: {self.model}", self.ok, verdict, self.intro_html(), self.body_html(),
                         "", self.notes)
