"""The one report shape: a list of measures judged against limits, a verdict, and the
same renderings for every kind (text, JSON, HTML, MLflow) and the CLI's exit code."""
from __future__ import annotations

import json
import os
import tempfile
from typing import ClassVar

from palette.uris import write_text

from . import html
from .measure import Measure

EXIT_OK = 0          # every measure within its limit
EXIT_BREACH = 1      # a limit breached (a job that could not run exits 1 too, its reason logged)
EXIT_USAGE = 2       # bad arguments (argparse)


class Report:
    """Base of every palette report (parity, consistency, monitoring).

    A subclass names its ``kind``, gives its ``measures()`` and, for the renderings, a
    ``headline()``, text ``body_lines()``, an HTML ``body_html()``, ``figures()`` (the
    numbers logged as MLflow metrics) and ``json_body()``. The rest is common:

    - ``ok`` (no measure breaches its limit), ``breaches``, ``verdict``, ``exit_code``;
    - ``str(report)``: the verdict, the headline, the body, the breaches;
    - ``to_json()`` / ``write_json(path)``: ``{"kind", "ok", "verdict", "measures", ...}``;
    - ``to_html()`` / ``write_html(path)``: one self-contained page (inline SVG plots);
    - ``write(path)``: by suffix, ``.json``, ``.html`` or ``.txt``;
    - ``log_to_mlflow(run_id)``: ``<kind>_ok`` and the figures as metrics, the three
      renderings as artifacts under ``<kind>/``.
    """
    kind: ClassVar[str] = "report"
    title: ClassVar[str] = "palette report"

    # -- what a subclass gives --------------------------------------------------------------
    def measures(self) -> list[Measure]:
        raise NotImplementedError

    def headline(self) -> str:
        return ""

    def body_lines(self) -> list[str]:
        return []

    def body_html(self) -> str:
        return ""

    def intro_html(self) -> str:
        return f"<p>{html.e(self.headline())}</p>"

    def figures(self) -> dict[str, float]:
        return {}

    def json_body(self) -> dict:
        return {}

    def report_notes(self) -> list[str]:
        return list(getattr(self, "notes", []) or [])

    # -- common ---------------------------------------------------------------------------------
    @property
    def breaches(self) -> list[Measure]:
        return [m for m in self.measures() if m.status == "fail"]

    @property
    def ok(self) -> bool:
        return not self.breaches

    @property
    def verdict(self) -> str:
        return "PASS" if self.ok else "FAIL"

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_BREACH

    def __str__(self) -> str:
        lines = [f"{self.kind} {self.verdict}: {self.headline()}", *self.body_lines()]
        breaches = self.breaches
        lines += [f"breach: {m}" for m in breaches[:50]]
        if len(breaches) > 50:
            lines.append(f"... {len(breaches) - 50} more breaches")
        lines += [f"note: {n}" for n in self.report_notes()]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"kind": self.kind, "ok": self.ok, "verdict": self.verdict,
                "measures": [m.to_json() for m in self.measures()], **self.json_body()}

    def to_html(self) -> str:
        return html.page(f"{self.title}", self.ok, f"{self.verdict}: {self.headline()}", self.intro_html(),
                         self.body_html(), html.measures(self.measures()), self.report_notes())

    def write_json(self, path) -> None:
        write_text(os.fspath(path), json.dumps(self.to_json(), indent=2, default=str))

    def write_html(self, path) -> None:
        write_text(os.fspath(path), self.to_html())

    def write(self, path) -> None:
        """Write the report as JSON, HTML or text, by the path's suffix, to a path or a URI
        (``s3a://bucket/reports/parity.html``), whole or not at all."""
        suffix = os.fspath(path).rsplit(".", 1)[-1].lower()
        render = {"json": lambda: json.dumps(self.to_json(), indent=2, default=str), "html": self.to_html,
                  "htm": self.to_html, "txt": lambda: str(self)}.get(suffix)
        if render is None:
            from palette.errors import InvalidArgument
            raise InvalidArgument(f"cannot tell how to write {os.fspath(path)!r}: name it .json, .html or .txt")
        write_text(os.fspath(path), render())

    def log_to_mlflow(self, run_id: str | None = None) -> None:
        """Log ``<kind>_ok`` and the figures as metrics of an MLflow run (the active one, or
        ``run_id``), and the text, JSON and HTML reports as artifacts under ``<kind>/``."""
        import mlflow
        client = mlflow.MlflowClient()
        run_id = run_id or mlflow.active_run().info.run_id
        metrics = {f"{self.kind}_ok": float(self.ok), **{f"{self.kind}_{k}": float(v) for k, v in self.figures().items()}}
        with tempfile.TemporaryDirectory(prefix=f"palette-{self.kind}-") as tmp:
            for suffix in ("json", "html", "txt"):
                self.write(f"{tmp}/{self.kind}.{suffix}")
            for name, value in metrics.items():
                client.log_metric(run_id, name, value)
            client.log_artifacts(run_id, tmp, self.kind)
