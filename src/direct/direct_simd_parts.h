/* What the parts of the direct engine's SIMD path share: conv_direct_simd.c (packing, implicit
 * GEMM, transposed layers, dispatch), forward_dense.c, forward_depthwise.c and forward_planes.c. */
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

/* The dense kernel (forward_dense.c). */
/* Where the dense kernel's output goes: the first output of image 0, channel 0, and the strides
 * (floats) between images, channels, depth planes, rows and columns. */
typedef struct dense_target {
  float *y;
  int64_t image, channel, plane, row, col;
} dense_target;

/* The dense kernel's operands: the convolution p (stride-1 phase of a transposed layer, or the
 * layer), its weights raw (w[oc][icg][taps]) or packed (NULL: packed here), its bias, input and
 * output. */
typedef struct dense_operands {
  const fc_problem *p;
  const float *raw, *packed, *bias, *x;
  dense_target out;
} dense_operands;

/* Floats of one group's packed weights, and panel j of every group's w[ocg][icg][taps] (group
 * j / panels) packed into the dense kernel's layout (conv_dense.h), j < groups * ceil(ocg / NR). */
int64_t fc_dense_group_floats(const fc_dense_ops *ops, int64_t ocg, int64_t k);
void fc_pack_dense_panel(const fc_dense_ops *ops, int64_t ocg, int64_t icg, int64_t taps,
                         const float *w, int64_t j, float *dst);
/* The dense kernel on `count` convolutions of one input (forward_dense.c: items, bands, threads).
 */
fc_status fc_forward_dense(const dense_operands *op, int64_t count, const fc_simd_kernels *kernels,
                           int threads);

/* Depthwise 3x3 layers (forward_depthwise.c). */
int fc_depthwise3x3_layer(const fc_problem *p);
fc_status fc_forward_depthwise3x3(const fc_engine_call *call, const fc_simd_kernels *kernels,
                                  const float *x, float *y);

/* Layers of one output channel per group (forward_planes.c). */
int fc_plane_layer(const fc_problem *p, const fc_simd_kernels *kernels);
fc_status fc_forward_planes(const fc_engine_call *call, const fc_simd_kernels *kernels,
                            const float *x, float *y);

#endif
