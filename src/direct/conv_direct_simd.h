/* The direct engine's SIMD path; conv_direct.c chooses between it and the portable path. */
#ifndef FASTCONV_DIRECT_CONV_DIRECT_SIMD_H
#define FASTCONV_DIRECT_CONV_DIRECT_SIMD_H

#include "api/engine.h"
#include "dispatch/kernels.h"

/* Whether the SIMD path beats the portable one on this problem. */
int fc_direct_simd_wanted(const fc_problem *p);
fc_status fc_direct_simd_execute(const fc_engine_call *call, const fc_simd_kernels *kernels);

/* The portable path (src/ref), for every problem. */
fc_status fc_direct_ref_execute(const fc_engine_call *call);

#endif
