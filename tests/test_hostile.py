"""Hostile sizes: shapes whose products overflow 32 or 64 bits, outputs of hundreds of GB or more, kernels
far larger than the input, huge groups, huge strides / paddings / dilations, thread counts, and the C
ABI's own checks (through ctypes, where the extension exports it).

Each case must end in a clear ValueError (or a MemoryError: numpy refusing an output that cannot exist)
before anything large is allocated, or run correctly when the layer is legal and cheap; never a crash, a
hang or a silently wrapped size. The cases run in child processes (sys.executable -c), one per group,
so that a crash fails the test instead of killing pytest: each case prints "START name" on stderr before
it runs and a JSON line with its outcome after, so a crash names the case that died. The children cap
their address space (RLIMIT_AS; under AddressSanitizer, which reserves terabytes of shadow memory,
max_allocation_size_mb instead), so a size check that is missing shows as a MemoryError from numpy
rather than as a machine that swaps; and each case's peak-RSS growth must stay small.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

MEMORY_LIMIT = 8 << 30  # the children's address space, without ASan
RSS_GROWTH_LIMIT_KB = 256 << 10  # what one case may add to the child's peak RSS
TIMEOUT = 120

_PRELUDE = r'''
import json, os, resource, sys, traceback
if "libasan" not in os.environ.get("LD_PRELOAD", ""):
    resource.setrlimit(resource.RLIMIT_AS, (@LIMIT@, @LIMIT@))
import numpy as np
import fastconv

def big(shape, dtype=np.float32):
    """An array of any shape that takes one element of memory."""
    return np.broadcast_to(np.ones((), dtype), shape)

def run(name, fn):
    print("START", name, file=sys.stderr, flush=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        result = fn()
        outcome, message = "ok", repr(result)[:300]
    except BaseException as exc:
        outcome, message = type(exc).__name__, str(exc)[:500]
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    record = {"name": name, "outcome": outcome, "message": message, "rss_growth_kb": grew}
    print(json.dumps(record), flush=True)
'''


def _child_env():
    env = dict(os.environ)
    if "libasan" in env.get("LD_PRELOAD", ""):
        extra = "allocator_may_return_null=1:max_allocation_size_mb=4096"
        env["ASAN_OPTIONS"] = f"{env['ASAN_OPTIONS']}:{extra}" if env.get("ASAN_OPTIONS") else extra
    return env


def run_cases(cases: dict[str, str], limit_memory=MEMORY_LIMIT, timeout=TIMEOUT, setup=""):
    """Runs each case's body (Python source, `return` allowed) in one child, after `setup`, with its
    address space capped at limit_memory bytes; returns (proc, results)."""
    parts = [_PRELUDE.replace("@LIMIT@", str(limit_memory)), setup]
    for name, body in cases.items():
        fn = "case_" + name
        parts.append(f"def {fn}():\n" + textwrap.indent(textwrap.dedent(body).strip(), "    "))
        parts.append(f"run({name!r}, {fn})")
    code = "\n".join(parts)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=_child_env()
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        pytest.fail(f"child timed out after {timeout}s; last case started: {_last_started(stderr)}")
    _forward_sanitizer_reports(proc.stderr)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            results[r["name"]] = r
    return proc, results


def _forward_sanitizer_reports(stderr):
    """A child's sanitizer reports, copied to this process's file descriptor 2, where tools/sanitize.sh
    looks for them (pytest runs there with --capture=sys), whatever the test concludes."""
    if "runtime error:" in stderr or "Sanitizer" in stderr:
        os.write(2, ("---- sanitizer output of a child process ----\n" + stderr + "\n").encode())


def _last_started(stderr):
    started = [line.split(" ", 1)[1] for line in stderr.splitlines() if line.startswith("START ")]
    return started[-1] if started else "(none)"


def _check_child(proc, results, cases):
    """The child must exit 0 and report every case; a crash names the case it died in."""
    missing = [name for name in cases if name not in results]
    assert proc.returncode == 0 and not missing, (
        f"child exited with {proc.returncode} in case {_last_started(proc.stderr)!r}; "
        f"cases with no result: {missing}\nstderr:\n{proc.stderr[-3000:]}"
    )
    noise = [
        line
        for line in proc.stderr.splitlines()
        if line.strip()
        and not line.startswith("START ")
        and "AddressSanitizer failed to allocate" not in line
    ]
    assert not noise, "unexpected stderr:\n" + "\n".join(noise[-40:])


# ---------------------------------------------------------------------------------------------------
# The Python API. Each case: (body, allowed outcomes, text the message must contain or None).
# "ok" bodies check their own result and return it.

V, M, OK = "ValueError", "MemoryError", "ok"

API_CASES = {
    # A 1x1 convolution of a broadcast (free) input of 2^40 pixels into 2^20 channels: 2^60 outputs.
    "out_2_60_elements": (
        """
        fastconv.conv2d(big((1, 1, 2**20, 2**20)), big((2**20, 1, 1, 1)))
    """,
        {V},
        "too large",
    ),
    "out_2_60_elements_channels_last": (
        """
        fastconv.conv2d(big((1, 2**20, 2**20, 1)), big((2**20, 1, 1, 1)), layout="NHWC")
    """,
        {V},
        "too large",
    ),
    # 2^52 outputs (16 PiB) and 2^37 outputs (512 GiB): no 64-bit trouble, just memory that is not there.
    "out_16_pib": (
        """
        fastconv.conv2d(big((1, 1, 2**20, 2**20)), big((2**12, 1, 1, 1)))
    """,
        {V, M},
        None,
    ),
    "out_512_gib": (
        """
        fastconv.conv2d(big((1, 1, 2**16, 2**16)), big((32, 1, 1, 1)))
    """,
        {V, M},
        None,
    ),
    "out_512_gib_plan_float64": (
        """
        plan = fastconv.Convolution(big((16, 1, 1, 1), np.float64))
        plan(big((1, 1, 2**16, 2**16), np.float64))
    """,
        {V, M},
        None,
    ),
    "out_hundreds_of_gib_transposed": (
        """
        fastconv.conv_transpose2d(big((1, 1, 2**15, 2**15)), big((1, 64, 2, 2)), stride=2)
    """,
        {V, M},
        None,
    ),
    # Products that overflow 64 bits.
    "conv3d_outputs_2_64": (
        """
        fastconv.conv3d(big((1, 1, 2**20, 2**20, 2**20)), big((16, 1, 1, 1, 1)))
    """,
        {V},
        "too large",
    ),
    "conv3d_outputs_2_120_padding": (
        """
        fastconv.conv3d(np.ones((1, 1, 1, 1, 1), np.float32), np.ones((1, 1, 1, 1, 1), np.float32),
                        padding=2**39)
    """,
        {V},
        "too large",
    ),
    "batch_2_40_outputs_2_70": (
        """
        fastconv.conv1d(big((2**40, 1, 2**20)), big((1024, 1, 1)))
    """,
        {V, M},
        None,
    ),
    "batch_2_30_outputs_2_58": (
        """
        fastconv.conv1d(big((2**30, 1, 2**20)), big((256, 1, 1)))
    """,
        {V, M},
        None,
    ),
    "transposed3d_stride_2_39": (
        """
        fastconv.conv_transpose3d(np.ones((1, 1, 2, 2, 2), np.float32), np.ones((1, 1, 1, 1, 1), np.float32),
                                  stride=2**39)
    """,
        {V},
        "too large",
    ),
    "transposed1d_stride_2_39": (
        """
        x, w = np.ones((1, 1, 2), np.float32), np.ones((1, 1, 1), np.float32)
        fastconv.conv_transpose1d(x, w, stride=2**39)
    """,
        {V, M},
        None,
    ),
    "transposed1d_output_padding_2_39": (
        """
        fastconv.conv_transpose1d(np.ones((1, 1, 1), np.float32), np.ones((1, 1, 1), np.float32),
                                  stride=2**39, output_padding=2**39 - 1)
    """,
        {V, M},
        None,
    ),
    "transposed_padding_larger_than_output": (
        """
        fastconv.conv_transpose1d(np.ones((1, 1, 4), np.float32), np.ones((1, 1, 3), np.float32),
                                  padding=2**40 - 1)
    """,
        {V},
        "empty",
    ),
    "padding_2_40_minus_1_1d": (
        """
        fastconv.conv1d(np.ones((1, 1, 1), np.float32), np.ones((1, 1, 1), np.float32), padding=2**40 - 1)
    """,
        {V, M},
        None,
    ),
    "padding_pairs_2d_overflow": (
        """
        fastconv.conv2d(np.ones((1, 1, 1, 1), np.float32), np.ones((1, 1, 1, 1), np.float32),
                        padding=((0, 2**40 - 1), (2**40 - 1, 0)))
    """,
        {V},
        "too large",
    ),
    "padding_2_40_refused": (
        """
        fastconv.conv1d(np.ones((1, 1, 1), np.float32), np.ones((1, 1, 1), np.float32), padding=2**40)
    """,
        {V},
        "padding",
    ),
    "padding_2_64_refused": (
        """
        fastconv.conv1d(np.ones((1, 1, 1), np.float32), np.ones((1, 1, 1), np.float32), padding=2**64 + 1)
    """,
        {V},
        "padding",
    ),
    "stride_2_63_refused": (
        """
        fastconv.conv1d(np.ones((1, 1, 1), np.float32), np.ones((1, 1, 1), np.float32), stride=2**63)
    """,
        {V},
        "stride",
    ),
    "dilation_int64_min_refused": (
        """
        fastconv.conv1d(np.ones((1, 1, 1), np.float32), np.ones((1, 1, 1), np.float32), dilation=-(2**63))
    """,
        {V},
        "dilation",
    ),
    # Kernels far larger than the input.
    "kernel_2_20_on_3x3_input": (
        """
        fastconv.conv2d(np.ones((1, 1, 3, 3), np.float32), big((1, 1, 2**20, 1)))
    """,
        {V},
        "kernel",
    ),
    "kernel_2_60_broadcast_weight": (
        """
        fastconv.conv2d(np.ones((1, 1, 3, 3), np.float32), big((1, 1, 2**30, 2**30)))
    """,
        {V, M},
        None,
    ),
    "dilated_span_2_40_on_5": (
        """
        fastconv.conv1d(np.ones((1, 1, 5), np.float32), np.ones((1, 1, 3), np.float32), dilation=2**39)
    """,
        {V},
        "kernel",
    ),
    "dilated_span_2_40_conv3d": (
        """
        fastconv.conv3d(np.ones((1, 1, 2, 2, 2), np.float32), np.ones((1, 1, 2, 2, 2), np.float32),
                        dilation=(1, 2**39, 1))
    """,
        {V},
        "kernel",
    ),
    # Legal layers with offsets near 2^40: the result must be right, not wrapped.
    "dilation_2_39_padded_im2col": (
        """
        x = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 5)
        w = np.array([[[2.0, 3.0, 5.0]]], np.float32)
        y = fastconv.conv1d(x, w, padding=2**39, dilation=2**39, algorithm="im2col")
        assert y.shape == (1, 1, 5) and (y == 3 * x).all(), y
        return y.ravel().tolist()
    """,
        {OK},
        None,
    ),
    "stride_2_40_minus_1": (
        """
        x = np.arange(1, 8, dtype=np.float64).reshape(1, 1, 7)
        for algorithm in ("direct", "im2col", "auto"):
            y = fastconv.conv1d(x, np.full((1, 1, 2), 2.0), stride=2**40 - 1, algorithm=algorithm)
            assert y.shape == (1, 1, 1) and y[0, 0, 0] == 6.0, (algorithm, y)
    """,
        {OK},
        None,
    ),
    "transposed_stride_2_20_sparse": (
        """
        for algorithm in ("direct", "im2col", "auto"):
            y = fastconv.conv_transpose1d(np.full((1, 1, 3), 2.0), np.ones((1, 1, 1)), stride=2**20,
                                          algorithm=algorithm)
            assert y.shape == (1, 1, 2 * 2**20 + 1) and y.sum() == 6.0 and y[0, 0, 2**20] == 2.0, algorithm
    """,
        {OK},
        None,
    ),
    "kernel_2_16_on_3_padded_direct": (
        """
        w = big((4, 1, 2**16))
        y = fastconv.conv1d(np.ones((1, 1, 3), np.float32), w, padding=2**16 - 1, algorithm="direct")
        assert y.shape == (1, 4, 2**16 + 2) and y.max() == 3.0 and y.min() == 1.0
    """,
        {OK},
        None,
    ),
    # Huge groups.
    "groups_2_39_not_dividing": (
        """
        fastconv.conv1d(np.ones((1, 2, 3), np.float32), np.ones((2, 1, 1), np.float32), groups=2**39)
    """,
        {V},
        "groups",
    ),
    "groups_2_63_refused": (
        """
        fastconv.conv1d(np.ones((1, 2, 3), np.float32), np.ones((2, 1, 1), np.float32), groups=2**63)
    """,
        {V},
        "groups",
    ),
    "groups_2_36_broadcast": (
        """
        fastconv.conv1d(big((1, 2**36, 1)), big((2**36, 1, 1)), groups=2**36)
    """,
        {V, M},
        None,
    ),
    "groups_2_36_transposed_broadcast": (
        """
        fastconv.conv_transpose1d(big((1, 2**36, 1)), big((2**36, 1, 1)), groups=2**36)
    """,
        {V, M},
        None,
    ),
    "channels_2_36_broadcast_weight": (
        """
        fastconv.conv1d(big((1, 2**36, 1)), big((1, 2**36, 1)))
    """,
        {V, M},
        None,
    ),
    "groups_2_16_depthwise_runs": (
        """
        x = np.arange(2 * 2**16 * 3, dtype=np.float32).reshape(2, 2**16, 3) % 7
        w = (np.arange(2**16, dtype=np.float32) % 5).reshape(2**16, 1, 1)
        for algorithm in ("direct", "im2col", "auto"):
            y = fastconv.conv1d(x, w, groups=2**16, algorithm=algorithm)
            assert (y == x * w.reshape(1, -1, 1)).all(), algorithm
            y = fastconv.conv_transpose1d(x, w, groups=2**16, algorithm=algorithm)
            assert (y == x * w.reshape(1, -1, 1)).all(), algorithm
    """,
        {OK},
        None,
    ),
    # Sizes around 2^31 (the 32-bit BLAS's limit), through broadcast inputs: refused for lack of memory
    # under the children's limit, never wrapped.
    "in_size_2_31_plus_1": (
        """
        fastconv.conv1d(big((1, 1, 2**31 + 1)), np.ones((1, 1, 1), np.float32), algorithm="im2col")
    """,
        {V, M},
        None,
    ),
    "kernel_2_31_plus_1": (
        """
        fastconv.conv1d(big((1, 1, 2**31 + 1)), big((1, 1, 2**31 + 1)), algorithm="im2col")
    """,
        {V, M},
        None,
    ),
}


# Legal, cheap layers whose taps sit 2^20 or 2^39 apart (dilation = padding): only the centre tap of each
# window lands in the 5-wide input, so y = 3 * x. The direct engine must compute them, not size a buffer
# by the padded extent (which is 2^41 per dim, or overflows 64 bits in 3-D).
for _nd in (1, 2, 3):
    for _e in (20, 39):
        API_CASES[f"dilated_padded_{_nd}d_2_{_e}"] = (
            f"""
            x = np.arange(1, 5**{_nd} + 1, dtype=np.float32).reshape((1, 1) + (5,) * {_nd})
            w = np.full((1, 1) + (3,) * {_nd}, 2.0, np.float32)
            w[(0, 0) + (1,) * {_nd}] = 3.0
            y = fastconv.conv{_nd}d(x, w, padding=2**{_e}, dilation=2**{_e}, algorithm="direct")
            assert y.shape == x.shape and (y == 3 * x).all(), y
        """,
            {OK},
            None,
        )


# Bugs found by these cases and not yet fixed: name -> (reason, whether it applies here).
API_KNOWN_BUGS: dict = {}


@pytest.fixture(scope="module")
def api_run():
    """The cases with no known bug, in one child; each known bug's case runs in a child of its own."""
    cases = {name: body for name, (body, _, _) in API_CASES.items() if name not in API_KNOWN_BUGS}
    return run_cases(cases), cases


def test_api_child_survives(api_run):
    (proc, results), cases = api_run
    _check_child(proc, results, cases)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            n, marks=pytest.mark.xfail(API_KNOWN_BUGS[n][1], strict=True, reason=API_KNOWN_BUGS[n][0])
        )
        if n in API_KNOWN_BUGS
        else n
        for n in sorted(API_CASES)
    ],
)
def test_api_case(api_run, name):
    (proc, results), _ = api_run
    body, allowed, text = API_CASES[name]
    if name in API_KNOWN_BUGS:
        proc, results = run_cases({name: body})
    assert name in results, (
        f"no result: the child died (exit {proc.returncode}) in {_last_started(proc.stderr)!r}"
    )
    r = results[name]
    assert r["outcome"] in allowed, f"{name}: got {r['outcome']}: {r['message']}; allowed {sorted(allowed)}"
    if r["outcome"] == V:
        assert r["message"].startswith(("conv", "Convolution")), f"not a fastconv message: {r['message']}"
    if text is not None:
        assert text in r["message"], f"{name}: message {r['message']!r} does not mention {text!r}"
    assert r["rss_growth_kb"] < RSS_GROWTH_LIMIT_KB, f"{name}: peak RSS grew by {r['rss_growth_kb']} kB"


# ---------------------------------------------------------------------------------------------------
# Thread counts: the largest num_threads the API accepts must not kill the process. The child's address
# space is capped at 4 GiB (as in a container), so 2^16 threads' stacks (8 MiB each) cannot all exist:
# libgomp, asked for that team, exits the process ("Thread creation failed") or it segfaults, unless
# fastconv clamps the team to something sane first. Not under ASan, which needs terabytes of address space.

THREAD_CASES = {
    "num_threads_2_16": """
        x = np.ones((1, 2, 64, 64), np.float32)
        for algorithm in ("direct", "im2col"):
            y = fastconv.conv2d(x, np.ones((2, 2, 3, 3), np.float32), num_threads=2**16, algorithm=algorithm)
            assert (y == 18).all()
    """,
}


@pytest.mark.skipif(
    "libasan" in os.environ.get("LD_PRELOAD", ""), reason="RLIMIT_AS does not work under ASan"
)
def test_num_threads_largest_accepted_does_not_crash():
    proc, results = run_cases(THREAD_CASES, limit_memory=4 << 30)
    _check_child(proc, results, THREAD_CASES)
    r = results["num_threads_2_16"]
    assert r["outcome"] in (OK, V), r


# ---------------------------------------------------------------------------------------------------
# The C ABI checks again (include/fastconv/fastconv.h): a C caller with hostile sizes gets a status
# code, never a crash or a wrapped size. Reached through ctypes on the extension, which exports it.

_CTYPES_PRELUDE = r'''
import ctypes, math
from fastconv import _core
lib = ctypes.CDLL(_core.__file__)
I64x3 = ctypes.c_int64 * 3
class Params(ctypes.Structure):
    _fields_ = [("spatial_dims", ctypes.c_int), ("transposed", ctypes.c_int), ("dtype", ctypes.c_int),
                ("layout", ctypes.c_int), ("in_channels", ctypes.c_int64), ("out_channels", ctypes.c_int64),
                ("groups", ctypes.c_int64), ("kernel", I64x3), ("stride", I64x3), ("dilation", I64x3),
                ("output_padding", I64x3)]
class Geometry(ctypes.Structure):
    _fields_ = [("batch", ctypes.c_int64), ("in_size", I64x3), ("pad_begin", I64x3), ("pad_end", I64x3)]
P = ctypes.c_void_p
lib.fc_plan_create.argtypes = [P, P, P, ctypes.c_int, P]
lib.fc_plan_execute.argtypes = [P, P, P, P, ctypes.c_int, P]
lib.fc_output_size.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
lib.fc_plan_choose.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
lib.fc_plan_destroy.argtypes = [ctypes.c_void_p]
lib.fc_plan_memory.argtypes = [ctypes.c_void_p]
lib.fc_plan_memory.restype = ctypes.c_int64
lib.fc_status_message.restype = ctypes.c_char_p
lib.fc_algorithm_name.restype = ctypes.c_char_p
lib.fc_algorithm_unsupported_reason.argtypes = [ctypes.c_void_p, ctypes.c_int]
lib.fc_algorithm_unsupported_reason.restype = ctypes.c_char_p
OK, INVALID, UNSUPPORTED, OOM, OVERFLOW = 0, 1, 2, 3, 4

def _three(values, nd, neutral):
    """Per-dim values (one value: every used dim) as the C ABI's three, leading dims neutral."""
    used = min(max(nd, 1), 3)
    values = tuple(values) if len(values) == used else tuple(values) * used
    return I64x3(*((neutral,) * (3 - used) + values))

def params(nd=1, transposed=0, cin=1, cout=1, groups=1, kernel=(1,), stride=(1,), dilation=(1,), op=(0,),
           dtype=0):
    p = Params(nd, transposed, dtype, 0, cin, cout, groups)
    p.kernel, p.stride = _three(kernel, nd, 1), _three(stride, nd, 1)
    p.dilation, p.output_padding = _three(dilation, nd, 1), _three(op, nd, 0)
    return p

def geometry(nd=1, batch=1, size=(1,), pb=(0,), pe=(0,)):
    return Geometry(batch, _three(size, nd, 1), _three(pb, nd, 0), _three(pe, nd, 0))

def create(p, weight=None, bias=None, algorithm=1):
    plan = ctypes.c_void_p()
    if weight is None:
        weight = (ctypes.c_double * 16)()
    status = lib.fc_plan_create(ctypes.byref(p), weight, bias, algorithm, ctypes.byref(plan))
    return status, plan

def out_size(p, g):
    out = I64x3(-7, -7, -7)
    status = lib.fc_output_size(ctypes.byref(p), ctypes.byref(g), out)
    return status, tuple(out)
'''

C_CASES = {
    "create_kernel_product_2_63": """
        status, plan = create(params(nd=3, kernel=(2**21, 2**21, 2**21)))
        assert status == OVERFLOW and not plan.value, status
    """,
    "create_channels_times_kernel_2_80": """
        status, plan = create(params(cin=2**40, cout=2**40, kernel=(2**20,)))
        assert status == OVERFLOW and not plan.value, status
    """,
    "create_weight_2_58_exactly": """
        status, plan = create(params(cin=2**29, cout=2**29))
        assert status == OVERFLOW and not plan.value, status
    """,
    "create_dilated_span_2_62": """
        status, plan = create(params(kernel=(3,), dilation=(2**62,)))
        assert status == OVERFLOW and not plan.value, status
    """,
    "create_negative_and_zero": """
        for p in (params(cin=-1), params(cout=-(2**63)), params(groups=0), params(groups=-1),
                  params(kernel=(0,)), params(kernel=(-(2**63),)), params(stride=(0,)),
                  params(dilation=(-1,)),
                  params(op=(1,)), params(nd=0), params(nd=4), params(dtype=2), params(dtype=-1),
                  params(transposed=2), params(cin=3, groups=2), params(cout=3, groups=2),
                  params(transposed=1, stride=(2,), dilation=(2,), op=(2,))):
            status, plan = create(p)
            assert status == INVALID and not plan.value, (status, p.spatial_dims)
    """,
    "create_leading_dims_must_be_neutral": """
        p = params(nd=1)
        p.kernel[0] = 2
        status, plan = create(p)
        assert status == INVALID, status
    """,
    "create_null_arguments": """
        plan = ctypes.c_void_p()
        assert lib.fc_plan_create(None, None, None, 1, ctypes.byref(plan)) == INVALID
        p = params()
        assert lib.fc_plan_create(ctypes.byref(p), None, None, 1, ctypes.byref(plan)) == INVALID
        assert lib.fc_plan_create(ctypes.byref(p), (ctypes.c_float * 1)(), None, 1, None) == INVALID
        one = (ctypes.c_float * 1)()
        assert lib.fc_plan_create(ctypes.byref(p), one, None, 99, ctypes.byref(plan)) == INVALID
        assert lib.fc_plan_create(ctypes.byref(p), one, None, -1, ctypes.byref(plan)) == INVALID
    """,
    "output_size_forward_extremes": """
        p = params(kernel=(1,))
        assert out_size(p, geometry(size=(2**58,)))[0] == INVALID
        assert out_size(p, geometry(size=(0,)))[0] == INVALID
        assert out_size(p, geometry(size=(-(2**63),)))[0] == INVALID
        assert out_size(p, geometry(size=(1,), pb=(-1,)))[0] == INVALID
        assert out_size(p, geometry(size=(1,), pe=(2**63 - 1,)))[0] == INVALID
        status, out = out_size(p, geometry(size=(2**58 - 1,), pb=(2**58 - 1,), pe=(2**58 - 1,)))
        assert status != OK or out[2] == 3 * (2**58 - 1), (status, out)
        p = params(kernel=(2,), stride=(2**63 - 1,), dilation=(2**56,))
        status, out = out_size(p, geometry(size=(2**57,), pb=(2**57,), pe=(2**57,)))
        assert status != OK or out[2] == (3 * 2**57 - 2**56 - 1) // (2**63 - 1) + 1, (status, out)
    """,
    "output_size_transposed_extremes": """
        # (in - 1) * stride overflows 64 bits
        p = params(transposed=1, stride=(2**62,))
        assert out_size(p, geometry(size=(5,)))[0] == OVERFLOW
        # a stride near 2^63 and the largest output padding it allows: (in-1)*s + span + op overflows
        for s in (2**62, 2**63 - 1):
            p = params(transposed=1, stride=(s,), op=(s - 1,), kernel=(3,), dilation=(2**56,))
            status, out = out_size(p, geometry(size=(1,)))
            exact = 2 * 2**56 + 1 + s - 1
            if exact < 2**63:
                assert status == OK and out[2] == exact or status == OVERFLOW, (s, status, out)
            else:
                assert status == OVERFLOW, (s, status, out, exact)
    """,
    "execute_batch_overflow_touches_nothing": """
        status, plan = create(params(kernel=(1,)), weight=(ctypes.c_float * 1)(1.0))
        assert status == OK, status
        tiny = (ctypes.c_float * 1)()
        for g in (geometry(batch=2**62, size=(2**20,)), geometry(batch=2**57, size=(2,)),
                  geometry(batch=2**40, size=(2**30,))):
            assert lib.fc_plan_execute(plan, ctypes.byref(g), tiny, tiny, 1, None) == OVERFLOW
            lib.fc_plan_choose(plan, ctypes.byref(g), 1)
        for g in (geometry(batch=-1), geometry(size=(0,)), geometry(size=(2**58,)), geometry(pb=(-1,))):
            assert lib.fc_plan_execute(plan, ctypes.byref(g), tiny, tiny, 1, None) == INVALID
        g = geometry()
        assert lib.fc_plan_execute(plan, ctypes.byref(g), None, tiny, 1, None) == INVALID
        assert lib.fc_plan_execute(plan, ctypes.byref(g), tiny, None, 1, None) == INVALID
        assert lib.fc_plan_execute(plan, None, tiny, tiny, 1, None) == INVALID
        assert lib.fc_plan_execute(None, ctypes.byref(g), tiny, tiny, 1, None) == INVALID
        assert lib.fc_plan_execute(plan, ctypes.byref(g), tiny, tiny, 1, None) == OK and tiny[0] == 0.0
        lib.fc_plan_destroy(plan)
    """,
    "null_plan_queries": """
        lib.fc_plan_destroy(None)
        assert lib.fc_plan_memory(None) == 0
        g = geometry()
        lib.fc_plan_choose(None, ctypes.byref(g), 1)
        assert lib.fc_algorithm_unsupported_reason(None, 1)
        p = params()
        assert lib.fc_output_size(ctypes.byref(p), None, I64x3()) == INVALID
        assert lib.fc_output_size(None, ctypes.byref(g), I64x3()) == INVALID
        assert lib.fc_output_size(ctypes.byref(p), ctypes.byref(g), None) == INVALID
        assert lib.fc_status_message(12345) and lib.fc_algorithm_name(-5)
    """,
}


# C-ABI cases with a known bug: name -> reason.
C_KNOWN_BUGS: dict = {}


def _c_abi_available():
    import ctypes

    import fastconv

    return hasattr(ctypes.CDLL(fastconv._core.__file__), "fc_plan_create")


@pytest.fixture(scope="module")
def c_run():
    """The cases with no known bug, in one child; each known bug's case runs in a child of its own, so
    that a crash (or an UBSan halt) there takes no other case with it."""
    if not _c_abi_available():
        pytest.skip("the extension does not export the C ABI")
    return run_cases({n: b for n, b in C_CASES.items() if n not in C_KNOWN_BUGS}, setup=_CTYPES_PRELUDE)


def test_c_abi_child_survives(c_run):
    proc, results = c_run
    _check_child(proc, results, {n: b for n, b in C_CASES.items() if n not in C_KNOWN_BUGS})


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=C_KNOWN_BUGS[n]))
        if n in C_KNOWN_BUGS
        else n
        for n in sorted(C_CASES)
    ],
)
def test_c_abi_case(c_run, name):
    proc, results = c_run
    if name in C_KNOWN_BUGS:
        proc, results = run_cases({name: C_CASES[name]}, setup=_CTYPES_PRELUDE)
    assert name in results, (
        f"no result: the child died (exit {proc.returncode}) in {_last_started(proc.stderr)!r}"
    )
    r = results[name]
    assert r["outcome"] == OK, f"{name}: {r['outcome']}: {r['message']}"
