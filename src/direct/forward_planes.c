/* The direct engine's layers of one output channel per group (single-channel filters, depthwise
 * other than 3x3): the plane kernel over L2-sized padded bands. */
#include <stdlib.h>
#include <string.h>

#include "direct/conv_patches.h"
#include "direct/conv_plane.h"
#include "direct/direct_simd_parts.h"

/* Layers of one output channel per group in one or two dimensions with unit stride along the
 * width (single-channel correlation, depthwise other than 3x3, a few input channels per output)
 * run through the plane kernel from padded bands: each item copies the rows x columns of input its
 * outputs read, zero-padded, into a buffer that stays in L2, so the input is never copied whole
 * into a padded block that would not fit in cache. (Stride 2 along the width stays with the row
 * kernel's phase-split padded block: gathering phases per band cost 2.7x on a depthwise 5x5.) */
int fc_plane_layer(const fc_problem *p) {
  return p->out_per_group == 1 && p->kernel[0] == 1 && p->in[0] == 1 && p->out[0] == 1 &&
         p->stride[2] == 1;
}

/* Band buffers of about 192 KiB (half of L2); outputs per row chunk (a 1-D signal's rows are
 * long). */
#define FC_PLANE_BAND_FLOATS (INT64_C(48) << 10)
#define FC_PLANE_CHUNK 4096
/* Floats a run read in place keeps from its row's end, and the unit of its width. */
#define FC_PLANE_IN_PLACE_MARGIN 64

/* The band: in_rows rows of `width` floats from input row ih0, whose column u is input column
 * iw0 + u, zero outside the input. */
static void plane_band(const fc_problem *p, const float *x, int64_t ih0, int64_t in_rows,
                       int64_t iw0, int64_t width, float *dst) {
  const int64_t u0 = fc_min(width, fc_max(0, -iw0)), u1 = fc_max(u0, fc_min(width, p->in[2] - iw0));
  for (int64_t i = 0; i < in_rows; i++) {
    float *d = dst + i * width;
    const int64_t ih = ih0 + i;
    if (ih < 0 || ih >= p->in[1]) {
      memset(d, 0, (size_t)width * sizeof(float));
      continue;
    }
    memset(d, 0, (size_t)u0 * sizeof(float));
    memcpy(d + u0, x + ih * p->in[2] + iw0 + u0, (size_t)(u1 - u0) * sizeof(float));
    memset(d + u1, 0, (size_t)(width - u1) * sizeof(float));
  }
}

fc_status fc_forward_planes(const fc_engine_call *call, const fc_simd_kernels *kernels,
                            const float *x, float *y) {
  const fc_problem *p = call->problem;
  const int64_t kh = p->kernel[1], kw = p->kernel[2], sh = p->stride[1];
  const int64_t dh = p->dilation[1], dw = p->dilation[2], icg = p->in_per_group;
  const int64_t out_h = p->out[1], out_w = p->out[2];
  const int64_t cw = fc_min(out_w, FC_PLANE_CHUNK), row_floats = cw + (kw - 1) * dw;
  const int64_t span = (kh - 1) * dh + 1;
  /* Output rows one apart share input rows when they read kernel rows one apart. */
  const int64_t shared_rows = sh == dh ? fc_min(FC_PLANE_MAX_ROWS, kh) : 1;
  /* Output rows per band: a multiple of the kernel's row block that fits the buffer. */
  int64_t ch =
      ((FC_PLANE_BAND_FLOATS / (icg * row_floats) - span) / sh + 1) / shared_rows * shared_rows;
  ch = fc_min(out_h, fc_max(ch, shared_rows));
  const int64_t band_floats = ((ch - 1) * sh + span) * row_floats;
  const int64_t bands = fc_div_ceil(out_h, ch), chunks = fc_div_ceil(out_w, cw);
  const int64_t planes = p->batch * p->out_channels, items = planes * bands * chunks;
  int failed = 0;
#pragma omp parallel num_threads(call->num_threads) if (call->num_threads > 1 && items > 1)
  {
    float *band = scratch_floats(icg * band_floats + FC_PATCHES_SLACK);
    int64_t *col_offset = malloc((size_t)kw * sizeof *col_offset);
    if (!band || !col_offset) {
#pragma omp atomic write
      failed = 1;
    } else {
      /* the slack a row's last vector may read past the band */
      memset(band, 0, (size_t)(icg * band_floats + FC_PATCHES_SLACK) * sizeof(float));
      for (int64_t k = 0; k < kw; k++) col_offset[k] = k * dw;
    }
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; item++) {
      if (!band || !col_offset) continue;
      const int64_t chunk = item % chunks, b = item / chunks % bands,
                    plane = item / (chunks * bands);
      const int64_t oc = plane % p->out_channels, n = plane / p->out_channels;
      const int64_t gi = oc / p->out_per_group;
      const int64_t oh0 = b * ch, rows = fc_min(ch, out_h - oh0);
      const int64_t ow0 = chunk * cw, cols = fc_min(cw, out_w - ow0);
      const float *x_group = x + (n * p->in_channels + gi * icg) * p->in_volume;
      const int64_t ih0 = oh0 * sh - p->pad[1], in_rows = (rows - 1) * sh + span;
      fc_conv_plane q = {
          .col_offset = col_offset,
          .kh_count = kh,
          .kw_count = kw,
          .kw_last = kw,
          .channels = icg,
          .weight = (const float *)call->weight + oc * icg * kh * kw,
          .rows = rows,
          .shared_rows = shared_rows,
          .contiguous_taps = kh == 1 && dw == 1,
          .bias = call->bias ? (const float *)call->bias + oc : NULL,
          .y_row_stride = out_w,
      };
      /* Output columns [in0, in1) whose inputs lie inside the input rows, when the rows do too,
       * are read in place (the band copy cost a third of a 5x5 plane's time); the margin keeps
       * the kernel's reads past a run's inputs inside the row. The rest goes through the band. */
      int64_t in0 = ow0, in1 = ow0;
      if (ih0 >= 0 && ih0 + in_rows <= p->in[1]) {
        in0 = fc_min(fc_max(ow0, p->pad[2]), ow0 + cols);
        const int64_t end = p->in[2] + p->pad[2] - (kw - 1) * dw - FC_PLANE_IN_PLACE_MARGIN - in0;
        in1 = in0 + fc_max(0, fc_min(ow0 + cols - in0, end)) / FC_PLANE_IN_PLACE_MARGIN *
                        FC_PLANE_IN_PLACE_MARGIN;
      }
      if (in1 > in0) {
        q.src = x_group + ih0 * p->in[2] + in0 - p->pad[2];
        q.kh_step = dh * p->in[2];
        q.row_step = sh * p->in[2];
        q.channel_stride = p->in_volume;
        q.cols = in1 - in0;
        q.y = y + plane * p->out_volume + oh0 * out_w + in0;
        kernels->conv_plane_f32(&q);
      }
      const int64_t runs[2][2] = {{ow0, in0}, {in1, ow0 + cols}};
      for (int part = 0; part < 2; part++) {
        const int64_t c0 = runs[part][0], c1 = runs[part][1], width = c1 - c0 + (kw - 1) * dw;
        if (c1 <= c0) continue;
        for (int64_t ic = 0; ic < icg; ic++)
          plane_band(p, x_group + ic * p->in_volume, ih0, in_rows, c0 - p->pad[2], width,
                     band + ic * band_floats);
        q.src = band;
        q.kh_step = dh * width;
        q.row_step = sh * width;
        q.channel_stride = band_floats;
        q.cols = c1 - c0;
        q.y = y + plane * p->out_volume + oh0 * out_w + c0;
        kernels->conv_plane_f32(&q);
      }
    }
    fc_scratch_put(band);
    free(col_offset);
  }
  return failed ? FC_STATUS_OUT_OF_MEMORY : FC_STATUS_OK;
}
