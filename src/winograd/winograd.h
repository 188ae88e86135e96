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
 * The weights are transformed into U[f][oc][ic], written straight into the GEMM's packed A panels
 * (once per plan, or per call block by block); the input tiles of a block of tiles are
 * transformed straight into the GEMM's packed B slivers V[f][sliver][ic][lane], the products
 * M_f = U_f V_f run on the shared micro-kernels, and the output transform writes the m x m tiles
 * while M is in cache. The input is read from a zero-padded copy split into m phases along the
 * width (padded_input.h), so tile column c of consecutive tiles is one vector: of an undilated
 * layer only a tile block's rows of one channel at a time, padded right before their transform.
 *
 * Stride 2 (undilated, every axis) is the same mechanism with another tile: two outputs per axis
 * from five inputs, tiles four inputs apart. Its even taps over the even inputs are F(2, 2), three
 * products, and its middle tap over the odd inputs two more: 5 x 5 = 25 products per channel pair
 * for a 2 x 2 tile against direct's 36, with transforms of +-1 coefficients only (as exact as
 * direct). The padded copy is then split into 4 phases (the tile step) along the width.
 *
 * Dilation d (per axis) is the same computation on the input's polyphase components: outputs o and
 * o + d read inputs o + k d, so the outputs of one phase (row mod d_h, column mod d_w) are an
 * undilated convolution of the inputs of that phase, and a tile is an ordinary tile of one phase
 * whose inputs (and outputs) lie d apart. The padded copy is split into m_w d_w phases along the
 * width: tile column c of a tile of width phase b is copy phase b + d_w (c % m_w), so consecutive
 * tiles stay consecutive floats, and the transforms only step d_h rows and d_w copy phases where
 * they stepped 1. Dilation 1 is the one-phase case of the same code.
 *
 * One image of few tiles (resnet50.l4.3x3: 16 tiles, 512 channels) runs the products transposed,
 * M_f^T = V_f^T U_f^T, with the output channels along the vectors: the input transform writes the
 * tiles as the GEMM's A panels (slivers of mr tiles, half a vector on x86), the weight transform
 * writes U_f^T's slivers of nr output channels (weights_f32 with mr = nr, a multiple of the vector:
 * whole-vector loads and transposes of FC_L input channels at a time), and output_lanes_f32
 * transforms one tile of a vector of output channels. */
#ifndef FASTCONV_WINOGRAD_WINOGRAD_H
#define FASTCONV_WINOGRAD_WINOGRAD_H

#include <stdint.h>

/* Floats of readable slack the transforms need after their buffers (one vector of the widest ISA
 * may run past the last tile). */
#define FC_WINOGRAD_SLACK 64
/* Frequencies of the largest tile, F(4x4, 3x3). */
#define FC_WINOGRAD_MAX_FREQUENCIES 36

/* How a block's tiles lie in the GEMM's packed B slivers: slivers of nr tiles, and from tile
 * tail_from on slivers of tail_nr tiles (the last one filled to its width). Tile t of row k (an
 * input channel) is float k * width + t - start of its sliver, which begins at float start * rows.
 * The widths are multiples of the vector length, or half of it. */
typedef struct fc_winograd_slivers {
  int64_t nr, tail_nr; /* the GEMM tile's widths */
  int64_t tail_from;   /* the first tile of the tail_nr slivers (tiles: none) */
  int64_t tiles, rows; /* tiles of the block; rows of each sliver */
} fc_winograd_slivers;

/* The first tile of the sliver holding tile t. */
static inline int64_t fc_winograd_sliver_start(const fc_winograd_slivers *s, int64_t t) {
  return t < s->tail_from ? t / s->nr * s->nr
                          : s->tail_from + (t - s->tail_from) / s->tail_nr * s->tail_nr;
}

/* The width of the sliver that starts at tile start. */
static inline int64_t fc_winograd_sliver_width(const fc_winograd_slivers *s, int64_t start) {
  return start < s->tail_from ? s->nr : s->tail_nr;
}

/* Where a layer's tiles read the padded copy. The tiles of each phase form tile rows of tiles_w
 * tiles; tile rows are numbered phase by phase and tiles row-major over them, so a block of
 * consecutive tiles may span tile rows and phases. Input d[r][c] of tile j of tile row i is float
 * row_origins[i] + j + r * row_step + (c % m_w) * phase_step + c / m_w of the padded copy: a table
 * of origins, as the phases make them no linear function of i. */
typedef struct fc_winograd_grid {
  const int64_t *row_origins; /* of every tile row */
  int64_t tiles_w;            /* tiles of a tile row */
  int64_t row_step;           /* between a tile's input rows: d_h padded rows */
  int64_t phase_step;         /* between its copy phases: d_w width phases */
} fc_winograd_grid;

/* A tile size's kernels for one ISA. Arguments are pointers and integers only: the core is
 * compiled without AVX, and a float argument costs an SSE/AVX transition per call. */
typedef struct fc_winograd_tile {
  int m_h, m_w;       /* outputs per tile along the height (1 for a 1-D layer) and the width */
  int t_h, t_w;       /* inputs per tile: m + 2 (5 for stride 2), or 1 along a 1-D layer's height */
  int step_h, step_w; /* inputs between consecutive tiles: stride x m */
  /* Weights w[oc][ic][k_h][k_w] (k = t - m + 1) of ocg output channels and icg input channels,
   * row_channels apart (an output channel's row of w holds row_channels input channels), to U_f for
   * every frequency f, packed as the GEMM's pack_a packs U_f[ocg][icg] with panels of mr rows:
   * u + f * u_stride. */
  void (*weights_f32)(const float *w, int64_t ocg, int64_t icg, int64_t row_channels, int64_t mr,
                      float *u, int64_t u_stride);
  /* One channel's tiles of a block, tiles [first, first + slivers->tiles) of the grid, from its
   * padded copy into row `channel` of the block's slivers V + f * v_stride for every frequency f
   * (the last sliver filled to its width). */
  void (*input_f32)(const float *padded, const fc_winograd_grid *grid, int64_t first, float *v,
                    int64_t v_stride, const fc_winograd_slivers *slivers, int64_t channel);
  /* One output channel's tiles [0, count) of a tile row: from M[f * m_stride + t] to `rows`
   * (<= m_h) output rows y + i * y_row, columns [0, out_w), each output y + o * y_col, plus *bias
   * (bias may be NULL). y_col is the distance of outputs d_w apart: d_w for channels-first, d_w
   * times the channel count for channels-last. */
  void (*output_f32)(const float *m, int64_t m_stride, int64_t count, const float *bias, float *y,
                     int64_t y_row, int64_t y_col, int64_t rows, int64_t out_w);
  /* One tile of `channels` output channels, from M[f * m_stride + c] (channel c) to `rows` x
   * `cols` outputs, output (i, j) of channel c at y + c * y_channel + i * y_row + j * y_col, plus
   * bias[c] (bias may be NULL): the output transform of products run with the channels along the
   * vectors. */
  void (*output_lanes_f32)(const float *m, int64_t m_stride, int64_t channels, const float *bias,
                           float *y, int64_t y_channel, int64_t y_row, int64_t y_col, int64_t rows,
                           int64_t cols);
} fc_winograd_tile;

/* Which tile: F(2) and F(4) at stride 1, F(2) at stride 2. */
enum { FC_WINOGRAD_F2, FC_WINOGRAD_F4, FC_WINOGRAD_F2_STRIDE2, FC_WINOGRAD_TILE_KINDS };

/* The tiles of one ISA, indexed [kind][1-D layer], and the check auto makes before choosing
 * Winograd: whether count floats are all finite (an Inf in a tile can make Winograd's outputs NaN
 * where direct's are finite). */
typedef struct fc_winograd_kernels {
  fc_winograd_tile tiles[FC_WINOGRAD_TILE_KINDS][2];
  int lanes; /* floats of the ISA's vectors */
  int (*all_finite_f32)(const float *x, int64_t count);
} fc_winograd_kernels;

#endif
