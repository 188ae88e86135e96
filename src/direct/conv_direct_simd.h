/* The direct engine's SIMD path; conv_direct.c chooses between it and the portable path. */
#ifndef FASTCONV_DIRECT_CONV_DIRECT_SIMD_H
#define FASTCONV_DIRECT_CONV_DIRECT_SIMD_H

#include "api/engine.h"
#include "dispatch/kernels.h"

/* Packs the weights for the selected ISA's GEMM; leaves *state NULL where the GEMM will not run
 * (no ISA selected, float64, layers for the row or depthwise kernels). */
fc_status fc_direct_simd_prepare(const fc_conv_params *params, const void *weight, int one_shot,
                                 void **state, int64_t *bytes);
void fc_direct_simd_release(void *state);
/* Whether the SIMD path beats the portable one on this problem. */
int fc_direct_simd_wanted(const fc_problem *p);
/* Whether a one-shot call runs the layer as the small-map implicit GEMM of whole panels, one
 * sliver of positions and one column (gemm_f32.c, driver_one_sliver_and_column): a 7x7 map on
 * AVX-512, near the FMA peak with the weights read in place. */
int fc_direct_simd_one_sliver_map(const fc_problem *p);
fc_status fc_direct_simd_execute(const fc_engine_call *call, const fc_simd_kernels *kernels);

/* The portable path (src/ref), for every problem. */
fc_status fc_direct_ref_execute(const fc_engine_call *call);

#endif
