"""Checks the float64 numpy reference (tests/reference.py) itself against torch and ONNX.

These tests do not need fastconv: they make sure the oracle of the other tests is right. Skipped when
torch (or onnx) is not importable.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference import (
    conv_out_size,
    reference_conv,
    reference_conv_transpose,
    rel_err,
    resolve_padding,
    to_channels_first,
    to_channels_last,
)

TOL = 1e-12  # both sides float64; differences are summation order only

TORCH_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny shapes: a thread pool only adds overhead (and fights other pools)
    yield torch
    torch.set_num_threads(threads)


def _random_forward_case(rng):
    nd = int(rng.integers(1, 4))
    groups = int(rng.choice([1, 2, 3]))
    cin = groups * int(rng.integers(1, 4))
    cout = groups * int(rng.integers(1, 4))
    kernel = tuple(int(v) for v in rng.integers(1, 4, nd))
    stride = tuple(int(v) for v in rng.integers(1, 4, nd))
    dilation = tuple(int(v) for v in rng.integers(1, 3, nd))
    size = tuple(int(v) for v in rng.integers(4, 9 if nd < 3 else 7, nd))
    mode = str(rng.choice(["zeros", "reflect", "replicate", "circular"]))
    pads = tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(nd))
    n = int(rng.integers(1, 3))
    return nd, groups, cin, cout, kernel, stride, dilation, size, mode, pads, n


def _torch_conv(torch, x, w, b, stride, pads, dilation, groups, mode):
    F = torch.nn.functional
    nd = x.ndim - 2
    tx = torch.from_numpy(x)
    flat = []
    for pb, pe in reversed(pads):  # F.pad takes the last dim first
        flat += [pb, pe]
    if any(flat):
        tx = F.pad(tx, flat, mode=TORCH_PAD_MODE[mode])
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    tb = None if b is None else torch.from_numpy(b)
    return conv(tx, torch.from_numpy(w), tb, stride, 0, dilation, groups).numpy()


def test_reference_conv_matches_torch_random(torch):
    rng = np.random.default_rng(1234)
    checked = 0
    while checked < 300:
        nd, groups, cin, cout, kernel, stride, dilation, size, mode, pads, n = _random_forward_case(rng)
        if any(
            conv_out_size(s, k, st, d, pb, pe) < 1
            for s, k, st, d, (pb, pe) in zip(size, kernel, stride, dilation, pads, strict=True)
        ):
            continue
        x = rng.standard_normal((n, cin) + size)
        w = rng.standard_normal((cout, cin // groups) + kernel)
        b = rng.standard_normal(cout) if rng.random() < 0.5 else None
        ref = reference_conv(x, w, b, stride, pads, dilation, groups, mode)
        got = _torch_conv(torch, x, w, b, stride, pads, dilation, groups, mode)
        case = dict(
            size=size, kernel=kernel, stride=stride, dilation=dilation, pads=pads, mode=mode, g=groups
        )
        assert rel_err(ref, got) < TOL, case
        checked += 1


def test_reference_conv_transpose_matches_torch_random(torch):
    F = torch.nn.functional
    rng = np.random.default_rng(4321)
    checked = 0
    while checked < 300:
        nd, groups, cin, cout, kernel, stride, dilation, size, _, pads, n = _random_forward_case(rng)
        op = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation, strict=True))
        x = rng.standard_normal((n, cin) + size)
        w = rng.standard_normal((cin, cout // groups) + kernel)
        b = rng.standard_normal(cout) if rng.random() < 0.5 else None
        try:
            ref = reference_conv_transpose(x, w, b, stride, pads, op, groups, dilation)
        except ValueError:
            continue  # output size < 1
        conv = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[nd]
        tb = None if b is None else torch.from_numpy(b)
        symmetric = all(pb == pe for pb, pe in pads)
        if symmetric:
            # torch's own padding arithmetic
            got = conv(
                torch.from_numpy(x),
                torch.from_numpy(w),
                tb,
                stride,
                tuple(p[0] for p in pads),
                op,
                groups,
                dilation,
            ).numpy()
        else:
            # asymmetric: torch with no padding, then crop begin/end ourselves
            full = conv(torch.from_numpy(x), torch.from_numpy(w), tb, stride, 0, op, groups, dilation).numpy()
            crop = tuple(slice(pb, full.shape[2 + i] - pe) for i, (pb, pe) in enumerate(pads))
            got = full[(slice(None), slice(None)) + crop]
        case = dict(size=size, kernel=kernel, stride=stride, dilation=dilation, pads=pads, op=op, g=groups)
        assert rel_err(ref, got) < TOL, case
        checked += 1


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_resolve_same_matches_torch_same(torch, nd):
    """torch padding="same" (stride 1 only) puts the odd extra pad at the end, like our "same"."""
    F = torch.nn.functional
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    rng = np.random.default_rng(nd)
    for _ in range(40):
        kernel = tuple(int(v) for v in rng.integers(1, 5, nd))
        dilation = tuple(int(v) for v in rng.integers(1, 3, nd))
        size = tuple(int(v) for v in rng.integers(3, 8, nd))
        x = rng.standard_normal((1, 2) + size)
        w = rng.standard_normal((3, 2) + kernel)
        pads = resolve_padding("same", size, kernel, 1, dilation)
        ref = reference_conv(x, w, None, 1, pads, dilation, 1)
        got = conv(torch.from_numpy(x), torch.from_numpy(w), None, 1, "same", dilation).numpy()
        assert ref.shape[2:] == size
        assert rel_err(ref, got) < TOL, (kernel, dilation, size)


def test_resolve_padding_forms():
    assert resolve_padding(1, (5, 6), (3, 3)) == ((1, 1), (1, 1))
    assert resolve_padding((1, 2), (5, 6), (3, 3)) == ((1, 1), (2, 2))
    assert resolve_padding(((0, 1), (2, 3)), (5, 6), (3, 3)) == ((0, 1), (2, 3))
    assert resolve_padding(((1, 2),), (5,), (3,)) == ((1, 2),)
    assert resolve_padding("valid", (5, 6, 7), (3, 3, 3)) == ((0, 0),) * 3
    # even kernel: total 1, extra at the end for same, at the beginning for same_lower
    assert resolve_padding("same", (5,), (2,)) == ((0, 1),)
    assert resolve_padding("same_lower", (5,), (2,)) == ((1, 0),)
    # stride 2, in 6, k 3: out 3, total = 2*2 + 3 - 6 = 1
    assert resolve_padding("same", (6,), (3,), 2) == ((0, 1),)
    # stride 2, in 5, k 3: out 3, total = 4 + 3 - 5 = 2
    assert resolve_padding("same", (5,), (3,), 2) == ((1, 1),)
    # stride 3 where the window already covers: total clamps at 0
    assert resolve_padding("same", (7,), (1,), 3) == ((0, 0),)
    # transposed: out = in*s, total = s*(in-1) + op + d*(k-1) + 1 - in*s = op + d*(k-1) + 1 - s
    assert resolve_padding("same", (4,), (3,), 2, transposed=True) == ((0, 1),)
    assert resolve_padding("same_lower", (4,), (3,), 2, transposed=True) == ((1, 0),)
    assert resolve_padding("same", (4,), (4,), 2, transposed=True, output_padding=1) == ((1, 2),)
    with pytest.raises(ValueError):
        resolve_padding("same", (4,), (2,), 3, transposed=True)


def test_layout_helpers_roundtrip():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    xl = to_channels_last(x)
    assert xl.shape == (2, 4, 5, 3) and xl.flags.c_contiguous
    assert xl[1, 2, 3, 0] == x[1, 0, 2, 3]
    np.testing.assert_array_equal(to_channels_first(xl), x)
    u = x[0]
    assert to_channels_last(u, batched=False).shape == (4, 5, 3)
    np.testing.assert_array_equal(to_channels_first(to_channels_last(u, batched=False), batched=False), u)


def _onnx_run(node, feeds):
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(node).run(None, feeds)[0]


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_resolve_same_strided_matches_onnx(auto_pad):
    """Forward "same"/"same_lower" with stride > 1 against ONNX Conv auto_pad (torch cannot do this)."""
    pytest.importorskip("onnx")
    import onnx.helper as oh

    mode = "same" if auto_pad == "SAME_UPPER" else "same_lower"
    rng = np.random.default_rng(7)
    for _ in range(30):
        nd = int(rng.integers(1, 3))
        kernel = tuple(int(v) for v in rng.integers(1, 5, nd))
        stride = tuple(int(v) for v in rng.integers(1, 4, nd))
        dilation = tuple(int(v) for v in rng.integers(1, 3, nd))
        size = tuple(int(v) for v in rng.integers(3, 9, nd))
        x = rng.standard_normal((1, 2) + size)
        w = rng.standard_normal((3, 2) + kernel)
        pads = resolve_padding(mode, size, kernel, stride, dilation)
        ref = reference_conv(x, w, None, stride, pads, dilation, 1)
        node = oh.make_node(
            "Conv", ["X", "W"], ["Y"], auto_pad=auto_pad, strides=list(stride), dilations=list(dilation)
        )
        got = _onnx_run(node, {"X": x, "W": w})
        assert ref.shape[2:] == tuple(-(-s // st) for s, st in zip(size, stride, strict=True))
        assert rel_err(ref, got) < TOL, (kernel, stride, dilation, size)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_resolve_same_transposed_matches_onnx(auto_pad):
    pytest.importorskip("onnx")
    import onnx.helper as oh

    mode = "same" if auto_pad == "SAME_UPPER" else "same_lower"
    rng = np.random.default_rng(8)
    checked = 0
    while checked < 20:
        nd = int(rng.integers(1, 3))
        kernel = tuple(int(v) for v in rng.integers(1, 5, nd))
        stride = tuple(int(v) for v in rng.integers(1, 4, nd))
        dilation = tuple(int(v) for v in rng.integers(1, 3, nd))
        # ONNX's reference col2im rejects output_padding >= stride (allowed by torch when dilation > stride)
        op = tuple(int(rng.integers(0, s)) for s in stride)
        size = tuple(int(v) for v in rng.integers(2, 5, nd))
        try:
            pads = resolve_padding(mode, size, kernel, stride, dilation, transposed=True, output_padding=op)
        except ValueError:
            continue
        x = rng.standard_normal((1, 2) + size)
        w = rng.standard_normal((2, 3) + kernel)
        ref = reference_conv_transpose(x, w, None, stride, pads, op, 1, dilation)
        node = oh.make_node(
            "ConvTranspose",
            ["X", "W"],
            ["Y"],
            auto_pad=auto_pad,
            strides=list(stride),
            dilations=list(dilation),
            output_padding=list(op),
        )
        got = _onnx_run(node, {"X": x, "W": w})
        assert ref.shape[2:] == tuple(s * st for s, st in zip(size, stride, strict=True))
        assert rel_err(ref, got) < TOL, (kernel, stride, dilation, op, size)
        checked += 1
