"""Measured selection (tune=True, save_tuning/load_tuning), explain(), and what plans promise: pickling,
memory, several threads at once, inputs of any spatial size.

Nothing here asserts a timing: tuning may pick any engine that can run the layer; the tests check the
choice is one of those, that its results match the float64 reference, and that it is remembered.
"""

from __future__ import annotations

import json
import pickle
import threading
import warnings

import fastconv
import numpy as np
import pytest
from engines import WINOGRAD
from fastconv import _tuning
from reference import reference_conv, rel_err

TOL = 1e-4  # float32 against the float64 reference (Winograd's transforms included)


@pytest.fixture(autouse=True)
def fresh_cache():
    fastconv.clear_tuning()
    yield
    fastconv.clear_tuning()


def _layer(cin=32, cout=32, size=12, seed=0):
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((cout, cin, 3, 3)) * 0.1).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    x = rng.standard_normal((2, cin, size, size + 1)).astype(np.float32)
    return x, w, b


def _reference(x, w, b, padding=1):
    return reference_conv(x, w, b, (1, 1), ((padding, padding),) * 2, (1, 1), 1)


def test_tune_picks_an_engine_that_can_run_the_layer_and_is_right():
    x, w, b = _layer()
    plan = fastconv.Convolution(w, b, padding=1, tune=True, num_threads=1)
    y = plan(x)
    engines = {"direct", "im2col"} | ({"winograd"} if WINOGRAD else set())
    assert plan.algorithm in engines
    assert rel_err(y, _reference(x, w, b)) < TOL
    choice = next(iter(_tuning._cache.values()))
    assert choice.algorithm == plan.algorithm and set(choice.times) == engines
    assert "winograd_f4" not in choice.times  # opt-in engines are timed only when listed
    # The choice is remembered: the next call (and any auto plan of the layer) runs it untimed.
    assert plan.choose(x) == plan.algorithm
    other = fastconv.Convolution(w, b, padding=1, num_threads=1)
    other(x)
    assert other.algorithm == plan.algorithm and "measured fastest" in other.explain()
    assert len(_tuning._cache) == 1


def test_tune_with_listed_engines():
    x, w, b = _layer()
    plan = fastconv.Convolution(w, b, padding=1, tune=["im2col"], num_threads=1)
    assert rel_err(plan(x), _reference(x, w, b)) < TOL
    assert plan.algorithm == "im2col"
    with pytest.raises(ValueError, match="tune lists 'frobnicate'"):
        fastconv.Convolution(w, tune=["frobnicate"])
    with pytest.raises(ValueError, match="needs algorithm='auto'"):
        fastconv.Convolution(w, tune=True, algorithm="direct")
    with pytest.raises(ValueError, match="lists no engine"):
        fastconv.Convolution(w, tune=[])
    with pytest.raises(TypeError, match="tune must be"):
        fastconv.Convolution(w, tune="direct")
    five_by_five = np.ones((4, 4, 5, 5), np.float32)
    with pytest.raises(ValueError, match="'winograd', which cannot run this layer"):
        fastconv.Convolution(five_by_five, tune=["winograd"])


def test_tuning_is_per_geometry_and_thread_count():
    x, w, b = _layer()
    plan = fastconv.Convolution(w, b, padding=1, tune=True)
    plan(x, num_threads=1)
    plan(x[:1], num_threads=1)
    plan(x[:, :, :9], num_threads=1)
    plan(x, num_threads=2)
    assert len(_tuning._cache) == 4
    assert {k[5] for k in _tuning._cache} == {1, 2}


def test_save_load_roundtrip(tmp_path):
    x, w, b = _layer()
    plan = fastconv.Convolution(w, b, padding=1, tune=True, num_threads=1)
    plan(x)
    saved = dict(_tuning._cache)
    path = tmp_path / "tuning.json"
    assert fastconv.save_tuning(path) == 1
    document = json.loads(path.read_text())
    assert document["format"] == "fastconv-tuning" and document["version"] == 1
    assert document["isa"] == fastconv._core.isas()[2] and document["fastconv"] == fastconv.__version__
    fastconv.clear_tuning()
    assert fastconv.load_tuning(path) == 1
    (k, choice), (k0, choice0) = next(iter(_tuning._cache.items())), next(iter(saved.items()))
    assert k == k0 and choice.algorithm == choice0.algorithm
    assert choice.times == pytest.approx(choice0.times)
    fresh = fastconv.Convolution(w, b, padding=1, num_threads=1)
    assert rel_err(fresh(x), _reference(x, w, b)) < TOL
    assert fresh.algorithm == choice.algorithm
    assert f"loaded from {path}" in fresh.explain()


def _saved(tmp_path, **changes):
    x, w, b = _layer()
    fastconv.Convolution(w, b, padding=1, tune=True, num_threads=1)(x)
    path = tmp_path / "tuning.json"
    fastconv.save_tuning(path)
    document = json.loads(path.read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        target = document
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
    path.write_text(json.dumps(document))
    fastconv.clear_tuning()
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format": "other"}, "not a fastconv tuning file"),
        ({"version": 99}, "format version 99"),
        # an ISA this process never selects, whatever the machine
        ({"isa": "sse9"}, "measured with the 'sse9' kernels"),
        ({"fastconv": "0.0.1"}, "measured by fastconv '0.0.1'"),
        ({"entries": {}}, "'entries' must be a list"),
        ({"entries.0.algorithm": "auto"}, "'algorithm' must be one of"),
        ({"entries.0.batch": -1}, "'batch' must be an int >= 0"),
        ({"entries.0.input": [1, 2]}, "'input' must be a list of 3 ints"),
        ({"entries.0.layer.dtype": "int8"}, "'dtype' must be"),
        ({"entries.0.layer.kernel": "3x3"}, "'kernel' must be a list of 3 ints"),
        ({"entries.0.times_ms": {"direct": "fast"}}, "'times_ms' must map"),
    ],
)
def test_load_rejects_bad_files(tmp_path, changes, message):
    path = _saved(tmp_path, **changes)
    with pytest.raises(ValueError, match=message):
        fastconv.load_tuning(path)
    assert not _tuning._cache  # nothing half-loaded


def test_load_rejects_non_json_and_warns_on_another_cpu(tmp_path):
    path = tmp_path / "garbage.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        fastconv.load_tuning(path)
    other_cpu = _saved(tmp_path, cpu="Some Other CPU")
    with pytest.warns(RuntimeWarning, match="Some Other CPU"):
        assert fastconv.load_tuning(other_cpu) == 1


def test_explain_says_what_and_why():
    x, w, b = _layer()
    auto = fastconv.Convolution(w, b, padding=1, num_threads=1)
    assert "no call yet" in auto.explain()
    auto(x)
    text = auto.explain()
    assert text.startswith(f"ran {auto.algorithm} ") and "cost model" in text
    assert auto.explain(x).startswith(f"would run {auto.choose(x)} ")
    forced = fastconv.Convolution(w, b, padding=1, algorithm="direct")
    forced(x)
    assert "forced by request (algorithm='direct')" in forced.explain()
    tuned = fastconv.Convolution(w, b, padding=1, tune=True, num_threads=1)
    assert "first call of this geometry measures" in tuned.explain(x)
    tuned(x)
    assert "measured fastest" in tuned.explain() and " ms" in tuned.explain()


@pytest.mark.skipif(not WINOGRAD, reason="no Winograd engine here")
def test_explain_reports_the_winograd_fallback_on_inf():
    x, w, b = _layer()
    plan = fastconv.Convolution(w, b, padding=1, tune=["winograd"], num_threads=1)
    plan(x)
    assert plan.algorithm == "winograd"
    x[0, 3, 4, 5] = np.inf
    plan(x)
    assert plan.algorithm == "direct"
    assert "Fallback: winograd was chosen, but the input holds Inf or NaN" in plan.explain()


@pytest.mark.parametrize("options", [{}, {"tune": True}, {"algorithm": "im2col", "padding": "same"}])
def test_pickle_roundtrip(options):
    x, w, b = _layer()
    options = {"padding": 1, "num_threads": 1, **options}
    plan = fastconv.Convolution(w, b, stride=1, **options)
    y = plan(x)
    restored = pickle.loads(pickle.dumps(plan))
    assert np.array_equal(restored(x), y)
    assert restored.requested_algorithm == plan.requested_algorithm and restored.tune == plan.tune
    assert restored.memory == plan.memory
    assert np.array_equal(restored.weight, w) and restored.weight is not plan.weight


def test_pickle_keeps_every_option():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    x = rng.standard_normal((1, 11, 9, 4)).astype(np.float32)  # channels last
    plan = fastconv.Convolution(
        w, None, stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(1, 2), groups=2,
        padding_mode="reflect", layout="NHWC",
    )  # fmt: skip
    restored = pickle.loads(pickle.dumps(plan))
    assert np.array_equal(restored(x), plan(x))
    t = fastconv.Convolution(np.ones((4, 2, 3), np.float32), transposed=True, stride=2, output_padding=1)
    xt = rng.standard_normal((1, 4, 5)).astype(np.float32)
    assert np.array_equal(pickle.loads(pickle.dumps(t))(xt), t(xt))


def test_memory_counts_the_weights():
    x, w, b = _layer()
    plan = fastconv.Convolution(w, b)
    assert plan.memory >= w.nbytes + b.nbytes
    assert fastconv.Convolution(w, b, algorithm="direct").memory <= plan.memory


def test_one_plan_serves_every_spatial_size():
    _, w, b = _layer()
    plan = fastconv.Convolution(w, b, padding=1, tune=True, num_threads=1)
    rng = np.random.default_rng(2)
    for shape in [(1, 32, 5, 7), (3, 32, 20, 16), (1, 32, 1, 1), (2, 32, 9, 9), (1, 32, 5, 7)]:
        x = rng.standard_normal(shape).astype(np.float32)
        assert rel_err(plan(x), _reference(x, w, b)) < TOL


@pytest.mark.parametrize("tune", [False, True])
def test_threads_sharing_one_plan_get_sequential_results(tune):
    _, w, b = _layer()
    plan = fastconv.Convolution(w, b, padding=1, tune=tune)
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal((1 + i % 2, 32, 6 + i, 9)).astype(np.float32) for i in range(12)]
    results = [None] * len(inputs)
    start = threading.Barrier(4)

    def work(worker):
        start.wait()
        for i in range(worker, len(inputs), 4):
            results[i] = plan(inputs[i], num_threads=1 + i % 2)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for i, x in enumerate(inputs):
        # Sequentially, after the threads: the same (possibly measured) engine, so the same bits.
        assert np.array_equal(results[i], plan(x, num_threads=1 + i % 2)), i
