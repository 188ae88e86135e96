"""The error contract of fastconv (issue 2 item 5, DESIGN.md "Errors and bad input", notes/API.md).

Every bad argument is a ValueError or a TypeError raised before any C code runs, and its message names
the argument, what it got and what it needs. The messages are checked with order-free regexes (one
lookahead per fragment: the argument's name, the offending value, the requirement), never whole
sentences, so the wording can evolve. Hostile sizes must give ValueError or MemoryError, never a
crash. NaN/Inf values and zero-size batches or channels are not errors.

Kinds of call exercised by most tests:
  "conv"            fastconv.conv{nd}d(x, w, bias, ...)
  "transpose"       fastconv.conv_transpose{nd}d(x, w, bias, ...)
  "plan"            fastconv.Convolution(w, bias, ...)(x)
  "plan_transposed" fastconv.Convolution(w, bias, transposed=True, ...)(x)
"""

import math
import re

import fastconv
import numpy as np
import pytest

F32 = np.float32
F64 = np.float64
NDS = [1, 2, 3]
KINDS = ["conv", "transpose", "plan", "plan_transposed"]
FORWARD_KINDS = ["conv", "plan"]
TRANSPOSED_KINDS = ["transpose", "plan_transposed"]
LAYOUT_ALIASES = {1: ("NCW", "NWC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}
BAD_ERRORS = (ValueError, TypeError)


# ----------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------


def msg(*fragments):
    """A regex that matches a message containing every fragment (each a regex), in any order."""
    return "(?is)" + "".join(f"(?=.*(?:{f}))" for f in fragments)


def num(v):
    """A regex for the integer v standing alone (not part of a longer number)."""
    return rf"(?<![\d.]){re.escape(str(v))}(?![\d.])"


def shape_re(shape):
    """A regex for a shape written as a list or a tuple: [1, 4, 5, 5] or (1, 4, 5, 5)."""
    inner = r",\s*".join(str(int(s)) for s in shape)
    return rf"[\[(]{inner},?[\])]"


def got_str(value):
    """A regex for a string argument as a message shows it: quoted, or bare if not empty."""
    quoted = f"'{re.escape(value)}'|\"{re.escape(value)}\""
    return quoted if not value else rf"{quoted}|(?<![\w-]){re.escape(value)}(?![\w-])"


def dtype_re(dtype):
    dt = np.dtype(dtype)
    names = {dt.name, str(dt), dt.type.__name__}
    if dt.kind == "U":
        names.add("str")
    if dt.kind == "O":
        names.add("object")
    return "|".join(re.escape(n) for n in names)


def is_tr(kind):
    return kind in TRANSPOSED_KINDS


def rand(shape, dtype=F32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def arrays(kind, nd, n=1, cin=3, cout=2, size=6, k=3, groups=1, dtype=F32):
    """An input (n, cin, size...) and the weight of a valid layer of this kind (torch weight layout)."""
    x = rand((n, cin) + (size,) * nd, dtype)
    wshape = (cin, cout // groups) if is_tr(kind) else (cout, cin // groups)
    w = rand(wshape + (k,) * nd, dtype, seed=1)
    return x, w


def run(kind, nd, x, w, bias=None, *, out=None, output_size=None, **kw):
    """Call the layer `kind`; for plans the construction is inside the call, so both count."""
    if kind == "conv":
        return getattr(fastconv, f"conv{nd}d")(x, w, bias, out=out, **kw)
    if kind == "transpose":
        if output_size is not None:
            kw["output_size"] = output_size
        return getattr(fastconv, f"conv_transpose{nd}d")(x, w, bias, out=out, **kw)
    call_kw = {"out": out}
    if output_size is not None:
        call_kw["output_size"] = output_size
    plan = fastconv.Convolution(w, bias, transposed=(kind == "plan_transposed"), **kw)
    return plan(x, **call_kw)


def make_plan(kind, w, bias=None, **kw):
    return fastconv.Convolution(w, bias, transposed=is_tr(kind), **kw)


# ----------------------------------------------------------------------------------------------------
# the contract's shape arithmetic (notes/API.md), used by the positive tests and the fuzz test
# ----------------------------------------------------------------------------------------------------


class Bad(Exception):
    """The model's verdict: the contract requires a ValueError or TypeError here."""


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _per_dim(name, v, nd, minimum):
    if _is_int(v):
        vals = (int(v),) * nd
    elif isinstance(v, tuple):
        if len(v) != nd or not all(_is_int(e) for e in v):
            raise Bad(name)
        vals = tuple(int(e) for e in v)
    else:
        raise Bad(name)
    if any(e < minimum for e in vals):
        raise Bad(name)
    return vals


def _explicit_pads(padding, nd):
    if _is_int(padding):
        pads = [(int(padding), int(padding))] * nd
    elif isinstance(padding, tuple) and len(padding) == nd and all(_is_int(p) for p in padding):
        pads = [(int(p), int(p)) for p in padding]
    elif (
        isinstance(padding, tuple)
        and len(padding) == nd
        and all(isinstance(p, tuple) and len(p) == 2 and all(_is_int(e) for e in p) for p in padding)
    ):
        pads = [(int(b), int(e)) for b, e in padding]
    else:
        raise Bad("padding")
    if any(b < 0 or e < 0 for b, e in pads):
        raise Bad("padding")
    return pads


def predict_shape(
    transposed,
    nd,
    x_shape,
    w_shape,
    *,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    output_padding=0,
    output_size=None,
    padding_mode="zeros",
    layout="channels_first",
    bias_shape=None,
):
    """Output shape by the contract, or raise Bad when the contract requires an error."""
    s = _per_dim("stride", stride, nd, 1)
    d = _per_dim("dilation", dilation, nd, 1)
    op = _per_dim("output_padding", output_padding, nd, 0) if transposed else (0,) * nd
    if not _is_int(groups) or groups < 1:
        raise Bad("groups")
    if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
        raise Bad("padding_mode")
    if transposed and padding_mode != "zeros":
        raise Bad("padding_mode")
    first, last = LAYOUT_ALIASES[nd]
    if layout in ("channels_first", first):
        channels_last = False
    elif layout in ("channels_last", last):
        channels_last = True
    else:
        raise Bad("layout")
    if len(w_shape) != nd + 2:
        raise Bad("weight")
    if len(x_shape) not in (nd + 1, nd + 2):
        raise Bad("input")
    batched = len(x_shape) == nd + 2
    xb = tuple(x_shape) if batched else (1,) + tuple(x_shape)
    if channels_last:
        n, c, sp = xb[0], xb[-1], xb[1:-1]
    else:
        n, c, sp = xb[0], xb[1], xb[2:]
    k = w_shape[2:]
    if transposed:
        if w_shape[0] % groups:
            raise Bad("groups")
        cin, cout = w_shape[0], w_shape[1] * groups
    else:
        if w_shape[0] % groups:
            raise Bad("groups")
        cin, cout = w_shape[1] * groups, w_shape[0]
    if c != cin:
        raise Bad("input channels")
    if any(o >= max(si, di) for o, si, di in zip(op, s, d, strict=True)):
        raise Bad("output_padding")
    if bias_shape is not None and tuple(bias_shape) != (cout,):
        raise Bad("bias")

    if padding in ("same", "same_lower"):
        pads = []
        for i in range(nd):
            if transposed:
                out_i = sp[i] * s[i]
                total = s[i] * (sp[i] - 1) + op[i] + d[i] * (k[i] - 1) + 1 - out_i
                if total < 0:
                    raise Bad("padding")
            else:
                out_i = -(-sp[i] // s[i])
                total = max((out_i - 1) * s[i] + d[i] * (k[i] - 1) + 1 - sp[i], 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if padding == "same" else (big, small))
    elif padding == "valid":
        pads = [(0, 0)] * nd
    elif isinstance(padding, str):
        raise Bad("padding")
    else:
        pads = _explicit_pads(padding, nd)

    out_sp = []
    for i in range(nd):
        b, e = pads[i]
        if transposed:
            o = (sp[i] - 1) * s[i] - b - e + d[i] * (k[i] - 1) + op[i] + 1
        else:
            if padding_mode == "reflect" and (b >= sp[i] or e >= sp[i]):
                raise Bad("reflect padding")
            if padding_mode == "circular" and (b > sp[i] or e > sp[i]):
                raise Bad("circular padding")
            span = sp[i] + b + e - d[i] * (k[i] - 1) - 1
            if span < 0:
                raise Bad("kernel larger than padded input")
            o = span // s[i] + 1
        if o < 1:
            raise Bad("output size")
        out_sp.append(o)

    if output_size is not None:
        if not transposed:
            raise Bad("output_size")
        size = tuple(output_size)
        if len(size) == nd + 2:
            size = size[2:]
        if len(size) != nd or not all(_is_int(v) for v in size):
            raise Bad("output_size")
        new_op = [int(v) - o + p for v, o, p in zip(size, out_sp, op, strict=True)]
        if any(p < 0 or p >= max(si, di) for p, si, di in zip(new_op, s, d, strict=True)):
            raise Bad("output_size")
        out_sp = [int(v) for v in size]

    shape = (n,) + tuple(out_sp) + (cout,) if channels_last else (n, cout) + tuple(out_sp)
    return shape if batched else shape[1:]


def expected(kind, nd, x, w, bias=None, **kw):
    kw.pop("algorithm", None)
    kw.pop("num_threads", None)
    return predict_shape(
        is_tr(kind), nd, x.shape, w.shape, bias_shape=None if bias is None else bias.shape, **kw
    )


# ----------------------------------------------------------------------------------------------------
# channels
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_channel_mismatch_names_input_shape_and_channels(kind, nd):
    x, _ = arrays(kind, nd, cin=4, size=5)
    _, w = arrays(kind, nd, cin=3, size=5)  # expects 3 channels
    with pytest.raises(ValueError, match=msg("input", shape_re(x.shape), "channel", num(3))):
        run(kind, nd, x, w)


def test_channel_mismatch_torch_example():
    x = np.zeros((1, 4, 5, 5), F32)
    w = np.zeros((2, 3, 3, 3), F32)
    with pytest.raises(
        ValueError, match=msg(r"input\s*[\[(]1, 4, 5, 5[\])]", r"3 (input )?channels", r"got 4|4 channels")
    ):
        fastconv.conv2d(x, w)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_channel_mismatch_channels_last(kind, nd):
    x, w = arrays(kind, nd, cin=3, size=5)
    x = np.moveaxis(x, 1, -1)[..., :2].copy()  # 2 channels, channels last
    with pytest.raises(ValueError, match=msg("input", shape_re(x.shape), "channel", num(3))):
        run(kind, nd, x, w, layout="channels_last")


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_channel_mismatch_unbatched(kind, nd):
    x, _ = arrays(kind, nd, cin=4, size=5)
    _, w = arrays(kind, nd, cin=3, size=5)
    with pytest.raises(ValueError, match=msg("input", shape_re(x.shape[1:]), "channel", num(3))):
        run(kind, nd, x[0], w)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_channel_mismatch_grouped(kind, nd):
    # weight (4, 3, k...) with groups=2 needs 6 input channels
    x, w = arrays(kind, nd, cin=6, cout=4, groups=2, size=5)
    with pytest.raises(ValueError, match=msg("input", "channel", num(6), num(5))):
        run(kind, nd, x[:, :5], w, groups=2)


# ----------------------------------------------------------------------------------------------------
# groups
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_groups_not_dividing_out_channels(kind, nd):
    x = rand((1, 4) + (5,) * nd)
    w = rand((3, 2) + (3,) * nd)  # C_out = 3, groups = 2
    with pytest.raises(ValueError, match=msg("groups", num(2), num(3))):
        run(kind, nd, x, w, groups=2)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_groups_not_dividing_in_channels(kind, nd):
    # 5 input channels cannot be split in 2 groups; weight (2, 2, k...) with groups=2 wants 4
    x = rand((1, 5) + (5,) * nd)
    w = rand((2, 2) + (3,) * nd)
    with pytest.raises(ValueError, match=msg("input|groups", "channel", num(5))):
        run(kind, nd, x, w, groups=2)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_groups_not_dividing_in_channels_transposed(kind, nd):
    x = rand((1, 3) + (5,) * nd)
    w = rand((3, 2) + (3,) * nd)  # C_in = 3, groups = 2
    with pytest.raises(ValueError, match=msg("groups", num(2), num(3))):
        run(kind, nd, x, w, groups=2)


@pytest.mark.parametrize("groups", [0, -1, -4])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_groups_not_positive(kind, nd, groups):
    x, w = arrays(kind, nd, cin=4, cout=4, size=5)
    with pytest.raises(ValueError, match=msg("groups", num(groups))):
        run(kind, nd, x, w, groups=groups)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_groups_larger_than_channels(kind, nd):
    x, w = arrays(kind, nd, cin=4, cout=4, size=5)
    with pytest.raises(ValueError, match=msg("groups|channel", num(8))):
        run(kind, nd, x, w, groups=8)


# ----------------------------------------------------------------------------------------------------
# kernel against input size
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_kernel_larger_than_input(kind, nd):
    x, w = arrays(kind, nd, size=5, k=7)
    with pytest.raises(ValueError, match=msg("kernel|weight", num(7), num(5))):
        run(kind, nd, x, w)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_kernel_larger_than_padded_input(kind, nd):
    x, w = arrays(kind, nd, size=5, k=9)  # padded size 7
    with pytest.raises(ValueError, match=msg("kernel|weight", num(9), num(7))):
        run(kind, nd, x, w, padding=1)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_dilated_kernel_larger_than_padded_input(kind, nd):
    x, w = arrays(kind, nd, size=5, k=3)  # dilated extent 2*4+1 = 9 > 7
    with pytest.raises(ValueError, match=msg("kernel|weight|dilation")):
        run(kind, nd, x, w, padding=1, dilation=4)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_kernel_larger_than_input_in_one_dim(kind, nd):
    x = rand((1, 3) + (6,) * (nd - 1) + (2,))
    w = rand((2, 3) + (3,) * nd)
    with pytest.raises(ValueError, match=msg("kernel|weight", num(3), num(2))):
        run(kind, nd, x, w)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_transposed_output_not_positive(kind, nd):
    # (2-1)*1 - 3 - 3 + 2 + 0 + 1 = -2
    x, w = arrays(kind, nd, size=2, k=3)
    with pytest.raises(ValueError, match=msg("padding|output")):
        run(kind, nd, x, w, padding=3)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_exact_fit_is_not_an_error(kind, nd):
    x, w = arrays(kind, nd, size=5, k=7)
    assert run(kind, nd, x, w, padding=1).shape == (1, 2) + (1,) * nd


# ----------------------------------------------------------------------------------------------------
# stride, dilation, padding, output_padding values
# ----------------------------------------------------------------------------------------------------


def _per_dim_bad(nd, bad):
    return (1,) * (nd - 1) + (bad,)


@pytest.mark.parametrize("form", ["int", "tuple"])
@pytest.mark.parametrize("value", [0, -1, -3])
@pytest.mark.parametrize("name", ["stride", "dilation"])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_stride_dilation_not_positive(kind, nd, name, value, form):
    x, w = arrays(kind, nd, size=5)
    arg = value if form == "int" else _per_dim_bad(nd, value)
    with pytest.raises(ValueError, match=msg(name, num(value))):
        run(kind, nd, x, w, **{name: arg})


@pytest.mark.parametrize("form", ["int", "tuple", "pairs"])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_negative_padding(kind, nd, form):
    x, w = arrays(kind, nd, size=5)
    arg = {"int": -1, "tuple": _per_dim_bad(nd, -1), "pairs": ((1, 1),) * (nd - 1) + ((0, -1),)}[form]
    with pytest.raises(ValueError, match=msg("padding", num(-1))):
        run(kind, nd, x, w, padding=arg)


@pytest.mark.parametrize("form", ["int", "tuple"])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_negative_output_padding(kind, nd, form):
    x, w = arrays(kind, nd, size=5)
    arg = -1 if form == "int" else _per_dim_bad(nd, -1)
    with pytest.raises(ValueError, match=msg("output_padding", num(-1))):
        run(kind, nd, x, w, stride=2, output_padding=arg)


# ----------------------------------------------------------------------------------------------------
# number of per-dim values
# ----------------------------------------------------------------------------------------------------


def _wrong_counts(nd):
    counts = {0, nd + 1, nd + 2}
    if nd - 1 >= 2:
        counts.add(nd - 1)
    return sorted(counts)


def _count_cases(names):
    return [(nd, name, c) for nd in NDS for name in names for c in _wrong_counts(nd)]


@pytest.mark.parametrize("nd,name,count", _count_cases(["stride", "padding", "dilation"]))
@pytest.mark.parametrize("kind", KINDS)
def test_wrong_number_of_per_dim_values(kind, nd, name, count):
    x, w = arrays(kind, nd, size=6)
    with pytest.raises(ValueError, match=msg(name, num(nd))):
        run(kind, nd, x, w, **{name: (1,) * count})


@pytest.mark.parametrize("nd,name,count", _count_cases(["output_padding"]))
@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_wrong_number_of_output_padding_values(kind, nd, name, count):
    x, w = arrays(kind, nd, size=6)
    with pytest.raises(ValueError, match=msg(name, num(nd))):
        run(kind, nd, x, w, stride=2, output_padding=(1,) * count)


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_flat_onnx_style_pads_are_rejected(kind, nd):
    # ONNX writes pads as [b1, b2, ..., e1, e2, ...]; fastconv takes ((b1, e1), (b2, e2), ...)
    x, w = arrays(kind, nd, size=6)
    with pytest.raises(ValueError, match=msg("padding", num(nd))):
        run(kind, nd, x, w, padding=(1,) * (2 * nd))


PAIR_SHAPES = {
    "triple": lambda nd: ((1, 1),) * (nd - 1) + ((1, 1, 1),),
    "single": lambda nd: ((1,),) * nd,
    "empty_pair": lambda nd: ((1, 1),) * (nd - 1) + ((),),
    "too_many_pairs": lambda nd: ((1, 1),) * (nd + 1),
    "too_few_pairs": lambda nd: ((1, 1),) * (nd - 1) if nd > 1 else (),
    "nested_too_deep": lambda nd: (((1, 1),),) * nd,
}


@pytest.mark.parametrize("shape", sorted(PAIR_SHAPES))
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_wrong_begin_end_pair_shape(kind, nd, shape):
    x, w = arrays(kind, nd, size=6)
    # a pair holding tuples may fairly be called a type error; every other shape is a ValueError
    exc = BAD_ERRORS if shape == "nested_too_deep" else ValueError
    with pytest.raises(exc, match=msg("padding")):
        run(kind, nd, x, w, padding=PAIR_SHAPES[shape](nd))


# ----------------------------------------------------------------------------------------------------
# ranks and bias
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ndim_delta", [-2, 1, 2])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_wrong_input_rank(kind, nd, ndim_delta):
    x, w = arrays(kind, nd, size=5)
    ndim = nd + 2 + ndim_delta  # nd + 1 (unbatched) and nd + 2 are fine
    x = x.reshape(x.shape + (1,) * max(ndim_delta, 0)) if ndim_delta > 0 else x[(0,) * -ndim_delta]
    assert x.ndim == ndim
    with pytest.raises(ValueError, match=msg("input", num(nd + 2), f"{shape_re(x.shape)}|{num(ndim)}")):
        run(kind, nd, x, w)


@pytest.mark.parametrize("kind", KINDS)
def test_zero_dim_input(kind):
    _, w = arrays(kind, 2)
    with pytest.raises(ValueError, match=msg("input")):
        run(kind, 2, np.float32(1.0), w)


@pytest.mark.parametrize("ndim_delta", [-1, 1])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", ["conv", "transpose"])
def test_wrong_weight_rank(kind, nd, ndim_delta):
    x, w = arrays(kind, nd, size=5)
    w = w[..., 0] if ndim_delta < 0 else w[..., None]
    with pytest.raises(ValueError, match=msg("weight", num(nd + 2), f"{shape_re(w.shape)}|{num(w.ndim)}")):
        run(kind, nd, x, w)


@pytest.mark.parametrize("wdim", [0, 1, 2, 6, 7])
@pytest.mark.parametrize("transposed", [False, True])
def test_plan_weight_rank(transposed, wdim):
    w = rand((2,) * wdim)
    with pytest.raises(ValueError, match=msg("weight", num(wdim) + "|" + shape_re(w.shape))):
        fastconv.Convolution(w, transposed=transposed)


@pytest.mark.parametrize("bias_shape", [(5,), (1, 2), (2, 1), ()])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_bias_shape(kind, nd, bias_shape):
    x, w = arrays(kind, nd, cin=3, cout=2, size=5)
    bias = rand(bias_shape)
    frags = ["bias", num(2)]
    if bias_shape == (5,):
        frags.append(num(5))
    with pytest.raises(ValueError, match=msg(*frags)):
        run(kind, nd, x, w, bias)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_bias_shape_transposed_grouped(kind, nd):
    # transposed weight (C_in=4, C_out/groups=3, k...) with groups=2: C_out = 6, so bias (3,) is wrong
    x = rand((1, 4) + (5,) * nd)
    w = rand((4, 3) + (3,) * nd)
    with pytest.raises(ValueError, match=msg("bias", num(6), num(3))):
        run(kind, nd, x, w, rand((3,)), groups=2)


@pytest.mark.parametrize("kind", KINDS)
def test_plan_bias_checked_at_construction(kind):
    _, w = arrays(kind, 2)
    with pytest.raises(ValueError, match=msg("bias")):
        make_plan(kind, w, rand((7,)))


# ----------------------------------------------------------------------------------------------------
# dtypes
# ----------------------------------------------------------------------------------------------------

BAD_DTYPES = [np.int32, np.int64, np.uint8, np.bool_, np.float16, np.complex64, np.complex128, object, "<U1"]


def _typed(shape, dtype):
    if np.dtype(dtype).kind == "U":
        return np.full(shape, "a", dtype=dtype)
    return np.ones(shape, dtype=dtype)


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("which", ["input", "weight", "bias"])
@pytest.mark.parametrize("kind", KINDS)
def test_non_float_dtype(kind, which, dtype):
    nd = 2
    x, w = arrays(kind, nd, size=5)
    b = rand((2,))
    args = {"input": x, "weight": w, "bias": b}
    args[which] = _typed(args[which].shape, dtype)
    with pytest.raises(TypeError, match=msg(which, dtype_re(dtype), "float32", "float64")):
        run(kind, nd, args["input"], args["weight"], args["bias"])


@pytest.mark.parametrize("kind", KINDS)
def test_plan_weight_dtype_checked_at_construction(kind):
    _, w = arrays(kind, 2)
    with pytest.raises(TypeError, match=msg("weight", "int32", "float32", "float64")):
        make_plan(kind, w.astype(np.int32))


@pytest.mark.parametrize("kind", KINDS)
def test_integer_list_input(kind):
    x, w = arrays(kind, 1, size=5)
    with pytest.raises(TypeError, match=msg("input", "int", "float32", "float64")):
        run(kind, 1, x.astype(int).tolist(), w)


@pytest.mark.parametrize("bad", [None, "abc", object()], ids=["None", "str", "object"])
@pytest.mark.parametrize("which", ["input", "weight"])
@pytest.mark.parametrize("kind", KINDS)
def test_non_array_arguments(kind, which, bad):
    x, w = arrays(kind, 2, size=5)
    args = {"input": x, "weight": w}
    args[which] = bad
    with pytest.raises(TypeError, match=msg(which)):
        run(kind, 2, args["input"], args["weight"])


@pytest.mark.parametrize("which", ["input", "weight"])
@pytest.mark.parametrize("kind", KINDS)
def test_ragged_list_arguments(kind, which):
    x, w = arrays(kind, 1, size=5, dtype=F64)
    args = {"input": x.tolist(), "weight": w.tolist()}
    args[which][0] = args[which][0][:-1]  # one row shorter
    with pytest.raises(BAD_ERRORS, match=msg(which)):
        run(kind, 1, args["input"], args["weight"])


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_empty_kernel(kind, nd):
    x, w = arrays(kind, nd, size=5)
    w = w[..., :0]
    with pytest.raises(ValueError, match=msg("weight|kernel", shape_re(w.shape) + "|" + num(0))):
        run(kind, nd, x, w)


@pytest.mark.parametrize("kind", KINDS)
def test_float_list_input_is_accepted(kind):
    x, w = arrays(kind, 1, size=5, dtype=F64)
    y = run(kind, 1, x.tolist(), w)
    assert y.dtype == F64
    assert y.shape == expected(kind, 1, x, w)


@pytest.mark.parametrize(
    "xdt,wdt,bdt",
    [(F32, F64, None), (F64, F32, None), (F32, F32, F64), (F64, F64, F32), (F32, F64, F64)],
    ids=["x32-w64", "x64-w32", "b64", "b32", "x32-w64-b64"],
)
@pytest.mark.parametrize("kind", KINDS)
def test_mismatched_dtypes(kind, xdt, wdt, bdt):
    x, w = arrays(kind, 2, size=5)
    x, w = x.astype(xdt), w.astype(wdt)
    b = None if bdt is None else rand((2,), bdt)
    odd = "bias" if xdt == wdt else "input|weight"
    with pytest.raises(TypeError, match=msg(odd, "float32", "float64")):
        run(kind, 2, x, w, b)


# ----------------------------------------------------------------------------------------------------
# strings: padding, padding_mode, layout, algorithm
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["full", "", "causal", "same_upper"])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_unknown_padding_string(kind, nd, padding):
    x, w = arrays(kind, nd, size=5)
    with pytest.raises(ValueError, match=msg("padding", got_str(padding), "same", "valid")):
        run(kind, nd, x, w, padding=padding)


@pytest.mark.parametrize("mode", ["bogus", "", "zero", "reflection"])
@pytest.mark.parametrize("kind", KINDS)
def test_unknown_padding_mode(kind, mode):
    x, w = arrays(kind, 2, size=5)
    with pytest.raises(ValueError, match=msg("padding_mode", got_str(mode), "zeros")):
        run(kind, 2, x, w, padding_mode=mode)


@pytest.mark.parametrize("mode", [None, 0])
@pytest.mark.parametrize("kind", KINDS)
def test_non_string_padding_mode(kind, mode):
    x, w = arrays(kind, 2, size=5)
    with pytest.raises(BAD_ERRORS, match=msg("padding_mode")):
        run(kind, 2, x, w, padding_mode=mode)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_padding_mode_on_transposed(kind, nd, mode):
    x, w = arrays(kind, nd, size=5)
    with pytest.raises(ValueError, match=msg("padding_mode", mode, "zeros")):
        run(kind, nd, x, w, padding=1, padding_mode=mode)


@pytest.mark.parametrize("mode", ["reflect", "circular"])
def test_plan_padding_mode_on_transposed_checked_at_construction(mode):
    _, w = arrays("transpose", 2)
    with pytest.raises(ValueError, match=msg("padding_mode", mode)):
        fastconv.Convolution(w, transposed=True, padding_mode=mode)


@pytest.mark.parametrize("layout", ["bogus", "", "NCHWc", "NHCW", "channels-last", "CHW"])
@pytest.mark.parametrize("kind", KINDS)
def test_unknown_layout(kind, layout):
    x, w = arrays(kind, 2, size=5)
    with pytest.raises(ValueError, match=msg("layout", got_str(layout), "channels_first")):
        run(kind, 2, x, w, layout=layout)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_layout_alias_of_another_rank(kind, nd):
    x, w = arrays(kind, nd, size=5)
    for other in NDS:
        if other == nd:
            continue
        for alias in LAYOUT_ALIASES[other]:
            with pytest.raises(ValueError, match=msg("layout", alias)):
                run(kind, nd, x, w, layout=alias)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_layout_aliases_are_accepted(kind, nd):
    x, w = arrays(kind, nd, size=5)
    first, last = LAYOUT_ALIASES[nd]
    a = run(kind, nd, x, w, layout=first)
    b = run(kind, nd, np.moveaxis(x, 1, -1), w, layout=last)
    assert a.shape == expected(kind, nd, x, w)
    assert b.shape == (a.shape[0],) + a.shape[2:] + (a.shape[1],)


@pytest.mark.parametrize("algorithm", ["fft", "", "AUTOMATIC", "gemm"])
@pytest.mark.parametrize("kind", KINDS)
def test_unknown_algorithm(kind, algorithm):
    x, w = arrays(kind, 2, size=5)
    with pytest.raises(ValueError, match=msg("algorithm", got_str(algorithm), "auto", "direct", "im2col")):
        run(kind, 2, x, w, algorithm=algorithm)


@pytest.mark.parametrize("algorithm", [None, 1])
@pytest.mark.parametrize("kind", KINDS)
def test_non_string_algorithm(kind, algorithm):
    x, w = arrays(kind, 2, size=5)
    with pytest.raises(BAD_ERRORS, match=msg("algorithm")):
        run(kind, 2, x, w, algorithm=algorithm)


@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_winograd_on_5x5_kernel(kind):
    # unknown until the Winograd issue lands, then "cannot do this layer"; a ValueError either way
    x, w = arrays(kind, 2, size=8, k=5)
    with pytest.raises(ValueError, match=msg("winograd")):
        run(kind, 2, x, w, algorithm="winograd")


@pytest.mark.parametrize("kind", KINDS)
def test_plan_unknown_strings_checked_at_construction(kind):
    _, w = arrays(kind, 2)
    with pytest.raises(ValueError, match=msg("algorithm", "fft")):
        make_plan(kind, w, algorithm="fft")
    with pytest.raises(ValueError, match=msg("layout", "bogus")):
        make_plan(kind, w, layout="bogus")
    with pytest.raises(ValueError, match=msg("padding_mode", "bogus")):
        make_plan(kind, w, padding_mode="bogus")
    with pytest.raises(ValueError, match=msg("padding", "full")):
        make_plan(kind, w, padding="full")


@pytest.mark.parametrize(
    "name,value,exc",
    [
        ("stride", 0, ValueError),
        ("dilation", -1, ValueError),
        ("groups", 0, ValueError),
        ("padding", -1, ValueError),
        ("stride", 1.5, TypeError),
        ("num_threads", 0, ValueError),
        ("num_threads", 1.5, TypeError),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_plan_scalar_arguments_checked_at_construction(kind, name, value, exc):
    _, w = arrays(kind, 2, cin=4, cout=4)
    with pytest.raises(exc, match=msg(name)):
        make_plan(kind, w, **{name: value})


@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_plan_groups_not_dividing_out_channels_checked_at_construction(kind):
    w = rand((3, 2, 3, 3))
    with pytest.raises(ValueError, match=msg("groups", num(2), num(3))):
        make_plan(kind, w, groups=2)


def test_plan_output_padding_checked_at_construction():
    _, w = arrays("transpose", 2)
    with pytest.raises(ValueError, match=msg("output_padding", num(2))):
        fastconv.Convolution(w, transposed=True, stride=2, output_padding=2)


# ----------------------------------------------------------------------------------------------------
# output_padding and output_size (transposed)
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stride,dilation,output_padding",
    [(2, 1, 2), (1, 1, 1), (2, 1, 3), (2, 2, 2), (1, 3, 3), (3, 1, 5)],
)
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_output_padding_too_large(kind, nd, stride, dilation, output_padding):
    x, w = arrays(kind, nd, size=5)
    with pytest.raises(ValueError, match=msg("output_padding", num(output_padding), "stride")):
        run(kind, nd, x, w, stride=stride, dilation=dilation, output_padding=output_padding)


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_output_padding_too_large_in_one_dim(kind, nd):
    x, w = arrays(kind, nd, size=5)
    op = (1,) * (nd - 1) + (2,)
    with pytest.raises(ValueError, match=msg("output_padding", num(2))):
        run(kind, nd, x, w, stride=2, output_padding=op)


@pytest.mark.parametrize("stride,dilation,output_padding", [(2, 1, 1), (1, 3, 2), (3, 2, 2)])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_output_padding_below_max_stride_dilation_is_fine(kind, nd, stride, dilation, output_padding):
    x, w = arrays(kind, nd, size=4)
    kw = {"stride": stride, "dilation": dilation, "output_padding": output_padding}
    assert run(kind, nd, x, w, **kw).shape == expected(kind, nd, x, w, **kw)


def test_output_padding_on_forward_plan():
    _, w = arrays("plan", 2)
    with pytest.raises(ValueError, match=msg("output_padding")):
        fastconv.Convolution(w, output_padding=1, stride=2)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_output_size_wrong_length(kind, nd):
    x, w = arrays(kind, nd, size=5)  # default output 11 per dim at stride 2
    for length in (1, nd + 1, nd + 3):
        if length in (nd, nd + 2):
            continue
        with pytest.raises(ValueError, match=msg("output_size", num(nd))):
            run(kind, nd, x, w, stride=2, output_size=(11,) * length)


@pytest.mark.parametrize("size", [20, 10, 13, 1, 0, -11])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_output_size_unreachable(kind, nd, size):
    x, w = arrays(kind, nd, size=5)  # stride 2: reachable sizes 11 and 12
    frags = ["output_size", num(size)] + ([num(11), num(12)] if size > 0 else [])
    with pytest.raises(ValueError, match=msg(*frags)):
        run(kind, nd, x, w, stride=2, output_size=(size,) * nd)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_output_size_reachable(kind, nd):
    x, w = arrays(kind, nd, size=5)
    assert run(kind, nd, x, w, stride=2, output_size=(12,) * nd).shape == (1, 2) + (12,) * nd
    assert run(kind, nd, x, w, stride=2, output_size=(1, 2) + (11,) * nd).shape == (1, 2) + (11,) * nd


@pytest.mark.parametrize("bad", [(11.0, 11.0), (11.5, 11), (True, 11), ("11", 11)], ids=str)
@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_output_size_non_integer(kind, bad):
    x, w = arrays(kind, 2, size=5)
    with pytest.raises(TypeError, match=msg("output_size")):
        run(kind, 2, x, w, stride=2, output_size=bad)


@pytest.mark.parametrize("bad", [11, 11.0, "11", {"a": 1}], ids=repr)
@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_output_size_not_a_sequence(kind, bad):
    x, w = arrays(kind, 2, size=5)
    with pytest.raises(BAD_ERRORS, match=msg("output_size")):
        run(kind, 2, x, w, stride=2, output_size=bad)


def test_output_size_on_forward_plan():
    x, w = arrays("plan", 2, size=5)
    plan = fastconv.Convolution(w)
    with pytest.raises(BAD_ERRORS, match=msg("output_size")):
        plan(x, output_size=(3, 3))


# ----------------------------------------------------------------------------------------------------
# padding modes against input size
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pad", [5, 6, 100])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_reflect_padding_not_smaller_than_input(kind, nd, pad):
    x, w = arrays(kind, nd, size=5)
    with pytest.raises(ValueError, match=msg("padding", "reflect", num(pad), num(5))):
        run(kind, nd, x, w, padding=pad, padding_mode="reflect")


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_reflect_padding_in_one_dim_and_side(kind, nd):
    x = rand((1, 3) + (8,) * (nd - 1) + (4,))
    _, w = arrays(kind, nd)
    pads = ((3, 3),) * (nd - 1) + ((0, 4),)
    with pytest.raises(ValueError, match=msg("padding", "reflect", num(4))):
        run(kind, nd, x, w, padding=pads, padding_mode="reflect")


@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_reflect_same_padding_too_wide(kind):
    # kernel 11 on 5 samples: "same" pads 5 on each side, reflect allows at most 4
    x, w = arrays(kind, 1, size=5, k=11)
    with pytest.raises(ValueError, match=msg("padding", "reflect")):
        run(kind, 1, x, w, padding="same", padding_mode="reflect")


@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_reflect_padding_checks_channels_last_spatial_dims(kind):
    # channels-last (1, 5, 5, 16): the spatial dims are 5, not the 16 channels
    x = rand((1, 5, 5, 16))
    w = rand((2, 16, 3, 3))
    with pytest.raises(ValueError, match=msg("padding", "reflect", num(5))):
        run(kind, 2, x, w, padding=6, padding_mode="reflect", layout="channels_last")


@pytest.mark.parametrize("pad", [6, 11])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_circular_padding_larger_than_input(kind, nd, pad):
    x, w = arrays(kind, nd, size=5)
    with pytest.raises(ValueError, match=msg("padding", "circular", num(pad), num(5))):
        run(kind, nd, x, w, padding=pad, padding_mode="circular")


@pytest.mark.parametrize(
    "mode,pad", [("reflect", 4), ("circular", 5), ("replicate", 20), ("zeros", 20)], ids=str
)
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_padding_mode_limits_are_inclusive_where_allowed(kind, nd, mode, pad):
    x, w = arrays(kind, nd, size=5)
    y = run(kind, nd, x, w, padding=pad, padding_mode=mode)
    assert y.shape == (1, 2) + (5 + 2 * pad - 2,) * nd


def test_reflect_padding_checked_per_call_for_plans():
    _, w = arrays("plan", 2)
    plan = fastconv.Convolution(w, padding=4, padding_mode="reflect")
    assert plan(rand((1, 3, 5, 5))).shape == (1, 2, 11, 11)
    with pytest.raises(ValueError, match=msg("padding", "reflect", num(4))):
        plan(rand((1, 3, 4, 9)))


# ----------------------------------------------------------------------------------------------------
# transposed "same"
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_transposed_same_with_negative_total(kind):
    # out = in * s = 15; total = 3*4 + 0 + 0 + 1 - 15 = -2 < 0
    x, w = arrays(kind, 1, size=5, k=1)
    with pytest.raises(ValueError, match=msg("padding|same")):
        run(kind, 1, x, w, stride=3, padding="same")


# ----------------------------------------------------------------------------------------------------
# out=
# ----------------------------------------------------------------------------------------------------


def _out_case(kind, nd):
    x, w = arrays(kind, nd, size=5)
    return x, w, expected(kind, nd, x, w)


@pytest.mark.parametrize("bad", ["list", "memoryview", "tuple", "scalar"])
@pytest.mark.parametrize("kind", KINDS)
def test_out_not_an_ndarray(kind, bad):
    x, w, shape = _out_case(kind, 2)
    good = np.empty(shape, F32)
    out = {"list": good.tolist(), "memoryview": memoryview(good), "tuple": (1.0,), "scalar": 1.0}[bad]
    with pytest.raises(TypeError, match=msg("out", "ndarray|array")):
        run(kind, 2, x, w, out=out)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_out_wrong_shape(kind, nd):
    x, w, shape = _out_case(kind, nd)
    for bad in (shape[:-1] + (shape[-1] + 1,), shape[1:], (int(np.prod(shape)),), (2,) + shape[1:]):
        out = np.empty(bad, F32)
        with pytest.raises(ValueError, match=msg("out", shape_re(bad), shape_re(shape))):
            run(kind, nd, x, w, out=out)


@pytest.mark.parametrize("dtype", [F64, np.float16, np.int32, np.complex64])
@pytest.mark.parametrize("kind", KINDS)
def test_out_wrong_dtype(kind, dtype):
    x, w, shape = _out_case(kind, 2)
    with pytest.raises(ValueError, match=msg("out", dtype_re(dtype), "float32")):
        run(kind, 2, x, w, out=np.empty(shape, dtype))


@pytest.mark.parametrize("how", ["fortran", "strided", "negative"])
@pytest.mark.parametrize("kind", KINDS)
def test_out_not_c_contiguous(kind, how):
    x, w, shape = _out_case(kind, 2)
    if how == "fortran":
        out = np.empty(shape, F32, order="F")
    elif how == "strided":
        out = np.empty(shape + (2,), F32)[..., 0]
    else:
        out = np.empty(shape, F32)[..., ::-1]
    assert out.shape == shape and not out.flags.c_contiguous
    with pytest.raises(ValueError, match=msg("out", "contiguous")):
        run(kind, 2, x, w, out=out)


@pytest.mark.parametrize("kind", KINDS)
def test_out_read_only(kind):
    x, w, shape = _out_case(kind, 2)
    out = np.empty(shape, F32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match=msg("out", r"writ|read.?only")):
        run(kind, 2, x, w, out=out)


OVERLAP = r"overlap|shar|alias|memory|same"


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_out_is_the_input(kind, nd):
    x, w = arrays(kind, nd, cin=3, cout=3, size=5, k=1)
    with pytest.raises(ValueError, match=msg("out", OVERLAP, "input")):
        run(kind, nd, x, w, out=x)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_out_is_the_input_with_padding_mode(kind, nd, mode):
    # padding modes pad a copy of the input first: the check must still see the caller's array
    x, w = arrays(kind, nd, cin=3, cout=3, size=5, k=3)
    before = x.copy()
    with pytest.raises(ValueError, match=msg("out", OVERLAP, "input")):
        run(kind, nd, x, w, padding=1, padding_mode=mode, out=x)
    np.testing.assert_array_equal(x, before)


# strided inputs for which np.shares_memory(out, x, max_work=10**6) gives up (TooHardError): one
# that really shares memory with out, one that does not; found by a seeded search
_HARD_OVERLAP = [
    ((2, 8, 8, 5, 11), (903652, 274456, 232252, 564040, 124776), 27, 774660, True),
    ((2, 10, 8, 4, 9), (787352, 1089164, 365836, 324412, 1091772), 20, 1838776, False),
]


@pytest.mark.parametrize("case", _HARD_OVERLAP, ids=["sharing", "disjoint"])
@pytest.mark.parametrize("kind", ["conv", "plan"])
def test_out_overlap_with_exotic_input_strides(kind, case):
    shape, strides, cout, offset, shares = case
    buf = np.zeros(2 * 10**7, F32)
    buf[: 10**7] = 1.0
    x = np.lib.stride_tricks.as_strided(buf, shape=shape, strides=strides, writeable=False)
    oshape = (shape[0], cout) + shape[2:]
    out = buf[offset : offset + math.prod(oshape)].reshape(oshape)
    assert np.shares_memory(out, x) == shares  # exact answer
    w = np.ones((cout, shape[1], 1, 1, 1), F32)
    if shares:
        with pytest.raises(ValueError, match=msg("out", OVERLAP)):
            run(kind, 3, x, w, out=out)
    else:
        want = np.broadcast_to(x.sum(axis=1, dtype=F64)[:, None], oshape)
        assert run(kind, 3, x, w, out=out) is out
        np.testing.assert_allclose(out, want, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_out_overlaps_the_input_partly(kind):
    buf = rand((2, 3, 5, 5))
    x = buf[:1]
    out = buf.reshape(-1)[37 : 37 + 75].reshape(1, 3, 5, 5)  # starts inside x, runs past it
    w = rand((3, 3, 1, 1))
    with pytest.raises(ValueError, match=msg("out", OVERLAP)):
        run(kind, 2, x, w, out=out)


@pytest.mark.parametrize("kind", ["conv", "transpose"])  # a plan has packed its weights already
def test_out_overlaps_weight_or_bias(kind):
    x = rand((1, 2, 5, 5))
    buf = np.zeros(100, F32)
    out = buf[:50].reshape(1, 2, 5, 5)
    w = buf[40:44].reshape(2, 2, 1, 1)
    with pytest.raises(ValueError, match=msg("out", OVERLAP)):
        run(kind, 2, x, w, out=out)
    buf2 = np.zeros(60, F32)
    out2 = buf2[:50].reshape(1, 2, 5, 5)
    with pytest.raises(ValueError, match=msg("out", OVERLAP)):
        run(kind, 2, x, rand((2, 2, 1, 1)), buf2[48:50], out=out2)


@pytest.mark.parametrize("kind", KINDS)
def test_good_out_is_returned(kind):
    x, w, shape = _out_case(kind, 2)
    out = np.full(shape, np.nan, F32)
    y = run(kind, 2, x, w, out=out)
    assert y is out
    assert np.isfinite(out).all()


@pytest.mark.parametrize("kind", KINDS)
def test_out_not_touched_on_error(kind):
    # an error in another argument must leave out= as it was (raised before C ran)
    x, w, shape = _out_case(kind, 2)
    out = np.full(shape, 7.0, F32)
    with pytest.raises(ValueError):
        run(kind, 2, x, w, out=out, algorithm="fft")
    assert (out == 7.0).all()


# ----------------------------------------------------------------------------------------------------
# num_threads
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, -8])
@pytest.mark.parametrize("kind", KINDS)
def test_num_threads_not_positive(kind, value):
    x, w = arrays(kind, 2, size=5)
    with pytest.raises(ValueError, match=msg("num_threads", num(value))):
        run(kind, 2, x, w, num_threads=value)


@pytest.mark.parametrize("value", [2.0, 1.5, True, False, "2", np.float64(2.0)], ids=repr)
@pytest.mark.parametrize("kind", KINDS)
def test_num_threads_not_an_int(kind, value):
    x, w = arrays(kind, 2, size=5)
    with pytest.raises(TypeError, match=msg("num_threads")):
        run(kind, 2, x, w, num_threads=value)


@pytest.mark.parametrize("value", [None, 1, 2, np.int64(2)], ids=repr)
@pytest.mark.parametrize("kind", KINDS)
def test_num_threads_good(kind, value):
    x, w = arrays(kind, 2, size=5)
    assert run(kind, 2, x, w, num_threads=value).shape == expected(kind, 2, x, w)


# ----------------------------------------------------------------------------------------------------
# non-integer per-dim arguments
# ----------------------------------------------------------------------------------------------------

NON_INT = {
    "float": (1.5, r"float|1\.5"),
    "integral_float": (2.0, r"float|2\.0"),
    "numpy_float": (np.float64(2.0), r"float|2\.0"),
    "true": (True, r"bool|True"),
    "false": (False, r"bool|False"),
    "none": (None, r"None"),
    "tuple_with_float": ("tuple", r"float|1\.5"),
    "tuple_with_bool": ("tuple_bool", r"bool|True"),
    "tuple_with_none": ("tuple_none", r"None"),
    "complex": (1 + 0j, r"complex|\(1\+0j\)"),
}


def _non_int_value(key, nd):
    v, _ = NON_INT[key]
    if v == "tuple":
        return (1,) * (nd - 1) + (1.5,)
    if v == "tuple_bool":
        return (1,) * (nd - 1) + (True,)
    if v == "tuple_none":
        return (1,) * (nd - 1) + (None,)
    return v


def _non_int_cases():
    for kind in KINDS:
        for name in ("stride", "padding", "dilation", "groups", "output_padding"):
            if name == "output_padding" and not is_tr(kind):
                continue  # transposed only
            for key in sorted(NON_INT):
                if name == "groups" and key.startswith("tuple"):
                    continue  # groups is a scalar
                yield kind, name, key


@pytest.mark.parametrize("nd", [1, 3])
@pytest.mark.parametrize("kind,name,key", list(_non_int_cases()))
def test_non_integer_arguments(kind, name, key, nd):
    x, w = arrays(kind, nd, size=6)
    kw = {name: _non_int_value(key, nd)}
    if name == "output_padding":
        kw["stride"] = 3
    with pytest.raises(TypeError, match=msg(name, NON_INT[key][1])):
        run(kind, nd, x, w, **kw)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_numpy_integers_are_accepted(kind, nd):
    x, w = arrays(kind, nd, size=7)
    kw = {
        "stride": np.int64(2),
        "padding": (np.int32(1),) * nd,
        "dilation": np.int16(1),
        "groups": np.int8(1),
    }
    if is_tr(kind):
        kw["output_padding"] = np.uint8(1)
    assert run(kind, nd, x, w, **kw).shape == expected(kind, nd, x, w, **kw)


# ----------------------------------------------------------------------------------------------------
# NaN and Inf are values, not errors
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["input", "weight", "bias"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("kind", KINDS)
def test_non_finite_values_are_not_errors(kind, which, value):
    x, w = arrays(kind, 2, size=5)
    b = rand((2,))
    {"input": x, "weight": w, "bias": b}[which].flat[0] = value
    y = run(kind, 2, x, w, b)
    assert y.shape == expected(kind, 2, x, w, b)
    assert not np.isfinite(y).all()


# ----------------------------------------------------------------------------------------------------
# zero-size batch and channels are not errors
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_zero_batch(kind, nd, layout):
    x, w = arrays(kind, nd, n=0, size=5)
    if layout == "channels_last":
        x = np.moveaxis(x, 1, -1)
    y = run(kind, nd, x, w, rand((2,)), stride=2, padding=1, layout=layout)
    assert y.shape == expected(kind, nd, x, w, stride=2, padding=1, layout=layout)
    assert y.shape[0] == 0 and y.dtype == F32


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_zero_in_channels_gives_bias(kind, nd):
    x, w = arrays(kind, nd, n=2, cin=0, cout=3, size=5)
    b = np.array([1.0, -2.0, 0.5], F32)
    y = run(kind, nd, x, w, b, padding=1)
    assert y.shape == expected(kind, nd, x, w, b, padding=1)
    assert y.shape[1] == 3
    np.testing.assert_array_equal(y, np.broadcast_to(b.reshape((1, 3) + (1,) * nd), y.shape))
    y0 = run(kind, nd, x, w, padding=1)
    assert y0.shape == y.shape and not y0.any()


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_zero_out_channels(kind, nd):
    x, w = arrays(kind, nd, n=2, cin=3, cout=0, size=5)
    y = run(kind, nd, x, w, np.zeros(0, F32))
    assert y.shape == expected(kind, nd, x, w)
    assert y.shape[1] == 0


@pytest.mark.parametrize("kind", KINDS)
def test_zero_batch_with_out(kind):
    x, w = arrays(kind, 2, n=0, size=5)
    shape = expected(kind, 2, x, w)
    out = np.empty(shape, F32)
    assert run(kind, 2, x, w, out=out) is out


@pytest.mark.parametrize("kind", KINDS)
def test_zero_batch_still_validates(kind):
    # an empty batch is no excuse to skip the checks
    x, w = arrays(kind, 2, n=0, cin=4, size=5)
    _, w3 = arrays(kind, 2, cin=3)
    with pytest.raises(ValueError, match=msg("input", "channel")):
        run(kind, 2, x, w3)
    with pytest.raises(ValueError, match=msg("stride")):
        run(kind, 2, x, w, stride=0)


# ----------------------------------------------------------------------------------------------------
# hostile sizes: ValueError or MemoryError (or a correct tiny result), never a crash or a hang
# ----------------------------------------------------------------------------------------------------

HOSTILE_ERRORS = (ValueError, MemoryError)
BIG = 2**62


def _hostile(kind, nd, x, w, tiny_ok, **kw):
    try:
        y = run(kind, nd, x, w, **kw)
    except HOSTILE_ERRORS:
        return
    assert tiny_ok, f"{kind} with {kw} returned shape {y.shape} instead of raising"
    assert y.size < 10**6
    assert y.shape == expected(kind, nd, x, w, **kw)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_hostile_stride(kind, nd):
    x, w = arrays(kind, nd, size=5)
    if is_tr(kind):
        # (5 - 1) * 2**62 overflows int64
        _hostile(kind, nd, x, w, False, stride=BIG)
        _hostile(kind, nd, x, w, False, stride=BIG, output_padding=BIG - 1)
        _hostile(kind, nd, x, w, False, stride=2**64)
    else:
        _hostile(kind, nd, x, w, True, stride=BIG)  # a correct answer is one output pixel
        _hostile(kind, nd, x, w, True, stride=2**63)
        _hostile(kind, nd, x, w, True, stride=2**100)


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_hostile_padding(kind, nd):
    x, w = arrays(kind, nd, size=5)
    for pad in (BIG, 2**63, 2**40, 2**100):
        if is_tr(kind):
            _hostile(kind, nd, x, w, False, stride=2**40, padding=pad)
        else:
            _hostile(kind, nd, x, w, False, padding=pad)
    if not is_tr(kind):
        _hostile(kind, nd, x, w, False, padding=((0, BIG),) * nd)
        _hostile(kind, nd, x, w, False, padding=((BIG, BIG),) * nd, padding_mode="replicate")


@pytest.mark.parametrize("nd", NDS)
@pytest.mark.parametrize("kind", KINDS)
def test_hostile_dilation(kind, nd):
    # 2**62 * (5 - 1) == 2**64 wraps to 0 in 64-bit arithmetic: a 1-wide kernel that reads far away
    x, w = arrays(kind, nd, size=5, k=5)
    _hostile(kind, nd, x, w, False, dilation=BIG)
    _hostile(kind, nd, x, w, False, dilation=2**63)
    _hostile(kind, nd, x, w, False, dilation=2**64 // 4 + 1)


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_groups(kind):
    x, w = arrays(kind, 2, cin=4, cout=4, size=5)
    for g in (BIG, 2**63, 2**64, 2**64 + 1, -(2**63), -(2**64)):
        with pytest.raises(ValueError, match=msg("groups")):
            run(kind, 2, x, w, groups=g)


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_negative_values(kind):
    x, w = arrays(kind, 2, size=5)
    for name in ("stride", "dilation", "padding"):
        for v in (-(2**63), -(2**64), -(2**100)):
            with pytest.raises(ValueError, match=msg(name)):
                run(kind, 2, x, w, **{name: v})
    with pytest.raises(ValueError, match=msg("num_threads")):
        run(kind, 2, x, w, num_threads=-(2**64))


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_num_threads(kind):
    x, w = arrays(kind, 2, size=5)
    for v in (BIG, 2**64):
        _hostile(kind, 2, x, w, True, num_threads=v)


@pytest.mark.parametrize("kind", TRANSPOSED_KINDS)
def test_hostile_output_size(kind):
    x, w = arrays(kind, 2, size=5)
    for size in ((BIG, BIG), (2**64, 11), (2**100, 2**100)):
        with pytest.raises(ValueError, match=msg("output_size")):
            run(kind, 2, x, w, stride=2, output_size=size)


def _huge_kernel(kind, nd, side, cin=1, cout=1):
    """A zero-strided weight of enormous extent that costs no memory."""
    wshape = (cin, cout) if is_tr(kind) else (cout, cin)
    return np.broadcast_to(F32(0.5), wshape + (side,) * nd)


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_kernel_larger_than_input(kind):
    # 2**60 weights (copying them is a MemoryError); forward: kernel larger than the input;
    # transposed: an output of (2**30 + 3)**2 pixels
    w = _huge_kernel(kind, 2, 2**30)
    _hostile(kind, 2, rand((1, 1, 4, 4)), w, False)


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_kernel_volume(kind):
    # kernel volume 2**60 (3D, 2**20 per dim), padded so the kernel fits: the output has about 2**60
    # pixels and an im2col matrix would have 2**120 entries
    w = _huge_kernel(kind, 3, 2**20)
    x = rand((1, 1, 3, 3, 3))
    _hostile(kind, 3, x, w, False, padding=2**20)


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_dilated_huge_kernel(kind):
    # dilation 2**44 times (2**20 - 1) taps is 2**64 - 2**44: wraps negative in int64
    w = _huge_kernel(kind, 1, 2**20)
    x = rand((1, 1, 5))
    _hostile(kind, 1, x, w, False, dilation=2**44)


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_batch(kind):
    # a zero-strided input of 2**50 samples: the output alone would be 4 PiB
    x = np.broadcast_to(F32(1.0), (2**25, 1, 2**25))
    w = rand((1, 1, 1))
    _hostile(kind, 1, x, w, False)


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_channels(kind):
    # 2**40 zero-strided channels, a 2**60-entry weight, and groups=3 dividing neither channel count
    # (a valid layer this size would be a 2**60-MAC hang, so it must be invalid)
    x = np.broadcast_to(F32(1.0), (1, 2**40, 1))
    w = np.broadcast_to(F32(1.0), (2**40, 2**20, 1) if is_tr(kind) else (2**20, 2**40, 1))
    _hostile(kind, 1, x, w, False, groups=3)


# ----------------------------------------------------------------------------------------------------
# fuzz: 300 random combinations of good and bad values, fixed seed, no hypothesis
# ----------------------------------------------------------------------------------------------------

FUZZ_SEED = 20240611
FUZZ_CASES = 300


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _fuzz_case(rng):
    """One random call: returns (kind, nd, x, w, bias, kwargs), drawn mostly from good values."""
    nd = int(rng.integers(1, 4))
    kind = _pick(rng, ["conv", "conv", "transpose", "transpose", "plan", "plan_transposed"])
    tr = is_tr(kind)
    p_bad = 0.05  # per argument: about half the cases draw at least one bad value

    def bad():
        return rng.random() < p_bad

    groups = _pick(rng, [1, 1, 1, 2])
    cin = groups * int(rng.integers(1, 3))
    cout = groups * int(rng.integers(1, 3))
    if rng.random() < 0.05:
        cout = 0 if not tr else cout
    k = tuple(int(rng.integers(1, 4)) for _ in range(nd))
    size = tuple(int(rng.integers(1, 7)) for _ in range(nd))
    n = _pick(rng, [0, 1, 1, 2])
    dtype = _pick(rng, [F32, F64])
    kw = {}

    stride = _pick(rng, [1, 1, 2, 3, tuple(int(rng.integers(1, 3)) for _ in range(nd)), np.int64(2)])
    if bad():
        stride = _pick(rng, [0, -1, 1.5, None, True, (1,) * (nd + 1), 2**62])
    kw["stride"] = stride

    dilation = _pick(rng, [1, 1, 2, tuple(int(rng.integers(1, 3)) for _ in range(nd))])
    if bad():
        dilation = _pick(rng, [0, -2, 2.0, (1,) * (nd + 1)])
    kw["dilation"] = dilation

    padding = _pick(
        rng,
        [
            0,
            1,
            2,
            "valid",
            "same",
            "same_lower",
            tuple(int(rng.integers(0, 3)) for _ in range(nd)),
            tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(nd)),
        ],
    )
    if bad():
        padding = _pick(rng, [-1, "full", 1.5, (1,) * (nd + 1), ((1, 1, 1),) * nd, None, 2**62])
    kw["padding"] = padding

    if bad():
        groups_arg = _pick(rng, [0, -1, 3, 1.0, 2**64])
    else:
        groups_arg = groups
    kw["groups"] = groups_arg

    if tr:
        s_max = max(stride) if isinstance(stride, tuple) and stride else stride
        kw["output_padding"] = _pick(rng, [0, 0, 1]) if _is_int(s_max) and s_max > 1 else 0
        if bad():
            kw["output_padding"] = _pick(rng, [3, -1, 0.5, (0,) * (nd + 1)])
        if kind == "transpose" and not isinstance(padding, str) and rng.random() < 0.15:
            kw["output_size"] = _pick(rng, [(5,) * nd, (4,) * nd, (1,) * (nd + 1), (99,) * nd])
        if bad():
            kw["padding_mode"] = _pick(rng, ["reflect", "circular", "bogus"])
    else:
        mode = _pick(rng, ["zeros", "zeros", "reflect", "replicate", "circular"])
        if bad():
            mode = _pick(rng, ["bogus", "", None])
        kw["padding_mode"] = mode

    channels_last = rng.random() < 0.3
    first, last = LAYOUT_ALIASES[nd]
    kw["layout"] = (
        _pick(rng, ["channels_last", last]) if channels_last else _pick(rng, ["channels_first", first])
    )
    if bad():
        kw["layout"] = _pick(rng, ["bogus", LAYOUT_ALIASES[nd % 3 + 1][0], "channels-first"])

    kw["algorithm"] = _pick(rng, ["auto", "auto", "direct", "im2col"])
    if bad():
        kw["algorithm"] = _pick(rng, ["fft", None, "AUTO"])
    kw["num_threads"] = _pick(rng, [None, None, 1, 2])
    if bad():
        kw["num_threads"] = _pick(rng, [0, -1, 1.0, True])

    # arrays
    in_c, wshape = (cin, (cin, cout // groups)) if tr else (cin, (cout, cin // groups))
    if bad():
        in_c = in_c + 1  # channel mismatch
    xshape = (n, in_c) + size
    if channels_last:
        xshape = (n,) + size + (in_c,)
    x = rand(xshape, dtype, seed=int(rng.integers(1 << 30)))
    if rng.random() < 0.15 and n > 0:
        x = x[0]  # unbatched
    w = rand(wshape + k, dtype, seed=int(rng.integers(1 << 30)))
    if bad():
        w = _pick(rng, [w.astype(np.int32), w.astype(F64 if dtype == F32 else F32), w[..., 0], w[None]])
    bias = None
    if rng.random() < 0.5:
        bias = rand((cout,), dtype)
        if bad():
            bias = _pick(rng, [rand((cout + 1,), dtype), bias.astype(np.int64), bias[None]])
    if bad():
        x = _pick(rng, [x.astype(np.int16), x.astype(np.complex64), x[None], x.astype(object)])
    if rng.random() < 0.2:
        x = np.asfortranarray(x) if rng.random() < 0.5 else x[..., ::-1]
    return kind, nd, x, w, bias, kw


def _fuzz_predict(kind, nd, x, w, bias, kw):
    """The contract's verdict: ("ok", shape) or ("error", reason)."""
    kw = dict(kw)
    kw.pop("algorithm")
    for a, name in ((x, "input"), (w, "weight"), (bias, "bias")):
        if a is not None and a.dtype not in (F32, F64):
            return "error", f"{name} dtype {a.dtype}"
    if w.dtype != x.dtype or (bias is not None and bias.dtype != x.dtype):
        return "error", "dtype mismatch"
    nt = kw.pop("num_threads")
    if nt is not None and (not _is_int(nt) or nt < 1):
        return "error", "num_threads"
    if kind.startswith("plan"):
        nd = w.ndim - 2  # a plan takes its dimensionality from the weight
        if nd not in NDS:
            return "error", f"weight rank {w.ndim}"
    try:
        shape = predict_shape(
            is_tr(kind), nd, x.shape, w.shape, bias_shape=None if bias is None else bias.shape, **kw
        )
    except Bad as e:
        return "error", str(e)
    return "ok", shape


def _hostile_value(value):
    if isinstance(value, dict):
        return any(_hostile_value(v) for v in value.values())
    if isinstance(value, tuple):
        return any(_hostile_value(v) for v in value)
    return _is_int(value) and abs(int(value)) >= 2**31


def _fuzz_algorithm_ok(algorithm):
    return algorithm in ("auto", "direct", "im2col")


def _describe(kind, nd, x, w, bias, kw):
    b = None if bias is None else (bias.shape, str(bias.dtype))
    return f"{kind} nd={nd} x={x.shape}/{x.dtype} w={w.shape}/{w.dtype} bias={b} {kw}"


def test_fuzz_good_and_bad_arguments():
    rng = np.random.default_rng(FUZZ_SEED)
    failures = []
    n_ok = n_err = 0
    for i in range(FUZZ_CASES):
        kind, nd, x, w, bias, kw = _fuzz_case(rng)
        verdict, info = _fuzz_predict(kind, nd, x, w, bias, kw)
        if not _fuzz_algorithm_ok(kw["algorithm"]):
            verdict, info = "error", "algorithm"
        if verdict == "ok" and (math.prod(info) > 10**6 or max(info) > 10**6 or _hostile_value(kw)):
            verdict = "huge"  # e.g. stride 2**62: a correct result, ValueError or MemoryError will do
        where = f"case {i}: {_describe(kind, nd, x, w, bias, kw)}"
        try:
            y = run(kind, nd, x, w, bias, **kw)
        except BAD_ERRORS as e:
            n_err += 1
            if verdict == "ok":
                failures.append(f"{where}\n    raised {type(e).__name__}: {e}\n    contract: shape {info}")
            continue
        except MemoryError:
            n_err += 1
            if verdict == "ok":
                failures.append(f"{where}\n    raised MemoryError\n    contract: shape {info}")
            continue
        except Exception as e:  # the point of the test: nothing else may escape
            failures.append(
                f"{where}\n    raised {type(e).__name__}: {e}\n    contract: ValueError/TypeError"
            )
            continue
        n_ok += 1
        if verdict == "error":
            failures.append(f"{where}\n    returned shape {y.shape}\n    contract: error ({info})")
        elif verdict in ("ok", "huge") and (
            not isinstance(y, np.ndarray) or y.shape != info or y.dtype != x.dtype
        ):
            got = (getattr(y, "shape", None), getattr(y, "dtype", type(y)))
            failures.append(f"{where}\n    returned {got}\n    contract: shape {info}, dtype {x.dtype}")
    assert n_ok >= FUZZ_CASES // 5 and n_err >= FUZZ_CASES // 5, (n_ok, n_err)
    assert not failures, f"{len(failures)} of {FUZZ_CASES} fuzz cases break the contract:\n" + "\n".join(
        failures
    )
