/* Packed fp32 GEMM for one ISA: micro-kernels, packing and the cache-blocked driver (gemm.h).
 * Compiled once per ISA with its flags; every symbol carries the ISA suffix (simd.h).
 *
 * Register tiles (per K step: NV vector loads of B, MR broadcasts of A, MR*NV FMAs):
 *   AVX2 (16 ymm):    6x16 (12 accumulators + 2 B + 1 broadcast), 6x8 for the last columns
 *   AVX-512 (32 zmm): 14x32 (28 + 2 + 1), 14x16 for the last columns
 *   NEON (32 q):      8x12 (24 + 3 + 1), 8x4 for the last columns
 *
 * Loop nest (BLIS order, gemm.h):
 *   for pc in K step KC: for ic in M step MC: pack the A block (it stays in L2)
 *     for jr in N step NR: pack the B sliver (into L1); for ir in MC step MR: micro-kernel */
#include "gemm/gemm.h"
#include "simd/simd.h"

#if FC_VEC_BYTES == 32
#define TILE_MR 6
#define TILE_NV 2
#define TILE_NAME "6x16+6x8"
#elif FC_VEC_BYTES == 64
#define TILE_MR 14
#define TILE_NV 2
#define TILE_NAME "14x32+14x16"
#else
#define TILE_MR 8
#define TILE_NV 3
#define TILE_NAME "8x12+8x4"
#endif

#define UK_MR TILE_MR
#define UK_NV TILE_NV
#define UK_NAME fc_gemm_f32_ukernel_main
#include "gemm/gemm_f32_ukernel.inc"
#define UK_MR TILE_MR
#define UK_NV 1
#define UK_NAME fc_gemm_f32_ukernel_tail
#include "gemm/gemm_f32_ukernel.inc"

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

/* Rows [i0, i0 + mc) x columns [k0, k0 + kc) of A into MR-row panels [mc / MR][kc][MR], rows
 * past the matrix zero. Reads along A's unit stride. */
static void pack_a_block(const fc_gemm_a *a, size_t m, size_t i0, size_t mc, size_t k0, size_t kc,
                         float *FC_RESTRICT dst) {
  for (size_t p = 0; p < mc; p += TILE_MR, dst += TILE_MR * kc) {
    const float *base = a->a + (i0 + p) * a->rs + k0 * a->cs;
    const size_t rows = fc_min_size(TILE_MR, m - i0 - p);
    if (a->cs == 1) {
      for (size_t i = 0; i < TILE_MR; i++)
        for (size_t k = 0; k < kc; k++) dst[k * TILE_MR + i] = i < rows ? base[i * a->rs + k] : 0.0f;
    } else {
      for (size_t k = 0; k < kc; k++)
        for (size_t i = 0; i < TILE_MR; i++)
          dst[k * TILE_MR + i] = i < rows ? base[i * a->rs + k * a->cs] : 0.0f;
    }
  }
}

static void driver(const fc_gemm_tile *t, size_t m, size_t n, size_t k, fc_gemm_a a,
                   fc_pack_b_fn pack_b, const void *pack_ctx, float *c, size_t ldc,
                   const float *bias, float *work) {
  const size_t mr = (size_t)t->mr, nr = (size_t)t->nr;
  const size_t mblocks = (m + FC_GEMM_MC - 1) / FC_GEMM_MC;
  const size_t mc_max = fc_round_up((m + mblocks - 1) / mblocks, mr);
  float *a_block = work, *sliver = work + FC_GEMM_KC * FC_GEMM_MC;
  for (size_t pc = 0; pc < k; pc += FC_GEMM_KC) {
    const size_t kc = fc_min_size(FC_GEMM_KC, k - pc);
    const int accumulate = pc != 0; /* the first K block writes C and the bias */
    for (size_t ic = 0; ic < m; ic += mc_max) {
      const size_t mc = fc_min_size(mc_max, m - ic);
      pack_a_block(&a, m, ic, mc, pc, kc, a_block);
      for (size_t jr = 0; jr < n; jr += nr) {
        const size_t nn = fc_min_size(nr, n - jr);
        /* the last columns go to the narrow kernel when they fit in it */
        const int tail = t->tail && nn <= (size_t)t->tail_nr;
        pack_b(pack_ctx, pc, kc, jr, nn, tail ? (size_t)t->tail_nr : nr, sliver);
        const fc_gemm_ukernel_fn uk = tail ? t->tail : t->main;
        for (size_t ir = 0; ir < mc; ir += mr)
          uk(kc, a_block + ir * kc, sliver, c + (ic + ir) * ldc + jr, ldc, fc_min_size(mr, mc - ir),
             nn, accumulate, bias ? bias + ic + ir : NULL);
      }
    }
  }
}

const fc_gemm_ops FC_SYM(fc_gemm_f32_ops) = {
    .tile = {TILE_MR, TILE_NV * FC_L, FC_L, FC_SYM(fc_gemm_f32_ukernel_main),
             FC_SYM(fc_gemm_f32_ukernel_tail), TILE_NAME},
    .pack_b_matrix = pack_b_matrix,
    .driver = driver,
};
