"""The parity report's own HTML sections (the page, tables and plots are
``palette.reports.html``'s): a stage-by-stage strip, store skew, and per stage its
columns with a scatter of transform() against scoreInstance() and a histogram of their
relative differences."""
from __future__ import annotations

from palette.reports.html import bars, e, scatter, table

from .report import ERROR_BINS, ColumnResult, ParityReport, StageResult

_COLORS = {"pass": "#2e7d32", "inherited": "#f9a825", "logic skew": "#c62828", "store skew": "#6a1b9a",
           "rpc fallback": "#00838f"}


def _plots(c: ColumnResult) -> str:
    labels = [label for label, _ in ERROR_BINS]
    histogram = "" if not c.histogram else bars(
        labels, {"rows": [c.histogram.get(label, 0) for label in labels]}, f"relative differences of {c.name}",
        "rows by relative difference (log scale)", log=True,
        colors=["#2e7d32" if label == "equal" else "#ef6c00" for label in labels])
    return scatter(c.points, f"transform vs scoreInstance for {c.name}", "transform()", "scoreInstance()") + histogram


def _strip(report: ParityReport) -> str:
    cells = "".join(f'<div class="cell" style="background:{_COLORS[s.verdict]}" title="{e(s.uid)}">'
                    f'{s.index} {e(s.name)}<br>{e(s.verdict)}</div>' for s in report.stages)
    return f'<div class="strip">{cells}</div>'


def _num(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def _stage(s: StageResult) -> str:
    out = [f'<h2 id="stage-{s.index}">Stage {s.index}: {e(s.name)} <small>({e(s.uid)})</small> — '
           f'<span style="color:{_COLORS[s.verdict]}">{e(s.verdict)}</span></h2>',
           f"<p>{s.rows_python:,} rows scored ({s.rows_spark:,} by transform); {s.own_rows:,} diverge here first "
           f"({s.store_rows:,} with store skew), {s.inherited_rows:,} diverged earlier"
           + (f"; reads {e(', '.join(s.reads))}" if s.reads else "") + "</p>",
           table(["column", "rows compared", "mismatches", "first here", "max abs", "max rel"],
                 [[f"<code>{e(c.name)}</code>", f"{c.compared:,}", f"{c.mismatches:,}", f"{c.own:,}",
                   _num(c.max_abs), _num(c.max_rel)] for c in s.columns], raw=True)]
    for c in s.columns:
        plots = _plots(c)
        if plots:
            out.append(f'<h3>{e(c.name)}</h3><div class="plots">{plots}</div>')
        examples = [x for x in c.examples if x.cause != "inherited"][:10]
        if examples:
            out.append(table(["row", "request", "transform()", "scoreInstance()", "cause"],
                             [[x.row, x.request, repr(x.spark), repr(x.python), x.cause] for x in examples]))
    return "\n".join(out)


def intro(report: ParityReport) -> str:
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    return (f"<p>Model <code>{e(report.model)}</code>; {report.rows:,} rows; as of "
            f"{report.as_of:%Y-%m-%d %H:%M:%S} UTC; online store <code>{e(report.online_store or 'none')}</code>; "
            f"floats within rtol={report.rtol:g}, atol={report.atol:g}. {e(timings)}.</p>{_strip(report)}")


def body(report: ParityReport) -> str:
    skew = ""
    if report.keys_checked:
        rows = [[s.group, s.key, s.kind, s.online_time, s.online_values, s.offline_time, s.offline_values]
                for s in report.store_skew[:200]]
        checked = ", ".join(f"{g}: {n:,} keys" for g, n in report.keys_checked.items())
        skew = (f"<h2>Store skew</h2><p>{len(report.store_skew):,} keys differ between the online store and the "
                f"offline store's latest view ({checked} checked).</p>"
                + (table(["group", "key", "kind", "online time", "online values", "offline time", "offline values"],
                         rows) if rows else ""))
    return skew + "".join(_stage(s) for s in report.stages)
