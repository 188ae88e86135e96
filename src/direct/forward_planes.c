/* The direct engine's layers of one output channel per group (single-channel filters, depthwise
 * other than 3x3) and of a few input channels with large kernels (image stems): the plane kernel
 * over L2-sized padded bands. */
#include <stdlib.h>
#include <string.h>

#include "direct/conv_patches.h"
#include "direct/conv_plane.h"
#include "direct/direct_simd_parts.h"
#include "direct/padded_input.h"

/* Layers of one output channel per group in one or two dimensions with unit stride along the
 * width (single-channel correlation, depthwise other than 3x3, a few input channels per output)
 * run through the plane kernel from padded bands: each item copies the rows x columns of input its
 * outputs read, zero-padded, into a buffer that stays in L2, so the input is never copied whole
 * into a padded block that would not fit in cache. (Stride 2 along the width stays with the row
 * kernel's phase-split padded block: gathering phases per band cost 2.7x on a depthwise 5x5.)
 *
 * So do 2-D layers of a few input channels, many output channels and large kernels (image stems:
 * resnet50.conv1, 3 -> 64 channels, 7x7 stride 2), computed a few output channels at a time with
 * bands split into width phases, on ISAs whose registers hold such blocks, when the output rows
 * are whole vectors, at least FC_PLANE_FEW_MIN_VECTORS of them. The dense kernel would use 3 of
 * the 8 lanes of its band's pixels and transpose its outputs back. Measured at one thread on
 * AVX-512 (time over ORT's, same run, dense or GEMM -> planes, with the earlier blocks of 3
 * channels x 7 vectors of one row): resnet50.conv1 1.10-1.14 -> 0.97-1.00; 1, 2, 4 -> 64
 * channels 7x7 stride 2 0.96, 1.00, 1.08 -> 0.94, 0.95, 1.00; 3 -> 16 channels 1.58 -> 0.85;
 * 3 -> 64 7x7 stride 1 on 112 x 112 1.11 -> 0.93, 9x9 on 128 x 128 1.13 -> 1.09; 7x7 stride 2 on
 * 256 x 256 1.24 -> 1.09, 288 x 288 (9 vectors) 1.09 both. But rows with a partial vector (130,
 * 150 wide: 1.06 -> 1.16, 1.05 -> 1.13), short rows (50 wide 1.15 -> 1.46) and 3x3 and 5x5
 * kernels (3 -> 32 channels 3x3: 0.79 -> 0.87, 3 -> 64 5x5 stride 2 1.03 -> 1.05) lost. With
 * the present blocks of 4 channels x 6 vectors across rows (conv_plane_f32.c: resnet50.conv1
 * 0.92-0.94, 3 -> 64 7x7 stride 1 0.92, 9x9 0.92, 7x7 stride 2 on 256 x 256 0.91), rows with a
 * partial vector win for 3 input channels (130 wide 1.04 -> 0.98, 150 wide 1.02 -> 0.93) but not
 * for 1 (0.88 -> 0.92) and short rows still lose (50 wide 1.12 -> 1.22): the whole-vector rule
 * stays until a rule by input channels is measured. */
#define FC_PLANE_FEW_INPUTS 4
#define FC_PLANE_FEW_MIN_KERNEL 7
#define FC_PLANE_FEW_MIN_VECTORS 7

int fc_plane_layer(const fc_problem *p, const fc_simd_kernels *kernels) {
  const int64_t lanes = kernels->plane_outputs_lanes;
  if (p->kernel[0] != 1 || p->in[0] != 1 || p->out[0] != 1) return 0;
  if (p->out_per_group == 1) return p->stride[2] == 1;
  return lanes > 0 && p->in_per_group <= FC_PLANE_FEW_INPUTS &&
         fc_min(p->kernel[1], p->kernel[2]) >= FC_PLANE_FEW_MIN_KERNEL && p->out[2] % lanes == 0 &&
         p->out[2] >= FC_PLANE_FEW_MIN_VECTORS * lanes;
}

/* Band buffers of about 192 KiB (half of L2); outputs per row chunk (a 1-D signal's rows are
 * long). */
#define FC_PLANE_BAND_FLOATS (INT64_C(48) << 10)
#define FC_PLANE_CHUNK 4096
/* Floats a run read in place keeps from its row's end, and the unit of its width. */
#define FC_PLANE_IN_PLACE_MARGIN 64

/* The first q of phase f (of sw, wq long) whose column q * sw + f is at least u. */
static int64_t phase_q(int64_t u, int64_t f, int64_t sw, int64_t wq) {
  return fc_min(wq, fc_max(0, u - f + sw - 1) / sw);
}

/* The band: in_rows rows of `width` input columns from input row ih0, whose column u is input
 * column iw0 + u, zero outside the input, each row split into sw phases of wq floats: column u at
 * (u % sw) * wq + u / sw, so the inputs of consecutive outputs of stride sw are consecutive. */
static void plane_band(const fc_problem *p, const float *x, int64_t ih0, int64_t in_rows,
                       int64_t iw0, int64_t width, int64_t sw, int64_t wq, float *dst) {
  const int64_t u0 = fc_min(width, fc_max(0, -iw0)), u1 = fc_max(u0, fc_min(width, p->in[2] - iw0));
  for (int64_t i = 0; i < in_rows; i++) {
    float *d = dst + i * sw * wq;
    const int64_t ih = ih0 + i;
    if (ih < 0 || ih >= p->in[1]) {
      memset(d, 0, (size_t)(sw * wq) * sizeof(float));
      continue;
    }
    const float *s = x + ih * p->in[2] + iw0;
    if (sw == 1) {
      memset(d, 0, (size_t)u0 * sizeof(float));
      memcpy(d + u0, s + u0, (size_t)(u1 - u0) * sizeof(float));
      memset(d + u1, 0, (size_t)(wq - u1) * sizeof(float));
      continue;
    }
    /* phase f: columns u = q * sw + f, inside the input for q0 <= q < q1. Stride 2: the columns
     * inside the input in both phases, [lo, hi), in one pass that reads each input once and splits
     * it (resnet50.conv1: a pass per phase, each loading twice the floats it keeps, was 3% of its
     * time) */
    int64_t lo = 0, hi = 0;
    if (sw == 2) {
      lo = fc_max(phase_q(u0, 0, sw, wq), phase_q(u0, 1, sw, wq));
      hi = fc_max(lo, fc_min(phase_q(u1, 0, sw, wq), phase_q(u1, 1, sw, wq)));
      for (int64_t q = lo; q < hi; q++) {
        d[q] = s[2 * q];
        d[wq + q] = s[2 * q + 1];
      }
    }
    for (int64_t f = 0; f < sw; f++) {
      const int64_t q0 = phase_q(u0, f, sw, wq), q1 = fc_max(q0, phase_q(u1, f, sw, wq));
      float *df = d + f * wq;
      const float *sf = s + f;
      memset(df, 0, (size_t)q0 * sizeof(float));
      for (int64_t q = q0; q < fc_min(q1, lo); q++) df[q] = sf[q * sw];
      for (int64_t q = fc_max(q0, hi); q < q1; q++) df[q] = sf[q * sw];
      memset(df + q1, 0, (size_t)(wq - q1) * sizeof(float));
    }
  }
}

/* The output channels of the block starting at o0 of a group's ocg: FC_PLANE_MAX_OUT, but never
 * one left alone when there are several (a single output channel runs the one-channel kernels,
 * which hold a whole 112-wide row only with their narrow blocks: resnet50.conv1's 64th channel
 * took 7% of its time): 5 as 3 + 2, 6 as 4 + 2. */
static int64_t block_outputs(int64_t ocg, int64_t o0) {
  const int64_t left = ocg - o0;
  return left > FC_PLANE_MAX_OUT + 1 ? FC_PLANE_MAX_OUT : left == FC_PLANE_MAX_OUT + 1 ? 3 : left;
}

/* Group g's weights w[ocg][icg][taps] as the plane kernel reads its blocks of output channels
 * (block_outputs): block (channels o0 .. o1) at (o0 * icg * taps), [icg * taps][o1 - o0]. */
static void pack_plane_weights(const float *w, int64_t ocg, int64_t k, float *dst) {
  for (int64_t o0 = 0; o0 < ocg; o0 += block_outputs(ocg, o0)) {
    const int64_t n = block_outputs(ocg, o0);
    for (int64_t o = 0; o < n; o++)
      for (int64_t t = 0; t < k; t++) dst[o0 * k + t * n + o] = w[(o0 + o) * k + t];
  }
}

fc_status fc_forward_planes(const fc_engine_call *call, const fc_simd_kernels *kernels,
                            const float *x, float *y) {
  const fc_problem *p = call->problem;
  const int64_t kh = p->kernel[1], kw = p->kernel[2], sh = p->stride[1], sw = p->stride[2];
  const int64_t dh = p->dilation[1], dw = p->dilation[2], icg = p->in_per_group;
  const int64_t ocg = p->out_per_group, k = icg * kh * kw;
  const int64_t out_h = p->out[1], out_w = p->out[2];
  const int64_t cw = fc_min(out_w, FC_PLANE_CHUNK);
  /* a band row: the inputs of a chunk's outputs, in sw phases */
  const int64_t wq = fc_div_ceil((cw - 1) * sw + (kw - 1) * dw + 1, sw), row_floats = sw * wq;
  const int64_t span = (kh - 1) * dh + 1;
  /* Output rows one apart share input rows when they read kernel rows one apart. */
  const int64_t shared_rows = sh == dh ? fc_min(FC_PLANE_MAX_ROWS, kh) : 1;
  /* Output rows per band: a multiple of the kernel's row block that fits the buffer. */
  int64_t ch =
      ((FC_PLANE_BAND_FLOATS / (icg * row_floats) - span) / sh + 1) / shared_rows * shared_rows;
  ch = fc_min(out_h, fc_max(ch, shared_rows));
  const int64_t chunks = fc_div_ceil(out_w, cw), planes = p->batch * p->groups;
  /* Bands of equal height, as many as divide among the threads when there are few items: the
   * static split of resnet50.conv1's 4 bands of 33, 33, 33 and 13 rows gave one thread 66 rows
   * and the other 46 (two threads 1.6x one; 4 of 28 rows even it out). */
  int64_t bands = fc_div_ceil(out_h, ch);
  const int threads = call->num_threads;
  while (threads > 1 && planes * chunks * bands % threads &&
         planes * chunks * bands < threads * FC_ITEMS_PER_THREAD &&
         (bands + 1) * shared_rows <= out_h)
    bands++;
  ch = fc_div_ceil(fc_div_ceil(out_h, bands), shared_rows) * shared_rows;
  bands = fc_div_ceil(out_h, ch);
  const int64_t band_floats = ((ch - 1) * sh + span) * row_floats;
  const int64_t items = planes * bands * chunks;
  /* several output channels per group: their weights interleaved per block */
  float *packed = ocg > 1 ? scratch_floats(p->out_channels * k) : NULL;
  if (ocg > 1 && !packed) return FC_STATUS_OUT_OF_MEMORY;
  for (int64_t g = 0; packed && g < p->groups; g++)
    pack_plane_weights((const float *)call->weight + g * ocg * k, ocg, k, packed + g * ocg * k);
  const float *weights = packed ? packed : call->weight;
  int failed = 0;
#pragma omp parallel num_threads(call->num_threads) if (call->num_threads > 1 && items > 1)
  {
    float *band = scratch_floats(icg * band_floats + FC_PATCHES_SLACK);
    /* kw column offsets, then with several outputs the k taps' offsets (tap_offset) */
    int64_t *col_offset = malloc((size_t)(kw + (ocg > 1 ? k : 0)) * sizeof *col_offset);
    int64_t *tap_offset = col_offset ? col_offset + kw : NULL;
    if (!band || !col_offset) {
#pragma omp atomic write
      failed = 1;
    } else {
      /* the slack a row's last vector may read past the band */
      memset(band, 0, (size_t)(icg * band_floats + FC_PATCHES_SLACK) * sizeof(float));
    }
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; item++) {
      if (!band || !col_offset) continue;
      const int64_t chunk = item % chunks, b = item / chunks % bands,
                    plane = item / (chunks * bands);
      const int64_t gi = plane % p->groups, n = plane / p->groups;
      const int64_t oh0 = b * ch, rows = fc_min(ch, out_h - oh0);
      const int64_t ow0 = chunk * cw, cols = fc_min(cw, out_w - ow0);
      const float *x_group = x + (n * p->in_channels + gi * icg) * p->in_volume;
      const int64_t ih0 = oh0 * sh - p->pad[1], in_rows = (rows - 1) * sh + span;
      /* Output columns [in0, in1) whose inputs lie inside the input rows, when the rows do too
       * and the width has unit stride, are read in place (the band copy cost a third of a 5x5
       * plane's time); the margin keeps the kernel's reads past a run's inputs inside the row.
       * The rest goes through the band. */
      int64_t in0 = ow0, in1 = ow0;
      if (sw == 1 && ih0 >= 0 && ih0 + in_rows <= p->in[1]) {
        in0 = fc_min(fc_max(ow0, p->pad[2]), ow0 + cols);
        const int64_t end = p->in[2] + p->pad[2] - (kw - 1) * dw - FC_PLANE_IN_PLACE_MARGIN - in0;
        in1 = in0 + fc_max(0, fc_min(ow0 + cols - in0, end)) / FC_PLANE_IN_PLACE_MARGIN *
                        FC_PLANE_IN_PLACE_MARGIN;
      }
      fc_conv_plane q = {
          .col_offset = col_offset,
          .kh_count = kh,
          .kw_count = kw,
          .kw_last = kw,
          .channels = icg,
          .rows = rows,
          .shared_rows = shared_rows,
          .contiguous_taps = kh == 1 && dw == 1 && sw == 1,
          .y_row_stride = out_w,
          .y_channel_stride = p->out_volume,
      };
      const int64_t runs[3][2] = {{in0, in1}, {ow0, in0}, {in1, ow0 + cols}};
      for (int part = 0; part < 3; part++) {
        const int64_t c0 = runs[part][0], c1 = runs[part][1];
        if (c1 <= c0) continue;
        if (part == 0) {
          for (int64_t t = 0; t < kw; t++) col_offset[t] = t * dw;
          q.src = x_group + ih0 * p->in[2] + c0 - p->pad[2];
          q.kh_step = dh * p->in[2];
          q.row_step = sh * p->in[2];
          q.channel_stride = p->in_volume;
        } else {
          const int64_t width = (c1 - c0 - 1) * sw + (kw - 1) * dw + 1;
          const int64_t run_wq = fc_div_ceil(width, sw);
          for (int64_t t = 0; t < kw; t++)
            col_offset[t] = fc_phase_split_column(t * dw, sw, run_wq);
          for (int64_t ic = 0; ic < icg; ic++)
            plane_band(p, x_group + ic * p->in_volume, ih0, in_rows, c0 * sw - p->pad[2], width, sw,
                       run_wq, band + ic * band_floats);
          q.src = band;
          q.kh_step = dh * sw * run_wq;
          q.row_step = sh * sw * run_wq;
          q.channel_stride = band_floats;
        }
        q.cols = c1 - c0;
        q.tap_offset = tap_offset;
        if (ocg > 1)
          for (int64_t t = 0; t < k; t++)
            tap_offset[t] =
                t / (kh * kw) * q.channel_stride + t / kw % kh * q.kh_step + col_offset[t % kw];
        for (int64_t o0 = 0; o0 < ocg; o0 += block_outputs(ocg, o0)) {
          const int64_t oc = gi * ocg + o0;
          q.outputs = block_outputs(ocg, o0);
          q.weight = weights + oc * k;
          q.bias = call->bias ? (const float *)call->bias + oc : NULL;
          q.y = y + (n * p->out_channels + oc) * p->out_volume + oh0 * out_w + c0;
          kernels->conv_plane_f32(&q);
        }
      }
    }
    fc_scratch_put(band);
    free(col_offset);
  }
  fc_scratch_put(packed);
  return failed ? FC_STATUS_OUT_OF_MEMORY : FC_STATUS_OK;
}
