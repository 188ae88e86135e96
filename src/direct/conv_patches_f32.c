/* The B-sliver packer of implicit-GEMM convolution for one ISA (see conv_patches.h). A sliver's
 * NR columns are output positions, cut into runs along one output row (one run for wide maps,
 * several for narrow ones); each run is a few vector loads per B row. */
#include "direct/conv_patches.h"
#include "gemm/gemm.h"
#include "simd/simd.h"

/* Up to NR columns can touch this many output rows when the width is 1. */
#define MAX_SEGMENTS FC_GEMM_NR_MAX

#ifdef FC_HAVE_PERMUTE2
/* A sliver of short output rows is many short segments (a 7x7 map's 48 columns are 7 of them, each
 * a cache-line-crossing vector load and store per B row): vector v of a B row then takes its lanes
 * from the two vectors of the padded block from first[v] on, by one permute, the same lanes for
 * every row. Returns 0 when some vector's columns lie further apart than two vectors. */
static int permute_lanes(const size_t *seg_start, const size_t *seg_len, const int64_t *seg_base,
                         size_t n, int64_t *first, fc_vi *lanes) {
  for (size_t j = 0, s = 0; j < n; j++) {
    if (j == seg_start[s] + seg_len[s]) s++;
    const int64_t base = seg_base[s] + (int64_t)(j - seg_start[s]);
    if (j % FC_L == 0) first[j / FC_L] = base;
    const int64_t lane = base - first[j / FC_L];
    if (lane < 0 || lane >= 2 * FC_L) return 0;
    lanes[j / FC_L][j % FC_L] = (int32_t)lane;
  }
  return 1;
}
#endif

void FC_SYM(fc_conv_pack_patches_f32)(const void *ctx_, size_t pc, size_t kc, size_t jr, size_t n,
                                      size_t nrp, float *FC_RESTRICT dst) {
  const fc_conv_patches *ctx = ctx_;
  size_t seg_start[MAX_SEGMENTS], seg_len[MAX_SEGMENTS];
  int64_t seg_base[MAX_SEGMENTS];
  size_t segments = 0;
  int64_t q = ctx->q0 + (int64_t)jr;
  for (size_t j = 0; j < n; segments++) {
    const int64_t ow = q % ctx->out_w, oh = q / ctx->out_w % ctx->out_h;
    const int64_t od = q / (ctx->out_w * ctx->out_h);
    const size_t len = fc_min_size(n - j, (size_t)(ctx->out_w - ow));
    seg_start[segments] = j;
    seg_len[segments] = len;
    seg_base[segments] = od * ctx->step_d + oh * ctx->step_h + ow;
    j += len;
    q += (int64_t)len;
  }
#ifdef FC_HAVE_PERMUTE2
  int64_t first[MAX_SEGMENTS / FC_L];
  fc_vi lanes[MAX_SEGMENTS / FC_L];
  if (n == nrp && n % FC_L == 0 && segments > n / FC_L &&
      permute_lanes(seg_start, seg_len, seg_base, n, first, lanes)) {
    for (size_t k = 0; k < kc; k++, dst += nrp) {
      const float *src = ctx->padded + ctx->row_offset[pc + k];
      for (size_t v = 0; v < n / FC_L; v++)
        fc_store(dst + v * FC_L,
                 fc_permute2(fc_load(src + first[v]), fc_load(src + first[v] + FC_L), lanes[v]));
    }
    return;
  }
#endif
  /* Each segment is copied in whole vectors: the overshoot past a segment's end lands where the
   * next segment (or the zeroed tail) is written after it, and reads stay inside the padded
   * block's FC_PATCHES_SLACK floats of slack. */
  const float *padded = ctx->padded;
  const int64_t *row_offset = ctx->row_offset + pc;
  for (size_t k = 0; k < kc; k++, dst += nrp) {
    for (size_t s = 0; s < segments; s++) {
      const float *src = padded + row_offset[k] + seg_base[s];
      float *d = dst + seg_start[s];
      for (size_t j = 0; j < seg_len[s]; j += FC_L) fc_store(d + j, fc_load(src + j));
    }
    for (size_t j = n; j < nrp; j++) dst[j] = 0.0f;
  }
}
