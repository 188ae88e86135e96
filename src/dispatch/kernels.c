#include "dispatch/kernels.h"

#include <stddef.h>

#include "dispatch/cpu.h"

#ifdef FC_HAVE_AVX2
extern const fc_simd_kernels fc_simd_kernels__avx2;
#endif
#ifdef FC_HAVE_AVX512
extern const fc_simd_kernels fc_simd_kernels__avx512;
#endif
#ifdef FC_HAVE_NEON
extern const fc_simd_kernels fc_simd_kernels__neon;
#endif

const fc_simd_kernels *fc_simd_kernels_selected(void) {
  switch (fc_cpu_selected()) {
#ifdef FC_HAVE_AVX512
    case FC_ISA_AVX512: return &fc_simd_kernels__avx512;
#endif
#ifdef FC_HAVE_AVX2
    case FC_ISA_AVX2: return &fc_simd_kernels__avx2;
#endif
#ifdef FC_HAVE_NEON
    case FC_ISA_NEON: return &fc_simd_kernels__neon;
#endif
    default: return NULL;
  }
}
