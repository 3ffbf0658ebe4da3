"""Run palette's benchmarks: every module in benchmarks/ (``_*.py`` and this file excluded).

Each benchmark module has ``main(rows=None) -> dict`` of figures and may declare
``GOALS = {figure: (op, target)}``. Absolute times on a shared machine are noise; read
the ratios, which each module measures against a baseline in the same run.

    make bench                                           # everything but reliability, full size
    make reliability                                     # load, faults, killed jobs, races, fuzzing
    .venv/bin/python benchmarks/run.py --only dsl_spark  # one module (repeatable)
    .venv/bin/python benchmarks/run.py --rows 200000     # quick run: fewer rows / calls
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


# Modules a plain run leaves out: they run only when named with --only (make reliability).
OPT_IN = {"reliability"}


def modules() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if p.stem != "run" and not p.stem.startswith("_"))


def _goal(value, goal) -> str:
    if goal is None:
        return ""
    op, target = goal
    ok = {"<=": value <= target, ">=": value >= target, "==": value == target}[op]
    return f"{op} {target:g}  {'met' if ok else 'MISSED'}"


def _fmt(value) -> str:
    if isinstance(value, bool) or isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"


def main(argv=None) -> int:
    available = modules()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=available, metavar="NAME",
                    help=f"run only this module (repeatable); one of: {', '.join(available)}")
    ap.add_argument("--rows", type=int, default=None, metavar="N",
                    help="override the size: rows for Spark benchmarks, calls for single-row ones")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))

    results, failed = {}, []
    for name in args.only or [m for m in available if m not in OPT_IN]:
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(name)
            figures = module.main(rows=args.rows)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        results[name] = (figures, getattr(module, "GOALS", {}), time.perf_counter() - t0)

    print("\n== summary " + "=" * 66)
    print(f"{'module':<16} {'figure':<40} {'value':>12}  goal")
    for name, (figures, goals, elapsed) in results.items():
        for fig, value in figures.items():
            print(f"{name:<16} {fig:<40} {_fmt(value):>12}  {_goal(value, goals.get(fig))}".rstrip())
        print(f"{name:<16} {'(wall time of the module, s)':<40} {elapsed:12.1f}")
    for name in failed:
        print(f"{name:<16} FAILED (traceback above)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
