"""The direct engine's plane kernel (one output channel per group: single-channel correlation,
depthwise other than 3x3, a few input channels per output) against the float64 reference, on the
shapes that exercise its edges: heights that are not a multiple of its row blocks (and below them),
widths around its vector blocks and the band chunks, kernels taller and shorter than the row block,
long 1-D kernels (folded into rows of three vectors) with ragged last rows, strides and dilations
along the height (rows then share no input), padding on one side only, and bias.

Tolerance: float32 direct sums of `reduction` products, bounded by sqrt(reduction) x 1e-5.
"""

import math

import fastconv
import numpy as np
import pytest
from reference import reference_conv

F32_TOLERANCE = 1e-5


def check(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    nd = x.ndim - 2
    conv = fastconv.conv1d if nd == 1 else fastconv.conv2d
    y = conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, algorithm="direct")
    pads = padding if isinstance(padding, tuple) else ((padding, padding),) * nd
    ref = reference_conv(
        x.astype(np.float64),
        w.astype(np.float64),
        None if b is None else b.astype(np.float64),
        stride,
        pads,
        dilation,
        groups,
    )
    assert y.shape == ref.shape
    reduction = w.shape[1] * math.prod(w.shape[2:])
    err = float(np.abs(y - ref).max() / (np.abs(ref).max() + 1e-30))
    assert err < F32_TOLERANCE * math.sqrt(reduction), err


def arrays(rng, x_shape, w_shape, bias):
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32) if bias else None
    return x, w, b


@pytest.mark.parametrize(
    "kernel", [(1, 1), (2, 2), (3, 3), (4, 5), (5, 5), (6, 3), (7, 7), (9, 2), (15, 15)], ids=str
)
@pytest.mark.parametrize("size", [(1, 1), (3, 9), (5, 17), (7, 24), (13, 40), (25, 65), (6, 130)], ids=str)
def test_single_channel_matches_reference(kernel, size):
    rng = np.random.default_rng(hash((kernel, size)) % 2**32)
    x, w, b = arrays(rng, (1, 1, *size), (1, 1, *kernel), bias=True)
    check(x, w, b, padding=((kernel[0] // 2, (kernel[0] - 1) // 2), (kernel[1] - 1, 0)))


# widths 1 .. 2 x 16 + 3 cover two vectors and a ragged rest on every ISA (8 or 16 lanes)
RAGGED_WIDTHS = range(1, 36)
RAGGED_HEIGHTS = range(1, 8)


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize(
    "kernel", [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (7, 7), (3, 5), (5, 3)], ids=str
)
def test_image_filter_ragged_edges_match_scipy(kernel, mode, boundary):
    """correlate2d on every small image: the 3x3 and 5x5 kernels' compile-time families and the
    general one, with the borders of every mode and boundary."""
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(100 * kernel[0] + kernel[1])
    w = rng.standard_normal(kernel).astype(np.float32)
    for h in RAGGED_HEIGHTS:
        for width in RAGGED_WIDTHS:
            inside = h >= kernel[0] and width >= kernel[1]
            if mode == "valid" and not (inside or (h <= kernel[0] and width <= kernel[1])):
                continue
            x = rng.standard_normal((h, width)).astype(np.float32)
            y = fastconv.correlate2d(x, w, mode, boundary, method="direct", separable=False)
            ref = signal.correlate2d(x.astype(np.float64), w.astype(np.float64), mode, boundary)
            assert y.shape == ref.shape, (h, width)
            err = float(np.abs(y - ref).max() / (np.abs(ref).max() + 1e-30))
            assert err < F32_TOLERANCE * math.sqrt(w.size), (h, width, err)


@pytest.mark.parametrize("taps", [31, 48, 49, 63, 64, 65, 100, 129], ids=str)
@pytest.mark.parametrize("length", [1, 15, 16, 17, 95, 96, 200, 4097, 9000], ids=str)
def test_long_1d_kernel_matches_reference(taps, length):
    rng = np.random.default_rng(taps * 10007 + length)
    x, w, b = arrays(rng, (2, 1, length), (1, 1, taps), bias=True)
    check(x, w, b, padding=taps // 2)


def test_long_1d_kernel_keeps_nan_local():
    """Folding pads no tap with a zero weight: a NaN reaches only the outputs whose window holds it."""
    x = np.zeros((1, 1, 5000), np.float32)
    x[0, 0, 2000] = np.nan
    w = np.ones((1, 1, 63), np.float32)
    y = fastconv.conv1d(x, w, padding=31, algorithm="direct")
    assert np.isnan(y).sum() == 63


@pytest.mark.parametrize(
    "kernel,stride,dilation",
    [((5, 5), 1, 1), ((5, 5), (2, 1), 1), ((3, 5), 1, (2, 1)), ((5, 3), (2, 1), (2, 1)), ((7, 7), 1, 2)],
    ids=str,
)
@pytest.mark.parametrize("channels,size", [(3, (9, 11)), (8, (14, 14)), (4, (30, 7))], ids=str)
def test_depthwise_matches_reference(kernel, stride, dilation, channels, size):
    rng = np.random.default_rng(channels * 31 + size[0])
    x, w, b = arrays(rng, (2, channels, *size), (channels, 1, *kernel), bias=True)
    dil = (dilation,) * 2 if isinstance(dilation, int) else dilation
    pad = tuple(((k // 2) * d,) * 2 for k, d in zip(kernel, dil, strict=True))
    check(x, w, b, stride=stride, padding=pad, dilation=dilation, groups=channels)


@pytest.mark.parametrize("in_per_group", [2, 3, 5])
@pytest.mark.parametrize("kernel", [(1, 7), (5, 5), (9, 4)], ids=str)
def test_few_inputs_per_output_match_reference(in_per_group, kernel):
    rng = np.random.default_rng(in_per_group * 7 + kernel[0])
    groups = 3
    x, w, b = arrays(rng, (1, groups * in_per_group, 19, 37), (groups, in_per_group, *kernel), bias=False)
    check(x, w, b, padding=((kernel[0] // 2,) * 2, (kernel[1] // 2,) * 2), groups=groups)


def test_threads_split_bands_and_chunks():
    rng = np.random.default_rng(5)
    x, w, b = arrays(rng, (1, 1, 5000), (1, 1, 63), bias=False)
    y1 = fastconv.conv1d(x, w, padding=31, algorithm="direct", num_threads=1)
    y2 = fastconv.conv1d(x, w, padding=31, algorithm="direct", num_threads=2)
    np.testing.assert_array_equal(y1, y2)
    x, w, b = arrays(rng, (1, 1, 70, 50), (1, 1, 9, 9), bias=False)
    y1 = fastconv.conv2d(x, w, padding=4, algorithm="direct", num_threads=1)
    y2 = fastconv.conv2d(x, w, padding=4, algorithm="direct", num_threads=2)
    np.testing.assert_array_equal(y1, y2)


# Several output channels per group from a few input channels with 7x7 and larger kernels (image
# stems), which the plane kernel computes a few output channels at a time on AVX-512 when output
# rows are whole vectors (112 and 128 wide here): blocks of 4, 3 and 2 channels (never 1 left alone:
# 5 as 3 + 2, 6 as 4 + 2, 9 as 4 + 3 + 2) whose vectors run across row ends, width stride 2 through
# phase-split bands, stride 1 with runs read in place and ragged runs through the band on either
# side (widths 3, 64 and 45 of a 112-wide row: partial vectors inside blocks), one-sided padding,
# dilation, heights below and across the bands. The other ISAs run these layers on their usual
# kernels.
@pytest.mark.parametrize("in_channels", [1, 2, 3, 4])
@pytest.mark.parametrize("out_channels", [2, 3, 4, 5, 6, 7, 9, 63, 64])
@pytest.mark.parametrize(
    "stride,width,padding",
    [(2, 224, (3, 3)), (2, 223, (4, 2)), (1, 112, (3, 3)), (1, 112, (6, 0)), (1, 128, (0, 6))],
    ids=str,
)
def test_few_channels_match_reference(in_channels, out_channels, stride, width, padding):
    rng = np.random.default_rng(in_channels * 101 + out_channels * 7 + stride + padding[0])
    height = 11 if out_channels >= 63 else 75
    x, w, b = arrays(rng, (1, in_channels, height, width), (out_channels, in_channels, 7, 7), bias=True)
    check(x, w, b, stride=stride, padding=((3, 3), padding))


@pytest.mark.parametrize(
    "kernel,stride,dilation,size",
    [((9, 7), (3, 2), 1, (40, 224)), ((7, 7), 1, (1, 2), (23, 118)), ((7, 8), (1, 2), (2, 1), (30, 224))],
    ids=str,
)
def test_few_channels_shapes_match_reference(kernel, stride, dilation, size):
    rng = np.random.default_rng(size[1])
    groups = 2
    x, w, b = arrays(rng, (2, groups * 3, *size), (groups * 8, 3, *kernel), bias=False)
    check(x, w, b, stride=stride, padding=((4, 4), (3, 3)), dilation=dilation, groups=groups)


def test_few_channels_threads_agree():
    rng = np.random.default_rng(9)
    x, w, b = arrays(rng, (1, 3, 224, 224), (64, 3, 7, 7), bias=True)
    y1 = fastconv.conv2d(x, w, b, stride=2, padding=3, algorithm="direct", num_threads=1)
    y2 = fastconv.conv2d(x, w, b, stride=2, padding=3, algorithm="direct", num_threads=2)
    np.testing.assert_array_equal(y1, y2)
