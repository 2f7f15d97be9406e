/* clnet — 2-D convolution, NCHW float32 (cl/conv.cl): the geometry, the
 * im2col + GEMM and 1x1-GEMM implementations of each direction, the choice
 * among them and the direct ones (src/ops/conv_direct.c), and the public
 * calls, the transposed convolution reusing them with the roles swapped. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "clnet/act.h"
#include "clnet/conv.h"
#include "ops/conv_direct.h"
#include "ops/conv_impl.h"
#include "gemm.h"
#include "tensor/tensor_impl.h"

/* Implementations, chosen per call by shape and passed through
 * clnet__variant(ctx, "conv2d.<direction>", v) so tests can force each one.
 * A forced variant that does not apply to the shape falls back to im2col.
 * The values are CLNET_V_CONV_* of src/runtime/knobs.h. */

/* The workspace an op asks for at most (before chunking the batch), unless a
 * single image needs more. "conv2d.chunk" forces the images per chunk. */
#define WORKSPACE_BUDGET ((size_t)64 << 20)

/* On CPUs (pocl) the direct kernels beat im2col + CLBlast 3-10x on every
 * shape measured (1x1 to 5x5, 1 to 256 channels, 7x7 to 56x56). Elsewhere
 * (GPUs, unmeasured) they are used only for short reductions, where GEMM
 * cannot fill the device, and never for the filter gradient, whose direct
 * kernel runs K*C*R*S/64 work-items. */
#define DIRECT_MAX_REDUCTION 576

/* ---- Argument checks ------------------------------------------------------ */

/* Checks the geometry of a call whose tensors passed its table and fills g
 * (src/ops/conv_impl.h names the roles). For a convolution y's shape is
 * derived from x and w; for a transposed one (transpose = 1) x's from y and
 * w. The derived tensor is the one the message blames. */
static clnet_status geometry(const clnet__op *op, const clnet_conv2d_params *p, int transpose,
                             clnet__conv_roles r, geom *g)
{
    clnet_status st;
    if ((st = clnet__conv_check_dims(op)) || (st = clnet__conv_check_params(op, p, transpose)) ||
        (st = clnet__conv_check_channels(op, r, 1, transpose)))
        return st;
    const clnet_tensor *xt = op->t[r.x], *wt = op->t[r.w], *yt = op->t[r.y];
    int64_t want[4];
    if (!transpose && clnet_conv2d_output_shape(p, xt->shape, wt->shape, want))
        return clnet__conv_fail_empty(op, p, r);
    if (transpose && clnet_conv2d_transpose_output_shape(p, yt->shape, wt->shape, want)) {
        char ys[96], ws[96];
        return clnet__op_fail(op, CLNET_ERR_SHAPE,
                              "%s %s and %s %s give an empty output with these params",
                              op->spec[r.y].name, clnet__tensor_shape_str(yt, ys, sizeof ys),
                              op->spec[r.w].name, clnet__tensor_shape_str(wt, ws, sizeof ws));
    }
    if ((st = clnet__op_want_shape(op, transpose ? r.x : r.y, 4, want)) ||
        (st = clnet__conv_check_extent(op, p, r)))
        return st;
    /* The bias: one per output channel (the transpose's are C). */
    if (r.b >= 0 && (st = clnet__op_want_shape(
                         op, r.b, 1, (const int64_t[]){ transpose ? xt->shape[1] : wt->shape[0] })))
        return st;
    *g = (geom){ (int)xt->shape[0], (int)xt->shape[1], (int)xt->shape[2], (int)xt->shape[3],
                 (int)wt->shape[0], (int)wt->shape[2], (int)wt->shape[3], (int)yt->shape[2],
                 (int)yt->shape[3], p->stride_h,       p->stride_w,       p->pad_top,
                 p->pad_bottom,     p->pad_left,       p->pad_right,      p->dilation_h,
                 p->dilation_w };
    return CLNET_OK;
}

/* ---- Kernel launches ---------------------------------------------------- */

/* The geometry arguments (GEOM in cl/conv.cl). */
#define GEOM_ARGS(g)                                                                               \
    CLNET_ARG_INT((g)->c), CLNET_ARG_INT((g)->h), CLNET_ARG_INT((g)->w), CLNET_ARG_INT((g)->r),    \
        CLNET_ARG_INT((g)->s), CLNET_ARG_INT((g)->oh), CLNET_ARG_INT((g)->ow),                     \
        CLNET_ARG_INT((g)->sh), CLNET_ARG_INT((g)->sw), CLNET_ARG_INT((g)->pt),                    \
        CLNET_ARG_INT((g)->pl), CLNET_ARG_INT((g)->dh), CLNET_ARG_INT((g)->dw)

/* im2col of nb images starting at element xo of x into col at co. */
static clnet_status im2col(clnet_context *ctx, const char *func, const geom *g, cl_mem x, size_t xo,
                           cl_mem col, size_t co, size_t sn, size_t scrs, int nb)
{
    return LAUNCH(ctx, func, "im2col", (size_t)nb * g->c * g->r * g->s * g->oh, CLNET_ARG_MEM(x),
                  CLNET_ARG_ULONG(xo), CLNET_ARG_MEM(col), CLNET_ARG_ULONG(co), CLNET_ARG_ULONG(sn),
                  CLNET_ARG_ULONG(scrs), CLNET_ARG_INT(nb), GEOM_ARGS(g));
}

/* col2im of nb images from col at co into dx at xo, plus the bias b if any. */
static clnet_status col2im(clnet_context *ctx, const char *func, const geom *g, cl_mem col,
                           size_t co, size_t sn, size_t scrs, const clnet_tensor *b, cl_mem dx,
                           size_t xo, int nb)
{
    return LAUNCH(ctx, func, "col2im", (size_t)nb * g->c * g->h, CLNET_ARG_MEM(col),
                  CLNET_ARG_ULONG(co), CLNET_ARG_ULONG(sn), CLNET_ARG_ULONG(scrs),
                  CLNET_ARG_MEM(b ? clnet__mem(b) : col), CLNET_ARG_ULONG(b ? b->offset : 0),
                  CLNET_ARG_INT(b != NULL), CLNET_ARG_MEM(dx), CLNET_ARG_ULONG(xo),
                  CLNET_ARG_INT(nb), GEOM_ARGS(g));
}

/* dst (B, A, P) = src (A, B, P) with the first two axes swapped. */
static clnet_status swap01(clnet_context *ctx, const char *func, cl_mem src, size_t so, cl_mem dst,
                           size_t dso, size_t A, size_t B, size_t P)
{
    return LAUNCH(ctx, func, "swap01", A * B, CLNET_ARG_MEM(src), CLNET_ARG_ULONG(so),
                  CLNET_ARG_MEM(dst), CLNET_ARG_ULONG(dso), CLNET_ARG_INT(A), CLNET_ARG_INT(B),
                  CLNET_ARG_INT(P));
}

/* y (N, K, P) += b[K]. */
static clnet_status bias_add(clnet_context *ctx, const char *func, const clnet_tensor *y,
                             const clnet_tensor *b, int K, size_t P)
{
    return LAUNCH(ctx, func, "bias_add", y->numel, CLNET_ARG_TENSOR(y), CLNET_ARG_TENSOR(b),
                  CLNET_ARG_INT(K), CLNET_ARG_INT(P), CLNET_ARG_ULONG(y->numel));
}

/* Fills t with zeros, then adds the bias b (channels = dim 1) if any. */
static clnet_status zero_plus_bias(clnet_context *ctx, const char *func, clnet_tensor *t,
                                   const clnet_tensor *b)
{
    clnet_status st = clnet_tensor_fill(t, 0.0);
    if (st || !b)
        return st;
    return bias_add(ctx, func, t, b, (int)t->shape[1], (size_t)(t->shape[2] * t->shape[3]));
}

/* ---- Implementations ------------------------------------------------------ */

static int is_1x1(const geom *g)
{
    return g->r == 1 && g->s == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pb == 0 &&
           g->pl == 0 && g->pr == 0;
}

size_t clnet__conv_chunk_images(const clnet_context *ctx, size_t per_image, size_t n)
{
    size_t budget = WORKSPACE_BUDGET;
    uint64_t max_alloc = clnet__context_profile(ctx)->info.max_alloc_bytes;
    if (max_alloc && budget > max_alloc)
        budget = (size_t)max_alloc;
    size_t fit = budget / (per_image * sizeof(float) + 1);
    if (fit > n)
        fit = n;
    if (fit > INT_MAX)
        fit = INT_MAX;
    int forced = clnet__variant(ctx, "conv2d.chunk", fit < 1 ? 1 : (int)fit);
    return forced < 1 ? 1 : (size_t)forced > n ? n : (size_t)forced;
}

/* The implementation for a reduction of `reduction` terms per output. On
 * CPUs conv_wide beat conv_packed 1.3-2x on every stride-1 shape measured
 * (docs/ops.md); strided data gradients (conv_wide's stores are then
 * scalar) keep conv_packed, unmeasured. */
static int choose(const clnet_context *ctx, const geom *g, size_t reduction)
{
    if (clnet__context_profile(ctx)->info.type == CLNET_DEVICE_CPU)
        return g->sh == 1 && g->sw == 1 ? CLNET_V_CONV_WIDE : CLNET_V_CONV_DIRECT;
    return is_1x1(g)                           ? CLNET_V_CONV_GEMM1X1
           : reduction <= DIRECT_MAX_REDUCTION ? CLNET_V_CONV_DIRECT
                                               : CLNET_V_CONV_IM2COL;
}

/* The filter gradient's implementation. On CPUs, for stride 1, the one whose
 * lanes do more useful work: conv_filter_wide fills OW of each row's
 * ceil(OW/8)*8 lanes, conv_filter K*CRS of round8(K)*round8(CRS) (measured:
 * conv1 81% vs 56%, wide 2.5-4x faster; conv2 69% vs 100%, wide 1.6x
 * slower; 56x56 both 100%, wide 1.3x faster). */
static int choose_filter(const clnet_context *ctx, const geom *g)
{
    if (clnet__context_profile(ctx)->info.type != CLNET_DEVICE_CPU)
        return choose(ctx, g, SIZE_MAX);
    double crs = (double)g->c * g->r * g->s;
    double wide = g->ow / (8 * ceil(g->ow / 8.0));
    double packed = g->k * crs / (8 * ceil(g->k / 8.0) * 8 * ceil(crs / 8));
    return g->sh == 1 && g->sw == 1 && wide >= packed ? CLNET_V_CONV_WIDE : CLNET_V_CONV_DIRECT;
}

/* y = conv(x, w) + b for a checked, non-empty geometry. */
static clnet_status forward(clnet_context *ctx, const char *func, const geom *g,
                            const clnet_tensor *x, const clnet_tensor *w, const clnet_tensor *b,
                            const clnet_tensor *y)
{
    size_t crs = (size_t)g->c * g->r * g->s, P = (size_t)g->oh * g->ow, K = (size_t)g->k;
    size_t chw = (size_t)g->c * g->h * g->w, N = (size_t)g->n;
    int v = clnet__variant(ctx, "conv2d.forward", choose(ctx, g, crs));
    clnet_status st;
    clnet__gemm_desc d = { .m = K,
                           .n = P,
                           .k = crs,
                           .alpha = 1,
                           .beta = 0,
                           .a = clnet__mem(w),
                           .a_off = w->offset,
                           .lda = crs,
                           .stride_a = 0,
                           .ldb = P,
                           .c = clnet__mem(y),
                           .ldc = P,
                           .stride_c = K * P };
    if (v == CLNET_V_CONV_DIRECT || v == CLNET_V_CONV_WIDE)
        return clnet__conv_forward_direct(ctx, func, g, x, w, b, y, v == CLNET_V_CONV_WIDE);
    if (v == CLNET_V_CONV_GEMM1X1 && is_1x1(g)) {
        d.b = clnet__mem(x);
        d.b_off = x->offset;
        d.stride_b = chw;
        d.c_off = y->offset;
        d.batch = N;
        st = clnet__gemm(ctx, &d, func);
        return st || !b ? st : bias_add(ctx, func, y, b, g->k, P);
    }
    size_t nb = clnet__conv_chunk_images(ctx, crs * P, N);
    cl_mem ws;
    if ((st = clnet__workspace(ctx, nb * crs * P * sizeof(float), &ws)))
        return st;
    d.b = ws;
    d.stride_b = crs * P;
    for (size_t n0 = 0; n0 < N && !st; n0 += nb) {
        size_t cnt = clnet__conv_min(nb, N - n0);
        d.c_off = y->offset + n0 * K * P;
        d.batch = cnt;
        if (!(st = im2col(ctx, func, g, clnet__mem(x), x->offset + n0 * chw, ws, 0, crs * P, P,
                          (int)cnt)))
            st = clnet__gemm(ctx, &d, func);
    }
    return st || !b ? st : bias_add(ctx, func, y, b, g->k, P);
}

/* dx = the data gradient (+ b, for the transposed convolution). */
static clnet_status backward_data(clnet_context *ctx, const char *func, const geom *g,
                                  const clnet_tensor *w, const clnet_tensor *dy,
                                  const clnet_tensor *b, const clnet_tensor *dx)
{
    size_t crs = (size_t)g->c * g->r * g->s, P = (size_t)g->oh * g->ow, K = (size_t)g->k;
    size_t chw = (size_t)g->c * g->h * g->w, N = (size_t)g->n;
    int v = clnet__variant(ctx, "conv2d.backward_data", choose(ctx, g, K * g->r * g->s));
    clnet_status st;
    clnet__gemm_desc d = { .trans_a = 1,
                           .m = crs,
                           .n = P,
                           .k = K,
                           .alpha = 1,
                           .beta = 0,
                           .a = clnet__mem(w),
                           .a_off = w->offset,
                           .lda = crs,
                           .stride_a = 0,
                           .b = clnet__mem(dy),
                           .ldb = P,
                           .stride_b = K * P,
                           .ldc = P };
    if (v == CLNET_V_CONV_DIRECT || v == CLNET_V_CONV_WIDE)
        return clnet__conv_backward_data_direct(ctx, func, g, w, dy, b, dx, v == CLNET_V_CONV_WIDE);
    if (v == CLNET_V_CONV_GEMM1X1 && is_1x1(g)) {
        d.b_off = dy->offset;
        d.c = clnet__mem(dx);
        d.c_off = dx->offset;
        d.stride_c = chw;
        d.batch = N;
        st = clnet__gemm(ctx, &d, func);
        return st || !b ? st : bias_add(ctx, func, dx, b, g->c, (size_t)g->h * g->w);
    }
    size_t nb = clnet__conv_chunk_images(ctx, crs * P, N);
    cl_mem ws;
    if ((st = clnet__workspace(ctx, nb * crs * P * sizeof(float), &ws)))
        return st;
    d.c = ws;
    d.c_off = 0;
    d.stride_c = crs * P;
    for (size_t n0 = 0; n0 < N && !st; n0 += nb) {
        size_t cnt = clnet__conv_min(nb, N - n0);
        d.b_off = dy->offset + n0 * K * P;
        d.batch = cnt;
        if (!(st = clnet__gemm(ctx, &d, func)))
            st = col2im(ctx, func, g, ws, 0, crs * P, P, b, clnet__mem(dx), dx->offset + n0 * chw,
                        (int)cnt);
    }
    return st;
}

/* dw = sum over images of dy[n] (K x P) * col[n]^T, image by image for the
 * 1x1 GEMM, else in chunks: the chunk's columns as one CRS x (cnt*P) matrix
 * and dy's as K x (cnt*P) (permuted unless cnt == 1), one GEMM per chunk
 * accumulating into dw after the first. */
static clnet_status backward_filter(clnet_context *ctx, const char *func, const geom *g,
                                    const clnet_tensor *x, const clnet_tensor *dy,
                                    const clnet_tensor *dw)
{
    size_t crs = (size_t)g->c * g->r * g->s, P = (size_t)g->oh * g->ow, K = (size_t)g->k;
    size_t chw = (size_t)g->c * g->h * g->w, N = (size_t)g->n;
    int v = clnet__variant(ctx, "conv2d.backward_filter", choose_filter(ctx, g));
    clnet_status st = CLNET_OK;
    if (v == CLNET_V_CONV_DIRECT || v == CLNET_V_CONV_WIDE)
        return clnet__conv_backward_filter_direct(ctx, func, g, x, dy, dw, v == CLNET_V_CONV_WIDE);
    clnet__gemm_desc d = { .trans_b = 1,
                           .m = K,
                           .n = crs,
                           .alpha = 1,
                           .c = clnet__mem(dw),
                           .c_off = dw->offset,
                           .ldc = crs };
    if (v == CLNET_V_CONV_GEMM1X1 && is_1x1(g)) {
        d.k = d.lda = d.ldb = P;
        d.a = clnet__mem(dy);
        d.b = clnet__mem(x);
        for (size_t n = 0; n < N && !st; n++) {
            d.a_off = dy->offset + n * K * P;
            d.b_off = x->offset + n * chw;
            d.beta = n ? 1.0f : 0.0f;
            st = clnet__gemm(ctx, &d, func);
        }
        return st;
    }
    size_t nb = clnet__conv_chunk_images(ctx, crs * P + K * P, N);
    cl_mem ws;
    size_t dy_at = nb * crs * P; /* the permuted dy after the columns */
    if ((st = clnet__workspace(ctx, (dy_at + (nb > 1 ? nb * K * P : 0)) * sizeof(float), &ws)))
        return st;
    d.b = ws;
    d.b_off = 0;
    for (size_t n0 = 0; n0 < N && !st; n0 += nb) {
        size_t cnt = clnet__conv_min(nb, N - n0);
        d.k = d.lda = d.ldb = cnt * P;
        d.beta = n0 ? 1.0f : 0.0f;
        if (cnt == 1) {
            d.a = clnet__mem(dy);
            d.a_off = dy->offset + n0 * K * P;
        } else {
            d.a = ws;
            d.a_off = dy_at;
            st = swap01(ctx, func, clnet__mem(dy), dy->offset + n0 * K * P, ws, dy_at, cnt, K, P);
        }
        if (!st)
            st = im2col(ctx, func, g, clnet__mem(x), x->offset + n0 * chw, ws, 0, P, cnt * P,
                        (int)cnt);
        if (!st)
            st = clnet__gemm(ctx, &d, func);
    }
    return st;
}

/* ---- Public entry points -------------------------------------------------- */

/* The transposed convolution's input plays the convolution's y (or dy)
 * and its output the convolution's x (or dx). */
static const clnet__conv_roles transpose_forward_roles = { .x = 3, .w = 1, .y = 0, .b = 2 };
static const clnet__conv_roles transpose_backward_data_roles = { .x = 1, .w = 0, .y = 2, .b = -1 };
static const clnet__conv_roles transpose_backward_filter_roles = {
    .x = 1, .w = 2, .y = 0, .b = -1
};

enum direction { FORWARD, BACKWARD_DATA, BACKWARD_FILTER };

/* One direction in convolution roles r of a checked op: the geometry, the
 * empty cases (an empty output: nothing; an empty reduction: zeros, plus
 * the bias), then the implementation. */
static clnet_status run(const clnet__op *op, const clnet_conv2d_params *p, int transpose,
                        clnet__conv_roles r, enum direction dir)
{
    geom g;
    clnet_status st = geometry(op, p, transpose, r, &g);
    if (st)
        return st;
    const clnet_tensor *x = op->t[r.x], *w = op->t[r.w], *y = op->t[r.y];
    const clnet_tensor *b = r.b >= 0 ? op->t[r.b] : NULL;
    /* The output of the direction, and the two tensors it reduces over. */
    const clnet_tensor *out = dir == FORWARD ? y : dir == BACKWARD_DATA ? x : w;
    const clnet_tensor *in0 = dir == FORWARD ? x : y, *in1 = dir == BACKWARD_FILTER ? x : w;
    if (out->numel == 0)
        return CLNET_OK;
    if (in0->numel == 0 || in1->numel == 0)
        return zero_plus_bias(op->ctx, op->func, (clnet_tensor *)out, b);
    if (dir == FORWARD)
        return forward(op->ctx, op->func, &g, x, w, b, y);
    if (dir == BACKWARD_DATA)
        return backward_data(op->ctx, op->func, &g, w, y, b, x);
    return backward_filter(op->ctx, op->func, &g, x, y, w);
}

/* Checks a public function's tensors against its table, then runs. */
#define CHECK_AND_RUN(spec, transpose, roles, dir, ...)                                            \
    check_and_run(__func__, (spec), (int)(sizeof(spec) / sizeof((spec)[0])),                       \
                  (const clnet_tensor *const[]){ __VA_ARGS__ }, p, (transpose), (roles), (dir))

static clnet_status check_and_run(const char *func, const clnet__tspec *spec, int count,
                                  const clnet_tensor *const *ts, const clnet_conv2d_params *p,
                                  int transpose, clnet__conv_roles r, enum direction dir)
{
    clnet__op op;
    clnet_status st = clnet__op_check(&op, func, spec, count, ts);
    return st ? st : run(&op, p, transpose, r, dir);
}

CLNET_API clnet_status clnet_conv2d_forward(const clnet_conv2d_params *p, const clnet_tensor *x,
                                            const clnet_tensor *w, const clnet_tensor *b,
                                            clnet_tensor *y)
{
    return CHECK_AND_RUN(clnet__conv_forward_spec, 0, clnet__conv_forward_roles, FORWARD, x, w, b,
                         y);
}

CLNET_API clnet_status clnet_conv2d_backward_data(const clnet_conv2d_params *p,
                                                  const clnet_tensor *w, const clnet_tensor *dy,
                                                  clnet_tensor *dx)
{
    return CHECK_AND_RUN(clnet__conv_backward_data_spec, 0, clnet__conv_backward_data_roles,
                         BACKWARD_DATA, w, dy, dx);
}

CLNET_API clnet_status clnet_conv2d_backward_filter(const clnet_conv2d_params *p,
                                                    const clnet_tensor *x, const clnet_tensor *dy,
                                                    clnet_tensor *dw)
{
    return CHECK_AND_RUN(clnet__conv_backward_filter_spec, 0, clnet__conv_backward_filter_roles,
                         BACKWARD_FILTER, x, dy, dw);
}

CLNET_API clnet_status clnet_conv2d_transpose_forward(const clnet_conv2d_params *p,
                                                      const clnet_tensor *x, const clnet_tensor *w,
                                                      const clnet_tensor *b, clnet_tensor *y)
{
    /* The transpose's forward is the convolution's data gradient. */
    return CHECK_AND_RUN(clnet__conv_forward_spec, 1, transpose_forward_roles, BACKWARD_DATA, x, w,
                         b, y);
}

CLNET_API clnet_status clnet_conv2d_transpose_backward_data(const clnet_conv2d_params *p,
                                                            const clnet_tensor *w,
                                                            const clnet_tensor *dy,
                                                            clnet_tensor *dx)
{
    return CHECK_AND_RUN(clnet__conv_backward_data_spec, 1, transpose_backward_data_roles, FORWARD,
                         w, dy, dx);
}

CLNET_API clnet_status clnet_conv2d_transpose_backward_filter(const clnet_conv2d_params *p,
                                                              const clnet_tensor *x,
                                                              const clnet_tensor *dy,
                                                              clnet_tensor *dw)
{
    return CHECK_AND_RUN(clnet__conv_backward_filter_spec, 1, transpose_backward_filter_roles,
                         BACKWARD_FILTER, x, dy, dw);
}

static const clnet__tspec backward_bias_spec[] = {
    { .name = "dy", .rank = 4 },
    { .name = "db", .flags = CLNET_T_OUT, .rank = 1 },
};

CLNET_API clnet_status clnet_conv2d_backward_bias(const clnet_tensor *dy, clnet_tensor *db)
{
    clnet__op op;
    clnet_status st = CLNET_OP_CHECK(&op, __func__, backward_bias_spec, dy, db);
    if (st || (st = clnet__op_want_shape(&op, 1, 1, (const int64_t[]){ dy->shape[1] })))
        return st;
    /* The same sum as the channel bias of clnet/act.h: two levels, in a
     * fixed order, with enough work-groups for every compute unit. */
    return clnet_bias_backward(dy, db);
}
