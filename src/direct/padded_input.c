/* The zero-padded, stride-phase-split copy of one input channel (padded_input.h). */
#include "direct/padded_input.h"

#include <string.h>

#include "simd/simd.h"

/* Slots [lo, hi) of a row's phases from src (the row from slot lo's phase-0 column on):
 * out[phase * wq + i] = src[(i - lo) * sw + phase], phase by phase (contiguous stores). */
static void split_phases(float *out, int64_t wq, const float *src, int64_t lo, int64_t hi,
                         int64_t sw) {
  for (int64_t phase = 0; phase < sw; phase++)
    for (int64_t i = lo; i < hi; i++) out[phase * wq + i] = src[(i - lo) * sw + phase];
}

#define MAX_VECTOR_PHASES 8
/* The same for sw a power of two up to MAX_VECTOR_PHASES, FC_L slots at a time: sw vectors of the
 * row (the last ones partial, masked) deinterleaved by log2(sw) rounds of even / odd splits, which
 * leave phase k in vector k. Winograd's rows are short (resnet50.l2.3x3s2's 4 phases of 14 slots),
 * which the compiler's vectorisation of the scalar loop left to its scalar remainder. */
FC_INLINE void split_phases_vectors(float *out, int64_t wq, const float *src, int64_t lo,
                                    int64_t hi, int sw) {
  for (int64_t i = lo; i < hi; i += FC_L, src += sw * FC_L) {
    const int n = (int)(hi - i < FC_L ? hi - i : FC_L);
    fc_vf a[MAX_VECTOR_PHASES];
#pragma GCC unroll 8
    for (int k = 0; k < sw; k++)
      a[k] = n == FC_L ? fc_load(src + k * FC_L)
                       : fc_load_partial(src + k * FC_L, fc_clamp_lanes(n * sw - k * FC_L));
#pragma GCC unroll 3
    for (int round = 1; round < sw; round *= 2) {
      fc_vf b[MAX_VECTOR_PHASES];
#pragma GCC unroll 4
      for (int j = 0; j < sw / 2; j++) {
        b[j] = fc_even(a[2 * j], a[2 * j + 1]);
        b[sw / 2 + j] = fc_odd(a[2 * j], a[2 * j + 1]);
      }
#pragma GCC unroll 8
      for (int k = 0; k < sw; k++) a[k] = b[k];
    }
#pragma GCC unroll 8
    for (int k = 0; k < sw; k++) {
      if (n == FC_L)
        fc_store(out + k * wq + i, a[k]);
      else
        fc_store_partial(out + k * wq + i, a[k], n);
    }
  }
}

void FC_SYM(fc_pad_rows_f32)(const fc_problem *p, const padded_input *g, const float *x, int64_t d,
                             int64_t h0, int64_t h1, float *dst) {
  const int64_t sw = g->sw, wq = g->wq, row_floats = sw * wq, id = d - p->pad[0];
  const int64_t width = p->in[2], left = p->pad[2];
  /* Slot i of phase b holds input column i * sw + b - left. In slots [lo, hi) every phase's column
   * lies inside the row; the slots outside are the few at the padding. Row by row, each input row
   * read once: a Winograd tile block pads a few short rows per channel, where a pass per phase
   * and per row cost more than the copy (resnet50.l2.3x3s2, 4 phases of 15 floats: 17%). */
  int64_t lo, hi, unused;
  fc_valid_outputs(width, wq, sw, -left, &lo, &unused);
  fc_valid_outputs(width, wq, sw, sw - 1 - left, &unused, &hi);
  hi = fc_max(lo, hi);
  for (int64_t h = h0; h < h1; h++, dst += row_floats) {
    const int64_t ih = h - p->pad[1];
    if (id < 0 || id >= p->in[0] || ih < 0 || ih >= p->in[1]) {
      memset(dst, 0, (size_t)row_floats * sizeof(float));
      continue;
    }
    const float *row = x + (id * p->in[1] + ih) * p->in[2];
    for (int64_t i = 0; i < wq; i++) {
      if (i == lo) i = hi; /* the slots between come next, whole */
      for (int64_t phase = 0; phase < sw && i < wq; phase++) {
        const int64_t column = i * sw + phase - left;
        dst[phase * wq + i] = column >= 0 && column < width ? row[column] : 0.0f;
      }
    }
    const float *src = row + lo * sw - left;
    switch (sw) { /* the strides the engines use most, vectorised */
      case 1: memcpy(dst + lo, src, (size_t)(hi - lo) * sizeof(float)); break;
      case 2: split_phases_vectors(dst, wq, src, lo, hi, 2); break;
      case 4: split_phases_vectors(dst, wq, src, lo, hi, 4); break;
      case 8: split_phases_vectors(dst, wq, src, lo, hi, 8); break;
      default: split_phases(dst, wq, src, lo, hi, sw);
    }
  }
}
