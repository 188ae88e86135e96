"""Real FFTs of stacks of tiles for the overlap-save path of fastconv.signal, on the fastest FFT
library installed: pyFFTW (FFTW's SIMD codelets; optional: ``pip install pyfftw``), else scipy.fft,
else numpy.fft (which numpy >= 2 computes in float32 for float32 input).

Measured at one thread, float32, on 36 tiles of 384 x 384 (a 2048 x 2048 image with a 31 x 31
kernel), forward + inverse: pyFFTW 30 ms, scipy.fft 48 ms, numpy.fft 115 ms (its forward transforms
were 3-4x slower than its inverse ones). ``SPEED`` is each library's time relative to numpy.fft,
which scales the FFT terms of signal.py's cost model.

pyFFTW runs plans (FFTW_ESTIMATE: about 1 ms to make, within 10% of FFTW_MEASURE's speed here) on
aligned arrays it owns, kept per thread and per geometry; ``rfftn`` returns the plan's spectrum
array, which stays valid until the thread's next transform of the same geometry.
"""

from __future__ import annotations

import threading

import numpy as np

try:
    import pyfftw

    LIBRARY = "pyfftw"
except ImportError:  # pragma: no cover - depends on the installation
    pyfftw = None
    try:
        import scipy.fft as _lib

        LIBRARY = "scipy"
    except ImportError:
        _lib = np.fft
        LIBRARY = "numpy"

SPEED = {"pyfftw": 0.3, "scipy": 0.45, "numpy": 1.0}[LIBRARY]

# plans kept per thread: the last few geometries (each holds its tile arrays)
_KEEP = 4
_local = threading.local()


class _Plan:
    def __init__(self, shape, sizes, dtype):
        axes = tuple(range(-len(sizes), 0))
        spectrum_shape = (*shape[: -len(sizes)], *sizes[:-1], sizes[-1] // 2 + 1)
        complex_dtype = np.result_type(dtype, np.complex64)
        self.real = pyfftw.empty_aligned((*shape[: -len(sizes)], *sizes), dtype=dtype)
        self.spectrum = pyfftw.empty_aligned(spectrum_shape, dtype=complex_dtype)
        flags = ("FFTW_ESTIMATE", "FFTW_DESTROY_INPUT")
        self.forward = pyfftw.FFTW(self.real, self.spectrum, axes=axes, flags=flags, threads=1)
        self.inverse = pyfftw.FFTW(
            self.spectrum, self.real, axes=axes, direction="FFTW_BACKWARD", flags=flags, threads=1
        )
        self.fits = shape[-len(sizes) :] == tuple(sizes)


def _plan(shape, sizes, dtype):
    plans = getattr(_local, "plans", None)
    if plans is None:
        plans = _local.plans = {}
    key = (tuple(shape), tuple(sizes), np.dtype(dtype).str)
    plan = plans.pop(key, None) or _Plan(shape, sizes, dtype)
    plans[key] = plan  # most recently used last
    while len(plans) > _KEEP:
        del plans[next(iter(plans))]
    return plan


def tiles(shape, sizes, dtype):
    """An array of ``shape`` to fill with tiles for ``rfftn(.., sizes)``: the plan's own input array
    under pyFFTW (so rfftn copies nothing), else a new one."""
    if pyfftw is None:
        return np.empty(shape, dtype)
    return _plan(shape, sizes, dtype).real


def rfftn(a, sizes):
    """The real FFT of ``a`` over its last ``len(sizes)`` axes, zero-padded to ``sizes``."""
    axes = tuple(range(-len(sizes), 0))
    if pyfftw is None:
        return _lib.rfftn(a, s=sizes, axes=axes)
    plan = _plan(a.shape, sizes, a.dtype)
    if a is plan.real:
        pass
    elif plan.fits:
        np.copyto(plan.real, a)
    else:
        plan.real[...] = 0
        plan.real[(Ellipsis, *(slice(0, n) for n in a.shape[-len(sizes) :]))] = a
    plan.forward()
    return plan.spectrum


def irfftn(spectrum, sizes):
    """The inverse of ``rfftn`` (normalised), of real size ``sizes`` over the last axes."""
    axes = tuple(range(-len(sizes), 0))
    if pyfftw is None:
        return _lib.irfftn(spectrum, s=sizes, axes=axes)
    real_shape = (*spectrum.shape[: -len(sizes)], *sizes)
    plan = _plan(real_shape, sizes, np.empty(0, spectrum.dtype).real.dtype)
    if spectrum is not plan.spectrum:
        np.copyto(plan.spectrum, spectrum)
    plan.inverse()
    return plan.real
