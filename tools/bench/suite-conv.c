/* clnet-bench suite "conv": 2-D convolution (NCHW, stride 1, 3x3) at the
 * reference CNN's layers and a ResNet-style layer: forward, backward-data,
 * backward-filter, and all of them as a layer's training pass. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ref.h"

enum { DIR_FWD, DIR_BWDD, DIR_BWDW, DIR_FWDBWD, NDIRS };

/* Name suffixes: benchdnn's FWD, BWD_D, BWD_W; fwdbwd is the forward, then
 * dx, dw and db from a given dy, as a layer inside a network needs. */
static const char *const dir_suffix[NDIRS] = { "fwd", "bwdd", "bwdw", "fwdbwd" };
static const char *const dir_about[NDIRS] = { "forward", "backward data (dx)",
                                              "backward filter (dw)",
                                              "forward + backward (dx, dw, db)" };

typedef struct conv_shape {
    int mb, ic, ih, oc, kh, ph;
    int quick;
    const char *about;
} conv_shape;

/* The same shapes as tools/peers/peerlib.py (conv_workloads). */
static const conv_shape shapes[] = {
    { 32, 1, 28, 32, 3, 0, 1, "CNN conv1 1->32 3x3 on 28x28" },
    { 64, 1, 28, 32, 3, 0, 0, "CNN conv1 1->32 3x3 on 28x28" },
    { 32, 32, 13, 64, 3, 0, 1, "CNN conv2 32->64 3x3 on 13x13" },
    { 64, 32, 13, 64, 3, 0, 0, "CNN conv2 32->64 3x3 on 13x13" },
    { 8, 64, 56, 64, 3, 1, 0, "ResNet-style 64->64 3x3 pad 1 on 56x56" },
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

/* The float64 reference costs about 1.5 ns per multiply-add here: beyond this
 * many per direction, --check compares a smaller batch (see conv_check). */
#define REF_MACS_MAX 3.0e8

static int conv_list(int quick, bench_case *out, int max)
{
    static char abouts[NSHAPES][NDIRS][96];
    int count = 0;
    for (size_t i = 0; i < NSHAPES; i++) {
        const conv_shape *s = &shapes[i];
        if (quick && !s->quick)
            continue;
        double oh = s->ih + 2 * s->ph - s->kh + 1;
        double x = (double)s->mb * s->ic * s->ih * s->ih, w = (double)s->oc * s->ic * s->kh * s->kh;
        double y = (double)s->mb * s->oc * oh * oh;
        double f = 2.0 * s->mb * s->oc * oh * oh * s->ic * s->kh * s->kh;
        const double flops[NDIRS] = { f, f, f, 3 * f };
        const double bytes[NDIRS] = { 4 * (x + w + s->oc + y), 4 * (y + w + x), 4 * (x + y + w),
                                      4 * (x + w + s->oc + y) +
                                          4 * ((y + w + x) + (x + y + w + s->oc)) };
        for (int d = 0; d < NDIRS && count < max; d++) {
            bench_case *c = &out[count++];
            memset(c, 0, sizeof *c);
            char ph[16] = ""; /* benchdnn's descriptors name the padding only when not 0 */
            if (s->ph)
                snprintf(ph, sizeof ph, "ph%d", s->ph);
            snprintf(c->name, sizeof c->name, "conv_mb%dic%dih%doc%dkh%d%s_%s", s->mb, s->ic, s->ih,
                     s->oc, s->kh, ph, dir_suffix[d]);
            snprintf(abouts[i][d], sizeof abouts[i][d], "%s, %s", s->about, dir_about[d]);
            c->about = abouts[i][d];
            c->quick = s->quick;
            c->flops = flops[d];
            c->bytes = bytes[d];
            const int64_t p[8] = { s->mb, s->ic, s->ih, s->oc, s->kh, s->ph, d, 0 };
            memcpy(c->p, p, sizeof p);
        }
    }
    return count;
}

typedef struct conv_state {
    clnet_conv2d_params cp;
    ref_conv2d rp;
    int dir, oh;
    size_t nx, nw, ny;
    clnet_tensor *x, *w, *b, *dy;   /* inputs */
    clnet_tensor *y, *dx, *dw, *db; /* outputs, the direction's only */
} conv_state;

static void describe(const bench_case *c, conv_state *s)
{
    int n = (int)c->p[0], ch = (int)c->p[1], h = (int)c->p[2], k = (int)c->p[3];
    int r = (int)c->p[4], pad = (int)c->p[5];
    clnet_conv2d_params cp = CLNET_CONV2D_PARAMS_DEFAULT;
    cp.pad_top = cp.pad_bottom = cp.pad_left = cp.pad_right = pad;
    s->cp = cp;
    s->rp = (ref_conv2d){ .n = n,
                          .c = ch,
                          .h = h,
                          .w = h,
                          .k = k,
                          .r = r,
                          .s = r,
                          .stride_h = 1,
                          .stride_w = 1,
                          .pad_t = pad,
                          .pad_b = pad,
                          .pad_l = pad,
                          .pad_r = pad,
                          .dil_h = 1,
                          .dil_w = 1 };
    s->dir = (int)c->p[6];
    s->oh = ref_conv2d_out_h(&s->rp);
    s->nx = (size_t)n * ch * h * h;
    s->nw = (size_t)k * ch * r * r;
    s->ny = (size_t)n * k * s->oh * s->oh;
}

/* Exact mode (docs/testing.md): integers in [-lim, lim] such that every partial
 * sum of every direction (C*R*S products and the bias, K*R*S, N*OH*OW)
 * stays below 2^24 in magnitude, so any summation order is exact. */
static int int_limit(const conv_state *s)
{
    const ref_conv2d *p = &s->rp;
    double terms = fmax(fmax(p->c * p->r * p->s + 1.0, (double)p->k * p->r * p->s),
                        (double)p->n * s->oh * s->oh);
    int lim = 8;
    while (lim > 1 && (double)lim * lim * terms >= 16777216.0)
        lim--;
    return lim;
}

/* x, w, b, dy one after the other; the same on every device. */
static double *make_inputs(const conv_state *s)
{
    size_t k = (size_t)s->rp.k, total = s->nx + s->nw + k + s->ny;
    double *v = malloc(total * sizeof *v);
    if (!v)
        return NULL;
    uint64_t rng = 0xc0117e57ull ^ ((uint64_t)s->rp.n << 32) ^ ((uint64_t)s->rp.c << 20) ^
                   ((uint64_t)s->rp.h << 10) ^ k;
    int lim = int_limit(s);
    ref_fill_int(v, total, -lim, lim, &rng);
    return v;
}

static void conv_teardown(void *state)
{
    conv_state *s = state;
    if (!s)
        return;
    clnet_tensor *ts[] = { s->db, s->dw, s->dx, s->y, s->dy, s->b, s->w, s->x };
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        clnet_tensor_destroy(ts[i]);
    free(s);
}

static int wants(const conv_state *s, int dir)
{
    return s->dir == dir || s->dir == DIR_FWDBWD;
}

static clnet_status conv_setup(clnet_context *ctx, const bench_case *c, void **state)
{
    *state = NULL;
    conv_state *s = calloc(1, sizeof *s);
    if (!s)
        return CLNET_ERR_HOST_MEMORY;
    describe(c, s);
    const ref_conv2d *p = &s->rp;
    const int64_t xs[4] = { p->n, p->c, p->h, p->w }, ws[4] = { p->k, p->c, p->r, p->s };
    const int64_t ys[4] = { p->n, p->k, s->oh, s->oh }, bs[1] = { p->k };
    double *v = make_inputs(s);
    clnet_status st = v ? CLNET_OK : CLNET_ERR_HOST_MEMORY;
    if (!st && !(st = bench_tensor_from(ctx, 4, xs, v, &s->x)) &&
        !(st = bench_tensor_from(ctx, 4, ws, v + s->nx, &s->w)) &&
        !(st = bench_tensor_from(ctx, 1, bs, v + s->nx + s->nw, &s->b)))
        st = bench_tensor_from(ctx, 4, ys, v + s->nx + s->nw + p->k, &s->dy);
    /* Outputs start as NaN: an element a run leaves unwritten fails the check. */
    if (!st && wants(s, DIR_FWD))
        st = bench_tensor_nan(ctx, 4, ys, &s->y);
    if (!st && wants(s, DIR_BWDD))
        st = bench_tensor_nan(ctx, 4, xs, &s->dx);
    if (!st && wants(s, DIR_BWDW))
        st = bench_tensor_nan(ctx, 4, ws, &s->dw);
    if (!st && s->dir == DIR_FWDBWD)
        st = bench_tensor_nan(ctx, 1, bs, &s->db);
    free(v);
    if (st) {
        conv_teardown(s);
        return st;
    }
    *state = s;
    return CLNET_OK;
}

static clnet_status conv_run(void *state)
{
    conv_state *s = state;
    clnet_status st = CLNET_OK;
    if (wants(s, DIR_FWD))
        st = clnet_conv2d_forward(&s->cp, s->x, s->w, s->b, s->y);
    if (!st && wants(s, DIR_BWDD))
        st = clnet_conv2d_backward_data(&s->cp, s->w, s->dy, s->dx);
    if (!st && wants(s, DIR_BWDW))
        st = clnet_conv2d_backward_filter(&s->cp, s->x, s->dy, s->dw);
    if (!st && s->dir == DIR_FWDBWD)
        st = clnet_conv2d_backward_bias(s->dy, s->db);
    return st;
}

/* How many images --check compares: all, unless the float64 reference would
 * cost more than REF_MACS_MAX multiply-adds per direction. */
static int checked_batch(const conv_state *s)
{
    const ref_conv2d *p = &s->rp;
    double per_image = (double)p->k * p->c * p->r * p->s * s->oh * s->oh;
    int nc = (int)(REF_MACS_MAX / per_image);
    return nc < 1 ? 1 : nc > p->n ? p->n : nc;
}

/* Reference outputs for the first nc images, in the order y, dx, dw, db (the
 * direction's only); one block. */
static double *reference(const conv_state *s, int nc)
{
    ref_conv2d p = s->rp;
    p.n = nc;
    size_t per_x = s->nx / (size_t)s->rp.n, per_y = s->ny / (size_t)s->rp.n, k = (size_t)p.k;
    size_t total = (wants(s, DIR_FWD) ? nc * per_y : 0) + (wants(s, DIR_BWDD) ? nc * per_x : 0) +
                   (wants(s, DIR_BWDW) ? s->nw : 0) + (s->dir == DIR_FWDBWD ? k : 0);
    double *v = make_inputs(s), *ref = malloc((total ? total : 1) * sizeof *ref);
    if (!v || !ref) {
        free(v);
        free(ref);
        return NULL;
    }
    const double *x = v, *w = v + s->nx, *b = w + s->nw, *dy = b + k;
    double *out = ref;
    if (wants(s, DIR_FWD)) {
        ref_conv2d_forward(&p, x, w, b, out);
        out += nc * per_y;
    }
    if (wants(s, DIR_BWDD)) {
        ref_conv2d_backward_data(&p, w, dy, out);
        out += nc * per_x;
    }
    if (wants(s, DIR_BWDW)) {
        ref_conv2d_backward_filter(&p, x, dy, out);
        out += s->nw;
    }
    if (s->dir == DIR_FWDBWD)
        ref_conv2d_backward_bias(&p, dy, out);
    free(v);
    return ref;
}

/* With a reduced batch, dw and db (sums over the batch) are computed again
 * from the first nc images, by the same calls. */
static clnet_status rerun_reduced(conv_state *s, int nc)
{
    clnet_tensor *xs = NULL, *dys = NULL;
    clnet_status st = clnet_tensor_slice(s->x, 0, nc, &xs);
    if (!st)
        st = clnet_tensor_slice(s->dy, 0, nc, &dys);
    if (!st)
        st = clnet_tensor_fill(s->dw, NAN);
    if (!st)
        st = clnet_conv2d_backward_filter(&s->cp, xs, dys, s->dw);
    if (!st && s->db && !(st = clnet_tensor_fill(s->db, NAN)))
        st = clnet_conv2d_backward_bias(dys, s->db);
    clnet_tensor_destroy(dys);
    clnet_tensor_destroy(xs);
    return st;
}

/* Compares the first `count` elements of t with ref. */
static clnet_status compare(bench_check *out, const clnet_tensor *t, const double *ref,
                            size_t count, int *inject)
{
    float *got;
    clnet_status st = bench_download(t, &got);
    if (st)
        return st;
    if (*inject) {
        got[count / 2] += 1.0f;
        *inject = 0;
    }
    bench_check_span(out, got, ref, NULL, count);
    free(got);
    return CLNET_OK;
}

static clnet_status conv_check(void *state, const bench_case *c, void **ref_cache, int inject_fault,
                               bench_check *out)
{
    (void)c;
    conv_state *s = state;
    int n = s->rp.n, nc = checked_batch(s);
    if (!*ref_cache && !(*ref_cache = reference(s, nc)))
        return CLNET_ERR_HOST_MEMORY;
    clnet_status st = nc < n && wants(s, DIR_BWDW) ? rerun_reduced(s, nc) : CLNET_OK;
    if (st)
        return st;
    char method[48];
    snprintf(method, sizeof method, "exact (integers in [-%d, %d], tolerance 0)", int_limit(s),
             int_limit(s));
    bench_check_begin(out, method);
    if (nc < n)
        snprintf(out->note, sizeof out->note,
                 "first %d of %d images checked (float64 reference cost)%s", nc, n,
                 s->dir == DIR_FWDBWD ? "; dw, db rerun on them"
                 : s->dir == DIR_BWDW ? "; dw rerun on them"
                                      : "");
    const double *ref = *ref_cache;
    size_t per_x = s->nx / (size_t)n, per_y = s->ny / (size_t)n;
    if (wants(s, DIR_FWD) && !(st = compare(out, s->y, ref, nc * per_y, &inject_fault)))
        ref += nc * per_y;
    if (!st && wants(s, DIR_BWDD) && !(st = compare(out, s->dx, ref, nc * per_x, &inject_fault)))
        ref += nc * per_x;
    if (!st && wants(s, DIR_BWDW) && !(st = compare(out, s->dw, ref, s->nw, &inject_fault)))
        ref += s->nw;
    if (!st && s->dir == DIR_FWDBWD)
        st = compare(out, s->db, ref, (size_t)s->rp.k, &inject_fault);
    bench_check_end(out);
    return st;
}

const bench_suite bench_suite_conv = {
    .name = "conv",
    .about = "2-D convolution, NCHW float32, stride 1, with bias, through clnet_conv2d_*",
    .list = conv_list,
    .setup = conv_setup,
    .run = conv_run,
    .check = conv_check,
    .teardown = conv_teardown,
};
