"""Batched real FFTs of tiles for the overlap-save path of fastconv.signal, on the fastest FFT library
installed: pyFFTW (FFTW's SIMD codelets; optional: ``pip install pyfftw``), else scipy.fft, else
numpy.fft (which numpy >= 2 computes in float32 for float32 input).

``transform(count, sizes, dtype)`` gives a ``Transform``: an input array ``real`` of ``count`` tiles
of ``sizes`` to fill, ``forward()`` (its spectrum) and ``inverse(spectrum)`` (the real tiles), both
unnormalised, so the caller folds ``1 / prod(sizes)`` into the kernel's spectrum (one pass fewer).
Under pyFFTW ``real`` and the spectrum are the plan's own aligned arrays: forward and inverse copy
nothing, the spectrum is multiplied in place, and the inverse writes back into ``real``. Plans
(FFTW_ESTIMATE) are kept per thread and per geometry; FFTW_MEASURE took 0.5-3.5 s to plan a 256^2
tile and ran no faster here (38-41 ms against 38-42 ms for 2048^2 x 31x31), so it is not used.

``SPEEDS`` holds each library's FFT time relative to pyFFTW's, which scales the FFT terms of
signal.py's cost model. Measured through signal._fft at one thread, float32 (ms, pyFFTW / scipy.fft
with workers=1 / numpy.fft): 2048^2 x 31x31 in 384^2 tiles 55 / 66 / 106, in 256^2 tiles 54 / 72 /
131; 1-D 10^6 x 1023 taps in 16384 blocks 9.2 / 8.2 / 15; 3-D 96 x 128^2 x 9^3 in 32 x 64^2 tiles
40 / 60 / 131 (one loaded run: the ratios count, not the times).
"""

from __future__ import annotations

import math
import threading

import numpy as np

try:
    import pyfftw
except ImportError:  # pragma: no cover - depends on the installation
    pyfftw = None
try:
    import scipy.fft as scipy_fft
except ImportError:  # pragma: no cover - depends on the installation
    scipy_fft = None

# the libraries installed, fastest first; LIBRARY is the one used (tests may set it to another)
AVAILABLE = [name for name, lib in (("pyfftw", pyfftw), ("scipy", scipy_fft)) if lib is not None]
AVAILABLE.append("numpy")
LIBRARY = AVAILABLE[0]
SPEEDS = {"pyfftw": 1.0, "scipy": 1.3, "numpy": 2.3}

# transforms kept per thread: the last few geometries (each holds its tile arrays)
_KEEP = 4
_local = threading.local()


def speed() -> float:
    """The FFT library's time relative to pyFFTW's."""
    return SPEEDS[LIBRARY]


class _FFTW:
    """pyFFTW plans on aligned arrays they own."""

    def __init__(self, count, sizes, dtype):
        axes = tuple(range(1, len(sizes) + 1))
        complex_dtype = np.result_type(dtype, np.complex64)
        self.real = pyfftw.empty_aligned((count, *sizes), dtype=dtype)
        self.spectrum = pyfftw.empty_aligned((count, *sizes[:-1], sizes[-1] // 2 + 1), dtype=complex_dtype)
        flags = ("FFTW_ESTIMATE", "FFTW_DESTROY_INPUT")
        self._forward = pyfftw.FFTW(self.real, self.spectrum, axes=axes, flags=flags, threads=1)
        self._inverse = pyfftw.FFTW(
            self.spectrum, self.real, axes=axes, direction="FFTW_BACKWARD", flags=flags, threads=1
        )

    def forward(self):
        self._forward.execute()  # execute(): no normalisation pass, no argument checks
        return self.spectrum

    def inverse(self, spectrum):
        if spectrum is not self.spectrum:
            np.copyto(self.spectrum, spectrum)
        self._inverse.execute()
        return self.real


class _Pocketfft:
    """scipy.fft (one worker) or numpy.fft: new output arrays per call."""

    def __init__(self, count, sizes, dtype, library):
        self.real = np.empty((count, *sizes), dtype)
        self._sizes = tuple(sizes)
        self._axes = tuple(range(1, len(sizes) + 1))
        self._scipy = library == "scipy"

    def forward(self):
        if self._scipy:
            return scipy_fft.rfftn(self.real, axes=self._axes, workers=1)
        return np.fft.rfftn(self.real, axes=self._axes)

    def inverse(self, spectrum):
        # norm="forward": the inverse is left unscaled, as FFTW's
        if self._scipy:
            return scipy_fft.irfftn(
                spectrum, s=self._sizes, axes=self._axes, norm="forward", overwrite_x=True, workers=1
            )
        return np.fft.irfftn(spectrum, s=self._sizes, axes=self._axes, norm="forward")


def transform(count, sizes, dtype):
    """The thread's ``Transform`` of ``count`` tiles of ``sizes`` (real ``dtype``): made on first use."""
    transforms = getattr(_local, "transforms", None)
    if transforms is None:
        transforms = _local.transforms = {}
    key = (LIBRARY, count, tuple(sizes), np.dtype(dtype).str)
    found = transforms.pop(key, None)
    if found is None:
        if LIBRARY == "pyfftw":
            found = _FFTW(count, tuple(sizes), np.dtype(dtype))
        else:
            found = _Pocketfft(count, tuple(sizes), np.dtype(dtype), LIBRARY)
    transforms[key] = found  # most recently used last
    while len(transforms) > _KEEP:
        del transforms[next(iter(transforms))]
    return found


def kernel_spectrum(w, sizes):
    """conj(rfftn(w zero-padded to sizes)) / prod(sizes): multiplying a tile's spectrum by it and
    transforming back gives the tile's circular correlation with w."""
    plan = transform(1, sizes, w.dtype)
    plan.real[...] = 0
    plan.real[(0, *(slice(0, k) for k in w.shape))] = w
    spectrum = np.conj(plan.forward()[0])  # a copy: the plan's next forward overwrites its output
    spectrum *= 1.0 / math.prod(sizes)
    return spectrum
