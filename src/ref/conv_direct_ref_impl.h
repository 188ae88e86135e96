/* The portable direct engine's loops, written once for both dtypes: conv_direct_ref.c includes this
 * file with REAL (the element type) and SUFFIX(name) (the name with a dtype suffix) defined.
 *
 * Work is split into output rows (batch, output channel, depth, height); each row accumulates in a
 * per-thread buffer as wide as the output, over the taps whose inputs are inside the image, so
 * zero padding costs no branches and no copy. The inner loops run over the output width with a
 * fixed input stride, which compilers vectorise for channels-first data. */

static void SUFFIX(fill_row)(REAL *acc, int64_t n, REAL value) {
  for (int64_t i = 0; i < n; i++) acc[i] = value;
}

static void SUFFIX(store_row)(const REAL *acc, int64_t n, REAL *y, int64_t y_stride) {
  for (int64_t i = 0; i < n; i++) y[i * y_stride] = acc[i];
}

/* y[o] = bias + sum over (ic, taps) of w * x[o * stride - pad + tap * dilation] */
static void SUFFIX(forward_row)(const fc_problem *p, const REAL *x, const REAL *w, REAL *acc,
                                int64_t n, int64_t oc, int64_t od, int64_t oh,
                                const fc_strides *xs) {
  const int64_t g = oc / p->out_per_group, kd_n = p->kernel[0], kh_n = p->kernel[1],
                kw_n = p->kernel[2];
  for (int64_t icg = 0; icg < p->in_per_group; icg++) {
    const int64_t ic = g * p->in_per_group + icg;
    const REAL *w_ic = w + (oc * p->in_per_group + icg) * p->kernel_volume;
    for (int64_t kd = 0; kd < kd_n; kd++) {
      const int64_t id = od * p->stride[0] - p->pad[0] + kd * p->dilation[0];
      if (id < 0 || id >= p->in[0]) continue;
      for (int64_t kh = 0; kh < kh_n; kh++) {
        const int64_t ih = oh * p->stride[1] - p->pad[1] + kh * p->dilation[1];
        if (ih < 0 || ih >= p->in[1]) continue;
        const REAL *x_row = x + n * xs->n + ic * xs->c + id * xs->d + ih * xs->h;
        for (int64_t kw = 0; kw < kw_n; kw++) {
          const REAL wv = w_ic[(kd * kh_n + kh) * kw_n + kw];
          const int64_t offset = kw * p->dilation[2] - p->pad[2], step = p->stride[2] * xs->w;
          int64_t lo, hi;
          fc_valid_outputs(p->in[2], p->out[2], p->stride[2], offset, &lo, &hi);
          const REAL *xp = x_row + (lo * p->stride[2] + offset) * xs->w;
          for (int64_t ow = lo; ow < hi; ow++, xp += step) acc[ow] += wv * *xp;
        }
      }
    }
  }
}

/* The transposed gather: y[o] = bias + sum of w * x[i] over the taps with i * stride - pad +
 * tap * dilation == o. Along the width, each tap's outputs form a progression of step `stride`. */
static void SUFFIX(transposed_row)(const fc_problem *p, const REAL *x, const REAL *w, REAL *acc,
                                   int64_t n, int64_t oc, int64_t od, int64_t oh,
                                   const fc_strides *xs) {
  const int64_t g = oc / p->out_per_group, ocg = oc - g * p->out_per_group;
  const int64_t kd_n = p->kernel[0], kh_n = p->kernel[1], kw_n = p->kernel[2];
  for (int64_t icg = 0; icg < p->in_per_group; icg++) {
    const int64_t ic = g * p->in_per_group + icg;
    const REAL *w_ic = w + (ic * p->out_per_group + ocg) * p->kernel_volume;
    for (int64_t kd = 0; kd < kd_n; kd++) {
      const int64_t td = od + p->pad[0] - kd * p->dilation[0];
      if (td < 0 || td % p->stride[0]) continue;
      const int64_t id = td / p->stride[0];
      if (id >= p->in[0]) continue;
      for (int64_t kh = 0; kh < kh_n; kh++) {
        const int64_t th = oh + p->pad[1] - kh * p->dilation[1];
        if (th < 0 || th % p->stride[1]) continue;
        const int64_t ih = th / p->stride[1];
        if (ih >= p->in[1]) continue;
        const REAL *x_row = x + n * xs->n + ic * xs->c + id * xs->d + ih * xs->h;
        for (int64_t kw = 0; kw < kw_n; kw++) {
          const REAL wv = w_ic[(kd * kh_n + kh) * kw_n + kw];
          /* input i lands on output first + i * stride */
          const int64_t first = kw * p->dilation[2] - p->pad[2];
          const int64_t i_lo = fc_max(0, fc_div_ceil(-first, p->stride[2]));
          const int64_t i_hi =
              fc_min(p->in[2], fc_div_floor(p->out[2] - 1 - first, p->stride[2]) + 1);
          for (int64_t i = i_lo; i < i_hi; i++)
            acc[first + i * p->stride[2]] += wv * x_row[i * xs->w];
        }
      }
    }
  }
}

static fc_status SUFFIX(direct_execute)(const fc_engine_call *call) {
  const fc_problem *p = call->problem;
  const REAL *x = call->input, *w = call->weight, *bias = call->bias;
  REAL *y = call->output;
  const fc_strides xs = fc_activation_strides(p->layout, p->in_channels, p->in);
  const fc_strides ys = fc_activation_strides(p->layout, p->out_channels, p->out);
  const int64_t rows = p->batch * p->out_channels * p->out[0] * p->out[1];
  const size_t row_bytes = (size_t)p->out[2] * sizeof(REAL);
  int failed = 0;
#pragma omp parallel num_threads(call->num_threads) if (rows > 1 && call->num_threads > 1)
  {
    REAL *acc = malloc(row_bytes);
    if (!acc) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      if (!acc) continue;
      const int64_t oh = r % p->out[1], od = r / p->out[1] % p->out[0];
      const int64_t oc = r / (p->out[1] * p->out[0]) % p->out_channels;
      const int64_t n = r / (p->out[1] * p->out[0] * p->out_channels);
      SUFFIX(fill_row)(acc, p->out[2], bias ? bias[oc] : (REAL)0);
      if (p->transposed)
        SUFFIX(transposed_row)(p, x, w, acc, n, oc, od, oh, &xs);
      else
        SUFFIX(forward_row)(p, x, w, acc, n, oc, od, oh, &xs);
      SUFFIX(store_row)(acc, p->out[2], y + n * ys.n + oc * ys.c + od * ys.d + oh * ys.h, ys.w);
    }
    free(acc);
  }
  return failed ? FC_STATUS_OUT_OF_MEMORY : FC_STATUS_OK;
}
