/* One output channel's band of rows (depthwise, single-channel correlation, a few input channels
 * per output) for one ISA (fc_conv_plane in conv_plane.h), register-blocked over R output rows
 * x V output vectors.
 *
 * Why: the row kernel (conv_rows_f32.c) computes one output row with four accumulators, so the
 * four-cycle FMA latency caps it at half the FMA throughput, and each FMA needs its own
 * (unaligned) input load. Here, when output rows one apart read kernel rows one apart (stride_h ==
 * dilation_h), a block walks its kh_count + R - 1 input rows once: per input row i and column tap
 * kw, V vector loads and one weight broadcast per output row r (that of kernel row i - r) feed the
 * FMAs of every output row that reads input row i. The first and last R - 1 input rows feed fewer
 * output rows; those passes are unrolled with the rows known at compile time (R <= kh_count), so no
 * FMA is wasted and the inner loop has no test. Each row's last vectors (fewer than V) run through
 * the R x 1 block, which reads at most one vector past the row's inputs. */
#include "direct/conv_plane.h"
#include "simd/simd.h"

/* Input row i of the block (at `row`) into output rows r_lo..r_hi, with the weights of kernel row
 * i - r at w_i - r * kw_count. */
#define PLANE_INPUT_ROW(R, V, row, w_i, r_lo, r_hi)                                \
  for (int64_t kw = 0; kw < kw_count; kw++) {                                      \
    fc_vf x[V];                                                                    \
    _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) x[v] =                    \
        fc_load((row) + p->col_offset[kw] + v * FC_L);                             \
    _Pragma("GCC unroll 12") for (int r = (r_lo); r <= (r_hi); r++) {              \
      const fc_vf wv = fc_set1((w_i)[kw - r * kw_count]);                          \
      _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) acc[r][v] += wv * x[v]; \
    }                                                                              \
  }

#define PLANE_BLOCK(NAME, R, V)                                                           \
  FC_INLINE void NAME(const fc_conv_plane *p, const float *src, float *y, int64_t left) { \
    fc_vf acc[R][V];                                                                      \
    const fc_vf b = fc_set1(p->bias ? *p->bias : 0.0f);                                   \
    _Pragma("GCC unroll 12") for (int r = 0; r < R; r++)                                  \
        _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) acc[r][v] = b;               \
    const int64_t kh_count = p->kh_count, kw_count = p->kw_count, step = p->kh_step;      \
    for (int64_t ic = 0; ic < p->channels; ic++) {                                        \
      const float *s = src + ic * p->channel_stride;                                      \
      const float *w = p->weight + ic * kh_count * kw_count;                              \
      /* input rows 0 .. R - 2 feed output rows 0 .. i */                                 \
      _Pragma("GCC unroll 12") for (int i = 0; i < R - 1; i++)                            \
          PLANE_INPUT_ROW(R, V, s + i * step, w + i * kw_count, 0, i);                    \
      for (int64_t i = R - 1; i < kh_count; i++)                                          \
        PLANE_INPUT_ROW(R, V, s + i * step, w + i * kw_count, 0, R - 1);                  \
      /* input rows kh_count + j feed output rows j + 1 .. R - 1 */                       \
      _Pragma("GCC unroll 12") for (int j = 0; j < R - 1; j++) PLANE_INPUT_ROW(           \
          R, V, s + (kh_count + j) * step, w + (kh_count + j) * kw_count, j + 1, R - 1);  \
    }                                                                                     \
    _Pragma("GCC unroll 12") for (int r = 0; r < R; r++)                                  \
        _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) {                            \
      float *out = y + r * p->y_row_stride + v * FC_L;                                    \
      if (left >= (v + 1) * FC_L)                                                         \
        fc_store(out, acc[r][v]);                                                         \
      else                                                                                \
        fc_store_partial(out, acc[r][v], (int)(left - v * FC_L));                         \
    }                                                                                     \
  }

/* R rows of the plane: blocks of V vectors, then the rest one vector at a time. noinline keeps
 * each variant's register allocation to itself. */
#define PLANE_ROWS(NAME, R, V)                                                                     \
  PLANE_BLOCK(NAME##_wide, R, V)                                                                   \
  PLANE_BLOCK(NAME##_narrow, R, 1)                                                                 \
  __attribute__((noinline)) static void NAME(const fc_conv_plane *p, const float *src, float *y) { \
    int64_t j = 0;                                                                                 \
    for (; j + V * FC_L <= p->cols; j += V * FC_L) NAME##_wide(p, src + j, y + j, V * FC_L);       \
    for (; j < p->cols; j += FC_L) NAME##_narrow(p, src + j, y + j, p->cols - j);                  \
  }

/* Registers: R * V accumulators + V inputs + 1 broadcast weight, of 16 on AVX2; loads per FMA:
 * (V + R) / (R * V). */
PLANE_ROWS(rows_6, 6, 2)
PLANE_ROWS(rows_5, 5, 2)
PLANE_ROWS(rows_4, 4, 2)
PLANE_ROWS(rows_3, 3, 3)
PLANE_ROWS(rows_2, 2, 4)
PLANE_ROWS(rows_1, 1, 12)

void FC_SYM(fc_conv_plane_f32)(const fc_conv_plane *p) {
  typedef void rows_fn(const fc_conv_plane *, const float *, float *);
  static rows_fn *const by_rows[] = {rows_1, rows_2, rows_3, rows_4, rows_5, rows_6};
  const int64_t block = p->shared_rows;
  for (int64_t r0 = 0; r0 < p->rows; r0 += block) {
    const int64_t count = p->rows - r0 < block ? p->rows - r0 : block;
    by_rows[count - 1](p, p->src + r0 * p->row_step, p->y + r0 * p->y_row_stride);
  }
}
