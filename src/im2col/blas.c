/* Loads the scipy-openblas32 library at run time. Its path is known only to Python (the wheel's
 * get_lib_dir()), and a link-time rpath into the build environment would not survive an isolated
 * build, so the symbols are looked up with dlsym once and kept in function pointers. */
#include "im2col/blas.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>

#include "fastconv/fastconv.h"

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *,
                         int, float, float *, int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int, const double *,
                         int, double, double *, int);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);

static struct {
  sgemm_fn sgemm;
  dgemm_fn dgemm;
  set_threads_fn set_num_threads;
  get_threads_fn get_num_threads;
} blas;
static atomic_int blas_ready;

fc_status fc_blas_load(const char *library_path) {
  if (atomic_load(&blas_ready)) return FC_STATUS_OK;
  if (!library_path) return FC_STATUS_INVALID_ARGUMENT;
  void *handle = dlopen(library_path, RTLD_NOW | RTLD_LOCAL);
  if (!handle) return FC_STATUS_BLAS_UNAVAILABLE;
  blas.sgemm = (sgemm_fn)dlsym(handle, "scipy_cblas_sgemm");
  blas.dgemm = (dgemm_fn)dlsym(handle, "scipy_cblas_dgemm");
  blas.set_num_threads = (set_threads_fn)dlsym(handle, "scipy_openblas_set_num_threads");
  blas.get_num_threads = (get_threads_fn)dlsym(handle, "scipy_openblas_get_num_threads");
  if (!blas.sgemm || !blas.dgemm || !blas.set_num_threads || !blas.get_num_threads) {
    dlclose(handle);
    return FC_STATUS_BLAS_UNAVAILABLE;
  }
  atomic_store(&blas_ready, 1);
  return FC_STATUS_OK;
}

int fc_blas_available(void) { return atomic_load(&blas_ready); }

int fc_blas_fits(int64_t value) { return value >= 0 && value <= INT_MAX; }

void fc_blas_single_threaded(void) {
  /* threadpoolctl may have raised the BLAS's own pool; calls made inside OpenMP regions must not
   * start nested threads (10-30x slower), so put it back to one. */
  if (blas.get_num_threads() != 1) blas.set_num_threads(1);
}

static int trans(int t) { return t ? CBLAS_TRANS : CBLAS_NO_TRANS; }

void fc_gemm_f32(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a,
                 int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  blas.sgemm(CBLAS_ROW_MAJOR, trans(trans_a), trans(trans_b), (int)m, (int)n, (int)k, 1.0f, a,
             (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void fc_gemm_f64(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const double *a,
                 int64_t lda, const double *b, int64_t ldb, double beta, double *c, int64_t ldc) {
  blas.dgemm(CBLAS_ROW_MAJOR, trans(trans_a), trans(trans_b), (int)m, (int)n, (int)k, 1.0, a,
             (int)lda, b, (int)ldb, beta, c, (int)ldc);
}
