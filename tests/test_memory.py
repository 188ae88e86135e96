"""Memory: many calls and many plans leave memory flat.

For each engine (direct, im2col, auto; forward and transposed; float32 and float64 in turn), 10,000 calls
on small layers, and 2,000 plan creations / destructions, and 2,000 calls that fail argument checking,
after a warm-up, must leave:
  - resident memory (/proc/self/statm) within RSS_BOUND (5 MiB) of where it was;
  - the C heap in use (glibc's mallinfo2: bytes in allocated chunks, mmapped ones included, summed over
    every arena, so the OpenMP workers' too) within HEAP_BOUND (256 KiB): a leak of 26 bytes per call
    shows, where the RSS needs 500.
The figures are printed (pytest -s shows them). Skipped under AddressSanitizer (its quarantine holds freed
memory on purpose, and it replaces malloc) and valgrind, whose tools/valgrind.sh checks leaks its own way.
"""

from __future__ import annotations

import ctypes
import gc
import os

import fastconv
import numpy as np
import pytest
from engines import WINOGRAD

CALLS = 10_000
PLANS = 2_000
ERRORS = 2_000
WARMUP = 500
RSS_BOUND = 5 << 20
HEAP_BOUND = 256 << 10

pytestmark = pytest.mark.skipif(
    "libasan" in os.environ.get("LD_PRELOAD", "") or "vgpreload" in os.environ.get("LD_PRELOAD", ""),
    reason="memory is measured without sanitizers or valgrind",
)

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _heap_reader():
    try:
        libc = ctypes.CDLL(None)
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _Mallinfo2

    def heap():
        info = mallinfo2()
        return info.uordblks + info.hblkhd

    return heap


heap_in_use = _heap_reader()


def measure(name, work, count, warmup=WARMUP):
    """Runs work(i) for i in range(warmup) then range(count); returns and prints the growth of RSS and of
    the heap over the counted part."""
    for i in range(warmup):
        work(i)
    gc.collect()
    rss0, heap0 = rss(), heap_in_use() if heap_in_use else 0
    for i in range(count):
        work(i)
    gc.collect()
    rss_growth = rss() - rss0
    heap_growth = (heap_in_use() - heap0) if heap_in_use else 0
    print(
        f"\n{name}: {count} iterations: RSS {rss_growth / 1024:+.0f} KiB, heap in use {heap_growth:+d} bytes"
    )
    assert rss_growth < RSS_BOUND, f"{name}: RSS grew by {rss_growth / 2**20:.1f} MiB over {count} iterations"
    if heap_in_use:
        assert heap_growth < HEAP_BOUND, (
            f"{name}: the heap grew by {heap_growth} bytes over {count} iterations"
        )
    return rss_growth, heap_growth


def _arrays(transposed, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 4, 9, 11)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3) if transposed else (6, 4, 3, 3)).astype(dtype)
    b = rng.standard_normal(3 if transposed else 6).astype(dtype)
    return x, w, b


ENGINES = ["direct", "im2col", "auto"] + (["winograd"] if WINOGRAD else [])


@pytest.mark.parametrize("algorithm", ENGINES)
def test_calls_leave_memory_flat(algorithm):
    """10,000 calls per engine: forward float32 / float64 and transposed, functional and plan, with out=
    and with a non-zero padding mode, round robin (Winograd: the float32 2-D 3x3 layers it runs)."""
    xs, ws, bs = {}, {}, {}
    for transposed in (False, True):
        for dtype in (np.float32, np.float64):
            xs[transposed, dtype], ws[transposed, dtype], bs[transposed, dtype] = _arrays(transposed, dtype)
    plan = fastconv.Convolution(ws[False, np.float32], bs[False, np.float32], padding=1, algorithm=algorithm)
    out = np.empty((2, 6, 9, 11), np.float32)

    x_nhwc = np.ascontiguousarray(np.moveaxis(xs[True, np.float64], 1, -1))

    if algorithm == "winograd":  # float32 channels-first 2-D 3x3 stride 1 only: kinds 0, 4, 5 and these
        x_one = xs[False, np.float32][:1]
        w_grouped = ws[False, np.float32][:, :2].copy()

    def work(i):
        kind = i % 6
        if algorithm == "winograd" and kind in (1, 2, 3):
            threads = 2 if i % 50 == 0 else 1
            if kind == 1:
                fastconv.conv2d(
                    x_one,
                    ws[False, np.float32],
                    None,
                    padding="same",
                    algorithm=algorithm,
                    num_threads=threads,
                )
            else:
                fastconv.conv2d(
                    xs[False, np.float32],
                    w_grouped,
                    None,
                    padding=kind - 1,
                    groups=2,
                    algorithm=algorithm,
                    num_threads=threads,
                )
            return
        # Mostly one thread (waking an OpenMP team costs more than a small layer, and up to 100x more on a
        # busy machine); every 50th call with two, so the workers' own buffers are exercised too.
        threads = 2 if i % 50 == 0 else 1
        if kind == 0:
            fastconv.conv2d(
                xs[False, np.float32],
                ws[False, np.float32],
                bs[False, np.float32],
                padding=1,
                algorithm=algorithm,
                num_threads=threads,
            )
        elif kind == 1:
            fastconv.conv2d(
                xs[False, np.float64],
                ws[False, np.float64],
                None,
                stride=2,
                algorithm=algorithm,
                padding_mode="reflect",
                padding=1,
                num_threads=threads,
            )
        elif kind == 2:
            fastconv.conv_transpose2d(
                xs[True, np.float32],
                ws[True, np.float32],
                bs[True, np.float32],
                stride=2,
                algorithm=algorithm,
                num_threads=threads,
            )
        elif kind == 3:
            fastconv.conv_transpose2d(
                x_nhwc,
                ws[True, np.float64],
                None,
                padding=1,
                algorithm=algorithm,
                layout="NHWC",
                num_threads=threads,
            )
        elif kind == 4:
            plan(xs[False, np.float32], out=out, num_threads=threads)
        else:
            plan(xs[False, np.float32][0], num_threads=threads)

    measure(f"calls[{algorithm}]", work, CALLS)


def test_plan_creation_leaves_memory_flat():
    """2,000 plans created, called once and dropped, over every engine, dtype and kind."""
    arrays = {(t, d): _arrays(t, d) for t in (False, True) for d in (np.float32, np.float64)}

    def work(i):
        transposed, dtype = bool(i % 2), (np.float32, np.float64)[i // 2 % 2]
        x, w, b = arrays[transposed, dtype]
        algorithm = ("direct", "im2col", "auto")[i % 3]
        plan = fastconv.Convolution(
            w,
            b if i % 5 else None,
            stride=1 + i % 2,
            padding=1,
            transposed=transposed,
            algorithm=algorithm,
            num_threads=2 if i % 50 == 0 else 1,
        )
        plan(x)
        del plan

    measure("plans", work, PLANS, warmup=200)


def test_failing_calls_leave_memory_flat():
    """2,000 calls that fail, in Python argument checking and in the plan (wrong input channels)."""
    x, w, b = _arrays(False, np.float32)
    plan = fastconv.Convolution(w, b, num_threads=1)
    bad_x = np.ones((2, 5, 9, 11), np.float32)

    def work(i):
        kind = i % 4
        try:
            if kind == 0:
                fastconv.conv2d(x, w, b, stride=0)
            elif kind == 1:
                plan(bad_x)
            elif kind == 2:
                fastconv.conv2d(x.astype(np.float64), w)
            else:
                fastconv.conv2d(x, np.ones((6, 4, 30, 30), np.float32))
        except (ValueError, TypeError):
            return
        raise AssertionError("the call should have failed")

    measure("errors", work, ERRORS, warmup=200)


def test_memory_figures_can_see_a_leak():
    """The instruments work: 10,000 leaked 1 KiB C allocations show in both."""
    if heap_in_use is None:
        pytest.skip("no mallinfo2")
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    leaked = []
    heap0, rss0 = heap_in_use(), rss()
    for _ in range(10_000):
        p = libc.malloc(1024)
        ctypes.memset(p, 1, 1024)
        leaked.append(p)
    heap_growth, rss_growth = heap_in_use() - heap0, rss() - rss0
    for p in leaked:
        libc.free(p)
    assert heap_growth >= 10_000 * 1024
    assert rss_growth >= RSS_BOUND
