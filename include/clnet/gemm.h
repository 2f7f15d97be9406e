/* clnet — matrix multiplication (GEMM) on float32 tensors: CLBlast on GPUs
 * and other non-CPU devices, clnet's own kernels on CPU devices (which kernel
 * runs where: docs/gemm.md). */
#ifndef CLNET_GEMM_H
#define CLNET_GEMM_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum clnet_trans { CLNET_NO_TRANS = 0, CLNET_TRANS = 1 } clnet_trans;

/* c = alpha * op(a) * op(b) + beta * c, row-major, float32.
 *
 * Shapes: a, b and c are 2-D float32 tensors of one context; op(x) is x
 * (CLNET_NO_TRANS) or its transpose (CLNET_TRANS). op(a) is m x k, op(b)
 * k x n, c m x n: a is m x k (k x m when transposed), b k x n (n x k).
 * Tensors may be views (slices, reshapes) at any element offset.
 * Semantics: overwrites c when beta == 0, without reading it (a NaN or Inf
 * in c does not propagate); otherwise accumulates into c. k == 0 gives
 * c = beta * c; m == 0 or n == 0 does nothing. Products are summed in
 * float32 in an order the kernel chooses; the same call on the same device
 * gives the same bits every time.
 * Aliasing: c must not overlap a or b (CLNET_ERR_INVALID_ARG); a and b may.
 * NaN policy: NaN and Inf in a or b propagate as IEEE arithmetic says, also
 * when alpha == 0 (no shortcut); float32 overflow gives Inf; -0 and
 * denormals are kept.
 * Errors: CLNET_ERR_INVALID_ARG for a NULL tensor, a trans value other than
 * the two above, tensors of another context or an overlap; CLNET_ERR_SHAPE
 * for another dtype, ndim or shape; CLNET_ERR_UNSUPPORTED for an element
 * past INT_MAX in its buffer (the kernels index with int). The message
 * names the argument. Nothing is queued on failure.
 * Ownership: the tensors are borrowed; nothing is kept after the call. The
 * work is queued on c's context (clnet_context_finish waits for it). The
 * first 2-D and the first batched call on a context compile the GEMM
 * kernels: seconds on pocl until its disk cache holds them.
 * Thread-safety: as the context. Where CLBlast runs, its tuning parameters
 * are set per device for the whole process (docs/gemm.md). */
CLNET_API clnet_status clnet_gemm(clnet_trans trans_a, clnet_trans trans_b, float alpha,
                                  const clnet_tensor *a, const clnet_tensor *b, float beta,
                                  clnet_tensor *c);

/* The same for 3-D tensors (batch, rows, cols): c[i] = alpha * op(a[i]) *
 * op(b[i]) + beta * c[i] for i < batch, the batch being c's. An operand with
 * batch 1 is shared by every batch entry (broadcast), e.g. one weight matrix
 * for many inputs; any other batch must equal c's (CLNET_ERR_SHAPE). A batch
 * of 0 does nothing. It may return only once the queue has drained (where
 * CLBlast runs: it uploads the per-entry offsets synchronously). Everything
 * else as clnet_gemm. */
CLNET_API clnet_status clnet_gemm_batched(clnet_trans trans_a, clnet_trans trans_b, float alpha,
                                          const clnet_tensor *a, const clnet_tensor *b, float beta,
                                          clnet_tensor *c);

#ifdef __cplusplus
}
#endif
#endif
