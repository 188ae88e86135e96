"""Argument checking and normalisation: every bad argument becomes a ValueError or TypeError that
names the argument, what it got and what it needs, before any C code runs."""

from __future__ import annotations

import numbers
import operator

import numpy as np

from . import _core

# Per-dimension values above this are refused outright: no real layer comes near it, and it keeps
# every product the C layer forms far from 64-bit overflow.
MAX_DIM_VALUE = 2**40
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_NP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}
_LAYOUT_NAMES = {
    1: {"NCW": "channels_first", "NWC": "channels_last"},
    2: {"NCHW": "channels_first", "NHWC": "channels_last"},
    3: {"NCDHW": "channels_first", "NDHWC": "channels_last"},
}
ALGORITHMS = tuple(_core.ALGORITHMS)


def _is_int(value) -> bool:
    if type(value) is int:  # the common case, without the ABC machinery's cost
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def as_int(value, name: str, fn: str, minimum: int) -> int:
    if type(value) is int and minimum <= value < MAX_DIM_VALUE:
        return value
    if not _is_int(value):
        raise TypeError(f"{fn}: {name} must be an integer, but got {value!r} of type {type(value).__name__}")
    value = operator.index(value)
    if value < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, but got {value}")
    if value >= MAX_DIM_VALUE:
        raise ValueError(f"{fn}: {name}={value} is too large: values must be below 2**40")
    return value


def int_tuple(value, nd: int, name: str, fn: str, minimum: int) -> tuple[int, ...]:
    """An int for every spatial dim, or a sequence of nd ints."""
    if type(value) is int and minimum <= value < MAX_DIM_VALUE:
        return (value,) * nd
    if _is_int(value):
        return (as_int(value, name, fn, minimum),) * nd
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(f"{fn}: {name} must be an int or a tuple of {nd} ints, but got {value!r}")
    values = tuple(value)
    if len(values) != nd:
        raise ValueError(
            f"{fn}: {name} must be an int or a tuple of {nd} ints (one per spatial dimension), "
            f"but got {len(values)} values: {value!r}"
        )
    return tuple(as_int(v, name, fn, minimum) for v in values)


def padding_spec(padding, nd: int, fn: str):
    """("pairs", ((begin, end), ...)) or ("same" | "same_lower", None)."""
    if isinstance(padding, str):
        if padding == "valid":
            return "pairs", ((0, 0),) * nd
        if padding in ("same", "same_lower"):
            return padding, None
        raise ValueError(
            f"{fn}: padding={padding!r} is not a padding string: use 'valid', 'same' or 'same_lower', "
            "an int, a tuple of ints or a tuple of (begin, end) pairs"
        )
    if _is_int(padding):
        p = as_int(padding, "padding", fn, 0)
        return "pairs", ((p, p),) * nd
    if not hasattr(padding, "__len__"):
        raise TypeError(f"{fn}: padding must be an int, a string or a tuple, but got {padding!r}")
    values = tuple(padding)
    if len(values) != nd:
        raise ValueError(
            f"{fn}: padding must have one entry per spatial dimension ({nd}), but got {len(values)}: "
            f"{padding!r}"
        )
    pairs = []
    for v in values:
        if _is_int(v):
            p = as_int(v, "padding", fn, 0)
            pairs.append((p, p))
        elif hasattr(v, "__len__") and not isinstance(v, (str, bytes)) and len(v) == 2:
            pairs.append((as_int(v[0], "padding", fn, 0), as_int(v[1], "padding", fn, 0)))
        elif not hasattr(v, "__len__") or isinstance(v, (str, bytes)):
            raise TypeError(
                f"{fn}: padding entries must be ints or (begin, end) pairs, but got {v!r} in {padding!r}"
            )
        else:
            raise ValueError(
                f"{fn}: each padding entry must be an int or a (begin, end) pair, "
                f"but got {v!r} in {padding!r}"
            )
    return "pairs", tuple(pairs)


def resolve_padding(spec, in_size, kernel, stride, dilation, output_padding, transposed, fn):
    """The (begin, end) pairs for one input's spatial size."""
    kind, pairs = spec
    if kind == "pairs":
        return pairs
    resolved = []
    for i, k, s, d, op in zip(in_size, kernel, stride, dilation, output_padding, strict=True):
        span = d * (k - 1) + 1
        if transposed:
            total = op + span - s  # the padding that makes the output exactly in * stride
            if total < 0:
                raise ValueError(
                    f"{fn}: padding={kind!r} cannot give an output of input size x stride ({i} x {s}): "
                    f"the kernel spans only {span} (kernel {k}, dilation {d}) plus output_padding {op}, "
                    f"less than the stride {s}; pass explicit padding instead"
                )
        else:
            out = -(-i // s)
            total = max((out - 1) * s + span - i, 0)
        small, large = total // 2, total - total // 2
        resolved.append((small, large) if kind == "same" else (large, small))
    return tuple(resolved)


def layout_name(layout, nd: int, fn: str) -> str:
    if not isinstance(layout, str):
        raise TypeError(f"{fn}: layout must be a string, but got {layout!r}")
    if layout in ("channels_first", "channels_last"):
        return layout
    if layout in _LAYOUT_NAMES[nd]:
        return _LAYOUT_NAMES[nd][layout]
    names = ["channels_first", "channels_last", *_LAYOUT_NAMES[nd]]
    raise ValueError(f"{fn}: layout={layout!r} is not a {nd}-D layout: use one of {names}")


def padding_mode(mode, transposed: bool, fn: str) -> str:
    if not isinstance(mode, str) or mode not in PADDING_MODES:
        raise ValueError(f"{fn}: padding_mode={mode!r} is not one of {list(PADDING_MODES)}")
    if transposed and mode != "zeros":
        raise ValueError(
            f"{fn}: padding_mode={mode!r} is not supported for transposed convolution: only 'zeros'"
        )
    return mode


def algorithm_name(algorithm, fn: str) -> str:
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(f"{fn}: algorithm={algorithm!r} is not one of {list(ALGORITHMS)}")
    return algorithm


def num_threads(value, fn: str):
    """None (OpenMP's default) or a positive int; C clamps it to the processors available."""
    if value is None:
        return None
    return min(as_int(value, "num_threads", fn, 1), 2**31 - 1)


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_array(value, name: str, fn: str) -> np.ndarray:
    """A float32 or float64 ndarray (lists are converted); any other dtype is a TypeError."""
    if type(value) is np.ndarray and value.dtype in _FLOAT_DTYPES:
        return value
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{fn}: {name} must be a float32 or float64 array, but got {value!r}") from exc
    if value.dtype not in (np.float32, np.float64):
        raise TypeError(
            f"{fn}: {name} must have dtype float32 or float64, but got {value.dtype}; "
            f"convert it with {name}.astype(np.float32)"
        )
    return value


def same_dtype(array: np.ndarray, name: str, weight: np.ndarray, fn: str) -> None:
    if array.dtype != weight.dtype:
        raise TypeError(
            f"{fn}: {name} has dtype {array.dtype} but weight has dtype {weight.dtype}; "
            "they must match (convert one with .astype())"
        )


def shape_str(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def check_out(out, shape, dtype, arrays, fn: str) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fn}: out must be a numpy.ndarray, but got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(
            f"{fn}: out has shape {shape_str(out.shape)}, but the result has shape {shape_str(shape)}"
        )
    if out.dtype != dtype:
        raise ValueError(f"{fn}: out has dtype {out.dtype}, but the result has dtype {dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{fn}: out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{fn}: out is read-only; it must be writable")
    for name, a in arrays.items():
        if a is not None and _overlaps(out, a):
            raise ValueError(f"{fn}: out shares memory with {name}; it must be a separate array")
    return out


def _overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    if not np.may_share_memory(a, b):  # disjoint extents: the usual case, decided in nanoseconds
        return False
    try:
        return np.shares_memory(a, b, max_work=10**6)
    except np.exceptions.TooHardError:  # exotic strides: take the exact (slower) answer
        return np.shares_memory(a, b)


def pad_input(x: np.ndarray, pairs, mode: str, channel_axis: int, fn: str) -> np.ndarray:
    """Applies a non-zero padding mode with np.pad; the kernels then see no padding."""
    spatial_axes = [a for a in range(x.ndim) if a not in (0, channel_axis % x.ndim)]
    for axis, (b, e) in zip(spatial_axes, pairs, strict=True):
        size = x.shape[axis]
        if mode == "reflect" and max(b, e) >= size:
            raise ValueError(
                f"{fn}: reflect padding ({b}, {e}) must be smaller than the input size {size} in "
                f"spatial dimension {spatial_axes.index(axis)}"
            )
        if mode == "circular" and max(b, e) > size:
            raise ValueError(
                f"{fn}: circular padding ({b}, {e}) must not be larger than the input size {size} in "
                f"spatial dimension {spatial_axes.index(axis)}"
            )
    widths = [(0, 0)] * x.ndim
    for axis, pair in zip(spatial_axes, pairs, strict=True):
        widths[axis] = pair
    return np.pad(x, widths, mode=_NP_PAD_MODE[mode])


def output_sizes(fn, sizes, kernel, strides, dilations, output_paddings, pairs, transposed):
    """The spatial output size of a convolution or transposed convolution; a ValueError naming the
    dimension where it would be empty (shared by the conv functions and fastconv.shapes)."""
    out = []
    for dim, (i, k, s, d, op, (b, e)) in enumerate(
        zip(sizes, kernel, strides, dilations, output_paddings, pairs, strict=True)
    ):
        span = d * (k - 1) + 1
        if transposed:
            size = (i - 1) * s - b - e + span + op
            if size < 1:
                raise ValueError(
                    f"{fn}: the output would be empty in spatial dimension {dim}: input size {i}, "
                    f"kernel {k}, stride {s}, dilation {d}, padding ({b}, {e}) give {size}"
                )
        else:
            if i + b + e < span:
                raise ValueError(
                    f"{fn}: the padded input is {i + b + e} wide in spatial dimension {dim} (size {i} + "
                    f"padding ({b}, {e})), but the kernel spans {span} (kernel {k}, dilation {d}): the "
                    "kernel can't be larger than the padded input"
                )
            size = (i + b + e - span) // s + 1
        out.append(size)
    return tuple(out)
