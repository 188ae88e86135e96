/* Transposed convolution as one ordinary convolution per output phase (transposed_phases.h). */
#include "direct/transposed_phases.h"

#include <stdlib.h>

static int64_t gcd(int64_t a, int64_t b) {
  while (b) {
    const int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* Tap class c of one axis: its first tap, its tap count and the step between its taps. */
typedef struct axis_class {
  int64_t first, count, step;
} axis_class;

static axis_class class_of(int64_t kernel, int64_t stride, int64_t dilation, int64_t c) {
  axis_class a = {0, 0, stride / gcd(stride, dilation)};
  while (a.first < kernel && a.first < a.step && a.first * dilation % stride != c) a.first++;
  if (a.first < kernel && a.first < a.step) a.count = (kernel - 1 - a.first) / a.step + 1;
  return a;
}

int64_t fc_phase_count(const int64_t stride[3]) { return stride[0] * stride[1] * stride[2]; }

/* The per-axis classes of flattened class index cls. */
static void classes_of(const int64_t kernel[3], const int64_t stride[3], const int64_t dilation[3],
                       int64_t cls, axis_class a[3]) {
  for (int i = 2; i >= 0; i--) {
    a[i] = class_of(kernel[i], stride[i], dilation[i], cls % stride[i]);
    cls /= stride[i];
  }
}

void fc_tap_class_shape(const int64_t kernel[3], const int64_t stride[3], const int64_t dilation[3],
                        int64_t cls, int64_t shape[3]) {
  axis_class a[3];
  classes_of(kernel, stride, dilation, cls, a);
  for (int i = 0; i < 3; i++) shape[i] = a[i].count;
}

int64_t fc_tap_class_group_floats(const int64_t kernel[3], const int64_t stride[3],
                                  const int64_t dilation[3], int64_t cls, int64_t icg, int64_t ocg,
                                  int64_t nr) {
  int64_t shape[3];
  fc_tap_class_shape(kernel, stride, dilation, cls, shape);
  return fc_div_ceil(ocg, nr) * nr * icg * shape[0] * shape[1] * shape[2];
}

int64_t fc_tap_class_offset(const int64_t kernel[3], const int64_t stride[3],
                            const int64_t dilation[3], int64_t cls, int64_t groups, int64_t icg,
                            int64_t ocg, int64_t nr) {
  int64_t offset = 0;
  for (int64_t c = 0; c < cls; c++)
    offset += groups * fc_tap_class_group_floats(kernel, stride, dilation, c, icg, ocg, nr);
  return offset;
}

int64_t fc_tap_class_pack_items(int64_t groups, int64_t icg) {
  return groups * fc_div_ceil(icg, FC_PACK_CHANNELS);
}

int fc_pack_tap_classes(const int64_t kernel[3], const int64_t stride[3], const int64_t dilation[3],
                        int64_t groups, int64_t icg, int64_t ocg, const fc_dense_ops *ops,
                        const float *w, int64_t j, float *dst) {
  const int64_t nr = ops->nr, blocks = fc_div_ceil(icg, FC_PACK_CHANNELS), g = j / blocks;
  const int64_t ic0 = j % blocks * FC_PACK_CHANNELS, ic1 = fc_min(icg, ic0 + FC_PACK_CHANNELS);
  const int64_t kvol = kernel[0] * kernel[1] * kernel[2];
  /* Where tap t goes: its class's first panel of group g (at[t]), the class's taps (taps_of[t])
   * and its reversed place among them (sub[t]; panels taps_of[t] * icg * nr apart) */
  int64_t *at = malloc(4 * (size_t)kvol * sizeof *at), *taps_of = at + kvol, *sub = taps_of + kvol,
          *column_at = sub + kvol;
  if (!at) return 1;
  for (int64_t t = 0; t < kvol; t++) {
    const int64_t k[3] = {t / (kernel[1] * kernel[2]), t / kernel[2] % kernel[1], t % kernel[2]};
    int64_t cls = 0, sub_tap = 0, taps = 1;
    for (int i = 0; i < 3; i++) {
      const int64_t c = k[i] * dilation[i] % stride[i];
      const axis_class a = class_of(kernel[i], stride[i], dilation[i], c);
      cls = cls * stride[i] + c;
      sub_tap = sub_tap * a.count + (a.count - 1 - (k[i] - a.first) / a.step);
      taps *= a.count;
    }
    at[t] = fc_tap_class_offset(kernel, stride, dilation, cls, groups, icg, ocg, nr) +
            g * fc_tap_class_group_floats(kernel, stride, dilation, cls, icg, ocg, nr);
    taps_of[t] = taps;
    sub[t] = sub_tap;
  }
  /* The source in memory order (w[ic][oc][taps]: the whole weights stream through once): each
   * run w[ic][o0 .. o0 + nr][taps] transposed by the dense kernel's packing, each tap's nr floats
   * straight to their class */
  for (int64_t ic = ic0; ic < ic1; ic++)
    for (int64_t o0 = 0, panel = 0; o0 < ocg; o0 += nr, panel++) {
      for (int64_t t = 0; t < kvol; t++)
        column_at[t] = at[t] + panel * icg * taps_of[t] * nr +
                       fc_dense_weight_at(icg, taps_of[t], nr, ic, sub[t]);
      ops->pack(fc_min(nr, ocg - o0), 1, kvol, w + ((g * icg + ic) * ocg + o0) * kvol, kvol, dst,
                column_at);
    }
  free(at);
  return 0;
}

int64_t fc_transposed_phase(const fc_problem *p, int64_t phase, fc_problem *sub, int64_t *first) {
  *sub = *p;
  sub->transposed = 0;
  int64_t cls = 0, writes = 1, taps = 1, f[3];
  for (int i = 2; i >= 0; i--) {
    f[i] = phase % p->stride[i];
    phase /= p->stride[i];
  }
  for (int i = 0; i < 3; i++) {
    const int64_t s = p->stride[i], d = p->dilation[i];
    const int64_t c = (f[i] + p->pad[i]) % s;
    const axis_class a = class_of(p->kernel[i], s, d, c);
    const int64_t sub_dilation = d / gcd(s, d);
    cls = cls * s + c;
    sub->kernel[i] = a.count;
    sub->stride[i] = 1;
    sub->dilation[i] = sub_dilation;
    /* exact division: f + p - k0 d is a multiple of s by the class's definition */
    sub->pad[i] = (a.count - 1) * sub_dilation - (f[i] + p->pad[i] - a.first * d) / s;
    sub->out[i] = fc_max(0, fc_div_ceil(p->out[i] - f[i], s));
    writes &= sub->out[i] > 0;
    taps *= a.count;
  }
  *first = (f[0] * p->out[1] + f[1]) * p->out[2] + f[2];
  sub->out_volume = sub->out[0] * sub->out[1] * sub->out[2];
  sub->kernel_volume = taps;
  return !writes ? -1 : taps == 0 ? -2 : cls;
}
