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
  int m, k, t; /* outputs, taps, inputs (t = m + k - 1) */
  float bt[MAX_T][MAX_T], g[MAX_T][MAX_K], at[MAX_M][MAX_T];
} axis;

/* A 1-D layer's height: one output from one input with one tap. */
static const axis identity = {1, 1, 1, {{1}}, {{1}}, {{1}}};

/* F(2, 3), points 0, 1, -1 (Lavin and Gray). */
static const axis f2 = {
    2,
    3,
    4,
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

/* U = G g G^T, vectorised over FC_L consecutive floats of a packed panel: float j of panel p is
 * (input channel j / mr, output channel p * mr + j % mr), so the stores are contiguous. */
FC_INLINE void weights(const axis *h, const axis *w_axis, const float *w, int64_t ocg, int64_t icg,
                       int64_t mr, float *u, int64_t u_stride) {
  const int taps = h->k * w_axis->k;
  const int64_t panel_floats = mr * icg;
  for (int64_t p = 0; p * mr < ocg; p++) {
    float *dst = u + p * panel_floats;
    int64_t ic = 0, r = 0;
    for (int64_t j0 = 0; j0 < panel_floats; j0 += FC_L) {
      float lanes[MAX_K * MAX_K][FC_L];
      for (int l = 0; l < FC_L; l++, r++) { /* float j0 + l: channel (p mr + r, ic) */
        if (r == mr) r = 0, ic++;
        const int64_t oc = p * mr + r;
        const float *src = w + (oc * icg + ic) * taps;
        const int inside = ic < icg && oc < ocg;
#pragma GCC unroll 9
        for (int t = 0; t < taps; t++) lanes[t][l] = inside ? src[t] : 0.0f;
      }
      fc_vf g[MAX_T][MAX_T], out[MAX_T][MAX_T];
#pragma GCC unroll 3
      for (int a = 0; a < h->k; a++)
#pragma GCC unroll 3
        for (int b = 0; b < w_axis->k; b++) g[a][b] = fc_load(lanes[a * w_axis->k + b]);
      sandwich(&h->g[0][0], MAX_K, h->t, h->k, &w_axis->g[0][0], MAX_K, w_axis->t, w_axis->k,
               (const fc_vf(*)[MAX_T])g, out);
#pragma GCC unroll 6
      for (int i = 0; i < h->t; i++)
#pragma GCC unroll 6
        for (int k = 0; k < w_axis->t; k++)
          store_lanes(dst + (i * w_axis->t + k) * u_stride + j0, out[i][k], panel_floats - j0);
    }
  }
}

/* V = B^T d B for FC_L tiles at a time; d[r][c] is padded row row + r, column m t + c, which is
 * phase c % m, index t + c / m. */
FC_INLINE void input(const axis *h, const axis *w_axis, const float *padded, int64_t wq,
                     int64_t row, int64_t count, float *v, int64_t v_stride) {
  const int m = w_axis->m;
  for (int64_t t = 0; t < count; t += FC_L) {
    fc_vf d[MAX_T][MAX_T], out[MAX_T][MAX_T];
#pragma GCC unroll 6
    for (int r = 0; r < h->t; r++) {
      const float *line = padded + (row + r) * m * wq + t;
#pragma GCC unroll 6
      for (int c = 0; c < w_axis->t; c++) d[r][c] = fc_load(line + (c % m) * wq + c / m);
    }
    sandwich(&h->bt[0][0], MAX_T, h->t, h->t, &w_axis->bt[0][0], MAX_T, w_axis->t, w_axis->t,
             (const fc_vf(*)[MAX_T])d, out);
    const int64_t left = count - t;
#pragma GCC unroll 6
    for (int i = 0; i < h->t; i++)
#pragma GCC unroll 6
      for (int k = 0; k < w_axis->t; k++)
        store_lanes(v + (i * w_axis->t + k) * v_stride + t, out[i][k], left);
  }
}

/* Y = A^T M A + bias for FC_L tiles at a time; output column j of tile t is m t + j. */
FC_INLINE void output(const axis *h, const axis *w_axis, const float *mv, int64_t m_stride,
                      int64_t count, const float *bias, float *y, int64_t y_row, int64_t y_col,
                      int64_t rows, int64_t out_w) {
  const int m = w_axis->m;
  const fc_vf b = fc_set1(bias ? *bias : 0.0f);
  for (int64_t t = 0; t < count; t += FC_L) {
    fc_vf x[MAX_T][MAX_T], out[MAX_T][MAX_T];
#pragma GCC unroll 6
    for (int i = 0; i < h->t; i++)
#pragma GCC unroll 6
      for (int k = 0; k < w_axis->t; k++)
        x[i][k] = fc_load(mv + (i * w_axis->t + k) * m_stride + t);
    sandwich(&h->at[0][0], MAX_T, h->m, h->t, &w_axis->at[0][0], MAX_T, m, w_axis->t,
             (const fc_vf(*)[MAX_T])x, out);
    /* Tile t's outputs are m apart: interleave the m column vectors through the stack. */
    const int64_t n = fc_min_size((size_t)(m * FC_L), (size_t)(out_w - m * t));
    for (int64_t i = 0; i < rows; i++) {
      float cols[MAX_M][FC_L];
#pragma GCC unroll 4
      for (int j = 0; j < m; j++) fc_store(cols[j], out[i][j] + b);
      float *dst = y + i * y_row + m * t * y_col;
      for (int64_t o = 0; o < n; o++) dst[o * y_col] = cols[o % m][o / m];
    }
  }
}

#define TILE(H, W, NAME)                                                                           \
  static void NAME##_weights(const float *w, int64_t ocg, int64_t icg, int64_t mr, float *u,       \
                             int64_t u_stride) {                                                   \
    weights(&H, &W, w, ocg, icg, mr, u, u_stride);                                                 \
  }                                                                                                \
  static void NAME##_input(const float *padded, int64_t wq, int64_t row, int64_t count, float *v,  \
                           int64_t v_stride) {                                                     \
    input(&H, &W, padded, wq, row, count, v, v_stride);                                            \
  }                                                                                                \
  static void NAME##_output(const float *m, int64_t m_stride, int64_t count, const float *bias,    \
                            float *y, int64_t y_row, int64_t y_col, int64_t rows, int64_t out_w) { \
    output(&H, &W, m, m_stride, count, bias, y, y_row, y_col, rows, out_w);                        \
  }

TILE(f2, f2, f2x2)
TILE(identity, f2, f2x1)
TILE(f4, f4, f4x4)
TILE(identity, f4, f4x1)

/* m_h, m_w as constants (a static initializer cannot read the axis structs). */
#define ENTRY(M_H, M_W, NAME) \
  { M_H, M_W, M_H == 1 ? 1 : M_H + 2, M_W + 2, NAME##_weights, NAME##_input, NAME##_output }

const fc_winograd_kernels FC_SYM(fc_winograd_kernels) = {{
    {ENTRY(2, 2, f2x2), ENTRY(1, 2, f2x1)},
    {ENTRY(4, 4, f4x4), ENTRY(1, 4, f4x1)},
}};
