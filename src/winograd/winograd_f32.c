/* The Winograd F(2x2, 3x3) transforms for one ISA (winograd.h), vectorised across FC_L tiles of a
 * tile row. A partial last vector reads past the row (into slack) and stores only its tiles. */
#include "simd/simd.h"
#include "winograd/winograd.h"

static void store_tiles(float *dst, fc_vf v, int64_t left) {
  if (left >= FC_L)
    fc_store(dst, v);
  else
    fc_store_partial(dst, v, (int)left);
}

static void input_f32(const float *padded, int64_t wq, int64_t row, int64_t count, float *v,
                      int64_t v_stride) {
  for (int64_t t = 0; t < count; t += FC_L) {
    /* d[r][c]: input row row + r, column 2 t + c = phase c % 2, index t + c / 2 */
    fc_vf d[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
      const float *line = padded + (row + r) * 2 * wq + t;
      d[r][0] = fc_load(line);
      d[r][1] = fc_load(line + wq);
      d[r][2] = fc_load(line + 1);
      d[r][3] = fc_load(line + wq + 1);
    }
    fc_vf b[4][4]; /* B^T d */
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
      b[0][c] = d[0][c] - d[2][c];
      b[1][c] = d[1][c] + d[2][c];
      b[2][c] = d[2][c] - d[1][c];
      b[3][c] = d[1][c] - d[3][c];
    }
    const int64_t left = count - t;
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* (B^T d) B */
      store_tiles(v + (4 * i + 0) * v_stride + t, b[i][0] - b[i][2], left);
      store_tiles(v + (4 * i + 1) * v_stride + t, b[i][1] + b[i][2], left);
      store_tiles(v + (4 * i + 2) * v_stride + t, b[i][2] - b[i][1], left);
      store_tiles(v + (4 * i + 3) * v_stride + t, b[i][1] - b[i][3], left);
    }
  }
}

/* out[2 i] = even[i], out[2 i + 1] = odd[i], for the first `n` floats of out. */
static void interleave_store(float *out, fc_vf even, fc_vf odd, int64_t n) {
  float e[FC_L], o[FC_L], pairs[2 * FC_L];
  fc_store(e, even);
  fc_store(o, odd);
  for (int i = 0; i < FC_L; i++) {
    pairs[2 * i] = e[i];
    pairs[2 * i + 1] = o[i];
  }
  for (int64_t i = 0; i < n; i++) out[i] = pairs[i];
}

static void output_f32(const float *m, int64_t m_stride, int64_t count, float bias, float *y0,
                       float *y1, int64_t out_w) {
  const fc_vf b = fc_set1(bias);
  for (int64_t t = 0; t < count; t += FC_L) {
    fc_vf s[2][4]; /* A^T m */
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
      const fc_vf m0 = fc_load(m + (0 + c) * m_stride + t),
                  m1 = fc_load(m + (4 + c) * m_stride + t);
      const fc_vf m2 = fc_load(m + (8 + c) * m_stride + t),
                  m3 = fc_load(m + (12 + c) * m_stride + t);
      s[0][c] = m0 + m1 + m2;
      s[1][c] = m1 - m2 - m3;
    }
    const int64_t n = fc_min_size((size_t)(2 * FC_L), (size_t)(out_w - 2 * t));
    /* (A^T m) A, row by row */
    interleave_store(y0 + 2 * t, s[0][0] + s[0][1] + s[0][2] + b, s[0][1] - s[0][2] - s[0][3] + b,
                     n);
    if (y1)
      interleave_store(y1 + 2 * t, s[1][0] + s[1][1] + s[1][2] + b, s[1][1] - s[1][2] - s[1][3] + b,
                       n);
  }
}

const fc_winograd_kernels FC_SYM(fc_winograd_kernels) = {
    .input_f32 = input_f32,
    .output_f32 = output_f32,
};
