"""Layer arithmetic: output size, parameter count, FLOPs and receptive field of convolution layers.

The formulas are those fastconv's own functions apply (conv1d/2d/3d, conv_transpose1d/2d/3d and
``Convolution``), with the same padding forms and the same errors::

    forward:     out = (in + pad_begin + pad_end - dilation * (k - 1) - 1) // stride + 1
    transposed:  out = (in - 1) * stride - pad_begin - pad_end + dilation * (k - 1) + output_padding + 1

padding: an int, a tuple of ints (symmetric per dim), a tuple of (begin, end) pairs, "valid", "same"
(forward: out = ceil(in / stride), the odd extra pad at the end) or "same_lower" (extra pad at the
beginning); for transposed layers "same" gives out = in * stride. Sizes, kernel sizes, strides and
dilations are an int (every spatial dim) or a tuple with one entry per spatial dim; functions return an
int when every size argument is an int, else a tuple.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from . import _arguments as A

__all__ = ["ReceptiveField", "conv_output_size", "flops", "param_count", "receptive_field"]


def _nd(fn, *values):
    """The number of spatial dims: the length of the tuple arguments (they must agree), else 1. A padding
    tuple has one entry per dim (an int or a (begin, end) pair), so its length counts the same way."""
    lengths = {
        len(v) for v in values if not A._is_int(v) and hasattr(v, "__len__") and not isinstance(v, str)
    }
    if len(lengths) > 1:
        raise ValueError(
            f"{fn}: the size arguments have different numbers of spatial dims: {sorted(lengths)}"
        )
    nd = lengths.pop() if lengths else 1
    if not 1 <= nd <= 3:
        raise ValueError(f"{fn}: 1 to 3 spatial dims are supported, but got {nd}")
    return nd


def _scalar(values, *args):
    return values[0] if all(A._is_int(a) for a in args) else tuple(values)


def _sizes(fn, input_size, kernel_size, stride, padding, dilation, transposed, output_padding):
    nd = _nd(fn, input_size, kernel_size, stride, dilation, output_padding, padding)
    sizes = A.int_tuple(input_size, nd, "input_size", fn, 1)
    kernel = A.int_tuple(kernel_size, nd, "kernel_size", fn, 1)
    strides = A.int_tuple(stride, nd, "stride", fn, 1)
    dilations = A.int_tuple(dilation, nd, "dilation", fn, 1)
    output_paddings = A.int_tuple(output_padding, nd, "output_padding", fn, 0)
    if not transposed and any(output_paddings):
        raise ValueError(f"{fn}: output_padding is only for transposed convolution")
    for op, s, d in zip(output_paddings, strides, dilations, strict=True):
        if op >= max(s, d):
            raise ValueError(
                f"{fn}: output_padding={output_paddings} must be smaller than either stride={strides} or "
                f"dilation={dilations} in every dimension"
            )
    spec = A.padding_spec(padding, nd, fn)
    pairs = A.resolve_padding(spec, sizes, kernel, strides, dilations, output_paddings, transposed, fn)
    return sizes, kernel, strides, dilations, output_paddings, pairs


def conv_output_size(
    input_size, kernel_size, stride=1, padding=0, dilation=1, *, transposed=False, output_padding=0
):
    """The spatial output size of a convolution (or, ``transposed=True``, a transposed convolution), as
    fastconv's conv*d / conv_transpose*d compute it; a ValueError where they would raise one.

    >>> conv_output_size(224, 7, stride=2, padding=3)
    112
    >>> conv_output_size((15, 16), 3, stride=2, padding="same")
    (8, 8)
    >>> conv_output_size(16, 4, stride=2, padding=1, transposed=True)
    32
    """
    fn = "conv_output_size"
    parts = _sizes(fn, input_size, kernel_size, stride, padding, dilation, transposed, output_padding)
    out = A.output_sizes(fn, *parts, transposed)
    return _scalar(out, input_size, kernel_size, stride, dilation, output_padding)


def param_count(in_channels, out_channels, kernel_size, groups=1, bias=True, *, transposed=False):
    """Weights plus biases: ``C_out * C_in / groups * prod(kernel) + (C_out if bias)``; the same count for
    a transposed layer, whose weight is (C_in, C_out / groups, *kernel)."""
    fn = "param_count"
    cin = A.as_int(in_channels, "in_channels", fn, 1)
    cout = A.as_int(out_channels, "out_channels", fn, 1)
    g = A.as_int(groups, "groups", fn, 1)
    kernel = A.int_tuple(kernel_size, _nd(fn, kernel_size), "kernel_size", fn, 1)
    for name, c in (("in_channels", cin), ("out_channels", cout)):
        if c % g:
            raise ValueError(f"{fn}: groups={g} must divide {name}={c}")
    if not isinstance(bias, (bool, int)):
        raise TypeError(f"{fn}: bias must be True or False, but got {bias!r}")
    return cout * (cin // g) * math.prod(kernel) + (cout if bias else 0)


def flops(
    input_size,
    in_channels,
    out_channels,
    kernel_size,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    *,
    transposed=False,
    output_padding=0,
    batch=1,
):
    """Floating-point operations of the direct algorithm: multiply-adds x 2 (bias and padding not counted,
    the "GFLOP" of a conv layer, as the team's benchmark suite counts them).

    forward: ``2 * batch * prod(output size) * C_out * C_in / groups * prod(kernel)``;
    transposed: ``2 * batch * prod(input size) * C_in * C_out / groups * prod(kernel)`` (every input
    sample is scattered through the whole kernel). ``input_size`` is the spatial size only.
    """
    fn = "flops"
    cin = A.as_int(in_channels, "in_channels", fn, 1)
    cout = A.as_int(out_channels, "out_channels", fn, 1)
    g = A.as_int(groups, "groups", fn, 1)
    n = A.as_int(batch, "batch", fn, 0)
    for name, c in (("in_channels", cin), ("out_channels", cout)):
        if c % g:
            raise ValueError(f"{fn}: groups={g} must divide {name}={c}")
    parts = _sizes(fn, input_size, kernel_size, stride, padding, dilation, transposed, output_padding)
    sizes, kernel = parts[0], parts[1]
    out = A.output_sizes(fn, *parts, transposed)
    taps = math.prod(kernel)
    if transposed:
        return 2 * n * math.prod(sizes) * cin * (cout // g) * taps
    return 2 * n * math.prod(out) * cout * (cin // g) * taps


class ReceptiveField(NamedTuple):
    """Per spatial dim: ``size``, the input span one output sample sees (dilated kernels included, holes
    and all); ``jump``, the input distance between neighbouring outputs (the product of the strides);
    ``start``, the input coordinate of the centre of output 0's field (input sample i sits at
    coordinate i; negative when padding puts it before the first sample; x.5 for even spans).
    Output o sees inputs ``start + o * jump +/- (size - 1) / 2``."""

    size: tuple
    jump: tuple
    start: tuple


def _layer_fields(layer, fn, index):
    """(kernel_size, stride, padding, dilation) of one layer in any accepted form."""
    if hasattr(layer, "kernel") and hasattr(layer, "_padding"):  # a fastconv.Convolution plan
        if layer.transposed:
            raise ValueError(
                f"{fn}: layers[{index}] is a transposed convolution; only forward layers have a "
                "receptive field here"
            )
        kind, pairs = layer._padding
        return layer.kernel, layer.stride, pairs if kind == "pairs" else kind, layer.dilation
    if isinstance(layer, dict):
        unknown = set(layer) - {"kernel_size", "stride", "padding", "dilation"}
        if "kernel_size" not in layer or unknown:
            raise ValueError(
                f"{fn}: layers[{index}] must have the key 'kernel_size' and optionally 'stride', 'padding', "
                f"'dilation', but got {sorted(layer)}"
            )
        return layer["kernel_size"], layer.get("stride", 1), layer.get("padding", 0), layer.get("dilation", 1)
    if isinstance(layer, (tuple, list)) and 1 <= len(layer) <= 4:
        k, s, p, d = (*layer, *(1, 0, 1)[len(layer) - 1 :])
        return k, s, p, d
    raise TypeError(
        f"{fn}: layers[{index}] must be a fastconv.Convolution, a dict or a tuple (kernel_size, stride, "
        f"padding, dilation), but got {layer!r}"
    )


def receptive_field(layers, input_size=None):
    """The receptive field of a stack of forward convolution (or pooling) layers, first layer first.

    Each layer is a ``fastconv.Convolution``, a dict with ``kernel_size`` and optionally ``stride``,
    ``padding``, ``dilation``, or a tuple ``(kernel_size[, stride[, padding[, dilation]]])``; the padding
    forms are the conv functions'. ``input_size`` is needed only for ``padding="same"`` with a stride
    above 1 (where the split of the padding depends on the size); when given, every layer's output size
    is checked as the conv functions check it. Returns a :class:`ReceptiveField` of per-dim tuples.

        size_out  = size_in + dilation * (k - 1) * jump_in
        jump_out  = jump_in * stride
        start_out = start_in + (dilation * (k - 1) / 2 - pad_begin) * jump_in
    """
    fn = "receptive_field"
    if isinstance(layers, (str, bytes, dict)) or not hasattr(layers, "__iter__"):
        raise TypeError(f"{fn}: layers must be a list of layers, but got {layers!r}")
    specs = [_layer_fields(layer, fn, i) for i, layer in enumerate(layers)]
    nd = _nd(fn, *(v for spec in specs for v in spec), *(() if input_size is None else (input_size,)))
    sizes = None if input_size is None else A.int_tuple(input_size, nd, "input_size", fn, 1)
    field, jump, start = [1] * nd, [1] * nd, [0.0] * nd
    for i, (k, s, p, d) in enumerate(specs):
        kernel = A.int_tuple(k, nd, f"layers[{i}] kernel_size", fn, 1)
        strides = A.int_tuple(s, nd, f"layers[{i}] stride", fn, 1)
        dilations = A.int_tuple(d, nd, f"layers[{i}] dilation", fn, 1)
        spec = A.padding_spec(p, nd, fn)
        if spec[0] != "pairs" and sizes is None:
            if any(st > 1 for st in strides):
                raise ValueError(
                    f"{fn}: layers[{i}] has padding={spec[0]!r} with stride {strides}: its split depends "
                    "on the input size, so pass input_size"
                )
            in_sizes = tuple(
                dd * (kk - 1) + 1 for kk, dd in zip(kernel, dilations, strict=True)
            )  # any size gives the same
        else:
            in_sizes = sizes
        pairs = A.resolve_padding(spec, in_sizes, kernel, strides, dilations, (0,) * nd, False, fn)
        if sizes is not None:
            where = f"{fn}: layers[{i}]"
            sizes = A.output_sizes(where, sizes, kernel, strides, dilations, (0,) * nd, pairs, False)
        for a in range(nd):
            span = dilations[a] * (kernel[a] - 1)
            start[a] += (span / 2 - pairs[a][0]) * jump[a]
            field[a] += span * jump[a]
            jump[a] *= strides[a]
    return ReceptiveField(tuple(field), tuple(jump), tuple(start))
