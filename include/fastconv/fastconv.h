/* fastconv: convolution on the CPU. The public C ABI.
 *
 * A plan holds one layer's weights (packed for the engines that will run it) and the options that
 * do not depend on the input's size; it is executed on inputs of any batch and spatial size. Every
 * entry point checks its arguments and returns a status code: no input makes it read or write out
 * of bounds. Plans are immutable after creation, so one plan may be executed from several threads
 * at once.
 *
 * Spatial sizes are always given as three numbers (depth, height, width); a layer with fewer
 * spatial dimensions uses the last `spatial_dims` of them and leaves the others at their neutral
 * values (size 1, kernel 1, stride 1, dilation 1, padding 0). */
#ifndef FASTCONV_FASTCONV_H
#define FASTCONV_FASTCONV_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FC_MAX_SPATIAL_DIMS 3

typedef enum fc_status {
  FC_STATUS_OK = 0,
  FC_STATUS_INVALID_ARGUMENT = 1, /* a size, stride, pointer or enum is out of range */
  FC_STATUS_UNSUPPORTED = 2,      /* the requested algorithm cannot compute this layer */
  FC_STATUS_OUT_OF_MEMORY = 3,
  FC_STATUS_SIZE_OVERFLOW = 4,    /* a size or byte count does not fit in 64 bits */
  FC_STATUS_BLAS_UNAVAILABLE = 5, /* the im2col engine needs fc_blas_load() first */
} fc_status;

typedef enum fc_dtype { FC_DTYPE_FLOAT32 = 0, FC_DTYPE_FLOAT64 = 1 } fc_dtype;

/* Activations only: weights always have torch's layout, (C_out, C_in/groups, *kernel) and, for
 * transposed convolution, (C_in, C_out/groups, *kernel). */
typedef enum fc_layout {
  FC_LAYOUT_CHANNELS_FIRST = 0, /* N, C, D, H, W */
  FC_LAYOUT_CHANNELS_LAST = 1,  /* N, D, H, W, C */
} fc_layout;

typedef enum fc_algorithm {
  FC_ALGORITHM_AUTO = 0,
  FC_ALGORITHM_DIRECT = 1,
  FC_ALGORITHM_IM2COL = 2,
  /* Winograd F(2x2, 3x3) (F(2, 3) in 1-D): float32, 3x3 or 3-tap, stride 1, dilation 1, SIMD */
  FC_ALGORITHM_WINOGRAD = 3,
  /* F(4x4, 3x3) (F(4, 3) in 1-D), same layers: faster and less exact; opt-in, auto never picks it
   */
  FC_ALGORITHM_WINOGRAD_F4 = 4,
} fc_algorithm;

/* What a plan fixes: everything but the batch, the input's spatial size and the padding. */
typedef struct fc_conv_params {
  int spatial_dims; /* 1, 2 or 3 */
  int transposed;   /* 0: convolution; 1: transposed convolution */
  fc_dtype dtype;
  fc_layout layout;
  int64_t in_channels, out_channels, groups;
  int64_t kernel[FC_MAX_SPATIAL_DIMS];
  int64_t stride[FC_MAX_SPATIAL_DIMS];
  int64_t dilation[FC_MAX_SPATIAL_DIMS];
  int64_t output_padding[FC_MAX_SPATIAL_DIMS]; /* transposed only; 0 otherwise */
} fc_conv_params;

/* What one execution adds. Padding is zero padding; other padding modes are the caller's. */
typedef struct fc_input_geometry {
  int64_t batch;
  int64_t in_size[FC_MAX_SPATIAL_DIMS];
  int64_t pad_begin[FC_MAX_SPATIAL_DIMS];
  int64_t pad_end[FC_MAX_SPATIAL_DIMS];
} fc_input_geometry;

typedef struct fc_plan fc_plan;

/* The output's spatial size, or an error if the geometry does not fit the parameters. */
fc_status fc_output_size(const fc_conv_params *params, const fc_input_geometry *geometry,
                         int64_t out_size[FC_MAX_SPATIAL_DIMS]);

/* Copies and packs `weight` (and `bias`, which may be NULL) for `algorithm`; AUTO packs for every
 * engine that can run the layer and picks one per execution. */
fc_status fc_plan_create(const fc_conv_params *params, const void *weight, const void *bias,
                         fc_algorithm algorithm, fc_plan **plan_out);

/* input and output are C-contiguous arrays in the plan's layout and dtype, shaped by `geometry`
 * and fc_output_size(). num_threads <= 0 means OpenMP's current default (omp_get_max_threads);
 * larger requests are clamped to the processors available (omp_get_num_procs). `used`, when not
 * NULL, receives the engine that ran (auto never runs Winograd on an input holding Inf or NaN). */
fc_status fc_plan_execute(const fc_plan *plan, const fc_input_geometry *geometry, const void *input,
                          void *output, int num_threads, fc_algorithm *used);

/* The same, but the plan references `weight` and `bias` instead of copying them: they must
 * outlive the plan and not change while it exists. For one-shot calls, where a copy would cost
 * as much as a small layer. */
fc_status fc_plan_create_borrowed(const fc_conv_params *params, const void *weight,
                                  const void *bias, fc_algorithm algorithm, fc_plan **plan_out);

/* The engine fc_plan_execute would use for this geometry and thread count, on finite input. */
fc_algorithm fc_plan_choose(const fc_plan *plan, const fc_input_geometry *geometry,
                            int num_threads);

/* Why fc_plan_choose picks its engine: the cost model's rule that fired, as a sentence (static
 * storage; never NULL). */
const char *fc_plan_explain(const fc_plan *plan, const fc_input_geometry *geometry,
                            int num_threads);

/* fc_plan_execute, but running `engine` (one the plan holds: for an AUTO plan, any engine that can
 * run the layer) instead of choosing; FC_ALGORITHM_AUTO chooses. For measured selection, which
 * times the engines of one plan. An AUTO plan still runs direct instead of Winograd on an input
 * holding Inf or NaN. FC_STATUS_UNSUPPORTED when the plan does not hold `engine`. */
fc_status fc_plan_execute_engine(const fc_plan *plan, fc_algorithm engine,
                                 const fc_input_geometry *geometry, const void *input, void *output,
                                 int num_threads, fc_algorithm *used);

/* The plan's heap footprint in bytes (weights, packed copies, bias). */
int64_t fc_plan_memory(const fc_plan *plan);

void fc_plan_destroy(fc_plan *plan);

/* NULL when `algorithm` can run the layer; otherwise a sentence saying why not. */
const char *fc_algorithm_unsupported_reason(const fc_conv_params *params, fc_algorithm algorithm);

const char *fc_status_message(fc_status status);
const char *fc_algorithm_name(fc_algorithm algorithm);

/* The im2col engine calls cblas_sgemm / cblas_dgemm from a library loaded at run time: the
 * scipy-openblas32 build, whose symbols carry a `scipy_` prefix. Safe to call more than once. */
fc_status fc_blas_load(const char *library_path);
int fc_blas_available(void);

/* The SIMD instruction sets, as comma-separated names: those this build has kernels for, those
 * the CPU and OS support, and the one the kernels use (the best of both, less FASTCONV_DISABLE,
 * a comma-separated list such as "avx512,avx2"; "simd" leaves only the portable engines). */
const char *fc_isas_compiled(void);
const char *fc_isas_detected(void);
const char *fc_isa_selected(void);

/* OpenMP's view: the thread count a num_threads <= 0 request resolves to. */
int fc_default_num_threads(void);

#ifdef __cplusplus
}
#endif

#endif /* FASTCONV_FASTCONV_H */
