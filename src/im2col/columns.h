/* Column-matrix helpers shared by the engines that compute transposed convolution as a GEMM into
 * columns followed by col2im (conv_im2col_impl.h defines them for both dtypes). */
#ifndef FASTCONV_IM2COL_COLUMNS_H
#define FASTCONV_IM2COL_COLUMNS_H

#include "api/problem.h"

/* Adds columns (rows (oc in [o0, o0 + ob), kd, kh, kw) x input positions [p0, p0 + count),
 * element (r, j) at col[r * rs + j * js]) of image n, group g into the outputs they land on. */
void fc_scatter_columns_f32(const fc_problem *p, float *y, const fc_strides *ys, int64_t n,
                            int64_t g, int64_t o0, int64_t ob, int64_t p0, int64_t count,
                            const float *col, int64_t rs, int64_t js);
void fc_scatter_columns_f64(const fc_problem *p, double *y, const fc_strides *ys, int64_t n,
                            int64_t g, int64_t o0, int64_t ob, int64_t p0, int64_t count,
                            const double *col, int64_t rs, int64_t js);

/* Sets positions [p0, p0 + count) of channels [c0, c0 + cn) of image n to the bias (zero without
 * one); ys are the strides of the output flattened to (1, 1, volume). */
void fc_fill_bias_f32(const float *bias, float *y, const fc_strides *ys, int64_t n, int64_t c0,
                      int64_t cn, int64_t p0, int64_t count);
void fc_fill_bias_f64(const double *bias, double *y, const fc_strides *ys, int64_t n, int64_t c0,
                      int64_t cn, int64_t p0, int64_t count);

#endif
