"""Property tests (hypothesis): random layers against the float64 reference, and random bad arguments.

1. test_random_layers_match_reference: rank 1-3, forward or transposed, shapes drawn from 1s, primes
   and sizes just below / at / above the vector widths 8 and 16, strides, every padding form ("valid",
   "same", "same_lower", an int, per-dim ints, (begin, end) pairs), padding modes, dilations, groups
   (plain, grouped, depthwise, channel multiplier), both layouts and their aliases, float32 and
   float64, bias or not, batched or unbatched, contiguous or strided input, algorithm "direct",
   "im2col", "winograd" (where the build has it; a layer it cannot run must be a ValueError saying so)
   or "auto", the functional API or a plan called twice, output_padding or output_size for transposed
   layers; checked against tests/reference.py. test_random_winograd_layers_match_reference draws only
   layers Winograd F(2x2, 3x3) runs (2-D 3x3, stride 1 or undilated stride 2, float32), with every
   other axis free.
2. test_bad_arguments_raise: a valid call with one argument made invalid (a mutation drawn from a list
   of ~40 kinds): it must raise ValueError or TypeError, nothing else.
3. test_garbage_arguments: every argument drawn from a pool of odd values (negative, zero, huge,
   floats, bools, strings, None, nested tuples, numpy scalars): the call either succeeds or raises
   ValueError / TypeError; any other exception (IndexError, OverflowError, ZeroDivisionError,
   AttributeError, RuntimeError...) fails.

The runs are deterministic (derandomize=True: examples derive from the test's source, no database) and
bounded (max_examples below), so the file takes well under a minute. FASTCONV_PROPERTY_SCALE=10 runs ten
times as many examples, for a deeper local search.
"""

from __future__ import annotations

import math
import os

import fastconv
import numpy as np
import pytest
from engines import winograd_available
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from reference import (
    reference_conv,
    reference_conv_transpose,
    rel_err,
    resolve_padding,
    to_channels_first,
    to_channels_last,
)

_SCALE = float(os.environ.get("FASTCONV_PROPERTY_SCALE", "1"))


def _profile(examples: int) -> settings:
    return settings(
        max_examples=max(1, int(examples * _SCALE)),
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


CORRECTNESS = _profile(200)
WINOGRAD = _profile(60)
BAD_ARGUMENTS = _profile(300)
GARBAGE = _profile(300)

# max|y - ref| / max|ref| <= TOL * sqrt(R), R = products summed into one output. Rounding errors of a
# sum of R terms grow like eps * sqrt(R); the constants leave 1-2 orders of magnitude of headroom, so
# a summation order never fails a test while an indexing error (O(1)) always does. An engine this
# file does not know (a future "auto" choice) gets the loose constant. Winograd F(2x2, 3x3) rounds
# 0.9-1.8x worse than direct in float32 (DESIGN.md): three times direct's constant.
ALGORITHMS = tuple(a for a in fastconv._core.ALGORITHMS if a in ("direct", "im2col", "auto", "winograd"))
TOL = {
    ("direct", "float32"): 1e-5,
    ("im2col", "float32"): 1e-5,
    ("winograd", "float32"): 3e-5,
    ("direct", "float64"): 1e-12,
    ("im2col", "float64"): 1e-12,
}
TOL_OTHER = {"float32": 1e-4, "float64": 1e-11}

# 1s, primes, and just below / at / above the vector widths 8 and 16.
SIZES = {
    1: (1, 2, 3, 5, 7, 8, 9, 13, 15, 16, 17, 31, 32, 33),
    2: (1, 2, 3, 5, 7, 8, 9, 15, 16, 17),
    3: (1, 2, 3, 5, 7, 8, 9),
}
KERNELS = {1: (1, 2, 3, 5, 7), 2: (1, 2, 3, 5), 3: (1, 2, 3)}
CHANNELS_PER_GROUP = (1, 2, 3, 5, 7, 8, 9, 15, 16, 17)
LAYOUT_NAMES = {1: ("NCW", "NWC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}
MAX_WORK = 300_000  # multiply-adds of one example, to keep the float64 reference fast


def _tolerance(engine, dtype, reduction):
    base = TOL.get((engine, dtype), TOL_OTHER[dtype])
    return base * math.sqrt(max(reduction, 1))


def _dims(draw, nd, values):
    return tuple(draw(st.sampled_from(values)) for _ in range(nd))


def _per_dim(draw, nd, values):
    """An int (every dim alike) or a tuple of nd ints."""
    if draw(st.booleans()):
        return draw(st.sampled_from(values))
    return _dims(draw, nd, values)


def _tuple(value, nd):
    return (value,) * nd if isinstance(value, int) else tuple(value)


@st.composite
def padding_forms(draw, nd, transposed):
    form = draw(st.sampled_from(("int", "tuple", "pairs", "valid", "same", "same_lower")))
    if form == "int":
        return draw(st.integers(0, 3))
    if form == "tuple":
        return tuple(draw(st.integers(0, 3)) for _ in range(nd))
    if form == "pairs":
        return tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(nd))
    return form


@st.composite
def layer_cases(draw, winograd=False):
    """A valid call: everything needed to run it and to compute the reference. winograd=True: a layer
    Winograd F(2x2, 3x3) computes (2-D, 3x3, stride 1, or stride 2 undilated, float32, forward),
    run by it."""
    nd = 2 if winograd else draw(st.integers(1, 3))
    transposed = False if winograd else draw(st.booleans())
    groups = draw(st.sampled_from((1, 1, 2, 3, "depthwise")))
    if groups == "depthwise":
        groups = draw(st.sampled_from((2, 3, 7, 8, 9, 16, 17)))
        in_g, out_g = 1, draw(st.sampled_from((1, 1, 2)))  # depthwise, or channel multiplier 2
    else:
        in_g, out_g = draw(st.sampled_from(CHANNELS_PER_GROUP)), draw(st.sampled_from(CHANNELS_PER_GROUP))
    kernel = (3, 3) if winograd else _dims(draw, nd, KERNELS[nd])
    stride = draw(st.sampled_from((1, 1, 2))) if winograd else _per_dim(draw, nd, (1, 1, 2, 3))
    dilation = 1 if winograd and stride == 2 else _per_dim(draw, nd, (1, 1, 2, 3))
    padding = draw(padding_forms(nd, transposed))
    size = _dims(draw, nd, SIZES[nd])
    s3, d3 = _tuple(stride, nd), _tuple(dilation, nd)
    spans = tuple(d * (k - 1) + 1 for k, d in zip(kernel, d3, strict=True))
    output_padding, output_size, mode = 0, None, "zeros"
    ref_output_padding = 0  # what the reference is given: output_padding, or what output_size implies
    if transposed:
        if draw(st.booleans()):  # the largest allowed output padding, or a random allowed one per dim
            output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(s3, d3, strict=True))
        if padding in ("same", "same_lower"):
            op3 = _tuple(output_padding, nd)
            # the contract: total = op + span - stride must be >= 0; else use explicit padding
            if any(op + span - s < 0 for op, span, s in zip(op3, spans, s3, strict=True)):
                padding = "valid"
        pairs = resolve_padding(
            padding, size, kernel, s3, d3, transposed=True, output_padding=_tuple(output_padding, nd)
        )
        outs = [
            (i - 1) * s - pb - pe + span + op
            for i, s, (pb, pe), span, op in zip(
                size, s3, pairs, spans, _tuple(output_padding, nd), strict=True
            )
        ]
        if any(o < 1 for o in outs):
            padding = 0
            pairs = ((0, 0),) * nd
        if not isinstance(padding, str) and draw(st.booleans()):
            # torch's output_size instead of output_padding; optionally with the N, C dims
            op3 = _tuple(output_padding, nd)
            output_size = tuple(
                (i - 1) * s - pb - pe + span + op
                for i, s, (pb, pe), span, op in zip(size, s3, pairs, spans, op3, strict=True)
            )
            output_padding = 0
        ref_output_padding = op3 if output_size is not None else output_padding
    else:
        pairs = resolve_padding(padding, size, kernel, s3, d3)
        # The padded input must hold the kernel: grow the input where it does not.
        size = tuple(max(i, span - pb - pe) for i, span, (pb, pe) in zip(size, spans, pairs, strict=True))
        pairs = resolve_padding(padding, size, kernel, s3, d3)
        mode = draw(st.sampled_from(("zeros", "zeros", "reflect", "replicate", "circular")))
        if mode == "reflect" and any(max(p) >= i for p, i in zip(pairs, size, strict=True)):
            mode = "replicate"
        if mode == "circular" and any(max(p) > i for p, i in zip(pairs, size, strict=True)):
            mode = "zeros"
    in_channels, out_channels = in_g * groups, out_g * groups
    batch = draw(st.sampled_from((1, 1, 2, 3)))
    unbatched = batch == 1 and draw(st.booleans())
    layout = draw(st.sampled_from(("channels_first", "channels_last", "alias_first", "alias_last")))
    if layout.startswith("alias"):
        layout = LAYOUT_NAMES[nd][0 if layout == "alias_first" else 1]
    channels_last = layout in ("channels_last", LAYOUT_NAMES[nd][1])
    dtype = "float32" if winograd else draw(st.sampled_from(("float32", "float64")))
    algorithm = "winograd" if winograd else draw(st.sampled_from(ALGORITHMS))
    case = dict(
        nd=nd,
        transposed=transposed,
        groups=groups,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        padding=padding,
        pairs=pairs,
        size=size,
        output_padding=output_padding,
        output_size=output_size,
        ref_output_padding=ref_output_padding,
        padding_mode=mode,
        batch=batch,
        unbatched=unbatched,
        layout=layout,
        channels_last=channels_last,
        dtype=dtype,
        algorithm=algorithm,
        bias=draw(st.booleans()),
        api=draw(st.sampled_from(("functional", "plan"))),
        view=draw(st.sampled_from(("contiguous", "contiguous", "strided", "fortran"))),
        seed=draw(st.integers(0, 2**32 - 1)),
    )
    out_volume = math.prod(
        (i + pb + pe - span) // s + 1 if not transposed else (i - 1) * s + span
        for i, (pb, pe), span, s in zip(size, pairs, spans, s3, strict=True)
    )
    work = batch * out_channels * out_volume * in_g * math.prod(kernel)
    assume(work <= MAX_WORK)
    return case


def _make_view(a, view):
    if view == "strided":  # every other element of a twice-as-long last axis
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if view == "fortran":
        return np.asfortranarray(a)
    return a


def _reference(c, x, w, b, output_padding):
    if c["transposed"]:
        return reference_conv_transpose(
            x, w, b, c["stride"], c["pairs"], output_padding, c["groups"], c["dilation"]
        )
    return reference_conv(x, w, b, c["stride"], c["pairs"], c["dilation"], c["groups"], c["padding_mode"])


def _run(c, fn, x, w, b):
    kwargs = dict(layout=c["layout"], algorithm=c["algorithm"])
    if c["api"] == "plan":
        plan = fastconv.Convolution(
            w,
            b,
            c["stride"],
            c["padding"],
            c["dilation"],
            c["groups"],
            transposed=c["transposed"],
            output_padding=c["output_padding"],
            padding_mode=c["padding_mode"],
            **kwargs,
        )
        call = {"output_size": c["output_size"]} if c["transposed"] else {}
        y = plan(x, **call)
        engine = plan.algorithm
        assert plan(x, **call).tobytes() == y.tobytes(), "a plan called twice gave different results"
        return y, engine
    if c["transposed"]:
        y = fn(
            x,
            w,
            b,
            c["stride"],
            c["padding"],
            c["output_padding"],
            c["groups"],
            c["dilation"],
            output_size=c["output_size"],
            **kwargs,
        )
    else:
        y = fn(
            x,
            w,
            b,
            c["stride"],
            c["padding"],
            c["dilation"],
            c["groups"],
            padding_mode=c["padding_mode"],
            **kwargs,
        )
    return y, c["algorithm"]


@CORRECTNESS
@given(layer_cases())
def test_random_layers_match_reference(c):
    _check_layer(c)


@WINOGRAD
@given(layer_cases(winograd=True))
def test_random_winograd_layers_match_reference(c):
    if not winograd_available():
        pytest.skip("no Winograd engine in this build or on this ISA path")
    _check_layer(c)


def _check_layer(c):
    note(repr(c))
    nd, dtype = c["nd"], np.dtype(c["dtype"])
    rng = np.random.default_rng(c["seed"])
    x = rng.standard_normal((c["batch"], c["in_channels"], *c["size"])).astype(dtype)
    if c["transposed"]:
        w_shape = (c["in_channels"], c["out_channels"] // c["groups"], *c["kernel"])
    else:
        w_shape = (c["out_channels"], c["in_channels"] // c["groups"], *c["kernel"])
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(c["out_channels"]).astype(dtype) if c["bias"] else None

    expected = _reference(c, x, w, b, c["ref_output_padding"])
    if c["output_size"] is not None:
        assert expected.shape[2:] == c["output_size"]

    given_x = to_channels_last(x) if c["channels_last"] else x
    if c["unbatched"]:
        given_x = given_x[0]
    given_x = _make_view(given_x, c["view"])
    fn = getattr(fastconv, f"conv_transpose{nd}d" if c["transposed"] else f"conv{nd}d")
    try:
        y, engine = _run(c, fn, given_x, w, b)
    except ValueError as exc:
        # Asking for an engine that cannot run the layer is a ValueError that says why; only Winograd
        # (F(2x2, 3x3): float32, 1-D 3-tap or 2-D 3x3, stride 1) has such limits.
        assert c["algorithm"] == "winograd" and "cannot run this layer" in str(exc), exc
        return
    assert y.dtype == dtype
    if c["unbatched"]:
        y = y[np.newaxis]
    if c["channels_last"]:
        y = to_channels_first(y)
    reduction = (c["in_channels"] // c["groups"]) * math.prod(c["kernel"])
    err = rel_err(y, expected)
    assert err <= _tolerance(engine, c["dtype"], reduction), f"{engine} {c['dtype']}: rel err {err:.3g}"


# ---------------------------------------------------------------------------------------------------
# Bad arguments: one argument of a valid call made invalid. Each mutation is invalid whatever the rest
# of the call is; it must raise ValueError or TypeError.


def _base(nd, transposed, rng):
    cin, cout, groups = 4, 6, 2
    x = rng.standard_normal((2, cin) + (7,) * nd).astype(np.float32)
    w_shape = (cin, cout // groups) + (3,) * nd if transposed else (cout, cin // groups) + (3,) * nd
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    kwargs = dict(stride=1, padding=1, dilation=1, groups=groups)
    if transposed:
        kwargs["output_padding"] = 0
    return x, w, b, kwargs


BAD_INTS = (0, -1, -(2**63), 2**40, 2**64, 2**100)
NOT_INTS = (1.5, 2.0, "2", b"2", None, True, False, np.float32(1), np.bool_(True), 1j, object(), [[1]])


def _out_shape(nd, transposed):
    return (2, 6) + ((7,) * nd if not transposed else (7,) * nd)


MUTATIONS = {
    # per-dim int arguments
    "stride_bad_int": lambda d, c: c["kwargs"].update(stride=d.draw(st.sampled_from(BAD_INTS))),
    "stride_not_int": lambda d, c: c["kwargs"].update(stride=d.draw(st.sampled_from(NOT_INTS))),
    "stride_wrong_len": lambda d, c: c["kwargs"].update(
        stride=(1,) * d.draw(st.sampled_from([n for n in range(0, 6) if n != c["nd"]]))
    ),
    "stride_zero_in_tuple": lambda d, c: c["kwargs"].update(stride=(1,) * (c["nd"] - 1) + (0,)),
    "dilation_bad_int": lambda d, c: c["kwargs"].update(dilation=d.draw(st.sampled_from(BAD_INTS))),
    "dilation_not_int": lambda d, c: c["kwargs"].update(dilation=d.draw(st.sampled_from(NOT_INTS))),
    "dilation_wrong_len": lambda d, c: c["kwargs"].update(dilation=(1,) * (c["nd"] + 1)),
    "padding_negative": lambda d, c: c["kwargs"].update(padding=d.draw(st.sampled_from((-1, -(2**40))))),
    "padding_huge": lambda d, c: c["kwargs"].update(padding=d.draw(st.sampled_from((2**40, 2**64)))),
    "padding_bad_string": lambda d, c: c["kwargs"].update(
        padding=d.draw(st.sampled_from(("", "SAME", "full", "same_upper", "causal", "valid ")))
    ),
    "padding_float": lambda d, c: c["kwargs"].update(padding=d.draw(st.sampled_from((1.0, 0.5, None, 1j)))),
    "padding_wrong_len": lambda d, c: c["kwargs"].update(padding=(1,) * (c["nd"] + 1)),
    "padding_triple": lambda d, c: c["kwargs"].update(padding=((1, 1, 1),) * c["nd"]),
    "padding_negative_pair": lambda d, c: c["kwargs"].update(padding=((0, -1),) * c["nd"]),
    "padding_nested_garbage": lambda d, c: c["kwargs"].update(
        padding=d.draw(
            st.sampled_from((((1.5, 1),) * c["nd"], (("a", 1),) * c["nd"], ([None, 1],) * c["nd"]))
        )
    ),
    "groups_bad_int": lambda d, c: c["kwargs"].update(groups=d.draw(st.sampled_from(BAD_INTS))),
    "groups_not_int": lambda d, c: c["kwargs"].update(groups=d.draw(st.sampled_from(NOT_INTS))),
    "groups_not_dividing": lambda d, c: c["kwargs"].update(groups=d.draw(st.sampled_from((3, 5, 7, 9)))),
    "padding_mode": lambda d, c: c["extra"].update(
        padding_mode=d.draw(st.sampled_from(("zero", "constant", "edge", "wrap", "", None, 0)))
    ),
    "layout_bad": lambda d, c: c["extra"].update(
        layout=d.draw(st.sampled_from(("NCHWC", "nchw", "channels-first", "", None, 1, ("NCHW",))))
    ),
    "layout_other_rank": lambda d, c: c["extra"].update(layout={1: "NCHW", 2: "NCDHW", 3: "NCW"}[c["nd"]]),
    "algorithm_bad": lambda d, c: c["extra"].update(
        algorithm=d.draw(st.sampled_from(("Direct", "gemm", "fft", "", None, 0, ("direct",))))
    ),
    "num_threads_bad": lambda d, c: c["extra"].update(
        num_threads=d.draw(st.sampled_from((0, -1, 1.5, "2", True, 2**40)))
    ),
    "input_int_dtype": lambda d, c: c.update(
        x=c["x"].astype(
            d.draw(
                st.sampled_from((np.int32, np.int64, np.uint8, np.bool_, np.complex64, np.float16, object))
            )
        )
    ),
    "weight_int_dtype": lambda d, c: c.update(
        w=c["w"].astype(d.draw(st.sampled_from((np.int32, np.float16, np.complex128, np.int8))))
    ),
    "dtype_mismatch": lambda d, c: c.update(x=c["x"].astype(np.float64)),
    "bias_dtype_mismatch": lambda d, c: c.update(b=c["b"].astype(np.float64)),
    "bias_wrong_shape": lambda d, c: c.update(
        b=d.draw(
            st.sampled_from((c["b"][:-1], c["b"].reshape(2, 3), np.zeros(7, np.float32), np.float32(1.0)))
        )
    ),
    "input_wrong_rank": lambda d, c: c.update(
        x=d.draw(st.sampled_from((c["x"][0, 0], c["x"][np.newaxis], np.zeros((), np.float32))))
    ),
    "input_wrong_channels": lambda d, c: c.update(x=c["x"][:, :3]),
    "input_empty_spatial": lambda d, c: c.update(x=c["x"][..., :0]),
    "input_ragged_list": lambda d, c: c.update(x=[[1.0, 2.0], [3.0]]),
    "input_string": lambda d, c: c.update(x=d.draw(st.sampled_from(("abc", None, 3, {"a": 1})))),
    "weight_wrong_rank": lambda d, c: c.update(w=c["w"][..., 0] if c["nd"] > 1 else c["w"][0]),
    "weight_empty_kernel": lambda d, c: c.update(w=c["w"][..., :0]),
    "out_wrong_shape": lambda d, c: c["extra"].update(out=np.zeros((1, 2, 3), np.float32)),
    "out_wrong_dtype": lambda d, c: c["extra"].update(out=np.zeros(_out_shape(c["nd"], c["transposed"]))),
    "out_not_array": lambda d, c: c["extra"].update(out=d.draw(st.sampled_from(([0.0], 0.0, "out")))),
    "out_read_only": lambda d, c: c["extra"].update(
        out=_read_only(np.zeros(_out_shape(c["nd"], c["transposed"]), np.float32))
    ),
    "out_not_contiguous": lambda d, c: c["extra"].update(
        out=np.zeros(_out_shape(c["nd"], c["transposed"])[:-1] + (14,), np.float32)[..., ::2]
    ),
    "out_is_input": lambda d, c: c["extra"].update(out=c["x"]),
}
FORWARD_ONLY = {
    "kernel_larger_than_input": lambda d, c: c.update(
        w=np.zeros(c["w"].shape[:2] + (40,) * c["nd"], np.float32)
    ),
    "dilation_too_large": lambda d, c: c["kwargs"].update(dilation=d.draw(st.sampled_from((5, 1000, 2**39)))),
    "output_padding_forward": lambda d, c: c["kwargs"].update(output_padding=1),
    "reflect_pad_too_large": lambda d, c: c.update(
        x=c["x"][..., :2],
        extra=dict(c["extra"], padding_mode="reflect"),
        kwargs=dict(c["kwargs"], padding=3, dilation=1),
    ),
    "circular_pad_too_large": lambda d, c: c.update(
        x=c["x"][..., :2],
        extra=dict(c["extra"], padding_mode="circular"),
        kwargs=dict(c["kwargs"], padding=3, dilation=1),
    ),
}
TRANSPOSED_ONLY = {
    "output_padding_too_large": lambda d, c: c["kwargs"].update(
        output_padding=d.draw(st.sampled_from((1, 2, 5)))
    ),
    "output_padding_negative": lambda d, c: c["kwargs"].update(output_padding=-1),
    "padding_mode_transposed": lambda d, c: c["extra"].update(
        padding_mode=d.draw(st.sampled_from(("reflect", "replicate", "circular")))
    ),
    "output_size_unreachable": lambda d, c: c["extra"].update(output_size=(100,) * c["nd"]),
    "output_size_wrong_len": lambda d, c: c["extra"].update(output_size=(7,) * (c["nd"] + 1)),
    "output_size_not_sequence": lambda d, c: c["extra"].update(
        output_size=d.draw(st.sampled_from((7, "7", 7.0)))
    ),
    "output_empty": lambda d, c: c["kwargs"].update(padding=d.draw(st.sampled_from((5, 100, 2**39)))),
    "groups_not_dividing_in": lambda d, c: c["kwargs"].update(groups=d.draw(st.sampled_from((3, 5, 8)))),
    "same_impossible": lambda d, c: c["kwargs"].update(padding="same", stride=5),
}


def _read_only(a):
    a.flags.writeable = False
    return a


@BAD_ARGUMENTS
@given(st.data())
def test_bad_arguments_raise(data):
    nd = data.draw(st.integers(1, 3), label="nd")
    transposed = data.draw(st.booleans(), label="transposed")
    api = data.draw(st.sampled_from(("functional", "plan")), label="api")
    mutations = dict(MUTATIONS, **(TRANSPOSED_ONLY if transposed else FORWARD_ONLY))
    name = data.draw(st.sampled_from(sorted(mutations)), label="mutation")
    x, w, b, kwargs = _base(nd, transposed, np.random.default_rng(0))
    c = {"nd": nd, "transposed": transposed, "x": x, "w": w, "b": b, "kwargs": kwargs, "extra": {}}
    mutations[name](data, c)
    with pytest.raises((ValueError, TypeError)):
        _call(nd, transposed, api, c["x"], c["w"], c["b"], c["kwargs"], c["extra"])


def _call(nd, transposed, api, x, w, b, kwargs, extra):
    extra = dict(extra)
    if api == "plan":
        call = {k: extra.pop(k) for k in ("out", "output_size") if k in extra}
        if "output_size" in call and not transposed:
            call.pop("output_size")
        plan = fastconv.Convolution(w, b, transposed=transposed, **kwargs, **extra)
        return plan(x, **call)
    fn = getattr(fastconv, f"conv_transpose{nd}d" if transposed else f"conv{nd}d")
    if transposed:
        return fn(x, w, b, **kwargs, **extra)
    return fn(x, w, b, **kwargs, **extra)


# ---------------------------------------------------------------------------------------------------
# Garbage: every argument from a pool of odd values. Success is allowed; only ValueError and TypeError
# are allowed as failures. Integers are small (a valid layer stays cheap) or far beyond any real layer
# (which must be refused before anything is allocated).

ODD_INTS = st.one_of(st.integers(-3, 4), st.sampled_from((2**40, 2**62, 2**63, 2**64, -(2**63))))
ODD_SCALARS = st.one_of(
    ODD_INTS,
    st.sampled_from(
        (
            0.0,
            1.0,
            1.5,
            float("nan"),
            float("inf"),
            None,
            True,
            False,
            "",
            "1",
            "same",
            "valid",
            "same_lower",
            np.int64(2),
            np.int8(-1),
            np.uint64(2**63),
            np.float64(1.0),
            np.bool_(False),
            b"x",
            1j,
        )
    ),
)
ODD_TUPLES = st.one_of(
    st.tuples(ODD_INTS),
    st.tuples(ODD_INTS, ODD_INTS),
    st.tuples(ODD_INTS, ODD_INTS, ODD_INTS),
    st.lists(st.one_of(ODD_INTS, st.tuples(ODD_INTS, ODD_INTS)), max_size=4).map(tuple),
    st.lists(ODD_SCALARS, max_size=3),
)
ODD = st.one_of(ODD_SCALARS, ODD_TUPLES)


@st.composite
def odd_arrays(draw, nd, channels):
    dtype = draw(st.sampled_from((np.float32, np.float32, np.float64, np.int32, np.float16, np.bool_)))
    rank = draw(st.sampled_from((nd + 1, nd + 2, nd + 2, nd + 2, nd + 3, 0, 1)))
    shape = [draw(st.sampled_from((0, 1, 2, 3, 5))) for _ in range(rank)]
    if rank == nd + 2 and draw(st.booleans()):
        shape[1] = channels
    return np.ones(shape, dtype)


@GARBAGE
@given(st.data())
def test_garbage_arguments(data):
    nd = data.draw(st.integers(1, 3), label="nd")
    transposed = data.draw(st.booleans(), label="transposed")
    api = data.draw(st.sampled_from(("functional", "plan")), label="api")
    x, w, b, kwargs = _base(nd, transposed, np.random.default_rng(1))
    extra = {}
    # Replace 1-4 arguments by odd values.
    slots = [
        "stride",
        "padding",
        "dilation",
        "groups",
        "padding_mode",
        "layout",
        "algorithm",
        "num_threads",
        "x",
        "w",
        "b",
    ] + (["output_padding", "output_size"] if transposed else [])
    for slot in data.draw(
        st.lists(st.sampled_from(slots), min_size=1, max_size=4, unique=True), label="slots"
    ):
        if slot == "x":
            x = data.draw(st.one_of(odd_arrays(nd, 4), ODD), label="x")
        elif slot == "w":
            w = data.draw(st.one_of(odd_arrays(nd, 2), ODD), label="w")
        elif slot == "b":
            b = data.draw(st.one_of(odd_arrays(0, 6).map(lambda a: a.reshape(-1)), ODD), label="b")
        elif slot in ("stride", "padding", "dilation", "groups", "output_padding"):
            kwargs[slot] = data.draw(ODD, label=slot)
        else:
            extra[slot] = data.draw(ODD, label=slot)
    try:
        y = _call(nd, transposed, api, x, w, b, kwargs, extra)
    except (ValueError, TypeError):
        return
    assert isinstance(y, np.ndarray) and y.dtype in (np.float32, np.float64)
