/* The direct engine's depthwise 3x3 layers: the row kernel (input read in place), or the channel
 * kernel for small planes, over runs of whole planes. */
#include <omp.h>

#include "direct/direct_simd_parts.h"

/* Depthwise 3x3 in two dimensions, stride 1 or 2, dilation 1: the depthwise kernel reads the input
 * in place, zeroing the lanes in the padding, so no padded copy is built. */
int fc_depthwise3x3_layer(const fc_problem *p) {
  return p->in_per_group == 1 && p->out_per_group == 1 && p->kernel[0] == 1 && p->in[0] == 1 &&
         p->out[0] == 1 && p->pad[0] == 0 && p->kernel[1] == 3 && p->kernel[2] == 3 &&
         p->dilation[1] == 1 && p->dilation[2] == 1 && p->stride[1] == p->stride[2] &&
         (p->stride[1] == 1 || p->stride[1] == 2);
}

/* Work items are runs of whole (image, channel) planes: the kernels store partial vectors whole
 * into the plane's later rows or the next planes. The channel kernel's items are runs of 16 planes,
 * its groups of FC_L planes. Each thread has its own part of one scratch block (the row kernel's
 * zero row, the channel kernel's tiles). Items are taken dynamically, so a thread the loaded
 * machine starts late leaves its share to the others. */
fc_status fc_forward_depthwise3x3(const fc_engine_call *call, const fc_simd_kernels *kernels,
                                  const float *x, float *y) {
  const fc_problem *p = call->problem;
  const fc_depthwise3x3 shape = {p->in[1],     p->in[2],  p->out[1], p->out[2],
                                 p->stride[1], p->pad[1], p->pad[2], p->in_channels};
  const int by_channels = fc_depthwise3x3_by_channels(&shape);
  const int64_t planes = p->batch * p->in_channels, unit = by_channels ? 16 : 1;
  const int64_t units = fc_div_ceil(planes, unit);
  const int threads = (int)fc_min(call->num_threads, units);
  const int64_t items = threads > 1 ? fc_min(units, threads * FC_ITEMS_PER_THREAD) : 1;
  /* the channel kernel's tiles; the row kernel reads the input in place */
  const int64_t stage_floats = by_channels ? fc_depthwise3x3_channel_stage_floats(&shape) : 0;
  float *stage = scratch_floats(stage_floats * threads);
  if (!stage) return FC_STATUS_OUT_OF_MEMORY;
  const float *weight = call->weight, *bias = call->bias;
  void (*const kernel)(const fc_depthwise3x3 *, const float *, const float *, const float *,
                       float *, int64_t, int64_t, float *) =
      by_channels ? kernels->conv_depthwise3x3_channels_f32 : kernels->conv_depthwise3x3_f32;
  /* One thread stays out of OpenMP altogether: libgomp runs even a parallel region whose if()
   * fails as a team of one, and its loop and region ends each made a futex system call. */
  if (threads == 1)
    kernel(&shape, x, weight, bias, y, 0, planes, stage);
  else {
#pragma omp parallel num_threads(threads)
    {
      float *own_stage = stage + omp_get_thread_num() * stage_floats;
#pragma omp for schedule(dynamic, 1)
      for (int64_t item = 0; item < items; item++)
        kernel(&shape, x, weight, bias, y, fc_min(planes, units * item / items * unit),
               fc_min(planes, units * (item + 1) / items * unit), own_stage);
    }
  }
  fc_scratch_put(stage);
  return FC_STATUS_OK;
}
