/* The Winograd engines (winograd.h): F(2x2, 3x3) ("winograd") and the opt-in F(4x4, 3x3)
 * ("winograd_f4"), one mechanism parameterised by the tile; float32, 1-D or 2-D, 3-tap kernels,
 * stride 1 with any dilation (tiles of the polyphase components) or, F(2x2) only, stride 2
 * undilated (its own tile), any padding and groups, either layout, on a SIMD ISA. Work
 * items are (image, group, block of tiles, part of the output-channel blocks): an item
 * transforms its tile block's input into the GEMM's slivers (the threads together, into one V,
 * for a single streamed image split into parts), then per output-channel block runs
 * the products on the micro-kernels and the output transform while that block's M is in L2; one
 * image of few tiles runs them with the output channels along the vectors instead (channel_lanes),
 * each thread a range of output channels. The engine executes unprepared (engine.h): a one-shot
 * call transforms the weights itself. */
#include <stdlib.h>
#include <string.h>

#include "api/engine.h"
#include "api/scratch.h"
#include "direct/padded_input.h"
#include "dispatch/kernels.h"
#include "winograd/winograd.h"

/* Floats of a tile block's V (512 KiB: one frequency's part, the GEMM's B, stays in L2), of an
 * output-channel block's M (256 KiB, in L2 until the output transform reads it) and of a streamed
 * channel block's U (256 KiB: written by the weight transform and read by the products while it is
 * still in L2 beside V; 1 MiB blocks went out to L3 and back, 25% slower on 128 and 256 channels).
 * A one-shot call streams the weights when one image's V is at most FC_WINOGRAD_STREAMED_BLOCKS
 * blocks; so does a plan whose transformed weights exceed FC_WINOGRAD_PLAN_U_FLOATS (8 MiB): read
 * from memory on every call, the 16 MiB of resnet50.l4.3x3's (512 x 512 channels) took 2.47 ms
 * against 1.35 transforming them again, while l3.3x3's 4 MiB still ran faster from the plan. */
#define FC_WINOGRAD_BLOCK_FLOATS (INT64_C(1) << 17)
#define FC_WINOGRAD_M_FLOATS (INT64_C(1) << 16)
#define FC_WINOGRAD_U_FLOATS (INT64_C(1) << 16)
#define FC_WINOGRAD_STREAMED_BLOCKS 4
#define FC_WINOGRAD_PLAN_U_FLOATS (INT64_C(1) << 21)
/* One image of at most this many tiles and channel pairs runs its products with the output
 * channels along the vectors (channel_lanes). Against the products along the tiles, one thread,
 * AVX-512 (channels, map): 512 7x7 0.87, 6x6 0.85, 8x8 0.88, 10x10 0.70, 12x12 (36 tiles) 0.82,
 * 14x14 (49) 0.98; 384 7x7 0.85, 256 8x8 0.84; F(4x4) 512 8x8 0.68, 16x16 0.89; but 768 7x7 1.04
 * and 1024 7x7 1.16, whose weights (21 and 38 MB) stream from memory slower in the short runs of
 * the transform's blocks. */
#define FC_WINOGRAD_LANES_TILES 36
#define FC_WINOGRAD_LANES_PAIRS (512 * 512)
/* From this many work items per thread, uneven items balance under dynamic scheduling. */
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

/* The d_h x d_w phases of a dilated layer's output (row mod d_h, column mod d_w), each tiled like
 * an undilated layer's output of up to ceil(out / d) rows and columns (winograd.h). Tile rows are
 * numbered phase by phase, the phases row-major. */
typedef struct phases {
  int64_t m_h, m_w, dil_h, dil_w, tiles_h, tiles_w;
} phases;

/* p's output tiled by `tile`. */
static phases output_phases(const fc_problem *p, const fc_winograd_tile *tile) {
  const int64_t dil_h = p->dilation[1], dil_w = p->dilation[2];
  return (phases){.m_h = tile->m_h,
                  .m_w = tile->m_w,
                  .dil_h = dil_h,
                  .dil_w = dil_w,
                  .tiles_h = fc_div_ceil(fc_div_ceil(p->out[1], dil_h), tile->m_h),
                  .tiles_w = fc_div_ceil(fc_div_ceil(p->out[2], dil_w), tile->m_w)};
}

/* The output row of tile row `tile_row`'s first outputs and the output column of its tile 0. */
static void tile_row_origin(const phases *ph, int64_t tile_row, int64_t *row, int64_t *column) {
  const int64_t phase = tile_row / ph->tiles_h;
  *row = phase / ph->dil_w + ph->dil_h * ph->m_h * (tile_row % ph->tiles_h);
  *column = phase % ph->dil_w;
}

/* The output row and column of tile t's first output (tiles row-major over the tile rows). */
static void tile_origin(const phases *ph, int64_t t, int64_t *row, int64_t *column) {
  tile_row_origin(ph, t / ph->tiles_w, row, column);
  *column += ph->dil_w * ph->m_w * (t % ph->tiles_w);
}

/* The tile kernels of F(m x m) (F(m) for a 1-D layer, whose height kernel is 1) at the layer's
 * stride on this ISA. */
static const fc_winograd_tile *tile_kernels(int m, int64_t kernel_h, int64_t stride_w) {
  const int kind = stride_w == 2 ? FC_WINOGRAD_F2_STRIDE2
                   : m == 4      ? FC_WINOGRAD_F4
                                 : FC_WINOGRAD_F2;
  return &fc_simd_kernels_selected()->winograd->tiles[kind][kernel_h == 1];
}

static const char *unsupported_reason(const fc_conv_params *p, int m) {
  if (p->dtype != FC_DTYPE_FLOAT32) return "Winograd computes float32 only";
  if (p->transposed) return "Winograd does not compute transposed convolution";
  if (!(p->spatial_dims == 2 && p->kernel[1] == 3 && p->kernel[2] == 3) &&
      !(p->spatial_dims == 1 && p->kernel[2] == 3))
    return "Winograd needs a 1-D layer with a 3-tap kernel or a 2-D layer with a 3x3 kernel";
  const int one_d = p->spatial_dims == 1;
  if (p->stride[2] == 2 && p->stride[1] == (one_d ? 1 : 2)) {
    if (m != 2) return "Winograd F(4x4) needs stride 1 (F(2x2) also computes stride 2)";
    if (p->dilation[1] != 1 || p->dilation[2] != 1) return "Winograd at stride 2 needs dilation 1";
  } else if (p->stride[1] != 1 || p->stride[2] != 1)
    return "Winograd needs stride 1, or stride 2 along every axis";
  if (!fc_simd_kernels_selected()) return "Winograd needs a SIMD instruction set (none selected)";
  return NULL;
}

/* U_f = (G g G^T)_f for every group, written by the ISA kernel straight into the GEMM's packed
 * panels. The block comes from the scratch pool: a one-shot call transforms the weights every
 * time, and a fresh multi-megabyte block would be paid again in page faults. */
static fc_status prepare(const fc_conv_params *p, const void *weight, void **state, int64_t *bytes,
                         int m) {
  const fc_gemm_ops *ops = fc_simd_kernels_selected()->gemm_f32;
  const fc_winograd_tile *tile = tile_kernels(m, p->kernel[1], p->stride[2]);
  const int64_t groups = p->groups, icg = p->in_channels / groups, ocg = p->out_channels / groups;
  const int64_t frequencies = tile->t_h * tile->t_w, taps = p->kernel[1] * p->kernel[2];
  winograd_state *st = calloc(1, sizeof *st);
  if (!st) return FC_STATUS_OUT_OF_MEMORY;
  const fc_gemm_tile *gemm = fc_gemm_tile_for_rows(ops, (size_t)ocg);
  st->packed_floats = skewed((int64_t)ops->packed_a_floats(gemm, (size_t)ocg, (size_t)icg));
  st->u = fc_scratch_get((size_t)(groups * frequencies * st->packed_floats + 1) * sizeof(float));
  if (!st->u) {
    free(st);
    return FC_STATUS_OUT_OF_MEMORY;
  }
  for (int64_t g = 0; g < groups; g++)
    tile->weights_f32((const float *)weight + g * ocg * icg * taps, ocg, icg, icg, gemm->mr,
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

/* The products of one frequency for a block of output channels: M[oc][t] = U[oc][:] V[:][t], U in
 * the GEMM's packed panels (row oc at oc * k), V in its packed slivers, on the micro-kernels. Each
 * sliver stays in L1 while the channel block's panels pass over it. */
static void products(const fc_gemm_tile *gemm, const float *u, const float *v,
                     const fc_winograd_slivers *slivers, int64_t channels, float *mv, int64_t ldm) {
  const int64_t k = slivers->rows;
  for (int64_t t0 = 0, width; t0 < slivers->tiles; t0 += width) {
    width = fc_winograd_sliver_width(slivers, t0);
    const int64_t n = fc_min(width, slivers->tiles - t0);
    const fc_gemm_ukernel_fn uk = width != slivers->nr ? gemm->tail
                                  : n == gemm->tail_nr + 1 && gemm->tail_plus_one
                                      ? gemm->tail_plus_one
                                      : gemm->main;
    const float *b = v + t0 * k;
    for (int64_t pc = 0; pc < k; pc += FC_GEMM_KC) {
      const int64_t kc = fc_min(FC_GEMM_KC, k - pc);
      if (n < gemm->narrow_nr) { /* the channel block's rows at once */
        gemm->narrow((size_t)kc, u + pc * gemm->mr, (size_t)(gemm->mr * k), b + pc * width,
                     (size_t)width, mv + t0, (size_t)ldm, (size_t)channels, (size_t)n, pc != 0,
                     NULL);
        continue;
      }
      for (int64_t oc = 0; oc < channels; oc += gemm->mr)
        uk((size_t)kc, u + oc * k + pc * gemm->mr, b + pc * width, mv + oc * ldm + t0, (size_t)ldm,
           (size_t)fc_min(gemm->mr, channels - oc), (size_t)n, pc != 0, NULL);
    }
  }
}

/* The slivers of a block of tiles: nr wide, but a last few tiles that fit the tail tile go to it,
 * and a remainder past one tail sliver that the narrow kernel takes is split off into a second,
 * except one column past the tail tile, which the tail tile takes at once in an nr sliver:
 * resnet50.l3.3x3's 49 tiles on AVX-512 as 32 + (16 + 1) columns rather than 32 + 16 + 1
 * (narrow, reading the weights again) or 32 + 32. */
static fc_winograd_slivers sliver_layout(const fc_gemm_tile *gemm, int64_t tiles, int64_t rows) {
  const int64_t nr = gemm->nr, tail_nr = gemm->tail ? gemm->tail_nr : 0, rest = tiles % nr;
  const int plus_one = gemm->tail_plus_one && rest == tail_nr + 1;
  const int tail =
      tail_nr && rest && !plus_one && (rest <= tail_nr || rest - tail_nr < gemm->narrow_nr);
  return (fc_winograd_slivers){nr, tail_nr, tail ? tiles - rest : tiles, tiles, rows};
}

/* Where a call's tile blocks read their input: the channels-first images, whose rows an
 * undilated layer pads band by band into a staging buffer right before their transform, or the
 * whole padded copy (padded not NULL) of a dilated layer. */
typedef struct block_source {
  const fc_problem *p;
  const fc_winograd_tile *tile;
  const padded_input *g;
  const fc_winograd_grid *grid;
  const float *x, *padded;
  fc_pad_rows_fn pad_rows;
} block_source;

/* Input channels [ic0, ic1) of group grp of image n, at tiles [t0, t0 + slivers->tiles), into
 * their rows of the block's slivers V. */
static void transform_input(const block_source *s, int64_t n, int64_t grp, int64_t t0,
                            const fc_winograd_slivers *slivers, int64_t ic0, int64_t ic1,
                            float *staging, float *v, int64_t v_stride) {
  const fc_problem *p = s->p;
  const fc_winograd_tile *tile = s->tile;
  const int64_t first = n * p->in_channels + grp * p->in_per_group;
  if (s->padded) {
    for (int64_t ic = ic0; ic < ic1; ic++)
      tile->input_f32(s->padded + (first + ic) * s->g->plane, s->grid, t0, v, v_stride, slivers,
                      ic);
    return;
  }
  /* The block's tile rows from 0, read from their padded rows h0 on. */
  const int64_t tiles_w = s->grid->tiles_w, tr0 = t0 / tiles_w,
                tr1 = (t0 + slivers->tiles - 1) / tiles_w;
  const int64_t h0 = tr0 * tile->step_h, h1 = tr1 * tile->step_h + tile->t_h;
  const float *in = s->x + first * p->in_volume;
  /* The input rows behind them, prefetched two channels ahead: short runs a plane apart, which
   * the hardware prefetcher does not follow (vgg16.conv1_2 14.2 -> 13.8 ms). */
  const int64_t r0 = fc_max(0, h0 - p->pad[1]), r1 = fc_min(p->in[1], h1 - p->pad[1]);
  for (int64_t ic = ic0; ic < ic1; ic++) {
    if (ic + 2 < ic1)
      for (int64_t o = r0 * p->in[2]; o < r1 * p->in[2]; o += 16)
        __builtin_prefetch(in + (ic + 2) * p->in_volume + o, 0, 3);
    s->pad_rows(p, s->g, in + ic * p->in_volume, 0, h0, h1, staging);
    tile->input_f32(staging, s->grid, t0 - tr0 * tiles_w, v, v_stride, slivers, ic);
  }
}

/* Tiles [t0, t0 + tb) of block b of `blocks`: whole slivers of nr tiles, spread evenly. */
static void tile_block(int64_t nr, int64_t tiles, int64_t blocks, int64_t b, int64_t *t0,
                       int64_t *tb) {
  const int64_t slivers = fc_div_ceil(tiles, nr);
  *t0 = nr * (b * slivers / blocks);
  *tb = fc_min(tiles, nr * ((b + 1) * slivers / blocks)) - *t0;
}

/* A map of few tiles (resnet50.l4.3x3: 16) gives the products above a sliver or two of tiles
 * against hundreds of channels: the micro-kernel's rows (8 of 14 on AVX-512) broadcast U and its
 * one vector of tiles is loaded for every row, so the loads bound it. With the output channels
 * along the vectors instead, M_f^T = V_f^T U_f^T: the tiles are the rows, in panels of mr tiles
 * the input transform writes as it does slivers (mr is half its vector or whole vectors), and U's
 * slivers are the weight transform's panels of nr output channels. The tile whose mr fits the
 * vectors, or NULL. */
static const fc_gemm_tile *channel_lanes_tile(const fc_simd_kernels *k) {
  const int lanes = k->winograd->lanes;
  const fc_gemm_tile *tiles[] = {&k->gemm_f32->wide_tile, &k->gemm_f32->tile};
  for (int i = 0; i < 2; i++)
    if (2 * tiles[i]->mr == lanes || tiles[i]->mr % lanes == 0) return tiles[i];
  return NULL;
}

/* The GEMM tile of the products with the channels along the vectors for one image of p's tiled by
 * `tile` (at most FC_WINOGRAD_LANES_TILES tiles and FC_WINOGRAD_LANES_PAIRS channel pairs), or
 * NULL. */
static const fc_gemm_tile *few_tiles(const fc_problem *p, const fc_winograd_tile *tile) {
  const phases ph = output_phases(p, tile);
  if (p->batch * p->groups != 1 ||
      ph.dil_h * ph.dil_w * ph.tiles_h * ph.tiles_w > FC_WINOGRAD_LANES_TILES ||
      p->in_per_group * p->out_per_group > FC_WINOGRAD_LANES_PAIRS)
    return NULL;
  return channel_lanes_tile(fc_simd_kernels_selected());
}

int fc_winograd_channel_lanes(const fc_problem *p) {
  return fc_simd_kernels_selected() && few_tiles(p, tile_kernels(2, p->kernel[1], p->stride[2]));
}

/* How a call with the channels along the vectors lays out its buffers: V_f^T in panels of mr
 * tiles (row c of panel i at v + f * v_stride + (i * icg + c) * mr), U_f^T of one sliver of nr
 * output channels for one block of c_block input channels (in L2 beside V's rows: u + f * u_stride;
 * whole vectors of them, as the weight transform takes a vector of input channels at a time) and
 * M_f^T[tile][nr] for one sliver (mv + f * m_stride). */
typedef struct lanes_layout {
  const fc_gemm_tile *gemm;
  int64_t tiles, c_block, v_stride, u_stride, m_stride;
} lanes_layout;

/* Output channels [oc0, oc1) of a one-image, one-group call, sliver by sliver: per block of input
 * channels the weight transform and the products, then the output transform. */
static void channel_lanes(const fc_engine_call *call, const fc_winograd_tile *tile,
                          const phases *ph, const lanes_layout *l, const float *v, float *u,
                          float *mv, int64_t oc0, int64_t oc1) {
  const fc_problem *p = call->problem;
  const fc_gemm_tile *gemm = l->gemm;
  const int64_t icg = p->in_per_group, taps = p->kernel[1] * p->kernel[2], mr = gemm->mr;
  const int frequencies = tile->t_h * tile->t_w;
  const int channels_last = p->layout == FC_LAYOUT_CHANNELS_LAST;
  const int64_t unit = channels_last ? p->out_channels : 1,
                y_channel = channels_last ? 1 : p->out_volume;
  for (int64_t s0 = oc0, width; s0 < oc1; s0 += width) {
    width = fc_min(gemm->nr, oc1 - s0);
    const int narrow = gemm->tail && width <= gemm->tail_nr;
    const int64_t packed = narrow ? gemm->tail_nr : gemm->nr;
    const fc_gemm_ukernel_fn uk = narrow ? gemm->tail : gemm->main;
    for (int64_t c0 = 0; c0 < icg; c0 += l->c_block) {
      const int64_t kc = fc_min(l->c_block, icg - c0);
      tile->weights_f32((const float *)call->weight + (s0 * icg + c0) * taps, width, kc, icg,
                        packed, u, l->u_stride);
      for (int f = 0; f < frequencies; f++)
        for (int64_t t = 0; t < l->tiles; t += mr)
          uk((size_t)kc, v + f * l->v_stride + (t * icg + c0 * mr), u + f * l->u_stride,
             mv + f * l->m_stride + t * gemm->nr, (size_t)gemm->nr,
             (size_t)fc_min(mr, l->tiles - t), (size_t)width, c0 != 0, NULL);
    }
    float *y = (float *)call->output + s0 * y_channel;
    for (int64_t t = 0; t < l->tiles; t++) {
      int64_t oh, ow;
      tile_origin(ph, t, &oh, &ow);
      const int64_t rows = fc_min(tile->m_h, fc_div_ceil(p->out[1] - oh, ph->dil_h)),
                    cols = fc_min(tile->m_w, fc_div_ceil(p->out[2] - ow, ph->dil_w));
      if (rows > 0 && cols > 0)
        tile->output_lanes_f32(mv + t * gemm->nr, l->m_stride, width,
                               call->bias ? (const float *)call->bias + s0 : NULL,
                               y + (oh * p->out[2] + ow) * unit, y_channel,
                               ph->dil_h * p->out[2] * unit, ph->dil_w * unit, rows, cols);
    }
  }
}

static fc_status execute(const fc_engine_call *call, int m) {
  const fc_problem *p = call->problem;
  const fc_simd_kernels *kernels = fc_simd_kernels_selected();
  const fc_gemm_tile *gemm = fc_gemm_tile_for_rows(kernels->gemm_f32, (size_t)p->out_per_group);
  const fc_winograd_tile *tile = tile_kernels(m, p->kernel[1], p->stride[2]);
  const winograd_state *st = call->state;
  const int64_t icg = p->in_per_group, ocg = p->out_per_group, mr = gemm->mr;
  const int frequencies = tile->t_h * tile->t_w;
  const int64_t taps = p->kernel[1] * p->kernel[2];
  /* The output's phases in tiles. The padded copy is split into step_w d_w phases along the
   * width: tile column c of tile j of width phase b reads copy phase b + d_w (c % step_w), index
   * j + c / step_w (padded_input.h), so consecutive tiles of a tile row read consecutive floats. */
  const int64_t dil_h = p->dilation[1], dil_w = p->dilation[2];
  const phases ph = output_phases(p, tile);
  const int64_t tiles_w = ph.tiles_w, tile_rows = dil_h * dil_w * ph.tiles_h;
  const int64_t step_h = tile->step_h, step_w = tile->step_w;
  const int64_t hp = dil_h * (step_h * ph.tiles_h + tile->t_h - step_h),
                wq = tiles_w + (tile->t_w - 1) / step_w, row_floats = step_w * dil_w * wq;
  const int64_t plane = hp * row_floats;
  const padded_input g = {.hp = hp, .sw = step_w * dil_w, .wq = wq, .dp = 1, .plane = plane};
  const int64_t channels = p->batch * p->in_channels;
  /* Undilated tile rows are consecutive padded rows: each item pads the rows of its tile block
   * channel by channel into a staging buffer that stays in L1, right before their transform,
   * instead of a padded copy of the whole input that went out to L3 and back (vgg16.conv1_2's is
   * 13 MB). A dilated layer's tile rows run through the phases, so it pads the input whole. */
  const int staged = dil_h == 1 && dil_w == 1;
  /* A one-shot call (no state) on one small image transforms the weights block by block right
   * before their products, so they never go to memory and back; with more tile blocks it
   * transforms them all first, as a plan does. A plan whose U would come from memory does the
   * same on such an image. */
  const int64_t image_v = frequencies * icg * tile_rows * tiles_w;
  const int u_from_memory =
      !st || p->groups * frequencies * st->packed_floats > FC_WINOGRAD_PLAN_U_FLOATS;
  const int streamed = u_from_memory && p->batch == 1 &&
                       image_v <= FC_WINOGRAD_STREAMED_BLOCKS * FC_WINOGRAD_BLOCK_FLOATS;
  /* Blocks of consecutive tiles (in row-major order, so a block may start and end inside a tile
   * row) whose V fits the budget: whole slivers of the GEMM's nr tiles, spread evenly, the last
   * block taking the ragged end. With threads, when the items would not divide among them: one
   * block fewer if that divides them and the budget is kept to within half a sliver (a last sliver
   * of a few tiles joins the block before it: 196 tiles in 48-wide slivers are 4 blocks, which
   * 2 threads share), else as many more as divide them while each block keeps two slivers. The
   * threads then share the tiles evenly, where splitting output channels instead would transform
   * the same input twice. */
  const int64_t tiles = tile_rows * tiles_w, image_slivers = fc_div_ceil(tiles, gemm->nr);
  const int64_t block_tiles =
      gemm->nr * fc_max(1, FC_WINOGRAD_BLOCK_FLOATS / (frequencies * icg * gemm->nr));
  const int64_t images = p->batch * p->groups;
  /* One image of few tiles: the products with the channels along the vectors (channel_lanes). */
  const fc_gemm_tile *lanes_gemm = streamed ? few_tiles(p, tile) : NULL;
  int64_t blocks = streamed ? 1 : fc_div_ceil(tiles, block_tiles);
  if (!streamed && call->num_threads > 1 && (images * blocks) % call->num_threads) {
    const int64_t rounded = fc_max(1, (2 * tiles + block_tiles) / (2 * block_tiles));
    if (rounded < blocks && (images * rounded) % call->num_threads == 0)
      blocks = rounded;
    else
      while ((images * blocks) % call->num_threads && image_slivers / (blocks + 1) >= 2) blocks++;
  }
  int64_t tb_max = 0;
  for (int64_t b = 0; b < blocks; b++) {
    int64_t t0, tb;
    tile_block(gemm->nr, tiles, blocks, b, &t0, &tb);
    tb_max = fc_max(tb_max, tb);
  }
  /* Work items (image, group, tile block, part of the output-channel blocks). Channel blocks are
   * whole panels of the GEMM's mr rows, as few as keep M (and a streamed U) within budget, spread
   * evenly. When the items would not divide among the threads, the channel blocks are split into
   * as few parts as make them divide (each part transforms its tile block's input again, but for
   * one streamed image of one group, whose threads transform it together: shared_v). */
  const int64_t outer = images * blocks, panels = fc_div_ceil(ocg, mr);
  int64_t panels_per_block = FC_WINOGRAD_M_FLOATS / (frequencies * tb_max * mr);
  if (streamed)
    panels_per_block = fc_min(panels_per_block, FC_WINOGRAD_U_FLOATS / (frequencies * icg * mr));
  int64_t oc_blocks = fc_div_ceil(panels, fc_max(1, panels_per_block)), parts = 1;
  if (call->num_threads > 1 && outer % call->num_threads &&
      outer < call->num_threads * FC_ITEMS_PER_THREAD) {
    parts = fc_div_ceil(call->num_threads, outer);
    while ((outer * parts) % call->num_threads) parts++;
    parts = fc_min(parts, panels);
    oc_blocks = fc_min(panels, fc_div_ceil(oc_blocks, parts) * parts);
  }
  const int64_t per_part = fc_div_ceil(oc_blocks, parts), items = outer * parts;
  /* One streamed image of one group split into parts: the threads transform its input channels
   * into one V together, rather than each part transforming all of them again (at two threads,
   * resnet50.l2.3x3's two parts each spent a tenth of one thread's time on the whole input). */
  const int shared_v = lanes_gemm || (streamed && outer == 1 && parts > 1);
  const int64_t ocb = fc_div_ceil(panels, oc_blocks) * mr; /* at most */
  lanes_layout lanes = {.gemm = lanes_gemm, .tiles = tiles};
  const int64_t vector = kernels->winograd->lanes; /* floats */
  int64_t v_floats = frequencies * skewed(fc_div_ceil(tb_max, gemm->nr) * gemm->nr * icg);
  int64_t m_floats = frequencies * skewed(ocb * tb_max);
  int64_t u_block_stride = skewed(ocb * icg),
          u_floats = streamed ? frequencies * u_block_stride : 0;
  if (lanes_gemm) { /* U blocks of input channels within the streamed budget */
    const int64_t panel_rows = fc_div_ceil(tiles, lanes_gemm->mr) * lanes_gemm->mr;
    lanes.c_block =
        fc_max(1, FC_WINOGRAD_U_FLOATS / (frequencies * lanes_gemm->nr * vector)) * vector;
    lanes.v_stride = skewed(panel_rows * icg);
    lanes.u_stride = skewed(lanes.c_block * lanes_gemm->nr);
    lanes.m_stride = skewed(panel_rows * lanes_gemm->nr);
    v_floats = frequencies * lanes.v_stride;
    m_floats = frequencies * lanes.m_stride;
    u_floats = frequencies * lanes.u_stride;
  }
  const int channels_last = p->layout == FC_LAYOUT_CHANNELS_LAST;
  /* Channels-last output is written in place (y_col = channels); its input is transposed first. */
  const int64_t y_col = channels_last ? p->out_channels : 1;
  const int64_t transposed_floats = channels_last ? channels * p->in_volume : 0;
  /* A one-shot call's U of every group, when not streamed. */
  const int64_t packed = skewed(fc_div_ceil(ocg, mr) * mr * icg);
  const int64_t all_u_floats = !st && !streamed ? p->groups * frequencies * packed : 0;
  /* Padded rows of the tallest block's tile rows (a block may start at a tile row's end). */
  const int64_t staging_floats =
      (((tb_max + tiles_w - 2) / tiles_w + 1) * step_h + tile->t_h - step_h) * row_floats;
  float *padded =
      staged ? NULL
             : fc_scratch_get((size_t)(channels * plane + FC_WINOGRAD_SLACK) * sizeof(float));
  int64_t *row_origins = fc_scratch_get((size_t)tile_rows * sizeof(int64_t));
  float *transposed =
      channels_last ? fc_scratch_get((size_t)transposed_floats * sizeof(float)) : NULL;
  float *all_u = all_u_floats ? fc_scratch_get((size_t)all_u_floats * sizeof(float)) : NULL;
  float *v_shared =
      shared_v ? fc_scratch_get((size_t)(v_floats + FC_WINOGRAD_SLACK) * sizeof(float)) : NULL;
  if ((!staged && !padded) || !row_origins || (channels_last && !transposed) ||
      (all_u_floats && !all_u) || (shared_v && !v_shared)) {
    fc_scratch_put(v_shared);
    fc_scratch_put(padded);
    fc_scratch_put(row_origins);
    fc_scratch_put(transposed);
    fc_scratch_put(all_u);
    return FC_STATUS_OUT_OF_MEMORY;
  }
  if (!staged) memset(padded + channels * plane, 0, FC_WINOGRAD_SLACK * sizeof(float));
  for (int64_t r = 0; r < tile_rows; r++) { /* a strided layer is undilated: one phase */
    int64_t row, phase;
    tile_row_origin(&ph, r, &row, &phase);
    row_origins[r] = p->stride[1] * row * row_floats + phase * wq;
  }
  const fc_winograd_grid grid = {.row_origins = row_origins,
                                 .tiles_w = tiles_w,
                                 .row_step = dil_h * row_floats,
                                 .phase_step = dil_w * wq};
  const float *x = channels_last ? transposed : call->input, *bias = call->bias;
  const float *w = call->weight, *u_all = st ? st->u : all_u;
  const int64_t u_all_stride = st ? st->packed_floats : packed;
  float *y = call->output;
  const block_source source = {.p = p,
                               .tile = tile,
                               .g = &g,
                               .grid = &grid,
                               .x = x,
                               .padded = padded,
                               .pad_rows = kernels->pad_rows_f32};
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
    if (!staged) /* the same for every thread, as a worksharing loop needs */
#pragma omp for schedule(static) nowait
      for (int64_t c = 0; c < channels; c++)
        fc_pad_channel(kernels->pad_rows_f32, p, &g, x + c * p->in_volume, padded + c * plane);
    if (all_u) {
      const int64_t panels = fc_div_ceil(ocg, mr);
#pragma omp for schedule(static) nowait
      for (int64_t i = 0; i < p->groups * panels; i++) {
        const int64_t grp = i / panels, oc = i % panels * mr;
        tile->weights_f32(w + (grp * ocg + oc) * icg * taps, fc_min(mr, ocg - oc), icg, icg, mr,
                          all_u + grp * frequencies * packed + oc * icg, packed);
      }
    }
#pragma omp barrier
    float *v = shared_v ? v_shared
                        : fc_scratch_get((size_t)(v_floats + FC_WINOGRAD_SLACK) * sizeof(float));
    float *mv = fc_scratch_get((size_t)(m_floats + FC_WINOGRAD_SLACK) * sizeof(float));
    float *u_block = streamed ? fc_scratch_get((size_t)u_floats * sizeof(float)) : NULL;
    float *staging =
        staged ? fc_scratch_get((size_t)(staging_floats + FC_WINOGRAD_SLACK) * sizeof(float))
               : NULL;
    const int ready = v && mv && (!streamed || u_block) && (!staged || staging);
    if (!ready) {
#pragma omp atomic write
      failed = 1;
    } else {
      memset(mv + m_floats, 0, FC_WINOGRAD_SLACK * sizeof(float));
      if (staged) memset(staging + staging_floats, 0, FC_WINOGRAD_SLACK * sizeof(float));
    }
    if (shared_v) { /* a range of input channels per thread */
      const fc_winograd_slivers slivers =
          lanes_gemm ? (fc_winograd_slivers){lanes_gemm->mr, lanes_gemm->mr, tiles, tiles, icg}
                     : sliver_layout(gemm, tiles, icg);
      const int64_t ranges = call->num_threads;
#pragma omp for schedule(static)
      for (int64_t r = 0; r < ranges; r++)
        if (ready)
          transform_input(&source, 0, 0, 0, &slivers, r * icg / ranges, (r + 1) * icg / ranges,
                          staging, v, v_floats / frequencies);
    }
    if (lanes_gemm) { /* a range of output channels, in whole vectors, per thread */
      const int64_t vectors = fc_div_ceil(ocg, vector), ranges = fc_min(call->num_threads, vectors);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < ranges; r++)
        if (ready)
          channel_lanes(call, tile, &ph, &lanes, v, u_block, mv,
                        fc_min(ocg, r * vectors / ranges * vector),
                        fc_min(ocg, (r + 1) * vectors / ranges * vector));
    } else {
#pragma omp for schedule(dynamic, 1)
      for (int64_t item = 0; item < items; item++) {
        if (!ready) continue;
        const int64_t part = item % parts, b = item / parts % blocks,
                      grp = item / (parts * blocks) % p->groups,
                      n = item / (parts * blocks * p->groups);
        int64_t t0, tb;
        tile_block(gemm->nr, tiles, blocks, b, &t0, &tb);
        const fc_winograd_slivers slivers = sliver_layout(gemm, tb, icg);
        const int64_t v_stride = v_floats / frequencies, m_stride = m_floats / frequencies;
        if (!shared_v) transform_input(&source, n, grp, t0, &slivers, 0, icg, staging, v, v_stride);
        for (int64_t ob = part * per_part; ob < fc_min(oc_blocks, (part + 1) * per_part); ob++) {
          const int64_t oc0 = mr * (ob * panels / oc_blocks),
                        ocn = fc_min(ocg, mr * ((ob + 1) * panels / oc_blocks)) - oc0;
          const float *u = u_all + grp * frequencies * u_all_stride + oc0 * icg;
          int64_t u_stride = u_all_stride;
          if (streamed) {
            tile->weights_f32(w + (grp * ocg + oc0) * icg * taps, ocn, icg, icg, mr, u_block,
                              u_block_stride);
            u = u_block;
            u_stride = u_block_stride;
          }
          for (int f = 0; f < frequencies; f++)
            products(gemm, u + f * u_stride, v + f * v_stride, &slivers, ocn, mv + f * m_stride,
                     tb);
          for (int64_t oc = 0; oc < ocn; oc++) {
            const int64_t channel = grp * ocg + oc0 + oc;
            float *y_channel = channels_last ? y + n * p->out_volume * p->out_channels + channel
                                             : y + (n * p->out_channels + channel) * p->out_volume;
            /* The block's tiles, tile row by tile row; a row's outputs end with the block's, as
             * the next block may belong to another thread. A tile row's outputs are d apart, and
             * end with its phase's (ragged phases: fewer rows or columns, or none). */
            for (int64_t t = t0, count; t < t0 + tb; t += count) {
              int64_t oh, ow;
              tile_origin(&ph, t, &oh, &ow);
              count = fc_min(t0 + tb - t, tiles_w - t % tiles_w);
              const int64_t rows = fc_min(tile->m_h, fc_div_ceil(p->out[1] - oh, dil_h)),
                            width = fc_min(fc_div_ceil(p->out[2] - ow, dil_w), tile->m_w * count);
              if (rows > 0 && width > 0)
                tile->output_f32(mv + oc * tb + t - t0, m_stride, count,
                                 bias ? bias + channel : NULL,
                                 y_channel + (oh * p->out[2] + ow) * y_col,
                                 dil_h * p->out[2] * y_col, dil_w * y_col, rows, width);
            }
          }
        }
      }
    }
    if (!shared_v) fc_scratch_put(v);
    fc_scratch_put(mv);
    fc_scratch_put(u_block);
    fc_scratch_put(staging);
  }
  fc_scratch_put(v_shared);
  fc_scratch_put(padded);
  fc_scratch_put(row_origins);
  fc_scratch_put(transposed);
  fc_scratch_put(all_u);
  return failed ? FC_STATUS_OUT_OF_MEMORY : FC_STATUS_OK;
}

/* The two engines: the tile size bound into each entry point. */
#define WINOGRAD_ENGINE(NAME, ALGORITHM, M)                                                  \
  static const char *NAME##_unsupported_reason(const fc_conv_params *p) {                    \
    return unsupported_reason(p, M);                                                         \
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
      .executes_unprepared = 1,                                                              \
  };

WINOGRAD_ENGINE(winograd, FC_ALGORITHM_WINOGRAD, 2)
WINOGRAD_ENGINE(winograd_f4, FC_ALGORITHM_WINOGRAD_F4, 4)
