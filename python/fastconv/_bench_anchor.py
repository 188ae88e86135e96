"""One implementation timed on layers of the suite, in a process of its own: the worker of
``python -m fastconv bench --compare``.

    python _bench_anchor.py --impl {fastconv,torch,onnxruntime,opencv} --threads T --min-time S LAYER...

Run by path, with any Python that has numpy: an anchor's interpreter need not have fastconv (the suite
is read from _layers.py next to this file). Writes JSON lines to stdout: first {"impl", "version"} or
{"impl", "unavailable": why}; then one per layer: {"layer", "ms", "calls", "sample"} (sample: evenly
spaced output values, which the parent compares across implementations), {"layer", "skip": why} when
the implementation has no way to run that kind of layer, or {"layer", "error"}.

Importable too: ``fastconv._bench`` takes its timing loop from here, so every implementation is timed
by the same code.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

MIN_CALLS = 5
MAX_CALLS = 500
SAMPLES = 257
IMPLS = ("fastconv", "torch", "onnxruntime", "opencv")


def timeit(fn, min_time: float, warmup: bool = True, clock=time.perf_counter) -> tuple[float, int]:
    """(median seconds of one call, calls timed): at least MIN_CALLS calls, more until min_time has passed."""
    if warmup:
        fn()
    times = []
    t_end = time.perf_counter() + min_time
    while len(times) < MIN_CALLS or (time.perf_counter() < t_end and len(times) < MAX_CALLS):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times), len(times)


def _load_layers():
    """The suite module, from the file next to this one (the worker may run where fastconv is not
    installed, and this directory must not go on sys.path: its signal.py would shadow the stdlib's)."""
    spec = importlib.util.spec_from_file_location(
        "fastconv_suite", os.path.join(os.path.dirname(os.path.abspath(__file__)), "_layers.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # NamedTuple needs its module registered
    spec.loader.exec_module(module)
    return module


class Unavailable(Exception):
    """The implementation is not installed in this interpreter."""


class Skip(Exception):
    """The implementation has no way to run this kind of layer."""


# Each maker: (layer, x, w, threads, suite) -> a callable returning the output as an array.


def fastconv_fn(layer, x, w, threads, suite):
    from fastconv._bench import fastconv_plan

    plan = fastconv_plan(layer, w, "auto", threads)
    return lambda: plan(x)


def torch_fn(layer, x, w, threads, suite):
    import torch

    torch.set_num_threads(threads)
    conv = getattr(
        torch.nn.functional, f"conv_transpose{layer.nd}d" if layer.transposed else f"conv{layer.nd}d"
    )
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    if layer.transposed:
        args = (layer.stride, layer.padding, 0, layer.groups, layer.dilation)
    else:
        args = (layer.stride, layer.padding, layer.dilation, layer.groups)

    def run():
        with torch.no_grad():
            return conv(xt, wt, None, *args).numpy()

    return run


def onnx_model_bytes(layer, w, suite) -> bytes:
    """The layer as a one-node ONNX model (Conv or ConvTranspose) with the weights as an initializer."""
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise Unavailable(f"the onnx package (to build the model) is not installed: {exc}") from None
    node = helper.make_node(
        "ConvTranspose" if layer.transposed else "Conv",
        ["x", "w"],
        ["y"],
        kernel_shape=list(layer.kernel),
        strides=list(layer.stride),
        pads=list(layer.padding) * 2,
        dilations=list(layer.dilation),
        group=layer.groups,
    )
    graph = helper.make_graph(
        [node],
        layer.name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(suite.input_shape(layer)))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(suite.output_shape(layer)))],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by older runtimes than the onnx package's default
    return model.SerializeToString()


def onnxruntime_fn(layer, x, w, threads, suite):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        onnx_model_bytes(layer, w, suite), options, providers=["CPUExecutionProvider"]
    )
    return lambda: session.run(None, {"x": x})[0]


def opencv_fn(layer, x, w, threads, suite):
    """cv2.filter2D for a single-channel 'same' correlation (what an OpenCV user calls for an image
    filter), else the dnn module's ONNX importer (2-D layers only)."""
    import cv2
    import numpy as np

    cv2.setNumThreads(threads)
    single = layer.n == layer.cin == layer.cout == 1 and not layer.transposed
    same = all(k % 2 == 1 and p == k // 2 for k, p in zip(layer.kernel, layer.padding, strict=True))
    if single and same and layer.nd == 2 and max(layer.stride + layer.dilation) == 1:
        image, kernel = x[0, 0], w[0, 0]
        return lambda: cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_CONSTANT)[None, None]
    if layer.nd != 2:
        raise Skip("cv2.dnn runs 2-D convolutions only")
    net = cv2.dnn.readNetFromONNX(np.frombuffer(onnx_model_bytes(layer, w, suite), np.uint8))

    def run():
        net.setInput(x)
        return net.forward()

    return run


def _probe(impl: str) -> str:
    """The version of the implementation, or Unavailable."""
    module = {"fastconv": "fastconv", "torch": "torch", "onnxruntime": "onnxruntime", "opencv": "cv2"}[impl]
    try:
        imported = __import__(module)
    except Exception as exc:  # ImportError, or a broken install failing in its own way
        raise Unavailable(f"{type(exc).__name__}: {exc}") from None
    if impl == "onnxruntime":
        try:
            import onnx  # noqa: F401
        except ImportError as exc:
            raise Unavailable(f"the onnx package (to build the models) is not installed: {exc}") from None
    return getattr(imported, "__version__", "?")


def _emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=IMPLS, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-time", type=float, default=0.4)
    parser.add_argument("layers", nargs="+")
    args = parser.parse_args(argv)
    import numpy as np

    suite = _load_layers()
    try:
        version = _probe(args.impl)
    except Unavailable as exc:
        _emit({"impl": args.impl, "unavailable": str(exc)})
        return 0
    _emit({"impl": args.impl, "version": version})
    make = {"fastconv": fastconv_fn, "torch": torch_fn, "onnxruntime": onnxruntime_fn, "opencv": opencv_fn}[
        args.impl
    ]
    # One thread: CPU time of the process, which other processes on a loaded machine do not inflate
    # (and which still counts any helper thread an implementation might use); more: wall time.
    clock = time.process_time if args.threads == 1 else time.perf_counter
    for name in args.layers:
        layer = suite.BY_NAME[name]
        x, w = suite.make_inputs(layer)
        try:
            fn = make(layer, x, w, args.threads, suite)
            y = np.asarray(fn())  # the warm-up call; its result is the one compared
            seconds, calls = timeit(fn, args.min_time, warmup=False, clock=clock)
        except Skip as exc:
            _emit({"layer": name, "skip": str(exc)})
            continue
        except Exception as exc:  # an implementation that fails on a layer is reported, not fatal
            text = str(exc).strip().splitlines()
            _emit({"layer": name, "error": f"{type(exc).__name__}: {text[0][:200] if text else ''}"})
            continue
        flat = y.reshape(-1)
        index = np.linspace(0, flat.size - 1, min(SAMPLES, flat.size)).astype(np.int64)
        _emit(
            {
                "layer": name,
                "ms": seconds * 1e3,
                "calls": calls,
                "shape": list(y.shape),
                "sample": flat[index].astype(float).tolist(),
            }
        )
    return 0


if __name__ == "__main__":
    # This file's directory: fastconv's signal.py must not shadow the stdlib module (the imports above
    # are of modules that do not import signal).
    sys.path.pop(0)
    sys.exit(main())
