/* Winograd F(2x2, 3x3): each 2x2 block of outputs ("tile") from a 4x4 block of inputs with 16
 * multiplies per channel pair instead of 36.
 *
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A        (. elementwise, 16 frequencies f = 4 i + j)
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 *
 * The weights are transformed once per plan, U[f][oc][ic]; per call the input tiles of a block of
 * tile rows are transformed to V[f][ic][tile], the 16 products M_f = U_f V_f run on the shared
 * GEMM, and the output transform writes the 2x2 tiles. The input is read from a zero-padded copy
 * split into even and odd columns, [rows][2][wq], so tile column c of consecutive tiles is one
 * vector. */
#ifndef FASTCONV_WINOGRAD_WINOGRAD_H
#define FASTCONV_WINOGRAD_WINOGRAD_H

#include <stdint.h>

/* Floats of readable slack the transforms need after their buffers (one vector of the widest ISA
 * may run past the last tile). */
#define FC_WINOGRAD_SLACK 64

typedef struct fc_winograd_kernels {
  /* Tiles [0, count) of the tile row starting at padded row `row` of one channel's 2-phase block
   * (phase width wq): V[f * v_stride + t] for the 16 frequencies f. */
  void (*input_f32)(const float *padded, int64_t wq, int64_t row, int64_t count, float *v,
                    int64_t v_stride);
  /* One output channel's tiles [0, count) of a tile row: from M[f * m_stride + t] to output rows
   * y0 and y1 (y1 NULL past the output's last row), columns [0, out_w), plus bias. */
  void (*output_f32)(const float *m, int64_t m_stride, int64_t count, float bias, float *y0,
                     float *y1, int64_t out_w);
} fc_winograd_kernels;

#endif
