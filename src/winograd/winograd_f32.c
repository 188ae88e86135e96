/* The Winograd transforms for one ISA (winograd.h), vectorised across FC_L tiles of a tile row
 * (the input and output transforms) or FC_L packed weights (the weight transform).
 *
 * One routine applies each transform, reading the matrices of the axis it works along; every call
 * names constant matrices, so after inlining and unrolling the compiler drops the zero
 * coefficients and turns the +-1 ones into adds: the code is what a hand-written transform would
 * be, for every tile size. A partial last vector reads past the row (into slack) and stores only
 * its tiles. */
#include "simd/simd.h"
#include "winograd/winograd.h"

#define MAX_T 6 /* inputs per tile along an axis, F(4, 3) */
#define MAX_M 4
#define MAX_K 3

/* Winograd F(m, k) along one axis (Toom-Cook: interpolation points, the last one infinity). */
typedef struct axis {
  int m, k, t; /* outputs, taps, inputs (t = m + k - 1, or s m + k - s at stride s) */
  int step;    /* inputs between consecutive tiles: s m */
  float bt[MAX_T][MAX_T], g[MAX_T][MAX_K], at[MAX_M][MAX_T];
} axis;

/* A 1-D layer's height: one output from one input with one tap. */
static const axis identity = {1, 1, 1, 1, {{1}}, {{1}}, {{1}}};

/* F(2, 3), points 0, 1, -1 (Lavin and Gray). */
static const axis f2 = {
    2,
    3,
    4,
    2,
    {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
    {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}},
    {{1, 1, 1, 0}, {0, 1, -1, -1}},
};

/* F(4, 3), points 0, 1, -1, 1/2, -2: of the sets tried in a float32 simulation of 256-channel
 * layers (0 +-1 +-2, 0 +-1 +-1/2, 0 +-1 1/2 -2, 0 +-1 1/2 -1/3) the most exact, 2.1e-6 relative
 * RMS error against 3.3e-6 for Lavin's 0 +-1 +-2; products of 1/2 and 2 keep the magnitudes of
 * B^T d B and A^T m A close to the inputs'. */
static const axis f4 = {
    4,
    3,
    6,
    4,
    {{1, -1.5f, -2, 1.5f, 1, 0},
     {0, -1, 0.5f, 2.5f, 1, 0},
     {0, 1, -2.5f, 0.5f, 1, 0},
     {0, -2, -1, 2, 1, 0},
     {0, 0.5f, -1, -0.5f, 1, 0},
     {0, 1, -1.5f, -2, 1.5f, 1}},
    {{1, 0, 0},
     {1.0f / 3, 1.0f / 3, 1.0f / 3},
     {-1.0f / 3, 1.0f / 3, -1.0f / 3},
     {-16.0f / 15, -8.0f / 15, -4.0f / 15},
     {1.0f / 15, -2.0f / 15, 4.0f / 15},
     {0, 0, 1}},
    {{1, 1, 1, 1, 1, 0},
     {0, 1, -1, 0.5f, -2, 0},
     {0, 1, 1, 0.25f, 4, 0},
     {0, 1, -1, 0.125f, -8, 1}},
};

/* F(2, 3) at stride 2: y0 = g0 x0 + g1 x1 + g2 x2, y1 = g0 x2 + g1 x3 + g2 x4. The even taps over
 * x0, x2, x4 are F(2, 2) with points 0, 1, infinity: (x0 - x2) g0, x2 (g0 + g2), (x4 - x2) g2; the
 * middle tap over x1 and x3 is two plain products. Five products for six, all coefficients +-1. */
static const axis f2_stride2 = {
    2,
    3,
    5,
    4,
    {{1, 0, -1, 0, 0}, {0, 0, 1, 0, 0}, {0, 0, -1, 0, 1}, {0, 1, 0, 0, 0}, {0, 0, 0, 1, 0}},
    {{1, 0, 0}, {1, 0, 1}, {0, 0, 1}, {0, 1, 0}, {0, 1, 0}},
    {{1, 1, 0, 1, 0}, {0, 1, 1, 0, 1}},
};

/* sum_i c[i * cs] x[i * xs] over i < n, for constant coefficients: zeros skipped, +-1 as adds. */
FC_INLINE fc_vf combine(const float *c, int cs, const fc_vf *x, int xs, int n) {
  fc_vf acc = fc_zero();
  int started = 0;
#pragma GCC unroll 6
  for (int i = 0; i < n; i++) {
    const float ci = c[i * cs];
    const fc_vf xi = x[i * xs];
    if (ci == 0.0f) continue;
    const fc_vf term = ci == 1.0f ? xi : ci == -1.0f ? -xi : fc_set1(ci) * xi;
    acc = started ? acc + term : term;
    started = 1;
  }
  return acc;
}

/* out[i][j] = sum_{a,b} L[i][a] x[a][b] R[j][b]: L is rows x inner_r (row stride ls), R is
 * cols x inner_c (row stride rs), x is inner_r x inner_c (row stride MAX_T). */
FC_INLINE void sandwich(const float *l, int ls, int rows, int inner_r, const float *r, int rs,
                        int cols, int inner_c, const fc_vf x[][MAX_T], fc_vf out[][MAX_T]) {
  fc_vf lx[MAX_T][MAX_T];
#pragma GCC unroll 6
  for (int i = 0; i < rows; i++)
#pragma GCC unroll 6
    for (int b = 0; b < inner_c; b++) lx[i][b] = combine(l + i * ls, 1, &x[0][b], MAX_T, inner_r);
#pragma GCC unroll 6
  for (int i = 0; i < rows; i++)
#pragma GCC unroll 6
    for (int j = 0; j < cols; j++) out[i][j] = combine(r + j * rs, 1, lx[i], 1, inner_c);
}

static void store_lanes(float *dst, fc_vf v, int64_t left) {
  if (left >= FC_L)
    fc_store(dst, v);
  else
    fc_store_partial(dst, v, (int)left);
}

/* {a[0], b[0], a[1], b[1], ...} from the low (interleave_lo) or high (interleave_hi) halves. */
#if FC_L == 4
#define INTERLEAVE_LO 0, 4, 1, 5
#define INTERLEAVE_HI 2, 6, 3, 7
#elif FC_L == 8
#define INTERLEAVE_LO 0, 8, 1, 9, 2, 10, 3, 11
#define INTERLEAVE_HI 4, 12, 5, 13, 6, 14, 7, 15
#else
#define INTERLEAVE_LO 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23
#define INTERLEAVE_HI 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31
#endif
FC_INLINE fc_vf interleave_lo(fc_vf a, fc_vf b) {
  return __builtin_shufflevector(a, b, INTERLEAVE_LO);
}
FC_INLINE fc_vf interleave_hi(fc_vf a, fc_vf b) {
  return __builtin_shufflevector(a, b, INTERLEAVE_HI);
}

/* Taps [t, t + FC_L / 2) of FC_L lanes (each lane's taps contiguous) as FC_L / 2 tap vectors:
 * x[i] holds lane i's taps in its low half and lane i + FC_L / 2's in its high half (a half-vector
 * load each), and log2(FC_L / 2) interleaving stages within the halves transpose them. Against
 * whole-vector loads and a full transpose, a third fewer shuffles and no lane-crossing ones
 * (on AVX2 1.75 against 2.4 ns per 3x3 kernel, in L1). */
#define HALF (FC_L / 2)
typedef float fc_vhalf __attribute__((vector_size(FC_VEC_BYTES / 2)));
typedef float fc_vhalfu __attribute__((vector_size(FC_VEC_BYTES / 2), aligned(4), may_alias));
#if FC_L == 4
#define CONCAT 0, 1, 2, 3
#define LOW_HALF 0, 1
#define HIGH_HALF 2, 3
#define HALVES_LO 0, 4, 2, 6
#define HALVES_HI 1, 5, 3, 7
#elif FC_L == 8
#define CONCAT 0, 1, 2, 3, 4, 5, 6, 7
#define LOW_HALF 0, 1, 2, 3
#define HIGH_HALF 4, 5, 6, 7
#define HALVES_LO 0, 8, 1, 9, 4, 12, 5, 13
#define HALVES_HI 2, 10, 3, 11, 6, 14, 7, 15
#else
#define CONCAT 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
#define LOW_HALF 0, 1, 2, 3, 4, 5, 6, 7
#define HIGH_HALF 8, 9, 10, 11, 12, 13, 14, 15
#define HALVES_LO 0, 16, 1, 17, 2, 18, 3, 19, 8, 24, 9, 25, 10, 26, 11, 27
#define HALVES_HI 4, 20, 5, 21, 6, 22, 7, 23, 12, 28, 13, 29, 14, 30, 15, 31
#endif
FC_INLINE void taps_by_halves(const float *const lane[FC_L], int t, fc_vf x[HALF]) {
#pragma GCC unroll 8
  for (int i = 0; i < HALF; i++)
    x[i] = __builtin_shufflevector(*(const fc_vhalfu *)(lane[i] + t),
                                   *(const fc_vhalfu *)(lane[i + HALF] + t), CONCAT);
#pragma GCC unroll 4
  for (int stage = 1; stage < HALF; stage *= 2) {
    fc_vf y[HALF];
#pragma GCC unroll 8
    for (int i = 0; i < HALF / 2; i++) {
      y[2 * i] = __builtin_shufflevector(x[i], x[i + HALF / 2], HALVES_LO);
      y[2 * i + 1] = __builtin_shufflevector(x[i], x[i + HALF / 2], HALVES_HI);
    }
#pragma GCC unroll 8
    for (int i = 0; i < HALF; i++) x[i] = y[i];
  }
}

/* G g G^T of FC_L filters from their tap vectors tap[k_h * k_w] (row-major), frequency f stored at
 * o + f * u_stride, its first `left` lanes (all from FC_L on). */
FC_INLINE void transform_filters(const axis *h, const axis *w_axis, const fc_vf *tap, float *o,
                                 int64_t u_stride, int64_t left) {
  fc_vf g[MAX_T][MAX_T], out[MAX_T][MAX_T];
#pragma GCC unroll 3
  for (int a = 0; a < h->k; a++)
#pragma GCC unroll 3
    for (int b = 0; b < w_axis->k; b++) g[a][b] = tap[a * w_axis->k + b];
  sandwich(&h->g[0][0], MAX_K, h->t, h->k, &w_axis->g[0][0], MAX_K, w_axis->t, w_axis->k,
           (const fc_vf(*)[MAX_T])g, out);
#pragma GCC unroll 6
  for (int i = 0; i < h->t; i++)
#pragma GCC unroll 6
    for (int k = 0; k < w_axis->t; k++, o += u_stride) store_lanes(o, out[i][k], left);
}

/* Floats of a chunk of a packed panel, lcm(mr, FC_L): whole vectors holding whole input channels
 * of the panel (24 for AVX2's 6 rows: 4 input channels, 3 vectors; 112 for AVX-512's 14; 8 for
 * NEON's 8). */
FC_INLINE int64_t chunk_floats(int64_t mr) {
  int64_t chunk = mr;
  while (chunk % FC_L) chunk += mr;
  return chunk;
}
#define MAX_MR 16
/* How far ahead on each row of a panel the weight transform prefetches. */
#define PREFETCH_BYTES 768
#define MAX_CHUNK_CHANNELS 8

/* U = G g G^T, vectorised over FC_L consecutive floats of a packed panel: float j of panel p is
 * (input channel j / mr, output channel p * mr + j % mr), so the stores are contiguous. Lane l's
 * taps are contiguous in w[oc][ic][k_h][k_w]: taps_by_halves makes them tap vectors (scalar copies
 * through a tap-major buffer cost about 2 cycles a float).
 *
 * A panel goes a chunk at a time (chunk_floats). With mr a constant, a lane's taps lie at a
 * constant distance from its row's taps of the chunk's first input channel, so each load is one
 * instruction off the panel's row pointers: computing every lane's address cost as much as the
 * transform. A ragged last chunk is first copied, zero-padded, to a staging buffer. Lanes past the
 * last output channel repeat it (rows the products compute and never store); lanes past the last
 * input channel are not stored. */
FC_INLINE void weights(const axis *h, const axis *w_axis, const float *w, int64_t ocg, int64_t icg,
                       int64_t row_channels, int64_t mr, float *u, int64_t u_stride) {
  const int taps = h->k * w_axis->k;
  const int64_t chunk = chunk_floats(mr), chunk_channels = chunk / mr;
  const int64_t panel_floats = mr * icg, row_floats = row_channels * taps;
  float stage[MAX_MR * MAX_CHUNK_CHANNELS * MAX_K * MAX_K];
  for (int64_t p = 0; p * mr < ocg; p++) {
    const int64_t rows = ocg - p * mr < mr ? ocg - p * mr : mr;
    const float *panel = w + p * mr * row_floats;
    float *dst = u + p * panel_floats;
    for (int64_t c0 = 0; c0 < icg; c0 += chunk_channels) {
      const float *src = panel + c0 * taps;
      int64_t src_row = row_floats;
      if (c0 + chunk_channels > icg) {
        src = stage;
        src_row = chunk_channels * taps;
        for (int64_t r = 0; r < rows; r++)
          for (int64_t i = 0; i < src_row; i++)
            stage[r * src_row + i] =
                c0 * taps + i < icg * taps ? panel[r * row_floats + c0 * taps + i] : 0.0f;
      }
      const int64_t first = c0 * mr;
      /* The rows' weights come from memory: without the prefetch the loads wait on them while
       * the products' operands crowd the caches (resnet50.l4.3x3 one-shot 2.48 -> 2.31 ms). */
      for (int64_t r = 0; r < rows && src != stage; r++)
        for (int64_t b = 0; b < chunk_channels * taps * (int64_t)sizeof(float); b += 64)
          __builtin_prefetch((const char *)(src + r * row_floats) + PREFETCH_BYTES + b, 0, 3);
#pragma GCC unroll 8
      for (int64_t v = 0; v < chunk; v += FC_L) {
        if (first + v >= panel_floats) break;
        const float *lane[FC_L];
#pragma GCC unroll 16
        for (int l = 0; l < FC_L; l++) {
          const int64_t r = (v + l) % mr, c = (v + l) / mr;
          lane[l] = src + (r < rows ? r : rows - 1) * src_row + c * taps;
        }
        fc_vf tap[MAX_K * MAX_K + HALF];
        int t = 0;
        for (; t + HALF <= taps; t += HALF) taps_by_halves(lane, t, &tap[t]);
        if (t < taps &&
            taps >= HALF) { /* the last taps: the last HALF, of which the rest are new */
          fc_vf last[HALF];
          taps_by_halves(lane, taps - HALF, last);
          for (; t < taps; t++) tap[t] = last[t - (taps - HALF)];
        }
        for (; t < taps; t++) { /* fewer taps than half a vector, gathered lane by lane */
          float gathered[FC_L];
#pragma GCC unroll 16
          for (int l = 0; l < FC_L; l++) gathered[l] = lane[l][t];
          tap[t] = fc_load(gathered);
        }
        transform_filters(h, w_axis, tap, dst + first + v, u_stride, panel_floats - first - v);
      }
    }
  }
}

/* x[i] = lane i of the FC_L vectors x. On AVX-512 as two rounds within 128-bit lanes and two of
 * whole 128-bit lanes, which run twice as fast as the lane-crossing interleaves of the generic
 * perfect shuffle (log2(FC_L) rounds of interleaving x[i] with x[i + FC_L / 2]). */
#if FC_L == 16
#define UNPACK_LO 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29
#define UNPACK_HI 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31
#define PAIRS_LO 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define PAIRS_HI 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define QUARTERS_EVEN 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27
#define QUARTERS_ODD 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31
FC_INLINE void transpose(fc_vf x[FC_L]) {
  fc_vf t[FC_L], u[FC_L];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    t[2 * i] = __builtin_shufflevector(x[2 * i], x[2 * i + 1], UNPACK_LO);
    t[2 * i + 1] = __builtin_shufflevector(x[2 * i], x[2 * i + 1], UNPACK_HI);
  }
  /* u[4 i + k]: rows 4 i .. 4 i + 3 of column 4 L + k in 128-bit lane L */
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    u[4 * i] = __builtin_shufflevector(t[4 * i], t[4 * i + 2], PAIRS_LO);
    u[4 * i + 1] = __builtin_shufflevector(t[4 * i], t[4 * i + 2], PAIRS_HI);
    u[4 * i + 2] = __builtin_shufflevector(t[4 * i + 1], t[4 * i + 3], PAIRS_LO);
    u[4 * i + 3] = __builtin_shufflevector(t[4 * i + 1], t[4 * i + 3], PAIRS_HI);
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; k++)
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
      t[8 * h + 2 * k] = __builtin_shufflevector(u[8 * h + k], u[8 * h + 4 + k], QUARTERS_EVEN);
      t[8 * h + 2 * k + 1] = __builtin_shufflevector(u[8 * h + k], u[8 * h + 4 + k], QUARTERS_ODD);
    }
#pragma GCC unroll 4
  for (int k = 0; k < 4; k++)
#pragma GCC unroll 2
    for (int q = 0; q < 2; q++) {
      x[4 * q + k] = __builtin_shufflevector(t[2 * k + q], t[8 + 2 * k + q], QUARTERS_EVEN);
      x[4 * (q + 2) + k] = __builtin_shufflevector(t[2 * k + q], t[8 + 2 * k + q], QUARTERS_ODD);
    }
}
#else
FC_INLINE void transpose(fc_vf x[FC_L]) {
#pragma GCC unroll 4
  for (int round = 1; round < FC_L; round *= 2) {
    fc_vf y[FC_L];
#pragma GCC unroll 8
    for (int i = 0; i < FC_L / 2; i++) {
      y[2 * i] = interleave_lo(x[i], x[i + FC_L / 2]);
      y[2 * i + 1] = interleave_hi(x[i], x[i + FC_L / 2]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < FC_L; i++) x[i] = y[i];
  }
}
#endif

/* The weight transform for panels of whole vectors (mr a multiple of FC_L: U_f^T's slivers of
 * output channels, conv_winograd.c), FC_L output channels x FC_L input channels at a time: each
 * output channel's taps of those input channels are FC_L * taps contiguous floats, so whole-vector
 * loads and taps transposes of FC_L x FC_L make the tap vectors of all FC_L input channels at
 * once (the lanes of a panel of 14 or 8 rows mix input channels, and weights() gathers each vector
 * by halves: 2.5x slower here). Lanes past the last output channel repeat it. */
FC_INLINE void weights_by_vectors(const axis *h, const axis *w_axis, const float *w, int64_t ocg,
                                  int64_t icg, int64_t row_channels, int64_t mr, float *u,
                                  int64_t u_stride) {
  const int taps = h->k * w_axis->k;
  const int64_t panel_floats = mr * icg, row_floats = row_channels * taps;
  float stage[FC_L * FC_L * MAX_K * MAX_K];
  for (int64_t o0 = 0; o0 < ocg; o0 += FC_L) {
    float *dst = u + o0 / mr * panel_floats + o0 % mr;
    for (int64_t c0 = 0; c0 < icg; c0 += FC_L) {
      const int64_t channels = icg - c0 < FC_L ? icg - c0 : FC_L;
      const float *src = w + o0 * row_floats + c0 * taps;
      int64_t src_row = row_floats;
      if (o0 + FC_L > ocg ||
          channels < FC_L) { /* ragged: the rows, the last repeated, zero-padded */
        for (int64_t l = 0; l < FC_L; l++)
          for (int64_t i = 0; i < FC_L * taps; i++)
            stage[l * FC_L * taps + i] =
                i < channels * taps ? src[(o0 + l < ocg ? l : ocg - 1 - o0) * row_floats + i]
                                    : 0.0f;
        src = stage;
        src_row = FC_L * taps;
      }
      /* the taps of the channel being gathered: taps blocks of FC_L make FC_L channels */
      fc_vf g[MAX_K * MAX_K];
      int have = 0, c = 0;
#pragma GCC unroll 9
      for (int j = 0; j < taps; j++) {
        fc_vf x[FC_L];
        const float *r = src + j * FC_L;
#pragma GCC unroll 16
        for (int l = 0; l < FC_L; l++, r += src_row) x[l] = fc_load(r);
        transpose(x);
#pragma GCC unroll 16
        for (int i = 0; i < FC_L; i++) {
          g[have++] = x[i];
          if (have < taps) continue;
          have = 0;
          if (c < channels) transform_filters(h, w_axis, g, dst + (c0 + c) * mr, u_stride, FC_L);
          c++;
        }
      }
    }
  }
}

/* The weight transform with the GEMM tile's row count as a constant (the ISAs' main and wide
 * tiles: AVX2 6 and 4, AVX-512 14 and 8, NEON 8 and 6); panels of whole vectors (the slivers of
 * the products along the channels: 48 and 16 on AVX-512) by vectors. */
FC_INLINE void weights_for_tile(const axis *h, const axis *w_axis, const float *w, int64_t ocg,
                                int64_t icg, int64_t row_channels, int64_t mr, float *u,
                                int64_t u_stride) {
  switch (mr) {
    case 4: weights(h, w_axis, w, ocg, icg, row_channels, 4, u, u_stride); break;
    case 6: weights(h, w_axis, w, ocg, icg, row_channels, 6, u, u_stride); break;
    case 8: weights(h, w_axis, w, ocg, icg, row_channels, 8, u, u_stride); break;
    case 14: weights(h, w_axis, w, ocg, icg, row_channels, 14, u, u_stride); break;
    default:
      if (mr % FC_L == 0)
        weights_by_vectors(h, w_axis, w, ocg, icg, row_channels, mr, u, u_stride);
      else
        weights(h, w_axis, w, ocg, icg, row_channels, mr, u, u_stride);
  }
}

/* V = B^T d B for the block's tiles, FC_L at a time in the order of the slivers: tile q is tile
 * (first + q) % tiles_w of grid tile row (first + q) / tiles_w, so a block may start and end inside
 * a tile row; its inputs lie where the grid says (winograd.h). A vector of tiles that runs into the
 * next tile row (or past the block, as zeros) is loaded row by row, in masked lanes. Sliver widths
 * are multiples of FC_L, so a vector is one store, and the last sliver is filled to its width: its
 * padding lanes are finite. */
FC_INLINE void input(const axis *h, const axis *w_axis, const float *padded,
                     const fc_winograd_grid *g, int64_t first, float *v, int64_t v_stride,
                     const fc_winograd_slivers *slivers, int64_t channel) {
  const int step = w_axis->step;
  const int64_t tiles = slivers->tiles, tiles_w = g->tiles_w;
  const int64_t row_step = g->row_step, phase_step = g->phase_step;
  const int64_t last = fc_winograd_sliver_start(slivers, tiles - 1);
  const int64_t end = last + fc_winograd_sliver_width(slivers, last);
  for (int64_t q = 0; q < end; q += FC_L) {
    const int64_t tile_row = (first + q) / tiles_w, column = (first + q) % tiles_w;
    fc_vf d[MAX_T][MAX_T], out[MAX_T][MAX_T];
    if (q + FC_L <= tiles && column + FC_L <= tiles_w) {
      const float *origin = padded + g->row_origins[tile_row] + column;
#pragma GCC unroll 6
      for (int r = 0; r < h->t; r++)
#pragma GCC unroll 6
        for (int c = 0; c < w_axis->t; c++)
          d[r][c] = fc_load(origin + r * row_step + (c % step) * phase_step + c / step);
    } else {
#pragma GCC unroll 6
      for (int r = 0; r < h->t; r++)
#pragma GCC unroll 6
        for (int c = 0; c < w_axis->t; c++) d[r][c] = fc_zero();
      const int valid = (int)(tiles - q < FC_L ? tiles - q : FC_L);
      int64_t tr = tile_row, tc = column;
      for (int lo = 0; lo < valid; tr++, tc = 0) { /* lanes [lo, hi): tile row tr from tc */
        const int hi = (int)(valid - lo < tiles_w - tc ? valid : lo + tiles_w - tc);
        const float *origin = padded + g->row_origins[tr] + tc - lo;
#pragma GCC unroll 6
        for (int r = 0; r < h->t; r++)
#pragma GCC unroll 6
          for (int c = 0; c < w_axis->t; c++)
            d[r][c] +=
                fc_load_lanes(origin + r * row_step + (c % step) * phase_step + c / step, lo, hi);
        lo = hi;
      }
    }
    sandwich(&h->bt[0][0], MAX_T, h->t, h->t, &w_axis->bt[0][0], MAX_T, w_axis->t, w_axis->t,
             (const fc_vf(*)[MAX_T])d, out);
    /* Padding past the last tile is the last sliver's (past tail_from, sliver_start would place
     * it in a tail sliver of its own: the 8x48 tile's last vector of 24 tiles). */
    const int64_t start = q < tiles ? fc_winograd_sliver_start(slivers, q) : last;
    const int64_t width = fc_winograd_sliver_width(slivers, start);
    float *dst = v + start * slivers->rows + channel * width + q - start;
    if (width < FC_L) { /* panels of half a vector: each half to its own, if there is one */
      const int high = start + width < end;
#pragma GCC unroll 6
      for (int i = 0; i < h->t; i++)
#pragma GCC unroll 6
        for (int k = 0; k < w_axis->t; k++) {
          float *f = dst + (i * w_axis->t + k) * v_stride;
          *(fc_vhalfu *)f = __builtin_shufflevector(out[i][k], out[i][k], LOW_HALF);
          if (high)
            *(fc_vhalfu *)(f + width * slivers->rows) =
                __builtin_shufflevector(out[i][k], out[i][k], HIGH_HALF);
        }
      continue;
    }
#pragma GCC unroll 6
    for (int i = 0; i < h->t; i++)
#pragma GCC unroll 6
      for (int k = 0; k < w_axis->t; k++) fc_store(dst + (i * w_axis->t + k) * v_stride, out[i][k]);
  }
}

/* out = A^T M A for one vector of M's frequencies, frequency f at m[f * m_stride]. */
FC_INLINE void inverse(const axis *h, const axis *w_axis, const float *m, int64_t m_stride,
                       fc_vf out[][MAX_T]) {
  fc_vf x[MAX_T][MAX_T];
#pragma GCC unroll 6
  for (int i = 0; i < h->t; i++)
#pragma GCC unroll 6
    for (int k = 0; k < w_axis->t; k++) x[i][k] = fc_load(m + (i * w_axis->t + k) * m_stride);
  sandwich(&h->at[0][0], MAX_T, h->m, h->t, &w_axis->at[0][0], MAX_T, w_axis->m, w_axis->t,
           (const fc_vf(*)[MAX_T])x, out);
}

/* Y = A^T M A + bias for FC_L tiles at a time; output column j of tile t is m t + j (times
 * y_col). */
FC_INLINE void output(const axis *h, const axis *w_axis, const float *mv, int64_t m_stride,
                      int64_t count, const float *bias, float *y, int64_t y_row, int64_t y_col,
                      int64_t rows, int64_t out_w) {
  const int m = w_axis->m;
  const fc_vf b = fc_set1(bias ? *bias : 0.0f);
  for (int64_t t = 0; t < count; t += FC_L) {
    fc_vf out[MAX_T][MAX_T];
    inverse(h, w_axis, mv + t, m_stride, out);
    /* Tile t's outputs are m apart: interleave the m column vectors in registers when the
     * outputs are contiguous, storing the last, partial vectors under a mask (resnet50.l2.3x3's
     * tile rows of 14 tiles are never a whole vector), else through the stack. */
    const int64_t n = fc_min_size((size_t)(m * FC_L), (size_t)(out_w - m * t));
    for (int64_t i = 0; i < rows; i++) {
      float *dst = y + i * y_row + m * t * y_col;
      fc_vf c[MAX_M];
#pragma GCC unroll 4
      for (int j = 0; j < m; j++) c[j] = out[i][j] + b;
      if (y_col == 1 && (m == 2 || m == 4)) {
        fc_vf o[MAX_M];
        if (m == 2) {
          o[0] = interleave_lo(c[0], c[1]);
          o[1] = interleave_hi(c[0], c[1]);
        } else {
          const fc_vf even_lo = interleave_lo(c[0], c[2]), even_hi = interleave_hi(c[0], c[2]),
                      odd_lo = interleave_lo(c[1], c[3]), odd_hi = interleave_hi(c[1], c[3]);
          o[0] = interleave_lo(even_lo, odd_lo);
          o[1] = interleave_hi(even_lo, odd_lo);
          o[2] = interleave_lo(even_hi, odd_hi);
          o[3] = interleave_hi(even_hi, odd_hi);
        }
#pragma GCC unroll 4
        for (int j = 0; j < m; j++)
          if (n > j * FC_L) store_lanes(dst + j * FC_L, o[j], n - j * FC_L);
        continue;
      }
      float cols[MAX_M][FC_L];
#pragma GCC unroll 4
      for (int j = 0; j < m; j++) fc_store(cols[j], c[j]);
      for (int64_t o = 0; o < n; o++) dst[o * y_col] = cols[o % m][o / m];
    }
  }
}

/* Y = A^T M A + bias for one tile, vectorised over FC_L output channels at a time: frequency f of
 * channel c at M[f * m_stride + c], channel c's outputs at y + c * y_channel + i * y_row + j *
 * y_col for the tile's first rows x cols. For a map of few tiles, whose products run with the
 * output channels along the vectors (conv_winograd.c). */
FC_INLINE void output_lanes(const axis *h, const axis *w_axis, const float *mv, int64_t m_stride,
                            int64_t channels, const float *bias, float *y, int64_t y_channel,
                            int64_t y_row, int64_t y_col, int64_t rows, int64_t cols) {
  for (int64_t c = 0; c < channels; c += FC_L) {
    const int lanes = (int)(channels - c < FC_L ? channels - c : FC_L);
    fc_vf out[MAX_T][MAX_T];
    inverse(h, w_axis, mv + c, m_stride, out);
    const fc_vf b = bias ? fc_load_partial(bias + c, lanes) : fc_zero();
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < cols; j++) {
        const fc_vf o = out[i][j] + b;
        float *dst = y + c * y_channel + i * y_row + j * y_col;
        if (y_channel == 1) {
          store_lanes(dst, o, lanes);
        } else { /* channels-first: the channels' outputs are planes apart */
          float lane[FC_L];
          fc_store(lane, o);
          for (int l = 0; l < lanes; l++) dst[l * y_channel] = lane[l];
        }
      }
  }
}

#define TILE(H, W, NAME)                                                                           \
  static void NAME##_weights(const float *w, int64_t ocg, int64_t icg, int64_t row_channels,       \
                             int64_t mr, float *u, int64_t u_stride) {                             \
    weights_for_tile(&H, &W, w, ocg, icg, row_channels, mr, u, u_stride);                          \
  }                                                                                                \
  static void NAME##_input(const float *padded, const fc_winograd_grid *grid, int64_t first,       \
                           float *v, int64_t v_stride, const fc_winograd_slivers *slivers,         \
                           int64_t channel) {                                                      \
    input(&H, &W, padded, grid, first, v, v_stride, slivers, channel);                             \
  }                                                                                                \
  static void NAME##_output(const float *m, int64_t m_stride, int64_t count, const float *bias,    \
                            float *y, int64_t y_row, int64_t y_col, int64_t rows, int64_t out_w) { \
    output(&H, &W, m, m_stride, count, bias, y, y_row, y_col, rows, out_w);                        \
  }                                                                                                \
  static void NAME##_output_lanes(const float *m, int64_t m_stride, int64_t channels,              \
                                  const float *bias, float *y, int64_t y_channel, int64_t y_row,   \
                                  int64_t y_col, int64_t rows, int64_t cols) {                     \
    output_lanes(&H, &W, m, m_stride, channels, bias, y, y_channel, y_row, y_col, rows, cols);     \
  }

TILE(f2, f2, f2x2)
TILE(identity, f2, f2x1)
TILE(f4, f4, f4x4)
TILE(identity, f4, f4x1)
TILE(f2_stride2, f2_stride2, f2x2_stride2)
TILE(identity, f2_stride2, f2x1_stride2)

/* Exponent bits all ones (Inf or NaN) in any lane, OR-ed over the vectors without a branch: on the
 * ISA's vectors, as the core's SSE2 loop took 3 % of resnet50.l1.3x3's time. */
static int all_finite(const float *x, int64_t count) {
  const int32_t exponent = 0x7f800000;
  fc_vi found = {0};
  int64_t i = 0;
  for (; i + FC_L <= count; i += FC_L) found |= ((fc_vi)fc_load(x + i) & exponent) == exponent;
  if (i < count) found |= ((fc_vi)fc_load_partial(x + i, (int)(count - i)) & exponent) == exponent;
  int any = 0;
  for (int l = 0; l < FC_L; l++) any |= found[l];
  return !any;
}

/* The sizes as constants (a static initializer cannot read the axis structs): a 1-D layer's height
 * is one output from one input per tile. */
#define ENTRY_2D(M, T, STEP, NAME) \
  { M, M, T, T, STEP, STEP, NAME##_weights, NAME##_input, NAME##_output, NAME##_output_lanes }
#define ENTRY_1D(M, T, STEP, NAME) \
  { 1, M, 1, T, 1, STEP, NAME##_weights, NAME##_input, NAME##_output, NAME##_output_lanes }

const fc_winograd_kernels FC_SYM(fc_winograd_kernels) = {
    .tiles =
        {
            [FC_WINOGRAD_F2] = {ENTRY_2D(2, 4, 2, f2x2), ENTRY_1D(2, 4, 2, f2x1)},
            [FC_WINOGRAD_F4] = {ENTRY_2D(4, 6, 4, f4x4), ENTRY_1D(4, 6, 4, f4x1)},
            [FC_WINOGRAD_F2_STRIDE2] = {ENTRY_2D(2, 5, 4, f2x2_stride2),
                                        ENTRY_1D(2, 5, 4, f2x1_stride2)},
        },
    .lanes = FC_L,
    .all_finite_f32 = all_finite,
};
