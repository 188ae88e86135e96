"""A plain float64 numpy reference for fastconv's semantics: slow, obviously right, shared by the tests.

Everything here is written from the API contract (notes/API.md, torch's definitions), never from the
library's code, so that it can act as an independent oracle.

Conventions: arrays are channels-first and batched, (N, C, *spatial), with 1 to 3 spatial dims.
Weights are in torch layout: forward (C_out, C_in/groups, *k), transposed (C_in, C_out/groups, *k).
`pad_pairs` is a tuple of (begin, end) per spatial dim, already resolved (see `resolve_padding`).

The computation loops over kernel taps and contracts the channels of one group with np.einsum, in
float64, so small shapes (the test grid) take milliseconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

NP_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}

PADDING_STRINGS = ("valid", "same", "same_lower")


def ntuple(value, nd: int, name: str = "value") -> tuple[int, ...]:
    """An int or a sequence of nd ints as a tuple of nd ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * nd
    t = tuple(int(v) for v in value)
    if len(t) != nd:
        raise ValueError(f"{name} needs {nd} values, got {value!r}")
    return t


def conv_out_size(size: int, k: int, s: int, d: int, pb: int, pe: int) -> int:
    """Forward output length of one dim: (in + pb + pe - d*(k-1) - 1) // s + 1."""
    return (size + pb + pe - d * (k - 1) - 1) // s + 1


def conv_transpose_out_size(size: int, k: int, s: int, d: int, pb: int, pe: int, op: int) -> int:
    """Transposed output length of one dim: (in-1)*s - pb - pe + d*(k-1) + op + 1."""
    return (size - 1) * s - pb - pe + d * (k - 1) + op + 1


def _split_total(total: int, mode: str) -> tuple[int, int]:
    if mode == "same":  # extra at the end (torch, TF, ONNX SAME_UPPER)
        begin = total // 2
        return begin, total - begin
    end = total // 2  # "same_lower": extra at the beginning (ONNX SAME_LOWER)
    return total - end, end


def resolve_padding(
    padding,
    in_sizes: Sequence[int],
    kernel: Sequence[int],
    stride=1,
    dilation=1,
    *,
    transposed: bool = False,
    output_padding=0,
) -> tuple[tuple[int, int], ...]:
    """Any padding form of the contract as a tuple of (begin, end) per spatial dim.

    int p -> (p, p) everywhere; tuple of nd ints -> symmetric per dim; tuple of nd (begin, end) pairs ->
    as given; "valid" -> zeros; "same" / "same_lower" -> the contract's formulas (forward: out =
    ceil(in / s), total = max((out-1)*s + d*(k-1) + 1 - in, 0); transposed: out = in*s, total =
    s*(in-1) + op + d*(k-1) + 1 - out, which must be >= 0), extra at the end for "same", at the
    beginning for "same_lower".
    """
    nd = len(in_sizes)
    kernel = ntuple(kernel, nd, "kernel")
    stride = ntuple(stride, nd, "stride")
    dilation = ntuple(dilation, nd, "dilation")
    output_padding = ntuple(output_padding, nd, "output_padding")
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding not in ("same", "same_lower"):
            raise ValueError(f"unknown padding {padding!r}")
        pairs = []
        for n, k, s, d, op in zip(in_sizes, kernel, stride, dilation, output_padding, strict=True):
            if transposed:
                total = s * (n - 1) + op + d * (k - 1) + 1 - n * s
                if total < 0:
                    raise ValueError(f"transposed padding={padding!r} impossible: total padding {total} < 0")
            else:
                out = -(-n // s)
                total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
            pairs.append(_split_total(total, padding))
        return tuple(pairs)
    if isinstance(padding, (int, np.integer)):
        return ((int(padding), int(padding)),) * nd
    items = tuple(padding)
    if len(items) != nd:
        raise ValueError(f"padding needs {nd} entries, got {padding!r}")
    if all(isinstance(p, (int, np.integer)) for p in items):
        return tuple((int(p), int(p)) for p in items)
    if any(len(p) != 2 for p in items):
        raise ValueError(f"padding pairs must be (begin, end), got {padding!r}")
    return tuple((int(p[0]), int(p[1])) for p in items)


def to_channels_last(x: np.ndarray, batched: bool = True) -> np.ndarray:
    """(N, C, *S) -> (N, *S, C) (or (C, *S) -> (*S, C) when unbatched), as a contiguous copy."""
    axis = 1 if batched else 0
    return np.ascontiguousarray(np.moveaxis(x, axis, -1))


def to_channels_first(x: np.ndarray, batched: bool = True) -> np.ndarray:
    """(N, *S, C) -> (N, C, *S) (or (*S, C) -> (C, *S) when unbatched), as a contiguous copy."""
    axis = 1 if batched else 0
    return np.ascontiguousarray(np.moveaxis(x, -1, axis))


def _check(x, w, groups, transposed):
    if x.ndim < 3 or x.ndim > 5 or w.ndim != x.ndim:
        raise ValueError(f"need batched channels-first x and matching w, got {x.shape}, {w.shape}")
    c_in = x.shape[1]
    if c_in % groups:
        raise ValueError("groups must divide C_in")
    if transposed:
        if w.shape[0] != c_in:
            raise ValueError("transposed weight must be (C_in, C_out/groups, *k)")
    elif w.shape[1] * groups != c_in or w.shape[0] % groups:
        raise ValueError("weight must be (C_out, C_in/groups, *k)")


def reference_conv(x, w, b=None, stride=1, pad_pairs=0, dilation=1, groups=1, padding_mode="zeros"):
    """Forward convolution (cross-correlation, as torch), float64.

    y[n, o, p] = b[o] + sum_{c in group(o), t} xpad[n, c, p*s + t*d] * w[o, c - group_start, t]
    where xpad is x padded by `pad_pairs` with np.pad's mode for `padding_mode`.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    _check(x, w, groups, transposed=False)
    nd = x.ndim - 2
    stride = ntuple(stride, nd, "stride")
    dilation = ntuple(dilation, nd, "dilation")
    if isinstance(pad_pairs, (int, np.integer)):
        pad_pairs = ((int(pad_pairs),) * 2,) * nd
    pad_pairs = tuple((int(p[0]), int(p[1])) for p in pad_pairs)
    n, c_in = x.shape[:2]
    c_out = w.shape[0]
    kernel = w.shape[2:]
    if not any(pb or pe for pb, pe in pad_pairs):
        xp = x
    elif padding_mode == "zeros" or x.size == 0:
        xp = np.pad(x, ((0, 0), (0, 0)) + pad_pairs, mode="constant")
    else:
        xp = np.pad(x, ((0, 0), (0, 0)) + pad_pairs, mode=NP_PAD_MODE[padding_mode])
    out = tuple(
        conv_out_size(size, k, s, d, pb, pe)
        for size, k, s, d, (pb, pe) in zip(x.shape[2:], kernel, stride, dilation, pad_pairs, strict=True)
    )
    if any(o < 1 for o in out):
        raise ValueError(f"output size {out} < 1")
    cin_g, cout_g = c_in // groups, c_out // groups
    # Group-split views: x (N, G, Cin_g, *Sp), w (G, Cout_g, Cin_g, *k), y (N, G, Cout_g, *out).
    xg = xp.reshape((n, groups, cin_g) + xp.shape[2:])
    wg = w.reshape((groups, cout_g, cin_g) + tuple(kernel))
    y = np.zeros((n, groups, cout_g) + out)
    for tap in itertools.product(*(range(k) for k in kernel)):
        window = tuple(
            slice(t * d, t * d + s * (o - 1) + 1, s)
            for t, d, s, o in zip(tap, dilation, stride, out, strict=True)
        )
        patch = xg[(slice(None),) * 3 + window]  # (N, G, Cin_g, *out)
        y += np.einsum("ngc...,goc->ngo...", patch, wg[(Ellipsis,) + tap])
    y = y.reshape((n, c_out) + out)
    if b is not None:
        y += np.asarray(b, dtype=np.float64).reshape((1, c_out) + (1,) * nd)
    return y


def reference_conv_transpose(x, w, b=None, stride=1, pad_pairs=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution (torch's conv_transpose, the adjoint of the forward one), float64.

    Scatter definition: yfull[n, o, i*s + t*d] += x[n, c, i] * w[c, o - group_start, t]; then
    y = yfull[pb : pb + out] with out = (in-1)*s - pb - pe + d*(k-1) + output_padding + 1.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    _check(x, w, groups, transposed=True)
    nd = x.ndim - 2
    stride = ntuple(stride, nd, "stride")
    dilation = ntuple(dilation, nd, "dilation")
    output_padding = ntuple(output_padding, nd, "output_padding")
    if isinstance(pad_pairs, (int, np.integer)):
        pad_pairs = ((int(pad_pairs),) * 2,) * nd
    pad_pairs = tuple((int(p[0]), int(p[1])) for p in pad_pairs)
    n, c_in = x.shape[:2]
    cout_g = w.shape[1]
    c_out = cout_g * groups
    kernel = w.shape[2:]
    in_sizes = x.shape[2:]
    out = tuple(
        conv_transpose_out_size(size, k, s, d, pb, pe, op)
        for size, k, s, d, (pb, pe), op in zip(
            in_sizes, kernel, stride, dilation, pad_pairs, output_padding, strict=True
        )
    )
    if any(o < 1 for o in out):
        raise ValueError(f"output size {out} < 1")
    # Uncropped buffer: every scattered index plus the output_padding tail.
    full = tuple(
        (size - 1) * s + d * (k - 1) + 1 + op
        for size, k, s, d, op in zip(in_sizes, kernel, stride, dilation, output_padding, strict=True)
    )
    cin_g = c_in // groups
    xg = x.reshape((n, groups, cin_g) + tuple(in_sizes))
    wg = w.reshape((groups, cin_g, cout_g) + tuple(kernel))
    yfull = np.zeros((n, groups, cout_g) + full)
    for tap in itertools.product(*(range(k) for k in kernel)):
        window = tuple(
            slice(t * d, t * d + s * (size - 1) + 1, s)
            for t, d, s, size in zip(tap, dilation, stride, in_sizes, strict=True)
        )
        yfull[(slice(None),) * 3 + window] += np.einsum("ngc...,gco->ngo...", xg, wg[(Ellipsis,) + tap])
    crop = tuple(slice(pb, pb + o) for (pb, _), o in zip(pad_pairs, out, strict=True))
    y = yfull[(slice(None),) * 3 + crop].reshape((n, c_out) + out)
    if b is not None:
        y = y + np.asarray(b, dtype=np.float64).reshape((1, c_out) + (1,) * nd)
    return np.ascontiguousarray(y)


def rel_err(y, ref) -> float:
    """max|y - ref| / (max|ref| + tiny): the one error metric of the tests."""
    y = np.asarray(y, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if y.shape != ref.shape:
        raise AssertionError(f"shape {y.shape} != reference shape {ref.shape}")
    if ref.size == 0:
        return 0.0
    return float(np.max(np.abs(y - ref)) / (np.max(np.abs(ref)) + 1e-300))
