/* The table of one ISA's kernels. ISA code is only ever reached through it, so no instruction of
 * an ISA the CPU lacks can run. */
#ifndef FASTCONV_DISPATCH_KERNELS_H
#define FASTCONV_DISPATCH_KERNELS_H

#include <stdint.h>

#include "direct/conv_dense.h"
#include "direct/padded_input.h"
#include "gemm/gemm.h"
#include "winograd/winograd.h"

struct fc_conv_rows;
struct fc_conv_plane;

/* The planes of a depthwise 3x3 convolution (float32, 2-D, stride 1 or 2 in both dimensions,
 * dilation 1): plane p of y (out_h x out_w) = bias[p % channels] + the 3x3 weights of channel
 * p % channels over plane p of x (in_h x in_w), read with pad_top / pad_left leading zero rows /
 * columns and as many trailing ones as y needs; nothing outside y is written. bias: NULL or one
 * per channel; the kernel computes planes [first_plane, end_plane). The row kernel reads the
 * input in place and uses no `stage`. The call takes pointers and integers only, never a float: the
 * core is compiled without AVX, and a legacy SSE instruction run between two AVX kernel calls (a
 * float argument's movss) cost ~100 ns per call on the Zen 3 host. The kernel reads x from its
 * start up to the end of plane end_plane - 1 only. */
typedef struct fc_depthwise3x3 {
  int64_t in_h, in_w, out_h, out_w, stride, pad_top, pad_left, channels;
} fc_depthwise3x3;

/* Small planes go to the channel kernel instead: a group of FC_L planes transposed into a
 * zero-padded tile of pixel vectors (tile_h x tile_w), the output pixel vectors, and 10 weight
 * vectors (on AVX-512, stride-1 planes up to 16 wide skip the transposes). Its stage is
 * fc_depthwise3x3_channel_stage_floats per thread (sized for 16 lanes, the widest ISA), and threads
 * split the planes in multiples of 16. Measured on the Zen 5 host against the in-place row kernel
 * (one thread, us, channel / row): AVX-512 960 x 7 x 7 7.7 / 21, 576 x 14 x 14 17-19 / 21-22,
 * stride 2 to 7 wide 17 / 17.5, 144 x 20 x 20 15.6 / 11.5, stride 2 to 14 wide 11-12 / 6.4, 16 x
 * 16 3.3 / 2.9; AVX2 960 x 7 x 7 17.4 / 18.9, 14 x 14 ties, stride 2 to 7 wide 18.6 / 15.5, 20 x
 * 20 16.9 / 15.1. So stride-1 outputs at most 14 wide. The tile bound keeps tall narrow planes in
 * L1 / L2. */
static inline int64_t fc_depthwise3x3_tile_w(const fc_depthwise3x3 *d) {
  const int64_t need = (d->out_w - 1) * d->stride + 3, have = d->pad_left + d->in_w;
  return need > have ? need : have;
}
static inline int64_t fc_depthwise3x3_tile_h(const fc_depthwise3x3 *d) {
  const int64_t need = (d->out_h - 1) * d->stride + 3, have = d->pad_top + d->in_h;
  return need > have ? need : have;
}
static inline int fc_depthwise3x3_by_channels(const fc_depthwise3x3 *d) {
  return d->stride == 1 && d->out_w <= 14 &&
         fc_depthwise3x3_tile_h(d) * fc_depthwise3x3_tile_w(d) <= 48 * 48;
}
static inline int64_t fc_depthwise3x3_channel_stage_floats(const fc_depthwise3x3 *d) {
  const int64_t out_vectors = (d->out_h * d->out_w + 15) / 16 * 16;
  return (fc_depthwise3x3_tile_h(d) * fc_depthwise3x3_tile_w(d) + out_vectors + 10) * 16;
}

typedef struct fc_simd_kernels {
  const char *isa;
  const fc_gemm_ops *gemm_f32;
  const fc_dense_ops *dense_f32;
  fc_pack_b_fn pack_patches_f32; /* ctx: fc_conv_patches */
  void (*conv_rows_f32)(const struct fc_conv_rows *rows);
  void (*conv_plane_f32)(const struct fc_conv_plane *plane);
  int64_t plane_outputs_lanes; /* FC_PLANE_OUTPUTS_LANES (conv_plane.h) */
  /* one-shot dense layers of at most this many output positions run the implicit GEMM (0: none;
   * conv_direct_simd.c, small_map_gemm) */
  int64_t gemm_max_positions;
  void (*conv_depthwise3x3_f32)(const fc_depthwise3x3 *shape, const float *x, const float *weight,
                                const float *bias, float *y, int64_t first_plane, int64_t end_plane,
                                float *stage);
  void (*conv_depthwise3x3_channels_f32)(const fc_depthwise3x3 *shape, const float *x,
                                         const float *weight, const float *bias, float *y,
                                         int64_t first_plane, int64_t end_plane, float *stage);
  const fc_winograd_kernels *winograd;
  fc_pad_rows_fn pad_rows_f32;
} fc_simd_kernels;

/* The selected ISA's table, or NULL when only the portable engines run. */
const fc_simd_kernels *fc_simd_kernels_selected(void);

#endif
