/* One output channel's plane (or band of rows) of a thin group, computed R output rows x V output
 * vectors at a time (conv_plane_f32.c). */
#ifndef FASTCONV_DIRECT_CONV_PLANE_H
#define FASTCONV_DIRECT_CONV_PLANE_H

#include <stdint.h>

/* Blocks share input rows between up to this many output rows. */
#define FC_PLANE_MAX_ROWS 4

/* y[r][j] = bias + sum over ic < channels, kernel rows k < kh_count and kw < kw_count of
 * weight_rows[ic * weight_channel_stride + k * kw_count + kw] *
 * src[ic * channel_stride + r * row_step + row_offset[k] + col_offset[kw] + j]
 * for r < rows and j < cols; src points at the padded input of output (0, 0).
 * Kernel rows are the (kd, kh) pairs. When shared_rows > 1, output rows one apart read kernel rows
 * one apart (row_step == row_offset[1] - row_offset[0], a 2-D kernel with stride_h ==
 * dilation_h): row_offset then holds kh_count + shared_rows - 1 entries in steps of row_step, and
 * weight_rows has shared_rows - 1 rows of zeros before and after each channel's kernel rows.
 * Reads may run up to one vector past a row's last input (into the padded block's next row or
 * slack); nothing outside the rows x cols outputs is written. */
typedef struct fc_conv_plane {
  const float *src;
  const int64_t *row_offset, *col_offset;
  int64_t kh_count, kw_count, channels, channel_stride;
  const float *weight_rows; /* kernel row 0 of channel 0 */
  int64_t weight_channel_stride;
  int64_t rows, cols, row_step, shared_rows;
  const float *bias; /* NULL, or the output channel's */
  float *y;
  int64_t y_row_stride;
} fc_conv_plane;

#endif
