/* A thin group's output plane (one output channel: depthwise, single-channel correlation, a few
 * input channels) for one ISA (fc_conv_plane in conv_plane.h), register-blocked over R output rows
 * x V output vectors.
 *
 * Why: the row kernel (conv_rows_f32.c) computes one output row with four accumulators, so the
 * four-cycle FMA latency caps it at half the FMA throughput, and each tap's input vector feeds one
 * FMA. Here a block keeps R * V independent accumulators, and when output rows one apart read
 * kernel rows one apart (stride_h == dilation_h) the block walks its kh_count + R - 1 input rows:
 * per input row and column tap, V vector loads and R weight broadcasts feed R * V FMAs, each row's
 * weight being that of kernel row i - r. The weights are padded with R - 1 zero rows on each side,
 * so the block's first and last input rows, which feed fewer than R output rows, need no case of
 * their own (their FMAs by zero are the price: KH / (KH + R - 1) of the block's FMAs are useful).
 * Each row's last vectors (fewer than V) run through the R x 1 block, which reads at most one
 * vector past the row's inputs. */
#include "direct/conv_plane.h"
#include "simd/simd.h"

#define PLANE_BLOCK(NAME, R, V)                                                                 \
  FC_INLINE void NAME(const fc_conv_plane *p, const float *src, float *y, int64_t left) {       \
    fc_vf acc[R][V];                                                                            \
    const fc_vf b = fc_set1(p->bias ? *p->bias : 0.0f);                                         \
    _Pragma("GCC unroll 12") for (int r = 0; r < R; r++)                                        \
        _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) acc[r][v] = b;                     \
    const int64_t kw_count = p->kw_count;                                                       \
    for (int64_t ic = 0; ic < p->channels; ic++) {                                              \
      const float *s = src + ic * p->channel_stride;                                            \
      const float *w = p->weight_rows + ic * p->weight_channel_stride;                          \
      for (int64_t i = 0; i < p->kh_count + R - 1; i++) {                                       \
        const float *row = s + p->row_offset[i], *wi = w + i * kw_count;                        \
        for (int64_t kw = 0; kw < kw_count; kw++) {                                             \
          fc_vf x[V];                                                                           \
          _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) x[v] =                           \
              fc_load(row + p->col_offset[kw] + v * FC_L);                                      \
          _Pragma("GCC unroll 12") for (int r = 0; r < R; r++) {                                \
            const fc_vf wv = fc_set1(wi[kw - r * kw_count]);                                    \
            _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) acc[r][v] += wv * x[v];        \
          }                                                                                     \
        }                                                                                       \
      }                                                                                         \
    }                                                                                           \
    _Pragma("GCC unroll 12") for (int r = 0; r < R; r++)                                        \
        _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) {                                  \
      float *out = y + r * p->y_row_stride + v * FC_L;                                          \
      if (left >= (v + 1) * FC_L)                                                               \
        fc_store(out, acc[r][v]);                                                               \
      else                                                                                      \
        fc_store_partial(out, acc[r][v], (int)(left - v * FC_L));                               \
    }                                                                                           \
  }

/* R rows of the plane: blocks of V vectors, then the rest one vector at a time. noinline keeps
 * each variant's register allocation to itself. */
#define PLANE_ROWS(NAME, R, V)                                                                  \
  PLANE_BLOCK(NAME##_wide, R, V)                                                                \
  PLANE_BLOCK(NAME##_narrow, R, 1)                                                              \
  __attribute__((noinline)) static void NAME(const fc_conv_plane *p, const float *src,          \
                                             float *y) {                                        \
    int64_t j = 0;                                                                              \
    for (; j + V * FC_L <= p->cols; j += V * FC_L) NAME##_wide(p, src + j, y + j, V * FC_L);    \
    for (; j < p->cols; j += FC_L) NAME##_narrow(p, src + j, y + j, p->cols - j);               \
  }

#ifndef PLANE_R4_V
#define PLANE_R4_V 2
#endif
/* Registers: R * V accumulators + V inputs + 1 broadcast weight, of 16 on AVX2. */
PLANE_ROWS(rows_4, 4, PLANE_R4_V)
PLANE_ROWS(rows_3, 3, 3)
PLANE_ROWS(rows_2, 2, 4)
PLANE_ROWS(rows_1, 1, 12)

void FC_SYM(fc_conv_plane_f32)(const fc_conv_plane *p) {
  typedef void rows_fn(const fc_conv_plane *, const float *, float *);
  static rows_fn *const by_rows[] = {rows_1, rows_2, rows_3, rows_4};
  const int64_t block = p->shared_rows;
  for (int64_t r0 = 0; r0 < p->rows; r0 += block) {
    const int64_t count = p->rows - r0 < block ? p->rows - r0 : block;
    by_rows[count - 1](p, p->src + r0 * p->row_step, p->y + r0 * p->y_row_stride);
  }
}
