"""fastconv.correlate / convolve / correlate2d / convolve2d against scipy.signal (and scipy.ndimage).

The reference is scipy in float64 on the same (float32-rounded, for float32 cases) inputs. Tolerances:
- direct and separable: |got - ref| <= rtol * corr(|in1|, |in2|) elementwise (the sum of the magnitudes
  of the products, which bounds the rounding error), rtol 1e-5 for float32, 1e-12 for float64;
- fft: |got - ref| <= rtol * max |ref| (FFT error spreads evenly over the output), rtol 1e-5 for
  float32, 1e-12 for float64.
"""

import itertools

import numpy as np
import pytest

scipy_signal = pytest.importorskip("scipy.signal")
ndimage = pytest.importorskip("scipy.ndimage")

import fastconv  # noqa: E402
from fastconv import _fft_library as fft_library  # noqa: E402
from fastconv import kernels  # noqa: E402
from fastconv import signal as fs  # noqa: E402

RTOL = {
    ("direct", np.float32): 1e-5,
    ("direct", np.float64): 1e-12,
    ("fft", np.float32): 1e-5,
    ("fft", np.float64): 1e-12,
}

SHAPES = {
    1: [
        ((1,), (1,)),
        ((1,), (3,)),
        ((5,), (1,)),
        ((7,), (3,)),
        ((8,), (4,)),
        ((10,), (10,)),
        ((3,), (8,)),
        ((2,), (5,)),
        ((33,), (7,)),
        ((64,), (16,)),
    ],
    2: [
        ((1, 1), (1, 1)),
        ((5, 6), (3, 3)),
        ((8, 7), (4, 2)),
        ((9, 9), (2, 5)),
        ((3, 4), (6, 7)),
        ((4, 3), (4, 3)),
        ((17, 13), (5, 4)),
        ((2, 9), (3, 2)),
        ((1, 6), (1, 3)),
        ((12, 10), (1, 1)),
        ((6, 5), (6, 8)),
    ],
    3: [
        ((4, 5, 6), (3, 2, 3)),
        ((2, 3, 2), (3, 4, 3)),
        ((6, 6, 6), (2, 2, 2)),
        ((1, 1, 1), (1, 1, 1)),
        ((5, 4, 7), (1, 3, 2)),
    ],
}
CASES = [(nd, i, xs, ws) for nd, rows in SHAPES.items() for i, (xs, ws) in enumerate(rows)]
MODES = ("full", "same", "valid")
DTYPES = (np.float32, np.float64)


def data(x_shape, w_shape, dtype, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)


def check(got, ref, x, w, dtype, method, scale=None):
    assert got.dtype == dtype
    assert got.shape == ref.shape
    kind = "fft" if method == "fft" else "direct"
    rtol = RTOL[(kind, dtype)]
    if kind == "fft":
        bound = rtol * max(np.abs(ref).max(initial=0.0), 1e-30)
    else:
        bound = rtol * scale + 1e-30
    err = np.abs(got.astype(np.float64) - ref)
    assert np.all(err <= bound), f"max error {err.max():.3g}, bound {np.max(bound):.3g}"


def scale_of(fn, x, w, mode):
    """corr(|x|, |w|) on the reference's lags: the error bound of a direct sum."""
    return np.abs(fn(np.abs(x.astype(np.float64)), np.abs(w.astype(np.float64)), mode))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nd,i,x_shape,w_shape", CASES, ids=[f"{c[0]}d-{c[1]}" for c in CASES])
def test_correlate_convolve_match_scipy(nd, i, x_shape, w_shape, mode, dtype):
    x, w = data(x_shape, w_shape, dtype, seed=100 * nd + i)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    for name in ("correlate", "convolve"):
        ours, theirs = getattr(fastconv, name), getattr(scipy_signal, name)
        try:
            ref = theirs(x64, w64, mode=mode, method="direct")
        except ValueError:
            with pytest.raises(ValueError, match="one input must be at least as large"):
                ours(x, w, mode)
            continue
        scale = scale_of(lambda a, b, m, f=theirs: f(a, b, mode=m, method="direct"), x, w, mode)
        for method in ("direct", "fft", "auto"):
            got = ours(x, w, mode, method)
            check(got, ref, x, w, dtype, method if method != "auto" else "fft", scale)


BOUNDARIES = [("fill", 0), ("fill", 1.5), ("wrap", 0), ("symm", 0)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary,fillvalue", BOUNDARIES, ids=[f"{b}{f}" for b, f in BOUNDARIES])
@pytest.mark.parametrize("mode", MODES)
def test_correlate2d_convolve2d_match_scipy(mode, boundary, fillvalue, dtype):
    shapes = SHAPES[2] + [((2, 3), (9, 8)), ((3, 2), (4, 11))]  # pads much wider than the input
    for i, (x_shape, w_shape) in enumerate(shapes):
        x, w = data(x_shape, w_shape, dtype, seed=7 + i)
        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        for name in ("correlate2d", "convolve2d"):
            ours, theirs = getattr(fastconv, name), getattr(scipy_signal, name)
            try:
                ref = theirs(x64, w64, mode=mode, boundary=boundary, fillvalue=fillvalue)
            except ValueError:
                with pytest.raises(ValueError):
                    ours(x, w, mode, boundary, fillvalue)
                continue
            scale = np.abs(
                theirs(np.abs(x64), np.abs(w64), mode=mode, boundary=boundary, fillvalue=abs(fillvalue))
            )
            for method in ("direct", "fft", "auto"):
                got = ours(x, w, mode, boundary, fillvalue, method=method)
                check(got, ref, x, w, dtype, method if method != "auto" else "fft", scale)


def test_even_kernel_same_alignment():
    """correlate/convolve 'same' put an even kernel's extra tap before the output point; scipy's
    correlate2d the other way. Checked exactly on an impulse."""
    x = np.zeros(7)
    x[3] = 1.0
    w = np.array([1.0, 2.0, 3.0, 4.0])
    assert np.array_equal(fastconv.correlate(x, w, "same"), scipy_signal.correlate(x, w, "same"))
    assert np.array_equal(fastconv.convolve(x, w, "same"), scipy_signal.convolve(x, w, "same"))
    x2, w2 = x[None, :], w[None, :]
    assert np.array_equal(fastconv.correlate2d(x2, w2, "same"), scipy_signal.correlate2d(x2, w2, "same"))
    assert not np.array_equal(fastconv.correlate2d(x2, w2, "same"), fastconv.correlate(x2, w2, "same"))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_fft_overlap_save_tiles(nd):
    """The tiled FFT path (many blocks per axis) against scipy.signal.fftconvolve and correlate."""
    shapes = {1: ((2000,), (31,)), 2: ((70, 90), (9, 6)), 3: ((20, 18, 22), (3, 5, 4))}
    blocks = {1: (64,), 2: (24, 16), 3: (8, 12, 8)}
    x, w = data(*shapes[nd], np.float64, seed=nd)
    for mode in MODES:
        lags = fs._lags(mode, x.shape, w.shape, "test")
        out = [hi - lo for lo, hi in lags]
        combo = tuple((b, -(-m // (b - k + 1))) for b, m, k in zip(blocks[nd], out, w.shape, strict=True))
        assert all(t > 1 for _, t in combo)
        got = fs._fft(x, w, lags, combo)
        ref = scipy_signal.correlate(x, w, mode=mode, method="direct")
        check(got, ref, x, w, np.float64, "fft")
        conv = scipy_signal.fftconvolve(x, fs._flip(w), mode=mode)
        check(got, conv, x, w, np.float64, "fft")


# (in1 shape, in2 shape, tile sizes) for the overlap-save tiling's edge cases
FFT_TILINGS = [
    ((5,), (3,), (16,)),  # input smaller than one tile
    ((2000,), (31,), (64,)),  # a long signal in many tiles, the last one ragged
    ((1000,), (8,), (32,)),  # an even kernel
    ((7, 9), (3, 4), (16, 16)),  # one tile
    ((70, 90), (9, 6), (24, 16)),  # ragged last tiles on both axes
    ((64, 45), (5, 7), (20, 16)),  # tiles that end exactly at the output's edge on axis 0
    ((3, 40), (5, 7), (8, 16)),  # the kernel larger than the input on axis 0
    ((4, 5), (9, 8), (16, 16)),  # the kernel larger than the input on both axes
    ((20, 18, 22), (3, 5, 4), (8, 12, 8)),  # 3-D
    ((3, 4, 2), (2, 3, 2), (4, 4, 4)),  # 3-D, one tile
]


@pytest.mark.parametrize("library", fft_library.AVAILABLE)
@pytest.mark.parametrize("group_points", [1, 1000, 1 << 16], ids=["tile", "some", "all"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_fft_tile_groups(library, group_points, dtype, monkeypatch):
    """Every tiling in groups of one tile, of a few (a ragged last group) and of all tiles, through
    every FFT library installed, against scipy's direct correlation."""
    monkeypatch.setattr(fft_library, "LIBRARY", library)
    monkeypatch.setattr(fs, "_FFT_GROUP_POINTS", group_points)
    for i, (x_shape, w_shape, blocks) in enumerate(FFT_TILINGS):
        x, w = data(x_shape, w_shape, dtype, seed=30 + i)
        for mode in MODES:
            try:
                ref = scipy_signal.correlate(x.astype(np.float64), w.astype(np.float64), mode, "direct")
            except ValueError:
                continue  # neither input contains the other (tested elsewhere)
            lags = fs._lags(mode, x.shape, w.shape, "test")
            out = [hi - lo for lo, hi in lags]
            combo = tuple((b, -(-m // (b - k + 1))) for b, m, k in zip(blocks, out, w.shape, strict=True))
            check(fs._fft(x, w, lags, combo), ref, x, w, dtype, "fft")
            check(fastconv.correlate(x, w, mode, "fft"), ref, x, w, dtype, "fft")


def test_fft_threads_keep_their_own_plans():
    """Plans and their arrays are per thread: concurrent FFT calls do not share buffers."""
    from concurrent.futures import ThreadPoolExecutor

    problems = [data((300, 200 + 7 * i), (17, 9), np.float64, seed=60 + i) for i in range(4)]
    refs = [scipy_signal.correlate(x, w, "same", "direct") for x, w in problems]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            results = list(pool.map(lambda p: fastconv.correlate(*p, "same", "fft"), problems))
            for got, ref, (x, w) in zip(results, refs, problems, strict=True):
                check(got, ref, x, w, np.float64, "fft")


def test_fft_large_float32_against_fftconvolve():
    x, w = data((300, 257), (15, 9), np.float32, seed=11)
    ref = scipy_signal.fftconvolve(x.astype(np.float64), w.astype(np.float64)[::-1, ::-1], mode="same")
    check(fastconv.correlate(x, w, "same", "fft"), ref, x, w, np.float32, "fft")
    got = fastconv.convolve(x, w, "same", "fft")
    check(
        got,
        scipy_signal.fftconvolve(x.astype(np.float64), w.astype(np.float64), "same"),
        x,
        w,
        np.float32,
        "fft",
    )


def test_ndimage_where_boundaries_coincide():
    """scipy.ndimage.correlate centres at k // 2 like signal.correlate 'same'; its 'constant' (cval),
    'grid-wrap' and 'reflect' modes are correlate2d's fill, wrap and symm for odd kernels."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((19, 23))
    for w_shape in [(3, 3), (5, 3), (4, 6), (1, 7)]:
        w = rng.standard_normal(w_shape)
        ref = ndimage.correlate(x, w, mode="constant", cval=0.0)
        np.testing.assert_allclose(fastconv.correlate(x, w, "same"), ref, rtol=1e-12, atol=1e-12)
        if all(k % 2 for k in w_shape):
            for boundary, mode in (("fill", "constant"), ("wrap", "grid-wrap"), ("symm", "reflect")):
                ref = ndimage.correlate(x, w, mode=mode, cval=0.25)
                got = fastconv.correlate2d(x, w, "same", boundary, 0.25)
                np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
                ref = ndimage.convolve(x, w, mode=mode, cval=0.25)
                np.testing.assert_allclose(
                    fastconv.convolve2d(x, w, "same", boundary, 0.25), ref, rtol=1e-12, atol=1e-12
                )
    x3 = rng.standard_normal((6, 7, 8))
    w3 = rng.standard_normal((3, 2, 3))
    np.testing.assert_allclose(
        fastconv.correlate(x3, w3, "same"), ndimage.correlate(x3, w3, mode="constant"), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize("mode", MODES)
def test_separable_passes_match_scipy(mode, boundary):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((31, 26))
    for w in (
        kernels.gaussian((5, 7), 1.3),
        kernels.sobel_x(),
        kernels.box((4, 2)),
        np.outer(rng.standard_normal(6), rng.standard_normal(3)),
    ):
        for name in ("correlate2d", "convolve2d"):
            ref = getattr(scipy_signal, name)(x, w, mode, boundary, 0.5)
            got = getattr(fastconv, name)(x, w, mode, boundary, 0.5, separable=True)
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
        for name in ("correlate", "convolve"):
            ref = getattr(scipy_signal, name)(x, w, mode)
            for flag in (True, None):
                got = getattr(fastconv, name)(x, w, mode, separable=flag)
                np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
        x32, w32 = x.astype(np.float32), w.astype(np.float32)
        got = fastconv.correlate2d(x32, w32, mode, boundary, 0.5, separable=True)
        ref = scipy_signal.correlate2d(x32.astype(np.float64), w32.astype(np.float64), mode, boundary, 0.5)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_auto_choices():
    rng = np.random.default_rng(2)
    image = rng.standard_normal((64, 64))
    assert fs.choose_conv_method(image, rng.standard_normal((3, 3))) == "direct"
    assert fs.choose_conv_method(image, kernels.gaussian(9, 2.0)) == "separable"
    assert fs.choose_conv_method(image, kernels.gaussian(9, 2.0), separable=False) != "separable"
    assert fs.choose_conv_method(rng.standard_normal(10**5), rng.standard_normal(1001)) == "fft"
    assert fs.choose_conv_method(rng.standard_normal(100), rng.standard_normal(3)) == "direct"
    # issue 7's cases: FFT only for the 31x31 kernel
    image = np.zeros((2048, 2048), np.float32)
    for k, method in ((15, "direct"), (31, "fft")):
        assert fs.choose_conv_method(image, rng.standard_normal((k, k)).astype(np.float32), "same") == method
    signal = np.zeros(10**6, np.float32)
    assert fs.choose_conv_method(signal, rng.standard_normal(63).astype(np.float32), "same") == "direct"


def test_auto_avoids_fft_on_non_finite(monkeypatch):
    """A NaN stays local with direct; FFT would spread it over the whole output."""
    cheap_fft = {
        k: dict(v, fft_call=0.0, per_point=0.0, butterfly=0.0, per_tile=0.0, mac=(1e3, 1e3, 1e3))
        for k, v in fs._COST.items()
    }
    monkeypatch.setattr(fs, "_COST", cheap_fft)
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal(200), rng.standard_normal(9)
    assert fs.choose_conv_method(x, w) == "fft"
    x[50] = np.nan
    assert fs.choose_conv_method(x, w) == "direct"
    y = fastconv.correlate(x, w, "same")
    assert np.isnan(y).sum() == 9
    assert np.isnan(fastconv.correlate(x, w, "same", "fft")).sum() > 9


def test_dtypes_and_promotion():
    rng = np.random.default_rng(1)
    x32, w32 = rng.standard_normal((9, 8)).astype(np.float32), rng.standard_normal((3, 3)).astype(np.float32)
    assert fastconv.correlate(x32, w32).dtype == np.float32
    assert fastconv.correlate2d(x32, w32, boundary="symm").dtype == np.float32
    mixed = fastconv.correlate(x32, w32.astype(np.float64))
    assert mixed.dtype == np.float64
    np.testing.assert_allclose(
        mixed, scipy_signal.correlate(x32.astype(np.float64), w32.astype(np.float64)), rtol=1e-12, atol=1e-12
    )
    assert fastconv.convolve([1.0, 2.0, 3.0], [0.5, 1.0]).tolist() == [0.5, 2.0, 3.5, 3.0]
    # non-contiguous, negative-strided, read-only inputs
    xs = rng.standard_normal((20, 30))[::-2, 1::3]
    xs.flags.writeable = False
    np.testing.assert_allclose(
        fastconv.correlate(xs, w32.astype(np.float64), "same"),
        scipy_signal.correlate(xs, w32.astype(np.float64), "same"),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize(
    "bad",
    [
        np.arange(6),
        np.ones(6, dtype=bool),
        np.ones(6, dtype=np.complex64),
        np.ones(6, dtype=np.float16),
        ["a", "b"],
    ],
)
def test_bad_dtypes_are_type_errors(bad):
    good = np.ones(3)
    with pytest.raises(
        TypeError, match=r"correlate: in1 must have dtype float32 or float64|correlate: in1 must"
    ):
        fastconv.correlate(bad, good)
    with pytest.raises(TypeError, match=r"convolve2d: in2 must .*float32 or float64"):
        fastconv.convolve2d(good[None], np.asarray(bad)[None])


def test_argument_errors():
    x, w = np.ones((5, 5)), np.ones((3, 3))
    with pytest.raises(ValueError, match=r"correlate: mode='wide' is not one of \['full', 'same', 'valid'\]"):
        fastconv.correlate(x, w, "wide")
    with pytest.raises(ValueError, match=r"convolve: method='winograd' is not one of"):
        fastconv.convolve(x, w, method="winograd")
    with pytest.raises(ValueError, match=r"correlate2d: boundary='reflect' is not one of"):
        fastconv.correlate2d(x, w, boundary="reflect")
    with pytest.raises(TypeError, match=r"convolve2d: fillvalue must be a real number, but got 1j"):
        fastconv.convolve2d(x, w, fillvalue=1j)
    with pytest.raises(ValueError, match=r"same number of dimensions.*\[5, 5\].*\[3\]"):
        fastconv.correlate(x, np.ones(3))
    with pytest.raises(ValueError, match=r"1 to 3 dimensions, but got 4-D"):
        fastconv.correlate(np.ones((2, 2, 2, 2)), np.ones((1, 1, 1, 1)))
    with pytest.raises(ValueError, match=r"correlate2d: in1 and in2 must both be 2-D arrays"):
        fastconv.correlate2d(np.ones(5), np.ones(3))
    with pytest.raises(ValueError, match=r"mode='valid', one input must be at least as large"):
        fastconv.correlate(np.ones((5, 2)), np.ones((2, 5)), "valid")
    with pytest.raises(ValueError, match=r"separable=True.*not rank 1"):
        fastconv.correlate(x, kernels.laplacian(), separable=True)
    with pytest.raises(ValueError, match=r"separable=True needs a 2-D kernel"):
        fastconv.correlate(np.ones(5), np.ones(3), separable=True)
    with pytest.raises(ValueError, match=r"cannot be combined with method='fft'"):
        fastconv.correlate(x, w, method="fft", separable=True)
    with pytest.raises(TypeError, match=r"separable must be None, True or False"):
        fastconv.correlate(x, w, separable="yes")
    with pytest.raises(ValueError, match=r"num_threads must be >= 1"):
        fastconv.correlate(x, w, num_threads=0)


def test_scalars_and_empty():
    assert fastconv.correlate(np.float64(2.0), np.float64(3.0)) == scipy_signal.correlate(2.0, 3.0)
    with pytest.raises(ValueError, match=r"convolve: in1 is empty \(shape \[0\]\)"):
        fastconv.convolve(np.ones(0), np.ones(3))
    with pytest.raises(ValueError, match=r"correlate2d: in2 is empty \(shape \[2, 0\]\)"):
        fastconv.correlate2d(np.ones((3, 3)), np.ones((2, 0)))


def test_threads_do_not_change_direct_results():
    x, w = data((40, 50), (5, 4), np.float32, seed=3)
    one = fastconv.correlate(x, w, "same", "direct", num_threads=1)
    two = fastconv.correlate(x, w, "same", "direct", num_threads=2)
    assert np.array_equal(one, two)


def test_next_fast_len():
    sizes = [fs.next_fast_len(n) for n in range(1, 3000)]
    for n, m in enumerate(sizes, start=1):
        assert m >= n
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        assert r == 1
    # smallest: no 5-smooth number lies in [n, m)
    smooth = {2**a * 3**b * 5**c for a, b, c in itertools.product(range(13), range(8), range(6))}
    assert all(not any(k in smooth for k in range(n, m)) for n, m in enumerate(sizes, start=1))
