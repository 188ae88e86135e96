/* Direct convolution of thin groups for one ISA (fc_conv_rows in conv_patches.h): vectorised along
 * the output row, each input vector loaded once for up to FC_ROWS_MAX_OUT output channels, the
 * weights broadcast from memory. Depthwise layers reduce over the taps alone, which a GEMM tile
 * cannot use; here every load feeds one to four FMAs. Reads may run up to one vector past the run
 * (into the padded block's slack); stores stop at the run's end. */
#include "direct/conv_patches.h"
#include "simd/simd.h"

/* ROWS_OUT output channels x ROWS_V vectors of accumulators. */
#define ROWS_KERNEL(ROWS_OUT, ROWS_V)                                                        \
  static void rows_##ROWS_OUT(const fc_conv_rows *r) {                                       \
    const int64_t wstride = r->in_per_group * r->taps;                                       \
    int64_t j = 0;                                                                           \
    for (; j < r->count; j += ROWS_V * FC_L) {                                               \
      fc_vf acc[ROWS_OUT][ROWS_V];                                                           \
      _Pragma("GCC unroll 4") for (int o = 0; o < ROWS_OUT; o++) {                           \
        const fc_vf b = fc_set1(r->bias ? r->bias[o] : 0.0f);                                \
        _Pragma("GCC unroll 8") for (int v = 0; v < ROWS_V; v++) acc[o][v] = b;              \
      }                                                                                      \
      for (int64_t ic = 0; ic < r->in_per_group; ic++) {                                     \
        const float *src = r->padded + ic * r->plane + r->base + j;                          \
        const float *w = r->weight + ic * r->taps;                                           \
        for (int64_t t = 0; t < r->taps; t++) {                                              \
          fc_vf x[ROWS_V];                                                                   \
          _Pragma("GCC unroll 8") for (int v = 0; v < ROWS_V; v++) x[v] =                    \
              fc_load(src + r->tap_offset[t] + v * FC_L);                                    \
          _Pragma("GCC unroll 4") for (int o = 0; o < ROWS_OUT; o++) {                       \
            const fc_vf wv = fc_set1(w[o * wstride + t]);                                    \
            _Pragma("GCC unroll 8") for (int v = 0; v < ROWS_V; v++) acc[o][v] += wv * x[v]; \
          }                                                                                  \
        }                                                                                    \
      }                                                                                      \
      const int64_t left = r->count - j;                                                     \
      _Pragma("GCC unroll 4") for (int o = 0; o < ROWS_OUT; o++) {                           \
        float *y = r->y + o * r->y_channel_stride + j;                                       \
        _Pragma("GCC unroll 8") for (int v = 0; v < ROWS_V; v++) {                           \
          if (left >= (v + 1) * FC_L)                                                        \
            fc_store(y + v * FC_L, acc[o][v]);                                               \
          else if (left > v * FC_L)                                                          \
            fc_store_partial(y + v * FC_L, acc[o][v], (int)(left - v * FC_L));               \
        }                                                                                    \
      }                                                                                      \
    }                                                                                        \
  }

/* Registers: ROWS_OUT * ROWS_V accumulators + ROWS_V inputs + 1 broadcast (16 on AVX2). */
ROWS_KERNEL(1, 4)
ROWS_KERNEL(2, 4)
ROWS_KERNEL(3, 3)
ROWS_KERNEL(4, 2)

void FC_SYM(fc_conv_rows_f32)(const fc_conv_rows *r) {
  switch (r->out_count) {
    case 1: rows_1(r); break;
    case 2: rows_2(r); break;
    case 3: rows_3(r); break;
    default: rows_4(r); break;
  }
}
