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
 * (the padding), interior strips plain loads; rows in the vertical padding are skipped.
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

/* Output rows per band: a band's input rows stay in L1 across its strips (a 112-wide plane ran 3%
 * slower with 32 or 128). */
#define DW_BAND 64
#define DW_MAX_V 2 /* output vectors per strip, at most */

/* Edge strips zero the lanes outside the row, with lane masks made once per strip (a test per load,
 * or masks rebuilt per row, made such a strip 1.6x slower than an interior one): a whole-vector
 * load, then the lanes kept; or, in a band whose whole vectors would reach outside the input (the
 * first plane's first rows, the last plane's last rows), masked loads. Masked loads that
 * miss the cache are slow on Zen 5: loading all of a 56 -> 28 stride 2 layer's input from L3 masked
 * took 1.3x the time of plain loads. AVX-512 keeps a mask in one register; elsewhere the lane range
 * and a vector of lane masks are kept. */
#if FC_VEC_BYTES == 64 && defined(__AVX512F__)
typedef fc_lanes lanes;
FC_INLINE lanes lanes_of(int lo, int hi) { return fc_lanes_of(lo, hi); }
FC_INLINE fc_vf load_masked(const float *p, lanes m) { return fc_load_masked(p, m); }
FC_INLINE fc_vf keep_lanes(fc_vf v, lanes m) { return (fc_vf)_mm512_maskz_mov_ps(m, (__m512)v); }
#else
typedef struct {
  int lo, hi;
  fc_vi keep;
} lanes;
FC_INLINE lanes lanes_of(int lo, int hi) {
  const fc_vi idx = {FC_IDX_LANES};
  return (lanes){lo, hi, (idx >= lo) & (idx < hi)};
}
FC_INLINE fc_vf load_masked(const float *p, lanes m) { return fc_load_lanes(p, m.lo, m.hi); }
FC_INLINE fc_vf keep_lanes(fc_vf v, lanes m) { return (fc_vf)((fc_vi)v & m.keep); }
#endif

/* The lanes of row columns c .. c + L - 1 inside 0 .. in_w - 1. */
FC_INLINE lanes row_lanes(int64_t c, int64_t in_w) {
  const int64_t lo = c < 0 ? -c : 0, hi = in_w - c;
  return lanes_of((int)(lo < FC_L ? lo : FC_L), (int)(hi < lo ? lo : hi < FC_L ? hi : FC_L));
}

/* Loads: all of the vector inside the row (interior strips), the lanes kept after a whole-vector
 * load, or a masked load. */
enum { LOAD_PLAIN, LOAD_KEEP, LOAD_MASKED };

/* The vector of row columns c .. c + L - 1 (the lanes `m` of it unless LOAD_PLAIN). */
FC_INLINE fc_vf load_cols(const float *row, int64_t c, int how, lanes m) {
  fc_vf v = how == LOAD_MASKED ? load_masked(row + c, m) : fc_load(row + c);
  /* opaque: GCC would otherwise fold the load into each FMA that uses it, loading it up to three
   * times (and most of these loads straddle two cache lines) */
  __asm__("" : "+x"(v));
  return how == LOAD_KEEP ? keep_lanes(v, m) : v;
}

/* The input of this call, [begin, end): edge strips load whole vectors where they lie inside. */
typedef struct {
  const float *begin, *end;
} input_bounds;

/* Stores output vector v of a row: whole when all of it is in the row, or when its tail lands
 * inside the plane (see above). */
FC_INLINE void store_out(float *out, fc_vf v, int64_t n, const float *y_end) {
  if (n >= FC_L || out + FC_L <= y_end)
    fc_store(out, v);
  else
    fc_store_partial(out, v, (int)n);
}

/* Stride 1: input row `row` (NULL: a row of zeros) into the accumulators of the output rows that
 * read it: a[k] (k <= k_hi) with kernel row kh0 - k. */
FC_INLINE void s1_row(const float *row, int64_t c0, int V, int first, int last,
                      const lanes (*ln)[3], const fc_vf *wv, int kh0, int k_hi,
                      fc_vf (*a)[DW_MAX_V]) {
  if (!row) return;
  _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) {
    const int how = v == V - 1 ? last : first;
    const fc_vf t0 = load_cols(row, c0 + v * FC_L, how, ln[v][0]),
                t1 = load_cols(row, c0 + v * FC_L + 1, how, ln[v][1]),
                t2 = load_cols(row, c0 + v * FC_L + 2, how, ln[v][2]);
    _Pragma("GCC unroll 3") for (int k = 0; k <= k_hi; k++) {
      const int kh = kh0 - k;
      a[k][v] += wv[3 * kh] * t0;
      a[k][v] += wv[3 * kh + 1] * t1;
      a[k][v] += wv[3 * kh + 2] * t2;
    }
  }
}

/* Input row ih, or NULL in the vertical padding. */
FC_INLINE const float *input_row(const float *x, int64_t ih, int64_t in_h, int64_t in_w) {
  return ih < 0 || ih >= in_h ? NULL : x + ih * in_w;
}

/* The 9 taps broadcast into wv; returns the bias (0 without one) broadcast. */
FC_INLINE fc_vf broadcast_taps(const float *weight9, const float *bias, fc_vf *wv) {
  for (int t = 0; t < 9; t++) wv[t] = fc_set1(weight9[t]);
  return fc_set1(bias ? *bias : 0.0f);
}

/* Stride 1: output rows r0 .. r1 - 1 x the V vectors from output column ow0, the first loaded FIRST
 * (LOAD_*), the last LAST. */
#define DW_STRIP_S1(NAME, V, FIRST, LAST)                                                          \
  __attribute__((noinline)) static void NAME(                                                      \
      const fc_depthwise3x3 *d, const float *x, const float *weight9, const float *bias, float *y, \
      int64_t ow0, int64_t r0, int64_t r1, const float *y_end) {                                   \
    fc_vf wv[9];                                                                                   \
    const fc_vf bv = broadcast_taps(weight9, bias, wv);                                            \
    const int64_t in_h = d->in_h, in_w = d->in_w, ow = d->out_w, c0 = ow0 - d->pad_left;           \
    lanes ln[V][3];                                                                                \
    for (int v = 0; v < V; v++)                                                                    \
      for (int kw = 0; kw < 3; kw++) ln[v][kw] = row_lanes(c0 + v * FC_L + kw, in_w);              \
    /* a[0] row r (kernel row 2 to come), a[1] row r + 1, a[2] row r + 2 */                        \
    fc_vf a[3][DW_MAX_V];                                                                          \
    for (int v = 0; v < V; v++) a[0][v] = a[1][v] = a[2][v] = bv;                                  \
    const int64_t ih0 = r0 - d->pad_top;                                                           \
    s1_row(input_row(x, ih0, in_h, in_w), c0, V, FIRST, LAST, ln, wv, 0, 0, a);                    \
    s1_row(input_row(x, ih0 + 1, in_h, in_w), c0, V, FIRST, LAST, ln, wv, 1, 1, a);                \
    /* unrolled by 3, the accumulators rotate by renaming, not moves (3% faster) */                \
    _Pragma("GCC unroll 3") for (int64_t r = r0; r < r1; r++) {                                    \
      for (int v = 0; v < V; v++) a[2][v] = bv;                                                    \
      s1_row(input_row(x, r - d->pad_top + 2, in_h, in_w), c0, V, FIRST, LAST, ln, wv, 2, 2, a);   \
      float *out = y + r * ow + ow0;                                                               \
      for (int v = 0; v < V; v++) {                                                                \
        store_out(out + v * FC_L, a[0][v], ow - ow0 - v * FC_L, y_end);                            \
        a[0][v] = a[1][v];                                                                         \
        a[1][v] = a[2][v];                                                                         \
      }                                                                                            \
    }                                                                                              \
  }

/* Stride 2 deinterleaves in 128-bit lanes: lane group k of (a, b) takes a's elements 4k, 4k + 2
 * (or + 1, + 3) and then b's, one vshufps. In-lane shuffles issue beside the FMAs on Zen 5, where a
 * lane-crossing vpermt2ps takes an FMA pipe. The taps and accumulators then hold the outputs in
 * another order (the `positions` below), put right once per output vector: DW_NATURAL (output
 * column -> position) and DW_NATURAL_SHIFTED (the same, one column later, lane 0 from the previous
 * vector's last column) for the kw = 0 products. */
#if FC_L == 4
#define DW_EVEN 0, 2, 4, 6
#define DW_ODD 1, 3, 5, 7
#define DW_NATURAL 0, 1, 2, 3
#define DW_NATURAL_SHIFTED 7, 0, 1, 2
#elif FC_L == 8
#define DW_EVEN 0, 2, 8, 10, 4, 6, 12, 14
#define DW_ODD 1, 3, 9, 11, 5, 7, 13, 15
/* positions: columns 0, 1, 4, 5, 2, 3, 6, 7 */
#define DW_NATURAL 0, 1, 4, 5, 2, 3, 6, 7
#define DW_NATURAL_SHIFTED 15, 0, 1, 4, 5, 2, 3, 6
#else
#define DW_EVEN 0, 2, 16, 18, 4, 6, 20, 22, 8, 10, 24, 26, 12, 14, 28, 30
#define DW_ODD 1, 3, 17, 19, 5, 7, 21, 23, 9, 11, 25, 27, 13, 15, 29, 31
/* positions: columns 0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15 */
#define DW_NATURAL 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15
#define DW_NATURAL_SHIFTED 31, 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14
#endif

/* Stride 2: input row `row` (NULL: a row of zeros) into the accumulators of the output rows that
 * read it, with kernel row kh[j] for j < n: m[j] (kw = 1, 2 taps), s[j] (kw = 0 taps, unshifted),
 * and cy[j] (the kw = 0 tap of the strip's first column, when `carry`). */
FC_INLINE void s2_row(const float *row, int64_t c0, int V, int first, int last,
                      const lanes (*ln)[3], int carry, const fc_vf *wv, int n, const int *kh,
                      fc_vf (*m)[DW_MAX_V], fc_vf (*s)[DW_MAX_V], fc_vf *cy) {
  if (!row) return;
  _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) {
    const int how = v == V - 1 ? last : first;
    const fc_vf lo = load_cols(row, c0 + 2 * v * FC_L + 1, how, ln[v][0]),
                hi = load_cols(row, c0 + 2 * v * FC_L + 1 + FC_L, how, ln[v][1]);
    const fc_vf ev = __builtin_shufflevector(lo, hi, DW_EVEN),
                od = __builtin_shufflevector(lo, hi, DW_ODD);
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

/* Stride 2: output rows r0 .. r1 - 1 x the V vectors from output column ow0, loaded as for stride
 * 1. */
#define DW_STRIP_S2(NAME, V, FIRST, LAST)                                                          \
  __attribute__((noinline)) static void NAME(                                                      \
      const fc_depthwise3x3 *d, const float *x, const float *weight9, const float *bias, float *y, \
      int64_t ow0, int64_t r0, int64_t r1, const float *y_end) {                                   \
    fc_vf wv[9];                                                                                   \
    const fc_vf bv = broadcast_taps(weight9, bias, wv);                                            \
    const int64_t in_h = d->in_h, in_w = d->in_w, ow = d->out_w, c0 = 2 * ow0 - d->pad_left;       \
    const int carry = c0 >= 0 && c0 < in_w;                                                        \
    lanes ln[V][3];                                                                                \
    for (int v = 0; v < V; v++)                                                                    \
      for (int j = 0; j < 2; j++) ln[v][j] = row_lanes(c0 + 2 * v * FC_L + 1 + j * FC_L, in_w);    \
    static const int kh_0[1] = {0}, kh_1[1] = {1}, kh_20[2] = {2, 0};                              \
    /* [0] row r (kernel rows 1 and 2 to come), [1] row r + 1 */                                   \
    fc_vf m[2][DW_MAX_V], s[2][DW_MAX_V], cy[2] = {fc_zero(), fc_zero()};                          \
    for (int v = 0; v < V; v++) m[0][v] = bv, s[0][v] = fc_zero();                                 \
    const int64_t ih0 = 2 * r0 - d->pad_top;                                                       \
    s2_row(input_row(x, ih0, in_h, in_w), c0, V, FIRST, LAST, ln, carry, wv, 1, kh_0, m, s, cy);   \
    for (int64_t r = r0; r < r1; r++) {                                                            \
      const int64_t ih = 2 * r - d->pad_top;                                                       \
      for (int v = 0; v < V; v++) m[1][v] = bv, s[1][v] = fc_zero();                               \
      cy[1] = fc_zero();                                                                           \
      s2_row(input_row(x, ih + 1, in_h, in_w), c0, V, FIRST, LAST, ln, carry, wv, 1, kh_1, m, s,   \
             cy);                                                                                  \
      s2_row(input_row(x, ih + 2, in_h, in_w), c0, V, FIRST, LAST, ln, carry, wv, 2, kh_20, m, s,  \
             cy);                                                                                  \
      float *out = y + r * ow + ow0;                                                               \
      for (int v = 0; v < V; v++)                                                                  \
        store_out(                                                                                 \
            out + v * FC_L,                                                                        \
            __builtin_shufflevector(m[0][v], m[0][v], DW_NATURAL) +                                \
                __builtin_shufflevector(s[0][v], v > 0 ? s[0][v - 1] : cy[0], DW_NATURAL_SHIFTED), \
            ow - ow0 - v * FC_L, y_end);                                                           \
      for (int v = 0; v < V; v++) m[0][v] = m[1][v], s[0][v] = s[1][v];                            \
      cy[0] = cy[1];                                                                               \
    }                                                                                              \
  }

typedef void strip_fn(const fc_depthwise3x3 *, const float *, const float *, const float *, float *,
                      int64_t, int64_t, int64_t, const float *);

DW_STRIP_S1(s1_v1, 1, LOAD_PLAIN, LOAD_PLAIN)
DW_STRIP_S1(s1_v1_keep, 1, LOAD_KEEP, LOAD_KEEP)
DW_STRIP_S1(s1_v1_masked, 1, LOAD_MASKED, LOAD_MASKED)
DW_STRIP_S1(s1_v2, 2, LOAD_PLAIN, LOAD_PLAIN)
DW_STRIP_S1(s1_v2_keep_first, 2, LOAD_KEEP, LOAD_PLAIN)
DW_STRIP_S1(s1_v2_keep_last, 2, LOAD_PLAIN, LOAD_KEEP)
DW_STRIP_S1(s1_v2_keep, 2, LOAD_KEEP, LOAD_KEEP)
DW_STRIP_S1(s1_v2_masked, 2, LOAD_MASKED, LOAD_MASKED)
DW_STRIP_S2(s2_v1, 1, LOAD_PLAIN, LOAD_PLAIN)
DW_STRIP_S2(s2_v1_keep, 1, LOAD_KEEP, LOAD_KEEP)
DW_STRIP_S2(s2_v1_masked, 1, LOAD_MASKED, LOAD_MASKED)
DW_STRIP_S2(s2_v2, 2, LOAD_PLAIN, LOAD_PLAIN)
DW_STRIP_S2(s2_v2_keep_first, 2, LOAD_KEEP, LOAD_PLAIN)
DW_STRIP_S2(s2_v2_keep_last, 2, LOAD_PLAIN, LOAD_KEEP)
DW_STRIP_S2(s2_v2_keep, 2, LOAD_KEEP, LOAD_KEEP)
DW_STRIP_S2(s2_v2_masked, 2, LOAD_MASKED, LOAD_MASKED)

/* Output vectors per strip: stride 1 holds 3 V accumulators and 3 V taps, stride 2 4 V
 * accumulators and 2 V taps, next to the 9 weights (on Zen 5, strips of 3 vectors ran a 112-wide
 * plane 6-14% slower than strips of 2). */
#define DW_WIDTH (FC_L == 16 ? 2 : 1)

/* Does output vector v read columns outside the row? */
FC_INLINE int edge_vector(const fc_depthwise3x3 *d, int S, int64_t v) {
  /* columns read: stride 1 from ow0 - pad_left to ow0 + L - pad_left + 1, stride 2 from
   * 2 ow0 - pad_left + 1 to 2 (ow0 + L) - pad_left */
  const int64_t lo = S * v * FC_L - d->pad_left + (S - 1),
                hi = S * (v + 1) * FC_L - d->pad_left + 2;
  return lo < 0 || hi > d->in_w;
}

/* Do the input rows that output rows r0 .. r1 - 1 read lie inside the input with columns lo .. hi -
 * 1 of them? */
FC_INLINE int band_inside(const fc_depthwise3x3 *d, int S, const float *x, const input_bounds *in,
                          int64_t r0, int64_t r1, int64_t lo, int64_t hi) {
  const int64_t ih_lo = S * r0 - d->pad_top, ih_hi = S * (r1 - 1) - d->pad_top + 2;
  const uintptr_t first = (uintptr_t)(x + (ih_lo > 0 ? ih_lo : 0) * d->in_w),
                  last = (uintptr_t)(x + (ih_hi < d->in_h ? ih_hi : d->in_h - 1) * d->in_w);
  return first + (uintptr_t)(lo * 4) >= (uintptr_t)in->begin &&
         last + (uintptr_t)(hi * 4) <= (uintptr_t)in->end;
}

/* Output vectors [v0, v0 + V) over output rows r0 .. r1 - 1: a vector that reads no column outside
 * the rows loads plainly; one that does loads whole vectors and keeps its lanes in the row when the
 * strip's reads all lie inside the input, else every vector of the strip loads masked. Keeping
 * lanes only where needed made a 56 -> 28 stride 2 layer 4% faster. */
FC_INLINE void strip(const fc_depthwise3x3 *d, int S, int64_t v0, int64_t V, const float *x,
                     const input_bounds *in, const float *weight9, const float *bias, float *y,
                     int64_t r0, int64_t r1, const float *y_end) {
  /* [stride - 1][V - 1][first vector's loads][last vector's] */
  static strip_fn *const by_loads[2][DW_MAX_V][3][3] = {
      {{[LOAD_PLAIN][LOAD_PLAIN] = s1_v1,
        [LOAD_KEEP][LOAD_KEEP] = s1_v1_keep,
        [LOAD_MASKED][LOAD_MASKED] = s1_v1_masked},
       {[LOAD_PLAIN][LOAD_PLAIN] = s1_v2,
        [LOAD_KEEP][LOAD_PLAIN] = s1_v2_keep_first,
        [LOAD_PLAIN][LOAD_KEEP] = s1_v2_keep_last,
        [LOAD_KEEP][LOAD_KEEP] = s1_v2_keep,
        [LOAD_MASKED][LOAD_MASKED] = s1_v2_masked}},
      {{[LOAD_PLAIN][LOAD_PLAIN] = s2_v1,
        [LOAD_KEEP][LOAD_KEEP] = s2_v1_keep,
        [LOAD_MASKED][LOAD_MASKED] = s2_v1_masked},
       {[LOAD_PLAIN][LOAD_PLAIN] = s2_v2,
        [LOAD_KEEP][LOAD_PLAIN] = s2_v2_keep_first,
        [LOAD_PLAIN][LOAD_KEEP] = s2_v2_keep_last,
        [LOAD_KEEP][LOAD_KEEP] = s2_v2_keep,
        [LOAD_MASKED][LOAD_MASKED] = s2_v2_masked}}};
  int first = edge_vector(d, S, v0) ? LOAD_KEEP : LOAD_PLAIN,
      last = edge_vector(d, S, v0 + V - 1) ? LOAD_KEEP : LOAD_PLAIN;
  if (first == LOAD_KEEP || last == LOAD_KEEP) {
    const int64_t lo = S * v0 * FC_L - d->pad_left + (S - 1),
                  hi = S * (v0 + V) * FC_L - d->pad_left + 2;
    if (!band_inside(d, S, x, in, r0, r1, lo, hi)) first = last = LOAD_MASKED;
  }
  by_loads[S - 1][V - 1][first][last](d, x, weight9, bias, y, v0 * FC_L, r0, r1, y_end);
}

/* One plane, in bands of output rows, each in strips of DW_WIDTH vectors; the last strip, holding
 * the last vector (which may be partial), runs first. */
FC_INLINE void plane(const fc_depthwise3x3 *d, int S, const float *x, const input_bounds *in,
                     const float *weight9, const float *bias, float *y) {
  const int64_t vectors = (d->out_w + FC_L - 1) / FC_L, last = (vectors - 1) / DW_WIDTH * DW_WIDTH;
  const float *y_end = y + d->out_h * d->out_w;
  for (int64_t r0 = 0; r0 < d->out_h; r0 += DW_BAND) {
    const int64_t r1 = d->out_h - r0 < DW_BAND ? d->out_h : r0 + DW_BAND;
    strip(d, S, last, vectors - last, x, in, weight9, bias, y, r0, r1, y_end);
    for (int64_t v0 = 0; v0 < last; v0 += DW_WIDTH)
      strip(d, S, v0, DW_WIDTH, x, in, weight9, bias, y, r0, r1, y_end);
  }
}

void FC_SYM(fc_conv_depthwise3x3_f32)(const fc_depthwise3x3 *d, const float *x, const float *weight,
                                      const float *bias, float *y, int64_t first_plane,
                                      int64_t end_plane, float *stage) {
  (void)stage; /* the input is read in place */
  const int64_t in_plane = d->in_h * d->in_w, out_plane = d->out_h * d->out_w;
  const input_bounds in = {x, x + end_plane * in_plane};
  for (int64_t p = first_plane; p < end_plane; p++) {
    const int64_t c = p % d->channels;
    const float *b = bias ? bias + c : NULL;
    if (d->stride == 1)
      plane(d, 1, x + p * in_plane, &in, weight + 9 * c, b, y + p * out_plane);
    else
      plane(d, 2, x + p * in_plane, &in, weight + 9 * c, b, y + p * out_plane);
  }
}
