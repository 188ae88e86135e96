"""fastconv.correlate against scipy.signal.correlate and cv2.filter2D, at one thread (issue 7).

Cases: a 2048x2048 float32 image with 3x3, 5x5, 15x15 and 31x31 kernels (mode "same") and a 1-D
signal of 10^6 float32 samples with a 63-tap filter. Every time is the least thread CPU time of
several runs of one call, the implementations taking turns call by call; the kernels are random (not
separable), so no case can take the separable shortcut.

    python benchmarks/bench_signal.py              # the table
    python benchmarks/bench_signal.py --calibrate  # refit signal._COST on this machine

Run it with an interpreter that has fastconv and, as anchors, scipy and opencv-python-headless (the
anchors' virtual environment of ../shared/bench/README.md); a missing one is reported and left out
of the table.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import fastconv  # noqa: E402
import numpy as np  # noqa: E402
from fastconv import _fft_library  # noqa: E402
from fastconv import signal as fs  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

try:
    import scipy.signal as ss
except ImportError:  # pragma: no cover
    ss = None
try:
    import cv2

    cv2.setNumThreads(1)
except ImportError:  # pragma: no cover
    cv2 = None

IMAGE_KERNELS = (3, 5, 15, 31)


def cpu_ms(fn, repeat, budget=2.0):
    """Least thread CPU time of `repeat` calls (fewer if they exceed `budget` seconds), after one
    warm-up: on a shared machine, wall time measures the other processes too. Every library here
    runs on the calling thread (one thread each)."""
    fn()
    times, spent = [], 0.0
    for _ in range(repeat):
        t = time.thread_time()
        fn()
        dt = time.thread_time() - t
        times.append(dt)
        spent += dt
        if spent > budget and len(times) >= 3:
            break
    return min(times) * 1e3


def cases(rng):
    image = rng.standard_normal((2048, 2048), dtype=np.float32)
    for k in IMAGE_KERNELS:
        yield f"2048x2048 {k}x{k}", image, rng.standard_normal((k, k), dtype=np.float32)
    yield (
        "1-D 10^6 x 63 taps",
        rng.standard_normal(10**6, dtype=np.float32),
        rng.standard_normal(63, dtype=np.float32),
    )


def filter2d(x, w):
    x2, w2 = (x[None, :], w[None, :]) if x.ndim == 1 else (x, w)
    return cv2.filter2D(x2, -1, w2, borderType=cv2.BORDER_CONSTANT)


def interleaved_ms(calls, repeat, budget=6.0):
    """Least thread CPU ms of each call over `repeat` rounds (fewer past `budget` seconds), the calls
    taking turns within each round: load from other processes then reaches every column alike, so
    the ratios of one row are measured under the same conditions."""
    for fn in calls.values():
        fn()
    best = dict.fromkeys(calls, math.inf)
    spent, rounds = 0.0, 0
    while rounds < repeat and (spent < budget or rounds < 3):
        for name, fn in calls.items():
            t = time.thread_time()
            fn()
            dt = time.thread_time() - t
            best[name] = min(best[name], dt * 1e3)
            spent += dt
        rounds += 1
    return best


def table(repeat):
    rng = np.random.default_rng(7)
    rows = []
    for name, x, w in cases(rng):
        row = {"case": name}
        row["auto"] = fs.choose_conv_method(x, w, mode="same")
        y = fastconv.correlate(x, w, mode="same")
        calls = {
            method: (lambda x=x, w=w, m=method: fastconv.correlate(x, w, "same", m))
            for method in ("auto", "direct", "fft")
        }
        if ss is not None:
            ref = ss.correlate(x.astype(np.float64), w.astype(np.float64), mode="same")
            row["err"] = float(np.abs(y - ref).max() / np.abs(ref).max())
            row["scipy_method"] = ss.choose_conv_method(x, w, mode="same")
            calls["scipy"] = lambda x=x, w=w: ss.correlate(x, w, mode="same")
        if cv2 is not None:
            calls["cv2"] = lambda x=x, w=w: filter2d(x, w)
        row.update((f"{k}_ms", v) for k, v in interleaved_ms(calls, repeat).items())
        rows.append(row)
        print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def print_table(rows):
    header = (
        f"{'case':<20} {'fastconv':>9} {'(auto ->)':<10} {'direct':>8} {'fft':>8} {'scipy':>8} {'cv2':>7} "
        f"{'scipy/fc':>9} {'cv2/fc':>7} {'rel.err':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        fc = r["auto_ms"]
        scipy_ms, cv_ms = r.get("scipy_ms", math.nan), r.get("cv2_ms", math.nan)
        print(
            f"{r['case']:<20} {fc:9.1f} {r['auto']:<10} {r['direct_ms']:8.1f} {r['fft_ms']:8.1f} "
            f"{scipy_ms:8.1f} {cv_ms:7.1f} {scipy_ms / fc:8.2f}x {cv_ms / fc:6.2f}x "
            f"{r.get('err', math.nan):8.1e}"
        )
    print(
        "times: least thread CPU ms at one thread, the columns of a row taking turns call by call; "
        "ratios > 1 mean fastconv (auto) is faster."
    )


# ---------------------------------------------------------------------------------------------------
# --calibrate: fit the constants of signal._COST


def _lstsq(rows, times):
    a = np.array(rows, dtype=np.float64)
    t = np.array(times, dtype=np.float64)
    # relative error matters: weight each equation by 1/t
    coef, *_ = np.linalg.lstsq(a / t[:, None], np.ones_like(t), rcond=None)
    return np.maximum(coef, 0.0)


def calibrate(repeat):
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        rows, times = [], []
        problems = [((n, n), (k, k)) for n in (256, 1024) for k in (1, 3, 5, 9, 15)]
        problems += [((n,), (k,)) for n in (10**5, 10**6) for k in (1, 7, 31, 63, 127)]
        problems += [((32, 64, 64), (k, k, k)) for k in (1, 3, 5, 7)]
        for shape, kshape in problems:
            x = rng.standard_normal(shape).astype(dtype)
            w = rng.standard_normal(kshape).astype(dtype)
            lags = fs._lags("same", x.shape, w.shape, "calibrate")
            ms = cpu_ms(lambda x=x, w=w, lags=lags: fs._direct(x, w, lags, 1), repeat, budget=1.0)
            # a multiply-add cost per number of dimensions: 3-D runs plane by plane
            macs = [x.size * w.size * (x.ndim == d) for d in (1, 2, 3)]
            rows.append([1.0, x.size, *macs])
            times.append(ms * 1e6)
            print(f"  direct {name} {shape} k{kshape}: {ms:.2f} ms", file=sys.stderr)
        call, per_out, *mac = _lstsq(rows, times)
        macs = ", ".join(f"{m:.4f}" for m in mac)
        print(f"{name} direct: call {call:.0f} ns, per_out {per_out:.3f} ns, mac (1-D, 2-D, 3-D) {macs} ns")
        rows, times = [], []
        fft_problems = [
            ((2048, 2048), (31, 31)),
            ((2048, 2048), (15, 15)),
            ((1024, 1024), (31, 31)),
            ((512, 512), (9, 9)),
            ((10**6,), (63,)),
            ((10**6,), (1023,)),
            ((10**5,), (255,)),
            ((48, 96, 96), (7, 7, 7)),
        ]
        for shape, kshape in fft_problems:
            x = rng.standard_normal(shape).astype(dtype)
            w = rng.standard_normal(kshape).astype(dtype)
            lags = fs._lags("same", x.shape, w.shape, "calibrate")
            out_shape = tuple(hi - lo for lo, hi in lags)
            for block in (32, 64, 128, 256, 384, 512, 1024, 4096, 16384, 65536, None):
                combo = []
                for m, k in zip(out_shape, kshape, strict=True):
                    full = fs.next_fast_len(m + k - 1)
                    b = full if block is None or block >= full or block <= 2 * k else block
                    combo.append((b, -(-m // (b - k + 1))))
                combo = tuple(combo)
                # only the tile sizes the block search considers
                fits = math.prod(b for b, _ in combo) <= fs._FFT_TILE_POINTS
                if not fits or any(r[-1] == combo for r in rows):
                    continue
                ms = cpu_ms(lambda x=x, w=w, lags=lags, c=combo: fs._fft(x, w, lags, c), repeat, budget=1.0)
                points = math.prod(b * t for b, t in combo)
                logs = sum(math.log2(b) for b, _ in combo)
                tiles = math.prod(t for _, t in combo)
                # the columns of signal._fft_cost: its FFT terms scale with the library's speed
                scaled = _fft_library.speed() * points
                rows.append([1.0, tiles, scaled, scaled * logs, scaled * (len(combo) - 1), combo])
                times.append(ms * 1e6)
                print(f"  fft {name} {shape} k{kshape} blocks {combo}: {ms:.2f} ms", file=sys.stderr)
        call, per_tile, per_point, butterfly, per_axis = _lstsq([r[:5] for r in rows], times)
        print(
            f"{name} fft ({_fft_library.LIBRARY}): fft_call {call:.0f} ns, per_tile {per_tile:.0f} ns, "
            f"per_point {per_point:.3f} ns, butterfly {butterfly:.4f} ns, per_axis {per_axis:.3f} ns"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="timed rounds per case (least CPU time)")
    parser.add_argument("--calibrate", action="store_true", help="fit the cost model of method='auto'")
    args = parser.parse_args(argv)
    with threadpool_limits(1):
        if args.calibrate:
            calibrate(args.repeat)
            return
        print(f"fastconv {fastconv.__version__} from {os.path.dirname(fastconv.__file__)}")
        print(
            f"scipy {'missing' if ss is None else __import__('scipy').__version__}, "
            f"cv2 {'missing' if cv2 is None else cv2.__version__}, numpy {np.__version__}, "
            f"FFT through {_fft_library.LIBRARY}"
        )
        print_table(table(args.repeat))


if __name__ == "__main__":
    main()
