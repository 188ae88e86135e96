/* Checking a layer's parameters and resolving one input's geometry into an fc_problem. Every size
 * product is checked for 64-bit overflow here, so the engines can index with plain int64_t. */
#include "api/problem.h"

#include <stddef.h>

/* Products of sizes must stay below this so that byte counts (x8) and index arithmetic with a few
 * terms added cannot wrap either. */
#define FC_MAX_ELEMENTS (INT64_C(1) << 58)

static int checked_mul(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0) return 0;
  if (__builtin_mul_overflow(a, b, out)) return 0;
  return *out < FC_MAX_ELEMENTS;
}

static int product(const int64_t *v, int n, int64_t *out) {
  int64_t p = 1;
  for (int i = 0; i < n; i++)
    if (!checked_mul(p, v[i], &p)) return 0;
  *out = p;
  return 1;
}

fc_status fc_params_check(const fc_conv_params *params) {
  if (!params) return FC_STATUS_INVALID_ARGUMENT;
  if (params->spatial_dims < 1 || params->spatial_dims > FC_MAX_SPATIAL_DIMS)
    return FC_STATUS_INVALID_ARGUMENT;
  if (params->dtype != FC_DTYPE_FLOAT32 && params->dtype != FC_DTYPE_FLOAT64)
    return FC_STATUS_INVALID_ARGUMENT;
  if (params->layout != FC_LAYOUT_CHANNELS_FIRST && params->layout != FC_LAYOUT_CHANNELS_LAST)
    return FC_STATUS_INVALID_ARGUMENT;
  if (params->transposed != 0 && params->transposed != 1) return FC_STATUS_INVALID_ARGUMENT;
  if (params->in_channels < 0 || params->out_channels < 0 || params->groups < 1)
    return FC_STATUS_INVALID_ARGUMENT;
  if (params->in_channels % params->groups || params->out_channels % params->groups)
    return FC_STATUS_INVALID_ARGUMENT;
  int leading = FC_MAX_SPATIAL_DIMS - params->spatial_dims;
  for (int i = 0; i < FC_MAX_SPATIAL_DIMS; i++) {
    if (params->kernel[i] < 1 || params->stride[i] < 1 || params->dilation[i] < 1 ||
        params->output_padding[i] < 0)
      return FC_STATUS_INVALID_ARGUMENT;
    /* Bounded like every size, so output sizes (and output_padding, below stride or dilation)
     * are sums of a few terms under 2^58 that cannot wrap. */
    if (params->kernel[i] >= FC_MAX_ELEMENTS || params->stride[i] >= FC_MAX_ELEMENTS ||
        params->dilation[i] >= FC_MAX_ELEMENTS)
      return FC_STATUS_SIZE_OVERFLOW;
    if (i < leading && (params->kernel[i] != 1 || params->stride[i] != 1 ||
                        params->dilation[i] != 1 || params->output_padding[i] != 0))
      return FC_STATUS_INVALID_ARGUMENT;
    if (!params->transposed && params->output_padding[i] != 0) return FC_STATUS_INVALID_ARGUMENT;
    /* torch's rule: output padding must be smaller than either the stride or the dilation */
    if (params->transposed && params->output_padding[i] >= params->stride[i] &&
        params->output_padding[i] >= params->dilation[i])
      return FC_STATUS_INVALID_ARGUMENT;
  }
  int64_t volume, weight_elements, span;
  if (!product(params->kernel, FC_MAX_SPATIAL_DIMS, &volume)) return FC_STATUS_SIZE_OVERFLOW;
  int64_t per_group = params->transposed ? params->out_channels / params->groups
                                         : params->in_channels / params->groups;
  int64_t rows = params->transposed ? params->in_channels : params->out_channels;
  if (!checked_mul(per_group, volume, &weight_elements) ||
      !checked_mul(weight_elements, rows, &weight_elements))
    return FC_STATUS_SIZE_OVERFLOW;
  for (int i = 0; i < FC_MAX_SPATIAL_DIMS; i++)
    if (!checked_mul(params->kernel[i] - 1, params->dilation[i], &span))
      return FC_STATUS_SIZE_OVERFLOW;
  return FC_STATUS_OK;
}

static fc_status output_sizes(const fc_conv_params *params, const fc_input_geometry *geometry,
                              int64_t out[3]) {
  int leading = FC_MAX_SPATIAL_DIMS - params->spatial_dims;
  for (int i = 0; i < FC_MAX_SPATIAL_DIMS; i++) {
    int64_t in = geometry->in_size[i], pb = geometry->pad_begin[i], pe = geometry->pad_end[i];
    if (in < 1 || pb < 0 || pe < 0 || in >= FC_MAX_ELEMENTS || pb >= FC_MAX_ELEMENTS ||
        pe >= FC_MAX_ELEMENTS)
      return FC_STATUS_INVALID_ARGUMENT;
    if (i < leading && (in != 1 || pb != 0 || pe != 0)) return FC_STATUS_INVALID_ARGUMENT;
    int64_t span = (params->kernel[i] - 1) * params->dilation[i] + 1; /* checked in params */
    if (params->transposed) {
      int64_t grown;
      if (!checked_mul(in - 1, params->stride[i], &grown)) return FC_STATUS_SIZE_OVERFLOW;
      out[i] = grown + span + params->output_padding[i] - pb - pe;
    } else {
      out[i] = (in + pb + pe - span) / params->stride[i] + 1;
      if (in + pb + pe < span) return FC_STATUS_INVALID_ARGUMENT;
    }
    if (out[i] < 1) return FC_STATUS_INVALID_ARGUMENT;
  }
  return FC_STATUS_OK;
}

fc_status fc_output_size(const fc_conv_params *params, const fc_input_geometry *geometry,
                         int64_t out_size[FC_MAX_SPATIAL_DIMS]) {
  fc_status status = fc_params_check(params);
  if (status != FC_STATUS_OK) return status;
  if (!geometry || !out_size) return FC_STATUS_INVALID_ARGUMENT;
  return output_sizes(params, geometry, out_size);
}

fc_status fc_problem_make(const fc_conv_params *params, const fc_input_geometry *geometry,
                          fc_problem *p) {
  fc_status status = fc_output_size(params, geometry, p->out);
  if (status != FC_STATUS_OK) return status;
  if (geometry->batch < 0) return FC_STATUS_INVALID_ARGUMENT;
  p->transposed = params->transposed;
  p->dtype = params->dtype;
  p->layout = params->layout;
  p->batch = geometry->batch;
  p->in_channels = params->in_channels;
  p->out_channels = params->out_channels;
  p->groups = params->groups;
  p->in_per_group = params->in_channels / params->groups;
  p->out_per_group = params->out_channels / params->groups;
  for (int i = 0; i < FC_MAX_SPATIAL_DIMS; i++) {
    p->in[i] = geometry->in_size[i];
    p->kernel[i] = params->kernel[i];
    p->stride[i] = params->stride[i];
    p->dilation[i] = params->dilation[i];
    p->pad[i] = geometry->pad_begin[i];
  }
  int64_t elements;
  if (!product(p->in, 3, &p->in_volume) || !product(p->out, 3, &p->out_volume) ||
      !product(p->kernel, 3, &p->kernel_volume))
    return FC_STATUS_SIZE_OVERFLOW;
  if (!checked_mul(p->in_volume, p->in_channels, &elements) ||
      !checked_mul(elements, p->batch, &elements) ||
      !checked_mul(p->out_volume, p->out_channels, &elements) ||
      !checked_mul(elements, p->batch, &elements))
    return FC_STATUS_SIZE_OVERFLOW;
  return FC_STATUS_OK;
}

fc_strides fc_activation_strides(fc_layout layout, int64_t channels, const int64_t size[3]) {
  fc_strides s;
  int64_t volume = size[0] * size[1] * size[2];
  if (layout == FC_LAYOUT_CHANNELS_FIRST) {
    s.w = 1;
    s.h = size[2];
    s.d = size[1] * size[2];
    s.c = volume;
  } else {
    s.c = 1;
    s.w = channels;
    s.h = channels * size[2];
    s.d = channels * size[1] * size[2];
  }
  s.n = channels * volume;
  return s;
}
