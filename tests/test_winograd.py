"""Winograd F(2x2, 3x3) and F(4x4, 3x3) (F(2, 3) and F(4, 3) in 1-D) against the float64
reference, their refusals, and their numerics. Dilated layers run as tiles of the polyphase
components (each output phase an undilated convolution of the matching input phase): the same
transforms on inputs d apart, so the same tolerances. Stride 2 runs F(2x2, 3x3)'s stride-2 tile
(F(2, 2) on the even taps, plain products on the odd): coefficients +-1 only, within the same
tolerance.

Tolerance: F(2x2, 3x3) in float32 multiplies by transformed weights and inputs whose magnitudes
are up to 4x the originals' (B^T d B sums four inputs, G g G^T averages), so its error is about
twice direct float32's; the bound is the same sqrt(reduction)-scaled one as direct's, doubled.
F(4x4, 3x3)'s transforms have coefficients up to 8 (points 0, +-1, 1/2, -2): its measured error is
about 4x F(2x2)'s relative RMS and 6x its maximum, so its bound is 10x F(2x2)'s.
"""

import itertools
import math

import fastconv
import numpy as np
import pytest
from engines import WINOGRAD
from reference import reference_conv

F32_TOLERANCE = 2e-5
TOLERANCE = {"winograd": F32_TOLERANCE, "winograd_f4": 10 * F32_TOLERANCE}
WINOGRADS = list(TOLERANCE)

pytestmark = pytest.mark.skipif(
    not WINOGRAD, reason="no SIMD instruction set selected (FASTCONV_DISABLE), so no Winograd engine"
)


def rel_err(y, ref):
    return float(np.abs(y - ref).max() / (np.abs(ref).max() + 1e-30))


def check(
    x,
    w,
    b,
    padding,
    groups,
    threads=None,
    algorithm="winograd",
    layout="channels_first",
    dilation=1,
    stride=1,
):
    """x channels-first; the layer runs in `layout` (x and y moved to channels-last for it)."""
    nd = x.ndim - 2
    conv = getattr(fastconv, f"conv{nd}d")
    last = layout == "channels_last"
    xin = np.ascontiguousarray(np.moveaxis(x, 1, -1)) if last else x
    dilations = dilation if isinstance(dilation, tuple) else (dilation,) * nd
    kw = dict(padding=padding, groups=groups, algorithm=algorithm, num_threads=threads, layout=layout)
    kw["dilation"] = dilations
    y = conv(xin, w, b, stride=stride, **kw)
    if last:
        y = np.moveaxis(y, -1, 1)
    ref = reference_conv(
        x.astype(np.float64),
        w.astype(np.float64),
        None if b is None else b.astype(np.float64),
        stride,
        fastconv._arguments.resolve_padding(
            fastconv._arguments.padding_spec(padding, nd, "t"),
            x.shape[2:],
            (3,) * nd,
            (stride,) * nd,
            dilations,
            (0,) * nd,
            False,
            "t",
        ),
        dilations,
        groups,
        "zeros",
    )
    assert y.shape == ref.shape
    reduction = w.shape[1] * 3**nd
    assert rel_err(y, ref) < TOLERANCE[algorithm] * math.sqrt(reduction)


def check_one_shot_and_plan(rng, batch, cin, cout, size, groups, threads, algorithm, layout, stride=1):
    """A random 2-D layer (padding 1, bias) against the reference, and its one-shot call against a
    plan's: the one transforms the weights itself (streamed or whole), the other once."""
    x = rng.standard_normal((batch, cin, *size), dtype=np.float32)
    w = rng.standard_normal((cout, cin // groups, 3, 3), dtype=np.float32)
    b = rng.standard_normal(cout, dtype=np.float32)
    check(x, w, b, 1, groups, threads, algorithm, layout, stride=stride)
    xin = np.ascontiguousarray(np.moveaxis(x, 1, -1)) if layout == "channels_last" else x
    kw = dict(stride=stride, padding=1, groups=groups, algorithm=algorithm, layout=layout)
    plan = fastconv.Convolution(w, b, **kw)
    one_shot = fastconv.conv2d(xin, w, b, num_threads=threads, **kw)
    np.testing.assert_allclose(
        one_shot, plan(xin, num_threads=threads), rtol=0, atol=1e-5 * np.abs(one_shot).max()
    )


PADDINGS = [0, 1, 2, ((0, 1), (1, 0)), ((2, 0), (0, 2)), "same", "valid"]
SIZES = [(1, 1), (2, 3), (3, 3), (5, 7), (8, 8), (13, 17), (30, 9)]


@pytest.mark.parametrize("algorithm", WINOGRADS)
@pytest.mark.parametrize("padding", PADDINGS, ids=str)
@pytest.mark.parametrize("size", SIZES, ids=str)
def test_matches_reference_on_ragged_tiles(padding, size, algorithm):
    rng = np.random.default_rng(hash((str(padding), size)) % 2**32)
    h, w_ = size
    pairs = fastconv._arguments.padding_spec(padding, 2, "t")
    if pairs[0] == "pairs" and any(s + b + e < 3 for s, (b, e) in zip(size, pairs[1], strict=True)):
        pytest.skip("kernel larger than the padded input")
    x = rng.standard_normal((2, 5, h, w_), dtype=np.float32)
    w = rng.standard_normal((7, 5, 3, 3), dtype=np.float32)
    check(x, w, rng.standard_normal(7, dtype=np.float32), padding, 1, algorithm=algorithm)


# Tile counts whose last sliver holds 1 to 7 tiles (the GEMM's narrow kernel), alone and after 16
# (a whole AVX2 sliver, or an AVX-512 tail sliver), after 16 + 8 (an AVX2 tail sliver), 24 to 31
# (a 48-wide sliver whose last vector is all padding: AVX-512's 8-row tile, 7 and 64 channels), and
# 49 (resnet50's 14 x 14): one row of tiles, output channels off every panel height.
@pytest.mark.parametrize("algorithm", WINOGRADS)
@pytest.mark.parametrize("cout", [7, 64, 100])
@pytest.mark.parametrize("tiles", [*range(1, 8), *range(17, 32), 49])
def test_narrow_tile_counts_match_reference(tiles, cout, algorithm):
    rng = np.random.default_rng(tiles * 100 + cout)
    m = 4 if algorithm == "winograd_f4" else 2
    size = (7 * m, 7 * m) if tiles == 49 else (m, m * tiles)
    x = rng.standard_normal((1, 9, *size), dtype=np.float32)
    w = rng.standard_normal((cout, 9, 3, 3), dtype=np.float32)
    check(x, w, rng.standard_normal(cout, dtype=np.float32), "same", 1, algorithm=algorithm)


# One tile past a tail sliver (17 = 16 + 1 on AVX-512, 25 = 16 + 8 + 1 on AVX2, and 49) goes to the
# tail tile with its extra column; more input channels than one K block (256) make it accumulate.
@pytest.mark.parametrize("cout", [5, 20])
@pytest.mark.parametrize("tiles", [17, 25, 49])
def test_tail_plus_one_column_accumulates(tiles, cout):
    rng = np.random.default_rng(tiles * 10 + cout)
    size = (14, 14) if tiles == 49 else (2, 2 * tiles)
    x = rng.standard_normal((1, 300, *size), dtype=np.float32)
    w = rng.standard_normal((cout, 300, 3, 3), dtype=np.float32)
    check(x, w, rng.standard_normal(cout, dtype=np.float32), "same", 1, algorithm="winograd")


@pytest.mark.parametrize(
    ("cin", "cout", "groups"), [(1, 1, 1), (17, 9, 1), (8, 8, 2), (12, 18, 3), (32, 64, 1)]
)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("algorithm", WINOGRADS)
@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_channels_groups_threads_layouts(cin, cout, groups, threads, algorithm, layout):
    rng = np.random.default_rng(cin * 100 + cout + groups)
    x = rng.standard_normal((2, cin, 23, 19), dtype=np.float32)
    w = rng.standard_normal((cout, cin // groups, 3, 3), dtype=np.float32)
    b = rng.standard_normal(cout, dtype=np.float32)
    check(x, w, b, 1, groups, threads, algorithm, layout)


@pytest.mark.parametrize("algorithm", WINOGRADS)
@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("padding", [0, 1, 2, ((1, 0),), ((0, 2),), "same", "valid"], ids=str)
@pytest.mark.parametrize("length", [1, 3, 4, 5, 9, 17, 40])
def test_1d_matches_reference(algorithm, layout, padding, length):
    pairs = fastconv._arguments.padding_spec(padding, 1, "t")
    if pairs[0] == "pairs" and length + sum(pairs[1][0]) < 3:
        pytest.skip("kernel larger than the padded input")
    rng = np.random.default_rng(length)
    x = rng.standard_normal((2, 12, length), dtype=np.float32)
    w = rng.standard_normal((10, 6, 3), dtype=np.float32)
    check(x, w, rng.standard_normal(10, dtype=np.float32), padding, 2, None, algorithm, layout)


# Dilation: tiles of each output phase (row mod d_h, column mod d_w), ragged where a phase's length
# is odd or shorter than others' (sizes not multiples of d), phases with no output at all (output
# shorter than d), unequal dilations, tile rows shorter than a vector, and tile blocks, GEMM slivers
# and threads' shares that start and end inside phases.
@pytest.mark.parametrize("algorithm", WINOGRADS)
@pytest.mark.parametrize("dilation", [2, 3, 4, (1, 2), (3, 2)], ids=str)
@pytest.mark.parametrize("padding", [0, 1, "same", ((2, 0), (1, 3))], ids=str)
@pytest.mark.parametrize("size", [(5, 7), (8, 8), (13, 17), (30, 9)], ids=str)
def test_dilated_matches_reference(algorithm, dilation, padding, size):
    rng = np.random.default_rng(hash((str(dilation), str(padding), size)) % 2**32)
    d = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    pairs = fastconv._arguments.padding_spec(padding, 2, "t")
    pad = pairs[1] if pairs[0] == "pairs" else [(0, 0)] * 2
    if any(s + b + e < 2 * di + 1 for s, (b, e), di in zip(size, pad, d, strict=True)):
        pytest.skip("kernel larger than the padded input")
    x = rng.standard_normal((2, 5, *size), dtype=np.float32)
    w = rng.standard_normal((7, 5, 3, 3), dtype=np.float32)
    b = rng.standard_normal(7, dtype=np.float32)
    check(x, w, b, padding, 1, algorithm=algorithm, dilation=dilation)


@pytest.mark.parametrize("algorithm", WINOGRADS)
@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("batch", "cin", "cout", "size", "groups", "dilation", "padding"),
    [
        (2, 12, 10, (23, 19), 2, 2, 2),
        (1, 96, 70, (28, 28), 1, 2, 2),  # deeplab's geometry
        (1, 300, 301, (14, 14), 1, 3, 3),
        (2, 64, 70, (60, 60), 1, 2, 1),
        (1, 24, 30, (13, 17), 3, 5, 0),
    ],
    ids=str,
)
def test_dilated_channels_groups_threads_layouts(
    batch, cin, cout, size, groups, dilation, padding, threads, algorithm, layout
):
    rng = np.random.default_rng(cin + cout + dilation)
    x = rng.standard_normal((batch, cin, *size), dtype=np.float32)
    w = rng.standard_normal((cout, cin // groups, 3, 3), dtype=np.float32)
    b = rng.standard_normal(cout, dtype=np.float32)
    check(x, w, b, padding, groups, threads, algorithm, layout, dilation)


@pytest.mark.parametrize("algorithm", WINOGRADS)
@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("padding", [0, 4, ((3, 0),), "same"], ids=str)
@pytest.mark.parametrize("dilation", [2, 3, 4, 8])
@pytest.mark.parametrize("length", [9, 17, 40, 263])
def test_1d_dilated_matches_reference(algorithm, layout, padding, dilation, length):
    pairs = fastconv._arguments.padding_spec(padding, 1, "t")
    if pairs[0] == "pairs" and length + sum(pairs[1][0]) < 2 * dilation + 1:
        pytest.skip("kernel larger than the padded input")
    rng = np.random.default_rng(length * 10 + dilation)
    x = rng.standard_normal((2, 12, length), dtype=np.float32)
    w = rng.standard_normal((10, 6, 3), dtype=np.float32)
    check(x, w, rng.standard_normal(10, dtype=np.float32), padding, 2, 2, algorithm, layout, dilation)


# Stride 2: tiles four inputs apart, the padded copy in four width phases. Ragged tiles on sizes of
# every parity, every padding form, 1-D and 2-D.
@pytest.mark.parametrize("padding", PADDINGS, ids=str)
@pytest.mark.parametrize("size", [(3, 3), (4, 4), (5, 7), (8, 8), (13, 17), (30, 9), (2, 40)], ids=str)
def test_stride2_matches_reference_on_ragged_tiles(padding, size):
    pairs = fastconv._arguments.padding_spec(padding, 2, "t")
    if pairs[0] == "pairs" and any(s + b + e < 3 for s, (b, e) in zip(size, pairs[1], strict=True)):
        pytest.skip("kernel larger than the padded input")
    rng = np.random.default_rng(hash((str(padding), size, 2)) % 2**32)
    x = rng.standard_normal((2, 5, *size), dtype=np.float32)
    w = rng.standard_normal((7, 5, 3, 3), dtype=np.float32)
    check(x, w, rng.standard_normal(7, dtype=np.float32), padding, 1, stride=2)


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("padding", [0, 1, 2, ((1, 0),), ((0, 2),), "same", "valid"], ids=str)
@pytest.mark.parametrize("length", [3, 4, 5, 9, 17, 40, 263])
def test_stride2_1d_matches_reference(layout, padding, length):
    rng = np.random.default_rng(length + 2)
    x = rng.standard_normal((2, 12, length), dtype=np.float32)
    w = rng.standard_normal((10, 6, 3), dtype=np.float32)
    check(x, w, rng.standard_normal(10, dtype=np.float32), padding, 2, None, "winograd", layout, stride=2)


# Blocking at stride 2: groups and batches, resnet50.l2.3x3s2's geometry (tile blocks from the
# staged rows of a 128-channel image), a streamed one-shot image of more input channels than one GEMM
# K block (300), and one image whose threads transform its input together (67 channels).
@pytest.mark.parametrize(
    ("batch", "cin", "cout", "size", "groups"),
    [
        (2, 12, 10, (23, 19), 2),
        (1, 128, 130, (56, 56), 1),
        (1, 300, 301, (14, 14), 1),
        (1, 67, 90, (15, 13), 1),
    ],
    ids=str,
)
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_stride2_channels_groups_threads_layouts(batch, cin, cout, size, groups, threads, layout):
    rng = np.random.default_rng(cin + cout + threads)
    check_one_shot_and_plan(rng, batch, cin, cout, size, groups, threads, "winograd", layout, stride=2)


def test_f4_refuses_stride_2():
    x, w = np.ones((1, 4, 9, 9), np.float32), np.ones((4, 4, 3, 3), np.float32)
    with pytest.raises(
        ValueError, match="algorithm='winograd_f4' cannot run this layer: .*F\\(4x4\\) needs stride 1"
    ):
        fastconv.conv2d(x, w, stride=2, algorithm="winograd_f4")


# One-shot calls on one small image transform the weights block by block (streamed); larger or
# batched inputs transform them all first, as plans do. These shapes cross the blocking edges: tile
# rows shorter than a vector (2x3), rows that end inside a GEMM sliver (13x17), more input channels
# than one GEMM K block (300), output channels not a multiple of the micro-kernel's rows (301 / 7),
# several channel blocks split between threads, and more than one tile block (64 x 60x60).
@pytest.mark.parametrize(
    ("batch", "cin", "cout", "size", "groups"),
    [
        (1, 9, 7, (2, 3), 1),
        (1, 24, 30, (13, 17), 3),
        (1, 300, 301, (7, 7), 1),
        (1, 96, 200, (14, 14), 2),
        (2, 64, 70, (60, 60), 1),
        (1, 1, 3, (1, 70), 1),
    ],
    ids=str,
)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("algorithm", WINOGRADS)
@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_one_shot_equals_plan_and_reference(batch, cin, cout, size, groups, threads, algorithm, layout):
    rng = np.random.default_rng(cin + cout)
    check_one_shot_and_plan(rng, batch, cin, cout, size, groups, threads, algorithm, layout)


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("algorithm", WINOGRADS)
def test_one_image_split_among_threads(threads, dilation, algorithm):
    """One image of one group whose tiles form one block: the threads transform its input
    channels together, each a range, then split the output channels."""
    rng = np.random.default_rng(threads + dilation)
    x = rng.standard_normal((1, 67, 15, 13), dtype=np.float32)
    w = rng.standard_normal((90, 67, 3, 3), dtype=np.float32)
    check(x, w, None, 1, 1, threads, algorithm, dilation=dilation)


FEW_TILES = [  # (cin, cout, size, dilation, stride): one image of at most 16 tiles
    (512, 512, (7, 7), 1, 1),  # resnet50.l4.3x3
    (37, 50, (5, 3), 1, 1),  # channels off the vectors, the slivers and a transpose block
    (16, 16, (2, 2), 1, 1),  # one tile
    (3, 5, (6, 12), 1, 1),  # fewer channels than a vector: one narrow sliver
    (100, 200, (8, 8), 1, 1),  # a sliver of a vector past the last full one
    (64, 97, (13, 14), 2, 1),  # dilated: the tiles of four phases
    (48, 33, (14, 13), 1, 2),  # stride 2
    (40, 70, (21,), 1, 1),  # 1-D
]


@pytest.mark.parametrize(("cin", "cout", "size", "dilation", "stride"), FEW_TILES, ids=str)
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("algorithm", WINOGRADS)
@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_few_tiles_run_with_channels_along_vectors(
    cin, cout, size, dilation, stride, threads, algorithm, layout
):
    """One image of at most 16 tiles runs its products with the output channels along the vectors:
    the tiles are the GEMM's rows, U's slivers hold output channels (the weight transform by whole
    vector transposes), and each tile's output transform takes a vector of channels. Each thread
    takes a range of output channels, in whole vectors."""
    if algorithm == "winograd_f4" and stride == 2:
        pytest.skip("F(4x4) computes stride 1 only")
    rng = np.random.default_rng(cin + cout + len(size))
    x = rng.standard_normal((1, cin, *size), dtype=np.float32)
    w = rng.standard_normal((cout, cin, *(3,) * len(size)), dtype=np.float32)
    b = rng.standard_normal(cout, dtype=np.float32)
    check(x, w, b, 1, 1, threads, algorithm, layout, dilation=dilation, stride=stride)


def test_plan_with_weights_too_large_to_keep_streams_them():
    """A plan whose transformed weights exceed 8 MiB transforms them again, block by block, for one
    small image (read from memory they cost more), and uses its own for a batch: both exact."""
    rng = np.random.default_rng(400)
    x = rng.standard_normal((2, 400, 7, 7), dtype=np.float32)
    w = (rng.standard_normal((400, 400, 3, 3)) / 60).astype(np.float32)
    plan = fastconv.Convolution(w, padding=1, algorithm="winograd")
    ref = reference_conv(x.astype(np.float64), w.astype(np.float64), None, 1, ((1, 1), (1, 1)), 1, 1, "zeros")
    assert rel_err(plan(x[:1]), ref[:1]) < F32_TOLERANCE
    assert rel_err(plan(x), ref) < F32_TOLERANCE


def test_unbatched_plan_and_sizes():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((16, 16, 3, 3), dtype=np.float32)
    plan = fastconv.Convolution(w, padding=1, algorithm="winograd")
    for size in [(7, 7), (28, 28), (9, 40)]:
        x = rng.standard_normal((16, *size), dtype=np.float32)
        want = fastconv.conv2d(x, w, padding=1, algorithm="direct")
        np.testing.assert_allclose(plan(x), want, rtol=0, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        (dict(weight_shape=(4, 4, 5, 5)), "3x3"),
        (dict(stride=3), "stride 1, or stride 2"),
        (dict(stride=(1, 2)), "stride 1, or stride 2"),
        (dict(stride=2, dilation=2), "stride 2 needs dilation 1"),
        (dict(dtype=np.float64), "float32"),
    ],
)
def test_refuses_what_it_cannot_compute(kwargs, reason):
    dtype = kwargs.pop("dtype", np.float32)
    w = np.ones(kwargs.pop("weight_shape", (4, 4, 3, 3)), dtype)
    x = np.ones((1, 4, 9, 9), dtype)
    with pytest.raises(ValueError, match=f"algorithm='winograd' cannot run this layer: .*{reason}"):
        fastconv.conv2d(x, w, algorithm="winograd", **kwargs)


@pytest.mark.parametrize("algorithm", WINOGRADS)
@pytest.mark.parametrize(("transposed", "nd"), [(True, 2), (True, 1), (False, 3)])
def test_refuses_other_operations(transposed, nd, algorithm):
    w = np.ones((4, 4) + (3,) * nd, np.float32)
    x = np.ones((1, 4) + (9,) * nd, np.float32)
    f = getattr(fastconv, f"conv_transpose{nd}d" if transposed else f"conv{nd}d")
    reason = f"algorithm='{algorithm}' cannot run this layer: .*(transposed|1-D)"
    with pytest.raises(ValueError, match=reason):
        f(x, w, algorithm=algorithm)


def test_auto_never_picks_f4():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32)
    plan = fastconv.Convolution(w, padding=1)
    plan(rng.standard_normal((1, 64, 56, 56), dtype=np.float32))
    assert plan.algorithm == "winograd"


@pytest.mark.parametrize(
    ("shape", "padding", "dilation"), [((1, 64, 28, 28), 2, 2), ((1, 128, 512), 4, 4)], ids=["2d", "1d"]
)
def test_auto_picks_winograd_for_dilated_layers(shape, padding, dilation):
    """deeplab- and wavenet-like layers: auto runs them through Winograd, one-shot and planned."""
    rng = np.random.default_rng(11)
    nd = len(shape) - 2
    w = rng.standard_normal((shape[1], shape[1]) + (3,) * nd, dtype=np.float32)
    x = rng.standard_normal(shape, dtype=np.float32)
    plan = fastconv.Convolution(w, padding=padding, dilation=dilation)
    got = plan(x)
    assert plan.algorithm == "winograd"
    check(x, w, None, padding, 1, dilation=dilation, algorithm="winograd")
    conv = getattr(fastconv, f"conv{nd}d")
    np.testing.assert_allclose(
        got,
        conv(x, w, padding=padding, dilation=dilation, algorithm="winograd"),
        rtol=0,
        atol=1e-5 * np.abs(got).max(),
    )


@pytest.mark.parametrize(
    ("shape", "wins"),
    [((1, 128, 56, 56), True), ((1, 128, 1024), True), ((1, 64, 56, 56), False), ((1, 256, 10, 10), False)],
    ids=str,
)
def test_auto_at_stride_2_picks_winograd_only_where_it_measured_faster(shape, wins):
    """resnet50.l2.3x3s2's geometry and a 1-D layer of 128 channels go to Winograd; fewer channels
    or tiles (where its 1.44x saving does not pay for the transforms) stay direct."""
    rng = np.random.default_rng(12)
    nd = len(shape) - 2
    w = (rng.standard_normal((shape[1], shape[1]) + (3,) * nd) / math.sqrt(9 * shape[1])).astype(np.float32)
    x = rng.standard_normal(shape, dtype=np.float32)
    plan = fastconv.Convolution(w, stride=2, padding=1)
    got = plan(x)
    assert plan.algorithm == ("winograd" if wins else "direct")
    check(x, w, None, 1, 1, stride=2)
    conv = getattr(fastconv, f"conv{nd}d")
    np.testing.assert_allclose(got, conv(x, w, stride=2, padding=1), rtol=0, atol=1e-5 * np.abs(got).max())


@pytest.mark.parametrize(("size", "channels"), [(7, 1024), (7, 512), (7, 256), (8, 512)], ids=str)
def test_auto_small_map(size, channels):
    """On AVX-512, a 7x7 map of 1024 channels runs direct, one-shot (its GEMM of one sliver and a
    column) and from a plan (the dense kernel), where Winograd would transform 38 MB of weights on
    each call for 16 tiles past the map; up to 512 channels Winograd runs its products with the
    channels along the vectors and wins (resnet50.l4.3x3), as it does on 8x8 maps and other ISAs."""
    rng = np.random.default_rng(13)
    w = (rng.standard_normal((channels, channels, 3, 3)) / math.sqrt(9 * channels)).astype(np.float32)
    x = rng.standard_normal((1, channels, size, size), dtype=np.float32)
    direct = fastconv._core.isas()[2] == "avx512" and (size, channels) == (7, 1024)
    one_shot = fastconv.Convolution(w, padding=1, _borrow=True)
    plan = fastconv.Convolution(w, padding=1)
    got = one_shot(x)
    np.testing.assert_allclose(got, plan(x), rtol=0, atol=1e-5 * np.abs(got).max())
    assert one_shot.algorithm == plan.algorithm == ("direct" if direct else "winograd")


def test_f4_explicit_keeps_running_on_nonfinite_input():
    """Only auto steps aside on Inf/NaN; an explicit request runs, and the non-finite value spreads
    at most over the tiles that read it."""
    x = np.ones((1, 4, 12, 12), np.float32)
    x[0, 1, 5, 5] = np.inf
    w = np.ones((4, 4, 3, 3), np.float32)
    y = fastconv.conv2d(x, w, padding=1, algorithm="winograd_f4")
    assert np.isfinite(y[..., :3, :]).all() and not np.isfinite(y[..., 4:8, 4:8]).all()


# The input's last float lies in a partial vector of the finiteness check (31 x 41 x 41 floats).
@pytest.mark.parametrize("where", [(5, 17, 22), (30, 40, 40)], ids=str)
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_auto_keeps_direct_nonfinite_outputs(value, dilation, where):
    """An Inf in an input tile can turn Winograd's other outputs of that tile into NaN; auto must give
    the non-finite pattern direct convolution gives."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((32, 31, 3, 3), dtype=np.float32)
    x = rng.standard_normal((1, 31, 41, 41), dtype=np.float32)
    plan = fastconv.Convolution(w, padding=dilation, dilation=dilation)
    plan(x)
    assert plan.algorithm == "winograd"  # finite input: auto picks it for this layer
    x[(0, *where)] = value
    direct = fastconv.conv2d(x, w, padding=dilation, dilation=dilation, algorithm="direct")
    got = plan(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(direct))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(direct))


@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_auto_keeps_direct_nonfinite_outputs_at_stride_2(value):
    rng = np.random.default_rng(4)
    w = rng.standard_normal((128, 128, 3, 3), dtype=np.float32)
    x = rng.standard_normal((1, 128, 28, 28), dtype=np.float32)
    plan = fastconv.Convolution(w, stride=2, padding=1)
    plan(x)
    assert plan.algorithm == "winograd"
    x[0, 7, 13, 9] = value
    direct = fastconv.conv2d(x, w, stride=2, padding=1, algorithm="direct")
    got = plan(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(direct))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(direct))


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("where", [(0, 0, 0), (20, 30, 31), (63, 71, 71)], ids=str)
def test_auto_checks_large_inputs_for_nonfinite_values_on_every_thread(where, threads):
    """From 2^18 floats each thread checks a range of the input (plan.c, input_finite): an Inf in
    the first, a middle or the last range still sends auto to direct."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((16, 64, 3, 3), dtype=np.float32)
    x = rng.standard_normal((1, 64, 72, 72), dtype=np.float32)  # 331,776 floats
    plan = fastconv.Convolution(w, padding=1, num_threads=threads)
    plan(x)
    assert plan.algorithm == "winograd"
    x[(0, *where)] = np.inf
    got = plan(x)
    assert plan.algorithm == "direct"
    direct = fastconv.conv2d(x, w, padding=1, algorithm="direct")
    np.testing.assert_array_equal(np.isinf(got), np.isinf(direct))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(direct))


def rms_error(algorithm, cin, rng, dilation=1, stride=1, outputs=14):
    size = outputs * dilation * stride  # each phase outputs x outputs
    x = rng.standard_normal((1, cin, size, size), dtype=np.float32)
    w = (rng.standard_normal((32, cin, 3, 3)) / math.sqrt(9 * cin)).astype(np.float32)
    kw = dict(stride=stride, padding=dilation, dilation=dilation, algorithm=algorithm)
    y = fastconv.conv2d(x, w, **kw).astype(np.float64)
    pads = ((dilation, dilation),) * 2
    ref = reference_conv(x.astype(np.float64), w.astype(np.float64), None, stride, pads, dilation, 1, "zeros")
    return math.sqrt(np.mean((y - ref) ** 2) / np.mean(ref**2)), rel_err(y, ref)


@pytest.mark.parametrize(
    ("cin", "dilation", "stride", "outputs"),
    [
        (64, 1, 1, 14),
        (256, 1, 1, 14),
        (512, 1, 1, 14),
        (512, 1, 1, 7),
        (256, 2, 1, 14),
        (128, 1, 2, 14),
        (512, 1, 2, 14),
    ],
)
def test_error_within_twice_direct(cin, dilation, stride, outputs):
    """Issue 4's bound: F(2x2, 3x3)'s relative RMS error stays within 2x direct float32's, dilated
    (deeplab's 256 channels, dilation 2) as undilated, at stride 2, and on a 7x7 map (its products
    with the channels along the vectors)."""
    rms_w, _ = rms_error("winograd", cin, np.random.default_rng(cin), dilation, stride, outputs)
    rms_d, _ = rms_error("direct", cin, np.random.default_rng(cin), dilation, stride, outputs)
    assert rms_w <= 2 * rms_d, (cin, dilation, stride, outputs, rms_w, rms_d)


@pytest.mark.parametrize("algorithm", WINOGRADS)
def test_every_pairing_of_small_options(algorithm):
    rng = np.random.default_rng(7)
    for cin, h, w_, padding in itertools.product([1, 3], [3, 4, 6], [3, 5, 8], [0, 1, ((1, 0), (0, 1))]):
        x = rng.standard_normal((1, cin, h, w_), dtype=np.float32)
        w = rng.standard_normal((2, cin, 3, 3), dtype=np.float32)
        check(x, w, None, padding, 1, algorithm=algorithm)


@pytest.mark.parametrize("cin", [64, 256, 512])
def test_f4_error_within_ten_times_direct(cin):
    """F(4x4, 3x3), opt-in as less exact: its relative RMS error (measured 4x-7x direct float32's)
    stays within 10x."""
    rms_f4, _ = rms_error("winograd_f4", cin, np.random.default_rng(cin))
    rms_d, _ = rms_error("direct", cin, np.random.default_rng(cin))
    assert rms_f4 <= 10 * rms_d, (cin, rms_f4, rms_d)
