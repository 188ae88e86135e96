/* One ISA's kernel table; compiled once per ISA, like the kernels it lists. */
#include "direct/conv_patches.h"
#include "direct/conv_plane.h"
#include "dispatch/kernels.h"
#include "simd/simd.h"

extern const fc_gemm_ops FC_SYM(fc_gemm_f32_ops);
extern const fc_dense_ops FC_SYM(fc_dense_f32_ops);
void FC_SYM(fc_conv_pack_patches_f32)(const void *ctx, size_t pc, size_t kc, size_t jr, size_t n,
                                      size_t nrp, float *dst);
void FC_SYM(fc_conv_rows_f32)(const fc_conv_rows *rows);
void FC_SYM(fc_conv_plane_f32)(const fc_conv_plane *plane);
void FC_SYM(fc_conv_depthwise3x3_f32)(const fc_depthwise3x3 *shape, const float *x,
                                      const float *weight, const float *bias, float *y,
                                      int64_t first_plane, int64_t end_plane, float *stage);
void FC_SYM(fc_conv_depthwise3x3_channels_f32)(const fc_depthwise3x3 *shape, const float *x,
                                               const float *weight, const float *bias, float *y,
                                               int64_t first_plane, int64_t end_plane,
                                               float *stage);
extern const fc_winograd_kernels FC_SYM(fc_winograd_kernels);
void FC_SYM(fc_pad_rows_f32)(const fc_problem *p, const padded_input *g, const float *x, int64_t d,
                             int64_t h0, int64_t h1, float *dst);

/* Measured on AVX-512 only: on AVX2 the GEMM ran resnet50.l4.3x3 1.71 -> 2.31 times ORT's time
 * (conv_direct_simd.c, small_map_gemm). */
#if FC_VEC_BYTES == 64
#define GEMM_MAX_POSITIONS 64
#else
#define GEMM_MAX_POSITIONS 0
#endif

const fc_simd_kernels FC_SYM(fc_simd_kernels) = {
    .isa = FC_STR_ISA,
    .gemm_f32 = &FC_SYM(fc_gemm_f32_ops),
    .dense_f32 = &FC_SYM(fc_dense_f32_ops),
    .pack_patches_f32 = FC_SYM(fc_conv_pack_patches_f32),
    .conv_rows_f32 = FC_SYM(fc_conv_rows_f32),
    .conv_plane_f32 = FC_SYM(fc_conv_plane_f32),
    .plane_outputs_lanes = FC_PLANE_OUTPUTS_LANES,
    .gemm_max_positions = GEMM_MAX_POSITIONS,
    .conv_depthwise3x3_f32 = FC_SYM(fc_conv_depthwise3x3_f32),
    .conv_depthwise3x3_channels_f32 = FC_SYM(fc_conv_depthwise3x3_channels_f32),
    .winograd = &FC_SYM(fc_winograd_kernels),
    .pad_rows_f32 = FC_SYM(fc_pad_rows_f32),
};
