/* clnet tests — optimizer steps and gradient clipping against the float64
 * reference (ref_optim_*), in lockstep over 5 steps, with guard bands,
 * determinism, launch counts, NaN policy and argument checks. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref.h"
#include "runtime/runtime.h"

/* ---- Tolerances ------------------------------------------------------------ *
 * Lockstep: at every step the reference starts from the device's own float
 * param and state, so each step is checked on its own and errors do not
 * compound. Bounds are derived per element from the kernels' operations, with
 * u = 2^-24 (float32's unit roundoff); OpenCL allows 5u relative for a
 * division and 6u for sqrt. Magnitudes are the float64 reference's; gmag =
 * |grad| + |weight_decay * param| bounds g' and its 2 roundings. Each bound
 * is doubled for second-order terms.
 *   SGD     buf:   4u (|momentum buf_old| + gmag)             (3 roundings + g')
 *           param: u |p_new| + u |lr dir| + lr * (bound of dir)
 *   Adam    m: 4u (|beta1 m_old| + (1 - beta1) gmag)
 *           v: 8u (|beta2 v_old| + (1 - beta2) gmag^2)       (g'^2 doubles g''s error)
 *           denom = sqrt(v) rbc2 + eps: rel (v's rel) / 2 + 8u (sqrt, rbc2, mul, add)
 *           update U = step (m / denom): |U| (7u + denom's rel) + step * (m's bound) / denom
 *           param: u |p_new| + bound of U (+ 2u |p decayed| for AdamW)
 *   RMSprop sq_avg: 8u (|alpha s_old| + (1 - alpha) gmag^2); param as Adam's with
 *           m = g' and step = lr.
 * The update is bounded relative to ITSELF, not to the param: an update off
 * by 1e-4 of its size (a wrong bias correction, eps in the wrong place) fails
 * even when it is 1e-3 of the param. CLNET_TEST_VERBOSE=1 prints the worst
 * error / bound: about 0.5 on pocl for every case, the param's final rounding
 * (u |p_new|, doubled) being the binding term. By mutation, a step size off
 * by 1e-4, eps 1% off, rbc2 inside the sqrt, Nesterov without the momentum
 * factor and dampening applied at step 1 each fail.
 *
 * Clipping: squares summed in float with chains of at most L = ceil(n_max /
 * (64 WG)) + 2 log2(WG) + ceil(P / WG) + 2 roundings (P partials): the norm
 * is within (L / 2 + 8)u relative (sum, then sqrt), the coefficient adds a
 * division and an add (6u), each clipped gradient one product (u). Doubled. */
#define U32 0x1.0p-24

static float *fmalloc(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

static double *dmalloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

static clnet_tensor *filled(clnet_context *ctx, int ndim, const int64_t *shape, double value)
{
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, ndim, shape, &t));
    CK_OK(ctx, clnet_tensor_fill(t, value));
    return t;
}

/* ---- Optimizer cases ---------------------------------------------------------- */

enum { SGD, ADAM, RMSPROP };

typedef struct opt_case {
    const char *name;
    int kind;
    clnet_sgd_params sgd;
    clnet_adam_params adam;
    clnet_rmsprop_params rms;
} opt_case;

#define SGD_CASE(nm, ...)                                                                          \
    {                                                                                              \
        .name = nm, .kind = SGD, .sgd = { __VA_ARGS__ }                                            \
    }
#define ADAM_CASE(nm, ...)                                                                         \
    {                                                                                              \
        .name = nm, .kind = ADAM, .adam = { __VA_ARGS__ }                                          \
    }
#define BETAS .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f
#define RMS_CASE(nm, ...)                                                                          \
    {                                                                                              \
        .name = nm, .kind = RMSPROP, .rms = { __VA_ARGS__ }                                        \
    }

static const opt_case cases[] = {
    SGD_CASE("sgd", .lr = 0.1f),
    SGD_CASE("sgd wd", .lr = 0.1f, .weight_decay = 0.01f),
    SGD_CASE("sgd momentum", .lr = 0.05f, .momentum = 0.9f),
    SGD_CASE("sgd momentum dampening wd", .lr = 0.05f, .momentum = 0.9f, .dampening = 0.1f,
             .weight_decay = 0.01f),
    SGD_CASE("sgd nesterov", .lr = 0.05f, .momentum = 0.9f, .nesterov = 1),
    SGD_CASE("sgd nesterov wd", .lr = 0.05f, .momentum = 0.5f, .weight_decay = 0.1f, .nesterov = 1),
    ADAM_CASE("adam", .lr = 1e-3f, BETAS),
    ADAM_CASE("adam l2", .lr = 0.05f, BETAS, .weight_decay = 0.01f),
    ADAM_CASE("adamw", .lr = 0.05f, BETAS, .weight_decay = 0.1f, .decoupled = 1),
    ADAM_CASE("adam betas 0 0.5 eps 1e-3", .lr = 0.01f, .beta1 = 0.0f, .beta2 = 0.5f, .eps = 1e-3f),
    RMS_CASE("rmsprop", .lr = 1e-2f, .alpha = 0.99f, .eps = 1e-8f),
    RMS_CASE("rmsprop alpha 0.9 wd", .lr = 1e-2f, .alpha = 0.9f, .eps = 1e-6f,
             .weight_decay = 0.01f),
};
#define NCASES (sizeof cases / sizeof cases[0])

/* Number of state tensors of a case. */
static int nstate(const opt_case *oc)
{
    return oc->kind == ADAM ? 2 : oc->kind == RMSPROP ? 1 : oc->sgd.momentum > 0;
}

/* Host copy of one step's inputs (the device's floats) and the reference. */
typedef struct step_io {
    size_t n;
    int t;
    float *p, *g, *s[2]; /* before the step */
    double *rp, *rs[2];  /* reference after the step */
    double *bp, *bs[2];  /* their bounds */
} step_io;

static double gmag(double g, double wd, double p)
{
    return fabs(g) + fabs(wd * p);
}

static void sgd_ref(const opt_case *oc, step_io *io)
{
    const clnet_sgd_params *c = &oc->sgd;
    ref_sgd o = { c->lr, c->momentum, c->dampening, c->weight_decay, c->nesterov };
    double *g = dmalloc(io->n);
    for (size_t i = 0; i < io->n; i++) {
        io->rp[i] = io->p[i];
        g[i] = io->g[i];
        if (nstate(oc))
            io->rs[0][i] = io->t == 1 ? 0.0 : io->s[0][i];
    }
    ref_optim_sgd_step(&o, io->n, io->t, io->rp, g, nstate(oc) ? io->rs[0] : NULL);
    for (size_t i = 0; i < io->n; i++) {
        double gm = gmag(io->g[i], o.weight_decay, io->p[i]),
               gp = io->g[i] + o.weight_decay * io->p[i];
        double dir = gp, bdir = 2 * U32 * gm;
        if (nstate(oc)) {
            double old = io->t == 1 ? 0.0 : io->s[0][i], b = io->rs[0][i];
            io->bs[0][i] = 2 * 4 * U32 * (fabs(o.momentum * old) + gm);
            dir = o.nesterov ? gp + o.momentum * b : b;
            bdir = o.nesterov ? 2 * U32 * (gm + fabs(o.momentum * b) + fabs(dir)) +
                                    o.momentum * io->bs[0][i]
                              : io->bs[0][i];
        }
        io->bp[i] = 2 * (U32 * fabs(io->rp[i]) + U32 * fabs(o.lr * dir) + o.lr * bdir);
    }
    free(g);
}

/* The bound of U = step * (num / denom) given num's bound bnum and the
 * accumulator acc (v or sq_avg) with its bound bacc; rbc2 scales sqrt(acc). */
static double update_bound(double step, double num, double bnum, double acc, double bacc,
                           double rbc2, double eps)
{
    double root = sqrt(acc) * rbc2, denom = root + eps;
    double bden = acc > 0 ? root * (bacc / acc / 2 + 8 * U32) + U32 * denom : sqrt(bacc) * rbc2;
    double u = step * num / denom;
    return fabs(u) * (7 * U32 + bden / denom) + step * bnum / denom;
}

static void adam_ref(const opt_case *oc, step_io *io)
{
    const clnet_adam_params *c = &oc->adam;
    double wd = c->weight_decay, lr = c->lr;
    ref_adam o = { lr, c->beta1, c->beta2, c->eps, c->decoupled ? 0.0 : wd };
    double *g = dmalloc(io->n), *pd = dmalloc(io->n);
    for (size_t i = 0; i < io->n; i++) {
        pd[i] = c->decoupled ? io->p[i] * (1.0 - lr * wd) : io->p[i]; /* AdamW's decay first */
        io->rp[i] = pd[i];
        g[i] = io->g[i];
        io->rs[0][i] = io->t == 1 ? 0.0 : io->s[0][i];
        io->rs[1][i] = io->t == 1 ? 0.0 : io->s[1][i];
    }
    ref_optim_adam_step(&o, io->n, io->t, io->rp, g, io->rs[0], io->rs[1]);
    double bc1 = 1 - pow(o.beta1, io->t), bc2 = 1 - pow(o.beta2, io->t);
    for (size_t i = 0; i < io->n; i++) {
        double gm = gmag(io->g[i], o.weight_decay, io->p[i]);
        double m0 = io->t == 1 ? 0.0 : io->s[0][i], v0 = io->t == 1 ? 0.0 : io->s[1][i];
        io->bs[0][i] = 2 * 4 * U32 * (fabs(o.beta1 * m0) + (1 - o.beta1) * gm);
        io->bs[1][i] = 2 * 8 * U32 * (fabs(o.beta2 * v0) + (1 - o.beta2) * gm * gm);
        double bu = update_bound(lr / bc1, io->rs[0][i], io->bs[0][i], io->rs[1][i], io->bs[1][i],
                                 1 / sqrt(bc2), o.eps);
        io->bp[i] = 2 * (U32 * fabs(io->rp[i]) + bu + (c->decoupled ? 2 * U32 * fabs(pd[i]) : 0));
    }
    free(g), free(pd);
}

static void rmsprop_ref(const opt_case *oc, step_io *io)
{
    const clnet_rmsprop_params *c = &oc->rms;
    ref_rmsprop o = { c->lr, c->alpha, c->eps, c->weight_decay };
    double *g = dmalloc(io->n);
    for (size_t i = 0; i < io->n; i++) {
        io->rp[i] = io->p[i];
        g[i] = io->g[i];
        io->rs[0][i] = io->s[0][i];
    }
    ref_optim_rmsprop_step(&o, io->n, io->rp, g, io->rs[0]);
    for (size_t i = 0; i < io->n; i++) {
        double gm = gmag(io->g[i], o.weight_decay, io->p[i]);
        double gp = io->g[i] + o.weight_decay * io->p[i];
        io->bs[0][i] = 2 * 8 * U32 * (fabs(o.alpha * io->s[0][i]) + (1 - o.alpha) * gm * gm);
        double bu = update_bound(o.lr, gp, 2 * U32 * gm, io->rs[0][i], io->bs[0][i], 1.0, o.eps);
        io->bp[i] = 2 * (U32 * fabs(io->rp[i]) + bu);
    }
    free(g);
}

/* The device side: param and state in guarded buffers, grad plain. */
typedef struct opt_dev {
    guarded p, s[2];
    clnet_tensor *g;
} opt_dev;

static clnet_status device_step(const opt_case *oc, int t, opt_dev *d)
{
    switch (oc->kind) {
    case SGD:
        return clnet_sgd_step(&oc->sgd, t, d->p.view, d->g, nstate(oc) ? d->s[0].view : NULL);
    case ADAM:
        return clnet_adam_step(&oc->adam, t, d->p.view, d->g, d->s[0].view, d->s[1].view);
    default:
        return clnet_rmsprop_step(&oc->rms, d->p.view, d->g, d->s[0].view);
    }
}

static void step_io_alloc(step_io *io, size_t n)
{
    memset(io, 0, sizeof *io);
    io->n = n;
    io->p = fmalloc(n), io->g = fmalloc(n), io->rp = dmalloc(n), io->bp = dmalloc(n);
    for (int k = 0; k < 2; k++)
        io->s[k] = fmalloc(n), io->rs[k] = dmalloc(n), io->bs[k] = dmalloc(n);
}

static void step_io_free(step_io *io)
{
    free(io->p), free(io->g), free(io->rp), free(io->bp);
    for (int k = 0; k < 2; k++)
        free(io->s[k]), free(io->rs[k]), free(io->bs[k]);
}

/* 5 steps of one case on n elements, each checked against the reference
 * started from the device's values. The state starts as the NaN sentinel
 * where step 1 must ignore it (SGD's buffer, Adam's moments): the guard check
 * after step 1 then proves every element was written. RMSprop's starts at 0. */
static void run_case(clnet_context *ctx, const opt_case *oc, int64_t n, uint64_t seed)
{
    opt_dev d;
    step_io io;
    step_io_alloc(&io, (size_t)n);
    uint64_t st = seed;
    guarded_create(ctx, 1, &n, &d.p);
    fill_uniform(io.p, (size_t)n, -1, 1, &st);
    CK_OK(ctx, clnet_tensor_upload(d.p.view, io.p, (size_t)n * sizeof(float)));
    for (int k = 0; k < nstate(oc); k++) {
        guarded_create(ctx, 1, &n, &d.s[k]);
        if (oc->kind == RMSPROP)
            CK_OK(ctx, clnet_tensor_fill(d.s[k].view, 0.0));
    }
    d.g = filled(ctx, 1, &n, 0);
    char label[128];
    for (int t = 1; t <= 5; t++) {
        io.t = t;
        fill_uniform(io.g, (size_t)n, -1, 1, &st);
        io.g[n / 2] = 0.0f; /* a zero gradient: Adam's 0 / (0 + eps) */
        CK_OK(ctx, clnet_tensor_upload(d.g, io.g, (size_t)n * sizeof(float)));
        download(ctx, d.p.view, io.p, (size_t)n);
        for (int k = 0; k < nstate(oc); k++)
            download(ctx, d.s[k].view, io.s[k], (size_t)n);
        CK_OK(ctx, device_step(oc, t, &d));
        snprintf(label, sizeof label, "%s n=%lld step %d", oc->name, (long long)n, t);
        guard_check(ctx, &d.p, label);
        for (int k = 0; k < nstate(oc); k++)
            guard_check(ctx, &d.s[k], label);
        (oc->kind == SGD ? sgd_ref : oc->kind == ADAM ? adam_ref : rmsprop_ref)(oc, &io);
        size_t bad = 0;
        float *got = fmalloc((size_t)n);
        download(ctx, d.p.view, got, (size_t)n);
        bad += compare_bounds(label, got, io.rp, io.bp, (size_t)n);
        for (int k = 0; k < nstate(oc); k++) {
            download(ctx, d.s[k].view, got, (size_t)n);
            bad += compare_bounds(label, got, io.rs[k], io.bs[k], (size_t)n);
        }
        free(got);
        ck_assert_msg(bad == 0, "%s: %zu mismatches (seed %llu); rerun with CLNET_TEST_VERBOSE=1",
                      label, bad, (unsigned long long)seed);
    }
    guarded_destroy(&d.p);
    for (int k = 0; k < nstate(oc); k++)
        guarded_destroy(&d.s[k]);
    clnet_tensor_destroy(d.g);
    step_io_free(&io);
}

static const int64_t opt_sizes[] = { 1, 7, 33, 4097 };

START_TEST(optim_steps_match_reference)
{
    clnet_context *ctx = test_context();
    for (size_t s = 0; s < sizeof opt_sizes / sizeof opt_sizes[0]; s++)
        run_case(ctx, &cases[_i], opt_sizes[s], 100 * (uint64_t)_i + s);
    if (test_long())
        run_case(ctx, &cases[_i], 1000003, 7 + (uint64_t)_i);
    clnet_context_destroy(ctx);
}
END_TEST

static float *download_all(clnet_context *ctx, const clnet_tensor *t)
{
    size_t n = clnet_tensor_numel(t);
    float *f = fmalloc(n);
    download(ctx, t, f, n);
    return f;
}

static void assert_same_bits(clnet_context *ctx, const clnet_tensor *a, const clnet_tensor *b,
                             const char *what)
{
    size_t n = clnet_tensor_numel(a);
    float *fa = download_all(ctx, a), *fb = download_all(ctx, b);
    ck_assert_msg(memcmp(fa, fb, n * sizeof(float)) == 0, "%s: results differ", what);
    free(fa), free(fb);
}

/* Fresh param (fixed values), grad and state tensors for the tests below. */
typedef struct quad {
    clnet_tensor *p, *g, *m, *v;
} quad;

static quad quad_make(clnet_context *ctx, int64_t n, double state, uint64_t seed)
{
    float *h = fmalloc((size_t)n);
    uint64_t s = seed;
    fill_uniform(h, (size_t)n, -1, 1, &s);
    quad q = { tensor_from(ctx, 1, &n, h), NULL, filled(ctx, 1, &n, state),
               filled(ctx, 1, &n, state) };
    fill_uniform(h, (size_t)n, -1, 1, &s);
    q.g = tensor_from(ctx, 1, &n, h);
    free(h);
    return q;
}

static void quad_free(quad *q)
{
    clnet_tensor_destroy(q->p), clnet_tensor_destroy(q->g);
    clnet_tensor_destroy(q->m), clnet_tensor_destroy(q->v);
}

/* Step 1 ignores the old state (NaN gives the bits zeros give); the same
 * 5 steps twice give the same bits; AdamW without weight decay is Adam. */
START_TEST(optim_first_step_and_determinism)
{
    clnet_context *ctx = test_context();
    int64_t n = 1000;
    clnet_adam_params ap = CLNET_ADAM_PARAMS_DEFAULT;
    clnet_sgd_params sp = { .lr = 0.1f, .momentum = 0.9f, .nesterov = 1 };
    quad a = quad_make(ctx, n, NAN, 3), b = quad_make(ctx, n, 0.0, 3);
    for (int t = 1; t <= 5; t++) {
        CK_OK(ctx, clnet_adam_step(&ap, t, a.p, a.g, a.m, a.v));
        CK_OK(ctx, clnet_adam_step(&ap, t, b.p, b.g, b.m, b.v));
        ap.decoupled = !ap.decoupled; /* weight_decay is 0: the same step */
    }
    assert_same_bits(ctx, a.p, b.p, "adam param from NaN / zero state");
    assert_same_bits(ctx, a.m, b.m, "adam m");
    assert_same_bits(ctx, a.v, b.v, "adam v");
    quad c = quad_make(ctx, n, NAN, 4), d = quad_make(ctx, n, 0.0, 4);
    for (int t = 1; t <= 5; t++) {
        CK_OK(ctx, clnet_sgd_step(&sp, t, c.p, c.g, c.m));
        CK_OK(ctx, clnet_sgd_step(&sp, t, d.p, d.g, d.m));
    }
    assert_same_bits(ctx, c.p, d.p, "sgd param from NaN / zero buffer");
    assert_same_bits(ctx, c.m, d.m, "sgd buffer");
    quad e = quad_make(ctx, n, 0.0, 5), f = quad_make(ctx, n, 0.0, 5);
    clnet_rmsprop_params rp = CLNET_RMSPROP_PARAMS_DEFAULT;
    for (int t = 1; t <= 5; t++) {
        CK_OK(ctx, clnet_rmsprop_step(&rp, e.p, e.g, e.m));
        CK_OK(ctx, clnet_rmsprop_step(NULL, f.p, f.g, f.m)); /* NULL: the defaults */
    }
    assert_same_bits(ctx, e.p, f.p, "rmsprop, run twice");
    quad_free(&a), quad_free(&b), quad_free(&c), quad_free(&d), quad_free(&e), quad_free(&f);
    clnet_context_destroy(ctx);
}
END_TEST

/* One launch per step and no host wait; clipping k non-empty tensors is
 * 2k + 1 launches and no host wait (the coefficient stays on the device). */
START_TEST(optim_launches_without_host_waits)
{
    clnet_context *ctx = test_context();
    int64_t n = 4097, zero = 0;
    quad q = quad_make(ctx, n, 0.0, 9);
    clnet_tensor *empty, *norm = filled(ctx, 0, NULL, 0);
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &zero, &empty));
    CK_OK(ctx, clnet_adam_step(NULL, 1, q.p, q.g, q.m, q.v)); /* build the kernels first */
    CK_OK(ctx, clnet_sgd_step(NULL, 1, q.p, q.g, NULL));
    CK_OK(ctx, clnet_rmsprop_step(NULL, q.p, q.g, q.v));
    clnet_tensor *grads[] = { q.g, empty, q.m };
    CK_OK(ctx, clnet_clip_grad_norm(grads, 3, 1.0f, norm));
    clnet_context_stats s0, s1;
    CK_OK(ctx, clnet_context_get_stats(ctx, &s0));
    CK_OK(ctx, clnet_adam_step(NULL, 2, q.p, q.g, q.m, q.v));
    CK_OK(ctx, clnet_sgd_step(NULL, 2, q.p, q.g, NULL));
    CK_OK(ctx, clnet_rmsprop_step(NULL, q.p, q.g, q.v));
    CK_OK(ctx, clnet_clip_grad_norm(grads, 3, 1.0f, norm));
    CK_OK(ctx, clnet_context_get_stats(ctx, &s1));
    ck_assert_uint_eq(s1.kernel_launches - s0.kernel_launches, 3 + 5);
    ck_assert_uint_eq(s1.host_waits - s0.host_waits, 0);
    clnet_tensor_destroy(empty), clnet_tensor_destroy(norm);
    quad_free(&q);
    clnet_context_destroy(ctx);
}
END_TEST

/* A NaN or Inf gradient element poisons only its own param and state. */
START_TEST(optim_nan_policy)
{
    clnet_context *ctx = test_context();
    int64_t n = 64;
    float bad[64];
    for (int kind = 0; kind < 3; kind++) {
        quad a = quad_make(ctx, n, 0.0, 11), b = quad_make(ctx, n, 0.0, 11);
        download(ctx, b.g, bad, 64);
        bad[5] = NAN, bad[9] = INFINITY;
        CK_OK(ctx, clnet_tensor_upload(b.g, bad, sizeof bad));
        for (int t = 1; t <= 2; t++) {
            quad *qs[2] = { &a, &b };
            for (int k = 0; k < 2; k++) {
                quad *q = qs[k];
                if (kind == 0)
                    CK_OK(ctx, clnet_adam_step(NULL, t, q->p, q->g, q->m, q->v));
                else if (kind == 1)
                    CK_OK(ctx, clnet_sgd_step(&(clnet_sgd_params){ .lr = 0.1f, .momentum = 0.9f },
                                              t, q->p, q->g, q->m));
                else
                    CK_OK(ctx, clnet_rmsprop_step(NULL, q->p, q->g, q->m));
            }
        }
        float *pa = download_all(ctx, a.p), *pb = download_all(ctx, b.p),
              *mb = download_all(ctx, b.m);
        for (int i = 0; i < 64; i++) {
            if (i == 5 || i == 9)
                ck_assert_msg(!isfinite(pb[i]) && !isfinite(mb[i]), "kind %d: [%d] finite", kind,
                              i);
            else
                ck_assert_msg(memcmp(&pa[i], &pb[i], sizeof(float)) == 0, "kind %d: [%d] changed",
                              kind, i);
        }
        free(pa), free(pb), free(mb);
        quad_free(&a), quad_free(&b);
    }
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(optim_bad_arguments)
{
    clnet_context *ctx = test_context(), *other = test_context();
    int64_t n = 6, shp[2] = { 2, 3 };
    quad q = quad_make(ctx, n, 0.0, 1);
    clnet_tensor *m23 = filled(ctx, 2, shp, 0), *gi, *go = filled(other, 1, &n, 0);
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &n, &gi));
    clnet_sgd_params sp = { .lr = -0.1f };
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "lr (-0.1) must be >= 0",
             clnet_sgd_step(&sp, 1, q.p, q.g, NULL));
    sp = (clnet_sgd_params){ .lr = 0.1f, .momentum = 0.9f };
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "momentum_buf: must not be NULL when momentum is 0.9",
             clnet_sgd_step(&sp, 1, q.p, q.g, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "t (0) must be >= 1",
             clnet_sgd_step(&sp, 0, q.p, q.g, q.m));
    CK_FAILS(ctx, CLNET_ERR_SHAPE,
             "momentum_buf: shape (2, 3) but expected (6) (the shape of param)",
             clnet_sgd_step(&sp, 1, q.p, q.g, m23));
    sp.dampening = 0.5f, sp.nesterov = 1;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "nesterov needs momentum > 0",
             clnet_sgd_step(&sp, 1, q.p, q.g, q.m));
    sp = (clnet_sgd_params){ .lr = 0.1f, .dampening = 2.0f };
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dampening (2) must be in [0, 1]",
             clnet_sgd_step(&sp, 1, q.p, q.g, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "param: must not be NULL",
             clnet_sgd_step(NULL, 1, NULL, q.g, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "grad: dtype int32 but expected float32",
             clnet_sgd_step(NULL, 1, q.p, gi, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "grad: belongs to another context",
             clnet_sgd_step(NULL, 1, q.p, go, NULL));
    clnet_adam_params ap = CLNET_ADAM_PARAMS_DEFAULT;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "t (0) must be >= 1",
             clnet_adam_step(&ap, 0, q.p, q.g, q.m, q.v));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "t (-3)", clnet_adam_step(&ap, -3, q.p, q.g, q.m, q.v));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "v: must not be NULL",
             clnet_adam_step(&ap, 1, q.p, q.g, q.m, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "m: shape (2, 3)", clnet_adam_step(&ap, 1, q.p, q.g, m23, q.v));
    ap.beta1 = 1.0f;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "beta1 (1) must be in [0, 1)",
             clnet_adam_step(&ap, 1, q.p, q.g, q.m, q.v));
    ap = CLNET_ADAM_PARAMS_DEFAULT, ap.lr = NAN;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "lr (nan)", clnet_adam_step(&ap, 1, q.p, q.g, q.m, q.v));
    ap = CLNET_ADAM_PARAMS_DEFAULT, ap.eps = -1e-8f;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "eps (-1e-08)",
             clnet_adam_step(&ap, 1, q.p, q.g, q.m, q.v));
    ap = CLNET_ADAM_PARAMS_DEFAULT, ap.weight_decay = -1;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "weight_decay (-1)",
             clnet_adam_step(&ap, 1, q.p, q.g, q.m, q.v));
    clnet_rmsprop_params rp = CLNET_RMSPROP_PARAMS_DEFAULT;
    rp.alpha = 1.5f;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "alpha (1.5) must be in [0, 1]",
             clnet_rmsprop_step(&rp, q.p, q.g, q.v));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "sq_avg: must not be NULL",
             clnet_rmsprop_step(NULL, q.p, q.g, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "grad: shape (2, 3)", clnet_rmsprop_step(NULL, q.p, m23, q.v));
    ck_assert_int_eq(clnet_rmsprop_step(NULL, NULL, NULL, NULL), CLNET_ERR_INVALID_ARG);
    clnet_tensor_destroy(m23), clnet_tensor_destroy(gi), clnet_tensor_destroy(go);
    quad_free(&q);
    clnet_context_destroy(other);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Clipping ----------------------------------------------------------------------- */

static const int64_t clip_sizes[] = { 1, 7, 0, 4097 };
#define NCLIP 4

/* L of the tolerance table for these tensors on ctx's device. */
static double clip_chain(clnet_context *ctx, int count, const int64_t *sizes)
{
    double wg = (double)clnet__context_profile(ctx)->wg_size, nmax = 0;
    for (int i = 0; i < count; i++)
        nmax = fmax(nmax, (double)sizes[i]);
    return ceil(nmax / (64 * wg)) + 2 * log2(wg) + ceil(64.0 * count / wg) + 2;
}

/* Clips NCLIP tensors (one empty) at max_norm = factor * their norm: 0.5
 * clips, 2 does not (then the grads keep their bits). */
START_TEST(clip_matches_reference)
{
    clnet_context *ctx = test_context();
    const double factor = _i ? 2.0 : 0.5;
    guarded g[NCLIP], gn;
    clnet_tensor *views[NCLIP];
    float *h[NCLIP];
    double *d[NCLIP];
    size_t sizes[NCLIP];
    uint64_t st = 77;
    int64_t one = 1;
    for (int i = 0; i < NCLIP; i++) {
        sizes[i] = (size_t)clip_sizes[i];
        h[i] = fmalloc(sizes[i]), d[i] = dmalloc(sizes[i]);
        fill_uniform(h[i], sizes[i], -1, 1, &st);
        for (size_t k = 0; k < sizes[i]; k++)
            d[i][k] = h[i][k];
        guarded_create(ctx, 1, &clip_sizes[i], &g[i]);
        if (sizes[i])
            CK_OK(ctx, clnet_tensor_upload(g[i].view, h[i], sizes[i] * sizeof(float)));
        views[i] = g[i].view;
    }
    double norm0 = 0;
    for (int i = 0; i < NCLIP; i++)
        norm0 += ref_reduce_dot(sizes[i], d[i], d[i]);
    float max_norm = (float)(factor * sqrt(norm0));
    double norm = ref_optim_clip_grad_norm(NCLIP, d, sizes, max_norm);
    guarded_create(ctx, 1, &one, &gn);
    CK_OK(ctx, clnet_clip_grad_norm(views, NCLIP, max_norm, gn.view));
    guard_check(ctx, &gn, "clip total_norm");
    double L = clip_chain(ctx, NCLIP, clip_sizes), rel_norm = 2 * (L / 2 + 8) * U32;
    float got;
    download(ctx, gn.view, &got, 1);
    ck_assert_msg(fabs(got - norm) <= rel_norm * norm, "norm %.9g, reference %.9g (bound %.3g)",
                  (double)got, norm, rel_norm * norm);
    for (int i = 0; i < NCLIP; i++) {
        if (!sizes[i])
            continue;
        guard_check(ctx, &g[i], "clipped grad");
        float *out = download_all(ctx, views[i]);
        double *bound = dmalloc(sizes[i]);
        for (size_t k = 0; k < sizes[i]; k++)
            bound[k] = (rel_norm + 2 * 7 * U32) * fabs(d[i][k]);
        if (factor > 1)
            ck_assert_msg(memcmp(out, h[i], sizes[i] * sizeof(float)) == 0,
                          "grads[%d] changed "
                          "below max_norm",
                          i);
        else
            ck_assert_uint_eq(compare_bounds("clipped grad", out, d[i], bound, sizes[i]), 0);
        free(out), free(bound);
    }
    /* Deterministic, with or without total_norm: clip the originals again. */
    float *first = download_all(ctx, views[3]);
    for (int rep = 0; rep < 2; rep++) {
        for (int i = 0; i < NCLIP; i++)
            if (sizes[i])
                CK_OK(ctx, clnet_tensor_upload(views[i], h[i], sizes[i] * sizeof(float)));
        CK_OK(ctx, clnet_clip_grad_norm(views, NCLIP, max_norm, rep ? NULL : gn.view));
        float *again = download_all(ctx, views[3]), norm_again;
        ck_assert_msg(memcmp(first, again, 4097 * sizeof(float)) == 0, "clip run %d differs", rep);
        download(ctx, gn.view, &norm_again, 1);
        ck_assert(memcmp(&norm_again, &got, sizeof got) == 0);
        free(again);
    }
    free(first);
    for (int i = 0; i < NCLIP; i++)
        guarded_destroy(&g[i]), free(h[i]), free(d[i]);
    guarded_destroy(&gn);
    clnet_context_destroy(ctx);
}
END_TEST

/* No gradients: norm 0. NaN: norm NaN and nothing scaled. Inf: norm Inf,
 * coefficient 0. max_norm 0 zeroes the gradients. */
START_TEST(clip_edges_and_nan_policy)
{
    clnet_context *ctx = test_context();
    int64_t n = 5, zero = 0;
    clnet_tensor *norm = filled(ctx, 0, NULL, 123), *e;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &zero, &e));
    float got, x[5] = { 1, -2, 3, -4, 0.5f }, y[5];
    CK_OK(ctx, clnet_clip_grad_norm(NULL, 0, 1.0f, norm));
    download(ctx, norm, &got, 1);
    ck_assert(got == 0.0f);
    CK_OK(ctx, clnet_clip_grad_norm(NULL, 0, 1.0f, NULL));
    CK_OK(ctx, clnet_tensor_fill(norm, 123));
    CK_OK(ctx, clnet_clip_grad_norm(&e, 1, 1.0f, norm));
    download(ctx, norm, &got, 1);
    ck_assert(got == 0.0f);
    float xn[5] = { 1, NAN, 3, -4, 0.5f }, xi[5] = { 1, INFINITY, 3, -4, 0.5f };
    clnet_tensor *a = tensor_from(ctx, 1, &n, x), *b = tensor_from(ctx, 1, &n, xn);
    clnet_tensor *two[] = { a, b };
    CK_OK(ctx, clnet_clip_grad_norm(two, 2, 1.0f, norm));
    download(ctx, norm, &got, 1);
    ck_assert(isnan(got));
    download(ctx, a, y, 5);
    ck_assert_msg(memcmp(x, y, sizeof x) == 0, "a NaN norm must not scale");
    CK_OK(ctx, clnet_tensor_upload(b, xi, sizeof xi));
    CK_OK(ctx, clnet_clip_grad_norm(two, 2, 1.0f, norm));
    download(ctx, norm, &got, 1);
    ck_assert(isinf(got));
    download(ctx, a, y, 5);
    for (int i = 0; i < 5; i++)
        ck_assert(y[i] == 0.0f);
    download(ctx, b, y, 5);
    ck_assert(isnan(y[1]) && y[0] == 0.0f);
    CK_OK(ctx, clnet_tensor_upload(a, x, sizeof x));
    CK_OK(ctx, clnet_clip_grad_norm(&a, 1, 0.0f, NULL));
    download(ctx, a, y, 5);
    for (int i = 0; i < 5; i++)
        ck_assert(y[i] == 0.0f);
    clnet_tensor_destroy(a), clnet_tensor_destroy(b), clnet_tensor_destroy(e);
    clnet_tensor_destroy(norm);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(clip_bad_arguments)
{
    clnet_context *ctx = test_context(), *other = test_context();
    int64_t n = 5, two = 2;
    clnet_tensor *a = filled(ctx, 1, &n, 1), *norm = filled(ctx, 0, NULL, 0);
    clnet_tensor *n2 = filled(ctx, 1, &two, 0), *ai, *ao = filled(other, 1, &n, 1);
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &n, &ai));
    clnet_tensor *with_null[] = { a, NULL }, *ints[] = { ai }, *mixed[] = { a, ao };
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "count (-1) must be >= 0",
             clnet_clip_grad_norm(&a, -1, 1.0f, norm));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "grads non-NULL",
             clnet_clip_grad_norm(NULL, 2, 1.0f, norm));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "grads[1] is NULL",
             clnet_clip_grad_norm(with_null, 2, 1.0f, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "max_norm (-1) must be >= 0",
             clnet_clip_grad_norm(&a, 1, -1.0f, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "max_norm (nan)", clnet_clip_grad_norm(&a, 1, NAN, NULL));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "total_norm must be one float32 element (has 2)",
             clnet_clip_grad_norm(&a, 1, 1.0f, n2));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "grads[0] must be float32",
             clnet_clip_grad_norm(ints, 1, 1.0f, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "grads[1] belongs to another context",
             clnet_clip_grad_norm(mixed, 2, 1.0f, NULL));
    clnet_tensor_destroy(a), clnet_tensor_destroy(norm), clnet_tensor_destroy(n2);
    clnet_tensor_destroy(ai), clnet_tensor_destroy(ao);
    clnet_context_destroy(other);
    clnet_context_destroy(ctx);
}
END_TEST

/* The bound comparator fails on one element past its bound, NaN, Inf and a
 * non-finite reference; the lockstep bounds are not vacuous (a plain step's
 * bound is far below the update itself). */
START_TEST(comparator_negative_controls)
{
    float got[3] = { 1.0f, 2.0f, 3.0f };
    double ref[3] = { 1, 2, 3 }, bound[3] = { 1e-6, 1e-6, 1e-6 };
    ck_assert_uint_eq(compare_bounds("control", got, ref, bound, 3), 0);
    got[1] = (float)(2 + 4e-6);
    ck_assert_uint_eq(compare_bounds("control (expected to fail)", got, ref, bound, 3), 1);
    got[1] = NAN;
    ck_assert_uint_eq(compare_bounds("control (expected to fail)", got, ref, bound, 3), 1);
    got[1] = -INFINITY;
    ck_assert_uint_eq(compare_bounds("control (expected to fail)", got, ref, bound, 3), 1);
    got[1] = 2.0f, ref[2] = INFINITY;
    ck_assert_uint_eq(compare_bounds("control (expected to fail)", got, ref, bound, 3), 1);
    step_io io;
    step_io_alloc(&io, 1);
    io.t = 2, io.p[0] = 0.5f, io.g[0] = 0.25f, io.s[0][0] = 0.1f, io.s[1][0] = 0.01f;
    adam_ref(&cases[6], &io);
    double update = fabs(io.rp[0] - 0.5);
    ck_assert_msg(io.bp[0] < 1e-2 * update, "adam bound %g vs update %g", io.bp[0], update);
    step_io_free(&io);
}
END_TEST

Suite *suite_optim(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_add_unchecked_fixture(tc, fail_on_unexpected_errors, allow_unexpected_errors);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, optim_steps_match_reference, 0, NCASES);
    tcase_add_test(tc, optim_first_step_and_determinism);
    tcase_add_test(tc, optim_launches_without_host_waits);
    tcase_add_test(tc, optim_nan_policy);
    tcase_add_test(tc, optim_bad_arguments);
    tcase_add_test(tc, comparator_negative_controls);
    suite_add_tcase(s, tc);
    TCase *tk = tcase_create("clip");
    tcase_set_timeout(tk, 300);
    tcase_add_loop_test(tk, clip_matches_reference, 0, 2);
    tcase_add_test(tk, clip_edges_and_nan_policy);
    tcase_add_test(tk, clip_bad_arguments);
    suite_add_tcase(s, tk);
    return s;
}
