"""The ``palette`` command line.

    palette features search prep_time            # by name: substring, then closest
    palette features search --entity restaurant --type num --tag eta --model /models/eta
    palette features show restaurant:batch_fg
    palette job train --pipeline palette.examples.eta:pipeline --data /data/orders --label delivery_minutes \\
        --timestamp-col order_ts --experiment eta --register eta --alias champion
    palette job batch-score --model models:/eta@champion --input /data/orders_today --output /data/eta_scores \\
        --run-id 2026-12-03
    palette ingest --group restaurant:batch_fg --source /data/prep --format parquet
    palette materialize --online-store sqlite:////data/online.db [--group restaurant:batch_fg] [--full]
    palette features list [--entity restaurant]  # every feature group; palette entities list
    palette serve --model /models/eta --online-store sqlite:////data/online.db
    palette predict /models/eta --input requests.jsonl --online-store sqlite:////data/online.db
    palette parity --model /models/eta --data /data/orders --online-store sqlite:////data/online.db
    palette ingest-logs --logs /logs/serving --table /data/palette/logs/served
    palette consistency --logs /logs/serving --since 2026-12-02 --min-match-rate 0.99
    palette registry export --store s3a://bucket/palette > registry.json   # review the registry
    palette registry migrate --store /data/palette      # once: registry.json of palette 0.x -> its Delta table

Every job (``palette.jobs.JOBS``) runs as ``palette job NAME`` or ``palette NAME``. The
store root comes from ``--store`` or ``$PALETTE_STORE_ROOT``. Only the jobs start Spark;
the registry commands read the registry's Delta table with delta-rs, and ``serve`` never imports pyspark.
"""
from __future__ import annotations

import argparse
import sys

from palette.errors import PaletteError
from palette.reports.text import table


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


def _list(args) -> int:
    from palette.registry import format_age
    from palette.store import FeatureStore
    groups = [g for g in FeatureStore(args.store).registry.groups().values()
              if args.entity is None or g.entity == args.entity]
    if not groups:
        print("no feature groups are registered" + (f" for entity {args.entity!r}" if args.entity else ""),
              file=sys.stderr)
        return 1
    print(table([[g.id, g.kind, format_age(g.max_age) or "-", str(len(g.features)), g.owner or "-",
                  ",".join(g.tags) or "-", g.description] for g in sorted(groups, key=lambda g: g.id)],
                ["group", "kind", "max_age", "features", "owner", "tags", "description"]))
    return 0


def _entities(args) -> int:
    from palette.store import FeatureStore
    registry = FeatureStore(args.store).registry
    entities, groups = registry.entities(), registry.groups().values()
    if not entities:
        print("no entities are registered", file=sys.stderr)
        return 1
    print(table([[e.name, ", ".join(f"{k} ({t})" for k, t in e.join_keys.items()),
                  str(sum(1 for g in groups if g.entity == e.name)), e.description]
                 for e in sorted(entities.values(), key=lambda e: e.name)],
                ["entity", "join keys", "groups", "description"]))
    return 0


def _show(args) -> int:
    from palette.registry import format_age
    from palette.rpc import FAIL
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
    src = g.source
    if src is not None:
        where = f"topic {src.topic} on {src.servers}" if src.format == "kafka" else src.path
        print(f"stream source: {src.format} {where}; event time {src.timestamp_col}; lateness {g.lateness}"
              + (f"; hop {g.hop}" if g.hop else ""))
    f = g.fetcher
    if f is not None:
        print(f"fetched by: {f.url or f.function}" + (f" (batch: {f.batch_url})" if f.batch_url else "")
              + f"; timeout {f.timeout}, retries {f.retries} (budget {f.retry_budget:.0%}), breaker after "
              f"{f.breaker_failures} failures for {f.breaker_reset}, at most {f.concurrency} in flight"
              + ("; answers as of a time" if f.as_of else ""))
    if g.slices:
        print(f"monitored per value of: {', '.join(g.slices)}")
    aggs = {a.name: a for a in g.aggregations}

    def computed(name: str) -> str:
        a = aggs.get(name)
        if a is not None:
            return f"{a.op}({a.column or '*'}) over {a.over}"
        if f is not None:
            fallback = f.fallback.get(name)
            return f"{f.fields.get(name, '$.' + name)}, fallback {'fail' if fallback is FAIL else repr(fallback)}"
        return "latest event value" if src is not None else "ingested"
    print()
    print(table([[f.name, f.type, computed(f.name), ",".join(f.tags) or "-",
                  str(sum(1 for refs in usage.values() if any(r.startswith(f"{g.id}:{f.name}:") for r in refs))),
                  ", ".join(f"{t} {v:g}" for t, v in f.drift) or "-", f.description] for f in g.features],
                ["feature", "type", "computed as", "tags", "models", "drift alerts from", "description"]))
    return 0


def _export(args) -> int:
    from palette.store import FeatureStore
    sys.stdout.write(FeatureStore(args.store).registry.export())
    return 0


def _migrate(args) -> int:
    from palette.config import default_root
    from palette.registry import migrate_registry
    root = default_root(args.store)
    print(f"moved {migrate_registry(root)} definitions from {root}/registry.json into the registry table "
          f"{root}/_registry; the file is kept as registry.json.migrated")
    return 0


def _job(name: str, argv: list[str]) -> int:
    from palette.errors import JobError
    from palette.jobs import job_module
    try:
        module = job_module(name)
    except JobError as e:
        print(f"palette: {e.args[0]}", file=sys.stderr)
        return 2
    return module.main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:                      # its own options and --help (palette.serve.config)
        from palette.serve import main as serve_main
        return serve_main(argv[1:])
    if argv[:1] == ["predict"]:                    # its own options and --help (palette.predict)
        from palette.predict import main as predict_main
        return predict_main(argv[1:])
    if argv[:1] == ["monitor"]:                    # profile | report (Spark jobs) | model (no JVM)
        from palette.monitor.cli import main as monitor_main
        return monitor_main(argv[1:])
    if argv[:1] == ["embeddings"]:                 # compress | compare (Spark jobs)
        if len(argv) < 2 or argv[1] not in ("compress", "compare"):
            print("usage: palette embeddings {compress,compare} ... (palette embeddings compare --help)",
                  file=sys.stderr)
            return 0 if argv[1:2] in (["-h"], ["--help"]) else 2
        return _job(f"embeddings_{argv[1]}", argv[2:])
    if argv[:1] == ["job"] and len(argv) > 1 and not argv[1].startswith("-"):
        return _job(argv[1], argv[2:])
    from palette.jobs import JOBS
    if argv[:1] and argv[0].replace("-", "_") in JOBS:   # `palette ingest ...` is `palette job ingest ...`
        return _job(argv[0], argv[1:])
    parser = argparse.ArgumentParser(prog="palette", description="palette: feature store, Spark ML stages and "
                                     "JVM-free serving", formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n")[1])
    parser.add_argument("--version", action="version", version=f"palette {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent, name, help, example, **kw):
        return parent.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, **kw)

    features = command(sub, "features", "search, list and show registered features",
                       "palette features search prep_time --store /data/palette")
    fsub = features.add_subparsers(dest="action", required=True)
    search = command(fsub, "search", "find features by name, entity, type, tag or model",
                     "palette features search --entity restaurant --type num --tag eta")
    search.add_argument("text", nargs="?", help="part of a feature name")
    for opt in ("entity", "type", "tag", "model"):
        search.add_argument(f"--{opt}")
    search.set_defaults(run=_search)
    listing = command(fsub, "list", "every registered feature group", "palette features list --entity restaurant")
    listing.add_argument("--entity", help="only this entity's groups")
    listing.set_defaults(run=_list)
    show = command(fsub, "show", "one feature group: its entity, table and features",
                   "palette features show restaurant:batch_fg")
    show.add_argument("group", help="entity:feature_group")
    show.set_defaults(run=_show)
    entities = command(sub, "entities", "registered entities", "palette entities list")
    esub = entities.add_subparsers(dest="action", required=True)
    elist = command(esub, "list", "every registered entity, its join keys and groups", "palette entities list")
    elist.set_defaults(run=_entities)
    registry = command(sub, "registry", "the registry's Delta table: export it as JSON, migrate a registry.json",
                       "palette registry export --store s3a://bucket/palette")
    rsub = registry.add_subparsers(dest="action", required=True)
    export = command(rsub, "export", "print the registry as sorted, indented JSON",
                     "palette registry export --store /data/palette > registry.json")
    export.set_defaults(run=_export)
    migrate = command(rsub, "migrate", "move the registry.json of an older palette into the registry table, once",
                      "palette registry migrate --store /data/palette")
    migrate.set_defaults(run=_migrate)
    for p in (search, listing, show, elist, export, migrate):
        p.add_argument("--store", help="feature store root (default $PALETTE_STORE_ROOT)")
    sub.add_parser("serve", help="serve saved models over HTTP without a JVM (palette serve --help)")
    sub.add_parser("predict", help="score a file of requests with a saved model, without a JVM "
                                   "(palette predict --help)")
    sub.add_parser("monitor", help="feature profiles, drift and quality: profile, report, model "
                                   "(palette monitor --help)")
    sub.add_parser("embeddings", help="embedding versions: compress, compare (palette embeddings compare --help)")
    spellings = [n.replace("_", "-") for n in JOBS]
    job = sub.add_parser("job", help="run a scheduled job (palette job NAME --help); also as palette NAME")
    job.add_argument("name", metavar="NAME", help=f"one of {', '.join(spellings)}")
    for name in JOBS:
        doc = (job_doc(name) or "").replace("%", "%%")
        sub.add_parser(name.replace("_", "-"), help=doc, add_help=False)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (PaletteError, KeyError, ValueError, LookupError) as e:
        print(f"palette: {e}", file=sys.stderr)
        return 2


def _version() -> str:
    from palette import __version__
    return __version__


def job_doc(name: str) -> str:
    """A job's one-line description, without importing it (no Spark for ``palette --help``)."""
    import ast
    from pathlib import Path

    from palette.jobs import JOBS
    import palette.jobs as jobs
    source = Path(jobs.__file__).with_name(f"{JOBS[name]}.py").read_text()
    return (ast.get_docstring(ast.parse(source)) or "").splitlines()[0]


if __name__ == "__main__":
    sys.exit(main())
