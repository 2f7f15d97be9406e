/* clnet — GEMM on raw buffers, for other ops (convolution's im2col, RNNs),
 * through CLBlast or clnet's own kernel. Only src/ops/gemm.c talks to
 * CLBlast. */
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
    cl_mem a;
    size_t a_off, lda, stride_a;
    cl_mem b;
    size_t b_off, ldb, stride_b;
    cl_mem c;
    size_t c_off, ldc, stride_c;
    size_t batch; /* 0 or 1: a single GEMM */
} clnet__gemm_desc;

/* Queues the GEMM; `what` names the calling op in error messages. beta == 0
 * ignores C's old contents. m or n == 0 does nothing; k == 0 sets C = beta*C
 * (C must then be contiguous). A and B must not overlap C. Offsets and
 * strides are free (a batched GEMM on CLBlast goes through
 * CLBlastSgemmBatched, which returns once the queue has drained;
 * docs/gemm.md says why). clnet's kernels neither wait nor use the
 * context's workspace: a, b and c may be views of it. The packed kernel
 * packs into a scratch buffer of its own (clnet__gemm_scratch), created on
 * its first GEMM and grown for a larger one, never for a size already seen.
 *
 * CLBlast's parameters (src/ops/gemm_params.h) follow two variants, checked
 * before each call and given to CLBlast when they change for this context:
 *   "gemm.params"  1 (chosen): the tuned set of the device's table entry;
 *                  0: CLBlast's own set, restored by overriding with it.
 *   "gemm.kernel"  2: CLBlast picks its direct or indirect kernel
 *                  by size (XGEMM_MIN_INDIRECT_SIZE); 0: the direct kernel
 *                  for every size; 1: the indirect one (Xgemm after
 *                  copy/pad/transpose) for every size;
 *                  3 (CLNET_V_GEMM_OWN): clnet's kernels that read A and B
 *                  in place; 4 (CLNET_V_GEMM_PACKED): clnet's packed
 *                  kernel; both cl/gemm.cl, never CLBlast (docs/gemm.md).
 *   "gemm.kc"      the packed kernel's longest k block (default 256; tests
 *                  force short ones).
 * "gemm.params" and "gemm.kernel" 0-2 apply only on devices with a table
 * entry: elsewhere CLBlast's own database is never touched (its values
 * could not be restored). Unforced, "gemm.kernel" is
 * clnet__gemm_cpu_kernel's choice (3 or 4) on CPU devices, else 2. The
 * environment variable CLNET_GEMM_KERNEL=own, packed or clblast, read when
 * the context is created, replaces that choice (a forced variant still wins), for
 * benchmarks. Every kernel is deterministic; CLBlast's and gemm_tile_nt's
 * results may differ from the others in the last bits (other summation
 * orders); gemm_tile and the packed kernel agree bit for bit. */
clnet_status clnet__gemm(clnet_context *ctx, const clnet__gemm_desc *d, const char *what);

/* The table entry's label for ctx's device ("pocl CPU"), or NULL. */
const char *clnet__gemm_params_label(const clnet_context *ctx);

/* What ctx last gave CLBlast: 0 nothing (no table entry, or no GEMM yet),
 * CLNET__GEMM_APPLIED(params, kernel) of the variants above, or its negative
 * when the installed CLBlast refused the table's parameter names (another
 * CLBlast version): the GEMMs then ran with CLBlast's own parameters. */
int clnet__gemm_params_applied(clnet_context *ctx);
#define CLNET__GEMM_APPLIED(params, kernel) (1 + (params) + 2 * (kernel))

/* The kernel a CPU device runs d on, unforced: CLNET_V_GEMM_OWN or
 * CLNET_V_GEMM_PACKED, by shape and transposes (docs/gemm.md). */
int clnet__gemm_cpu_kernel(const clnet__gemm_desc *d);

#endif
