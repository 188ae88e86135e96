/* Transposed convolution as one ordinary convolution per output phase (transposed_phases.h). */
#include "direct/transposed_phases.h"

#include <stdlib.h>

/* Tap class c of one axis: its first tap, its tap count and the step between its taps. */
typedef struct axis_class {
  int64_t first, count, step;
} axis_class;

static axis_class class_of(int64_t kernel, int64_t stride, int64_t dilation, int64_t c) {
  axis_class a = {0, 0, stride / fc_gcd(stride, dilation)};
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

int64_t fc_tap_class_panel_floats(const int64_t kernel[3], const int64_t stride[3],
                                  const int64_t dilation[3], int64_t cls, int64_t icg, int64_t nr) {
  int64_t shape[3];
  fc_tap_class_shape(kernel, stride, dilation, cls, shape);
  return nr * icg * shape[0] * shape[1] * shape[2];
}

int64_t fc_tap_class_layout(const int64_t kernel[3], const int64_t stride[3],
                            const int64_t dilation[3], int64_t icg, int64_t panels, int64_t nr,
                            int64_t *base) {
  int64_t floats = 0;
  for (int64_t cls = 0; cls < fc_phase_count(stride); cls++) {
    base[cls] = floats;
    floats += panels * fc_tap_class_panel_floats(kernel, stride, dilation, cls, icg, nr);
  }
  return floats;
}

/* Input channels ahead whose raw weights the packing prefetches. */
#define PACK_AHEAD 4

int fc_pack_tap_classes(const int64_t kernel[3], const int64_t stride[3], const int64_t dilation[3],
                        int64_t icg, int64_t ocg, const fc_dense_ops *ops, const float *w,
                        int64_t o0, int64_t o1, const int64_t *base, int64_t first_panel,
                        float *dst) {
  const int64_t nr = ops->nr, kvol = kernel[0] * kernel[1] * kernel[2];
  /* Where tap t goes: its class's first panel (at[t]), the class's taps (taps_of[t]) and its
   * reversed place among them (sub[t]); the class's panels are panel_step[t] floats apart */
  int64_t *at = malloc(5 * (size_t)kvol * sizeof *at), *taps_of = at + kvol, *sub = taps_of + kvol,
          *panel_step = sub + kvol, *column_at = panel_step + kvol;
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
    at[t] = base[cls] + first_panel * taps * icg * nr;
    taps_of[t] = taps;
    sub[t] = sub_tap;
    panel_step[t] = taps * icg * nr;
  }
  /* The source in memory order: each run w[ic][o .. o + nr][taps] transposed, each tap's nr floats
   * straight to their class */
  for (int64_t ic = 0; ic < icg; ic++) {
    /* the run of input channel ic + PACK_AHEAD fetched meanwhile: each run is in a page of its own
     * when the block is part of the output channels, where the hardware prefetcher fell behind
     * (dcgan.deconv, 2 of 4 panels per block: 5-7% of the layer's time waiting on these loads) */
    if (ic + PACK_AHEAD < icg)
      for (int64_t f = 0; f < (o1 - o0) * kvol; f += 16)
        __builtin_prefetch(w + ((ic + PACK_AHEAD) * ocg + o0) * kvol + f);
    for (int64_t t = 0; t < kvol; t++)
      column_at[t] = at[t] + fc_dense_weight_at(icg, taps_of[t], nr, ic, sub[t]);
    for (int64_t o = o0; o < o1; o += nr) {
      ops->pack(fc_min(nr, o1 - o), 1, kvol, w + (ic * ocg + o) * kvol, kvol, dst, column_at);
      for (int64_t t = 0; t < kvol; t++) column_at[t] += panel_step[t];
    }
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
    const int64_t sub_dilation = d / fc_gcd(s, d);
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
