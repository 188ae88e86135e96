/* The fp32 GEMM shared by the SIMD engines: C[M][N] = bias + A[M][K] x B[K][N], C row-major.
 *
 * A (the weights) is packed once into MR-row panels by the engine that owns it: at plan time, or
 * once per call for a one-shot plan. Blocking: per block of NC columns (C's block, M x NC, stays
 * in L2 across the K loop), K block of KC and block of MC rows of A (in L2), every sliver of NR
 * columns of B passes under the A block, packed into L1 right before use: by a callback
 * (implicit-GEMM convolution, B the input's patches gathered as they are packed) or, for a plain
 * matrix B, by the first micro-kernel over each full sliver as it reads it. B is packed once per
 * row block: 1/MC of the multiply-adds. The register tile MR x NR is the ISA's. */
#ifndef FASTCONV_GEMM_GEMM_H
#define FASTCONV_GEMM_GEMM_H

#include <stddef.h>

/* A K block: a B sliver of KC x NR floats stays in L1 (16 KiB for 256 x 16). The unit in which
 * Winograd's products and the direct engine's reduction parts cut K; the driver's own blocks are
 * the ISA's (gemm_f32.c, DRIVER_KC), up to FC_GEMM_KC_MAX. */
#define FC_GEMM_KC 256
#define FC_GEMM_KC_MAX 512
/* Rows of A per block at most: an MC x KC block of 264 KiB stays in L2 (512 KiB and up; 528 KiB
 * for AVX-512's K blocks, whose cores have 1 MiB and up). Blocks are balanced multiples of MR, so
 * 128 or 256 channels are one block, not 126 + 2 rows that pack B twice and waste most of a tile.
 */
#define FC_GEMM_MC 264
/* An A block's rows at most: MC rounded up to the largest MR (AVX-512's 14). */
#define FC_GEMM_MC_MAX 266
#define FC_GEMM_NR_MAX 64
/* Floats of the work buffer a driver call needs: a B sliver and, for an unpacked A, a packed A
 * block. */
#define FC_GEMM_WORK_FLOATS (FC_GEMM_KC_MAX * FC_GEMM_NR_MAX + FC_GEMM_MC_MAX * FC_GEMM_KC_MAX)
/* Floats of C per column block: 128 KiB stays in L2 beside the A block. */
#define FC_GEMM_C_BLOCK_FLOATS 32768

/* C[0:m][0:n] = (accumulate ? C : bias[i]) + A_panel[kc][MR] x B_sliver[kc][NR] */
typedef void (*fc_gemm_ukernel_fn)(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                                   size_t m, size_t n, int accumulate, const float *bias);

/* The same, the first micro-kernels over a block packing as they read: A unpacked when lda != 0
 * (row i at raw_a + i * lda, all MR rows C's; its panel written to a), B a plain matrix when
 * ldb != 0 (its sliver's rows at raw_b, ldb apart, a full NR wide; written to b); one at least
 * (gemm_f32_ukernel.inc, UK_PACK). With dot non-NULL (and lda), A is read in place only (a
 * unused) and one more column of B, column[0:kc], is reduced along k per row: dot[i * L + l] +=
 * sum over k = l mod L of A(i, k) column[k], L the ISA's vector lanes, whose lanes the caller sums
 * into C's column n. */
typedef void (*fc_gemm_pack_ukernel_fn)(size_t kc, const float *raw_a, size_t lda, float *a,
                                        const float *raw_b, size_t ldb, float *b, float *c,
                                        size_t ldc, size_t m, size_t n, int accumulate,
                                        const float *bias, const float *column, float *dot);

/* Columns below which the narrow kernel takes them (1 to 7 last columns, or a GEMM that narrow). */
#define FC_GEMM_NARROW_NR 8

/* C[0:m][0:n] = (accumulate ? C : bias[i]) + A[0:m][kc] x B_sliver[kc][0:n] for n < narrow_nr:
 * all m rows of a block, A in packed panels of MR rows panel_floats apart (from a panel boundary),
 * the sliver's rows ldb apart. Vectorised along the rows (gemm_f32_narrow.inc). */
typedef void (*fc_gemm_narrow_fn)(size_t kc, const float *a, size_t panel_floats, const float *b,
                                  size_t ldb, float *c, size_t ldc, size_t m, size_t n,
                                  int accumulate, const float *bias);

typedef struct fc_gemm_tile {
  int mr, nr;  /* main tile */
  int tail_nr; /* a narrower tile (same MR) for the last columns; 0 = none */
  fc_gemm_ukernel_fn main, tail;
  int narrow_nr; /* fewer columns than this go to narrow */
  fc_gemm_narrow_fn narrow;
  const char *name;
  /* tail_nr + 1 columns of a sliver nr wide: the tail tile and its next column at once; reads up
   * to a vector past the last panel (NULL for the wide tile) */
  fc_gemm_ukernel_fn tail_plus_one;
  fc_gemm_pack_ukernel_fn main_pack; /* the main tile, packing A or B as it reads them */
} fc_gemm_tile;

/* Packs rows [pc, pc + kc) x columns [jr, jr + n) of the (virtual) B into dst[kc][nrp], with
 * columns n..nrp-1 zero. */
typedef void (*fc_pack_b_fn)(const void *ctx, size_t pc, size_t kc, size_t jr, size_t n, size_t nrp,
                             float *dst);

/* A plain row-major B, which the driver packs itself (pack_b NULL). */
typedef struct fc_matrix_ctx {
  const float *b;
  size_t ldb;
} fc_matrix_ctx;

/* The GEMM operations of one ISA, reached through its kernel table. */
typedef struct fc_gemm_ops {
  fc_gemm_tile tile;
  /* Fewer rows, more columns: less padding where the rows (output channels) are a multiple of its
   * MR but not of tile's (resnet50.l1.1x1: 64 rows are 66 in 6-row panels, 3 % wasted). */
  fc_gemm_tile wide_tile;
  /* Floats of a packed A of m x k: ceil(m / MR) panels of k x MR. */
  size_t (*packed_a_floats)(const fc_gemm_tile *t, size_t m, size_t k);
  /* A(i, k) = a[i * rs + k * cs] into panels [ceil(m / MR)][k][MR], rows past m zero; so weights
   * and their transpose pack alike. */
  void (*pack_a)(const fc_gemm_tile *t, size_t m, size_t k, const float *a, size_t rs, size_t cs,
                 float *dst);
  /* C[0:m][0:n] = bias + A[0:m][0:k] B[0:k][0:n] (bias may be NULL); A packed by pack_a (rows
   * from a panel boundary on) when lda is 0, else unpacked, A(i, k) = a[i * lda + k], and packed
   * here a block at a time, right before its use (a one-shot call: no pass over all of A first);
   * B packed by pack_b from pack_ctx, or when pack_b is NULL a plain matrix (pack_ctx an
   * fc_matrix_ctx) that the micro-kernels pack as they first read it; work: FC_GEMM_WORK_FLOATS
   * floats, 64-byte aligned. */
  void (*driver)(const fc_gemm_tile *t, size_t m, size_t n, size_t k, const float *a, size_t lda,
                 fc_pack_b_fn pack_b, const void *pack_ctx, float *c, size_t ldc, const float *bias,
                 float *work);
  /* Whether driver runs an m x n C of an unpacked A (lda) as one full sliver and one column, its A
   * read in place and never packed (gemm_f32.c, driver_one_sliver_and_column). */
  int (*one_sliver_and_column)(const fc_gemm_tile *t, size_t m, size_t n, size_t lda);
} fc_gemm_ops;

/* The tile for a GEMM of `rows` rows (the output channels): the one whose panels pad them least.
 * AVX2, 64 channels: 4x24 pads none, 6x16 3 % (resnet50.l1.1x1, one thread, in a standalone
 * prototype: 89 against 85 GFLOP/s; on 256 channels both within 1 %); AVX-512: Winograd's 64 and
 * 128 channels fill 8-row panels, against 70 and 140 rows in 14-row ones. */
static inline const fc_gemm_tile *fc_gemm_tile_for_rows(const fc_gemm_ops *ops, size_t rows) {
  const fc_gemm_tile *main = &ops->tile, *wide = &ops->wide_tile;
  const size_t main_mr = (size_t)main->mr, wide_mr = (size_t)wide->mr;
  return (rows + wide_mr - 1) / wide_mr * wide_mr < (rows + main_mr - 1) / main_mr * main_mr ? wide
                                                                                             : main;
}

#endif
