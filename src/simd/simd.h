/*
 * simd.h -- one source, several ISAs: the portable SIMD vocabulary of the fp32 kernels.
 *
 * Every kernel in this directory is written once against the GCC/Clang vector extension
 *     typedef float fc_vf __attribute__((vector_size(FC_VEC_BYTES)));
 * and compiled once per ISA with that ISA's flags:
 *
 *     FC_VEC_BYTES=32  -mavx2 -mfma                                  -> ymm kernels   (suffix avx2)
 *     FC_VEC_BYTES=64  -mavx512f -mavx512bw -mavx512dq -mavx512vl    -> zmm kernels   (suffix
 * avx512) FC_VEC_BYTES=16  (aarch64, NEON is the baseline)               -> q-reg kernels (suffix
 * neon) FC_VEC_BYTES=64  -mavx2 -mfma                                  -> test build only: GCC
 * splits each 64-byte vector into two ymm, so the AVX-512 *logic* (tile sizes, tails, packing) runs
 * on a machine without AVX-512.
 *
 * The arithmetic uses no intrinsic (only fc_load_partial / fc_store_partial do, see below).  a*b+c
 * on vectors is contracted into one FMA instruction because GNU C defaults to -ffp-contract=fast
 * (we also pass it explicitly in the Makefile: under -std=c11 GCC would switch to "off").
 * Broadcasting a scalar is a full initializer {s,s,...}, which GCC turns into one vbroadcastss from
 * memory.
 *
 * FC_ISA names the symbol suffix so several builds of one file link into one library:
 *     FC_SYM(fc_gemm_f32_ukernel_6x16)  ->  fc_gemm_f32_ukernel_6x16__avx2
 */
#ifndef FASTCONV_SIMD_SIMD_H
#define FASTCONV_SIMD_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef FC_VEC_BYTES
#error "compile with -DFC_VEC_BYTES=16|32|64"
#endif
#ifndef FC_ISA
#define FC_ISA generic
#endif

#define FC_CAT_(a, b) a##__##b
#define FC_CAT(a, b) FC_CAT_(a, b)
#define FC_SYM(name) FC_CAT(name, FC_ISA)
#define FC_STR_(x) #x
#define FC_STR(x) FC_STR_(x)
#define FC_STR_ISA FC_STR(FC_ISA)

#define FC_L (FC_VEC_BYTES / 4) /* fp32 lanes per vector: 4, 8 or 16 */

typedef float fc_vf __attribute__((vector_size(FC_VEC_BYTES)));
/* The same vector with 4-byte alignment: dereferencing it is an unaligned load/store. */
typedef float fc_vfu __attribute__((vector_size(FC_VEC_BYTES), aligned(4), may_alias));

#define FC_INLINE static inline __attribute__((always_inline))
#define FC_RESTRICT __restrict__

FC_INLINE fc_vf fc_load(const float *p) { return *(const fc_vfu *)p; }
FC_INLINE void fc_store(float *p, fc_vf v) { *(fc_vfu *)p = v; }
/* Broadcast.  Spelled as a full initializer: (fc_vf){0}+s would keep a real "0+s" add (it is not
 * an identity for s = -0.0), costing one vaddss per broadcast in the GEMM inner loop. */
#if FC_L == 4
#define FC_SPLAT(s) \
  (fc_vf) { s, s, s, s }
#elif FC_L == 8
#define FC_SPLAT(s) \
  (fc_vf) { s, s, s, s, s, s, s, s }
#else
#define FC_SPLAT(s) \
  (fc_vf) { s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s }
#endif
FC_INLINE fc_vf fc_set1(float s) { return FC_SPLAT(s); }
FC_INLINE fc_vf fc_zero(void) { return (fc_vf){0}; }

/* Ragged edges (0 < n < FC_L lanes; lanes >= n read as 0, memory past p[n-1] untouched).  The only
 * per-ISA code in the kernels: AVX2 and AVX-512 have masked loads/stores that never fault on the
 * masked-off lanes; elsewhere (NEON, the 64-byte test build on AVX2) a copy through the stack.
 * fc_lanes: the lanes lo <= i < hi of a masked load or store. */
#if FC_VEC_BYTES == 32 && defined(__AVX2__)
#include <immintrin.h>
typedef __m256i fc_lanes;
FC_INLINE fc_lanes fc_lanes_of(int lo, int hi) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), idx),
                             _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), idx));
}
FC_INLINE fc_vf fc_load_masked(const float *p, fc_lanes m) {
  return (fc_vf)_mm256_maskload_ps(p, m);
}
FC_INLINE void fc_store_masked(float *p, fc_vf v, fc_lanes m) {
  _mm256_maskstore_ps(p, m, (__m256)v);
}
#elif FC_VEC_BYTES == 64 && defined(__AVX512F__)
#include <immintrin.h>
typedef __mmask16 fc_lanes;
FC_INLINE fc_lanes fc_lanes_of(int lo, int hi) {
  return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}
FC_INLINE fc_vf fc_load_masked(const float *p, fc_lanes m) {
  return (fc_vf)_mm512_maskz_loadu_ps(m, p);
}
FC_INLINE void fc_store_masked(float *p, fc_vf v, fc_lanes m) {
  _mm512_mask_storeu_ps(p, m, (__m512)v);
}
#else
typedef struct fc_lanes {
  int lo, hi;
} fc_lanes;
FC_INLINE fc_lanes fc_lanes_of(int lo, int hi) { return (fc_lanes){lo, hi}; }
FC_INLINE fc_vf fc_load_masked(const float *p, fc_lanes m) {
  fc_vf v = {0};
  if (m.hi > m.lo) memcpy((float *)&v + m.lo, p + m.lo, (size_t)(m.hi - m.lo) * sizeof(float));
  return v;
}
FC_INLINE void fc_store_masked(float *p, fc_vf v, fc_lanes m) {
  if (m.hi > m.lo) memcpy(p + m.lo, (float *)&v + m.lo, (size_t)(m.hi - m.lo) * sizeof(float));
}
#endif
/* lanes lo <= i < hi of p[0..L), the others 0; memory outside p[lo..hi) is never touched (the
 * lanes as a value, fc_lanes_of, when the same ones serve many loads or stores) */
FC_INLINE fc_vf fc_load_lanes(const float *p, int lo, int hi) {
  return fc_load_masked(p, fc_lanes_of(lo, hi));
}
FC_INLINE fc_vf fc_load_partial(const float *p, int n) { return fc_load_lanes(p, 0, n); }
FC_INLINE void fc_store_partial(float *p, fc_vf v, int n) {
  fc_store_masked(p, v, fc_lanes_of(0, n));
}
FC_INLINE int fc_clamp_lanes(int n) { return n < 0 ? 0 : (n > FC_L ? FC_L : n); }

/* ---- lane permutations (constant masks; each ISA lowers them to its own shuffles: AVX2 vpermps /
 * vperm2f128+vpalignr, AVX-512 valignd / vpermt2ps, NEON ext / uzp).  Used by the depthwise kernels
 * at row edges and for stride-2 deinterleaving. */
typedef int32_t fc_vi __attribute__((vector_size(FC_VEC_BYTES)));
#if FC_L == 4
#define FC_IDX_LANES 0, 1, 2, 3
#define FC_SH_LO 3, 4, 5, 6 /* {z[L-1], v[0..L-2]} */
#define FC_SH_HI 1, 2, 3, 4 /* {v[1..L-1], n[0]}   */
#elif FC_L == 8
#define FC_IDX_LANES 0, 1, 2, 3, 4, 5, 6, 7
#define FC_SH_LO 7, 8, 9, 10, 11, 12, 13, 14
#define FC_SH_HI 1, 2, 3, 4, 5, 6, 7, 8
#else
#define FC_IDX_LANES 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
#define FC_SH_LO 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30
#define FC_SH_HI 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16
#endif
/* x[i-1] window: lane 0 takes the last lane of `prev` (the vector to the left, or zero at a border)
 */
FC_INLINE fc_vf fc_shift_in_lo(fc_vf v, fc_vf prev) {
  return __builtin_shufflevector(prev, v, FC_SH_LO);
}
/* x[i+1] window: the last lane takes lane 0 of `next` */
FC_INLINE fc_vf fc_shift_in_hi(fc_vf v, fc_vf next) {
  return __builtin_shufflevector(v, next, FC_SH_HI);
}
/* Stride-2 deinterleave: the natural-order even / odd lanes of the 2L-float sequence (a, b).
 * AVX2 has no two-source lane-crossing float shuffle (GCC made the one-step form two vpermd and a
 * blend): the 128-bit halves are paired first (vinsertf128, vperm2f128), then the in-lane vshufps
 * picks. On the Zen 3 host that staged a 56 -> 28 stride 2 depthwise layer 5% faster than vshufps
 * then vpermpd. NEON (uzp) and AVX-512 (vpermt2ps) do the one-step form in one instruction. */
#if FC_L == 8
FC_INLINE fc_vf fc_even(fc_vf a, fc_vf b) {
  const fc_vf lo = __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11),
              hi = __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15);
  return __builtin_shufflevector(lo, hi, 0, 2, 8, 10, 4, 6, 12, 14);
}
FC_INLINE fc_vf fc_odd(fc_vf a, fc_vf b) {
  const fc_vf lo = __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11),
              hi = __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15);
  return __builtin_shufflevector(lo, hi, 1, 3, 9, 11, 5, 7, 13, 15);
}
#else
#if FC_L == 4
#define FC_EVEN 0, 2, 4, 6
#define FC_ODD 1, 3, 5, 7
#else
#define FC_EVEN 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30
#define FC_ODD 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31
#endif
FC_INLINE fc_vf fc_even(fc_vf a, fc_vf b) { return __builtin_shufflevector(a, b, FC_EVEN); }
FC_INLINE fc_vf fc_odd(fc_vf a, fc_vf b) { return __builtin_shufflevector(a, b, FC_ODD); }
#endif
/* Lanes of the 2L-float sequence (a, b) picked by idx (each in [0, 2L)): one vpermt2ps. Only
 * AVX-512 has a two-source lane-crossing permute in one instruction; callers of the other ISAs take
 * another way (FC_HAVE_PERMUTE2 undefined). */
#if FC_L == 16 && defined(__AVX512F__)
#define FC_HAVE_PERMUTE2 1
FC_INLINE fc_vf fc_permute2(fc_vf a, fc_vf b, fc_vi idx) {
  return (fc_vf)_mm512_permutex2var_ps((__m512)a, (__m512i)idx, (__m512)b);
}
#endif
/* zero the lanes >= n */
FC_INLINE fc_vf fc_keep_first(fc_vf v, int n) {
  const fc_vi idx = {FC_IDX_LANES};
  return (fc_vf)((fc_vi)v & (idx < n));
}

FC_INLINE size_t fc_round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }
FC_INLINE size_t fc_min_size(size_t a, size_t b) { return a < b ? a : b; }

#endif
