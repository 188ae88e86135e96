/* Depthwise 3x3 convolution (float32, channels-first, 2-D, stride 1 or 2, dilation 1, any
 * padding) for one ISA, over a range of (image, channel) planes (see fc_depthwise3x3 in
 * dispatch/kernels.h), vectorised along the output row.
 *
 * Why: a depthwise layer does 9 multiply-adds per output, so anything but loads and FMAs in the
 * inner loop costs as much as the arithmetic. Reading the input in place needs masked loads, lane
 * shifts and (stride 2) shuffles wherever a vector meets a row edge; on narrow planes that is
 * every vector (7 x 7: ~140 cycles a plane against ~35 of FMAs), on 56 -> 28 stride 2 half of
 * them. So each input row is first staged once, as it comes into use:
 *   - zero-padded: the row's data lands pad_left positions in, and the padding around it stays
 *     zero in the stage (zeroed at the start of each kernel call);
 *   - split into its `stride` column phases: phase q holds the padded row's positions q, q + s,
 *     q + 2s, ..., so output column ow's taps kw = 0, 1, 2 are phase kw % s at ow + kw / s, three
 *     plain loads for either stride (stride 2 deinterleaves here, two in-lane shuffles and two
 *     permutes per 2L inputs, not per tap).
 * A ring of 16 staged rows holds the 6 (stride 1) or 9 (stride 2) a block of output rows reads,
 * each row staged once; rows in the vertical padding read a zero row.
 *
 * Each step is then a block of R output rows x one output vector: each staged input row gives its
 * three tap vectors once and is multiply-added into every output row of the block that uses it.
 * Masked stores are slow on Zen: a row's last, partial vector is computed first and stored whole
 * when its tail lands inside the plane's output (the start of a later row, written afterwards), so
 * only the plane's last row is stored masked. Threads must therefore split work by whole planes. */
#include "dispatch/kernels.h"
#include "simd/simd.h"

#define DW_BLOCK_ROWS 4 /* output rows per block: stride 1 reads 6 input rows, stride 2 reads 9 */
#define DW_RING 16      /* staged rows; FC_DEPTHWISE3X3_STAGE_ROWS counts one more, the zero row */

/* The first n lanes of p (0 < n), the others zero: a whole-vector load and a mask where the vector
 * ends before `end`, the end of the input (the lanes past the row are the next row's). In profiles
 * of 7 x 7 planes the masked load (vmaskmovps, its mask built per row) was the costliest part of
 * staging a row. */
FC_INLINE fc_vf load_first(const float *p, int64_t n, const float *end) {
  if (n >= FC_L) return fc_load(p);
  return p + FC_L <= end ? fc_keep_first(fc_load(p), (int)n) : fc_load_lanes(p, 0, (int)n);
}

/* One input row (in_w floats at `in`) into its phase rows `phases` (S rows, `pitch` apart): the
 * padded row's position t = pad_left + i holds in[i] and goes to phase t % S at index t / S. The
 * last chunk's lanes past the row are loaded as zero, so whole-vector stores keep the padding
 * zero. */
FC_INLINE void stage_row(const float *in, int64_t in_w, int64_t pad_left, int64_t pitch, int S,
                         const float *end, float *phases) {
  if (S == 1) {
    float *out = phases + pad_left;
    int64_t i = 0;
    for (; i + FC_L <= in_w; i += FC_L) fc_store(out + i, fc_load(in + i));
    if (i < in_w) fc_store(out + i, load_first(in + i, in_w - i, end));
  } else {
    /* even inputs 2k go to phase pad_left % 2 at k + pad_left / 2, odd ones to the other phase at
     * k + (pad_left + 1) / 2 */
    float *even = phases + pad_left % 2 * pitch + pad_left / 2;
    float *odd = phases + (pad_left + 1) % 2 * pitch + (pad_left + 1) / 2;
    int64_t i = 0;
    for (; i + 2 * FC_L <= in_w; i += 2 * FC_L) {
      const fc_vf a = fc_load(in + i), b = fc_load(in + i + FC_L);
      fc_store(even + i / 2, fc_even(a, b));
      fc_store(odd + i / 2, fc_odd(a, b));
    }
    if (i < in_w) {
      const int64_t n = in_w - i;
      const fc_vf a = load_first(in + i, n, end);
      const fc_vf b = n > FC_L ? load_first(in + i + FC_L, n - FC_L, end) : fc_zero();
      fc_store(even + i / 2, fc_even(a, b));
      fc_store(odd + i / 2, fc_odd(a, b));
    }
  }
}

/* One block: R output rows x the output vector at ow0 (nout valid lanes); rows[i] = the phases of
 * the block's input row i. One accumulator per output row, so the 9 weights, R = 4 accumulators
 * and the 3 taps about fit in 16 registers (GCC spills one): with three accumulators per row the
 * weights became memory operands, 54 loads per 36 FMAs. The chain of 9 FMAs per row is latency,
 * not throughput: the next column's block is independent and overlaps it. */
FC_INLINE void block(const float *const *rows, int64_t pitch, int R, int S, int64_t ow0,
                     const fc_vf *wv, fc_vf bv, float *y, int64_t ldy, int nout,
                     const float *y_end) {
  fc_vf acc[DW_BLOCK_ROWS];
  _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) acc[r] = bv;
  _Pragma("GCC unroll 16") for (int i = 0; i < (R - 1) * S + 3; i++) {
    const float *row = rows[i] + ow0;
    const fc_vf c0 = fc_load(row), c1 = fc_load(row + (S == 1 ? 1 : pitch)),
                c2 = fc_load(row + (S == 1 ? 2 : 1));
    _Pragma("GCC unroll 3") for (int kh = 0; kh < 3; kh++) {
      const int r = (i - kh) / S;
      if ((i - kh) % S != 0 || r < 0 || r >= R) continue;
      acc[r] += wv[3 * kh] * c0;
      acc[r] += wv[3 * kh + 1] * c1;
      acc[r] += wv[3 * kh + 2] * c2;
    }
  }
  _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
    float *out = y + r * ldy + ow0;
    if (nout == FC_L || out + FC_L <= y_end)
      fc_store(out, acc[r]);
    else
      fc_store_partial(out, acc[r], nout);
  }
}

/* Every output vector of R output rows: a partial last vector first (its whole-vector stores spill
 * into the next row's first vector before that is written), then from the left. noinline keeps
 * each variant's register allocation to itself: weights, accumulators and taps must fit the
 * register file. */
#define DW_ROWS(NAME, R, S)                                                                       \
  __attribute__((noinline)) static void NAME(const float *const *rows, int64_t pitch, int64_t ow, \
                                             const float *weight9, const float *bias, float *y,   \
                                             const float *y_end) {                                \
    fc_vf wv[9];                                                                                  \
    for (int t = 0; t < 9; t++) wv[t] = fc_set1(weight9[t]);                                      \
    const fc_vf bv = fc_set1(bias ? *bias : 0.0f);                                                \
    const int64_t last = (ow - 1) / FC_L * FC_L;                                                  \
    if (last > 0 && ow - last < FC_L)                                                             \
      block(rows, pitch, R, S, last, wv, bv, y, ow, (int)(ow - last), y_end);                     \
    block(rows, pitch, R, S, 0, wv, bv, y, ow, ow < FC_L ? (int)ow : FC_L, y_end);                \
    for (int64_t ow0 = FC_L; ow0 + FC_L <= ow; ow0 += FC_L)                                       \
      block(rows, pitch, R, S, ow0, wv, bv, y, ow, FC_L, y_end);                                  \
  }

DW_ROWS(rows_s1_r1, 1, 1)
DW_ROWS(rows_s1_r2, 2, 1)
DW_ROWS(rows_s1_r3, 3, 1)
DW_ROWS(rows_s1_r4, 4, 1)
DW_ROWS(rows_s2_r1, 1, 2)
DW_ROWS(rows_s2_r2, 2, 2)
DW_ROWS(rows_s2_r3, 3, 2)
DW_ROWS(rows_s2_r4, 4, 2)

typedef void rows_fn(const float *const *, int64_t, int64_t, const float *, const float *, float *,
                     const float *);

/* One plane: output rows in blocks. The ring is kept full ahead of the block being computed, so a
 * block reads rows staged a block earlier: loads straddling two stores that are not yet written to
 * the cache cannot be forwarded from them and wait. */
FC_INLINE void plane(const fc_depthwise3x3 *d, int S, const float *x, const float *x_end,
                     const float *weight9, const float *bias, float *y, float *stage) {
  static rows_fn *const by_rows[2][DW_BLOCK_ROWS] = {
      {rows_s1_r1, rows_s1_r2, rows_s1_r3, rows_s1_r4},
      {rows_s2_r1, rows_s2_r2, rows_s2_r3, rows_s2_r4}};
  const int64_t pitch = d->pitch, row_floats = S * pitch;
  const float *zero_row = stage + DW_RING * row_floats;
  const float *y_end = y + d->out_h * d->out_w;
  int64_t staged_end = 0; /* input rows below this are in the ring */
  for (int64_t oh0 = 0; oh0 < d->out_h; oh0 += DW_BLOCK_ROWS) {
    const int64_t count = d->out_h - oh0 < DW_BLOCK_ROWS ? d->out_h - oh0 : DW_BLOCK_ROWS;
    const int64_t first = oh0 * S - d->pad_top;
    const int64_t fill_end = first + DW_RING < d->in_h ? first + DW_RING : d->in_h;
    for (int64_t ih = first > staged_end ? first : staged_end; ih < fill_end; ih++)
      stage_row(x + ih * d->in_w, d->in_w, d->pad_left, pitch, S, x_end,
                stage + ih % DW_RING * row_floats);
    if (fill_end > staged_end) staged_end = fill_end;
    const float *rows[(DW_BLOCK_ROWS - 1) * 2 + 3];
    for (int64_t i = 0; i < (count - 1) * S + 3; i++) {
      const int64_t ih = first + i;
      rows[i] = ih < 0 || ih >= d->in_h ? zero_row : stage + ih % DW_RING * row_floats;
    }
    by_rows[S - 1][count - 1](rows, pitch, d->out_w, weight9, bias, y + oh0 * d->out_w, y_end);
  }
}

void FC_SYM(fc_conv_depthwise3x3_f32)(const fc_depthwise3x3 *d, const float *x, const float *weight,
                                      const float *bias, float *y, int64_t first_plane,
                                      int64_t end_plane, float *stage) {
  const int S = (int)d->stride;
  memset(stage, 0, (size_t)(FC_DEPTHWISE3X3_STAGE_ROWS * S * d->pitch) * sizeof(float));
  const int64_t in_plane = d->in_h * d->in_w, out_plane = d->out_h * d->out_w;
  const float *x_end = x + end_plane * in_plane;
  for (int64_t p = first_plane; p < end_plane; p++) {
    const int64_t c = p % d->channels;
    const float *b = bias ? bias + c : NULL;
    if (S == 1)
      plane(d, 1, x + p * in_plane, x_end, weight + 9 * c, b, y + p * out_plane, stage);
    else
      plane(d, 2, x + p * in_plane, x_end, weight + 9 * c, b, y + p * out_plane, stage);
  }
}
