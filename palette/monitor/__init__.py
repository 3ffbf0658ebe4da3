"""Feature monitoring: profiles of every feature (offline, served, training), drift with
the false discovery rate controlled, importance-weighted drift, freshness and null rates
(``docs/monitoring.md``).

- ``Profile``: a feature's values over a window in a few KB of mergeable sketches;
- ``compare`` / ``flag``: the drift tests of one feature, and Benjamini–Hochberg over many;
- ``monitor``: a ``MonitorReport`` of windows against a reference;
- ``model_report``: a served model against its training profile (no JVM; ``palette monitor model``);
- ``build_reference`` / ``save_reference`` / ``load_reference``: a model's training profile
  and feature importances;
- ``profile_groups``, ``ingest_served``, ``group_report``: Spark — groups' tables profiled into
  ``palette_profiles``, served profiles appended, groups' drift (``palette monitor profile|report``).

>>> from palette.monitor import Profile, compare, flag
>>> ref, cur = Profile.of([1.0, 2.0, 3.0] * 1000), Profile.of([1.0, 2.0, 3.0] * 1000)
>>> [t.alert for t in flag(compare("x", ref, cur))]
[False, False]
"""
from __future__ import annotations

from palette.lazy import lazy_exports

_LAZY = {"Profile": ".profile", "merged": ".profile", "compare": ".drift", "flag": ".drift", "Test": ".drift",
         "monitor": ".report", "MonitorReport": ".report", "model_report": ".model_report",
         "build_reference": ".reference", "save_reference": ".reference", "load_reference": ".reference",
         "NoReference": ".reference", "ServedProfiler": ".served", "read_served": ".served",
         "profile_groups": ".offline", "ingest_served": ".offline", "group_report": ".groups"}

__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
