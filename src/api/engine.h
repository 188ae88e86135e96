/* The interface every convolution engine implements. The plan owns one state per engine (packed
 * weights, or nothing) and hands each execution everything in one fc_engine_call. */
#ifndef FASTCONV_API_ENGINE_H
#define FASTCONV_API_ENGINE_H

#include "api/problem.h"

typedef struct fc_engine_call {
  const fc_problem *problem;
  const void *weight; /* torch layout, as the plan received it */
  const void *bias;   /* NULL when the layer has none */
  const void *state;  /* what prepare() made, or NULL */
  const void *input;
  void *output;
  int num_threads;
} fc_engine_call;

typedef struct fc_engine {
  fc_algorithm algorithm;
  /* NULL when the engine can run the layer, else why not. */
  const char *(*unsupported_reason)(const fc_conv_params *params);
  /* Optional: packs the weights once per plan; reports the bytes it holds. one_shot: the plan
   * serves a single execution (the functional API), so an engine may leave the packing to the
   * execution, fused with its use. */
  fc_status (*prepare)(const fc_conv_params *params, const void *weight, int one_shot, void **state,
                       int64_t *bytes);
  fc_status (*execute)(const fc_engine_call *call);
  /* Set when execute() also runs with no state: a one-shot plan then skips prepare(), and the
   * engine prepares only what the call's geometry needs. */
  int executes_unprepared;
  void (*release)(void *state);
} fc_engine;

extern const fc_engine fc_engine_direct;
extern const fc_engine fc_engine_im2col;
extern const fc_engine fc_engine_winograd;
/* Whether Winograd F(2x2) runs p (a problem it computes) with the output channels along the
 * vectors when it transforms the weights on the call (conv_winograd.c, channel_lanes). */
int fc_winograd_channel_lanes(const fc_problem *p);
extern const fc_engine fc_engine_winograd_f4;

#endif
