/* One input channel copied into a zero-padded block split into `sw` phases along the width,
 * [dp][hp][sw][wq]: padded (d, h, w) holds input (d - pad[0], h - pad[1], w - pad[2]) and sits at
 * ((d * hp + h) * sw + w % sw) * wq + w / sw, so the inputs of consecutive outputs of stride sw are
 * consecutive floats. The direct engine's implicit GEMM and row kernels read it, and Winograd reads
 * it with sw = m * dilation (tile column c of consecutive tiles is one vector). */
#ifndef FASTCONV_DIRECT_PADDED_INPUT_H
#define FASTCONV_DIRECT_PADDED_INPUT_H

#include "api/problem.h"

/* Where column w of a row split into sw phases of wq floats sits in it: phase w % sw, slot w / sw
 * (the padded block above, and the bands of the dense and plane kernels). */
static inline int64_t fc_phase_split_column(int64_t w, int64_t sw, int64_t wq) {
  return w % sw * wq + w / sw;
}

typedef struct padded_input {
  int64_t hp, sw, wq, plane; /* padded height, width phases, phase width, floats per channel */
  int64_t dp;
} padded_input;

/* Writes padded rows [h0, h1) of padded depth d (row h0 at dst), x being the channel's dense
 * [in depth][in height][in width]. An ISA kernel (the table's pad_rows_f32): the phase split
 * vectorises into that ISA's shuffles. */
typedef void (*fc_pad_rows_fn)(const fc_problem *p, const padded_input *g, const float *x,
                               int64_t d, int64_t h0, int64_t h1, float *dst);

/* Writes the g->plane floats of one channel. */
static inline void fc_pad_channel(fc_pad_rows_fn pad_rows, const fc_problem *p,
                                  const padded_input *g, const float *x, float *dst) {
  for (int64_t d = 0; d < g->dp; d++)
    pad_rows(p, g, x, d, 0, g->hp, dst + d * g->hp * g->sw * g->wq);
}

#endif
