/* The Winograd engines (winograd.h): F(2x2, 3x3) ("winograd") and the opt-in F(4x4, 3x3)
 * ("winograd_f4"), one mechanism parameterised by the tile's output size m; float32, 1-D or 2-D,
 * 3-tap kernels, stride 1, dilation 1, any padding and groups, either layout, on a SIMD ISA. Work
 * items are (image, group, block of tile rows); a block's transformed input and products stay in
 * L2 while its GEMMs run. */
#include <stdlib.h>
#include <string.h>

#include "api/engine.h"
#include "api/scratch.h"
#include "direct/padded_input.h"
#include "dispatch/kernels.h"
#include "winograd/winograd.h"

/* Floats of V or M per block: about 1 MiB of the two together. */
#define FC_WINOGRAD_BLOCK_FLOATS (INT64_C(1) << 17)
#define FC_ITEMS_PER_THREAD 3
/* Channels-last input is transposed to channels-first in blocks of this many channels and
 * positions (a block of each stays in L1). */
#define FC_TRANSPOSE_BLOCK 32

/* The distance between consecutive frequencies' matrices: a whole number of cache lines plus one,
 * so the (m + 2)^2 streams a transform writes or reads never fall in one cache set (at a
 * power-of-two distance, 512 x 512 weights, they did: 16 streams 1 MiB apart, 3x slower). */
static int64_t skewed(int64_t floats) { return (floats + 15) / 16 * 16 + 16; }

typedef struct winograd_state {
  float *u;              /* U_f of every group, packed for the GEMM: [group][f][panels] */
  int64_t packed_floats; /* of one U_f, skewed */
} winograd_state;

/* The tile kernels of F(m x m) (F(m) for a 1-D layer, whose height kernel is 1) on this ISA. */
static const fc_winograd_tile *tile_kernels(int m, int64_t kernel_h) {
  return &fc_simd_kernels_selected()->winograd->tiles[m == 4][kernel_h == 1];
}

/* The same for both tile sizes. */
static const char *unsupported_reason(const fc_conv_params *p) {
  if (p->dtype != FC_DTYPE_FLOAT32) return "Winograd computes float32 only";
  if (p->transposed) return "Winograd does not compute transposed convolution";
  if (!(p->spatial_dims == 2 && p->kernel[1] == 3 && p->kernel[2] == 3) &&
      !(p->spatial_dims == 1 && p->kernel[2] == 3))
    return "Winograd needs a 1-D layer with a 3-tap kernel or a 2-D layer with a 3x3 kernel";
  if (p->stride[1] != 1 || p->stride[2] != 1 || p->dilation[1] != 1 || p->dilation[2] != 1)
    return "Winograd needs stride 1 and dilation 1";
  if (!fc_simd_kernels_selected()) return "Winograd needs a SIMD instruction set (none selected)";
  return NULL;
}

/* U_f = (G g G^T)_f for every group, written by the ISA kernel straight into the GEMM's packed
 * panels. The block comes from the scratch pool: a one-shot call transforms the weights every
 * time, and a fresh multi-megabyte block would be paid again in page faults. */
static fc_status prepare(const fc_conv_params *p, const void *weight, void **state, int64_t *bytes,
                         int m) {
  const fc_gemm_ops *ops = fc_simd_kernels_selected()->gemm_f32;
  const fc_winograd_tile *tile = tile_kernels(m, p->kernel[1]);
  const int64_t groups = p->groups, icg = p->in_channels / groups, ocg = p->out_channels / groups;
  const int64_t frequencies = tile->t_h * tile->t_w, taps = p->kernel[1] * p->kernel[2];
  winograd_state *st = calloc(1, sizeof *st);
  if (!st) return FC_STATUS_OUT_OF_MEMORY;
  st->packed_floats = skewed((int64_t)ops->packed_a_floats(&ops->tile, (size_t)ocg, (size_t)icg));
  st->u = fc_scratch_get((size_t)(groups * frequencies * st->packed_floats + 1) * sizeof(float));
  if (!st->u) {
    free(st);
    return FC_STATUS_OUT_OF_MEMORY;
  }
  for (int64_t g = 0; g < groups; g++)
    tile->weights_f32((const float *)weight + g * ocg * icg * taps, ocg, icg, ops->tile.mr,
                      st->u + g * frequencies * st->packed_floats, st->packed_floats);
  *state = st;
  *bytes = (int64_t)sizeof *st + groups * frequencies * st->packed_floats * (int64_t)sizeof(float);
  return FC_STATUS_OK;
}

static void release(void *state) {
  winograd_state *st = state;
  if (st) fc_scratch_put(st->u);
  free(st);
}

/* Channels-last images [n][volume][channels] to channels-first [n][channels][volume]. */
static void transpose_block(const float *x, int64_t channels, int64_t volume, int64_t n, int64_t c0,
                            int64_t v0, float *dst) {
  const int64_t c1 = fc_min(channels, c0 + FC_TRANSPOSE_BLOCK),
                v1 = fc_min(volume, v0 + FC_TRANSPOSE_BLOCK);
  const float *image = x + n * volume * channels;
  float *out = dst + n * channels * volume;
  for (int64_t v = v0; v < v1; v++)
    for (int64_t c = c0; c < c1; c++) out[c * volume + v] = image[v * channels + c];
}

static fc_status execute(const fc_engine_call *call, int m) {
  const fc_problem *p = call->problem;
  const fc_simd_kernels *kernels = fc_simd_kernels_selected();
  const fc_gemm_ops *ops = kernels->gemm_f32;
  const fc_winograd_tile *tile = tile_kernels(m, p->kernel[1]);
  const winograd_state *st = call->state;
  const int64_t icg = p->in_per_group, ocg = p->out_per_group;
  const int frequencies = tile->t_h * tile->t_w;
  const int64_t tiles_h = fc_div_ceil(p->out[1], tile->m_h),
                tiles_w = fc_div_ceil(p->out[2], tile->m_w);
  /* m_w phases of the padded width; tile column c of tile t is phase c % m_w, index
   * t + c / m_w (padded_input.h). */
  const int64_t hp = tile->m_h * tiles_h + tile->t_h - tile->m_h,
                wq = tiles_w + (tile->t_w - 1) / tile->m_w;
  const int64_t plane = hp * tile->m_w * wq;
  const padded_input g = {.hp = hp, .sw = tile->m_w, .wq = wq, .dp = 1, .plane = plane};
  const int64_t channels = p->batch * p->in_channels;
  /* Blocks of whole tile rows, as many as fit the budget, cut finer only to feed the threads. */
  const int64_t per_row = frequencies * fc_max(icg, ocg) * tiles_w;
  int64_t block = fc_max(1, fc_min(tiles_h, FC_WINOGRAD_BLOCK_FLOATS / per_row));
  const int64_t outer = p->batch * p->groups;
  if (call->num_threads > 1 &&
      outer * fc_div_ceil(tiles_h, block) < call->num_threads * FC_ITEMS_PER_THREAD)
    block = fc_max(1, tiles_h / fc_div_ceil(call->num_threads * FC_ITEMS_PER_THREAD, outer));
  const int64_t blocks = fc_div_ceil(tiles_h, block), items = outer * blocks;
  const int64_t tb_max = block * tiles_w;
  const int64_t v_floats = frequencies * skewed(icg * tb_max),
                m_floats = frequencies * skewed(ocg * tb_max);
  const int channels_last = p->layout == FC_LAYOUT_CHANNELS_LAST;
  /* Channels-last output is written in place (y_col = channels); its input is transposed first. */
  const int64_t y_col = channels_last ? p->out_channels : 1;
  const int64_t transposed_floats = channels_last ? channels * p->in_volume : 0;
  float *padded = fc_scratch_get((size_t)(channels * plane + FC_WINOGRAD_SLACK) * sizeof(float));
  float *transposed =
      channels_last ? fc_scratch_get((size_t)transposed_floats * sizeof(float)) : NULL;
  if (!padded || (channels_last && !transposed)) {
    fc_scratch_put(padded);
    fc_scratch_put(transposed);
    return FC_STATUS_OUT_OF_MEMORY;
  }
  memset(padded + channels * plane, 0, FC_WINOGRAD_SLACK * sizeof(float));
  const float *x = channels_last ? transposed : call->input, *bias = call->bias;
  float *y = call->output;
  int failed = 0;
#pragma omp parallel num_threads(call->num_threads) if (call->num_threads > 1)
  {
    if (channels_last) {
      const int64_t cb = fc_div_ceil(p->in_channels, FC_TRANSPOSE_BLOCK),
                    vb = fc_div_ceil(p->in_volume, FC_TRANSPOSE_BLOCK);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < p->batch * vb * cb; i++)
        transpose_block(call->input, p->in_channels, p->in_volume, i / (vb * cb),
                        i % cb * FC_TRANSPOSE_BLOCK, i / cb % vb * FC_TRANSPOSE_BLOCK, transposed);
    }
#pragma omp for schedule(static)
    for (int64_t c = 0; c < channels; c++)
      fc_pad_channel(p, &g, x + c * p->in_volume, padded + c * plane);
    float *v = fc_scratch_get((size_t)(v_floats + FC_WINOGRAD_SLACK) * sizeof(float));
    float *mv = fc_scratch_get((size_t)(m_floats + FC_WINOGRAD_SLACK) * sizeof(float));
    float *work = fc_scratch_get(FC_GEMM_WORK_FLOATS * sizeof(float));
    if (!v || !mv || !work) {
#pragma omp atomic write
      failed = 1;
    } else {
      memset(mv + m_floats, 0, FC_WINOGRAD_SLACK * sizeof(float));
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; item++) {
      if (!v || !mv || !work) continue;
      const int64_t b = item % blocks, grp = item / blocks % p->groups,
                    n = item / (blocks * p->groups);
      const int64_t th0 = b * block, th_count = fc_min(block, tiles_h - th0),
                    tb = th_count * tiles_w, v_stride = skewed(icg * tb),
                    m_stride = skewed(ocg * tb);
      const float *in = padded + (n * p->in_channels + grp * icg) * plane;
      for (int64_t ic = 0; ic < icg; ic++)
        for (int64_t r = 0; r < th_count; r++)
          tile->input_f32(in + ic * plane, wq, tile->m_h * (th0 + r), tiles_w,
                          v + ic * tb + r * tiles_w, v_stride);
      for (int f = 0; f < frequencies; f++) {
        const float *a = st->u + (grp * frequencies + f) * st->packed_floats;
        const fc_matrix_ctx ctx = {v + f * v_stride, (size_t)tb};
        ops->driver(&ops->tile, (size_t)ocg, (size_t)tb, (size_t)icg, a, ops->pack_b_matrix, &ctx,
                    mv + f * m_stride, (size_t)tb, NULL, work);
      }
      for (int64_t oc = 0; oc < ocg; oc++) {
        const int64_t channel = grp * ocg + oc;
        float *y_channel = channels_last ? y + n * p->out_volume * p->out_channels + channel
                                         : y + (n * p->out_channels + channel) * p->out_volume;
        for (int64_t r = 0; r < th_count; r++) {
          const int64_t oh = tile->m_h * (th0 + r);
          tile->output_f32(mv + oc * tb + r * tiles_w, m_stride, tiles_w,
                           bias ? bias + channel : NULL, y_channel + oh * p->out[2] * y_col,
                           p->out[2] * y_col, y_col, fc_min(tile->m_h, p->out[1] - oh), p->out[2]);
        }
      }
    }
    fc_scratch_put(v);
    fc_scratch_put(mv);
    fc_scratch_put(work);
  }
  fc_scratch_put(padded);
  fc_scratch_put(transposed);
  return failed ? FC_STATUS_OUT_OF_MEMORY : FC_STATUS_OK;
}

/* The two engines: the tile size bound into each entry point. */
#define WINOGRAD_ENGINE(NAME, ALGORITHM, M)                                                  \
  static const char *NAME##_unsupported_reason(const fc_conv_params *p) {                    \
    return unsupported_reason(p);                                                            \
  }                                                                                          \
  static fc_status NAME##_prepare(const fc_conv_params *p, const void *weight, int one_shot, \
                                  void **state, int64_t *bytes) {                            \
    (void)one_shot; /* one-shot calls transform the weights whole, as plans do */            \
    return prepare(p, weight, state, bytes, M);                                              \
  }                                                                                          \
  static fc_status NAME##_execute(const fc_engine_call *call) { return execute(call, M); }   \
  const fc_engine fc_engine_##NAME = {                                                       \
      .algorithm = ALGORITHM,                                                                \
      .unsupported_reason = NAME##_unsupported_reason,                                       \
      .prepare = NAME##_prepare,                                                             \
      .execute = NAME##_execute,                                                             \
      .release = release,                                                                    \
  };

WINOGRAD_ENGINE(winograd, FC_ALGORITHM_WINOGRAD, 2)
WINOGRAD_ENGINE(winograd_f4, FC_ALGORITHM_WINOGRAD_F4, 4)
