"""``python -m fastconv bench``: time fastconv on the built-in layer suite against plain numpy.

    python -m fastconv bench [--quick] [--threads T] [--algorithm A] [--json FILE] [--min-time S]
                             [--list] [LAYER ...]

Per layer: the algorithm fastconv runs, the median time of one call of the layer's plan
(``fastconv.Convolution``, weights prepared once, as an application runs a model), GFLOP/s, the
time of the same convolution written in plain numpy (sliding windows + tensordot for dense layers, as
../shared/bench/run.py; a loop over kernel taps for grouped and depthwise ones; one GEMM and a strided
scatter per tap for transposed ones) and fastconv's speedup over it, and the largest error relative to
the same numpy computation in float64. Progress goes to stderr, the table to stdout.

The pieces (inputs, the callables that run one implementation, timing, the row of one layer) are
kept separate from the command line so that a later ``--compare`` can time other implementations on
the same layers, each in a process of its own, and merge the JSON rows.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import math
import sys
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fastconv import _layers
from fastconv._bench_anchor import MIN_CALLS, timeit
from fastconv._layers import BY_NAME, LAYERS, QUICK, Layer, flops, make_inputs

DEFAULT_MIN_TIME = 0.4  # seconds of timed calls per layer and implementation, as ../shared/bench/run.py
QUICK_MIN_TIME = 0.2
# Above this many elements in the patch matrix (N * C_in * output positions * taps) the numpy baseline of
# a dense layer loops over kernel taps instead of materialising every window (image.1ch.k15: 1.9 GB).
WINDOW_LIMIT = 1 << 25


# -- timing -------------------------------------------------------------------------------------------


def blas_limits(threads: int | None):
    """threadpoolctl's limit on numpy's BLAS (a no-op without threadpoolctl or with threads=None)."""
    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads)


# -- fastconv -----------------------------------------------------------------------------------------


def _options(layer: Layer) -> dict:
    return {
        "stride": layer.stride,
        "padding": layer.padding,
        "dilation": layer.dilation,
        "groups": layer.groups,
    }


def fastconv_plan(layer: Layer, w, algorithm: str = "auto", threads: int | None = None, tune: bool = False):
    """The layer as a fastconv plan: weights prepared once, as an application runs a model."""
    import fastconv

    return fastconv.Convolution(
        w,
        None,
        transposed=layer.transposed,
        algorithm=algorithm,
        num_threads=threads,
        tune=tune,
        **_options(layer),
    )


# -- plain numpy: the baseline of the speedup column and, in float64, the reference of the error column --


def numpy_fn(layer: Layer, x, w):
    """A callable computing the layer with plain numpy, in the dtype of x and w."""
    if layer.transposed:
        return lambda: numpy_conv_transpose(layer, x, w)
    return lambda: numpy_conv(layer, x, w)


def _taps(kernel, dilation):
    """Each kernel tap as (index in the flattened kernel, per-dim offset into the input)."""
    for t, tap in enumerate(np.ndindex(*kernel)):
        yield t, tuple(tx * dx for tx, dx in zip(tap, dilation, strict=True))


def numpy_conv(layer: Layer, x, w):
    """Forward convolution as a numpy user writes it. Dense layers: padded sliding windows (stride and
    dilation by slicing them) and one tensordot, as ../shared/bench/run.py's numpy baseline. Grouped and
    depthwise layers, and dense ones whose patch matrix would be huge: a loop over the kernel taps, each
    a matmul over a group's channels, or a broadcast multiply-add when a group has one input channel
    (measured faster than any of the window forms for those layers)."""
    nd, g, s, d = layer.nd, layer.groups, layer.stride, layer.dilation
    if any(layer.padding):
        x = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in layer.padding])
    out = _layers.out_spatial(layer)
    n, c = x.shape[:2]
    if g == 1 and n * c * math.prod(out) * math.prod(layer.kernel) <= WINDOW_LIMIT:
        extent = tuple(dx * (kx - 1) + 1 for kx, dx in zip(layer.kernel, d, strict=True))
        win = sliding_window_view(x, extent, axis=tuple(range(2, 2 + nd)))
        win = win[(slice(None), slice(None)) + tuple(slice(None, None, v) for v in s + d)]  # (N, C, *out, *k)
        y = np.tensordot(win, w, axes=([1, *range(2 + nd, 2 + 2 * nd)], [1, *range(2, 2 + nd)]))
        return np.moveaxis(y, -1, 1)
    cg, og = c // g, w.shape[0] // g
    y = np.zeros((n, g, og, *out), np.result_type(x, w))
    wt = w.reshape(g, og, cg, -1)
    for t, offset in _taps(layer.kernel, d):
        window = tuple(slice(o, o + (m - 1) * sx + 1, sx) for o, m, sx in zip(offset, out, s, strict=True))
        xs = x[(slice(None), slice(None)) + window].reshape(n, g, cg, -1)  # (N, g, cg, P)
        if cg == 1:
            y += (xs * wt[:, :, 0, t, None]).reshape(y.shape)  # (N, g, 1, P) * (g, og, 1)
        else:
            y += np.matmul(wt[..., t], xs).reshape(y.shape)  # (g, og, cg) @ (N, g, cg, P)
    return y.reshape(n, g * og, *out)


def numpy_conv_transpose(layer: Layer, x, w):
    """Transposed convolution in plain numpy: one matmul (batched over groups) gives every input pixel
    times every tap; each tap's plane is then added into the output with a strided slice; then crop."""
    g, s, d, p, k = layer.groups, layer.stride, layer.dilation, layer.padding, layer.kernel
    n, cin, sp = x.shape[0], x.shape[1], x.shape[2:]
    cg, og = cin // g, w.shape[1]
    positions, taps = math.prod(sp), math.prod(k)
    a = x.reshape(n, g, cg, positions).transpose(0, 1, 3, 2)  # (N, g, P, cg)
    cols = np.matmul(a, w.reshape(g, cg, og * taps)).reshape(n, g, positions, og, taps)
    cols = cols.transpose(0, 1, 3, 4, 2).reshape(n, g, og, taps, *sp)
    full = tuple((i - 1) * sx + dx * (kx - 1) + 1 for i, kx, sx, dx in zip(sp, k, s, d, strict=True))
    y = np.zeros((n, g, og, *full), cols.dtype)
    for t, offset in _taps(k, d):
        y[
            (slice(None),) * 3
            + tuple(slice(o, o + (i - 1) * sx + 1, sx) for o, i, sx in zip(offset, sp, s, strict=True))
        ] += cols[:, :, :, t]
    out = _layers.out_spatial(layer)
    y = y[(slice(None),) * 3 + tuple(slice(px, px + m) for px, m in zip(p, out, strict=True))]
    return y.reshape(n, g * og, *out)


# -- one layer ----------------------------------------------------------------------------------------


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


def bench_layer(
    layer: Layer, algorithm: str = "auto", threads: int | None = 1, min_time: float = DEFAULT_MIN_TIME
):
    """The row of one layer: {ms, gflops, err, speedup_vs_numpy, algorithm, numpy_ms}, or {error, algorithm}.

    A ValueError from fastconv for a forced algorithm (one that cannot do the layer) is marked
    "not_applicable"; any other exception is an error of the run.
    """
    x, w = make_inputs(layer)
    try:
        plan = fastconv_plan(layer, w, algorithm, threads)
        y = np.asarray(plan(x))  # the warm-up call; its result is the one checked
        t, calls = timeit(lambda: plan(x), min_time, warmup=False)
        used = plan.algorithm
    except Exception as exc:
        row = {"error": _message(exc), "algorithm": algorithm}
        if isinstance(exc, ValueError) and algorithm != "auto":
            row["not_applicable"] = True
        return row
    with blas_limits(threads):
        ref = numpy_fn(layer, x.astype(np.float64), w.astype(np.float64))()
        t_np, _ = timeit(numpy_fn(layer, x, w), min_time)
    if y.shape != ref.shape:
        return {"error": f"output shape {y.shape}, expected {ref.shape}", "algorithm": used}
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    err = float(np.abs(y - ref).max()) / (scale + 1e-30) if ref.size else 0.0
    return {
        "ms": t * 1e3,
        "gflops": flops(layer) / t / 1e9,
        "err": err,
        "speedup_vs_numpy": t_np / t,
        "algorithm": used,
        "numpy_ms": t_np * 1e3,
        "calls": calls,
    }


# -- the table ----------------------------------------------------------------------------------------


def geomean(values) -> float | None:
    values = [v for v in values if v and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def summary(rows: dict) -> dict:
    ok = [r for r in rows.values() if "ms" in r]
    return {
        "layers": len(ok),
        "gflops": geomean(r["gflops"] for r in ok),
        "speedup_vs_numpy": geomean(r["speedup_vs_numpy"] for r in ok),
        "max_err": max((r["err"] for r in ok), default=None),
    }


def format_table(rows: dict) -> list[str]:
    """The table: one line a layer, then the geomean of GFLOP/s and of the speedup over numpy."""
    nw = max([22] + [len(name) for name in rows])
    aw = max([9] + [len(str(row.get("algorithm", ""))) for row in rows.values()])
    heads = ("ms", 10), ("GFLOP/s", 8), ("numpy ms", 10), ("speedup", 8), ("max err", 8)
    lines = [f"{'layer':{nw}s} {'algorithm':>{aw}s} " + " ".join(f"{h:>{width}s}" for h, width in heads)]
    for name, row in rows.items():
        algorithm = str(row.get("algorithm", ""))
        if "ms" in row:
            lines.append(
                f"{name:{nw}s} {algorithm:>{aw}s} {row['ms']:10.3f} {row['gflops']:8.1f}"
                f" {row['numpy_ms']:10.3f} {row['speedup_vs_numpy']:7.2f}x {row['err']:8.1e}"
            )
        else:
            tag = "n/a" if row.get("not_applicable") else "ERROR"
            lines.append(f"{name:{nw}s} {algorithm:>{aw}s} {tag}: {row['error']}")
    s = summary(rows)
    if s["layers"]:
        label = f"geomean ({s['layers']} layers)"
        lines.append(
            f"{label:{nw}s} {'':>{aw}s} {'':>10s} {s['gflops']:8.1f} {'':>10s} {s['speedup_vs_numpy']:7.2f}x"
        )
    lines.append(
        "speedup = numpy ms / ms; max err = max|y - y64| / max|y64|, y64 = the numpy baseline in float64"
    )
    return lines


# -- command line -------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.description = (
        "Time fastconv on the built-in layer suite (real CNN layers) and compare with plain numpy. "
        "Progress goes to stderr, the table to stdout."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"only the quick subset ({len(QUICK)} layers, well under a minute)",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        metavar="T",
        help="threads for fastconv (num_threads=T) and for numpy's BLAS (default 1)",
    )
    parser.add_argument(
        "--algorithm", default="auto", metavar="A", help="fastconv engine to force (default auto)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the rows to FILE as JSON")
    parser.add_argument(
        "--min-time",
        type=_non_negative_float,
        default=None,
        metavar="S",
        help=f"time each layer for at least S seconds, and at least {MIN_CALLS} calls "
        f"(default {DEFAULT_MIN_TIME}, {QUICK_MIN_TIME} with --quick)",
    )
    parser.add_argument("--list", action="store_true", help="list the suite's layers and exit")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="time fastconv against torch, onnxruntime and opencv (those installed), each in its own "
        "process, and print fastconv's time over the best anchor's",
    )
    parser.add_argument(
        "--anchor-python",
        metavar="PATH",
        help="with --compare: the Python that runs the anchors (it needs numpy, not fastconv; "
        "default: this one)",
    )
    parser.add_argument(
        "--rounds",
        type=_positive_int,
        default=2,
        metavar="R",
        help="with --compare: runs of every implementation, in alternating order (default 2)",
    )
    parser.add_argument(
        "--plot", metavar="FILE", help="with --compare: a PNG bar chart of the ratios (needs matplotlib)"
    )
    parser.add_argument(
        "--engines",
        action="store_true",
        help="time algorithm='auto' against every engine forced by hand, in one process: auto / best forced",
    )
    parser.add_argument(
        "--tune", action="store_true", help="with --engines: auto plans made with tune=True (measured choice)"
    )
    parser.add_argument(
        "layers",
        nargs="*",
        metavar="LAYER",
        help="layer names or shell patterns (resnet50.*) from the whole suite "
        "(default: all, or the quick subset)",
    )
    return parser


def select_layers(patterns, quick: bool) -> list[Layer]:
    """The layers named by patterns, in the order given; none given: the quick subset or the whole suite."""
    if not patterns:
        return [BY_NAME[name] for name in QUICK] if quick else list(LAYERS)
    chosen: dict[str, Layer] = {}
    for pattern in patterns:
        hits = [layer for layer in LAYERS if fnmatch.fnmatchcase(layer.name, pattern)]
        if not hits:
            raise ValueError(f"no layer matches {pattern!r}; the layers are: {', '.join(BY_NAME)}")
        chosen.update((layer.name, layer) for layer in hits)
    return list(chosen.values())


def _list(out) -> int:
    print(f"{'layer':22s} {'MFLOP':>8s} quick  kind", file=out)
    for layer in LAYERS:
        mark = "yes" if layer.name in QUICK else ""
        print(f"{layer.name:22s} {flops(layer) / 1e6:8.1f} {mark:5s}  {_layers.kind(layer)}", file=out)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list(sys.stdout)
    if args.compare and args.engines:
        print("python -m fastconv bench: error: --compare and --engines are separate runs", file=sys.stderr)
        return 2
    if args.compare:
        from fastconv import _bench_compare

        return _bench_compare.run(args)
    if args.engines:
        from fastconv import _bench_engines

        return _bench_engines.run(args)
    try:
        layers = select_layers(args.layers, args.quick)
    except ValueError as exc:
        print(f"python -m fastconv bench: error: {exc}", file=sys.stderr)
        return 2
    min_time = (
        args.min_time if args.min_time is not None else (QUICK_MIN_TIME if args.quick else DEFAULT_MIN_TIME)
    )
    import fastconv

    version = getattr(fastconv, "__version__", "?")
    print(
        f"fastconv {version} bench: {len(layers)} layers, threads={args.threads}, "
        f"algorithm={args.algorithm}, median of >= {MIN_CALLS} calls and >= {min_time:g} s; "
        f"baseline numpy {np.__version__}",
        flush=True,
    )
    rows: dict[str, dict] = {}
    start = time.perf_counter()
    interrupted = False
    for i, layer in enumerate(layers, 1):
        print(
            f"[{i}/{len(layers)}] {layer.name} ({_layers.kind(layer)}, {flops(layer) / 1e6:.0f} MFLOP) ...",
            end="",
            file=sys.stderr,
            flush=True,
        )
        try:
            row = bench_layer(layer, args.algorithm, args.threads, min_time)
        except KeyboardInterrupt:
            print(" interrupted", file=sys.stderr, flush=True)
            interrupted = True
            break
        rows[layer.name] = row
        done = f"{row['ms']:.3f} ms, {row['algorithm']}" if "ms" in row else row["error"]
        print(f" {done}", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    print("\n".join(format_table(rows)), flush=True)
    print(f"done in {seconds:.1f} s", file=sys.stderr, flush=True)
    if args.json:
        result = {
            "impl": "fastconv",
            "version": version,
            "threads": args.threads,
            "algorithm": args.algorithm,
            "min_time": min_time,
            "seconds": seconds,
            "rows": rows,
            "geomean": summary(rows),
        }
        try:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)
        except OSError as exc:
            print(f"python -m fastconv bench: error: cannot write --json {args.json}: {exc}", file=sys.stderr)
            return 1
    if interrupted:
        return 130
    failed = [name for name, row in rows.items() if "ms" not in row and not row.get("not_applicable")]
    if failed or not any("ms" in row for row in rows.values()):
        return 1
    return 0


def main(argv=None) -> int:
    """``python -m fastconv bench ...`` with argv the arguments after ``bench``."""
    parser = add_arguments(argparse.ArgumentParser(prog="python -m fastconv bench"))
    return run(parser.parse_args(argv))
