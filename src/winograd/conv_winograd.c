/* The Winograd F(2x2, 3x3) engine (winograd.h): float32, 2-D, 3x3, stride 1, dilation 1, any
 * padding and groups, channels-first, on a SIMD ISA. Work items are (image, group, block of tile
 * rows); a block's transformed input and products stay in L2 while its 16 GEMMs run. */
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

typedef struct winograd_state {
  float *u;              /* U_f of every group, packed for the GEMM: [group][f][panels] */
  int64_t packed_floats; /* of one U_f */
} winograd_state;

static const char *winograd_unsupported_reason(const fc_conv_params *p) {
  if (p->dtype != FC_DTYPE_FLOAT32) return "Winograd F(2x2, 3x3) computes float32 only";
  if (p->transposed) return "Winograd F(2x2, 3x3) does not compute transposed convolution";
  if (p->spatial_dims != 2 || p->kernel[1] != 3 || p->kernel[2] != 3)
    return "Winograd F(2x2, 3x3) needs a 2-D layer with a 3x3 kernel";
  if (p->stride[1] != 1 || p->stride[2] != 1 || p->dilation[1] != 1 || p->dilation[2] != 1)
    return "Winograd F(2x2, 3x3) needs stride 1 and dilation 1";
  if (p->layout != FC_LAYOUT_CHANNELS_FIRST)
    return "Winograd F(2x2, 3x3) computes channels-first layers only";
  if (!fc_simd_kernels_selected())
    return "Winograd F(2x2, 3x3) needs a SIMD instruction set (none selected)";
  return NULL;
}

/* Input channels transformed at a time: the 16 rows of U they fill are written as contiguous runs
 * (16 scattered floats per (oc, ic) measured 4x slower on a 512 x 512 layer). */
#define FC_TRANSFORM_CHUNK 64

/* U = G g G^T for every (oc, ic) of every group, as 16 matrices U_f[oc][ic] per group, each
 * packed for the GEMM. */
static fc_status winograd_prepare(const fc_conv_params *p, const void *weight, int one_shot,
                                  void **state, int64_t *bytes) {
  (void)one_shot;
  const fc_gemm_ops *ops = fc_simd_kernels_selected()->gemm_f32;
  const int64_t groups = p->groups, icg = p->in_channels / groups, ocg = p->out_channels / groups;
  winograd_state *st = calloc(1, sizeof *st);
  float *raw = malloc((size_t)(16 * ocg * icg + 1) * sizeof(float));
  if (st) st->packed_floats = (int64_t)ops->packed_a_floats(&ops->tile, (size_t)ocg, (size_t)icg);
  if (!st || !raw ||
      !(st->u = malloc((size_t)(groups * 16 * st->packed_floats + 1) * sizeof(float)))) {
    free(raw);
    free(st);
    return FC_STATUS_OUT_OF_MEMORY;
  }
  const float *w = weight;
  float chunk[16][FC_TRANSFORM_CHUNK];
  for (int64_t g = 0; g < groups; g++) {
    for (int64_t oc = 0; oc < ocg; oc++)
      for (int64_t ic0 = 0; ic0 < icg; ic0 += FC_TRANSFORM_CHUNK) {
        const int64_t count = fc_min(FC_TRANSFORM_CHUNK, icg - ic0);
        for (int64_t c = 0; c < count; c++) {
          const float *k = w + ((g * ocg + oc) * icg + ic0 + c) * 9;
          float gk[4][3]; /* G g */
          for (int j = 0; j < 3; j++) {
            gk[0][j] = k[j];
            gk[1][j] = 0.5f * (k[j] + k[3 + j] + k[6 + j]);
            gk[2][j] = 0.5f * (k[j] - k[3 + j] + k[6 + j]);
            gk[3][j] = k[6 + j];
          }
          for (int i = 0; i < 4; i++) { /* (G g) G^T */
            chunk[4 * i + 0][c] = gk[i][0];
            chunk[4 * i + 1][c] = 0.5f * (gk[i][0] + gk[i][1] + gk[i][2]);
            chunk[4 * i + 2][c] = 0.5f * (gk[i][0] - gk[i][1] + gk[i][2]);
            chunk[4 * i + 3][c] = gk[i][2];
          }
        }
        for (int f = 0; f < 16; f++)
          memcpy(raw + (f * ocg + oc) * icg + ic0, chunk[f], (size_t)count * sizeof(float));
      }
    for (int f = 0; f < 16; f++)
      ops->pack_a(&ops->tile, (size_t)ocg, (size_t)icg, raw + f * ocg * icg, (size_t)icg, 1,
                  st->u + (g * 16 + f) * st->packed_floats);
  }
  free(raw);
  *state = st;
  *bytes = (int64_t)sizeof *st + groups * 16 * st->packed_floats * (int64_t)sizeof(float);
  return FC_STATUS_OK;
}

static void winograd_release(void *state) {
  winograd_state *st = state;
  if (st) free(st->u);
  free(st);
}

static fc_status winograd_execute(const fc_engine_call *call) {
  const fc_problem *p = call->problem;
  const fc_simd_kernels *kernels = fc_simd_kernels_selected();
  const fc_gemm_ops *ops = kernels->gemm_f32;
  const fc_winograd_kernels *wk = kernels->winograd;
  const winograd_state *st = call->state;
  const int64_t icg = p->in_per_group, ocg = p->out_per_group;
  const int64_t tiles_h = fc_div_ceil(p->out[1], 2), tiles_w = fc_div_ceil(p->out[2], 2);
  /* 2 * tiles_h + 2 padded rows, even and odd columns of tiles_w + 1 each (padded_input.h). */
  const padded_input g = {.hp = 2 * tiles_h + 2,
                          .sw = 2,
                          .wq = tiles_w + 1,
                          .dp = 1,
                          .plane = (2 * tiles_h + 2) * 2 * (tiles_w + 1)};
  const int64_t wq = g.wq, plane = g.plane;
  const int64_t channels = p->batch * p->in_channels;
  /* Blocks of whole tile rows, as many as fit the budget, cut finer only to feed the threads. */
  const int64_t per_row = 16 * fc_max(icg, ocg) * tiles_w;
  int64_t block = fc_max(1, fc_min(tiles_h, FC_WINOGRAD_BLOCK_FLOATS / per_row));
  const int64_t outer = p->batch * p->groups;
  if (call->num_threads > 1 &&
      outer * fc_div_ceil(tiles_h, block) < call->num_threads * FC_ITEMS_PER_THREAD)
    block = fc_max(1, tiles_h / fc_div_ceil(call->num_threads * FC_ITEMS_PER_THREAD, outer));
  const int64_t blocks = fc_div_ceil(tiles_h, block), items = outer * blocks;
  const int64_t tb_max = block * tiles_w;
  float *padded = fc_scratch_get((size_t)(channels * plane + FC_WINOGRAD_SLACK) * sizeof(float));
  if (!padded) return FC_STATUS_OUT_OF_MEMORY;
  memset(padded + channels * plane, 0, FC_WINOGRAD_SLACK * sizeof(float));
  const float *x = call->input, *bias = call->bias;
  float *y = call->output;
  int failed = 0;
#pragma omp parallel num_threads(call->num_threads) if (call->num_threads > 1)
  {
#pragma omp for schedule(static)
    for (int64_t c = 0; c < channels; c++)
      fc_pad_channel(p, &g, x + c * p->in_volume, padded + c * plane);
    float *v = fc_scratch_get((size_t)(16 * icg * tb_max + FC_WINOGRAD_SLACK) * sizeof(float));
    float *m = fc_scratch_get((size_t)(16 * ocg * tb_max + FC_WINOGRAD_SLACK) * sizeof(float));
    float *work = fc_scratch_get(FC_GEMM_WORK_FLOATS * sizeof(float));
    if (!v || !m || !work) {
#pragma omp atomic write
      failed = 1;
    } else {
      memset(m + 16 * ocg * tb_max, 0, FC_WINOGRAD_SLACK * sizeof(float));
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; item++) {
      if (!v || !m || !work) continue;
      const int64_t b = item % blocks, g = item / blocks % p->groups,
                    n = item / (blocks * p->groups);
      const int64_t th0 = b * block, th_count = fc_min(block, tiles_h - th0),
                    tb = th_count * tiles_w;
      const float *in = padded + (n * p->in_channels + g * icg) * plane;
      for (int64_t ic = 0; ic < icg; ic++)
        for (int64_t r = 0; r < th_count; r++)
          wk->input_f32(in + ic * plane, wq, 2 * (th0 + r), tiles_w, v + ic * tb + r * tiles_w,
                        icg * tb);
      for (int f = 0; f < 16; f++) {
        const float *a = st->u + (g * 16 + f) * st->packed_floats;
        const fc_matrix_ctx ctx = {v + f * icg * tb, (size_t)tb};
        ops->driver(&ops->tile, (size_t)ocg, (size_t)tb, (size_t)icg, a, ops->pack_b_matrix, &ctx,
                    m + f * ocg * tb, (size_t)tb, NULL, work);
      }
      for (int64_t oc = 0; oc < ocg; oc++) {
        const int64_t channel = g * ocg + oc;
        float *y_channel = y + (n * p->out_channels + channel) * p->out_volume;
        for (int64_t r = 0; r < th_count; r++) {
          const int64_t oh = 2 * (th0 + r);
          wk->output_f32(m + oc * tb + r * tiles_w, ocg * tb, tiles_w, bias ? bias[channel] : 0.0f,
                         y_channel + oh * p->out[2],
                         oh + 1 < p->out[1] ? y_channel + (oh + 1) * p->out[2] : NULL, p->out[2]);
        }
      }
    }
    fc_scratch_put(v);
    fc_scratch_put(m);
    fc_scratch_put(work);
  }
  fc_scratch_put(padded);
  return failed ? FC_STATUS_OUT_OF_MEMORY : FC_STATUS_OK;
}

const fc_engine fc_engine_winograd = {
    .algorithm = FC_ALGORITHM_WINOGRAD,
    .unsupported_reason = winograd_unsupported_reason,
    .prepare = winograd_prepare,
    .execute = winograd_execute,
    .release = winograd_release,
};
