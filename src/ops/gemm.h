/* clnet — GEMM on raw buffers, for other ops (convolution's im2col, RNNs).
 * Only src/ops/gemm.c talks to CLBlast. */
#ifndef CLNET_OPS_GEMM_H
#define CLNET_OPS_GEMM_H

#include "runtime/runtime.h"

/* One row-major GEMM description: op(A) is m x k, op(B) k x n, C m x n, with
 * leading dimensions and element offsets; batch > 1 repeats it with the
 * given element strides (0 shares an operand across the batch). */
typedef struct clnet__gemm_desc {
    int trans_a, trans_b;
    size_t m, n, k;
    float alpha, beta;
    cl_mem a; size_t a_off, lda, stride_a;
    cl_mem b; size_t b_off, ldb, stride_b;
    cl_mem c; size_t c_off, ldc, stride_c;
    size_t batch;                      /* 0 or 1: a single GEMM */
} clnet__gemm_desc;

/* Queues the GEMM; `what` names the calling op in error messages. beta == 0
 * ignores C's old contents. */
clnet_status clnet__gemm(clnet_context *ctx, const clnet__gemm_desc *d, const char *what);

#endif
