"""The functional API keeps the checked settings of earlier calls, and a plan the geometry of inputs
it has seen: neither may let a bad argument through, nor serve a stale array or shape."""

from __future__ import annotations

import fastconv
import numpy as np
import pytest
from reference import reference_conv, rel_err

TOL = 2e-6


def _arrays(seed, channels=4, size=6):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, channels, size, size), dtype=np.float32)
    w = rng.standard_normal((channels, 1, 3, 3), dtype=np.float32)
    b = rng.standard_normal(channels, dtype=np.float32)
    return x, w, b


def test_each_call_uses_its_own_arrays():
    for seed in range(3):
        x, w, b = _arrays(seed)
        got = fastconv.conv2d(x, w, b, padding=1, groups=4)
        assert rel_err(got, reference_conv(x, w, b, pad_pairs=((1, 1), (1, 1)), groups=4)) < TOL
        w[:] = 0  # changing the arrays after the call changes nothing in the next one


def test_equal_but_refused_values_are_still_refused():
    x, w, b = _arrays(0)
    fastconv.conv2d(x, w, b, stride=1, padding=1, groups=4)
    for bad in (True, 1.0, np.float32(1)):
        with pytest.raises(TypeError):
            fastconv.conv2d(x, w, b, stride=bad, padding=1, groups=4)
        with pytest.raises(TypeError):
            fastconv.conv2d(x, w, b, stride=1, padding=1, groups=4, num_threads=bad)
    with pytest.raises(TypeError):
        fastconv.conv2d(x, w, b.astype(np.float64), padding=1, groups=4)
    with pytest.raises(TypeError):
        fastconv.conv2d(x.astype(np.float64), w, b, padding=1, groups=4)
    with pytest.raises(ValueError):
        fastconv.conv2d(x, w, b[:3], padding=1, groups=4)
    with pytest.raises(ValueError):
        fastconv.conv2d(x[:, :3], w, b, padding=1, groups=4)
    with pytest.raises(ValueError):
        fastconv.conv2d(x, w, b, padding=1, groups=4, num_threads=0)


def test_plan_geometry_follows_the_input():
    x, w, b = _arrays(1, size=9)
    plan = fastconv.Convolution(w, b, 2, 1, groups=4)
    for shape in [(1, 4, 9, 9), (4, 9, 9), (2, 4, 5, 11), (1, 4, 9, 9), (4, 9, 9)]:
        xi = np.random.default_rng(len(shape)).standard_normal(shape, dtype=np.float32)
        got = plan(xi)
        batched = xi if xi.ndim == 4 else xi[None]
        ref = reference_conv(batched, w, b, stride=2, pad_pairs=((1, 1), (1, 1)), groups=4)
        assert rel_err(got, ref if xi.ndim == 4 else ref[0]) < TOL, shape
    with pytest.raises(ValueError):
        plan(np.zeros((1, 3, 9, 9), np.float32))


def test_repeated_calls_check_out_and_follow_the_input():
    """A call repeating an earlier one's settings and shapes skips the checks of its settings only:
    out is still checked, and unbatched or non-contiguous inputs still give their own results."""
    x, w, b = _arrays(2, size=7)
    for _ in range(2):
        fastconv.conv2d(x, w, b, padding=1, groups=4)
        with pytest.raises(ValueError, match="shape"):
            fastconv.conv2d(x, w, b, padding=1, groups=4, out=np.empty((1, 4, 6, 6), np.float32))
        with pytest.raises(ValueError, match="shares memory"):
            fastconv.conv2d(x, w, b, padding=1, groups=4, out=x)
    ref = reference_conv(x, w, b, pad_pairs=((1, 1), (1, 1)), groups=4)
    for _ in range(2):
        out = np.empty((1, 4, 7, 7), np.float32)
        assert fastconv.conv2d(x, w, b, padding=1, groups=4, out=out) is out
        assert rel_err(out, ref) < TOL
        assert rel_err(fastconv.conv2d(x[0], w, b, padding=1, groups=4), ref[0]) < TOL
        wide = np.zeros((1, 4, 7, 14), np.float32)
        wide[..., ::2] = x
        assert rel_err(fastconv.conv2d(wide[..., ::2], w, b, padding=1, groups=4), ref) < TOL
