"""The public convolution API: the plan class and the torch-compatible functions built on it."""

from __future__ import annotations

import math

import numpy as np

from . import _arguments as A
from . import _core

_WEIGHT_AXES = {1: "kW", 2: "kH, kW", 3: "kD, kH, kW"}


class Convolution:
    """A reusable convolution layer: the weights are copied and packed once, then the plan is called
    on inputs of any batch and spatial size, ``plan(x)``. Safe to call from several threads at once.

    Arguments are those of ``conv1d/2d/3d`` (or of ``conv_transpose*d`` with ``transposed=True``);
    the number of spatial dimensions is ``weight.ndim - 2``.
    """

    def __init__(
        self,
        weight,
        bias=None,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        *,
        transposed=False,
        output_padding=0,
        padding_mode="zeros",
        layout="channels_first",
        algorithm="auto",
        num_threads=None,
        spatial_dims=None,
        _name="Convolution",
        _borrow=False,
    ):
        fn = self._name = _name
        weight = A.float_array(weight, "weight", fn)
        nd = weight.ndim - 2 if spatial_dims is None else spatial_dims
        if weight.ndim != nd + 2 or not 1 <= nd <= 3:
            what = "(C_in, C_out/groups" if transposed else "(C_out, C_in/groups"
            need = f"{nd + 2}-D {what}, {_WEIGHT_AXES[nd]})" if 1 <= nd <= 3 else "3-D to 5-D"
            raise ValueError(
                f"{fn}: expected weight to be {need}, but got weight of shape {A.shape_str(weight.shape)}"
            )
        self.spatial_dims, self.transposed = nd, bool(transposed)
        self.groups = A.as_int(groups, "groups", fn, 1)
        rows, per_group = weight.shape[0], weight.shape[1]
        if transposed:
            if rows % self.groups:
                raise ValueError(
                    f"{fn}: groups={self.groups} must divide in_channels={rows} (weight.shape[0])"
                )
            in_channels, out_channels = rows, per_group * self.groups
        else:
            if rows % self.groups:
                raise ValueError(
                    f"{fn}: groups={self.groups} must divide out_channels={rows} (weight.shape[0])"
                )
            in_channels, out_channels = per_group * self.groups, rows
        if any(k == 0 for k in weight.shape[2:]):
            raise ValueError(f"{fn}: weight has an empty kernel: shape {A.shape_str(weight.shape)}")
        if bias is not None:
            bias = A.float_array(bias, "bias", fn)
            A.same_dtype(bias, "bias", weight, fn)
            if bias.shape != (out_channels,):
                raise ValueError(
                    f"{fn}: expected bias of shape [{out_channels}] (one per output channel), "
                    f"but got bias of shape {A.shape_str(bias.shape)}"
                )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel = tuple(weight.shape[2:])
        self.stride = A.int_tuple(stride, nd, "stride", fn, 1)
        self.dilation = A.int_tuple(dilation, nd, "dilation", fn, 1)
        self.output_padding = A.int_tuple(output_padding, nd, "output_padding", fn, 0)
        if not transposed and any(self.output_padding):
            raise ValueError(f"{fn}: output_padding is only for transposed convolution")
        self._check_output_padding(self.output_padding)
        self._padding = A.padding_spec(padding, nd, fn)
        self.padding_mode = A.padding_mode(padding_mode, self.transposed, fn)
        self.layout = A.layout_name(layout, nd, fn)
        self.num_threads = A.num_threads(num_threads, fn)
        self.requested_algorithm = A.algorithm_name(algorithm, fn)
        self.dtype = weight.dtype
        self._layer = {
            "spatial_dims": nd,
            "transposed": self.transposed,
            "dtype": self.dtype.name,
            "layout": self.layout,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "groups": self.groups,
            "kernel": self._to3(self.kernel, 1),
            "stride": self._to3(self.stride, 1),
            "dilation": self._to3(self.dilation, 1),
            "output_padding": self._to3(self.output_padding, 0),
        }
        if self.requested_algorithm != "auto":
            reason = _core.unsupported_reason(self._layer, self.requested_algorithm)
            if reason:
                raise ValueError(
                    f"{fn}: algorithm={self.requested_algorithm!r} cannot run this layer: {reason}"
                )
        self.weight = np.ascontiguousarray(weight)
        self.bias = None if bias is None else np.ascontiguousarray(bias)
        # The functional API's one-shot plans borrow the arrays: the call returns before the caller
        # can change them, and a copy would cost as much as a small layer.
        self._plan = _core.Plan(self._layer, self.weight, self.bias, self.requested_algorithm, _borrow)
        self.algorithm = self.requested_algorithm
        self._geometry = {}  # (input shape, dtype) -> what __call__ derived from them

    def _bound_to(self, weight, bias):
        """A borrowed plan with this one's checked arguments on other arrays of the same shapes and
        dtypes (the functional API's repeated calls)."""
        plan = object.__new__(Convolution)
        plan.__dict__.update(self.__dict__)
        plan.weight = np.ascontiguousarray(weight)
        plan.bias = None if bias is None else np.ascontiguousarray(bias)
        plan._plan = _core.Plan(plan._layer, plan.weight, plan.bias, plan.requested_algorithm, True)
        return plan

    def _to3(self, values, neutral):
        return (neutral,) * (3 - len(values)) + tuple(values)

    def _check_output_padding(self, output_padding):
        for op, s, d in zip(output_padding, self.stride, self.dilation, strict=True):
            if op >= max(s, d):
                raise ValueError(
                    f"{self._name}: output_padding={tuple(output_padding)} must be smaller than either "
                    f"stride={self.stride} or dilation={self.dilation} in every dimension"
                )

    @property
    def memory(self) -> int:
        """Bytes held by the plan in C (weights, packed copies and bias)."""
        return self._plan.memory

    def _output_padding_for(self, output_size, in_size, pairs, batch, unbatched):
        """torch's output_size: picks output_padding so the result has exactly that size. It may
        also give the leading dims, (N, C, *spatial), or (C, *spatial) for an unbatched input."""
        fn, nd = self._name, self.spatial_dims
        if output_size is None:
            return self.output_padding
        if not self.transposed:
            raise ValueError(f"{fn}: output_size is only for transposed convolution")
        if self._padding[0] != "pairs":
            raise ValueError(
                f"{fn}: output_size cannot be combined with padding={self._padding[0]!r}, which already "
                "fixes the output size (input size x stride)"
            )
        if isinstance(output_size, (str, bytes)) or not hasattr(output_size, "__len__"):
            raise TypeError(f"{fn}: output_size must be a sequence of {nd} ints, but got {output_size!r}")
        sizes = tuple(output_size)
        leading = (self.out_channels,) if unbatched else (batch, self.out_channels)
        if len(sizes) == nd + len(leading):
            if tuple(sizes[: len(leading)]) != leading:
                raise ValueError(
                    f"{fn}: output_size={tuple(output_size)} starts with {tuple(sizes[: len(leading)])}, "
                    f"but the result's leading dimensions are {leading}"
                )
            sizes = sizes[len(leading) :]
        if len(sizes) != nd:
            raise ValueError(
                f"{fn}: output_size must have {nd} (or {nd + len(leading)}) entries, but got {output_size!r}"
            )
        sizes = tuple(A.as_int(v, "output_size", fn, 1) for v in sizes)
        padding = []
        for i, want, k, s, d, (b, e) in zip(
            in_size, sizes, self.kernel, self.stride, self.dilation, pairs, strict=True
        ):
            smallest = (i - 1) * s - b - e + d * (k - 1) + 1
            largest = smallest + max(s, d) - 1
            if not smallest <= want <= largest:
                raise ValueError(
                    f"{fn}: output_size={sizes} cannot be reached: valid sizes range from "
                    f"{self._sizes(in_size, pairs, 0)} to {self._sizes(in_size, pairs, None)} "
                    "(for an input of spatial size " + str(tuple(in_size)) + ")"
                )
            padding.append(want - smallest)
        return tuple(padding)

    def _sizes(self, in_size, pairs, output_padding):
        return tuple(
            (i - 1) * s
            - b
            - e
            + d * (k - 1)
            + 1
            + (max(s, d) - 1 if output_padding is None else output_padding)
            for i, k, s, d, (b, e) in zip(
                in_size, self.kernel, self.stride, self.dilation, pairs, strict=True
            )
        )

    def _prepare(self, x, fn):
        """Checks the input; returns (batched input, unbatched?, spatial size)."""
        nd = self.spatial_dims
        x = A.float_array(x, "input", fn)
        A.same_dtype(x, "input", self.weight, fn)
        if x.ndim not in (nd + 1, nd + 2):
            raise ValueError(
                f"{fn}: expected {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
                f"but got input of shape {A.shape_str(x.shape)}"
            )
        given_shape, unbatched = x.shape, x.ndim == nd + 1
        if unbatched:
            x = x[np.newaxis]
        channel_axis = 1 if self.layout == "channels_first" else -1
        if x.shape[channel_axis] != self.in_channels:
            kind = "weight" if not self.transposed else "transposed weight"
            raise ValueError(
                f"{fn}: given groups={self.groups}, {kind} of shape {A.shape_str(self.weight.shape)}, "
                f"expected input{A.shape_str(given_shape)} to have {self.in_channels} channels, but got "
                f"{x.shape[channel_axis]} channels instead"
            )
        spatial = x.shape[2:] if channel_axis == 1 else x.shape[1:-1]
        if any(s == 0 for s in spatial):
            raise ValueError(f"{fn}: input has an empty spatial dimension: shape {A.shape_str(x.shape)}")
        return x, unbatched, tuple(spatial), channel_axis

    def choose(self, x) -> str:
        """The engine ``plan(x)`` would run."""
        x, _, spatial, channel_axis = self._prepare(x, self._name)
        pairs = self._pairs(spatial)
        return self._plan.choose(x.shape[0], self._to3(spatial, 1), *self._pads(pairs), self._threads())

    def _pairs(self, spatial):
        return A.resolve_padding(
            self._padding,
            spatial,
            self.kernel,
            self.stride,
            self.dilation,
            self.output_padding,
            self.transposed,
            self._name,
        )

    def _pads(self, pairs):
        return self._to3([b for b, _ in pairs], 0), self._to3([e for _, e in pairs], 0)

    def _threads(self, num_threads=None):
        return num_threads or self.num_threads or 0

    def __call__(self, x, *, out=None, output_size=None, num_threads=None, _fn=None):
        fn = _fn or self._name
        # An input of a shape and dtype seen before passes the same checks to the same geometry.
        key = (x.shape, x.dtype) if type(x) is np.ndarray and out is None and output_size is None else None
        geometry = self._geometry.get(key) if key else None
        if geometry is not None:
            threads = self._threads(A.num_threads(num_threads, fn))
            return self._execute(x[np.newaxis] if geometry[0] else x, geometry, threads, None)
        x, unbatched, spatial, channel_axis = self._prepare(x, fn)
        given = x
        threads = self._threads(A.num_threads(num_threads, fn))
        pairs = self._pairs(spatial)
        output_padding = self._output_padding_for(output_size, spatial, pairs, x.shape[0], unbatched)
        if output_padding != self.output_padding:
            plan = Convolution(
                self.weight,
                self.bias,
                self.stride,
                pairs,
                self.dilation,
                self.groups,
                transposed=True,
                output_padding=output_padding,
                layout=self.layout,
                algorithm=self.requested_algorithm,
                _name=fn,
            )
            result = plan(x[0] if unbatched else x, out=out, num_threads=threads or None, _fn=fn)
            self.algorithm = plan.algorithm
            return result
        if self.padding_mode != "zeros":
            x = A.pad_input(x, pairs, self.padding_mode, channel_axis, fn)
            spatial = x.shape[2:] if channel_axis == 1 else x.shape[1:-1]
            pairs = ((0, 0),) * self.spatial_dims
        out_spatial = self._out_spatial(spatial, pairs, x.shape[0], fn)
        batch = x.shape[0]
        if self.layout == "channels_first":
            shape = (batch, self.out_channels, *out_spatial)
        else:
            shape = (batch, *out_spatial, self.out_channels)
        user_shape = shape[1:] if unbatched else shape
        if out is not None:
            A.check_out(
                out, user_shape, self.dtype, {"input": given, "weight": self.weight, "bias": self.bias}, fn
            )
        geometry = (unbatched, shape, self._to3(spatial, 1), *self._pads(pairs))
        if key and self.padding_mode == "zeros":
            if len(self._geometry) >= _GEOMETRIES_KEPT:
                self._geometry.clear()
            self._geometry[key] = geometry
        return self._execute(x, geometry, threads, out)

    def _execute(self, x, geometry, threads, out):
        """Runs the plan on the batched input x; returns out, or the new result."""
        unbatched, shape, in3, pb, pe = geometry
        result = np.empty(shape, dtype=self.dtype) if out is None else out.reshape(shape)
        x = np.ascontiguousarray(x)
        if result.size:
            self.algorithm = self._plan.execute(x, result, shape[0], in3, pb, pe, threads)
        else:
            self.algorithm = self._plan.choose(shape[0], in3, pb, pe, threads)
        if out is not None:
            return out
        return result[0] if unbatched else result

    def _out_spatial(self, spatial, pairs, batch, fn):
        sizes = A.output_sizes(
            fn, spatial, self.kernel, self.stride, self.dilation, self.output_padding, pairs, self.transposed
        )
        total = math.prod(sizes) * self.out_channels * batch
        if total >= 2**58:
            shape = (batch, self.out_channels, *sizes)
            raise ValueError(
                f"{fn}: the output would have shape {A.shape_str(shape)} ({total} elements), which is "
                f"too large (input of batch {batch}, spatial size {tuple(spatial)})"
            )
        return tuple(sizes)

    def __repr__(self):
        kind = "transposed " if self.transposed else ""
        return (
            f"<fastconv.Convolution {kind}{self.spatial_dims}-D {self.in_channels}->{self.out_channels}, "
            f"kernel {self.kernel}, stride {self.stride}, dilation {self.dilation}, groups {self.groups}, "
            f"{self.layout}, {self.dtype}, algorithm {self.requested_algorithm!r}>"
        )


# Checked functional-call settings -> a Convolution without arrays (see _functional_plan), and how
# many of each cache are kept before they are emptied.
_CHECKED_SETTINGS: dict = {}
_SETTINGS_KEPT = 256
_GEOMETRIES_KEPT = 64


def _plain(value) -> bool:
    """Exact ints, strings, None and tuples of them: values that compare equal only when every
    check treats them alike (1, 1.0, True and np.int64(1) are all equal, but not all accepted)."""
    kind = type(value)
    return kind is int or kind is str or value is None or (kind is tuple and all(map(_plain, value)))


def _functional_plan(settings, weight, bias, make):
    """The borrowed plan of one functional call. Checking the settings costs more than a small
    layer's arithmetic, and calls that repeat them with plain values and arrays of the same types,
    shapes and dtypes pass the same checks: the first such call's checked plan is kept without its
    arrays, and later calls bind theirs to a copy of it."""
    key = None
    if type(weight) is np.ndarray and (bias is None or type(bias) is np.ndarray) and _plain(settings):
        arrays = (weight.shape, weight.dtype) + (() if bias is None else (bias.shape, bias.dtype))
        key = settings + arrays
        checked = _CHECKED_SETTINGS.get(key)
        if checked is not None:
            return checked._bound_to(weight, bias)
    plan = make()
    if key is not None:
        if len(_CHECKED_SETTINGS) >= _SETTINGS_KEPT:
            _CHECKED_SETTINGS.clear()
        checked = object.__new__(Convolution)
        checked.__dict__.update(plan.__dict__)
        checked.weight = checked.bias = checked._plan = None  # the caller's arrays are not kept
        _CHECKED_SETTINGS[key] = checked
    return plan


def _convolution(
    nd,
    name,
    input,
    weight,
    bias,
    stride,
    padding,
    dilation,
    groups,
    padding_mode,
    layout,
    algorithm,
    out,
    num_threads,
):
    settings = (nd, name, stride, padding, dilation, groups, padding_mode, layout, algorithm, num_threads)
    plan = _functional_plan(
        settings,
        weight,
        bias,
        lambda: Convolution(
            weight,
            bias,
            stride,
            padding,
            dilation,
            groups,
            padding_mode=padding_mode,
            layout=layout,
            algorithm=algorithm,
            num_threads=num_threads,
            spatial_dims=nd,
            _name=name,
            _borrow=True,
        ),
    )
    return plan(input, out=out)


def _transposed(
    nd,
    name,
    input,
    weight,
    bias,
    stride,
    padding,
    output_padding,
    groups,
    dilation,
    output_size,
    padding_mode,
    layout,
    algorithm,
    out,
    num_threads,
):
    settings = (nd, name, stride, padding, output_padding, groups, dilation, padding_mode, layout, algorithm)
    plan = _functional_plan(
        settings + (num_threads, "transposed"),
        weight,
        bias,
        lambda: Convolution(
            weight,
            bias,
            stride,
            padding,
            dilation,
            groups,
            transposed=True,
            output_padding=output_padding,
            padding_mode=padding_mode,
            layout=layout,
            algorithm=algorithm,
            num_threads=num_threads,
            spatial_dims=nd,
            _name=name,
            _borrow=True,
        ),
    )
    return plan(input, out=out, output_size=output_size)


def conv1d(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    *,
    padding_mode="zeros",
    layout="channels_first",
    algorithm="auto",
    out=None,
    num_threads=None,
):
    """1-D convolution (cross-correlation, as in torch.nn.functional.conv1d)."""
    return _convolution(
        1,
        "conv1d",
        input,
        weight,
        bias,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        layout,
        algorithm,
        out,
        num_threads,
    )


def conv2d(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    *,
    padding_mode="zeros",
    layout="channels_first",
    algorithm="auto",
    out=None,
    num_threads=None,
):
    """2-D convolution (cross-correlation, as in torch.nn.functional.conv2d)."""
    return _convolution(
        2,
        "conv2d",
        input,
        weight,
        bias,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        layout,
        algorithm,
        out,
        num_threads,
    )


def conv3d(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    *,
    padding_mode="zeros",
    layout="channels_first",
    algorithm="auto",
    out=None,
    num_threads=None,
):
    """3-D convolution (cross-correlation, as in torch.nn.functional.conv3d)."""
    return _convolution(
        3,
        "conv3d",
        input,
        weight,
        bias,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        layout,
        algorithm,
        out,
        num_threads,
    )


def conv_transpose1d(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
    *,
    output_size=None,
    padding_mode="zeros",
    layout="channels_first",
    algorithm="auto",
    out=None,
    num_threads=None,
):
    """1-D transposed convolution (as torch.nn.functional.conv_transpose1d)."""
    return _transposed(
        1,
        "conv_transpose1d",
        input,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        output_size,
        padding_mode,
        layout,
        algorithm,
        out,
        num_threads,
    )


def conv_transpose2d(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
    *,
    output_size=None,
    padding_mode="zeros",
    layout="channels_first",
    algorithm="auto",
    out=None,
    num_threads=None,
):
    """2-D transposed convolution (as torch.nn.functional.conv_transpose2d)."""
    return _transposed(
        2,
        "conv_transpose2d",
        input,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        output_size,
        padding_mode,
        layout,
        algorithm,
        out,
        num_threads,
    )


def conv_transpose3d(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
    *,
    output_size=None,
    padding_mode="zeros",
    layout="channels_first",
    algorithm="auto",
    out=None,
    num_threads=None,
):
    """3-D transposed convolution (as torch.nn.functional.conv_transpose3d)."""
    return _transposed(
        3,
        "conv_transpose3d",
        input,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        output_size,
        padding_mode,
        layout,
        algorithm,
        out,
        num_threads,
    )
