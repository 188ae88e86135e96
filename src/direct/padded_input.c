/* The zero-padded, stride-phase-split copy of one input channel (padded_input.h). */
#include "direct/padded_input.h"

#include <string.h>

#include "simd/simd.h"

#define MAX_VECTOR_PHASES 8

/* The lanes [lo, hi) inside the row of phase vector k of the FC_L slots from slot i
 * (pad_row_vectors). */
FC_INLINE void vector_lanes(int64_t i, int64_t wq, int64_t width, int64_t left, int sw, int k,
                            int *lo, int *hi) {
  const int64_t n = wq - i < FC_L ? wq - i : FC_L, c0 = i * sw - left + k * FC_L;
  const int64_t l = fc_max(0, fc_min(FC_L, -c0)),
                h = fc_min(fc_min(FC_L, width - c0), n * sw - k * FC_L);
  *lo = (int)l;
  *hi = (int)fc_max(l, h);
}

/* The lanes of every vector of a row of at most ROW_LANES_VECTORS vectors per phase, loaded and
 * stored, the same for all rows of a channel: worked out once, not per row (short rows, as
 * Winograd's, spent more on them than on the floats). */
#define ROW_LANES_VECTORS 4
typedef struct row_lanes {
  fc_lanes load[ROW_LANES_VECTORS][MAX_VECTOR_PHASES], store[ROW_LANES_VECTORS];
} row_lanes;

/* One padded row of sw phases of wq slots: slot i of phase b holds input column i sw + b - left,
 * or zero outside [0, width). For sw a power of two up to MAX_VECTOR_PHASES, FC_L slots at a time:
 * sw vectors of the row, loaded under lane masks that zero the columns outside it, deinterleaved by
 * log2(sw) rounds of even / odd splits, which leave phase k in vector k. Winograd pads short rows
 * (resnet50.l2.3x3s2's 4 phases of 15 slots): a copy per phase, or a vector loop with scalar
 * edges, spent more on loop overhead than on the floats (17% of that layer). lanes: the row's
 * lanes worked out beforehand (row_lanes), or NULL to work them out vector by vector. */
FC_INLINE void pad_row_vectors(float *out, int64_t wq, const float *row, int64_t width,
                               int64_t left, int sw, const row_lanes *lanes) {
  for (int64_t i = 0; i < wq; i += FC_L) {
    const int n = (int)(wq - i < FC_L ? wq - i : FC_L);
    fc_vf a[MAX_VECTOR_PHASES];
    const int64_t first = i * sw - left; /* the first vector's lane 0's column */
    if (lanes) {
#pragma GCC unroll 8
      for (int k = 0; k < sw; k++)
        a[k] = fc_load_masked(row + first + k * FC_L, lanes->load[i / FC_L][k]);
    } else if (n == FC_L && first >= 0 && first + sw * FC_L <= width) { /* inside the row */
#pragma GCC unroll 8
      for (int k = 0; k < sw; k++) a[k] = fc_load(row + first + k * FC_L);
    } else {
#pragma GCC unroll 8
      for (int k = 0; k < sw; k++) {
        int lo, hi;
        vector_lanes(i, wq, width, left, sw, k, &lo, &hi);
        a[k] = fc_load_lanes(row + first + k * FC_L, lo, hi);
      }
    }
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
      else if (lanes)
        fc_store_masked(out + k * wq + i, a[k], lanes->store[i / FC_L]);
      else
        fc_store_partial(out + k * wq + i, a[k], n);
    }
  }
}

/* The same for any sw, phase by phase (contiguous stores). */
static void pad_row(float *out, int64_t wq, const float *row, int64_t width, int64_t left,
                    int64_t sw) {
  for (int64_t phase = 0; phase < sw; phase++)
    for (int64_t i = 0; i < wq; i++) {
      const int64_t column = i * sw + phase - left;
      out[phase * wq + i] = column >= 0 && column < width ? row[column] : 0.0f;
    }
}

void FC_SYM(fc_pad_rows_f32)(const fc_problem *p, const padded_input *g, const float *x, int64_t d,
                             int64_t h0, int64_t h1, float *dst) {
  const int64_t sw = g->sw, wq = g->wq, row_floats = sw * wq, id = d - p->pad[0];
  const int64_t width = p->in[2], left = p->pad[2];
  row_lanes lanes;
  const int short_row = sw <= MAX_VECTOR_PHASES && wq <= ROW_LANES_VECTORS * FC_L;
  for (int64_t i = 0; short_row && i < wq; i += FC_L) {
    lanes.store[i / FC_L] = fc_lanes_of(0, (int)fc_min(FC_L, wq - i));
    for (int k = 0; k < sw; k++) {
      int lo, hi;
      vector_lanes(i, wq, width, left, (int)sw, k, &lo, &hi);
      lanes.load[i / FC_L][k] = fc_lanes_of(lo, hi);
    }
  }
  const row_lanes *row_plan = short_row ? &lanes : NULL;
  for (int64_t h = h0; h < h1; h++, dst += row_floats) {
    const int64_t ih = h - p->pad[1];
    if (id < 0 || id >= p->in[0] || ih < 0 || ih >= p->in[1]) {
      memset(dst, 0, (size_t)row_floats * sizeof(float));
      continue;
    }
    const float *row = x + (id * p->in[1] + ih) * p->in[2];
    switch (sw) { /* the phase counts the engines use, as constants */
      case 1: pad_row_vectors(dst, wq, row, width, left, 1, row_plan); break;
      case 2: pad_row_vectors(dst, wq, row, width, left, 2, row_plan); break;
      case 4: pad_row_vectors(dst, wq, row, width, left, 4, row_plan); break;
      case 8: pad_row_vectors(dst, wq, row, width, left, 8, row_plan); break;
      default: pad_row(dst, wq, row, width, left, sw);
    }
  }
}
