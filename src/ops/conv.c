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

/* The geometry of the convolution from (n, c, h, w) to (n, k, oh, ow). */
typedef struct geom {
    int n, c, h, w, k, r, s, oh, ow;
    int sh, sw, pt, pb, pl, pr, dh, dw;
} geom;

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
    if (r.b >= 0 && (st = clnet__op_want_shape(op, r.b, 1,
                                               (const int64_t[]){ transpose ? xt->shape[1]
                                                                            : wt->shape[0] })))
        return st;
    *g = (geom){(int)xt->shape[0], (int)xt->shape[1], (int)xt->shape[2], (int)xt->shape[3],
                (int)wt->shape[0], (int)wt->shape[2], (int)wt->shape[3], (int)yt->shape[2],
                (int)yt->shape[3], p->stride_h,       p->stride_w,       p->pad_top,
                p->pad_bottom,     p->pad_left,       p->pad_right,      p->dilation_h,
                p->dilation_w};
    return CLNET_OK;
}

/* ---- Kernel launches ---------------------------------------------------- */

/* Runs kernel `name` of cl/conv.cl over `items` work-items. */
#define LAUNCH(ctx, func, name, items, ...)                                                       \
    CLNET_RUN1D((ctx), (func), "conv", (name), (items), __VA_ARGS__)

/* The geometry arguments (GEOM in cl/conv.cl). */
#define GEOM_ARGS(g)                                                                              \
    CLNET_ARG_INT((g)->c), CLNET_ARG_INT((g)->h), CLNET_ARG_INT((g)->w), CLNET_ARG_INT((g)->r),   \
        CLNET_ARG_INT((g)->s), CLNET_ARG_INT((g)->oh), CLNET_ARG_INT((g)->ow),                    \
        CLNET_ARG_INT((g)->sh), CLNET_ARG_INT((g)->sw), CLNET_ARG_INT((g)->pt),                   \
        CLNET_ARG_INT((g)->pl), CLNET_ARG_INT((g)->dh), CLNET_ARG_INT((g)->dw)

/* im2col of nb images starting at element xo of x into col at co. */
static clnet_status im2col(clnet_context *ctx, const char *func, const geom *g, cl_mem x, size_t xo,
                           cl_mem col, size_t co, size_t sn, size_t scrs, int nb)
{
    return LAUNCH(ctx, func, "im2col", (size_t)nb * g->c * g->r * g->s * g->oh, CLNET_ARG_MEM(x),
                  CLNET_ARG_ULONG(xo), CLNET_ARG_MEM(col), CLNET_ARG_ULONG(co),
                  CLNET_ARG_ULONG(sn), CLNET_ARG_ULONG(scrs), CLNET_ARG_INT(nb), GEOM_ARGS(g));
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
    return LAUNCH(ctx, func, "pack_weights", (size_t)ci * r * s * cop,
                  CLNET_ARG_MEM(clnet__mem(w)), CLNET_ARG_ULONG(w->offset + (size_t)wo),
                  CLNET_ARG_INT(st[0]), CLNET_ARG_INT(st[1]), CLNET_ARG_INT(st[2]),
                  CLNET_ARG_INT(st[3]), CLNET_ARG_MEM(pk), CLNET_ARG_ULONG(pko), CLNET_ARG_INT(ci),
                  CLNET_ARG_INT(co), CLNET_ARG_INT(cop), CLNET_ARG_INT(r), CLNET_ARG_INT(s));
}

/* out (nb, c, hp, wp) = in (nb, c, h, w) shifted by (top, left), zero-filled. */
static clnet_status pad_copy(clnet_context *ctx, const char *func, cl_mem in, size_t io, int nb,
                             int c, int h, int w, cl_mem out, size_t oo, int hp, int wp, int top,
                             int left)
{
    return LAUNCH(ctx, func, "pad_copy", (size_t)nb * c * hp, CLNET_ARG_MEM(in),
                  CLNET_ARG_ULONG(io), CLNET_ARG_INT(c), CLNET_ARG_INT(h), CLNET_ARG_INT(w),
                  CLNET_ARG_MEM(out), CLNET_ARG_ULONG(oo), CLNET_ARG_INT(hp), CLNET_ARG_INT(wp),
                  CLNET_ARG_INT(top), CLNET_ARG_INT(left), CLNET_ARG_INT(nb));
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

/* The arguments conv_packed and conv_wide share, first in both. */
#define PACKED_ARGS(L)                                                                            \
    CLNET_ARG_MEM((L)->x), CLNET_ARG_ULONG((L)->xo), CLNET_ARG_ULONG((L)->xsn),                   \
        CLNET_ARG_ULONG((L)->xsc), CLNET_ARG_INT((L)->xsy), CLNET_ARG_MEM((L)->pk),               \
        CLNET_ARG_ULONG((L)->pko), CLNET_ARG_INT((L)->cop),                                       \
        CLNET_ARG_MEM((L)->b ? clnet__mem((L)->b) : (L)->pk),                                     \
        CLNET_ARG_ULONG((L)->b ? (L)->b->offset : 0), CLNET_ARG_INT((L)->b != NULL),              \
        CLNET_ARG_MEM((L)->y), CLNET_ARG_ULONG((L)->yo), CLNET_ARG_ULONG((L)->ysn),               \
        CLNET_ARG_ULONG((L)->yso), CLNET_ARG_INT((L)->ysi), CLNET_ARG_INT((L)->ysj),              \
        CLNET_ARG_INT((L)->n), CLNET_ARG_INT((L)->ci), CLNET_ARG_INT((L)->co),                    \
        CLNET_ARG_INT((L)->r), CLNET_ARG_INT((L)->s), CLNET_ARG_INT((L)->oh),                     \
        CLNET_ARG_INT((L)->ow)

static clnet_status conv_packed(clnet_context *ctx, const char *func, const packed_launch *L)
{
    size_t q = (size_t)(L->oh - 1) * L->xsy + L->ow; /* conv_wide's grid */
    if (L->wide && L->sh == 1 && L->sw == 1 && q >= 24)
        /* 4 channels x 24 pixels of the grid of pitch xsy per work-item */
        return CLNET_RUN1D(ctx, func, "conv_wide", "conv_wide",
                           (size_t)L->n * (size_t)((L->co + 3) / 4) * ((q + 23) / 24),
                           PACKED_ARGS(L), CLNET_ARG_INT(L->dh), CLNET_ARG_INT(L->dw));
    size_t pblocks = ((size_t)L->oh * L->ow + 7) / 8;
    return LAUNCH(ctx, func, "conv_packed", (size_t)L->n * (size_t)(L->cop / 8) * pblocks,
                  PACKED_ARGS(L), CLNET_ARG_INT(L->sh), CLNET_ARG_INT(L->sw), CLNET_ARG_INT(L->dh),
                  CLNET_ARG_INT(L->dw));
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
    cl_mem out = split ? F->ws : clnet__mem(dw);
    size_t outo = split ? F->part : dw->offset;
    clnet_status st;
    if (F->wide) /* dy itself; no strides */
        st = CLNET_RUN1D(ctx, func, "conv_wide", "conv_filter_wide", F->slices * F->items,
                         CLNET_ARG_MEM(L->x), CLNET_ARG_ULONG(L->xo), CLNET_ARG_ULONG(L->xsn),
                         CLNET_ARG_ULONG(L->xsc), CLNET_ARG_INT(L->xsy), CLNET_ARG_MEM(F->dy),
                         CLNET_ARG_ULONG(F->dyo), CLNET_ARG_MEM(out), CLNET_ARG_ULONG(outo),
                         CLNET_ARG_ULONG(count), CLNET_ARG_INT(F->slices),
                         CLNET_ARG_INT(!split && acc), CLNET_ARG_INT(cnt), CLNET_ARG_INT(g->k),
                         CLNET_ARG_INT(g->c), CLNET_ARG_INT(g->r), CLNET_ARG_INT(g->s),
                         CLNET_ARG_INT(g->oh), CLNET_ARG_INT(g->ow), CLNET_ARG_INT(g->dh),
                         CLNET_ARG_INT(g->dw));
    else /* dy packed pixel-major at element 0 of ws */
        st = LAUNCH(ctx, func, "conv_filter", F->slices * F->items, CLNET_ARG_MEM(L->x),
                    CLNET_ARG_ULONG(L->xo), CLNET_ARG_ULONG(L->xsn), CLNET_ARG_ULONG(L->xsc),
                    CLNET_ARG_INT(L->xsy), CLNET_ARG_MEM(F->ws), CLNET_ARG_ULONG(0),
                    CLNET_ARG_INT(F->kp), CLNET_ARG_MEM(out), CLNET_ARG_ULONG(outo),
                    CLNET_ARG_ULONG(count), CLNET_ARG_INT(F->slices), CLNET_ARG_INT(!split && acc),
                    CLNET_ARG_INT(cnt), CLNET_ARG_INT(g->k), CLNET_ARG_INT(g->c),
                    CLNET_ARG_INT(g->r), CLNET_ARG_INT(g->s), CLNET_ARG_INT(g->oh),
                    CLNET_ARG_INT(g->ow), CLNET_ARG_INT(g->sh), CLNET_ARG_INT(g->sw),
                    CLNET_ARG_INT(g->dh), CLNET_ARG_INT(g->dw));
    if (st || !split)
        return st;
    return LAUNCH(ctx, func, "sum_slices", count, CLNET_ARG_MEM(F->ws), CLNET_ARG_ULONG(F->part),
                  CLNET_ARG_INT(F->slices), CLNET_ARG_ULONG(count), CLNET_ARG_TENSOR(dw),
                  CLNET_ARG_INT(acc));
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
        if ((!F.wide &&
             (st = LAUNCH(ctx, func, "pack_dy", cnt * P, CLNET_ARG_MEM(F.dy),
                          CLNET_ARG_ULONG(F.dyo), CLNET_ARG_MEM(F.ws), CLNET_ARG_ULONG(0),
                          CLNET_ARG_INT(cnt), CLNET_ARG_INT(g->k), CLNET_ARG_INT(F.kp),
                          CLNET_ARG_INT(P)))) ||
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

/* The transposed convolution's input plays the convolution's y (or dy)
 * and its output the convolution's x (or dx). */
static const clnet__conv_roles transpose_forward_roles = { .x = 3, .w = 1, .y = 0, .b = 2 };
static const clnet__conv_roles transpose_backward_data_roles = { .x = 1, .w = 0, .y = 2, .b = -1 };
static const clnet__conv_roles transpose_backward_filter_roles = { .x = 1, .w = 2, .y = 0, .b = -1 };

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
#define CHECK_AND_RUN(spec, transpose, roles, dir, ...)                                           \
    check_and_run(__func__, (spec), (int)(sizeof(spec) / sizeof((spec)[0])),                     \
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
    return CHECK_AND_RUN(clnet__conv_forward_spec, 0, clnet__conv_forward_roles,
                         FORWARD, x, w, b, y);
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
    return CHECK_AND_RUN(clnet__conv_forward_spec, 1, transpose_forward_roles,
                         BACKWARD_DATA, x, w, b, y);
}

CLNET_API clnet_status clnet_conv2d_transpose_backward_data(const clnet_conv2d_params *p,
                                                            const clnet_tensor *w,
                                                            const clnet_tensor *dy,
                                                            clnet_tensor *dx)
{
    return CHECK_AND_RUN(clnet__conv_backward_data_spec, 1, transpose_backward_data_roles,
                         FORWARD, w, dy, dx);
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
