/* clnet-bench suite "pool": 2x2 max pooling, stride 2, on the reference
 * CNN's two pooling layers at batch 32 and 64, forward and forward +
 * backward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ref.h"

typedef struct pool_shape {
    int mb, ic, ih;
    const char *about;
} pool_shape;

/* The same shapes as tools/peers/peerlib.py (pool_workloads). */
static const pool_shape shapes[] = {
    { 32, 32, 26, "CNN pool1 26->13" },
    { 64, 32, 26, "CNN pool1 26->13" },
    { 32, 64, 11, "CNN pool2 11->5" },
    { 64, 64, 11, "CNN pool2 11->5" },
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static int pool_list(int quick, bench_case *out, int max)
{
    (void)quick; /* all are small: every case is in the quick set */
    static char abouts[NSHAPES][2][64];
    int count = 0;
    for (size_t i = 0; i < NSHAPES; i++) {
        const pool_shape *s = &shapes[i];
        int oh = s->ih / 2;
        double x = (double)s->mb * s->ic * s->ih * s->ih, y = (double)s->mb * s->ic * oh * oh;
        for (int bwd = 0; bwd < 2 && count < max; bwd++) {
            bench_case *c = &out[count++];
            memset(c, 0, sizeof *c);
            snprintf(c->name, sizeof c->name, "pool_max_mb%dic%dih%dkh2_%s", s->mb, s->ic, s->ih,
                     bwd ? "fwdbwd" : "fwd");
            snprintf(abouts[i][bwd], sizeof abouts[i][bwd], "%s, %s", s->about,
                     bwd ? "forward + backward" : "forward");
            c->about = abouts[i][bwd];
            c->quick = 1;
            /* fwd reads x, writes y; bwd reads dy (and x again for the
             * argmax: counted as in the peers' formula, 2y + x). */
            c->bytes = 4.0 * (x + y) + (bwd ? 4.0 * (2 * y + x) : 0.0);
            const int64_t p[8] = { s->mb, s->ic, s->ih, bwd };
            memcpy(c->p, p, sizeof p);
        }
    }
    return count;
}

typedef struct pool_state {
    clnet_pool2d_params pp;
    ref_pool2d rp;
    int bwd;
    size_t nx, ny;
    clnet_tensor *x, *dy, *y, *dx;
} pool_state;

static void describe(const bench_case *c, pool_state *s)
{
    clnet_pool2d_params pp = CLNET_POOL2D_PARAMS_DEFAULT; /* 2x2, stride 2, no padding */
    s->pp = pp;
    int n = (int)c->p[0], ch = (int)c->p[1], h = (int)c->p[2];
    s->rp = (ref_pool2d){
        .n = n, .c = ch, .h = h, .w = h, .kh = 2, .kw = 2, .stride_h = 2, .stride_w = 2
    };
    s->bwd = (int)c->p[3];
    int oh = ref_pool2d_out_h(&s->rp);
    s->nx = (size_t)n * ch * h * h;
    s->ny = (size_t)n * ch * oh * oh;
}

/* x uniform in [-1, 1), then dy, rounded to float32 (so the reference sees
 * exactly the device's values, ties included); the same on every device. */
static double *make_inputs(const pool_state *s)
{
    size_t total = s->nx + s->ny;
    double *v = malloc(total * sizeof *v);
    if (!v)
        return NULL;
    uint64_t rng =
        0x9001ull ^ ((uint64_t)s->rp.n << 32) ^ ((uint64_t)s->rp.c << 16) ^ (uint64_t)s->rp.h;
    ref_fill_uniform(v, total, -1.0, 1.0, &rng);
    bench_round_to_float(v, total);
    return v;
}

static void pool_teardown(void *state)
{
    pool_state *s = state;
    if (!s)
        return;
    clnet_tensor_destroy(s->dx);
    clnet_tensor_destroy(s->y);
    clnet_tensor_destroy(s->dy);
    clnet_tensor_destroy(s->x);
    free(s);
}

static clnet_status pool_setup(clnet_context *ctx, const bench_case *c, void **state)
{
    *state = NULL;
    pool_state *s = calloc(1, sizeof *s);
    if (!s)
        return CLNET_ERR_HOST_MEMORY;
    describe(c, s);
    const ref_pool2d *p = &s->rp;
    int oh = ref_pool2d_out_h(p);
    const int64_t xs[4] = { p->n, p->c, p->h, p->w }, ys[4] = { p->n, p->c, oh, oh };
    double *v = make_inputs(s);
    clnet_status st = v ? CLNET_OK : CLNET_ERR_HOST_MEMORY;
    if (!st && !(st = bench_tensor_from(ctx, 4, xs, v, &s->x)) &&
        !(st = bench_tensor_from(ctx, 4, ys, v + s->nx, &s->dy)))
        st = bench_tensor_nan(ctx, 4, ys, &s->y);
    if (!st && s->bwd)
        st = bench_tensor_nan(ctx, 4, xs, &s->dx);
    free(v);
    if (st) {
        pool_teardown(s);
        return st;
    }
    *state = s;
    return CLNET_OK;
}

static clnet_status pool_run(void *state)
{
    pool_state *s = state;
    clnet_status st = clnet_pool2d_max_forward(&s->pp, s->x, s->y);
    if (!st && s->bwd)
        st = clnet_pool2d_max_backward(&s->pp, s->x, s->dy, s->dx);
    return st;
}

/* y, then dx (fwdbwd), in one block. */
static double *reference(const pool_state *s)
{
    double *v = make_inputs(s), *ref = malloc((s->ny + s->nx) * sizeof *ref);
    if (!v || !ref) {
        free(v);
        free(ref);
        return NULL;
    }
    ref_pool2d_max_forward(&s->rp, v, ref);
    if (s->bwd)
        ref_pool2d_max_backward(&s->rp, v, v + s->nx, ref + s->ny);
    free(v);
    return ref;
}

static clnet_status pool_check(void *state, const bench_case *c, void **ref_cache, int inject_fault,
                               bench_check *out)
{
    (void)c;
    pool_state *s = state;
    if (!*ref_cache && !(*ref_cache = reference(s)))
        return CLNET_ERR_HOST_MEMORY;
    const double *ref = *ref_cache;
    float *y = NULL, *dx = NULL;
    clnet_status st = bench_download(s->y, &y);
    if (!st && s->bwd)
        st = bench_download(s->dx, &dx);
    if (!st) {
        if (inject_fault)
            y[s->ny / 2] += 1.0f;
        /* Max pooling selects an element, and with stride = window each x
         * element receives at most one dy: both directions are exact. */
        bench_check_begin(out, "exact (selection, tolerance 0)");
        bench_check_span(out, y, ref, NULL, s->ny);
        if (s->bwd)
            bench_check_span(out, dx, ref + s->ny, NULL, s->nx);
        bench_check_end(out);
    }
    free(dx);
    free(y);
    return st;
}

const bench_suite bench_suite_pool = {
    .name = "pool",
    .about = "2x2 max pooling, stride 2, NCHW float32, through clnet_pool2d_max_*",
    .list = pool_list,
    .setup = pool_setup,
    .run = pool_run,
    .check = pool_check,
    .teardown = pool_teardown,
};
