"""fastconv: fast convolution on the CPU for numpy arrays.

conv1d/2d/3d and conv_transpose1d/2d/3d follow torch.nn.functional's names, argument order and
weight shapes; ``Convolution`` is a reusable plan that holds its weights (with ``tune=True`` it
measures which engine is fastest; ``save_tuning`` / ``load_tuning`` keep those choices).
correlate/convolve and correlate2d/convolve2d are scipy.signal-compatible; ``kernels`` holds
classic filters and ``shapes`` the layer arithmetic.
"""

from . import kernels, shapes
from ._api import (
    Convolution,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
from ._config import load_blas as _load_blas
from ._config import show_config
from ._tuning import clear_tuning, load_tuning, save_tuning
from .signal import convolve, convolve2d, correlate, correlate2d

__version__ = "0.1.0"

_load_blas()

__all__ = [
    "Convolution",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "show_config",
    "save_tuning",
    "load_tuning",
    "clear_tuning",
    "correlate",
    "convolve",
    "correlate2d",
    "convolve2d",
    "kernels",
    "shapes",
]
