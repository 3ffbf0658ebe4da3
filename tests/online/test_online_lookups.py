"""Lookups in the single-row path: the tutorial's ETA pipeline trained with transform()
and served with load_scorer(path, online_store=...), with the same numbers.

For the same keys and the same instant, scoreInstance / scoreBatch against the online
store (SQLite file, Redis server) equal Spark's transform with timestampCol at that
instant, in every output column: both spellings of the tutorial (PaletteTransformer
lookups; DSL stages looking up by themselves), thousands of requests including unknown
keys, null keys, expired values and null features.
"""
import math

import pytest

from palette import DSLTransformer, FeatureLookupError, OnlineSchemaMismatch, PaletteTransformer, nFill, nVal
from palette.errors import NotConfigured
from palette.online import open_store
from palette.transformers import load_scorer

from eta_fixtures import AS_OF_SECONDS, OUTPUTS


def same(a, b, column):
    if hasattr(a, "toArray"):
        a = a.toArray().tolist()
    if hasattr(b, "tolist"):
        b = b.tolist()
    if column == "prediction":
        return math.isclose(a, b, rel_tol=1e-12)
    return a == b


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
@pytest.mark.parametrize("spelling", ["palette_transformer", "dsl_only"])
def test_served_eta_pipeline_equals_spark(eta, online_urls, backend, spelling):
    path, expected = eta["models"][spelling]
    scorer = load_scorer(path, online_store=open_store(online_urls[backend], clock=lambda: AS_OF_SECONDS))
    assert scorer.round_trips == 2                  # the restaurant's features, then the region's
    rows = eta["requests"]
    batch = scorer.scoreBatch([{"r_id": r["r_id"], "order_size": r["order_size"]} for r in rows])
    mismatches = []
    kinds = {"unknown": 0, "null key": 0, "expired": 0, "null feature": 0, "busy": 0}
    for r, from_batch in zip(rows, batch):
        single = scorer.scoreInstance({"r_id": r["r_id"], "order_size": r["order_size"]})
        want = expected[r["order_id"]]
        for c in OUTPUTS:
            if not (same(want[c], single[c], c) and same(want[c], from_batch[c], c)):
                mismatches.append((r, c, want[c], single[c], from_batch[c]))
        assert not any(k.startswith("__palette") for k in single) and not any(k.startswith("__palette") for k in from_batch)
        r_id = r["r_id"] or ""
        kinds["unknown"] += r_id.startswith("unknown")
        kinds["null key"] += r["r_id"] is None
        kinds["expired"] += r_id[1:].isdigit() and int(r_id[1:]) % 10 == 8
        kinds["null feature"] += want["n_meal"] is None and want["lat"] is not None
        kinds["busy"] += want["n_busy"] is not None
    assert not mismatches, f"{len(mismatches)} mismatches, e.g. {mismatches[:3]}"
    assert len(rows) == 3000 and all(v >= 20 for v in kinds.values()), kinds


def test_stage_score_instance_reads_the_online_store(eta, online_urls, monkeypatch):
    """An unsaved PaletteTransformer (and a DSL stage looking up by itself) scores one row
    against the configured online store."""
    import palette
    store_root = eta["store"].root
    tx = PaletteTransformer({"prep": "@palette:restaurant:batch_fg:prep_time:r_id"}, storeRoot=store_root)
    dsl = DSLTransformer(lambdas={"p2": nFill(nVal("restaurant:batch_fg:prep_time:r_id"), 0) * 2},
                         storeRoot=store_root)
    monkeypatch.setattr(palette.config, "_CONFIGURED", {})
    monkeypatch.delenv("PALETTE_ONLINE_STORE", raising=False)
    with pytest.raises(NotConfigured, match="online store.*PALETTE_ONLINE_STORE"):
        tx.scoreInstance({"r_id": "r1"})
    palette.configure(online_store=online_urls["sqlite"])
    scorer = load_scorer(eta["models"]["palette_transformer"][0], online_store=online_urls["sqlite"])
    for r_id in ("r1", "r2", "r6", "nope"):
        want = scorer.scoreInstance({"r_id": r_id, "order_size": 1})["prep_time"]
        assert tx.scoreInstance({"r_id": r_id}) == {"r_id": r_id, "prep": want}
        assert dsl.scoreInstance({"r_id": r_id})["p2"] == (0.0 if want is None else want * 2)


def test_request_errors_name_the_field(eta, online_urls):
    scorer = load_scorer(eta["models"]["palette_transformer"][0], online_store=online_urls["sqlite"])
    with pytest.raises(FeatureLookupError, match="no field 'r_id'.*fields present: order_size"):
        scorer.scoreInstance({"order_size": 2})
    with pytest.raises(FeatureLookupError, match="'r_id' is the key of restaurant:.*must be a string, got int 42"):
        scorer.scoreInstance({"r_id": 42, "order_size": 2})
    with pytest.raises(FeatureLookupError, match="'r_id'.*must be a string"):
        scorer.scoreBatch([{"r_id": "r1", "order_size": 2}, {"r_id": 7.0, "order_size": 2}])


@pytest.mark.parametrize("spelling", ["palette_transformer", "dsl_only"])
def test_an_empty_batch_scores_to_an_empty_batch(eta, online_urls, spelling):
    import pandas as pd
    scorer = load_scorer(eta["models"][spelling][0], online_store=online_urls["sqlite"])
    assert scorer.scoreBatch([]) == []
    assert len(scorer.scoreBatch(pd.DataFrame({"r_id": pd.Series([], dtype=object), "order_size": []}))) == 0


def test_a_damaged_model_directory_names_the_model_the_stage_and_the_file(eta, online_urls, tmp_path):
    import shutil
    from palette.errors import ArtifactError
    model = tmp_path / "eta"
    shutil.copytree(eta["models"]["palette_transformer"][0], model)
    gbt = next(d for d in (model / "stages").iterdir() if "GBT" in d.name)
    part = next((gbt / "metadata").glob("part-*"))
    good = part.read_text()
    part.write_text(good[: len(good) // 2])                           # a half-written metadata file
    with pytest.raises(ArtifactError, match=f"{part}.*stage saved at {gbt}.*not valid JSON.*save the model again"):
        load_scorer(model, online_store=online_urls["sqlite"])
    part.write_text(good)
    data = next((gbt / "data").glob("*.parquet"))
    data.write_bytes(data.read_bytes()[:100])                          # a truncated parquet file
    with pytest.raises(ArtifactError, match=f"{gbt}/data.*GBTRegressionModel.*cannot be read.*copy the model again"):
        load_scorer(model, online_store=online_urls["sqlite"])


def test_load_fails_naming_a_group_the_online_store_lacks(eta, tmp_path):
    url = f"sqlite:///{tmp_path}/partial.db"
    eta["store"].materialize(["restaurant:batch_fg"], online_store=url)
    with pytest.raises(OnlineSchemaMismatch, match="restaurant:realtime_fg, which is not in the online store.*"
                                                   "palette materialize"):
        load_scorer(eta["models"]["palette_transformer"][0], online_store=url)


def test_load_without_online_store_names_what_to_configure(eta, monkeypatch):
    import palette
    monkeypatch.setattr(palette.config, "_CONFIGURED", {})
    monkeypatch.delenv("PALETTE_ONLINE_STORE", raising=False)
    with pytest.raises(NotConfigured, match="PaletteTransformer.*restaurant:realtime_fg.*online_store=.*--online-store URL"):
        load_scorer(eta["models"]["palette_transformer"][0])
    monkeypatch.setenv("PALETTE_ONLINE_STORE", eta["sqlite"])
    load_scorer(eta["models"]["palette_transformer"][0])


def test_saved_stage_carries_its_definitions(eta):
    """The serving side needs no registry: the saved stages hold entities and groups."""
    import json
    from pathlib import Path
    path = Path(eta["models"]["dsl_only"][0])
    metas = [json.loads(next((d / "metadata").glob("part-*")).read_text()) for d in sorted((path / "stages").iterdir())]
    defs = metas[1]["paletteDefinitions"]
    assert sorted(defs["groups"]) == ["region:service_fg", "restaurant:batch_fg", "restaurant:realtime_fg"]
    assert defs["entities"]["region"]["join_keys"] == [["region_id", "str"]]
    assert defs["groups"]["restaurant:batch_fg"]["max_age_seconds"] == 7 * 86400
    assert defs["groups"]["region:service_fg"]["aggregations"] == [
        {"name": "n_busy", "op": "count", "column": None, "over": "15m"}]
