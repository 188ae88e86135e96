/* Plans: the weights of one layer, packed for the engines that may run it, and the choice of
 * engine for each execution. */
#include <stdlib.h>
#include <string.h>

#include "api/engine.h"
#include "api/threads.h"
#include "direct/conv_direct_simd.h"
#include "dispatch/kernels.h"

/* Best first: auto selection and show_config() list them in this order. Winograd F(4x4, 3x3) is
 * opt-in (less exact): auto never prepares or picks it. */
static const fc_engine *const registry[] = {&fc_engine_direct, &fc_engine_im2col,
                                            &fc_engine_winograd, &fc_engine_winograd_f4};
#define FC_ENGINE_COUNT ((int)(sizeof registry / sizeof registry[0]))

struct fc_plan {
  fc_conv_params params;
  fc_algorithm requested;
  const void *weight, *bias;       /* bias may be NULL */
  void *owned_weight, *owned_bias; /* the copies, unless the plan borrows */
  int borrowed;
  int64_t bytes; /* everything the plan holds */
  const fc_engine *engines[FC_ENGINE_COUNT];
  void *states[FC_ENGINE_COUNT];
  int engine_count;
};

static const fc_engine *engine_for(fc_algorithm algorithm) {
  for (int i = 0; i < FC_ENGINE_COUNT; i++)
    if (registry[i]->algorithm == algorithm) return registry[i];
  return NULL;
}

const char *fc_algorithm_unsupported_reason(const fc_conv_params *params, fc_algorithm algorithm) {
  if (fc_params_check(params) != FC_STATUS_OK) return "the layer's parameters are invalid";
  if (algorithm == FC_ALGORITHM_AUTO) return NULL;
  const fc_engine *engine = engine_for(algorithm);
  if (!engine) return "no such algorithm";
  return engine->unsupported_reason(params);
}

static size_t dtype_size(fc_dtype dtype) {
  return dtype == FC_DTYPE_FLOAT32 ? sizeof(float) : sizeof(double);
}

static int64_t weight_elements(const fc_conv_params *p) {
  int64_t volume = p->kernel[0] * p->kernel[1] * p->kernel[2];
  return p->in_channels * (p->out_channels / p->groups) * volume; /* checked by fc_params_check */
}

void fc_plan_destroy(fc_plan *plan) {
  if (!plan) return;
  for (int i = 0; i < plan->engine_count; i++)
    if (plan->engines[i]->release) plan->engines[i]->release(plan->states[i]);
  free(plan->owned_weight);
  free(plan->owned_bias);
  free(plan);
}

/* A borrowed (one-shot) auto plan prepares an engine only if an execution chooses it: Winograd's
 * weight transform costs as much as a small layer. */
static fc_status add_engine(fc_plan *plan, const fc_engine *engine, int prepare_now) {
  void *state = NULL;
  int64_t bytes = 0;
  if (engine->prepare && prepare_now) {
    fc_status status = engine->prepare(&plan->params, plan->weight, plan->borrowed, &state, &bytes);
    if (status != FC_STATUS_OK) return status;
  }
  plan->engines[plan->engine_count] = engine;
  plan->states[plan->engine_count++] = state;
  plan->bytes += bytes;
  return FC_STATUS_OK;
}

static fc_status create(const fc_conv_params *params, const void *weight, const void *bias,
                        fc_algorithm algorithm, int borrow, fc_plan **plan_out) {
  if (!plan_out) return FC_STATUS_INVALID_ARGUMENT;
  *plan_out = NULL;
  fc_status status = fc_params_check(params);
  if (status != FC_STATUS_OK) return status;
  const int64_t elements = weight_elements(params);
  if (!weight && elements > 0) return FC_STATUS_INVALID_ARGUMENT;
  if (algorithm != FC_ALGORITHM_AUTO &&
      (!engine_for(algorithm) || engine_for(algorithm)->unsupported_reason(params)))
    return engine_for(algorithm) ? FC_STATUS_UNSUPPORTED : FC_STATUS_INVALID_ARGUMENT;

  fc_plan *plan = calloc(1, sizeof *plan);
  if (!plan) return FC_STATUS_OUT_OF_MEMORY;
  plan->params = *params;
  plan->requested = algorithm;
  const size_t weight_bytes = (size_t)elements * dtype_size(params->dtype);
  const size_t bias_bytes = (size_t)params->out_channels * dtype_size(params->dtype);
  plan->weight = weight;
  plan->bias = bias;
  plan->borrowed = borrow;
  plan->bytes = (int64_t)sizeof *plan;
  if (!borrow) {
    plan->owned_weight = malloc(weight_bytes ? weight_bytes : 1);
    plan->owned_bias = bias ? malloc(bias_bytes ? bias_bytes : 1) : NULL;
    if (!plan->owned_weight || (bias && !plan->owned_bias)) {
      fc_plan_destroy(plan);
      return FC_STATUS_OUT_OF_MEMORY;
    }
    if (weight_bytes) memcpy(plan->owned_weight, weight, weight_bytes);
    if (bias && bias_bytes) memcpy(plan->owned_bias, bias, bias_bytes);
    plan->weight = plan->owned_weight;
    plan->bias = plan->owned_bias;
    plan->bytes += (int64_t)(weight_bytes + (bias ? bias_bytes : 0));
  }

  for (int i = 0; i < FC_ENGINE_COUNT && status == FC_STATUS_OK; i++) {
    const fc_engine *engine = registry[i];
    int wanted = algorithm == FC_ALGORITHM_AUTO ? engine->algorithm != FC_ALGORITHM_WINOGRAD_F4 &&
                                                      !engine->unsupported_reason(params)
                                                : engine->algorithm == algorithm;
    /* The direct engine also serves the layers no other engine needs to see (no input channels). */
    wanted |= engine == &fc_engine_direct;
    /* A one-shot plan prepares only the engine it was asked for (the others, when an execution
     * chooses them), and not one that prepares per execution. */
    if (wanted)
      status =
          add_engine(plan, engine,
                     !borrow || (engine->algorithm == algorithm && !engine->executes_unprepared));
  }
  if (status != FC_STATUS_OK) {
    fc_plan_destroy(plan);
    return status;
  }
  *plan_out = plan;
  return FC_STATUS_OK;
}

fc_status fc_plan_create(const fc_conv_params *params, const void *weight, const void *bias,
                         fc_algorithm algorithm, fc_plan **plan_out) {
  return create(params, weight, bias, algorithm, 0, plan_out);
}

fc_status fc_plan_create_borrowed(const fc_conv_params *params, const void *weight,
                                  const void *bias, fc_algorithm algorithm, fc_plan **plan_out) {
  return create(params, weight, bias, algorithm, 1, plan_out);
}

static int plan_has(const fc_plan *plan, fc_algorithm algorithm) {
  for (int i = 0; i < plan->engine_count; i++)
    if (plan->engines[i]->algorithm == algorithm) return 1;
  return 0;
}

/* The cost model of auto selection, from the layer suite measured at one thread on AVX2:
 * - float32 with a SIMD ISA: the direct engine wins everywhere (1.1x to 20x over im2col + BLAS;
 *   resnet50.l4.3x3, 49 positions and K = 4608, once im2col's: 3.6 against 4.2-4.4 ms since the
 *   dense kernel); it ties on l3.1x1 and the transposed layer.
 * - otherwise (float64, or no SIMD ISA): a GEMM wins once each output reduces over enough inputs
 *   to amortise the column copy; thin reductions (depthwise, tiny groups) stay direct. */
/* Winograd pays where its 2.25x fewer multiplies outweigh the transforms: enough channels for the
 * 16 GEMMs to run at speed, and, when the weights are transformed for this one call (block by
 * block, beside their products), enough tiles to amortise that. Measured one-shot at one thread
 * on AVX2 (ms, Winograd / direct / im2col + OpenBLAS): 512 channels 7x7 (16 tiles) 2.3-2.5 /
 * 3.6 / 4.1, 256 channels 14x14 1.7-1.9 / 2.8 / 3.7, 256 channels 7x7 0.65 / 0.86 / 1.10; but 512
 * channels 5x5 (9 tiles) 2.5 / 2.3 / 2.4 and 3x3 (4 tiles) 1.9 / 1.4 / 1.6. Dilation keeps the
 * tile count (tiles of the polyphase components) and costs 5-10% in scattered outputs: deeplab's
 * 256 channels 28x28 dilation 2, 5.8 against 9.9 ms.
 * In 1-D F(2, 3) saves only 1.5x the multiplies: Winograd / direct one-shot 0.74-0.87 from 128
 * channels and 128 outputs (64 tiles; wavenet's 128 channels 4096 dilation 4, 0.87), but 1.05-1.3
 * at 32 channels or 32 outputs.
 * At stride 2 the tiles save only 1.44x the multiplies (1.2x in 1-D) and per-call transforms weigh
 * more: Winograd / direct one-shot at one thread on AVX-512, 2-D (input sizes): 128 channels 56x56
 * 0.90, 256 channels 28x28 0.97, 64 channels 112x112 0.95 but 56x56 1.04, 512 channels 14x14
 * (16 tiles) 1.13, 8 images of 64 channels 28x28 1.24, 32 channels 1.2-1.3; 1-D: 128 channels 1024
 * 0.83, 256 channels 256 0.94, 64 channels 512 1.00. */
static int winograd_pays(const fc_plan *plan, const fc_problem *p) {
  if (!plan_has(plan, FC_ALGORITHM_WINOGRAD)) return 0;
  const int64_t tiles = p->batch * fc_div_ceil(p->out[1], 2) * fc_div_ceil(p->out[2], 2);
  if (p->stride[2] == 2)
    return fc_min(p->in_per_group, p->out_per_group) >= 128 &&
           tiles >= (p->kernel[1] == 1 ? 64 : 49);
  if (p->kernel[1] == 1) /* a 1-D layer (a 2-D one Winograd runs is 3x3) */
    return p->in_per_group >= 64 && p->out_per_group >= 64 && tiles >= 64;
  return p->in_per_group >= 16 && p->out_per_group >= 16 && (!plan->borrowed || tiles >= 16);
}

/* A 7x7 map of more than 512 x 512 channels runs faster direct: one-shot on the GEMM of one sliver
 * and a column near the FMA peak (AVX-512, fc_direct_simd_one_sliver_map), from a plan on the
 * dense kernel's packed weights, where Winograd transforms every weight again on each call (a
 * plan's would come from memory: conv_winograd.c) for 16 tiles, a quarter of whose outputs lie past
 * the map, and beyond its products with the channels along the vectors (fc_winograd_channel_lanes),
 * whose weight transform reads them in short runs. Winograd over direct, same process, repeated
 * calls, one and two threads: one-shot 1024 channels 1.08 and 1.11, plan 1.01 and 1.05; but
 * one-shot 512 channels 0.92 and 0.88, plan 0.99 and 0.90; 384 channels 0.87 and 0.85, plan 0.94
 * and 0.90. */
static int direct_small_map_wins(const fc_problem *p) {
  return p->in_per_group * p->kernel_volume >= 4608 && fc_direct_simd_one_sliver_map(p) &&
         !fc_winograd_channel_lanes(p);
}

/* `why` receives the rule that fired, as a sentence (fc_plan_explain). */
static fc_algorithm choose(const fc_plan *plan, const fc_problem *p, int num_threads,
                           const char **why) {
  (void)num_threads;
  if (plan->requested != FC_ALGORITHM_AUTO) {
    *why = "forced by request";
    return plan->requested;
  }
  if (p->in_per_group == 0) {
    *why = "the layer has no input channels: the output is the bias alone, which direct writes";
    return FC_ALGORITHM_DIRECT;
  }
  const int64_t reduction = p->in_per_group * p->kernel_volume;
  const int blas = plan_has(plan, FC_ALGORITHM_IM2COL);
  if (plan_has(plan, FC_ALGORITHM_WINOGRAD) && direct_small_map_wins(p)) {
    *why =
        "a 7x7 map of > 512 x 512 channels: direct beats transforming every weight on each call "
        "for 16 tiles past the map";
    return FC_ALGORITHM_DIRECT;
  }
  if (winograd_pays(plan, p)) {
    *why = p->stride[2] == 2 ? "Winograd at stride 2: >= 128 input and output channels per group, "
                               "and enough tiles to amortise the transforms of its 1.44x saving"
           : p->kernel[1] == 1 ? "Winograd F(2, 3): >= 64 input and output channels per group, and "
                                 ">= 128 outputs to amortise the transforms"
           : plan->borrowed    ? "Winograd: >= 16 input and output channels per group, and >= 16 "
                                 "tiles to amortise transforming the weights for this one call"
                            : "Winograd: >= 16 input and output channels per group, and the plan "
                              "transformed the weights once";
    return FC_ALGORITHM_WINOGRAD;
  }
  if (p->dtype == FC_DTYPE_FLOAT32 && fc_simd_kernels_selected()) {
    *why =
        "float32 with SIMD kernels: the direct engine's kernels beat im2col + BLAS on every shape";
    return FC_ALGORITHM_DIRECT;
  }
  if (blas && reduction >= 16 && p->out_per_group >= 4) {
    *why =
        "float64 or no SIMD kernels, and a reduction (>= 16 per output, >= 4 outputs per group) "
        "that amortises im2col's column copy";
    return FC_ALGORITHM_IM2COL;
  }
  *why = blas ? "float64 or no SIMD kernels, and a reduction too thin for im2col's column copy"
              : "float64 or no SIMD kernels, and no BLAS for im2col";
  return FC_ALGORITHM_DIRECT;
}

static const char *explained(const fc_plan *plan, const fc_input_geometry *geometry,
                             int num_threads, fc_algorithm *chosen) {
  fc_problem problem;
  if (!plan || !geometry || fc_problem_make(&plan->params, geometry, &problem) != FC_STATUS_OK) {
    *chosen = plan ? plan->requested : FC_ALGORITHM_AUTO;
    return "the plan or the input geometry is invalid";
  }
  const char *why = NULL;
  *chosen = choose(plan, &problem, fc_threads_resolve(num_threads), &why);
  return why;
}

fc_algorithm fc_plan_choose(const fc_plan *plan, const fc_input_geometry *geometry,
                            int num_threads) {
  fc_algorithm chosen;
  explained(plan, geometry, num_threads, &chosen);
  return chosen;
}

const char *fc_plan_explain(const fc_plan *plan, const fc_input_geometry *geometry,
                            int num_threads) {
  fc_algorithm chosen;
  return explained(plan, geometry, num_threads, &chosen);
}

fc_status fc_plan_execute(const fc_plan *plan, const fc_input_geometry *geometry, const void *input,
                          void *output, int num_threads, fc_algorithm *used) {
  return fc_plan_execute_engine(plan, FC_ALGORITHM_AUTO, geometry, input, output, num_threads,
                                used);
}

/* Floats from which the finiteness check is shared among the call's threads (1 MiB: a few
 * microseconds on one core, many times a parallel region's start). */
#define FC_FINITE_PARALLEL_FLOATS (INT64_C(1) << 18)

/* Whether all count floats at x are finite, the call's threads each checking a range: at two
 * threads the one-thread check had left the other thread idle for 3% of resnet50.l2.3x3s2. */
static int input_finite(const fc_simd_kernels *simd, const float *x, int64_t count, int threads) {
  if (count < FC_FINITE_PARALLEL_FLOATS) threads = 1;
  int finite = 1;
#pragma omp parallel for num_threads(threads) if (threads > 1) reduction(&& : finite)
  for (int t = 0; t < threads; t++) {
    const int64_t begin = count * t / threads, end = count * (t + 1) / threads;
    finite = simd->winograd->all_finite_f32(x + begin, end - begin);
  }
  return finite;
}

fc_status fc_plan_execute_engine(const fc_plan *plan, fc_algorithm engine_wanted,
                                 const fc_input_geometry *geometry, const void *input, void *output,
                                 int num_threads, fc_algorithm *used) {
  if (!plan || !geometry) return FC_STATUS_INVALID_ARGUMENT;
  fc_problem problem;
  fc_status status = fc_problem_make(&plan->params, geometry, &problem);
  if (status != FC_STATUS_OK) return status;
  if (problem.batch == 0 || problem.out_channels == 0) return FC_STATUS_OK;
  if (!output || (!input && problem.in_channels > 0)) return FC_STATUS_INVALID_ARGUMENT;
  num_threads = fc_threads_for_work(fc_threads_resolve(num_threads), fc_problem_flops(&problem));
  const char *why;
  /* Layers with no input channels are the bias alone, which the direct engine writes. */
  fc_algorithm algorithm = problem.in_per_group == 0 ? FC_ALGORITHM_DIRECT
                           : engine_wanted != FC_ALGORITHM_AUTO
                               ? engine_wanted
                               : choose(plan, &problem, num_threads, &why);
  /* An Inf in an input tile can make Winograd give NaN where direct is finite: auto must not
   * change which outputs are non-finite. (Winograd runs on a SIMD ISA, whose kernels check.) */
  const fc_simd_kernels *simd = fc_simd_kernels_selected();
  if (algorithm == FC_ALGORITHM_WINOGRAD && plan->requested == FC_ALGORITHM_AUTO && simd &&
      !input_finite(simd, input, problem.batch * problem.in_channels * problem.in_volume,
                    num_threads))
    algorithm = FC_ALGORITHM_DIRECT;
  if (used) *used = algorithm;
  for (int i = 0; i < plan->engine_count; i++) {
    const fc_engine *engine = plan->engines[i];
    if (engine->algorithm != algorithm) continue;
    fc_engine_call call = {&problem, plan->weight, plan->bias, plan->states[i],
                           input,    output,       num_threads};
    if (call.state || !engine->prepare || engine->executes_unprepared)
      return engine->execute(&call);
    /* A one-shot plan's engine prepared for this call only. */
    void *state = NULL;
    int64_t bytes = 0;
    status = engine->prepare(&plan->params, plan->weight, 1, &state, &bytes);
    if (status != FC_STATUS_OK) return status;
    call.state = state;
    status = engine->execute(&call);
    engine->release(state);
    return status;
  }
  return FC_STATUS_UNSUPPORTED;
}

int64_t fc_plan_memory(const fc_plan *plan) { return plan ? plan->bytes : 0; }

const char *fc_status_message(fc_status status) {
  switch (status) {
    case FC_STATUS_OK: return "success";
    case FC_STATUS_INVALID_ARGUMENT: return "invalid argument";
    case FC_STATUS_UNSUPPORTED: return "the algorithm cannot compute this layer";
    case FC_STATUS_OUT_OF_MEMORY: return "out of memory";
    case FC_STATUS_SIZE_OVERFLOW: return "a size overflows 64 bits";
    case FC_STATUS_BLAS_UNAVAILABLE: return "no BLAS library could be loaded";
  }
  return "unknown status";
}

const char *fc_algorithm_name(fc_algorithm algorithm) {
  switch (algorithm) {
    case FC_ALGORITHM_AUTO: return "auto";
    case FC_ALGORITHM_DIRECT: return "direct";
    case FC_ALGORITHM_IM2COL: return "im2col";
    case FC_ALGORITHM_WINOGRAD: return "winograd";
    case FC_ALGORITHM_WINOGRAD_F4: return "winograd_f4";
  }
  return "unknown";
}
