/* clnet — matrix multiplication (GEMM) on float32 tensors, through CLBlast. */
#ifndef CLNET_GEMM_H
#define CLNET_GEMM_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum clnet_trans {
    CLNET_NO_TRANS = 0,
    CLNET_TRANS = 1
} clnet_trans;

/* c = alpha * op(a) * op(b) + beta * c, row-major. a, b and c are 2-D
 * float32 tensors of one context; op(x) is x or its transpose. op(a) is m x k,
 * op(b) k x n, c m x n. beta == 0 ignores c's old contents (a NaN there does
 * not propagate). c must not overlap a or b. */
CLNET_API clnet_status clnet_gemm(clnet_trans trans_a, clnet_trans trans_b, float alpha,
                                  const clnet_tensor *a, const clnet_tensor *b, float beta,
                                  clnet_tensor *c);

/* The same for 3-D tensors (batch, rows, cols): c[i] = alpha * op(a[i]) *
 * op(b[i]) + beta * c[i]. An operand with batch 1 is shared by every batch
 * entry (broadcast), e.g. one weight matrix for many inputs. */
CLNET_API clnet_status clnet_gemm_batched(clnet_trans trans_a, clnet_trans trans_b, float alpha,
                                          const clnet_tensor *a, const clnet_tensor *b,
                                          float beta, clnet_tensor *c);

#ifdef __cplusplus
}
#endif
#endif
