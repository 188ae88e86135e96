#!/usr/bin/env bash
# Runs a small fastconv workload under valgrind memcheck and fails on any invalid read / write / free,
# use of uninitialised memory, or definitely lost block whose stack passes through fastconv's code.
#
#   tools/valgrind.sh                    the fastconv installed in python3
#   VALGRIND_PYTHON=/path/to/python tools/valgrind.sh
#   VALGRIND_KEEP=dir tools/valgrind.sh   keep the XML report in dir
#   tools/valgrind.sh --selftest         adds a deliberate out-of-bounds write through the C ABI (an
#                                        output buffer too small for the geometry): must exit 1
#
# The interpreter runs with PYTHONMALLOC=malloc (so valgrind sees every Python allocation) and with the
# Python suppressions valgrind ships, where present. Errors outside fastconv (the interpreter, numpy,
# OpenBLAS) are counted and listed by kind, but do not fail the run.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# The interpreter itself, not a wrapper script (pyenv's shims are shell scripts valgrind would stop at).
python=$("${VALGRIND_PYTHON:-python3}" -c 'import sys; print(sys.executable)')
selftest=0
[[ ${1:-} == --selftest ]] && selftest=1
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }

work=${VALGRIND_KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/fastconv-valgrind.XXXXXX")}
mkdir -p "$work"
[[ -n ${VALGRIND_KEEP:-} ]] || trap 'rm -rf "$work"' EXIT

cat >"$work/workload.py" <<'EOF'
# Every engine, dtype, layout, kind and padding mode once or twice, plans, out=, threads, failing calls.
import os

import numpy as np
import fastconv

rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    x2 = rng.standard_normal((2, 4, 9, 10)).astype(dtype)
    w2 = rng.standard_normal((6, 2, 3, 3)).astype(dtype)
    b2 = rng.standard_normal(6).astype(dtype)
    wt = rng.standard_normal((4, 3, 2, 3)).astype(dtype)
    x1 = rng.standard_normal((1, 3, 33)).astype(dtype)
    w1 = rng.standard_normal((5, 3, 4)).astype(dtype)
    x3 = rng.standard_normal((1, 2, 4, 5, 6)).astype(dtype)
    w3 = rng.standard_normal((3, 2, 2, 2, 3)).astype(dtype)
    w16 = rng.standard_normal((16, 16, 3, 3)).astype(dtype)
    x16 = rng.standard_normal((1, 16, 12, 12)).astype(dtype)
    for algorithm in ("direct", "im2col", "auto"):
        for threads in (1, 2):
            kw = dict(algorithm=algorithm, num_threads=threads)
            fastconv.conv2d(x2, w2, b2, padding=1, groups=2, **kw)
            fastconv.conv2d(x2, w2, None, stride=2, dilation=2, padding="same", groups=2, **kw)
            fastconv.conv2d(np.ascontiguousarray(np.moveaxis(x2, 1, -1)), w2, b2, padding=((0, 1), (2, 0)),
                            groups=2, layout="NHWC", **kw)
            fastconv.conv2d(x16, w16, None, padding=1, **kw)
            fastconv.conv2d(np.ascontiguousarray(np.moveaxis(x16, 1, -1)), w16, None, layout="NHWC", **kw)
            fastconv.conv2d(x2, w2, b2, padding=2, padding_mode="reflect", groups=2, **kw)
            fastconv.conv1d(x1, w1, None, stride=3, padding=2, **kw)
            fastconv.conv3d(x3, w3, None, padding=(1, 0, 1), **kw)
            fastconv.conv_transpose2d(x2, wt, None, stride=2, padding=1, output_padding=1, **kw)
            fastconv.conv_transpose2d(np.ascontiguousarray(np.moveaxis(x2, 1, -1)), wt, None, stride=(1, 2),
                                      layout="NHWC", **kw)
            fastconv.conv_transpose2d(x16, w16, None, stride=2, **kw)
            fastconv.conv_transpose1d(x1, w1.transpose(1, 0, 2).copy(), None, stride=2, dilation=2, **kw)
            plan = fastconv.Convolution(w2, b2, padding=1, groups=2, **kw)
            out = np.empty((2, 6, 9, 10), dtype)
            plan(x2, out=out)
            plan(x2[0])
            plan(x2[:, :, ::-1, ::2])
            del plan
    winograd_runs = fastconv._core.isas()[2] != "scalar"  # it needs a SIMD instruction set
    if dtype == np.float32 and "winograd" in fastconv._core.ALGORITHMS and winograd_runs:
        for threads in (1, 2):
            kw = dict(algorithm="winograd", num_threads=threads)
            fastconv.conv2d(x16, w16, None, padding=1, **kw)
            fastconv.conv2d(x16[:, :, :7, :9], w16, b2[:1].repeat(16), padding=((0, 1), (2, 0)), **kw)
            fastconv.conv2d(x2, w2, b2, padding="same", groups=2, **kw)
            plan = fastconv.Convolution(w16, None, padding=1, **kw)
            plan(x16)
            plan(x16[0, :, ::-1])
            del plan
    fastconv.conv2d(x2[:0], w2, b2, groups=2)
    fastconv.conv2d(np.ones((1, 0, 5, 5), dtype), np.ones((3, 0, 1, 1), dtype), np.ones(3, dtype))
for bad in (dict(stride=0), dict(padding=-1), dict(groups=3), dict(algorithm="nope"), dict(dilation=2**40)):
    try:
        fastconv.conv2d(np.ones((1, 4, 5, 5), np.float32), np.ones((2, 4, 3, 3), np.float32), **bad)
    except (ValueError, TypeError):
        pass
    else:
        raise AssertionError(bad)
if os.environ.get("FASTCONV_VALGRIND_SELFTEST") == "1":
    # The C ABI trusts its caller for buffer sizes: a 16-wide geometry with an 8-element output buffer
    # makes fastconv write past the buffer, which memcheck must report in fastconv's frames.
    import ctypes

    lib = ctypes.CDLL(fastconv._core.__file__)
    P = ctypes.c_void_p
    lib.fc_plan_create.argtypes = [P, P, P, ctypes.c_int, P]
    lib.fc_plan_execute.argtypes = [P, P, P, P, ctypes.c_int]
    lib.fc_plan_destroy.argtypes = [P]
    I64x3 = ctypes.c_int64 * 3

    class Params(ctypes.Structure):
        _fields_ = [("spatial_dims", ctypes.c_int), ("transposed", ctypes.c_int), ("dtype", ctypes.c_int),
                    ("layout", ctypes.c_int), ("in_channels", ctypes.c_int64), ("out_channels", ctypes.c_int64),
                    ("groups", ctypes.c_int64), ("kernel", I64x3), ("stride", I64x3), ("dilation", I64x3),
                    ("output_padding", I64x3)]

    class Geometry(ctypes.Structure):
        _fields_ = [("batch", ctypes.c_int64), ("in_size", I64x3), ("pad_begin", I64x3), ("pad_end", I64x3)]

    p = Params(1, 0, 1, 0, 1, 1, 1, I64x3(1, 1, 1), I64x3(1, 1, 1), I64x3(1, 1, 1), I64x3(0, 0, 0))
    weight = np.ones(1)
    plan = ctypes.c_void_p()
    assert lib.fc_plan_create(ctypes.byref(p), weight.ctypes.data_as(ctypes.c_void_p), None, 1,
                              ctypes.byref(plan)) == 0
    g = Geometry(1, I64x3(1, 1, 16), I64x3(0, 0, 0), I64x3(0, 0, 0))
    x, y = np.ones(16), np.empty(8)
    lib.fc_plan_execute(plan, ctypes.byref(g), x.ctypes.data, y.ctypes.data, 1)
    lib.fc_plan_destroy(plan)
print("workload done")
EOF

supp=()
for f in /usr/lib/valgrind/python3.supp /usr/lib/x86_64-linux-gnu/valgrind/python3.supp \
         /usr/share/doc/python3*/valgrind-python.supp; do
  [[ -f $f ]] && supp+=("--suppressions=$f")
done

echo "valgrind.sh: python $("$python" -c 'import sys, fastconv; print(sys.version.split()[0], fastconv.__file__)')"
echo "valgrind.sh: suppressions: ${supp[*]:-(none)}"
start=$SECONDS
set +e
(cd "$work" && FASTCONV_VALGRIND_SELFTEST=$selftest PYTHONMALLOC=malloc OPENBLAS_NUM_THREADS=1 valgrind --tool=memcheck --leak-check=full \
    --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=40 --xml=yes \
    --xml-file="$work/memcheck.xml" "${supp[@]}" "$python" "$work/workload.py")
rc=$?
set -e
echo "valgrind.sh: workload exit $rc after $((SECONDS - start))s"

"$python" - "$work/memcheck.xml" "$rc" <<'EOF'
import collections
import sys
import xml.etree.ElementTree as ET

path, rc = sys.argv[1], int(sys.argv[2])
root = ET.parse(path).getroot()
ours, others = [], collections.Counter()


def ours_frame(frame):
    obj = frame.findtext("obj") or ""
    file = frame.findtext("dir", "") + "/" + frame.findtext("file", "")
    return "fastconv" in obj or "/src/" in file and "fastconv" in file or "_core.pyx" in file


for error in root.iter("error"):
    kind = error.findtext("kind")
    if kind.startswith("Leak_") and kind != "Leak_DefinitelyLost":
        continue
    frames = [f for stack in error.findall("stack") for f in stack.findall("frame")]
    if any(ours_frame(f) for f in frames):
        ours.append(error)
    else:
        others[kind] += 1

print(f"valgrind.sh: errors outside fastconv (not failing): {dict(others) or 'none'}")
for error in ours:
    what = error.findtext("what") or error.findtext("xwhat/text")
    print(f"\n==== {error.findtext('kind')}: {what}")
    for frame in error.find("stack").findall("frame")[:15]:
        print("    ", frame.findtext("fn") or "?", "(" + (frame.findtext("file") or frame.findtext("obj") or "?") +
              (":" + frame.findtext("line") if frame.findtext("line") else "") + ")")
print(f"valgrind.sh: {len(ours)} error(s) in fastconv's code")
if rc != 0:
    print(f"valgrind.sh: the workload failed (exit {rc})")
sys.exit(1 if ours or rc != 0 else 0)
EOF
