#!/usr/bin/env bash
# Builds fastconv with AddressSanitizer + UndefinedBehaviorSanitizer into a private virtual
# environment and runs the pytest suite under it once per ISA path (FASTCONV_DISABLE unset, =avx512,
# =avx512,avx2, =simd). Exits non-zero if the build or any test fails, or if any sanitizer report
# was written, by pytest itself or by any subprocess a test started.
#
#   tools/sanitize.sh                      the whole suite, every ISA path
#   tools/sanitize.sh --ci                 the CI slice (see tools/README.md), every ISA path
#   tools/sanitize.sh tests/test_hostile.py -k overflow     any pytest arguments
#
# Environment:
#   SANITIZE_ISAS="default avx512 avx512,avx2 simd"   the ISA paths to run ("default": unset); a path
#                       that selects the same kernels as an earlier one on this CPU is skipped
#   SANITIZE_ALL_PATHS=1  run every path even so
#   SANITIZE_DIR=DIR    keep the venv and build in DIR and reuse them (default: a temp dir, removed)
#   SANITIZE_REBUILD=1  with SANITIZE_DIR: rebuild fastconv even if DIR already holds a build
#   SANITIZE_PYTHON=python3                     the interpreter the venv is made from
#   SANITIZE_SOURCE=DIR the source tree to build (default: this checkout); the tests always run
#                       from this checkout
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
isas=${SANITIZE_ISAS:-"default avx512 avx512,avx2 simd"}
python=${SANITIZE_PYTHON:-python3}

# The CI slice: the tests that reach every C entry point with many shapes (properties: every engine,
# layout, dtype, padding, groups and transposed; hostile sizes; values; concurrency, fork included)
# plus the errors suite, which drives every rejection path. Measured figures in tools/README.md.
ci_slice=(tests/test_properties.py tests/test_hostile.py tests/test_values.py tests/test_concurrency.py
          tests/test_errors.py)

if [[ ${1:-} == --ci ]]; then
  shift
  set -- "${ci_slice[@]}" "$@"
fi
if [[ $# -eq 0 ]]; then
  set -- tests
fi

if [[ -n ${SANITIZE_DIR:-} ]]; then
  work=$SANITIZE_DIR
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/fastconv-sanitize.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi
venv=$work/venv
logs=$work/reports
start=$SECONDS

# ---- build ----------------------------------------------------------------------------------------
if [[ ! -x $venv/bin/python ]]; then
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q numpy threadpoolctl scipy-openblas32 pytest hypothesis \
    meson-python meson ninja cython
fi
if [[ ${SANITIZE_REBUILD:-0} == 1 || ! -e $work/built ]]; then
  rm -f "$work/built"
  # debugoptimized: the release optimisation level (so the same vectorised loops run) plus -g for
  # symbolised stacks; asserts stay on. b_lundef=false: the extension leaves the sanitizer runtime's
  # symbols to the preloaded libraries.
  "$venv/bin/python" -m pip install -q --no-build-isolation --force-reinstall --no-deps \
    -Csetup-args=-Db_sanitize=address,undefined \
    -Csetup-args=-Db_lundef=false \
    -Csetup-args=-Dbuildtype=debugoptimized \
    -Csetup-args=-Dc_args=-fno-omit-frame-pointer \
    "${SANITIZE_SOURCE:-$repo}"
  touch "$work/built"
fi
build_seconds=$((SECONDS - start))

# The sanitizer runtimes the extension was linked against; preloading them makes them initialise
# before the (uninstrumented) interpreter allocates anything.
core_so=$("$venv/bin/python" -c "import glob, os, importlib.util as u
d = os.path.dirname(u.find_spec('fastconv').origin)
print(glob.glob(os.path.join(d, '_core*.so'))[0])")
runtime() {
  ldd "$core_so" | awk -v lib="$1" '$1 ~ "^" lib "\\.so" {print $3; exit}'
}
libasan=$(runtime libasan)
libubsan=$(runtime libubsan)
if [[ -z $libasan || -z $libubsan ]]; then
  echo "sanitize: $core_so is not linked against libasan and libubsan; was it built with b_sanitize?" >&2
  ldd "$core_so" >&2
  exit 2
fi

echo "sanitize: built in ${build_seconds}s; runtimes $libasan $libubsan"

# ---- run ------------------------------------------------------------------------------------------
rm -rf "$logs" "$logs.seen"
mkdir -p "$logs" "$logs.seen"
# detect_leaks=0: LeakSanitizer would report the interpreter's own never-freed allocations (leaks are
# measured by tests/test_memory.py and tools/valgrind.sh instead). allocator_may_return_null=1: a huge
# allocation is a NULL (numpy's MemoryError), as it is without ASan, not an abort. log_path: every
# process, subprocesses of the tests included, writes its ASan reports to a file checked below.
# UBSan ignores log_path here (its reports always go to stderr), so pytest runs with --capture=sys,
# which leaves file descriptor 2 alone, its output is scanned for reports, and a process UBSan halts
# exits with the distinctive status 86 (ASan's: 87).
asan_options="detect_leaks=0:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1:exitcode=87"
asan_options+=":log_path=$logs/asan"
ubsan_options="halt_on_error=1:print_stacktrace=1:exitcode=86"

status=0
declare -A seconds
declare -A ran_as
for isa in $isas; do
  isa_start=$SECONDS
  env_cmd=(env -u FASTCONV_DISABLE)
  [[ $isa != default ]] && env_cmd=(env "FASTCONV_DISABLE=$isa")
  # The kernels this path selects on this CPU; a path that selects the same ones as an earlier path
  # (FASTCONV_DISABLE=avx512 on a CPU without AVX-512) runs the same code and is skipped.
  selected=$("${env_cmd[@]}" LD_PRELOAD="$libasan:$libubsan" ASAN_OPTIONS=detect_leaks=0 \
    "$venv/bin/python" -c "import fastconv; print(fastconv._core.isas()[2])" 2>/dev/null) ||
    selected="unknown ($isa)"  # pytest will show why fastconv does not import
  if [[ -n ${ran_as[$selected]:-} && ${SANITIZE_ALL_PATHS:-0} != 1 ]]; then
    echo "sanitize: ---- FASTCONV_DISABLE=${isa/#default/(unset)} selects $selected, as ${ran_as[$selected]} did: skipped ----"
    seconds[$isa]="skipped (same kernels as ${ran_as[$selected]})"
    continue
  fi
  ran_as[$selected]="FASTCONV_DISABLE=${isa/#default/(unset)}"
  echo "sanitize: ---- FASTCONV_DISABLE=${isa/#default/(unset)} (kernels: $selected) ----"
  out=$work/pytest.$isa.log
  set +e
  (cd "$repo" && "${env_cmd[@]}" \
      LD_PRELOAD="$libasan:$libubsan${LD_PRELOAD:+:$LD_PRELOAD}" \
      ASAN_OPTIONS="$asan_options" UBSAN_OPTIONS="$ubsan_options" \
      FASTCONV_SANITIZED=1 PYTHONFAULTHANDLER=1 \
      "$venv/bin/python" -m pytest -q -p no:cacheprovider --capture=sys "$@") 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  set -e
  seconds[$isa]="$((SECONDS - isa_start))s"
  # pytest exits 5 when the selection is empty for this path; that is no failure.
  if [[ $rc -ne 0 && $rc -ne 5 ]]; then
    echo "sanitize: pytest failed (exit $rc) with FASTCONV_DISABLE=$isa" >&2
    status=1
  fi
  # Reports printed to a stderr: pytest's own, or a child's that a failing test printed.
  if grep -qE "runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer" "$out"; then
    echo "sanitize: sanitizer reports in the output with FASTCONV_DISABLE=$isa:" >&2
    { grep -E -A12 "runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer" "$out" | head -200 >&2; } || true
    status=1
  fi
  # allocator_may_return_null=1 logs a warning for each refused huge allocation (a MemoryError the
  # tests expect); a file with nothing else in it is no report.
  shopt -s nullglob
  found=0
  for f in "$logs"/*; do
    if grep -qv "WARNING: AddressSanitizer failed to allocate" "$f"; then
      echo "==== sanitizer report $f (FASTCONV_DISABLE=$isa)" >&2
      grep -v "WARNING: AddressSanitizer failed to allocate" "$f" >&2
      found=$((found + 1))
    fi
    mv "$f" "$logs.seen/$(basename "$f").$isa"
  done
  shopt -u nullglob
  if [[ $found -gt 0 ]]; then
    echo "sanitize: $found process(es) wrote sanitizer reports with FASTCONV_DISABLE=$isa" >&2
    status=1
  fi
done

echo "sanitize: build ${build_seconds}s; per ISA path:"
for isa in $isas; do
  echo "  FASTCONV_DISABLE=${isa/#default/(unset)}: ${seconds[$isa]}"
done
echo "sanitize: total $((SECONDS - start))s; $([[ $status -eq 0 ]] && echo "no reports, all passed" || echo FAILED)"
exit $status
