"""`python -m fastconv bench`: the command runs, prints its table and writes its JSON; the layer suite and
the plain-numpy baseline (which is also the float64 reference of the bench's error column) are right.

Nothing here times anything: one tiny layer runs with --min-time 0, so the file takes a few seconds.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from fastconv import _bench, _layers
from fastconv._layers import LAYERS, QUICK, Layer
from reference import reference_conv, reference_conv_transpose, rel_err

TINY = "mobilenetv2.dw7"  # 0.8 MFLOP


def _run(*args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "fastconv", *args], capture_output=True, text=True, timeout=timeout
    )


def test_bench_one_layer_table_and_json(tmp_path):
    out = tmp_path / "bench.json"
    r = _run("bench", "--quick", "--min-time", "0", "--json", str(out), TINY)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = next(line for line in lines if line.startswith("layer"))
    for column in ("algorithm", "ms", "GFLOP/s", "numpy ms", "speedup", "max err"):
        assert column in header
    row = next(line for line in lines if line.startswith(TINY)).split()
    assert len(row) == 7, row
    assert float(row[2]) > 0 and float(row[3]) > 0 and float(row[4]) > 0
    assert row[5].endswith("x") and float(row[5][:-1]) > 0
    assert float(row[6]) < 1e-4
    assert any(line.startswith("geomean") for line in lines)
    assert f"[1/1] {TINY}" in r.stderr  # progress goes to stderr, not into the table
    assert "[1/1]" not in r.stdout

    data = json.loads(out.read_text())
    assert data["impl"] == "fastconv" and data["threads"] == 1 and data["algorithm"] == "auto"
    assert list(data["rows"]) == [TINY]
    rec = data["rows"][TINY]
    assert {"ms", "gflops", "err", "speedup_vs_numpy", "algorithm"} <= set(rec)
    assert rec["ms"] > 0 and rec["gflops"] > 0 and rec["speedup_vs_numpy"] > 0
    assert 0 <= rec["err"] < 1e-4
    assert isinstance(rec["algorithm"], str) and rec["algorithm"]
    assert math.isclose(rec["gflops"], _layers.flops(_layers.BY_NAME[TINY]) / rec["ms"] / 1e6, rel_tol=1e-9)


def test_bench_usage_errors():
    r = _run()
    assert r.returncode == 2 and "usage" in r.stderr
    r = _run("frobnicate")
    assert r.returncode == 2
    r = _run("bench", "no.such.layer")
    assert r.returncode == 2 and "no.such.layer" in r.stderr


def test_suite():
    names = [layer.name for layer in LAYERS]
    assert len(names) == len(set(names)) == 19
    assert set(QUICK) <= set(names)
    quick = [_layers.BY_NAME[name] for name in QUICK]
    kinds = {
        "1x1": any(layer.kernel == (1, 1) for layer in quick),
        "3x3": any(layer.kernel == (3, 3) and layer.groups == 1 for layer in quick),
        "depthwise": any(layer.groups == layer.cin == layer.cout > 1 for layer in quick),
        "grouped": any(1 < layer.groups < layer.cin for layer in quick),
        "dilated": any(max(layer.dilation) > 1 for layer in quick),
        "strided": any(max(layer.stride) > 1 and not layer.transposed for layer in quick),
        "transposed": any(layer.transposed for layer in quick),
        "1D": any(layer.nd == 1 for layer in quick),
        "3D": any(layer.nd == 3 for layer in quick),
    }
    assert all(kinds.values()), kinds
    assert sum(map(_layers.flops, quick)) < 3e9  # well under a minute even with the portable engine
    by_name = _layers.BY_NAME
    assert _layers.flops(by_name["resnet50.l3.3x3"]) == 2 * 14 * 14 * 256 * 256 * 9
    assert _layers.flops(by_name["dcgan.deconv"]) == 2 * 16 * 16 * 256 * 128 * 16
    assert _layers.output_shape(by_name["resnet50.conv1"]) == (1, 64, 112, 112)
    assert _layers.output_shape(by_name["dcgan.deconv"]) == (1, 128, 32, 32)
    assert _layers.output_shape(by_name["wavenet.conv1d.dil4"]) == (1, 128, 4096)
    assert _layers.output_shape(by_name["c3d.conv3d"]) == (1, 64, 8, 28, 28)
    x, w = _layers.make_inputs(by_name[TINY])
    assert x.shape == (1, 960, 7, 7) and w.shape == (960, 1, 3, 3) and x.dtype == w.dtype == np.float32
    assert np.array_equal(x, _layers.make_inputs(by_name[TINY])[0])  # the same data in every process


# Small layers of every kind the suite has, and a few it has not, for the numpy baseline.
SMALL = [
    Layer("dense", 2, 2, 6, 4, (9, 8), (3, 3), (1, 1), (1, 1), (1, 1), 1, False),
    Layer("strided", 2, 1, 4, 6, (11, 9), (3, 2), (2, 3), (1, 0), (1, 1), 1, False),
    Layer("dilated", 2, 1, 3, 5, (12, 10), (3, 3), (1, 1), (2, 2), (2, 3), 1, False),
    Layer("grouped", 2, 2, 6, 9, (8, 7), (3, 3), (2, 1), (1, 1), (1, 2), 3, False),
    Layer("depthwise", 2, 1, 5, 5, (9, 9), (3, 3), (2, 2), (1, 1), (1, 1), 5, False),
    Layer("multiplier", 2, 1, 3, 6, (7, 8), (3, 3), (1, 1), (1, 1), (1, 1), 3, False),
    Layer("conv1d", 1, 2, 4, 3, (20,), (3,), (2,), (4,), (4,), 1, False),
    Layer("conv3d", 3, 1, 2, 3, (5, 6, 7), (3, 2, 3), (1, 2, 1), (1, 0, 1), (1, 1, 2), 1, False),
    Layer("single", 2, 1, 1, 1, (15, 13), (5, 5), (1, 1), (2, 2), (1, 1), 1, False),
    Layer("deconv", 2, 2, 4, 3, (5, 6), (4, 4), (2, 2), (1, 1), (1, 1), 1, True),
    Layer("deconv.g.d", 2, 1, 6, 4, (5, 4), (3, 2), (2, 3), (1, 0), (2, 1), 2, True),
    Layer("deconv1d", 1, 1, 3, 2, (7,), (5,), (3,), (2,), (1,), 1, True),
    Layer("deconv3d", 3, 1, 2, 2, (3, 4, 3), (2, 3, 2), (2, 1, 2), (0, 1, 1), (1, 1, 1), 1, True),
]


@pytest.mark.parametrize(
    "layer, taps",
    [(layer, False) for layer in SMALL] + [(layer, True) for layer in SMALL if not layer.transposed],
    ids=lambda v: v.name if isinstance(v, Layer) else ("taps" if v else "windows"),
)
def test_numpy_baseline(layer, taps, monkeypatch):
    if taps:  # force the per-tap path on dense layers too
        monkeypatch.setattr(_bench, "WINDOW_LIMIT", 0)
    x, w = _layers.make_inputs(layer, "float64")
    pads = tuple((p, p) for p in layer.padding)
    if layer.transposed:
        ref = reference_conv_transpose(x, w, None, layer.stride, pads, 0, layer.groups, layer.dilation)
    else:
        ref = reference_conv(x, w, None, layer.stride, pads, layer.dilation, layer.groups)
    y = _bench.numpy_fn(layer, x, w)()
    assert y.shape == ref.shape == _layers.output_shape(layer)
    assert rel_err(y, ref) < 1e-12
    y32 = _bench.numpy_fn(layer, *_layers.make_inputs(layer))()
    assert y32.dtype == np.float32 and rel_err(y32, ref) < 1e-5


# -- --compare and --engines --------------------------------------------------------------------------


def test_compare_runs_and_says_which_anchors_it_skipped(tmp_path):
    out = tmp_path / "compare.json"
    r = _run("bench", "--compare", "--rounds", "1", "--min-time", "0", "--json", str(out), TINY, timeout=300)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["rounds"] == 1 and data["threads"] == 1
    row = data["rows"][TINY]
    assert row["ms"]["fastconv"] > 0
    for anchor in ("torch", "onnxruntime", "opencv"):
        # Either it ran (a time, or a reason it cannot run the layer) or it is reported as skipped.
        ran = anchor in row["ms"] or anchor in row["notes"]
        assert ran != (anchor in data["skipped"]), anchor
        if anchor in data["skipped"]:
            assert f"skipped {anchor}: " in r.stdout
    if row["ms"].keys() - {"fastconv"}:
        assert row["ratio"] > 0 and row["anchor_vs_fastconv_max_diff"] < 1e-4
    assert "fastconv/best" in r.stdout and f"fastconv [1/1] {TINY}" in r.stderr


def _measured():
    """What measure() returns for two layers, with torch and opencv present and onnxruntime missing."""
    sample = {"shape": [1, 2], "sample": [1.0, -2.0]}
    off = {"shape": [1, 2], "sample": [1.0, -2.5]}
    only_2d = {"skip": "cv2.dnn runs 2-D convolutions only"}
    return {
        "versions": {"fastconv": "0", "torch": "1", "opencv": "2"},
        "skipped": {"onnxruntime": "ModuleNotFoundError: No module named 'onnxruntime'"},
        "records": {
            "fastconv": {TINY: {"ms": 1.0, **sample}, "c3d.conv3d": {"ms": 8.0, **sample}},
            "torch": {TINY: {"ms": 4.0, **sample}, "c3d.conv3d": {"ms": 2.0, **off}},
            "onnxruntime": {},
            "opencv": {TINY: {"ms": 2.0, **sample}, "c3d.conv3d": only_2d},
        },
    }


COMPARED = [_layers.BY_NAME[TINY], _layers.BY_NAME["c3d.conv3d"]]


def test_compare_table_from_records(monkeypatch):
    from fastconv import _bench_compare

    measured = _measured()
    rows = _bench_compare.rows_of(COMPARED, measured)
    assert rows[TINY]["best_anchor"] == "opencv" and rows[TINY]["ratio"] == 0.5
    assert rows["c3d.conv3d"]["best_anchor"] == "torch" and rows["c3d.conv3d"]["ratio"] == 4.0
    assert rows["c3d.conv3d"]["anchor_vs_fastconv_max_diff"] == 0.25
    assert rows["c3d.conv3d"]["notes"] == {"opencv": "cv2.dnn runs 2-D convolutions only"}
    text = "\n".join(_bench_compare.format_table(rows, measured, 1))
    assert "onnxruntime ms" not in text and "skipped onnxruntime: ModuleNotFoundError" in text
    geomean_line = next(line for line in text.splitlines() if line.startswith("geomean"))
    assert geomean_line.split()[-1] == "1.41x"  # sqrt(0.5 * 4)
    assert "n/a: opencv on c3d.conv3d" in text
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    assert "matplotlib is not installed" in _bench_compare.plot(rows, "unused.png", 1)


def test_compare_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from fastconv import _bench_compare

    path = tmp_path / "ratios.png"
    assert _bench_compare.plot(_bench_compare.rows_of(COMPARED, _measured()), str(path), 1) is None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_anchor_worker_does_not_need_fastconv():
    from fastconv import _bench_anchor

    # fastconv made unimportable, as in an anchor's interpreter; the worker runs by path.
    boot = (
        "import runpy, sys; sys.modules['fastconv'] = None; "
        f"sys.argv = ['worker', '--impl', 'torch', '--min-time', '0', {TINY!r}]; "
        f"runpy.run_path({_bench_anchor.__file__!r}, run_name='__main__')"
    )
    r = subprocess.run([sys.executable, "-c", boot], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    first, *rest = [json.loads(line) for line in r.stdout.splitlines()]
    assert first["impl"] == "torch" and ("version" in first or "unavailable" in first)
    if "version" in first:
        assert rest[0]["layer"] == TINY and rest[0]["ms"] > 0 and rest[0]["shape"] == [1, 960, 7, 7]


def test_engines_table():
    r = _run("bench", "--engines", "--min-time", "0", TINY, "resnet50.l3.1x1", timeout=120)
    assert r.returncode == 0, r.stderr
    header = next(line for line in r.stdout.splitlines() if line.startswith("layer"))
    assert "auto ms" in header and "direct ms" in header and "auto/best" in header
    for name in (TINY, "resnet50.l3.1x1"):
        row = next(line for line in r.stdout.splitlines() if line.startswith(name)).split()
        assert row[-1].endswith("x") and float(row[-1][:-1]) > 0
    assert "geomean auto/best" in r.stdout and "worst" in r.stdout
