"""Plain-text rendering: aligned tables as a terminal shows them."""
from __future__ import annotations


def table(rows: list[list], header: list[str], rule: bool = True) -> str:
    """Aligned columns; a rule of dashes under the header unless ``rule=False``."""
    cells = [list(header)] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    if rule:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(x: float | None, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)
