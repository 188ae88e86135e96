/* Depthwise 3x3 convolution on small planes (see fc_depthwise3x3_by_channels in
 * dispatch/kernels.h), vectorised across channels: a vector holds one pixel of FC_L consecutive
 * planes.
 *
 * Why: the row kernel (conv_depthwise_f32.c) gives each output row its own vectors, so a 7 x 7
 * plane is seven 7-of-8-lane vectors, each with its row staging, edge handling and call overhead;
 * measured, ~170 cycles a plane against ~32 of FMAs. Here a group of FC_L planes is transposed into
 * a zero-padded tile of pixel vectors (L1-resident), every output pixel vector is 9 FMAs with
 * per-channel weight vectors and no edge cases, and the results are transposed back into the
 * planes. Every tile load reads exactly one earlier whole-vector store, so it is forwarded from the
 * store buffer even while the tile is still being written. */
#include "dispatch/kernels.h"
#include "simd/simd.h"

#define DWC_RUN 4 /* output pixels per run: 9 weights + 4 accumulators + a tap fit 16 registers */

/* An L x L transpose in log2(L) block swaps: swap d exchanges bit d of the row and of the lane
 * index, the off-diagonal d x d blocks of every 2d x 2d block. X(d, lanes of the pair's first row,
 * lanes of its second row), lanes numbered as in __builtin_shufflevector(row r, row r + d). */
// clang-format off
#if FC_L == 4
#define DWC_SWAPS(X) \
  X(1, (0, 4, 2, 6), (1, 5, 3, 7)) \
  X(2, (0, 1, 4, 5), (2, 3, 6, 7))
#elif FC_L == 8
#define DWC_SWAPS(X) \
  X(1, (0, 8, 2, 10, 4, 12, 6, 14), (1, 9, 3, 11, 5, 13, 7, 15)) \
  X(2, (0, 1, 8, 9, 4, 5, 12, 13), (2, 3, 10, 11, 6, 7, 14, 15)) \
  X(4, (0, 1, 2, 3, 8, 9, 10, 11), (4, 5, 6, 7, 12, 13, 14, 15))
#else
#define DWC_SWAPS(X) \
  X(1, (0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30),\
       (1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31)) \
  X(2, (0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),\
       (2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31)) \
  X(4, (0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27),\
       (4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31)) \
  X(8, (0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),\
       (8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31))
#endif
// clang-format on
#define DWC_LANES(...) __VA_ARGS__
#define DWC_SWAP(D, FIRST, SECOND)                                \
  for (int r = 0; r < FC_L; r++)                                  \
    if (!(r & D)) {                                               \
      const fc_vf a = v[r], b = v[r + D];                         \
      v[r] = __builtin_shufflevector(a, b, DWC_LANES FIRST);      \
      v[r + D] = __builtin_shufflevector(a, b, DWC_LANES SECOND); \
    }

FC_INLINE void transpose(fc_vf v[FC_L]) { _Pragma("GCC unroll 16") DWC_SWAPS(DWC_SWAP); }

/* R consecutive output pixel vectors of one row (R <= DWC_RUN) from the tile at the first one's
 * top-left tap `in` (pixel vectors FC_L floats apart, tile rows `tile_row` floats apart): each tap
 * vector is loaded once and multiply-added into every output of the run that reads it. */
FC_INLINE void run(const float *in, int64_t tile_row, int R, const fc_vf *wv, fc_vf bv,
                   float *out) {
  fc_vf acc[DWC_RUN];
  _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) acc[r] = bv;
  _Pragma("GCC unroll 3") for (int kh = 0; kh < 3; kh++) {
    _Pragma("GCC unroll 16") for (int j = 0; j < R + 2; j++) {
      const fc_vf tap = fc_load(in + kh * tile_row + j * FC_L);
      _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
        const int kw = j - r;
        if (kw >= 0 && kw < 3) acc[r] += wv[3 * kh + kw] * tap;
      }
    }
  }
  _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) fc_store(out + r * FC_L, acc[r]);
}

/* Every output pixel vector of a group (stride 1), row by row, into `out` (dense, FC_L floats
 * apart). noinline: the weights stay in registers for the whole group. */
__attribute__((noinline)) static void outputs(const float *tile, int64_t tile_row, int64_t out_h,
                                              int64_t out_w, const float *weights, float *out) {
  fc_vf wv[9];
  for (int t = 0; t < 9; t++) wv[t] = fc_load(weights + t * FC_L);
  const fc_vf bv = fc_load(weights + 9 * FC_L);
  const int64_t rest = out_w % DWC_RUN;
  for (int64_t oh = 0; oh < out_h; oh++) {
    const float *in = tile + oh * tile_row;
    int64_t ow = 0;
    for (; ow + DWC_RUN <= out_w; ow += DWC_RUN, out += DWC_RUN * FC_L)
      run(in + ow * FC_L, tile_row, DWC_RUN, wv, bv, out);
    const float *tail = in + ow * FC_L;
    if (rest == 1) run(tail, tile_row, 1, wv, bv, out);
    if (rest == 2) run(tail, tile_row, 2, wv, bv, out);
    if (rest == 3) run(tail, tile_row, 3, wv, bv, out);
    out += rest * FC_L;
  }
}

/* The group's input pixels into the tile: L pixels of each plane at a time (lanes past the plane
 * are never stored; past the end of x they are not read), transposed into L pixel vectors. */
FC_INLINE void stage_group(const float *x, int64_t in_h, int64_t in_w, int n, const float *x_end,
                           int64_t row_gap, float *to) {
  const int64_t pixels = in_h * in_w;
  int64_t w = 0;
  for (int64_t i0 = 0; i0 < pixels; i0 += FC_L) {
    fc_vf v[FC_L];
    if (n == FC_L && pixels - i0 >= FC_L) {
      _Pragma("GCC unroll 16") for (int l = 0; l < FC_L; l++) v[l] = fc_load(x + l * pixels + i0);
    } else {
      _Pragma("GCC unroll 16") for (int l = 0; l < FC_L; l++) {
        const float *p = x + l * pixels + i0;
        v[l] = l >= n                                     ? fc_zero()
               : pixels - i0 >= FC_L || p + FC_L <= x_end ? fc_load(p)
                                                          : fc_load_partial(p, (int)(pixels - i0));
      }
    }
    transpose(v);
    const int m = pixels - i0 < FC_L ? (int)(pixels - i0) : FC_L;
    for (int j = 0; j < m; j++, to += FC_L) {
      fc_store(to, v[j]);
      if (++w == in_w) w = 0, to += row_gap;
    }
  }
}

/* Output pixels o0 .. o0 + L - 1 of the group's n planes. A block past the plane's end is stored
 * whole where its tail lands inside the call's output (the start of a later plane, written
 * afterwards), masked only at the end. */
FC_INLINE void store_block(const float *outs, int64_t o0, int64_t plane, int n, float *y,
                           const float *y_end) {
  fc_vf v[FC_L];
  _Pragma("GCC unroll 16") for (int j = 0; j < FC_L; j++) v[j] = fc_load(outs + (o0 + j) * FC_L);
  transpose(v);
  if (n == FC_L && o0 + FC_L <= plane) {
    _Pragma("GCC unroll 16") for (int l = 0; l < FC_L; l++) fc_store(y + l * plane + o0, v[l]);
    return;
  }
  for (int l = 0; l < n; l++) {
    float *dst = y + l * plane + o0;
    if (o0 + FC_L <= plane || dst + FC_L <= y_end)
      fc_store(dst, v[l]);
    else
      fc_store_partial(dst, v[l], (int)(plane - o0));
  }
}

/* The group's weight vectors (tap t of plane p0 + l in lane l, t = 0 .. 8) and bias vector into
 * `weights`, lanes past n copying plane p0's. A group of L consecutive channels, the usual case,
 * loads taps 0 .. L-1 of each channel as vectors and transposes them: the lane-by-lane copy cost
 * as much as the group's FMAs on 7 x 7 planes. (With 16 lanes the last channel's load would reach
 * past the weights.) */
FC_INLINE void gather_weights(const float *weight, const float *bias, int64_t channels, int64_t p0,
                              int n, float *weights) {
  const int64_t c0 = p0 % channels;
  if (n == FC_L && c0 + FC_L <= channels && FC_L <= 8) {
    fc_vf v[FC_L];
    _Pragma("GCC unroll 16") for (int l = 0; l < FC_L; l++) v[l] = fc_load(weight + 9 * (c0 + l));
    transpose(v);
    _Pragma("GCC unroll 16") for (int t = 0; t < FC_L; t++) fc_store(weights + t * FC_L, v[t]);
    for (int t = FC_L; t < 9; t++)
      for (int l = 0; l < FC_L; l++) weights[t * FC_L + l] = weight[9 * (c0 + l) + t];
    fc_store(weights + 9 * FC_L, bias ? fc_load(bias + c0) : fc_zero());
    return;
  }
  for (int l = 0; l < FC_L; l++) {
    const int64_t c = (p0 + (l < n ? l : 0)) % channels;
    for (int t = 0; t < 9; t++) weights[t * FC_L + l] = weight[9 * c + t];
    weights[9 * FC_L + l] = bias ? bias[c] : 0.0f;
  }
}

#if FC_L == 16 && defined(__AVX512F__)
/* Stride 1, padding 1 at the top and left, out_w == in_w <= 16, on AVX-512: no transposes. Vectors
 * hold 16 consecutive pixels of a plane's flat index. Each input vector gives three row sums,
 * h_kh[j] = w[kh][0] x[j - 1] + w[kh][1] x[j] + w[kh][2] x[j + 1] (the neighbours are two shifts of
 * the input vectors, their lanes in the left or right padding zeroed by column masks), and output i
 * is h_0[i - in_w] + h_1[i] + h_2[i + in_w]: two more permutes of neighbouring vectors. Pixels
 * past the plane's ends read as zero, which is the top and bottom padding. On 960 x 7 x 7 that is
 * 36 FMAs and 16 shuffles a plane, against the channel layout's 28 FMAs and 32 shuffles of its two
 * 16 x 16 transposes plus their staging (~16 ns a plane on Zen 5, against 6.5). Taking each of the
 * 9 taps as its own permute (32 a plane) ran at 13 ns a plane, and as its own unaligned load
 * (cache-line splits) slower still. */
#define DWC_FLAT_VECTORS 16 /* planes of up to 256 pixels */

static int flat_layout(const fc_depthwise3x3 *d) {
  return d->stride == 1 && d->pad_top == 1 && d->pad_left == 1 && d->out_w == d->in_w &&
         d->in_w <= 16 && d->in_h * d->in_w <= DWC_FLAT_VECTORS * FC_L &&
         d->out_h * d->out_w <= DWC_FLAT_VECTORS * FC_L;
}

/* The row sums h[kh] of input vector j (x_cur, between x_prev and the next one, loaded here),
 * h[kh] = w[kh][0] x[i - 1] + w[kh][1] x[i] + w[kh][2] x[i + 1], the bias in h[1]; then moves the
 * window on by a vector. */
FC_INLINE void row_sums(const float *xp, int j, int in_vectors, const __mmask16 *inside,
                        const __mmask16 *left, const __mmask16 *right, const __m512 *wv, __m512 bv,
                        __m512 *x_prev, __m512 *x_cur, __m512 h[3]) {
  const __m512 x_next = j + 1 < in_vectors
                            ? _mm512_maskz_loadu_ps(inside[j + 1], xp + (j + 1) * FC_L)
                            : _mm512_setzero_ps();
  const __m512 l =
      (__m512)_mm512_maskz_alignr_epi32(left[j], (__m512i)*x_cur, (__m512i)*x_prev, 15);
  const __m512 r = (__m512)_mm512_maskz_alignr_epi32(right[j], (__m512i)x_next, (__m512i)*x_cur, 1);
  h[0] = _mm512_fmadd_ps(wv[2], r, _mm512_fmadd_ps(wv[1], *x_cur, _mm512_mul_ps(wv[0], l)));
  h[1] = _mm512_fmadd_ps(wv[5], r, _mm512_fmadd_ps(wv[4], *x_cur, _mm512_fmadd_ps(wv[3], l, bv)));
  h[2] = _mm512_fmadd_ps(wv[8], r, _mm512_fmadd_ps(wv[7], *x_cur, _mm512_mul_ps(wv[6], l)));
  *x_prev = *x_cur, *x_cur = x_next;
}

/* The planes first_plane .. end_plane - 1; inlined with constant vector counts for the small
 * planes, where the loop over a plane's vectors then unrolls. */
FC_INLINE void flat_run(const fc_depthwise3x3 *d, const float *x, const float *weight,
                        const float *bias, float *y, int64_t first_plane, int64_t end_plane,
                        const __mmask16 *inside, const __mmask16 *left, const __mmask16 *right,
                        int in_vectors, int out_vectors) {
  const int64_t in_plane = d->in_h * d->in_w, out_plane = d->out_h * d->out_w, w = d->in_w;
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i up = _mm512_add_epi32(lane, _mm512_set1_epi32((int)(16 - w))); /* (prev, cur) */
  const __m512i down = _mm512_add_epi32(lane, _mm512_set1_epi32((int)w));      /* (cur, next) */
  const int last_out = (int)(out_plane - (int64_t)(out_vectors - 1) * FC_L);
  for (int64_t p = first_plane, c = first_plane % d->channels; p < end_plane;
       p++, c = c + 1 < d->channels ? c + 1 : 0) {
    const float *xp = x + p * in_plane, *wp = weight + 9 * c;
    float *yp = y + p * out_plane;
    __m512 wv[9];
    _Pragma("GCC unroll 9") for (int t = 0; t < 9; t++) wv[t] = _mm512_set1_ps(wp[t]);
    const __m512 bv = bias ? _mm512_set1_ps(bias[c]) : _mm512_setzero_ps();
    __m512 x_prev = _mm512_setzero_ps(), x_cur = _mm512_maskz_loadu_ps(inside[0], xp);
    __m512 h0_prev = _mm512_setzero_ps(), h[3];
    row_sums(xp, 0, in_vectors, inside, left, right, wv, bv, &x_prev, &x_cur, h);
    _Pragma("GCC unroll 4") for (int v = 0; v < out_vectors; v++) {
      __m512 next[3] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
      if (v + 1 < in_vectors)
        row_sums(xp, v + 1, in_vectors, inside, left, right, wv, bv, &x_prev, &x_cur, next);
      if (v >= in_vectors) h[1] = bv; /* output rows past the input's (bottom padding over 1) */
      const __m512 acc =
          _mm512_add_ps(_mm512_add_ps(h[1], _mm512_permutex2var_ps(h0_prev, up, h[0])),
                        _mm512_permutex2var_ps(h[2], down, next[2]));
      /* the last vector masked: storing it whole into the next plane's start, which is written
       * afterwards, measured no faster */
      if (v < out_vectors - 1)
        fc_store(yp + v * FC_L, (fc_vf)acc);
      else
        fc_store_partial(yp + v * FC_L, (fc_vf)acc, last_out);
      h0_prev = h[0], h[0] = next[0], h[1] = next[1], h[2] = next[2];
    }
  }
}

static void flat_planes(const fc_depthwise3x3 *d, const float *x, const float *weight,
                        const float *bias, float *y, int64_t first_plane, int64_t end_plane) {
  const int64_t in_plane = d->in_h * d->in_w, out_plane = d->out_h * d->out_w, w = d->in_w;
  const int in_vectors = (int)((in_plane + FC_L - 1) / FC_L);
  const int out_vectors = (int)((out_plane + FC_L - 1) / FC_L);
  /* per input vector: lanes with a pixel, with a left and with a right neighbour in the row */
  __mmask16 inside[DWC_FLAT_VECTORS] = {0}, left[DWC_FLAT_VECTORS] = {0},
            right[DWC_FLAT_VECTORS] = {0};
  for (int64_t j = 0, col = 0; j < in_plane; j++) {
    inside[j / FC_L] |= (__mmask16)(1u << (j % FC_L));
    left[j / FC_L] |= (__mmask16)((col > 0) << (j % FC_L));
    right[j / FC_L] |= (__mmask16)((col < w - 1) << (j % FC_L));
    if (++col == w) col = 0;
  }
  if (in_vectors == out_vectors && in_vectors <= 4) {
    switch (in_vectors) {
#define DWC_FLAT_RUN(V)                                                                 \
  case V:                                                                               \
    flat_run(d, x, weight, bias, y, first_plane, end_plane, inside, left, right, V, V); \
    return;
      DWC_FLAT_RUN(1)
      DWC_FLAT_RUN(2)
      DWC_FLAT_RUN(3)
      DWC_FLAT_RUN(4)
#undef DWC_FLAT_RUN
    }
  }
  flat_run(d, x, weight, bias, y, first_plane, end_plane, inside, left, right, in_vectors,
           out_vectors);
}
#endif

void FC_SYM(fc_conv_depthwise3x3_channels_f32)(const fc_depthwise3x3 *d, const float *x,
                                               const float *weight, const float *bias, float *y,
                                               int64_t first_plane, int64_t end_plane,
                                               float *stage) {
#if FC_L == 16 && defined(__AVX512F__)
  if (flat_layout(d)) {
    flat_planes(d, x, weight, bias, y, first_plane, end_plane);
    return;
  }
#endif
  const int64_t tile_w = fc_depthwise3x3_tile_w(d), tile_h = fc_depthwise3x3_tile_h(d);
  const int64_t in_plane = d->in_h * d->in_w, out_plane = d->out_h * d->out_w;
  const int64_t out_vectors = (out_plane + FC_L - 1) / FC_L * FC_L;
  float *tile = stage, *outs = tile + tile_h * tile_w * FC_L, *weights = outs + out_vectors * FC_L;
  /* the tile's padding and the output vectors past the plane (transposed, then overwritten) */
  memset(stage, 0, (size_t)((tile_h * tile_w + out_vectors) * FC_L) * sizeof(float));
  const float *x_end = x + end_plane * in_plane;
  const float *y_end = y + end_plane * out_plane;
  const int64_t tail = out_plane % FC_L ? out_plane / FC_L * FC_L : out_plane;
  for (int64_t p0 = first_plane; p0 < end_plane; p0 += FC_L) {
    const int n = end_plane - p0 < FC_L ? (int)(end_plane - p0) : FC_L;
    gather_weights(weight, bias, d->channels, p0, n, weights);
    stage_group(x + p0 * in_plane, d->in_h, d->in_w, n, x_end, (tile_w - d->in_w) * FC_L,
                tile + (d->pad_top * tile_w + d->pad_left) * FC_L);
    outputs(tile, tile_w * FC_L, d->out_h, d->out_w, weights, outs);
    float *yg = y + p0 * out_plane;
    /* the partial last block first: its whole-vector stores spill into the next planes' starts
     */
    if (tail < out_plane) store_block(outs, tail, out_plane, n, yg, y_end);
    for (int64_t o0 = 0; o0 < tail; o0 += FC_L) store_block(outs, o0, out_plane, n, yg, y_end);
  }
}
