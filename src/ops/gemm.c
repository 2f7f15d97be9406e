/* clnet — GEMM through CLBlast or clnet's own kernel (cl/gemm.cl, the
 * default on CPU devices): the public 2-D and batched calls, clnet__gemm on
 * raw buffers for other ops, and the per-device CLBlast parameters of
 * gemm_params.h. The only file that includes CLBlast. */
#include <clblast_c.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clnet/gemm.h"
#include "gemm.h"
#include "gemm_params.h"
#include "ops/op.h"
#include "tensor/tensor_impl.h"

static const char *clblast_name(CLBlastStatusCode s)
{
    switch (s) {
    case CLBlastNotImplemented:
        return "CLBlastNotImplemented";
    case CLBlastInvalidMatrixA:
        return "CLBlastInvalidMatrixA";
    case CLBlastInvalidMatrixB:
        return "CLBlastInvalidMatrixB";
    case CLBlastInvalidMatrixC:
        return "CLBlastInvalidMatrixC";
    case CLBlastInvalidDimension:
        return "CLBlastInvalidDimension";
    case CLBlastInvalidLeadDimA:
        return "CLBlastInvalidLeadDimA";
    case CLBlastInvalidLeadDimB:
        return "CLBlastInvalidLeadDimB";
    case CLBlastInvalidLeadDimC:
        return "CLBlastInvalidLeadDimC";
    case CLBlastInsufficientMemoryA:
        return "CLBlastInsufficientMemoryA";
    case CLBlastInsufficientMemoryB:
        return "CLBlastInsufficientMemoryB";
    case CLBlastInsufficientMemoryC:
        return "CLBlastInsufficientMemoryC";
    case CLBlastInsufficientMemoryTemp:
        return "CLBlastInsufficientMemoryTemp";
    case CLBlastInvalidBatchCount:
        return "CLBlastInvalidBatchCount";
    case CLBlastInvalidOverrideKernel:
        return "CLBlastInvalidOverrideKernel";
    case CLBlastMissingOverrideParameter:
        return "CLBlastMissingOverrideParameter";
    case CLBlastInvalidLocalMemUsage:
        return "CLBlastInvalidLocalMemUsage";
    case CLBlastDatabaseError:
        return "CLBlastDatabaseError";
    case CLBlastUnknownError:
        return "CLBlastUnknownError";
    case CLBlastUnexpectedError:
        return "CLBlastUnexpectedError";
    default:
        return clnet__cl_error_name((cl_int)s);
    }
}

static clnet_status clblast_error(clnet_context *ctx, CLBlastStatusCode s, const char *call,
                                  const char *what)
{
    clnet_status st = s > -1000 ? clnet__cl_status((cl_int)s) : CLNET_ERR_OPENCL;
    /* CLBlast's kernels have fixed work-group shapes (8x8 with the tuned
     * pocl set); a device that allows fewer work-items cannot run them. */
    if (s == CLBlastInvalidLocalNumDimensions || s == CLBlastInvalidLocalThreadsDim ||
        s == CLBlastInvalidLocalThreadsTotal)
        return clnet__error(ctx, CLNET_ERR_TOO_LARGE,
                            "%s: %s failed: %s (%d): CLBlast's GEMM kernels need larger "
                            "work-groups than device \"%s\" allows (%zu work-items; "
                            "docs/hardening.md)",
                            what, call, clblast_name(s), (int)s,
                            clnet__context_profile(ctx)->info.name,
                            clnet__context_profile(ctx)->info.max_work_group_size);
    return clnet__error(ctx, st, "%s: %s failed: %s (%d)", what, call, clblast_name(s), (int)s);
}

/* ---- CLBlast parameters per device ---------------------------------------- */

/* XGEMM_MIN_INDIRECT_SIZE values that force one kernel: m*n*k < 2^63 always
 * (direct), m*n*k < 1 never (indirect; empty GEMMs never reach CLBlast). */
#define GEMM_ALWAYS_DIRECT ((size_t)1 << 21)
#define GEMM_ALWAYS_INDIRECT 1

static const clnet__gemm_params *params_for(const clnet_context *ctx)
{
    const clnet_device_info *info = &clnet__context_profile(ctx)->info;
    size_t n = sizeof clnet__gemm_param_table / sizeof clnet__gemm_param_table[0];
    for (size_t i = 0; i < n; i++) {
        const clnet__gemm_params *p = &clnet__gemm_param_table[i];
        if (info->type == p->type && strstr(info->platform_name, p->platform))
            return p;
    }
    return NULL;
}

const char *clnet__gemm_params_label(const clnet_context *ctx)
{
    const clnet__gemm_params *p = params_for(ctx);
    return p ? p->label : NULL;
}

/* Gives CLBlast one kernel's parameters, the tuned (1) or CLBlast's own (0)
 * values; kernel 0 or 1 (a forced direct or indirect kernel) replaces the
 * set's direct/indirect threshold. */
static CLBlastStatusCode override_kernel(cl_device_id dev, const clnet__gemm_kernel_params *k,
                                         int tuned, int kernel)
{
    const char *names[CLNET_GEMM_MAX_PARAMS]; /* CLBlast takes them non-const */
    size_t values[CLNET_GEMM_MAX_PARAMS];
    memcpy(names, k->names, k->count * sizeof names[0]);
    memcpy(values, tuned ? k->tuned : k->defaults, k->count * sizeof values[0]);
    if (kernel != 2 && !strcmp(k->kernel, "GemmRoutine"))
        values[0] = kernel == 0 ? GEMM_ALWAYS_DIRECT : GEMM_ALWAYS_INDIRECT;
    return CLBlastOverrideParameters(dev, k->kernel, CLBlastPrecisionSingle, k->count, names,
                                     values);
}

/* Before a GEMM: makes CLBlast use the parameters the variants ask for, when
 * they differ from what this context last gave it. CLBlast's overrides are
 * per device for the whole process (docs/gemm.md): another context on the
 * same device that asks for another set changes this one's speed, never its
 * results, since every set in the table is checked by the gemm suite. */
static clnet_status use_params(clnet_context *ctx, const char *what)
{
    const clnet__gemm_params *p = params_for(ctx);
    if (!p)
        return CLNET_OK; /* CLBlast's own database, untouched */
    int tuned = clnet__variant(ctx, "gemm.params", 1) != 0;
    int kernel = clnet__variant(ctx, "gemm.kernel", 2);
    if (kernel < 0 || kernel > 2)
        kernel = 2;
    int want = CLNET__GEMM_APPLIED(tuned, kernel);
    int *state = clnet__context_gemm_params(ctx);
    if (*state == want || *state == -want)
        return CLNET_OK;
    cl_device_id dev = clnet_context_cl_device(ctx);
    *state = want;
    for (size_t i = 0; i < p->nkernels; i++) {
        CLBlastStatusCode s = override_kernel(dev, &p->kernels[i], tuned, kernel);
        if (s == CLBlastInvalidOverrideKernel || s == CLBlastMissingOverrideParameter)
            *state = -want; /* another CLBlast's names: it keeps its own values */
        else if (s != CLBlastSuccess) {
            *state = 0;
            return clblast_error(ctx, s, "CLBlastOverrideParameters", what);
        }
    }
    return CLNET_OK;
}

int clnet__gemm_params_applied(clnet_context *ctx)
{
    return *clnet__context_gemm_params(ctx);
}

/* ---- GEMM on buffers --------------------------------------------------------- */

/* C = beta * C for k == 0, where CLBlast refuses the dimensions. */
static clnet_status scale_c(clnet_context *ctx, const clnet__gemm_desc *d, const char *what)
{
    size_t batch = d->batch ? d->batch : 1;
    if (d->ldc != d->n || (batch > 1 && d->stride_c != d->m * d->n))
        return clnet__error(ctx, CLNET_ERR_UNSUPPORTED, "%s: k == 0 needs a contiguous C", what);
    cl_kernel k;
    size_t count = batch * d->m * d->n;
    clnet_status st;
    if (d->beta == 0.0f) {
        if ((st = clnet__kernel(ctx, "tensor", NULL, "fill_f32", &k)))
            return st;
        return clnet__launch1d(ctx, k, what,
                               CLNET_ARGS(CLNET_ARG_MEM(d->c), CLNET_ARG_ULONG(d->c_off),
                                          CLNET_ARG_ULONG(count), CLNET_ARG_FLOAT(0.0f)),
                               count);
    }
    if ((st = clnet__kernel(ctx, "elementwise", NULL, "scale", &k)))
        return st;
    return clnet__launch1d(ctx, k, what,
                           CLNET_ARGS(CLNET_ARG_MEM(d->c), CLNET_ARG_ULONG(d->c_off),
                                      CLNET_ARG_MEM(d->c), CLNET_ARG_ULONG(d->c_off),
                                      CLNET_ARG_ULONG(count), CLNET_ARG_FLOAT(d->beta)),
                           count);
}

/* Batched GEMM through CLBlastSgemmBatched, with an offset per item, not
 * CLBlastSgemmStridedBatched: CLBlast 1.5.3's strided form ignores the
 * offset and the stride of an operand its indirect kernel reads in place
 * (one whose sizes are multiples of the tile sizes and that needs no
 * transpose), so a view at a nonzero offset or a shared (stride 0) operand
 * gives wrong results (docs/gemm.md). The batched form takes the offsets
 * per item and copies them to the device itself; it waits for the queue. */
static CLBlastStatusCode gemm_batched(const clnet__gemm_desc *d, size_t batch, cl_command_queue *q,
                                      int *no_memory)
{
    float *scalars = clnet__malloc(2 * batch * sizeof *scalars);
    size_t *offsets = clnet__malloc(3 * batch * sizeof *offsets);
    CLBlastStatusCode s = CLBlastSuccess;
    *no_memory = !scalars || !offsets;
    if (!*no_memory) {
        for (size_t i = 0; i < batch; i++) {
            scalars[i] = d->alpha;
            scalars[batch + i] = d->beta;
            offsets[i] = d->a_off + i * d->stride_a;
            offsets[batch + i] = d->b_off + i * d->stride_b;
            offsets[2 * batch + i] = d->c_off + i * d->stride_c;
        }
        s = CLBlastSgemmBatched(CLBlastLayoutRowMajor,
                                d->trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                d->trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, d->m, d->n,
                                d->k, scalars, d->a, offsets, d->lda, d->b, offsets + batch, d->ldb,
                                scalars + batch, d->c, offsets + 2 * batch, d->ldc, batch, q, NULL);
    }
    clnet__free(scalars);
    clnet__free(offsets);
    return s;
}

/* ---- clnet's own kernel (cl/gemm.cl) ------------------------------------------ */

/* Tile PACK_MR x 16 * PACK_NV, k blocks of at most PACK_KC, groups of
 * PACK_MC rows of packed A swept across B: fixed per device (-D options),
 * measured on pocl (docs/gemm.md). */
#define PACK_MR 8
#define PACK_NV 1
#define PACK_KC ((size_t)256)
#define PACK_MC ((size_t)128)
#define PACK_KU 4 /* cl/gemm.cl's PKU */

/* Tile height, -D options and work-group sizes (1: one tile per group):
 * fixed per device. Rows of 4 beat 6 and 8 on pocl's small GEMMs and tie on
 * large ones (docs/gemm.md); fma only where the device has it (CL_FP_FMA),
 * else mul + add. */
#define OWN_MR 4
#define OWN_NR 16

static size_t round_up(size_t x, size_t to)
{
    return (x + to - 1) / to * to;
}

/* One program for all of clnet's kernels (cl/gemm.cl), so that a GEMM of a
 * new shape never builds one, whichever kernel it takes. */
static void own_options(clnet_context *ctx, char *buf, size_t size)
{
    snprintf(buf, size, "-DGEMM_MR=%d -DGEMM_FMA=%d -DPMR=%d -DPNV=%d", OWN_MR,
             clnet__context_profile(ctx)->fma, PACK_MR, PACK_NV);
}

/* A B^T on gemm_tile_nt: 4 x 4 tiles of dot products along k. */
static clnet_status own_gemm_nt(clnet_context *ctx, const clnet__gemm_desc *d, size_t batch,
                                const char *opts, const char *what)
{
    cl_kernel k;
    clnet_status st = clnet__kernel(ctx, "gemm", opts, "gemm_tile_nt", &k);
    if (st)
        return st;
    int many = batch > 1;
    size_t global[3] = { round_up(d->n, 4) / 4, round_up(d->m, 4) / 4, batch };
    static const size_t local[3] = { 1, 1, 1 };
    return clnet__launch(
        ctx, k, what,
        CLNET_ARGS(
            CLNET_ARG_MEM(d->a), CLNET_ARG_ULONG(d->a_off), CLNET_ARG_ULONG(many ? d->stride_a : 0),
            CLNET_ARG_ULONG(d->lda), CLNET_ARG_MEM(d->b), CLNET_ARG_ULONG(d->b_off),
            CLNET_ARG_ULONG(many ? d->stride_b : 0), CLNET_ARG_ULONG(d->ldb), CLNET_ARG_MEM(d->c),
            CLNET_ARG_ULONG(d->c_off), CLNET_ARG_ULONG(d->ldc),
            CLNET_ARG_ULONG(many ? d->stride_c : 0), CLNET_ARG_UINT(d->m), CLNET_ARG_UINT(d->n),
            CLNET_ARG_UINT(d->k), CLNET_ARG_FLOAT(d->alpha), CLNET_ARG_FLOAT(d->beta)),
        3, global, local);
}

/* The GEMM on clnet's kernels (cl/gemm.cl), reading A and B in place: no
 * workspace, since callers (im2col convolution, the RNNs) keep their own
 * data there across GEMMs. A B^T goes to gemm_tile_nt, everything else to
 * gemm_tile: one GEMM_MR x 16 tile of C per work-item. */
static clnet_status own_gemm(clnet_context *ctx, const clnet__gemm_desc *d, size_t batch,
                             const char *what)
{
    if (d->m > UINT_MAX - OWN_NR || d->n > UINT_MAX - OWN_NR || d->k > UINT_MAX - OWN_NR)
        return clnet__error(ctx, CLNET_ERR_UNSUPPORTED,
                            "%s: m, n or k too large for clnet's GEMM kernel", what);
    char opts[96];
    own_options(ctx, opts, sizeof opts);
    if (d->trans_b && !d->trans_a)
        return own_gemm_nt(ctx, d, batch, opts, what);
    cl_kernel k;
    clnet_status st = clnet__kernel(ctx, "gemm", opts, "gemm_tile", &k);
    if (st)
        return st;
    int many = batch > 1;
    size_t global[3] = { round_up(d->n, OWN_NR) / OWN_NR, round_up(d->m, OWN_MR) / OWN_MR, batch };
    static const size_t local[3] = { 1, 1, 1 };
    /* op(A)[i][p] lies at i * rs + p * cs, op(B)[p][j] at p * rs + j * cs:
     * each operand passes its (rs, cs) after its batch stride. */
    return clnet__launch(
        ctx, k, what,
        CLNET_ARGS(
            CLNET_ARG_MEM(d->a), CLNET_ARG_ULONG(d->a_off), CLNET_ARG_ULONG(many ? d->stride_a : 0),
            CLNET_ARG_ULONG(d->trans_a ? 1 : d->lda), CLNET_ARG_ULONG(d->trans_a ? d->lda : 1),
            CLNET_ARG_MEM(d->b), CLNET_ARG_ULONG(d->b_off), CLNET_ARG_ULONG(many ? d->stride_b : 0),
            CLNET_ARG_ULONG(d->trans_b ? 1 : d->ldb), CLNET_ARG_ULONG(d->trans_b ? d->ldb : 1),
            CLNET_ARG_MEM(d->c), CLNET_ARG_ULONG(d->c_off), CLNET_ARG_ULONG(d->ldc),
            CLNET_ARG_ULONG(many ? d->stride_c : 0), CLNET_ARG_UINT(d->m), CLNET_ARG_UINT(d->n),
            CLNET_ARG_UINT(d->k), CLNET_ARG_FLOAT(d->alpha), CLNET_ARG_FLOAT(d->beta)),
        3, global, local);
}

/* ---- clnet's packed kernel (cl/gemm.cl's gemm_pack, gemm_packed) ------------- */

/* Where a packed GEMM's pieces lie in its scratch (floats): op(A)'s row
 * panels, op(B)'s column panels, then, when k takes several blocks, the
 * partial sums of every tile. */
typedef struct pack_plan {
    size_t mpan, npan, kc, kcp, nblocks;
    size_t bp_off, part_off, floats;
    char opts[96];
} pack_plan;

/* One k block [p0, p0 + kc) of batch entry ib: pack op(A) and op(B) into
 * the scratch in one launch, then the tiles in another. */
static clnet_status packed_block(clnet_context *ctx, const clnet__gemm_desc *d, const pack_plan *pl,
                                 size_t ib, size_t p0, cl_mem ws, const char *what)
{
    cl_kernel kp, kt;
    clnet_status st;
    if ((st = clnet__kernel(ctx, "gemm", pl->opts, "gemm_pack", &kp)) ||
        (st = clnet__kernel(ctx, "gemm", pl->opts, "gemm_packed", &kt)))
        return st;
    size_t kc = d->k - p0 < pl->kc ? d->k - p0 : pl->kc;
    static const size_t one[1] = { 1 };
    size_t panels = pl->mpan + pl->npan, tiles = pl->mpan * pl->npan;
    if ((st = clnet__launch(
             ctx, kp, what,
             CLNET_ARGS(CLNET_ARG_MEM(d->a), CLNET_ARG_ULONG(d->a_off + ib * d->stride_a),
                        CLNET_ARG_ULONG(d->trans_a ? 1 : d->lda),
                        CLNET_ARG_ULONG(d->trans_a ? d->lda : 1), CLNET_ARG_UINT(d->m),
                        CLNET_ARG_MEM(d->b), CLNET_ARG_ULONG(d->b_off + ib * d->stride_b),
                        CLNET_ARG_ULONG(d->trans_b ? 1 : d->ldb),
                        CLNET_ARG_ULONG(d->trans_b ? d->ldb : 1), CLNET_ARG_UINT(d->n),
                        CLNET_ARG_UINT(p0), CLNET_ARG_UINT(kc), CLNET_ARG_UINT(pl->kcp),
                        CLNET_ARG_MEM(ws), CLNET_ARG_ULONG(0)),
             1, &panels, one)))
        return st;
    size_t mcp = PACK_MC / PACK_MR < pl->mpan ? PACK_MC / PACK_MR : pl->mpan;
    return clnet__launch(
        ctx, kt, what,
        CLNET_ARGS(CLNET_ARG_MEM(ws), CLNET_ARG_ULONG(0), CLNET_ARG_ULONG(pl->bp_off),
                   CLNET_ARG_ULONG(pl->part_off), CLNET_ARG_MEM(d->c),
                   CLNET_ARG_ULONG(d->c_off + ib * d->stride_c), CLNET_ARG_ULONG(d->ldc),
                   CLNET_ARG_UINT(d->m), CLNET_ARG_UINT(d->n), CLNET_ARG_UINT(pl->kcp),
                   CLNET_ARG_UINT(mcp), CLNET_ARG_UINT(p0 == 0), CLNET_ARG_UINT(p0 + kc == d->k),
                   CLNET_ARG_FLOAT(d->alpha), CLNET_ARG_FLOAT(d->beta)),
        1, &tiles, one);
}

/* The GEMM on the packed kernel: k in blocks of equal length (at most
 * PACK_KC, or the "gemm.kc" variant), each packed into the GEMM's own
 * scratch (clnet__gemm_scratch), batch entries one after the other. When
 * the scratch cannot be had (the device's allocation or memory limit),
 * nothing is queued and *no_scratch is set. */
static clnet_status own_packed(clnet_context *ctx, const clnet__gemm_desc *d, size_t batch,
                               const char *what, int *no_scratch)
{
    *no_scratch = 0;
    size_t nr = 16 * (size_t)PACK_NV;
    pack_plan pl = { .mpan = (d->m + PACK_MR - 1) / PACK_MR, .npan = (d->n + nr - 1) / nr };
    if (d->m > UINT_MAX - nr || d->n > UINT_MAX - nr || d->k > UINT_MAX - nr ||
        pl.mpan > UINT_MAX / pl.npan)
        return clnet__error(ctx, CLNET_ERR_UNSUPPORTED,
                            "%s: m, n or k too large for clnet's packed GEMM kernel", what);
    int kc_forced = clnet__variant(ctx, "gemm.kc", 0);
    size_t kcmax = kc_forced > 0 ? (size_t)kc_forced : PACK_KC;
    pl.nblocks = (d->k + kcmax - 1) / kcmax;
    pl.kc = (d->k + pl.nblocks - 1) / pl.nblocks;
    pl.kcp = round_up(pl.kc, PACK_KU);
    pl.bp_off = pl.mpan * PACK_MR * pl.kcp;
    pl.part_off = pl.bp_off + pl.npan * nr * pl.kcp;
    pl.floats = pl.part_off + (pl.nblocks > 1 ? pl.mpan * pl.npan * PACK_MR * nr : 0);
    own_options(ctx, pl.opts, sizeof pl.opts);
    /* Past the device's largest allocation, unforced: the caller falls back
     * quietly (a refused allocation would report an error on a call that
     * succeeds). */
    uint64_t max_alloc = clnet__context_profile(ctx)->info.max_alloc_bytes;
    if (max_alloc && pl.floats * sizeof(float) > max_alloc &&
        clnet__variant(ctx, "gemm.kernel", -1) < 0) {
        *no_scratch = 1;
        return CLNET_ERR_TOO_LARGE;
    }
    cl_mem ws;
    clnet_status st = clnet__gemm_scratch(ctx, pl.floats * sizeof(float), &ws);
    *no_scratch = st == CLNET_ERR_TOO_LARGE || st == CLNET_ERR_DEVICE_MEMORY;
    for (size_t ib = 0; ib < batch && !st; ib++)
        for (size_t p0 = 0; p0 < d->k && !st; p0 += pl.kc)
            st = packed_block(ctx, d, &pl, ib, p0, ws, what);
    return st;
}

/* Which of clnet's kernels a CPU device runs (docs/gemm.md, measured): the
 * packed one from 2^27 (512^3) multiply-adds per batch entry when n >= 256 (read in
 * place, rows of B far apart thrash the cache; with fewer columns they do
 * not, and packing only costs); below that, for single GEMMs of at least
 * 32 x 32, when B is transposed and gemm_tile_nt would do badly: A^T B^T
 * (gathered element by element) or k <= 128 or k % 16 != 0 (its scalar
 * tail). Everything else, batches of small GEMMs included (the packed
 * kernel launches twice per entry and k block), runs on gemm_tile. */
#define PACKED_MIN_MNK ((size_t)1 << 27)

int clnet__gemm_cpu_kernel(const clnet__gemm_desc *d)
{
    size_t batch = d->batch ? d->batch : 1;
    if (d->k == 0)
        return CLNET_V_GEMM_OWN; /* nothing to multiply (clnet__gemm scales C first) */
    int large = d->k >= PACKED_MIN_MNK || d->m * d->n > (PACKED_MIN_MNK - 1) / d->k;
    if (large && d->n >= 256)
        return CLNET_V_GEMM_PACKED;
    int bad_nt = d->trans_b && (d->trans_a || d->k <= 128 || d->k % 16);
    if (batch == 1 && d->m >= 32 && d->n >= 32 && bad_nt)
        return CLNET_V_GEMM_PACKED;
    return CLNET_V_GEMM_OWN;
}

/* "gemm.kernel" unforced: CLNET_GEMM_KERNEL=own, packed or clblast in the
 * environment, else clnet__gemm_cpu_kernel on CPU devices, CLBlast on every
 * other device. */
static int default_kernel(const clnet_context *ctx, const clnet__gemm_desc *d)
{
    static const int from_env[] = { CLNET_V_GEMM_OWN, CLNET_V_GEMM_PACKED, 2 };
    int env = clnet__context_profile(ctx)->env.gemm_kernel; /* checked at creation */
    if (env >= 0)
        return from_env[env];
    if (clnet__context_profile(ctx)->info.type != CLNET_DEVICE_CPU)
        return 2;
    return clnet__gemm_cpu_kernel(d);
}

clnet_status clnet__gemm(clnet_context *ctx, const clnet__gemm_desc *d, const char *what)
{
    size_t batch = d->batch ? d->batch : 1;
    if (d->m == 0 || d->n == 0)
        return CLNET_OK;
    if (d->k == 0)
        return scale_c(ctx, d, what);
    int kernel = clnet__variant(ctx, "gemm.kernel", default_kernel(ctx, d));
    if (kernel == CLNET_V_GEMM_OWN)
        return own_gemm(ctx, d, batch, what);
    if (kernel == CLNET_V_GEMM_PACKED) {
        int no_scratch;
        clnet_status st = own_packed(ctx, d, batch, what, &no_scratch);
        /* No room for its scratch: unless forced, the in-place kernel, which
         * needs none, runs instead (CLBlast would need temporaries too). */
        if (no_scratch && clnet__variant(ctx, "gemm.kernel", -1) < 0)
            return own_gemm(ctx, d, batch, what);
        return st;
    }
    clnet_status st = use_params(ctx, what);
    if (st)
        return st;
    cl_command_queue q = clnet_context_cl_queue(ctx);
    CLBlastStatusCode s;
    const char *call;
    if (batch == 1) {
        call = "CLBlastSgemm";
        s = CLBlastSgemm(
            CLBlastLayoutRowMajor, d->trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
            d->trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, d->m, d->n, d->k, d->alpha, d->a,
            d->a_off, d->lda, d->b, d->b_off, d->ldb, d->beta, d->c, d->c_off, d->ldc, &q, NULL);
    } else {
        int no_memory;
        call = "CLBlastSgemmBatched";
        s = gemm_batched(d, batch, &q, &no_memory);
        if (no_memory)
            return clnet__error(ctx, CLNET_ERR_HOST_MEMORY,
                                "%s: out of host memory for %zu offsets", what, 3 * batch);
    }
    if (s != CLBlastSuccess)
        return clblast_error(ctx, s, call, what);
    return CLNET_OK;
}

/* ---- The public calls on tensors ------------------------------------------- */

/* The tables of clnet_gemm (2-D) and clnet_gemm_batched (3-D): c
 * overlaps neither a nor b. */
static const clnet__tspec gemm_spec[] = {
    { .name = "a", .rank = 2 },
    { .name = "b", .rank = 2 },
    { .name = "c", .flags = CLNET_T_OUT, .rank = 2 },
};
static const clnet__tspec gemm_batched_spec[] = {
    { .name = "a", .rank = 3 },
    { .name = "b", .rank = 3 },
    { .name = "c", .flags = CLNET_T_OUT, .rank = 3 },
};

/* Checks what the table cannot say about a checked op of `dims`
 * dimensions (2 or 3) and fills the description. */
static clnet_status describe(const clnet__op *op, int dims, clnet_trans trans_a,
                             clnet_trans trans_b, float alpha, float beta, clnet__gemm_desc *d)
{
    const clnet_tensor *a = op->t[0], *b = op->t[1], *c = op->t[2];
    if ((trans_a != CLNET_NO_TRANS && trans_a != CLNET_TRANS) ||
        (trans_b != CLNET_NO_TRANS && trans_b != CLNET_TRANS))
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG,
                              "trans_a is %d, trans_b %d (want CLNET_NO_TRANS or CLNET_TRANS)",
                              (int)trans_a, (int)trans_b);
    int o = dims - 2; /* index of the row dimension */
    size_t ar = (size_t)a->shape[o], ac = (size_t)a->shape[o + 1];
    size_t br = (size_t)b->shape[o], bc = (size_t)b->shape[o + 1];
    size_t m = trans_a ? ac : ar, ka = trans_a ? ar : ac;
    size_t kb = trans_b ? bc : br, n = trans_b ? br : bc;
    if (ka != kb)
        return clnet__op_fail(op, CLNET_ERR_SHAPE,
                              "b: op(b) is %zux%zu, op(a) %zux%zu: op(b) needs %zu rows (b%s)", kb,
                              n, m, ka, ka, trans_b ? " transposed" : "");
    /* c's batch is the call's; a batch of 1 in a or b is shared. */
    const int64_t want[3] = { c->shape[0], (int64_t)m, (int64_t)n };
    clnet_status st = clnet__op_want_shape(op, 2, dims, dims == 3 ? want : want + 1);
    if (st)
        return st;
    for (int i = 0; i < 2 && dims == 3; i++)
        if (op->t[i]->shape[0] != c->shape[0] && op->t[i]->shape[0] != 1)
            return clnet__op_fail(
                op, CLNET_ERR_SHAPE, "%s: batch %lld, c has %lld (a batch of 1 is shared)",
                op->spec[i].name, (long long)op->t[i]->shape[0], (long long)c->shape[0]);
    /* CLBlast passes offsets to its kernels as int. */
    for (int i = 0; i < 3; i++)
        if (op->t[i]->offset + op->t[i]->numel > (size_t)INT_MAX)
            return clnet__op_fail(op, CLNET_ERR_UNSUPPORTED,
                                  "%s: ends at element %zu; CLBlast indexes with int",
                                  op->spec[i].name, op->t[i]->offset + op->t[i]->numel);
    int shared_a = dims == 3 && a->shape[0] == 1, shared_b = dims == 3 && b->shape[0] == 1;
    *d = (clnet__gemm_desc){
        .trans_a = trans_a == CLNET_TRANS,
        .trans_b = trans_b == CLNET_TRANS,
        .m = m,
        .n = n,
        .k = ka,
        .alpha = alpha,
        .beta = beta,
        .a = clnet__mem(a),
        .a_off = a->offset,
        .lda = ac,
        .stride_a = shared_a ? 0 : ar * ac,
        .b = clnet__mem(b),
        .b_off = b->offset,
        .ldb = bc,
        .stride_b = shared_b ? 0 : br * bc,
        .c = clnet__mem(c),
        .c_off = c->offset,
        .ldc = n,
        .stride_c = m * n,
        .batch = dims == 3 ? (size_t)c->shape[0] : 1,
    };
    return CLNET_OK;
}

CLNET_API clnet_status clnet_gemm(clnet_trans trans_a, clnet_trans trans_b, float alpha,
                                  const clnet_tensor *a, const clnet_tensor *b, float beta,
                                  clnet_tensor *c)
{
    clnet__op op;
    clnet__gemm_desc d;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, gemm_spec, a, b, c);
    if (st || (st = describe(&op, 2, trans_a, trans_b, alpha, beta, &d)))
        return st;
    return clnet__gemm(op.ctx, &d, op.func);
}

CLNET_API clnet_status clnet_gemm_batched(clnet_trans trans_a, clnet_trans trans_b, float alpha,
                                          const clnet_tensor *a, const clnet_tensor *b, float beta,
                                          clnet_tensor *c)
{
    clnet__op op;
    clnet__gemm_desc d;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, gemm_batched_spec, a, b, c);
    if (st || (st = describe(&op, 3, trans_a, trans_b, alpha, beta, &d)) || d.batch == 0)
        return st;
    return clnet__gemm(op.ctx, &d, op.func);
}
