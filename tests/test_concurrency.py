"""Concurrency: Python threads, thread limits and fork.

- 8 Python threads calling the functional API at once, and 8 threads sharing one plan (on inputs of
  different batch and spatial sizes), give bit-for-bit the results of the same calls made one after the
  other (each call's work split depends only on its own thread count, never on other calls).
- threadpoolctl.threadpool_limits(1) makes fastconv single-threaded: fastconv's default thread count
  becomes 1, and, observed from outside, no OpenMP worker thread is created by calls made under the limit
  in a fresh process (while the same calls without the limit do create one: the check can see it).
- Fork after use: a child made by os.fork() (or by multiprocessing's "fork" start method) after fastconv
  ran multithreaded calls can call fastconv again, gets the parent's results, and finishes. GNU libgomp is
  not fork-safe (a child entering a parallel region after the parent used the pool waits forever), so
  these run in a child process with a timeout: a hang fails the test instead of hanging CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import fastconv
import numpy as np
import pytest
from engines import WINOGRAD

THREADS = 8
ROUNDS = 6
TIMEOUT = 60


# (name, function, weight shape, input shape, kwargs): small layers on every engine and kind.


LAYERS = [
    ("conv2d_direct_f32", "conv2d", (8, 4, 3, 3), (2, 4, 17, 19), dict(padding=1, algorithm="direct")),
    ("conv2d_im2col_f32", "conv2d", (8, 4, 3, 3), (2, 4, 17, 19), dict(stride=2, algorithm="im2col")),
    ("conv2d_auto_f64", "conv2d", (16, 8, 3, 3), (1, 8, 16, 16), dict(padding="same", algorithm="auto")),
    ("conv1d_grouped_cl", "conv1d", (6, 2, 5), (3, 33, 4), dict(groups=2, dilation=2, layout="NWC")),
    (
        "conv3d_direct",
        "conv3d",
        (4, 3, 2, 3, 3),
        (1, 3, 7, 8, 9),
        dict(padding=(1, 0, 2), algorithm="direct"),
    ),
    (
        "conv_transpose2d_im2col",
        "conv_transpose2d",
        (4, 6, 3, 3),
        (2, 4, 9, 9),
        dict(stride=2, output_padding=1, algorithm="im2col"),
    ),
    (
        "conv_transpose1d_direct",
        "conv_transpose1d",
        (4, 3, 4),
        (2, 4, 31),
        dict(stride=3, algorithm="direct"),
    ),
    (
        "depthwise_reflect",
        "conv2d",
        (8, 1, 3, 3),
        (2, 8, 15, 15),
        dict(groups=8, padding=1, padding_mode="reflect"),
    ),
]
if WINOGRAD:
    LAYERS.append(
        ("conv2d_winograd", "conv2d", (16, 16, 3, 3), (2, 16, 14, 15), dict(padding=1, algorithm="winograd"))
    )


def _layer_arrays(index, seed):
    name, fn, w_shape, x_shape, kwargs = LAYERS[index]
    dtype = np.float64 if name.endswith("f64") else np.float32
    rng = np.random.default_rng(1000 * index + seed)
    w = rng.standard_normal(w_shape).astype(dtype)
    x = rng.standard_normal(x_shape).astype(dtype)
    b = rng.standard_normal(w_shape[1] * kwargs.get("groups", 1) if fn.startswith("conv_t") else w_shape[0])
    return getattr(fastconv, fn), x, w, b.astype(dtype), kwargs


def _run_threads(jobs, threads=THREADS):
    """Runs jobs (callables) on `threads` Python threads, all released at once; returns their results in
    order and re-raises the first error."""
    results = [None] * len(jobs)
    errors = []
    barrier = threading.Barrier(threads)

    def worker(t):
        barrier.wait()
        try:
            for i in range(t, len(jobs), threads):
                results[i] = jobs[i]()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for p in pool:
        p.start()
    for p in pool:
        p.join()
    if errors:
        raise errors[0]
    return results


def _functional_jobs():
    jobs = []
    for round_ in range(ROUNDS):
        for index in range(len(LAYERS)):
            fn, x, w, b, kwargs = _layer_arrays(index, round_)
            jobs.append(lambda fn=fn, x=x, w=w, b=b, kwargs=kwargs: fn(x, w, b, **kwargs))
    return jobs


def test_functional_api_from_8_threads_matches_sequential():
    jobs = _functional_jobs()
    sequential = [job() for job in jobs]
    concurrent = _run_threads(jobs)
    for i, (s, c) in enumerate(zip(sequential, concurrent, strict=True)):
        assert s.shape == c.shape and s.dtype == c.dtype, LAYERS[i % len(LAYERS)][0]
        assert np.array_equal(s, c), f"{LAYERS[i % len(LAYERS)][0]}: concurrent result differs"


@pytest.mark.parametrize("algorithm", ["direct", "im2col", "auto", "winograd"])
@pytest.mark.parametrize("transposed", [False, True], ids=["forward", "transposed"])
def test_shared_plan_from_8_threads_matches_sequential(algorithm, transposed):
    if algorithm == "winograd" and (transposed or not WINOGRAD):
        pytest.skip("Winograd runs forward 3x3 stride-1 float32 layers only")
    rng = np.random.default_rng(7)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4 * 2 if transposed else 6).astype(np.float32)
    plan = fastconv.Convolution(
        w, b, stride=2 if transposed else 1, padding=1, groups=2, transposed=transposed, algorithm=algorithm
    )
    cin = 6 if transposed else 8
    # Inputs of different batch and spatial sizes, so concurrent calls have different geometries.
    inputs = [
        rng.standard_normal((1 + i % 3, cin, 5 + i % 7, 9 + 2 * (i % 5))).astype(np.float32)
        for i in range(THREADS * ROUNDS)
    ]
    sequential = [plan(x) for x in inputs]
    concurrent = _run_threads([lambda x=x: plan(x) for x in inputs])
    for s, c in zip(sequential, concurrent, strict=True):
        assert np.array_equal(s, c)


def test_shared_plan_with_out_arrays_from_8_threads():
    rng = np.random.default_rng(11)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float64)
    plan = fastconv.Convolution(w, padding=1)
    inputs = [rng.standard_normal((2, 8, 12, 12)) for _ in range(THREADS * 2)]
    outs = [np.empty((2, 8, 12, 12)) for _ in inputs]
    _run_threads([lambda x=x, o=o: plan(x, out=o) for x, o in zip(inputs, outs, strict=True)])
    for x, o in zip(inputs, outs, strict=True):
        assert np.array_equal(o, plan(x))


# ---------------------------------------------------------------------------------------------------
# Thread limits


def test_threadpool_limits_sets_default_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1):
        assert fastconv._core.default_num_threads() == 1
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fastconv._core.default_num_threads() == 1
    # A limit set in a thread holds for the calls that thread makes.
    seen = []

    def in_thread():
        with threadpoolctl.threadpool_limits(1):
            seen.append(fastconv._core.default_num_threads())

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    assert seen == [1]


_LIMITS_CHILD = r"""
import os, sys
import numpy as np
import fastconv
from threadpoolctl import threadpool_limits, threadpool_info

def tasks():
    return len(os.listdir("/proc/self/task"))

# Layers big enough (38 MFLOP) that no size heuristic would run them on one thread anyway.
x = np.ones((1, 16, 64, 64), np.float32)
w = np.ones((16, 16, 3, 3), np.float32)
xt = np.ones((1, 16, 32, 32), np.float32)
before = tasks()
with threadpool_limits(1):
    assert fastconv._core.default_num_threads() == 1
    for algorithm in ("direct", "im2col", "auto"):
        fastconv.conv2d(x, w, padding=1, algorithm=algorithm)
        fastconv.conv_transpose2d(xt, w, stride=2, algorithm=algorithm)
        plan = fastconv.Convolution(w, padding=1, algorithm=algorithm)
        plan(x)
    under_limit = tasks()
    blas = [p["num_threads"] for p in threadpool_info() if p["internal_api"] == "openblas"]
unlimited_default = fastconv._core.default_num_threads()
fastconv.conv2d(x, w, padding=1, algorithm="direct")
after = tasks()
print(before, under_limit, after, unlimited_default, blas)
"""


def test_threadpool_limits_observed_no_worker_threads():
    """In a fresh process (no OpenMP pool yet), calls under threadpool_limits(1) start no thread; the same
    call without the limit does (when the machine has more than one CPU), so the count can see it."""
    pytest.importorskip("threadpoolctl")
    proc = _run_child(_LIMITS_CHILD)
    assert proc.returncode == 0, proc.stderr
    before, under_limit, after, default, blas = proc.stdout.split(None, 4)
    assert int(under_limit) == int(before), f"threads appeared under threadpool_limits(1): {proc.stdout}"
    assert set(eval(blas)) <= {1}, f"BLAS pools not limited: {blas}"
    if int(default) > 1:
        assert int(after) > int(before), (
            f"an unlimited call started no worker, so the check is blind: {proc.stdout}"
        )


# ---------------------------------------------------------------------------------------------------
# Fork after use

_FORK_CHILD = r"""
import os, signal, sys
import numpy as np
import fastconv

rng = np.random.default_rng(3)
x = rng.standard_normal((2, 8, 40, 40)).astype(np.float32)
w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
xt = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)

def calls():
    out = []
    for algorithm in ("direct", "im2col", "auto"):
        for threads in (None, 2, 4):
            out.append(fastconv.conv2d(x, w, padding=1, algorithm=algorithm, num_threads=threads))
            out.append(fastconv.conv_transpose2d(xt, w, stride=2, algorithm=algorithm, num_threads=threads))
    return out

def same(a, b):
    return all(np.allclose(p, q, rtol=1e-5, atol=1e-5) for p, q in zip(a, b))

expected = calls()               # multithreaded: the OpenMP pool exists now
assert len(os.listdir("/proc/self/task")) > 1 or fastconv._core.default_num_threads() == 1

def child(depth):
    signal.alarm(40)             # a hang kills the child; the parent then sees a signal, not a pass
    ok = same(calls(), expected)
    if ok and depth < 2:         # a grandchild, forked from a child that itself ran fastconv
        pid = os.fork()
        if pid == 0:
            child(depth + 1)
        _, status = os.waitpid(pid, 0)
        ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    os._exit(0 if ok else 3)

pid = os.fork()
if pid == 0:
    child(1)
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status), f"child killed by signal {os.WTERMSIG(status)} (alarm: it hung)"
code = os.WEXITSTATUS(status)
assert code == 0, f"child exit {code}: wrong results or a failing grandchild"
assert same(calls(), expected)   # the parent still works, threads and all
print("fork ok")
"""

_MULTIPROCESSING_CHILD = r"""
import multiprocessing as mp
import numpy as np
import fastconv

w = np.random.default_rng(5).standard_normal((8, 8, 3, 3)).astype(np.float32)

def work(seed):
    x = np.random.default_rng(seed).standard_normal((1, 8, 32, 32)).astype(np.float32)
    return fastconv.conv2d(x, w, padding=1)

if __name__ == "__main__":
    expected = [work(s) for s in range(8)]   # the parent's pool is up before the workers are forked
    with mp.get_context("fork").Pool(2) as pool:
        got = pool.map(work, range(8))
    assert all(np.allclose(a, b, rtol=1e-5, atol=1e-5) for a, b in zip(got, expected))
    print("multiprocessing ok")
"""


def _run_child(code, timeout=TIMEOUT):
    try:
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child process hung (no exit within {timeout}s)")
    if "runtime error:" in proc.stderr or "Sanitizer" in proc.stderr:  # for tools/sanitize.sh
        os.write(2, ("---- sanitizer output of a child process ----\n" + proc.stderr + "\n").encode())
    return proc


def test_fork_after_multithreaded_use():
    proc = _run_child(_FORK_CHILD)
    assert proc.returncode == 0 and "fork ok" in proc.stdout, proc.stderr[-3000:]


def test_multiprocessing_fork_pool_after_use():
    proc = _run_child(_MULTIPROCESSING_CHILD)
    assert proc.returncode == 0 and "multiprocessing ok" in proc.stdout, proc.stderr[-3000:]
