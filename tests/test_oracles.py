"""fastconv against two independent oracles: torch (float64) and the ONNX reference evaluator.

torch (skipped when not importable): torch.nn.ConvNd / ConvTransposeNd modules and torch.nn.functional
on every form torch has: int and per-dim padding, "valid", "same" (stride 1 only in torch),
padding_mode reflect / replicate / circular (torch's own module path, F.pad then conv), asymmetric
(begin, end) pairs (F.pad then an unpadded conv), groups, depthwise, dilation, output_padding and the
modules' output_size.

ONNX (skipped when not importable): single Conv / ConvTranspose nodes run by
onnx.reference.ReferenceEvaluator (pure Python, ships with onnx): pads (ONNX order, begins then ends),
auto_pad SAME_UPPER / SAME_LOWER / VALID with strides and dilations, group, output_shape,
output_padding.

What ONNX's ReferenceEvaluator (onnx 1.16-1.23, onnx/reference/ops/op_conv_transpose.py) actually
computes for ConvTranspose, and so what these tests expect:
  * auto_pad SAME_UPPER / SAME_LOWER: output = input * stride, total = s*(in-1) + output_padding +
    d*(k-1) + 1 - output, SAME_UPPER puts the odd extra at the END (begin = total // 2), SAME_LOWER at
    the beginning. This is the contract's transposed "same" / "same_lower" exactly. (The spec's
    formula text and onnxruntime have had these swapped in the past: onnx#1609, onnx#2095,
    onnxruntime#5368, #9370; the reference evaluator and the current spec text agree with the contract.)
  * output_shape without pads (auto_pad NOTSET): the reference evaluator uses zero pads and writes
    the first output_shape elements of the uncropped result, i.e. the extra elements are at the END,
    exactly torch's output_size and the contract's output_size. The spec text instead says pads are
    "auto generated" from output_shape with the NOTSET branch putting the odd extra at the BEGINNING
    (and "pads values are ignored" when output_shape is given); the evaluator does neither: with both
    pads and output_shape it uses the pads as given and output_shape as the size. We follow the
    evaluator, which matches the contract.
  * output_padding >= stride (allowed by torch and the contract when dilation > stride) makes the
    evaluator's col2im shape check raise, so the ONNX cases keep output_padding < stride.
  * group > 1 is broken in the evaluator unless C_in == C_out == group and there is no bias: it slices
    the weight by output channel instead of input channel, adds B[0:C_out/group] to every group, and
    writes each group's output into a single channel. So the grouped ONNX ConvTranspose cases are
    depthwise without bias; other grouped transposed layers are checked against torch and the numpy
    reference only.
"""

from __future__ import annotations

import math
import warnings
import zlib
from typing import NamedTuple

import fastconv
import numpy as np
import pytest
from reference import rel_err, to_channels_first, to_channels_last

ALGORITHMS = ("direct", "im2col", "auto")

# Tolerances: the same as tests/test_semantics.py (see the reasoning there): relative max error against
# a float64 oracle, times sqrt(reduction size).
TOL_F32 = {"direct": 1e-5, "im2col": 1e-5, "auto": 1e-5}
TOL_F64 = {"direct": 1e-12, "im2col": 1e-12, "auto": 1e-12}


def tolerance(algorithm, dtype, reduction):
    table = TOL_F32 if np.dtype(dtype) == np.float32 else TOL_F64
    return table[algorithm] * math.sqrt(max(reduction, 1))


def rng_for(key):
    return np.random.default_rng(zlib.crc32(key.encode()))


def fc_conv(nd):
    return getattr(fastconv, f"conv{nd}d")


def fc_conv_transpose(nd):
    return getattr(fastconv, f"conv_transpose{nd}d")


# ===================================================================================================
# torch


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny shapes; keep torch's pool out of fastconv's way
    yield torch
    torch.set_num_threads(threads)


class ForwardCase(NamedTuple):
    nd: int
    algorithm: str
    form: str  # how the padding is given
    kernel: tuple
    size: tuple
    stride: int | tuple
    dilation: tuple
    cin: int
    cout: int
    groups: int
    mode: str
    padding: object
    bias: bool
    dtype: type
    layout: str


class TransposeCase(NamedTuple):
    nd: int
    algorithm: str
    kernel: tuple
    size: tuple
    stride: tuple
    dilation: tuple
    output_padding: tuple
    padding: int | tuple
    cin: int
    cout: int
    groups: int
    bias: bool
    dtype: type
    layout: str


# (C_in, C_out, groups)
TORCH_GROUPS = [(3, 5, 1), (4, 6, 2), (6, 6, 6), (3, 6, 3)]


def torch_forward_cases():
    """A fixed-seed sample of the forms torch can express, for every dim count and algorithm."""
    rng = np.random.default_rng(2024)
    forms = ["int", "tuple", "valid", "same", "pairs", "mode", "mode_pairs"]
    cases = []
    for nd in (1, 2, 3):
        for algorithm in ALGORITHMS:
            for i in range(14):
                form = forms[i % len(forms)]
                kernel = tuple(int(v) for v in rng.integers(1, 4, nd))
                size = tuple(int(v) for v in rng.integers(5, 10 if nd < 3 else 7, nd))
                stride = 1 if form == "same" else tuple(int(v) for v in rng.integers(1, 3, nd))
                dilation = tuple(int(v) for v in rng.integers(1, 3, nd))
                cin, cout, groups = TORCH_GROUPS[int(rng.integers(len(TORCH_GROUPS)))]
                mode = (
                    str(rng.choice(["reflect", "replicate", "circular"]))
                    if form.startswith("mode")
                    else "zeros"
                )
                if form in ("int", "mode"):
                    padding = int(rng.integers(0, 3))
                elif form == "tuple":
                    padding = tuple(int(v) for v in rng.integers(0, 3, nd))
                elif form in ("pairs", "mode_pairs"):
                    padding = tuple((int(a), int(b)) for a, b in rng.integers(0, 3, (nd, 2)))
                else:
                    padding = form
                dtype = np.float64 if i % 3 else np.float32
                layout = "channels_last" if i % 4 == 1 else "channels_first"
                cases.append(
                    ForwardCase(
                        nd,
                        algorithm,
                        form,
                        kernel,
                        size,
                        stride,
                        dilation,
                        cin,
                        cout,
                        groups,
                        mode,
                        padding,
                        bool(i % 2),
                        dtype,
                        layout,
                    )
                )
    return cases


def _case_id(c):
    return (
        f"{c.nd}d-{c.algorithm}-{c.form}-k{c.kernel}-s{c.stride}-d{c.dilation}-g{c.groups}-{c.mode}-"
        f"{np.dtype(c.dtype).name}-{c.layout}"
    ).replace(" ", "")


def case_inputs(case, weight_shape, key):
    """x, w and b (None without bias) of a torch case: float64 holding values of the case's dtype."""
    rng = rng_for(key)

    def draw(shape):
        return rng.standard_normal(shape).astype(case.dtype).astype(np.float64)

    x, w = draw((2, case.cin) + case.size), draw(weight_shape)
    return x, w, draw(case.cout) if case.bias else None


def torch_reference(compute):
    try:
        return compute()
    except RuntimeError as e:
        raise AssertionError(f"torch rejected a case the generator thought valid: {e}") from e


def fastconv_in_layout(conv, case, x, w, b, *args, **kwargs):
    """conv on the case's dtype and layout, with its algorithm; the result channels-first."""
    dtype = case.dtype
    xin = x.astype(dtype)
    xin = to_channels_last(xin) if case.layout == "channels_last" else xin
    bin_ = None if b is None else b.astype(dtype)
    y = conv(xin, w.astype(dtype), bin_, *args, layout=case.layout, algorithm=case.algorithm, **kwargs)
    assert y.dtype == dtype
    return to_channels_first(y) if case.layout == "channels_last" else y


TORCH_FORWARD = torch_forward_cases()


def torch_conv_reference(torch, x, w, b, stride, padding, dilation, groups, mode):
    """torch float64: the module path for forms a torch module has, F.pad + conv for (begin, end) pairs."""
    nd = x.ndim - 2
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    tb = None if b is None else torch.from_numpy(b)
    F = torch.nn.functional
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    if isinstance(padding, tuple) and padding and isinstance(padding[0], tuple):
        flat = [p for pair in reversed(padding) for p in pair]
        if any(flat):
            tx = F.pad(tx, flat, mode={"zeros": "constant"}.get(mode, mode))
        return conv(tx, tw, tb, stride, 0, dilation, groups).numpy()
    cls = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[nd]
    m = cls(
        x.shape[1],
        w.shape[0],
        w.shape[2:],
        stride,
        padding,
        dilation,
        groups,
        bias=b is not None,
        padding_mode=mode,
        dtype=torch.float64,
    )
    with torch.no_grad():
        m.weight.copy_(tw)
        if b is not None:
            m.bias.copy_(tb)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch: "same" with an even kernel makes a padded copy
            return m(tx).numpy()


@pytest.mark.parametrize("case", TORCH_FORWARD, ids=[_case_id(c) for c in TORCH_FORWARD])
def test_torch_forward(torch, case):
    x, w, b = case_inputs(case, (case.cout, case.cin // case.groups) + case.kernel, _case_id(case))
    args = (case.stride, case.padding, case.dilation, case.groups)
    ref = torch_reference(lambda: torch_conv_reference(torch, x, w, b, *args, case.mode))
    y = fastconv_in_layout(fc_conv(case.nd), case, x, w, b, *args, padding_mode=case.mode)
    err = rel_err(y, ref)
    assert err <= tolerance(case.algorithm, case.dtype, case.cin // case.groups * math.prod(case.kernel)), err


def torch_transpose_cases():
    rng = np.random.default_rng(2025)
    cases = []
    for nd in (1, 2, 3):
        for algorithm in ALGORITHMS:
            for i in range(10):
                while True:  # draw until the output is at least 1 wide
                    kernel = tuple(int(v) for v in rng.integers(1, 5, nd))
                    size = tuple(int(v) for v in rng.integers(2, 6, nd))
                    stride = tuple(int(v) for v in rng.integers(1, 4, nd))
                    dilation = tuple(int(v) for v in rng.integers(1, 3, nd))
                    op = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation, strict=True))
                    padding = (
                        tuple(int(v) for v in rng.integers(0, 3, nd)) if i % 2 else int(rng.integers(0, 3))
                    )
                    pad = padding if isinstance(padding, tuple) else (padding,) * nd
                    if all(
                        (n - 1) * s - 2 * p + d * (k - 1) + o + 1 >= 1
                        for n, s, p, d, k, o in zip(size, stride, pad, dilation, kernel, op, strict=True)
                    ):
                        break
                cin, cout, groups = TORCH_GROUPS[i % len(TORCH_GROUPS)]
                dtype = np.float64 if i % 3 else np.float32
                layout = "channels_last" if i % 4 == 3 else "channels_first"
                cases.append(
                    TransposeCase(
                        nd,
                        algorithm,
                        kernel,
                        size,
                        stride,
                        dilation,
                        op,
                        padding,
                        cin,
                        cout,
                        groups,
                        bool(i % 2),
                        dtype,
                        layout,
                    )
                )
    return cases


TORCH_TRANSPOSE = torch_transpose_cases()


def _tr_id(c):
    return (
        f"{c.nd}d-{c.algorithm}-k{c.kernel}-s{c.stride}-d{c.dilation}-op{c.output_padding}-p{c.padding}-"
        f"g{c.groups}-{np.dtype(c.dtype).name}-{c.layout}"
    ).replace(" ", "")


@pytest.mark.parametrize("case", TORCH_TRANSPOSE, ids=[_tr_id(c) for c in TORCH_TRANSPOSE])
def test_torch_transpose(torch, case):
    x, w, b = case_inputs(case, (case.cin, case.cout // case.groups) + case.kernel, _tr_id(case))
    F = torch.nn.functional
    conv = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[case.nd]
    args = (case.stride, case.padding, case.output_padding, case.groups, case.dilation)
    ref = torch_reference(
        lambda: conv(
            torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), *args
        ).numpy()
    )
    y = fastconv_in_layout(fc_conv_transpose(case.nd), case, x, w, b, *args)
    assert rel_err(y, ref) <= tolerance(
        case.algorithm, case.dtype, case.cin // case.groups * math.prod(case.kernel)
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_torch_transpose_output_size(torch, nd, algorithm):
    """torch's ConvTransposeNd(output_size=...) picks output_padding itself; fastconv must agree."""
    rng = rng_for(f"torch-os-{nd}-{algorithm}")
    cls = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}[nd]
    stride, padding, dilation, kernel = (3,) * nd, 1, 1, (3,) * nd
    m = cls(4, 6, kernel, stride, padding, groups=2, dilation=dilation, dtype=torch.float64)
    w = m.weight.detach().numpy().copy()
    b = m.bias.detach().numpy().copy()
    size = (3, 4, 2)[:nd]
    x = rng.standard_normal((2, 4) + size)
    base = tuple((n - 1) * 3 - 2 + 2 + 1 for n in size)
    for extra in range(3):  # torch allows output_size up to base + stride - 1
        out_size = tuple(n + extra for n in base)
        with torch.no_grad():
            ref = m(torch.from_numpy(x), output_size=list(out_size)).numpy()
        for os in (out_size, (2, 6) + out_size):
            y = fc_conv_transpose(nd)(
                x, w, b, stride, padding, 0, 2, dilation, output_size=os, algorithm=algorithm
            )
            assert y.shape == ref.shape
            assert rel_err(y, ref) <= tolerance(algorithm, np.float64, 2 * math.prod(kernel))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_torch_unbatched(torch, algorithm):
    rng = rng_for(f"torch-unbatched-{algorithm}")
    F = torch.nn.functional
    x = rng.standard_normal((4, 9, 8))
    w = rng.standard_normal((6, 2, 3, 3))
    ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), None, 2, 1, 1, 2).numpy()
    y = fastconv.conv2d(x, w, None, 2, 1, 1, 2, algorithm=algorithm)
    assert y.shape == ref.shape and rel_err(y, ref) <= tolerance(algorithm, np.float64, 18)
    wt = rng.standard_normal((4, 3, 3, 3))
    ref_t = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(wt), None, 2, 1, 1, 2).numpy()
    yt = fastconv.conv_transpose2d(x, wt, None, 2, 1, 1, 2, algorithm=algorithm)
    assert yt.shape == ref_t.shape and rel_err(yt, ref_t) <= tolerance(algorithm, np.float64, 18)


# ===================================================================================================
# ONNX


@pytest.fixture(scope="module")
def onnx_eval():
    pytest.importorskip("onnx")
    import onnx.helper as oh
    from onnx.reference import ReferenceEvaluator

    def run(op, feeds, **attrs):
        inputs = ["X", "W"] + (["B"] if "B" in feeds else [])
        node = oh.make_node(op, inputs, ["Y"], **attrs)
        return ReferenceEvaluator(node).run(None, feeds)[0]

    return run


def onnx_pads_to_pairs(pads):
    nd = len(pads) // 2
    return tuple((pads[i], pads[i + nd]) for i in range(nd))


def onnx_conv_cases():
    rng = np.random.default_rng(31)
    cases = []
    for nd in (1, 2, 3):
        for algorithm in ALGORITHMS:
            for auto_pad in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
                for j in range(2):
                    kernel = tuple(int(v) for v in rng.integers(1, 5 if nd < 3 else 4, nd))
                    size = tuple(int(v) for v in rng.integers(5, 10 if nd < 3 else 7, nd))
                    stride = tuple(int(v) for v in rng.integers(1, 4, nd))
                    dilation = tuple(int(v) for v in rng.integers(1, 3, nd))
                    pads = [int(v) for v in rng.integers(0, 3, 2 * nd)] if auto_pad == "NOTSET" else None
                    cin, cout, groups = TORCH_GROUPS[(j + len(cases)) % len(TORCH_GROUPS)]
                    layout = "channels_last" if j == 1 and auto_pad != "VALID" else "channels_first"
                    cases.append(
                        (
                            nd,
                            algorithm,
                            auto_pad,
                            kernel,
                            size,
                            stride,
                            dilation,
                            pads,
                            cin,
                            cout,
                            groups,
                            layout,
                        )
                    )
    return cases


ONNX_CONV = onnx_conv_cases()


def _onnx_id(c):
    nd, algorithm, auto_pad, kernel, size, stride, dilation, pads, cin, cout, groups, layout = c
    return (
        f"{nd}d-{algorithm}-{auto_pad}-k{kernel}-s{stride}-d{dilation}-pads{pads}-g{groups}-{layout}".replace(
            " ", ""
        )
    )


ONNX_AUTO_PAD = {"SAME_UPPER": "same", "SAME_LOWER": "same_lower", "VALID": "valid"}


@pytest.mark.parametrize("case", ONNX_CONV, ids=[_onnx_id(c) for c in ONNX_CONV])
def test_onnx_conv(onnx_eval, case):
    nd, algorithm, auto_pad, kernel, size, stride, dilation, pads, cin, cout, groups, layout = case
    rng = rng_for(_onnx_id(case))
    x = rng.standard_normal((2, cin) + size)
    w = rng.standard_normal((cout, cin // groups) + kernel)
    b = rng.standard_normal(cout)
    attrs = dict(strides=list(stride), dilations=list(dilation), group=groups, kernel_shape=list(kernel))
    if pads is not None:
        attrs["pads"] = pads
        padding = onnx_pads_to_pairs(pads)
    else:
        attrs["auto_pad"] = auto_pad
        padding = ONNX_AUTO_PAD[auto_pad]
    eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    pad_sum = [0] * nd if pads is None else [pads[i] + pads[i + nd] for i in range(nd)]
    if auto_pad in ("NOTSET", "VALID") and any(n + p < e for n, p, e in zip(size, pad_sum, eff, strict=True)):
        pytest.skip("kernel larger than the padded input")
    ref = onnx_eval("Conv", {"X": x, "W": w, "B": b}, **attrs)
    xin = to_channels_last(x) if layout == "channels_last" else x
    y = fc_conv(nd)(xin, w, b, stride, padding, dilation, groups, layout=layout, algorithm=algorithm)
    if layout == "channels_last":
        y = to_channels_first(y)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        assert y.shape[2:] == tuple(-(-n // s) for n, s in zip(size, stride, strict=True))
    assert rel_err(y, ref) <= tolerance(algorithm, np.float64, cin // groups * math.prod(kernel))


def onnx_transpose_cases():
    rng = np.random.default_rng(32)
    cases = []
    kinds = ("pads", "SAME_UPPER", "SAME_LOWER", "VALID", "output_shape", "output_shape_pads", "depthwise")
    for nd in (1, 2, 3):
        for algorithm in ALGORITHMS:
            for kind in kinds:
                for _ in range(40):  # draw until the evaluator can do the case
                    kernel = tuple(int(v) for v in rng.integers(1, 4, nd))
                    size = tuple(int(v) for v in rng.integers(2, 5 if nd < 3 else 4, nd))
                    stride = tuple(int(v) for v in rng.integers(1, 4, nd))
                    dilation = tuple(int(v) for v in rng.integers(1, 3, nd))
                    op = tuple(int(rng.integers(0, s)) for s in stride)  # evaluator: op < stride
                    pads = [int(v) for v in rng.integers(0, 3, 2 * nd)]
                    if kind in ("SAME_UPPER", "SAME_LOWER"):
                        totals = [
                            o + d * (k - 1) + 1 - s
                            for o, d, k, s in zip(op, dilation, kernel, stride, strict=True)
                        ]
                        if min(totals) < 0:
                            continue
                    if kind in ("pads", "output_shape_pads", "depthwise"):
                        outs = [
                            (n - 1) * s - pads[i] - pads[i + nd] + d * (k - 1) + 1
                            for i, (n, s, d, k) in enumerate(zip(size, stride, dilation, kernel, strict=True))
                        ]
                        if min(outs) < 1:
                            continue
                    cases.append((nd, algorithm, kind, kernel, size, stride, dilation, op, pads))
                    break
    return cases


ONNX_TRANSPOSE = onnx_transpose_cases()


def _onnx_tr_id(c):
    nd, algorithm, kind, kernel, size, stride, dilation, op, pads = c
    return f"{nd}d-{algorithm}-{kind}-k{kernel}-s{stride}-d{dilation}-op{op}".replace(" ", "")


@pytest.mark.parametrize("case", ONNX_TRANSPOSE, ids=[_onnx_tr_id(c) for c in ONNX_TRANSPOSE])
def test_onnx_conv_transpose(onnx_eval, case):
    nd, algorithm, kind, kernel, size, stride, dilation, op, pads = case
    rng = rng_for(_onnx_tr_id(case))
    if kind == "depthwise":  # the only grouped form the evaluator computes correctly (see the top)
        cin, cout, groups, bias = 4, 4, 4, False
    else:
        cin, cout, groups, bias = 3, 5, 1, True
    x = rng.standard_normal((2, cin) + size)
    w = rng.standard_normal((cin, cout // groups) + kernel)
    b = rng.standard_normal(cout) if bias else None
    feeds = {"X": x, "W": w} | ({"B": b} if bias else {})
    attrs = dict(strides=list(stride), dilations=list(dilation), group=groups, kernel_shape=list(kernel))
    kwargs = dict(algorithm=algorithm)
    default = [
        (n - 1) * s + d * (k - 1) + 1 for n, s, d, k in zip(size, stride, dilation, kernel, strict=True)
    ]
    if kind in ("SAME_UPPER", "SAME_LOWER"):
        attrs.update(auto_pad=kind, output_padding=list(op))
        args = (stride, ONNX_AUTO_PAD[kind], op, groups, dilation)
    elif kind == "VALID":
        attrs.update(auto_pad="VALID", output_padding=list(op))
        args = (stride, "valid", op, groups, dilation)
    elif kind == "output_shape":
        # NOTSET, no pads: the evaluator keeps zero pads, the extra size is at the end (torch's output_size)
        out_shape = [n + o for n, o in zip(default, op, strict=True)]
        attrs.update(output_shape=out_shape)
        args = (stride, 0, 0, groups, dilation)
        kwargs["output_size"] = tuple(out_shape)
    elif kind == "output_shape_pads":
        pairs = onnx_pads_to_pairs(pads)
        out_shape = [n - pb - pe + o for n, (pb, pe), o in zip(default, pairs, op, strict=True)]
        attrs.update(output_shape=out_shape, pads=pads)
        args = (stride, pairs, 0, groups, dilation)
        kwargs["output_size"] = tuple(out_shape)
    else:  # explicit pads (+ output_padding); "depthwise" uses them too
        attrs.update(pads=pads, output_padding=list(op))
        args = (stride, onnx_pads_to_pairs(pads), op, groups, dilation)
    ref = onnx_eval("ConvTranspose", feeds, **attrs)
    y = fc_conv_transpose(nd)(x, w, b, *args, **kwargs)
    if kind in ("SAME_UPPER", "SAME_LOWER"):
        assert y.shape[2:] == tuple(n * s for n, s in zip(size, stride, strict=True))
    assert rel_err(y, ref) <= tolerance(algorithm, np.float64, cin // groups * math.prod(kernel))


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_onnx_conv_transpose_output_shape_with_auto_pad(onnx_eval, auto_pad):
    """output_shape + SAME_*: ONNX derives (begin, end) pads from output_shape; the same pairs in fastconv."""
    rng = rng_for(f"onnx-os-auto-{auto_pad}")
    x = rng.standard_normal((1, 3, 4, 5))
    w = rng.standard_normal((3, 2, 3, 4))
    stride, out_shape = (2, 2), [6, 9]  # smaller than the unpadded (9, 12): totals 3 and 3
    ref = onnx_eval(
        "ConvTranspose", {"X": x, "W": w}, strides=list(stride), output_shape=out_shape, auto_pad=auto_pad
    )
    totals = [(n - 1) * s + k - o for n, s, k, o in zip((4, 5), stride, (3, 4), out_shape, strict=True)]
    if auto_pad == "SAME_UPPER":
        pairs = tuple((t // 2, t - t // 2) for t in totals)
    else:
        pairs = tuple((t - t // 2, t // 2) for t in totals)
    y = fastconv.conv_transpose2d(x, w, None, stride, pairs)
    assert y.shape == ref.shape == (1, 2, 6, 9)
    assert rel_err(y, ref) <= tolerance("auto", np.float64, 36)
