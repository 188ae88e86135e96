"""Depthwise 3x3 (groups = channels, multiplier 1) on ragged planes, against the float64 reference.

The depthwise kernel reads the input in place, loading the vectors at a row's edges masked (stride 2:
deinterleaved, the kw = 0 taps shifted once per output vector), walks strips of output vectors down
bands of output rows, and stores a row's partial last vector whole into the next row: every width
around the vector length, every small height, both strides, asymmetric paddings and planes taller
than a band exercise those edges.
Stride-1 planes up to 14 wide go to the channel kernel instead: groups of 4, 8 or 16 consecutive (image,
channel) planes transposed into pixel vectors, so every channel count around those group sizes,
groups that wrap from one image into the next, and thread splits exercise its edges; a group of
consecutive channels loads its weights as vectors, others lane by lane."""

from __future__ import annotations

import fastconv
import numpy as np
import pytest
from reference import reference_conv, rel_err

TOL = 2e-6  # float32 against float64: 9 products and a bias per output

PADDINGS = [((0, 0), (0, 0)), ((1, 1), (1, 1)), ((2, 0), (0, 2)), ((0, 1), (1, 0)), ((3, 2), (2, 3))]


def _case(channels, height, width, stride, pads, bias, seed=0, batch=2, threads=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, channels, height, width), dtype=np.float32)
    w = rng.standard_normal((channels, 1, 3, 3), dtype=np.float32)
    b = rng.standard_normal(channels, dtype=np.float32) if bias else None
    if height + sum(pads[0]) < 3 or width + sum(pads[1]) < 3:
        return
    got = fastconv.conv2d(x, w, b, stride=stride, padding=pads, groups=channels, num_threads=threads)
    ref = reference_conv(x, w, b, stride=stride, pad_pairs=pads, groups=channels)
    assert rel_err(got, ref) < TOL, (channels, height, width, stride, pads, batch, threads)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("pads", PADDINGS)
def test_ragged_widths_and_heights(stride, pads):
    for width in range(1, 34):
        for height in range(1, 10):
            _case(3, height, width, stride, pads, bias=(width + height) % 2 == 0)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_split_whole_planes(threads):
    rng = np.random.default_rng(1)
    for channels, size, stride in [(5, 13, 1), (7, 21, 2), (960, 7, 1), (64, 30, 2)]:
        x = rng.standard_normal((3, channels, size, size + 2), dtype=np.float32)
        w = rng.standard_normal((channels, 1, 3, 3), dtype=np.float32)
        b = rng.standard_normal(channels, dtype=np.float32)
        got = fastconv.conv2d(x, w, b, stride=stride, padding=1, groups=channels, num_threads=threads)
        ref = reference_conv(x, w, b, stride=stride, pad_pairs=((1, 1), (1, 1)), groups=channels)
        assert rel_err(got, ref) < TOL, (channels, size, stride, threads)


def test_wide_rows_and_large_padding():
    for width, pads in [(131, ((1, 1), (1, 1))), (70, ((4, 4), (9, 7))), (5, ((0, 0), (20, 20)))]:
        for stride in (1, 2):
            _case(2, 6, width, stride, pads, bias=True, seed=width)


@pytest.mark.parametrize("stride", [1, 2])
def test_tall_planes_cross_bands(stride):
    for height, width, pads in [
        (150, 40, ((1, 1), (1, 1))),
        (131, 67, ((0, 2), (2, 0))),
        (260, 23, ((3, 0), (0, 1))),
    ]:
        _case(2, height, width, stride, pads, bias=height % 2 == 0, seed=height)


@pytest.mark.parametrize("stride", [1, 2])
def test_channel_groups_ragged_and_wrapping(stride):
    for channels in [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33]:
        for height, width in [(7, 7), (1, 1), (2, 3), (5, 1), (4, 4), (9, 14)]:
            for batch in (1, 3):
                pads = PADDINGS[(channels + height) % len(PADDINGS)]
                _case(channels, height, width, stride, pads, bias=channels % 2 == 1, batch=batch)


@pytest.mark.parametrize("threads", [2, 3])
def test_channel_groups_split_among_threads(threads):
    for channels, size, stride in [(40, 7, 1), (17, 3, 1), (96, 14, 1), (33, 13, 1)]:
        _case(channels, size, size, stride, ((1, 1), (1, 1)), bias=True, batch=3, threads=threads)


@pytest.mark.parametrize("bias", [False, True])
def test_channel_group_weights_whole_and_split(bias):
    # 8-channel multiples keep every group whole (weights loaded as vectors); 12 and 20 channels
    # make groups that straddle two images (weights lane by lane) beside whole ones
    for channels in (8, 12, 16, 20, 64):
        for height, width, stride in [(7, 7, 1), (14, 14, 1), (3, 5, 1)]:
            _case(channels, height, width, stride, ((1, 1), (1, 1)), bias=bias, batch=3, seed=channels)
