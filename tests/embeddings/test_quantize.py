"""Row codecs (float16, int8 with a per-row scale): byte layout, documented error bounds,
the fixed point's bitwise idempotence, and the top-k cut with its UNK vector."""
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from palette.embeddings import quantize
from palette.embeddings.quantize import (
    CODECS,
    decode_float16,
    decode_int8,
    encode_float16,
    encode_int8,
    fixed_point,
    int8_scales,
    top_k,
    unk_vector,
)

F32_MAX = float(np.finfo(np.float32).max)
TINY = float(np.finfo(np.float32).smallest_subnormal)  # 2**-149


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def awkward_rows(d=6):
    """Rows every codec must survive: random, huge, tiny, subnormal, zero, negative zero,
    one spike, float32's extremes."""
    rng = np.random.default_rng(11)
    rows = [
        rng.standard_normal(d),
        rng.standard_normal(d) * 1e30,
        rng.standard_normal(d) * 1e-30,
        rng.uniform(-1, 1, d) * 1e-40,  # subnormal
        np.full(d, TINY),
        np.array([TINY, -TINY, 2 * TINY, 0.0, -0.0, 3 * TINY][:d]),
        np.array([190 * TINY, -61 * TINY, 5 * TINY, 0, 0, 1 * TINY][:d]),  # subnormal scale, bumped
        np.zeros(d),
        np.full(d, -0.0),
        np.array([-0.0, 1.0, -0.0, -2.0, 0.0, 0.5][:d]),
        np.array([1e-30, 1.0, 0, 0, 0, 0][:d]),  # one spike, the rest far below its scale
        np.array([F32_MAX, -F32_MAX, 1.0, -1.0, F32_MAX / 3, 0.0][:d]),
        np.array([65504.0, 65519.0, 65520.0, 1e6, -1e9, 2.0**-14][:d]),  # float16 edges
        rng.standard_normal(d) * np.float32(2.0) ** rng.integers(-140, 120, d),
    ]
    return np.array(rows, dtype=np.float32)


# --- float16 ---------------------------------------------------------------------------


def test_float16_layout_is_little_endian_halves():
    b = encode_float16(np.array([[1.0, -2.0]], dtype=np.float32))
    assert b.dtype == np.uint8 and b.shape == (1, 4)
    assert bytes(b[0]) == struct.pack("<ee", 1.0, -2.0)
    assert CODECS["float16"].row_bytes(2) == 4


def test_float16_relative_error_bound_in_the_normal_range():
    rng = np.random.default_rng(0)
    exponents = rng.uniform(-14, np.log2(65504), size=(2000, 64))
    M = (rng.choice([-1.0, 1.0], size=exponents.shape) * 2.0**exponents).astype(np.float32)
    M[0, :2] = [65504.0, -(2.0**-14)]
    D = decode_float16(encode_float16(M))
    assert D.dtype == np.float32 and D.shape == M.shape
    rel = np.abs(D.astype(np.float64) - M) / np.abs(M.astype(np.float64))
    assert rel.max() <= 2.0**-11
    assert rel.max() > 2.0**-12  # the bound is tight, not vacuous


def test_float16_subnormal_range_absolute_error_and_saturation():
    rng = np.random.default_rng(1)
    M = (rng.uniform(-(2.0**-14), 2.0**-14, size=(100, 32))).astype(np.float32)
    D = decode_float16(encode_float16(M))
    assert np.abs(D.astype(np.float64) - M).max() <= 2.0**-25
    big = np.array([[1e6, -1e30, 65519.0, 65520.0]], dtype=np.float32)
    assert decode_float16(encode_float16(big)).tolist() == [[65504.0, -65504.0, 65504.0, 65504.0]]


# --- int8 --------------------------------------------------------------------------------


def test_int8_layout_scale_then_codes():
    M = np.array([[1.0, -0.5, 0.25], [0.0, 0.0, 0.0]], dtype=np.float32)
    b = encode_int8(M)
    assert b.dtype == np.uint8 and b.shape == (2, 7) and CODECS["int8"].row_bytes(3) == 7
    scale = np.float32(1.0 / 127)
    assert bytes(b[0, :4]) == struct.pack("<f", scale)
    # -63.5 rounds half to even: -64; 31.75 -> 32.
    assert b[0, 4:].view(np.int8).tolist() == [127, -64, 32]
    assert bytes(b[1]) == bytes(7)  # zero row: scale 0, codes 0
    np.testing.assert_array_equal(decode_int8(b)[0], np.array([127, -64, 32], np.float32) * scale)


def check_int8_bounds(M):
    s = int8_scales(M).astype(np.float64)
    b = encode_int8(M)
    q = b[:, 4:].view(np.int8).astype(np.float64)
    assert np.array_equal(b[:, :4].copy().view("<f4").ravel(), s.astype(np.float32))
    assert np.abs(q).max(initial=0) <= 127
    exact_error = np.abs(q * s[:, None] - M.astype(np.float64))  # the code's real value
    assert np.all(exact_error <= s[:, None] / 2)
    decoded_error = np.abs(decode_int8(b).astype(np.float64) - M)
    assert np.all(decoded_error <= s[:, None] * (0.5 + 2.0**-17))
    assert np.all(np.isfinite(decode_int8(b)))
    return s, decoded_error


def test_int8_error_bounds_random_and_awkward_rows():
    rng = np.random.default_rng(2)
    M = rng.standard_normal((5000, 48)).astype(np.float32) * np.float32(10.0) ** rng.integers(-3, 4, (5000, 1))
    s, err = check_int8_bounds(M)
    assert err.max() > 0.49 * s.min()  # not vacuous
    check_int8_bounds(awkward_rows())


def test_int8_scale_is_max_over_127_and_zero_for_zero_rows():
    M = np.array([[3.0, -5.0], [0.0, -0.0], [1e-45, 0.0]], dtype=np.float32)
    s = int8_scales(M)
    assert s[0] == np.float32(5.0 / 127) and s[1] == 0.0
    assert s[2] == np.float32(TINY)  # 1e-45 / 127 underflows; the scale is bumped up to 2^-149
    assert decode_int8(encode_int8(M))[2, 0] == M[2, 0]


def test_subnormal_scales_all_within_bounds():
    # Every max|v| that gives a subnormal scale near the bottom: all 2**16 of them.
    m = np.arange(1, 2**16 + 1, dtype=np.uint32).view(np.float32)
    M = np.stack([m, -m / np.float32(3), m / np.float32(7)], axis=1)
    check_int8_bounds(M)
    F = fixed_point(M, "int8")
    assert np.array_equal(bits(decode_int8(encode_int8(F))), bits(F))


@pytest.mark.parametrize("encode", [encode_int8, encode_float16])
def test_codecs_refuse_non_finite(encode):
    for bad in (np.nan, np.inf, -np.inf):
        M = np.zeros((3, 2), dtype=np.float32)
        M[1, 1] = bad
        with pytest.raises(ValueError, match="row 1"):
            encode(M)


def test_chunked_encoding_matches_whole(monkeypatch):
    M = awkward_rows()
    whole8, whole16 = encode_int8(M), encode_float16(M)
    monkeypatch.setattr(quantize, "CHUNK_ROWS", 3)
    assert np.array_equal(encode_int8(M), whole8) and np.array_equal(encode_float16(M), whole16)


# --- fixed point -------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["float16", "int8"])
def test_fixed_point_is_bitwise_idempotent(codec):
    c = CODECS[codec]
    rng = np.random.default_rng(3)
    M = np.concatenate([awkward_rows(), rng.standard_normal((20000, 6)).astype(np.float32)])
    F = fixed_point(M, codec)
    assert F.dtype == np.float32 and F.shape == M.shape
    again = c.decode(c.encode(F))
    assert np.array_equal(bits(again), bits(F))
    assert np.array_equal(c.encode(again), c.encode(F))  # the online store's bytes match
    # Still within the codec's error of the original (a second pass moves a scale by an ulp).
    first = c.decode(c.encode(M)).astype(np.float64)
    assert np.allclose(F, first, rtol=2.0**-20, atol=0)


def test_fixed_point_negative_zeros():
    M = np.array([[-0.0, -0.0], [-0.0, 1.0]], dtype=np.float32)
    F8 = fixed_point(M, "int8")
    assert not np.signbit(F8).any()  # int8 has no negative zero code
    F16 = fixed_point(M, "float16")
    assert np.array_equal(bits(F16), bits(M))  # float16 keeps it


def test_one_round_trip_is_stable_for_normal_scales_not_for_all_subnormal_ones():
    rng = np.random.default_rng(4)
    M = rng.standard_normal((20000, 4)).astype(np.float32) * np.float32(10.0) ** rng.integers(-30, 30, (20000, 1))
    once = decode_int8(encode_int8(M))
    assert np.array_equal(bits(decode_int8(encode_int8(once))), bits(once))
    # A subnormal scale (bumped up so the clip never bites) can move on the next pass:
    # a single round trip is not idempotent there, the fixed point is.
    m = np.arange(1, 2**16 + 1, dtype=np.uint32).view(np.float32)
    M = np.stack([m, -m / np.float32(3), m / np.float32(7)], axis=1)
    once = decode_int8(encode_int8(M))
    assert np.any(bits(decode_int8(encode_int8(once))) != bits(once))
    F = fixed_point(M, "int8")
    assert np.array_equal(bits(decode_int8(encode_int8(F))), bits(F))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
        elements=st.floats(width=32, allow_nan=False, allow_infinity=False),
    ),
    st.sampled_from(["float16", "int8"]),
)
def test_fixed_point_property(M, codec):
    c = CODECS[codec]
    F = fixed_point(M, codec)
    assert np.array_equal(bits(c.decode(c.encode(F))), bits(F))
    if codec == "int8":
        check_int8_bounds(M)


def test_unknown_codec():
    with pytest.raises(ValueError, match="unknown codec"):
        fixed_point(np.zeros((1, 1), np.float32), "int4")


# --- top-k and UNK ----------------------------------------------------------------------


def test_top_k_larger_count_first_then_smaller_key():
    keys = np.array([40, 10, 30, 20, 50])
    counts = np.array([7, 3, 7, 7, 1])
    assert top_k(keys, counts, 3).tolist() == [3, 2, 0]  # count 7: keys 20, 30, 40
    assert top_k(keys, counts, 4).tolist() == [3, 2, 0, 1]
    assert top_k(keys, counts, 99).tolist() == [3, 2, 0, 1, 4]
    assert top_k(keys, counts, 0).tolist() == []


def test_top_k_string_keys_unsigned_and_float_counts():
    keys = np.array(["b", "a", "c", "aa"])
    assert top_k(keys, np.array([2, 2, 2, 9], dtype=np.uint64), 3).tolist() == [3, 1, 0]
    assert top_k(keys, np.array([0.5, 0.5, 2.0, 0.1]), 2).tolist() == [2, 1]
    assert top_k(keys.astype(object), np.array([2, 2, 2, 9]), 3).tolist() == [3, 1, 0]


def test_top_k_refuses_ambiguity():
    with pytest.raises(ValueError, match="unique"):
        top_k(np.array([1, 1, 2]), np.array([1, 1, 1]), 2)
    with pytest.raises(ValueError, match="NaN"):
        top_k(np.array([1, 2]), np.array([1.0, np.nan]), 1)
    with pytest.raises(ValueError, match="k must"):
        top_k(np.array([1, 2]), np.array([1, 2]), -1)


def test_top_k_large_tie_block_is_by_key():
    rng = np.random.default_rng(5)
    keys = rng.permutation(100000)
    counts = np.where(keys % 3 == 0, 5, 1)
    kept = top_k(keys, counts, 1000)
    assert np.all(counts[kept] == 5)
    assert keys[kept].tolist() == list(range(0, 3000, 3))


def test_unk_vector_is_mean_of_dropped_rows(monkeypatch):
    rng = np.random.default_rng(6)
    M = rng.standard_normal((50, 4)).astype(np.float32)
    mask = np.zeros(50, bool)
    mask[top_k(np.arange(50), rng.integers(0, 10, 50), 20)] = True
    expected = M[~mask].astype(np.float64).mean(axis=0).astype(np.float32)
    got = unk_vector(M, mask)
    assert got.dtype == np.float32 and got.shape == (4,)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    monkeypatch.setattr(quantize, "CHUNK_ROWS", 7)
    np.testing.assert_allclose(unk_vector(M, mask), expected, rtol=1e-6)
    assert unk_vector(M, np.ones(50, bool)).tolist() == [0.0] * 4
    np.testing.assert_allclose(unk_vector(M, np.zeros(50, bool)), M.mean(axis=0), rtol=1e-5)
    with pytest.raises(ValueError, match="kept_mask"):
        unk_vector(M, mask[:10])
