/* The im2col engine's loops, written once for both dtypes: conv_im2col.c includes this file with
 * REAL, SUFFIX(name) and GEMM defined.
 *
 * Convolution: for each (image, group, chunk of output positions), the input patches of the chunk
 * are copied into a column matrix and one GEMM with the group's weights writes the output block.
 * Transposed convolution: for each (image, group, block of output channels), one GEMM per chunk of
 * input positions makes the columns, which col2im adds into the output. Work items never write the
 * same output, so they run in parallel with one column buffer per thread. */

/* Column matrix element (row r, position j) lives at col[r * rs + j * js]. */
typedef struct SUFFIX(columns) {
  REAL *col;
  int64_t rs, js;
} SUFFIX(columns);

/* Walks output positions [p0, p0 + count) of a (depth, height, width) grid one width segment at a
 * time, calling body(j, od, oh, ow_begin, ow_end) with j the index of ow_begin within the chunk. */
#define FC_FOR_EACH_SEGMENT(size, p0, count, body)                               \
  do {                                                                           \
    int64_t j_ = 0, pos_ = (p0);                                                 \
    while (j_ < (count)) {                                                       \
      const int64_t ow0_ = pos_ % (size)[2], oh_ = pos_ / (size)[2] % (size)[1]; \
      const int64_t od_ = pos_ / ((size)[2] * (size)[1]);                        \
      const int64_t seg_ = fc_min((size)[2] - ow0_, (count)-j_);                 \
      body(j_, od_, oh_, ow0_, ow0_ + seg_);                                     \
      j_ += seg_;                                                                \
      pos_ += seg_;                                                              \
    }                                                                            \
  } while (0)

/* Copies the patches of output positions [p0, p0 + count) of image n, group g, into columns
 * rows (ic, kd, kh, kw); taps that fall in the zero padding become zeros. */
static void SUFFIX(pack_patches)(const fc_problem *p, const REAL *x, const fc_strides *xs,
                                 int64_t n, int64_t g, int64_t p0, int64_t count,
                                 SUFFIX(columns) c) {
  const int64_t kvol = p->kernel_volume;
  for (int64_t r = 0; r < p->in_per_group * kvol; r++) {
    const int64_t ic = g * p->in_per_group + r / kvol, k = r % kvol;
    const int64_t kw = k % p->kernel[2], kh = k / p->kernel[2] % p->kernel[1],
                  kd = k / (p->kernel[2] * p->kernel[1]);
    const int64_t offset_w = kw * p->dilation[2] - p->pad[2];
    int64_t lo, hi;
    fc_valid_outputs(p->in[2], p->out[2], p->stride[2], offset_w, &lo, &hi);
    REAL *row = c.col + r * c.rs;
#define PACK_SEGMENT(j, od, oh, ow_begin, ow_end)                                                \
  {                                                                                              \
    const int64_t id = od * p->stride[0] - p->pad[0] + kd * p->dilation[0];                      \
    const int64_t ih = oh * p->stride[1] - p->pad[1] + kh * p->dilation[1];                      \
    const int inside = id >= 0 && id < p->in[0] && ih >= 0 && ih < p->in[1];                     \
    const REAL *src = x + n * xs->n + ic * xs->c + (inside ? id * xs->d + ih * xs->h : 0);       \
    for (int64_t ow = ow_begin; ow < ow_end; ow++)                                               \
      row[(j + ow - ow_begin) * c.js] =                                                          \
          inside && ow >= lo && ow < hi ? src[(ow * p->stride[2] + offset_w) * xs->w] : (REAL)0; \
  }
    FC_FOR_EACH_SEGMENT(p->out, p0, count, PACK_SEGMENT);
#undef PACK_SEGMENT
  }
}

/* Adds columns rows (oc in [o0, o0 + ob), kd, kh, kw) x input positions [p0, p0 + count) into the
 * outputs they land on: o = i * stride - pad + tap * dilation. */
void SUFFIX(fc_scatter_columns)(const fc_problem *p, REAL *y, const fc_strides *ys, int64_t n,
                                int64_t g, int64_t o0, int64_t ob, int64_t p0, int64_t count,
                                const REAL *col, int64_t rs, int64_t js) {
  const SUFFIX(columns) c = {(REAL *)col, rs, js};
  const int64_t kvol = p->kernel_volume;
  for (int64_t r = 0; r < ob * kvol; r++) {
    const int64_t oc = g * p->out_per_group + o0 + r / kvol, k = r % kvol;
    const int64_t kw = k % p->kernel[2], kh = k / p->kernel[2] % p->kernel[1],
                  kd = k / (p->kernel[2] * p->kernel[1]);
    const int64_t first_w = kw * p->dilation[2] - p->pad[2];
    const int64_t i_lo = fc_max(0, fc_div_ceil(-first_w, p->stride[2]));
    const int64_t i_hi = fc_div_floor(p->out[2] - 1 - first_w, p->stride[2]) + 1;
    const REAL *row = c.col + r * c.rs;
#define SCATTER_SEGMENT(j, id, ih, iw_begin, iw_end)                                   \
  {                                                                                    \
    const int64_t od = id * p->stride[0] - p->pad[0] + kd * p->dilation[0];            \
    const int64_t oh = ih * p->stride[1] - p->pad[1] + kh * p->dilation[1];            \
    if (od >= 0 && od < p->out[0] && oh >= 0 && oh < p->out[1]) {                      \
      REAL *dst = y + n * ys->n + oc * ys->c + od * ys->d + oh * ys->h;                \
      const int64_t lo = fc_max(iw_begin, i_lo), hi = fc_min(iw_end, i_hi);            \
      for (int64_t iw = lo; iw < hi; iw++)                                             \
        dst[(iw * p->stride[2] + first_w) * ys->w] += row[(j + iw - iw_begin) * c.js]; \
    }                                                                                  \
  }
    FC_FOR_EACH_SEGMENT(p->in, p0, count, SCATTER_SEGMENT);
#undef SCATTER_SEGMENT
  }
}

/* Sets output positions [p0, p0 + count) of channels [c0, c0 + cn) of image n to the bias, or
 * to zero when the layer has none; ys are the strides of the flattened (1, 1, volume) output. */
void SUFFIX(fc_fill_bias)(const REAL *bias, REAL *y, const fc_strides *ys, int64_t n, int64_t c0,
                          int64_t cn, int64_t p0, int64_t count) {
  for (int64_t c = c0; c < c0 + cn; c++) {
    const REAL value = bias ? bias[c] : (REAL)0;
    for (int64_t q = p0; q < p0 + count; q++) y[n * ys->n + c * ys->c + q * ys->w] = value;
  }
}

static void SUFFIX(forward_item)(const fc_problem *p, const fc_engine_call *call,
                                 const fc_im2col_split *split, int64_t item, REAL *buffer) {
  const REAL *x = call->input, *w = call->weight;
  REAL *y = call->output;
  const int64_t chunk = item % split->chunks, g = item / split->chunks % p->groups,
                n = item / (split->chunks * p->groups);
  const int64_t p0 = chunk * split->chunk_size,
                count = fc_min(split->chunk_size, p->out_volume - p0);
  const int64_t depth = p->in_per_group * p->kernel_volume, ocg = p->out_per_group;
  /* Output positions are contiguous in both layouts once the spatial axes are flattened. */
  const int64_t spatial[3] = {1, 1, p->out_volume};
  const fc_strides xs = fc_activation_strides(p->layout, p->in_channels, p->in);
  const fc_strides ys = fc_activation_strides(p->layout, p->out_channels, spatial);
  const REAL *w_g = w + g * ocg * depth;
  /* The GEMM adds onto the bias when there is one. */
  const REAL beta = call->bias ? 1 : 0;
  if (call->bias) SUFFIX(fc_fill_bias)(call->bias, y, &ys, n, g * ocg, ocg, p0, count);
  if (p->layout == FC_LAYOUT_CHANNELS_FIRST) {
    SUFFIX(pack_patches)(p, x, &xs, n, g, p0, count, (SUFFIX(columns)){buffer, count, 1});
    GEMM(0, 0, ocg, count, depth, w_g, depth, buffer, count, beta,
         y + n * ys.n + g * ocg * ys.c + p0, ys.c);
  } else {
    SUFFIX(pack_patches)(p, x, &xs, n, g, p0, count, (SUFFIX(columns)){buffer, 1, depth});
    GEMM(0, 1, count, ocg, depth, buffer, depth, w_g, depth, beta,
         y + n * ys.n + g * ocg + p0 * ys.w, ys.w);
  }
}

static void SUFFIX(transposed_item)(const fc_problem *p, const fc_engine_call *call,
                                    const fc_im2col_split *split, int64_t item, REAL *buffer) {
  const REAL *x = call->input, *w = call->weight;
  REAL *y = call->output;
  const int64_t block = item % split->blocks, g = item / split->blocks % p->groups,
                n = item / (split->blocks * p->groups);
  const int64_t o0 = block * split->block_size,
                ob = fc_min(split->block_size, p->out_per_group - o0);
  const int64_t icg = p->in_per_group, kvol = p->kernel_volume, row_len = p->out_per_group * kvol;
  const int64_t spatial[3] = {1, 1, p->in_volume};
  const fc_strides xs = fc_activation_strides(p->layout, p->in_channels, spatial);
  const fc_strides ys = fc_activation_strides(p->layout, p->out_channels, p->out);
  /* Group g's weights: an icg x (ocg * kvol) matrix; this block is columns [o0, o0 + ob) x kvol. */
  const REAL *w_block = w + g * icg * row_len + o0 * kvol;
  const int64_t spatial_out[3] = {1, 1, p->out_volume};
  const fc_strides ys_flat = fc_activation_strides(p->layout, p->out_channels, spatial_out);
  SUFFIX(fc_fill_bias)(call->bias, y, &ys_flat, n, g * p->out_per_group + o0, ob, 0, p->out_volume);
  for (int64_t p0 = 0; p0 < p->in_volume; p0 += split->chunk_size) {
    const int64_t count = fc_min(split->chunk_size, p->in_volume - p0);
    SUFFIX(columns) c;
    if (p->layout == FC_LAYOUT_CHANNELS_FIRST) {
      c = (SUFFIX(columns)){buffer, count, 1};
      GEMM(1, 0, ob * kvol, count, icg, w_block, row_len, x + n * xs.n + g * icg * xs.c + p0, xs.c,
           0, buffer, count);
    } else {
      c = (SUFFIX(columns)){buffer, 1, ob * kvol};
      GEMM(0, 0, count, ob * kvol, icg, x + n * xs.n + g * icg + p0 * xs.w, xs.w, w_block, row_len,
           0, buffer, ob * kvol);
    }
    SUFFIX(fc_scatter_columns)(p, y, &ys, n, g, o0, ob, p0, count, c.col, c.rs, c.js);
  }
}

static fc_status SUFFIX(im2col_execute)(const fc_engine_call *call, const fc_im2col_split *split) {
  const fc_problem *p = call->problem;
  int failed = 0;
#pragma omp parallel num_threads(call->num_threads) if (split->items > 1 && call->num_threads > 1)
  {
    REAL *buffer = malloc((size_t)split->buffer_elements * sizeof(REAL));
    if (!buffer) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < split->items; item++) {
      if (!buffer) continue;
      if (p->transposed)
        SUFFIX(transposed_item)(p, call, split, item, buffer);
      else
        SUFFIX(forward_item)(p, call, split, item, buffer);
    }
    free(buffer);
  }
  return failed ? FC_STATUS_OUT_OF_MEMORY : FC_STATUS_OK;
}
