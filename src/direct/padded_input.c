/* The zero-padded, stride-phase-split copy of one input channel (padded_input.h). */
#include "direct/padded_input.h"

#include <string.h>

void fc_pad_rows(const fc_problem *p, const padded_input *g, const float *x, int64_t d, int64_t h0,
                 int64_t h1, float *dst) {
  const int64_t row_floats = g->sw * g->wq, id = d - p->pad[0];
  /* Phase by phase, so each phase's valid slots are found once (two divisions): a Winograd tile
   * block pads a few short rows per channel, where per-row divisions and memset calls cost as
   * much as the copy (resnet50.l3.3x3: 14-float rows). */
  for (int64_t phase = 0; phase < g->sw; phase++) {
    /* phase slot i holds input column i * sw + phase - pad: inside the row for i in [lo, hi) */
    const int64_t first = phase - p->pad[2];
    int64_t lo, hi;
    fc_valid_outputs(p->in[2], g->wq, g->sw, first, &lo, &hi);
    float *out = dst + phase * g->wq;
    for (int64_t h = h0; h < h1; h++, out += row_floats) {
      const int64_t ih = h - p->pad[1];
      if (id < 0 || id >= p->in[0] || ih < 0 || ih >= p->in[1]) {
        memset(out, 0, (size_t)g->wq * sizeof(float));
        continue;
      }
      const float *row = x + (id * p->in[1] + ih) * p->in[2];
      for (int64_t i = 0; i < lo; i++) out[i] = 0.0f;
      if (g->sw == 1) {
        memcpy(out + lo, row + lo + first, (size_t)(hi - lo) * sizeof(float));
      } else if (g->sw == 2) { /* a constant stride the compiler vectorises */
        const float *src = row + first;
        for (int64_t i = lo; i < hi; i++) out[i] = src[2 * i];
      } else {
        const float *src = row + lo * g->sw + first;
        for (int64_t i = lo; i < hi; i++, src += g->sw) out[i] = *src;
      }
      for (int64_t i = hi; i < g->wq; i++) out[i] = 0.0f;
    }
  }
}

void fc_pad_channel(const fc_problem *p, const padded_input *g, const float *x, float *dst) {
  for (int64_t d = 0; d < g->dp; d++)
    fc_pad_rows(p, g, x, d, 0, g->hp, dst + d * g->hp * g->sw * g->wq);
}
