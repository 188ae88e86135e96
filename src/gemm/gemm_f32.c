/* Packed fp32 GEMM for one ISA: micro-kernels, packing and the cache-blocked driver (gemm.h).
 * Compiled once per ISA with its flags; every symbol carries the ISA suffix (simd.h).
 *
 * Register tiles (per K step: NV vector loads of B, MR broadcasts of A, MR*NV FMAs), and the wide
 * tile of fewer rows:
 *   AVX2 (16 ymm):    6x16 (12 accumulators + 2 B + 1 broadcast), 6x8 for the last columns;
 *                     wide 4x24 (12 + 3 + 1), 4x8
 *   AVX-512 (32 zmm): 14x32 (28 + 2 + 1), 14x16 for the last columns; wide 8x48 (24 + 3 + 1), 8x16
 *   NEON (32 q):      8x12 (24 + 3 + 1), 8x4 for the last columns; wide 6x16 (24 + 4 + 1), 6x4
 * and for the last few columns (fewer than NARROW_NR) the narrow kernel, vectorised along the rows
 * (gemm_f32_narrow.inc): AVX2 1-6 columns of 6-row panels, 1-4 of 4-row ones.
 *
 * Loop nest (BLIS order, gemm.h), A packed ahead:
 *   for jc in N step NC: for pc in K step KC: for ic in M step MC:
 *     for jr in NC step NR: pack the B sliver (into L1); for ir in MC step MR: micro-kernel
 * A one-shot call's A and a plain matrix B are packed by the first micro-kernels that read them. */
#include "gemm/gemm.h"
#include "simd/simd.h"

#if FC_VEC_BYTES == 32
#define TILE_MR 6
#define TILE_NV 2
#define TILE_NAME "6x16+6x8"
#define WIDE_MR 4
#define WIDE_NV 3
#define WIDE_NAME "4x24+4x8"
#elif FC_VEC_BYTES == 64
#define TILE_MR 14
#define TILE_NV 2
#define TILE_NAME "14x32+14x16"
#define WIDE_MR 8
#define WIDE_NV 3
#define WIDE_NAME "8x48+8x16"
#else
#define TILE_MR 8
#define TILE_NV 3
#define TILE_NAME "8x12+8x4"
#define WIDE_MR 6
#define WIDE_NV 4
#define WIDE_NAME "6x16+6x4"
#endif

/* The driver's K blocks: longer on AVX-512, whose cores' L2 (1 MiB and up) holds a 528 KiB
 * MC x KC block of A beside the sliver; every C tile is then loaded and stored half as often
 * (resnet50.l3.1x1, 256 x 196 x 1024: 1.7% faster at one thread, 2.2% at two; the other GEMM layers
 * within 0.5%). */
#if FC_VEC_BYTES == 64
#define DRIVER_KC 512
#else
#define DRIVER_KC FC_GEMM_KC
#endif

#define UK_MR TILE_MR
#define UK_NV TILE_NV
#define UK_NAME fc_gemm_f32_ukernel_main
#include "gemm/gemm_f32_ukernel.inc"
#define UK_MR TILE_MR
#define UK_NV 1
#define UK_NAME fc_gemm_f32_ukernel_tail
#include "gemm/gemm_f32_ukernel.inc"
#define UK_MR TILE_MR
#define UK_NV 1
#define UK_EXTRA
#define UK_NAME fc_gemm_f32_ukernel_tail_plus_one
#include "gemm/gemm_f32_ukernel.inc"
#define UK_MR WIDE_MR
#define UK_NV WIDE_NV
#define UK_NAME fc_gemm_f32_ukernel_wide
#include "gemm/gemm_f32_ukernel.inc"
#define UK_MR WIDE_MR
#define UK_NV 1
#define UK_NAME fc_gemm_f32_ukernel_wide_tail
#include "gemm/gemm_f32_narrow.inc"
#include "gemm/gemm_f32_ukernel.inc"
#define UK_MR TILE_MR
#define UK_NV TILE_NV
#define UK_PACK
#define UK_NAME fc_gemm_f32_ukernel_main_pack
#include "gemm/gemm_f32_ukernel.inc"
#define UK_MR WIDE_MR
#define UK_NV WIDE_NV
#define UK_PACK
#define UK_NAME fc_gemm_f32_ukernel_wide_pack
#include "gemm/gemm_f32_ukernel.inc"
NARROW_KERNEL(narrow_tile, TILE_MR)
NARROW_KERNEL(narrow_wide, WIDE_MR)
/* The narrow kernel takes n columns when its lanes hold no more padding than the tail tile's:
 * n / tail_nr <= mr / (its vectors' lanes). Measured on 1x1 layers of 256 x 256 (AVX2): 6-row
 * panels (75 % of 8 lanes) beat the 6x8 tail up to n = 6 (1 column: 3x, 6: 1.2x, 7: 0.6-0.9x),
 * 4-row panels (50 %) beat the 4x8 tail up to n = 4. */
#define NARROW_NR(mr)                                           \
  ((mr)*FC_L / (NARROW_VECS(mr) * FC_L) + 1 < FC_GEMM_NARROW_NR \
       ? (mr)*FC_L / (NARROW_VECS(mr) * FC_L) + 1               \
       : FC_GEMM_NARROW_NR)

static void pack_b_matrix(const void *ctx_, size_t pc, size_t kc, size_t jr, size_t n, size_t nrp,
                          float *FC_RESTRICT dst) {
  const fc_matrix_ctx *ctx = ctx_;
  const float *FC_RESTRICT b = ctx->b + pc * ctx->ldb + jr;
  if (n == nrp && nrp % FC_L == 0) {
    for (size_t k = 0; k < kc; k++, b += ctx->ldb, dst += nrp)
      for (size_t j = 0; j < nrp; j += FC_L) fc_store(dst + j, fc_load(b + j));
  } else {
    for (size_t k = 0; k < kc; k++, b += ctx->ldb, dst += nrp) {
      size_t j = 0;
      for (; j < n; j++) dst[j] = b[j];
      for (; j < nrp; j++) dst[j] = 0.0f;
    }
  }
}

static size_t packed_a_floats(const fc_gemm_tile *t, size_t m, size_t k) {
  return fc_round_up(m, (size_t)t->mr) * k;
}

/* At plan time, or per A block in a one-shot driver call. Reads along A's unit stride. mr: a
 * constant once inlined, so the full-panel loop unrolls. */
FC_INLINE void pack_a_panels(size_t mr, size_t m, size_t k, const float *a, size_t rs, size_t cs,
                             float *FC_RESTRICT dst) {
  for (size_t p = 0; p < m; p += mr, dst += mr * k) {
    const float *base = a + p * rs;
    const size_t rows = fc_min_size(mr, m - p);
    /* Panels are written in order; the MR source rows are MR streams (or one, transposed). */
    const float *src[TILE_MR > WIDE_MR ? TILE_MR : WIDE_MR];
    for (size_t i = 0; i < mr; i++) src[i] = base + (i < rows ? i : 0) * rs;
    if (rows == mr) {
      for (size_t kk = 0; kk < k; kk++)
#pragma GCC unroll 16
        for (size_t i = 0; i < mr; i++) dst[kk * mr + i] = src[i][kk * cs];
    } else {
      for (size_t kk = 0; kk < k; kk++)
        for (size_t i = 0; i < mr; i++) dst[kk * mr + i] = i < rows ? src[i][kk * cs] : 0.0f;
    }
  }
}

static void pack_a(const fc_gemm_tile *t, size_t m, size_t k, const float *a, size_t rs, size_t cs,
                   float *FC_RESTRICT dst) {
  if (t->mr == TILE_MR)
    pack_a_panels(TILE_MR, m, k, a, rs, cs, dst);
  else
    pack_a_panels(WIDE_MR, m, k, a, rs, cs, dst);
}

/* The one-sliver driver's K blocks (below), longer than the other drivers': the sliver (192 KiB on
 * AVX-512) stays in L2, and every panel loads and stores its C tile once per K block (KC 256 ->
 * 1024: resnet50.l4.3x3 direct 2.9% faster at one thread, 2.5% at two; 128 was 2% slower). */
#define ONE_SLIVER_KC 1024

/* The driver of an unpacked A (lda) whose C is one full sliver and one column more, all m rows in
 * whole panels (a 7x7 map's 49 positions on AVX-512's 8x48 tile): its A is read once, by one
 * sliver, so it is read in place and never packed; the column is reduced along k beside the tile
 * (UK_PACK's dot) rather than by the narrow kernel over packed panels, and B is packed once per K
 * block for all the rows. resnet50.l4.3x3 direct, one thread: packing A and the narrow pass had
 * taken 12 % of its time.
 * The work buffer holds the sliver, the column with a vector of slack (the patch packer stores
 * whole vectors) and the m rows' dot partials. */
static int one_sliver_and_column(const fc_gemm_tile *t, size_t m, size_t n, size_t lda) {
  return lda && n == (size_t)t->nr + 1 && m % (size_t)t->mr == 0 &&
         ONE_SLIVER_KC * ((size_t)t->nr + 1) + FC_L + m * FC_L <= FC_GEMM_WORK_FLOATS;
}

static void driver_one_sliver_and_column(const fc_gemm_tile *t, size_t m, size_t k, const float *a,
                                         size_t lda, fc_pack_b_fn pack_b, const void *pack_ctx,
                                         float *c, size_t ldc, const float *bias, float *work) {
  const size_t mr = (size_t)t->mr, nr = (size_t)t->nr;
  const fc_matrix_ctx *plain = pack_b ? NULL : pack_ctx;
  if (!pack_b) pack_b = pack_b_matrix;
  float *sliver = work, *column = work + ONE_SLIVER_KC * nr, *dot = column + ONE_SLIVER_KC + FC_L;
  for (size_t i = 0; i < m * FC_L; i++) dot[i] = 0.0f;
  for (size_t pc = 0; pc < k; pc += ONE_SLIVER_KC) {
    const size_t kc = fc_min_size(ONE_SLIVER_KC, k - pc);
    pack_b(pack_ctx, pc, kc, nr, 1, 1, column);
    if (!plain) pack_b(pack_ctx, pc, kc, 0, nr, nr, sliver);
    for (size_t ir = 0; ir < m; ir += mr) {
      const int pb = plain && ir == 0; /* a plain B's sliver packed by the first panel */
      t->main_pack(kc, a + ir * lda + pc, lda, NULL, pb ? plain->b + pc * plain->ldb : NULL,
                   pb ? plain->ldb : 0, sliver, c + ir * ldc, ldc, mr, nr, pc != 0,
                   bias ? bias + ir : NULL, column, dot + ir * FC_L);
    }
  }
  for (size_t i = 0; i < m; i++) {
    float sum = bias ? bias[i] : 0.0f;
    for (size_t l = 0; l < FC_L; l++) sum += dot[i * FC_L + l];
    c[i * ldc + nr] = sum;
  }
}

/* Loop nest of the driver: the jc loop (blocks of C columns) stays in L2 with a packed A, and is
 * one block for an unpacked A, so that each A block is packed once, in L2, just before the slivers
 * use it (C is then revisited per K block instead). */
static void driver(const fc_gemm_tile *t, size_t m, size_t n, size_t k, const float *a, size_t lda,
                   fc_pack_b_fn pack_b, const void *pack_ctx, float *c, size_t ldc,
                   const float *bias, float *work) {
  if (one_sliver_and_column(t, m, n, lda)) {
    driver_one_sliver_and_column(t, m, k, a, lda, pack_b, pack_ctx, c, ldc, bias, work);
    return;
  }
  const size_t mr = (size_t)t->mr, nr = (size_t)t->nr;
  const size_t mblocks = (m + FC_GEMM_MC - 1) / FC_GEMM_MC;
  const size_t mc_max = fc_round_up((m + mblocks - 1) / mblocks, mr);
  size_t nc_max = lda ? n : FC_GEMM_C_BLOCK_FLOATS / m / nr * nr;
  if (nc_max < nr) nc_max = nr;
  /* a plain B: its full slivers packed by their first micro-kernel, the rest here */
  const fc_matrix_ctx *plain = pack_b ? NULL : pack_ctx;
  if (!pack_b) pack_b = pack_b_matrix;
  float *sliver = work, *a_block = work + DRIVER_KC * FC_GEMM_NR_MAX;
  for (size_t jc = 0; jc < n; jc += nc_max) {
    const size_t nc = fc_min_size(nc_max, n - jc);
    for (size_t pc = 0; pc < k; pc += DRIVER_KC) {
      const size_t kc = fc_min_size(DRIVER_KC, k - pc);
      const int accumulate = pc != 0; /* the first K block writes C and the bias */
      for (size_t ic = 0; ic < m; ic += mc_max) {
        const size_t mc = fc_min_size(mc_max, m - ic);
        /* the block's panels: [mc / MR][kc][MR], MR * kc floats apart */
        const float *panels = a + ic * k + pc * mr;
        size_t panel_floats = mr * k;
        /* An unpacked A is packed by the first sliver's micro-kernels when that sliver is a full
         * one (its full panels; a ragged last panel is packed first), else all at once here. */
        const int pack_first = lda && nc >= nr;
        if (lda) {
          const size_t skip = pack_first ? mc / mr * mr : 0;
          if (skip < mc)
            pack_a(t, mc - skip, kc, a + (ic + skip) * lda + pc, lda, 1,
                   a_block + skip / mr * mr * kc);
          panels = a_block;
          panel_floats = mr * kc;
        }
        for (size_t jr = 0; jr < nc; jr += nr) {
          const size_t nn = fc_min_size(nr, nc - jr);
          const int packs_a = jr == 0 && pack_first, packs_b = plain && nn == nr;
          if (packs_a || packs_b) {
            if (!packs_b) pack_b(pack_ctx, pc, kc, jc + jr, nr, nr, sliver);
            const float *raw_b = packs_b ? plain->b + pc * plain->ldb + jc + jr : NULL;
            for (size_t ir = 0; ir < mc; ir += mr) {
              float *ci = c + (ic + ir) * ldc + jc + jr;
              const float *bi = bias ? bias + ic + ir : NULL;
              float *panel = (float *)panels + ir / mr * panel_floats;
              const int pa = packs_a && ir + mr <= mc, pb = packs_b && ir == 0;
              if (pa || pb)
                t->main_pack(kc, pa ? a + (ic + ir) * lda + pc : NULL, pa ? lda : 0, panel, raw_b,
                             pb ? plain->ldb : 0, sliver, ci, ldc, fc_min_size(mr, mc - ir), nr,
                             accumulate, bi, NULL, NULL);
              else
                t->main(kc, panel, sliver, ci, ldc, fc_min_size(mr, mc - ir), nr, accumulate, bi);
            }
            continue;
          }
          /* the last columns go to the narrow kernel when they fit in it */
          const int tail = t->tail && nn <= (size_t)t->tail_nr;
          if (nn < (size_t)t->narrow_nr) { /* all the block's rows at once */
            /* a plain B is read where it is: the narrow kernel broadcasts B's elements one by one,
             * so packing them first only added a scalar copy (l3.1x1: 0.5 % of its samples) */
            const float *b = plain ? plain->b + pc * plain->ldb + jc + jr : sliver;
            const size_t ldb = plain ? plain->ldb : tail ? (size_t)t->tail_nr : nr;
            if (!plain) pack_b(pack_ctx, pc, kc, jc + jr, nn, ldb, sliver);
            t->narrow(kc, panels, panel_floats, b, ldb, c + ic * ldc + jc + jr, ldc, mc, nn,
                      accumulate, bias ? bias + ic : NULL);
            continue;
          }
          pack_b(pack_ctx, pc, kc, jc + jr, nn, tail ? (size_t)t->tail_nr : nr, sliver);
          const fc_gemm_ukernel_fn uk = tail ? t->tail : t->main;
          for (size_t ir = 0; ir < mc; ir += mr)
            uk(kc, panels + ir / mr * panel_floats, sliver, c + (ic + ir) * ldc + jc + jr, ldc,
               fc_min_size(mr, mc - ir), nn, accumulate, bias ? bias + ic + ir : NULL);
        }
      }
    }
  }
}

const fc_gemm_ops FC_SYM(fc_gemm_f32_ops) = {
    .tile = {TILE_MR, TILE_NV *FC_L, FC_L, FC_SYM(fc_gemm_f32_ukernel_main),
             FC_SYM(fc_gemm_f32_ukernel_tail), NARROW_NR(TILE_MR), narrow_tile, TILE_NAME,
             FC_SYM(fc_gemm_f32_ukernel_tail_plus_one), FC_SYM(fc_gemm_f32_ukernel_main_pack)},
    .wide_tile = {WIDE_MR, WIDE_NV *FC_L, FC_L, FC_SYM(fc_gemm_f32_ukernel_wide),
                  FC_SYM(fc_gemm_f32_ukernel_wide_tail), NARROW_NR(WIDE_MR), narrow_wide, WIDE_NAME,
                  NULL, FC_SYM(fc_gemm_f32_ukernel_wide_pack)},
    .packed_a_floats = packed_a_floats,
    .pack_a = pack_a,
    .driver = driver,
    .one_sliver_and_column = one_sliver_and_column,
};
