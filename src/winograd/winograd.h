/* Winograd convolution F(m x m, 3 x 3) for m = 2 and 4 (and F(m, 3) for 1-D layers): each m x m
 * block of outputs ("tile") from an (m + 2) x (m + 2) block of inputs with (m + 2)^2 multiplies
 * per channel pair instead of 9 m^2.
 *
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A        (. elementwise, one product per frequency f)
 *
 * The three matrices of each tile size are applied by one routine along each axis (a 1-D layer
 * is the 2-D case with the identity, m = 1 and a 1-tap kernel, along the height), so F(2) and F(4)
 * are one mechanism; winograd_f32.c holds the matrices and says how F(4)'s points were chosen.
 *
 * The weights are transformed once per plan into U[f][oc][ic], written straight into the GEMM's
 * packed panels; per call the input tiles of a block of tile rows are transformed to
 * V[f][ic][tile], the products M_f = U_f V_f run on the shared GEMM, and the output transform
 * writes the m x m tiles. The input is read from a zero-padded copy split into m phases along the
 * width (padded_input.h), so tile column c of consecutive tiles is one vector. */
#ifndef FASTCONV_WINOGRAD_WINOGRAD_H
#define FASTCONV_WINOGRAD_WINOGRAD_H

#include <stdint.h>

/* Floats of readable slack the transforms need after their buffers (one vector of the widest ISA
 * may run past the last tile). */
#define FC_WINOGRAD_SLACK 64
/* Frequencies of the largest tile, F(4x4, 3x3). */
#define FC_WINOGRAD_MAX_FREQUENCIES 36

/* A tile size's kernels for one ISA. Arguments are pointers and integers only: the core is
 * compiled without AVX, and a float argument costs an SSE/AVX transition per call. */
typedef struct fc_winograd_tile {
  int m_h, m_w; /* outputs per tile along the height (1 for a 1-D layer) and the width */
  int t_h, t_w; /* inputs per tile: m + 2, or 1 along the height of a 1-D layer */
  /* One group's weights w[oc][ic][k_h][k_w] (k = t - m + 1) to U_f for every frequency f, packed
   * as the GEMM's pack_a packs U_f[ocg][icg] with panels of mr rows: u + f * u_stride. */
  void (*weights_f32)(const float *w, int64_t ocg, int64_t icg, int64_t mr, float *u,
                      int64_t u_stride);
  /* Tiles [0, count) of the tile row starting at padded row `row` of one channel's m_w-phase
   * block (phase width wq): V[f * v_stride + t] for every frequency f. */
  void (*input_f32)(const float *padded, int64_t wq, int64_t row, int64_t count, float *v,
                    int64_t v_stride);
  /* One output channel's tiles [0, count) of a tile row: from M[f * m_stride + t] to `rows`
   * (<= m_h) output rows y + i * y_row, columns [0, out_w), each output y + o * y_col (1 for
   * channels-first, the channel count for channels-last), plus *bias (bias may be NULL). */
  void (*output_f32)(const float *m, int64_t m_stride, int64_t count, const float *bias, float *y,
                     int64_t y_row, int64_t y_col, int64_t rows, int64_t out_w);
} fc_winograd_tile;

/* The tile sizes of one ISA, indexed [m == 4][1-D layer]. */
typedef struct fc_winograd_kernels {
  fc_winograd_tile tiles[2][2];
} fc_winograd_kernels;

#endif
