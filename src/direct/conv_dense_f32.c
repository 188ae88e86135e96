/* The dense kernel of one ISA (conv_dense.h): the band build, the register tile and the weight
 * packing. Compiled once per ISA with its flags; symbols carry the ISA suffix (simd.h).
 *
 * Register tiles (MR pixels x NR output channels; NR/L weight vectors, MR broadcasts, 1 scratch):
 *   AVX2 (16 ymm):    6 x 16 (12 accumulators)
 *   AVX-512 (32 zmm): 14 x 32 (28 accumulators)
 *   NEON (32 q):      8 x 12 (24 accumulators)
 * The band build and the weight packing transpose 8 x 8 blocks in registers through an 8-float
 * vector of its own (two q registers on NEON, one ymm elsewhere), whatever the ISA's width. */
#include <string.h>

#include "direct/conv_dense.h"
#include "direct/padded_input.h"
#include "simd/simd.h"

/* L1_WEIGHT_BYTES: panel weights per pass over the band, out of a 48 KiB L1 (Zen 5), the band
 * lines and accumulators of the tile in flight taking the rest. AVX2: 24 KiB against 16 KiB,
 * deeplab.dil2 and resnet50.l2.3x3s2 2-10% faster; 36 KiB ran resnet50.l4.3x3 4% slower. AVX-512
 * (32 input channels of 3 x 3 taps per pass, not 16): 36 KiB against 24 KiB, resnet50.l2.3x3s2
 * 1.5-2.5% and deeplab.dil2 2% faster, the other resnet50 3 x 3 layers 0.5-1%; 45 KiB no better. */
#if FC_VEC_BYTES == 32
#define TILE_MR 6
#define TILE_NV 2
#define L1_WEIGHT_BYTES (24 * 1024)
#elif FC_VEC_BYTES == 64
#define TILE_MR 14
#define TILE_NV 2
#define L1_WEIGHT_BYTES (36 * 1024)
#else
#define TILE_MR 8
#define TILE_NV 3
#define L1_WEIGHT_BYTES (24 * 1024)
#endif
#define TILE_NR (TILE_NV * FC_L)
#define CB FC_DENSE_CB

/* acc += a * w. On x86 an asm statement, so the product accumulates in acc's own register: GCC's
 * choice of FMA forms otherwise rotates the accumulators through the broadcast's register from one
 * pixel to the next, and, to bring them back at the loop's end, spilled most of them on AVX-512. */
FC_INLINE void fma_into(fc_vf *acc, fc_vf a, fc_vf w) {
#if defined(__FMA__) && (FC_VEC_BYTES == 32 || defined(__AVX512F__))
  __asm__("vfmadd231ps %[w], %[a], %[acc]" : [acc] "+v"(*acc) : [a] "v"(a), [w] "v"(w));
#else
  *acc += a * w;
#endif
}

FC_INLINE int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
FC_INLINE int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));

/* out[j][i] = in[i][j]: unpack pairs, then quads, then 128-bit halves (unpcklps / shufps /
 * vperm2f128 on AVX2). */
FC_INLINE void transpose8(const v8 in[8], v8 out[8]) {
  v8 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shufflevector(in[i], in[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = __builtin_shufflevector(in[i], in[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4)
    for (int h = 0; h < 2; h++) {
      u[i + 2 * h] = __builtin_shufflevector(t[i + h], t[i + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
      u[i + 2 * h + 1] =
          __builtin_shufflevector(t[i + h], t[i + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int j = 0; j < 4; j++) {
    out[j] = __builtin_shufflevector(u[j], u[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    out[j + 4] = __builtin_shufflevector(u[j], u[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

/* 8 floats of p, the first n of them read (n < 8: the rest 0, memory past p[n-1] untouched). */
FC_INLINE v8 load8(const float *p, int64_t n) {
  if (n >= 8) return *(const v8u *)p;
  v8 v = {0};
  for (int64_t i = 0; i < n; i++) v[i] = p[i];
  return v;
}

/* Lanes [0, n) of v to d, n a constant once inlined (a whole vector when n is 8). */
FC_INLINE void store_lanes(float *d, v8 v, int n) {
  if (n == 8)
    *(v8u *)d = v;
  else
    memcpy(d, &v, (size_t)n * sizeof(float));
}

/* Where the panel layout (conv_dense.h) puts column c * taps + t, for the columns of whole
 * 8-channel blocks in order: a counter, no division per column. */
typedef struct plain_column {
  int64_t taps, c, t, at;
} plain_column;

FC_INLINE void plain_column_next(plain_column *p) {
  p->at += CB * TILE_NR;
  if (++p->t == p->taps) {
    p->t = 0;
    p->c++;
    p->at = (p->c / CB * CB * p->taps + p->c % CB) * TILE_NR;
  }
}

/* The columns [0, whole) of a full panel (every row present), whole a multiple of 8: 8 x 8 blocks
 * of whole vector loads transposed in registers, each column's 8 floats one store (at column_at,
 * or at the plain layout's places of whole 8-channel blocks). */
static void pack_whole(int64_t taps, int64_t whole, const float *FC_RESTRICT w, int64_t ldw,
                       float *FC_RESTRICT dst, const int64_t *FC_RESTRICT column_at) {
  plain_column place = {taps, 0, 0, 0};
  for (int64_t k0 = 0; k0 < whole; k0 += 8) {
    int64_t at[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
      at[j] = place.at;
      if (column_at)
        at[j] = column_at[k0 + j];
      else
        plain_column_next(&place);
    }
    /* all NR rows of the 8 columns in turn, so that each column's NR floats (whole lines) are
     * written at once, not a line a quarter at a time over 4 passes of the panel */
#pragma GCC unroll 4
    for (int og = 0; og < TILE_NR; og += 8) {
      v8 in[8], out[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; i++) /* rows past NR (NEON's 12) zero */
        in[i] = og + i < TILE_NR ? (v8)(*(const v8u *)(w + (og + i) * ldw + k0)) : (v8){0};
      transpose8(in, out);
#pragma GCC unroll 8
      for (int j = 0; j < 8; j++)
        store_lanes(dst + og + at[j], out[j], TILE_NR - og < 8 ? TILE_NR - og : 8);
    }
  }
}

static void pack(int64_t rows, int64_t channels, int64_t taps, const float *w, int64_t ldw,
                 float *FC_RESTRICT dst, const int64_t *column_at) {
  const int64_t cols = channels * taps;
  /* a full panel's whole 8-column blocks (of whole 8-channel blocks in the plain layout) take the
   * fast path: 3-4 times faster than the general one below */
  int64_t k_start = 0;
  if (rows >= TILE_NR) {
    k_start = column_at ? cols / 8 * 8 : channels / CB * CB * taps;
    pack_whole(taps, k_start, w, ldw, dst, column_at);
    if (k_start == cols) return;
  }
  for (int64_t og = 0; og < TILE_NR; og += 8) {
    const int64_t n = min64(8, max64(0, min64(TILE_NR - og, rows - og)));
    int64_t c = k_start / taps, t = k_start % taps; /* of column k0 + j */
    for (int64_t k0 = k_start; k0 < cols; k0 += 8) {
      const int64_t m = min64(8, cols - k0);
      v8 in[8], out[8];
      for (int64_t i = 0; i < 8; i++) in[i] = i < n ? load8(w + (og + i) * ldw + k0, m) : (v8){0};
      transpose8(in, out);
      /* lanes past the panel's NR (NEON's 12 = 8 + 4) are dropped */
      for (int64_t j = 0; j < m; j++) {
        float *d =
            dst + og +
            (column_at ? column_at[k0 + j] : fc_dense_weight_at(channels, taps, TILE_NR, c, t));
        if (++t == taps) {
          t = 0;
          c++;
        }
        if (og + 8 <= TILE_NR)
          *(v8u *)d = out[j];
        else
          for (int64_t i = 0; i < TILE_NR - og; i++) d[i] = out[j][i];
      }
    }
  }
}

/* One band row's n input columns of `lanes` channels (src: the first channel's first column, the
 * others channel_stride floats apart), 8 columns at a time transposed to band pixels, column j at
 * band pixel at[j]; lanes a constant once inlined, so that a whole channel block's loads take
 * constant multiples of one stride, not 8 pointers (which GCC kept on the stack, reloading one per
 * load, and tested against the lanes one by one). A last group of fewer than 8 columns is read
 * whole when the channel has `readable` floats from src on (the floats past the row, of the next,
 * are never stored): resnet50.l3.3x3 spent two thirds of its band building reading the last 6 of
 * its 14 columns float by float. */
FC_INLINE void put_row(float *FC_RESTRICT row, const int32_t *at, const float *src,
                       int64_t channel_stride, int64_t n, int64_t readable, int64_t ahead,
                       const int lanes) {
  int64_t iw = 0;
  for (; iw + 8 <= n; iw += 8) {
    v8 in[8], out[8];
    /* the input `ahead` floats on prefetched: the loads from L3 stalled a third of
     * resnet50.l2.3x3s2's band building */
#pragma GCC unroll 8
    for (int i = 0; i < CB; i++) {
      in[i] = i < lanes ? (v8)(*(const v8u *)(src + i * channel_stride + iw)) : (v8){0};
      if (i < lanes) __builtin_prefetch(src + i * channel_stride + iw + ahead);
    }
    transpose8(in, out);
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) *(v8u *)(row + (int64_t)at[iw + j] * CB) = out[j];
  }
  if (iw < n) {
    v8 in[8], out[8];
    const int64_t m = iw + 8 <= readable ? 8 : n - iw;
    for (int i = 0; i < CB; i++)
      in[i] = i < lanes ? load8(src + i * channel_stride + iw, m) : (v8){0};
    transpose8(in, out);
    for (int64_t j = 0; j < n - iw; j++) *(v8u *)(row + (int64_t)at[iw + j] * CB) = out[j];
  }
}

/* Fills the band for the item's output rows with input channels [c0, c0 + nc). */
static void build_band(const fc_conv_dense *it, int64_t c0, int64_t nc) {
  const int64_t sw = it->stride[2], row_pixels = sw * it->wq;
  const int64_t d0 = it->od * it->stride[0] - it->pad[0];
  const int64_t h0 = it->row0 * it->stride[1] - it->pad[1];
  const int64_t w0 = it->col0 * sw - it->pad[2]; /* the input column of band column 0 */
  const int64_t in_plane = it->in[1] * it->in[2];
  const int64_t first = max64(0, w0), end = min64(it->in[2], w0 + row_pixels);
  /* band column b's pixel in a band row, phase b % sw, slot b / sw (a division per column, once
   * per band, not a phase counter per stored pixel) */
  int32_t place[row_pixels];
  for (int64_t b = 0; b < row_pixels; b++) place[b] = (int32_t)fc_phase_split_column(b, sw, it->wq);
  for (int64_t c8 = 0; c8 < nc; c8 += CB) {
    float *slab = it->band + c8 / CB * it->slab * CB;
    const int64_t lanes = min64(CB, nc - c8);
    for (int64_t s = 0; s < it->slices; s++) {
      for (int64_t r = 0; r < it->rows; r++) {
        float *row = slab + (s * it->rows + r) * row_pixels * CB;
        const int64_t id = d0 + s, ih = h0 + r;
        if (id < 0 || id >= it->in[0] || ih < 0 || ih >= it->in[1] || first >= end) {
          for (int64_t i = 0; i < row_pixels * CB; i += CB) *(v8u *)(row + i) = (v8){0};
          continue;
        }
        /* only the padding columns zeroed */
        for (int64_t b = 0; b < first - w0; b++) *(v8u *)(row + place[b] * CB) = (v8){0};
        for (int64_t b = end - w0; b < row_pixels; b++) *(v8u *)(row + place[b] * CB) = (v8){0};
        const float *src =
            it->x + (c0 + c8) * it->x_channel_stride + id * in_plane + ih * it->in[2] + first;
        const int32_t *at = place + first - w0;
        const int64_t ahead = 2 * it->in[2];
        const int64_t readable = (it->in[0] - id) * in_plane - ih * it->in[2] - first;
        /* whole channel blocks with lanes a constant */
        if (lanes == CB)
          put_row(row, at, src, it->x_channel_stride, end - first, readable, ahead, CB);
        else
          put_row(row, at, src, it->x_channel_stride, end - first, readable, ahead, (int)lanes);
      }
    }
  }
}

/* acc += band[c][pixel r + tap t] * w[t][c][0:NR] over the taps t and the `lanes` channels c of
 * one 8-channel block (px[r]: pixel r's first channel, or, when `linear`, px[0] + r * 8: a tile
 * within one band row, all its broadcasts at constant displacements from one register, which
 * leaves the general-purpose registers free; 14 pointers kept GCC spilling them and the
 * accumulators on AVX-512); the first mr pixels; mr, lanes and linear constants once inlined. */
FC_INLINE void block_taps(fc_vf acc[TILE_MR][TILE_NV], const float *const px[TILE_MR], int64_t taps,
                          const int64_t *FC_RESTRICT tap_offset, const float *FC_RESTRICT w,
                          const int mr, const int lanes, const int linear) {
  for (int64_t t = 0; t < taps; t++, w += lanes * TILE_NR) {
    const int64_t o = tap_offset[t] * CB;
    const float *p0 = px[0] + o;
#pragma GCC unroll 8
    for (int c = 0; c < lanes; c++) {
#pragma GCC unroll 16
      for (int r = 0; r < mr; r++) {
        const fc_vf a = fc_set1(linear ? p0[r * CB + c] : px[r][o + c]);
#pragma GCC unroll 4
        for (int j = 0; j < TILE_NV; j++)
          fma_into(&acc[r][j], a, fc_load(w + c * TILE_NR + j * FC_L));
      }
    }
  }
}

/* acc[mr][NR] (zero first) += sum over channels c < nc and taps begin <= t < end (of taps) of
 * band[c][pixel r + tap t] * the weights of (c, t) (w: the first channel's, the panel layout of
 * conv_dense.h), for the first mr (a constant) of the tile's pixels */
FC_INLINE void tile_rows(int64_t nc, int64_t taps, int64_t begin, int64_t end,
                         const int64_t *FC_RESTRICT tap_offset, const float *FC_RESTRICT band,
                         int64_t slab_floats, const int64_t *FC_RESTRICT pixel,
                         const float *FC_RESTRICT w, float *FC_RESTRICT acc_out, int first,
                         const int mr) {
  fc_vf acc[TILE_MR][TILE_NV];
#pragma GCC unroll 16
  for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
    for (int j = 0; j < TILE_NV; j++)
      acc[r][j] = first ? fc_zero() : fc_load(acc_out + r * TILE_NR + j * FC_L);
  int linear = 1;
  for (int r = 1; r < mr; r++) linear &= pixel[r] == pixel[0] + r;
  for (int64_t c8 = 0; c8 < nc; c8 += CB, band += slab_floats) {
    const float *px[TILE_MR];
#pragma GCC unroll 16
    for (int r = 0; r < mr; r++) px[r] = band + pixel[r] * CB;
    const int lanes = (int)min64(CB, nc - c8);
    /* one copy of the loop per channel count and addressing, each with constant displacements */
    switch (lanes + (linear ? CB : 0)) {
#define LANES_CASE(n)                                                                        \
  case n:                                                                                    \
    block_taps(acc, px, end - begin, tap_offset + begin, w + begin * n * TILE_NR, mr, n, 0); \
    break;                                                                                   \
  case n + CB:                                                                               \
    block_taps(acc, px, end - begin, tap_offset + begin, w + begin * n * TILE_NR, mr, n, 1); \
    break;
      LANES_CASE(1)
      LANES_CASE(2)
      LANES_CASE(3)
      LANES_CASE(4)
      LANES_CASE(5)
      LANES_CASE(6)
      LANES_CASE(7)
      LANES_CASE(8)
#undef LANES_CASE
    }
    w += lanes * taps * TILE_NR;
  }
#pragma GCC unroll 16
  for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
    for (int j = 0; j < TILE_NV; j++) fc_store(acc_out + r * TILE_NR + j * FC_L, acc[r][j]);
}

/* A whole tile, and a half one for a last tile of at most MR / 2 pixels (resnet50.l4.3x3: 7 x 7
 * outputs are 3 tiles of 14 and one of 7, which a whole tile ran at half its FMAs' worth). */
__attribute__((noinline)) static void tile(int64_t nc, int64_t taps, int64_t begin, int64_t end,
                                           const int64_t *FC_RESTRICT tap_offset,
                                           const float *FC_RESTRICT band, int64_t slab_floats,
                                           const int64_t *FC_RESTRICT pixel,
                                           const float *FC_RESTRICT w, float *FC_RESTRICT acc_out,
                                           int first) {
  tile_rows(nc, taps, begin, end, tap_offset, band, slab_floats, pixel, w, acc_out, first, TILE_MR);
}

__attribute__((noinline)) static void half_tile(int64_t nc, int64_t taps, int64_t begin,
                                                int64_t end, const int64_t *FC_RESTRICT tap_offset,
                                                const float *FC_RESTRICT band, int64_t slab_floats,
                                                const int64_t *FC_RESTRICT pixel,
                                                const float *FC_RESTRICT w,
                                                float *FC_RESTRICT acc_out, int first) {
  tile_rows(nc, taps, begin, end, tap_offset, band, slab_floats, pixel, w, acc_out, first,
            TILE_MR / 2);
}

typedef float v4 __attribute__((vector_size(16)));
typedef float v4u __attribute__((vector_size(16), aligned(4), may_alias));
typedef float v2 __attribute__((vector_size(8)));
typedef float v2u __attribute__((vector_size(8), aligned(4), may_alias));

/* y[0:count] = v[0:count] (first) or y[0:count] += v[0:count] (columns col_stride apart: a
 * transposed layer's phase writes every stride-th column); count a constant once inlined, so
 * unit-stride runs are vector moves of 8, 4, 2 and 1 floats straight from the register (a
 * memcpy of 6 floats went through the stack: a tenth of resnet50.conv1's time on AVX-512). */
FC_INLINE void put_pixels(float *y, int64_t col_stride, v8 v, int count, int first) {
  if (col_stride != 1) {
    for (int r = 0; r < count; r++) y[r * col_stride] = first ? v[r] : y[r * col_stride] + v[r];
    return;
  }
  if (count == 8) {
    *(v8u *)y = first ? v : (v8)(*(v8u *)y) + v;
    return;
  }
  const v4 lo = __builtin_shufflevector(v, v, 0, 1, 2, 3),
           hi = __builtin_shufflevector(v, v, 4, 5, 6, 7);
  v4 rest = lo;
  if (count >= 4) {
    *(v4u *)y = first ? lo : (v4)(*(v4u *)y) + lo;
    rest = hi;
    y += 4;
    count -= 4;
  }
  v2 two = __builtin_shufflevector(rest, rest, 0, 1);
  if (count >= 2) {
    *(v2u *)y = first ? two : (v2)(*(v2u *)y) + two;
    two = __builtin_shufflevector(rest, rest, 2, 3);
    y += 2;
    count -= 2;
  }
  if (count == 1) y[0] = first ? two[0] : y[0] + two[0];
}

/* The first nq pixels of a tile, result[MR][NR], for output channels [0, no): transposed 8 x 8 in
 * registers (bias added first, along the lanes), stored as runs of pixels per channel when the
 * pixels are a whole tile evenly spaced in the output (y_offset NULL: col_stride apart), else
 * pixel by pixel at y + y_offset[r] (a tile crossing output rows, or a ragged one: dcgan.deconv's
 * phases write 16-column rows every other column, where reading the accumulators one float at a
 * time for each pixel and channel took 3% of the layer's time). */
FC_INLINE void store_tile(const float *result, int64_t no, int64_t nq, float *y,
                          int64_t channel_stride, int64_t col_stride, const int64_t *y_offset,
                          int first, const float *bias) {
  enum { LAST = TILE_MR % 8 ? TILE_MR % 8 : 8 };
  for (int64_t og = 0; og < no; og += 8) {
    const int64_t n = min64(8, no - og);
    const v8 add = first && bias ? load8(bias + og, n) : (v8){0};
#pragma GCC unroll 2
    for (int pg = 0; pg < TILE_MR; pg += 8) {
      v8 in[8], out[8];
      for (int i = 0; i < 8; i++)
        in[i] = pg + i < TILE_MR ? (v8)(*(const v8u *)(result + (pg + i) * TILE_NR + og) + add)
                                 : (v8){0};
      transpose8(in, out);
      for (int64_t j = 0; j < n; j++) {
        float *d = y + (og + j) * channel_stride;
        if (y_offset) {
          for (int r = 0; r < 8 && pg + r < nq; r++) {
            float *o = d + y_offset[pg + r];
            *o = first ? out[j][r] : *o + out[j][r];
          }
        } else if (pg + 8 <= TILE_MR)
          put_pixels(d + pg * col_stride, col_stride, out[j], 8, first);
        else
          put_pixels(d + pg * col_stride, col_stride, out[j], LAST, first);
      }
    }
  }
}

/* The band pixels of tile `index` (MR output pixels flattened over the item's rows of `width`
 * columns; a ragged last tile repeats its last pixel) and, when y_offset is not NULL, their
 * outputs' offsets. */
static void tile_pixels(const fc_conv_dense *it, int64_t index, int64_t pixels, int64_t width,
                        int64_t *pixel, int64_t *y_offset) {
  const int64_t band_row = it->stride[1] * it->stride[2] * it->wq, q0 = index * TILE_MR;
  int64_t row = min64(q0, pixels - 1) / width, col = min64(q0, pixels - 1) % width;
  for (int64_t r = 0; r < TILE_MR; r++) {
    pixel[r] = row * band_row + col;
    if (y_offset)
      y_offset[r] = (it->row0 + row) * it->out_row_stride + (it->col0 + col) * it->out_col_stride;
    if (q0 + r + 1 < pixels && ++col == width) {
      col = 0;
      row++;
    }
  }
}

/* The accumulators acc[MR][NR] of tile `index` for output channels [o0, o0 + no) into y: the
 * first channel block writes them plus the bias, the others add them. */
static void store_acc_tile(const fc_conv_dense *it, const float *acc, int64_t index, int64_t pixels,
                           int64_t width, int64_t o0, int64_t no, int first) {
  float *y_block = it->y + o0 * it->out_channel_stride;
  const float *bias = it->bias ? it->bias + o0 : NULL;
  const int64_t nq = min64(TILE_MR, pixels - index * TILE_MR);
  int64_t pixel[TILE_MR], y_offset[TILE_MR];
  tile_pixels(it, index, pixels, width, pixel, y_offset);
  int even = nq == TILE_MR;
  for (int64_t r = 1; r < TILE_MR && even; r++)
    even = y_offset[r] - y_offset[0] == r * it->out_col_stride;
  if (!even) {
    store_tile(acc, no, nq, y_block, it->out_channel_stride, 0, y_offset, first, bias);
    return;
  }
  store_tile(acc, no, nq, y_block + y_offset[0], it->out_channel_stride, it->out_col_stride, NULL,
             first, bias);
  /* the next tile's last output of each channel, fetched for writing, so that its stores do not
   * fill the store queue waiting on the cache (resnet50.conv1, 3.2 MB of output per call: one
   * thread, 1.17-1.19 -> 1.08-1.09 times ORT's time) */
  for (int64_t j = 0; j < no; j++)
    __builtin_prefetch(
        y_block + y_offset[0] + j * it->out_channel_stride + (2 * TILE_MR - 1) * it->out_col_stride,
        1);
}

/* The taps [*begin, *end) of tile `index` that may read input: the taps before and after them
 * read, for every pixel of the tile, band rows (or slices) of padding only, so the tile skips
 * them. A tile of one output row on a map with one row of padding skips a kernel row there:
 * resnet50.l3.3x3's 14 x 14 outputs are 14 tiles, and its first and last skip 3 of 9 taps. */
static void live_taps(const fc_conv_dense *it, int64_t index, int64_t pixels, int64_t width,
                      int64_t *begin, int64_t *end) {
  const int64_t row_pixels = it->stride[2] * it->wq, slice_pixels = it->rows * row_pixels;
  const int64_t first_row = index * TILE_MR / width,
                last_row = (min64(pixels, (index + 1) * TILE_MR) - 1) / width;
  const int64_t d0 = it->od * it->stride[0] - it->pad[0];
  const int64_t h0 = it->row0 * it->stride[1] - it->pad[1];
  *begin = 0;
  *end = it->taps;
  /* the input row of tap t for output row r of the item: h0 + r * stride + the tap's band row */
#define PADDING_ONLY(t)                                                             \
  (d0 + it->tap_offset[t] / slice_pixels < 0 ||                                     \
   d0 + it->tap_offset[t] / slice_pixels >= it->in[0] ||                            \
   h0 + last_row * it->stride[1] + it->tap_offset[t] / row_pixels % it->rows < 0 || \
   h0 + first_row * it->stride[1] + it->tap_offset[t] / row_pixels % it->rows >= it->in[1])
  while (*begin < *end && PADDING_ONLY(*begin)) ++*begin;
  while (*end > *begin && PADDING_ONLY(*end - 1)) --*end;
#undef PADDING_ONLY
}

/* Rows of raw weights (`rows` rows of `floats` floats, `stride` floats apart) fetched into the
 * cache a few lines per tile of the pass before their packing, so that packing them waits on no
 * memory. */
typedef struct prefetch {
  const float *row;
  int64_t rows, stride, lines, line, per_step;
} prefetch;

static prefetch prefetch_rows(const float *first, int64_t rows, int64_t floats, int64_t stride,
                              int64_t steps) {
  const int64_t lines = (floats + 15) / 16;
  return (prefetch){first, rows, stride, lines, 0, (rows * lines + steps - 1) / max64(1, steps)};
}

FC_INLINE void prefetch_step(prefetch *f) {
  for (int64_t j = 0; j < f->per_step && f->rows > 0; j++) {
    __builtin_prefetch(f->row + f->line * 16);
    if (++f->line == f->lines) {
      f->line = 0;
      f->row += f->stride;
      f->rows--;
    }
  }
}

/* Input channels per pass over the band: the most (a multiple of 8) whose weights, taps * NR
 * floats per channel and panel, stay within L1_WEIGHT_BYTES for `panels` panels, so that every
 * tile of the pass reads them from L1. Also when the run packs them (though the next pass's raw
 * weights, fetched during the pass, then share L1 with the pass's): half the passes halve the
 * accumulators' loads and stores and the packing calls (AVX-512, one thread, time over ORT's in
 * alternating processes, 16 -> 32 channels per pass: resnet50.l3.3x3 1.082 -> 1.071, l2.3x3
 * 1.054 -> 1.040; AVX2, 16 -> 40 channels: l3 unchanged, l4.3x3 1.82 -> 1.77. Once measured 2%
 * slower on resnet50.l4.3x3 at AVX-512, which now runs the GEMM). */
static int64_t pass_channels(int64_t taps, int64_t panels) {
  const int64_t fit = L1_WEIGHT_BYTES / (panels * taps * TILE_NR * (int64_t)sizeof(float));
  return max64(CB, fit / CB * CB);
}

/* Input channels [c0, c0 + nc) of the band (built by `band`): per sweep of it->sweep panels of NR
 * output channels, per pass of pass_channels input channels, the pass's weights (packed here when
 * not yet: in L1, the next pass's raw weights prefetched meanwhile), then every tile of the band
 * for each panel in turn (the band lines of the tile still in L1), accumulating in it->acc, then
 * the accumulators into y (written when c0 is 0, else added). Packed a sweep at a time, the panels
 * crossed L2 once more, and their raw weights, fetched during the sweep's last pass only, stalled
 * the packing: a quarter of resnet50.l4.3x3's time (one band of 4 tiles, 32 passes). */
static void run(const fc_conv_dense *it, int64_t c0, int64_t nc) {
  const int64_t width = it->col1 - it->col0, pixels = (it->row1 - it->row0) * width;
  const int64_t k = it->channels * it->taps, pass = pass_channels(it->taps, it->sweep);
  const int64_t acc_panel = (pixels + TILE_MR - 1) / TILE_MR * TILE_MR * TILE_NR;
  const int64_t tiles = (pixels + TILE_MR - 1) / TILE_MR;
  const int64_t pass_floats = min64(pass, nc) * it->taps * TILE_NR;
  for (int64_t s0 = it->oc0; s0 < it->oc1; s0 += it->sweep * TILE_NR) {
    const int64_t panels = min64(it->sweep, (it->oc1 - s0 + TILE_NR - 1) / TILE_NR);
    for (int64_t p0 = 0; p0 < nc; p0 += pass) {
      const int64_t pc = min64(pass, nc - p0);
      const float *w = it->weight + s0 * k + (c0 + p0) * it->taps * TILE_NR;
      int64_t w_step = k * TILE_NR; /* between panels */
      prefetch ahead = {0};
      if (!it->weight) {
        for (int64_t q = 0; q < panels; q++) {
          const int64_t o0 = s0 + q * TILE_NR;
          pack(min64(TILE_NR, it->oc1 - o0), pc, it->taps, it->raw + o0 * k + (c0 + p0) * it->taps,
               k, it->panel + q * pass_floats, NULL);
        }
        w = it->panel;
        w_step = pass_floats;
        /* the next pass's: this sweep's next channels, or the next sweep's first */
        const int64_t next_s0 = p0 + pass < nc ? s0 : s0 + it->sweep * TILE_NR;
        const int64_t next_p0 = p0 + pass < nc ? p0 + pass : 0;
        const int64_t rows = max64(0, min64(it->sweep * TILE_NR, it->oc1 - next_s0));
        if (rows)
          ahead = prefetch_rows(it->raw + next_s0 * k + (c0 + next_p0) * it->taps, rows,
                                min64(pass, nc - next_p0) * it->taps, k, tiles);
      }
      const float *band = it->band + p0 / CB * it->slab * CB;
      for (int64_t i = 0; i < tiles; i++) {
        int64_t pixel[TILE_MR];
        tile_pixels(it, i, pixels, width, pixel, NULL);
        prefetch_step(&ahead);
        const int half = pixels - i * TILE_MR <= TILE_MR / 2;
        int64_t begin, end;
        live_taps(it, i, pixels, width, &begin, &end);
        for (int64_t q = 0; q < panels; q++) {
          float *acc = it->acc + q * acc_panel + i * TILE_MR * TILE_NR;
          (half ? half_tile : tile)(pc, it->taps, begin, end, it->tap_offset, band, it->slab * CB,
                                    pixel, w + q * w_step, acc, p0 == 0);
          /* the last pass stores each tile as it completes, so the output's cache misses overlap
           * the FMAs (stored after the sweep, they stalled resnet50.conv1 a tenth of its time) */
          if (p0 + pass >= nc) {
            const int64_t o0 = s0 + q * TILE_NR;
            store_acc_tile(it, acc, i, pixels, width, o0, min64(TILE_NR, it->oc1 - o0), c0 == 0);
          }
        }
      }
    }
  }
}

const fc_dense_ops FC_SYM(fc_dense_f32_ops) = {TILE_MR, TILE_NR, pack, build_band, run};
