/* The resolved problem an engine computes: plan parameters plus one input's geometry, always in
 * three spatial dimensions (depth, height, width), with output sizes computed and checked. */
#ifndef FASTCONV_API_PROBLEM_H
#define FASTCONV_API_PROBLEM_H

#include "fastconv/fastconv.h"

typedef struct fc_problem {
  int transposed;
  fc_dtype dtype;
  fc_layout layout;
  int64_t batch, in_channels, out_channels, groups;
  int64_t in_per_group, out_per_group;
  int64_t in[3], out[3], kernel[3], stride[3], dilation[3], pad[3]; /* pad: the leading padding */
  int64_t in_volume, out_volume, kernel_volume;                     /* spatial element counts */
} fc_problem;

/* Element strides of an activation tensor (batch, channel, depth, height, width). */
typedef struct fc_strides {
  int64_t n, c, d, h, w;
} fc_strides;

fc_status fc_params_check(const fc_conv_params *params);
fc_status fc_problem_make(const fc_conv_params *params, const fc_input_geometry *geometry,
                          fc_problem *problem);
/* Multiply-adds x 2 of the direct algorithm: every (input position, tap) of a transposed layer,
 * every (output position, tap) of a convolution, times in_per_group x out_channels. */
static inline double fc_problem_flops(const fc_problem *p) {
  const double positions = p->transposed ? (double)p->in_volume : (double)p->out_volume;
  return 2.0 * (double)p->batch * positions * (double)p->in_per_group * (double)p->out_channels *
         (double)p->kernel_volume;
}

fc_strides fc_activation_strides(fc_layout layout, int64_t channels, const int64_t size[3]);

/* Integer division rounding toward minus / plus infinity, for any sign of `a` (b > 0). */
static inline int64_t fc_div_floor(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
static inline int64_t fc_div_ceil(int64_t a, int64_t b) { return -fc_div_floor(-a, b); }
static inline int64_t fc_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t fc_max(int64_t a, int64_t b) { return a > b ? a : b; }
/* x rounded up to a multiple of m (m > 0), and the greatest common divisor (a, b >= 0). */
static inline int64_t fc_round_up_to(int64_t x, int64_t m) { return fc_div_ceil(x, m) * m; }
static inline int64_t fc_gcd(int64_t a, int64_t b) {
  while (b) {
    const int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* The range [lo, hi) of output positions o along one axis whose input position
 * o * stride + offset (offset = tap * dilation - pad) lies inside [0, in_size), clamped to
 * [0, out_size); empty (lo == hi) when there is none. */
static inline void fc_valid_outputs(int64_t in_size, int64_t out_size, int64_t stride,
                                    int64_t offset, int64_t *lo, int64_t *hi) {
  *lo = fc_max(0, fc_div_ceil(-offset, stride));
  *hi = fc_min(out_size, fc_div_floor(in_size - 1 - offset, stride) + 1);
  if (*hi < *lo) *hi = *lo;
}

#endif
