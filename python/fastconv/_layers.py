"""The built-in layer suite of ``python -m fastconv bench``: real CNN layers, named by their network.

The same layers, names and fields as the team's suite in ../shared/bench/layers.py, so figures from
``python -m fastconv bench`` and from ../shared/bench/run.py can be read side by side. Each entry is
a :class:`Layer` (a named tuple, so it also unpacks as the plain tuples of layers.py do):
name, dims, N, C_in, C_out, spatial input, kernel, stride, padding (symmetric, per dim), dilation,
groups, transposed. Input is channels first, float32; weights are in torch layout.

This module has no dependency beyond the standard library (numpy only inside :func:`make_inputs`),
so the suite can also be read by scripts that do not import fastconv.
"""

from __future__ import annotations

import math
import zlib
from typing import NamedTuple


class Layer(NamedTuple):
    name: str
    nd: int
    n: int
    cin: int
    cout: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    transposed: bool


# fmt: off
LAYERS = [Layer(*row) for row in [
    # name,               nd, N,  Cin, Cout, in_spatial,   k,        s,      p,      d,        g, transposed
    ("resnet50.conv1",      2, 1,    3,  64, (224, 224),   (7, 7),   (2, 2), (3, 3), (1, 1),   1, False),
    ("resnet50.l1.3x3",     2, 1,   64,  64, (56, 56),     (3, 3),   (1, 1), (1, 1), (1, 1),   1, False),
    ("resnet50.l2.3x3",     2, 1,  128, 128, (28, 28),     (3, 3),   (1, 1), (1, 1), (1, 1),   1, False),
    ("resnet50.l3.3x3",     2, 1,  256, 256, (14, 14),     (3, 3),   (1, 1), (1, 1), (1, 1),   1, False),
    ("resnet50.l4.3x3",     2, 1,  512, 512, (7, 7),       (3, 3),   (1, 1), (1, 1), (1, 1),   1, False),
    ("resnet50.l1.1x1",     2, 1,  256,  64, (56, 56),     (1, 1),   (1, 1), (0, 0), (1, 1),   1, False),
    ("resnet50.l3.1x1",     2, 1, 1024, 256, (14, 14),     (1, 1),   (1, 1), (0, 0), (1, 1),   1, False),
    ("resnet50.l2.3x3s2",   2, 1,  128, 128, (56, 56),     (3, 3),   (2, 2), (1, 1), (1, 1),   1, False),
    ("vgg16.conv1_2",       2, 1,   64,  64, (224, 224),   (3, 3),   (1, 1), (1, 1), (1, 1),   1, False),
    ("resnet50.l2.3x3.b8",  2, 8,  128, 128, (28, 28),     (3, 3),   (1, 1), (1, 1), (1, 1),   1, False),
    ("mobilenetv2.dw112",   2, 1,   32,  32, (112, 112),   (3, 3),   (1, 1), (1, 1), (1, 1),  32, False),
    ("mobilenetv2.dw56s2",  2, 1,  144, 144, (56, 56),     (3, 3),   (2, 2), (1, 1), (1, 1), 144, False),
    ("mobilenetv2.dw7",     2, 1,  960, 960, (7, 7),       (3, 3),   (1, 1), (1, 1), (1, 1), 960, False),
    ("resnext50.g32",       2, 1,  128, 128, (56, 56),     (3, 3),   (1, 1), (1, 1), (1, 1),  32, False),
    ("deeplab.dil2",        2, 1,  256, 256, (28, 28),     (3, 3),   (1, 1), (2, 2), (2, 2),   1, False),
    ("dcgan.deconv",        2, 1,  256, 128, (16, 16),     (4, 4),   (2, 2), (1, 1), (1, 1),   1, True),
    ("wavenet.conv1d.dil4", 1, 1,  128, 128, (4096,),      (3,),     (1,),   (4,),   (4,),     1, False),
    ("c3d.conv3d",          3, 1,   64,  64, (8, 28, 28),  (3, 3, 3), (1, 1, 1),
                            (1, 1, 1), (1, 1, 1), 1, False),
    ("image.1ch.k15",       2, 1,    1,   1, (1024, 1024), (15, 15), (1, 1), (7, 7), (1, 1),   1, False),
]]
# fmt: on

BY_NAME = {layer.name: layer for layer in LAYERS}

# `--quick`: small-to-medium layers, one or more of every kind (2.4 GFLOP in all, against 11 GFLOP for
# the full suite), so the whole run stays under a minute at one thread even with the portable engine.
QUICK = [
    "resnet50.l3.1x1",  # 1x1 (a plain GEMM)
    "resnet50.l3.3x3",  # 3x3 stride 1, many channels (the Winograd case)
    "resnet50.l2.3x3s2",  # dense, strided
    "mobilenetv2.dw112",  # depthwise
    "mobilenetv2.dw56s2",  # depthwise, strided
    "resnext50.g32",  # grouped
    "dcgan.deconv",  # transposed, strided
    "wavenet.conv1d.dil4",  # 1D, dilated
    "c3d.conv3d",  # 3D
]


def out_size(i: int, k: int, s: int, p: int, d: int) -> int:
    """Output length of a forward convolution along one dim (symmetric padding p)."""
    return (i + 2 * p - d * (k - 1) - 1) // s + 1


def transposed_out_size(i: int, k: int, s: int, p: int, d: int) -> int:
    """Output length of a transposed convolution along one dim (symmetric padding p, no output_padding)."""
    return (i - 1) * s - 2 * p + d * (k - 1) + 1


def out_spatial(layer: Layer) -> tuple[int, ...]:
    f = transposed_out_size if layer.transposed else out_size
    return tuple(
        f(*a)
        for a in zip(layer.spatial, layer.kernel, layer.stride, layer.padding, layer.dilation, strict=True)
    )


def input_shape(layer: Layer) -> tuple[int, ...]:
    return (layer.n, layer.cin, *layer.spatial)


def weight_shape(layer: Layer) -> tuple[int, ...]:
    """Torch layout: (C_out, C_in/g, *k), or (C_in, C_out/g, *k) for a transposed layer."""
    if layer.transposed:
        return (layer.cin, layer.cout // layer.groups, *layer.kernel)
    return (layer.cout, layer.cin // layer.groups, *layer.kernel)


def output_shape(layer: Layer) -> tuple[int, ...]:
    return (layer.n, layer.cout, *out_spatial(layer))


def flops(layer) -> int:
    """Multiply-adds x2 of the direct algorithm (the usual 'GFLOP' of a conv layer).

    Accepts a :class:`Layer` or a plain tuple in the format of layers.py.
    """
    name, nd, n, cin, cout, sp, k, s, p, d, g, tr = layer
    kk = math.prod(k)
    if tr:
        return 2 * n * math.prod(sp) * cin * (cout // g) * kk
    positions = math.prod(out_size(*a) for a in zip(sp, k, s, p, d, strict=True))
    return 2 * n * positions * cout * (cin // g) * kk


def kind(layer: Layer) -> str:
    """A short description of what the layer exercises, e.g. '2D 3x3 s2 depthwise'."""
    parts = [f"{layer.nd}D", "x".join(map(str, layer.kernel)) if layer.nd > 1 else f"k{layer.kernel[0]}"]
    if any(v != 1 for v in layer.stride):
        parts.append("s" + "x".join(map(str, sorted(set(layer.stride)))))
    if any(v != 1 for v in layer.dilation):
        parts.append("d" + "x".join(map(str, sorted(set(layer.dilation)))))
    if layer.groups > 1:
        parts.append("depthwise" if layer.groups == layer.cin == layer.cout else f"g{layer.groups}")
    if layer.transposed:
        parts.append("transposed")
    if layer.n > 1:
        parts.append(f"batch {layer.n}")
    return " ".join(parts)


def make_inputs(layer: Layer, dtype="float32"):
    """(x, w) for a layer: standard normal input, weights scaled by 0.1.

    Seeded by the layer's name, so any subset of the suite, run in any process, sees the same data.
    """
    import numpy as np

    rng = np.random.default_rng(zlib.crc32(layer.name.encode()))
    x = rng.standard_normal(input_shape(layer), dtype=np.float32)
    w = (rng.standard_normal(weight_shape(layer), dtype=np.float32) * np.float32(0.1)).astype(np.float32)
    return x.astype(dtype, copy=False), w.astype(dtype, copy=False)
