"""Values: NaN and Inf propagate as direct convolution propagates them, in every engine; denormals do not
slow the kernels down by orders of magnitude.

NaN / Inf: inputs (and in some cases bias or weights) holding NaN, +Inf and -Inf at seeded random places;
the output of "direct", "im2col" and "auto" must have exactly the NaN, +Inf and -Inf positions of the
float64 reference (tests/reference.py), which computes each output as the plain sum of its terms, and agree
elsewhere within tolerance. An explicitly requested "winograd" is held to less (_check_winograd_nonfinite:
it may turn Inf into NaN, never a non-finite output into a finite one). Weights are kept away from zero so
that 0 * Inf does not arise, and non-finite weights are only used where every tap of every output lands
inside the input (no zero padding, or transposed layers: whether a padded zero times an Inf weight is NaN
or is skipped is not a property of the convolution).

Denormals: a call on all-denormal input (and one whose products underflow to denormals) against the same
call on normal input, timed in this process (best of several, interleaved, one thread): the ratio must be
below 10x. A loose sanity bound, not a benchmark.
"""

from __future__ import annotations

import itertools
import math
import time

import fastconv
import numpy as np
import pytest
from engines import WINOGRAD
from reference import (
    reference_conv,
    reference_conv_transpose,
    resolve_padding,
    to_channels_first,
    to_channels_last,
)

ALGORITHMS = tuple(a for a in fastconv._core.ALGORITHMS if a in ("direct", "im2col", "auto", "winograd"))
DTYPES = (np.float32, np.float64)
TOL = {np.float32: 1e-5, np.float64: 1e-12}
WINOGRAD_TOL = 3e-5  # float32 only; F(2x2, 3x3) rounds 0.9-1.8x worse than direct

# name: (nd, transposed, C_in, C_out, groups, kernel, size, kwargs)
LAYERS = {
    "conv1d": (1, False, 3, 4, 1, (3,), (29,), dict(padding=1)),
    "conv1d_strided_dilated": (1, False, 4, 6, 2, (3,), (31,), dict(stride=2, dilation=2, padding="same")),
    "conv2d": (2, False, 3, 8, 1, (3, 3), (11, 13), dict(padding=1)),
    "conv2d_channels_last": (
        2,
        False,
        4,
        8,
        1,
        (3, 2),
        (9, 10),
        dict(padding=((1, 0), (0, 1)), layout="NHWC"),
    ),
    "conv2d_depthwise": (2, False, 6, 6, 6, (3, 3), (10, 10), dict(padding="same")),
    "conv2d_1x1": (2, False, 16, 8, 1, (1, 1), (7, 9), dict()),
    "conv2d_reflect": (2, False, 3, 5, 1, (3, 3), (8, 8), dict(padding=2, padding_mode="reflect")),
    "conv2d_circular": (2, False, 3, 5, 1, (3, 3), (8, 8), dict(padding=1, padding_mode="circular")),
    "conv3d": (3, False, 2, 4, 1, (2, 3, 3), (5, 6, 7), dict(padding=(1, 1, 0))),
    "conv_transpose1d": (1, True, 4, 3, 1, (4,), (17,), dict(stride=3, padding=1)),
    "conv_transpose2d": (2, True, 4, 6, 2, (3, 3), (7, 8), dict(stride=2, padding=1, output_padding=1)),
    "conv_transpose2d_channels_last": (2, True, 3, 4, 1, (2, 2), (6, 7), dict(stride=2, layout="NHWC")),
    "conv_transpose3d": (3, True, 2, 3, 1, (2, 2, 3), (4, 5, 4), dict(stride=(1, 2, 2), dilation=(2, 1, 1))),
}

# Where the non-finite values go.
PATTERNS = (
    "input_nan_inf",
    "input_inf_only",
    "input_all_nonfinite_row",
    "bias_nonfinite",
    "weight_nonfinite",
)


def _sprinkle(a, rng, fraction, values):
    flat = a.reshape(-1)
    idx = rng.choice(flat.size, size=max(1, int(flat.size * fraction)), replace=False)
    flat[idx] = rng.choice(values, size=idx.size)
    return a


def _case(name, pattern, dtype, seed):
    nd, transposed, cin, cout, groups, kernel, size, kwargs = LAYERS[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, cin) + size)
    w_shape = (cin, cout // groups) + kernel if transposed else (cout, cin // groups) + kernel
    # |w| in [0.25, 1.25]: no zero weights, so no 0 * Inf
    w = rng.uniform(0.25, 1.25, w_shape) * rng.choice((-1.0, 1.0), w_shape)
    b = rng.standard_normal(cout)
    if pattern == "input_nan_inf":
        _sprinkle(x, rng, 0.03, (np.nan, np.inf, -np.inf))
    elif pattern == "input_inf_only":
        _sprinkle(x, rng, 0.02, (np.inf,))
    elif pattern == "input_all_nonfinite_row":
        x[1, 0, ...] = np.nan
        x[0, -1, ...] = -np.inf
    elif pattern == "bias_nonfinite":
        _sprinkle(x, rng, 0.01, (np.inf,))
        b[: min(3, cout)] = (np.nan, np.inf, -np.inf)[: min(3, cout)]
    elif pattern == "weight_nonfinite":
        w.reshape(-1)[rng.choice(w.size, size=2, replace=False)] = (np.nan, np.inf)
    return x.astype(dtype), w.astype(dtype), b.astype(dtype)


def _applicable(name, pattern):
    nd, transposed, cin, cout, groups, kernel, size, kwargs = LAYERS[name]
    if pattern != "weight_nonfinite":
        return True
    # Every tap of every output must land inside the input: forward without zero padding. (Transposed
    # padding crops the output; every term of every output is a real input times a weight.)
    return transposed or kwargs.get("padding", 0) in (0, "valid")


def _reference(name, x, w, b):
    nd, transposed, cin, cout, groups, kernel, size, kwargs = LAYERS[name]
    stride, dilation = kwargs.get("stride", 1), kwargs.get("dilation", 1)
    op = kwargs.get("output_padding", 0)
    pairs = resolve_padding(
        kwargs.get("padding", 0), size, kernel, stride, dilation, transposed=transposed, output_padding=op
    )
    with np.errstate(invalid="ignore", over="ignore"):
        if transposed:
            return reference_conv_transpose(x, w, b, stride, pairs, op, groups, dilation)
        return reference_conv(x, w, b, stride, pairs, dilation, groups, kwargs.get("padding_mode", "zeros"))


def _run(name, x, w, b, algorithm):
    nd, transposed, cin, cout, groups, kernel, size, kwargs = LAYERS[name]
    channels_last = kwargs.get("layout") == "NHWC"
    fn = getattr(fastconv, f"conv_transpose{nd}d" if transposed else f"conv{nd}d")
    y = fn(to_channels_last(x) if channels_last else x, w, b, groups=groups, algorithm=algorithm, **kwargs)
    return to_channels_first(y) if channels_last else y


def _winograd_runs(name, dtype):
    """F(2x2, 3x3): float32, channels-first 2-D 3x3, stride 1, dilation 1, forward."""
    if not WINOGRAD:
        return False
    nd, transposed, cin, cout, groups, kernel, size, kwargs = LAYERS[name]
    plain = all(kwargs.get(k, 1) == 1 for k in ("stride", "dilation")) and "layout" not in kwargs
    return dtype == np.float32 and nd == 2 and not transposed and kernel == (3, 3) and plain


CASES = [
    pytest.param(n, p, a, d, id=f"{n}-{p}-{a}-{'f32' if d == np.float32 else 'f64'}")
    for n, p in itertools.product(LAYERS, PATTERNS)
    if _applicable(n, p)
    for a in ALGORITHMS
    for d in DTYPES
    if a != "winograd" or _winograd_runs(n, d)
]


@pytest.mark.parametrize("name,pattern,algorithm,dtype", CASES)
def test_nonfinite_propagate_like_direct_convolution(name, pattern, algorithm, dtype):
    seed = sum(map(ord, name + pattern))
    x, w, b = _case(name, pattern, dtype, seed)
    ref = _reference(name, x, w, b)
    assert not np.isfinite(ref).all(), "the case must put non-finite values in the reference's output"
    with np.errstate(invalid="ignore", over="ignore"):
        try:
            y = _run(name, x, w, b, algorithm)
        except ValueError as exc:
            if algorithm == "winograd" and "cannot run this layer" in str(exc):
                pytest.skip(str(exc))
            raise
    assert y.shape == ref.shape
    if algorithm == "winograd":
        _check_winograd_nonfinite(y, ref, x, dtype, name)
        return
    for what, mask in (("NaN", np.isnan), ("+Inf", np.isposinf), ("-Inf", np.isneginf)):
        got, want = mask(y), mask(ref)
        if not np.array_equal(got, want):
            where = np.argwhere(got != want)[:5].tolist()
            pytest.fail(
                f"{what} positions differ from the reference at {where} "
                f"(got {int(got.sum())}, reference {int(want.sum())}); values there: "
                f"{[float(y[tuple(i)]) for i in where]} vs {[float(ref[tuple(i)]) for i in where]}"
            )
    finite = np.isfinite(ref)
    scale = np.max(np.abs(ref[finite]), initial=0.0) + 1e-300
    reduction = (x.shape[1] // LAYERS[name][4]) * math.prod(LAYERS[name][5])
    err = np.max(np.abs(y[finite] - ref[finite]), initial=0.0) / scale
    assert err <= TOL[dtype] * math.sqrt(reduction), f"finite outputs: rel err {err:.3g}"


def _check_winograd_nonfinite(y, ref, x, dtype, name):
    """What an explicitly requested Winograd keeps (DESIGN.md: its transforms mix a tile's inputs, so
    Inf - Inf can make NaN where direct convolution gives Inf or a finite number; "auto" must not pick
    it on such input, which the exact test above checks): no non-finite output becomes finite, an Inf
    it gives has the reference's sign, and where it gives a finite number that number is right."""
    lost = np.isfinite(y) & ~np.isfinite(ref)
    assert not lost.any(), f"non-finite reference outputs came out finite at {np.argwhere(lost)[:5].tolist()}"
    inf = np.isinf(y)
    assert np.array_equal(y[inf], ref[inf]), "an Inf with the wrong sign, or where the reference is NaN"
    both = np.isfinite(y) & np.isfinite(ref)
    scale = np.max(np.abs(ref[both]), initial=0.0) + 1e-300
    reduction = (x.shape[1] // LAYERS[name][4]) * math.prod(LAYERS[name][5])
    err = np.max(np.abs(y[both] - ref[both]), initial=0.0) / scale
    assert err <= WINOGRAD_TOL * math.sqrt(reduction), f"finite outputs: rel err {err:.3g}"


def test_nan_in_padding_region_is_not_invented():
    """Zero padding adds zeros, not NaN: an input whose NaN sits where no window reaches gives no NaN."""
    x = np.ones((1, 1, 8), np.float32)
    x[0, 0, 7] = np.nan
    w = np.ones((1, 1, 3), np.float32)
    for algorithm in ("direct", "im2col", "auto"):  # (Winograd has no 1-D)
        y = fastconv.conv1d(x, w, stride=3, padding=1, algorithm=algorithm)  # windows at -1..1, 2..4, 5..7
        assert np.isnan(y[0, 0, 2]) and np.isfinite(y[0, 0, :2]).all(), (algorithm, y)
        y = fastconv.conv1d(x[..., :7], w, padding=5, algorithm=algorithm)
        assert np.isfinite(y).all(), algorithm


# ---------------------------------------------------------------------------------------------------
# Denormals

DENORMAL_RATIO = 10.0
_TINY = {np.float32: 1e-40, np.float64: 1e-310}  # below the smallest normal (1.2e-38, 2.2e-308)


def _best_time(fn, repeats):
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@pytest.mark.parametrize(
    "algorithm,dtype",
    [
        pytest.param(a, d, id=f"{a}-{'f32' if d == np.float32 else 'f64'}")
        for a in ALGORITHMS
        for d in DTYPES
        if a != "winograd" or (WINOGRAD and d == np.float32)
    ],
)
@pytest.mark.parametrize("where", ["denormal_input", "denormal_products"])
def test_denormals_do_not_slow_down(where, algorithm, dtype):
    rng = np.random.default_rng(42)
    w = rng.uniform(0.5, 1.0, (16, 16, 3, 3)).astype(dtype)
    x = rng.uniform(0.5, 1.0, (1, 16, 40, 40)).astype(dtype)
    if where == "denormal_input":  # every input denormal, weights normal
        x_slow, w_slow = (x * _TINY[dtype]).astype(dtype), w
        assert 0 < x_slow.min() and x_slow.max() < np.finfo(dtype).tiny
    else:  # normal operands whose products (and sums) are denormal
        scale = math.sqrt(_TINY[dtype])
        x_slow, w_slow = (x * scale).astype(dtype), (w * scale).astype(dtype)
        assert x_slow.min() > np.finfo(dtype).tiny and w_slow.min() > np.finfo(dtype).tiny

    def normal():
        fastconv.conv2d(x, w, padding=1, algorithm=algorithm, num_threads=1)

    def slow():
        fastconv.conv2d(x_slow, w_slow, padding=1, algorithm=algorithm, num_threads=1)

    try:
        normal(), slow()
    except ValueError as exc:
        if algorithm == "winograd" and "cannot run this layer" in str(exc):
            pytest.skip(str(exc))
        raise
    t_normal = t_slow = math.inf
    for _ in range(3):  # interleaved, so a burst of machine load hits both
        t_normal = min(t_normal, _best_time(normal, 3))
        t_slow = min(t_slow, _best_time(slow, 3))
    ratio = t_slow / t_normal
    print(
        f"\n{where} {algorithm} {np.dtype(dtype).name}: normal {t_normal * 1e3:.2f} ms, "
        f"denormal {t_slow * 1e3:.2f} ms, ratio {ratio:.1f}"
    )
    assert ratio < DENORMAL_RATIO, (
        f"{where}: {algorithm} {np.dtype(dtype).name} is {ratio:.1f}x slower on denormals "
        f"({t_slow * 1e3:.2f} ms vs {t_normal * 1e3:.2f} ms); flush-to-zero / denormals-are-zero needed"
    )
