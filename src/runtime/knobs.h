/* clnet — the registry of kernel variants: every key an op passes to
 * clnet__variant, the values a test may force with clnet__force_variant,
 * and the value enums that ops and tests share (docs/adding-an-op.md). */
#ifndef CLNET_KNOBS_H
#define CLNET_KNOBS_H

#include <limits.h>

/* Outputs per work-item of the pooling and upsampling kernels; MAX_2X2 is
 * max pooling's float4 kernel, where the window is 2x2, stride 2. */
enum { CLNET_V_RUN_ELEMENT = 0, CLNET_V_RUN_ROW = 1, CLNET_V_MAX_2X2 = 2 };
/* Row kernels (softmax, cross-entropy): a row per work-item or per group. */
enum { CLNET_V_ROW_ITEM = 0, CLNET_V_ROW_GROUP = 1 };
/* The bias gradient: per channel group, or per plane then a sum. */
enum { CLNET_V_BIAS_GROUPS = 0, CLNET_V_BIAS_PLANES = 1 };
/* Batch-norm apply kernels: an element or a run of a plane per work-item. */
enum { CLNET_V_APPLY_ELEMENT = 0, CLNET_V_APPLY_RUN = 1 };
/* Convolution implementations (src/ops/conv.c). */
enum {
    CLNET_V_CONV_IM2COL = 0,  /* im2col (or col2im) + GEMM: any shape */
    CLNET_V_CONV_GEMM1X1 = 1, /* 1x1 kernel, stride 1, no padding: the GEMM alone */
    CLNET_V_CONV_DIRECT = 2,  /* direct kernels on packed weights: any shape */
    CLNET_V_CONV_WIDE = 3     /* direct kernels with the pixels along the lanes
                               * (cl/conv_wide.cl): conv_wide for the forward (stride
                               * 1; else conv_packed) and the data gradient (its
                               * phases are stride 1), conv_filter_wide for the
                               * filter gradient (stride 1; else conv_filter) */
};
/* Grouped convolution: its direct kernel, or the dense convolution where
 * groups == 1 (registered ahead of the op, which another branch adds). */
enum { CLNET_V_GROUPED_DIRECT = 0, CLNET_V_GROUPED_DENSE = 1 };
/* The LSTM recurrence: a GEMM per step, a fused kernel per step, or the
 * whole sequence in one launch. */
enum { CLNET_V_REC_GEMM = 0, CLNET_V_REC_STEP = 1, CLNET_V_REC_SEQ = 2 };
/* GEMM kernels: CLBlast's direct, indirect or by size; clnet's own
 * in-place or packed kernel (src/ops/gemm.h). */
enum {
    CLNET_V_GEMM_CLBLAST_DIRECT = 0,
    CLNET_V_GEMM_CLBLAST_INDIRECT = 1,
    CLNET_V_GEMM_CLBLAST = 2,
    CLNET_V_GEMM_OWN = 3,
    CLNET_V_GEMM_PACKED = 4
};

/* X(name, lowest, highest): every variant key and the range of values that
 * clnet__force_variant accepts for it. An op asks only for keys listed
 * here; a key not here, or a value outside its range, fails the forcing
 * call, so a renamed key cannot turn a test of every variant into a test
 * of the default. */
#define CLNET_VARIANTS(X)                                                                          \
    X("pool2d_max.forward", CLNET_V_RUN_ELEMENT, CLNET_V_MAX_2X2)                                  \
    X("pool2d_max.backward", CLNET_V_RUN_ELEMENT, CLNET_V_MAX_2X2)                                 \
    X("pool2d_avg.forward", CLNET_V_RUN_ELEMENT, CLNET_V_RUN_ROW)                                  \
    X("pool2d_avg.backward", CLNET_V_RUN_ELEMENT, CLNET_V_RUN_ROW)                                 \
    X("upsample2d_nearest.forward", CLNET_V_RUN_ELEMENT, CLNET_V_RUN_ROW)                          \
    X("upsample2d_nearest.backward", CLNET_V_RUN_ELEMENT, CLNET_V_RUN_ROW)                         \
    X("softmax.forward", CLNET_V_ROW_ITEM, CLNET_V_ROW_GROUP)                                      \
    X("softmax.backward", CLNET_V_ROW_ITEM, CLNET_V_ROW_GROUP)                                     \
    X("softmax_xent.forward", CLNET_V_ROW_ITEM, CLNET_V_ROW_GROUP)                                 \
    X("bias.backward", CLNET_V_BIAS_GROUPS, CLNET_V_BIAS_PLANES)                                   \
    X("batchnorm.apply", CLNET_V_APPLY_ELEMENT, CLNET_V_APPLY_RUN)                                 \
    X("conv2d.forward", CLNET_V_CONV_IM2COL, CLNET_V_CONV_WIDE)                                    \
    X("conv2d.backward_data", CLNET_V_CONV_IM2COL, CLNET_V_CONV_WIDE)                              \
    X("conv2d.backward_filter", CLNET_V_CONV_IM2COL, CLNET_V_CONV_WIDE)                            \
    X("conv2d.chunk", 1, INT_MAX)         /* images per chunk of the batch */                      \
    X("conv2d.filter_slices", 1, INT_MAX) /* slices of the filter gradient */                      \
    X("conv2d_grouped.forward", CLNET_V_GROUPED_DIRECT, CLNET_V_GROUPED_DENSE)                     \
    X("conv2d_grouped.backward_data", CLNET_V_GROUPED_DIRECT, CLNET_V_GROUPED_DENSE)               \
    X("conv2d_grouped.backward_filter", CLNET_V_GROUPED_DIRECT, CLNET_V_GROUPED_DENSE)             \
    X("lstm.forward", CLNET_V_REC_GEMM, CLNET_V_REC_SEQ)                                           \
    X("lstm.backward", CLNET_V_REC_GEMM, CLNET_V_REC_SEQ)                                          \
    X("gemm.params", 0, 1) /* 1: the device's tuned CLBlast set */                                 \
    X("gemm.kernel", CLNET_V_GEMM_CLBLAST_DIRECT, CLNET_V_GEMM_PACKED)                             \
    X("gemm.kc", 1, INT_MAX)   /* the packed kernel's longest k block */                           \
    X("diskcache.store", 0, 1) /* 1: load and store program binaries */

#endif
