"""The SIMD GEMM (src/gemm) under algorithm="direct" on ragged shapes, against the float64 reference.

1x1 layers with unit stride run it as a plain GEMM on the input; layers with few input channels per
group (3 to 7) or thin kernels run it as implicit GEMM on gathered patches. A plan packs its weights
once; the functional API hands the driver the weights unpacked, and it packs each block of them (up
to 264 rows x 256 columns) right before use. The shapes aim at the edges of both: output channels off
the tiles' 4 and 6 rows (AVX2; 8 and 14 on AVX-512, 6 and 8 on NEON) and past one row block (300),
reductions past one K block (300, 513 input channels), positions that end inside a sliver (7x9,
14x14 = 8 x 24 + 4), one position, groups, bias, channels-last, a batch, and at two threads the
splits in rows (more rows than positions: the weights are not packed twice) and in positions.

Tolerance: max|y - ref| / max|ref| <= 2e-5 in float32 (one accumulation chain per output over up to
a few thousand products: ~1e-6 measured).
"""

from __future__ import annotations

import fastconv
import numpy as np
import pytest
from reference import reference_conv, rel_err, to_channels_first, to_channels_last

TOLERANCE = 2e-5

# (name, batch, c_in, c_out, spatial, kernel, stride, padding, groups)
CASES = [
    ("1x1 ragged rows and positions", 1, 16, 37, (7, 9), (1, 1), 1, 0, 1),
    ("1x1 one position", 1, 40, 21, (1, 1), (1, 1), 1, 0, 1),
    ("1x1 position tail of 4", 1, 64, 256, (14, 14), (1, 1), 1, 0, 1),
    ("1x1 two K blocks", 1, 300, 30, (5, 11), (1, 1), 1, 0, 1),
    ("1x1 three K blocks, ragged", 1, 513, 19, (3, 5), (1, 1), 1, 0, 1),
    ("1x1 two row blocks", 1, 24, 300, (6, 7), (1, 1), 1, 0, 1),
    ("1x1 rows and K blocks", 2, 260, 270, (4, 4), (1, 1), 1, 0, 1),
    ("1x1 groups", 2, 48, 72, (5, 5), (1, 1), 1, 0, 3),
    ("1x1 wide map", 1, 20, 12, (40, 41), (1, 1), 1, 0, 1),
    ("1x1 stride 2 (patches)", 1, 33, 18, (9, 10), (1, 1), 2, 0, 1),
    ("7x7 stride 2 three channels", 1, 3, 29, (23, 20), (7, 7), 2, 3, 1),
    ("5x5 four channels groups 2", 1, 8, 14, (11, 12), (5, 5), 1, 2, 2),
    ("1-D 1x1", 1, 130, 45, (77,), (1,), 1, 0, 1),
    ("3-D 1x1", 1, 36, 26, (3, 4, 5), (1, 1, 1), 1, 0, 1),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_gemm_matches_reference(case, layout, threads):
    _, batch, c_in, c_out, spatial, kernel, stride, pad, groups = case
    rng = np.random.default_rng(c_in * 1000 + c_out)
    x = rng.standard_normal((batch, c_in, *spatial)).astype(np.float32)
    w = rng.standard_normal((c_out, c_in // groups, *kernel)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    ref = reference_conv(x, w, b, stride=stride, pad_pairs=pad, groups=groups)
    conv = getattr(fastconv, f"conv{len(spatial)}d")
    kw = dict(stride=stride, padding=pad, groups=groups, algorithm="direct", num_threads=threads)
    last = layout == "channels_last"
    xin = to_channels_last(x) if last else x
    cf = to_channels_first if last else (lambda y: y)
    assert rel_err(cf(conv(xin, w, b, layout=layout, **kw)), ref) <= TOLERANCE
    assert (
        rel_err(cf(conv(xin, w, None, layout=layout, **kw)), ref - b.reshape(-1, *[1] * len(spatial)))
        <= TOLERANCE
    )
    plan = fastconv.Convolution(w, b, layout=layout, **kw)
    for _ in range(2):
        assert rel_err(cf(plan(xin)), ref) <= TOLERANCE


def _one_row_gemm(columns, rows, k):
    """A 1x1 layer on one row of `columns` positions: the GEMM rows x k x columns, and its reference."""
    rng = np.random.default_rng(columns * 1000 + rows + k)
    x = rng.standard_normal((1, k, 1, columns)).astype(np.float32)
    w = rng.standard_normal((rows, k, 1, 1)).astype(np.float32)
    b = rng.standard_normal(rows).astype(np.float32)
    return x, w, b, reference_conv(x, w, b, stride=1, pad_pairs=0, groups=1)


# The last 1 to 7 columns (and GEMMs of fewer than 8) run on the narrow kernel, vectorised along the
# rows: every width alone and after 48 columns (whole slivers of both AVX2 tiles, 16 and 24), rows
# off every panel height and past one row block, one reduction step, two K blocks, and an odd K
# (panels that take two k per vector leave one k over).
NARROW_COLUMNS = [*range(1, 8), *range(49, 56)]


@pytest.mark.parametrize("k", [1, 45, 300])
@pytest.mark.parametrize("rows", [5, 64, 258, 300])
@pytest.mark.parametrize("columns", NARROW_COLUMNS)
def test_narrow_columns_match_reference(columns, rows, k):
    x, w, b, ref = _one_row_gemm(columns, rows, k)
    kw = dict(algorithm="direct", num_threads=1)
    assert rel_err(fastconv.conv2d(x, w, b, **kw), ref) <= TOLERANCE
    assert rel_err(fastconv.Convolution(w, b, **kw)(x), ref) <= TOLERANCE


# A one-shot GEMM of one full sliver and one column more, in whole panels, reads A in place and
# reduces the last column along k (gemm_f32.c, driver_one_sliver_and_column): the tiles' widths + 1
# (17, 25 on AVX2; 33, 49 on AVX-512) with rows that fill their panels (24 fills 4, 6 and 8 rows;
# 42 and 56 fill 14), reductions of one AVX-512 vector, off one (45), past the general driver's K
# block (300) and past the one-sliver driver's own K block of 1024 (1100).
@pytest.mark.parametrize("k", [16, 45, 300, 1100])
@pytest.mark.parametrize("rows", [24, 42, 56])
@pytest.mark.parametrize("columns", [17, 25, 33, 49])
def test_one_sliver_and_column_match_reference(columns, rows, k):
    x, w, b, ref = _one_row_gemm(columns, rows, k)
    for bias, want in ((b, ref), (None, ref - b.reshape(-1, 1, 1))):
        assert rel_err(fastconv.conv2d(x, w, bias, algorithm="direct"), want) <= TOLERANCE
