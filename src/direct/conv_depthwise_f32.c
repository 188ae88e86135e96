/* Depthwise 3x3 convolution (float32, channels-first, 2-D, stride 1 or 2, dilation 1, any
 * padding) for one ISA, over a range of (image, channel) planes (see fc_depthwise3x3 in
 * dispatch/kernels.h), vectorised along the output row, reading the input in place.
 *
 * Why: a depthwise layer does 9 multiply-adds per output, so anything but loads and FMAs in the
 * inner loop costs as much as the arithmetic. The kernel walks a strip of V output vectors down a
 * band of output rows, taking each input row's taps once and multiply-adding them into every
 * output row that reads that input row (three for stride 1, one or two for stride 2), whose
 * accumulators stay in registers as the rows roll by. Input rows are read where they are: a strip
 * at the plane's left or right edge loads its edge vectors with their lanes outside the row zeroed
 * (the padding), interior strips plain loads; rows in the vertical padding read a zero row.
 *
 * Stride 2: the taps of output column ow are input columns 2 ow - pad_left + kw. Two vectors
 * loaded from column 2 ow0 - pad_left + 1 give, deinterleaved, the kw = 1 taps (even lanes) and
 * the kw = 2 taps (odd lanes); the kw = 0 taps are the odd lanes shifted up by one. Lane shifts and
 * deinterleaves take the FMA pipes on Zen 5 (a vpermt2ps costs about 1.4 FMAs), so the kw = 0
 * products are summed unshifted in their own accumulator and shifted once per output vector, not
 * once per input row; the lane shifted in is the previous vector's, or, at a strip's first
 * vector, the products of the input column left of the strip.
 *
 * On Zen 5 (AVX-512) this replaced a kernel that first copied each input row, zero-padded and
 * split into its stride phases, into a ring of staged rows: the copy took 45% of a 56 -> 28
 * stride 2 layer's time and 25% of a 112 x 112 stride 1 layer's.
 *
 * Masked stores are slow on Zen: a row's last, partial vector is stored whole when its tail lands
 * inside the plane's output (the start of the next row, written afterwards: strips holding a
 * partial vector run first in each band, rows run downwards), so only the plane's last row is
 * stored masked. Threads must therefore split work by whole planes. */
#include "dispatch/kernels.h"
#include "simd/simd.h"

#define DW_BAND 64 /* output rows per band: a band's input rows stay in L1 across its strips */
#define DW_MAX_V 3 /* output vectors per strip, at most */

/* Edge strips load every vector masked, lanes outside the row zero, with masks made once per strip
 * (a test per load, or masks rebuilt per row, made such a strip 1.6x slower than an interior one).
 * AVX-512 keeps a mask in one register; elsewhere the lane range is kept and fc_load_lanes builds
 * the mask. */
#if FC_VEC_BYTES == 64 && defined(__AVX512F__)
typedef __mmask16 lanes;
FC_INLINE lanes lanes_of(int lo, int hi) { return fc_mask_(lo, hi); }
FC_INLINE fc_vf load_masked(const float *p, lanes m) { return (fc_vf)_mm512_maskz_loadu_ps(m, p); }
#else
typedef struct {
  int lo, hi;
} lanes;
FC_INLINE lanes lanes_of(int lo, int hi) { return (lanes){lo, hi}; }
FC_INLINE fc_vf load_masked(const float *p, lanes m) { return fc_load_lanes(p, m.lo, m.hi); }
#endif

/* The lanes of row columns c .. c + L - 1 inside 0 .. in_w - 1. */
FC_INLINE lanes row_lanes(int64_t c, int64_t in_w) {
  const int64_t lo = c < 0 ? -c : 0, hi = in_w - c;
  return lanes_of((int)(lo < FC_L ? lo : FC_L), (int)(hi < lo ? lo : hi < FC_L ? hi : FC_L));
}

/* The vector of row columns c .. c + L - 1: EDGE = 0, all inside the row; else the lanes `m`. */
FC_INLINE fc_vf load_cols(const float *row, int64_t c, int edge, lanes m) {
  fc_vf v = edge ? load_masked(row + c, m) : fc_load(row + c);
  /* opaque: GCC would otherwise fold the load into each FMA that uses it, loading it up to three
   * times (and most of these loads straddle two cache lines) */
  __asm__("" : "+x"(v));
  return v;
}

/* Stores output vector v of a row: whole when all of it is in the row, or when its tail lands
 * inside the plane (see above). */
FC_INLINE void store_out(float *out, fc_vf v, int64_t n, const float *y_end) {
  if (n >= FC_L || out + FC_L <= y_end)
    fc_store(out, v);
  else
    fc_store_partial(out, v, (int)n);
}

/* Stride 1: input row `row` (or the zero row) into the accumulators of the output rows that read
 * it: a[k] (k <= k_hi) with kernel row kh0 - k. */
FC_INLINE void s1_row(const float *row, int64_t c0, int V, int edge, const lanes (*ln)[3],
                      const fc_vf *wv, int kh0, int k_hi, fc_vf (*a)[DW_MAX_V]) {
  _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) {
    const fc_vf t0 = load_cols(row, c0 + v * FC_L, edge, ln[v][0]),
                t1 = load_cols(row, c0 + v * FC_L + 1, edge, ln[v][1]),
                t2 = load_cols(row, c0 + v * FC_L + 2, edge, ln[v][2]);
    _Pragma("GCC unroll 3") for (int k = 0; k <= k_hi; k++) {
      const int kh = kh0 - k;
      a[k][v] += (wv[3 * kh] * t0 + wv[3 * kh + 1] * t1) + wv[3 * kh + 2] * t2;
    }
  }
}

FC_INLINE const float *input_row(const float *x, const float *zero_row, int64_t ih, int64_t in_h,
                                 int64_t in_w) {
  return ih < 0 || ih >= in_h ? zero_row : x + ih * in_w;
}

/* Stride 1: output rows r0 .. r1 - 1 x the V vectors from output column ow0. */
#define DW_STRIP_S1(NAME, V, EDGE)                                                              \
  __attribute__((noinline)) static void NAME(                                                   \
      const fc_depthwise3x3 *d, const float *x, const float *zero_row, const float *weight9,    \
      const float *bias, float *y, int64_t ow0, int64_t r0, int64_t r1, const float *y_end) {   \
    fc_vf wv[9];                                                                                \
    for (int t = 0; t < 9; t++) wv[t] = fc_set1(weight9[t]);                                    \
    const fc_vf bv = fc_set1(bias ? *bias : 0.0f);                                              \
    const int64_t in_h = d->in_h, in_w = d->in_w, ow = d->out_w, c0 = ow0 - d->pad_left;        \
    lanes ln[V][3];                                                                             \
    for (int v = 0; v < V; v++)                                                                 \
      for (int kw = 0; kw < 3; kw++) ln[v][kw] = row_lanes(c0 + v * FC_L + kw, in_w);           \
    /* a[0] row r (kernel row 2 to come), a[1] row r + 1, a[2] row r + 2 */                     \
    fc_vf a[3][DW_MAX_V];                                                                       \
    for (int v = 0; v < V; v++) a[0][v] = a[1][v] = a[2][v] = bv;                               \
    const int64_t ih0 = r0 - d->pad_top;                                                        \
    s1_row(input_row(x, zero_row, ih0, in_h, in_w), c0, V, EDGE, ln, wv, 0, 0, a);              \
    s1_row(input_row(x, zero_row, ih0 + 1, in_h, in_w), c0, V, EDGE, ln, wv, 1, 1, a);          \
    for (int64_t r = r0; r < r1; r++) {                                                         \
      for (int v = 0; v < V; v++) a[2][v] = bv;                                                 \
      s1_row(input_row(x, zero_row, r - d->pad_top + 2, in_h, in_w), c0, V, EDGE, ln, wv, 2, 2, \
             a);                                                                                \
      float *out = y + r * ow + ow0;                                                            \
      for (int v = 0; v < V; v++) {                                                             \
        store_out(out + v * FC_L, a[0][v], ow - ow0 - v * FC_L, y_end);                         \
        a[0][v] = a[1][v];                                                                      \
        a[1][v] = a[2][v];                                                                      \
      }                                                                                         \
    }                                                                                           \
  }

/* Stride 2: input row `row` (or the zero row) into the accumulators of the output rows that read
 * it, with kernel row kh[j] for j < n: m[j] (kw = 1, 2 taps), s[j] (kw = 0 taps, unshifted), and
 * cy[j] (the kw = 0 tap of the strip's first column, when `carry`). */
FC_INLINE void s2_row(const float *row, int64_t c0, int V, int edge, const lanes (*ln)[3],
                      int carry, const fc_vf *wv, int n, const int *kh, fc_vf (*m)[DW_MAX_V],
                      fc_vf (*s)[DW_MAX_V], fc_vf *cy) {
  _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) {
    const fc_vf lo = load_cols(row, c0 + 2 * v * FC_L + 1, edge, ln[v][0]),
                hi = load_cols(row, c0 + 2 * v * FC_L + 1 + FC_L, edge, ln[v][1]);
    const fc_vf ev = fc_even(lo, hi), od = fc_odd(lo, hi);
    _Pragma("GCC unroll 2") for (int j = 0; j < n; j++) {
      m[j][v] += wv[3 * kh[j] + 1] * ev;
      m[j][v] += wv[3 * kh[j] + 2] * od;
      s[j][v] += wv[3 * kh[j]] * od;
    }
  }
  if (carry) {
    const fc_vf c = fc_set1(row[c0]);
    _Pragma("GCC unroll 2") for (int j = 0; j < n; j++) cy[j] += wv[3 * kh[j]] * c;
  }
}

/* Stride 2: output rows r0 .. r1 - 1 x the V vectors from output column ow0. */
#define DW_STRIP_S2(NAME, V, EDGE)                                                                \
  __attribute__((noinline)) static void NAME(                                                     \
      const fc_depthwise3x3 *d, const float *x, const float *zero_row, const float *weight9,      \
      const float *bias, float *y, int64_t ow0, int64_t r0, int64_t r1, const float *y_end) {     \
    fc_vf wv[9];                                                                                  \
    for (int t = 0; t < 9; t++) wv[t] = fc_set1(weight9[t]);                                      \
    const fc_vf bv = fc_set1(bias ? *bias : 0.0f);                                                \
    const int64_t in_h = d->in_h, in_w = d->in_w, ow = d->out_w, c0 = 2 * ow0 - d->pad_left;      \
    const int carry = c0 >= 0 && c0 < in_w;                                                       \
    lanes ln[V][3];                                                                               \
    for (int v = 0; v < V; v++)                                                                   \
      for (int j = 0; j < 2; j++) ln[v][j] = row_lanes(c0 + 2 * v * FC_L + 1 + j * FC_L, in_w);   \
    static const int kh_0[1] = {0}, kh_1[1] = {1}, kh_20[2] = {2, 0};                             \
    /* [0] row r (kernel rows 1 and 2 to come), [1] row r + 1 */                                  \
    fc_vf m[2][DW_MAX_V], s[2][DW_MAX_V], cy[2] = {fc_zero(), fc_zero()};                         \
    for (int v = 0; v < V; v++) m[0][v] = bv, s[0][v] = fc_zero();                                \
    const int64_t ih0 = 2 * r0 - d->pad_top;                                                      \
    s2_row(input_row(x, zero_row, ih0, in_h, in_w), c0, V, EDGE, ln, carry, wv, 1, kh_0, m, s,    \
           cy);                                                                                   \
    for (int64_t r = r0; r < r1; r++) {                                                           \
      const int64_t ih = 2 * r - d->pad_top;                                                      \
      for (int v = 0; v < V; v++) m[1][v] = bv, s[1][v] = fc_zero();                              \
      cy[1] = fc_zero();                                                                          \
      s2_row(input_row(x, zero_row, ih + 1, in_h, in_w), c0, V, EDGE, ln, carry, wv, 1, kh_1, m,  \
             s, cy);                                                                              \
      s2_row(input_row(x, zero_row, ih + 2, in_h, in_w), c0, V, EDGE, ln, carry, wv, 2, kh_20, m, \
             s, cy);                                                                              \
      float *out = y + r * ow + ow0;                                                              \
      for (int v = 0; v < V; v++)                                                                 \
        store_out(out + v * FC_L, m[0][v] + fc_shift_in_lo(s[0][v], v > 0 ? s[0][v - 1] : cy[0]), \
                  ow - ow0 - v * FC_L, y_end);                                                    \
      for (int v = 0; v < V; v++) m[0][v] = m[1][v], s[0][v] = s[1][v];                           \
      cy[0] = cy[1];                                                                              \
    }                                                                                             \
  }

typedef void strip_fn(const fc_depthwise3x3 *, const float *, const float *, const float *,
                      const float *, float *, int64_t, int64_t, int64_t, const float *);

DW_STRIP_S1(s1_v1, 1, 0)
DW_STRIP_S1(s1_v2, 2, 0)
DW_STRIP_S1(s1_v3, 3, 0)
DW_STRIP_S1(s1_v1_edge, 1, 1)
DW_STRIP_S1(s1_v2_edge, 2, 1)
DW_STRIP_S2(s2_v1, 1, 0)
DW_STRIP_S2(s2_v2, 2, 0)
DW_STRIP_S2(s2_v1_edge, 1, 1)
DW_STRIP_S2(s2_v2_edge, 2, 1)

/* Strip widths in vectors: interior strips of up to DW_WIDE (stride 1 holds 3 V accumulators and
 * 3 V taps, stride 2 4 V accumulators and 2 V taps, next to the 9 weights); edge strips of up to
 * DW_EDGE (one mask per load). */
#define DW_WIDE(S) (FC_L == 16 ? 2 : 1)
#define DW_EDGE(S) (FC_L == 16 ? 2 : 1)

/* Does output vector v read columns outside the row? */
FC_INLINE int edge_vector(const fc_depthwise3x3 *d, int S, int64_t v) {
  /* columns read: stride 1 from v L - pad_left, L + 2 of them; stride 2 from 2 v L - pad_left + 1,
   * 2 L of them */
  const int64_t lo = S * v * FC_L - d->pad_left + (S - 1), hi = lo + S * FC_L + (S == 1 ? 2 : 0);
  return lo < 0 || hi > d->in_w;
}

/* The strip from vector v0 (of `vectors`): its width, and whether it is an edge strip. */
FC_INLINE int64_t strip_width(const fc_depthwise3x3 *d, int S, int64_t v0, int64_t vectors,
                              int *edge) {
  *edge = edge_vector(d, S, v0);
  const int64_t most = vectors - v0 < (*edge ? DW_EDGE(S) : DW_WIDE(S)) ? vectors - v0
                       : *edge                                          ? DW_EDGE(S)
                                                                        : DW_WIDE(S);
  int64_t width = 1;
  while (width < most && (*edge || !edge_vector(d, S, v0 + width))) width++;
  return width;
}

/* One strip of output vectors [v0, v0 + V) over output rows r0 .. r1 - 1. */
FC_INLINE void strip(const fc_depthwise3x3 *d, int S, int64_t v0, int64_t V, int edge,
                     const float *x, const float *zero_row, const float *weight9, const float *bias,
                     float *y, int64_t r0, int64_t r1, const float *y_end) {
  static strip_fn *const by_width[2][2][3] = {
      {{s1_v1, s1_v2, s1_v3}, {s1_v1_edge, s1_v2_edge, s1_v2_edge}},
      {{s2_v1, s2_v2, s2_v2}, {s2_v1_edge, s2_v2_edge, s2_v2_edge}}};
  by_width[S - 1][edge][V - 1](d, x, zero_row, weight9, bias, y, v0 * FC_L, r0, r1, y_end);
}

/* One plane, in bands of output rows; in each band the strip holding the last vector (which may be
 * partial) runs first, then the strips from the left. */
FC_INLINE void plane(const fc_depthwise3x3 *d, int S, const float *x, const float *zero_row,
                     const float *weight9, const float *bias, float *y) {
  const int64_t vectors = (d->out_w + FC_L - 1) / FC_L;
  const float *y_end = y + d->out_h * d->out_w;
  int64_t last = 0, last_width;
  int last_edge, edge;
  while ((last_width = strip_width(d, S, last, vectors, &last_edge)) < vectors - last)
    last += last_width;
  for (int64_t r0 = 0; r0 < d->out_h; r0 += DW_BAND) {
    const int64_t r1 = d->out_h - r0 < DW_BAND ? d->out_h : r0 + DW_BAND;
    strip(d, S, last, last_width, last_edge, x, zero_row, weight9, bias, y, r0, r1, y_end);
    for (int64_t v0 = 0, width; v0 < last; v0 += width) {
      width = strip_width(d, S, v0, vectors, &edge);
      strip(d, S, v0, width, edge, x, zero_row, weight9, bias, y, r0, r1, y_end);
    }
  }
}
void FC_SYM(fc_conv_depthwise3x3_f32)(const fc_depthwise3x3 *d, const float *x, const float *weight,
                                      const float *bias, float *y, int64_t first_plane,
                                      int64_t end_plane, float *stage) {
  memset(stage, 0, (size_t)d->in_w * sizeof(float)); /* the zero row */
  const int64_t in_plane = d->in_h * d->in_w, out_plane = d->out_h * d->out_w;
  for (int64_t p = first_plane; p < end_plane; p++) {
    const int64_t c = p % d->channels;
    const float *b = bias ? bias + c : NULL;
    if (d->stride == 1)
      plane(d, 1, x + p * in_plane, stage, weight + 9 * c, b, y + p * out_plane);
    else
      plane(d, 2, x + p * in_plane, stage, weight + 9 * c, b, y + p * out_plane);
  }
}
