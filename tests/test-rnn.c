/* clnet tests — recurrent primitives (simple RNN, LSTM, GRU): the float64
 * reference against finite differences and PyTorch, then the device forward
 * and BPTT against the reference with guard bands and determinism, a
 * directional derivative, NaN/Inf, long sequences, bad arguments and the
 * program cache. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref-rnn.h"
#include "runtime/runtime.h"

/* ---- Tolerances (float32 device against the float64 reference) -----------
 *
 * An element passes when |got - ref| <= c * g(T) * S (compare_f32 with
 * abs = that bound, rel = 0), where
 * - S is the output tensor's magnitude: the largest element of
 *   ref_rnn_magnitude, which takes every sum of every step in absolute
 *   values (the |A||B| of docs/testing.md's GEMM rule, step by step; dh0 and
 *   dc0 carry theirs back through the steps). Rounding errors follow the
 *   terms, not the result: an element that cancels to ~0 keeps the
 *   absolute error of its terms. For y, hT and cT, S is the problem's
 *   largest pre-activation (or c) magnitude.
 * - g(T) = 1 + log2(T) (T >= 1): growth with the sequence length. An error
 *   made at step s reaches step t (or, backwards, step 0) through the
 *   recurrence's own Jacobians, which damp it (|W_hh| ~ 1/sqrt(H), sigmoid'
 *   <= 1/4, tanh' <= 1, forget gate < 1): the states' error is a geometric
 *   sum over the steps, not a plain sum, and S already grows with the N*T
 *   terms of the weight gradients. What is left grows slowly in directions
 *   that are damped little (a forget gate near 1 adds up c's roundings): we
 *   allow log2(T). Measured with these weights, max |got - ref| / S is flat
 *   in T (T = 1, 2, 7, 33, 500: 2.8e-7, 3.0e-7, 2.4e-7, 2.9e-7, 2.3e-7).
 * - c, in units of 2^-24: about 4x the worst ratio |got - ref| / (g(T) S)
 *   measured over the long tier (the grid and T = 500) for that output. One
 *   step rounds GEMM sums (F + H or G*H terms) and 2-4 ulp per exp/tanh; the
 *   backward multiplies 4-5 rounded factors per gate. */
typedef struct rnn_tol {
    double c;
    const char *why;
} rnn_tol;

#define ULP 0x1.0p-24
enum { O_Y, O_HT, O_CT, O_DX, O_DH0, O_DC0, O_DW_IH, O_DW_HH, O_DB_IH, O_DB_HH, NOUT };
static const char *const out_names[NOUT] = { "y",   "hT",    "cT",    "dx",    "dh0",
                                             "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh" };
static const rnn_tol tols[NOUT] = {
    [O_Y] = { 6 * ULP, "y: GEMM sums of F and H terms, 2-4 ulp exp/tanh; measured 1.5 ulp" },
    [O_HT] = { 6 * ULP, "hT: y's last step" },
    [O_CT] = { 6 * ULP, "cT: f c + i g on the gates of y; measured 0.8 ulp" },
    [O_DX] = { 16 * ULP, "dx: 4-5 rounded factors per gate, then G*H terms; measured 3.8 ulp" },
    [O_DH0] = { 8 * ULP, "dh0: every step's dgates W_hh, damped; measured 1.8 ulp" },
    [O_DC0] = { 8 * ULP, "dc0: products of forget gates back to step 0; measured 1.5 ulp" },
    [O_DW_IH] = { 16 * ULP, "dw_ih: one GEMM over N*T rows of dgates; measured 4.3 ulp" },
    [O_DW_HH] = { 16 * ULP, "dw_hh: one GEMM over N*T rows with h_{t-1}; measured 3.9 ulp" },
    [O_DB_IH] = { 16 * ULP, "db_ih: column sums of dgates in 64-row blocks; measured 4.3 ulp" },
    [O_DB_HH] = { 20 * ULP, "db_hh: as db_ih (GRU's n block times r); measured 4.7 ulp" },
};

/* The global ||got - ref|| / ||ref|| must stay below REL_ERROR_MAX, scaled
 * by kappa / KAPPA_WELL when kappa = ||magnitude|| / ||ref|| is larger: the
 * relative error of a sum whose terms cancel is kappa times that of its
 * terms. Over the long tier 93% of outputs have kappa <= 20 (the worst
 * relative error among them 1.3e-6); most others have N = 1 or H = 1. */
#define REL_ERROR_MAX 1e-5
#define KAPPA_WELL 20.0

/* Directional check on the device: |fd - an| <= DIR_REL * sum_i |g_i du_i|,
 * the magnitude of the dot product an = <g, du>. The central difference's
 * truncation is ~h^2/6 times a third derivative and the float32 forwards add
 * ~1e-7 per output; measured: at most 8.9e-6 over 27 directions on pocl,
 * 1.3e-5 on Mesa's rusticl (llvmpipe). */
#define DIR_REL 1e-4

static const char *const cell_names[] = { "rnn", "lstm", "gru" };

/* The LSTM's recurrence variants (src/ops/rnn.c): 0 a step GEMM and a gate
 * kernel per step, 1 the fused kernel once per step, 2 the fused kernel over
 * the whole sequence in one work-group. Loop tests over "cases" run the
 * three cells with the default choice (0-2), then the LSTM forced to each
 * variant (3-5). */
#define NREC 3
static const char *const case_names[] = {
    "rnn", "lstm", "gru", "lstm (step GEMM)", "lstm (fused per step)", "lstm (fused sequence)"
};

/* Forces both directions of the LSTM to variant rec; -1 clears. */
static void force_rec(clnet_context *ctx, int rec)
{
    CK_OK(ctx, clnet__force_variant(ctx, "lstm.forward", rec));
    CK_OK(ctx, clnet__force_variant(ctx, "lstm.backward", rec));
}

/* Case i's cell, its variant forced on ctx. */
static ref_rnn_cell case_cell(clnet_context *ctx, int i)
{
    force_rec(ctx, i < 3 ? -1 : i - 3);
    return i < 3 ? (ref_rnn_cell)i : REF_RNN_LSTM;
}

/* ---- problems, host data and the reference --------------------------------- */

typedef struct problem {
    ref_rnn p;
    int init;              /* h0 (and c0) given and non-zero */
    int with_dy, with_dhT; /* the cotangents given (else NULL = zeros) */
    int want_dx, want_dh0; /* dx, dh0 (and dc0) requested */
    int trust;             /* apply the all-zeros trust check */
    int rec;               /* LSTM variant forced by check_case; -1: the default */
    uint64_t seed;
    const char *device; /* for messages; set by check_case */
} problem;

/* variant bits: 0 non-zero h0/c0, 1 dy NULL, 2 dhT given with dy, 3 dx and
 * dh0 not wanted, 4 dh0 wanted even so. */
static problem make_problem(ref_rnn_cell cell, int n, int t, int f, int h, int variant)
{
    problem pb = { .p = { cell, n, t, f, h }, .trust = 1, .rec = -1 };
    pb.init = variant & 1;
    pb.with_dy = !(variant & 2);
    pb.with_dhT = !pb.with_dy || (variant & 4);
    pb.want_dx = !(variant & 8);
    pb.want_dh0 = pb.want_dx || (variant & 16);
    pb.seed = 1000003u * (uint64_t)(variant + 1) +
              7919u * (uint64_t)(n * 131 + t * 17 + f * 5 + h) + (uint64_t)cell;
    return pb;
}

static int is_lstm(const problem *pb)
{
    return pb->p.cell == REF_RNN_LSTM;
}

/* Inputs, in the order they are generated. */
enum { I_X, I_H0, I_C0, I_WIH, I_WHH, I_BIH, I_BHH, I_DY, I_DHT, I_DCT, NIN };
static const char *const in_names[NIN] = { "x",    "h0",   "c0", "w_ih", "w_hh",
                                           "b_ih", "b_hh", "dy", "dhT",  "dcT" };

/* The shape of input i (I_*) or output NIN + o (O_*); returns ndim. */
static int shape_of(const ref_rnn *p, int which, int64_t s[3])
{
    int64_t gh = (int64_t)ref_rnn_gates(p->cell) * p->h;
    static const int kind[NIN + NOUT] = {
        /* 0 (n,t,f)  1 (n,h)  2 (n,t,h)  3 (gh,f)  4 (gh,h)  5 (gh) */
        0, 1, 1, 3, 4, 5, 5, 2, 1, 1, /* inputs */
        2, 1, 1, 0, 1, 1, 3, 4, 5, 5, /* outputs */
    };
    const int64_t all[6][3] = { { p->n, p->t, p->f }, { p->n, p->h, 0 }, { p->n, p->t, p->h },
                                { gh, p->f, 0 },      { gh, p->h, 0 },   { gh, 0, 0 } };
    static const int ndims[6] = { 3, 2, 3, 2, 2, 1 };
    int k = kind[which];
    memcpy(s, all[k], sizeof all[k]);
    return ndims[k];
}

static size_t numel_of(const ref_rnn *p, int which)
{
    int64_t s[3];
    int nd = shape_of(p, which, s);
    size_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= (size_t)s[i];
    return n;
}

static int in_present(const problem *pb, int i)
{
    switch (i) {
    case I_H0:
        return pb->init;
    case I_C0:
        return pb->init && is_lstm(pb);
    case I_DY:
        return pb->with_dy;
    case I_DHT:
        return pb->with_dhT;
    case I_DCT:
        return pb->with_dhT && is_lstm(pb);
    default:
        return 1;
    }
}

typedef struct host {
    float *v[NIN]; /* NULL where absent */
} host;

/* Inputs uniform in [-1, 1], weights and biases in [-1/sqrt(H), 1/sqrt(H)]
 * (PyTorch's initialisation). */
static void host_make(const problem *pb, host *hd)
{
    uint64_t s = pb->seed;
    float k = pb->p.h ? 1.0f / sqrtf((float)pb->p.h) : 1.0f;
    for (int i = 0; i < NIN; i++) {
        hd->v[i] = NULL;
        if (!in_present(pb, i))
            continue;
        size_t n = numel_of(&pb->p, i);
        float r = i >= I_WIH && i <= I_BHH ? k : 1.0f;
        hd->v[i] = malloc((n + 1) * sizeof(float));
        ck_assert_ptr_nonnull(hd->v[i]);
        fill_uniform(hd->v[i], n, -r, r, &s);
    }
}

static void host_free(host *hd)
{
    for (int i = 0; i < NIN; i++)
        free(hd->v[i]);
}

static double *dalloc(size_t n)
{
    double *d = calloc(n + 1, sizeof *d);
    ck_assert_ptr_nonnull(d);
    return d;
}

static double *widen(const float *v, size_t n)
{
    if (!v)
        return NULL;
    double *d = dalloc(n);
    for (size_t i = 0; i < n; i++)
        d[i] = v[i];
    return d;
}

/* The reference's outputs (v[o], n[o] elements), each output's magnitude S
 * (see the tolerance table) and conditioning kappa. */
typedef struct refres {
    double *v[NOUT];
    size_t n[NOUT];
    double scale[NOUT], kappa[NOUT];
} refres;

static double max_of(const double *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, v[i]); /* fmax skips a NaN */
    return m;
}

/* S and kappa from the magnitudes m; checks that each bounds its value. */
static void set_scales(const ref_rnn *p, refres *r, double **m)
{
    for (int b = 0; p->t > 0 && b < p->n; b++) /* hT's magnitude: y's last step */
        memcpy(m[O_HT] + (size_t)b * p->h, m[O_Y] + ((size_t)b * p->t + p->t - 1) * p->h,
               (size_t)p->h * sizeof(double));
    double fwd = fmax(max_of(m[O_Y], r->n[O_Y]), max_of(m[O_CT], r->n[O_CT]));
    for (int o = 0; o < NOUT; o++) {
        double vv = 0, mm = 0;
        for (size_t i = 0; i < r->n[o]; i++) {
            vv += r->v[o][i] * r->v[o][i];
            mm += m[o][i] * m[o][i];
            ck_assert_msg(o <= O_CT || fabs(r->v[o][i]) <= m[o][i] * (1 + 1e-12),
                          "%s[%zu]: |%g| exceeds its magnitude %g", out_names[o], i, r->v[o][i],
                          m[o][i]);
        }
        r->scale[o] = o <= O_CT ? fwd : max_of(m[o], r->n[o]);
        r->kappa[o] = vv > 0 ? sqrt(mm / vv) : 1;
    }
}

static void ref_run(const problem *pb, const host *hd, refres *r)
{
    double *in[NIN], *m[NOUT];
    for (int i = 0; i < NIN; i++)
        in[i] = widen(hd->v[i], numel_of(&pb->p, i));
    for (int o = 0; o < NOUT; o++) {
        r->n[o] = numel_of(&pb->p, NIN + o);
        r->v[o] = dalloc(r->n[o]);
        m[o] = dalloc(r->n[o]);
    }
    ref_rnn_in ri = { in[I_X], in[I_H0], in[I_C0], in[I_WIH], in[I_WHH], in[I_BIH], in[I_BHH] };
    double **v = r->v;
    ref_rnn_forward(&pb->p, &ri, v[O_Y], v[O_HT], v[O_CT]);
    ref_rnn_grad g = {
        v[O_DX], v[O_DH0], v[O_DC0], v[O_DW_IH], v[O_DW_HH], v[O_DB_IH], v[O_DB_HH]
    };
    ref_rnn_grad mg = {
        m[O_DX], m[O_DH0], m[O_DC0], m[O_DW_IH], m[O_DW_HH], m[O_DB_IH], m[O_DB_HH]
    };
    ref_rnn_backward(&pb->p, &ri, in[I_DY], in[I_DHT], in[I_DCT], &g);
    ref_rnn_magnitude(&pb->p, &ri, in[I_DY], in[I_DHT], in[I_DCT], m[O_Y], m[O_CT], &mg);
    set_scales(&pb->p, r, m);
    for (int o = 0; o < NOUT; o++)
        free(m[o]);
    for (int i = 0; i < NIN; i++)
        free(in[i]);
}

static void ref_free(refres *r)
{
    for (int o = 0; o < NOUT; o++)
        free(r->v[o]);
}

/* ---- the device side --------------------------------------------------------- */

typedef struct devdata {
    clnet_tensor *t[NIN]; /* NULL where absent */
    clnet_rnn_weights w;
} devdata;

static void dev_make(clnet_context *ctx, const problem *pb, const host *hd, devdata *dd)
{
    for (int i = 0; i < NIN; i++) {
        int64_t s[3];
        int nd = shape_of(&pb->p, i, s);
        dd->t[i] = NULL;
        if (!hd->v[i])
            continue;
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, nd, s, &dd->t[i]));
        size_t n = clnet_tensor_numel(dd->t[i]);
        if (n)
            CK_OK(ctx, clnet_tensor_upload(dd->t[i], hd->v[i], n * sizeof(float)));
    }
    dd->w = (clnet_rnn_weights){ dd->t[I_WIH], dd->t[I_WHH], dd->t[I_BIH], dd->t[I_BHH] };
}

static void dev_free(devdata *dd)
{
    for (int i = 0; i < NIN; i++)
        clnet_tensor_destroy(dd->t[i]);
}

static int64_t reserve_elems(const ref_rnn *p)
{
    int64_t (*fn[])(int64_t, int64_t, int64_t, int64_t) = { clnet_rnn_reserve_size,
                                                            clnet_lstm_reserve_size,
                                                            clnet_gru_reserve_size };
    return fn[p->cell](p->n, p->t, p->f, p->h);
}

/* The outputs of a call, guarded where they have elements (an empty tensor
 * has no buffer to guard); an unwanted output has a NULL view. */
typedef struct outs {
    guarded g[NOUT], reserve;
} outs;

static void out_make(clnet_context *ctx, int wanted, int ndim, const int64_t *s, guarded *g)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= s[i];
    memset(g, 0, sizeof *g);
    if (wanted && n > 0)
        guarded_create(ctx, ndim, s, g);
    else if (wanted)
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, ndim, s, &g->view));
}

static int out_wanted(const problem *pb, int o)
{
    switch (o) {
    case O_CT:
        return is_lstm(pb);
    case O_DX:
        return pb->want_dx;
    case O_DH0:
        return pb->want_dh0;
    case O_DC0:
        return pb->want_dh0 && is_lstm(pb);
    default:
        return 1;
    }
}

/* Outputs first..last (O_*), and a reserve when with_reserve. */
static void outs_make(clnet_context *ctx, const problem *pb, int first, int last, int with_reserve,
                      outs *o)
{
    memset(o, 0, sizeof *o);
    for (int k = first; k <= last; k++) {
        int64_t s[3];
        int nd = shape_of(&pb->p, NIN + k, s);
        out_make(ctx, out_wanted(pb, k), nd, s, &o->g[k]);
    }
    int64_t r = reserve_elems(&pb->p);
    out_make(ctx, with_reserve, 1, &r, &o->reserve);
}

static void outs_free(outs *o)
{
    for (int k = 0; k <= NOUT; k++) {
        guarded *g = k < NOUT ? &o->g[k] : &o->reserve;
        if (g->base)
            guarded_destroy(g);
        else
            clnet_tensor_destroy(g->view);
        g->view = g->base = NULL;
    }
}

static void outs_check(clnet_context *ctx, const outs *o)
{
    for (int k = 0; k < NOUT; k++)
        if (o->g[k].base)
            guard_check(ctx, &o->g[k], out_names[k]);
    if (o->reserve.base)
        guard_check(ctx, &o->reserve, "reserve");
}

#define V(o, k) ((o)->g[k].view)

static clnet_status dev_forward(const problem *pb, const devdata *d, outs *o)
{
    clnet_tensor *const *t = d->t;
    clnet_tensor *r = o->reserve.view;
    if (pb->p.cell == REF_RNN_LSTM)
        return clnet_lstm_forward(&d->w, t[I_X], t[I_H0], t[I_C0], V(o, O_Y), V(o, O_HT),
                                  V(o, O_CT), r);
    if (pb->p.cell == REF_RNN_GRU)
        return clnet_gru_forward(&d->w, t[I_X], t[I_H0], V(o, O_Y), V(o, O_HT), r);
    return clnet_rnn_forward(&d->w, t[I_X], t[I_H0], V(o, O_Y), V(o, O_HT), r);
}

static clnet_status dev_backward(const problem *pb, const devdata *d, const clnet_tensor *res,
                                 outs *o)
{
    clnet_tensor *const *t = d->t;
    clnet_rnn_grads g = { V(o, O_DW_IH), V(o, O_DW_HH), V(o, O_DB_IH), V(o, O_DB_HH) };
    if (pb->p.cell == REF_RNN_LSTM)
        return clnet_lstm_backward(&d->w, t[I_X], res, t[I_DY], t[I_DHT], t[I_DCT], V(o, O_DX),
                                   V(o, O_DH0), V(o, O_DC0), &g);
    if (pb->p.cell == REF_RNN_GRU)
        return clnet_gru_backward(&d->w, t[I_X], res, t[I_DY], t[I_DHT], V(o, O_DX), V(o, O_DH0),
                                  &g);
    return clnet_rnn_backward(&d->w, t[I_X], res, t[I_DY], t[I_DHT], V(o, O_DX), V(o, O_DH0), &g);
}

static float *fetch(clnet_context *ctx, const clnet_tensor *t)
{
    size_t n = t ? clnet_tensor_numel(t) : 0;
    float *v = malloc((n + 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    if (n)
        download(ctx, t, v, n);
    return v;
}

/* ---- comparison ----------------------------------------------------------------- */

static double growth(int t)
{
    return 1.0 + log2(t > 1 ? (double)t : 1.0);
}

static tolerance tol_for(int out, int t, double scale)
{
    return (tolerance){ tols[out].c * growth(t) * scale, 0, 0, tols[out].why };
}

/* More than 30% exact zeros in a reference output: the case does not
 * exercise it (docs/testing.md's trust check). */
static int mostly_zeros(const double *ref, size_t n)
{
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++)
        zeros += ref[i] == 0.0;
    return n > 0 && zeros * 10 > n * 3;
}

/* Compares n elements of output `out`, per element and globally (see the
 * tolerance table). CLNET_TEST_VERBOSE=1 prints each comparison's worst
 * ratios, to calibrate the table on another device. */
static void expect_close_at(const problem *pb, const char *what, int out, const float *got,
                            const double *ref, size_t n, double scale, double kappa, int trust)
{
    char full[400];
    snprintf(full, sizeof full,
             "%s %s n=%d t=%d f=%d h=%d init=%d dy=%d dhT=%d dx=%d dh0=%d rec=%d seed=%llu on %s "
             "(reproduce: %sCK_RUN_CASE=device ./build/tests/clnet-tests rnn)",
             what, cell_names[pb->p.cell], pb->p.n, pb->p.t, pb->p.f, pb->p.h, pb->init,
             pb->with_dy, pb->with_dhT, pb->want_dx, pb->want_dh0, pb->rec,
             (unsigned long long)pb->seed, pb->device ? pb->device : "?",
             test_long() ? "CLNET_TEST_LONG=1 " : "");
    tolerance tol = tol_for(out, pb->p.t, scale);
    size_t bad = compare_f32(full, got, ref, n, tol);
    double re = rel_error(got, ref, n), re_max = REL_ERROR_MAX * fmax(1.0, kappa / KAPPA_WELL);
    if (getenv("CLNET_TEST_VERBOSE")) {
        double worst = 0;
        for (size_t i = 0; i < n; i++)
            worst = fmax(worst, fabs(got[i] - ref[i]));
        fprintf(stderr, "rnn-ratio %s: |d|/S %.3g, /(g(T) S ulp) %.3g, rel %.3g, kappa %.3g\n",
                full, scale ? worst / scale : 0,
                scale ? worst / (growth(pb->p.t) * scale * ULP) : 0, re, kappa);
    }
    ck_assert_msg(bad == 0 && re < re_max,
                  "%s: %zu mismatches, rel error %.3g (limit %.3g, "
                  "kappa %.3g)",
                  full, bad, re, re_max, kappa);
    ck_assert_msg(!trust || !mostly_zeros(ref, n),
                  "%s: over 30%% of the reference is exactly zero: the case does not exercise it",
                  full);
}

static void expect_close(const problem *pb, const refres *r, int out, const float *got, int trust)
{
    expect_close_at(pb, out_names[out], out, got, r->v[out], r->n[out], r->scale[out],
                    r->kappa[out], trust);
}

static void expect_same_bits(const char *what, const float *a, const float *b, size_t n)
{
    ck_assert_msg(n == 0 || memcmp(a, b, n * sizeof *a) == 0, "%s differs between two runs", what);
}

/* An input the op must not change: its device contents equal the host data. */
static void expect_unchanged(clnet_context *ctx, const char *what, const clnet_tensor *t,
                             const float *data)
{
    if (!t)
        return;
    float *v = fetch(ctx, t);
    expect_same_bits(what, v, data, clnet_tensor_numel(t));
    free(v);
}

/* ---- one problem end to end --------------------------------------------------------- */

/* Outputs first..last of o against the reference; each is fetched into got. */
static void compare_outputs(clnet_context *ctx, const problem *pb, const refres *r, const outs *o,
                            int first, int last, float **got)
{
    for (int k = first; k <= last; k++) {
        got[k] = NULL;
        if (!V(o, k))
            continue;
        got[k] = fetch(ctx, V(o, k));
        /* One step from h0 = 0: dW_hh = dgates^T h0 is rightly all zeros. */
        int trust = pb->trust && !(k == O_DW_HH && pb->p.t <= 1 && !pb->init);
        expect_close(pb, r, k, got[k], trust);
    }
}

/* Run again: the same bits in every output (and the reserve when given). */
static void expect_repeatable(clnet_context *ctx, const outs *o, int first, int last,
                              float *const *got, const float *res)
{
    for (int k = first; k <= last; k++) {
        if (!got[k])
            continue;
        float *again = fetch(ctx, V(o, k));
        expect_same_bits(out_names[k], got[k], again, clnet_tensor_numel(V(o, k)));
        free(again);
    }
    if (res)
        expect_unchanged(ctx, "reserve", o->reserve.view, res);
}

static void check_case(clnet_context *ctx, const problem *problem_in)
{
    problem with_device = *problem_in, *pb = &with_device;
    pb->device = clnet_context_device(ctx)->name;
    force_rec(ctx, pb->rec);
    host hd;
    refres r;
    devdata dd;
    outs o, inf;
    float *got[NOUT] = { NULL };
    host_make(pb, &hd);
    ref_run(pb, &hd, &r);
    dev_make(ctx, pb, &hd, &dd);
    outs_make(ctx, pb, O_Y, O_DB_HH, 1, &o);
    /* Forward with a reserve, twice: the same bits. */
    CK_OK(ctx, dev_forward(pb, &dd, &o));
    compare_outputs(ctx, pb, &r, &o, O_Y, O_CT, got);
    float *res = fetch(ctx, o.reserve.view);
    CK_OK(ctx, dev_forward(pb, &dd, &o));
    expect_repeatable(ctx, &o, O_Y, O_CT, got, res);
    /* Inference (no reserve) runs the same kernels and GEMMs: the same bits. */
    outs_make(ctx, pb, O_Y, O_CT, 0, &inf);
    CK_OK(ctx, dev_forward(pb, &dd, &inf));
    outs_check(ctx, &inf);
    expect_repeatable(ctx, &inf, O_Y, O_CT, got, NULL);
    /* Backward, twice; it reads the reserve and leaves it as it was. */
    CK_OK(ctx, dev_backward(pb, &dd, o.reserve.view, &o));
    outs_check(ctx, &o);
    compare_outputs(ctx, pb, &r, &o, O_DX, O_DB_HH, got);
    CK_OK(ctx, dev_backward(pb, &dd, o.reserve.view, &o));
    expect_repeatable(ctx, &o, O_DX, O_DB_HH, got, res);
    for (int i = 0; i < NIN; i++) /* no input changed */
        expect_unchanged(ctx, in_names[i], dd.t[i], hd.v[i]);
    for (int k = 0; k < NOUT; k++)
        free(got[k]);
    free(res);
    outs_free(&inf);
    outs_free(&o);
    dev_free(&dd);
    ref_free(&r);
    host_free(&hd);
}

/* ---- the reference itself -------------------------------------------------------- */

/* L = <dy, y> + <dhT, hT> + <dcT, cT>, the loss whose gradients the backward gives. */
static double ref_loss(const ref_rnn *p, const ref_rnn_in *in, double *const *cot)
{
    size_t ny = numel_of(p, NIN + O_Y), ns = numel_of(p, NIN + O_HT);
    double *y = dalloc(ny), *hT = dalloc(ns), *cT = dalloc(ns), l = 0;
    ref_rnn_forward(p, in, y, hT, cT);
    for (size_t i = 0; cot[0] && i < ny; i++)
        l += cot[0][i] * y[i];
    for (size_t i = 0; i < ns; i++)
        l += cot[1][i] * hT[i] + (cot[2] ? cot[2][i] * cT[i] : 0);
    free(y);
    free(hT);
    free(cT);
    return l;
}

/* Central differences (eps 1e-6) of the float64 loss against the reference
 * backward, for every input: ||fd - an|| / ||an|| < 1e-6 per tensor. N = 2,
 * T = 3, F = 2, H = 3; zero initial states and dy NULL, then all given. */
START_TEST(reference_bptt_matches_finite_differences)
{
    ref_rnn p = { (ref_rnn_cell)(_i / 2), 2, 3, 2, 3 };
    int init = _i % 2, lstm = p.cell == REF_RNN_LSTM;
    uint64_t s = 42 + (uint64_t)_i;
    double *in[NIN], *an[7];
    for (int i = 0; i < NIN; i++) {
        size_t n = numel_of(&p, i);
        in[i] = dalloc(n);
        for (size_t k = 0; (init || (i != I_H0 && i != I_C0)) && k < n; k++)
            in[i][k] = 2 * (double)(test_rng(&s) >> 11) * 0x1.0p-53 - 1;
        if (i < 7)
            an[i] = dalloc(n);
    }
    double *cot[3] = { init ? in[I_DY] : NULL, in[I_DHT], lstm ? in[I_DCT] : NULL };
    ref_rnn_in ri = { in[I_X], in[I_H0], in[I_C0], in[I_WIH], in[I_WHH], in[I_BIH], in[I_BHH] };
    ref_rnn_grad g = { an[0], an[1], an[2], an[3], an[4], an[5], an[6] };
    ref_rnn_backward(&p, &ri, cot[0], cot[1], cot[2], &g);
    for (int i = 0; i < 7; i++) { /* I_X .. I_BHH, whose gradients are O_DX .. O_DB_HH */
        double num = 0, den = 0;
        for (size_t e = 0; (i != I_C0 || lstm) && e < numel_of(&p, i); e++) {
            double v = in[i][e], eps = 1e-6;
            in[i][e] = v + eps;
            double lp = ref_loss(&p, &ri, cot);
            in[i][e] = v - eps;
            double fd = (lp - ref_loss(&p, &ri, cot)) / (2 * eps);
            in[i][e] = v;
            num += (fd - an[i][e]) * (fd - an[i][e]);
            den += an[i][e] * an[i][e];
        }
        ck_assert_msg((i == I_C0 && !lstm) || (den > 0 && sqrt(num / den) < 1e-6),
                      "%s init=%d: %s rel error %.3g against finite differences",
                      cell_names[p.cell], init, out_names[O_DX + i], sqrt(num / den));
    }
    for (int i = 0; i < NIN; i++)
        free(in[i]);
    for (int i = 0; i < 7; i++)
        free(an[i]);
}
END_TEST

/* Outputs of torch.nn.RNN / LSTM / GRU (PyTorch 1.13, float64, batch_first)
 * for N = 2, T = 3, F = 2, H = 2 with every value v_k = 0.5 sin(0.7 k + c):
 * x c = 0.1, h0 0.2, c0 0.3, weight_ih 0.4, weight_hh 0.5, bias_ih 0.6,
 * bias_hh 0.7, k the row-major index. This pins the gate order and layouts. */
static const double torch_y[3][12] = {
    { 0.75320101764492942, 0.84942676738144474, 0.89727840057539476, 0.95738999401794578,
      0.83069645728713737, 0.92717256779917967, 0.53358865097657593, 0.73547817386802883,
      0.78080944544885855, 0.86169956768037226, 0.90269992169977953, 0.9556275590741331 },
    { -0.0033808482946560896, -0.024011118434629039, -0.062111206000601889, -0.093809870892448563,
      -0.10068470909726253, -0.23881078908876305, 0.044675610346687301, -0.10080584715790747,
      -0.013683738596348419, -0.22157898042893109, -0.069028089773377876, -0.18148059449605275 },
    { 0.020038242397561024, 0.019002125273798021, -0.062818187199349035, -0.14985435992414867,
      -0.12702210354233573, -0.35247517738548617, 0.28376611652592831, -0.053775961112770942,
      0.1371345158778407, -0.28920386404215587, 0.017055750609841047, -0.33433453773911848 },
};
static const double torch_cT[4] = { -0.37908287900048998, -0.76547126244884622, -0.2409366261146888,
                                    -0.75938100742190828 };

START_TEST(reference_matches_pytorch)
{
    ref_rnn p = { (ref_rnn_cell)_i, 2, 3, 2, 2 };
    double *in[7];
    for (int i = 0; i < 7; i++) {
        in[i] = dalloc(numel_of(&p, i));
        for (size_t k = 0; k < numel_of(&p, i); k++)
            in[i][k] = 0.5 * sin(0.7 * (double)k + 0.1 * (i + 1));
    }
    ref_rnn_in ri = { in[0], in[1], in[2], in[3], in[4], in[5], in[6] };
    double y[12], hT[4], cT[4];
    ref_rnn_forward(&p, &ri, y, hT, cT);
    for (int k = 0; k < 12; k++)
        ck_assert_msg(fabs(y[k] - torch_y[_i][k]) < 1e-14, "%s y[%d] = %.17g, PyTorch %.17g",
                      cell_names[_i], k, y[k], torch_y[_i][k]);
    for (int k = 0; k < 4; k++) /* hT is y's last step */
        ck_assert(fabs(hT[k] - torch_y[_i][k / 2 * 6 + 4 + k % 2]) < 1e-14);
    for (int k = 0; _i == REF_RNN_LSTM && k < 4; k++)
        ck_assert_msg(fabs(cT[k] - torch_cT[k]) < 1e-14, "lstm cT[%d] = %.17g, PyTorch %.17g", k,
                      cT[k], torch_cT[k]);
    for (int i = 0; i < 7; i++)
        free(in[i]);
}
END_TEST

/* ---- the device against the reference ---------------------------------------------- */

/* Quick tier: a representative subset, each shape with its own variant. */
static const int quick_cases[][5] = {
    { 1, 1, 1, 1, 0 },       { 3, 2, 5, 4, 1 | 2 },
    { 3, 7, 28, 16, 1 | 8 }, { 1, 33, 5, 64, 4 | 8 | 16 },
    { 3, 33, 28, 4, 1 | 4 },
};
static const int grid_t[] = { 1, 2, 7, 33 }, grid_n[] = { 1, 3 }, grid_f[] = { 1, 5, 28 },
                 grid_h[] = { 1, 4, 16, 64 };

START_TEST(device_matches_reference)
{
    clnet_context *ctx = test_context();
    ref_rnn_cell cell = (ref_rnn_cell)_i;
    for (size_t c = 0; !test_long() && c < sizeof quick_cases / sizeof quick_cases[0]; c++) {
        const int *q = quick_cases[c];
        problem pb = make_problem(cell, q[0], q[1], q[2], q[3], q[4]);
        check_case(ctx, &pb);
    }
    for (int v = 0; test_long() && v < 96; v++) { /* T x N x F x H, variants in turn */
        problem pb = make_problem(cell, grid_n[v / 12 % 2], grid_t[v / 24], grid_f[v / 4 % 3],
                                  grid_h[v % 4], v % 32);
        check_case(ctx, &pb);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* Every LSTM variant on the shapes that split its tiles (4 batch rows x 8
 * units) unevenly: batch 1, H = 1, 3, 7, 9, 33, T = 1, a state-only loss (dy
 * NULL), no dx / dh0, a batch of 33. The long tier adds the grid. */
static const int variant_cases[][5] = {
    { 1, 1, 1, 1, 0 }, { 1, 5, 3, 3, 1 },      { 3, 1, 4, 7, 1 | 4 | 16 }, { 5, 7, 2, 33, 1 | 2 },
    { 4, 3, 5, 8, 8 }, { 33, 2, 3, 9, 1 | 4 }, { 2, 33, 5, 16, 1 | 4 },    { 6, 4, 1, 1, 2 | 16 },
};

START_TEST(lstm_variants_match_reference)
{
    clnet_context *ctx = test_context();
    for (size_t c = 0; c < sizeof variant_cases / sizeof variant_cases[0]; c++) {
        const int *q = variant_cases[c];
        problem pb = make_problem(REF_RNN_LSTM, q[0], q[1], q[2], q[3], q[4]);
        pb.rec = _i;
        check_case(ctx, &pb);
    }
    static const int n[] = { 1, 3, 4, 5 }, h[] = { 1, 3, 7, 8, 9, 33 };
    for (int v = 0; test_long() && v < 96; v++) { /* N x H x T, variants in turn */
        problem pb = make_problem(REF_RNN_LSTM, n[v % 4], grid_t[v / 24], 5, h[v / 4 % 6], v % 32);
        pb.rec = _i;
        check_case(ctx, &pb);
    }
    force_rec(ctx, -1);
    clnet_context_destroy(ctx);
}
END_TEST

/* The two fused variants run the same kernel, one step per launch or all
 * in one: each element is summed by one work-item in one order, so they
 * give the same bits (which the documentation promises). */
START_TEST(lstm_fused_variants_give_the_same_bits)
{
    clnet_context *ctx = test_context();
    problem pb = make_problem(REF_RNN_LSTM, 5, 9, 3, 33, 1 | 4);
    host hd;
    devdata dd;
    outs o[2];
    host_make(&pb, &hd);
    dev_make(ctx, &pb, &hd, &dd);
    for (int v = 0; v < 2; v++) {
        force_rec(ctx, 1 + v);
        outs_make(ctx, &pb, O_Y, O_DB_HH, 1, &o[v]);
        CK_OK(ctx, dev_forward(&pb, &dd, &o[v]));
        CK_OK(ctx, dev_backward(&pb, &dd, o[v].reserve.view, &o[v]));
        outs_check(ctx, &o[v]);
    }
    for (int k = 0; k <= NOUT; k++) {
        const clnet_tensor *a = k < NOUT ? V(&o[0], k) : o[0].reserve.view;
        const clnet_tensor *b = k < NOUT ? V(&o[1], k) : o[1].reserve.view;
        float *x = fetch(ctx, a), *y = fetch(ctx, b);
        expect_same_bits(k < NOUT ? out_names[k] : "reserve", x, y, clnet_tensor_numel(a));
        free(x);
        free(y);
    }
    force_rec(ctx, -1);
    outs_free(&o[0]);
    outs_free(&o[1]);
    dev_free(&dd);
    host_free(&hd);
    clnet_context_destroy(ctx);
}
END_TEST

/* The layers over the primitive, stacked (return_sequences, then
 * return_state into a dense softmax), batch 5, H = 9 and 7: four Adam steps
 * in each variant. The fused ones give the same bits; the step GEMM path
 * differs in the last bits only, so its losses agree to 1e-5. */
static void stacked_losses(clnet_context *ctx, int rec, double *loss)
{
    enum { N = 5, T = 6, F = 3 };
    force_rec(ctx, rec);
    clnet_model *m;
    CK_OK(ctx, clnet_model_create(ctx, 2, (int64_t[]){ T, F }, 11, &m));
    clnet_rnn_layer_params p = CLNET_RNN_LAYER_PARAMS_DEFAULT;
    p.units = 9;
    p.return_sequences = 1;
    CK_OK(ctx, clnet_model_add_lstm(m, &p));
    p.units = 7;
    p.return_sequences = 0;
    p.return_state = 1;
    CK_OK(ctx, clnet_model_add_lstm(m, &p));
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 3;
    d.activation = CLNET_ACT_SOFTMAX;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    CK_OK(ctx, clnet_model_compile(m, &cp));
    float xs[N * T * F];
    int32_t ys[N];
    uint64_t st = 17;
    for (int i = 0; i < N * T * F; i++)
        xs[i] = (float)(2 * (double)(test_rng(&st) >> 11) * 0x1.0p-53 - 1);
    for (int i = 0; i < N; i++)
        ys[i] = i % 3;
    clnet_tensor *x, *y;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 3, (int64_t[]){ N, T, F }, &x));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, (int64_t[]){ N }, &y));
    CK_OK(ctx, clnet_tensor_upload(x, xs, sizeof xs));
    CK_OK(ctx, clnet_tensor_upload(y, ys, sizeof ys));
    for (int k = 0; k < 4; k++)
        CK_OK(ctx, clnet_model_train_on_batch(m, x, y, &loss[k], NULL));
    clnet_tensor_destroy(y);
    clnet_tensor_destroy(x);
    clnet_model_destroy(m);
    force_rec(ctx, -1);
}

START_TEST(stacked_layers_train_alike_in_every_variant)
{
    clnet_context *ctx = test_context();
    double loss[NREC + 1][4];
    for (int v = 0; v < NREC; v++)
        stacked_losses(ctx, v, loss[v]);
    stacked_losses(ctx, 1, loss[NREC]);
    for (int k = 0; k < 4; k++) {
        ck_assert_msg(isfinite(loss[0][k]), "step %d: loss %g", k, loss[0][k]);
        ck_assert_msg(loss[1][k] == loss[NREC][k] && loss[1][k] == loss[2][k],
                      "step %d: fused losses %.17g (again %.17g), %.17g differ", k, loss[1][k],
                      loss[NREC][k], loss[2][k]);
        ck_assert_msg(fabs(loss[0][k] - loss[1][k]) <= 1e-5 * fabs(loss[0][k]),
                      "step %d: step GEMM loss %.9g, fused %.9g", k, loss[0][k], loss[1][k]);
    }
    ck_assert_msg(loss[0][3] < loss[0][0], "four Adam steps did not lower the loss: %g -> %g",
                  loss[0][0], loss[0][3]);
    clnet_context_destroy(ctx);
}
END_TEST

/* Sizes that make parts empty: no steps (the final states are the initial
 * ones, the weight gradients zero), no features, no batch, no units. */
START_TEST(device_edge_sizes)
{
    clnet_context *ctx = test_context();
    static const int shapes[][4] = {
        { 3, 0, 5, 4 },
        { 2, 4, 0, 3 },
        { 0, 3, 2, 4 },
        { 2, 3, 4, 0 },
    };
    for (int s = 0; s < 4; s++) {
        const int *q = shapes[s];
        problem pb = make_problem((ref_rnn_cell)_i, q[0], q[1], q[2], q[3], 1 | 4 | 16);
        pb.trust = 0; /* zero outputs are right here */
        check_case(ctx, &pb);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* <v, f(theta)> for the cotangents v = (dy, dhT, dcT), from an inference forward. */
static double device_loss(clnet_context *ctx, const problem *pb, const devdata *dd, const host *hd)
{
    outs o;
    outs_make(ctx, pb, O_Y, O_CT, 0, &o);
    CK_OK(ctx, dev_forward(pb, dd, &o));
    double l = 0;
    for (int k = O_Y; k <= O_CT; k++) {
        const float *v = hd->v[I_DY + k];
        float *f = fetch(ctx, V(&o, k));
        for (size_t i = 0; v && i < numel_of(&pb->p, NIN + k); i++)
            l += (double)v[i] * f[i];
        free(f);
    }
    outs_free(&o);
    return l;
}

/* Uploads theta + sign * step * u (rounded to float32, kept in moved). */
static void move_inputs(clnet_context *ctx, const problem *pb, const host *hd, const devdata *dd,
                        double *const *u, double sign, double step, float **moved)
{
    for (int i = 0; i < 7; i++)
        for (size_t k = 0; hd->v[i] && k < numel_of(&pb->p, i); k++)
            moved[i][k] = (float)(hd->v[i][k] + sign * step * u[i][k]);
    for (int i = 0; i < 7; i++) {
        size_t n = numel_of(&pb->p, i);
        if (dd->t[i] && n)
            CK_OK(ctx, clnet_tensor_upload(dd->t[i], moved[i], n * sizeof(float)));
    }
}

/* A directional check (docs/testing.md): <g, du> from one device backward against <v, f(theta
 * + du/2)> - <v, f(theta - du/2)> from two device forwards, for a random
 * unit direction u, du what the float32 inputs really moved (2h u rounded),
 * h = 4.9e-3 max(1, |theta|_inf), retried at h/2. */
START_TEST(device_directional_derivative)
{
    clnet_context *ctx = test_context();
    problem pb = make_problem(case_cell(ctx, _i), 3, 7, 5, 4, 1 | 4);
    host hd;
    devdata dd;
    outs o;
    host_make(&pb, &hd);
    dev_make(ctx, &pb, &hd, &dd);
    outs_make(ctx, &pb, O_Y, O_DB_HH, 1, &o);
    CK_OK(ctx, dev_forward(&pb, &dd, &o));
    CK_OK(ctx, dev_backward(&pb, &dd, o.reserve.view, &o));
    float *grad[7], *plus[7], *minus[7];
    double *u[7], norm = 0, inf = 0;
    uint64_t s = 99 + (uint64_t)_i;
    for (int i = 0; i < 7; i++) { /* I_X .. I_BHH and their gradients O_DX .. O_DB_HH */
        size_t n = hd.v[i] ? numel_of(&pb.p, i) : 0;
        grad[i] = fetch(ctx, V(&o, O_DX + i));
        plus[i] = malloc((n + 1) * sizeof(float));
        minus[i] = malloc((n + 1) * sizeof(float));
        u[i] = dalloc(n);
        for (size_t k = 0; k < n; k++) {
            u[i][k] = 2 * (double)(test_rng(&s) >> 11) * 0x1.0p-53 - 1;
            norm += u[i][k] * u[i][k];
            inf = fmax(inf, fabs(hd.v[i][k]));
        }
    }
    double step = 4.9e-3 * fmax(1.0, inf) / sqrt(norm), fd = 0, an = 0, mag = 0;
    int ok = 0;
    for (int attempt = 0; attempt < 2 && !ok; attempt++, step /= 2) {
        move_inputs(ctx, &pb, &hd, &dd, u, 1, step, plus);
        double lp = device_loss(ctx, &pb, &dd, &hd);
        move_inputs(ctx, &pb, &hd, &dd, u, -1, step, minus);
        fd = lp - device_loss(ctx, &pb, &dd, &hd);
        an = mag = 0;
        for (int i = 0; i < 7; i++)
            for (size_t k = 0; hd.v[i] && k < numel_of(&pb.p, i); k++) {
                double du = (double)plus[i][k] - (double)minus[i][k];
                an += grad[i][k] * du;
                mag += fabs(grad[i][k] * du);
            }
        ok = fabs(fd - an) <= DIR_REL * mag;
        if (getenv("CLNET_TEST_VERBOSE"))
            fprintf(stderr, "rnn-directional %s: fd %.9g an %.9g ratio %.3g\n", case_names[_i], fd,
                    an, fabs(fd - an) / mag);
    }
    ck_assert_msg(ok, "%s: directional derivative %.9g, backward gives %.9g (sum |terms| %.3g)",
                  case_names[_i], fd, an, mag);
    for (int i = 0; i < 7; i++) {
        free(grad[i]);
        free(plus[i]);
        free(minus[i]);
        free(u[i]);
    }
    outs_free(&o);
    dev_free(&dd);
    host_free(&hd);
    clnet_context_destroy(ctx);
}
END_TEST

/* Forward only (docs/rnn.md: NaN propagates along its batch row from its
 * step on; +-Inf and +-FLT_MAX inputs saturate the gates; -0 and denormals
 * are plain numbers). Row 0 gets a NaN at step 1; row 1 +Inf, -Inf and
 * FLT_MAX; row 2 -0, a denormal and -FLT_MAX. */
START_TEST(nan_and_inf_policy)
{
    clnet_context *ctx = test_context();
    problem pb = make_problem(case_cell(ctx, _i), 3, 4, 5, 4, 1 | 4);
    pb.device = clnet_context_device(ctx)->name;
    int t = pb.p.t, f = pb.p.f, h = pb.p.h;
    host hd;
    refres clean;
    host_make(&pb, &hd);
    ref_run(&pb, &hd, &clean); /* its magnitude scales the finite rows */
    float *x = hd.v[I_X];
    x[(0 * t + 1) * f + 0] = NAN;
    x[(1 * t + 0) * f + 0] = INFINITY;
    x[(1 * t + 2) * f + 1] = -INFINITY;
    x[(1 * t + 3) * f + 2] = FLT_MAX;
    x[(2 * t + 0) * f + 0] = -0.0f;
    x[(2 * t + 1) * f + 1] = 1e-40f;
    x[(2 * t + 2) * f + 2] = -FLT_MAX;
    double *in[7], *y_ref = dalloc(clean.n[O_Y]);
    for (int i = 0; i < 7; i++)
        in[i] = widen(hd.v[i], numel_of(&pb.p, i));
    ref_rnn_in ri = { in[0], in[1], in[2], in[3], in[4], in[5], in[6] };
    ref_rnn_forward(&pb.p, &ri, y_ref, NULL, NULL);
    devdata dd;
    outs o;
    dev_make(ctx, &pb, &hd, &dd);
    outs_make(ctx, &pb, O_Y, O_CT, 1, &o);
    CK_OK(ctx, dev_forward(&pb, &dd, &o));
    outs_check(ctx, &o);
    float *y = fetch(ctx, V(&o, O_Y));
    double sc = clean.scale[O_Y];
    expect_close_at(&pb, "y row 0 step 0 (before the NaN)", O_Y, y, y_ref, (size_t)h, sc, 1, 0);
    for (int k = h; k < t * h; k++)
        ck_assert_msg(isnan(y[k]) && isnan(y_ref[k]),
                      "%s: y[0][%d] = %g, reference %g: the NaN "
                      "must reach every later step",
                      case_names[_i], k, y[k], y_ref[k]);
    expect_close_at(&pb, "y rows 1-2 (Inf, FLT_MAX, -0, denormal)", O_Y, y + t * h, y_ref + t * h,
                    2 * (size_t)t * h, sc, 1, 0);
    free(y);
    free(y_ref);
    for (int i = 0; i < 7; i++)
        free(in[i]);
    outs_free(&o);
    dev_free(&dd);
    ref_free(&clean);
    host_free(&hd);
    clnet_context_destroy(ctx);
}
END_TEST

/* The comparator, the trust check and the guard bands can fail. */
START_TEST(comparator_negative_controls)
{
    clnet_context *ctx = test_context();
    problem pb = make_problem(REF_RNN_LSTM, 3, 7, 5, 4, 1);
    host hd;
    refres r;
    devdata dd;
    outs o;
    host_make(&pb, &hd);
    ref_run(&pb, &hd, &r);
    dev_make(ctx, &pb, &hd, &dd);
    outs_make(ctx, &pb, O_Y, O_CT, 1, &o);
    CK_OK(ctx, dev_forward(&pb, &dd, &o));
    size_t n = r.n[O_Y], k = n / 2;
    const double *ref = r.v[O_Y];
    float *y = fetch(ctx, V(&o, O_Y)), *bad = malloc(n * sizeof *bad);
    tolerance tol = tol_for(O_Y, pb.p.t, r.scale[O_Y]);
    ck_assert_uint_eq(compare_f32("control: as computed", y, ref, n, tol), 0);
    memcpy(bad, y, n * sizeof *bad);
    bad[k] = (float)(ref[k] + 2 * tol.abs);
    ck_assert_uint_eq(compare_f32("control: one element off by 2x tolerance", bad, ref, n, tol), 1);
    bad[k] = NAN;
    ck_assert_uint_eq(compare_f32("control: a NaN", bad, ref, n, tol), 1);
    memset(bad, 0, n * sizeof *bad);
    ck_assert_uint_ge(compare_f32("control: all zeros", bad, ref, n, tol), n / 2);
    ck_assert(rel_error(bad, ref, n) >= REL_ERROR_MAX);
    double zeros[10] = { 0, 0, 0, 0, 1, 2, 3, 4, 5, 6 };
    ck_assert(mostly_zeros(zeros, 10) && !mostly_zeros(zeros + 2, 8)); /* 40%, 25% */
    /* Guard bands: a write into the margin, an element never written. */
    float one = 1.0f, sent = sentinel();
    size_t margin_bad, unwritten;
    const guarded *g = &o.g[O_Y];
    clnet_tensor *edge;
    CK_OK(ctx, clnet_tensor_slice(g->base, (int64_t)(g->margin + g->numel), 1, &edge));
    CK_OK(ctx, clnet_tensor_upload(edge, &one, sizeof one));
    clnet_tensor_destroy(edge);
    CK_OK(ctx, clnet_tensor_slice(g->base, (int64_t)g->margin + 3, 1, &edge));
    CK_OK(ctx, clnet_tensor_upload(edge, &sent, sizeof sent));
    clnet_tensor_destroy(edge);
    guard_count(ctx, g, &margin_bad, &unwritten);
    ck_assert_uint_eq(margin_bad, 1);
    ck_assert_uint_eq(unwritten, 1);
    free(y);
    free(bad);
    outs_free(&o);
    dev_free(&dd);
    ref_free(&r);
    host_free(&hd);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- long sequences, memory and the program cache ---------------------------------- */

static size_t outs_bytes(const outs *o)
{
    size_t b = 0;
    for (int k = 0; k <= NOUT; k++) {
        const guarded *g = k < NOUT ? &o->g[k] : &o->reserve;
        const clnet_tensor *t = g->base ? g->base : g->view;
        b += t ? clnet_tensor_numel(t) * sizeof(float) : 0;
    }
    return b;
}

static void train_pass(clnet_context *ctx, const problem *pb, const devdata *dd, outs *o)
{
    CK_OK(ctx, dev_forward(pb, dd, o));
    CK_OK(ctx, dev_backward(pb, dd, o->reserve.view, o));
    CK_OK(ctx, clnet_context_finish(ctx));
}

/* T = 500, H = 64, N = 8: accurate against the reference (the log2(T)
 * tolerance), and in bounded memory: after one warm-up pass a second
 * allocates nothing, and the context holds, besides the caller's tensors,
 * only its workspace of at most twice (geometric growth) the largest
 * request, 2 * 4 * (2*N*T*G*H + 2*N*H) bytes -- nothing of size T*N*H*H. */
START_TEST(long_sequence_in_bounded_memory)
{
    clnet_context *ctx = test_context();
    problem pb = make_problem((ref_rnn_cell)_i, 8, 500, 28, 64, 1 | 4);
    clnet_context_stats s0, s1, s2;
    CK_OK(ctx, clnet_context_get_stats(ctx, &s0)); /* before the workspace grows */
    check_case(ctx, &pb);
    host hd;
    devdata dd;
    outs o;
    host_make(&pb, &hd);
    dev_make(ctx, &pb, &hd, &dd);
    outs_make(ctx, &pb, O_Y, O_DB_HH, 1, &o);
    train_pass(ctx, &pb, &dd, &o);
    CK_OK(ctx, clnet_context_get_stats(ctx, &s1));
    train_pass(ctx, &pb, &dd, &o);
    CK_OK(ctx, clnet_context_get_stats(ctx, &s2));
    ck_assert_msg(s2.buffers_created == s1.buffers_created && s2.bytes_live == s1.bytes_live,
                  "a second pass allocated: %llu -> %llu buffers created",
                  (unsigned long long)s1.buffers_created, (unsigned long long)s2.buffers_created);
    size_t tensors = outs_bytes(&o);
    for (int i = 0; i < NIN; i++)
        tensors += dd.t[i] ? clnet_tensor_numel(dd.t[i]) * sizeof(float) : 0;
    size_t gh = (size_t)ref_rnn_gates(pb.p.cell) * 64, nt = 8 * 500;
    size_t workspace = (size_t)(s1.bytes_live - s0.bytes_live) - tensors;
    size_t bound = 2 * sizeof(float) * (2 * nt * gh + 2 * 8 * 64);
    ck_assert_msg(workspace <= bound, "%s: workspace %zu bytes, bound %zu", cell_names[_i],
                  workspace, bound);
    outs_free(&o);
    dev_free(&dd);
    host_free(&hd);
    clnet_context_destroy(ctx);
}
END_TEST

static void every_cell_once(clnet_context *ctx, int n, int t, int f, int h)
{
    for (int c = 0; c < 3; c++) {
        problem pb = make_problem((ref_rnn_cell)c, n, t, f, h, 1 | 4);
        host hd;
        devdata dd;
        outs o, inf;
        host_make(&pb, &hd);
        dev_make(ctx, &pb, &hd, &dd);
        outs_make(ctx, &pb, O_Y, O_DB_HH, 1, &o);
        outs_make(ctx, &pb, O_Y, O_CT, 0, &inf);
        CK_OK(ctx, dev_forward(&pb, &dd, &inf));
        train_pass(ctx, &pb, &dd, &o);
        outs_free(&inf);
        outs_free(&o);
        dev_free(&dd);
        host_free(&hd);
    }
}

/* Shapes are kernel arguments: after one warm-up, new N, T, F and H build
 * and load no program (CLBlast's own kernels are outside these counters). */
START_TEST(second_shape_builds_no_program)
{
    clnet_context *ctx = test_context();
    every_cell_once(ctx, 2, 3, 4, 5);
    clnet_context_stats a, b;
    CK_OK(ctx, clnet_context_get_stats(ctx, &a));
    every_cell_once(ctx, 5, 9, 3, 8);
    CK_OK(ctx, clnet_context_get_stats(ctx, &b));
    ck_assert_uint_eq(b.programs_built, a.programs_built);
    ck_assert_uint_eq(b.programs_loaded, a.programs_loaded);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- bad arguments ----------------------------------------------------------------- */

static clnet_tensor *make(clnet_context *ctx, clnet_dtype dt, int ndim, int64_t a, int64_t b,
                          int64_t c)
{
    int64_t shape[3] = { a, b, c };
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, dt, ndim, shape, &t));
    return t;
}

/* Elements [start, start + a*b*c) of base as an (a, b[, c]) tensor. */
static clnet_tensor *view_of(clnet_context *ctx, clnet_tensor *base, int64_t start, int ndim,
                             int64_t a, int64_t b, int64_t c)
{
    int64_t shape[3] = { a, b, c };
    clnet_tensor *s, *v;
    CK_OK(ctx, clnet_tensor_slice(base, start, a * b * (ndim == 3 ? c : 1), &s));
    CK_OK(ctx, clnet_tensor_reshape(s, ndim, shape, &v));
    clnet_tensor_destroy(s);
    return v;
}

/* The LSTM problem N = 2, T = 3, F = 4, H = 5 (G*H = 20): every check. */
#define FWD(W, X, H0, C0, Y, HT, CT, R) clnet_lstm_forward(W, X, H0, C0, Y, HT, CT, R)
#define BWD(R, DY, DHT, DCT, DX, DH0, DC0, DW)                                                     \
    clnet_lstm_backward(&d->w, d->t[I_X], R, DY, DHT, DCT, DX, DH0, DC0, DW)
#define FAILS(status, needle, call) CK_FAILS(ctx, CLNET_ERR_##status, needle, call)

static void bad_forward_args(clnet_context *ctx, const devdata *d, outs *o)
{
    clnet_tensor *x = d->t[I_X], *h0 = d->t[I_H0], *c0 = d->t[I_C0];
    clnet_tensor *y = V(o, O_Y), *hT = V(o, O_HT), *cT = V(o, O_CT), *res = o->reserve.view;
    clnet_rnn_weights w = d->w;
    FAILS(INVALID_ARG, "clnet_lstm_forward: w: must not be NULL",
          FWD(NULL, x, h0, c0, y, hT, cT, res));
    FAILS(INVALID_ARG, "x: must not be NULL", FWD(&w, NULL, h0, c0, y, hT, cT, res));
    FAILS(INVALID_ARG, "y: must not be NULL", FWD(&w, x, h0, c0, NULL, hT, cT, res));
    w.w_ih = NULL;
    FAILS(INVALID_ARG, "w->w_ih: must not be NULL", FWD(&w, x, h0, c0, y, hT, cT, res));
    w = d->w, w.w_hh = NULL;
    FAILS(INVALID_ARG, "w->w_hh: must not be NULL", FWD(&w, x, h0, c0, y, hT, cT, res));
    w = d->w, w.b_hh = NULL;
    FAILS(INVALID_ARG, "w->b_hh: must not be NULL", FWD(&w, x, h0, c0, y, hT, cT, res));
    clnet_tensor *x2 = make(ctx, CLNET_F32, 2, 2, 12, 0), *xi = make(ctx, CLNET_I32, 3, 2, 3, 4);
    clnet_tensor *whh = make(ctx, CLNET_F32, 2, 20, 4, 0), *wih = make(ctx, CLNET_F32, 2, 20, 3, 0);
    clnet_tensor *b19 = make(ctx, CLNET_F32, 1, 19, 0, 0), *s35 = make(ctx, CLNET_F32, 2, 3, 5, 0);
    clnet_tensor *y245 = make(ctx, CLNET_F32, 3, 2, 4, 5);
    int64_t need = clnet_lstm_reserve_size(2, 3, 4, 5);
    clnet_tensor *small = make(ctx, CLNET_F32, 1, need - 1, 0, 0);
    w = d->w;
    FAILS(SHAPE, "x: shape (2, 12) but expected 3 dimensions", FWD(&w, x2, h0, c0, y, hT, cT, res));
    FAILS(SHAPE, "x: dtype int32 but expected float32", FWD(&w, xi, h0, c0, y, hT, cT, res));
    w.w_hh = whh;
    FAILS(SHAPE, "w->w_hh: shape (20, 4) but expected 4*H x H", FWD(&w, x, h0, c0, y, hT, cT, res));
    w = d->w, w.w_ih = wih;
    FAILS(SHAPE, "w->w_ih: shape (20, 3) but expected (20, 4) (4*H x F)",
          FWD(&w, x, h0, c0, y, hT, cT, res));
    w = d->w, w.b_ih = b19;
    FAILS(SHAPE, "w->b_ih: shape (19) but expected (20) (4*H)", FWD(&w, x, h0, c0, y, hT, cT, res));
    w = d->w;
    FAILS(SHAPE, "h0: shape (3, 5) but expected (2, 5) (N x H)",
          FWD(&w, x, s35, c0, y, hT, cT, res));
    FAILS(SHAPE, "c0: shape (3, 5)", FWD(&w, x, h0, s35, y, hT, cT, res));
    FAILS(SHAPE, "y: shape (2, 4, 5) but expected (2, 3, 5)",
          FWD(&w, x, h0, c0, y245, hT, cT, res));
    FAILS(SHAPE, "hT: shape (3, 5)", FWD(&w, x, h0, c0, y, s35, cT, res));
    FAILS(SHAPE, "cT: shape (3, 5)", FWD(&w, x, h0, c0, y, hT, s35, res));
    char msg[128];
    snprintf(msg, sizeof msg, "reserve: holds %lld elements, needs %lld (clnet_lstm_reserve_size)",
             (long long)need - 1, (long long)need);
    FAILS(SHAPE, msg, FWD(&w, x, h0, c0, y, hT, cT, small));
    /* Outputs that overlap inputs or each other (big holds any reserve). */
    clnet_tensor *big = make(ctx, CLNET_F32, 1, 256, 0, 0);
    clnet_tensor *yb = view_of(ctx, big, 0, 3, 2, 3, 5), *hb = view_of(ctx, big, 20, 2, 2, 5, 0);
    clnet_tensor *xb = view_of(ctx, big, 29, 3, 2, 3, 4), *far = view_of(ctx, big, 30, 2, 2, 5, 0);
    FAILS(INVALID_ARG, "y: overlaps hT", FWD(&w, x, h0, c0, yb, hb, cT, res));
    FAILS(INVALID_ARG, "y: overlaps x", FWD(&w, xb, h0, c0, yb, hT, cT, res));
    FAILS(INVALID_ARG, "reserve: overlaps h0", FWD(&w, x, far, c0, y, hT, cT, big));
    clnet_context *other = test_context();
    clnet_tensor *xo = make(other, CLNET_F32, 3, 2, 3, 4);
    FAILS(INVALID_ARG, "x: belongs to another context", FWD(&w, xo, h0, c0, y, hT, cT, res));
    clnet_tensor_destroy(xo);
    clnet_context_destroy(other);
    /* The other cells share the checks; their own G shows. */
    FAILS(SHAPE, "clnet_rnn_forward: w->w_hh: shape (20, 5) but expected 1*H x H",
          clnet_rnn_forward(&w, x, h0, y, hT, res));
    FAILS(SHAPE, "clnet_gru_forward: w->w_hh: shape (20, 5) but expected 3*H x H",
          clnet_gru_forward(&w, x, h0, y, hT, res));
    clnet_tensor *all[] = { x2, xi, whh, wih, b19, s35, y245, small, yb, hb, xb, far, big };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clnet_tensor_destroy(all[i]);
}

static void bad_backward_args(clnet_context *ctx, const devdata *d, outs *o)
{
    const clnet_tensor *res = o->reserve.view, *dy = d->t[I_DY], *dhT = d->t[I_DHT],
                       *dcT = d->t[I_DCT];
    clnet_tensor *dx = V(o, O_DX), *dh0 = V(o, O_DH0), *dc0 = V(o, O_DC0);
    const clnet_rnn_grads g = { V(o, O_DW_IH), V(o, O_DW_HH), V(o, O_DB_IH), V(o, O_DB_HH) };
    clnet_rnn_grads dw = g;
    FAILS(INVALID_ARG, "clnet_lstm_backward: reserve: must not be NULL",
          BWD(NULL, dy, dhT, dcT, dx, dh0, dc0, &dw));
    FAILS(INVALID_ARG, "dw: must not be NULL", BWD(res, dy, dhT, dcT, dx, dh0, dc0, NULL));
    dw.dw_hh = NULL;
    FAILS(INVALID_ARG, "dw->dw_hh: must not be NULL", BWD(res, dy, dhT, dcT, dx, dh0, dc0, &dw));
    clnet_tensor *small = make(ctx, CLNET_F32, 1, clnet_lstm_reserve_size(2, 3, 4, 5) - 1, 0, 0);
    clnet_tensor *s35 = make(ctx, CLNET_F32, 2, 3, 5, 0), *y245 = make(ctx, CLNET_F32, 3, 2, 4, 5);
    clnet_tensor *x235 = make(ctx, CLNET_F32, 3, 2, 3, 5);
    clnet_tensor *w205 = make(ctx, CLNET_F32, 2, 20, 5, 0),
                 *w204 = make(ctx, CLNET_F32, 2, 20, 4, 0);
    clnet_tensor *b19 = make(ctx, CLNET_F32, 1, 19, 0, 0);
    dw = g;
    FAILS(SHAPE, "reserve: holds", BWD(small, dy, dhT, dcT, dx, dh0, dc0, &dw));
    FAILS(SHAPE, "dy: shape (2, 4, 5) but expected (2, 3, 5)",
          BWD(res, y245, dhT, dcT, dx, dh0, dc0, &dw));
    FAILS(SHAPE, "dhT: shape (3, 5)", BWD(res, dy, s35, dcT, dx, dh0, dc0, &dw));
    FAILS(SHAPE, "dcT: shape (3, 5)", BWD(res, dy, dhT, s35, dx, dh0, dc0, &dw));
    FAILS(SHAPE, "dx: shape (2, 3, 5) but expected (2, 3, 4) (N x T x F)",
          BWD(res, dy, dhT, dcT, x235, dh0, dc0, &dw));
    FAILS(SHAPE, "dh0: shape (3, 5)", BWD(res, dy, dhT, dcT, dx, s35, dc0, &dw));
    FAILS(SHAPE, "dc0: shape (3, 5)", BWD(res, dy, dhT, dcT, dx, dh0, s35, &dw));
    dw.dw_ih = w205;
    FAILS(SHAPE, "dw->dw_ih: shape (20, 5) but expected (20, 4) (4*H x F)",
          BWD(res, dy, dhT, dcT, dx, dh0, dc0, &dw));
    dw = g, dw.db_hh = b19;
    FAILS(SHAPE, "dw->db_hh: shape (19) but expected (20) (4*H)",
          BWD(res, dy, dhT, dcT, dx, dh0, dc0, &dw));
    dw = g, dw.dw_hh = w204;
    FAILS(SHAPE, "dw->dw_hh: shape (20, 4) but expected (20, 5)",
          BWD(res, dy, dhT, dcT, dx, dh0, dc0, &dw));
    dw = g, dw.db_ih = g.db_hh;
    FAILS(INVALID_ARG, "dw->db_ih: overlaps dw->db_hh", BWD(res, dy, dhT, dcT, dx, dh0, dc0, &dw));
    clnet_tensor *big = make(ctx, CLNET_F32, 1, 64, 0, 0);
    clnet_tensor *xb = view_of(ctx, big, 0, 3, 2, 3, 4), *dxb = view_of(ctx, big, 23, 3, 2, 3, 4);
    FAILS(INVALID_ARG, "dx: overlaps x",
          clnet_lstm_backward(&d->w, xb, res, dy, dhT, dcT, dxb, dh0, dc0, &g));
    FAILS(SHAPE, "clnet_gru_backward: w->w_hh: shape (20, 5) but expected 3*H x H",
          clnet_gru_backward(&d->w, d->t[I_X], res, dy, dhT, dx, dh0, &g));
    clnet_tensor *all[] = { small, s35, y245, x235, w205, w204, b19, xb, dxb, big };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clnet_tensor_destroy(all[i]);
}

START_TEST(bad_arguments_are_named)
{
    clnet_context *ctx = test_context();
    problem pb = make_problem(REF_RNN_LSTM, 2, 3, 4, 5, 1 | 4);
    host hd;
    devdata dd;
    outs o;
    host_make(&pb, &hd);
    dev_make(ctx, &pb, &hd, &dd);
    outs_make(ctx, &pb, O_Y, O_DB_HH, 1, &o);
    clnet_context_stats before, after;
    CK_OK(ctx, clnet_context_get_stats(ctx, &before));
    bad_forward_args(ctx, &dd, &o);
    bad_backward_args(ctx, &dd, &o);
    CK_OK(ctx, clnet_context_get_stats(ctx, &after));
    ck_assert_msg(after.kernel_launches == before.kernel_launches,
                  "a failed check queued %llu kernels",
                  (unsigned long long)(after.kernel_launches - before.kernel_launches));
    /* Nothing to name a context by: the status alone. */
    ck_assert_int_eq(clnet_rnn_forward(NULL, NULL, NULL, NULL, NULL, NULL), CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(clnet_gru_backward(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                     CLNET_ERR_INVALID_ARG);
    /* Reserve sizes: the documented formulas, -1 for negative sizes and overflow. */
    ck_assert_int_eq(clnet_rnn_reserve_size(2, 3, 4, 5), 2 * 30);
    ck_assert_int_eq(clnet_lstm_reserve_size(2, 3, 4, 5), 6 * 30 + 10);
    ck_assert_int_eq(clnet_gru_reserve_size(2, 3, 4, 5), 5 * 30);
    ck_assert_int_eq(clnet_lstm_reserve_size(-1, 3, 4, 5), -1);
    ck_assert_int_eq(clnet_gru_reserve_size(2, 3, -4, 5), -1);
    ck_assert_int_eq(clnet_rnn_reserve_size(INT64_MAX / 2, 3, 4, 5), -1);
    ck_assert_int_eq(clnet_lstm_reserve_size(1, INT64_MAX / 5, 1, 1), -1);
    outs_free(&o);
    dev_free(&dd);
    host_free(&hd);
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_rnn(void)
{
    Suite *s = suite_create("rnn");
    TCase *ref = tcase_create("reference");
    tcase_add_loop_test(ref, reference_bptt_matches_finite_differences, 0, 6);
    tcase_add_loop_test(ref, reference_matches_pytorch, 0, 3);
    suite_add_tcase(s, ref);
    TCase *dev = tcase_create("device");
    tcase_set_timeout(dev, 900);
    tcase_add_test(dev, comparator_negative_controls);
    tcase_add_loop_test(dev, device_matches_reference, 0, 3);
    tcase_add_loop_test(dev, device_edge_sizes, 0, 3);
    tcase_add_loop_test(dev, lstm_variants_match_reference, 0, NREC);
    tcase_add_test(dev, lstm_fused_variants_give_the_same_bits);
    tcase_add_test(dev, stacked_layers_train_alike_in_every_variant);
    tcase_add_loop_test(dev, device_directional_derivative, 0, 3 + NREC);
    tcase_add_loop_test(dev, nan_and_inf_policy, 0, 3 + NREC);
    /* Quick tier: the LSTM only; the long tier adds the RNN and the GRU. */
    tcase_add_loop_test(dev, long_sequence_in_bounded_memory, test_long() ? 0 : 1,
                        test_long() ? 3 : 2);
    tcase_add_test(dev, second_shape_builds_no_program);
    tcase_add_test(dev, bad_arguments_are_named);
    suite_add_tcase(s, dev);
    return s;
}
