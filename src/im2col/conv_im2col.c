/* The im2col + BLAS engine: a portable baseline that is fast wherever one large GEMM per group is,
 * and the engine of choice at large batch. See conv_im2col_impl.h for the loops. */
#include <stdlib.h>

#include "api/engine.h"
#include "im2col/blas.h"
#include "im2col/columns.h"

/* How an execution is cut into independent work items. */
typedef struct fc_im2col_split {
  int64_t items;
  int64_t chunks, chunk_size; /* positions: output (convolution) or input (transposed) */
  int64_t blocks, block_size; /* transposed: output channels of a group per item */
  int64_t buffer_elements;    /* one column buffer, per thread */
} fc_im2col_split;

/* A column chunk of about this many elements (1 MiB of float32) stays in L2 while the GEMM reads
 * it, yet is wide enough for the GEMM to run at speed. */
#define FC_COLUMN_CHUNK_ELEMENTS (INT64_C(1) << 18)
#define FC_MIN_CHUNK_POSITIONS 64

static int64_t chunk_positions(int64_t rows, int64_t positions) {
  return fc_min(positions,
                fc_max(FC_MIN_CHUNK_POSITIONS, FC_COLUMN_CHUNK_ELEMENTS / fc_max(rows, 1)));
}

static fc_im2col_split split_work(const fc_problem *p, int num_threads) {
  fc_im2col_split s;
  const int64_t outer = p->batch * p->groups;
  /* When images x groups cannot feed every thread, cut each one finer. */
  const int64_t per_outer = outer >= num_threads ? 1 : fc_div_ceil(num_threads, outer);
  if (!p->transposed) {
    const int64_t rows = p->in_per_group * p->kernel_volume;
    s.chunk_size =
        fc_min(chunk_positions(rows, p->out_volume), fc_div_ceil(p->out_volume, per_outer));
    s.chunks = fc_div_ceil(p->out_volume, s.chunk_size);
    s.blocks = s.block_size = 1;
    s.items = outer * s.chunks;
    s.buffer_elements = rows * s.chunk_size;
  } else {
    /* Chunks of one item scatter into overlapping outputs, so they run in sequence; threads split
     * the output channels instead. */
    s.block_size = fc_div_ceil(p->out_per_group, per_outer);
    s.blocks = fc_div_ceil(p->out_per_group, s.block_size);
    const int64_t rows = s.block_size * p->kernel_volume;
    s.chunk_size = chunk_positions(rows, p->in_volume);
    s.chunks = fc_div_ceil(p->in_volume, s.chunk_size);
    s.items = outer * s.blocks;
    s.buffer_elements = rows * s.chunk_size;
  }
  return s;
}

/* Every dimension and leading dimension handed to the 32-bit BLAS must fit in an int. */
static int fits_blas(const fc_problem *p, const fc_im2col_split *s) {
  const int64_t reduce = p->transposed ? p->in_per_group : p->in_per_group * p->kernel_volume;
  const int64_t rows = p->transposed ? s->block_size * p->kernel_volume : p->out_per_group;
  const int64_t positions = p->transposed ? p->in_volume : p->out_volume;
  const int64_t row_len = p->out_per_group * p->kernel_volume;
  return fc_blas_fits(reduce) && fc_blas_fits(rows) && fc_blas_fits(positions) &&
         fc_blas_fits(row_len) && fc_blas_fits(p->in_channels) && fc_blas_fits(p->out_channels) &&
         fc_blas_fits(s->chunk_size);
}

#define GEMM fc_gemm_f32
#define REAL float
#define SUFFIX(name) name##_f32
#include "im2col/conv_im2col_impl.h"
#undef GEMM
#undef REAL
#undef SUFFIX

#define GEMM fc_gemm_f64
#define REAL double
#define SUFFIX(name) name##_f64
#include "im2col/conv_im2col_impl.h"
#undef GEMM
#undef REAL
#undef SUFFIX

static const char *im2col_unsupported_reason(const fc_conv_params *params) {
  (void)params;
  if (!fc_blas_available())
    return "the im2col engine needs a BLAS, and none was loaded (fc_blas_load)";
  return NULL;
}

static fc_status im2col_execute(const fc_engine_call *call) {
  if (!fc_blas_available()) return FC_STATUS_BLAS_UNAVAILABLE;
  const fc_im2col_split split = split_work(call->problem, call->num_threads);
  if (!fits_blas(call->problem, &split)) return FC_STATUS_UNSUPPORTED;
  fc_blas_single_threaded();
  return call->problem->dtype == FC_DTYPE_FLOAT32 ? im2col_execute_f32(call, &split)
                                                  : im2col_execute_f64(call, &split);
}

const fc_engine fc_engine_im2col = {
    .algorithm = FC_ALGORITHM_IM2COL,
    .unsupported_reason = im2col_unsupported_reason,
    .prepare = NULL,
    .execute = im2col_execute,
    .release = NULL,
};
