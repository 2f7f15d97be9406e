/* clnet tests — what an output activation and a loss mean together
 * (docs/losses.md): every output activation x every loss x fused or separate
 * Activation layer x from_logits. Each accepted cell's loss, metric and
 * parameter gradients against a float64 reference (the loss as written, its
 * gradient by central differences in float64), through train_on_batch and
 * evaluate; each refused cell's message. Plus the checks around it: label
 * errors, field names, CLNET_LOSS_NONE, Dense on sequences, softmax over a
 * Conv2D's channels. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clnet/nn.h"
#include "harness.h"
#include "nn/nn_impl.h"

#define F 5 /* input features */
#define MAXB 6
#define MAXT 3
#define MAXU 4

static const int acts[] = { CLNET_ACT_NONE,    CLNET_ACT_RELU, CLNET_ACT_LEAKY_RELU,
                            CLNET_ACT_SIGMOID, CLNET_ACT_TANH, CLNET_ACT_SOFTMAX };
static const clnet_loss_kind losses[] = { CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
                                          CLNET_LOSS_CATEGORICAL_CROSSENTROPY,
                                          CLNET_LOSS_BINARY_CROSSENTROPY, CLNET_LOSS_MSE };
#define NACTS ((int)(sizeof acts / sizeof acts[0]))
#define NLOSSES ((int)(sizeof losses / sizeof losses[0]))
#define ALPHA 0.2f

typedef struct cell {
    int act;
    clnet_loss_kind loss;
    int separate; /* Dense(units) + Activation(act) */
    int from_logits;
    int64_t batch, steps, units; /* steps > 1: input (batch, steps, F) */
} cell;

static const char *act_label(int act)
{
    return act == CLNET_ACT_SOFTMAX ? "softmax" : clnet_activation_name((clnet_activation)act);
}

static void cell_label(const cell *c, char *buf, size_t n)
{
    static const char *names[] = { "sparse-ce", "ce", "bce", "mse" };
    snprintf(buf, n, "%s + %s, %s, from_logits %d, batch %lld, steps %lld, units %lld",
             act_label(c->act), names[c->loss], c->separate ? "separate" : "fused", c->from_logits,
             (long long)c->batch, (long long)c->steps, (long long)c->units);
}

/* The rule of nn.h: which cells compile. */
static int accepted(const cell *c)
{
    if (c->loss == CLNET_LOSS_MSE)
        return !c->from_logits;
    if (c->from_logits)
        return c->act == CLNET_ACT_NONE;
    return c->act ==
           (int)(c->loss == CLNET_LOSS_BINARY_CROSSENTROPY ? CLNET_ACT_SIGMOID : CLNET_ACT_SOFTMAX);
}

/* Builds and compiles (SGD, lr 0: train_on_batch leaves the weights and
 * keeps the gradients). Returns compile's status; *out is the model. */
static clnet_status build(clnet_context *ctx, const cell *c, clnet_model **out)
{
    int64_t in[2] = { c->steps, F };
    int nd = c->steps > 1 ? 2 : 1;
    CK_OK(ctx, clnet_model_create(ctx, nd, nd == 2 ? in : in + 1, 11, out));
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = (int)c->units;
    d.activation = c->separate ? CLNET_ACT_NONE : (clnet_activation)c->act;
    d.alpha = ALPHA;
    CK_OK(ctx, clnet_model_add_dense(*out, &d));
    if (c->separate)
        CK_OK(ctx, clnet_model_add_activation(*out, (clnet_activation)c->act, ALPHA));
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    p.optimizer = CLNET_OPTIMIZER_SGD;
    p.sgd.lr = 0.0f;
    p.loss = c->loss;
    p.from_logits = c->from_logits;
    return clnet_model_compile(*out, &p);
}

/* ---- The float64 reference: the loss as written ------------------------------- */

typedef struct data {
    float x[MAXB * MAXT * F];
    int32_t labels[MAXB];
    float t[MAXB * MAXT * MAXU];
    float w[MAXU * F], b[MAXU];
} data;

static double act_apply(int act, double z)
{
    switch (act) {
    case CLNET_ACT_RELU:
        return z > 0 ? z : 0;
    case CLNET_ACT_LEAKY_RELU:
        return z > 0 ? z : ALPHA * z;
    case CLNET_ACT_SIGMOID:
        return 1 / (1 + exp(-z));
    case CLNET_ACT_TANH:
        return tanh(z);
    default:
        return z;
    }
}

static void softmax_row(double *v, int64_t n)
{
    double mx = v[0], s = 0;
    for (int64_t j = 1; j < n; j++)
        mx = fmax(mx, v[j]);
    for (int64_t j = 0; j < n; j++)
        s += (v[j] = exp(v[j] - mx));
    for (int64_t j = 0; j < n; j++)
        v[j] /= s;
}

static int64_t argmax_row(const double *v, int64_t n)
{
    int64_t best = 0;
    for (int64_t j = 1; j < n; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

/* The model's output for weights (w, b) and the loss on it, exactly as the
 * loss is defined: softmax / sigmoid applied by the loss only with
 * from_logits. *metric (optional) as nn.h defines it. */
static double ref_loss(const cell *c, const data *d, const double *w, const double *b,
                       double *metric)
{
    int64_t rows = c->batch * c->steps, U = c->units, n = rows * U;
    double out[MAXB * MAXT * MAXU], loss = 0, met = 0;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t u = 0; u < U; u++) {
            double z = b[u];
            for (int f = 0; f < F; f++)
                z += w[u * F + f] * d->x[r * F + f];
            out[r * U + u] = c->act == CLNET_ACT_SOFTMAX ? z : act_apply(c->act, z);
        }
        if (c->act == CLNET_ACT_SOFTMAX)
            softmax_row(out + r * U, U);
    }
    for (int64_t r = 0; r < rows; r++) {
        double *o = out + r * U, p[MAXU], tr[MAXU];
        const float *t = d->t + r * U;
        memcpy(p, o, (size_t)U * sizeof *p);
        for (int64_t u = 0; u < U; u++)
            tr[u] = t[u];
        switch (c->loss) {
        case CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY:
        case CLNET_LOSS_CATEGORICAL_CROSSENTROPY:
            if (c->from_logits)
                softmax_row(p, U);
            for (int64_t u = 0; u < U; u++) {
                double tu =
                    c->loss == CLNET_LOSS_CATEGORICAL_CROSSENTROPY ? t[u] : d->labels[r] == u;
                loss -= tu ? tu * log(p[u]) : 0;
            }
            met +=
                argmax_row(o, U) ==
                (c->loss == CLNET_LOSS_CATEGORICAL_CROSSENTROPY ? argmax_row(tr, U) : d->labels[r]);
            break;
        case CLNET_LOSS_BINARY_CROSSENTROPY:
            for (int64_t u = 0; u < U; u++) {
                double q = c->from_logits ? 1 / (1 + exp(-p[u])) : p[u];
                loss -= t[u] * log(q) + (1 - t[u]) * log1p(-q);
                met += ((c->from_logits ? o[u] > 0 : o[u] > 0.5) == (t[u] > 0.5)) / (double)U;
            }
            break;
        default:
            for (int64_t u = 0; u < U; u++) {
                loss += (o[u] - t[u]) * (o[u] - t[u]);
                met += fabs(o[u] - t[u]) / (double)U;
            }
        }
    }
    int elementwise = c->loss == CLNET_LOSS_BINARY_CROSSENTROPY || c->loss == CLNET_LOSS_MSE;
    if (metric)
        *metric = met / (double)rows;
    return loss / (double)(elementwise ? n : rows);
}

/* Central differences of the float64 loss: the reference gradient. */
static void ref_grads(const cell *c, const data *d, double *gw, double *gb)
{
    double w[MAXU * F] = { 0 }, b[MAXU] = { 0 }, h = 1e-6;
    int64_t U = c->units;
    for (int64_t i = 0; i < U * F + U; i++) {
        for (int64_t k = 0; k < U * F; k++)
            w[k] = d->w[k];
        for (int64_t k = 0; k < U; k++)
            b[k] = d->b[k];
        double *v = i < U * F ? &w[i] : &b[i - U * F], v0 = *v;
        *v = v0 + h;
        double plus = ref_loss(c, d, w, b, NULL);
        *v = v0 - h;
        double minus = ref_loss(c, d, w, b, NULL);
        *(i < U * F ? &gw[i] : &gb[i - U * F]) = (plus - minus) / (2 * h);
    }
}

static void make_data(const cell *c, uint64_t seed, data *d)
{
    int64_t rows = c->batch * c->steps, U = c->units;
    memset(d, 0, sizeof *d);
    fill_uniform(d->x, (size_t)(rows * F), -1, 1, &seed);
    fill_uniform(d->w, (size_t)(U * F), -0.9f, 0.9f, &seed);
    fill_uniform(d->b, (size_t)U, -0.5f, 0.5f, &seed);
    for (int64_t r = 0; r < rows; r++) {
        /* Even rows' class is the logits' argmax, odd rows' is not: an
         * accuracy of about one half, which a broken count would miss. */
        double z[MAXU];
        for (int64_t u = 0; u < U; u++) {
            z[u] = d->b[u];
            for (int f = 0; f < F; f++)
                z[u] += (double)d->w[u * F + f] * d->x[r * F + f];
        }
        int64_t cls = (argmax_row(z, U) + (r % 2)) % U;
        d->labels[r % MAXB] = (int32_t)cls;
        for (int64_t u = 0; u < U; u++) {
            float *t = &d->t[r * U + u];
            if (c->loss == CLNET_LOSS_CATEGORICAL_CROSSENTROPY)
                *t = u == cls;
            else if (c->loss == CLNET_LOSS_BINARY_CROSSENTROPY)
                *t = (float)((r + u) % 3) * 0.5f; /* 0, 0.5, 1 */
            else
                fill_uniform(t, 1, 0, 1, &seed);
        }
    }
}

/* ---- One cell --------------------------------------------------------------- */

typedef struct result {
    float loss, gw[MAXU * F], gb[MAXU];
} result;

/* Tolerances (float32 device vs float64 reference over at most 12 rows of 5
 * features): loss and metric 1e-5 relative (a few roundings of exp/log per
 * term); gradients 2e-5 absolute or 1e-4 relative (a 5-term dot product and
 * the loss's own rounding; central differences in float64 add ~1e-9). A
 * wrong chain rule or a doubled softmax is off by 1e-2 or more. */
static const tolerance grad_tol = { 2e-5, 1e-4, 0, "5-term products, exp/log roundings" };

static int close_to(double got, double ref)
{
    return fabs(got - ref) <= 1e-5 * fmax(1.0, fabs(ref));
}

/* Runs an accepted cell through train_on_batch and evaluate; returns the
 * number of failures and the device's results in *res. */
static int run_cell(clnet_context *ctx, const cell *c, uint64_t seed, result *res)
{
    char label[160];
    cell_label(c, label, sizeof label);
    data d;
    make_data(c, seed, &d);
    clnet_model *m;
    CK_OK(ctx, build(ctx, c, &m));
    clnet__param *p = m->layers[0]->params;
    CK_OK(ctx, clnet_tensor_upload(p[0].value, d.w, (size_t)(c->units * F) * sizeof(float)));
    CK_OK(ctx, clnet_tensor_upload(p[1].value, d.b, (size_t)c->units * sizeof(float)));
    int sparse = c->loss == CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    int64_t xs[3] = { c->batch, c->steps, F }, ys[3] = { c->batch, c->steps, c->units };
    int nd = c->steps > 1 ? 3 : 2;
    if (nd == 2)
        xs[1] = F, ys[1] = c->units;
    clnet_tensor *x = tensor_from(ctx, nd, xs, d.x), *y;
    if (sparse) {
        CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &c->batch, &y));
        CK_OK(ctx, clnet_tensor_upload(y, d.labels, (size_t)c->batch * sizeof(int32_t)));
    } else {
        y = tensor_from(ctx, nd, ys, d.t);
    }
    double loss, metric, ref_metric, w[MAXU * F] = { 0 }, b[MAXU] = { 0 }, gw[MAXU * F], gb[MAXU];
    for (int i = 0; i < c->units * F; i++)
        w[i] = d.w[i];
    for (int i = 0; i < c->units; i++)
        b[i] = d.b[i];
    double ref = ref_loss(c, &d, w, b, &ref_metric);
    ref_grads(c, &d, gw, gb);
    CK_OK(ctx, clnet_model_train_on_batch(m, x, y, &loss, &metric));
    int fails = 0;
    if (!close_to(loss, ref) || !close_to(metric, ref_metric)) {
        fprintf(stderr, "%s: train_on_batch loss %.7g metric %.7g, reference %.7g and %.7g\n",
                label, loss, metric, ref, ref_metric);
        fails++;
    }
    res->loss = (float)loss;
    download(ctx, p[0].grad, res->gw, (size_t)(c->units * F));
    download(ctx, p[1].grad, res->gb, (size_t)c->units);
    char gl[200];
    snprintf(gl, sizeof gl, "%s: kernel gradient", label);
    fails += compare_f32(gl, res->gw, gw, (size_t)(c->units * F), grad_tol) != 0;
    snprintf(gl, sizeof gl, "%s: bias gradient", label);
    fails += compare_f32(gl, res->gb, gb, (size_t)c->units, grad_tol) != 0;
    /* evaluate: the same loss and metric from host arrays. */
    clnet_dataset_view v = { d.x, sparse ? (const void *)d.labels : (const void *)d.t, c->batch };
    CK_OK(ctx, clnet_model_evaluate(m, &v, 2, &loss, &metric));
    if (!close_to(loss, ref) || !close_to(metric, ref_metric)) {
        fprintf(stderr, "%s: evaluate loss %.7g metric %.7g, reference %.7g and %.7g\n", label,
                loss, metric, ref, ref_metric);
        fails++;
    }
    clnet_tensor_destroy(x);
    clnet_tensor_destroy(y);
    clnet_model_destroy(m);
    return fails;
}

/* The refusal's message for a cell compile must refuse. */
static const char *refusal_needle(const cell *c)
{
    if (c->loss == CLNET_LOSS_MSE)
        return "from_logits applies to the cross-entropy losses only";
    if (c->from_logits)
        return "with from_logits = 1 takes raw scores";
    return c->loss == CLNET_LOSS_BINARY_CROSSENTROPY ? "takes probabilities from a sigmoid output"
                                                     : "takes probabilities from a softmax output";
}

static void matrix(int64_t batch, int64_t units)
{
    clnet_context *ctx = test_context();
    int failures = 0, ran = 0, refused = 0;
    for (int a = 0; a < NACTS; a++)
        for (int l = 0; l < NLOSSES; l++)
            for (int fl = 0; fl < 2; fl++) {
                result r[2];
                int ok[2] = { 0, 0 };
                for (int sep = 0; sep < 2; sep++) {
                    cell c = { acts[a], losses[l], sep, fl, batch, 1, units };
                    char label[160];
                    cell_label(&c, label, sizeof label);
                    if (!accepted(&c)) {
                        clnet_model *m;
                        int prev = expect_errors(1); /* the refusal under test */
                        clnet_status st = build(ctx, &c, &m);
                        expect_errors(prev);
                        const char *msg = clnet_context_errmsg(ctx),
                                   *layer = sep ? "activation_1" : "dense_1";
                        int good = st == CLNET_ERR_INVALID_ARG && strstr(msg, refusal_needle(&c)) &&
                                   (c.loss == CLNET_LOSS_MSE || strstr(msg, layer));
                        if (!good) {
                            fprintf(
                                stderr,
                                "%s: compile returned %s (%s), expected a refusal with \"%s\"\n",
                                label, clnet_status_name(st), msg, refusal_needle(&c));
                            failures++;
                        }
                        refused++;
                        clnet_model_destroy(m);
                        continue;
                    }
                    int f = run_cell(ctx, &c, 1000 + (uint64_t)(a * 16 + l * 2 + fl), &r[sep]);
                    failures += f;
                    ok[sep] = !f;
                    ran++;
                }
                /* Dense + Activation is the same model as the fused layer:
                 * the same logits, so the same bits. */
                if (ok[0] && ok[1] &&
                    (memcmp(&r[0].loss, &r[1].loss, sizeof r[0].loss) ||
                     memcmp(r[0].gw, r[1].gw, (size_t)(units * F) * sizeof(float)) ||
                     memcmp(r[0].gb, r[1].gb, (size_t)units * sizeof(float)))) {
                    fprintf(stderr, "%s, %d: fused and separate differ (loss %.9g vs %.9g)\n",
                            act_label(acts[a]), (int)losses[l], r[0].loss, r[1].loss);
                    failures++;
                }
            }
    ck_assert_msg(ran == 2 * (2 * 3 + NACTS), "ran %d accepted cells", ran);
    ck_assert_msg(refused == 2 * NACTS * NLOSSES * 2 - ran, "refused %d cells", refused);
    ck_assert_msg(failures == 0, "%d cells failed (see above)", failures);
    clnet_context_destroy(ctx);
}

START_TEST(matrix_batch3_units4)
{
    matrix(3, 4);
}
END_TEST

START_TEST(matrix_batch1_units1)
{
    matrix(1, 1);
}
END_TEST

/* Dense on (batch, steps, features) is Dense on every step: the same loss
 * and gradients as the (batch * steps) rows. */
START_TEST(dense_on_sequences)
{
    clnet_context *ctx = test_context();
    int failures = 0;
    for (int l = 1; l < NLOSSES; l++) {
        cell c = { l == 2 ? CLNET_ACT_SIGMOID : l == 1 ? CLNET_ACT_SOFTMAX : CLNET_ACT_TANH,
                   losses[l],
                   0,
                   0,
                   2,
                   3,
                   4 };
        result r;
        failures += run_cell(ctx, &c, 77 + (uint64_t)l, &r);
    }
    ck_assert_int_eq(failures, 0);
    clnet_context_destroy(ctx);
}
END_TEST

/* Softmax on a Conv2D's NCHW output normalizes over channels (Keras' feature
 * axis): a 1x1 convolution is a Dense layer on every pixel, so the same
 * float64 reference applies with a row per (image, pixel). MSE through it,
 * fused and separate; categorical CE on NCHW is refused. */
START_TEST(conv_softmax_over_channels)
{
    clnet_context *ctx = test_context();
    enum { N = 2, P = 3, K = 4 };
    result r[2];
    for (int sep = 0; sep < 2; sep++) {
        cell c = { CLNET_ACT_SOFTMAX, CLNET_LOSS_MSE, sep, 0, N * P, 1, K };
        data d;
        make_data(&c, 500, &d);
        clnet_model *m;
        CK_OK(ctx, clnet_model_create(ctx, 3, (int64_t[]){ F, 1, P }, 1, &m));
        clnet_conv2d_layer_params cp = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
        cp.filters = K;
        cp.kernel_h = cp.kernel_w = 1;
        cp.activation = sep ? CLNET_ACT_NONE : CLNET_ACT_SOFTMAX;
        CK_OK(ctx, clnet_model_add_conv2d(m, &cp));
        if (sep)
            CK_OK(ctx, clnet_model_add_activation(m, CLNET_ACT_SOFTMAX, 0));
        clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
        p.loss = CLNET_LOSS_CATEGORICAL_CROSSENTROPY;
        CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "per-pixel cross-entropy", clnet_model_compile(m, &p));
        p.loss = CLNET_LOSS_MSE;
        p.optimizer = CLNET_OPTIMIZER_SGD;
        p.sgd.lr = 0.0f;
        CK_OK(ctx, clnet_model_compile(m, &p));
        clnet__param *q = m->layers[0]->params;
        CK_OK(ctx, clnet_tensor_upload(q[0].value, d.w, K * F * sizeof(float)));
        CK_OK(ctx, clnet_tensor_upload(q[1].value, d.b, K * sizeof(float)));
        float x[N * F * P], t[N * K * P];
        for (int n = 0; n < N; n++)
            for (int pix = 0; pix < P; pix++) {
                for (int f = 0; f < F; f++)
                    x[(n * F + f) * P + pix] = d.x[(n * P + pix) * F + f];
                for (int k = 0; k < K; k++)
                    t[(n * K + k) * P + pix] = d.t[(n * P + pix) * K + k];
            }
        clnet_tensor *tx = tensor_from(ctx, 4, (int64_t[]){ N, F, 1, P }, x),
                     *ty = tensor_from(ctx, 4, (int64_t[]){ N, K, 1, P }, t);
        double w[K * F], b[K], gw[K * F], gb[K], met, loss, metric;
        for (int i = 0; i < K * F; i++)
            w[i] = d.w[i];
        for (int i = 0; i < K; i++)
            b[i] = d.b[i];
        double ref = ref_loss(&c, &d, w, b, &met);
        ref_grads(&c, &d, gw, gb);
        CK_OK(ctx, clnet_model_train_on_batch(m, tx, ty, &loss, &metric));
        ck_assert_msg(close_to(loss, ref) && close_to(metric, met),
                      "conv softmax %d: loss %.7g mae %.7g, reference %.7g and %.7g", sep, loss,
                      metric, ref, met);
        r[sep].loss = (float)loss;
        download(ctx, q[0].grad, r[sep].gw, K * F);
        download(ctx, q[1].grad, r[sep].gb, K);
        ck_assert(compare_f32("conv softmax kernel gradient", r[sep].gw, gw, K * F, grad_tol) == 0);
        ck_assert(compare_f32("conv softmax bias gradient", r[sep].gb, gb, K, grad_tol) == 0);
        clnet_tensor_destroy(tx);
        clnet_tensor_destroy(ty);
        clnet_model_destroy(m);
    }
    ck_assert_msg(!memcmp(&r[0], &r[1], sizeof r[0].loss) &&
                      !memcmp(r[0].gw, r[1].gw, sizeof r[0].gw) &&
                      !memcmp(r[0].gb, r[1].gb, K * sizeof(float)),
                  "Conv2D(softmax) and Conv2D + Activation(softmax) differ");
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- fit reports the metric ---------------------------------------------------- */

typedef struct seen {
    double loss, metric;
    const char *name;
} seen;

static void record(void *user, const clnet_progress *p)
{
    seen *s = user;
    if (p->end_of_epoch) {
        s->loss = p->loss;
        s->metric = p->accuracy;
        s->name = p->metric;
    }
}

START_TEST(fit_reports_metric)
{
    clnet_context *ctx = test_context();
    for (int l = 0; l < NLOSSES; l++) {
        static const int out_act[] = { CLNET_ACT_SOFTMAX, CLNET_ACT_SOFTMAX, CLNET_ACT_SIGMOID,
                                       CLNET_ACT_SIGMOID };
        cell c = { out_act[l], losses[l], 0, 0, 3, 1, 4 };
        data d;
        make_data(&c, 5, &d);
        clnet_model *m;
        CK_OK(ctx, build(ctx, &c, &m));
        const void *y = l == 0 ? (const void *)d.labels : (const void *)d.t;
        clnet_dataset_view v = { d.x, y, 3 };
        seen s = { 0, -2, NULL };
        clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
        fp.batch_size = 2;
        fp.progress = record;
        fp.progress_user = &s;
        CK_OK(ctx, clnet_model_fit(m, &fp, &v));
        double el, em;
        CK_OK(ctx, clnet_model_evaluate(m, &v, 3, &el, &em));
        /* lr 0: the epoch's running means are the evaluation's. */
        ck_assert_msg(close_to(s.loss, el) && close_to(s.metric, em),
                      "loss %d: fit %g / %g, evaluate %g / %g", l, s.loss, s.metric, el, em);
        ck_assert_msg(em >= 0 && em <= (l == 3 ? 10 : 1), "metric %g", em);
        ck_assert_str_eq(s.name, l == 3 ? "mae" : "accuracy");
        clnet_model_destroy(m);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Errors that name the problem ----------------------------------------------- */

START_TEST(sparse_labels_checked)
{
    clnet_context *ctx = test_context();
    cell c = { CLNET_ACT_SOFTMAX, CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 0, 0, 3, 1, 4 };
    data d;
    make_data(&c, 9, &d);
    d.labels[1] = 4;
    clnet_model *m;
    CK_OK(ctx, build(ctx, &c, &m));
    clnet_dataset_view v = { d.x, d.labels, 3 };
    clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
    double l, a;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "label 4 of sample 1 is outside [0, 4)",
             clnet_model_fit(m, &fp, &v));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "label 4 of sample 1",
             clnet_model_evaluate(m, &v, 3, &l, &a));
    d.labels[1] = -1;
    clnet_tensor *x = tensor_from(ctx, 2, (int64_t[]){ 3, F }, d.x), *y, *yf;
    int64_t three = 3;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &three, &y));
    CK_OK(ctx, clnet_tensor_upload(y, d.labels, 3 * sizeof(int32_t)));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "label -1 of sample 1",
             clnet_model_train_on_batch(m, x, y, &l, &a));
    /* A float label tensor: the dtype is what is wrong. */
    yf = tensor_from(ctx, 1, &three, (float[]){ 0, 1, 2 });
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "takes int32 class labels, but y is float32",
             clnet_model_train_on_batch(m, x, yf, &l, &a));
    clnet_tensor_destroy(x);
    clnet_tensor_destroy(y);
    clnet_tensor_destroy(yf);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(bad_fields_named)
{
    clnet_context *ctx = test_context();
    clnet_model *m;
    CK_OK(ctx, clnet_model_create(ctx, 3, (int64_t[]){ 1, 8, 8 }, 1, &m));
    clnet_conv2d_layer_params cp = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    cp.stride_w = 0;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "layer 0 (Conv2D): stride_w is 0",
             clnet_model_add_conv2d(m, &cp));
    CK_OK(ctx, clnet_model_add_flatten(m));
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 0;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "layer 1 (Dense): units is 0 (must be >= 1)",
             clnet_model_add_dense(m, &d));
    d.units = 2;
    d.activation = (clnet_activation)77;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "layer 1 (Dense): activation is 77",
             clnet_model_add_dense(m, &d));
    clnet_pool2d_layer_params pp = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
    pp.window_h = 0;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "window_h is 0", clnet_model_add_maxpool2d(m, &pp));
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* An optimizer without a loss: the custom loop works, the loss calls say
 * why they cannot. */
START_TEST(loss_none_custom_loop)
{
    clnet_context *ctx = test_context();
    clnet_model *m;
    int64_t in = F, two = 2;
    CK_OK(ctx, clnet_model_create(ctx, 1, &in, 1, &m));
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 2;
    d.activation = CLNET_ACT_TANH;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    p.loss = CLNET_LOSS_NONE;
    CK_OK(ctx, clnet_model_compile(m, &p));
    float xv[2 * F] = { 0.5f, -1, 0.25f, 1, 0, 1, 1, -0.5f, 0, 0.75f }, w0[2 * F], w1[2 * F];
    clnet_tensor *x = tensor_from(ctx, 2, (int64_t[]){ 2, F }, xv), *dy;
    dy = tensor_from(ctx, 2, (int64_t[]){ 2, 2 }, (float[]){ 1, -1, 0.5f, 2 });
    download(ctx, m->layers[0]->params[0].value, w0, 2 * F);
    CK_OK(ctx, clnet_model_forward(m, x, 1, NULL, NULL));
    CK_OK(ctx, clnet_model_backward(m, dy, NULL));
    CK_OK(ctx, clnet_model_step(m));
    download(ctx, m->layers[0]->params[0].value, w1, 2 * F);
    ck_assert_msg(memcmp(w0, w1, sizeof w0) != 0, "step changed nothing");
    double l;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "compiled with CLNET_LOSS_NONE",
             clnet_model_train_on_batch(m, x, dy, &l, NULL));
    clnet_dataset_view v = { xv, xv, 2 };
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "compiled with CLNET_LOSS_NONE",
             clnet_model_evaluate(m, &v, 2, &l, NULL));
    (void)two;
    clnet_tensor_destroy(x);
    clnet_tensor_destroy(dy);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_semantics(void)
{
    Suite *s = suite_create("semantics");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, matrix_batch3_units4);
    tcase_add_test(tc, matrix_batch1_units1);
    tcase_add_test(tc, dense_on_sequences);
    tcase_add_test(tc, conv_softmax_over_channels);
    tcase_add_test(tc, fit_reports_metric);
    tcase_add_test(tc, sparse_labels_checked);
    tcase_add_test(tc, bad_fields_named);
    tcase_add_test(tc, loss_none_custom_loop);
    suite_add_tcase(s, tc);
    return s;
}
