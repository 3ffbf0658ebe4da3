"""The ``palette`` command line.

    palette features search prep_time            # by name: substring, then closest
    palette features search --entity restaurant --type num --tag eta --model /models/eta
    palette features show restaurant:batch_fg
    palette ingest --group restaurant:batch_fg --source /data/prep --format parquet
    palette materialize --online-store sqlite:////data/online.db [--group restaurant:batch_fg] [--full]
    palette serve --model eta=/models/eta --online-store sqlite:////data/online.db
    palette parity --model /models/eta --data /data/orders --online-store sqlite:////data/online.db
    palette ingest-logs --logs /logs/serving --table /data/palette/logs/served
    palette consistency --logs /logs/serving --since 2026-12-02 --min-match-rate 0.99

The store root comes from ``--store`` or ``$PALETTE_STORE_ROOT``. Only ``ingest``,
``materialize``, ``parity``, ``ingest-logs`` and ``consistency`` start Spark; the registry commands read the registry file, and ``serve``
never imports pyspark.
"""
from __future__ import annotations

import argparse
import sys

from palette.errors import PaletteError


def table(rows: list[list[str]], header: list[str]) -> str:
    """Aligned columns, as a terminal shows them."""
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _search(args) -> int:
    from palette.store import FeatureStore
    rows = FeatureStore(args.store).search(args.text, entity=args.entity, type=args.type, tag=args.tag,
                                           model=args.model)
    if not rows:
        print("no features match", file=sys.stderr)
        return 1
    print(table([[r.id, r.type, r.kind, r.max_age or "-", ",".join(r.tags) or "-",
                  str(len(r.models)), r.description] for r in rows],
                ["feature", "type", "kind", "max_age", "tags", "models", "description"]))
    return 0


def _show(args) -> int:
    from palette.registry import format_age
    from palette.store import FeatureStore
    store = FeatureStore(args.store)
    g = store.group(args.group)
    e = store.entity(g.entity)
    usage = store.registry.usage()
    print(f"{g.id}  ({g.kind}; owner {g.owner or '-'}; max age {format_age(g.max_age) or 'none'})")
    if g.description:
        print(g.description)
    print(f"entity {e.name}, join keys: {', '.join(f'{k} ({t})' for k, t in e.join_keys.items())}; "
          f"event time: {g.timestamp_col}")
    print(f"table: {store.table_path(g.id)}")
    print()
    print(table([[f.name, f.type, ",".join(f.tags) or "-",
                  str(sum(1 for refs in usage.values() if any(r.startswith(f"{g.id}:{f.name}:") for r in refs))),
                  f.description] for f in g.features],
                ["feature", "type", "tags", "models", "description"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:                      # its own options and --help (palette.serve.config)
        from palette.serve import main as serve_main
        return serve_main(argv[1:])
    if argv[:1] == ["parity"]:                     # a CI gate: exit 1 on any mismatch
        from palette.jobs import parity as parity_job
        return parity_job.main(argv[1:])
    if argv[:1] == ["ingest-logs"]:
        from palette.jobs import ingest_logs as ingest_logs_job
        return ingest_logs_job.main(argv[1:])
    if argv[:1] == ["consistency"]:                # exit 1 when a threshold is breached
        from palette.jobs import consistency as consistency_job
        return consistency_job.main(argv[1:])
    parser = argparse.ArgumentParser(prog="palette", description="palette feature store")
    sub = parser.add_subparsers(dest="command", required=True)
    features = sub.add_parser("features", help="search and show registered features")
    fsub = features.add_subparsers(dest="action", required=True)
    search = fsub.add_parser("search", help="find features")
    search.add_argument("text", nargs="?", help="part of a feature name")
    for opt in ("entity", "type", "tag", "model"):
        search.add_argument(f"--{opt}")
    search.set_defaults(run=_search)
    show = fsub.add_parser("show", help="one feature group")
    show.add_argument("group", help="entity:feature_group")
    show.set_defaults(run=_show)
    for p in (search, show):
        p.add_argument("--store", help="feature store root (default $PALETTE_STORE_ROOT)")
    ingest = sub.add_parser("ingest", help="ingest a source into a feature group (runs Spark)")
    from palette.jobs import ingest as ingest_job
    ingest_job.add_arguments(ingest)
    ingest.set_defaults(run=lambda a: ingest_job.main(
        ["--group", a.group, "--source", a.source, "--format", a.format] + (["--store", a.store] if a.store else [])))
    sub.add_parser("serve", help="serve saved models over HTTP without a JVM (palette serve --help)")
    sub.add_parser("ingest-logs", help="append the serving process's feature logs to a Delta table (runs Spark)")
    sub.add_parser("consistency", help="online/offline consistency of logged feature reads (runs Spark; "
                   "palette consistency --help)")
    sub.add_parser("parity", help="check transform() against the serving path; exit 1 on any mismatch "
                   "(palette parity --help)")
    materialize = sub.add_parser("materialize", help="copy the latest feature values into an online store (runs Spark)")
    from palette.jobs import materialize as materialize_job
    materialize_job.add_arguments(materialize)
    materialize.set_defaults(run=lambda a: materialize_job.main(
        ["--online-store", a.online_store] + [x for g in a.group or [] for x in ("--group", g)]
        + (["--full"] if a.full else []) + (["--batch-rows", str(a.batch_rows)] if a.batch_rows else [])
        + (["--store", a.store] if a.store else [])))
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (PaletteError, KeyError, ValueError, LookupError) as e:
        print(f"palette: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
