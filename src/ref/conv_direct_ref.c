/* The portable direct engine: plain C for every layer the API accepts (any stride, dilation,
 * padding, groups, transposed, both layouts), parallel over output rows with OpenMP. It is the
 * baseline every ISA path falls back to and the oracle the SIMD kernels are tested against. */
#include <stdlib.h>

#include "api/engine.h"

#define REAL float
#define SUFFIX(name) name##_f32
#include "ref/conv_direct_ref_impl.h"
#undef REAL
#undef SUFFIX

#define REAL double
#define SUFFIX(name) name##_f64
#include "ref/conv_direct_ref_impl.h"
#undef REAL
#undef SUFFIX

static const char *direct_unsupported_reason(const fc_conv_params *params) {
  (void)params;
  return NULL;
}

static fc_status direct_execute(const fc_engine_call *call) {
  return call->problem->dtype == FC_DTYPE_FLOAT32 ? direct_execute_f32(call)
                                                  : direct_execute_f64(call);
}

const fc_engine fc_engine_direct = {
    .algorithm = FC_ALGORITHM_DIRECT,
    .unsupported_reason = direct_unsupported_reason,
    .prepare = NULL,
    .execute = direct_execute,
    .release = NULL,
};
