"""Run-time configuration: loading the BLAS and reporting what fastconv runs with."""

from __future__ import annotations

import os
import sys

from . import _core

_blas_error: str | None = None


def load_blas() -> None:
    """Loads scipy-openblas32 for the im2col engine. Its threads are never used (fastconv calls it
    single-threaded from its own OpenMP loops), so it starts with a pool of one."""
    global _blas_error
    try:
        import scipy_openblas32

        path = os.path.join(scipy_openblas32.get_lib_dir(), scipy_openblas32.get_library(fullname=True))
        saved = os.environ.get("OPENBLAS_NUM_THREADS")
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        try:
            _core.load_blas(path)
        finally:
            if saved is None:
                del os.environ["OPENBLAS_NUM_THREADS"]
            else:
                os.environ["OPENBLAS_NUM_THREADS"] = saved
    except Exception as exc:  # the im2col engine reports it is unavailable; nothing else depends on it
        _blas_error = f"{type(exc).__name__}: {exc}"


def show_config(file=None) -> None:
    """Prints the version, engines, threads and BLAS fastconv runs with."""
    from . import __version__

    file = file or sys.stdout
    lines = [
        f"fastconv {__version__}",
        f"  python: {sys.version.split()[0]}",
        f"  engines: {', '.join(a for a in _core.ALGORITHMS if a != 'auto')}",
        "  SIMD: compiled {}; detected {}; selected {}".format(*_core.isas()),
        f"  OpenMP default threads: {_core.default_num_threads()}",
        f"  BLAS (im2col): {'scipy-openblas32 loaded' if _core.blas_available() else 'unavailable'}"
        + (f" ({_blas_error})" if _blas_error else ""),
    ]
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            lines.append(
                f"  threadpoolctl: {pool.get('user_api')} {pool.get('internal_api')} "
                f"num_threads={pool.get('num_threads')} {os.path.basename(pool.get('filepath', ''))}"
            )
    except ImportError:
        lines.append("  threadpoolctl: not installed")
    print("\n".join(lines), file=file)
