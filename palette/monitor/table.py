"""The profiles table (``<store root>/palette_profiles``, Delta): one row per subject
(a feature group, or a served model), source (``offline``, ``served``, ``training``),
feature, slice and window — the sketch bytes and the summary numbers beside them.

Rows are upserted by (subject, source, feature, slice, window_start, window_end): a rerun
over the same window replaces its own rows, never duplicates them.
"""
from __future__ import annotations

SCHEMA = ("subject string, source string, feature string, slice string, window_start timestamp, "
          "window_end timestamp, kind string, rows long, nulls long, null_rate double, mean double, std double, "
          "min double, max double, p50 double, p99 double, distinct double, sketch binary, source_version long, "
          "computed_at timestamp")
KEY = ("subject", "source", "feature", "slice", "window_start", "window_end")
SUMMARY = ("rows", "nulls", "null_rate", "mean", "std", "min", "max", "p50", "p99", "distinct")
SOURCES = ("offline", "served", "training")


def profiled(group) -> list:
    """The features of ``group`` monitoring profiles: those whose type has a profile
    (``palette.feature_types``; vectors have none yet)."""
    from palette.feature_types import TYPES
    return [f for f in group.features if TYPES[f.type].profile is not None]


def profiles_path(root: str) -> str:
    return f"{str(root).rstrip('/')}/palette_profiles"


def entries(profiles: dict) -> list[dict]:
    """Profiles by name as JSON entries (a served window's file, a model's reference):
    the feature, its summary numbers and the sketch bytes in base64."""
    import base64
    return [{"feature": name, "slice": "", **summary_row(p), "sketch": base64.b64encode(p.to_bytes()).decode()}
            for name, p in sorted(profiles.items())]


def from_entries(items: list[dict]) -> dict:
    """The profiles by name of ``entries``' JSON."""
    import base64

    from .profile import Profile
    return {e["feature"]: Profile.from_bytes(base64.b64decode(e["sketch"])) for e in items}


def summary_row(profile) -> dict:
    """The summary columns of a profile's row."""
    s = profile.summary()
    return {"kind": profile.kind, "rows": s["count"], **{k: s[k] for k in SUMMARY[1:]}}
