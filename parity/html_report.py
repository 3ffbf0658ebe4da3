"""The parity report as one self-contained HTML file: inline CSS and SVG, no script."""
from __future__ import annotations

import html
import math

from .report import ERROR_BINS, ColumnResult, ParityReport, StageResult

_COLORS = {"pass": "#2e7d32", "inherited": "#f9a825", "logic skew": "#c62828", "store skew": "#6a1b9a"}
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:2em} h3{font-size:1em;margin:1.2em 0 .3em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3} .strip{display:flex;gap:4px;margin:1em 0} .cell{flex:1;padding:8px;color:#fff;
border-radius:4px;font-size:12px} .verdict{font-weight:bold;font-size:1.2em} .plots{display:flex;gap:16px;
flex-wrap:wrap} svg{background:#fafafa;border:1px solid #ddd} code{background:#f3f3f3;padding:0 3px}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _scatter(c: ColumnResult, size: int = 260) -> str:
    pts = [(a, b) for a, b in c.points if a is not None and b is not None]
    if not pts:
        return ""
    lo = min(min(a, b) for a, b in pts)
    hi = max(max(a, b) for a, b in pts)
    span = (hi - lo) or 1.0
    pad = 30

    def xy(v):
        return pad + (v - lo) / span * (size - 2 * pad)

    dots = "".join(f'<circle cx="{xy(a):.1f}" cy="{size - xy(b):.1f}" r="2" fill="#1565c0" fill-opacity=".5"/>'
                   for a, b in pts)
    return (f'<svg width="{size}" height="{size}" role="img" aria-label="transform vs scoreInstance for {_e(c.name)}">'
            f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="#999" stroke-dasharray="4"/>'
            f'{dots}<text x="{size / 2}" y="{size - 6}" font-size="11" text-anchor="middle">transform()</text>'
            f'<text x="10" y="{size / 2}" font-size="11" transform="rotate(-90 10 {size / 2})" '
            f'text-anchor="middle">scoreInstance()</text>'
            f'<text x="{pad}" y="14" font-size="10">{len(pts)} rows; range {lo:.4g} .. {hi:.4g}</text></svg>')


def _histogram(c: ColumnResult, width: int = 420, height: int = 260) -> str:
    if not c.histogram:
        return ""
    labels = [label for label, _ in ERROR_BINS]
    counts = [c.histogram.get(label, 0) for label in labels]
    top = max(counts) or 1
    bw = (width - 40) / len(labels)
    bars = []
    for i, (label, n) in enumerate(zip(labels, counts)):
        h = 0 if n == 0 else max(2.0, (height - 70) * math.log10(n + 1) / math.log10(top + 1))
        x = 30 + i * bw
        color = "#2e7d32" if label == "equal" else "#ef6c00"
        bars.append(f'<rect x="{x + 2:.1f}" y="{height - 40 - h:.1f}" width="{bw - 4:.1f}" height="{h:.1f}" '
                    f'fill="{color}"/><text x="{x + bw / 2:.1f}" y="{height - 26}" font-size="10" '
                    f'text-anchor="middle">{_e(label)}</text><text x="{x + bw / 2:.1f}" y="{height - 44 - h:.1f}" '
                    f'font-size="10" text-anchor="middle">{n:,}</text>')
    return (f'<svg width="{width}" height="{height}" role="img" aria-label="relative differences of {_e(c.name)}">'
            f'{"".join(bars)}<text x="{width / 2}" y="{height - 8}" font-size="11" text-anchor="middle">'
            'rows by relative difference (log scale)</text></svg>')


def _strip(report: ParityReport) -> str:
    cells = "".join(f'<div class="cell" style="background:{_COLORS[s.verdict]}" title="{_e(s.uid)}">'
                    f'{s.index} {_e(s.name)}<br>{_e(s.verdict)}</div>' for s in report.stages)
    return f'<div class="strip">{cells}</div>'


def _stage(s: StageResult) -> str:
    rows = "".join(f"<tr><td><code>{_e(c.name)}</code></td><td>{c.compared:,}</td><td>{c.mismatches:,}</td>"
                   f"<td>{c.own:,}</td><td>{'-' if c.max_abs is None else f'{c.max_abs:.3g}'}</td>"
                   f"<td>{'-' if c.max_rel is None else f'{c.max_rel:.3g}'}</td></tr>" for c in s.columns)
    out = [f'<h2 id="stage-{s.index}">Stage {s.index}: {_e(s.name)} <small>({_e(s.uid)})</small> — '
           f'<span style="color:{_COLORS[s.verdict]}">{_e(s.verdict)}</span></h2>',
           f"<p>{s.rows_python:,} rows scored ({s.rows_spark:,} by transform); {s.own_rows:,} diverge here first "
           f"({s.store_rows:,} with store skew), {s.inherited_rows:,} diverged earlier"
           + (f"; reads {_e(', '.join(s.reads))}" if s.reads else "") + "</p>",
           "<table><tr><th>column</th><th>rows compared</th><th>mismatches</th><th>first here</th>"
           f"<th>max abs</th><th>max rel</th></tr>{rows}</table>"]
    for c in s.columns:
        plots = _scatter(c) + _histogram(c)
        if plots:
            out.append(f'<h3>{_e(c.name)}</h3><div class="plots">{plots}</div>')
        examples = [e for e in c.examples if e.cause != "inherited"][:10]
        if examples:
            out.append("<table><tr><th>row</th><th>request</th><th>transform()</th><th>scoreInstance()</th>"
                       "<th>cause</th></tr>" + "".join(
                           f"<tr><td>{e.row}</td><td><code>{_e(e.request)}</code></td><td>{_e(repr(e.spark))}</td>"
                           f"<td>{_e(repr(e.python))}</td><td>{_e(e.cause)}</td></tr>" for e in examples)
                       + "</table>")
    return "\n".join(out)


def render(report: ParityReport) -> str:
    first = report.first_divergence
    verdict = ("PASS: the two paths agree" if report.ok else
               f"FAIL: first divergence at stage {first.index} {first.name} ({first.verdict})" if first else
               "FAIL: store skew")
    skew = ""
    if report.keys_checked:
        rows = "".join(f"<tr><td>{_e(s.group)}</td><td><code>{_e(s.key)}</code></td><td>{_e(s.kind)}</td>"
                       f"<td>{_e(s.online_time)}</td><td><code>{_e(s.online_values)}</code></td>"
                       f"<td>{_e(s.offline_time)}</td><td><code>{_e(s.offline_values)}</code></td></tr>"
                       for s in report.store_skew[:200])
        checked = ", ".join(f"{g}: {n:,} keys" for g, n in report.keys_checked.items())
        skew = (f"<h2>Store skew</h2><p>{len(report.store_skew):,} keys differ between the online store and the "
                f"offline store's latest view ({checked} checked).</p>"
                + ("<table><tr><th>group</th><th>key</th><th>kind</th><th>online time</th><th>online values</th>"
                   f"<th>offline time</th><th>offline values</th></tr>{rows}</table>" if rows else ""))
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.notes)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>palette parity: {_e(report.model)}</title>
<style>{_CSS}</style></head><body>
<h1>palette parity report</h1>
<p class="verdict" style="color:{'#2e7d32' if report.ok else '#c62828'}">{_e(verdict)}</p>
<p>Model <code>{_e(report.model)}</code>; {report.rows:,} rows; as of {report.as_of:%Y-%m-%d %H:%M:%S} UTC;
online store <code>{_e(report.online_store or 'none')}</code>; floats within rtol={report.rtol:g},
atol={report.atol:g}. {_e(timings)}.</p>
{_strip(report)}
{skew}
{''.join(_stage(s) for s in report.stages)}
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
</body></html>
"""
