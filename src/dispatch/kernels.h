/* The table of one ISA's kernels. ISA code is only ever reached through it, so no instruction of
 * an ISA the CPU lacks can run. */
#ifndef FASTCONV_DISPATCH_KERNELS_H
#define FASTCONV_DISPATCH_KERNELS_H

#include <stdint.h>

#include "gemm/gemm.h"
#include "winograd/winograd.h"

struct fc_conv_rows;
struct fc_conv_plane;

/* The planes of a depthwise 3x3 convolution (float32, 2-D, stride 1 or 2 in both dimensions,
 * dilation 1): y = bias + the 3x3 weights over an in_h x in_w plane x, read in place, with
 * pad_top / pad_left leading zero rows / columns and as many trailing ones as the out_h x out_w
 * plane y needs; nothing outside y is written. bias: NULL, or the plane's. The per-plane values
 * are pointer arguments, never a float or a struct built per plane: the core is compiled without
 * AVX, and a legacy SSE instruction run between two AVX kernel calls (a float argument's movss)
 * cost ~100 ns per call on the Zen 3 host, which tripled the time of 7 x 7 planes. */
typedef struct fc_depthwise3x3 {
  const float *zero_row; /* in_w zeros, read in place of the rows in the padding */
  int64_t in_h, in_w, out_h, out_w, stride, pad_top, pad_left;
} fc_depthwise3x3;

typedef struct fc_simd_kernels {
  const char *isa;
  const fc_gemm_ops *gemm_f32;
  fc_pack_b_fn pack_patches_f32; /* ctx: fc_conv_patches */
  void (*conv_rows_f32)(const struct fc_conv_rows *rows);
  void (*conv_plane_f32)(const struct fc_conv_plane *plane);
  void (*conv_depthwise3x3_f32)(const fc_depthwise3x3 *shape, const float *x, const float *weight9,
                                const float *bias, float *y);
  const fc_winograd_kernels *winograd;
} fc_simd_kernels;

/* The selected ISA's table, or NULL when only the portable engines run. */
const fc_simd_kernels *fc_simd_kernels_selected(void);

#endif
