/* Implicit-GEMM convolution: the patches of the input, read as the B matrix of a GEMM without
 * ever being written out whole.
 *
 * B[r][q]: row r = (input channel, kd, kh, kw) in the weights' order, column q = an output position
 * (od, oh, ow). The input is first copied, per channel, into a zero-padded block split into
 * `stride_w` phases along the width, [Dp][Hp][stride_w][Wq], so that for any tap the inputs of
 * consecutive output columns are consecutive floats: B[r][q] = padded[row_offset[r] + base(q)]
 * with base(q) = ((od * sd) * Hp + oh * sh) * stride_w * Wq + ow. */
#ifndef FASTCONV_DIRECT_CONV_PATCHES_H
#define FASTCONV_DIRECT_CONV_PATCHES_H

#include <stddef.h>
#include <stdint.h>

/* Floats of readable slack the packer needs after the padded block (a vector of the widest ISA
 * may start at the last element). */
#define FC_PATCHES_SLACK 64

typedef struct fc_conv_patches {
  const float *padded;       /* the first channel of the group, padded and phase-split */
  const int64_t *row_offset; /* per row r of B */
  int64_t out_h, out_w;      /* the output grid the columns walk */
  int64_t step_d, step_h;    /* padded floats between outputs one apart in depth / height */
  int64_t q0;                /* the output position of column 0 */
} fc_conv_patches;

/* One output row run of a thin group (depthwise, channel multiplier, a few channels per group):
 * y[o][j] = bias[o] + sum over ic < icg and taps of w[o][ic][tap] * padded[ic * plane +
 * tap_offset[tap] + base + j], for o < out_count output channels and j < count. */
typedef struct fc_conv_rows {
  const float *padded;       /* the group's first input channel, padded and phase-split */
  const int64_t *tap_offset; /* per tap (kd, kh, kw), within one channel */
  int64_t plane, in_per_group, taps;
  int64_t base, count; /* the run: its first position in the padded block, its length */
  const float *weight; /* w[o][ic][tap] of the first output channel */
  const float *bias;   /* NULL, or the first output channel's */
  int64_t out_count;   /* 1 to FC_ROWS_MAX_OUT */
  float *y;            /* the first output channel's run */
  int64_t y_channel_stride;
} fc_conv_rows;

#define FC_ROWS_MAX_OUT 4

#endif
