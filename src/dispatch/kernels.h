/* The table of one ISA's kernels. ISA code is only ever reached through it, so no instruction of
 * an ISA the CPU lacks can run. */
#ifndef FASTCONV_DISPATCH_KERNELS_H
#define FASTCONV_DISPATCH_KERNELS_H

#include "gemm/gemm.h"
#include "winograd/winograd.h"

struct fc_conv_rows;

typedef struct fc_simd_kernels {
  const char *isa;
  const fc_gemm_ops *gemm_f32;
  fc_pack_b_fn pack_patches_f32; /* ctx: fc_conv_patches */
  void (*conv_rows_f32)(const struct fc_conv_rows *rows);
  const fc_winograd_kernels *winograd;
} fc_simd_kernels;

/* The selected ISA's table, or NULL when only the portable engines run. */
const fc_simd_kernels *fc_simd_kernels_selected(void);

#endif
