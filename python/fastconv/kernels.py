"""Classic image-filter kernels, and the rank-1 test behind the separable fast path.

Every function returns a new C-contiguous array, float64 unless ``dtype=np.float32`` is passed.

Orientation (as OpenCV and scipy.ndimage): axis 0 is y (rows, increasing downwards), axis 1 is x
(columns, increasing to the right). The kernels are *correlation* kernels, the convention of
``cv2.filter2D``, ``scipy.ndimage.correlate`` and every CNN: ``fastconv.correlate2d(img, sobel_x())``
is positive where the image brightens to the right, equals ``cv2.Sobel(img, -1, 1, 0)`` and
``scipy.ndimage.sobel(img, axis=1)`` away from the border. With ``convolve`` / ``convolve2d``
(which flip the kernel) the antisymmetric ones (sobel, prewitt) change sign; the symmetric ones
(laplacian, sharpen, gaussian, box, identity) do not.
"""

from __future__ import annotations

import numpy as np

from . import _arguments as A

__all__ = [
    "box",
    "gaussian",
    "identity",
    "laplacian",
    "prewitt_x",
    "prewitt_y",
    "separable",
    "sharpen",
    "sobel_x",
    "sobel_y",
]


def _dtype(dtype, fn):
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{fn}: dtype must be float32 or float64, but got {dtype!r}") from exc
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{fn}: dtype must be float32 or float64, but got {dt}")
    return dt


def _out(values, dtype, fn):
    return np.array(values, dtype=np.float64).astype(_dtype(dtype, fn))


def _sizes(size, fn, ndim=None):
    """An int (a square / cube of ndim axes, 2 by default) or a tuple of 1 to 3 positive ints."""
    if A._is_int(size):
        return (A.as_int(size, "size", fn, 1),) * (ndim or 2)
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__"):
        raise TypeError(f"{fn}: size must be an int or a tuple of ints, but got {size!r}")
    sizes = tuple(size)
    if not 1 <= len(sizes) <= 3:
        raise ValueError(f"{fn}: size must have 1 to 3 entries, but got {size!r}")
    return tuple(A.as_int(s, "size", fn, 1) for s in sizes)


def sobel_x(dtype=np.float64):
    """3x3 Sobel derivative along x (axis 1): ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]``
    (``cv2.getDerivKernels(1, 0, 3)``'s outer product; ``scipy.ndimage.sobel(axis=1)``)."""
    return _out([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype, "sobel_x")


def sobel_y(dtype=np.float64):
    """3x3 Sobel derivative along y (axis 0, downwards): the transpose of :func:`sobel_x`."""
    return _out([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype, "sobel_y")


def prewitt_x(dtype=np.float64):
    """3x3 Prewitt derivative along x (axis 1): ``[[-1, 0, 1]] * 3`` (``scipy.ndimage.prewitt(axis=1)``)."""
    return _out([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], dtype, "prewitt_x")


def prewitt_y(dtype=np.float64):
    """3x3 Prewitt derivative along y (axis 0, downwards): the transpose of :func:`prewitt_x`."""
    return _out([[-1, -1, -1], [0, 0, 0], [1, 1, 1]], dtype, "prewitt_y")


def laplacian(neighbours=4, dtype=np.float64):
    """3x3 discrete Laplacian. ``neighbours=4``: ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]`` (what
    ``cv2.Laplacian(ksize=1)`` and ``scipy.ndimage.laplace`` apply); ``neighbours=8``:
    ``[[1, 1, 1], [1, -8, 1], [1, 1, 1]]``."""
    if neighbours == 4 and not isinstance(neighbours, bool):
        return _out([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype, "laplacian")
    if neighbours == 8 and not isinstance(neighbours, bool):
        return _out([[1, 1, 1], [1, -8, 1], [1, 1, 1]], dtype, "laplacian")
    raise ValueError(f"laplacian: neighbours must be 4 or 8, but got {neighbours!r}")


def sharpen(amount=1.0, dtype=np.float64):
    """3x3 sharpening: the identity minus ``amount`` times the 4-neighbour Laplacian; ``amount=1`` is the
    classic ``[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]``. The taps sum to 1 (flat areas are unchanged)."""
    if isinstance(amount, (bool, np.bool_)) or not isinstance(amount, (int, float, np.integer, np.floating)):
        raise TypeError(f"sharpen: amount must be a real number, but got {amount!r}")
    a = float(amount)
    return _out([[0, -a, 0], [-a, 1 + 4 * a, -a], [0, -a, 0]], dtype, "sharpen")


def gaussian(size, sigma=None, dtype=np.float64):
    """A normalised Gaussian (taps sum to 1): ``exp(-x**2 / (2 sigma**2))`` on integer offsets from the
    centre, the outer product over the axes of ``size`` (an int: size x size; or a tuple of 1 to 3 ints).

    ``sigma``: a positive number or one per axis; None takes OpenCV's default for the size,
    ``0.3 * ((size - 1) * 0.5 - 1) + 0.8``. For an odd size, each axis equals
    ``cv2.getGaussianKernel(size, sigma)`` (explicit sigma), and with a zero boundary
    ``correlate(x, gaussian(size, s), "same")`` equals
    ``scipy.ndimage.gaussian_filter(x, s, mode="constant", truncate=(size // 2) / s)``.
    """
    fn = "gaussian"
    sizes = _sizes(size, fn)
    if sigma is None:
        sigmas = tuple(0.3 * ((n - 1) * 0.5 - 1) + 0.8 for n in sizes)
    elif isinstance(sigma, (int, float, np.integer, np.floating)) and not isinstance(sigma, (bool, np.bool_)):
        sigmas = (float(sigma),) * len(sizes)
    elif hasattr(sigma, "__len__") and not isinstance(sigma, (str, bytes)) and len(sigma) == len(sizes):
        sigmas = tuple(float(s) for s in sigma)
    else:
        raise TypeError(f"{fn}: sigma must be None, a number or {len(sizes)} numbers, but got {sigma!r}")
    if not all(np.isfinite(s) and s > 0 for s in sigmas):
        raise ValueError(f"{fn}: sigma must be positive and finite, but got {sigma!r}")
    kernel = np.ones((), np.float64)
    for n, s in zip(sizes, sigmas, strict=True):
        x = np.arange(n, dtype=np.float64) - (n - 1) / 2
        g = np.exp(-(x * x) / (2 * s * s))
        kernel = np.multiply.outer(kernel, g / g.sum())
    return kernel.astype(_dtype(dtype, fn))


def box(size, normalize=True, dtype=np.float64):
    """A box (moving-average) kernel of ``size`` (an int: size x size; or a tuple of 1 to 3 ints):
    every tap ``1 / taps`` (``normalize=True``, as ``cv2.blur``) or 1."""
    fn = "box"
    sizes = _sizes(size, fn)
    taps = int(np.prod(sizes))
    return np.full(sizes, 1.0 / taps if normalize else 1.0, dtype=_dtype(dtype, fn))


def identity(size=3, dtype=np.float64):
    """A kernel that passes the input through: zeros with a 1 at index ``size // 2`` on every axis
    (``size`` an int: size x size; or a tuple of 1 to 3 ints). ``correlate(x, identity(k), "same")`` is
    ``x`` for every ``k``; for an even size, ``convolve``/``correlate2d`` ``"same"`` shift by one sample
    (scipy's centring), so prefer odd sizes."""
    fn = "identity"
    sizes = _sizes(size, fn)
    kernel = np.zeros(sizes, dtype=_dtype(dtype, fn))
    kernel[tuple(n // 2 for n in sizes)] = 1
    return kernel


def separable(kernel, rtol=None):
    """``(column, row)`` with ``np.outer(column, row) == kernel`` (to ``rtol``) when the 2-D kernel has
    rank 1, else None.

    Rank 1 means the second singular value is at most ``rtol`` times the first (decided by the
    residual of the factors below where that settles it, else by an SVD; default ``rtol``: 16 x the
    dtype's machine epsilon x the longer side, so float rounding of an exactly separable kernel
    passes and nothing else does). The factors are taken from the row and column through
    the largest tap (``row = kernel[i, :]``, ``column = kernel[:, j] / kernel[i, j]``), which keeps small
    integer kernels such as Sobel exact; the SVD factors are used if those do not reproduce the kernel to
    ``rtol``. ``column`` gets the largest tap's sign so that it is positive there. float64 results; an
    all-zero kernel factors as zeros.
    """
    fn = "separable"
    k = A.float_array(kernel, "kernel", fn)
    if k.ndim != 2:
        raise ValueError(f"{fn}: kernel must be 2-D, but got shape {A.shape_str(k.shape)}")
    if k.size == 0:
        raise ValueError(f"{fn}: kernel is empty: shape {A.shape_str(k.shape)}")
    if not np.isfinite(k).all():
        return None
    if rtol is None:
        rtol = 16 * np.finfo(k.dtype).eps * max(k.shape)
    k = k.astype(np.float64)
    if not k.any():
        return np.zeros(k.shape[0]), np.zeros(k.shape[1])
    # The factors through the largest tap decide most kernels without an SVD (which costs more than
    # a small image's whole correlation): their residual bounds the second singular value from above
    # (s[1] <= residual), and to first order it is at most 4 x size times s[1] from below.
    i, j = np.unravel_index(np.argmax(np.abs(k)), k.shape)
    row = k[i, :].copy()
    column = k[:, j] / k[i, j]
    scale = np.linalg.norm(k)  # >= s[0] >= scale / sqrt(min(k.shape))
    residual = np.linalg.norm(np.outer(column, row) - k)
    if residual <= rtol * scale / np.sqrt(min(k.shape)):
        return column, row
    if 4 * k.size * rtol < 0.25 and residual > 4 * k.size * rtol * scale:
        return None
    u, s, vt = np.linalg.svd(k)
    if s.size > 1 and s[1] > rtol * s[0]:
        return None
    if residual > rtol * scale:
        column, row = u[:, 0] * np.sqrt(s[0]), vt[0] * np.sqrt(s[0])
        if column[i] < 0:
            column, row = -column, -row
    return column, row
