"""``palette monitor profile|report|model``.

- ``profile`` and ``report`` run Spark (the jobs ``monitor_profile`` and ``monitor_report``):
  profiles of feature groups' tables, and their drift and quality;
- ``model`` needs no JVM: a served model's inputs in the last minutes against its
  training profile, with its importance-weighted drift.

Every command prints a table, writes ``--html``/``--json`` on request and exits 0 when
nothing alerts, 1 on an alert or a breached limit (or a failure, logged), 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import sys

USAGE = """usage: palette monitor {profile,report,model} ...

  profile GROUP... --window 1h      profile feature groups' Delta tables (Spark)
  report GROUP... --last 1d         their drift, freshness and null rates (Spark)
  model NAME --logs DIR --last 60m  a served model against its training profile (no JVM)

palette monitor COMMAND --help for its options."""


def _duration(text: str):
    from palette.errors import PaletteError
    from palette.registry import parse_age
    try:
        return parse_age(text)
    except PaletteError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def model_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="palette monitor model", description="A served model's inputs in the last "
                                "period against its training profile: drift per feature (false discovery rate "
                                "controlled), importance-weighted drift, value ages and RPC fallbacks. No JVM.",
                                epilog="example:\n  palette monitor model eta --logs /logs/served --last 60m "
                                       "--max-iwd 0.05 --html eta-drift.html",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="the model's name in palette serve")
    p.add_argument("--logs", required=True, help="palette serve's --log-dir")
    p.add_argument("--last", type=_duration, default="60m", help="the period up to now (default 60m)")
    p.add_argument("--every", type=_duration, help="test the period in windows this long (default: whole)")
    p.add_argument("--reference", help="the model's path or URI whose training profile to compare with (default: "
                   "the version that served the newest window), or trailing:DURATION: what the model was served in "
                   "that long before the period (trailing:24h)")
    p.add_argument("--q", type=float, default=0.05, help="false discovery rate of the report (default 0.05)")
    p.add_argument("--max-iwd", type=float, help="alert when the importance-weighted drift is higher")
    p.add_argument("--max-age-p95", type=float, metavar="SECONDS", help="alert when a group's served values' "
                   "95th percentile age is higher")
    p.add_argument("--max-fallback-rate", type=float, help="alert when an RPC feature's fallback rate is higher")
    p.add_argument("--html", metavar="OUT.html")
    p.add_argument("--json", metavar="OUT.json")
    args = p.parse_args(argv)
    from palette.errors import PaletteError

    from .model_report import model_report
    try:
        report = model_report(args.model, args.logs, last=args.last, every=args.every, reference=args.reference,
                              q=args.q, max_iwd=args.max_iwd, max_age_p95=args.max_age_p95,
                              max_fallback_rate=args.max_fallback_rate)
    except PaletteError as e:
        print(f"palette monitor model: {e}", file=sys.stderr)
        return 1
    print(report)
    for path in (args.html, args.json):
        if path:
            report.write(path)
    return report.exit_code


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "model":
        return model_main(rest)
    if command in ("profile", "report"):
        from palette.jobs import job_module
        return job_module(f"monitor_{command}").main(rest)
    print(f"palette monitor: unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2
