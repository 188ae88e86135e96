"""scipy.signal-compatible correlation and convolution for numpy pipelines.

``correlate`` / ``convolve`` (1-D to 3-D) and ``correlate2d`` / ``convolve2d`` take the arguments of
their scipy.signal namesakes and return the same array (same shape, same alignment), computed by
fastconv's SIMD direct kernels, by two 1-D passes for a separable (rank-1) 2-D kernel, or by FFT
(overlap-save in cache-sized tiles, see _fft_library) when that is cheaper::

    import fastconv
    y = fastconv.correlate(image, kernel, mode="same")          # scipy.signal.correlate
    y = fastconv.convolve2d(image, kernel, boundary="symm")     # scipy.signal.convolve2d

Conventions, as in scipy.signal:

- ``correlate(in1, in2)[j] = sum_u in1[j + u] * in2[u]`` over the lags the mode asks for;
  ``convolve`` is ``correlate`` with ``in2`` flipped on every axis. Inputs are real, so
  scipy's conjugation of ``in2`` in ``correlate`` changes nothing.
- ``mode="full"``: every lag with any overlap, shape ``in1.shape + in2.shape - 1``.
  ``mode="same"``: the shape of ``in1``, centred on the full output: scipy takes the full result from
  index ``(k - 1) // 2`` on every axis (``k`` = kernel size), so an even kernel's extra tap falls
  *before* the output point for ``correlate`` / ``convolve``. ``correlate2d`` (scipy's own 2-D
  routine) centres ``same`` the other way for even kernels, and fastconv follows it there too:
  ``correlate2d(x, w, "same")`` equals ``correlate(x, w, "same")`` only for odd kernel sizes.
  ``mode="valid"``: the lags where one input lies inside the other; when ``in2`` is the larger in
  every dimension, the roles swap (as scipy swaps them); when neither contains the other it is a
  ValueError.
- ``boundary`` (2-D functions only): ``"fill"`` pads with ``fillvalue``, ``"wrap"`` is periodic,
  ``"symm"`` reflects including the edge sample (numpy.pad's ``constant``, ``wrap``, ``symmetric``).
  ``valid`` output never reads the boundary.

dtypes: float32 and float64; the result has the input dtype. Mixing float32 and float64 computes and
returns float64 (numpy's promotion). Integer, bool and complex inputs are a TypeError: convert them
explicitly (``x.astype(np.float32)``), nothing is cast or wrapped silently.

``method``: ``"direct"`` runs fastconv's convolution engine (single channel, zero padding passed to the
engine, other boundaries padded with numpy.pad first); ``"fft"`` runs pyFFTW when installed, else
scipy.fft, else numpy.fft (overlap-save with 2-, 3-, 5-smooth block sizes); ``"auto"`` picks by a cost
model of both, measured on the development machine (see ``_COST``), and never picks FFT when an input
holds Inf or NaN (FFT would spread them over the whole output, where direct keeps them local).
``separable``: ``None`` detects a rank-1 2-D kernel and, with method ``"auto"`` or ``"direct"``, runs
two direct 1-D passes when the cost model says that is cheaper; ``True`` requires it (a ValueError if
the kernel is not rank 1); ``False`` never does it.
Results agree with scipy to rounding: the direct method to about 1e-6 relative (float32) and 1e-15
(float64), FFT to about 1e-6 / 1e-15 of the largest output magnitude.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import _arguments as A
from . import _fft_library as fft_library
from ._api import conv1d, conv2d, conv3d

__all__ = [
    "choose_conv_method",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
    "next_fast_len",
]

MODES = ("full", "same", "valid")
METHODS = ("auto", "direct", "fft")
# scipy's boundary names and their aliases -> numpy.pad modes
_BOUNDARIES = {
    "fill": "constant",
    "pad": "constant",
    "wrap": "wrap",
    "circular": "wrap",
    "symm": "symmetric",
    "symmetric": "symmetric",
}
_CONV = {1: conv1d, 2: conv2d, 3: conv3d}

# The cost model behind method="auto" and separable=None, in nanoseconds, at one thread on the
# development machine (Zen 3, 2 cores shared with other builds, so every figure is +-30%). The direct
# constants are the engine's: refit them (benchmarks/bench_signal.py --calibrate) whenever its
# single-channel kernels change. The FFT constants are pyFFTW's, the transform terms scaled by the
# FFT library's relative speed (_fft_library.speed(): scipy.fft 1.3x, numpy.fft 2.3x slower).
#   direct:  call + out * (per_out + taps * mac[ndim - 1])  one single-channel engine call
#   fft:     fft_call + tiles * per_tile
#            + speed * points * (per_point + log2(B_1 * .. * B_n) * butterfly + (n - 1) * per_axis)
#            points = prod(tiles_d * B_d), the zero-padded tiles transformed (forward + inverse); each
#            tile costs its Python-level copies in and out (per_tile, about 8 us); tiles run in
#            groups that stay in L2 (_fft), so the per-point cost holds up to _FFT_TILE_POINTS
# Measured at one thread, float32, AVX2 build (thread CPU time). Direct, the plane kernel (0.03 ns
# per multiply-add on large 1-D and 2-D kernels, 0.05 fitted over small ones; 3-D 0.07, since it runs
# plane by plane: 96 x 128^2 x 7^3 40 ms, 48 x 64^2 x 9^3 10 ms; float64 is still the scalar path,
# 0.4-1.5 ns): 2048^2: 3x3 2.2-2.4 ms, 5x5 3.6-4.1 ms, 15x15 24-32 ms, 31x31
# 91-116 ms; 1-D 10^6 x 63 taps 2.4 ms, x 255 taps 7-8.5 ms, x 1023 taps 30 ms. FFT with pyFFTW
# (fitted by benchmarks/bench_signal.py --calibrate): 2048^2 x 31x31 35-40 ms in 384^2 tiles, 38-44 in
# 320^2 or 256^2, 45-64 in 512^2 (out of L2; hence _FFT_TILE_POINTS), 134 in 64^2; 2048^2 x 15x15
# 37-41 ms in 128^2 tiles; 1-D 10^6 x 1023 taps 6-7 ms in 16384 blocks (15 ms in 2048 blocks: the
# per-tile copies); 3-D 96 x 128^2 x 7^3 / 9^3 18-34 ms in 32^3-ish tiles (FFTW_ESTIMATE's 48^3 and
# 30 x 135 x 32 plans ran twice as slow, hence tiles of 2^a and 3 * 2^a only). Crossover for float32 on
# large inputs: 2-D about 21x21 (19x19 direct 40-49 ms against fft 42-57); 1-D about 300 taps.
# float64: 2-D about 5x5-7x7.
_COST = {
    "float32": {
        "call": 25e3,
        "per_out": 0.9,
        "mac": (0.03, 0.03, 0.07),
        "fft_call": 90e3,
        "per_point": 0.0,
        "butterfly": 0.66,
        "per_axis": 0.5,
        "per_tile": 8e3,
    },
    "float64": {
        "call": 20e3,
        "per_out": 2.0,
        "mac": (0.65, 0.65, 0.65),
        "fft_call": 45e3,
        "per_point": 0.0,
        "butterfly": 0.93,
        "per_axis": 0.0,
        "per_tile": 9e3,
    },
}
# the largest overlap-save tile considered (points), unless no tile fits: 384^2 and 384 x 512 ran at
# 256^2's speed per point, 512^2 tiles (2 MiB of arrays) up to 1.5x slower
_FFT_TILE_POINTS = 3 << 16
# tiles transformed together (one FFT call): as many as keep their real and complex arrays near L2
# size (512 KiB on Zen 3): one 2-D tile, several 1-D ones. All 36 tiles of 2048^2 x 31x31 in one batch
# streamed 42 MB through memory (56 ms); one 384^2 tile at a time: 35-40 ms
_FFT_GROUP_POINTS = 1 << 16
# below this many multiply-adds a direct call runs on one thread (when num_threads is None)
_SMALL_WORK = 1 << 18
# separable=None only factors kernels up to this many taps (an SVD of a 64x64 matrix is ~1 ms)
_SEPARABLE_MAX_TAPS = 4096


def next_fast_len(n: int) -> int:
    """The smallest 2-, 3- and 5-smooth integer >= n (``2**a * 3**b * 5**c``): a fast FFT length."""
    n = int(n)
    if n <= 6:
        return max(n, 1)
    best = 1 << (n - 1).bit_length()  # a power of two always qualifies
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            q = -(-n // p35)  # smallest multiplier so that p35 * q >= n; round it up to a power of two
            candidate = p35 << (q - 1).bit_length()
            best = min(best, candidate)
            p35 *= 3
        p5 *= 5
    return best


# ---------------------------------------------------------------------------------------------------
# argument checks


def _inputs(in1, in2, fn):
    x = A.float_array(in1, "in1", fn)
    w = A.float_array(in2, "in2", fn)
    if x.ndim != w.ndim:
        raise ValueError(
            f"{fn}: in1 and in2 must have the same number of dimensions, but got in1 of shape "
            f"{A.shape_str(x.shape)} and in2 of shape {A.shape_str(w.shape)}"
        )
    if x.ndim > 3:
        raise ValueError(f"{fn}: inputs must have 1 to 3 dimensions, but got {x.ndim}-D arrays")
    dtype = np.result_type(x.dtype, w.dtype)
    return x.astype(dtype, copy=False), w.astype(dtype, copy=False)


def _choice(value, name, allowed, fn):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{fn}: {name}={value!r} is not one of {list(allowed)}")
    return value


def _separable_flag(value, fn):
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    raise TypeError(f"{fn}: separable must be None, True or False, but got {value!r}")


def _fill_value(value, fn):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
            return float(value)
        raise TypeError(
            f"{fn}: fillvalue must be a real number, but got {value!r} of type {type(value).__name__}"
        )
    return float(value)


def _lags(mode, x_shape, w_shape, fn, centre_before=True):
    """Per axis the lag range [lo, hi) of corr[j] = sum_u x[j + u] w[u] that the mode returns."""
    if mode == "valid":
        inside = all(n >= k for n, k in zip(x_shape, w_shape, strict=True))
        contains = all(k >= n for n, k in zip(x_shape, w_shape, strict=True))
        if not (inside or contains):
            raise ValueError(
                f"{fn}: for mode='valid', one input must be at least as large as the other in every "
                f"dimension, but got in1 of shape {A.shape_str(x_shape)} and in2 of shape "
                f"{A.shape_str(w_shape)}"
            )
        if inside:
            return [(0, n - k + 1) for n, k in zip(x_shape, w_shape, strict=True)]
        return [(n - k, 1) for n, k in zip(x_shape, w_shape, strict=True)]
    if mode == "full":
        return [(1 - k, n) for n, k in zip(x_shape, w_shape, strict=True)]
    # same: scipy's correlate/convolve start the full result at (k - 1) // 2, which is lag -(k // 2) of
    # the correlation with the (flipped, for convolve) kernel; scipy's correlate2d starts at lag
    # -((k - 1) // 2)
    before = [k // 2 if centre_before else (k - 1) // 2 for k in w_shape]
    return [(-b, n - b) for n, b in zip(x_shape, before, strict=True)]


def _flip(a):
    return a[(slice(None, None, -1),) * a.ndim]


# ---------------------------------------------------------------------------------------------------
# the engines: corr[j] = sum_u x[j + u] * w[u] for j in [lo, hi) per axis, x zero outside its extent


def _window(x_shape, w_shape, lags):
    """The slice of x the lags read and the zero padding around it: (slices, pads, empty?)."""
    slices, pads, empty = [], [], False
    for n, k, (lo, hi) in zip(x_shape, w_shape, lags, strict=True):
        start, stop = max(lo, 0), min(hi - 1 + k, n)
        if start >= stop:
            empty = True
            start = stop = 0
        slices.append(slice(start, stop))
        pads.append((start - lo, hi - 1 + k - stop))
    return tuple(slices), tuple(pads), empty


def _direct(x, w, lags, threads):
    """One single-channel engine call (roles swapped when the kernel is the larger operand)."""
    if w.size > x.size:
        # corr(x, w)[j] = corr(w, x)[-j]
        return _flip(_direct(w, x, [(1 - hi, 1 - lo) for lo, hi in lags], threads))
    out_shape = tuple(hi - lo for lo, hi in lags)
    slices, pads, empty = _window(x.shape, w.shape, lags)
    if empty:
        return np.zeros(out_shape, x.dtype)
    result = _CONV[x.ndim](x[slices][None, None], w[None, None], padding=pads, num_threads=threads)
    return result[0, 0]


def _separable_passes(x, column, row, lags, threads):
    """Two 1-D passes for w = outer(column, row): along axis 1 with row, then along axis 0 with column."""
    (lo0, hi0), (lo1, hi1) = lags
    start, stop = max(lo0, 0), min(hi0 - 1 + column.size, x.shape[0])
    if start >= stop:
        return np.zeros((hi0 - lo0, hi1 - lo1), x.dtype)
    rows = _direct(x[start:stop], row[None, :], [(0, stop - start), (lo1, hi1)], threads)
    return _direct(rows, column[:, None], [(lo0 - start, hi0 - start), (0, hi1 - lo1)], threads)


def _fft_blocks(out_shape, w_shape, dtype):
    """Overlap-save block sizes per axis: the cheapest combination under the cost model."""
    per_axis = []
    for m, k in zip(out_shape, w_shape, strict=True):
        full = next_fast_len(m + k - 1)
        # tiles of 2^a and 3 * 2^a: FFTW_ESTIMATE's plans for sizes with more factors of 3 or 5 ran
        # up to twice as slow per point (3-D 48^3 and 30 x 135 x 32 tiles against 32^3); tiles
        # shorter than 2k would waste more than half of each transform on the overlap
        sizes = {full}
        for b in [f << p for p in range(4, 17) for f in (2, 3)]:
            if 2 * k <= b < full:
                sizes.add(b)
        per_axis.append([(b, -(-m // (b - k + 1))) for b in sorted(sizes)])
    combos = _product(per_axis)
    # tiles of cache size: one 2160^2 transform took 157 ms where 36 tiles of 384^2 took 55 ms
    # (pyFFTW, all tiles in one batch), and numpy.fft showed the same (376-417 ms against 134-256 ms)
    fitting = [c for c in combos if math.prod(b for b, _ in c) <= _FFT_TILE_POINTS]
    best, constants = None, _COST[dtype.name]
    for combo in fitting or combos:
        cost = _fft_cost(combo, constants)
        if best is None or cost < best[0]:
            best = (cost, combo)
    return best


def _product(lists):
    combos = [()]
    for options in lists:
        combos = [c + (o,) for c in combos for o in options]
    return combos


def _fft_cost(combo, c):
    points = math.prod(b * t for b, t in combo)
    tiles = math.prod(t for _, t in combo)
    logs = sum(math.log2(b) for b, _ in combo)
    transforms = points * (c["per_point"] + logs * c["butterfly"] + (len(combo) - 1) * c["per_axis"])
    return c["fft_call"] + tiles * c["per_tile"] + fft_library.speed() * transforms


def _direct_cost(out_size, taps, dtype, ndim):
    c = _COST[dtype.name]
    return c["call"] + out_size * (c["per_out"] + taps * c["mac"][ndim - 1])


def _tile_geometry(n, first_step, block, step, count):
    """Per tile along one axis: (source slice of the window, destination slice in the tile, the tile's
    zero margins): tile i reads window positions [first_step + i * step, .. + block), zero outside
    [0, n)."""
    tiles = []
    for i in range(count):
        first = first_step + i * step
        lo, hi = max(first, 0), max(min(first + block, n), max(first, 0))
        start, stop = min(lo - first, block), min(hi - first, block)
        margins = [s for s in (slice(0, start), slice(stop, block)) if s.start < s.stop]
        tiles.append((slice(lo, hi), slice(start, stop), margins))
    return tiles


def _fft(x, w, lags, blocks=None):
    """Overlap-save: tiles of B samples per axis overlapping by k - 1, run through _fft_library in
    groups of tiles that stay in L2 together (fill, forward, multiply, inverse, copy out), so nothing
    but the input and the result streams through memory."""
    dtype = x.dtype
    out_shape = tuple(hi - lo for lo, hi in lags)
    slices, pads, empty = _window(x.shape, w.shape, lags)
    if empty:
        return np.zeros(out_shape, dtype)
    if blocks is None:
        blocks = _fft_blocks(out_shape, w.shape, dtype)[1]
    sizes = tuple(b for b, _ in blocks)
    steps = tuple(b - k + 1 for b, k in zip(sizes, w.shape, strict=True))
    counts = tuple(t for _, t in blocks)
    window = x[slices]
    # tile (i_1, .., i_n) reads the zero-padded window from i_d * step_d - before_d on each axis d and
    # holds the outputs [i_d * step_d, (i_d + 1) * step_d)
    reads = [
        _tile_geometry(n, -before, b, s, t)
        for n, (before, _), b, s, t in zip(window.shape, pads, sizes, steps, counts, strict=True)
    ]
    writes = [
        [(slice(i * s, min(i * s + s, m)), slice(0, min(s, m - i * s))) for i in range(t)]
        for s, m, t in zip(steps, out_shape, counts, strict=True)
    ]
    leading = [(slice(None),) * d for d in range(len(sizes))]
    tiles = list(np.ndindex(*counts))
    group = max(1, min(len(tiles), _FFT_GROUP_POINTS // math.prod(sizes)))
    kernel = fft_library.kernel_spectrum(w, sizes)
    plan = fft_library.transform(group, sizes, dtype)
    out = np.empty(out_shape, dtype)
    for first in range(0, len(tiles), group):
        members = tiles[first : first + group]
        for tile, index in zip(plan.real, members, strict=False):  # the last group may be short
            src, dst = [], []
            for d, i in enumerate(index):
                source, place, margins = reads[d][i]
                src.append(source)
                dst.append(place)
                for margin in margins:
                    tile[(*leading[d], margin)] = 0
            tile[tuple(dst)] = window[tuple(src)]
        spectrum = plan.forward()
        spectrum *= kernel  # broadcast over the group's tiles
        y = plan.inverse(spectrum)
        for tile, index in zip(y, members, strict=False):
            places = [writes[d][i] for d, i in enumerate(index)]
            out[tuple(p for p, _ in places)] = tile[tuple(t for _, t in places)]
    return out


# ---------------------------------------------------------------------------------------------------
# method choice


def _factors(w, separable, fn):
    """(column, row) when the two 1-D passes are to be considered, else None."""
    if separable is False or w.ndim != 2:
        if separable and w.ndim != 2:
            raise ValueError(
                f"{fn}: separable=True needs a 2-D kernel, but in2 has shape {A.shape_str(w.shape)}"
            )
        return None
    if separable is None and (min(w.shape) < 2 or w.size > _SEPARABLE_MAX_TAPS):
        return None
    from .kernels import separable as factor

    pair = factor(w)
    if pair is None and separable:
        raise ValueError(
            f"{fn}: separable=True, but the kernel of shape {A.shape_str(w.shape)} is not rank 1 (it is not "
            "the outer product of a column and a row); pass separable=None or False"
        )
    return pair


def _plan(x, w, lags, method, separable, fn):
    """('direct' | 'separable' | 'fft', extra) for the zero-filled problem."""
    out_shape = tuple(hi - lo for lo, hi in lags)
    out_size = math.prod(out_shape)
    if method == "fft":
        if separable:
            raise ValueError(
                f"{fn}: separable=True runs two direct 1-D passes; it cannot be combined with method='fft'"
            )
        return "fft", None
    small = min(x.size, w.size)
    pair = _factors(w, separable, fn) if w.size <= x.size or separable else None
    if separable and pair is not None:
        return "separable", pair
    costs = {"direct": _direct_cost(out_size, small, x.dtype, x.ndim)}
    if pair is not None:
        rows = (min(lags[0][1] - 1 + w.shape[0], x.shape[0]) - max(lags[0][0], 0)) * out_shape[1]
        costs["separable"] = _direct_cost(max(rows, 0), w.shape[1], x.dtype, 2) + _direct_cost(
            out_size, w.shape[0], x.dtype, 2
        )
    blocks = None
    # no FFT plan when even transforming every output point once at the smallest block's log cost
    # would cost more than direct: the block search takes a millisecond
    c = _COST[x.dtype.name]
    floor = c["fft_call"] + fft_library.speed() * out_size * (
        c["per_point"] + c["butterfly"] * sum(math.log2(2 * k) for k in w.shape)
    )
    if method == "auto" and min(costs.values()) > floor:
        blocks = _fft_blocks(out_shape, w.shape, x.dtype)
        costs["fft"] = blocks[0]
    choice = min(costs, key=costs.get)
    if choice == "fft" and not (np.isfinite(x).all() and np.isfinite(w).all()):
        del costs["fft"]  # FFT would turn one Inf or NaN into a whole output of NaN
        choice = min(costs, key=costs.get)
    return choice, pair if choice == "separable" else blocks[1] if choice == "fft" else None


def _run(x, w, lags, method, separable, threads, fn):
    choice, extra = _plan(x, w, lags, method, separable, fn)
    if threads is None and math.prod(hi - lo for lo, hi in lags) * min(x.size, w.size) < _SMALL_WORK:
        threads = 1  # waking an OpenMP team costs more than the work (0.5 ms against 0.07 ms on a 9x8 image)
    if choice == "fft":
        return _fft(x, w, lags, extra)
    if choice == "separable":
        column, row = extra
        return _separable_passes(x, column.astype(x.dtype), row.astype(x.dtype), lags, threads)
    return _direct(x, w, lags, threads)


def _correlate(
    fn,
    in1,
    in2,
    mode,
    method,
    flip,
    boundary="fill",
    fillvalue=0.0,
    separable=None,
    num_threads=None,
    two_d=False,
):
    x, w = _inputs(in1, in2, fn)
    if two_d and (x.ndim != 2 or w.ndim != 2):
        raise ValueError(
            f"{fn}: in1 and in2 must both be 2-D arrays, but got in1 of shape {A.shape_str(x.shape)} and "
            f"in2 of shape {A.shape_str(w.shape)}"
        )
    mode = _choice(mode, "mode", MODES, fn)
    method = _choice(method, "method", METHODS, fn)
    pad_mode = _BOUNDARIES[_choice(boundary, "boundary", tuple(_BOUNDARIES), fn)]
    fill = _fill_value(fillvalue, fn)
    separable = _separable_flag(separable, fn)
    threads = A.num_threads(num_threads, fn)
    if x.ndim == 0:  # scipy: the product of two scalars
        return x * w
    for name, a in (("in1", x), ("in2", w)):
        if a.size == 0:
            raise ValueError(
                f"{fn}: {name} is empty (shape {A.shape_str(a.shape)}); it needs at least one element"
            )
    if flip:
        w = _flip(w)
    lags = _lags(mode, x.shape, w.shape, fn, centre_before=not (two_d and not flip))
    if mode == "valid" or (pad_mode == "constant" and fill == 0.0):
        return _run(x, w, lags, method, separable, threads, fn)
    # a boundary other than zeros: pad with numpy.pad, then the zero-filled problem on the padded array
    slices, pads, _ = _window(x.shape, w.shape, lags)
    widths = [(max(b, 0), max(e, 0)) for b, e in pads]
    kwargs = {"constant_values": fill} if pad_mode == "constant" else {}
    padded = np.pad(x, widths, mode=pad_mode, **kwargs)
    shifted = [(lo + b, hi + b) for (lo, hi), (b, _) in zip(lags, widths, strict=True)]
    return _run(padded, w, shifted, method, separable, threads, fn)


# ---------------------------------------------------------------------------------------------------
# public functions


def correlate(in1, in2, mode="full", method="auto", *, separable=None, num_threads=None):
    """Cross-correlation of two 1-D, 2-D or 3-D arrays, as ``scipy.signal.correlate``.

    ``out[j] = sum_u in1[j + u] * in2[u]`` for the lags ``mode`` selects (``"full"``, ``"same"``: the
    shape of in1, ``"valid"``), with scipy's alignment; ``method`` is ``"auto"``, ``"direct"`` or
    ``"fft"``; ``separable`` (None/True/False) controls two 1-D passes for a rank-1 2-D kernel;
    ``num_threads`` is the direct engine's thread count (None: threadpoolctl / OMP_NUM_THREADS).
    float32/float64 in, the same dtype out (float64 when they are mixed).
    """
    return _correlate(
        "correlate", in1, in2, mode, method, False, separable=separable, num_threads=num_threads
    )


def convolve(in1, in2, mode="full", method="auto", *, separable=None, num_threads=None):
    """Convolution of two 1-D, 2-D or 3-D arrays, as ``scipy.signal.convolve``: ``correlate`` with
    ``in2`` flipped on every axis. Arguments as for :func:`correlate`."""
    return _correlate("convolve", in1, in2, mode, method, True, separable=separable, num_threads=num_threads)


def correlate2d(
    in1, in2, mode="full", boundary="fill", fillvalue=0, *, method="auto", separable=None, num_threads=None
):
    """2-D cross-correlation with a boundary, as ``scipy.signal.correlate2d``.

    ``boundary``: ``"fill"`` (pad with ``fillvalue``), ``"wrap"`` (periodic) or ``"symm"`` (mirror
    including the edge); scipy's aliases ``"pad"``, ``"circular"``, ``"symmetric"`` are accepted.
    ``mode="same"`` follows scipy.signal.correlate2d's centring, which for an even kernel differs by one
    sample from :func:`correlate`'s. Other arguments as for :func:`correlate`.
    """
    return _correlate(
        "correlate2d", in1, in2, mode, method, False, boundary, fillvalue, separable, num_threads, two_d=True
    )


def convolve2d(
    in1, in2, mode="full", boundary="fill", fillvalue=0, *, method="auto", separable=None, num_threads=None
):
    """2-D convolution with a boundary, as ``scipy.signal.convolve2d``. Arguments as for
    :func:`correlate2d`; the kernel is flipped on both axes."""
    return _correlate(
        "convolve2d", in1, in2, mode, method, True, boundary, fillvalue, separable, num_threads, two_d=True
    )


def choose_conv_method(in1, in2, mode="full", *, separable=None):
    """The method ``method="auto"`` runs for these inputs: ``"direct"``, ``"separable"`` or ``"fft"``
    (for ``convolve`` and ``correlate`` alike: flipping the kernel does not change the cost)."""
    fn = "choose_conv_method"
    x, w = _inputs(in1, in2, fn)
    mode = _choice(mode, "mode", MODES, fn)
    if x.ndim == 0 or x.size == 0 or w.size == 0:
        return "direct"  # nothing to compute (or the ValueError correlate raises)
    return _plan(x, w, _lags(mode, x.shape, w.shape, fn), "auto", _separable_flag(separable, fn), fn)[0]
