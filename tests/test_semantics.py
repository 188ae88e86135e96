"""The semantics grid: fastconv against the float64 numpy reference (tests/reference.py).

Axes (forward): dims 1-3 x stride (1, 2, a per-dim tuple) x padding form (int, 0, per-dim tuple,
(begin, end) pairs symmetric and asymmetric, "valid", "same", "same_lower") x dilation (1, 2) x groups
(1, 2, depthwise groups=C_in, channel multiplier groups=C_in with C_out=2*C_in) x bias x layout
(channels_first, channels_last) x padding_mode (zeros, reflect, replicate, circular) x engine
(algorithm "direct" / "im2col" / "auto" x dtype float32 / float64). Transposed: the same without
padding_mode, plus output_padding (0 or the largest allowed) and output_size (none, spatial, with N, C).

The full product is far too large, so the grid is a covering design, fixed for every run:
  1. one-factor-at-a-time: a base case per dim count, each axis value swapped in alone, each of those
     against all six engines (so every value of every axis meets every algorithm and dtype);
  2. all pairs: a greedy pairwise covering array (fixed seed) over all axes, the engine being one
     axis of six values, so every pair of values of any two axes occurs at least once;
  3. a fixed-seed random sample of the full product, for higher-order interactions.
Then: unbatched input, layout aliases, non-contiguous / negatively strided / Fortran-ordered / read-only
arrays, out=, the plan API, zero-size batch and channels, ragged sizes, thread counts, threadpoolctl.
"""

from __future__ import annotations

import itertools
import math
import random
import zlib
from dataclasses import dataclass, fields

import fastconv
import numpy as np
import pytest
from reference import (
    conv_transpose_out_size,
    reference_conv,
    reference_conv_transpose,
    rel_err,
    resolve_padding,
    to_channels_first,
    to_channels_last,
)

# ---------------------------------------------------------------------------------------------------
# Tolerances, as max|y - ref| / (max|ref| + tiny) against the float64 reference, multiplied by
# sqrt(R), R = the reduction size of one output (C_in/groups * prod(kernel)).
# Why: each output is a sum of R products; the rounding errors of a sum behave like a random walk,
# so they grow ~ eps * sqrt(R) (eps = 6e-8 in float32, 1.1e-16 in float64). The constants leave one
# to two orders of magnitude of headroom over that, so a summation order, a blocking or a BLAS kernel
# choice never fails a test, while any indexing / padding / grouping bug (an O(1) error) always does.
# direct and im2col (BLAS sgemm/dgemm) round alike; "auto" only picks between them. A Winograd
# engine, when it comes, needs its own, larger float32 constant (DESIGN.md: 0.9-1.8x direct's error
# for F(2x2,3x3), more for larger tiles).
TOL_F32_DIRECT = 1e-5
TOL_F32_IM2COL = 1e-5
TOL_F32_AUTO = 1e-5
TOL_F64_DIRECT = 1e-12
TOL_F64_IM2COL = 1e-12
TOL_F64_AUTO = 1e-12

TOLERANCES = {
    ("direct", np.float32): TOL_F32_DIRECT,
    ("im2col", np.float32): TOL_F32_IM2COL,
    ("auto", np.float32): TOL_F32_AUTO,
    ("direct", np.float64): TOL_F64_DIRECT,
    ("im2col", np.float64): TOL_F64_IM2COL,
    ("auto", np.float64): TOL_F64_AUTO,
}

ALGORITHMS = ("direct", "im2col", "auto")
DTYPES = (np.float32, np.float64)
ENGINES = tuple(itertools.product(ALGORITHMS, ("f32", "f64")))
DTYPE_OF = {"f32": np.float32, "f64": np.float64}


def tolerance(algorithm, dtype, reduction):
    return TOLERANCES[(algorithm, np.dtype(dtype).type)] * math.sqrt(max(reduction, 1))


def conv_fn(nd):
    return getattr(fastconv, f"conv{nd}d")


def conv_transpose_fn(nd):
    return getattr(fastconv, f"conv_transpose{nd}d")


def seeded_rng(key: str):
    return np.random.default_rng(zlib.crc32(key.encode()))


def to_layout(x, layout, batched=True):
    return to_channels_last(x, batched) if layout == "channels_last" else x


def from_layout(y, layout, batched=True):
    return to_channels_first(y, batched) if layout == "channels_last" else y


# ---------------------------------------------------------------------------------------------------
# Concrete values of the axes

FWD_SIZES = {1: (13,), 2: (7, 9), 3: (5, 6, 7)}
FWD_KERNELS = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}  # even sizes make "same" asymmetric
TR_SIZES = {1: (6,), 2: (4, 5), 3: (3, 4, 3)}
TR_KERNELS = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}

STRIDES = {"1": {1: 1, 2: 1, 3: 1}, "2": {1: 2, 2: 2, 3: 2}, "tuple": {1: (3,), 2: (2, 1), 3: (1, 2, 3)}}
PADDINGS = {
    "int": {1: 1, 2: 1, 3: 1},
    "zero": {1: 0, 2: 0, 3: 0},
    "tuple": {1: (2,), 2: (1, 2), 3: (2, 0, 1)},
    "pairs": {1: ((1, 2),), 2: ((0, 2), (2, 1)), 3: ((1, 0), (0, 2), (2, 1))},
    "pairs_sym": {1: ((1, 1),), 2: ((1, 1), (2, 2)), 3: ((1, 1), (0, 0), (2, 2))},
    "valid": {1: "valid", 2: "valid", 3: "valid"},
    "same": {1: "same", 2: "same", 3: "same"},
    "same_lower": {1: "same_lower", 2: "same_lower", 3: "same_lower"},
}
# (C_in, C_out, groups)
GROUPS = {"1": (3, 4, 1), "2": (4, 6, 2), "depthwise": (4, 4, 4), "multiplier": (3, 6, 3)}
LAYOUTS = ("channels_first", "channels_last")
MODES = ("zeros", "reflect", "replicate", "circular")
BATCH = 2


@dataclass(frozen=True)
class Fwd:
    nd: int
    stride: str
    padding: str
    dilation: int
    groups: str
    bias: bool
    layout: str
    mode: str
    engine: tuple

    @property
    def id(self):
        return (
            f"{self.nd}d-s{self.stride}-p{self.padding}-d{self.dilation}-g{self.groups}-"
            f"{'b' if self.bias else 'nob'}-{'cl' if self.layout == 'channels_last' else 'cf'}-"
            f"{self.mode}-{self.engine[1]}-{self.engine[0]}"
        )


@dataclass(frozen=True)
class Tr:
    nd: int
    stride: str
    padding: str
    output_padding: str  # "0" or "max" (max(stride, dilation) - 1 per dim)
    dilation: int
    groups: str
    bias: bool
    layout: str
    output_size: str  # "none", "spatial" (nd ints), "full" (N, C prepended)
    engine: tuple

    @property
    def id(self):
        return (
            f"{self.nd}d-s{self.stride}-p{self.padding}-op{self.output_padding}-d{self.dilation}-"
            f"g{self.groups}-{'b' if self.bias else 'nob'}-"
            f"{'cl' if self.layout == 'channels_last' else 'cf'}-os{self.output_size}-"
            f"{self.engine[1]}-{self.engine[0]}"
        )


FWD_AXES = {
    "nd": (1, 2, 3),
    "stride": tuple(STRIDES),
    "padding": tuple(PADDINGS),
    "dilation": (1, 2),
    "groups": tuple(GROUPS),
    "bias": (True, False),
    "layout": LAYOUTS,
    "mode": MODES,
    "engine": ENGINES,
}
TR_AXES = {
    "nd": (1, 2, 3),
    "stride": tuple(STRIDES),
    "padding": tuple(PADDINGS),
    "output_padding": ("0", "max"),
    "dilation": (1, 2),
    "groups": tuple(GROUPS),
    "bias": (True, False),
    "layout": LAYOUTS,
    "output_size": ("none", "spatial", "full"),
    "engine": ENGINES,
}


def fwd_params(c: Fwd):
    stride = STRIDES[c.stride][c.nd]
    padding = PADDINGS[c.padding][c.nd]
    cin, cout, groups = GROUPS[c.groups]
    size, kernel = FWD_SIZES[c.nd], FWD_KERNELS[c.nd]
    pads = resolve_padding(padding, size, kernel, stride, c.dilation)
    return stride, padding, pads, cin, cout, groups, size, kernel


def fwd_valid(c: Fwd) -> bool:
    stride, padding, pads, cin, cout, groups, size, kernel = fwd_params(c)
    if c.mode == "reflect" and any(max(p) >= n for p, n in zip(pads, size, strict=True)):
        return False
    if c.mode == "circular" and any(max(p) > n for p, n in zip(pads, size, strict=True)):
        return False
    strides = (stride,) * c.nd if isinstance(stride, int) else stride
    return all(
        (n + pb + pe - c.dilation * (k - 1) - 1) // s + 1 >= 1
        for n, (pb, pe), k, s in zip(size, pads, kernel, strides, strict=True)
    )


def tr_params(c: Tr):
    stride = STRIDES[c.stride][c.nd]
    strides = (stride,) * c.nd if isinstance(stride, int) else stride
    padding = PADDINGS[c.padding][c.nd]
    op = tuple(max(s, c.dilation) - 1 for s in strides) if c.output_padding == "max" else (0,) * c.nd
    cin, cout, groups = GROUPS[c.groups]
    size, kernel = TR_SIZES[c.nd], TR_KERNELS[c.nd]
    pads = resolve_padding(padding, size, kernel, stride, c.dilation, transposed=True, output_padding=op)
    return stride, strides, padding, op, pads, cin, cout, groups, size, kernel


def tr_valid(c: Tr) -> bool:
    if c.output_size != "none" and c.padding in ("same", "same_lower"):
        return False  # "same" fixes the output at in*stride; output_size with it is not a contract form
    try:
        stride, strides, padding, op, pads, cin, cout, groups, size, kernel = tr_params(c)
    except ValueError:  # transposed "same" with a negative total padding
        return False
    return all(
        conv_transpose_out_size(n, k, s, c.dilation, pb, pe, o) >= 1
        for n, k, s, (pb, pe), o in zip(size, kernel, strides, pads, op, strict=True)
    )


def ofat_cases(cls, axes, base, valid):
    """Base case per dim count; each other axis value swapped in alone; each against every engine."""
    out = []
    for nd in axes["nd"]:
        b = dict(base, nd=nd)
        variants = [b]
        for name, values in axes.items():
            if name in ("nd", "engine"):
                continue
            variants += [dict(b, **{name: v}) for v in values]
        for v in variants:
            for engine in ENGINES:
                c = cls(**dict(v, engine=engine))
                if valid(c):
                    out.append(c)
    return out


def pairwise_cases(cls, axes, valid, seed, tries=200):
    """A greedy all-pairs covering array: every feasible pair of values of two axes in some case."""
    rng = random.Random(seed)
    names = list(axes)
    index = {n: i for i, n in enumerate(names)}
    uncovered = {
        ((a, va), (b, vb))
        for a, b in itertools.combinations(range(len(names)), 2)
        for va in range(len(axes[names[a]]))
        for vb in range(len(axes[names[b]]))
    }

    def make(row):
        return cls(**{n: axes[n][row[index[n]]] for n in names})

    def pairs_of(row):
        return {((a, row[a]), (b, row[b])) for a, b in itertools.combinations(range(len(names)), 2)}

    rows = []
    while uncovered:
        target = rng.choice(sorted(uncovered))
        best, best_gain = None, 0
        for _ in range(tries):
            row = [rng.randrange(len(axes[n])) for n in names]
            for a, va in target:
                row[a] = va
            c = make(row)
            if not valid(c):
                continue
            gain = len(pairs_of(row) & uncovered)
            if gain > best_gain:
                best, best_gain = row, gain
        if best is None:
            uncovered.discard(target)  # no valid case holds this pair
            continue
        uncovered -= pairs_of(best)
        rows.append(make(best))
    return rows


def random_cases(cls, axes, valid, seed, count):
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        c = cls(**{n: rng.choice(v) for n, v in axes.items()})
        if valid(c):
            out.append(c)
    return out


def dedupe(cases):
    return list(dict.fromkeys(cases))


FWD_BASE = dict(
    stride="1", padding="int", dilation=1, groups="1", bias=True, layout="channels_first", mode="zeros"
)
TR_BASE = dict(
    stride="2",
    padding="int",
    output_padding="0",
    dilation=1,
    groups="1",
    bias=True,
    layout="channels_first",
    output_size="none",
)

FWD_CASES = dedupe(
    ofat_cases(Fwd, FWD_AXES, FWD_BASE, fwd_valid)
    + pairwise_cases(Fwd, FWD_AXES, fwd_valid, seed=20240601)
    + random_cases(Fwd, FWD_AXES, fwd_valid, seed=777, count=80)
)
TR_CASES = dedupe(
    ofat_cases(Tr, TR_AXES, TR_BASE, tr_valid)
    + pairwise_cases(Tr, TR_AXES, tr_valid, seed=20240602)
    + random_cases(Tr, TR_AXES, tr_valid, seed=778, count=60)
)


def test_grid_covers_every_value_with_every_engine():
    """The covering design really does meet each axis value with each (algorithm, dtype)."""
    for cases, axes in ((FWD_CASES, FWD_AXES), (TR_CASES, TR_AXES)):
        seen = {(name, getattr(c, name), c.engine) for c in cases for name in axes}
        for name, values in axes.items():
            for v in values:
                for e in ENGINES:
                    assert (name, v, e) in seen or name == "engine", (name, v, e)


# ---------------------------------------------------------------------------------------------------
# The grid


def check_forward(c: Fwd, *, num_threads=None):
    algorithm, dtype = c.engine[0], DTYPE_OF[c.engine[1]]
    stride, padding, pads, cin, cout, groups, size, kernel = fwd_params(c)
    rng = seeded_rng(c.id)
    x = rng.standard_normal((BATCH, cin) + size).astype(dtype)
    w = rng.standard_normal((cout, cin // groups) + kernel).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype) if c.bias else None
    ref = reference_conv(x, w, b, stride, pads, c.dilation, groups, c.mode)
    y = conv_fn(c.nd)(
        to_layout(x, c.layout),
        w,
        b,
        stride,
        padding,
        c.dilation,
        groups,
        padding_mode=c.mode,
        layout=c.layout,
        algorithm=algorithm,
        num_threads=num_threads,
    )
    assert isinstance(y, np.ndarray) and y.dtype == dtype
    expect_shape = ref.shape if c.layout == "channels_first" else to_channels_last(ref).shape
    assert y.shape == expect_shape
    err = rel_err(from_layout(y, c.layout), ref)
    tol = tolerance(algorithm, dtype, cin // groups * math.prod(kernel))
    assert err <= tol, f"{c.id}: rel err {err:.3g} > {tol:.3g} (pads {pads})"


def check_transpose(c: Tr):
    algorithm, dtype = c.engine[0], DTYPE_OF[c.engine[1]]
    stride, strides, padding, op, pads, cin, cout, groups, size, kernel = tr_params(c)
    rng = seeded_rng(c.id)
    x = rng.standard_normal((BATCH, cin) + size).astype(dtype)
    w = rng.standard_normal((cin, cout // groups) + kernel).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype) if c.bias else None
    ref = reference_conv_transpose(x, w, b, stride, pads, op, groups, c.dilation)
    kwargs = dict(layout=c.layout, algorithm=algorithm)
    if c.output_size == "none":
        args = (stride, padding, op, groups, c.dilation)
    else:
        # output_size replaces output_padding: pass the size the reference computes with op
        args = (stride, padding, 0, groups, c.dilation)
        spatial = ref.shape[2:]
        kwargs["output_size"] = spatial if c.output_size == "spatial" else (BATCH, cout) + spatial
    y = conv_transpose_fn(c.nd)(to_layout(x, c.layout), w, b, *args, **kwargs)
    assert isinstance(y, np.ndarray) and y.dtype == dtype
    expect_shape = ref.shape if c.layout == "channels_first" else to_channels_last(ref).shape
    assert y.shape == expect_shape
    err = rel_err(from_layout(y, c.layout), ref)
    tol = tolerance(algorithm, dtype, cin // groups * math.prod(kernel))
    assert err <= tol, f"{c.id}: rel err {err:.3g} > {tol:.3g} (pads {pads}, output_padding {op})"


@pytest.mark.parametrize("case", FWD_CASES, ids=[c.id for c in FWD_CASES])
def test_forward_grid(case):
    check_forward(case)


@pytest.mark.parametrize("case", TR_CASES, ids=[c.id for c in TR_CASES])
def test_transpose_grid(case):
    check_transpose(case)


# ---------------------------------------------------------------------------------------------------
# Unbatched inputs and layout aliases


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_unbatched_forward(nd, layout, algorithm):
    rng = seeded_rng(f"unbatched-{nd}-{layout}-{algorithm}")
    size, kernel = FWD_SIZES[nd], FWD_KERNELS[nd]
    x = rng.standard_normal((4,) + size)
    w = rng.standard_normal((6, 2) + kernel)
    b = rng.standard_normal(6)
    ref = reference_conv(x[None], w, b, 2, resolve_padding("same", size, kernel, 2), 1, 2)[0]
    y = conv_fn(nd)(
        to_layout(x, layout, batched=False), w, b, 2, "same", 1, 2, layout=layout, algorithm=algorithm
    )
    assert y.ndim == nd + 1
    assert rel_err(from_layout(y, layout, batched=False), ref) <= tolerance(algorithm, np.float64, 2 * 6)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_unbatched_transpose(nd, layout, algorithm):
    rng = seeded_rng(f"unbatched-tr-{nd}-{layout}-{algorithm}")
    size, kernel = TR_SIZES[nd], TR_KERNELS[nd]
    x = rng.standard_normal((4,) + size).astype(np.float32)
    w = rng.standard_normal((4, 3) + kernel).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    ref = reference_conv_transpose(x[None], w, b, 2, resolve_padding(1, size, kernel), 1, 2, 1)[0]
    y = conv_transpose_fn(nd)(
        to_layout(x, layout, batched=False), w, b, 2, 1, 1, 2, 1, layout=layout, algorithm=algorithm
    )
    assert y.ndim == nd + 1 and y.dtype == np.float32
    assert rel_err(from_layout(y, layout, batched=False), ref) <= tolerance(algorithm, np.float32, 2 * 6)


LAYOUT_ALIASES = {1: ("NCW", "NWC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_layout_aliases(nd):
    rng = seeded_rng(f"alias-{nd}")
    size, kernel = FWD_SIZES[nd], FWD_KERNELS[nd]
    x = rng.standard_normal((2, 3) + size)
    w = rng.standard_normal((5, 3) + kernel)
    first, last = LAYOUT_ALIASES[nd]
    ref = reference_conv(x, w, None, 1, resolve_padding(1, size, kernel), 1, 1)
    y_first = conv_fn(nd)(x, w, None, 1, 1, layout=first)
    y_last = conv_fn(nd)(to_channels_last(x), w, None, 1, 1, layout=last)
    assert rel_err(y_first, ref) <= tolerance("auto", np.float64, 3 * 6)
    assert rel_err(to_channels_first(y_last), ref) <= tolerance("auto", np.float64, 3 * 6)
    wt = rng.standard_normal((3, 2) + kernel)
    ref_t = reference_conv_transpose(x, wt, None, 2, resolve_padding(0, size, kernel), 0, 1, 1)
    yt = conv_transpose_fn(nd)(to_channels_last(x), wt, None, 2, layout=last)
    assert rel_err(to_channels_first(yt), ref_t) <= tolerance("auto", np.float64, 3 * 6)


# ---------------------------------------------------------------------------------------------------
# Memory layouts of the inputs: non-contiguous, negative strides, Fortran order, read-only


def strided_view(a):
    """The same values, every other element of a twice-as-large buffer along the last axis."""
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    big[..., ::2] = a
    v = big[..., ::2]
    assert not v.flags.c_contiguous or a.shape[-1] <= 1
    return v


def negative_view(a):
    """The same values through a view with negative strides on every axis."""
    flipped = np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])
    return flipped[(slice(None, None, -1),) * a.ndim]


def fortran(a):
    return np.asfortranarray(a)


def readonly(a):
    a = a.copy()
    a.setflags(write=False)
    return a


def transposed_view(a):
    """C-ordered in a permuted axis order, viewed back: strides not in descending order."""
    perm = tuple(reversed(range(a.ndim)))
    return np.ascontiguousarray(a.transpose(perm)).transpose(perm)


MEMORY_KINDS = {
    "strided": strided_view,
    "negative": negative_view,
    "fortran": fortran,
    "readonly": readonly,
    "permuted": transposed_view,
}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("kind", list(MEMORY_KINDS))
@pytest.mark.parametrize("transposed", [False, True], ids=["fwd", "tr"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_memory_layouts(nd, transposed, kind, algorithm):
    rng = seeded_rng(f"mem-{nd}-{transposed}-{kind}-{algorithm}")
    size = FWD_SIZES[nd] if not transposed else TR_SIZES[nd]
    kernel = FWD_KERNELS[nd]
    x = rng.standard_normal((2, 4) + size).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    make = MEMORY_KINDS[kind]
    if transposed:
        w = rng.standard_normal((4, 3) + kernel).astype(np.float32)
        ref = reference_conv_transpose(x, w, b, 2, resolve_padding(1, size, kernel), 1, 2, 1)
        y = conv_transpose_fn(nd)(make(x), make(w), make(b), 2, 1, 1, 2, algorithm=algorithm)
    else:
        w = rng.standard_normal((6, 2) + kernel).astype(np.float32)
        ref = reference_conv(x, w, b, 1, resolve_padding("same", size, kernel, 1, 2), 2, 2, "reflect")
        y = conv_fn(nd)(
            make(x), make(w), make(b), 1, "same", 2, 2, padding_mode="reflect", algorithm=algorithm
        )
    assert rel_err(y, ref) <= tolerance(algorithm, np.float32, 2 * math.prod(kernel))


@pytest.mark.parametrize("kind", list(MEMORY_KINDS))
def test_memory_layouts_channels_last(kind):
    """A channels-last input that is itself a non-contiguous / odd view."""
    rng = seeded_rng(f"mem-cl-{kind}")
    x = rng.standard_normal((2, 4, 7, 9))
    w = rng.standard_normal((5, 4, 3, 3))
    ref = reference_conv(x, w, None, 2, resolve_padding(1, (7, 9), (3, 3)), 1, 1)
    xl = MEMORY_KINDS[kind](to_channels_last(x))
    y = fastconv.conv2d(xl, w, None, 2, 1, layout="channels_last")
    assert rel_err(to_channels_first(y), ref) <= tolerance("auto", np.float64, 36)


def test_inputs_not_modified():
    rng = seeded_rng("not-modified")
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    copies = [a.copy() for a in (x, w, b)]
    for algorithm in ALGORITHMS:
        fastconv.conv2d(x, w, b, 1, "same", padding_mode="circular", algorithm=algorithm)
        fastconv.conv_transpose2d(x, w.transpose(1, 0, 2, 3).copy(), None, 2, 1, 1, algorithm=algorithm)
    for a, c in zip((x, w, b), copies, strict=True):
        np.testing.assert_array_equal(a, c)


# ---------------------------------------------------------------------------------------------------
# out=


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("transposed", [False, True], ids=["fwd", "tr"])
def test_out_argument(transposed, layout, dtype, algorithm):
    rng = seeded_rng(f"out-{transposed}-{layout}-{np.dtype(dtype).name}-{algorithm}")
    x = rng.standard_normal((2, 4, 6, 7)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    if transposed:
        w = rng.standard_normal((4, 3, 3, 2)).astype(dtype)
        ref = reference_conv_transpose(x, w, b, (2, 1), ((1, 1), (0, 0)), (1, 0), 2, 1)
        fn = lambda **kw: fastconv.conv_transpose2d(  # noqa: E731
            to_layout(x, layout),
            w,
            b,
            (2, 1),
            (1, 0),
            (1, 0),
            2,
            padding_mode="zeros",
            layout=layout,
            algorithm=algorithm,
            **kw,
        )
    else:
        w = rng.standard_normal((6, 2, 3, 2)).astype(dtype)
        ref = reference_conv(x, w, b, 1, resolve_padding("same", (6, 7), (3, 2)), 1, 2)
        fn = lambda **kw: fastconv.conv2d(  # noqa: E731
            to_layout(x, layout), w, b, 1, "same", 1, 2, layout=layout, algorithm=algorithm, **kw
        )
    shape = ref.shape if layout == "channels_first" else to_channels_last(ref).shape
    out = np.full(shape, np.nan, dtype=dtype)
    y = fn(out=out)
    assert y is out
    assert not np.isnan(out).any()
    assert rel_err(from_layout(out, layout), ref) <= tolerance(algorithm, dtype, 12)
    # a second call into the same buffer overwrites, never accumulates
    y2 = fn(out=out)
    assert y2 is out
    assert rel_err(from_layout(out, layout), ref) <= tolerance(algorithm, dtype, 12)


# ---------------------------------------------------------------------------------------------------
# The plan API


PLAN_FORWARD = [
    # nd, stride, padding, dilation, (C_in, C_out, groups), padding_mode, layout
    (1, 2, "same", 1, GROUPS["1"], "zeros", "channels_first"),
    (2, 1, ((0, 2), (1, 0)), 2, GROUPS["2"], "zeros", "channels_last"),
    (2, (2, 1), "same_lower", 1, GROUPS["depthwise"], "reflect", "channels_first"),
    (2, 1, 1, 1, GROUPS["multiplier"], "circular", "channels_last"),
    (3, (1, 2, 1), (1, 0, 1), 1, GROUPS["1"], "replicate", "channels_first"),
]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("spec", PLAN_FORWARD, ids=[f"{s[0]}d-{i}" for i, s in enumerate(PLAN_FORWARD)])
def test_plan_forward(spec, algorithm):
    nd, stride, padding, dilation, (cin, cout, groups), mode, layout = spec
    rng = seeded_rng(f"plan-{spec}-{algorithm}")
    kernel = FWD_KERNELS[nd]
    w = rng.standard_normal((cout, cin // groups) + kernel).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    plan = fastconv.Convolution(
        w, b, stride, padding, dilation, groups, padding_mode=mode, layout=layout, algorithm=algorithm
    )
    sizes = [FWD_SIZES[nd], tuple(n + 3 for n in FWD_SIZES[nd])]
    for size in sizes + sizes[:1]:  # back to the first size too
        x = rng.standard_normal((2, cin) + size).astype(np.float32)
        pads = resolve_padding(padding, size, kernel, stride, dilation)
        ref = reference_conv(x, w, b, stride, pads, dilation, groups, mode)
        y = plan(to_layout(x, layout))
        y_fn = conv_fn(nd)(
            to_layout(x, layout),
            w,
            b,
            stride,
            padding,
            dilation,
            groups,
            padding_mode=mode,
            layout=layout,
            algorithm=algorithm,
        )
        assert y.dtype == np.float32 and y.shape == y_fn.shape
        assert rel_err(from_layout(y, layout), ref) <= tolerance(algorithm, np.float32, cin // groups * 6)
        assert rel_err(y, y_fn) <= tolerance(algorithm, np.float32, cin // groups * 6)
        assert isinstance(plan.algorithm, str) and plan.algorithm
        if algorithm != "auto":
            assert plan.algorithm == algorithm
        # out= on a plan
        out = np.empty_like(y)
        assert plan(to_layout(x, layout), out=out) is out
        np.testing.assert_array_equal(out, y)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_plan_transposed(nd, algorithm):
    rng = seeded_rng(f"plan-tr-{nd}-{algorithm}")
    kernel = TR_KERNELS[nd]
    w = rng.standard_normal((4, 3) + kernel)
    b = rng.standard_normal(6)
    plan = fastconv.Convolution(w, b, 2, 1, 1, 2, transposed=True, output_padding=1, algorithm=algorithm)
    for size in (TR_SIZES[nd], tuple(n + 2 for n in TR_SIZES[nd])):
        x = rng.standard_normal((2, 4) + size)
        pads = resolve_padding(1, size, kernel)
        ref = reference_conv_transpose(x, w, b, 2, pads, 1, 2, 1)
        y = plan(x)
        y_fn = conv_transpose_fn(nd)(x, w, b, 2, 1, 1, 2, algorithm=algorithm)
        assert rel_err(y, ref) <= tolerance(algorithm, np.float64, 2 * math.prod(kernel))
        assert rel_err(y, y_fn) <= tolerance(algorithm, np.float64, 2 * math.prod(kernel))
    # output_size on a transposed plan
    plan0 = fastconv.Convolution(w, None, 2, 1, 1, 2, transposed=True, algorithm=algorithm)
    x = rng.standard_normal((1, 4) + TR_SIZES[nd])
    pads = resolve_padding(1, TR_SIZES[nd], kernel)
    ref = reference_conv_transpose(x, w, None, 2, pads, 1, 2, 1)
    y = plan0(x, output_size=ref.shape[2:])
    assert rel_err(y, ref) <= tolerance(algorithm, np.float64, 2 * math.prod(kernel))


def test_plan_unbatched_and_dtype():
    rng = seeded_rng("plan-unbatched")
    w = rng.standard_normal((5, 3, 3, 3))
    plan = fastconv.Convolution(w, None, 1, "same")
    x = rng.standard_normal((3, 8, 6))
    ref = reference_conv(x[None], w, None, 1, resolve_padding("same", (8, 6), (3, 3)), 1, 1)[0]
    y = plan(x)
    assert y.shape == (5, 8, 6) and y.dtype == np.float64
    assert rel_err(y, ref) <= tolerance("auto", np.float64, 27)


# ---------------------------------------------------------------------------------------------------
# Zero-size batch and channels


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_zero_batch(nd, layout, algorithm):
    size, kernel = FWD_SIZES[nd], FWD_KERNELS[nd]
    x = np.zeros((0, 3) + size, dtype=np.float32)
    w = np.ones((4, 3) + kernel, dtype=np.float32)
    b = np.ones(4, dtype=np.float32)
    ref = reference_conv(x, w, b, 2, resolve_padding("same", size, kernel, 2), 1, 1)
    y = conv_fn(nd)(to_layout(x, layout), w, b, 2, "same", layout=layout, algorithm=algorithm)
    assert y.dtype == np.float32
    assert from_layout(y, layout).shape == ref.shape and y.size == 0
    wt = np.ones((3, 2) + kernel, dtype=np.float32)
    ref_t = reference_conv_transpose(x, wt, None, 2, resolve_padding(0, size, kernel), 1, 1, 1)
    yt = conv_transpose_fn(nd)(to_layout(x, layout), wt, None, 2, 0, 1, layout=layout, algorithm=algorithm)
    assert from_layout(yt, layout).shape == ref_t.shape and yt.size == 0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_zero_input_channels(nd, bias, algorithm):
    """C_in = 0, C_out > 0: the output is the bias (or zeros), of the right shape."""
    size, kernel = FWD_SIZES[nd], FWD_KERNELS[nd]
    x = np.zeros((2, 0) + size)
    w = np.zeros((4, 0) + kernel)
    b = np.arange(1.0, 5.0) if bias else None
    ref = reference_conv(x, w, b, 1, resolve_padding(1, size, kernel), 1, 1)
    y = conv_fn(nd)(x, w, b, 1, 1, algorithm=algorithm)
    assert y.shape == ref.shape
    np.testing.assert_array_equal(y, ref)
    # transposed: weight (0, C_out, *k)
    wt = np.zeros((0, 4) + kernel)
    ref_t = reference_conv_transpose(x, wt, b, 2, resolve_padding(0, size, kernel), 0, 1, 1)
    yt = conv_transpose_fn(nd)(x, wt, b, 2, algorithm=algorithm)
    assert yt.shape == ref_t.shape
    np.testing.assert_array_equal(yt, ref_t)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_zero_output_channels(nd, algorithm):
    size, kernel = FWD_SIZES[nd], FWD_KERNELS[nd]
    x = np.ones((2, 3) + size, dtype=np.float32)
    w = np.ones((0, 3) + kernel, dtype=np.float32)
    b = np.ones(0, dtype=np.float32)
    y = conv_fn(nd)(x, w, b, 1, "same", algorithm=algorithm)
    assert y.shape == (2, 0) + size and y.dtype == np.float32
    wt = np.ones((3, 0) + kernel, dtype=np.float32)
    yt = conv_transpose_fn(nd)(x, wt, None, 1, algorithm=algorithm)
    out_t = tuple(n + k - 1 for n, k in zip(size, kernel, strict=True))
    assert yt.shape == (2, 0) + out_t


def test_zero_size_out_argument():
    x = np.zeros((0, 3, 5, 5), dtype=np.float32)
    w = np.ones((4, 3, 3, 3), dtype=np.float32)
    out = np.empty((0, 4, 3, 3), dtype=np.float32)
    assert fastconv.conv2d(x, w, out=out) is out


# ---------------------------------------------------------------------------------------------------
# Ragged sizes: channel counts and widths that are not multiples of any vector width or tile


RAGGED_CHANNELS = (1, 3, 7, 9, 17, 33)
RAGGED_WIDTHS = (1, 2, 5, 15, 17, 31)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("width", RAGGED_WIDTHS)
@pytest.mark.parametrize("channels", RAGGED_CHANNELS)
def test_ragged_conv2d(channels, width, algorithm):
    rng = seeded_rng(f"ragged-{channels}-{width}-{algorithm}")
    cout = RAGGED_CHANNELS[(RAGGED_CHANNELS.index(channels) + 2) % len(RAGGED_CHANNELS)]
    x = rng.standard_normal((1, channels, 3, width)).astype(np.float32)
    w = rng.standard_normal((cout, channels, 3, 3)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    ref = reference_conv(x, w, b, 1, ((1, 1), (1, 1)), 1, 1)
    y = fastconv.conv2d(x, w, b, 1, 1, algorithm=algorithm)
    assert rel_err(y, ref) <= tolerance(algorithm, np.float32, channels * 9), (channels, cout, width)
    # channels-last and depthwise on the same ragged shape
    yl = fastconv.conv2d(to_channels_last(x), w, b, 1, 1, layout="channels_last", algorithm=algorithm)
    assert rel_err(to_channels_first(yl), ref) <= tolerance(algorithm, np.float32, channels * 9)
    wd = rng.standard_normal((channels, 1, 3, 3)).astype(np.float32)
    ref_d = reference_conv(x, wd, None, 1, ((1, 1), (1, 1)), 1, channels)
    yd = fastconv.conv2d(x, wd, None, 1, 1, 1, channels, algorithm=algorithm)
    assert rel_err(yd, ref_d) <= tolerance(algorithm, np.float32, 9)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("channels", RAGGED_CHANNELS)
def test_ragged_1d_3d_and_transposed(channels, algorithm):
    rng = seeded_rng(f"ragged-nd-{channels}-{algorithm}")
    for width in RAGGED_WIDTHS:
        x1 = rng.standard_normal((2, channels, width)).astype(np.float32)
        w1 = rng.standard_normal((5, channels, 3)).astype(np.float32)
        ref1 = reference_conv(x1, w1, None, 1, resolve_padding("same", (width,), (3,)), 1, 1)
        y1 = fastconv.conv1d(x1, w1, None, 1, "same", algorithm=algorithm)
        assert rel_err(y1, ref1) <= tolerance(algorithm, np.float32, channels * 3), width
        wt = rng.standard_normal((channels, 3, 2, 3)).astype(np.float32)
        xt = rng.standard_normal((1, channels, 2, width)).astype(np.float32)
        ref_t = reference_conv_transpose(xt, wt, None, 2, ((0, 0), (1, 1)), 0, 1, 1)
        yt = fastconv.conv_transpose2d(xt, wt, None, 2, (0, 1), algorithm=algorithm)
        assert rel_err(yt, ref_t) <= tolerance(algorithm, np.float32, channels * 6), width
    x3 = rng.standard_normal((1, channels, 3, 4, 5)).astype(np.float32)
    w3 = rng.standard_normal((3, channels, 2, 2, 2)).astype(np.float32)
    ref3 = reference_conv(x3, w3, None, 1, ((0, 0),) * 3, 1, 1)
    y3 = fastconv.conv3d(x3, w3, algorithm=algorithm)
    assert rel_err(y3, ref3) <= tolerance(algorithm, np.float32, channels * 8)


# ---------------------------------------------------------------------------------------------------
# Threads


THREAD_LAYERS = {
    # name: (x shape, w shape, stride, padding, dilation, groups, transposed)
    "dense": ((2, 16, 20, 21), (24, 16, 3, 3), 1, 1, 1, 1, False),
    "strided": ((3, 8, 19, 17), (16, 8, 3, 3), 2, "same", 1, 1, False),
    "depthwise": ((1, 32, 23, 20), (32, 1, 3, 3), 1, 1, 1, 32, False),
    "grouped_dilated": ((2, 12, 18, 18), (12, 3, 3, 3), 1, 2, 2, 4, False),
    "pointwise": ((1, 40, 15, 15), (24, 40, 1, 1), 1, 0, 1, 1, False),
    "conv1d": ((2, 16, 257), (16, 16, 5), 1, 2, 1, 1, False),
    "conv3d": ((1, 4, 9, 10, 11), (8, 4, 3, 3, 3), 1, 1, 1, 1, False),
    "transposed": ((2, 16, 11, 12), (16, 8, 4, 4), 2, 1, 1, 1, True),
}


def _thread_run(name, algorithm, dtype, num_threads=None, layout="channels_first"):
    xs, ws, stride, padding, dilation, groups, transposed = THREAD_LAYERS[name]
    rng = seeded_rng(f"threads-{name}")
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[1] * groups if transposed else ws[0]).astype(dtype)
    nd = len(xs) - 2
    if transposed:
        return conv_transpose_fn(nd)(
            to_layout(x, layout),
            w,
            b,
            stride,
            padding,
            0,
            groups,
            dilation,
            layout=layout,
            algorithm=algorithm,
            num_threads=num_threads,
        )
    return conv_fn(nd)(
        to_layout(x, layout),
        w,
        b,
        stride,
        padding,
        dilation,
        groups,
        layout=layout,
        algorithm=algorithm,
        num_threads=num_threads,
    )


def _thread_tol(name, algorithm, dtype):
    _, ws, *_ = THREAD_LAYERS[name]
    return tolerance(algorithm, dtype, math.prod(ws[1:]) if not THREAD_LAYERS[name][-1] else ws[0] * 16)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(THREAD_LAYERS))
def test_threads_direct_bitwise(name, dtype, layout):
    """direct splits work over threads without changing any sum's order: 1 thread == 2 threads, bitwise."""
    y1 = _thread_run(name, "direct", dtype, 1, layout)
    y2 = _thread_run(name, "direct", dtype, 2, layout)
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("algorithm", ["im2col", "auto"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(THREAD_LAYERS))
def test_threads_im2col_tolerance(name, dtype, algorithm):
    """BLAS may block differently with more threads: 1 thread == 2 threads to the grid's tolerance."""
    y1 = _thread_run(name, algorithm, dtype, 1)
    y2 = _thread_run(name, algorithm, dtype, 2)
    assert rel_err(y2, y1) <= _thread_tol(name, algorithm, dtype)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_threadpool_limits(algorithm):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    names = ["dense", "depthwise", "transposed", "conv1d"]
    free = {n: _thread_run(n, algorithm, np.float32) for n in names}
    with threadpoolctl.threadpool_limits(1):
        limited = {n: _thread_run(n, algorithm, np.float32) for n in names}
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        blas_limited = {n: _thread_run(n, algorithm, np.float32) for n in names}
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        omp_limited = {n: _thread_run(n, algorithm, np.float32, num_threads=2) for n in names}
    after = {n: _thread_run(n, algorithm, np.float32) for n in names}
    for n in names:
        tol = _thread_tol(n, algorithm, np.float32)
        for other in (limited, blas_limited, omp_limited, after):
            if algorithm == "direct":
                np.testing.assert_array_equal(other[n], free[n])
            else:
                assert rel_err(other[n], free[n]) <= tol, n
    # the reference agrees too, under the limit
    xs, ws, *_ = THREAD_LAYERS["dense"]
    rng = seeded_rng("threads-dense")
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    ref = reference_conv(x, w, b, 1, 1, 1, 1)
    assert rel_err(limited["dense"], ref) <= _thread_tol("dense", algorithm, np.float32)


def test_case_dataclasses_have_all_axes():
    assert [f.name for f in fields(Fwd)] == list(FWD_AXES)
    assert [f.name for f in fields(Tr)] == list(TR_AXES)
