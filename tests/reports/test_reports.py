"""The one report shape: measures judged by limits, the verdict, renderings, exit codes."""
import json
from dataclasses import dataclass

import pytest

from palette.errors import InvalidArgument, PaletteError
from palette.reports import EXIT_BREACH, EXIT_OK, Limit, Measure, Report, html


@dataclass
class Rates(Report):
    kind = "rates"
    title = "rates"
    values: dict
    limit: float

    def measures(self):
        return [Measure("rate", name, v, Limit("<=", self.limit)) for name, v in self.values.items()] + [
            Measure("rows", "all", 10)]

    def headline(self):
        return f"{len(self.values)} rates"

    def body_html(self):
        return html.lines(["d1", "d2"], {k: [v, v] for k, v in self.values.items()}, "rates", "per day",
                          limit=self.limit)


def test_verdict_breaches_and_exit_code_follow_the_limits():
    ok = Rates({"a": 0.01, "b": None}, 0.05)
    assert ok.ok and ok.exit_code == EXIT_OK and [m.status for m in ok.measures()] == ["pass", "info", "info"]
    bad = Rates({"a": 0.01, "b": 0.2}, 0.05)
    assert not bad.ok and bad.exit_code == EXIT_BREACH
    assert [str(m) for m in bad.breaches] == ["b: rate 0.2 (must be <= 0.05)"]
    assert str(bad).splitlines()[0] == "rates FAIL: 2 rates" and "breach: b: rate 0.2" in str(bad)


def test_renderings_by_suffix_are_whole_and_self_contained(tmp_path):
    r = Rates({"a": 0.01, "b": 0.2}, 0.05)
    for suffix in ("json", "html", "txt"):
        r.write(tmp_path / f"r.{suffix}")
    js = json.loads((tmp_path / "r.json").read_text())
    assert js["kind"] == "rates" and js["ok"] is False
    assert js["measures"][1] == {"name": "rate", "subject": "b", "value": 0.2, "limit": {"op": "<=", "value": 0.05},
                                 "status": "fail", "detail": ""}
    page = (tmp_path / "r.html").read_text()
    assert "<svg" in page and "<polyline" in page and "<script" not in page and "1 breached" in page
    assert (tmp_path / "r.txt").read_text() == str(r)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json", "r.txt"]     # no temporary left
    with pytest.raises(InvalidArgument, match="name it .json, .html or .txt") as e:
        r.write(tmp_path / "r.pdf")
    assert isinstance(e.value, PaletteError)


def test_a_limit_with_an_unknown_comparison_is_refused():
    with pytest.raises(InvalidArgument, match="unknown comparison '=<'"):
        Limit("=<", 1)
