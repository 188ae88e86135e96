/* Dense convolution (many channels per group) vectorised over output channels, reading the input
 * from a channel-interleaved *band*.
 *
 * The band holds, for one block of input channels and one block of output rows and columns (of
 * one output depth plane), only the input the block needs, zero-padded and stride-phase split, with
 * every 8 channels interleaved per pixel (the NCHWc layout MLAS uses): band[channel /
 * 8][slice][row][phase][slot][channel % 8], slice = depth tap extent, row = height extent, padded
 * column c at phase c % sw, slot c / sw. So the 8 channels one output pixel reads for one tap share
 * a 32-byte chunk (the broadcast streams stay in L1), padding needs no bounds test, and any stride
 * reads consecutive slots.
 *
 * A register tile is MR output pixels (flattened over the block's rows) x NR output channels: per
 * (input channel, tap) NR/L weight vector loads, MR broadcasts, MR * NR / L FMAs. The weights are
 * packed in panels of NR output channels (zero past ocg), each [icg / 8][taps][8][NR]: per block
 * of 8 input channels (fewer in a last ragged block), per tap, the block's channels. So the tile
 * walks the taps and, inside, the 8 channels of a band pixel's 32-byte chunk, both its broadcasts
 * and its weight loads at constant displacements (no index arithmetic in the inner loop: measured
 * 80 against 62 GFLOP/s L1-resident for the order channel-then-tap). One panel transpose per NR
 * output channels, as cheap as the GEMM's packing, since one-shot calls pay it every time (and,
 * when one band covers the map, pack each pass's weights right before their use:
 * forward_dense.c).
 *
 * Loop order (the one MLAS's NCHWc convolution uses): per sweep of a few panels of NR output
 * channels, per pass of a few input channels (the sweep's weights for them, at most
 * L1_WEIGHT_BYTES of conv_dense_f32.c, stay in L1), every tile of the band, for each panel in turn;
 * the accumulators are kept between passes in a buffer of the band's pixels x NR floats per panel
 * (L2), and written to the output once per channel block. So the weights cross L2 -> L1 once per
 * band, not once per tile, a tile's loads are L1 hits but its first touch of a band line, and the
 * band is streamed once per sweep (the caller sizes the sweeps: forward_dense.c). The previous
 * order (per panel, per tile, all input channels: the weights of a channel block streamed from L2
 * for every tile of 6 pixels) ran deeplab.dil2 1.37x ORT's time, this one 1.05-1.13x. */
#ifndef FASTCONV_DIRECT_CONV_DENSE_H
#define FASTCONV_DIRECT_CONV_DENSE_H

#include <stdint.h>

/* Channels interleaved per band pixel. */
#define FC_DENSE_CB 8

/* One work item: output channels [oc0, oc1) of one group, output rows [row0, row1) x columns
 * [col0, col1) of output depth plane od, over the band of a block of input channels. The band
 * starts at input (od, row0, col0) * stride - pad; its extent covers the item's taps, which may
 * start past its first slice, row or column (tap_offset): so several convolutions reading one
 * input at different offsets (the phases of a transposed layer) share one band. */
typedef struct fc_conv_dense {
  const float *x; /* the group's first input channel of this image */
  int64_t in[3], x_channel_stride;
  int64_t channels;          /* input channels of the group */
  int64_t stride[3], pad[3]; /* pad: the leading padding */
  /* the output's strides (floats) between channels, rows and columns: a transposed layer's phase
   * writes every stride-th row and column of its output (transposed_phases.h) */
  int64_t out_channel_stride, out_row_stride, out_col_stride;
  /* band geometry (in pixels of FC_DENSE_CB floats), for col1 - col0 <= wq output columns */
  int64_t slices, rows, wq, slab; /* slab: pixels per channel block of 8 = slices*rows*sw*wq */
  const int64_t *tap_offset;      /* per tap (kd, kh, kw), in pixels */
  int64_t taps;
  float *band;         /* ceil(channels per band / 8) * slab * 8 floats */
  const float *weight; /* packed, the group's first panel; or NULL: */
  const float *raw;    /* the group's weights w[ocg][icg][taps], packed pass by pass into */
  int64_t sweep;       /* panels of NR output channels per sweep over the band */
  float *panel;        /* sweep * channels per band * taps * NR floats, right before their use */
  float *acc; /* sweep * ceil(pixels / MR) * MR * NR + 8 floats: the accumulators of a sweep */
  const float *bias; /* NULL, or the group's first output channel's */
  float *y;          /* output depth plane od, row 0, column 0 of the group's first channel */
  int64_t od, row0, row1, col0, col1, oc0, oc1;
} fc_conv_dense;

/* Where input channel c, tap t of a panel's weights sit, in floats from the panel's start, for
 * `channels` input channels of `taps` taps and panels of nr output channels. */
static inline int64_t fc_dense_weight_at(int64_t channels, int64_t taps, int64_t nr, int64_t c,
                                         int64_t t) {
  const int64_t block = c / FC_DENSE_CB * FC_DENSE_CB;
  const int64_t lanes = channels - block < FC_DENSE_CB ? channels - block : FC_DENSE_CB;
  return (block * taps + t * lanes + c - block) * nr;
}

/* The dense kernels of one ISA. */
typedef struct fc_dense_ops {
  int mr; /* output pixels per register tile */
  int nr; /* output channels per register tile (and per packed panel) */
  /* One panel: rows <= nr rows of w (row stride ldw) of channels * taps columns (column c * taps
   * + t: input channel c, tap t), zero past rows, into dst at the panel layout's places
   * (fc_dense_weight_at), or column j at dst + column_at[j] when column_at is not NULL. The weights
   * w[ocg][icg * taps] pack into ceil(ocg / nr) panels, icg * taps * nr floats apart. */
  void (*pack)(int64_t rows, int64_t channels, int64_t taps, const float *w, int64_t ldw,
               float *dst, const int64_t *column_at);
  /* The band of input channels [c0, c0 + nc) for the item's output block. */
  void (*band)(const fc_conv_dense *item, int64_t c0, int64_t nc);
  /* The item's outputs from input channels [c0, c0 + nc), whose band is built: written when c0 is
   * 0, else added. */
  void (*run)(const fc_conv_dense *item, int64_t c0, int64_t nc);
} fc_dense_ops;

#endif
