/* The direct engine: the SIMD path where the selected ISA has one and it wins, the portable path
 * everywhere else. Both compute every layer, so the choice is only about speed. */
#include <stddef.h>

#include "direct/conv_direct_simd.h"

static const char *direct_unsupported_reason(const fc_conv_params *params) {
  (void)params;
  return NULL;
}

static fc_status direct_execute(const fc_engine_call *call) {
  const fc_simd_kernels *kernels = fc_simd_kernels_selected();
  if (kernels && fc_direct_simd_wanted(call->problem)) return fc_direct_simd_execute(call, kernels);
  return fc_direct_ref_execute(call);
}

const fc_engine fc_engine_direct = {
    .algorithm = FC_ALGORITHM_DIRECT,
    .unsupported_reason = direct_unsupported_reason,
    .prepare = fc_direct_simd_prepare,
    .execute = direct_execute,
    .release = fc_direct_simd_release,
};
