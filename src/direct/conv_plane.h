/* A band of rows of one to FC_PLANE_MAX_OUT output channels of a thin group: one channel computed
 * R output rows x V output vectors at a time, several O channels x V vectors along the band's rows
 * (conv_plane_f32.c). */
#ifndef FASTCONV_DIRECT_CONV_PLANE_H
#define FASTCONV_DIRECT_CONV_PLANE_H

#include <stdint.h>

/* Blocks share input rows between up to this many output rows. */
#define FC_PLANE_MAX_ROWS 4
/* Output channels one call computes at most. */
#define FC_PLANE_MAX_OUT 4
/* Output vectors a block of several output channels computes at most. */
#define FC_PLANE_LIST 10
/* Per ISA: the vector registers, and the lanes of the vectors of rows worth computing several
 * output channels at a time (0: never; fc_simd_kernels' plane_outputs_lanes, forward_planes.c). On
 * AVX2, 16 registers hold 3 x 3 accumulators, and resnet50.conv1 ran 3% slower than on the dense
 * kernel (4 vectors spilled: 1.7x slower). */
#ifdef FC_VEC_BYTES
#if FC_VEC_BYTES == 64
#define FC_PLANE_REGISTERS 32
#define FC_PLANE_OUTPUTS_LANES (FC_VEC_BYTES / 4)
#else
#define FC_PLANE_REGISTERS 16
#define FC_PLANE_OUTPUTS_LANES 0
#endif
#endif

/* y[o * y_channel_stride + r * y_row_stride + j] = bias[o] + sum over ic < channels, kh <
 * kh_count and kw < kw_count (kw < kw_last in the last kernel row) of
 * weight[((ic * kh_count + kh) * kw_count + kw) * outputs + o] *
 * src[ic * channel_stride + r * row_step + kh * kh_step + col_offset[kw] + j]
 * for o < outputs, r < rows and j < cols; src points at the padded input of output (0, 0). The
 * weights of the outputs of one tap are adjacent, so one pointer reaches them all.
 * shared_rows (1 to FC_PLANE_MAX_ROWS, at most kh_count; above 1 only when row_step == kh_step):
 * how many output rows a block computes from one pass over its input rows.
 * contiguous_taps: one kernel row whose taps are consecutive floats (col_offset[kw] = kw), which
 * the kernel may fold (conv_plane_f32.c).
 * Reads may run up to one vector past a row's last input (into the next row or slack); nothing
 * outside the rows x cols outputs is written. */
typedef struct fc_conv_plane {
  const float *src;
  const int64_t *col_offset;
  int64_t kh_count, kw_count, kw_last, kh_step, channels, channel_stride;
  const float *weight;
  int64_t rows, cols, row_step, shared_rows, contiguous_taps;
  int64_t outputs; /* 1 to FC_PLANE_MAX_OUT */
  /* outputs > 1: the offsets of the channels x kh_count x kw_count taps (kw_last == kw_count) in
   * the weights' order, ic * channel_stride + kh * kh_step + col_offset[kw] */
  const int64_t *tap_offset;
  const float *bias; /* NULL, or the first output channel's */
  float *y;
  int64_t y_row_stride, y_channel_stride;
} fc_conv_plane;

#endif
