/* clnet tests: the float64 references of activations, softmax, bias, losses,
 * batch normalization, dropout and the optimizers, by hand and against
 * finite differences (suite `ref`, tests/test-ref.c). */
#include "harness.h"
#include "ref.h"
#include "ref-check.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- activations ------------------------------------------------------- */

START_TEST(test_activations_hand)
{
    double y[4];
    ref_act_relu_forward(4, (const double[]){ -1, 0, 2, NAN }, y);
    ck_assert(y[0] == 0 && y[1] == 0 && y[2] == 2 && isnan(y[3]));
    ref_act_leaky_relu_forward(2, 0.1, (const double[]){ -1, 2 }, y);
    expect_near("leaky", 2, y, (const double[]){ -0.1, 2 }, 0);
    ref_act_sigmoid_forward(3, (const double[]){ 0, -800, 800 }, y);
    expect_near("sigmoid", 3, y, (const double[]){ 0.5, 0, 1 }, 0);
    ref_act_sigmoid_forward(1, (const double[]){ log(3.0) }, y);
    ck_assert_double_eq_tol(y[0], 0.75, 1e-15);
    ref_act_tanh_forward(2, (const double[]){ 0, log(2.0) }, y);
    expect_near("tanh", 2, y, (const double[]){ 0, 0.6 }, 1e-15);
}
END_TEST

typedef struct act_ctx {
    int kind; /* 0 relu, 1 leaky, 2 sigmoid, 3 tanh, 4 relu6, 5 hard swish */
    double alpha;
    size_t n;
    double *x;
} act_ctx;

static void act_fwd(const void *v, double *y)
{
    const act_ctx *c = v;
    switch (c->kind) {
    case 0:
        ref_act_relu_forward(c->n, c->x, y);
        break;
    case 1:
        ref_act_leaky_relu_forward(c->n, c->alpha, c->x, y);
        break;
    case 2:
        ref_act_sigmoid_forward(c->n, c->x, y);
        break;
    case 4:
        ref_act_relu6_forward(c->n, c->x, y);
        break;
    case 5:
        ref_act_hard_swish_forward(c->n, c->x, y);
        break;
    default:
        ref_act_tanh_forward(c->n, c->x, y);
        break;
    }
}

START_TEST(test_activations_backward_match_fd)
{
    enum { N = 37 };
    static const char *names[6] = {
        "relu", "leaky_relu", "sigmoid", "tanh", "relu6", "hard_swish"
    };
    for (int kind = 0; kind < 6; kind++) {
        double x[N], y[N], dy[N], dx[N];
        uint64_t s = 900 + (uint64_t)kind;
        fill_away_from_zero(x, N, &s);
        for (int i = 0; i < N; i++)
            /* reach sigmoid's and tanh's tails too; relu6: around both
             * kinks, 0 and 6, at least 0.3 away */
            x[i] = x[i] * 3.0 + (kind == 4 && i % 2 ? 6.0 : 0.0);
        for (int i = 0; kind == 5 && i < N; i++) /* hard swish: kinks at -3 and 3, >= 0.3 away */
            x[i] = i % 3 == 0 ? x[i] * (2.7 / 3) : (i % 3 == 1 ? 4.5 : -4.5) + x[i] * 0.4;
        ref_fill_uniform(dy, N, -1, 1, &s);
        act_ctx c = { kind, 0.2, N, x };
        act_fwd(&c, y);
        switch (kind) {
        case 0:
            ref_act_relu_backward(N, x, dy, dx);
            break;
        case 1:
            ref_act_leaky_relu_backward(N, 0.2, x, dy, dx);
            break;
        case 2:
            ref_act_sigmoid_backward(N, y, dy, dx);
            break;
        case 4:
            ref_act_relu6_backward(N, x, dy, dx);
            break;
        case 5:
            ref_act_hard_swish_backward(N, x, dy, dx);
            break;
        default:
            ref_act_tanh_backward(N, y, dy, dx);
            break;
        }
        check_grad(names[kind], act_fwd, &c, x, N, N, dy, dx);
    }
}
END_TEST

/* ---- softmax ----------------------------------------------------------- */

START_TEST(test_softmax_hand)
{
    double x[5] = { 0, log(2.0), log(3.0), 1000, 1000 }, y[5];
    ref_softmax_forward(1, 3, x, y);
    ref_softmax_forward(1, 2, x + 3, y + 3); /* must not overflow */
    expect_near("softmax", 5, y, (const double[]){ 1.0 / 6, 1.0 / 3, 0.5, 0.5, 0.5 }, 1e-15);
    ref_log_softmax_forward(1, 3, x, y);
    ref_log_softmax_forward(1, 2, x + 3, y + 3);
    expect_near("log_softmax", 5, y,
                (const double[]){ -log(6.0), -log(3.0), -log(2.0), -log(2.0), -log(2.0) }, 1e-15);
}
END_TEST

typedef struct softmax_ctx {
    int rows, cols, log;
    double *x;
} softmax_ctx;

static void softmax_fwd(const void *v, double *y)
{
    const softmax_ctx *c = v;
    if (c->log)
        ref_log_softmax_forward(c->rows, c->cols, c->x, y);
    else
        ref_softmax_forward(c->rows, c->cols, c->x, y);
}

START_TEST(test_softmax_backward_matches_fd)
{
    static const int shapes[][2] = { { 1, 1 }, { 2, 3 }, { 3, 7 } };
    for (int lg = 0; lg < 2; lg++)
        for (int t = 0; t < 3; t++) {
            int rows = shapes[t][0], cols = shapes[t][1];
            size_t n = (size_t)(rows * cols);
            double *x = host_f64(n), *y = host_f64(n), *dy = host_f64(n);
            double *dx = host_f64(n);
            uint64_t s = 1000 + (uint64_t)(lg * 3 + t);
            ref_fill_uniform(x, n, -3, 3, &s);
            ref_fill_uniform(dy, n, -1, 1, &s);
            softmax_ctx c = { rows, cols, lg, x };
            softmax_fwd(&c, y);
            if (lg)
                ref_log_softmax_backward(rows, cols, y, dy, dx);
            else
                ref_softmax_backward(rows, cols, y, dy, dx);
            char what[80];
            snprintf(what, sizeof what, "%s backward %dx%d", lg ? "log_softmax" : "softmax", rows,
                     cols);
            if (cols == 1) { /* constant output: the gradient is exactly 0 */
                for (size_t i = 0; i < n; i++)
                    ck_assert_msg(fabs(dx[i]) < 1e-15, "%s", what);
            } else {
                check_grad(what, softmax_fwd, &c, x, n, n, dy, dx);
            }
            free(x), free(y), free(dy), free(dx);
        }
}
END_TEST

/* ---- bias -------------------------------------------------------------- */

START_TEST(test_bias_hand)
{
    double x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, y[8], db[2];
    ref_bias_forward(2, 2, 2, x, (const double[]){ 10, 20 }, y);
    expect_near("bias", 8, y, (const double[]){ 11, 12, 23, 24, 15, 16, 27, 28 }, 0);
    ref_bias_backward(2, 2, 2, x, db);
    expect_near("bias backward", 2, db, (const double[]){ 14, 22 }, 0);
}
END_TEST

typedef struct bias_ctx {
    int n, c, hw;
    double *x, *b;
} bias_ctx;

static void bias_fwd(const void *v, double *y)
{
    const bias_ctx *c = v;
    ref_bias_forward(c->n, c->c, c->hw, c->x, c->b, y);
}

START_TEST(test_bias_backward_matches_fd)
{
    static const int shapes[][3] = { { 2, 3, 5 }, { 3, 4, 1 }, { 1, 1, 7 } };
    for (int t = 0; t < 3; t++) {
        int n = shapes[t][0], c = shapes[t][1], hw = shapes[t][2];
        size_t nx = (size_t)(n * c * hw);
        double *x = host_f64(nx), *b = host_f64((size_t)c), *dy = host_f64(nx);
        double *db = host_f64((size_t)c);
        uint64_t s = 1100 + (uint64_t)t;
        ref_fill_uniform(x, nx, -1, 1, &s);
        ref_fill_uniform(b, (size_t)c, -1, 1, &s);
        ref_fill_uniform(dy, nx, -1, 1, &s);
        ref_bias_backward(n, c, hw, dy, db);
        bias_ctx ctx = { n, c, hw, x, b };
        check_grad("bias backward", bias_fwd, &ctx, b, (size_t)c, nx, dy, db);
        check_grad("bias d(x) = dy", bias_fwd, &ctx, x, nx, nx, dy, dy);
        free(x), free(b), free(dy), free(db);
    }
}
END_TEST

/* ---- losses and metrics ------------------------------------------------ */

START_TEST(test_losses_hand)
{
    double g[6];
    ck_assert_double_eq(ref_loss_mse(2, (const double[]){ 1, 2 }, (const double[]){ 0, 0 }, g),
                        2.5);
    expect_near("mse grad", 2, g, (const double[]){ 1, 2 }, 0);
    ck_assert_double_eq_tol(
        ref_loss_bce_logits(1, (const double[]){ 0 }, (const double[]){ 0.3 }, g), log(2.0), 1e-15);
    ck_assert_double_eq_tol(g[0], 0.2, 1e-15);
    /* Stable at huge logits: exact 0 and 1000, gradients 0 and -1/2. */
    ck_assert_double_eq(
        ref_loss_bce_logits(2, (const double[]){ 1000, -1000 }, (const double[]){ 1, 1 }, g), 500);
    expect_near("bce tails", 2, g, (const double[]){ 0, -0.5 }, 0);
    double x[6] = { 1, 1, 1, 5, 5, 5 }; /* uniform rows: loss log 3 */
    ck_assert_double_eq_tol(
        ref_loss_softmax_xent(2, 3, x, (const double[]){ 0, 1, 0, 0.5, 0.5, 0 }, NULL), log(3.0),
        1e-15);
    ck_assert_double_eq_tol(ref_loss_sparse_softmax_xent(2, 3, x, (const int32_t[]){ 2, 0 }, g),
                            log(3.0), 1e-15);
    const double a = 1.0 / 6.0, b = -1.0 / 3.0; /* (1/3 - onehot) / 2 */
    expect_near("sparse xent grad", 6, g, (const double[]){ a, a, b, b, a, a }, 1e-16);
}
END_TEST

START_TEST(test_accuracy_first_max_wins)
{
    double x[9] = { 1, 3, 3, 2, 2, 0, 0, 0, 5 };
    ck_assert_double_eq(ref_metric_accuracy(3, 3, x, (const int32_t[]){ 1, 1, 2 }), 2.0 / 3.0);
    ck_assert_double_eq(ref_metric_accuracy(3, 3, x, (const int32_t[]){ 1, 0, 2 }), 1.0);
}
END_TEST

typedef struct loss_ctx {
    int kind; /* 0 mse, 1 bce, 2 softmax xent, 3 sparse */
    int rows, cols;
    double *x, *t;
    const int32_t *labels;
} loss_ctx;

/* y[0] = the loss, so that <1, y> is the loss itself. */
static void loss_fwd(const void *v, double *y)
{
    const loss_ctx *c = v;
    size_t n = (size_t)(c->rows * c->cols);
    switch (c->kind) {
    case 0:
        y[0] = ref_loss_mse(n, c->x, c->t, NULL);
        break;
    case 1:
        y[0] = ref_loss_bce_logits(n, c->x, c->t, NULL);
        break;
    case 2:
        y[0] = ref_loss_softmax_xent(c->rows, c->cols, c->x, c->t, NULL);
        break;
    default:
        y[0] = ref_loss_sparse_softmax_xent(c->rows, c->cols, c->x, c->labels, NULL);
    }
}

START_TEST(test_losses_gradient_matches_fd)
{
    static const char *names[4] = { "mse", "bce_logits", "softmax_xent", "sparse_softmax_xent" };
    enum { R = 4, C = 5, N = R * C };
    const int32_t labels[R] = { 0, 4, 2, 2 };
    const double one = 1.0;
    for (int kind = 0; kind < 4; kind++) {
        double x[N], t[N], g[N];
        uint64_t s = 1200 + (uint64_t)kind;
        ref_fill_uniform(x, N, -3, 3, &s);
        ref_fill_uniform(t, N, 0, 1, &s); /* row 3's targets do not sum
                                             to 1: exercises sum_j t_j */
        for (int r = 0; kind == 2 && r < R - 1; r++) {
            double sum = ref_reduce_sum(C, t + r * C);
            ref_eltwise_scale(C, 1.0 / sum, t + r * C, t + r * C);
        }
        loss_ctx c = { kind, R, C, x, t, labels };
        double l0 = 0;
        switch (kind) {
        case 0:
            l0 = ref_loss_mse(N, x, t, g);
            break;
        case 1:
            l0 = ref_loss_bce_logits(N, x, t, g);
            break;
        case 2:
            l0 = ref_loss_softmax_xent(R, C, x, t, g);
            break;
        default:
            l0 = ref_loss_sparse_softmax_xent(R, C, x, labels, g);
        }
        double y;
        loss_fwd(&c, &y);
        ck_assert(y == l0); /* with or without a gradient: same loss */
        check_grad(names[kind], loss_fwd, &c, x, N, 1, &one, g);
    }
}
END_TEST

/* ---- batch normalization ----------------------------------------------- */

START_TEST(test_batchnorm_training_hand_and_running_stats)
{
    /* One channel, x = 1 2 3 4: mean 2.5, biased var 1.25, unbiased 5/3. */
    ref_batchnorm p = { 4, 1, 1, 0.0, 0.1 };
    double x[4] = { 1, 2, 3, 4 }, y[4], mean, invstd, rm = 1.0, rv = 2.0;
    ref_batchnorm_forward_training(&p, x, (const double[]){ 2 }, (const double[]){ 1 }, y, &mean,
                                   &invstd, &rm, &rv);
    ck_assert_double_eq(mean, 2.5);
    ck_assert_double_eq_tol(invstd, 1.0 / sqrt(1.25), 1e-15);
    ck_assert_double_eq_tol(rm, 0.9 * 1.0 + 0.1 * 2.5, 1e-15);
    ck_assert_double_eq_tol(rv, 0.9 * 2.0 + 0.1 * 5.0 / 3.0, 1e-15);
    double z = 1.5 / sqrt(1.25); /* |x - mean| / std for the outer ones */
    expect_near("bn y", 4, y,
                (const double[]){ 1 - 2 * z, 1 - 2 * z / 3, 1 + 2 * z / 3, 1 + 2 * z }, 1e-14);
    /* Inference uses the running stats, not the batch's. */
    ref_batchnorm_forward_inference(&p, x, NULL, NULL, (const double[]){ 2 }, (const double[]){ 4 },
                                    y);
    expect_near("bn inference", 4, y, (const double[]){ -0.5, 0, 0.5, 1 }, 1e-15);
}
END_TEST

START_TEST(test_batchnorm_training_normalizes_each_channel)
{
    ref_batchnorm p = { 3, 2, 5, 1e-5, 0.1 };
    double x[30], y[30], g[2] = { 1.5, -0.5 }, b[2] = { 0.25, 2 };
    uint64_t s = 1300;
    ref_fill_uniform(x, 30, -2, 5, &s);
    ref_batchnorm_forward_training(&p, x, g, b, y, NULL, NULL, NULL, NULL);
    for (int c = 0; c < 2; c++) {
        double m = 0, v = 0, vx = 0, mx = 0;
        for (int n = 0; n < 3; n++)
            for (int e = 0; e < 5; e++) {
                m += y[(n * 2 + c) * 5 + e] / 15;
                mx += x[(n * 2 + c) * 5 + e] / 15;
            }
        for (int n = 0; n < 3; n++)
            for (int e = 0; e < 5; e++) {
                double d = y[(n * 2 + c) * 5 + e] - m;
                double dx = x[(n * 2 + c) * 5 + e] - mx;
                v += d * d / 15;
                vx += dx * dx / 15;
            }
        ck_assert_double_eq_tol(m, b[c], 1e-14);
        ck_assert_double_eq_tol(v, g[c] * g[c] * vx / (vx + 1e-5), 1e-13);
    }
}
END_TEST

typedef struct bn_ctx {
    ref_batchnorm p;
    double *x, *gamma, *beta;
    const double *rm, *rv; /* NULL: training */
} bn_ctx;

static void bn_fwd(const void *v, double *y)
{
    const bn_ctx *c = v;
    if (c->rm)
        ref_batchnorm_forward_inference(&c->p, c->x, c->gamma, c->beta, c->rm, c->rv, y);
    else
        ref_batchnorm_forward_training(&c->p, c->x, c->gamma, c->beta, y, NULL, NULL, NULL, NULL);
}

static void bn_grad_case(ref_batchnorm p, int training, uint64_t seed)
{
    size_t nx = (size_t)(p.n * p.c * p.hw), nc = (size_t)p.c;
    double *x = host_f64(nx), *y = host_f64(nx), *dy = host_f64(nx);
    double *dx = host_f64(nx), *g = host_f64(nc), *b = host_f64(nc);
    double *mean = host_f64(nc), *invstd = host_f64(nc), *dg = host_f64(nc);
    double *db = host_f64(nc), *rm = host_f64(nc), *rv = host_f64(nc);
    uint64_t s = seed;
    ref_fill_uniform(x, nx, -1, 2, &s);
    ref_fill_uniform(g, nc, 0.5, 1.5, &s);
    ref_fill_uniform(b, nc, -1, 1, &s);
    ref_fill_uniform(dy, nx, -1, 1, &s);
    ref_fill_uniform(rm, nc, -0.5, 0.5, &s);
    ref_fill_uniform(rv, nc, 0.5, 2, &s);
    bn_ctx c = { p, x, g, b, training ? NULL : rm, training ? NULL : rv };
    if (training) {
        ref_batchnorm_forward_training(&p, x, g, b, y, mean, invstd, NULL, NULL);
        ref_batchnorm_backward_training(&p, x, dy, g, mean, invstd, dx, dg, db);
    } else {
        ref_batchnorm_backward_inference(&p, x, dy, g, rm, rv, dx, dg, db);
    }
    char what[120];
    snprintf(what, sizeof what, "batchnorm %s backward n%dc%dhw%d seed %llu",
             training ? "training" : "inference", p.n, p.c, p.hw, (unsigned long long)seed);
    check_grad(what, bn_fwd, &c, x, nx, nx, dy, dx);
    check_grad(what, bn_fwd, &c, g, nc, nx, dy, dg);
    check_grad(what, bn_fwd, &c, b, nc, nx, dy, db);
    free(x), free(y), free(dy), free(dx), free(g), free(b), free(mean);
    free(invstd), free(dg), free(db), free(rm), free(rv);
}

START_TEST(test_batchnorm_backward_matches_fd)
{
    static const ref_batchnorm shapes[] = {
        { 2, 3, 5, 1e-5, 0.1 },
        { 4, 3, 1, 1e-5, 0.1 },
        { 1, 2, 7, 1e-3, 0.1 },
        { 3, 1, 1, 1e-5, 0.1 },
    };
    for (int t = 0; t < 4; t++)
        for (int training = 0; training < 2; training++)
            bn_grad_case(shapes[t], training, 1400 + (uint64_t)(2 * t + training));
}
END_TEST

/* ---- dropout ----------------------------------------------------------- */

START_TEST(test_dropout_hand)
{
    const uint8_t mask[4] = { 1, 0, 1, 1 };
    double x[4] = { 1, 2, 3, 4 }, y[4];
    ref_dropout_forward(4, 0.5, mask, x, y);
    expect_near("dropout", 4, y, (const double[]){ 2, 0, 6, 8 }, 0);
    ref_dropout_forward(4, 0.0, mask, x, y);
    expect_near("dropout p0", 4, y, (const double[]){ 1, 0, 3, 4 }, 0);
    ref_dropout_forward(4, 1.0, mask, x, y);
    expect_near("dropout p1", 4, y, (const double[]){ 0, 0, 0, 0 }, 0);
    ref_dropout_backward(4, 0.75, mask, x, y);
    expect_near("dropout backward", 4, y, (const double[]){ 4, 0, 12, 16 }, 0);
}
END_TEST

typedef struct dropout_ctx {
    size_t n;
    double p;
    const uint8_t *mask;
    double *x;
} dropout_ctx;

static void dropout_fwd(const void *v, double *y)
{
    const dropout_ctx *c = v;
    ref_dropout_forward(c->n, c->p, c->mask, c->x, y);
}

START_TEST(test_dropout_backward_matches_fd)
{
    enum { N = 29 };
    uint8_t mask[N];
    double x[N], dy[N], dx[N];
    uint64_t s = 1500;
    for (int i = 0; i < N; i++)
        mask[i] = ref_rng_uniform(&s) >= 0.3;
    ref_fill_uniform(x, N, -1, 1, &s);
    ref_fill_uniform(dy, N, -1, 1, &s);
    ref_dropout_backward(N, 0.3, mask, dy, dx);
    dropout_ctx c = { N, 0.3, mask, x };
    check_grad("dropout backward p0.3", dropout_fwd, &c, x, N, N, dy, dx);
}
END_TEST

/* ---- optimizers -------------------------------------------------------- */

START_TEST(test_sgd_hand)
{
    /* Nesterov, wd 0.1: g' = 0.5 + 0.1 = 0.6; buf = 0.6 (step 1);
     * dir = 0.6 + 0.9 * 0.6 = 1.14; p = 1 - 0.1 * 1.14 = 0.886.
     * Step 2, g = 0.5: g' = 0.5886; buf = 0.54 + 0.5886 = 1.1286;
     * dir = 0.5886 + 1.01574 = 1.60434; p = 0.886 - 0.160434 = 0.725566. */
    ref_sgd o = { .lr = 0.1, .momentum = 0.9, .weight_decay = 0.1, .nesterov = 1 };
    double p = 1.0, g = 0.5, buf = 123.0; /* step 1 overwrites buf */
    ref_optim_sgd_step(&o, 1, 1, &p, &g, &buf);
    ck_assert_double_eq_tol(p, 0.886, 1e-15);
    ck_assert_double_eq_tol(buf, 0.6, 1e-15);
    ref_optim_sgd_step(&o, 1, 2, &p, &g, &buf);
    ck_assert_double_eq_tol(buf, 1.1286, 1e-15);
    ck_assert_double_eq_tol(p, 0.725566, 1e-15);
    /* Classic momentum with dampening 0.5, step 2: buf = 0.9*2 + 0.5*0.5. */
    ref_sgd m = { .lr = 0.1, .momentum = 0.9, .dampening = 0.5 };
    p = 1.0, buf = 2.0;
    ref_optim_sgd_step(&m, 1, 2, &p, &g, &buf);
    ck_assert_double_eq_tol(buf, 2.05, 1e-15);
    ck_assert_double_eq_tol(p, 0.795, 1e-15);
    ref_sgd plain = { .lr = 0.5 };
    p = 1.0;
    ref_optim_sgd_step(&plain, 1, 1, &p, &g, NULL);
    ck_assert_double_eq(p, 0.75);
}
END_TEST

START_TEST(test_adam_hand)
{
    /* Step 1, p = 2, g = -1, wd 0.25: g' = -1 + 0.25 * 2 = -0.5;
     * m = 0.1 * -0.5 = -0.05, v = 0.001 * 0.25 = 2.5e-4; mhat = -0.5,
     * vhat = 0.25; p = 2 - 0.01 * -0.5 / (0.5 + 1e-8). */
    ref_adam o = { .lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.25 };
    double p = 2.0, g = -1.0, m = 0.0, v = 0.0;
    ref_optim_adam_step(&o, 1, 1, &p, &g, &m, &v);
    ck_assert_double_eq_tol(m, -0.05, 1e-16);
    ck_assert_double_eq_tol(v, 2.5e-4, 1e-18);
    ck_assert_double_eq_tol(p, 2.0 + 0.005 / (0.5 + 1e-8), 1e-15);
    /* Step 2 without decay, g = 1: m = -0.045 + 0.1 = 0.055,
     * v = 2.4975e-4 + 1e-3 = 1.24975e-3; mhat = 0.055 / 0.19,
     * vhat = 1.24975e-3 / 1.999e-3. */
    o.weight_decay = 0.0;
    double p0 = p;
    g = 1.0;
    ref_optim_adam_step(&o, 1, 2, &p, &g, &m, &v);
    ck_assert_double_eq_tol(m, 0.055, 1e-16);
    ck_assert_double_eq_tol(v, 1.24975e-3, 1e-17);
    double mhat = 0.055 / 0.19, vhat = 1.24975e-3 / 1.999e-3;
    ck_assert_double_eq_tol(p, p0 - 0.01 * mhat / (sqrt(vhat) + 1e-8), 1e-15);
}
END_TEST

START_TEST(test_rmsprop_hand)
{
    /* v = 0.01 * 0.25 = 0.0025; p = 1 - 0.1 * 0.5 / (0.05 + 1e-8). */
    ref_rmsprop o = { .lr = 0.1, .alpha = 0.99, .eps = 1e-8 };
    double p = 1.0, g = 0.5, v = 0.0;
    ref_optim_rmsprop_step(&o, 1, &p, &g, &v);
    ck_assert_double_eq_tol(v, 0.0025, 1e-17);
    ck_assert_double_eq_tol(p, 1.0 - 0.05 / (0.05 + 1e-8), 1e-15);
    ck_assert_double_eq_tol(p, 2e-7, 1e-9); /* ~0: rounding sanity */
    o.weight_decay = 1.0;                   /* g' = 0.5 + p */
    double p1 = p, gd = 0.5 + p1;
    ref_optim_rmsprop_step(&o, 1, &p, &g, &v);
    ck_assert_double_eq_tol(v, 0.99 * 0.0025 + 0.01 * gd * gd, 1e-17);
    ck_assert_double_eq_tol(p, p1 - 0.1 * gd / (sqrt(v) + 1e-8), 1e-15);
}
END_TEST

START_TEST(test_clip_grad_norm_hand)
{
    double a[1] = { 3 }, b[2] = { 0, 4 };
    double *grads[2] = { a, b };
    size_t sizes[2] = { 1, 2 };
    ck_assert_double_eq(ref_optim_clip_grad_norm(2, grads, sizes, 10.0), 5.0);
    ck_assert(a[0] == 3 && b[1] == 4); /* under the limit: untouched */
    ck_assert_double_eq(ref_optim_clip_grad_norm(2, grads, sizes, 1.0), 5.0);
    ck_assert_double_eq_tol(a[0], 3.0 / (5.0 + 1e-6), 1e-15);
    ck_assert_double_eq_tol(b[1], 4.0 / (5.0 + 1e-6), 1e-15);
    ck_assert(b[0] == 0);
}
END_TEST

/* ---- negative controls ------------------------------------------------- */

START_TEST(test_gradcheck_catches_wrong_formula)
{
    /* Softmax backward without the "- sum dy y" term: plausible, wrong. */
    enum { R = 2, C = 5, N = R * C };
    double x[N], y[N], dy[N], bad[N], fd[N];
    uint64_t s = 1700;
    ref_fill_uniform(x, N, -2, 2, &s);
    ref_fill_uniform(dy, N, -1, 1, &s);
    ref_softmax_forward(R, C, x, y);
    ref_eltwise_mul(N, y, dy, bad);
    softmax_ctx c = { R, C, 0, x };
    fd_grad(softmax_fwd, &c, x, N, N, dy, fd);
    ck_assert(!grad_matches("control: wrong softmax formula", N, fd, bad));
}
END_TEST

/* ---- test cases ------------------------------------------------------ */

void ref_add_layer_tests(Suite *s)
{
    TCase *tc;
    tc = ref_tcase(s, "activation");
    tcase_add_test(tc, test_activations_hand);
    tcase_add_test(tc, test_activations_backward_match_fd);
    tc = ref_tcase(s, "softmax");
    tcase_add_test(tc, test_softmax_hand);
    tcase_add_test(tc, test_softmax_backward_matches_fd);
    tc = ref_tcase(s, "bias");
    tcase_add_test(tc, test_bias_hand);
    tcase_add_test(tc, test_bias_backward_matches_fd);
    tc = ref_tcase(s, "loss");
    tcase_add_test(tc, test_losses_hand);
    tcase_add_test(tc, test_accuracy_first_max_wins);
    tcase_add_test(tc, test_losses_gradient_matches_fd);
    tc = ref_tcase(s, "batchnorm");
    tcase_add_test(tc, test_batchnorm_training_hand_and_running_stats);
    tcase_add_test(tc, test_batchnorm_training_normalizes_each_channel);
    tcase_add_test(tc, test_batchnorm_backward_matches_fd);
    tc = ref_tcase(s, "dropout");
    tcase_add_test(tc, test_dropout_hand);
    tcase_add_test(tc, test_dropout_backward_matches_fd);
    tc = ref_tcase(s, "optim");
    tcase_add_test(tc, test_sgd_hand);
    tcase_add_test(tc, test_adam_hand);
    tcase_add_test(tc, test_rmsprop_hand);
    tcase_add_test(tc, test_clip_grad_norm_hand);
}

/* The negative control of this file, in the suite's "gradcheck" case. */
void ref_add_layer_gradcheck(TCase *tc)
{
    tcase_add_test(tc, test_gradcheck_catches_wrong_formula);
}
