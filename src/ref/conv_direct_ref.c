/* The direct engine's portable path: plain C for every layer the API accepts (any stride,
 * dilation, padding, groups, transposed, both layouts, both dtypes), parallel over output rows
 * with OpenMP. It is what runs without a SIMD ISA, and the oracle the SIMD paths are tested
 * against (FASTCONV_DISABLE=simd). */
#include <stdlib.h>

#include "direct/conv_direct_simd.h"

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

fc_status fc_direct_ref_execute(const fc_engine_call *call) {
  return call->problem->dtype == FC_DTYPE_FLOAT32 ? direct_execute_f32(call)
                                                  : direct_execute_f64(call);
}
