"""One report shape for every result measured against limits — parity, consistency,
monitoring: ``Measure`` (a value, of what, its ``Limit``, its status), ``Report`` (the
verdict over its measures; text, JSON, HTML with inline SVG plots, MLflow, exit code).

>>> from palette.reports import Limit, Measure
>>> m = Measure("null_rate", "restaurant:batch_fg:prep_time", 0.12, Limit("<=", 0.05))
>>> m.status
'fail'

Exit codes of every command that judges a report: ``EXIT_OK`` (0) when every measure
keeps its limit, ``EXIT_BREACH`` (1) when one does not (or the job could not run: its
log says why), ``EXIT_USAGE`` (2) on bad arguments.
"""
from .measure import Limit, Measure
from .report import EXIT_BREACH, EXIT_OK, EXIT_USAGE, Report

__all__ = ["Limit", "Measure", "Report", "EXIT_OK", "EXIT_BREACH", "EXIT_USAGE"]
