"""Measured engine selection: ``Convolution(..., tune=True)`` times the engines that can run a layer on
the first input of each shape and keeps the fastest. The choices are cached per process, keyed by the
layer, the input geometry, the thread count and the SIMD instruction set, and every auto plan of that
layer consults the cache; ``save_tuning`` / ``load_tuning`` keep them across processes.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
import warnings
from collections.abc import Callable
from typing import NamedTuple

from . import _core

FORMAT = "fastconv-tuning"
VERSION = 1
# Engines measured only when the caller names them in tune=[...]: not yet trusted on every layer.
OPT_IN = frozenset({"winograd_f4"})
# Each candidate runs at least MIN_ROUNDS times, then more until BUDGET seconds have passed.
MIN_ROUNDS, MAX_ROUNDS, BUDGET = 3, 10, 0.2
_LAYER_FIELDS = (
    "spatial_dims",
    "transposed",
    "dtype",
    "layout",
    "in_channels",
    "out_channels",
    "groups",
    "kernel",
    "stride",
    "dilation",
    "output_padding",
)


class Choice(NamedTuple):
    algorithm: str
    times: dict  # engine -> seconds of its fastest run; empty when nothing was timed
    origin: str  # "measured in this process", or the file it was loaded from


_cache: dict[tuple, Choice] = {}  # read without a lock: a dict lookup is atomic
_measuring = threading.Lock()  # one measurement at a time: two would slow each other down
_isa: str | None = None


def selected_isa() -> str:
    global _isa
    if _isa is None:
        _isa = _core.isas()[2]
    return _isa


def layer_key(layer: dict) -> tuple:
    return tuple(layer[field] for field in _LAYER_FIELDS)


def threads_of(num_threads: int) -> int:
    """The thread count a request resolves to (0: OpenMP's default, which threadpoolctl may limit)."""
    return num_threads if num_threads > 0 else _core.default_num_threads()


def key(layer_key: tuple, batch: int, in3, pad_begin, pad_end, num_threads: int) -> tuple:
    return (
        layer_key,
        batch,
        tuple(in3),
        tuple(pad_begin),
        tuple(pad_end),
        threads_of(num_threads),
        selected_isa(),
    )


def has_choices() -> bool:
    return bool(_cache)


def lookup(k: tuple) -> Choice | None:
    return _cache.get(k)


def clock_for(threads: int) -> Callable[[], float]:
    """CPU time of the calling thread when the work runs on it alone (unaffected by other processes on a
    loaded machine); wall time when OpenMP workers share it."""
    return time.thread_time if threads == 1 else time.perf_counter


def time_rounds(
    calls: dict,
    clock: Callable[[], float],
    budget: float = BUDGET,
    warmup: bool = True,
    max_rounds: int = MAX_ROUNDS,
) -> dict:
    """{name: [seconds of its call in each round]}. The callables run in turn, round after round, each
    round starting one later, so drift in the machine's load or clock hits them all alike. Each timed
    call follows an untimed one of the same callable: otherwise a call would inherit the caches
    its predecessor left (warm after a call on the same input, cold after a big one), and in a cyclic
    order each callable always has the same predecessor."""
    if warmup:  # first-touch page faults, lazily prepared state
        for fn in calls.values():
            fn()
    names = list(calls)
    times: dict = {name: [] for name in names}
    end = time.perf_counter() + budget
    for round_ in range(max_rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            calls[name]()
            start = clock()
            calls[name]()
            times[name].append(clock() - start)
        if round_ + 1 >= MIN_ROUNDS and time.perf_counter() > end:
            break
    return times


def time_alternating(calls: dict, clock: Callable[[], float], **options) -> dict:
    """{name: seconds of its fastest call} (time_rounds' options)."""
    return {name: min(times) for name, times in time_rounds(calls, clock, **options).items()}


def measure(k: tuple, runs: dict) -> Choice:
    """Times runs ({engine: callable running it}) unless another thread has meanwhile, caches the
    fastest and returns it. An engine whose run raises FastconvError (the plan does not hold it) is
    left out."""
    with _measuring:
        cached = _cache.get(k)
        if cached is not None:
            return cached
        usable = {}
        for name, run in runs.items():
            try:
                run()  # the warm-up, and whether the plan holds the engine
            except _core.FastconvError:
                continue
            usable[name] = run
        if len(usable) == 1:
            choice = Choice(next(iter(usable)), {}, "the only engine that can run this layer")
        else:
            times = time_alternating(usable, clock_for(k[5]), warmup=False)
            choice = Choice(min(times, key=times.get), times, "tuned in this process")
        _cache[k] = choice
        return choice


def clear_tuning() -> None:
    """Forgets every measured or loaded choice of this process."""
    _cache.clear()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version() -> str:
    from . import __version__

    return __version__


def save_tuning(path) -> int:
    """Writes this process's measured (and loaded) choices to path as JSON; returns how many."""
    entries = []
    for (layer, batch, in3, pad_begin, pad_end, threads, isa), choice in list(_cache.items()):
        if isa != selected_isa():
            continue
        entries.append(
            {
                "layer": dict(zip(_LAYER_FIELDS, layer, strict=True)),
                "batch": batch,
                "input": list(in3),
                "pad_begin": list(pad_begin),
                "pad_end": list(pad_end),
                "threads": threads,
                "algorithm": choice.algorithm,
                "times_ms": {name: t * 1e3 for name, t in choice.times.items()},
            }
        )
    document = {
        "format": FORMAT,
        "version": VERSION,
        "fastconv": _version(),
        "isa": selected_isa(),
        "cpu": _cpu_model(),
        "entries": entries,
    }
    temporary = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(temporary, "w") as f:
        json.dump(document, f, indent=1)
    os.replace(temporary, path)  # a reader never sees half a file
    return len(entries)


def _bad(path, what: str) -> ValueError:
    return ValueError(f"load_tuning: {path}: {what}")


def _int_list(entry: dict, name: str, length: int, smallest: int, path, where: str) -> tuple:
    value = entry.get(name)
    if (
        not isinstance(value, list)
        or len(value) != length
        or not all(type(v) is int and v >= smallest for v in value)
    ):
        raise _bad(path, f"{where}: {name!r} must be a list of {length} ints >= {smallest}, got {value!r}")
    return tuple(value)


def _int(entry: dict, name: str, smallest: int, path, where: str) -> int:
    value = entry.get(name)
    if type(value) is not int or value < smallest:
        raise _bad(path, f"{where}: {name!r} must be an int >= {smallest}, got {value!r}")
    return value


def _entry_key(entry, path, where: str) -> tuple:
    if not isinstance(entry, dict):
        raise _bad(path, f"{where} must be an object, got {type(entry).__name__}")
    layer = entry.get("layer")
    if not isinstance(layer, dict) or set(layer) != set(_LAYER_FIELDS):
        raise _bad(path, f"{where}: 'layer' must be an object with exactly the fields {list(_LAYER_FIELDS)}")
    values = []
    for field in _LAYER_FIELDS:
        value = layer[field]
        if field in ("kernel", "stride", "dilation", "output_padding"):
            value = _int_list(layer, field, 3, 0, path, f"{where}.layer")
        elif field == "dtype" and value not in ("float32", "float64"):
            raise _bad(path, f"{where}.layer: 'dtype' must be 'float32' or 'float64', got {value!r}")
        elif field == "layout" and value not in _core.LAYOUTS:
            raise _bad(path, f"{where}.layer: 'layout' must be one of {list(_core.LAYOUTS)}, got {value!r}")
        elif field == "transposed" and not isinstance(value, bool):
            raise _bad(path, f"{where}.layer: 'transposed' must be true or false, got {value!r}")
        elif field in ("spatial_dims", "in_channels", "out_channels", "groups"):
            value = _int(layer, field, 0, path, f"{where}.layer")
        values.append(value)
    return (
        tuple(values),
        _int(entry, "batch", 0, path, where),
        _int_list(entry, "input", 3, 1, path, where),
        _int_list(entry, "pad_begin", 3, 0, path, where),
        _int_list(entry, "pad_end", 3, 0, path, where),
        _int(entry, "threads", 1, path, where),
        selected_isa(),
    )


def load_tuning(path) -> int:
    """Adds the choices saved by save_tuning to this process's cache; returns how many.

    ValueError when the file is not a fastconv tuning file, is malformed, or was measured on another
    instruction set or by another fastconv version (its times do not hold here: tune again). A file
    from another CPU model with the same instruction set loads, with a RuntimeWarning.
    """
    try:
        with open(path) as f:
            document = json.load(f)
    except json.JSONDecodeError as exc:
        raise _bad(path, f"not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise _bad(path, f'not a fastconv tuning file (no "format": "{FORMAT}")')
    if document.get("version") != VERSION:
        raise _bad(path, f"format version {document.get('version')!r}; this fastconv reads version {VERSION}")
    if document.get("isa") != selected_isa():
        raise _bad(
            path,
            f"measured with the {document.get('isa')!r} kernels; this process runs {selected_isa()!r} "
            "(another machine, or FASTCONV_DISABLE): tune again here",
        )
    if document.get("fastconv") != _version():
        raise _bad(
            path, f"measured by fastconv {document.get('fastconv')!r}; this is {_version()}: tune again"
        )
    entries = document.get("entries")
    if not isinstance(entries, list):
        raise _bad(path, "'entries' must be a list")
    loaded = {}
    for i, entry in enumerate(entries):
        where = f"entries[{i}]"
        k = _entry_key(entry, path, where)
        algorithm = entry.get("algorithm")
        if algorithm not in _core.ALGORITHMS or algorithm == "auto":
            engines = [a for a in _core.ALGORITHMS if a != "auto"]
            raise _bad(path, f"{where}: 'algorithm' must be one of {engines}, got {algorithm!r}")
        times = entry.get("times_ms", {})
        if not isinstance(times, dict) or not all(
            isinstance(t, (int, float)) and t >= 0 for t in times.values()
        ):
            raise _bad(path, f"{where}: 'times_ms' must map engine names to milliseconds")
        loaded[k] = Choice(algorithm, {name: t / 1e3 for name, t in times.items()}, f"loaded from {path}")
    if document.get("cpu") != _cpu_model():
        warnings.warn(
            f"load_tuning: {path} was measured on {document.get('cpu')!r}; this is {_cpu_model()!r} "
            "(same instruction set, so the choices are valid, but may not be the fastest here)",
            RuntimeWarning,
            stacklevel=2,
        )
    _cache.update(loaded)  # all or nothing: a bad entry above leaves the cache as it was
    return len(loaded)
