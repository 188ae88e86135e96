/* Transposed convolution as stride^d ordinary convolutions, one per output phase.
 *
 * Along one axis, output o receives input i through tap k when o = i * s - p + k * d. The outputs
 * of phase f (o = f + s * j) therefore receive only the taps with k * d = f + p (mod s): the tap
 * class c = (f + p) mod s, every (s / gcd(s, d))-th tap from the class's first, k0. Over j the
 * phase is an ordinary stride-1 convolution of the input with the class's taps in reverse order
 * (the sub-kernel), dilation d / gcd(s, d), leading padding (M - 1) * d / gcd(s, d) - (f + p - k0 *
 * d) / s for M taps (negative: the phase starts inside the input), writing every s-th output from
 * f. A phase whose class has no taps is its bias.
 *
 * The classes depend on the kernel, stride and dilation only, so a plan packs the weights once per
 * class; the padding only says which phase runs which class. */
#ifndef FASTCONV_DIRECT_TRANSPOSED_PHASES_H
#define FASTCONV_DIRECT_TRANSPOSED_PHASES_H

#include "api/problem.h"
#include "direct/conv_dense.h"

/* Phases (and tap classes) of a layer: the product of its strides. */
int64_t fc_phase_count(const int64_t stride[3]);

/* The sub-kernel's extent per axis for tap class cls (flattened (cd, ch, cw)); 0 on an axis
 * whose class has no taps. */
void fc_tap_class_shape(const int64_t kernel[3], const int64_t stride[3], const int64_t dilation[3],
                        int64_t cls, int64_t shape[3]);

/* The packed weights of `panels` panels per tap class, classes in order: a panel of class cls is
 * nr output channels x icg input channels x the class's taps, [icg * taps][nr] as the dense kernel
 * reads them (conv_dense.h). Writes where each class starts to base[cls] (fc_phase_count(stride)
 * entries) and returns the floats of the whole. */
int64_t fc_tap_class_layout(const int64_t kernel[3], const int64_t stride[3],
                            const int64_t dilation[3], int64_t icg, int64_t panels, int64_t nr,
                            int64_t *base);

/* Floats of one panel of class cls. */
int64_t fc_tap_class_panel_floats(const int64_t kernel[3], const int64_t stride[3],
                                  const int64_t dilation[3], int64_t cls, int64_t icg, int64_t nr);

/* Packs output channels [o0, o1) (o0 a multiple of ops->nr) of one group's transposed weights
 * w[icg][ocg][taps] into every class's panels in the layout at dst (fc_tap_class_layout's base):
 * channel o goes to panel first_panel + (o - o0) / nr, each class's sub-kernel reversed, zero past
 * o1 in the last panel. One pass over the source in memory order, each run of nr output channels
 * of one input channel transposed by the dense kernel's packing. Returns nonzero when out of
 * memory. */
int fc_pack_tap_classes(const int64_t kernel[3], const int64_t stride[3], const int64_t dilation[3],
                        int64_t icg, int64_t ocg, const fc_dense_ops *ops, const float *w,
                        int64_t o0, int64_t o1, const int64_t *base, int64_t first_panel,
                        float *dst);

/* Phase `phase` (flattened (fd, fh, fw)) of the transposed problem p as the ordinary convolution
 * *sub, and where its outputs go: *first is the offset of its output (0, 0, 0) in an output
 * channel, and its rows and columns are stride[1] and stride[2] apart. Returns the phase's tap
 * class, or -1 when it writes nothing (more phases than outputs) and -2 when it is bias only. */
int64_t fc_transposed_phase(const fc_problem *p, int64_t phase, fc_problem *sub, int64_t *first);

#endif
