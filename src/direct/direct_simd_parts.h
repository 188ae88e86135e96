/* What the parts of the direct engine's SIMD path share: conv_direct_simd.c (packing, the dense
 * kernel, implicit GEMM, transposed layers, dispatch), forward_depthwise.c and forward_planes.c. */
#ifndef FASTCONV_DIRECT_DIRECT_SIMD_PARTS_H
#define FASTCONV_DIRECT_DIRECT_SIMD_PARTS_H

#include "api/engine.h"
#include "api/scratch.h"
#include "dispatch/kernels.h"

/* Items per thread when work must be cut for the threads: enough that dynamic scheduling evens
 * out ragged items. Cutting costs: position chunks each re-read the weights, row blocks each
 * re-pack the patches. */
#define FC_ITEMS_PER_THREAD 3

static inline float *scratch_floats(int64_t count) {
  return fc_scratch_get((size_t)fc_max(count, 1) * sizeof(float));
}

/* Depthwise 3x3 layers (forward_depthwise.c). */
int fc_depthwise3x3_layer(const fc_problem *p);
fc_status fc_forward_depthwise3x3(const fc_engine_call *call, const fc_simd_kernels *kernels,
                                  const float *x, float *y);

/* Layers of one output channel per group (forward_planes.c). */
int fc_plane_layer(const fc_problem *p);
fc_status fc_forward_planes(const fc_engine_call *call, const fc_simd_kernels *kernels,
                            const float *x, float *y);

#endif
