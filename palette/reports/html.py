"""HTML rendering: one self-contained page per report (inline CSS and SVG; no script,
nothing fetched), tables, and the plots reports draw — scatter, bars, reference against
current histograms, and series over time."""
from __future__ import annotations

import html
import math

from .measure import Measure, _fmt

PASS_COLOR, FAIL_COLOR = "#2e7d32", "#c62828"
PALETTE = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#f9a825", "#5d4037"]
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:2em} h3{font-size:1em;margin:1.2em 0 .3em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3} .strip{display:flex;gap:4px;margin:1em 0} .cell{flex:1;padding:8px;color:#fff;
border-radius:4px;font-size:12px} .verdict{font-weight:bold;font-size:1.2em} .plots{display:flex;gap:16px;
flex-wrap:wrap} svg{background:#fafafa;border:1px solid #ddd} code{background:#f3f3f3;padding:0 3px}
.fail{color:#c62828;font-weight:bold} .pass{color:#2e7d32}
"""


def e(x) -> str:
    """``x`` escaped for HTML."""
    return html.escape(str(x))


def table(header: list[str], rows: list[list], raw: bool = False) -> str:
    """A table; cells are escaped unless ``raw`` (cells already HTML)."""
    cell = (lambda c: str(c)) if raw else e
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def measures(items: list[Measure], limit: int = 500) -> str:
    """The checks table: every judged measure, breaches first."""
    judged = sorted((m for m in items if m.limit is not None), key=lambda m: m.status != "fail")
    if not judged:
        return ""
    rows = [[e(m.subject), f"<code>{e(m.name)}</code>", e(_fmt(m.value)), e(m.limit),
             f'<span class="{m.status}">{m.status}</span>', e(m.detail)] for m in judged[:limit]]
    more = f"<p>… {len(judged) - limit:,} more in the JSON report.</p>" if len(judged) > limit else ""
    failed = sum(m.status == "fail" for m in judged)
    return (f"<h2>Checks</h2><p>{len(judged):,} measured against their limits; {failed:,} breached.</p>"
            + table(["subject", "measure", "value", "limit", "verdict", "detail"], rows, raw=True) + more)


def page(title: str, ok: bool, verdict: str, intro: str, body: str, checks: str = "",
         notes: list[str] = ()) -> str:
    """The whole report page: title, verdict line, introduction (HTML), checks, body, notes."""
    notes_html = "".join(f"<li>{e(n)}</li>" for n in notes)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{e(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{e(title)}</h1>
<p class="verdict" style="color:{PASS_COLOR if ok else FAIL_COLOR}">{e(verdict)}</p>
{intro}
{checks}
{body}
{f'<h2>Notes</h2><ul>{notes_html}</ul>' if notes_html else ''}
</body></html>
"""


def scatter(points: list[tuple[float, float]], label: str, xlabel: str, ylabel: str, size: int = 260) -> str:
    """Points against the diagonal (equal values lie on it)."""
    pts = [(a, b) for a, b in points if a is not None and b is not None]
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
    return (f'<svg width="{size}" height="{size}" role="img" aria-label="{e(label)}">'
            f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="#999" stroke-dasharray="4"/>'
            f'{dots}<text x="{size / 2}" y="{size - 6}" font-size="11" text-anchor="middle">{e(xlabel)}</text>'
            f'<text x="10" y="{size / 2}" font-size="11" transform="rotate(-90 10 {size / 2})" '
            f'text-anchor="middle">{e(ylabel)}</text>'
            f'<text x="{pad}" y="14" font-size="10">{len(pts)} rows; range {lo:.4g} .. {hi:.4g}</text></svg>')


def bars(labels: list[str], series: dict[str, list[float]], label: str, caption: str, log: bool = False,
         colors: list[str] | None = None, width: int = 420, height: int = 260) -> str:
    """Grouped bars: one group per label, one bar per series (e.g. reference and current);
    heights on a log scale when ``log``. ``colors`` per label (one series) or per series."""
    if not labels or not series:
        return ""
    top = max((v for vs in series.values() for v in vs), default=0) or 1
    scale = (lambda v: math.log10(v + 1) / math.log10(top + 1)) if log else (lambda v: v / top)
    group = (width - 40) / len(labels)
    bw = group / len(series)
    out = []
    for s, (name, values) in enumerate(series.items()):
        for i, v in enumerate(values):
            h = 0 if not v else max(2.0, (height - 70) * scale(v))
            x = 30 + i * group + s * bw
            color = (colors[i] if colors and len(series) == 1 else colors[s] if colors else PALETTE[s % len(PALETTE)])
            out.append(f'<rect x="{x + 1:.1f}" y="{height - 40 - h:.1f}" width="{max(bw - 2, 1):.1f}" '
                       f'height="{h:.1f}" fill="{color}"><title>{e(name)} {e(labels[i])}: {_fmt(v)}</title></rect>')
            if len(series) == 1:
                out.append(f'<text x="{x + bw / 2:.1f}" y="{height - 44 - h:.1f}" font-size="10" '
                           f'text-anchor="middle">{e(_fmt(v))}</text>')
    step = max(1, len(labels) // 10)
    ticks = "".join(f'<text x="{30 + (i + .5) * group:.1f}" y="{height - 26}" font-size="10" text-anchor="middle">'
                    f'{e(labels[i])}</text>' for i in range(0, len(labels), step))
    legend = "" if len(series) == 1 else "".join(
        f'<rect x="{width - 150}" y="{8 + 14 * s}" width="10" height="10" fill="{(colors or PALETTE)[s]}"/>'
        f'<text x="{width - 136}" y="{17 + 14 * s}" font-size="10">{e(n)}</text>' for s, n in enumerate(series))
    return (f'<svg width="{width}" height="{height}" role="img" aria-label="{e(label)}">{"".join(out)}{ticks}'
            f'{legend}<text x="{width / 2}" y="{height - 8}" font-size="11" text-anchor="middle">{e(caption)}</text>'
            '</svg>')


def lines(xlabels: list[str], series: dict[str, list[float | None]], label: str, caption: str,
          limit: float | None = None, width: int = 520, height: int = 260) -> str:
    """Series over time (a point per x label; None leaves a gap), with an optional
    horizontal limit line."""
    values = [v for vs in series.values() for v in vs if v is not None] + ([limit] if limit is not None else [])
    if not xlabels or not values:
        return ""
    lo, hi = min(values + [0.0]), max(values)
    span = (hi - lo) or 1.0
    left, right, top, bottom = 44, 150, 14, 40
    x = lambda i: left + (i + .5) * (width - left - right) / len(xlabels)           # noqa: E731
    y = lambda v: top + (1 - (v - lo) / span) * (height - top - bottom)            # noqa: E731
    out = []
    for s, (name, vs) in enumerate(series.items()):
        color = PALETTE[s % len(PALETTE)]
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vs) if v is not None)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        out += [f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{color}"><title>{e(name)} '
                f'{e(xlabels[i])}: {_fmt(v)}</title></circle>' for i, v in enumerate(vs) if v is not None]
        out.append(f'<text x="{width - right + 8}" y="{top + 12 + 14 * s}" font-size="10" fill="{color}">'
                   f'{e(name[:24])}</text>')
    if limit is not None:
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" '
                   f'stroke="{FAIL_COLOR}" stroke-dasharray="4"/>')
    step = max(1, len(xlabels) // 8)
    ticks = "".join(f'<text x="{x(i):.1f}" y="{height - 26}" font-size="9" text-anchor="middle">{e(xlabels[i])}'
                    '</text>' for i in range(0, len(xlabels), step))
    axis = (f'<text x="4" y="{y(hi) + 4:.1f}" font-size="9">{_fmt(hi)}</text>'
            f'<text x="4" y="{y(lo) + 4:.1f}" font-size="9">{_fmt(lo)}</text>')
    return (f'<svg width="{width}" height="{height}" role="img" aria-label="{e(label)}">{axis}{"".join(out)}'
            f'{ticks}<text x="{(width - right) / 2}" y="{height - 8}" font-size="11" text-anchor="middle">'
            f'{e(caption)}</text></svg>')
