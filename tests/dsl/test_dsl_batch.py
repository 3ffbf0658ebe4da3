"""The batch backend (what scoreBatch runs for DSL stages) gives the row backend's values,
bit for bit: hypothesis-generated expressions over every non-learned function and
operator, on batches of rows full of edge values (the generators of
test_dsl_differential), plus the edge grid of every numeric function and operator."""
import math
import struct
from collections import Counter

import numpy as np

import pytest
from hypothesis import given, settings, strategies as st

from palette.dsl import builders as B
from palette.dsl import parse, to_python
from palette.dsl.ast import Binary, Call
from palette.dsl.batch_backend import NODE_RULES, to_batch
from palette.dsl.batch_backend import FUNCTION_RULES as BATCH_RULES
from palette.dsl.functions import SIGNATURES
from palette.transformers.runtime import Batch

from test_dsl_differential import ALL_FORMS, ROOTS, ROW_FLOATS, _form, expressions, rows


def identical(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):          # vec: float64 arrays, bit for bit
        return (type(a) is type(b) and a.dtype == b.dtype == np.float64 and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    return type(a) is type(b) and a == b


def compare(exprs, rs, stats=None):
    batch = Batch.of(rs)
    failures = []
    for e in exprs:
        row_values = [to_python(e)(r) for r in rs]
        got = to_batch(e)(batch).as_list()
        assert len(got) == len(rs)
        for r, want, have in zip(rs, row_values, got):
            if not identical(want, have):
                failures.append(f"{e}\n    row {r}\n    row backend {want!r}  batch {have!r}")
        if stats is not None:
            stats.update(_form(n) for n in e.walk())
    assert not failures, f"{len(failures)} mismatches, e.g.:\n" + "\n".join(failures[:5])


STATS = Counter()


@settings(max_examples=250, deadline=None, derandomize=True, database=None)
@given(st.lists(st.sampled_from(ROOTS), min_size=4, max_size=4).flatmap(
    lambda roots: st.tuples(st.tuples(*[expressions(root=r) for r in roots]),
                            st.lists(rows(), min_size=20, max_size=20))))
def test_batch_backend_equals_row_backend(case):
    exprs, rs = case
    compare(exprs, rs, STATS)


def test_the_generated_cases_cover_every_form():
    test_batch_backend_equals_row_backend()
    missing = ALL_FORMS - set(STATS)
    assert not missing, f"never generated: {sorted(missing)}"


def test_edge_grid():
    vals = [v for v in ROW_FLOATS] + [123.456, -0.75, 1.5, 2.675, 0.125, 1234.5, 9.5e15, 4.711176725e18]
    x, y = B.nVal("x"), B.nVal("y")
    exprs = [Call(f, (x,)) for f in ("abs", "sign", "sqrt", "floor", "ceil", "log", "log1p", "exp")]
    exprs += [-x, B.isNull(x), B.nFill(x, -1), B.clip(x, -1, 1), B.bucket(x, -1, 0, 2.5),
              B.regionId(x, y, 1), B.regionId(x, y, 12), B.regionId(x, y)]
    exprs += [B.round_(x, d) for d in (-15, -2, 0, 1, 3, 15)]
    exprs += [Binary(op, x, y) for op in ("+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=")]
    exprs += [B.pow_(x, y), B.min_(x, y), B.max_(x, y), B.min_(x, y, -0.0), B.max_(-0.0, x, y),
              B.coalesce(x, y, 3.0), B.if_(x > y, x, y)]
    rs = [{"x": vx, "y": vy} for vx in vals for vy in vals]
    compare(exprs, rs)


def test_ints_and_three_valued_logic():
    rs = [{"x": v, "p": p, "q": q} for v in (1, -3, 2 ** 60 + 1, None, 0) for p in (True, False, None)
          for q in (True, False, None)]
    compare([parse('nVal("x") * 2'), parse('bVal("p") and bVal("q")'), parse('bVal("p") or bVal("q")'),
             parse('not bVal("p")'), parse('if(bVal("p"), nVal("x"), -1)'), parse('isNull(bVal("q"))')], rs)


@pytest.mark.parametrize("rows_, error", [
    ([{"x": 1.0}, {"x": "one"}], "field 'x' read by nVal.*must be a number"),
    ([{"x": 1.0}, {"y": 2.0}], "no field 'x'"),
    ([{"x": True}], "must be a number"),
])
def test_irregular_batches_are_left_to_the_row_path(rows_, error):
    """A batch the readers do not take raises Irregular; the DSL stage then scores it
    row by row, which raises the row path's error."""
    from palette.dsl import DSLInputError
    from palette.dsl.batch_backend import Irregular
    from palette.transformers.runtime.scorers.dsl import DSLScorer
    with pytest.raises(Irregular):
        to_batch('nVal("x") + 1')(Batch.of(rows_))
    scorer = DSLScorer.of({"y": 'nVal("x") + 1'})
    with pytest.raises(DSLInputError, match=error):
        scorer.score_batch(Batch.of(rows_))


def test_every_node_class_and_function_has_a_batch_rule():
    """The batch backend's own table (``batch_backend.FUNCTION_RULES``), not the row
    backend's. An ELEMENTWISE rule (the row backend's scalar function value by value over
    the column) counts; a whole batch sent row by row through the row backend does not."""
    from palette.dsl import NODE_CLASSES
    assert set(NODE_CLASSES) <= NODE_RULES
    for name, sig in SIGNATURES.items():
        if sig.learned:
            continue
        assert name in BATCH_RULES, f"{name} has no rule of the batch backend's own"
        args = ", ".join('nVal("x")' if p in ("num", "T", "any") else '"s"' if p == "str" else "1"
                         if p.endswith("_lit") else 'bVal("p")' if p == "bool" else 'vVal("v")' if p == "vec"
                         else 'tVal("t")' for p in sig.params[:max(sig.min_args, 1)])
        if name == "if":
            args = 'bVal("p"), nVal("x"), 1'
        compare([parse(f"{name}({args})")],          # evaluated by its rule, equal to the row backend
                [{"x": 2.5, "s": "a", "p": True, "t": None, "v": [1.5, -2.0]},
                 {"x": None, "s": None, "p": False, "t": None, "v": None}])


def test_vectors_as_one_matrix_and_vector_by_vector():
    """dot, norm, cosine and vget over a batch whose vectors share a length (one matrix,
    summed along rows) and over one whose lengths differ (vector by vector), from lists,
    numpy arrays (float32 too), a 2-D column and sparse vectors: the row backend's values,
    bit for bit, including 1,000-long vectors where numpy's pairwise sum would differ."""
    from palette.transformers.runtime.batch import Masked
    from palette.transformers.runtime.vectors import SparseVector
    rng = np.random.default_rng(7)
    exprs = [parse(t) for t in ('dot(vVal("a"), vVal("b"))', 'norm(vVal("a"))', 'cosine(vVal("a"), vVal("b"))',
                                'vget(vVal("a"), 2)', 'vget(vVal("a"), 999)', 'vfill(vVal("a"), vVal("b"))',
                                'if(isNull(vVal("a")), vVal("b"), vVal("a"))', 'norm(coalesce(vVal("a"), vVal("b")))')]
    for width in (3, 1000):
        scale = 10.0 ** rng.uniform(-8, 8, (40, width))
        a, b = rng.normal(size=(40, width)) * scale, rng.normal(size=(40, width)) * scale
        rs = [{"a": a[i].tolist() if i % 3 else a[i].astype(np.float32), "b": b[i]} for i in range(40)]
        rs[5]["a"], rs[6]["b"], rs[7]["a"] = None, None, [math.nan] * width
        rs[8]["a"] = SparseVector(width, (0, 2), (1.5, -0.0))
        rs[9]["a"], rs[9]["b"] = [-0.0] * width, [1.0] * width
        rs[10]["a"] = [1e200] * width
        compare(exprs, rs)
        ragged = rs + [{"a": [1.0, 2.0], "b": [3.0, 4.0]}, {"a": [], "b": []}, {"a": [1.0], "b": [1.0, 2.0]}]
        compare(exprs, ragged)
        null = np.zeros(40, dtype=bool)
        null[3] = True
        matrix = Batch({"a": Masked(a, null), "b": b}, 40)              # 2-D columns, as a stage writes them
        for e in exprs:
            want = [to_python(e)({"a": None if null[i] else a[i], "b": b[i]}) for i in range(40)]
            assert all(identical(x, y) for x, y in zip(want, to_batch(e)(matrix).as_list())), e
    sums = [float(np.sum(x * y)) for x, y in zip(a, b)]
    folded = [to_python(exprs[0])({"a": x, "b": y}) for x, y in zip(a, b)]
    assert sum(s != f for s, f in zip(sums, folded)) > 10         # numpy's own sum would not match


def test_large_batch_agrees():
    import random
    rng = random.Random(3)
    rs = [{"x": rng.choice([None, math.nan, rng.uniform(-1e3, 1e3), 0.0, -0.0]),
           "y": rng.uniform(-90, 90), "z": rng.uniform(-180, 180)} for _ in range(5000)]
    compare([parse('nFill(nVal("x"), -1) / 3 + nVal("y") % 7'), parse('regionId(nVal("y"), nVal("z"), 5)'),
             parse('round(nVal("x") * 1.5, 1)'), parse('log(abs(nVal("x")) + 1)')], rs)
