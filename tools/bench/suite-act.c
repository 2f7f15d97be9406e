/* clnet-bench suite "act": relu, sigmoid and tanh on 2^20 elements, and
 * softmax over the last axis at a classifier's output (32 x 10) and a large
 * one (1024 x 1000), forward and forward + backward. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ref.h"

enum { K_RELU, K_SIGMOID, K_TANH, K_SOFTMAX, NKINDS };

static const char *const kind_name[NKINDS] = { "relu", "sigmoid", "tanh", "softmax" };
static const clnet_activation kind_act[NKINDS] = { CLNET_ACT_RELU, CLNET_ACT_SIGMOID,
                                                   CLNET_ACT_TANH, CLNET_ACT_NONE };

typedef struct act_shape {
    int kind, rows, cols;
} act_shape;

/* The same list as tools/peers/peerlib.py (act_workloads). */
static const act_shape shapes[] = {
    { K_RELU, 1, 1 << 20 }, { K_SIGMOID, 1, 1 << 20 }, { K_TANH, 1, 1 << 20 },
    { K_SOFTMAX, 32, 10 },  { K_SOFTMAX, 1024, 1000 },
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static int act_list(int quick, bench_case *out, int max)
{
    (void)quick; /* every case takes milliseconds: all are in the quick set */
    static char abouts[NSHAPES][2][64];
    int count = 0;
    for (size_t i = 0; i < NSHAPES; i++) {
        const act_shape *s = &shapes[i];
        double n = (double)s->rows * s->cols;
        for (int bwd = 0; bwd < 2 && count < max; bwd++) {
            bench_case *c = &out[count++];
            memset(c, 0, sizeof *c);
            const char *dir = bwd ? "fwdbwd" : "fwd";
            if (s->kind == K_SOFTMAX)
                snprintf(c->name, sizeof c->name, "act_softmax_r%dc%d_%s", s->rows, s->cols, dir);
            else
                snprintf(c->name, sizeof c->name, "act_%s_n%d_%s", kind_name[s->kind], s->cols,
                         dir);
            snprintf(abouts[i][bwd], sizeof abouts[i][bwd], "%s %s", kind_name[s->kind],
                     bwd ? "forward + backward" : "forward");
            c->about = abouts[i][bwd];
            c->quick = 1;
            /* fwd reads x, writes y; bwd reads y (or x) and dy, writes dx. */
            c->bytes = bwd ? 20.0 * n : 8.0 * n;
            const int64_t p[8] = { s->kind, s->rows, s->cols, bwd };
            memcpy(c->p, p, sizeof p);
        }
    }
    return count;
}

typedef struct act_state {
    int kind, rows, cols, bwd;
    size_t n;
    clnet_tensor *x, *dy, *y, *dx;
} act_state;

static void describe(const bench_case *c, act_state *s)
{
    s->kind = (int)c->p[0];
    s->rows = (int)c->p[1];
    s->cols = (int)c->p[2];
    s->bwd = (int)c->p[3];
    s->n = (size_t)s->rows * (size_t)s->cols;
}

/* x, then dy, uniform in [-1, 1) as the peers', rounded to float32; the same
 * on every device. */
static double *make_inputs(const act_state *s)
{
    double *v = malloc(2 * s->n * sizeof *v);
    if (!v)
        return NULL;
    uint64_t rng =
        0xac7ull ^ ((uint64_t)s->kind << 40) ^ ((uint64_t)s->rows << 20) ^ (uint64_t)s->cols;
    ref_fill_uniform(v, 2 * s->n, -1.0, 1.0, &rng);
    bench_round_to_float(v, 2 * s->n);
    return v;
}

static void act_teardown(void *state)
{
    act_state *s = state;
    if (!s)
        return;
    clnet_tensor_destroy(s->dx);
    clnet_tensor_destroy(s->y);
    clnet_tensor_destroy(s->dy);
    clnet_tensor_destroy(s->x);
    free(s);
}

static clnet_status act_setup(clnet_context *ctx, const bench_case *c, void **state)
{
    *state = NULL;
    act_state *s = calloc(1, sizeof *s);
    if (!s)
        return CLNET_ERR_HOST_MEMORY;
    describe(c, s);
    /* Elementwise ops take a flat vector, softmax (rows, cols). */
    int ndim = s->kind == K_SOFTMAX ? 2 : 1;
    const int64_t shape[2] = { ndim == 2 ? s->rows : s->cols, s->cols };
    double *v = make_inputs(s);
    clnet_status st = v ? CLNET_OK : CLNET_ERR_HOST_MEMORY;
    if (!st && !(st = bench_tensor_from(ctx, ndim, shape, v, &s->x)) &&
        !(st = bench_tensor_from(ctx, ndim, shape, v + s->n, &s->dy)))
        st = bench_tensor_nan(ctx, ndim, shape, &s->y);
    if (!st && s->bwd)
        st = bench_tensor_nan(ctx, ndim, shape, &s->dx);
    free(v);
    if (st) {
        act_teardown(s);
        return st;
    }
    *state = s;
    return CLNET_OK;
}

static clnet_status act_run(void *state)
{
    act_state *s = state;
    if (s->kind == K_SOFTMAX) {
        clnet_status st = clnet_softmax_forward(s->x, s->y);
        return st || !s->bwd ? st : clnet_softmax_backward(s->y, s->dy, s->dx);
    }
    clnet_activation act = kind_act[s->kind];
    clnet_status st = clnet_activation_forward(act, 0.0f, s->x, s->y);
    if (st || !s->bwd)
        return st;
    /* Each backward reads what a layer keeps: relu x, sigmoid and tanh y. */
    return s->kind == K_RELU ? clnet_activation_backward(act, 0.0f, s->x, NULL, s->dy, s->dx)
                             : clnet_activation_backward(act, 0.0f, NULL, s->y, s->dy, s->dx);
}

/* ---- Checking --------------------------------------------------------------
 * The bounds of tests/test-act.c, which explains them; u = 2^-24, TINY an
 * absolute floor for denormal results. The backward is compared with the
 * reference computed from the device's own y (as a layer would use it), so
 * that each kernel is held to its own bound. Softmax rows: the longest chain
 * of additions (depth) is at most cols + 11 for either kernel variant (a row
 * per work-item: cols; per work-group of up to 2^11: cols / WG + log2 WG). */
#define U 0x1.0p-24
#define TINY 0x1.0p-126

static void softmax_fwd_bounds(const act_state *s, const double *x, const double *y, double *b)
{
    double depth = s->cols + 11.0;
    for (int r = 0; r < s->rows; r++) {
        const double *xr = x + (size_t)r * s->cols;
        double m = xr[0], R = 0;
        for (int j = 1; j < s->cols; j++)
            m = fmax(m, xr[j]);
        for (int j = 0; j < s->cols; j++)
            R = fmax(R, fmin(m - xr[j], 110.0));
        for (int j = 0; j < s->cols; j++) {
            size_t k = (size_t)r * s->cols + j;
            b[k] = (2 * depth + 2 * R + 16) * U * fabs(y[k]) + TINY;
        }
    }
}

static void softmax_bwd_bounds(const act_state *s, const double *y, const double *dy, double *b)
{
    double depth = s->cols + 11.0;
    for (int r = 0; r < s->rows; r++) {
        size_t o = (size_t)r * s->cols;
        double A = 0;
        for (int j = 0; j < s->cols; j++)
            A += fabs(dy[o + j] * y[o + j]);
        for (int j = 0; j < s->cols; j++)
            b[o + j] =
                U * fabs(y[o + j]) * (2 * (depth + 2) * A + 2 * (fabs(dy[o + j]) + A)) + TINY;
    }
}

/* Relative bounds of the elementwise kinds (0: exact). */
static const double fwd_rel[NKINDS] = { 0, 16 * U, 12 * U, 0 };
static const double bwd_rel[NKINDS] = { 0, 4 * U, 5 * U, 0 };
static const char *const methods[NKINDS] = {
    "exact (a select, tolerance 0)",
    "16u fwd, 4u bwd from device y (test-act)",
    "12u fwd, 5u bwd from device y (test-act)",
    "row-sum bounds of test-act.c, depth cols+11",
};

/* The forward reference y and its bounds, in one block of 2n. */
static double *reference(const act_state *s)
{
    double *v = make_inputs(s), *ref = malloc(2 * s->n * sizeof *ref);
    if (!v || !ref) {
        free(v);
        free(ref);
        return NULL;
    }
    double *y = ref, *bound = ref + s->n;
    switch (s->kind) {
    case K_RELU:
        ref_act_relu_forward(s->n, v, y);
        break;
    case K_SIGMOID:
        ref_act_sigmoid_forward(s->n, v, y);
        break;
    case K_TANH:
        ref_act_tanh_forward(s->n, v, y);
        break;
    default:
        ref_softmax_forward(s->rows, s->cols, v, y);
        break;
    }
    if (s->kind == K_SOFTMAX)
        softmax_fwd_bounds(s, v, y, bound);
    else
        for (size_t i = 0; i < s->n; i++)
            bound[i] = fwd_rel[s->kind] ? fwd_rel[s->kind] * fabs(y[i]) + TINY : 0.0;
    free(v);
    return ref;
}

/* dx's reference and bounds from the inputs and the device's y. */
static clnet_status backward_reference(const act_state *s, const float *y_dev, double *dx,
                                       double *bound)
{
    double *v = make_inputs(s), *y = malloc(s->n * sizeof *y);
    if (!v || !y) {
        free(v);
        free(y);
        return CLNET_ERR_HOST_MEMORY;
    }
    const double *x = v, *dy = v + s->n;
    for (size_t i = 0; i < s->n; i++)
        y[i] = y_dev[i];
    switch (s->kind) {
    case K_RELU:
        ref_act_relu_backward(s->n, x, dy, dx);
        break;
    case K_SIGMOID:
        ref_act_sigmoid_backward(s->n, y, dy, dx);
        break;
    case K_TANH:
        ref_act_tanh_backward(s->n, y, dy, dx);
        break;
    default:
        ref_softmax_backward(s->rows, s->cols, y, dy, dx);
        break;
    }
    if (s->kind == K_SOFTMAX)
        softmax_bwd_bounds(s, y, dy, bound);
    else
        for (size_t i = 0; i < s->n; i++)
            bound[i] = bwd_rel[s->kind] ? bwd_rel[s->kind] * fabs(dx[i]) + TINY : 0.0;
    free(y);
    free(v);
    return CLNET_OK;
}

static clnet_status act_check(void *state, const bench_case *c, void **ref_cache, int inject_fault,
                              bench_check *out)
{
    (void)c;
    act_state *s = state;
    if (!*ref_cache && !(*ref_cache = reference(s)))
        return CLNET_ERR_HOST_MEMORY;
    const double *ref = *ref_cache;
    float *y = NULL, *dx = NULL;
    double *bref = NULL;
    clnet_status st = bench_download(s->y, &y);
    if (!st && s->bwd && !(st = bench_download(s->dx, &dx))) {
        bref = malloc(2 * s->n * sizeof *bref);
        st = bref ? backward_reference(s, y, bref, bref + s->n) : CLNET_ERR_HOST_MEMORY;
    }
    if (!st) {
        if (inject_fault)
            y[s->n / 2] += 1.0f;
        bench_check_begin(out, methods[s->kind]);
        bench_check_span(out, y, ref, ref + s->n, s->n);
        if (s->bwd)
            bench_check_span(out, dx, bref, bref + s->n, s->n);
        bench_check_end(out);
    }
    free(bref);
    free(dx);
    free(y);
    return st;
}

const bench_suite bench_suite_act = {
    .name = "act",
    .about = "activations and softmax, float32, through clnet_activation_* and clnet_softmax_*",
    .list = act_list,
    .setup = act_setup,
    .run = act_run,
    .check = act_check,
    .teardown = act_teardown,
};
