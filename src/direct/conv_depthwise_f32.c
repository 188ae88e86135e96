/* Depthwise 3x3 convolution (float32, channels-first, 2-D, stride 1 or 2, dilation 1, any
 * padding) for one ISA: one channel plane per call (see fc_depthwise3x3 in dispatch/kernels.h),
 * vectorised along the output row, reading the input in place.
 *
 * Why: a depthwise layer does 9 multiply-adds per output, so the padded copy and the generic row
 * kernel's per-tap loads cost more than the arithmetic. Here each step is a block of R output
 * rows x one output vector:
 *   - the block's (R - 1) * stride + 3 input rows are read straight from the input; rows in the
 *     padding point at a zero row;
 *   - each input row gives its three tap vectors once and is multiply-added into every output row
 *     of the block that uses it, with the 9 weights and the R accumulators in registers;
 *   - stride 1, interior columns: three unaligned loads; border columns: one masked load (lanes
 *     outside the row read 0, nothing outside it is touched) and the two neighbours by lane
 *     shifts with the element beyond each end, or zero in the padding;
 *   - stride 2: two loads split into even and odd lanes with in-lane shuffles only, the left taps
 *     from two more loads one pair to the left. Everything stays in simd.h's permuted "P order",
 *     restored by one permute per output vector before the store;
 *   - the lane bounds of a border column's masked loads are found once for all its input rows
 *     (found per row, they made stride 2 1.5x slower).
 * Masked stores are slow on Zen: a row's last, partial vector is computed first and stored whole
 * when its tail lands inside the channel's output (the start of a later row, written afterwards),
 * so only the channel's last row is stored masked. Threads must therefore split work by whole
 * channels.
 *
 * Columns: output column ow reads the row at positions stride * ow - 1 + kw (kw < 3) of the
 * row pointer `row`, which is the input row shifted by 1 - pad_left; the input occupies the
 * positions [lo, hi) = [pad_left - 1, pad_left - 1 + in_w) of it, and every position outside is
 * padding, read as zero. */
#include "dispatch/kernels.h"
#include "simd/simd.h"

#define DW_ROWS_STRIDE1 4 /* output rows per block: 6 input rows, 18 loads, 36 FMAs */
#define DW_ROWS_STRIDE2 2 /* 5 input rows */
#define DW_MAX_IN_ROWS 8

enum { COLUMNS_INTERIOR, COLUMNS_BORDER }; /* every tap inside [lo, hi), or possibly not */

/* Lanes i of the vector at row position `at` with at + i < bound, as a lane index in [0, L]. */
FC_INLINE int lanes_before(int64_t bound, int64_t at) {
  return bound - at < 0 ? 0 : bound - at > FC_L ? FC_L : (int)(bound - at);
}

/* Which reads of a border column block lie inside [lo, hi): the same for every input row, so
 * found once per block. Vector read k keeps its lanes [first[k], end[k]); stride 1's scalar
 * neighbours are read or zero. */
typedef struct border_lanes {
  int first[4], end[4];
  int left_inside, right_inside;
} border_lanes;

FC_INLINE void keep_lanes(border_lanes *b, int k, int64_t at, int64_t lo, int64_t hi) {
  b->first[k] = lanes_before(lo, at);
  b->end[k] = lanes_before(hi, at);
}

/* Stride 1 reads the vector at ow0 and the scalars at ow0 - 1 and ow0 + L. */
FC_INLINE border_lanes border_stride1(int64_t ow0, int64_t lo, int64_t hi) {
  border_lanes b;
  keep_lanes(&b, 0, ow0, lo, hi);
  b.left_inside = ow0 - 1 >= lo && ow0 - 1 < hi;
  b.right_inside = ow0 + FC_L >= lo && ow0 + FC_L < hi;
  return b;
}

/* Stride 2 reads the vectors at 2 * ow0, 2 * ow0 + L and, for the left taps, 2 positions before. */
FC_INLINE border_lanes border_stride2(int64_t ow0, int64_t lo, int64_t hi) {
  border_lanes b;
  for (int k = 0; k < 4; k++) keep_lanes(&b, k, 2 * ow0 + k % 2 * FC_L - k / 2 * 2, lo, hi);
  return b;
}

/* Stride 1: c0, c1, c2 = row[ow - 1], row[ow], row[ow + 1] for the L outputs from ow0. */
FC_INLINE void taps_stride1(const float *row, int64_t ow0, int columns, const border_lanes *border,
                            fc_vf *c0, fc_vf *c1, fc_vf *c2) {
  if (columns == COLUMNS_INTERIOR) {
    *c0 = fc_load(row + ow0 - 1);
    *c1 = fc_load(row + ow0);
    *c2 = fc_load(row + ow0 + 1);
  } else {
    const fc_vf v = fc_load_lanes(row + ow0, border->first[0], border->end[0]);
    *c1 = v;
    *c0 = fc_shift_in_lo(v, border->left_inside ? fc_set1(row[ow0 - 1]) : fc_zero());
    *c2 = fc_shift_in_hi(v, border->right_inside ? fc_set1(row[ow0 + FC_L]) : fc_zero());
  }
}

/* Stride 2, in P order: c0, c1, c2 = row[2ow - 1], row[2ow], row[2ow + 1]. */
FC_INLINE void taps_stride2(const float *row, int64_t ow0, int columns, const border_lanes *border,
                            fc_vf *c0, fc_vf *c1, fc_vf *c2) {
  const float *at = row + 2 * ow0;
  fc_vf a, b, a_left, b_left;
  if (columns == COLUMNS_INTERIOR) {
    a = fc_load(at);
    b = fc_load(at + FC_L);
    a_left = fc_load(at - 2);
    b_left = fc_load(at - 2 + FC_L);
  } else {
    a = fc_load_lanes(at, border->first[0], border->end[0]);
    b = fc_load_lanes(at + FC_L, border->first[1], border->end[1]);
    a_left = fc_load_lanes(at - 2, border->first[2], border->end[2]);
    b_left = fc_load_lanes(at - 2 + FC_L, border->first[3], border->end[3]);
  }
  *c1 = fc_even_p(a, b);
  *c2 = fc_odd_p(a, b);
  *c0 = fc_odd_p(a_left, b_left);
}

/* One block: R output rows x the output vector at ow0 (nout valid lanes); rows[i] = the block's
 * input row i. Each output row keeps one accumulator per kernel row, summed at the end: chains of
 * 3 FMAs instead of 9, so consecutive blocks overlap. */
#define DW_BLOCK(NAME, R, S, TAPS, BORDER, RESTORE_ORDER)                                         \
  FC_INLINE void NAME(const float *const *rows, int64_t ow0, int64_t lo, int64_t hi, int columns, \
                      const fc_vf *wv, fc_vf bv, float *y, int64_t ldy, int nout,                 \
                      const float *y_end) {                                                       \
    const border_lanes border = BORDER(ow0, lo, hi);                                              \
    fc_vf acc[R][3];                                                                              \
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                         \
      acc[r][0] = bv;                                                                             \
      acc[r][1] = fc_zero();                                                                      \
      acc[r][2] = fc_zero();                                                                      \
    }                                                                                             \
    _Pragma("GCC unroll 16") for (int i = 0; i < (R - 1) * S + 3; i++) {                          \
      fc_vf c0, c1, c2;                                                                           \
      TAPS(rows[i], ow0, columns, &border, &c0, &c1, &c2);                                        \
      _Pragma("GCC unroll 3") for (int kh = 0; kh < 3; kh++) {                                    \
        const int r = (i - kh) / S;                                                               \
        if ((i - kh) % S != 0 || r < 0 || r >= R) continue;                                       \
        acc[r][kh] += wv[3 * kh] * c0;                                                            \
        acc[r][kh] += wv[3 * kh + 1] * c1;                                                        \
        acc[r][kh] += wv[3 * kh + 2] * c2;                                                        \
      }                                                                                           \
    }                                                                                             \
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                         \
      const fc_vf v = RESTORE_ORDER((acc[r][0] + acc[r][1]) + acc[r][2]);                         \
      float *out = y + r * ldy + ow0;                                                             \
      if (nout == FC_L || out + FC_L <= y_end)                                                    \
        fc_store(out, v);                                                                         \
      else                                                                                        \
        fc_store_partial(out, v, nout);                                                           \
    }                                                                                             \
  }

#define DW_NATURAL_ORDER(v) (v)
DW_BLOCK(block_s1_r4, 4, 1, taps_stride1, border_stride1, DW_NATURAL_ORDER)
DW_BLOCK(block_s1_r3, 3, 1, taps_stride1, border_stride1, DW_NATURAL_ORDER)
DW_BLOCK(block_s1_r2, 2, 1, taps_stride1, border_stride1, DW_NATURAL_ORDER)
DW_BLOCK(block_s1_r1, 1, 1, taps_stride1, border_stride1, DW_NATURAL_ORDER)
DW_BLOCK(block_s2_r2, 2, 2, taps_stride2, border_stride2, fc_unpermute)
DW_BLOCK(block_s2_r1, 1, 2, taps_stride2, border_stride2, fc_unpermute)

/* Every output vector of R output rows: a partial last vector first (its whole-vector stores spill
 * into the next row's first vector before that is written), then from the left, with the columns
 * whose taps all lie inside [lo, hi) through plain loads. noinline keeps each variant's register
 * allocation to itself: 9 weights + accumulators + taps must fit the register file. */
#define DW_ROWS(NAME, BLOCK, S)                                                                   \
  __attribute__((noinline)) static void NAME(const float *const *rows, const fc_depthwise3x3 *d,  \
                                             const fc_vf *wv, fc_vf bv, float *y,                 \
                                             const float *y_end) {                                \
    const int64_t ow = d->out_w, lo = d->pad_left - 1, hi = lo + d->in_w;                         \
    /* interior: reads from S * ow0 - S (>= lo; lo >= -1) to S * (ow0 + L) + 1 - S (< hi)      */ \
    const int64_t interior_begin = S == 1 ? lo + 1 : (lo + 3) / 2,                                \
                  interior_end = S == 1 ? hi - FC_L : hi / 2 - FC_L + 1;                          \
    const int64_t last = (ow - 1) / FC_L * FC_L;                                                  \
    const int nlast = (int)(ow - last);                                                           \
    if (nlast < FC_L && last > 0)                                                                 \
      BLOCK(rows, last, lo, hi, COLUMNS_BORDER, wv, bv, y, ow, nlast, y_end);                     \
    BLOCK(rows, 0, lo, hi, COLUMNS_BORDER, wv, bv, y, ow, ow < FC_L ? (int)ow : FC_L, y_end);     \
    int64_t ow0 = FC_L;                                                                           \
    for (; ow0 + FC_L <= ow && ow0 < interior_begin; ow0 += FC_L)                                 \
      BLOCK(rows, ow0, lo, hi, COLUMNS_BORDER, wv, bv, y, ow, FC_L, y_end);                       \
    for (; ow0 + FC_L <= ow && ow0 < interior_end; ow0 += FC_L)                                   \
      BLOCK(rows, ow0, lo, hi, COLUMNS_INTERIOR, wv, bv, y, ow, FC_L, y_end);                     \
    for (; ow0 + FC_L <= ow; ow0 += FC_L)                                                         \
      BLOCK(rows, ow0, lo, hi, COLUMNS_BORDER, wv, bv, y, ow, FC_L, y_end);                       \
  }

DW_ROWS(rows_s1_r4, block_s1_r4, 1)
DW_ROWS(rows_s1_r3, block_s1_r3, 1)
DW_ROWS(rows_s1_r2, block_s1_r2, 1)
DW_ROWS(rows_s1_r1, block_s1_r1, 1)
DW_ROWS(rows_s2_r2, block_s2_r2, 2)
DW_ROWS(rows_s2_r1, block_s2_r1, 2)

void FC_SYM(fc_conv_depthwise3x3_f32)(const fc_depthwise3x3 *d, const float *x,
                                      const float *weight9, const float *bias, float *y) {
  typedef void rows_fn(const float *const *, const fc_depthwise3x3 *, const fc_vf *, fc_vf, float *,
                       const float *);
  static rows_fn *const by_rows_s1[] = {rows_s1_r1, rows_s1_r2, rows_s1_r3, rows_s1_r4};
  static rows_fn *const by_rows_s2[] = {rows_s2_r1, rows_s2_r2};
  const int64_t s = d->stride, block = s == 1 ? DW_ROWS_STRIDE1 : DW_ROWS_STRIDE2;
  rows_fn *const *by_rows = s == 1 ? by_rows_s1 : by_rows_s2;
  fc_vf wv[9];
  for (int t = 0; t < 9; t++) wv[t] = fc_set1(weight9[t]);
  const fc_vf bv = fc_set1(bias ? *bias : 0.0f);
  const int64_t shift = 1 - d->pad_left; /* row pointers are the input row shifted by this */
  const float *y_end = y + d->out_h * d->out_w;
  for (int64_t oh0 = 0; oh0 < d->out_h; oh0 += block) {
    const int64_t count = d->out_h - oh0 < block ? d->out_h - oh0 : block;
    const float *rows[DW_MAX_IN_ROWS];
    for (int64_t i = 0; i < (count - 1) * s + 3; i++) {
      const int64_t ih = oh0 * s - d->pad_top + i;
      rows[i] = (ih >= 0 && ih < d->in_h ? x + ih * d->in_w : d->zero_row) + shift;
    }
    by_rows[count - 1](rows, d, wv, bv, y + oh0 * d->out_w, y_end);
  }
}
