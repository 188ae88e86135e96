/* Row-major GEMM through the BLAS loaded at run time (C = A * B + beta * C). Dimensions must
 * fit the 32-bit BLAS interface: callers check with fc_blas_fits(). Every call runs on the calling
 * thread only; fastconv's own OpenMP loops provide the parallelism. */
#ifndef FASTCONV_IM2COL_BLAS_H
#define FASTCONV_IM2COL_BLAS_H

#include <stdint.h>

int fc_blas_fits(int64_t value);
/* Makes sure the BLAS will not start threads of its own: called once per execution. */
void fc_blas_single_threaded(void);
void fc_gemm_f32(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a,
                 int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void fc_gemm_f64(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const double *a,
                 int64_t lda, const double *b, int64_t ldb, double beta, double *c, int64_t ldc);

#endif
