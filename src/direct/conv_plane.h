/* One output channel's band of rows of a thin group, computed R output rows x V output vectors at
 * a time (conv_plane_f32.c). */
#ifndef FASTCONV_DIRECT_CONV_PLANE_H
#define FASTCONV_DIRECT_CONV_PLANE_H

#include <stdint.h>

/* Blocks share input rows between up to this many output rows. */
#define FC_PLANE_MAX_ROWS 4

/* y[r][j] = bias + sum over ic < channels, kh < kh_count and kw < kw_count (kw < kw_last in the
 * last kernel row) of
 * weight[(ic * kh_count + kh) * kw_count + kw] *
 * src[ic * channel_stride + r * row_step + kh * kh_step + col_offset[kw] + j]
 * for r < rows and j < cols; src points at the padded input of output (0, 0).
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
  const float *bias; /* NULL, or the output channel's */
  float *y;
  int64_t y_row_stride;
} fc_conv_plane;

#endif
