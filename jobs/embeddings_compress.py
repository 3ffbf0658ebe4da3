"""A smaller version of an embedding: the top-k entities kept, the rest one UNK vector, quantized; with its memory and its price on a model.

Writes the result as a new version of the group (models keep the version they were
fitted on); with --model and --requests, measures on that model (JVM-free) its metric and
the share of changed predictions for the setting and every --sweep setting; --dry-run
measures without writing. Exits 1 when --max-change-rate is breached::

    palette embeddings compress restaurant:dish_emb --top-k 50000 --by n_orders --quantize int8 --model models:/eta/3 --requests /data/held_out --label delivery_minutes --online-store redis://cache:6379/0 --sweep 10000:int8,100000:float16 --store /data/palette
"""
from __future__ import annotations

import argparse
import sys

from palette.jobs import run_job

from .embeddings_compare import add_requests, held_out, write_report


def _setting(text: str) -> tuple:
    k, _, quant = text.partition(":")
    try:
        return (None if k in ("", "all") else int(k), quant or "float32")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a setting is K:QUANTIZE, e.g. 10000:int8 or all:float16") \
            from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("group", help="the embedding group (entity:group; its newest version) or a version "
                        "(entity:group@v2)")
    parser.add_argument("--top-k", type=int, help="entities kept exactly (default: all)")
    parser.add_argument("--by", help="the group's column counting each entity's use (the top-k by it)")
    parser.add_argument("--quantize", choices=("float32", "float16", "int8"), default="float32")
    parser.add_argument("--feature", help="the vector feature (when the group holds several)")
    parser.add_argument("--model", help="a saved model or MLflow URI reading the group: the price is measured on it")
    parser.add_argument("--sweep", type=lambda t: [_setting(s) for s in t.split(",") if s], default=[],
                        help="more settings to measure, K:QUANTIZE,... (nothing written for them)")
    parser.add_argument("--dry-run", action="store_true", help="measure, write no version")
    parser.add_argument("--max-change-rate", type=float, help="limit on the share of changed predictions")
    add_requests(parser)


def main(argv: list[str] | None = None) -> int:
    def work(args):
        from palette.embeddings.compression import compress
        from palette.spark import session
        from palette.store import FeatureStore
        store = FeatureStore(args.store)
        spark = session(app_name="palette-embeddings-compress")
        limits = {} if args.max_change_rate is None else {"max_change_rate": args.max_change_rate}
        report = compress(spark, store, args.group, args.top_k, by=args.by, quantize=args.quantize,
                          feature=args.feature, sweep=args.sweep, model=args.model,
                          requests=held_out(spark, args.requests, args.sample), online_store=args.online_store,
                          label=args.label, write=not args.dry_run, **limits)
        return write_report(report, args)
    return run_job("embeddings_compress", __doc__, add_arguments, work, argv)


if __name__ == "__main__":
    sys.exit(main())
