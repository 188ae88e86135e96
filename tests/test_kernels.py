"""fastconv.kernels: values, orientation (against scipy.ndimage), dtypes, and the rank-1 factoring."""

import fastconv
import numpy as np
import pytest
from fastconv import kernels


def image(shape=(23, 19), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_values_and_dtypes():
    assert kernels.sobel_x().tolist() == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    assert np.array_equal(kernels.sobel_y(), kernels.sobel_x().T)
    assert kernels.prewitt_x().tolist() == [[-1, 0, 1]] * 3
    assert np.array_equal(kernels.prewitt_y(), kernels.prewitt_x().T)
    assert kernels.laplacian().tolist() == [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
    assert kernels.laplacian(8).tolist() == [[1, 1, 1], [1, -8, 1], [1, 1, 1]]
    assert kernels.sharpen().tolist() == [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]
    assert kernels.sharpen(0.5).sum() == 1.0
    assert kernels.identity(3).tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert kernels.identity((1, 4))[0, 2] == 1 and kernels.identity((1, 4)).sum() == 1
    assert kernels.box(3).shape == (3, 3) and np.allclose(kernels.box((2, 5)).sum(), 1.0)
    assert np.array_equal(kernels.box(2, normalize=False), np.ones((2, 2)))
    assert kernels.box((4,)).shape == (4,) and kernels.gaussian((3, 3, 3), 1.0).shape == (3, 3, 3)
    for make in (
        kernels.sobel_x,
        kernels.sobel_y,
        kernels.prewitt_x,
        kernels.prewitt_y,
        kernels.laplacian,
        kernels.sharpen,
        lambda dtype: kernels.gaussian(5, 1.0, dtype=dtype),
        lambda dtype: kernels.box(3, dtype=dtype),
        lambda dtype: kernels.identity(3, dtype=dtype),
    ):
        assert make(dtype=np.float64).dtype == np.float64
        k32 = make(dtype=np.float32)
        assert k32.dtype == np.float32 and k32.flags.c_contiguous
        np.testing.assert_allclose(k32, make(dtype=np.float64), rtol=1e-7)
    with pytest.raises(TypeError, match=r"sobel_x: dtype must be float32 or float64, but got int64"):
        kernels.sobel_x(dtype=np.int64)
    with pytest.raises(ValueError, match=r"laplacian: neighbours must be 4 or 8, but got 6"):
        kernels.laplacian(6)
    with pytest.raises(ValueError, match=r"gaussian: size must be >= 1, but got 0"):
        kernels.gaussian(0)
    with pytest.raises(ValueError, match=r"gaussian: sigma must be positive"):
        kernels.gaussian(3, -1.0)
    with pytest.raises(TypeError, match=r"box: size must be an int or a tuple of ints"):
        kernels.box("3")


def test_gaussian():
    g = kernels.gaussian(7, 1.5)
    assert np.isclose(g.sum(), 1.0) and np.allclose(g, g.T) and np.allclose(g, g[::-1, ::-1])
    x = np.arange(7) - 3.0
    row = np.exp(-(x**2) / (2 * 1.5**2))
    np.testing.assert_allclose(g, np.outer(row, row) / row.sum() ** 2, rtol=1e-14)
    # OpenCV's default sigma for the size
    default = kernels.gaussian(9)
    sigma = 0.3 * ((9 - 1) * 0.5 - 1) + 0.8
    np.testing.assert_allclose(default, kernels.gaussian(9, sigma), rtol=1e-15)
    anisotropic = kernels.gaussian((3, 5), (0.7, 2.0))
    assert anisotropic.shape == (3, 5)
    np.testing.assert_allclose(
        anisotropic, np.outer(kernels.gaussian((3,), 0.7), kernels.gaussian((5,), 2.0))
    )


def test_gaussian_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    for size, sigma in [(5, 1.0), (9, 2.5), (3, 0.8)]:  # OpenCV defines odd sizes only
        column = cv2.getGaussianKernel(size, sigma, ktype=cv2.CV_64F)
        np.testing.assert_allclose(kernels.gaussian(size, sigma), column @ column.T, rtol=1e-12)


def test_orientation_matches_scipy_ndimage():
    ndimage = pytest.importorskip("scipy.ndimage")
    x = image()
    same = {"mode": "constant", "cval": 0.0}
    np.testing.assert_allclose(
        fastconv.correlate(x, kernels.sobel_x(), "same"), ndimage.sobel(x, 1, **same), atol=1e-12
    )
    np.testing.assert_allclose(
        fastconv.correlate(x, kernels.sobel_y(), "same"), ndimage.sobel(x, 0, **same), atol=1e-12
    )
    np.testing.assert_allclose(
        fastconv.correlate(x, kernels.prewitt_x(), "same"), ndimage.prewitt(x, 1, **same), atol=1e-12
    )
    np.testing.assert_allclose(
        fastconv.correlate(x, kernels.prewitt_y(), "same"), ndimage.prewitt(x, 0, **same), atol=1e-12
    )
    np.testing.assert_allclose(
        fastconv.correlate(x, kernels.laplacian(), "same"), ndimage.laplace(x, **same), atol=1e-12
    )
    for size, sigma in [(5, 1.0), (9, 1.7), (7, 3.0)]:
        ref = ndimage.gaussian_filter(x, sigma, truncate=(size // 2) / sigma, **same)
        np.testing.assert_allclose(
            fastconv.correlate(x, kernels.gaussian(size, sigma), "same"), ref, atol=1e-12
        )
    # brightening to the right is a positive x derivative; with convolve the sign flips
    ramp = np.tile(np.arange(8.0), (6, 1))
    inner = (slice(1, -1), slice(1, -1))
    assert np.all(fastconv.correlate2d(ramp, kernels.sobel_x(), "same")[inner] == 8)
    assert np.all(fastconv.convolve2d(ramp, kernels.sobel_x(), "same")[inner] == -8)
    assert np.all(fastconv.correlate2d(ramp.T, kernels.sobel_y(), "same")[inner[::-1]] == 8)


def test_identity_and_box_and_sharpen_act_as_documented():
    x = image((11, 12), seed=2)
    for k in (1, 2, 3, 4, 5):
        assert np.array_equal(fastconv.correlate(x, kernels.identity(k), "same"), x)
    for k in (1, 3, 5):
        assert np.array_equal(fastconv.convolve(x, kernels.identity(k), "same"), x)
        assert np.array_equal(fastconv.correlate2d(x, kernels.identity(k), "same"), x)
    flat = np.full((9, 9), 3.0)
    np.testing.assert_allclose(fastconv.correlate2d(flat, kernels.box(3), "same", "symm"), flat)
    np.testing.assert_allclose(fastconv.correlate2d(flat, kernels.sharpen(), "same", "symm"), flat)
    np.testing.assert_allclose(fastconv.correlate2d(flat, kernels.gaussian(5), "same", "wrap"), flat)


def test_separable_factors():
    column, row = kernels.separable(kernels.sobel_x())
    assert column.tolist() == [0.5, 1.0, 0.5] and row.tolist() == [
        -2.0,
        0.0,
        2.0,
    ]  # exact for integer kernels
    assert np.array_equal(np.outer(column, row), kernels.sobel_x())
    for k in (
        kernels.sobel_y(),
        kernels.prewitt_x(),
        kernels.box((3, 5)),
        kernels.gaussian((5, 9), (1.0, 2.0)),
        kernels.identity(4),
        kernels.gaussian(15, dtype=np.float32),
    ):
        pair = kernels.separable(k)
        assert pair is not None
        np.testing.assert_allclose(
            np.outer(*pair), k, rtol=0, atol=4 * np.finfo(k.dtype).eps * np.abs(k).max()
        )
    rng = np.random.default_rng(1)
    outer = np.outer(rng.standard_normal(7), rng.standard_normal(4))
    column, row = kernels.separable(outer)
    np.testing.assert_allclose(np.outer(column, row), outer, rtol=1e-13, atol=1e-14)
    assert column[np.argmax(np.abs(column))] > 0
    for k in (
        kernels.laplacian(),
        kernels.laplacian(8),
        kernels.sharpen(),
        rng.standard_normal((3, 3)),
        outer + 1e-6 * rng.standard_normal(outer.shape),
    ):
        assert kernels.separable(k) is None
    # looser tolerance accepts a nearly rank-1 kernel
    assert kernels.separable(outer + 1e-9 * rng.standard_normal(outer.shape), rtol=1e-6) is not None
    z0, z1 = kernels.separable(np.zeros((2, 3)))
    assert not z0.any() and not z1.any() and z0.shape == (2,) and z1.shape == (3,)
    assert kernels.separable(np.array([[np.inf, 1.0], [1.0, 1.0]])) is None
    with pytest.raises(ValueError, match=r"separable: kernel must be 2-D, but got shape \[3\]"):
        kernels.separable(np.ones(3))
    with pytest.raises(
        TypeError, match=r"separable: kernel must have dtype float32 or float64, but got int64"
    ):
        kernels.separable(np.ones((3, 3), dtype=np.int64))


@pytest.mark.parametrize("shape", [(3, 3), (2, 7), (9, 4), (31, 31)])
def test_separable_decides_as_the_singular_values(shape):
    """The residual shortcut gives the SVD rule's answer: rank 1 exactly when s[1] <= rtol * s[0],
    for kernels from exactly separable to far from it, including near the threshold."""
    rng = np.random.default_rng(sum(shape))
    rtol = 1e-6
    for noise in (0.0, 1e-12, 1e-9, 3e-8, 1e-7, 3e-7, 1e-6, 3e-6, 1e-5, 1e-3, 1.0):
        for _ in range(5):
            k = np.outer(rng.standard_normal(shape[0]), rng.standard_normal(shape[1]))
            k += noise * np.abs(k).max() * rng.standard_normal(shape)
            s = np.linalg.svd(k, compute_uv=False)
            pair = kernels.separable(k, rtol=rtol)
            assert (pair is not None) == (s[1] <= rtol * s[0]), (noise, s[1] / s[0])
            if pair is not None:
                np.testing.assert_allclose(np.outer(*pair), k, rtol=0, atol=4 * rtol * s[0])
