/* The zero-padded, stride-phase-split copy of one input channel (padded_input.h). */
#include "direct/padded_input.h"

#include <string.h>

void fc_pad_rows(const fc_problem *p, const padded_input *g, const float *x, int64_t d, int64_t h0,
                 int64_t h1, float *dst) {
  const int64_t row_floats = g->sw * g->wq;
  for (int64_t h = h0; h < h1; h++, dst += row_floats) {
    const int64_t id = d - p->pad[0], ih = h - p->pad[1];
    if (id < 0 || id >= p->in[0] || ih < 0 || ih >= p->in[1]) {
      memset(dst, 0, (size_t)row_floats * sizeof(float));
      continue;
    }
    const float *row = x + (id * p->in[1] + ih) * p->in[2];
    for (int64_t phase = 0; phase < g->sw; phase++) {
      /* phase slot i holds input column i * sw + phase - pad: inside the row for i in [lo, hi) */
      float *out = dst + phase * g->wq;
      const int64_t first = phase - p->pad[2];
      int64_t lo, hi;
      fc_valid_outputs(p->in[2], g->wq, g->sw, first, &lo, &hi);
      memset(out, 0, (size_t)lo * sizeof(float));
      if (g->sw == 1) {
        memcpy(out + lo, row + lo + first, (size_t)(hi - lo) * sizeof(float));
      } else if (g->sw == 2) { /* a constant stride the compiler vectorises */
        const float *src = row + first;
        for (int64_t i = lo; i < hi; i++) out[i] = src[2 * i];
      } else {
        const float *src = row + lo * g->sw + first;
        for (int64_t i = lo; i < hi; i++, src += g->sw) out[i] = *src;
      }
      memset(out + hi, 0, (size_t)(g->wq - hi) * sizeof(float));
    }
  }
}

void fc_pad_channel(const fc_problem *p, const padded_input *g, const float *x, float *dst) {
  for (int64_t d = 0; d < g->dp; d++)
    fc_pad_rows(p, g, x, d, 0, g->hp, dst + d * g->hp * g->sw * g->wq);
}
