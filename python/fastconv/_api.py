"""The public convolution API: the plan class and the torch-compatible functions built on it."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from . import _arguments as A
from . import _core, _tuning

_WEIGHT_AXES = {1: "kW", 2: "kH, kW", 3: "kD, kH, kW"}


class _Decision(NamedTuple):
    """How one call picked its engine, for explain()."""

    geometry: tuple  # (batch, in_size, pad_begin, pad_end, num_threads), as the C plan takes them
    engine: str  # what the C plan was asked to run: an engine, or "auto" (its cost model)
    choice: _tuning.Choice | None  # the measured choice behind engine
    used: str | None  # the engine that ran; None when explaining an input without running it


def _restore(weight, bias, options):
    """Unpickles a Convolution: a new plan from the weights and options (machine state is rebuilt)."""
    return Convolution(weight, bias, **options)


class Convolution:
    """A reusable convolution layer: the weights are copied and packed once, then the plan is called
    on inputs of any batch and spatial size, ``plan(x)``. Safe to call from several threads at once.

    Arguments are those of ``conv1d/2d/3d`` (or of ``conv_transpose*d`` with ``transposed=True``);
    the number of spatial dimensions is ``weight.ndim - 2``.

    With ``algorithm="auto"`` the engine is picked per call: a measured choice for the layer and the
    input's geometry (batch, spatial size, padding, thread count) when this process has one, else the
    cost model. ``tune=True`` measures: the first call of each input geometry times every engine that
    can run the layer and keeps the fastest for every auto plan of the layer in this process
    (``fastconv.save_tuning`` / ``load_tuning`` keep the choices across processes). ``tune`` may also
    list the engines to time, e.g. ``tune=["direct", "winograd"]``: the only way an opt-in engine is
    measured. ``plan.algorithm`` is the engine of the latest call and ``plan.explain()`` says why.

    Threads: the plan is immutable once made, so several Python threads may call it at once and get
    the results of the same calls made one after another; measurements are serialised by a lock.
    ``plan.algorithm`` and ``explain()`` describe the latest call of any thread.

    Pickling keeps the weights, bias and options; the packed weights and measured choices belong to
    the process and are rebuilt (or measured again) where the plan is unpickled.
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
        tune=False,
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
        self._candidates = self._tune_candidates(tune)
        self.weight = np.ascontiguousarray(weight)
        self.bias = None if bias is None else np.ascontiguousarray(bias)
        # The functional API's one-shot plans borrow the arrays: the call returns before the caller
        # can change them, and a copy would cost as much as a small layer. They prepare an engine
        # for each call, so the measured choices (made with prepared engines) are not theirs.
        self._borrowed = bool(_borrow)
        self._plan = _core.Plan(self._layer, self.weight, self.bias, self.requested_algorithm, _borrow)
        self._layer_key = _tuning.layer_key(self._layer)
        self.algorithm = self.requested_algorithm
        self._last: _Decision | None = None
        self._geometry = {}  # (input shape, dtype) -> what __call__ derived from them
        self._options = {
            "stride": self.stride,
            "padding": self._padding[1] if self._padding[0] == "pairs" else self._padding[0],
            "dilation": self.dilation,
            "groups": self.groups,
            "transposed": self.transposed,
            "output_padding": self.output_padding,
            "padding_mode": self.padding_mode,
            "layout": self.layout,
            "algorithm": self.requested_algorithm,
            "num_threads": self.num_threads,
            "spatial_dims": nd,
            "tune": tune if isinstance(tune, bool) else list(self._candidates),
            "_name": fn,
        }

    @functools.cached_property
    def _engines(self) -> list:
        """The engines that can run the layer (computed on first use: one-shot plans never ask)."""
        return [a for a in A.ALGORITHMS if a != "auto" and not _core.unsupported_reason(self._layer, a)]

    def _tune_candidates(self, tune) -> tuple:
        """The engines tuning times: those that can run the layer, less the opt-in ones, or those listed."""
        fn = self._name
        if tune is False:
            return ()
        if self.requested_algorithm != "auto":
            raise ValueError(
                f"{fn}: tune={tune!r} measures which engine to run, so it needs algorithm='auto', "
                f"but got algorithm={self.requested_algorithm!r}"
            )
        if tune is True:
            return tuple(a for a in self._engines if a not in _tuning.OPT_IN)
        if isinstance(tune, (str, bytes)) or not hasattr(tune, "__iter__"):
            raise TypeError(f"{fn}: tune must be True, False or a list of engine names, but got {tune!r}")
        names = tuple(tune)
        for name in names:
            if name not in A.ALGORITHMS or name == "auto":
                engines = [a for a in A.ALGORITHMS if a != "auto"]
                raise ValueError(f"{fn}: tune lists {name!r}, which is not one of the engines {engines}")
            if name not in self._engines:
                reason = _core.unsupported_reason(self._layer, name)
                raise ValueError(f"{fn}: tune lists {name!r}, which cannot run this layer: {reason}")
        if not names:
            raise ValueError(f"{fn}: tune lists no engine; give at least one, or tune=True for all")
        return names

    @property
    def tune(self) -> bool:
        return bool(self._candidates)

    def __reduce__(self):
        return _restore, (self.weight, self.bias, self._options)

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
        """The engine ``plan(x)`` would run on finite input (without measuring)."""
        geometry = self._geometry_of(x)
        engine, _ = self._decide(geometry)
        return engine if engine != "auto" else self._plan.choose(*geometry)

    def _geometry_of(self, x):
        """The C plan's view of a call on x: (batch, in_size, pad_begin, pad_end, num_threads)."""
        x, _, spatial, _ = self._prepare(x, self._name)
        pairs = self._pairs(spatial)
        if self.padding_mode != "zeros":  # the call pads the input itself
            spatial = tuple(s + b + e for s, (b, e) in zip(spatial, pairs, strict=True))
            pairs = ((0, 0),) * self.spatial_dims
        return (x.shape[0], self._to3(spatial, 1), *self._pads(pairs), self._threads())

    def _decide(self, geometry, x=None, result=None):
        """(engine for the C plan, the measured choice behind it): "auto" leaves it to the cost model.
        Given x and result, a tuning plan measures a geometry it has no choice for."""
        if self.requested_algorithm != "auto" or self._borrowed:
            return "auto", None
        if not self._candidates and not _tuning.has_choices():  # the usual case costs no key
            return "auto", None
        k = _tuning.key(self._layer_key, *geometry)
        choice = _tuning.lookup(k)
        if choice is None and self._candidates and x is not None:
            # Timed on standard normal data: the caller's may hold Inf (Winograd falls back to
            # direct) or subnormals (slow on every engine), which say nothing of the engines' speed.
            rng = np.random.default_rng(0)
            data = rng.standard_normal(x.shape).astype(x.dtype)
            scratch = np.empty_like(result)
            runs = {
                engine: (lambda e=engine: self._plan.execute(data, scratch, *geometry, e))
                for engine in self._candidates
            }
            choice = _tuning.measure(k, runs)
        if choice is None or choice.algorithm not in self._engines:
            return "auto", None
        return choice.algorithm, choice

    def explain(self, x=None) -> str:
        """What the latest call ran and why; given x, what ``plan(x)`` would run (without measuring)."""
        if x is not None:
            geometry = self._geometry_of(x)
            decision = _Decision(geometry, *self._decide(geometry), None)
        elif self._last is None:
            how = (
                f"forced by request (algorithm={self.requested_algorithm!r})"
                if self.requested_algorithm != "auto"
                else "measured on the first call of each input geometry (tune)"
                if self._candidates
                else "a measured choice from this process's tuning, else the cost model"
            )
            return f"{self!r}: no call yet. The engine will be {how}; explain(x) tells for an input x."
        else:
            decision = self._last
        return self._explanation(decision)

    def _explanation(self, decision: _Decision) -> str:
        batch, in3, _, _, threads = decision.geometry
        threads = _tuning.threads_of(threads)
        spatial = tuple(in3[3 - self.spatial_dims :])
        intended = decision.engine if decision.engine != "auto" else self._plan.choose(*decision.geometry)
        verb = "ran" if decision.used else "would run"
        lines = [
            f"{verb} {decision.used or intended} on batch {batch}, input size {spatial}, "
            f"{threads} thread{'s' if threads > 1 else ''}, {self.dtype}, {self.layout}, "
            f"ISA {_tuning.selected_isa()}."
        ]
        choice = decision.choice
        if self.requested_algorithm != "auto":
            lines.append(f"Why: forced by request (algorithm={self.requested_algorithm!r}).")
        elif choice is not None and choice.times:
            ranked = sorted(choice.times.items(), key=lambda item: item[1])
            times = ", ".join(f"{name} {seconds * 1e3:.3g} ms" for name, seconds in ranked)
            lines.append(f"Why: measured fastest ({choice.origin}): {times}.")
        elif choice is not None:
            lines.append(f"Why: {choice.origin}.")
        else:
            lines.append(f"Why: cost model: {self._plan.explain(*decision.geometry)}.")
            if self._candidates and decision.used is None:
                lines.append("(tune=True: the first call of this geometry measures the engines instead.)")
        if decision.used and decision.used != intended:
            cause = (
                "the input holds Inf or NaN, which Winograd's transforms can turn into NaN where "
                "direct stays finite"
                if intended.startswith("winograd")
                else "the C library changed it"
            )
            lines.append(f"Fallback: {intended} was chosen, but {cause}: {decision.used} ran instead.")
        return "\n".join(lines)

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
        key = (x.shape, x.dtype) if type(x) is np.ndarray and output_size is None else None
        geometry = self._geometry.get(key) if key else None
        if geometry is not None:
            threads = self._threads(A.num_threads(num_threads, fn))
            unbatched, shape = geometry[:2]
            if out is not None:
                self._check_out(out, shape[1:] if unbatched else shape, x, fn)
            return self._execute(x[np.newaxis] if unbatched else x, geometry, threads, out)
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
            self.algorithm, self._last = plan.algorithm, plan._last
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
            self._check_out(out, user_shape, given, fn)
        geometry = (unbatched, shape, self._to3(spatial, 1), *self._pads(pairs))
        if key and self.padding_mode == "zeros":
            if len(self._geometry) >= _GEOMETRIES_KEPT:
                self._geometry.clear()
            self._geometry[key] = geometry
        return self._execute(x, geometry, threads, out)

    def _check_out(self, out, shape, given, fn):
        A.check_out(out, shape, self.dtype, {"input": given, "weight": self.weight, "bias": self.bias}, fn)

    def _execute(self, x, geometry, threads, out):
        """Runs the plan on the batched input x; returns out, or the new result."""
        unbatched, shape, in3, pb, pe = geometry
        result = np.empty(shape, dtype=self.dtype) if out is None else out.reshape(shape)
        x = np.ascontiguousarray(x)
        geometry = (shape[0], in3, pb, pe, threads)
        if result.size:
            engine, choice = self._decide(geometry, x, result)
            used = self._plan.execute(x, result, *geometry, engine)
        else:
            engine, choice = "auto", None
            used = self._plan.choose(*geometry)
        self.algorithm, self._last = used, _Decision(geometry, engine, choice, used)
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


# Checked functional-call settings -> a Convolution without arrays (see _functional_plan); checked
# settings and input -> what a call runs (see _functional); and how many of each cache are kept
# before they are emptied.
_CHECKED_SETTINGS: dict = {}
_CHECKED_CALLS: dict = {}
_SETTINGS_KEPT = 256
_GEOMETRIES_KEPT = 64


_PLAIN_TYPES = frozenset((int, str, type(None)))
_PLAIN_OR_TUPLE = _PLAIN_TYPES | {tuple}


def _plain(values) -> bool:
    """Exact ints, strings, None and tuples of them: values that compare equal only when every
    check treats them alike (1, 1.0, True and np.int64(1) are all equal, but not all accepted)."""
    if _PLAIN_TYPES.issuperset(map(type, values)):  # the usual case, without a Python loop
        return True
    return _PLAIN_OR_TUPLE.issuperset(map(type, values)) and all(
        _plain(value) for value in values if type(value) is tuple
    )


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


def _options(settings, nd) -> dict:
    """Convolution's keywords from a functional call's settings (see _functional)."""
    if settings[0].startswith("conv_transpose"):
        name, stride, padding, output_padding, groups, dilation, *rest = settings
        extra = {"transposed": True, "output_padding": output_padding}
    else:
        name, stride, padding, dilation, groups, *rest = settings
        extra = {}
    padding_mode, layout, algorithm, num_threads = rest
    return dict(
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
        layout=layout,
        algorithm=algorithm,
        num_threads=num_threads,
        spatial_dims=nd,
        _name=name,
        **extra,
    )


def _functional(input, weight, bias, out, output_size, settings, nd):
    """One functional call. A call that repeats an earlier one's plain settings on arrays of the same
    types, shapes and dtypes passes the same checks to the same result shape and C geometry: it goes
    straight to a C plan on its arrays (the small layers' time was mostly argument handling). Any
    other call takes a borrowed plan with its options (checked once per set of plain options, see
    _functional_plan) and runs it on the input. settings: the call's options as a tuple, the function
    name first (see _options), for a function of nd spatial dimensions."""
    key = None
    if (
        output_size is None
        and type(input) is np.ndarray
        and type(weight) is np.ndarray
        and (bias is None or type(bias) is np.ndarray)
        and _plain(settings)
    ):
        key = (settings, input.shape, input.dtype, weight.shape, weight.dtype) + (
            () if bias is None else (bias.shape, bias.dtype)
        )
        call = _CHECKED_CALLS.get(key)
        if call is not None:
            return _run_checked(call, input, weight, bias, out)
    plan = _functional_plan(
        settings, weight, bias, lambda: Convolution(weight, bias, _borrow=True, **_options(settings, nd))
    )
    result = plan(input, out=out, output_size=output_size)
    geometry = plan._geometry.get((input.shape, input.dtype)) if key else None
    if geometry is not None:
        if len(_CHECKED_CALLS) >= _SETTINGS_KEPT:
            _CHECKED_CALLS.clear()
        layer = _core.Layer(plan._layer)
        checked = (layer, plan.requested_algorithm, plan.dtype, plan._threads(), plan._name)
        _CHECKED_CALLS[key] = checked + geometry
    return result


def _run_checked(call, x, weight, bias, out):
    """A functional call whose settings and input an earlier call checked (see _functional)."""
    layer, algorithm, dtype, threads, fn, unbatched, shape, in3, pad_begin, pad_end = call
    weight = np.ascontiguousarray(weight)
    bias = None if bias is None else np.ascontiguousarray(bias)
    if out is None:
        result = np.empty(shape, dtype=dtype)
    else:
        arrays = {"input": x, "weight": weight, "bias": bias}
        A.check_out(out, shape[1:] if unbatched else shape, dtype, arrays, fn)
        result = out.reshape(shape)
    if result.size:
        x = np.ascontiguousarray(x[np.newaxis] if unbatched else x)
        layer.run(weight, bias, x, result, shape[0], in3, pad_begin, pad_end, threads, algorithm)
    if out is not None:
        return out
    return result[0] if unbatched else result


def _convolution_function(nd):
    """conv{nd}d, with torch.nn.functional.conv{nd}d's signature; one body for the three."""

    def convolution(
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
        settings = (name, stride, padding, dilation, groups, padding_mode, layout, algorithm, num_threads)
        return _functional(input, weight, bias, out, None, settings, nd)

    name = f"conv{nd}d"
    convolution.__name__ = convolution.__qualname__ = name
    convolution.__doc__ = f"{nd}-D convolution (cross-correlation, as in torch.nn.functional.conv{nd}d)."
    return convolution


def _transposed_function(nd):
    """conv_transpose{nd}d, with torch.nn.functional.conv_transpose{nd}d's signature."""

    def transposed(
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
        settings = (name, stride, padding, output_padding, groups, dilation, padding_mode, layout)
        return _functional(input, weight, bias, out, output_size, settings + (algorithm, num_threads), nd)

    name = f"conv_transpose{nd}d"
    transposed.__name__ = transposed.__qualname__ = name
    transposed.__doc__ = f"{nd}-D transposed convolution (as torch.nn.functional.conv_transpose{nd}d)."
    return transposed


conv1d, conv2d, conv3d = (_convolution_function(nd) for nd in (1, 2, 3))
conv_transpose1d, conv_transpose2d, conv_transpose3d = (_transposed_function(nd) for nd in (1, 2, 3))
