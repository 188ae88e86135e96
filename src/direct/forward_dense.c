/* The dense kernel's driver (conv_dense.h): weight packing, cache blocking into bands, sweeps and
 * passes, and the parallel loop over (image, group, block of output channels, band) that runs one
 * or several convolutions of one input on each band. */
#include <omp.h>
#include <stdlib.h>

#include "direct/conv_dense.h"
#include "direct/direct_simd_parts.h"
#include "direct/padded_input.h"

int64_t fc_dense_group_floats(const fc_dense_ops *ops, int64_t ocg, int64_t k) {
  return fc_div_ceil(ocg, ops->nr) * ops->nr * k;
}

void fc_pack_dense_panel(const fc_dense_ops *ops, int64_t ocg, int64_t icg, int64_t taps,
                         const float *w, int64_t j, float *dst) {
  const int64_t panels = fc_div_ceil(ocg, ops->nr), g = j / panels, o0 = j % panels * ops->nr;
  const int64_t k = icg * taps;
  ops->pack(fc_min(ops->nr, ocg - o0), icg, taps, w + (g * ocg + o0) * k, k,
            dst + g * fc_dense_group_floats(ops, ocg, k) + o0 * k, NULL);
}

/* Cache blocking of the dense kernel (conv_dense.h), which sweeps the band of a channel block once
 * per few panels of NR output channels (their weights in L1, their accumulators in L2):
 * - a band holds at most DENSE_MAX_PIXELS output pixels and a sweep's accumulators take at most
 *   DENSE_ACC_BYTES (L2: wavenet.conv1d.dil4 with 4096-pixel bands and 768 KiB of accumulators
 *   measured 1.17x ORT's time, against 1.03x);
 * - a channel block's band takes at most DENSE_BAND_BYTES (streamed from L3 once per sweep: a band
 *   of all channels wins, as each further channel block is one more pass over the output and one
 *   band covering the map lets each panel be packed right before its use; deeplab.dil2, 256
 *   channels, ran 1.30x ORT's time in 4 channel blocks of 256 KiB, 1.17x in one of 1 MiB);
 * - a band holds at least DENSE_MIN_PIXELS output pixels (or the whole map), so that each pass's
 *   weights, read into L1 once per band, serve enough pixels;
 * - a sweep takes as many panels as keep the band's pixels per FMA of one input channel (output
 *   pixel x tap x output channel) under 1 / DENSE_SWEEP_REUSE: a stride-2 band holds 4 input
 *   pixels per output pixel (resnet50.l2.3x3s2 on AVX2: 1.22x ORT's time swept per panel of 16,
 *   1.12-1.15x per 2 to 8 panels; on AVX-512, at the former 24 KiB weight budget, 1.14x per 2
 *   panels of 32, whose weights left 8 input channels per pass, 1.11x per panel, 16 per pass),
 * while deeplab.dil2 (1.3 band pixels per output pixel, 9 taps) measured best swept per panel;
 * - a strided band (stride > 1 along rows or columns) takes at most DENSE_STRIDED_BAND_BYTES and
 *   holds at least DENSE_MIN_PIXELS / (row stride x column stride) output pixels: its pixels serve
 *   few taps each (a stride-2 band holds 4 input pixels per output pixel), so it is kept within L2
 *   across its sweeps rather than re-read from L3 by each (resnet50.l2.3x3s2, 128 channels: bands
 *   of 14 output rows, 841 KiB, ran 1.15x ORT's median time at one thread and 1.40x its best at
 *   two, bands of 6 rows, 377 KiB, 1.05x and 0.90x, with a 512 KiB L2; with a 1 MiB L2 and
 *   AVX-512, 768 KiB ran it 2-4% faster than 384 KiB).
 * Measured at one thread (AVX2, loaded machine, one-shot calls alternating with ORT in-process). */
#define DENSE_BAND_BYTES (1280 * 1024)
#define DENSE_STRIDED_BAND_BYTES (768 * 1024)
#define DENSE_MAX_PIXELS 1024
#define DENSE_MIN_PIXELS 192
#define DENSE_ACC_BYTES (256 * 1024)
#define DENSE_SWEEP_REUSE 50

typedef struct dense_blocking {
  int64_t channel_block, rows, cols; /* per band: input channels, output rows and columns */
  int64_t slices, band_rows, wq;     /* the band's extent (conv_dense.h) */
} dense_blocking;

static int64_t band_wq(const fc_problem *p, int64_t cols) {
  return cols + (p->kernel[2] - 1) * p->dilation[2] / p->stride[2];
}

static int64_t band_rows(const fc_problem *p, int64_t rows) {
  return (rows - 1) * p->stride[1] + (p->kernel[1] - 1) * p->dilation[1] + 1;
}

/* threads: the band count along the rows grows (bands still of min_pixels) until the items divide
 * among them, so that no output-channel split is needed to even them out. */
static dense_blocking dense_blocks(const fc_problem *p, int threads) {
  dense_blocking b;
  b.slices = (p->kernel[0] - 1) * p->dilation[0] + 1;
  const int64_t phases = p->stride[1] * p->stride[2];
  const int64_t band_bytes = phases > 1 ? DENSE_STRIDED_BAND_BYTES : DENSE_BAND_BYTES;
  const int64_t min_pixels = fc_min(DENSE_MIN_PIXELS / phases, p->out[1] * p->out[2]);
  int64_t icb = p->in_per_group;
  for (;;) {
    const int64_t slab_bytes = fc_round_up_to(icb, FC_DENSE_CB) * b.slices * (int64_t)sizeof(float);
    /* rows while the band fits, else one row and the columns that fit */
    b.cols = fc_min(p->out[2], DENSE_MAX_PIXELS);
    const int64_t row_bytes = slab_bytes * p->stride[2] * band_wq(p, b.cols);
    const int64_t fit_rows = band_bytes / row_bytes;
    b.rows = fc_max(1, fc_min(fc_min(p->out[1], DENSE_MAX_PIXELS / b.cols),
                              (fit_rows - band_rows(p, 1)) / p->stride[1] + 1));
    if (fit_rows < band_rows(p, 1)) {
      const int64_t fit_wq = band_bytes / (slab_bytes * band_rows(p, 1) * p->stride[2]);
      b.cols = fc_min(b.cols, fc_max(8, fit_wq - band_wq(p, 0)));
    }
    if (icb <= FC_DENSE_CB || b.rows * b.cols >= min_pixels) break;
    icb = fc_round_up_to(fc_div_ceil(icb, 2), FC_DENSE_CB);
  }
  b.channel_block = icb;
  /* balanced bands: 56 rows that fit 11 per band are 6 bands of 10 or fewer, not 5 of 11 and 1 */
  int64_t row_bands = fc_div_ceil(p->out[1], b.rows);
  const int64_t others = p->batch * p->groups * p->out[0] * fc_div_ceil(p->out[2], b.cols);
  for (int64_t more = row_bands; threads > 1 && more <= 2 * row_bands && more <= p->out[1]; more++)
    if (others * more % threads == 0 && fc_div_ceil(p->out[1], more) * b.cols >= min_pixels) {
      row_bands = more;
      break;
    }
  b.rows = fc_div_ceil(p->out[1], row_bands);
  b.cols = fc_div_ceil(p->out[2], fc_div_ceil(p->out[2], b.cols));
  b.band_rows = band_rows(p, b.rows);
  b.wq = band_wq(p, b.cols);
  return b;
}

/* The band all of `count` convolutions read (the phases of a transposed layer, or one layer),
 * which differ only in their kernel, padding and output extent, as one convolution: the largest
 * padding, the largest output, and a kernel of dilation 1 spanning every convolution's taps from
 * that padding (its volume the most taps of any, for the sweeps); shift[i][axis]: where
 * convolution i's first tap sits in the band. */
static fc_problem shared_band(const dense_operands *op, int64_t count, int64_t (*shift)[3]) {
  fc_problem u = *op[0].p;
  for (int a = 0; a < 3; a++) {
    for (int64_t i = 0; i < count; i++) {
      u.pad[a] = fc_max(u.pad[a], op[i].p->pad[a]);
      u.out[a] = fc_max(u.out[a], op[i].p->out[a]);
    }
    u.kernel[a] = 1;
    u.dilation[a] = 1;
    for (int64_t i = 0; i < count; i++) {
      shift[i][a] = u.pad[a] - op[i].p->pad[a];
      u.kernel[a] =
          fc_max(u.kernel[a], shift[i][a] + (op[i].p->kernel[a] - 1) * op[i].p->dilation[a] + 1);
    }
  }
  for (int64_t i = 0; i < count; i++)
    u.kernel_volume = fc_max(u.kernel_volume, op[i].p->kernel_volume);
  u.out_volume = u.out[0] * u.out[1] * u.out[2];
  return u;
}

/* The dense kernel over items (image, group, block of output channels, output depth plane, band
 * of rows, band of columns), one band per thread, for `count` convolutions of one input (all of
 * stride 1 when more than one, all with packed weights): each item builds its band once per block
 * of input channels and runs every convolution on it. */
fc_status fc_forward_dense(const dense_operands *op, int64_t count, const fc_simd_kernels *kernels,
                           int threads) {
  const fc_dense_ops *ops = kernels->dense_f32;
  int64_t(*shift)[3] = malloc((size_t)count * sizeof *shift);
  if (!shift) return FC_STATUS_OUT_OF_MEMORY;
  const fc_problem band_problem = shared_band(op, count, shift), *p = &band_problem;
  /* A one-shot call that one thread runs as one band per group, packing each pass's weights right
   * before their use, keeps that band with threads when its weights outweigh its input (small maps
   * of many channels), and the threads split the output channels, each packing only its own
   * panels: bands split among them both read (and shared the packing of) every weight.
   * resnet50.l3.3x3 direct at two threads 0.529-0.533 -> 0.494-0.497 ms (ORT 0.454); the layers
   * with larger maps are unchanged. */
  const dense_blocking one_thread = dense_blocks(p, 1);
  const int64_t weight_floats = p->out_per_group * p->in_per_group * p->kernel_volume,
                input_floats = p->in_per_group * p->in_volume;
  const int split_channels = threads > 1 && !op->packed && p->batch == 1 && p->out[0] == 1 &&
                             one_thread.rows >= p->out[1] && one_thread.cols >= p->out[2] &&
                             weight_floats > input_floats;
  const dense_blocking b = split_channels ? one_thread : dense_blocks(p, threads);
  const int64_t row_bands = fc_div_ceil(p->out[1], b.rows),
                col_bands = fc_div_ceil(p->out[2], b.cols);
  const int64_t spatial = p->out[0] * row_bands * col_bands;
  const int64_t outer = p->batch * p->groups * spatial;
  /* output channel blocks only where the bands alone leave threads idle (each block rebuilds the
   * band), equal where up to twice as many blocks allow it: deeplab.dil2 at two threads cuts its 16
   * panels into 4 + 4 + 4 + 4, not 6 + 6 + 4, whose 6 items of unequal size left a thread idle */
  const int64_t want = threads > 1 ? (int64_t)threads * FC_ITEMS_PER_THREAD : 1;
  const int64_t panels = fc_div_ceil(p->out_per_group, ops->nr);
  int64_t parts = split_channels         ? fc_min(panels, threads)
                  : outer % threads == 0 ? 1
                                         : fc_min(panels, fc_div_ceil(want, outer));
  for (int64_t more = parts; more <= fc_min(panels, 2 * parts); more++)
    if (panels % more == 0) {
      parts = more;
      break;
    }
  const int64_t oc_block = fc_div_ceil(panels, parts) * ops->nr;
  const int64_t oc_blocks = fc_div_ceil(p->out_per_group, oc_block);
  const int64_t row_pixels = p->stride[2] * b.wq, slab = b.slices * b.band_rows * row_pixels;
  const int64_t band_floats = fc_div_ceil(b.channel_block, FC_DENSE_CB) * slab * FC_DENSE_CB;
  /* panels per sweep (see DENSE_SWEEP_REUSE), as many as their accumulators allow; + 8: the
   * kernel reads whole 8-channel rows of them, past NR on NEON (12) */
  const int64_t panel_acc = fc_round_up_to(b.rows * b.cols, ops->mr) * ops->nr;
  const int64_t wanted = fc_div_ceil(b.slices * b.band_rows * row_pixels * DENSE_SWEEP_REUSE,
                                     b.rows * b.cols * p->kernel_volume * ops->nr);
  const int64_t sweep = fc_max(1, fc_min(fc_min(wanted, oc_block / ops->nr),
                                         DENSE_ACC_BYTES / (panel_acc * (int64_t)sizeof(float))));
  const int64_t acc_floats = sweep * panel_acc + 8;
  /* per convolution, per tap (kd, kh, kw): where it reads in the band */
  int64_t taps = 0;
  for (int64_t i = 0; i < count; i++) taps += op[i].p->kernel_volume;
  int64_t *tap_offset = malloc((size_t)taps * sizeof *tap_offset);
  if (!tap_offset) {
    free(shift);
    return FC_STATUS_OUT_OF_MEMORY;
  }
  for (int64_t i = 0, at = 0; i < count; at += op[i].p->kernel_volume, i++) {
    const fc_problem *q = op[i].p;
    for (int64_t t = 0; t < q->kernel_volume; t++) {
      const int64_t kw = t % q->kernel[2], kh = t / q->kernel[2] % q->kernel[1],
                    kd = t / (q->kernel[2] * q->kernel[1]),
                    tap_w = shift[i][2] + kw * q->dilation[2];
      tap_offset[at + t] =
          ((shift[i][0] + kd * q->dilation[0]) * b.band_rows + shift[i][1] + kh * q->dilation[1]) *
              row_pixels +
          fc_phase_split_column(tap_w, p->stride[2], b.wq);
    }
  }
  free(shift);
  /* Unpacked weights (a one-shot call): with one band per group, each panel is used by one item,
   * which packs it right before its use, so the weights cross memory once, not three times
   * (resnet50.l4.3x3: 9.4 MB, 1.2 ms of packing alone); otherwise packed whole first, the
   * threads sharing the panels. */
  const int64_t k = p->in_per_group * p->kernel_volume;
  const int64_t group_floats = fc_dense_group_floats(ops, p->out_per_group, k);
  const int fused = !op->packed && outer == p->groups;
  float *packed = op->packed || fused ? NULL : scratch_floats(p->groups * group_floats);
  if (!op->packed && !fused && !packed) {
    free(tap_offset);
    return FC_STATUS_OUT_OF_MEMORY;
  }
  int failed = 0;
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    float *band = scratch_floats(band_floats);
    float *acc = scratch_floats(acc_floats);
    float *panel =
        fused ? scratch_floats(sweep * b.channel_block * p->kernel_volume * ops->nr) : NULL;
    if (!band || !acc || (fused && !panel)) {
#pragma omp atomic write
      failed = 1;
    }
    if (packed) {
#pragma omp for schedule(static)
      for (int64_t j = 0; j < p->groups * panels; j++)
        fc_pack_dense_panel(ops, p->out_per_group, p->in_per_group, p->kernel_volume, op->raw, j,
                            packed);
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < outer * oc_blocks; item++) {
      if (!band || !acc || (fused && !panel)) continue;
      const int64_t place = item % spatial, ob = item / spatial % oc_blocks;
      const int64_t gi = item / (spatial * oc_blocks) % p->groups,
                    n = item / (spatial * oc_blocks * p->groups);
      const int64_t cb = place % col_bands, rb = place / col_bands % row_bands,
                    od = place / (col_bands * row_bands);
      const int64_t oc0 = ob * oc_block, group_oc = gi * p->out_per_group;
      fc_conv_dense it = {
          .x = op->x + (n * p->in_channels + gi * p->in_per_group) * p->in_volume,
          .in = {p->in[0], p->in[1], p->in[2]},
          .x_channel_stride = p->in_volume,
          .channels = p->in_per_group,
          .stride = {p->stride[0], p->stride[1], p->stride[2]},
          .pad = {p->pad[0], p->pad[1], p->pad[2]},
          .slices = b.slices,
          .rows = b.band_rows,
          .wq = b.wq,
          .slab = slab,
          .band = band,
          .sweep = sweep,
          .panel = panel,
          .acc = acc,
          .bias = op->bias ? op->bias + group_oc : NULL,
          .od = od,
          .row0 = rb * b.rows,
          .col0 = cb * b.cols,
          .oc0 = oc0,
          .oc1 = fc_min(p->out_per_group, oc0 + oc_block),
      };
      for (int64_t c0 = 0; c0 < p->in_per_group; c0 += b.channel_block) {
        const int64_t nc = fc_min(b.channel_block, p->in_per_group - c0);
        ops->band(&it, c0, nc);
        for (int64_t i = 0, at = 0; i < count; at += op[i].p->kernel_volume, i++) {
          const fc_problem *q = op[i].p;
          it.row1 = fc_min(q->out[1], (rb + 1) * b.rows);
          it.col1 = fc_min(q->out[2], (cb + 1) * b.cols);
          if (od >= q->out[0] || it.row0 >= it.row1 || it.col0 >= it.col1) continue;
          it.tap_offset = tap_offset + at;
          it.taps = q->kernel_volume;
          it.weight = fused ? NULL : (op[i].packed ? op[i].packed : packed) + gi * group_floats;
          it.raw = op[i].raw ? op[i].raw + gi * p->out_per_group * k : NULL;
          it.out_channel_stride = op[i].out.channel;
          it.out_row_stride = op[i].out.row;
          it.out_col_stride = op[i].out.col;
          it.y = op[i].out.y + n * op[i].out.image + group_oc * op[i].out.channel +
                 od * op[i].out.plane;
          ops->run(&it, c0, nc);
        }
      }
    }
    fc_scratch_put(band);
    fc_scratch_put(acc);
    fc_scratch_put(panel);
  }
  fc_scratch_put(packed);
  free(tap_offset);
  return failed ? FC_STATUS_OUT_OF_MEMORY : FC_STATUS_OK;
}
