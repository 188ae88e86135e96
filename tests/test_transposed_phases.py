"""Transposed convolution as one dense convolution per output phase (src/direct/transposed_phases.*).

Float32 transposed layers with at least 8 input channels per group whose phases average two taps or
more run each output phase (o % stride) as an ordinary convolution with the taps that reach it. The
shapes aim at the phase arithmetic: strides 1 to 3 with kernels that do and do not divide into the
stride (phases with unequal sub-kernels), dilations sharing a factor with the stride (phases with no
taps, which are the bias), negative sub-padding (padding beyond the kernel span), asymmetric padding
and output_padding (a trailing phase one row longer), groups, 1-D and 3-D, channels off the 8-channel
band and the register tile, one-shot weights packed in several blocks of output channels, batches
with groups, bands cut into row bands or channel blocks (the phases of an item share one band).
Each runs through the functional API and a plan called twice, at one and two threads; one layer
also channels-last.

Tolerance: max|y - ref| / max|ref| <= 2e-5 in float32, as for the dense kernel (tests/test_dense_kernels.py).
"""

from __future__ import annotations

import fastconv
import numpy as np
import pytest
from reference import reference_conv_transpose, rel_err

TOLERANCE = 2e-5

# (name, batch, c_in, c_out, spatial, kernel, stride, padding (begin, end) pairs, output_padding,
#  dilation, groups)
CASES = [
    ("dcgan 4x4 stride 2", 1, 32, 24, (8, 8), (4, 4), 2, ((1, 1), (1, 1)), 0, 1, 1),
    ("3x3 stride 2 unequal phases", 2, 13, 21, (7, 9), (3, 3), 2, ((1, 1), (1, 1)), 1, 1, 1),
    ("3x3 stride 1 one phase", 1, 9, 17, (6, 11), (3, 3), 1, ((1, 1), (1, 1)), 0, 1, 1),
    ("5x5 stride 3 dilation 2", 1, 16, 19, (5, 6), (5, 5), 3, ((2, 2), (2, 2)), 2, 2, 1),
    ("dilation 2 stride 2 bias phases", 1, 10, 16, (6, 5), (4, 4), 2, ((1, 2), (0, 3)), 1, 2, 1),
    ("padding beyond the kernel", 1, 12, 18, (9, 10), (4, 4), 2, ((5, 4), (6, 3)), 0, 1, 1),
    ("asymmetric 5x3 stride (2, 3)", 1, 8, 33, (5, 7), (5, 3), (2, 3), ((2, 0), (1, 1)), (1, 2), 1, 1),
    ("groups 2", 2, 24, 34, (5, 6), (4, 4), 2, ((1, 1), (1, 1)), 0, 1, 2),
    ("1-D", 1, 20, 40, (30,), (7,), 3, ((2, 3),), 1, 1, 1),
    ("3-D", 1, 9, 17, (3, 4, 5), (3, 4, 3), (1, 2, 2), ((1, 1), (1, 1), (0, 1)), 0, 1, 1),
    ("3-D stride 2 all axes", 1, 16, 16, (3, 3, 4), (4, 4, 4), 2, ((1, 1), (1, 1), (2, 1)), 1, 1, 1),
    # one-shot calls pack the weights in blocks of output channels (1 MiB): two blocks, the last ragged
    ("weight blocks, ragged", 2, 64, 280, (3, 5), (4, 4), 2, ((1, 1), (1, 1)), 0, 1, 1),
    ("groups 3, batch 3", 3, 48, 57, (4, 3), (3, 3), 2, ((1, 1), (0, 2)), 1, 1, 3),
    # the phases of an item share one band: cut into row bands (phases of 1,500 outputs) or into
    # channel blocks (a band of 6,000 channels), the phases one row or column apart in size
    ("row bands", 1, 16, 20, (40, 37), (4, 4), 2, ((1, 1), (1, 1)), 1, 1, 1),
    ("channel blocks", 1, 6000, 10, (9, 10), (4, 4), 2, ((2, 1), (1, 1)), (0, 1), 1, 1),
]


def _layer(batch, c_in, c_out, spatial, kernel, groups, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, c_in, *spatial)).astype(np.float32)
    w = rng.standard_normal((c_in, c_out // groups, *kernel)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    return x, w, b


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_transposed_phases_match_reference(case, threads):
    _, batch, c_in, c_out, spatial, kernel, stride, pads, output_padding, dilation, groups = case
    x, w, b = _layer(batch, c_in, c_out, spatial, kernel, groups, seed=len(spatial) * 1000 + c_in)
    ref = reference_conv_transpose(
        x,
        w,
        b,
        stride=stride,
        pad_pairs=pads,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )
    conv = getattr(fastconv, f"conv_transpose{len(spatial)}d")
    kw = dict(
        stride=stride,
        padding=pads,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        algorithm="direct",
        num_threads=threads,
    )
    y = conv(x, w, b, **kw)
    assert rel_err(y, ref) <= TOLERANCE
    plan = fastconv.Convolution(w, b, transposed=True, **kw)
    for _ in range(2):
        assert rel_err(plan(x), ref) <= TOLERANCE


@pytest.mark.parametrize("threads", [1, 2])
def test_transposed_phases_channels_last(threads):
    x, w, b = _layer(2, 24, 34, (5, 6), (4, 4), 2, seed=7)
    ref = reference_conv_transpose(x, w, b, stride=2, pad_pairs=((1, 1), (1, 1)), groups=2)
    kw = dict(stride=2, padding=1, groups=2, algorithm="direct", num_threads=threads)
    x_last = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    y = fastconv.conv_transpose2d(x_last, w, b, layout="channels_last", **kw)
    assert rel_err(np.moveaxis(y, -1, 1), ref) <= TOLERANCE
    plan = fastconv.Convolution(w, b, transposed=True, layout="channels_last", **kw)
    assert rel_err(np.moveaxis(plan(x_last), -1, 1), ref) <= TOLERANCE
