/* The direct engine's SIMD path (float32): convolution as implicit GEMM on the selected ISA's
 * packed GEMM, with the weights packed once per plan.
 *
 * Convolution: Y_g[oc][q] = W_g[oc][r] x B[r][q], W read in place (no packing, so plans and
 * one-shot calls cost nothing before the GEMM), B the input's patches gathered from a zero-padded,
 * stride-phase-split copy of the input as the GEMM packs them (conv_patches.h); a 1x1 layer with
 * unit stride and no padding is a plain GEMM on the input. Transposed convolution: one dense
 * convolution per output phase (transposed_phases.h), or the columns W_g^T X_g of a chunk of input
 * positions, then col2im into the output. Channels-last data is
 * transposed to channels-first around the computation. Work items are (image, group, block of
 * output channels, chunk of positions) and run in parallel, one GEMM work buffer per thread. */
#include "direct/conv_direct_simd.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "api/scratch.h"
#include "direct/conv_patches.h"
#include "direct/conv_plane.h"
#include "direct/direct_simd_parts.h"
#include "direct/padded_input.h"
#include "direct/transposed_phases.h"
#include "dispatch/kernels.h"
#include "im2col/columns.h"

/* Columns of the transposed path's buffer: about 1 MiB of float32. */
#define FC_COLUMN_FLOATS (INT64_C(1) << 18)

/* Groups this thin (few output channels, or a short reduction) waste most of a GEMM tile; the row
 * kernel feeds every load to one to four FMAs instead. */
static int thin_groups(int64_t in_per_group, int64_t out_per_group, int64_t kernel_volume,
                       const fc_gemm_tile *t) {
  return out_per_group < t->mr || in_per_group * kernel_volume < 16;
}

/* Convolutions with a kernel larger than 1x1 and at least 8 input channels per group, or fewer
 * with a reduction (input channels x taps) of at least DENSE_MIN_REDUCTION, run the dense kernel
 * (conv_dense.h), the others the implicit GEMM. Measured at one thread (AVX2, one-shot, time over
 * ORT's, GEMM -> dense): resnet50.conv1 (3 channels, 7x7 stride 2) 1.04 -> 0.98, 4 channels 1.02 ->
 * 0.94; but 2 channels 7x7 1.02 -> 1.03, 1 channel 7x7 1.05 -> 1.30 and 3 channels 3x3 0.97 -> 1.10
 * (a band of 8 lanes mostly empty, and few FMAs per tile for its accumulators' loads and stores).
 * Earlier, with 8 channels or more (ms): resnet50.l1.3x3 3.09 -> 2.75, l3.3x3 3.19 -> 2.91,
 * l4.3x3 (one-shot) 4.87 -> 3.57, deeplab.dil2 12.3 -> 11.6, wavenet.conv1d.dil4 5.44 -> 5.06. */
#define DENSE_MIN_REDUCTION 128

static int dense_layer(int transposed, int64_t in_per_group, int64_t out_per_group,
                       int64_t kernel_volume, const fc_simd_kernels *kernels) {
  return !transposed && kernel_volume > 1 &&
         (in_per_group >= FC_DENSE_CB || in_per_group * kernel_volume >= DENSE_MIN_REDUCTION) &&
         !thin_groups(in_per_group, out_per_group, kernel_volume, &kernels->gemm_f32->tile);
}

/* Transposed layers with at least 8 input channels per group run as one dense convolution per
 * output phase (transposed_phases.h) when the phases average three taps or more, or two with a
 * reduction (input channels per group) under 64, which leaves the columns GEMM short. Measured at
 * one thread (AVX2, plans, ms, columns -> phases): dcgan.deconv (4x4 stride 2, 256 -> 128)
 * 4.14 -> 3.37; 4x4 stride 2 512 -> 256 on 8x8 6.9 -> 5.0; 3x3x3 stride 2 32 -> 32 on 8^3 1.38 ->
 * 0.76; 3x3 stride 1 64 -> 64 on 28x28 1.39 -> 0.95; 3x3 stride 2 16 -> 16 on 56x56 0.75 -> 0.55;
 * but 3x3 stride 2 with 64 to 256 input channels 1.16 -> 1.25, 1.61 -> 2.35 (phases of one tap
 * against a GEMM with a long reduction), and 8 taps at stride 4 (1-D, 64 channels) 0.38 -> 0.43.
 * Layers with one tap per phase (2x2 at stride 2) are one GEMM without overlap in the columns
 * path. Strides beyond FC_MAX_PHASES phases stay there too. */
#define FC_MAX_PHASES 64

static int phased_layer(int transposed, int64_t in_per_group, int64_t out_per_group,
                        const int64_t kernel[3], const int64_t stride[3],
                        const fc_simd_kernels *kernels) {
  const int64_t kvol = kernel[0] * kernel[1] * kernel[2], phases = fc_phase_count(stride);
  return transposed && in_per_group >= FC_DENSE_CB && phases <= FC_MAX_PHASES &&
         (kvol >= 3 * phases || (kvol >= 2 * phases && in_per_group < 64)) &&
         !thin_groups(in_per_group, out_per_group, kvol, &kernels->gemm_f32->tile);
}

/* The weights of every group packed for the dense kernel (conv_dense.h) or for the GEMM: A_g = W_g
 * (convolution, ocg x icg * kvol) or W_g^T (transposed, ocg * kvol x icg). */
typedef struct simd_state {
  float *packed;
  int64_t group_floats;
  const fc_gemm_tile *tile; /* the GEMM's, for the panels of packed */
} simd_state;

/* A one-shot dense layer of a small map with a long reduction runs the implicit GEMM instead: the
 * dense kernel transposes every weight per call (a fifth of resnet50.l4.3x3's time), which few
 * output positions leave unamortised, where the GEMM reads the weights in place (its first
 * micro-kernels pack them as they go) and 49 positions fill a 48-column sliver and one column
 * (gemm_f32.c, driver_one_sliver_and_column). Measured at one thread on AVX-512, time over ORT's in
 * one process, calls alternating with the GEMM's first (in parentheses second: the call after ORT's
 * finds less of its weights in L3, which favours the other), dense -> GEMM: 7x7 maps with 192, 256,
 * 384, 512 channels 1.32 -> 1.30, 1.29 -> 1.22, 1.09 -> 1.06, 1.03 -> 0.94 (1.05 -> 0.95-0.98), 512
 * channels on 8x8 1.07 -> 0.96 (1.10 -> 1.00), on 4x4 1.32 -> 1.23 (1.19 -> 1.21), two 7x7 images
 * of 512 channels 1.16 -> 0.97 (1.18 -> 1.02); but 128 channels on 7x7 (a reduction of 1152) 1.34
 * -> 1.42, and larger maps lose, GEMM second: 9x9 with 256 channels 1.14 -> 1.24, 14x14
 * (resnet50.l3.3x3) 1.05 -> 1.09, 14x14 with 512 channels 1.06 -> 1.10 (alternating builds:
 * resnet50.l4.3x3 1.10-1.11 -> 0.99-1.03, l3.3x3 unchanged). In-process ratios flatter fastconv
 * (ORT runs slower there); each in its own process (run.py, as compare.sh), resnet50.l4.3x3
 * went 1.37-1.40 -> 1.16-1.20x ORT. A plan's weights, packed once for the dense kernel, stay dense.
 * On AVX2 the GEMM lost on all of them: resnet50.l4.3x3 1.71 -> 2.31, 256 channels on 7x7 1.97
 * -> 2.60; so the positions are the ISA's (fc_simd_kernels.gemm_max_positions: 64 on AVX-512, 0
 * elsewhere). */
#define GEMM_MIN_REDUCTION 1536

static int small_map(const fc_problem *p, const fc_simd_kernels *kernels) {
  return p->out_volume <= kernels->gemm_max_positions &&
         p->in_per_group * p->kernel_volume >= GEMM_MIN_REDUCTION;
}

static int small_map_gemm(const fc_problem *p, const simd_state *st,
                          const fc_simd_kernels *kernels) {
  return !st->packed && small_map(p, kernels);
}

int fc_direct_simd_one_sliver_map(const fc_problem *p) {
  const fc_simd_kernels *kernels = fc_simd_kernels_selected();
  if (!kernels || p->dtype != FC_DTYPE_FLOAT32 ||
      !dense_layer(p->transposed, p->in_per_group, p->out_per_group, p->kernel_volume, kernels))
    return 0;
  const fc_gemm_tile *t = fc_gemm_tile_for_rows(kernels->gemm_f32, (size_t)p->out_per_group);
  return small_map(p, kernels) && kernels->gemm_f32->one_sliver_and_column(
                                      t, (size_t)p->out_per_group, (size_t)p->out_volume,
                                      (size_t)(p->in_per_group * p->kernel_volume));
}

/* Panel j of every group's GEMM weights (group j / panels): A_g = W_g (ocg x icg * kvol) or, for
 * a transposed layer, W_g^T (ocg * kvol x icg), for j < groups * ceil(m / MR). */
static void pack_gemm_panel(const fc_gemm_ops *ops, const simd_state *st, int transposed, int64_t m,
                            int64_t k, const float *w, int64_t j, float *dst) {
  const int64_t mr = st->tile->mr, panels = fc_div_ceil(m, mr), g = j / panels,
                r0 = j % panels * mr;
  const size_t rs = transposed ? 1 : (size_t)k, cs = transposed ? (size_t)m : 1;
  ops->pack_a(st->tile, (size_t)fc_min(mr, m - r0), (size_t)k, w + g * m * k + r0 * (int64_t)rs, rs,
              cs, dst + g * st->group_floats + r0 * k);
}

/* Where each tap class's packed weights start (transposed_phases.h) for `panels` panels per class,
 * malloc'ed (fc_phase_count(stride) entries; NULL when out of memory), and their floats. */
static int64_t *phase_layout(const fc_problem *p, int64_t panels, int64_t nr, int64_t *floats) {
  int64_t *base = malloc((size_t)fc_phase_count(p->stride) * sizeof *base);
  if (base)
    *floats =
        fc_tap_class_layout(p->kernel, p->stride, p->dilation, p->in_per_group, panels, nr, base);
  return base;
}

/* A plan's packed weights of a phased transposed layer: every group's panels per tap class, group
 * g's first at panel g * ceil(ocg / nr). */
static fc_status pack_phases(const fc_problem *p, const float *w, const fc_dense_ops *ops,
                             float **packed, int64_t *floats) {
  const int64_t panels = fc_div_ceil(p->out_per_group, ops->nr);
  const int64_t group_weights = p->in_per_group * p->out_per_group * p->kernel_volume;
  int64_t *base = phase_layout(p, p->groups * panels, ops->nr, floats);
  *packed = base ? scratch_floats(*floats) : NULL;
  int failed = !*packed;
  for (int64_t g = 0; g < p->groups && !failed; g++)
    failed = fc_pack_tap_classes(p->kernel, p->stride, p->dilation, p->in_per_group,
                                 p->out_per_group, ops, w + g * group_weights, 0, p->out_per_group,
                                 base, g * panels, *packed);
  free(base);
  if (failed) {
    fc_scratch_put(*packed);
    *packed = NULL;
    return FC_STATUS_OUT_OF_MEMORY;
  }
  return FC_STATUS_OK;
}

fc_status fc_direct_simd_prepare(const fc_conv_params *params, const void *weight, int one_shot,
                                 void **state, int64_t *bytes) {
  *state = NULL;
  *bytes = 0;
  const fc_simd_kernels *kernels = fc_simd_kernels_selected();
  if (!kernels || params->dtype != FC_DTYPE_FLOAT32) return FC_STATUS_OK;
  const fc_gemm_ops *ops = kernels->gemm_f32;
  const int64_t groups = params->groups, icg = params->in_channels / groups,
                ocg = params->out_channels / groups;
  const int64_t kvol = params->kernel[0] * params->kernel[1] * params->kernel[2];
  /* Layers the GEMM never sees need nothing packed. */
  if (icg == 0 || (params->transposed ? icg * ocg < 4 : thin_groups(icg, ocg, kvol, &ops->tile)))
    return FC_STATUS_OK;
  const int64_t m = params->transposed ? ocg * kvol : ocg,
                k = params->transposed ? icg : icg * kvol;
  const fc_dense_ops *dense =
      dense_layer(params->transposed, icg, ocg, kvol, kernels) ? kernels->dense_f32 : NULL;
  simd_state *st = malloc(sizeof *st);
  if (!st) return FC_STATUS_OUT_OF_MEMORY;
  if (phased_layer(params->transposed, icg, ocg, params->kernel, params->stride, kernels)) {
    /* one-shot: packed at execution, block by block right before use */
    st->tile = NULL;
    st->group_floats = 0;
    st->packed = NULL;
    int64_t floats = 0;
    if (!one_shot) {
      const fc_problem layer = {
          .in_per_group = icg,
          .out_per_group = ocg,
          .groups = groups,
          .kernel = {params->kernel[0], params->kernel[1], params->kernel[2]},
          .stride = {params->stride[0], params->stride[1], params->stride[2]},
          .dilation = {params->dilation[0], params->dilation[1], params->dilation[2]},
          .kernel_volume = kvol,
      };
      if (pack_phases(&layer, weight, kernels->dense_f32, &st->packed, &floats) != FC_STATUS_OK) {
        free(st);
        return FC_STATUS_OUT_OF_MEMORY;
      }
    }
    *state = st;
    *bytes = (int64_t)sizeof *st + floats * (int64_t)sizeof(float);
    return FC_STATUS_OK;
  }
  /* the tile that pads the output channels least; transposed layers keep the main tile */
  st->tile = params->transposed ? &ops->tile : fc_gemm_tile_for_rows(ops, (size_t)m);
  st->group_floats = dense ? fc_dense_group_floats(dense, m, k)
                           : (int64_t)ops->packed_a_floats(st->tile, (size_t)m, (size_t)k);
  /* A one-shot layer packs at execution: with all its threads, and a dense layer as its size says
   * is best. */
  if (one_shot) {
    st->packed = NULL;
    *state = st;
    *bytes = (int64_t)sizeof *st;
    return FC_STATUS_OK;
  }
  /* From the scratch pool: one-shot plans pack per call, and a fresh multi-megabyte block would
   * page-fault every time. */
  st->packed = scratch_floats(st->group_floats * groups);
  if (!st->packed) {
    free(st);
    return FC_STATUS_OUT_OF_MEMORY;
  }
  const float *w = weight;
  if (dense)
    for (int64_t j = 0; j < groups * fc_div_ceil(m, dense->nr); j++)
      fc_pack_dense_panel(dense, m, icg, kvol, w, j, st->packed);
  else
    for (int64_t j = 0; j < groups * fc_div_ceil(m, st->tile->mr); j++)
      pack_gemm_panel(ops, st, params->transposed, m, k, w, j, st->packed);
  *state = st;
  *bytes = (int64_t)sizeof *st + st->group_floats * groups * (int64_t)sizeof(float);
  return FC_STATUS_OK;
}

void fc_direct_simd_release(void *state) {
  simd_state *st = state;
  if (st) fc_scratch_put(st->packed);
  free(st);
}

/* The padded copy's geometry; 0 when it would not fit in 64 bits or would dwarf the layer: huge
 * padding with huge dilation (a span of 2^21 over a 5x5 input) makes a legal layer whose padded
 * extent is astronomically larger than its input and output, which the portable path computes
 * without a copy. */
static int padded_geometry(const fc_problem *p, padded_input *g) {
  int64_t extent[2];
  for (int i = 0; i < 2; i++) /* all terms are under 2^58 (fc_problem_make) */
    extent[i] = (p->out[i] - 1) * p->stride[i] + (p->kernel[i] - 1) * p->dilation[i] + 1;
  g->dp = extent[0];
  g->hp = extent[1];
  g->sw = p->stride[2];
  g->wq = p->out[2] + (p->kernel[2] - 1) * p->dilation[2] / p->stride[2];
  const int64_t limit = 4 * (p->in_volume + p->out_volume) + 4096;
  return !__builtin_mul_overflow(g->dp, g->hp, &g->plane) &&
         !__builtin_mul_overflow(g->plane, g->sw, &g->plane) &&
         !__builtin_mul_overflow(g->plane, g->wq, &g->plane) && g->plane <= limit;
}

int fc_direct_simd_wanted(const fc_problem *p) {
  /* Layers with no input channels are their bias, which the portable path writes (a GEMM with
   * K = 0 writes nothing). Thin transposed groups would waste the GEMM tile. Convolutions need a
   * padded copy of proportionate size. */
  padded_input g;
  return p->dtype == FC_DTYPE_FLOAT32 && p->in_per_group > 0 &&
         (p->transposed ? p->in_per_group * p->out_per_group >= 4 : padded_geometry(p, &g));
}

/* How an execution is cut into items. */
typedef struct split {
  int64_t mblocks, mblock; /* blocks of output rows (channels, or channel x tap for transposed) */
  int64_t chunks, chunk;   /* chunks of positions */
  int64_t kparts;          /* parts of the reduction, each item's sum added into the output */
  int64_t items;
} split;

/* One image of one group whose positions fit one sliver and a column (a 7x7 map on AVX-512's 48-
 * wide tile), its B gathered from the input's patches and its weights unpacked, is cut along the
 * reduction, one part per thread: cut along the output channels, every part gathered all of B
 * again (resnet50.l4.3x3 at two threads: 0.528 -> 0.520 ms). A pointwise layer's B, the input
 * itself, costs too little to gain (512 -> 2048 channels on 7x7 ran 4% slower). The parts' sums
 * but the first's go to a buffer and are added into the output after them (forward_gemm). */
static int64_t reduction_parts(const fc_problem *p, const fc_gemm_tile *t, int threads, int packs_a,
                               int patches) {
  const int64_t depth = p->in_per_group * p->kernel_volume;
  const int one_sliver = p->out_volume <= t->nr + 1 && p->batch * p->groups == 1;
  if (threads < 2 || !packs_a || !patches || !one_sliver || depth < threads * FC_GEMM_KC) return 1;
  return threads;
}

/* Items of (blocks of output rows) x (chunks of positions), at least the `want` the threads need,
 * or of parts of the reduction (reduction_parts).
 * Each item packs the B slivers of its chunk once per row block, and, with unpacked weights (a
 * one-shot call), the A blocks of its rows: the cut packs the least in all, rows * positions
 * counted for B and A alike (resnet50.l3.1x1 at two threads: 256 rows, 196 positions, cut in
 * positions only, packed its 1 MiB of weights in every one of 5 items). */
static split split_forward(const fc_problem *p, const fc_gemm_tile *t, int threads, int packs_a,
                           int patches) {
  split s;
  const int64_t outer = p->batch * p->groups;
  /* One GEMM on unpacked weights is cut in exactly one item per thread: every further item
   * packs its rows again (l3.1x1 at two threads: 0.93 -> 0.74 ms against 6 items). */
  const int64_t per_thread = packs_a && outer == 1 ? 1 : FC_ITEMS_PER_THREAD;
  const int64_t want = threads > 1 ? (int64_t)threads * per_thread : 1;
  const int64_t slivers = fc_div_ceil(p->out_volume, t->nr);
  const int64_t row_panels = fc_div_ceil(p->out_per_group, t->mr);
  const int64_t reachable = fc_min(want, outer * row_panels * slivers);
  int64_t best_cost = INT64_MAX, best_mparts = 1, best_parts = 1;
  for (int64_t mparts = 1; mparts <= fc_min(row_panels, want); mparts++) {
    const int64_t parts = fc_min(slivers, fc_max(1, fc_div_ceil(want, outer * mparts)));
    const int64_t cost = mparts * p->out_volume + (packs_a ? parts * p->out_per_group : 0);
    /* at equal cost, fewer row blocks: a plan's packed weights are shared */
    if (outer * mparts * parts >= reachable && cost < best_cost) {
      best_cost = cost;
      best_mparts = mparts;
      best_parts = parts;
    }
  }
  s.kparts = reduction_parts(p, t, threads, packs_a, patches);
  if (s.kparts > 1) best_mparts = best_parts = 1;
  s.chunk = fc_div_ceil(slivers, best_parts) * t->nr;
  s.chunks = fc_div_ceil(p->out_volume, s.chunk);
  s.mblock = fc_div_ceil(row_panels, best_mparts) * t->mr;
  s.mblocks = fc_div_ceil(p->out_per_group, s.mblock);
  s.items = outer * s.mblocks * s.chunks * s.kparts;
  return s;
}

/* Output rows narrower than this are computed several at a time as one flat run through the
 * padded block (with unit strides its rows line up with the output's), into a buffer from which
 * the valid columns are copied: a 7x7 map is then 2 vector iterations instead of 7 partial ones. */
#define FC_FLAT_RUN_WIDTH 64

/* The row kernel over items (image, group, block of output channels, depth, band of rows). */
static int forward_rows(const fc_engine_call *call, const fc_simd_kernels *kernels,
                        const padded_input *g, const float *padded, const int64_t *tap_offset,
                        float *y) {
  const fc_problem *p = call->problem;
  const int64_t blocks = fc_div_ceil(p->out_per_group, FC_ROWS_MAX_OUT);
  const int64_t planes = p->batch * p->groups * blocks * p->out[0];
  const int64_t want = call->num_threads > 1 ? (int64_t)call->num_threads * FC_ITEMS_PER_THREAD : 1;
  const int64_t bands = fc_min(p->out[1], fc_max(1, fc_div_ceil(want, planes)));
  const int64_t band = fc_div_ceil(p->out[1], bands);
  const int64_t row_floats = g->sw * g->wq, wstride = p->in_per_group * p->kernel_volume;
  const int flat = p->stride[1] == 1 && g->sw == 1 && p->out[2] < FC_FLAT_RUN_WIDTH;
  float *run =
      flat ? scratch_floats(FC_ROWS_MAX_OUT * (band * row_floats + FC_PATCHES_SLACK)) : NULL;
#pragma omp for schedule(static)
  for (int64_t item = 0; item < planes * bands; item++) {
    if (flat && !run) continue;
    const int64_t plane = item / bands, r0 = item % bands * band, r1 = fc_min(p->out[1], r0 + band);
    const int64_t od = plane % p->out[0], b = plane / p->out[0] % blocks;
    const int64_t gi = plane / (p->out[0] * blocks) % p->groups;
    const int64_t n = plane / (p->out[0] * blocks * p->groups);
    const int64_t oc = gi * p->out_per_group + b * FC_ROWS_MAX_OUT;
    fc_conv_rows r = {
        .padded = padded + (n * p->in_channels + gi * p->in_per_group) * g->plane,
        .tap_offset = tap_offset,
        .plane = g->plane,
        .in_per_group = p->in_per_group,
        .taps = p->kernel_volume,
        .weight = (const float *)call->weight + oc * wstride,
        .bias = call->bias ? (const float *)call->bias + oc : NULL,
        .out_count = fc_min(FC_ROWS_MAX_OUT, p->out_per_group - b * FC_ROWS_MAX_OUT),
    };
    const int64_t first_row = od * p->stride[0] * g->hp * row_floats;
    float *y_plane = y + (n * p->out_channels + oc) * p->out_volume + od * p->out[1] * p->out[2];
    if (r0 >= r1) continue;
    if (flat) {
      const int64_t run_stride = band * row_floats + FC_PATCHES_SLACK;
      r.base = first_row + r0 * row_floats;
      r.count = (r1 - r0 - 1) * row_floats + p->out[2];
      r.y = run;
      r.y_channel_stride = run_stride;
      kernels->conv_rows_f32(&r);
      for (int64_t o = 0; o < r.out_count; o++)
        for (int64_t oh = r0; oh < r1; oh++)
          memcpy(y_plane + o * p->out_volume + oh * p->out[2],
                 run + o * run_stride + (oh - r0) * row_floats, (size_t)p->out[2] * sizeof(float));
    } else {
      r.count = p->out[2];
      r.y_channel_stride = p->out_volume;
      for (int64_t oh = r0; oh < r1; oh++) {
        r.base = first_row + oh * p->stride[1] * row_floats;
        r.y = y_plane + oh * p->out[2];
        kernels->conv_rows_f32(&r);
      }
    }
  }
  const int failed = flat && !run;
  fc_scratch_put(run);
  return failed;
}

/* The GEMM over items (image, group, block of output channels, chunk of positions, part of the
 * reduction), on the plan's packed weights, or a one-shot call's weights as they are, which the
 * driver packs a block at a time right before use (packed whole first, l3.1x1's 1 MiB of weights
 * went to L3 and came back). partial: the reduction parts' sums past the first (split_forward). */
static int forward_gemm(const fc_engine_call *call, const fc_simd_kernels *kernels, const split *s,
                        const padded_input *g, const float *padded, const int64_t *row_offset,
                        const float *x, float *partial, float *y) {
  const fc_problem *p = call->problem;
  const fc_gemm_ops *ops = kernels->gemm_f32;
  const fc_gemm_tile *tile = ((const simd_state *)call->state)->tile;
  const int64_t depth = p->in_per_group * p->kernel_volume;
  const simd_state *st = call->state;
  float *work = scratch_floats(FC_GEMM_WORK_FLOATS);
#pragma omp for schedule(dynamic, 1)
  for (int64_t item = 0; item < s->items; item++) {
    if (!work) continue;
    const int64_t kpart = item % s->kparts, chunk = item / s->kparts % s->chunks,
                  mb = item / (s->kparts * s->chunks) % s->mblocks,
                  gi = item / (s->kparts * s->chunks * s->mblocks) % p->groups,
                  n = item / (s->kparts * s->chunks * s->mblocks * p->groups);
    const int64_t q0 = chunk * s->chunk, count = fc_min(s->chunk, p->out_volume - q0);
    const int64_t m0 = mb * s->mblock, m = fc_min(s->mblock, p->out_per_group - m0);
    const int64_t oc0 = gi * p->out_per_group + m0;
    /* the part's rows of B: whole K blocks, spread evenly */
    const int64_t kblocks = fc_div_ceil(depth, FC_GEMM_KC),
                  k0 = fc_min(depth, kpart * kblocks / s->kparts * FC_GEMM_KC),
                  k1 = fc_min(depth, (kpart + 1) * kblocks / s->kparts * FC_GEMM_KC);
    const size_t lda = st->packed ? 0 : (size_t)depth;
    const float *a = st->packed ? st->packed + gi * st->group_floats + m0 * depth
                                : (const float *)call->weight + oc0 * depth + k0;
    const float *bias = call->bias && kpart == 0 ? (const float *)call->bias + oc0 : NULL;
    float *c = kpart ? partial + (kpart - 1) * p->out_per_group * p->out_volume
                     : y + (n * p->out_channels + oc0) * p->out_volume + q0;
    const int64_t first_channel = n * p->in_channels + gi * p->in_per_group;
    if (!padded) { /* pointwise: B is the input itself */
      const fc_matrix_ctx ctx = {x + (first_channel + k0) * p->in_volume + q0,
                                 (size_t)p->in_volume};
      ops->driver(tile, (size_t)m, (size_t)count, (size_t)(k1 - k0), a, lda, NULL, &ctx, c,
                  (size_t)p->out_volume, bias, work);
    } else {
      const fc_conv_patches ctx = {padded + first_channel * g->plane,
                                   row_offset + k0,
                                   p->out[1],
                                   p->out[2],
                                   p->stride[0] * g->hp * g->sw * g->wq,
                                   p->stride[1] * g->sw * g->wq,
                                   q0};
      ops->driver(tile, (size_t)m, (size_t)count, (size_t)(k1 - k0), a, lda,
                  kernels->pack_patches_f32, &ctx, c, (size_t)p->out_volume, bias, work);
    }
  }
  if (s->kparts > 1) /* after the loop's barrier: the other parts' sums into the first's */
#pragma omp for schedule(static)
    for (int64_t oc = 0; oc < p->out_channels; oc++)
      for (int64_t part = 1; part < s->kparts; part++) {
        const float *src = partial + ((part - 1) * p->out_channels + oc) * p->out_volume;
        float *dst = y + oc * p->out_volume;
        for (int64_t q = 0; q < p->out_volume; q++) dst[q] += src[q];
      }
  const int failed = !work;
  fc_scratch_put(work);
  return failed;
}

/* Where each tap of `channels` input channels starts in the padded input, channel by channel:
 * offset[c * kvol + tap]. Counted up loop by loop, each column's phase and slot worked out once:
 * per-entry divisions took 3 % of resnet50.l4.3x3 (4608 entries of a 1 ms layer). */
static void tap_offsets(const fc_problem *p, const padded_input *g, int64_t channels,
                        int64_t *offset) {
  const int64_t kw_count = p->kernel[2];
  for (int64_t kw = 0; kw < kw_count; kw++) {
    const int64_t column = fc_phase_split_column(kw * p->dilation[2], g->sw, g->wq);
    int64_t *o = offset + kw;
    for (int64_t c = 0; c < channels; c++)
      for (int64_t kd = 0; kd < p->kernel[0]; kd++)
        for (int64_t kh = 0; kh < p->kernel[1]; kh++, o += kw_count)
          *o = c * g->plane + (kd * p->dilation[0] * g->hp + kh * p->dilation[1]) * g->sw * g->wq +
               column;
  }
}

static fc_status forward_cf(const fc_engine_call *call, const fc_simd_kernels *kernels,
                            const float *x, float *y) {
  const fc_problem *p = call->problem;
  const simd_state *st = call->state;
  /* a single-channel 3x3 (an image filter) runs faster on the plane kernel (1.2-1.3x cv2.filter2D
   * on 2048x2048 at one thread, against 1.1x on the depthwise kernel) */
  if (fc_depthwise3x3_layer(p) && !(p->in_channels == 1 && fc_plane_layer(p, kernels)))
    return fc_forward_depthwise3x3(call, kernels, x, y);
  if (fc_plane_layer(p, kernels)) return fc_forward_planes(call, kernels, x, y);
  if (dense_layer(p->transposed, p->in_per_group, p->out_per_group, p->kernel_volume, kernels) &&
      !small_map_gemm(p, st, kernels)) {
    const dense_operands op = {
        p,
        call->weight,
        st->packed,
        call->bias,
        x,
        {y, p->out_channels * p->out_volume, p->out_volume, p->out[1] * p->out[2], p->out[2], 1},
    };
    return fc_forward_dense(&op, 1, kernels, call->num_threads);
  }
  const int64_t kvol = p->kernel_volume, depth = p->in_per_group * kvol;
  const int rows = thin_groups(p->in_per_group, p->out_per_group, kvol, &kernels->gemm_f32->tile);
  const int pointwise = !rows && kvol == 1 && p->stride[0] * p->stride[1] * p->stride[2] == 1 &&
                        p->out_volume == p->in_volume;
  padded_input g;
  if (!padded_geometry(p, &g)) return FC_STATUS_UNSUPPORTED; /* fc_direct_simd_wanted refused it */
  const int64_t channels = p->batch * p->in_channels;
  const split s =
      rows ? (split){0} : split_forward(p, st->tile, call->num_threads, !st->packed, !pointwise);
  float *padded = NULL, *partial = NULL;
  int64_t *offset = NULL; /* per tap for the row kernel, per B row for the GEMM */
  if (!pointwise) {
    padded = scratch_floats(channels * g.plane + FC_PATCHES_SLACK);
    offset = malloc((size_t)(rows ? kvol : depth) * sizeof *offset);
  }
  if (s.kparts > 1) partial = scratch_floats((s.kparts - 1) * p->out_channels * p->out_volume);
  if ((!pointwise && (!padded || !offset)) || (s.kparts > 1 && !partial)) {
    fc_scratch_put(padded);
    fc_scratch_put(partial);
    free(offset);
    return FC_STATUS_OUT_OF_MEMORY;
  }
  if (!pointwise) {
    memset(padded + channels * g.plane, 0, FC_PATCHES_SLACK * sizeof(float));
    tap_offsets(p, &g, rows ? 1 : p->in_per_group, offset);
  }
  int failed = 0;
#pragma omp parallel num_threads(call->num_threads) if (call->num_threads > 1)
  {
    if (padded) {
#pragma omp for schedule(static)
      for (int64_t c = 0; c < channels; c++)
        fc_pad_channel(kernels->pad_rows_f32, p, &g, x + c * p->in_volume, padded + c * g.plane);
    }
    if (rows ? forward_rows(call, kernels, &g, padded, offset, y)
             : forward_gemm(call, kernels, &s, &g, padded, offset, x, partial, y)) {
#pragma omp atomic write
      failed = 1;
    }
  }
  fc_scratch_put(partial);
  fc_scratch_put(padded);
  free(offset);
  return failed ? FC_STATUS_OUT_OF_MEMORY : FC_STATUS_OK;
}

/* The outputs of a bias-only phase p (a stride-1 problem) at out: the bias, or zero. */
static void fill_target(const fc_problem *p, const dense_target *out, const float *bias) {
  for (int64_t n = 0; n < p->batch; n++)
    for (int64_t oc = 0; oc < p->out_channels; oc++)
      for (int64_t od = 0; od < p->out[0]; od++)
        for (int64_t oh = 0; oh < p->out[1]; oh++) {
          float *y = out->y + n * out->image + oc * out->channel + od * out->plane + oh * out->row;
          for (int64_t ow = 0; ow < p->out[2]; ow++) y[ow * out->col] = bias ? bias[oc] : 0.0f;
        }
}

/* A one-shot call packs the phase weights per block of output channels right before the block's
 * phases use them, into a buffer of about this size, instead of packing them all first: the
 * packed copy then stays in cache rather than crossing memory twice. */
#define PHASE_BLOCK_BYTES (1024 * 1024)

/* A transposed layer as one dense convolution per output phase (transposed_phases.h) over items,
 * one per thread when there are enough, else the phases' own split: (group, block of output
 * channels) running every phase of the block when the call packs the weights (the block's packing
 * then serves all its phases and images), else (image, group, block) running every phase, or, when
 * images and groups leave threads idle, (image, group, block, phase): the phases of an item share
 * one band (forward_dense), the phases split over items build one each (dcgan.deconv's plan at two
 * threads: 3.26-3.28 ms of CPU time as 2 + 2 phases, 3.46 as 2 blocks of 4 phases each, before the
 * bands were shared). */
static fc_status transposed_phases(const fc_engine_call *call, const fc_simd_kernels *kernels,
                                   const float *x, float *y) {
  const fc_problem *p = call->problem;
  const simd_state *st = call->state;
  const fc_dense_ops *ops = kernels->dense_f32;
  const int64_t nr = ops->nr, icg = p->in_per_group, ocg = p->out_per_group;
  const int64_t phases = fc_phase_count(p->stride), panels = fc_div_ceil(ocg, nr);
  const int threads = call->num_threads;
  /* Blocks: all panels for packed weights, else what fits PHASE_BLOCK_BYTES; then enough items for
   * the threads. */
  const int pack = !st->packed;
  const int64_t images = pack ? 1 : p->batch;
  const int64_t split_phases = !pack && images * p->groups < threads ? phases : 1;
  const int64_t panel_bytes = icg * p->kernel_volume * nr * 4;
  int64_t block = pack ? fc_max(1, fc_min(panels, PHASE_BLOCK_BYTES / panel_bytes)) : panels;
  block =
      fc_min(block, fc_div_ceil(panels, fc_div_ceil(threads, split_phases * images * p->groups)));
  const int64_t blocks = fc_div_ceil(panels, block);
  const int64_t items = split_phases * images * p->groups * blocks;
  int64_t floats;
  int64_t *base = phase_layout(p, pack ? block : p->groups * panels, nr, &floats);
  if (!base) return FC_STATUS_OUT_OF_MEMORY;
  const int outer = threads > 1 && items >= threads, inner = outer ? 1 : threads;
  int failed = 0;
#pragma omp parallel for num_threads(threads) if (outer) schedule(dynamic, 1)
  for (int64_t item = 0; item < items; item++) {
    const int64_t part = item % split_phases, b = item / split_phases % blocks,
                  g = item / (split_phases * blocks) % p->groups,
                  image = item / (split_phases * blocks * p->groups);
    const int64_t o0 = b * block * nr, o1 = fc_min(ocg, o0 + block * nr);
    const int64_t first_panel = pack ? 0 : g * panels + b * block;
    /* the item's images and phases: all of them when it packs */
    const int64_t n0 = pack ? 0 : image, n1 = pack ? p->batch : image + 1;
    const int64_t phase0 = split_phases > 1 ? part : 0,
                  phase1 = split_phases > 1 ? part + 1 : phases;
    float *packed = pack ? scratch_floats(floats) : NULL;
    fc_problem *sub = malloc((size_t)(phase1 - phase0) * sizeof *sub);
    dense_operands *op = malloc((size_t)(phase1 - phase0) * sizeof *op);
    int ok =
        sub && op &&
        (!pack || (packed && !fc_pack_tap_classes(
                                 p->kernel, p->stride, p->dilation, icg, ocg, ops,
                                 (const float *)call->weight + g * icg * ocg * p->kernel_volume, o0,
                                 o1, base, 0, packed)));
    const float *weights = pack ? packed : st->packed;
    const float *bias = call->bias ? (const float *)call->bias + g * ocg + o0 : NULL;
    for (int64_t n = n0; n < n1 && ok; n++) {
      /* the phases with taps, run on one band; the others written here */
      int64_t count = 0;
      for (int64_t phase = phase0; phase < phase1; phase++) {
        fc_problem *q = &sub[count];
        int64_t first;
        const int64_t cls = fc_transposed_phase(p, phase, q, &first);
        if (cls == -1) continue;
        q->batch = 1;
        q->groups = 1;
        q->in_channels = icg;
        q->out_channels = q->out_per_group = o1 - o0;
        const dense_operands phase_op = {
            q,
            NULL,
            cls < 0 ? NULL
                    : weights + base[cls] +
                          first_panel * fc_tap_class_panel_floats(p->kernel, p->stride, p->dilation,
                                                                  cls, icg, nr),
            bias,
            x + (n * p->in_channels + g * icg) * p->in_volume,
            {y + (n * p->out_channels + g * ocg + o0) * p->out_volume + first, 0, p->out_volume,
             p->stride[0] * p->out[1] * p->out[2], p->stride[1] * p->out[2], p->stride[2]},
        };
        if (cls == -2)
          fill_target(q, &phase_op.out, bias);
        else
          op[count++] = phase_op;
      }
      if (count) ok = fc_forward_dense(op, count, kernels, inner) == FC_STATUS_OK;
    }
    if (!ok) {
#pragma omp atomic write
      failed = 1;
    }
    free(sub);
    free(op);
    fc_scratch_put(packed);
  }
  free(base);
  return failed ? FC_STATUS_OUT_OF_MEMORY : FC_STATUS_OK;
}

static fc_status transposed_cf(const fc_engine_call *call, const fc_simd_kernels *kernels,
                               const float *x, float *y) {
  const fc_problem *p = call->problem;
  if (phased_layer(1, p->in_per_group, p->out_per_group, p->kernel, p->stride, kernels))
    return transposed_phases(call, kernels, x, y);
  const fc_gemm_ops *ops = kernels->gemm_f32;
  const fc_gemm_tile *tile = &ops->tile;
  const int64_t kvol = p->kernel_volume, icg = p->in_per_group, ocg = p->out_per_group;
  const int64_t outer = p->batch * p->groups;
  const int64_t want = call->num_threads > 1 ? (int64_t)call->num_threads * FC_ITEMS_PER_THREAD : 1;
  /* A block's first row, o0 * kvol, must start a packed panel of MR rows. */
  const int64_t unit = tile->mr / fc_gcd(tile->mr, kvol);
  const int64_t parts = fc_max(1, fc_div_ceil(want, outer));
  const int64_t block =
      fc_min(fc_div_ceil(ocg, unit), fc_div_ceil(fc_div_ceil(ocg, parts), unit)) * unit;
  const int64_t blocks = fc_div_ceil(ocg, block), items = outer * blocks;
  const int64_t chunk = fc_min(p->in_volume, fc_max(tile->nr, FC_COLUMN_FLOATS / (block * kvol)));
  const int64_t flat[3] = {1, 1, p->out_volume};
  const fc_strides ys_flat = fc_activation_strides(FC_LAYOUT_CHANNELS_FIRST, p->out_channels, flat);
  const fc_strides ys = fc_activation_strides(FC_LAYOUT_CHANNELS_FIRST, p->out_channels, p->out);
  /* the GEMM's weights: a one-shot call's packed here, by all the threads */
  const simd_state *st = call->state;
  float *packed = st->packed ? NULL : scratch_floats(p->groups * st->group_floats);
  if (!st->packed && !packed) return FC_STATUS_OUT_OF_MEMORY;
  const float *weights = st->packed ? st->packed : packed;
  int failed = 0;
#pragma omp parallel num_threads(call->num_threads) if (call->num_threads > 1 && items > 1)
  {
    float *work = scratch_floats(FC_GEMM_WORK_FLOATS);
    float *col = scratch_floats(block * kvol * chunk);
    if (!work || !col) {
#pragma omp atomic write
      failed = 1;
    }
    if (packed) {
#pragma omp for schedule(static)
      for (int64_t j = 0; j < p->groups * fc_div_ceil(ocg * kvol, st->tile->mr); j++)
        pack_gemm_panel(ops, st, 1, ocg * kvol, icg, call->weight, j, packed);
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; item++) {
      if (!work || !col) continue;
      const int64_t b = item % blocks, gi = item / blocks % p->groups,
                    n = item / (blocks * p->groups);
      const int64_t o0 = b * block, ob = fc_min(block, ocg - o0);
      fc_fill_bias_f32(call->bias, y, &ys_flat, n, gi * ocg + o0, ob, 0, p->out_volume);
      /* A = W_g^T, packed: row (oc, tap), column ic. */
      const float *a = weights + gi * st->group_floats + o0 * kvol * icg;
      const float *x_g = x + (n * p->in_channels + gi * icg) * p->in_volume;
      for (int64_t p0 = 0; p0 < p->in_volume; p0 += chunk) {
        const int64_t count = fc_min(chunk, p->in_volume - p0);
        const fc_matrix_ctx ctx = {x_g + p0, (size_t)p->in_volume};
        ops->driver(tile, (size_t)(ob * kvol), (size_t)count, (size_t)icg, a, 0, NULL, &ctx, col,
                    (size_t)count, NULL, work);
        fc_scatter_columns_f32(p, y, &ys, n, gi, o0, ob, p0, count, col, count, 1);
      }
    }
    fc_scratch_put(work);
    fc_scratch_put(col);
  }
  fc_scratch_put(packed);
  return failed ? FC_STATUS_OUT_OF_MEMORY : FC_STATUS_OK;
}

/* dst[b][j][i] = src[b][i][j] for b < batch, i < rows, j < cols; in 8 x 8 blocks. */
static void transpose_batched(const float *src, float *dst, int64_t batch, int64_t rows,
                              int64_t cols, int threads) {
  const int64_t row_blocks = fc_div_ceil(rows, 8), col_blocks = fc_div_ceil(cols, 8);
  const int64_t tiles = batch * row_blocks * col_blocks;
#pragma omp parallel for num_threads(threads) if (threads > 1 && tiles > 64) schedule(static)
  for (int64_t t = 0; t < tiles; t++) {
    const int64_t cb = t % col_blocks, rb = t / col_blocks % row_blocks,
                  b = t / (col_blocks * row_blocks);
    const float *s = src + b * rows * cols;
    float *d = dst + b * rows * cols;
    for (int64_t i = rb * 8; i < fc_min(rows, rb * 8 + 8); i++)
      for (int64_t j = cb * 8; j < fc_min(cols, cb * 8 + 8); j++) d[j * rows + i] = s[i * cols + j];
  }
}

static fc_status execute_cf(const fc_engine_call *call, const fc_simd_kernels *kernels,
                            const float *x, float *y) {
  return call->problem->transposed ? transposed_cf(call, kernels, x, y)
                                   : forward_cf(call, kernels, x, y);
}

fc_status fc_direct_simd_execute(const fc_engine_call *call, const fc_simd_kernels *kernels) {
  const fc_problem *p = call->problem;
  if (p->layout == FC_LAYOUT_CHANNELS_FIRST)
    return execute_cf(call, kernels, call->input, call->output);
  /* Channels-last: run channels-first between two transposes. */
  fc_problem cf = *p;
  cf.layout = FC_LAYOUT_CHANNELS_FIRST;
  fc_engine_call cf_call = *call;
  cf_call.problem = &cf;
  float *x = scratch_floats(p->batch * p->in_channels * p->in_volume);
  float *y = scratch_floats(p->batch * p->out_channels * p->out_volume);
  fc_status status = FC_STATUS_OUT_OF_MEMORY;
  if (x && y) {
    transpose_batched(call->input, x, p->batch, p->in_volume, p->in_channels, call->num_threads);
    status = execute_cf(&cf_call, kernels, x, y);
    if (status == FC_STATUS_OK)
      transpose_batched(y, call->output, p->batch, p->out_channels, p->out_volume,
                        call->num_threads);
  }
  fc_scratch_put(x);
  fc_scratch_put(y);
  return status;
}
