/* clnet — 2-D convolution, NCHW float32 (cl/conv.cl, cl/conv_wide.cl):
 * argument checks, the im2col + GEMM, 1x1-GEMM and direct implementations of
 * each direction, and the transposed convolution, which reuses them with the
 * roles swapped. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "clnet/act.h"
#include "clnet/conv.h"
#include "conv_impl.h"
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

/* The geometry of the convolution from (n, c, h, w) to (n, k, oh, ow). */
typedef struct geom {
    int n, c, h, w, k, r, s, oh, ow;
    int sh, sw, pt, pb, pl, pr, dh, dw;
} geom;

/* ---- Argument checks ------------------------------------------------------ */

static void shape_str(char *buf, size_t size, const int64_t *s)
{
    snprintf(buf, size, "%lldx%lldx%lldx%lld", (long long)s[0], (long long)s[1], (long long)s[2],
             (long long)s[3]);
}

static clnet_status check_params(clnet_context *ctx, const char *func, const clnet_conv2d_params *p,
                                 int transpose)
{
    if (!p)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: params is NULL",
                            func);
    if (p->stride_h < 1 || p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: stride %dx%d and dilation %dx%d must be >= 1",
                            func, p->stride_h, p->stride_w, p->dilation_h, p->dilation_w);
    if (p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: negative padding (top %d, bottom %d, left %d, "
                            "right %d)",
                            func, p->pad_top, p->pad_bottom, p->pad_left, p->pad_right);
    if (transpose && (p->output_pad_h < 0 || p->output_pad_h >= p->stride_h ||
                      p->output_pad_w < 0 || p->output_pad_w >= p->stride_w))
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "%s: invalid argument: output_pad %dx%d must lie in [0, stride %dx%d)",
                            func, p->output_pad_h, p->output_pad_w, p->stride_h, p->stride_w);
    return CLNET_OK;
}

clnet_status clnet__conv_check_tensor(clnet_context *ctx, const char *func, const clnet_tensor *t,
                                      const char *name, int ndim)
{
    if (!t)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: %s is NULL", func,
                            name);
    if (t->ctx != ctx)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: %s belongs to another context", func,
                            name);
    if (t->dtype != CLNET_F32 || t->ndim != ndim)
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "%s: %s must be a %d-D float32 tensor (is %d-D%s)", func, name, ndim,
                            t->ndim, t->dtype == CLNET_F32 ? "" : ", not float32");
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] > INT_MAX)
            return clnet__error(ctx, CLNET_ERR_TOO_LARGE, "%s: %s has a dimension over %d", func,
                                name, INT_MAX);
    return CLNET_OK;
}

/* Checks the three tensors of one call and fills g. In convolution terms xt
 * is (N, C, H, W), wt (K, C, R, S) and yt (N, K, OH, OW), whatever their role
 * in the call (xn, wn, yn name them). For a convolution yt's shape is derived
 * from xt and wt; for a transposed one (transpose = 1) xt's from yt and wt.
 * The derived tensor is the one the message blames. */
static clnet_status geometry(clnet_context *ctx, const char *func, const clnet_conv2d_params *p,
                             int transpose, const clnet_tensor *xt, const char *xn,
                             const clnet_tensor *wt, const char *wn, const clnet_tensor *yt,
                             const char *yn, geom *g)
{
    clnet_status st;
    if ((st = clnet__conv_check_tensor(ctx, func, xt, xn, 4)) ||
        (st = clnet__conv_check_tensor(ctx, func, wt, wn, 4)) ||
        (st = clnet__conv_check_tensor(ctx, func, yt, yn, 4)) ||
        (st = check_params(ctx, func, p, transpose)))
        return st;
    const clnet_tensor *src = transpose ? yt : xt, *dst = transpose ? xt : yt;
    const char *srcn = transpose ? yn : xn, *dstn = transpose ? xn : yn;
    char ss[96], ws[96], ds[96], es[96];
    int64_t want[4];
    shape_str(ss, sizeof ss, src->shape);
    shape_str(ws, sizeof ws, wt->shape);
    shape_str(ds, sizeof ds, dst->shape);
    if (src->shape[1] != wt->shape[transpose ? 0 : 1])
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "%s: %s is %s but %s is %s: channels differ (%s is K x C x R x S%s)",
                            func, srcn, ss, wn, ws, wn,
                            transpose ? ", K the input channels of the transpose" : "");
    if (!transpose && clnet_conv2d_output_shape(p, src->shape, wt->shape, want))
        return clnet__error(
            ctx, CLNET_ERR_SHAPE,
            "%s: the kernel of %s (%s, dilation %dx%d) is empty or larger than %s %s with "
            "padding %d+%d x %d+%d",
            func, wn, ws, p->dilation_h, p->dilation_w, srcn, ss, p->pad_top, p->pad_bottom,
            p->pad_left, p->pad_right);
    if (transpose && clnet_conv2d_transpose_output_shape(p, src->shape, wt->shape, want))
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "%s: %s %s and %s %s give an empty output with these params", func,
                            srcn, ss, wn, ws);
    if (want[0] != dst->shape[0] || want[1] != dst->shape[1] || want[2] != dst->shape[2] ||
        want[3] != dst->shape[3]) {
        shape_str(es, sizeof es, want);
        return clnet__error(ctx, CLNET_ERR_SHAPE, "%s: %s is %s, expected %s for %s %s and %s %s",
                            func, dstn, ds, es, srcn, ss, wn, ws);
    }
    const int64_t *xs = xt->shape, *wsh = wt->shape, *ys = yt->shape;
    /* Kernels index planes and filters with int (each factor is <= INT_MAX,
     * so no product of two overflows, and || stops before a third would). */
    if (xs[2] + p->pad_top + p->pad_bottom > INT_MAX ||
        xs[3] + p->pad_left + p->pad_right > INT_MAX || xs[2] * xs[3] > INT_MAX ||
        ys[2] * ys[3] > INT_MAX || wsh[2] * wsh[3] > INT_MAX ||
        wsh[1] * wsh[2] * wsh[3] > INT_MAX || wsh[0] * wsh[2] * wsh[3] > INT_MAX)
        return clnet__error(ctx, CLNET_ERR_TOO_LARGE,
                            "%s: an image plane, padded side or filter of %s %s, %s %s has over %d "
                            "elements",
                            func, srcn, ss, wn, ws, INT_MAX);
    *g = (geom){(int)xt->shape[0], (int)xt->shape[1], (int)xt->shape[2], (int)xt->shape[3],
                (int)wt->shape[0], (int)wt->shape[2], (int)wt->shape[3], (int)yt->shape[2],
                (int)yt->shape[3], p->stride_h,       p->stride_w,       p->pad_top,
                p->pad_bottom,     p->pad_left,       p->pad_right,      p->dilation_h,
                p->dilation_w};
    return CLNET_OK;
}

static clnet_status check_bias(clnet_context *ctx, const char *func, const clnet_tensor *b,
                               const char *name, int channels)
{
    clnet_status st = clnet__conv_check_tensor(ctx, func, b, name, 1);
    if (st)
        return st;
    if (b->shape[0] != channels)
        return clnet__error(ctx, CLNET_ERR_SHAPE,
                            "%s: %s is %lld, expected %d (one per output channel)", func, name,
                            (long long)b->shape[0], channels);
    return CLNET_OK;
}

/* Refuses an output that shares elements with an input. */
static clnet_status check_overlap(clnet_context *ctx, const char *func, const clnet_tensor *out,
                                  const char *outn, const clnet_tensor *in, const char *inn)
{
    if (!in || !clnet__mem(out) || clnet__mem(out) != clnet__mem(in))
        return CLNET_OK;
    if (in->offset < out->offset + out->numel && out->offset < in->offset + in->numel)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: %s overlaps %s",
                            func, outn, inn);
    return CLNET_OK;
}

/* The context of the first non-NULL tensor, or NULL. */
static clnet_context *ctx_of(const clnet_tensor *a, const clnet_tensor *b, const clnet_tensor *c)
{
    return a ? a->ctx : b ? b->ctx : c ? c->ctx : NULL;
}

/* ---- Kernel launches ---------------------------------------------------- */

/* Launches kernel `name` of cl/<program>.cl over `items` work-items. */
static clnet_status launch_in(clnet_context *ctx, const char *func, const char *program,
                              const char *name, int nargs, const clnet__arg *a, size_t items)
{
    cl_kernel k;
    clnet_status st = clnet__kernel(ctx, program, NULL, name, &k);
    return st ? st : clnet__launch1d(ctx, k, func, nargs, a, items);
}

/* Launches kernel `name` of cl/conv.cl over `items` work-items. */
static clnet_status launch(clnet_context *ctx, const char *func, const char *name, int nargs,
                           const clnet__arg *a, size_t items)
{
    return launch_in(ctx, func, "conv", name, nargs, a, items);
}

/* Appends int arguments; returns the new count. */
static int add_ints(clnet__arg *a, int at, const int *v, int n)
{
    for (int i = 0; i < n; i++)
        a[at + i] = CLNET_ARG_INT(v[i]);
    return at + n;
}

/* The geometry arguments (GEOM in cl/conv.cl). */
static int add_geom(clnet__arg *a, int at, const geom *g)
{
    const int v[] = {g->c,  g->h,  g->w,  g->r,  g->s,  g->oh, g->ow,
                     g->sh, g->sw, g->pt, g->pl, g->dh, g->dw};
    return add_ints(a, at, v, 13);
}

/* im2col of nb images starting at element xo of x into col at co. */
static clnet_status im2col(clnet_context *ctx, const char *func, const geom *g, cl_mem x, size_t xo,
                           cl_mem col, size_t co, size_t sn, size_t scrs, int nb)
{
    clnet__arg a[20] = {CLNET_ARG_MEM(x),    CLNET_ARG_ULONG(xo), CLNET_ARG_MEM(col),
                        CLNET_ARG_ULONG(co), CLNET_ARG_ULONG(sn), CLNET_ARG_ULONG(scrs),
                        CLNET_ARG_INT(nb)};
    return launch(ctx, func, "im2col", add_geom(a, 7, g), a,
                  (size_t)nb * g->c * g->r * g->s * g->oh);
}

/* col2im of nb images from col at co into dx at xo, plus the bias b if any. */
static clnet_status col2im(clnet_context *ctx, const char *func, const geom *g, cl_mem col,
                           size_t co, size_t sn, size_t scrs, const clnet_tensor *b, cl_mem dx,
                           size_t xo, int nb)
{
    clnet__arg a[24] = {CLNET_ARG_MEM(col),
                        CLNET_ARG_ULONG(co),
                        CLNET_ARG_ULONG(sn),
                        CLNET_ARG_ULONG(scrs),
                        CLNET_ARG_MEM(b ? clnet__mem(b) : col),
                        CLNET_ARG_ULONG(b ? b->offset : 0),
                        CLNET_ARG_INT(b != NULL),
                        CLNET_ARG_MEM(dx),
                        CLNET_ARG_ULONG(xo),
                        CLNET_ARG_INT(nb)};
    return launch(ctx, func, "col2im", add_geom(a, 10, g), a, (size_t)nb * g->c * g->h);
}

/* dst (B, A, P) = src (A, B, P) with the first two axes swapped. */
static clnet_status swap01(clnet_context *ctx, const char *func, cl_mem src, size_t so, cl_mem dst,
                           size_t dso, size_t A, size_t B, size_t P)
{
    clnet__arg a[] = {CLNET_ARG_MEM(src),   CLNET_ARG_ULONG(so), CLNET_ARG_MEM(dst),
                      CLNET_ARG_ULONG(dso), CLNET_ARG_INT(A),    CLNET_ARG_INT(B),
                      CLNET_ARG_INT(P)};
    return launch(ctx, func, "swap01", 7, a, A * B);
}

/* y (N, K, P) += b[K]. */
static clnet_status bias_add(clnet_context *ctx, const char *func, const clnet_tensor *y,
                             const clnet_tensor *b, int K, size_t P)
{
    clnet__arg a[] = {
        CLNET_ARG_MEM(clnet__mem(y)), CLNET_ARG_ULONG(y->offset), CLNET_ARG_MEM(clnet__mem(b)),
        CLNET_ARG_ULONG(b->offset),   CLNET_ARG_INT(K),           CLNET_ARG_INT(P),
        CLNET_ARG_ULONG(y->numel)};
    return launch(ctx, func, "bias_add", 7, a, y->numel);
}

static int round8(int n)
{
    return (n + 7) / 8 * 8;
}

/* Packs w for conv_packed: the weight of (output o, input i, tap u, v) is
 * w[wo + o*st[0] + i*st[1] + u*st[2] + v*st[3]]; CO padded to cop. */
static clnet_status pack_weights(clnet_context *ctx, const char *func, const clnet_tensor *w,
                                 long wo, const int st[4], int ci, int co, int cop, int r, int s,
                                 cl_mem pk, size_t pko)
{
    clnet__arg a[13] = {CLNET_ARG_MEM(clnet__mem(w)), CLNET_ARG_ULONG(w->offset + (size_t)wo)};
    const int v[] = {ci, co, cop, r, s};
    add_ints(a, 2, st, 4);
    a[6] = CLNET_ARG_MEM(pk);
    a[7] = CLNET_ARG_ULONG(pko);
    return launch(ctx, func, "pack_weights", add_ints(a, 8, v, 5), a, (size_t)ci * r * s * cop);
}

/* out (nb, c, hp, wp) = in (nb, c, h, w) shifted by (top, left), zero-filled. */
static clnet_status pad_copy(clnet_context *ctx, const char *func, cl_mem in, size_t io, int nb,
                             int c, int h, int w, cl_mem out, size_t oo, int hp, int wp, int top,
                             int left)
{
    clnet__arg a[12] = {CLNET_ARG_MEM(in),  CLNET_ARG_ULONG(io), CLNET_ARG_INT(c),
                        CLNET_ARG_INT(h),   CLNET_ARG_INT(w),    CLNET_ARG_MEM(out),
                        CLNET_ARG_ULONG(oo)};
    const int v[] = {hp, wp, top, left, nb};
    return launch(ctx, func, "pad_copy", add_ints(a, 7, v, 5), a, (size_t)nb * c * hp);
}

/* One launch of conv_packed (cl/conv.cl states the formula), or with wide
 * set, of conv_wide (cl/conv_wide.cl) where it applies: sh = sw = 1 and at
 * least 24 pixels on its grid. */
typedef struct packed_launch {
    cl_mem x;
    size_t xo, xsn, xsc;
    int xsy;
    cl_mem pk;
    size_t pko;
    int cop;
    const clnet_tensor *b;
    cl_mem y;
    size_t yo, ysn, yso;
    int ysi, ysj;
    int n, ci, co, r, s, oh, ow, sh, sw, dh, dw;
    int wide;
} packed_launch;

static clnet_status conv_packed(clnet_context *ctx, const char *func, const packed_launch *L)
{
    clnet__arg a[28] = {CLNET_ARG_MEM(L->x),
                        CLNET_ARG_ULONG(L->xo),
                        CLNET_ARG_ULONG(L->xsn),
                        CLNET_ARG_ULONG(L->xsc),
                        CLNET_ARG_INT(L->xsy),
                        CLNET_ARG_MEM(L->pk),
                        CLNET_ARG_ULONG(L->pko),
                        CLNET_ARG_INT(L->cop),
                        CLNET_ARG_MEM(L->b ? clnet__mem(L->b) : L->pk),
                        CLNET_ARG_ULONG(L->b ? L->b->offset : 0),
                        CLNET_ARG_INT(L->b != NULL),
                        CLNET_ARG_MEM(L->y),
                        CLNET_ARG_ULONG(L->yo),
                        CLNET_ARG_ULONG(L->ysn),
                        CLNET_ARG_ULONG(L->yso)};
    size_t q = (size_t)(L->oh - 1) * L->xsy + L->ow; /* conv_wide's grid */
    if (L->wide && L->sh == 1 && L->sw == 1 && q >= 24) {
        /* 4 channels x 24 pixels of the grid of pitch xsy per work-item */
        const int v[] = {L->ysi, L->ysj, L->n,  L->ci, L->co, L->r,
                         L->s,   L->oh,  L->ow, L->dh, L->dw};
        return launch_in(ctx, func, "conv_wide", "conv_wide", add_ints(a, 15, v, 11), a,
                         (size_t)L->n * (size_t)((L->co + 3) / 4) * ((q + 23) / 24));
    }
    const int v[] = {L->ysi, L->ysj, L->n,  L->ci, L->co, L->r, L->s,
                     L->oh,  L->ow,  L->sh, L->sw, L->dh, L->dw};
    size_t pblocks = ((size_t)L->oh * L->ow + 7) / 8;
    return launch(ctx, func, "conv_packed", add_ints(a, 15, v, 13), a,
                  (size_t)L->n * (size_t)(L->cop / 8) * pblocks);
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

/* Images per chunk when each needs per_image floats of workspace. */
static size_t chunk_images(const clnet_context *ctx, size_t per_image, size_t n)
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

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* The padded input rows and columns the taps of a geom reach, and whether x
 * must be copied to get them (padding, or rows past the end). */
static int padded_extent(const geom *g, int *hp, int *wp)
{
    *hp = (g->oh - 1) * g->sh + (g->r - 1) * g->dh + 1;
    *wp = (g->ow - 1) * g->sw + (g->s - 1) * g->dw + 1;
    return g->pt || g->pl || *hp > g->h || *wp > g->w;
}

/* The input of conv_packed or conv_filter for images [n0, n0 + cnt): x
 * itself, or its padded copy at element `at` of the workspace. */
static clnet_status direct_input(clnet_context *ctx, const char *func, const geom *g,
                                 const clnet_tensor *x, size_t n0, int cnt, cl_mem ws, size_t at,
                                 packed_launch *L)
{
    int hp, wp;
    size_t chw = (size_t)g->c * g->h * g->w;
    if (!padded_extent(g, &hp, &wp)) {
        *L = (packed_launch){.x = clnet__mem(x),
                             .xo = x->offset + n0 * chw,
                             .xsn = chw,
                             .xsc = (size_t)g->h * g->w,
                             .xsy = g->w};
        return CLNET_OK;
    }
    *L = (packed_launch){
        .x = ws, .xo = at, .xsn = (size_t)g->c * hp * wp, .xsc = (size_t)hp * wp, .xsy = wp};
    return pad_copy(ctx, func, clnet__mem(x), x->offset + n0 * chw, cnt, g->c, g->h, g->w, ws, at,
                    hp, wp, g->pt, g->pl);
}

/* y = conv(x, w) + b by conv_packed, or with wide by conv_wide where it
 * applies, over (a padded copy of) x. */
static clnet_status forward_direct(clnet_context *ctx, const char *func, const geom *g,
                                   const clnet_tensor *x, const clnet_tensor *w,
                                   const clnet_tensor *b, const clnet_tensor *y, int wide)
{
    int cop = round8(g->k), hp, wp;
    size_t pk_n = (size_t)g->c * g->r * g->s * cop, P = (size_t)g->oh * g->ow;
    size_t per = padded_extent(g, &hp, &wp) ? (size_t)g->c * hp * wp : 0;
    size_t nb = per ? chunk_images(ctx, per, (size_t)g->n) : (size_t)g->n;
    const int st[4] = {g->c * g->r * g->s, g->r * g->s, g->s, 1};
    cl_mem ws;
    clnet_status st_ = clnet__workspace(ctx, (pk_n + nb * per) * sizeof(float), &ws);
    if (st_ || (st_ = pack_weights(ctx, func, w, 0, st, g->c, g->k, cop, g->r, g->s, ws, 0)))
        return st_;
    for (size_t n0 = 0; n0 < (size_t)g->n && !st_; n0 += nb) {
        packed_launch L;
        int cnt = (int)min_sz(nb, (size_t)g->n - n0);
        if ((st_ = direct_input(ctx, func, g, x, n0, cnt, ws, pk_n, &L)))
            break;
        L.pk = ws, L.pko = 0, L.cop = cop, L.b = b;
        L.y = clnet__mem(y), L.yo = y->offset + n0 * g->k * P, L.ysn = g->k * P, L.yso = P;
        L.ysi = g->ow, L.ysj = 1;
        L.n = cnt, L.ci = g->c, L.co = g->k, L.r = g->r, L.s = g->s, L.oh = g->oh, L.ow = g->ow;
        L.sh = g->sh, L.sw = g->sw, L.dh = g->dh, L.dw = g->dw, L.wide = wide;
        st_ = conv_packed(ctx, func, &L);
    }
    return st_;
}

static int gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* One phase of the data gradient along one axis: the inputs a, a + stride,
 * ... (count q) receive from the taps first, first + step, ... (count taps),
 * which read output a + pad - tap*dil (divisible by stride). As a stride-1
 * convolution over the phase with the taps flipped, dilation dil/gcd and
 * padding `pad` (possibly negative). */
typedef struct phase {
    int q, first, taps, pad;
} phase;

static phase phase_of(int a, int size, int k, int stride, int pad, int dil)
{
    phase ph = {a < size ? (size - a + stride - 1) / stride : 0, 0, 0, 0};
    for (int u = 0; u < k; u++)
        if (((a + pad - u * dil) % stride + stride) % stride == 0 && !ph.taps++)
            ph.first = u;
    if (ph.taps) {
        int base = (a + pad - ph.first * dil) / stride; /* exact */
        ph.pad = (ph.taps - 1) * (dil / gcd(stride, dil)) - base;
    }
    return ph;
}

/* The rows (or columns) of dy's padded copy that every phase reads (extent),
 * and where dy's row 0 sits in it (top). */
static void phase_extent(int size, int k, int stride, int pad, int dil, int *top, int *extent)
{
    int d = dil / gcd(stride, dil);
    *top = 0;
    *extent = 1;
    for (int a = 0; a < stride && a < size; a++) {
        phase ph = phase_of(a, size, k, stride, pad, dil);
        if (ph.taps && ph.pad > *top)
            *top = ph.pad;
    }
    for (int a = 0; a < stride && a < size; a++) {
        phase ph = phase_of(a, size, k, stride, pad, dil);
        int end = *top - ph.pad + ph.q - 1 + (ph.taps - 1) * d + 1;
        if (ph.taps && end > *extent)
            *extent = end;
    }
}

/* dy's padded copy: hp x wp per channel, dy's (0, 0) at (top, left). */
typedef struct dy_copy {
    int top, left, hp, wp;
} dy_copy;

/* One phase (a, b) of the data gradient, its taps packed at run->pk[*pko]
 * (*pko advances past them). pack: packs the taps; else runs the phase, run
 * being the launch for the whole of dx from dy's padded copy at run->xo. */
static clnet_status data_phase(clnet_context *ctx, const char *func, const geom *g,
                               const clnet_tensor *w, const dy_copy *cp, int a, int b, size_t *pko,
                               const packed_launch *run, int pack)
{
    phase r = phase_of(a, g->h, g->r, g->sh, g->pt, g->dh);
    phase c = phase_of(b, g->w, g->s, g->sw, g->pl, g->dw);
    int cop = round8(g->c), taps = r.taps * c.taps, sth = g->sh / gcd(g->sh, g->dh);
    int stw = g->sw / gcd(g->sw, g->dw);
    size_t at = *pko;
    *pko += (size_t)g->k * taps * cop;
    if (pack) {
        /* Flipped: the phase's tap 0 is its last tap in w. */
        long wo = (long)(r.first + (r.taps - 1) * sth) * g->s + c.first + (c.taps - 1) * stw;
        const int st[4] = {g->r * g->s, g->c * g->r * g->s, -sth * g->s, -stw};
        return taps ? pack_weights(ctx, func, w, wo, st, g->k, g->c, cop, r.taps, c.taps, run->pk,
                                   at)
                    : CLNET_OK;
    }
    packed_launch L = *run;
    if (taps) /* the phase's padded origin: row top - pad, column left - pad */
        L.xo += (size_t)(cp->top - r.pad) * L.xsy + (size_t)(cp->left - c.pad);
    L.pko = at;
    L.yo += (size_t)a * g->w + (size_t)b;
    L.r = taps ? r.taps : 0, L.s = taps ? c.taps : 0, L.oh = r.q, L.ow = c.q;
    return r.q && c.q ? conv_packed(ctx, func, &L) : CLNET_OK;
}

/* dx (+ b) by phases: along a stride-s axis the inputs congruent mod s form s
 * phases, each a stride-1 convolution of dy (a padded copy) with the flipped
 * taps that reach it, so no multiply touches a zero inserted by the stride.
 * The phases run conv_packed, or with wide, conv_wide. */
static clnet_status backward_data_direct(clnet_context *ctx, const char *func, const geom *g,
                                         const clnet_tensor *w, const clnet_tensor *dy,
                                         const clnet_tensor *b, const clnet_tensor *dx, int wide)
{
    dy_copy cp;
    phase_extent(g->h, g->r, g->sh, g->pt, g->dh, &cp.top, &cp.hp);
    phase_extent(g->w, g->s, g->sw, g->pl, g->dw, &cp.left, &cp.wp);
    size_t pk_n = (size_t)g->k * g->r * g->s * round8(g->c), per = (size_t)g->k * cp.hp * cp.wp;
    size_t nb = chunk_images(ctx, per, (size_t)g->n), pko = 0, P = (size_t)g->oh * g->ow;
    size_t chw = (size_t)g->c * g->h * g->w;
    packed_launch L = {.xo = pk_n,
                       .xsn = per,
                       .xsc = (size_t)cp.hp * cp.wp,
                       .xsy = cp.wp,
                       .cop = round8(g->c),
                       .b = b,
                       .y = clnet__mem(dx),
                       .ysn = chw,
                       .yso = (size_t)g->h * g->w,
                       .ysi = g->sh * g->w,
                       .ysj = g->sw,
                       .ci = g->k,
                       .co = g->c,
                       .sh = 1,
                       .sw = 1,
                       .dh = g->dh / gcd(g->sh, g->dh),
                       .dw = g->dw / gcd(g->sw, g->dw),
                       .wide = wide};
    clnet_status st = clnet__workspace(ctx, (pk_n + nb * per) * sizeof(float), &L.x);
    L.pk = L.x;
    for (int a = 0; a < g->sh && a < g->h && !st; a++)
        for (int c = 0; c < g->sw && c < g->w && !st; c++)
            st = data_phase(ctx, func, g, w, &cp, a, c, &pko, &L, 1);
    for (size_t n0 = 0; n0 < (size_t)g->n && !st; n0 += nb) {
        L.n = (int)min_sz(nb, (size_t)g->n - n0);
        L.yo = dx->offset + n0 * chw;
        st = pad_copy(ctx, func, clnet__mem(dy), dy->offset + n0 * g->k * P, L.n, g->k, g->oh,
                      g->ow, L.x, pk_n, cp.hp, cp.wp, cp.top, cp.left);
        pko = 0;
        for (int a = 0; a < g->sh && a < g->h && !st; a++)
            for (int c = 0; c < g->sw && c < g->w && !st; c++)
                st = data_phase(ctx, func, g, w, &cp, a, c, &pko, &L, 0);
    }
    return st;
}

/* The slices conv_filter splits its reduction of q pixels into: enough
 * work-items for 8 work-groups per compute unit (one work-group runs on one
 * CPU thread; conv1's filter gradient alone is only 8 work-items), each
 * slice still at least 64 pixels long; at most one slice per output row.
 * "conv2d.filter_slices" forces it. */
static int filter_slices(const clnet_context *ctx, size_t items, size_t rows, size_t q)
{
    const clnet__profile *prof = clnet__context_profile(ctx);
    size_t want = 8 * prof->wg_size * (prof->info.compute_units ? prof->info.compute_units : 1);
    size_t sl = (want + items - 1) / items, most = q / 64 < rows ? q / 64 : rows;
    if (sl > most)
        sl = most;
    if (sl > 256)
        sl = 256;
    int forced = clnet__variant(ctx, "conv2d.filter_slices", sl < 1 ? 1 : (int)sl);
    return forced < 1 ? 1 : (size_t)forced > rows ? (int)rows : forced;
}

/* The kernel launches of the direct filter gradient for one chunk of cnt
 * images: conv_filter over dy packed pixel-major at element 0 of ws, or with
 * wide, conv_filter_wide over dy itself (at dyo); both over the input L.
 * Split into slices, it writes partial sums at element part of ws, then
 * sum_slices adds them into dw. acc: add to dw (chunks after the first). */
typedef struct filter_launch {
    const geom *g;
    cl_mem ws, dy;
    size_t dyo, part, items;
    int slices, kp, wide;
} filter_launch;

static clnet_status filter_chunk(clnet_context *ctx, const char *func, const filter_launch *F,
                                 const packed_launch *L, int cnt, const clnet_tensor *dw, int acc)
{
    const geom *g = F->g;
    int split = F->slices > 1;
    size_t count = (size_t)g->k * g->c * g->r * g->s;
    clnet__arg a[24] = {CLNET_ARG_MEM(L->x), CLNET_ARG_ULONG(L->xo), CLNET_ARG_ULONG(L->xsn),
                        CLNET_ARG_ULONG(L->xsc), CLNET_ARG_INT(L->xsy)};
    int n = 5;
    if (F->wide) {
        a[n++] = CLNET_ARG_MEM(F->dy);
        a[n++] = CLNET_ARG_ULONG(F->dyo);
    } else {
        a[n++] = CLNET_ARG_MEM(F->ws);
        a[n++] = CLNET_ARG_ULONG(0);
        a[n++] = CLNET_ARG_INT(F->kp);
    }
    a[n++] = CLNET_ARG_MEM(split ? F->ws : clnet__mem(dw));
    a[n++] = CLNET_ARG_ULONG(split ? F->part : dw->offset);
    a[n++] = CLNET_ARG_ULONG(count);
    a[n++] = CLNET_ARG_INT(F->slices);
    const int v[] = {!split && acc, cnt,   g->k,  g->c,  g->r,  g->s,
                     g->oh,         g->ow, g->sh, g->sw, g->dh, g->dw};
    clnet_status st;
    if (F->wide) { /* no strides: v without sh, sw */
        const int vw[] = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[10], v[11]};
        st = launch_in(ctx, func, "conv_wide", "conv_filter_wide", add_ints(a, n, vw, 10), a,
                       F->slices * F->items);
    } else {
        st = launch(ctx, func, "conv_filter", add_ints(a, n, v, 12), a, F->slices * F->items);
    }
    if (st || !split)
        return st;
    clnet__arg sa[] = {
        CLNET_ARG_MEM(F->ws), CLNET_ARG_ULONG(F->part),      CLNET_ARG_INT(F->slices),
        CLNET_ARG_ULONG(count), CLNET_ARG_MEM(clnet__mem(dw)), CLNET_ARG_ULONG(dw->offset),
        CLNET_ARG_INT(acc)};
    return launch(ctx, func, "sum_slices", 7, sa, count);
}

/* dw by conv_filter over dy packed pixel-major, or with wide (stride 1
 * only) by conv_filter_wide over dy itself, and (a padded copy of) x. */
static clnet_status backward_filter_direct(clnet_context *ctx, const char *func, const geom *g,
                                           const clnet_tensor *x, const clnet_tensor *dy,
                                           const clnet_tensor *dw, int wide)
{
    int hp, wp;
    size_t P = (size_t)g->oh * g->ow, crs = (size_t)g->c * g->r * g->s;
    filter_launch F = {.g = g, .dy = clnet__mem(dy), .kp = round8(g->k)};
    F.wide = wide && g->sh == 1 && g->sw == 1;
    size_t dyper = F.wide ? 0 : P * F.kp; /* the packed dy, first in ws */
    size_t xper = padded_extent(g, &hp, &wp) ? (size_t)g->c * hp * wp : 0;
    size_t nb = chunk_images(ctx, dyper + xper, (size_t)g->n);
    F.items =
        F.wide ? (size_t)((g->k + 3) / 4) * ((crs + 2) / 3) : (size_t)(F.kp / 8) * ((crs + 7) / 8);
    F.slices = filter_slices(ctx, F.items, nb * g->oh, nb * P);
    F.part = nb * (dyper + xper); /* the partial sums after dy and x */
    size_t count = (size_t)g->k * crs;
    clnet_status st = clnet__workspace(
        ctx, (F.part + (F.slices > 1 ? F.slices * count : 0)) * sizeof(float), &F.ws);
    for (size_t n0 = 0; n0 < (size_t)g->n && !st; n0 += nb) {
        int cnt = (int)min_sz(nb, (size_t)g->n - n0);
        packed_launch L;
        F.dyo = dy->offset + n0 * g->k * P;
        clnet__arg pa[] = {CLNET_ARG_MEM(F.dy), CLNET_ARG_ULONG(F.dyo), CLNET_ARG_MEM(F.ws),
                           CLNET_ARG_ULONG(0),  CLNET_ARG_INT(cnt),     CLNET_ARG_INT(g->k),
                           CLNET_ARG_INT(F.kp), CLNET_ARG_INT(P)};
        if ((!F.wide && (st = launch(ctx, func, "pack_dy", 8, pa, cnt * P))) ||
            (st = direct_input(ctx, func, g, x, n0, cnt, F.ws, nb * dyper, &L)) ||
            (st = filter_chunk(ctx, func, &F, &L, cnt, dw, n0 > 0)))
            break;
    }
    return st;
}

/* The implementation for a reduction of `reduction` terms per output. On
 * CPUs conv_wide beat conv_packed 1.3-2x on every stride-1 shape measured
 * (docs/ops.md); strided data gradients (conv_wide's stores are then
 * scalar) keep conv_packed, unmeasured. */
static int choose(const clnet_context *ctx, const geom *g, size_t reduction)
{
    if (clnet__context_profile(ctx)->info.type == CLNET_DEVICE_CPU)
        return g->sh == 1 && g->sw == 1 ? CLNET_V_CONV_WIDE : CLNET_V_CONV_DIRECT;
    return is_1x1(g) ? CLNET_V_CONV_GEMM1X1 : reduction <= DIRECT_MAX_REDUCTION ? CLNET_V_CONV_DIRECT : CLNET_V_CONV_IM2COL;
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
    clnet__gemm_desc d = {.m = K,
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
                          .stride_c = K * P};
    if (v == CLNET_V_CONV_DIRECT || v == CLNET_V_CONV_WIDE)
        return forward_direct(ctx, func, g, x, w, b, y, v == CLNET_V_CONV_WIDE);
    if (v == CLNET_V_CONV_GEMM1X1 && is_1x1(g)) {
        d.b = clnet__mem(x);
        d.b_off = x->offset;
        d.stride_b = chw;
        d.c_off = y->offset;
        d.batch = N;
        st = clnet__gemm(ctx, &d, func);
        return st || !b ? st : bias_add(ctx, func, y, b, g->k, P);
    }
    size_t nb = chunk_images(ctx, crs * P, N);
    cl_mem ws;
    if ((st = clnet__workspace(ctx, nb * crs * P * sizeof(float), &ws)))
        return st;
    d.b = ws;
    d.stride_b = crs * P;
    for (size_t n0 = 0; n0 < N && !st; n0 += nb) {
        size_t cnt = min_sz(nb, N - n0);
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
    clnet__gemm_desc d = {.trans_a = 1,
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
                          .ldc = P};
    if (v == CLNET_V_CONV_DIRECT || v == CLNET_V_CONV_WIDE)
        return backward_data_direct(ctx, func, g, w, dy, b, dx, v == CLNET_V_CONV_WIDE);
    if (v == CLNET_V_CONV_GEMM1X1 && is_1x1(g)) {
        d.b_off = dy->offset;
        d.c = clnet__mem(dx);
        d.c_off = dx->offset;
        d.stride_c = chw;
        d.batch = N;
        st = clnet__gemm(ctx, &d, func);
        return st || !b ? st : bias_add(ctx, func, dx, b, g->c, (size_t)g->h * g->w);
    }
    size_t nb = chunk_images(ctx, crs * P, N);
    cl_mem ws;
    if ((st = clnet__workspace(ctx, nb * crs * P * sizeof(float), &ws)))
        return st;
    d.c = ws;
    d.c_off = 0;
    d.stride_c = crs * P;
    for (size_t n0 = 0; n0 < N && !st; n0 += nb) {
        size_t cnt = min_sz(nb, N - n0);
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
        return backward_filter_direct(ctx, func, g, x, dy, dw, v == CLNET_V_CONV_WIDE);
    clnet__gemm_desc d = {.trans_b = 1,
                          .m = K,
                          .n = crs,
                          .alpha = 1,
                          .c = clnet__mem(dw),
                          .c_off = dw->offset,
                          .ldc = crs};
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
    size_t nb = chunk_images(ctx, crs * P + K * P, N);
    cl_mem ws;
    size_t dy_at = nb * crs * P; /* the permuted dy after the columns */
    if ((st = clnet__workspace(ctx, (dy_at + (nb > 1 ? nb * K * P : 0)) * sizeof(float), &ws)))
        return st;
    d.b = ws;
    d.b_off = 0;
    for (size_t n0 = 0; n0 < N && !st; n0 += nb) {
        size_t cnt = min_sz(nb, N - n0);
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

static size_t numel_of(const geom *g, int which)
{
    switch (which) {
    case 0:
        return (size_t)g->n * g->c * g->h * g->w;
    case 1:
        return (size_t)g->k * g->c * g->r * g->s;
    default:
        return (size_t)g->n * g->k * g->oh * g->ow;
    }
}

/* y = conv(x, w) + b: checks, empty cases, then forward(). */
static clnet_status run_forward(const char *func, const clnet_conv2d_params *p, int transpose,
                                const clnet_tensor *x, const clnet_tensor *w, const clnet_tensor *b,
                                clnet_tensor *y, const char *xn, const char *yn)
{
    clnet_context *ctx = ctx_of(y, x, w);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    geom g;
    clnet_status st = geometry(ctx, func, p, transpose, x, xn, w, "w", y, yn, &g);
    if (st || (b && (st = check_bias(ctx, func, b, "b", g.k))) ||
        (st = check_overlap(ctx, func, y, yn, x, xn)) ||
        (st = check_overlap(ctx, func, y, yn, w, "w")) ||
        (st = check_overlap(ctx, func, y, yn, b, "b")))
        return st;
    if (y->numel == 0)
        return CLNET_OK;
    if (numel_of(&g, 0) == 0 || numel_of(&g, 1) == 0)
        return zero_plus_bias(ctx, func, y, b);
    return forward(ctx, func, &g, x, w, b, y);
}

static clnet_status run_backward_data(const char *func, const clnet_conv2d_params *p, int transpose,
                                      const clnet_tensor *w, const clnet_tensor *dy,
                                      const clnet_tensor *b, clnet_tensor *dx, const char *dyn,
                                      const char *dxn)
{
    clnet_context *ctx = ctx_of(dx, w, dy);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    geom g;
    clnet_status st = geometry(ctx, func, p, transpose, dx, dxn, w, "w", dy, dyn, &g);
    if (st || (b && (st = check_bias(ctx, func, b, "b", g.c))) ||
        (st = check_overlap(ctx, func, dx, dxn, dy, dyn)) ||
        (st = check_overlap(ctx, func, dx, dxn, w, "w")) ||
        (st = check_overlap(ctx, func, dx, dxn, b, "b")))
        return st;
    if (dx->numel == 0)
        return CLNET_OK;
    if (numel_of(&g, 2) == 0 || numel_of(&g, 1) == 0)
        return zero_plus_bias(ctx, func, dx, b);
    return backward_data(ctx, func, &g, w, dy, b, dx);
}

static clnet_status run_backward_filter(const char *func, const clnet_conv2d_params *p,
                                        int transpose, const clnet_tensor *x,
                                        const clnet_tensor *dy, clnet_tensor *dw, const char *xn,
                                        const char *dyn)
{
    clnet_context *ctx = ctx_of(dw, x, dy);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    geom g;
    clnet_status st = geometry(ctx, func, p, transpose, x, xn, dw, "dw", dy, dyn, &g);
    if (st || (st = check_overlap(ctx, func, dw, "dw", x, xn)) ||
        (st = check_overlap(ctx, func, dw, "dw", dy, dyn)))
        return st;
    if (dw->numel == 0)
        return CLNET_OK;
    if (numel_of(&g, 0) == 0 || numel_of(&g, 2) == 0)
        return clnet_tensor_fill(dw, 0.0);
    return backward_filter(ctx, func, &g, x, dy, dw);
}

CLNET_API clnet_status clnet_conv2d_forward(const clnet_conv2d_params *p, const clnet_tensor *x,
                                            const clnet_tensor *w, const clnet_tensor *b,
                                            clnet_tensor *y)
{
    return run_forward(__func__, p, 0, x, w, b, y, "x", "y");
}

CLNET_API clnet_status clnet_conv2d_backward_data(const clnet_conv2d_params *p,
                                                  const clnet_tensor *w, const clnet_tensor *dy,
                                                  clnet_tensor *dx)
{
    return run_backward_data(__func__, p, 0, w, dy, NULL, dx, "dy", "dx");
}

CLNET_API clnet_status clnet_conv2d_backward_filter(const clnet_conv2d_params *p,
                                                    const clnet_tensor *x, const clnet_tensor *dy,
                                                    clnet_tensor *dw)
{
    return run_backward_filter(__func__, p, 0, x, dy, dw, "x", "dy");
}

CLNET_API clnet_status clnet_conv2d_transpose_forward(const clnet_conv2d_params *p,
                                                      const clnet_tensor *x, const clnet_tensor *w,
                                                      const clnet_tensor *b, clnet_tensor *y)
{
    /* The transpose's x plays the convolution's dy, its y the convolution's dx. */
    return run_backward_data(__func__, p, 1, w, x, b, y, "x", "y");
}

CLNET_API clnet_status clnet_conv2d_transpose_backward_data(const clnet_conv2d_params *p,
                                                            const clnet_tensor *w,
                                                            const clnet_tensor *dy,
                                                            clnet_tensor *dx)
{
    return run_forward(__func__, p, 1, dy, w, NULL, dx, "dy", "dx");
}

CLNET_API clnet_status clnet_conv2d_transpose_backward_filter(const clnet_conv2d_params *p,
                                                              const clnet_tensor *x,
                                                              const clnet_tensor *dy,
                                                              clnet_tensor *dw)
{
    return run_backward_filter(__func__, p, 1, dy, x, dw, "dy", "x");
}

CLNET_API clnet_status clnet_conv2d_backward_bias(const clnet_tensor *dy, clnet_tensor *db)
{
    const char *func = __func__;
    clnet_context *ctx = ctx_of(db, dy, NULL);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    clnet_status st = clnet__conv_check_tensor(ctx, func, dy, "dy", 4);
    if (st || (st = check_bias(ctx, func, db, "db", (int)dy->shape[1])) ||
        (st = check_overlap(ctx, func, db, "db", dy, "dy")))
        return st;
    /* The same sum as the channel bias of clnet/act.h: two levels, in a
     * fixed order, with enough work-groups for every compute unit. */
    return clnet_bias_backward(dy, db);
}
