"""JVM-free pieces of the embedding jobs: a version's records substituted in an online store
(what compare and compress score models through), the AUC, and the vector rows' writes."""
from datetime import datetime, timezone

import numpy as np
import pytest

from palette.embeddings.downstream import SubstitutedStore, auc
from palette.online import GroupLayout, RecordCodec, open_store
from palette.online.writes import RowRejected, write_rows
from palette.registry import Entity, FeatureGroup

ENTITY = Entity("restaurant", {"r_id": "str"})
T = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _group(version, **kw):
    return FeatureGroup("restaurant", "emb", {"v": "vector(3)", "n": "num"}, kind="embedding", version=version, **kw)


def test_substituted_records_answer_for_the_version_and_unk_for_the_rest(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/o.db")
    other = FeatureGroup("restaurant", "batch", {"prep": "num"})
    for g in (_group(1), other):
        store.setup(ENTITY, g)
    write_rows(store, ENTITY, _group(1), [{"r_id": "a", "event_ts": T, "v": [1, 2, 3], "n": 5.0}])
    write_rows(store, ENTITY, other, [{"r_id": "a", "event_ts": T, "prep": 7.0}])
    keys = np.array(["a", "b"])
    M = np.array([[0.5, 0.25, -1], [4, 5, 6]], np.float32)
    layout = GroupLayout.of(ENTITY, _group(1))
    sub = SubstitutedStore(store, layout, "v", keys, M, np.array([9, 9, 9], np.float32), 123)
    codec = RecordCodec([t for _, t in layout.features])
    found = sub.read([(layout, ["a", "b", "zz"]), (store.layout("restaurant:batch"), ["a", "b"])])
    decoded = [codec.decode(hit[1]) for hit in found[0]]
    assert [d[0].tolist() for d in decoded] == [[0.5, 0.25, -1], [4, 5, 6], [9, 9, 9]]       # zz: the UNK
    assert [d[1] for d in decoded] == [None, None, None] and found[0][0][0] == 123
    assert found[1][0][1] == store.read([(store.layout("restaurant:batch"), ["a"])])[0][0][1]   # others: the store
    assert found[1][1] is None
    assert sub.layout("restaurant:emb@v1") is layout
    no_unk = SubstitutedStore(store, layout, "v", keys, M, None, 123)
    assert no_unk.prepare_read((layout,))(["zz"]) == [None]


def test_vector_rows_are_checked_before_anything_is_written(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/o.db")
    store.setup(ENTITY, _group(1))
    with pytest.raises(RowRejected, match="row 1: feature 'v' of restaurant:emb@v1 is vector\\(3\\)"):
        write_rows(store, ENTITY, _group(1), [{"r_id": "a", "event_ts": T, "v": [1, 2, 3], "n": 1.0},
                                              {"r_id": "b", "event_ts": T, "v": [1, 2], "n": 1.0}])
    with pytest.raises(RowRejected, match="vector\\(3\\)"):
        write_rows(store, ENTITY, _group(1), [{"r_id": "c", "event_ts": T, "v": [1, np.nan, 3], "n": 1.0}])
    assert store.count("restaurant:emb@v1") == 0


def test_auc_counts_ties_half_and_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300).astype(float)
    s = np.round(rng.normal(size=300) + y, 1)                        # many ties
    pos, neg = s[y == 1], s[y == 0]
    pairwise = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
    assert auc(y, s) == pytest.approx(pairwise, abs=1e-12)
    assert np.isnan(auc(np.ones(3), np.arange(3.0)))
