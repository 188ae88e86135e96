"""The dense SIMD kernel (src/direct/conv_dense*.{h,c}) on ragged shapes, against the float64 reference.

Layers with 8 or more input channels per group (or fewer with 128 or more products per output) and
a kernel larger than 1x1 run it under algorithm="direct".
The shapes aim at its edges: channel counts off the 8-channel band interleave (every count of lanes
in a last block, 1 to 7) and the 16-channel register tile (AVX2; 32 on AVX-512, 12 on NEON), widths
1 to 30 against the 6-pixel tile, stride 2 and 3 (the band's column phases), dilation, 5x5 and 7x7,
1-D and 3-D, groups 2, asymmetric padding, fewer than 8 input channels with a long reduction, and
layers big enough to be cut into several channel blocks, passes over input channels, row bands
(stride 2: L2-sized bands, ragged last band) or column bands, or swept several panels of output
channels at a time (stride 2, ragged last panel), and a one-band map whose output channels the
threads split.
Each runs through the functional API (whose weights are packed during the call, fused with their
use when one band covers the map) and a plan called twice (packed once), at one and two threads.

Tolerance: max|y - ref| / max|ref| <= 2e-5 in float32 (one accumulation chain per output over up to
18,000 products: 3e-6 measured at most).
"""

from __future__ import annotations

import fastconv
import numpy as np
import pytest
from reference import reference_conv, rel_err

TOLERANCE = 2e-5

# (name, batch, c_in, c_out, spatial, kernel, stride, padding (begin, end) pairs, dilation, groups)
CASES = [
    ("ragged channels 3x3", 1, 13, 21, (9, 17), (3, 3), 1, ((1, 1), (1, 1)), 1, 1),
    ("one input channel", 1, 2, 19, (7, 5), (3, 3), 1, ((1, 1), (1, 1)), 1, 1),
    ("widths 1", 1, 9, 17, (6, 1), (3, 3), 1, ((1, 1), (1, 1)), 1, 1),
    ("width 2 stride 2", 1, 10, 16, (5, 2), (3, 3), 2, ((1, 1), (1, 1)), 1, 1),
    ("width 30", 1, 8, 33, (4, 30), (3, 3), 1, ((1, 1), (1, 1)), 1, 1),
    ("stride 2", 2, 19, 37, (10, 23), (3, 3), 2, ((1, 1), (1, 1)), 1, 1),
    ("stride 3 no padding", 1, 20, 30, (11, 29), (3, 3), 3, ((0, 0), (0, 0)), 1, 1),
    ("5x5 dilation 2", 1, 17, 24, (14, 15), (5, 5), 1, ((4, 4), (4, 4)), 2, 1),
    ("5x5 stride 2 dilation 3", 1, 11, 18, (21, 19), (5, 5), 2, ((2, 3), (5, 1)), 3, 1),
    ("asymmetric padding 4x2", 1, 12, 20, (9, 13), (4, 2), 1, ((1, 2), (0, 1)), 1, 1),
    ("groups 2", 1, 24, 34, (12, 12), (3, 3), 1, ((2, 2), (2, 2)), 2, 2),
    ("groups 2 stride 2", 2, 18, 22, (9, 11), (3, 3), 2, ((1, 1), (1, 1)), 1, 2),
    ("7x7 stride 2 three channels", 1, 3, 40, (30, 27), (7, 7), 2, ((3, 3), (3, 3)), 1, 1),
    ("channel blocks", 1, 300, 35, (5, 6), (3, 3), 1, ((1, 1), (1, 1)), 1, 1),
    ("row bands", 1, 64, 20, (40, 37), (3, 3), 1, ((1, 1), (1, 1)), 1, 1),
    ("1-D", 1, 40, 70, (300,), (3,), 1, ((4, 4),), 4, 1),
    ("1-D column bands", 1, 130, 18, (900,), (3,), 2, ((1, 1),), 1, 1),
    ("3-D", 1, 9, 17, (5, 7, 9), (3, 3, 3), 1, ((1, 1), (1, 1), (1, 1)), 1, 1),
    ("3-D stride 2 dilation 2", 2, 10, 12, (7, 8, 9), (3, 2, 3), 2, ((2, 1), (0, 2), (2, 2)), 2, 1),
    ("7 lanes 5x5 dilation 2", 1, 15, 23, (13, 11), (5, 5), 1, ((4, 4), (4, 4)), 2, 1),
    ("6 lanes 3-D", 1, 14, 18, (4, 6, 5), (3, 3, 3), 1, ((1, 1), (1, 1), (1, 1)), 1, 1),
    ("4 channels 7x7 stride 2", 1, 4, 24, (33, 29), (7, 7), 2, ((3, 3), (3, 3)), 1, 1),
    ("two channel blocks", 1, 2000, 20, (20, 20), (3, 3), 1, ((1, 1), (1, 1)), 1, 1),
    ("sweeps of several panels", 1, 16, 70, (30, 30), (3, 3), 2, ((1, 1), (1, 1)), 1, 1),
    ("1-D over 1024 columns", 1, 24, 33, (2100,), (5,), 1, ((2, 2),), 1, 1),
    ("stride 2 row bands", 1, 130, 37, (57, 45), (3, 3), 2, ((1, 0), (1, 1)), 1, 1),
    # tiles of output rows whose kernel rows (slices) read padding skip those taps, all of them in
    # the first rows (planes) here, where the padding reaches past the kernel (conv_dense_f32.c,
    # live_taps)
    ("padding past the kernel", 1, 16, 20, (6, 14), (3, 3), 1, ((4, 3), (2, 2)), 1, 1),
    ("3-D padding past the kernel", 1, 9, 17, (3, 5, 6), (3, 3, 3), 1, ((3, 4), (1, 1), (1, 1)), 1, 1),
    ("padding rows at stride 2", 1, 24, 18, (9, 30), (3, 3), 2, ((3, 2), (1, 1)), 1, 1),
    # small maps with a long reduction: the functional API runs them as the implicit GEMM on
    # AVX-512 (conv_direct_simd.c, small_map_gemm), plans the dense kernel
    ("small map", 2, 171, 37, (7, 7), (3, 3), 1, ((1, 1), (1, 1)), 1, 1),
    ("small map groups 2 stride 2", 1, 400, 42, (13, 11), (3, 3), 2, ((1, 0), (0, 2)), 1, 2),
    ("small map dilation 2", 1, 180, 50, (6, 5), (3, 3), 1, ((2, 2), (2, 2)), 2, 1),
    # whole 8-row panels on 7x7: one 48-column sliver and a column reduced along k (gemm_f32.c,
    # driver_one_sliver_and_column), a reduction of 1620 = 6 K blocks + 84
    ("small map of one sliver and a column", 1, 180, 48, (7, 7), (3, 3), 1, ((1, 1), (1, 1)), 1, 1),
    # weights outweighing the input of a one-band map: threads split the output channels of a
    # one-shot call (forward_dense.c, split_channels), three panels on AVX-512 for two threads
    ("output channels among threads", 1, 67, 70, (10, 11), (3, 3), 1, ((1, 1), (1, 1)), 1, 1),
]


def _layer(batch, c_in, c_out, spatial, kernel, groups, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, c_in, *spatial)).astype(np.float32)
    w = rng.standard_normal((c_out, c_in // groups, *kernel)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    return x, w, b


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_dense_kernel_matches_reference(case, threads):
    _, batch, c_in, c_out, spatial, kernel, stride, pads, dilation, groups = case
    x, w, b = _layer(batch, c_in, c_out, spatial, kernel, groups, seed=len(spatial) * 1000 + c_in)
    ref = reference_conv(x, w, b, stride=stride, pad_pairs=pads, dilation=dilation, groups=groups)
    conv = getattr(fastconv, f"conv{len(spatial)}d")
    args = dict(padding=pads)
    kw = dict(stride=stride, dilation=dilation, groups=groups, algorithm="direct", num_threads=threads)
    y = conv(x, w, b, **args, **kw)
    assert rel_err(y, ref) <= TOLERANCE
    plan = fastconv.Convolution(w, b, **args, **kw)
    for _ in range(2):
        assert rel_err(plan(x), ref) <= TOLERANCE


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize(
    "c_in, c_out, spatial, padding",
    [(180, 48, (7, 7), 1), (520, 16, (4, 5), 1), (100, 24, (3, 3), 2)],
    ids=["7x7", "4x5", "3x3 padded past the kernel"],
)
def test_small_map_reduction_among_threads(c_in, c_out, spatial, padding, threads):
    """A one-shot small map of one image on AVX-512 is cut along its reduction, one part per thread
    (conv_direct_simd.c, reduction_parts): reductions of 1620, 4680 and 900 are 7, 19 and 4 K blocks
    of 256, which 2 and 3 threads share unevenly; the parts' sums add up to the reference's."""
    x, w, b = _layer(1, c_in, c_out, spatial, (3, 3), 1, seed=c_in)
    ref = reference_conv(x, w, b, stride=1, pad_pairs=((padding,) * 2,) * 2, dilation=1, groups=1)
    for bias in (b, None):
        y = fastconv.conv2d(x, w, bias, padding=padding, algorithm="direct", num_threads=threads)
        want = ref if bias is not None else ref - b[:, None, None]
        assert rel_err(y, want) <= TOLERANCE


def test_small_map_channels_last():
    """A small map with a long reduction (the implicit GEMM on AVX-512) in channels-last layout."""
    x, w, b = _layer(2, 171, 37, (7, 6), (3, 3), 1, seed=17)
    ref = reference_conv(x, w, b, stride=1, pad_pairs=((1, 1), (0, 1)), dilation=1, groups=1)
    y = fastconv.conv2d(
        np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
        w,
        b,
        padding=((1, 1), (0, 1)),
        layout="channels_last",
        algorithm="direct",
    )
    assert rel_err(np.ascontiguousarray(y.transpose(0, 3, 1, 2)), ref) <= TOLERANCE
