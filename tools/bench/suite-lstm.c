/* clnet-bench suite "lstm": one LSTM layer through clnet_lstm_forward and
 * clnet_lstm_backward (at the reference model's first layer and at a larger
 * shape), and one training step of the reference 3 x LSTM(64) stack
 * (tools/models.c) through clnet_model_train_on_batch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "models.h"
#include "ref-rnn.h"
#include "ref.h"

enum { KIND_LAYER, KIND_TRAIN };
enum { DIR_FWD, DIR_FWDBWD };

typedef struct layer_shape {
    int t, f, h, n, quick;
    const char *about;
} layer_shape;

/* The same shapes as tools/peers/peerlib.py (lstm_workloads). */
static const layer_shape shapes[] = {
    { 28, 28, 64, 32, 1, "LSTM(64) on 28 steps of 28 (the reference stack's first layer)" },
    { 100, 256, 256, 64, 0, "LSTM(256) on 100 steps of 256" },
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])
#define TRAIN_BATCH 32

/* The reference stack's forward FLOP per sequence (2 per multiply-add): the
 * GEMMs of three LSTM(64) layers over 28 steps (inputs 28, 64, 64 wide,
 * 4 gates) and Dense 64->10. */
#define STACK_FWD_FLOP_PER_SEQ (2.0 * 28 * 4 * 64 * ((28 + 64) + 2 * (64 + 64)) + 2.0 * 64 * 10)

static void add_layer_cases(int quick, bench_case *out, int max, int *count)
{
    static char abouts[NSHAPES][2][128];
    for (size_t i = 0; i < NSHAPES; i++) {
        const layer_shape *s = &shapes[i];
        if (quick && !s->quick)
            continue;
        double n = s->n, t = s->t, f = s->f, h = s->h;
        /* The GEMMs: input projections 2 N T 4H F, recurrent 2 N T 4H H
         * (nominal: with h0 = 0 the first step's is skipped); the backward
         * does dx, dW_ih, dW_hh and the recurrent gradient: twice that. */
        double fwd = 2.0 * n * t * 4 * h * (f + h);
        /* Bytes: x, weights and biases, y, hT, cT; the backward reads dy, x
         * and the weight matrices and writes dx, dW and db. */
        double wts = 4 * h * (f + h) + 8 * h;
        double fwd_bytes = 4 * (n * t * f + wts + n * t * h + 2 * n * h);
        double bwd_bytes = 4 * (n * t * h + n * t * f + wts - 8 * h + n * t * f + wts);
        for (int d = DIR_FWD; d <= DIR_FWDBWD && *count < max; d++) {
            bench_case *c = &out[(*count)++];
            memset(c, 0, sizeof *c);
            snprintf(c->name, sizeof c->name, "lstm_t%df%dh%d_b%d_%s", s->t, s->f, s->h, s->n,
                     d == DIR_FWD ? "fwd" : "fwdbwd");
            snprintf(abouts[i][d], sizeof abouts[i][d], "%s, %s", s->about,
                     d == DIR_FWD ? "inference forward" : "forward + backward (dx, dW, db)");
            c->about = abouts[i][d];
            c->quick = s->quick;
            c->flops = d == DIR_FWD ? fwd : 3.0 * fwd;
            c->bytes = d == DIR_FWD ? fwd_bytes : fwd_bytes + bwd_bytes;
            const int64_t p[8] = { KIND_LAYER, s->t, s->f, s->h, s->n, d };
            memcpy(c->p, p, sizeof p);
        }
    }
}

static int lstm_list(int quick, bench_case *out, int max)
{
    int count = 0;
    add_layer_cases(quick, out, max, &count);
    if (count < max) {
        bench_case *c = &out[count++];
        memset(c, 0, sizeof *c);
        snprintf(c->name, sizeof c->name, "lstm_train_b%d", TRAIN_BATCH);
        c->about = "reference 3xLSTM(64) stack training step (forward, loss, backward, Adam)";
        c->quick = 1;
        /* Nominal, as cnn_train: a step counts 3 forwards. */
        c->flops = 3.0 * STACK_FWD_FLOP_PER_SEQ * TRAIN_BATCH;
        const int64_t p[8] = { KIND_TRAIN, 28, 28, 64, TRAIN_BATCH };
        memcpy(c->p, p, sizeof p);
    }
    return count;
}

/* ---- State ---------------------------------------------------------------- */

/* Layer inputs, in the order they are generated and stored. */
enum { I_X, I_WIH, I_WHH, I_BIH, I_BHH, I_DY, NIN };
/* Layer outputs, in the order they are compared. */
enum { O_Y, O_HT, O_CT, O_DX, O_DW_IH, O_DW_HH, O_DB_IH, O_DB_HH, NOUT };

typedef struct lstm_state {
    int kind, dir;
    ref_rnn p; /* layer cases */
    clnet_tensor *in[NIN], *out[NOUT], *reserve;
    clnet_model *m; /* the training case */
    clnet_tensor *x, *labels;
} lstm_state;

/* Input i or output NIN + o, by its kind of shape: 0 (N, T, F), 1 (4H, F),
 * 2 (4H, H), 3 (4H), 4 (N, T, H), 5 (N, H). */
static const int shape_kind[NIN + NOUT] = { 0, 1, 2, 3, 3, 4, 4, 5, 5, 0, 1, 2, 3, 3 };

/* The shape of input i or output NIN + o with n rows; returns ndim. */
static int shape_rows(const ref_rnn *p, int n, int which, int64_t s[3])
{
    const int64_t gh = 4 * (int64_t)p->h;
    const int64_t all[6][3] = { { n, p->t, p->f }, { gh, p->f }, { gh, p->h }, { gh },
                                { n, p->t, p->h }, { n, p->h } };
    static const int ndims[6] = { 3, 2, 2, 1, 3, 2 };
    memcpy(s, all[shape_kind[which]], sizeof all[0]);
    return ndims[shape_kind[which]];
}

static int shape_of(const ref_rnn *p, int which, int64_t s[3])
{
    return shape_rows(p, p->n, which, s);
}

/* Elements of input i or output NIN + o for the first rows rows. */
static size_t count_of(const ref_rnn *p, int rows, int which)
{
    int64_t s[3];
    int nd = shape_rows(p, rows, which, s);
    size_t n = 1;
    for (int d = 0; d < nd; d++)
        n *= (size_t)s[d];
    return n;
}

/* The inputs, one block in I_ order: x and dy uniform in [-1, 1], weights
 * and biases in +-1/sqrt(H) (PyTorch's initialization), rounded to float32;
 * the same on every device. */
static double *make_inputs(const ref_rnn *p)
{
    size_t total = 0;
    for (int i = 0; i < NIN; i++)
        total += count_of(p, p->n, i);
    double *v = malloc(total * sizeof *v), *at = v;
    if (!v)
        return NULL;
    uint64_t rng = 0x157aull ^ ((uint64_t)p->t << 40) ^ ((uint64_t)p->f << 24) ^
                   ((uint64_t)p->h << 8) ^ (uint64_t)p->n;
    double k = 1.0 / sqrt((double)p->h);
    for (int i = 0; i < NIN; i++) {
        size_t n = count_of(p, p->n, i);
        double r = i == I_X || i == I_DY ? 1.0 : k;
        ref_fill_uniform(at, n, -r, r, &rng);
        at += n;
    }
    bench_round_to_float(v, total);
    return v;
}

static void lstm_teardown(void *state)
{
    lstm_state *s = state;
    if (!s)
        return;
    clnet_tensor_destroy(s->labels);
    clnet_tensor_destroy(s->x);
    clnet_model_destroy(s->m);
    clnet_tensor_destroy(s->reserve);
    for (int o = NOUT - 1; o >= 0; o--)
        clnet_tensor_destroy(s->out[o]);
    for (int i = NIN - 1; i >= 0; i--)
        clnet_tensor_destroy(s->in[i]);
    free(s);
}

static int wanted(const lstm_state *s, int o)
{
    return o <= O_CT || s->dir == DIR_FWDBWD;
}

static clnet_status layer_setup(clnet_context *ctx, lstm_state *s)
{
    double *v = make_inputs(&s->p), *at = v;
    clnet_status st = v ? CLNET_OK : CLNET_ERR_HOST_MEMORY;
    for (int i = 0; i < NIN && !st; i++) {
        int64_t shape[3];
        int nd = shape_of(&s->p, i, shape);
        st = bench_tensor_from(ctx, nd, shape, at, &s->in[i]);
        at += count_of(&s->p, s->p.n, i);
    }
    free(v);
    /* Outputs start as NaN: an element a run leaves unwritten fails the check. */
    for (int o = 0; o < NOUT && !st; o++) {
        int64_t shape[3];
        int nd = shape_of(&s->p, NIN + o, shape);
        if (wanted(s, o))
            st = bench_tensor_nan(ctx, nd, shape, &s->out[o]);
    }
    if (!st && s->dir == DIR_FWDBWD) {
        int64_t r = clnet_lstm_reserve_size(s->p.n, s->p.t, s->p.f, s->p.h);
        st = clnet_tensor_create(ctx, CLNET_F32, 1, &r, &s->reserve);
    }
    return st;
}

static clnet_status train_setup(clnet_context *ctx, lstm_state *s)
{
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT; /* Adam, sparse cross-entropy */
    clnet_status st = build_rnn_stack(ctx, "lstm", 1, &s->m);
    if (!st)
        st = clnet_model_compile(s->m, &cp);
    if (!st)
        st = clnet_tensor_create(ctx, CLNET_F32, 3, (int64_t[]){ s->p.n, 28, 28 }, &s->x);
    if (!st) /* pixels in [0, 1), Fashion-MNIST's rows as they are scaled */
        st = clnet_tensor_rand_uniform(s->x, 7, 0, 0.0f, 1.0f);
    if (!st)
        st = clnet_tensor_create(ctx, CLNET_I32, 1, (int64_t[]){ s->p.n }, &s->labels);
    if (!st)
        st = bench_upload_labels(s->labels, s->p.n, 0x157a1abeull);
    return st;
}

static clnet_status lstm_setup(clnet_context *ctx, const bench_case *c, void **state)
{
    *state = NULL;
    lstm_state *s = calloc(1, sizeof *s);
    if (!s)
        return CLNET_ERR_HOST_MEMORY;
    s->kind = (int)c->p[0];
    s->p = (ref_rnn){ REF_RNN_LSTM, (int)c->p[4], (int)c->p[1], (int)c->p[2], (int)c->p[3] };
    s->dir = (int)c->p[5];
    clnet_status st = s->kind == KIND_TRAIN ? train_setup(ctx, s) : layer_setup(ctx, s);
    if (st) {
        lstm_teardown(s);
        return st;
    }
    *state = s;
    return CLNET_OK;
}

static clnet_rnn_weights weights_of(const lstm_state *s)
{
    return (clnet_rnn_weights){ s->in[I_WIH], s->in[I_WHH], s->in[I_BIH], s->in[I_BHH] };
}

/* Forward (with the reserve when training) and, for fwdbwd, the backward
 * from dy alone (dhT, dcT zero; dh0, dc0 not wanted), as a layer returning
 * its sequence inside a network. Tensors: the case's, or batch slices. */
static clnet_status layer_pass(const lstm_state *s, clnet_tensor *const *in,
                               clnet_tensor *const *out)
{
    clnet_rnn_weights w = weights_of(s);
    clnet_status st =
        clnet_lstm_forward(&w, in[I_X], NULL, NULL, out[O_Y], out[O_HT], out[O_CT], s->reserve);
    if (st || s->dir != DIR_FWDBWD)
        return st;
    clnet_rnn_grads g = { out[O_DW_IH], out[O_DW_HH], out[O_DB_IH], out[O_DB_HH] };
    return clnet_lstm_backward(&w, in[I_X], s->reserve, in[I_DY], NULL, NULL, out[O_DX], NULL, NULL,
                               &g);
}

static clnet_status lstm_run(void *state)
{
    lstm_state *s = state;
    if (s->kind == KIND_TRAIN) /* loss and accuracy not read: nothing waits */
        return clnet_model_train_on_batch(s->m, s->x, s->labels, NULL, NULL);
    return layer_pass(s, s->in, s->out);
}

/* ---- Checking the layer cases ------------------------------------------------
 * tests/test-rnn.c's comparison: an element passes when |got - ref| <=
 * c g(T) S, where S is the output's magnitude (ref_rnn_magnitude: every sum
 * of every step taken over absolute values; for y, hT, cT the largest
 * pre-activation or c magnitude), g(T) = 1 + log2 T the allowance for
 * errors carried through the recurrence, and c the test's constants (about
 * 4x the worst ratio measured over its long tier). And globally
 * ||got - ref|| / ||ref|| < 1e-5, scaled by kappa / 20 when kappa =
 * ||magnitude|| / ||ref|| exceeds 20 (a sum whose terms cancel). */
#define ULP 0x1.0p-24
static const double tol_c[NOUT] = {
    [O_Y] = 6 * ULP,      [O_HT] = 6 * ULP,     [O_CT] = 6 * ULP,     [O_DX] = 16 * ULP,
    [O_DW_IH] = 16 * ULP, [O_DW_HH] = 16 * ULP, [O_DB_IH] = 16 * ULP, [O_DB_HH] = 20 * ULP,
};
#define REL_ERROR_MAX 1e-5
#define KAPPA_WELL 20.0

/* The float64 reference of a forward + backward costs about 8 forward passes
 * (the forward; the backward, which repeats it; the magnitudes, which repeat
 * both) at ~2 ns per multiply-add here: 1.4 s for 2 rows of
 * lstm_t100f256h256_b64. --check compares the first rows of the batch whose
 * forward stays within this many multiply-adds (see layer_check). */
#define REF_MACS_MAX 1.2e8

static int checked_rows(const ref_rnn *p)
{
    double per_row = (double)p->t * 4 * p->h * (p->f + p->h);
    int rows = (int)(REF_MACS_MAX / per_row);
    return rows < 1 ? 1 : rows > p->n ? p->n : rows;
}

static double growth(int t)
{
    return 1.0 + log2(t > 1 ? (double)t : 1.0);
}

/* The reference of one case: its outputs for the first `rows` rows (the
 * case's outputs only; n[o] = 0 for the others), their scales S and kappas.
 * One block; v[o] point into data. */
typedef struct lstm_ref {
    int rows;
    size_t n[NOUT];
    double scale[NOUT], kappa[NOUT];
    double *v[NOUT];
    double data[];
} lstm_ref;

static double max_of(const double *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, v[i]);
    return m;
}

static double norm_ratio(const double *m, const double *v, size_t n)
{
    double mm = 0, vv = 0;
    for (size_t i = 0; i < n; i++) {
        mm += m[i] * m[i];
        vv += v[i] * v[i];
    }
    return vv > 0 ? sqrt(mm / vv) : 1.0;
}

/* S and kappa of every output from its magnitudes m (as test-rnn.c's
 * set_scales): hT's magnitude is y's at the last step. */
static void set_scales(const ref_rnn *p, lstm_ref *r, double **m)
{
    for (int b = 0; b < p->n; b++)
        memcpy(m[O_HT] + (size_t)b * p->h, m[O_Y] + ((size_t)b * p->t + p->t - 1) * p->h,
               (size_t)p->h * sizeof(double));
    double fwd = fmax(max_of(m[O_Y], r->n[O_Y]), max_of(m[O_CT], r->n[O_CT]));
    for (int o = 0; o < NOUT; o++) {
        if (!r->n[o])
            continue;
        r->scale[o] = o <= O_CT ? fwd : max_of(m[o], r->n[o]);
        r->kappa[o] = norm_ratio(m[o], r->v[o], r->n[o]);
    }
}

/* Runs the reference on the first rows rows; NULL if out of memory. */
static lstm_ref *reference(const lstm_state *s, int rows)
{
    ref_rnn p = s->p;
    p.n = rows;
    size_t total = 0;
    size_t n[NOUT];
    for (int o = 0; o < NOUT; o++)
        total += n[o] = wanted(s, o) ? count_of(&p, rows, NIN + o) : 0;
    double *in = make_inputs(&s->p), *m[NOUT] = { 0 };
    lstm_ref *r = malloc(sizeof *r + 2 * total * sizeof(double));
    if (!in || !r) {
        free(in);
        free(r);
        return NULL;
    }
    r->rows = rows;
    double *at = r->data;
    for (int o = 0; o < NOUT; o++) {
        r->n[o] = n[o];
        r->v[o] = n[o] ? at : NULL;
        m[o] = n[o] ? at + total : NULL; /* magnitudes: the block's second half */
        at += n[o];
    }
    const double *x = in, *w_ih = x + count_of(&s->p, s->p.n, I_X);
    const double *w_hh = w_ih + count_of(&p, rows, I_WIH), *b_ih = w_hh + count_of(&p, rows, I_WHH);
    const double *b_hh = b_ih + count_of(&p, rows, I_BIH), *dy = b_hh + count_of(&p, rows, I_BHH);
    if (s->dir != DIR_FWDBWD)
        dy = NULL;
    ref_rnn_in ri = { x, NULL, NULL, w_ih, w_hh, b_ih, b_hh };
    double **v = r->v;
    ref_rnn_forward(&p, &ri, v[O_Y], v[O_HT], v[O_CT]);
    ref_rnn_grad g = { v[O_DX], NULL, NULL, v[O_DW_IH], v[O_DW_HH], v[O_DB_IH], v[O_DB_HH] };
    ref_rnn_grad mg = { m[O_DX], NULL, NULL, m[O_DW_IH], m[O_DW_HH], m[O_DB_IH], m[O_DB_HH] };
    if (dy)
        ref_rnn_backward(&p, &ri, dy, NULL, NULL, &g);
    ref_rnn_magnitude(&p, &ri, dy, NULL, NULL, m[O_Y], m[O_CT], &mg);
    set_scales(&p, r, m);
    free(in);
    return r;
}

/* Compares the first count elements of output o with the reference; the
 * first call with *inject set perturbs one element first. *rel_worst: the
 * largest normwise error as a share of its limit. */
static clnet_status compare(bench_check *out, const lstm_ref *r, int o, const clnet_tensor *t,
                            int t_steps, int *inject, double *rel_worst)
{
    size_t count = r->n[o];
    float *got;
    double *bound = malloc(count * sizeof *bound);
    clnet_status st = bound ? bench_download(t, &got) : CLNET_ERR_HOST_MEMORY;
    if (st) {
        free(bound);
        return st;
    }
    if (*inject) {
        got[count / 2] += 1.0f;
        *inject = 0;
    }
    double b = tol_c[o] * growth(t_steps) * r->scale[o], num = 0, den = 0;
    for (size_t i = 0; i < count; i++) {
        bound[i] = b;
        double d = got[i] - r->v[o][i];
        num += d * d;
        den += r->v[o][i] * r->v[o][i];
    }
    size_t start = out->count;
    bench_check_span(out, got, r->v[o], bound, count);
    double rel = den > 0 ? sqrt(num / den) : num == 0 ? 0 : INFINITY;
    double limit = REL_ERROR_MAX * fmax(1.0, r->kappa[o] / KAPPA_WELL);
    *rel_worst = fmax(*rel_worst, isnan(rel) ? INFINITY : rel / limit);
    if (!(rel < limit) && !out->bad) { /* the whole output is wrong */
        out->bad = count;
        out->first_bad = start;
        out->first_ref = r->v[o][0];
        out->first_got = got[0];
    }
    free(got);
    free(bound);
    return CLNET_OK;
}

/* With a reduced batch the weight gradients (sums over the batch) are
 * computed again from the first rows rows, by the same calls, into
 * NaN-filled outputs. */
static clnet_status rerun_reduced(lstm_state *s, int rows)
{
    clnet_tensor *in[NIN], *out[NOUT], *views[6] = { 0 };
    memcpy(in, s->in, sizeof in);
    memcpy(out, s->out, sizeof out);
    /* x and dy, then y, hT, cT and dx: their first rows. */
    clnet_tensor **slot[6] = { &in[I_X], &in[I_DY], &out[O_Y], &out[O_HT], &out[O_CT], &out[O_DX] };
    clnet_status st = CLNET_OK;
    for (int k = 0; k < 6 && !st; k++)
        if (!(st = clnet_tensor_slice(*slot[k], 0, rows, &views[k])))
            *slot[k] = views[k];
    for (int o = O_DW_IH; o < NOUT && !st; o++)
        st = clnet_tensor_fill(out[o], NAN);
    if (!st)
        st = layer_pass(s, in, out);
    for (int k = 5; k >= 0; k--)
        clnet_tensor_destroy(views[k]);
    return st;
}

static clnet_status layer_check(lstm_state *s, void **ref_cache, int inject, bench_check *out)
{
    int rows = checked_rows(&s->p), n = s->p.n;
    if (!*ref_cache && !(*ref_cache = reference(s, rows)))
        return CLNET_ERR_HOST_MEMORY;
    const lstm_ref *r = *ref_cache;
    double rel = 0;
    clnet_status st = CLNET_OK;
    bench_check_begin(out, "fp64 BPTT: c g(T) S per element, normwise");
    for (int o = 0; o <= O_DX && !st; o++) /* the timed run's */
        if (r->n[o])
            st = compare(out, r, o, s->out[o], s->p.t, &inject, &rel);
    if (!st && r->n[O_DW_IH] && rows < n)
        st = rerun_reduced(s, rows);
    for (int o = O_DW_IH; o < NOUT && !st; o++)
        if (r->n[o])
            st = compare(out, r, o, s->out[o], s->p.t, &inject, &rel);
    bench_check_end(out);
    snprintf(out->note, sizeof out->note, "rows 0-%d of %d%s; max %.2g of bound, rel %.2g of limit",
             rows - 1, n, rows < n && r->n[O_DW_IH] ? ", dW rerun" : "", out->max_ratio, rel);
    return st;
}

/* ---- Checking the training case: the logits of one forward on 2 sequences --
 * As suite-cnn.c: the weights (after the timed steps) are read back through
 * the public API (clnet_model_save, clnet_safetensors_load) and the stack is
 * evaluated in float64 with tests/ref-rnn.c. Bound, carried layer by layer
 * as the largest absolute error e_l of a layer's output: each LSTM layer
 * gets test-rnn.c's tolerance for y, 6 u g(T) S_l (S_l its largest
 * pre-activation or c magnitude), and its input's error enters like a
 * rounding of the pre-activations, through the largest row sum of |W_ih|:
 *     e_l = g(T) (6 u S_l + ||W_ih,l||_inf e_(l-1)),   e_0 = 0
 * (calibrated, as test-rnn's constants, not a proof). The dense layer adds
 * its rigorous GEMM bound, g_d = 2 (64 + 1) u:
 *     e_logit = |W_d| (e_3 + g_d |h_3|) + g_d |b_d|.
 * And, as suite-cnn.c, the normwise relative error must stay below 1e-5. */
#define CHECK_BATCH 2 /* the note says "sequences 0-1" */
#define STEPS 28
#define UNITS 64
enum { NLSTM = 3, NPARAMS = 4 * NLSTM + 2 };

/* The parameters as clnet_model_save names them: layers.0.weight_ih, ...,
 * layers.2.bias_hh (PyTorch's LSTM layout), layers.3.kernel, layers.3.bias. */
#define LSTM_PARAMS(l, in)                                                                         \
    { "layers." #l ".weight_ih", 2, { 4 * UNITS, in } },                                           \
        { "layers." #l ".weight_hh", 2, { 4 * UNITS, UNITS } },                                    \
        { "layers." #l ".bias_ih", 1, { 4 * UNITS } },                                             \
    {                                                                                              \
        "layers." #l ".bias_hh", 1,                                                                \
        {                                                                                          \
            4 * UNITS                                                                              \
        }                                                                                          \
    }
static const bench_param params[NPARAMS] = {
    LSTM_PARAMS(0, 28),
    LSTM_PARAMS(1, UNITS),
    LSTM_PARAMS(2, UNITS),
    { "layers.3.kernel", 2, { 10, UNITS } },
    { "layers.3.bias", 1, { 10 } },
};

/* The largest row sum of |w| (rows x cols). */
static double row_sum_max(const double *w, int rows, int cols)
{
    double m = 0;
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int k = 0; k < cols; k++)
            s += fabs(w[(size_t)r * cols + k]);
        m = fmax(m, s);
    }
    return m;
}

/* One LSTM layer l on seq (CHECK_BATCH, STEPS, f), in place into y
 * (CHECK_BATCH, STEPS, UNITS); *e: the input's error bound, then the
 * output's. */
static void stack_layer(const bench_weights *w, int l, int f, const double *seq, double *y,
                        double *my, double *mc, double *e)
{
    const double *const *q = (const double *const *)&w->p[4 * l];
    ref_rnn p = { REF_RNN_LSTM, CHECK_BATCH, STEPS, f, UNITS };
    ref_rnn_in in = { seq, NULL, NULL, q[0], q[1], q[2], q[3] };
    ref_rnn_grad none = { 0 };
    ref_rnn_forward(&p, &in, y, NULL, NULL);
    ref_rnn_magnitude(&p, &in, NULL, NULL, NULL, my, mc, &none);
    size_t n = (size_t)CHECK_BATCH * STEPS * UNITS;
    double s = fmax(max_of(my, n), max_of(mc, (size_t)CHECK_BATCH * UNITS));
    *e = growth(STEPS) * (tol_c[O_Y] * s + row_sum_max(q[0], 4 * UNITS, f) * *e);
}

/* The stack in float64 on x (CHECK_BATCH, STEPS, 28): logits and bounds
 * (CHECK_BATCH, 10). */
static clnet_status stack_forward(const bench_weights *w, const float *x, double *logits,
                                  double *bound)
{
    size_t n = (size_t)CHECK_BATCH * STEPS * UNITS;
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    double *my = malloc(n * sizeof *my), *mc = malloc(n * sizeof *mc);
    if (!a || !b || !my || !mc) {
        free(a), free(b), free(my), free(mc);
        return CLNET_ERR_HOST_MEMORY;
    }
    for (size_t i = 0; i < (size_t)CHECK_BATCH * STEPS * 28; i++)
        a[i] = x[i]; /* the device holds x exactly */
    double e = 0;
    for (int l = 0; l < NLSTM; l++) {
        stack_layer(w, l, l ? UNITS : 28, a, b, my, mc, &e);
        double *t = a;
        a = b, b = t;
    }
    const double *wd = w->p[4 * NLSTM], *bd = w->p[4 * NLSTM + 1];
    const double g = 2.0 * (UNITS + 1) * ULP;
    for (int r = 0; r < CHECK_BATCH; r++) {
        const double *h = a + ((size_t)r * STEPS + STEPS - 1) * UNITS; /* the last state */
        for (int j = 0; j < 10; j++) {
            double v = bd[j], m = g * fabs(bd[j]);
            for (int k = 0; k < UNITS; k++) {
                v += wd[j * UNITS + k] * h[k];
                m += fabs(wd[j * UNITS + k]) * (e + g * fabs(h[k]));
            }
            logits[r * 10 + j] = v;
            bound[r * 10 + j] = m;
        }
    }
    free(a), free(b), free(my), free(mc);
    return CLNET_OK;
}

static clnet_status train_check(lstm_state *s, int inject, bench_check *out)
{
    float *logits = NULL, *x = NULL;
    bench_weights w;
    double ref[CHECK_BATCH * 10], bound[CHECK_BATCH * 10];
    clnet_status st = bench_model_logits(s->m, s->x, CHECK_BATCH, &logits, &x);
    if (!st && !(st = bench_weights_load(s->m, "lstm", params, NPARAMS, &w))) {
        st = stack_forward(&w, x, ref, bound);
        bench_weights_free(&w);
    }
    if (!st) {
        if (inject)
            logits[CHECK_BATCH * 10 / 2] += 1.0f;
        bench_check_begin(out, "fp64 forward, layered bound + normwise 1e-5");
        bench_check_span(out, logits, ref, bound, CHECK_BATCH * 10);
        double num = 0, den = 0;
        for (int i = 0; i < CHECK_BATCH * 10; i++) {
            num += (logits[i] - ref[i]) * (logits[i] - ref[i]);
            den += ref[i] * ref[i];
        }
        double rel = den > 0 ? sqrt(num / den) : num == 0 ? 0 : INFINITY;
        if (!(rel < REL_ERROR_MAX) && !out->bad) { /* the whole output is wrong */
            out->bad = out->count;
            out->first_ref = ref[0];
            out->first_got = logits[0];
        }
        bench_check_end(out);
        snprintf(out->note, sizeof out->note,
                 "logits of sequences 0-1: max %.2g of bound; normwise %.2g (limit 1e-5)",
                 out->max_ratio, rel);
    }
    free(x);
    free(logits);
    return st;
}

static clnet_status lstm_check(void *state, const bench_case *c, void **ref_cache, int inject_fault,
                               bench_check *out)
{
    (void)c;
    lstm_state *s = state;
    if (s->kind == KIND_TRAIN) /* the weights differ per device after training: no sharing */
        return train_check(s, inject_fault, out);
    return layer_check(s, ref_cache, inject_fault, out);
}

const bench_suite bench_suite_lstm = {
    .name = "lstm",
    .about = "one LSTM layer through clnet_lstm_forward/backward, and the reference "
             "3xLSTM(64) stack's training step",
    .list = lstm_list,
    .setup = lstm_setup,
    .run = lstm_run,
    .check = lstm_check,
    .teardown = lstm_teardown,
};
