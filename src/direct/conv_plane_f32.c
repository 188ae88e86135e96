/* One output channel's band of rows (depthwise, single-channel correlation, a few input channels
 * per output) for one ISA (fc_conv_plane in conv_plane.h), register-blocked over R output rows
 * x V output vectors.
 *
 * Why: the row kernel (conv_rows_f32.c) computes one output row with four accumulators, so the
 * four-cycle FMA latency caps it at half the FMA throughput, and each FMA needs its own
 * (unaligned) input load. Here, when output rows one apart read kernel rows one apart (stride_h ==
 * dilation_h), a block walks its kh_count + R - 1 input rows once: per input row i and column tap
 * kw, V vector loads and one weight broadcast per output row r (that of kernel row i - r) feed the
 * FMAs of every output row that reads input row i. The first and last R - 1 input rows feed fewer
 * output rows; those passes are unrolled with the rows known at compile time (R <= kh_count), so no
 * FMA is wasted and the inner loop has no test. Each row's last vectors (fewer than V) run through
 * the R x 1 block, which reads at most one vector past the row's inputs.
 *
 * A long 1-D kernel (one row of contiguous taps, a 1-D signal's FIR filter) gets the same sharing
 * by folding: with S = 3 vectors, output j = S * r + c and tap k = S * q + t read input
 * S * (r + q) + c + t, so the row is a plane of rows of S outputs, read with a kernel of
 * ceil(K / S) rows of S taps (the last row kw_last = K - S * (kh_count - 1) taps) whose row step
 * is S: output rows one apart read kernel rows one apart. */
#include "direct/conv_plane.h"
#include "simd/simd.h"

/* Input row `row`, column taps k0 <= kw < k1, into output rows r_lo..r_hi, with the weights of
 * kernel row i - r at w_i - r * kw_count. K > 0: a K x K kernel of unit width dilation, known at
 * compile time (TAP_OFFSET). */
#define TAP_OFFSET(K, kw) ((K) ? (kw) : p->col_offset[kw])
#define PLANE_INPUT_ROW(K, R, V, row, w_i, r_lo, r_hi, k0, k1)                          \
  {                                                                                     \
    const float *x_row = (row), *w_row = (w_i);                                         \
    /* opaque to the optimizer, which would otherwise keep a fixed-size kernel's weight \
     * broadcasts live from one input row to the next and an address per tap across the \
     * column loop (25 vectors and 100 pointers: spills) */                             \
    __asm__("" : "+r"(x_row), "+r"(w_row));                                             \
    _Pragma("GCC unroll 8") for (int64_t kw = (k0); kw < (k1); kw++) {                  \
      fc_vf x[V];                                                                       \
      _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) x[v] =                       \
          fc_load(x_row + TAP_OFFSET(K, kw) + v * FC_L);                                \
      _Pragma("GCC unroll 12") for (int r = (r_lo); r <= (r_hi); r++) {                 \
        const fc_vf wv = fc_set1(w_row[kw - r * kw_count]);                             \
        _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) acc[r][v] += wv * x[v];    \
      }                                                                                 \
    }                                                                                   \
  }

#define PLANE_BLOCK(NAME, K, R, V)                                                               \
  FC_INLINE void NAME(const fc_conv_plane *p, const float *src, float *y, int64_t left) {        \
    fc_vf acc[R][V];                                                                             \
    const fc_vf b = fc_set1(p->bias ? *p->bias : 0.0f);                                          \
    _Pragma("GCC unroll 12") for (int r = 0; r < R; r++)                                         \
        _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) acc[r][v] = b;                      \
    const int64_t kh_count = (K) ? (K) : p->kh_count, kw_count = (K) ? (K) : p->kw_count;        \
    const int64_t kw_last = (K) ? (K) : p->kw_last;                                              \
    const int64_t step = p->kh_step;                                                             \
    for (int64_t ic = 0; ic < p->channels; ic++) {                                               \
      const float *s = src + ic * p->channel_stride;                                             \
      const float *w = p->weight + ic * ((kh_count - 1) * kw_count + kw_last);                   \
      /* input rows i < R - 1 feed output rows 0 .. i, from kernel rows below the last */        \
      _Pragma("GCC unroll 12") for (int i = 0; i < R - 1; i++)                                   \
          PLANE_INPUT_ROW(K, R, V, s + i * step, w + i * kw_count, 0, i, 0, kw_count);           \
      for (int64_t i = R - 1; i < kh_count - 1; i++)                                             \
        PLANE_INPUT_ROW(K, R, V, s + i * step, w + i * kw_count, 0, R - 1, 0, kw_count);         \
      /* input row kh_count - 1 + j feeds output rows j .. R - 1, row j from the last kernel row \
       */                                                                                        \
      _Pragma("GCC unroll 12") for (int j = 0; j < R; j++) {                                     \
        const float *row = s + (kh_count - 1 + j) * step,                                        \
                    *w_i = w + (kh_count - 1 + j) * kw_count;                                    \
        PLANE_INPUT_ROW(K, R, V, row, w_i, j, R - 1, 0, kw_last);                                \
        PLANE_INPUT_ROW(K, R, V, row, w_i, j + 1, R - 1, kw_last, kw_count);                     \
      }                                                                                          \
    }                                                                                            \
    _Pragma("GCC unroll 12") for (int r = 0; r < R; r++)                                         \
        _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) {                                   \
      float *out = y + r * p->y_row_stride + v * FC_L;                                           \
      if (left >= (v + 1) * FC_L)                                                                \
        fc_store(out, acc[r][v]);                                                                \
      else                                                                                       \
        fc_store_partial(out, acc[r][v], (int)(left - v * FC_L));                                \
    }                                                                                            \
  }

/* R rows of the plane: blocks of V vectors, then the rest one vector at a time. noinline keeps
 * each variant's register allocation to itself. */
#define PLANE_ROWS(NAME, K, R, V)                                                                  \
  PLANE_BLOCK(NAME##_wide, K, R, V)                                                                \
  PLANE_BLOCK(NAME##_narrow, K, R, 1)                                                              \
  __attribute__((noinline)) static void NAME(const fc_conv_plane *p, const float *src, float *y) { \
    int64_t j = 0;                                                                                 \
    for (; j + V * FC_L <= p->cols; j += V * FC_L) NAME##_wide(p, src + j, y + j, V * FC_L);       \
    for (; j < p->cols; j += FC_L) NAME##_narrow(p, src + j, y + j, p->cols - j);                  \
  }

/* Registers: R * V accumulators + V inputs + 1 broadcast weight, of 16 on AVX2; loads per FMA:
 * (V + R) / (R * V). One family for any kernel (K = 0), and ones for the 3x3 and 5x5 kernels of
 * image filters, whose taps unrolled at compile time drop the loop and tap-offset loads between
 * the FMAs (blocks of R rows need R <= K). */
#define PLANE_FAMILY(NAME, K)    \
  PLANE_ROWS(NAME##_1, K, 1, 12) \
  PLANE_ROWS(NAME##_2, K, 2, 4)  \
  PLANE_ROWS(NAME##_3, K, 3, 3)
PLANE_FAMILY(rows, 0)
PLANE_ROWS(rows_4, 0, 4, 3)
PLANE_FAMILY(rows3x3, 3)
PLANE_FAMILY(rows5x5, 5)
PLANE_ROWS(rows5x5_4, 5, 4, 3)

/* Several output channels (few input channels, many outputs per group: image stems): every input
 * vector feeds O accumulators, O * V + V + 1 registers, (V + O) / (O * V) loads per FMA. A block's
 * V vectors run along the band's rows, across their ends, so every block holds as many vectors as
 * its registers allow (OUTS_VECTORS), whatever the width; the band's n vectors run as
 * ceil(n / OUTS_VECTORS) blocks of as even a number of vectors as can be. resnet50.conv1 (64
 * channels, rows of 7 vectors) at one thread, time over ORT's, same run: blocks of one row, 3
 * channels x 7 vectors and 2 x 7 for the last 4 channels (0.48 and 0.64 loads per FMA, the 2 x 7
 * blocks 1.3x slower per FMA), 1.03-1.04 -> 4 x 6 across rows (0.42) 0.96-0.97.
 * Each vector's address is in a register of its own, so a tap's loads add only the tap offset
 * (else a lea per vector and tap: 1% slower), and the taps of all input channels and kernel rows
 * run as one loop through the driver's table of their offsets (tap_offset), with no loop setup
 * per kernel row. */
typedef struct plane_list {
  int64_t src[FC_PLANE_LIST], y[FC_PLANE_LIST]; /* floats past p->src and p->y */
  int lanes[FC_PLANE_LIST];                     /* lanes to write */
} plane_list;

#define OUTS_BLOCK(NAME, O, V)                                                                  \
  FC_INLINE void NAME(const fc_conv_plane *p, const plane_list *list) {                         \
    fc_vf acc[O][V];                                                                            \
    _Pragma("GCC unroll 8") for (int o = 0; o < O; o++) {                                       \
      const fc_vf b = fc_set1(p->bias ? p->bias[o] : 0.0f);                                     \
      _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) acc[o][v] = b;                       \
    }                                                                                           \
    const float *x_at[V];                                                                       \
    _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) {                                      \
      x_at[v] = p->src + list->src[v];                                                          \
      __asm__("" : "+r"(x_at[v]));                                                              \
    }                                                                                           \
    const int64_t *offset = p->tap_offset, taps = p->channels * p->kh_count * p->kw_count;      \
    const float *w = p->weight;                                                                 \
    _Pragma("GCC unroll 8") for (int64_t t = 0; t < taps; t++) {                                \
      fc_vf x[V];                                                                               \
      _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) x[v] = fc_load(x_at[v] + offset[t]); \
      _Pragma("GCC unroll 8") for (int o = 0; o < O; o++) {                                     \
        const fc_vf wv = fc_set1(w[t * (O) + o]);                                               \
        _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) acc[o][v] += wv * x[v];            \
      }                                                                                         \
    }                                                                                           \
    _Pragma("GCC unroll 8") for (int o = 0; o < O; o++)                                         \
        _Pragma("GCC unroll 12") for (int v = 0; v < V; v++) {                                  \
      float *out = p->y + o * p->y_channel_stride + list->y[v];                                 \
      if (list->lanes[v] >= FC_L)                                                               \
        fc_store(out, acc[o][v]);                                                               \
      else                                                                                      \
        fc_store_partial(out, acc[o][v], list->lanes[v]);                                       \
    }                                                                                           \
  }

#define OUTS_VECTORS(O)                                                                        \
  ((FC_PLANE_REGISTERS - 1) / ((O) + 1) < FC_PLANE_LIST ? (FC_PLANE_REGISTERS - 1) / ((O) + 1) \
                                                        : FC_PLANE_LIST)
#define OUTS_CASE(NAME, O, V)                       \
  case V:                                           \
    if (V <= OUTS_VECTORS(O)) NAME##_v##V(p, list); \
    break;
#define OUTS_BLOCKS(NAME, O)                                                                 \
  OUTS_BLOCK(NAME##_v1, O, 1)                                                                \
  OUTS_BLOCK(NAME##_v2, O, 2)                                                                \
  OUTS_BLOCK(NAME##_v3, O, 3)                                                                \
  OUTS_BLOCK(NAME##_v4, O, 4)                                                                \
  OUTS_BLOCK(NAME##_v5, O, 5)                                                                \
  OUTS_BLOCK(NAME##_v6, O, 6)                                                                \
  OUTS_BLOCK(NAME##_v7, O, 7)                                                                \
  OUTS_BLOCK(NAME##_v8, O, 8)                                                                \
  OUTS_BLOCK(NAME##_v9, O, 9)                                                                \
  OUTS_BLOCK(NAME##_v10, O, 10)                                                              \
  __attribute__((noinline)) static void NAME(const fc_conv_plane *p, const plane_list *list, \
                                             int64_t count) {                                \
    switch (count) {                                                                         \
      OUTS_CASE(NAME, O, 1)                                                                  \
      OUTS_CASE(NAME, O, 2)                                                                  \
      OUTS_CASE(NAME, O, 3)                                                                  \
      OUTS_CASE(NAME, O, 4)                                                                  \
      OUTS_CASE(NAME, O, 5)                                                                  \
      OUTS_CASE(NAME, O, 6)                                                                  \
      OUTS_CASE(NAME, O, 7)                                                                  \
      OUTS_CASE(NAME, O, 8)                                                                  \
      OUTS_CASE(NAME, O, 9)                                                                  \
      OUTS_CASE(NAME, O, 10)                                                                 \
    }                                                                                        \
  }
OUTS_BLOCKS(outs_2, 2)
OUTS_BLOCKS(outs_3, 3)
OUTS_BLOCKS(outs_4, 4)

/* Folding pays once the folded kernel has rows enough for the 3- and 4-row blocks of 3 vectors. */
#define FOLD_WIDTH (3 * FC_L)
#define FOLD_MIN_ROWS 3

/* The kernel size a compile-time family covers, else 0: a square kernel of unit width dilation. */
static int64_t fixed_size(const fc_conv_plane *p) {
  const int64_t k = p->kw_count;
  if ((k != 3 && k != 5) || p->kh_count != k || p->kw_last != k || p->col_offset[k - 1] != k - 1)
    return 0;
  return k;
}

typedef void rows_fn(const fc_conv_plane *, const float *, float *);

/* The band's vectors, row after row, through blocks of several output channels. */
static void plane_outs(const fc_conv_plane *p) {
  typedef void outs_fn(const fc_conv_plane *, const plane_list *, int64_t);
  static outs_fn *const by_outputs[] = {outs_2, outs_3, outs_4};
  static const int64_t most[] = {OUTS_VECTORS(2), OUTS_VECTORS(3), OUTS_VECTORS(4)};
  const int64_t per_row = (p->cols + FC_L - 1) / FC_L, vectors = p->rows * per_row;
  const int64_t blocks = (vectors + most[p->outputs - 2] - 1) / most[p->outputs - 2];
  int64_t r = 0, c = 0; /* the next vector's row and first column */
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t count = vectors / blocks + (b < vectors % blocks);
    plane_list list;
    for (int64_t v = 0; v < count; v++) {
      list.src[v] = r * p->row_step + c;
      list.y[v] = r * p->y_row_stride + c;
      list.lanes[v] = (int)(p->cols - c < FC_L ? p->cols - c : FC_L);
      c += FC_L;
      if (c >= p->cols) c = 0, r++;
    }
    by_outputs[p->outputs - 2](p, &list, count);
  }
}

static void plane(const fc_conv_plane *p) {
  if (p->outputs > 1) {
    plane_outs(p);
    return;
  }
  static rows_fn *const by_rows[][FC_PLANE_MAX_ROWS] = {
      {rows_1, rows_2, rows_3, rows_4},
      {rows3x3_1, rows3x3_2, rows3x3_3, NULL},
      {rows5x5_1, rows5x5_2, rows5x5_3, rows5x5_4},
  };
  rows_fn *const *family = by_rows[fixed_size(p) / 2];
  const int64_t block = p->shared_rows;
  for (int64_t r0 = 0; r0 < p->rows; r0 += block) {
    const int64_t count = p->rows - r0 < block ? p->rows - r0 : block;
    family[count - 1](p, p->src + r0 * p->row_step, p->y + r0 * p->y_row_stride);
  }
}

void FC_SYM(fc_conv_plane_f32)(const fc_conv_plane *p) {
  const int64_t folded_rows = (p->kw_count + FOLD_WIDTH - 1) / FOLD_WIDTH;
  if (!p->contiguous_taps || folded_rows < FOLD_MIN_ROWS || p->cols < FOLD_WIDTH) {
    plane(p);
    return;
  }
  int64_t taps[FOLD_WIDTH];
  for (int t = 0; t < FOLD_WIDTH; t++) taps[t] = t;
  const int64_t whole = p->cols / FOLD_WIDTH * FOLD_WIDTH;
  for (int64_t r = 0; r < p->rows; r++) {
    const float *src = p->src + r * p->row_step;
    float *y = p->y + r * p->y_row_stride;
    fc_conv_plane fold = *p;
    fold.src = src;
    fold.col_offset = taps;
    fold.kh_count = folded_rows;
    fold.kw_count = FOLD_WIDTH;
    fold.kw_last = p->kw_count - FOLD_WIDTH * (folded_rows - 1);
    fold.kh_step = fold.row_step = fold.y_row_stride = FOLD_WIDTH;
    fold.rows = whole / FOLD_WIDTH;
    fold.cols = FOLD_WIDTH;
    fold.shared_rows = folded_rows < FC_PLANE_MAX_ROWS ? folded_rows : FC_PLANE_MAX_ROWS;
    plane(&fold);
    fc_conv_plane rest = *p;
    rest.src = src + whole;
    rest.y = y + whole;
    rest.rows = 1;
    rest.cols = p->cols - whole;
    if (rest.cols > 0) plane(&rest);
  }
}
