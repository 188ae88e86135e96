"""fastconv.shapes against what the convolution functions actually do."""

import itertools
import math
import os
import sys

import fastconv
import numpy as np
import pytest
from fastconv import _layers, shapes

CONV = {1: fastconv.conv1d, 2: fastconv.conv2d, 3: fastconv.conv3d}
CONV_T = {1: fastconv.conv_transpose1d, 2: fastconv.conv_transpose2d, 3: fastconv.conv_transpose3d}
PADDINGS = [0, 2, "valid", "same", "same_lower", "tuple", "pairs"]


def grid(transposed):
    rng = np.random.default_rng(42 + transposed)
    for nd in (1, 2, 3):
        for padding in PADDINGS:
            for _ in range(6 if nd < 3 else 3):
                size = tuple(int(v) for v in rng.integers(1, 9, nd))
                kernel = tuple(int(v) for v in rng.integers(1, 5, nd))
                stride = tuple(int(v) for v in rng.integers(1, 4, nd))
                dilation = tuple(int(v) for v in rng.integers(1, 3, nd))
                if padding == "tuple":
                    pad = tuple(int(v) for v in rng.integers(0, 3, nd))
                elif padding == "pairs":
                    pad = tuple((int(a), int(b)) for a, b in rng.integers(0, 3, (nd, 2)))
                else:
                    pad = padding
                op = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation, strict=True))
                yield nd, size, kernel, stride, pad, dilation, op


def actual(nd, size, kernel, stride, pad, dilation, op, transposed):
    x = np.zeros((1, 1, *size), np.float32)
    w = np.ones((1, 1, *kernel), np.float32)
    if transposed:
        return CONV_T[nd](x, w, None, stride, pad, op, 1, dilation).shape[2:]
    return CONV[nd](x, w, None, stride, pad, dilation).shape[2:]


@pytest.mark.parametrize("transposed", [False, True], ids=["forward", "transposed"])
def test_conv_output_size_matches_the_functions(transposed):
    checked = errors = 0
    for nd, size, kernel, stride, pad, dilation, op in grid(transposed):
        if not transposed:
            op = 0
        try:
            expected = actual(nd, size, kernel, stride, pad, dilation, op, transposed)
        except ValueError:
            with pytest.raises(ValueError):
                shapes.conv_output_size(
                    size, kernel, stride, pad, dilation, transposed=transposed, output_padding=op
                )
            errors += 1
            continue
        got = shapes.conv_output_size(
            size, kernel, stride, pad, dilation, transposed=transposed, output_padding=op
        )
        assert got == expected, (nd, size, kernel, stride, pad, dilation, op)
        checked += 1
    assert checked > 50 and errors > 0


def test_conv_output_size_scalars_and_examples():
    assert shapes.conv_output_size(224, 7, stride=2, padding=3) == 112
    assert shapes.conv_output_size(224, 3, padding="same") == 224
    assert shapes.conv_output_size(15, 3, stride=2, padding="same") == 8
    assert shapes.conv_output_size((15, 16), 3, stride=2, padding="same") == (8, 8)
    assert shapes.conv_output_size(16, 4, stride=2, padding=1, transposed=True) == 32
    assert shapes.conv_output_size(16, 3, stride=2, padding=1, transposed=True, output_padding=1) == 32
    assert shapes.conv_output_size(7, 3, padding="same", transposed=True, stride=2, output_padding=1) == 14
    assert (
        shapes.conv_output_size(10, 3, padding=((1, 2),)) == (11,)
        or shapes.conv_output_size(10, 3, padding=((1, 2),)) == 11
    )
    with pytest.raises(ValueError, match=r"conv_output_size: the padded input is 2 wide"):
        shapes.conv_output_size(2, 5)
    with pytest.raises(ValueError, match=r"output_padding=\(2,\) must be smaller than either stride"):
        shapes.conv_output_size(5, 3, stride=2, transposed=True, output_padding=2)
    with pytest.raises(ValueError, match=r"output_padding is only for transposed"):
        shapes.conv_output_size(5, 3, output_padding=1)
    with pytest.raises(ValueError, match=r"different numbers of spatial dims"):
        shapes.conv_output_size((5, 5), (3, 3, 3))
    with pytest.raises(
        TypeError, match=r"conv_output_size: stride must be an int or a tuple of 1 ints, but got 1.5"
    ):
        shapes.conv_output_size(5, 3, stride=1.5)


def test_param_count_matches_plans():
    rng = np.random.default_rng(3)
    for _ in range(20):
        nd = int(rng.integers(1, 4))
        groups = int(rng.choice([1, 2, 4]))
        cin, cout = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
        kernel = tuple(int(v) for v in rng.integers(1, 4, nd))
        bias = bool(rng.integers(0, 2))
        for transposed in (False, True):
            shape = (cin, cout // groups, *kernel) if transposed else (cout, cin // groups, *kernel)
            w = np.zeros(shape, np.float32)
            b = np.zeros(cout, np.float32) if bias else None
            plan = fastconv.Convolution(w, b, groups=groups, transposed=transposed)
            expected = plan.weight.size + (0 if plan.bias is None else plan.bias.size)
            assert shapes.param_count(cin, cout, kernel, groups, bias, transposed=transposed) == expected
    assert shapes.param_count(3, 64, (7, 7)) == 64 * 3 * 49 + 64
    assert shapes.param_count(3, 64, 7, bias=False) == 64 * 3 * 7
    with pytest.raises(ValueError, match=r"param_count: groups=2 must divide in_channels=3"):
        shapes.param_count(3, 4, 3, groups=2)


def test_flops_match_the_benchmark_suite():
    for layer in _layers.LAYERS:
        got = shapes.flops(
            layer.spatial,
            layer.cin,
            layer.cout,
            layer.kernel,
            layer.stride,
            layer.padding,
            layer.dilation,
            layer.groups,
            transposed=layer.transposed,
            batch=layer.n,
        )
        assert got == _layers.flops(layer), layer.name
    shared = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench")
    if os.path.exists(os.path.join(shared, "layers.py")):  # the team's suite, when it sits beside the repo
        sys.path.insert(0, shared)
        try:
            import layers as team
        finally:
            sys.path.remove(shared)
        for row in team.LAYERS:
            name, nd, n, cin, cout, sp, k, s, p, d, g, tr = row
            assert shapes.flops(sp, cin, cout, k, s, p, d, g, transposed=tr, batch=n) == team.flops(row), name
    # the direct algorithm's multiply-adds, counted by brute force on a small layer
    x = np.zeros((1, 4, 6, 5))
    out = fastconv.conv2d(x, np.zeros((6, 2, 3, 2)), stride=(2, 1), padding=1, groups=2)
    assert shapes.flops((6, 5), 4, 6, (3, 2), (2, 1), 1, 1, 2) == 2 * math.prod(out.shape) * 2 * 3 * 2


def _influence(stack, n, nd):
    """influence[i, o]: does input i reach output o (1-D impulses through the stack, positive weights)."""
    x = np.eye(n)[:, None, :]
    for k, s, p, d in stack:
        x = fastconv.conv1d(x, np.ones((1, 1, k)), None, s, p, d)
    return x[:, 0, :] != 0


STACKS = [
    [(3, 1, 1, 1)] * 3,
    [(7, 2, 3, 1), (3, 2, 1, 1)],
    [(3, 1, 0, 2), (3, 1, 0, 4), (2, 1, 0, 1)],
    [(4, 2, 1, 1), (3, 3, 2, 1), (2, 1, (0, 1), 2)],
    [(5, 1, "same", 1), (4, 1, "same", 1), (3, 2, 1, 1)],
    [(3, 2, "same", 1), (2, 2, "same_lower", 1)],
]


@pytest.mark.parametrize("stack", STACKS, ids=[str(i) for i in range(len(STACKS))])
def test_receptive_field_matches_impulses(stack):
    n = 40
    layers = [
        (k, s, ((p,) if not isinstance(p, (str, tuple)) else p if isinstance(p, str) else (p,)), d)
        for k, s, p, d in stack
    ]
    rf = shapes.receptive_field(layers, input_size=n)
    size, jump, start = rf.size[0], rf.jump[0], rf.start[0]
    influence = _influence([(k, s, p if not isinstance(p, tuple) else (p,), d) for k, s, p, d in stack], n, 1)
    dilated = any(d > 1 for *_, d in stack)
    for o in range(influence.shape[1]):
        lo, hi = start + o * jump - (size - 1) / 2, start + o * jump + (size - 1) / 2
        inputs = np.flatnonzero(influence[:, o])
        assert inputs.size, o
        if lo >= 0 and hi <= n - 1:  # the whole field lies inside the input: its ends are hit exactly
            assert (inputs.min(), inputs.max()) == (lo, hi), (o, inputs, lo, hi)
            if not dilated:
                assert inputs.size == size
        else:
            assert inputs.min() >= max(lo, 0) and inputs.max() <= min(hi, n - 1)


def test_receptive_field_forms_and_textbook_values():
    assert shapes.receptive_field([(3, 1, 1)] * 3) == ((7,), (1,), (0.0,))
    stem = [{"kernel_size": 7, "stride": 2, "padding": 3}, {"kernel_size": 3, "stride": 2, "padding": 1}]
    assert shapes.receptive_field(stem) == ((11,), (4,), (0.0,))
    plan = fastconv.Convolution(np.zeros((8, 3, 7, 7), np.float32), stride=2, padding=3)
    rf = shapes.receptive_field([plan, ((3, 3), 2, 1), ((3, 3), 1, 1, 2)])
    assert rf.size == (27, 27) and rf.jump == (4, 4) and rf.start == (4.0, 4.0)
    assert shapes.receptive_field([(2, 1, 0)]).start == (0.5,)
    assert shapes.receptive_field([((3, 5), 1, "same")]).start == (0.0, 0.0)
    with pytest.raises(ValueError, match=r"padding='same' with stride \(2,\).*pass input_size"):
        shapes.receptive_field([(3, 2, "same")])
    with pytest.raises(ValueError, match=r"transposed convolution"):
        shapes.receptive_field([fastconv.Convolution(np.zeros((2, 2, 3)), transposed=True)])
    with pytest.raises(TypeError, match=r"receptive_field: layers\[0\] must be a fastconv.Convolution"):
        shapes.receptive_field([3])
    with pytest.raises(ValueError, match=r"layers\[1\]: the padded input is 1 wide"):
        shapes.receptive_field([(3, 2, 0), (3, 1, 0)], input_size=4)


def test_receptive_field_2d_matches_conv2d():
    stack = [((3, 5), (1, 2), ((1, 1), (2, 2)), (2, 1)), ((3, 3), (2, 1), 0, 1)]
    n = (30, 33)
    rf = shapes.receptive_field(stack, input_size=n)
    for axis in range(2):
        # collapse the other axis: a 1-D impulse through the 2-D stack
        length = n[axis]
        x = np.zeros((length, 1, *n))
        for i in range(length):
            index = [slice(None), slice(None)]
            index[axis] = i
            x[(i, 0, *index)] = 1.0
        for k, s, p, d in stack:
            x = fastconv.conv2d(x, np.ones((1, 1, *k)), None, s, p, d)
        reach = x[:, 0].any(axis=2 - axis)
        for o in range(reach.shape[1]):
            lo = rf.start[axis] + o * rf.jump[axis] - (rf.size[axis] - 1) / 2
            hi = lo + rf.size[axis] - 1
            inputs = np.flatnonzero(reach[:, o])
            if lo >= 0 and hi <= length - 1:
                assert (inputs.min(), inputs.max()) == (lo, hi)


def test_every_padding_form_is_accepted():
    for pad in itertools.product([1, (1, 2)], repeat=2):
        pairs = tuple(p if isinstance(p, tuple) else (p, p) for p in pad)
        assert (
            shapes.conv_output_size((9, 9), 3, padding=pairs)
            == fastconv.conv2d(np.zeros((1, 1, 9, 9)), np.zeros((1, 1, 3, 3)), padding=pairs).shape[2:]
        )
