/* clnet — the direct convolutions (cl/conv.cl's conv_packed and
 * conv_filter, cl/conv_wide.cl): packed weights, padded inputs, the data
 * gradient by stride phases and the filter gradient in slices. Chosen by
 * src/ops/conv.c. */
#include <limits.h>

#include "ops/conv_direct.h"

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
    return LAUNCH(ctx, func, "pack_weights", (size_t)ci * r * s * cop, CLNET_ARG_MEM(clnet__mem(w)),
                  CLNET_ARG_ULONG(w->offset + (size_t)wo), CLNET_ARG_INT(st[0]),
                  CLNET_ARG_INT(st[1]), CLNET_ARG_INT(st[2]), CLNET_ARG_INT(st[3]),
                  CLNET_ARG_MEM(pk), CLNET_ARG_ULONG(pko), CLNET_ARG_INT(ci), CLNET_ARG_INT(co),
                  CLNET_ARG_INT(cop), CLNET_ARG_INT(r), CLNET_ARG_INT(s));
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
#define PACKED_ARGS(L)                                                                             \
    CLNET_ARG_MEM((L)->x), CLNET_ARG_ULONG((L)->xo), CLNET_ARG_ULONG((L)->xsn),                    \
        CLNET_ARG_ULONG((L)->xsc), CLNET_ARG_INT((L)->xsy), CLNET_ARG_MEM((L)->pk),                \
        CLNET_ARG_ULONG((L)->pko), CLNET_ARG_INT((L)->cop),                                        \
        CLNET_ARG_MEM((L)->b ? clnet__mem((L)->b) : (L)->pk),                                      \
        CLNET_ARG_ULONG((L)->b ? (L)->b->offset : 0), CLNET_ARG_INT((L)->b != NULL),               \
        CLNET_ARG_MEM((L)->y), CLNET_ARG_ULONG((L)->yo), CLNET_ARG_ULONG((L)->ysn),                \
        CLNET_ARG_ULONG((L)->yso), CLNET_ARG_INT((L)->ysi), CLNET_ARG_INT((L)->ysj),               \
        CLNET_ARG_INT((L)->n), CLNET_ARG_INT((L)->ci), CLNET_ARG_INT((L)->co),                     \
        CLNET_ARG_INT((L)->r), CLNET_ARG_INT((L)->s), CLNET_ARG_INT((L)->oh),                      \
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
        *L = (packed_launch){ .x = clnet__mem(x),
                              .xo = x->offset + n0 * chw,
                              .xsn = chw,
                              .xsc = (size_t)g->h * g->w,
                              .xsy = g->w };
        return CLNET_OK;
    }
    *L = (packed_launch){
        .x = ws, .xo = at, .xsn = (size_t)g->c * hp * wp, .xsc = (size_t)hp * wp, .xsy = wp
    };
    return pad_copy(ctx, func, clnet__mem(x), x->offset + n0 * chw, cnt, g->c, g->h, g->w, ws, at,
                    hp, wp, g->pt, g->pl);
}

/* y = conv(x, w) + b by conv_packed, or with wide by conv_wide where it
 * applies, over (a padded copy of) x. */
clnet_status clnet__conv_forward_direct(clnet_context *ctx, const char *func, const geom *g,
                                        const clnet_tensor *x, const clnet_tensor *w,
                                        const clnet_tensor *b, const clnet_tensor *y, int wide)
{
    int cop = round8(g->k), hp, wp;
    size_t pk_n = (size_t)g->c * g->r * g->s * cop, P = (size_t)g->oh * g->ow;
    size_t per = padded_extent(g, &hp, &wp) ? (size_t)g->c * hp * wp : 0;
    size_t nb = per ? clnet__conv_chunk_images(ctx, per, (size_t)g->n) : (size_t)g->n;
    const int st[4] = { g->c * g->r * g->s, g->r * g->s, g->s, 1 };
    cl_mem ws;
    clnet_status st_ = clnet__workspace(ctx, (pk_n + nb * per) * sizeof(float), &ws);
    if (st_ || (st_ = pack_weights(ctx, func, w, 0, st, g->c, g->k, cop, g->r, g->s, ws, 0)))
        return st_;
    for (size_t n0 = 0; n0 < (size_t)g->n && !st_; n0 += nb) {
        packed_launch L;
        int cnt = (int)clnet__conv_min(nb, (size_t)g->n - n0);
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
    phase ph = { a < size ? (size - a + stride - 1) / stride : 0, 0, 0, 0 };
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
        const int st[4] = { g->r * g->s, g->c * g->r * g->s, -sth * g->s, -stw };
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
clnet_status clnet__conv_backward_data_direct(clnet_context *ctx, const char *func, const geom *g,
                                              const clnet_tensor *w, const clnet_tensor *dy,
                                              const clnet_tensor *b, const clnet_tensor *dx,
                                              int wide)
{
    dy_copy cp;
    phase_extent(g->h, g->r, g->sh, g->pt, g->dh, &cp.top, &cp.hp);
    phase_extent(g->w, g->s, g->sw, g->pl, g->dw, &cp.left, &cp.wp);
    size_t pk_n = (size_t)g->k * g->r * g->s * round8(g->c), per = (size_t)g->k * cp.hp * cp.wp;
    size_t nb = clnet__conv_chunk_images(ctx, per, (size_t)g->n), pko = 0,
           P = (size_t)g->oh * g->ow;
    size_t chw = (size_t)g->c * g->h * g->w;
    packed_launch L = { .xo = pk_n,
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
                        .wide = wide };
    clnet_status st = clnet__workspace(ctx, (pk_n + nb * per) * sizeof(float), &L.x);
    L.pk = L.x;
    for (int a = 0; a < g->sh && a < g->h && !st; a++)
        for (int c = 0; c < g->sw && c < g->w && !st; c++)
            st = data_phase(ctx, func, g, w, &cp, a, c, &pko, &L, 1);
    for (size_t n0 = 0; n0 < (size_t)g->n && !st; n0 += nb) {
        L.n = (int)clnet__conv_min(nb, (size_t)g->n - n0);
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
        st = CLNET_RUN1D(
            ctx, func, "conv_wide", "conv_filter_wide", F->slices * F->items, CLNET_ARG_MEM(L->x),
            CLNET_ARG_ULONG(L->xo), CLNET_ARG_ULONG(L->xsn), CLNET_ARG_ULONG(L->xsc),
            CLNET_ARG_INT(L->xsy), CLNET_ARG_MEM(F->dy), CLNET_ARG_ULONG(F->dyo),
            CLNET_ARG_MEM(out), CLNET_ARG_ULONG(outo), CLNET_ARG_ULONG(count),
            CLNET_ARG_INT(F->slices), CLNET_ARG_INT(!split && acc), CLNET_ARG_INT(cnt),
            CLNET_ARG_INT(g->k), CLNET_ARG_INT(g->c), CLNET_ARG_INT(g->r), CLNET_ARG_INT(g->s),
            CLNET_ARG_INT(g->oh), CLNET_ARG_INT(g->ow), CLNET_ARG_INT(g->dh), CLNET_ARG_INT(g->dw));
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
clnet_status clnet__conv_backward_filter_direct(clnet_context *ctx, const char *func, const geom *g,
                                                const clnet_tensor *x, const clnet_tensor *dy,
                                                const clnet_tensor *dw, int wide)
{
    int hp, wp;
    size_t P = (size_t)g->oh * g->ow, crs = (size_t)g->c * g->r * g->s;
    filter_launch F = { .g = g, .dy = clnet__mem(dy), .kp = round8(g->k) };
    F.wide = wide && g->sh == 1 && g->sw == 1;
    size_t dyper = F.wide ? 0 : P * F.kp; /* the packed dy, first in ws */
    size_t xper = padded_extent(g, &hp, &wp) ? (size_t)g->c * hp * wp : 0;
    size_t nb = clnet__conv_chunk_images(ctx, dyper + xper, (size_t)g->n);
    F.items =
        F.wide ? (size_t)((g->k + 3) / 4) * ((crs + 2) / 3) : (size_t)(F.kp / 8) * ((crs + 7) / 8);
    F.slices = filter_slices(ctx, F.items, nb * g->oh, nb * P);
    F.part = nb * (dyper + xper); /* the partial sums after dy and x */
    size_t count = (size_t)g->k * crs;
    clnet_status st = clnet__workspace(
        ctx, (F.part + (F.slices > 1 ? F.slices * count : 0)) * sizeof(float), &F.ws);
    for (size_t n0 = 0; n0 < (size_t)g->n && !st; n0 += nb) {
        int cnt = (int)clnet__conv_min(nb, (size_t)g->n - n0);
        packed_launch L;
        F.dyo = dy->offset + n0 * g->k * P;
        if ((!F.wide && (st = LAUNCH(ctx, func, "pack_dy", cnt * P, CLNET_ARG_MEM(F.dy),
                                     CLNET_ARG_ULONG(F.dyo), CLNET_ARG_MEM(F.ws),
                                     CLNET_ARG_ULONG(0), CLNET_ARG_INT(cnt), CLNET_ARG_INT(g->k),
                                     CLNET_ARG_INT(F.kp), CLNET_ARG_INT(P)))) ||
            (st = direct_input(ctx, func, g, x, n0, cnt, F.ws, nb * dyper, &L)) ||
            (st = filter_chunk(ctx, func, &F, &L, cnt, dw, n0 > 0)))
            break;
    }
    return st;
}
