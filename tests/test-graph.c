/* clnet tests — graph models (include/clnet/graph.h): the merge, pooling,
 * sampling and expression layers inside a model against the float64
 * references (tests/ref-graph.c); finite differences of whole graphs
 * (residual, VAE-like with its KL term, a shared layer, two weighted
 * outputs) w.r.t. parameters and inputs; a chain built as a graph gives the
 * bits of the add_* chain; failed adds leave nothing; clipping reaches every
 * gradient; summary and weights of graphs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "nn/nn_impl.h"
#include "ref-conv-grouped.h"
#include "ref-graph.h"
#include "runtime/fault.h"

/* Layer outputs against the float64 references: a few float32 roundings
 * per element (merges one per op, GAP an ordered sum of <= 35 terms, the
 * sampling exp and two ops, swish exp/div); 1e-5 relative is ~100 u, far
 * above those and far below any wrong formula (off by a term or a sign). */
static const tolerance layer_tol = { 1e-6, 1e-5, 0, "a few float32 roundings per element" };

static clnet_model *model_new(clnet_context *ctx, int ndim, const int64_t *shape)
{
    clnet_model *m;
    CK_OK(ctx, clnet_model_create(ctx, ndim, shape, 7, &m));
    return m;
}

static float *rand_host(size_t n, float lo, float hi, uint64_t *seed)
{
    float *x = host_f32(n);
    fill_uniform(x, n, lo, hi, seed);
    return x;
}

/* A (batch, shape...) tensor of the node's shape, uniform in [lo, hi]. */
static clnet_tensor *node_input(clnet_context *ctx, clnet_model *m, clnet_node node, int64_t batch,
                                float lo, float hi, uint64_t *seed, float **host)
{
    int64_t s[CLNET_MAX_DIMS + 1];
    int nd = clnet_model_node_shape(m, node, s + 1);
    s[0] = batch;
    size_t n = (size_t)batch;
    for (int d = 1; d <= nd; d++)
        n *= (size_t)s[d];
    float *x = rand_host(n, lo, hi, seed);
    clnet_tensor *t = tensor_from(ctx, nd + 1, s, x);
    if (host)
        *host = x;
    else
        free(x);
    return t;
}

static void check_close(const char *label, const float *got, const double *ref, size_t n)
{
    size_t bad = compare_f32(label, got, ref, n, layer_tol);
    ck_assert_msg(bad == 0, "%s: %zu of %zu elements differ", label, bad, n);
}

static double *widen(const float *x, size_t n)
{
    return widen_f64(x, n);
}

/* ---- Each new layer inside a model, forward and backward --------------------------- */

/* Two inputs a, b (batch 3, 7 features) merged as op(a, b, a): a feeds the
 * merge twice, so its gradient is the sum of two. */
START_TEST(merge_layers_match_the_reference)
{
    clnet_context *ctx = test_context();
    for (int op = 0; op < 3; op++) {
        int64_t f = 7, batch = 3;
        size_t n = (size_t)(batch * f);
        clnet_model *m = model_new(ctx, 1, &f);
        clnet_node a = clnet_model_input(m, 0), b;
        CK_OK(ctx, clnet_model_add_input(m, 1, &f, &b));
        int k = op == CLNET_MERGE_SUBTRACT ? 2 : 3;
        clnet_node in[3] = { a, b, a };
        CK_OK(ctx, clnet_model_add_merge(m, (clnet_merge_op)op, k, in));
        uint64_t seed = 11 + (uint64_t)op;
        float *ha, *hb;
        clnet_tensor *ta = node_input(ctx, m, a, batch, -2, 2, &seed, &ha);
        clnet_tensor *tb = node_input(ctx, m, b, batch, -2, 2, &seed, &hb);
        const clnet_tensor *xs[2] = { ta, tb }, *y, *dx[2];
        CK_OK(ctx, clnet_model_forward_multi(m, 2, xs, 1));
        CK_OK(ctx, clnet_model_output_tensor(m, 0, &y, NULL));
        double *da = widen(ha, n), *db = widen(hb, n), *ref = host_f64(n);
        const double *rx[3] = { da, db, da };
        ref_merge_forward(op, k, n, rx, ref);
        float *got = host_f32(n);
        download(ctx, y, got, n);
        check_close(clnet_merge_op_name((clnet_merge_op)op), got, ref, n);
        float *g = rand_host(n, -1, 1, &seed);
        clnet_tensor *tg = tensor_from(ctx, 2, (int64_t[]){ batch, f }, g);
        const clnet_tensor *seeds[1] = { tg };
        CK_OK(ctx, clnet_model_backward_multi(m, 1, seeds, 2, dx));
        double *dg = widen(g, n), *r0 = host_f64(n), *r1 = host_f64(n), *r2 = host_f64(n);
        double *const rdx[3] = { r0, r1, r2 };
        ref_merge_backward(op, k, n, rx, dg, rdx);
        for (size_t i = 0; i < n; i++)
            r0[i] += k == 3 ? r2[i] : 0.0;
        download(ctx, dx[0], got, n);
        check_close("merge da (two uses summed)", got, r0, n);
        download(ctx, dx[1], got, n);
        check_close("merge db", got, r1, n);
        free(ha), free(hb), free(da), free(db), free(ref), free(got), free(g), free(dg);
        free(r0), free(r1), free(r2);
        clnet_tensor_destroy(ta);
        clnet_tensor_destroy(tb);
        clnet_tensor_destroy(tg);
        clnet_model_destroy(m);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* Concatenate (x, x) on channels of (batch 1, 3, 7, 5) images, then global
 * average pooling: y[c] = mean of channel c mod 3; dx sums both halves. */
START_TEST(concat_and_global_avgpool_match_the_reference)
{
    clnet_context *ctx = test_context();
    int64_t shape[3] = { 3, 7, 5 }, batch = 1;
    size_t plane = 35, n = 3 * plane;
    clnet_model *m = model_new(ctx, 3, shape);
    clnet_node x = clnet_model_input(m, 0), both[2] = { x, x };
    CK_OK(ctx, clnet_model_add_concat(m, 0, 2, both));
    int64_t cs[CLNET_MAX_DIMS];
    ck_assert_int_eq(clnet_model_node_shape(m, clnet_model_node(m), cs), 3);
    ck_assert(cs[0] == 6 && cs[1] == 7 && cs[2] == 5);
    CK_OK(ctx, clnet_model_add_global_avgpool2d(m));
    ck_assert_int_eq(clnet_model_output_shape(m, cs), 1);
    ck_assert(cs[0] == 6);
    uint64_t seed = 21;
    float *hx;
    clnet_tensor *tx = node_input(ctx, m, x, batch, -3, 3, &seed, &hx);
    const clnet_tensor *y, *dx;
    CK_OK(ctx, clnet_model_forward(m, tx, 1, &y, NULL));
    double *dxh = widen(hx, n), *cat = host_f64(2 * n), *ref = host_f64(6);
    const double *parts[2] = { dxh, dxh };
    ref_concat_forward(1, plane, 2, (int64_t[]){ 3, 3 }, parts, cat);
    ref_gap_forward(6, plane, cat, ref);
    float got[6], *gx = host_f32(n);
    download(ctx, y, got, 6);
    check_close("concat + gap forward", got, ref, 6);
    float g[6] = { 0.5f, -1, 2, 0.25f, -0.75f, 1.5f };
    clnet_tensor *tg = tensor_from(ctx, 2, (int64_t[]){ 1, 6 }, g);
    CK_OK(ctx, clnet_model_backward(m, tg, &dx));
    double dg[6], *dcat = host_f64(2 * n), *r0 = host_f64(n), *r1 = host_f64(n);
    for (int i = 0; i < 6; i++)
        dg[i] = g[i];
    ref_gap_backward(6, plane, dg, dcat);
    double *const split[2] = { r0, r1 };
    ref_concat_backward(1, plane, 2, (int64_t[]){ 3, 3 }, dcat, split);
    for (size_t i = 0; i < n; i++)
        r0[i] += r1[i];
    download(ctx, dx, gx, n);
    check_close("concat + gap backward (x twice)", gx, r0, n);
    free(hx), free(dxh), free(cat), free(ref), free(gx), free(dcat), free(r0), free(r1);
    clnet_tensor_destroy(tx);
    clnet_tensor_destroy(tg);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* Sampling on inputs mean, logvar (batch 3, 31 latent): eps is read by a
 * held forward at mean 0, logvar 0 (z = eps), then z, dmean and dlogvar
 * (with the KL term's gradient, weight 0.5) and the KL loss are checked. */
START_TEST(sampling_matches_the_reference)
{
    clnet_context *ctx = test_context();
    int64_t f = 31, batch = 3;
    size_t n = (size_t)(f * batch);
    const float w = 0.5f;
    clnet_model *m = model_new(ctx, 1, &f);
    clnet_node mean = clnet_model_input(m, 0), lv;
    CK_OK(ctx, clnet_model_add_input(m, 1, &f, &lv));
    CK_OK(ctx, clnet_model_add_sampling(m, mean, lv, w));
    CK_OK(ctx, clnet_model_hold_noise(m, 1));
    float *zeros = calloc(n, sizeof *zeros), *eps = host_f32(n), *got = host_f32(n);
    clnet_tensor *t0 = tensor_from(ctx, 2, (int64_t[]){ batch, f }, zeros);
    clnet_tensor *t1 = tensor_from(ctx, 2, (int64_t[]){ batch, f }, zeros);
    const clnet_tensor *xs[2] = { t0, t1 }, *z, *dx[2];
    CK_OK(ctx, clnet_model_forward_multi(m, 2, xs, 1));
    CK_OK(ctx, clnet_model_output_tensor(m, 0, &z, NULL));
    download(ctx, z, eps, n);
    double var = 0;
    for (size_t i = 0; i < n; i++)
        var += (double)eps[i] * eps[i];
    ck_assert_msg(var / (double)n > 0.3 && var / (double)n < 3, "eps does not look N(0, 1)");
    uint64_t seed = 31;
    float *hm = rand_host(n, -1, 1, &seed), *hl = rand_host(n, -2, 1, &seed);
    CK_OK(ctx, clnet_tensor_upload(t0, hm, n * sizeof *hm));
    CK_OK(ctx, clnet_tensor_upload(t1, hl, n * sizeof *hl));
    CK_OK(ctx, clnet_model_forward_multi(m, 2, xs, 1));
    CK_OK(ctx, clnet_model_output_tensor(m, 0, &z, NULL));
    download(ctx, z, got, n);
    double *dm = widen(hm, n), *dl = widen(hl, n), *de = widen(eps, n), *ref = host_f64(n);
    ref_sampling_forward(n, dm, dl, de, ref);
    check_close("sampling z", got, ref, n);
    double kl[3], want = 0, extra;
    ref_kl_rows(3, (size_t)f, dm, dl, kl);
    for (int r = 0; r < 3; r++)
        want += w * kl[r] / 3;
    CK_OK(ctx, clnet_model_extra_loss(m, &extra));
    ck_assert_msg(fabs(extra - want) <= 1e-5 * fabs(want), "KL term %g, reference %g", extra, want);
    float *g = rand_host(n, -1, 1, &seed);
    clnet_tensor *tg = tensor_from(ctx, 2, (int64_t[]){ batch, f }, g);
    const clnet_tensor *seeds[1] = { tg };
    CK_OK(ctx, clnet_model_backward_multi(m, 1, seeds, 2, dx));
    double *dg = widen(g, n), *rm = host_f64(n), *rl = host_f64(n), *km = host_f64(n),
           *kll = host_f64(n);
    ref_sampling_backward(n, dl, de, dg, rm, rl);
    ref_kl_backward(n, 1.0 / 3, dm, dl, km, kll);
    for (size_t i = 0; i < n; i++) {
        rm[i] += w * km[i];
        rl[i] += w * kll[i];
    }
    download(ctx, dx[0], got, n);
    check_close("sampling dmean (+ KL)", got, rm, n);
    download(ctx, dx[1], got, n);
    check_close("sampling dlogvar (+ KL)", got, rl, n);
    /* Released, a training forward draws new numbers. */
    CK_OK(ctx, clnet_model_hold_noise(m, 0));
    CK_OK(ctx, clnet_model_forward_multi(m, 2, xs, 1));
    CK_OK(ctx, clnet_model_output_tensor(m, 0, &z, NULL));
    float *again = host_f32(n);
    download(ctx, z, again, n);
    size_t same = 0;
    for (size_t i = 0; i < n; i++)
        same += again[i] == got[i];
    ck_assert_msg(same < n, "a released forward reused eps");
    free(zeros), free(eps), free(got), free(hm), free(hl), free(dm), free(dl), free(de), free(ref);
    free(g), free(dg), free(rm), free(rl), free(km), free(kll), free(again);
    clnet_tensor_destroy(t0);
    clnet_tensor_destroy(t1);
    clnet_tensor_destroy(tg);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(expression_layer_matches_swish)
{
    clnet_context *ctx = test_context();
    int64_t f = 33, batch = 1;
    size_t n = 33;
    clnet_model *m = model_new(ctx, 1, &f);
    CK_OK(ctx, clnet_model_add_expression(m, "swish", "x / (1.0f + exp(-x))",
                                          "y + (1.0f - y) / (1.0f + exp(-x))"));
    ck_assert_str_eq(clnet_model_layer_name(m, 0), "swish_1");
    uint64_t seed = 41;
    float *hx;
    clnet_tensor *tx = node_input(ctx, m, clnet_model_input(m, 0), batch, -4, 4, &seed, &hx);
    const clnet_tensor *y, *dx;
    CK_OK(ctx, clnet_model_forward(m, tx, 1, &y, NULL));
    float *got = host_f32(n), *g = rand_host(n, -1, 1, &seed);
    double *d = widen(hx, n), *ref = host_f64(n), *dg = widen(g, n);
    download(ctx, y, got, n);
    ref_swish_forward(n, d, ref);
    check_close("swish layer forward", got, ref, n);
    clnet_tensor *tg = tensor_from(ctx, 2, (int64_t[]){ 1, f }, g);
    CK_OK(ctx, clnet_model_backward(m, tg, &dx));
    download(ctx, dx, got, n);
    ref_swish_backward(n, d, dg, ref);
    check_close("swish layer backward", got, ref, n);
    /* An expression that does not compile fails at the first forward. */
    clnet_model *bad = model_new(ctx, 1, &f);
    CK_OK(ctx, clnet_model_add_expression(bad, "oops", "x +* 2", "1.0f"));
    CK_FAILS(ctx, CLNET_ERR_BUILD, "oops_1", clnet_model_forward(bad, tx, 0, &y, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "name",
             clnet_model_add_expression(bad, "a b", "x", "1.0f"));
    free(hx), free(got), free(g), free(d), free(ref), free(dg);
    clnet_tensor_destroy(tx);
    clnet_tensor_destroy(tg);
    clnet_model_destroy(bad);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

static void same_bits(clnet_context *ctx, const clnet_tensor *a, const clnet_tensor *b,
                      const char *what);

/* A grouped Conv2D (6 channels, 4 filters, groups 2, 3x2, stride 2x1,
 * explicit pads top 1, left 0, bottom 2, right 1), a MaxPooling2D (3x3,
 * stride 2, pads 1, 1, 1, 0) and an AveragePooling2D counting its pads
 * (2x2, stride 1, pads 1, 0, 0, 1) on (batch 1 and 3, 6, 7, 9): output,
 * dx, the kernel's and the bias' gradients against the float64 chain. */
START_TEST(grouped_and_padded_layers_match_the_reference)
{
    clnet_context *ctx = test_context();
    int64_t shape[3] = { 6, 7, 9 };
    for (int64_t batch = 1; batch <= 3; batch += 2) {
        clnet_model *m = model_new(ctx, 3, shape);
        clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
        c.filters = 4, c.kernel_h = 3, c.kernel_w = 2, c.stride_h = 2, c.groups = 2;
        c.padding = CLNET_PADDING_EXPLICIT;
        c.pad_top = 1, c.pad_left = 0, c.pad_bottom = 2, c.pad_right = 1;
        CK_OK(ctx, clnet_model_add_conv2d(m, &c));
        clnet_pool2d_layer_params mp = CLNET_POOL2D_LAYER_PARAMS_DEFAULT, ap = mp;
        mp.window_h = mp.window_w = 3, mp.stride_h = mp.stride_w = 2;
        mp.padding = CLNET_PADDING_EXPLICIT;
        mp.pad_top = 1, mp.pad_left = 1, mp.pad_bottom = 1, mp.pad_right = 0;
        CK_OK(ctx, clnet_model_add_maxpool2d(m, &mp));
        ap.stride_h = ap.stride_w = 1, ap.padding = CLNET_PADDING_EXPLICIT;
        ap.pad_top = 1, ap.pad_right = 1, ap.count_include_pad = 1;
        CK_OK(ctx, clnet_model_add_avgpool2d(m, &ap));
        int64_t os[CLNET_MAX_DIMS];
        ck_assert_int_eq(clnet_model_output_shape(m, os), 3);
        ck_assert(os[0] == 4 && os[1] == 2 && os[2] == 4);
        /* The references, shaped as the layers. */
        ref_conv2d rc = { (int)batch, 6, 7, 9, 4, 3, 2, 2, 1, 1, 2, 0, 1, 1, 1 };
        ref_pool2d rm = { (int)batch, 4, 4, 9, 3, 3, 2, 2, 1, 1, 1, 0, 0 };
        ref_pool2d ra = { (int)batch, 4, 2, 4, 2, 2, 1, 1, 1, 0, 0, 1, 1 };
        size_t nx = (size_t)batch * 6 * 63, nc = (size_t)batch * 4 * 36, nm = (size_t)batch * 32;
        uint64_t seed = 31 + (uint64_t)batch;
        float *hx, hw[72], hb[4];
        clnet_tensor *tx = node_input(ctx, m, clnet_model_input(m, 0), batch, -1, 1, &seed, &hx);
        float *hbias = rand_host(4, -1, 1, &seed);
        CK_OK(ctx, clnet_model_set_param(m, 0, "bias", 1, (int64_t[]){ 4 }, hbias));
        CK_OK(ctx, clnet_model_get_param(m, 0, "kernel", hw, 72));
        CK_OK(ctx, clnet_model_get_param(m, 0, "bias", hb, 4));
        const clnet_tensor *y, *dx;
        CK_OK(ctx, clnet_model_forward(m, tx, 1, &y, NULL));
        double *dxh = widen(hx, nx), *dw = widen(hw, 72), *db = widen(hb, 4);
        double *conv = host_f64(nc), *mx = host_f64(nm), *ref = host_f64(nm);
        ref_conv2d_grouped_forward(&rc, 2, dxh, dw, db, conv);
        ref_pool2d_max_forward(&rm, conv, mx);
        ref_pool2d_avg_forward(&ra, mx, ref);
        float *got = host_f32(nx);
        download(ctx, y, got, nm);
        check_close("grouped conv + padded pools forward", got, ref, nm);
        float *g = rand_host(nm, -1, 1, &seed);
        clnet_tensor *tg = tensor_from(ctx, 4, (int64_t[]){ batch, 4, 2, 4 }, g);
        CK_OK(ctx, clnet_model_backward(m, tg, &dx));
        double *dg = widen(g, nm), *dmx = host_f64(nm), *dconv = host_f64(nc);
        double *rdx = host_f64(nx), rdw[72], rdb[4];
        ref_pool2d_avg_backward(&ra, dg, dmx);
        ref_pool2d_max_backward(&rm, conv, dmx, dconv);
        ref_conv2d_grouped_backward_data(&rc, 2, dw, dconv, rdx);
        ref_conv2d_grouped_backward_filter(&rc, 2, dxh, dconv, rdw);
        ref_conv2d_backward_bias(&rc, dconv, rdb);
        download(ctx, dx, got, nx);
        check_close("grouped conv + padded pools dx", got, rdx, nx);
        CK_OK(ctx, clnet_model_get_grad(m, 0, "kernel", got, 72));
        check_close("grouped conv kernel gradient", got, rdw, 72);
        CK_OK(ctx, clnet_model_get_grad(m, 0, "bias", got, 4));
        check_close("grouped conv bias gradient", got, rdb, 4);
        /* Weights: the grouped kernel (4, 3, 3, 2) saves and loads by name. */
        char path[] = "/tmp/clnet-graph-XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        close(fd);
        CK_OK(ctx, clnet_model_save(m, path));
        clnet_model *b = model_new(ctx, 3, shape);
        CK_OK(ctx, clnet_model_add_conv2d(b, &c));
        CK_OK(ctx, clnet_model_load(b, path));
        for (int k = 0; k < 2; k++)
            same_bits(ctx, m->layers[0]->params[k].value, b->layers[0]->params[k].value, "loaded");
        unlink(path);
        clnet_model_destroy(b);
        free(hx), free(hbias), free(dxh), free(dw), free(db), free(conv), free(mx), free(ref);
        free(got), free(g), free(dg), free(dmx), free(dconv), free(rdx);
        clnet_tensor_destroy(tx);
        clnet_tensor_destroy(tg);
        clnet_model_destroy(m);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* Bad groups and pads: each refused with the field or the shapes named,
 * the model left as it was. */
START_TEST(grouped_and_padded_params_are_checked)
{
    clnet_context *ctx = test_context();
    clnet_model *m = model_new(ctx, 3, (int64_t[]){ 6, 5, 5 });
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.filters = 4, c.groups = 4;
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "groups 4 must divide the 6 channels and the 4 filters",
             clnet_model_add_conv2d(m, &c));
    c.groups = -1;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "groups is -1", clnet_model_add_conv2d(m, &c));
    c.groups = 2;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "(Conv2DTranspose): groups is 2 (must be 0 or 1",
             clnet_model_add_conv2d_transpose(m, &c));
    c.groups = 1, c.padding = CLNET_PADDING_EXPLICIT, c.pad_right = -1;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "pad_right is -1", clnet_model_add_conv2d(m, &c));
    c.pad_right = 0;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "padding is 2 (must be CLNET_PADDING_VALID or",
             clnet_model_add_conv2d_transpose(m, &c));
    c.padding = (clnet_padding)3;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "padding is 3", clnet_model_add_conv2d(m, &c));
    clnet_pool2d_layer_params p = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
    p.padding = CLNET_PADDING_EXPLICIT, p.pad_left = 2;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "pad_left is 2 (must be >= 0 and smaller than window_w)",
             clnet_model_add_maxpool2d(m, &p));
    p.pad_left = 1, p.count_include_pad = 2;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "count_include_pad is 2",
             clnet_model_add_avgpool2d(m, &p));
    ck_assert_int_eq(clnet_model_layer_count(m), 0);
    /* Valid: groups 0 is ungrouped; a 7x7 kernel fits 5x5 padded by 1. */
    c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.groups = 0, c.kernel_h = c.kernel_w = 7, c.padding = CLNET_PADDING_EXPLICIT;
    c.pad_top = c.pad_bottom = c.pad_left = c.pad_right = 1;
    CK_OK(ctx, clnet_model_add_conv2d(m, &c));
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Finite differences of whole graphs ------------------------------------------------ */

/* The function checked: F = sum_k <v_k, logits_k> + the layers' loss terms
 * (the KL), from a training forward (BatchNormalization uses the batch's
 * statistics, the same in every forward). backward_multi with seeds v_k
 * gives its gradient. */
typedef struct fd_setup {
    int nx, ny;
    clnet_tensor *x[CLNET_MODEL_MAX_IO], *v[CLNET_MODEL_MAX_IO];
    float *hv[CLNET_MODEL_MAX_IO];
    size_t nv[CLNET_MODEL_MAX_IO];
} fd_setup;

static double objective(clnet_context *ctx, clnet_model *m, const fd_setup *s)
{
    CK_OK(ctx, clnet_model_forward_multi(m, s->nx, (const clnet_tensor *const *)s->x, 1));
    double f = 0;
    for (int k = 0; k < s->ny; k++) {
        const clnet_tensor *lg;
        CK_OK(ctx, clnet_model_output_tensor(m, k, NULL, &lg));
        float *buf = host_f32(s->nv[k]);
        download(ctx, lg, buf, s->nv[k]);
        for (size_t i = 0; i < s->nv[k]; i++)
            f += (double)s->hv[k][i] * buf[i];
        free(buf);
    }
    double extra;
    CK_OK(ctx, clnet_model_extra_loss(m, &extra));
    return f + extra;
}

/* The central difference of F along a random direction against the
 * analytic directional derivative, for every input and every trained
 * parameter. perturb scales the analytic side (a negative control). Returns
 * the number of failed checks. */
static int graph_fd(clnet_context *ctx, clnet_model *m, int64_t batch, uint64_t seed,
                    const char *label, double perturb)
{
    fd_setup s = { .nx = clnet_model_input_count(m), .ny = clnet_model_output_count(m) };
    for (int i = 0; i < s.nx; i++)
        s.x[i] = node_input(ctx, m, clnet_model_input(m, i), batch, -1, 1, &seed, NULL);
    CK_OK(ctx, clnet_model_forward_multi(m, s.nx, (const clnet_tensor *const *)s.x, 1));
    for (int k = 0; k < s.ny; k++) {
        const clnet_tensor *lg;
        CK_OK(ctx, clnet_model_output_tensor(m, k, NULL, &lg));
        s.nv[k] = clnet_tensor_numel(lg);
        s.hv[k] = rand_host(s.nv[k], -1, 1, &seed);
        int64_t shape[CLNET_MAX_DIMS];
        int nd = clnet_tensor_shape(lg, shape);
        s.v[k] = tensor_from(ctx, nd, shape, s.hv[k]);
    }
    const clnet_tensor *dx[CLNET_MODEL_MAX_IO];
    CK_OK(ctx, clnet_model_backward_multi(m, s.ny, (const clnet_tensor *const *)s.v, s.nx, dx));
    /* Snapshot the analytic gradients: the forwards below leave them be,
     * but keep the check independent of that. */
    int nchecks = s.nx;
    for (int l = 0; l < m->nlayers; l++)
        for (int k = 0; k < m->layers[l]->nparams; k++)
            nchecks += m->layers[l]->params[k].grad != NULL && m->layers[l]->trainable;
    int failures = 0;
    for (int c = 0; c < nchecks; c++) {
        clnet_tensor *target = NULL;
        const clnet_tensor *grad = NULL;
        char what[64];
        if (c < s.nx) {
            target = s.x[c];
            grad = dx[c];
            snprintf(what, sizeof what, "input %d", c);
        }
        for (int l = 0, seen = s.nx; l < m->nlayers && c >= s.nx; l++)
            for (int k = 0; k < m->layers[l]->nparams; k++)
                if (m->layers[l]->params[k].grad && m->layers[l]->trainable && seen++ == c) {
                    target = m->layers[l]->params[k].value;
                    grad = m->layers[l]->params[k].grad;
                    snprintf(what, sizeof what, "%s %s", m->layers[l]->name,
                             m->layers[l]->params[k].name);
                }
        size_t n = clnet_tensor_numel(target);
        float *t0 = host_f32(n), *dir = rand_host(n, -1, 1, &seed), *an = host_f32(n),
              *tp = host_f32(n);
        download(ctx, target, t0, n);
        download(ctx, grad, an, n);
        double analytic = 0, inf = 0, numeric = 0;
        for (size_t i = 0; i < n; i++) {
            analytic += (double)an[i] * dir[i];
            inf = fmax(inf, fabs(t0[i]));
        }
        analytic *= perturb;
        double h = 4.9e-3 * fmax(1.0, inf);
        int ok = 0;
        for (int attempt = 0; attempt < 3 && !ok; attempt++, h /= 4) {
            for (size_t i = 0; i < n; i++)
                tp[i] = (float)(t0[i] + h * dir[i]);
            CK_OK(ctx, clnet_tensor_upload(target, tp, n * sizeof *tp));
            double plus = objective(ctx, m, &s);
            for (size_t i = 0; i < n; i++)
                tp[i] = (float)(t0[i] - h * dir[i]);
            CK_OK(ctx, clnet_tensor_upload(target, tp, n * sizeof *tp));
            double minus = objective(ctx, m, &s);
            CK_OK(ctx, clnet_tensor_upload(target, t0, n * sizeof *t0));
            numeric = (plus - minus) / (2 * h);
            ok = fabs(numeric - analytic) <= 2e-3 * fmax(1.0, fabs(analytic));
        }
        if (!ok) {
            failures++;
            fprintf(stderr, "%s: %s: analytic %.6g, finite difference %.6g\n", label, what,
                    analytic, numeric);
        }
        free(t0), free(dir), free(an), free(tp);
    }
    for (int i = 0; i < s.nx; i++)
        clnet_tensor_destroy(s.x[i]);
    for (int k = 0; k < s.ny; k++) {
        clnet_tensor_destroy(s.v[k]);
        free(s.hv[k]);
    }
    return failures;
}

/* conv -> batchnorm -> relu, twice, added to the block's input. */
static void residual_block(clnet_context *ctx, clnet_model *m, int filters)
{
    clnet_node in = clnet_model_node(m);
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.filters = filters;
    c.padding = CLNET_PADDING_SAME;
    CK_OK(ctx, clnet_model_add_conv2d(m, &c));
    CK_OK(ctx, clnet_model_add_batchnorm(
                   m, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.01f }));
    CK_OK(ctx, clnet_model_add_activation(m, CLNET_ACT_RELU, 0));
    CK_OK(ctx, clnet_model_add_conv2d(m, &c));
    CK_OK(ctx, clnet_model_add_batchnorm(
                   m, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.01f }));
    clnet_node sum[2] = { in, clnet_model_node(m) };
    CK_OK(ctx, clnet_model_add_merge(m, CLNET_MERGE_ADD, 2, sum));
    CK_OK(ctx, clnet_model_add_activation(m, CLNET_ACT_RELU, 0));
}

static clnet_model *residual_net(clnet_context *ctx, int64_t h, int64_t w)
{
    clnet_model *m = model_new(ctx, 3, (int64_t[]){ 2, h, w });
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.filters = 3;
    c.padding = CLNET_PADDING_SAME;
    c.activation = CLNET_ACT_RELU;
    CK_OK(ctx, clnet_model_add_conv2d(m, &c));
    residual_block(ctx, m, 3);
    CK_OK(ctx, clnet_model_add_global_avgpool2d(m));
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 3;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    return m;
}

START_TEST(residual_graph_gradients_match_finite_differences)
{
    clnet_context *ctx = test_context();
    clnet_model *m = residual_net(ctx, 5, 3);
    /* Data seed 52: with 51 a ReLU input of the first conv lies within
     * every step of its kink (its kernel's difference is 0.5% off at all
     * three steps while every other check passes); 52..54 pass. */
    ck_assert_int_eq(graph_fd(ctx, m, 3, 52, "residual graph", 1.0), 0);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* A depthwise Conv2D (4 channels, depth multiplier 2, pads 1, 2, 0, 1,
 * tanh), a grouped one (groups 2, 2x3, stride 2, pads 0, 1, 1, 0), max and
 * average pooling with explicit pads (the average counting them), global
 * average pooling and a Dense, on (batch 1 and 3, 4, 7, 6). */
START_TEST(grouped_padded_graph_gradients_match_finite_differences)
{
    clnet_context *ctx = test_context();
    for (int64_t batch = 1; batch <= 3; batch += 2) {
        clnet_model *m = model_new(ctx, 3, (int64_t[]){ 4, 7, 6 });
        clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
        c.filters = 8, c.groups = 4, c.activation = CLNET_ACT_TANH;
        c.padding = CLNET_PADDING_EXPLICIT;
        c.pad_top = 1, c.pad_left = 2, c.pad_bottom = 0, c.pad_right = 1;
        CK_OK(ctx, clnet_model_add_conv2d(m, &c));
        c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
        c.filters = 4, c.groups = 2, c.kernel_h = 2, c.stride_h = c.stride_w = 2;
        c.padding = CLNET_PADDING_EXPLICIT;
        c.pad_left = 1, c.pad_bottom = 1;
        CK_OK(ctx, clnet_model_add_conv2d(m, &c));
        clnet_pool2d_layer_params p = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
        p.stride_h = p.stride_w = 1, p.padding = CLNET_PADDING_EXPLICIT;
        p.pad_top = 1, p.pad_right = 1;
        CK_OK(ctx, clnet_model_add_maxpool2d(m, &p));
        p = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
        p.window_h = p.window_w = 3, p.stride_h = p.stride_w = 2;
        p.padding = CLNET_PADDING_EXPLICIT, p.count_include_pad = 1;
        p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
        CK_OK(ctx, clnet_model_add_avgpool2d(m, &p));
        int64_t os[CLNET_MAX_DIMS];
        ck_assert_int_eq(clnet_model_output_shape(m, os), 3);
        ck_assert(os[0] == 4 && os[1] == 2 && os[2] == 2);
        CK_OK(ctx, clnet_model_add_global_avgpool2d(m));
        clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
        d.units = 3;
        CK_OK(ctx, clnet_model_add_dense(m, &d));
        ck_assert_int_eq(graph_fd(ctx, m, batch, 60 + (uint64_t)batch, "grouped padded graph", 1.0),
                         0);
        clnet_model_destroy(m);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* x (7) -> Dense(5, tanh) -> two heads Dense(2): mean, logvar (the hidden
 * node feeds both) -> Sampling (KL weight w, eps held) -> Dense(7). */
static clnet_model *tiny_vae(clnet_context *ctx, float w)
{
    clnet_model *m = model_new(ctx, 1, (int64_t[]){ 7 });
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 5;
    d.activation = CLNET_ACT_TANH;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    clnet_node h = clnet_model_node(m), heads[2];
    d.units = 2;
    d.activation = CLNET_ACT_NONE;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    heads[0] = clnet_model_node(m);
    CK_OK(ctx, clnet_model_set_node(m, h));
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    heads[1] = clnet_model_node(m);
    CK_OK(ctx, clnet_model_add_sampling(m, heads[0], heads[1], w));
    d.units = 7;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    CK_OK(ctx, clnet_model_hold_noise(m, 1));
    return m;
}

START_TEST(vae_graph_gradients_match_finite_differences)
{
    clnet_context *ctx = test_context();
    const float weights[] = { 1.0f, 0.5f };
    for (int i = 0; i < 2; i++) {
        clnet_model *m = tiny_vae(ctx, weights[i]);
        char label[64];
        snprintf(label, sizeof label, "VAE-like graph, KL weight %g", (double)weights[i]);
        ck_assert_int_eq(graph_fd(ctx, m, 3, 61 + (uint64_t)i, label, 1.0), 0);
        clnet_model_destroy(m);
    }
    clnet_context_destroy(ctx);
}
END_TEST

/* x (5) -> Dense(5, tanh) = A -> A again (shared) -> Dense(2). */
START_TEST(shared_layer_gradients_are_summed)
{
    clnet_context *ctx = test_context();
    clnet_model *m = model_new(ctx, 1, (int64_t[]){ 5 });
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 5;
    d.activation = CLNET_ACT_TANH;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    CK_OK(ctx, clnet_model_reuse(m, 0));
    ck_assert_int_eq(clnet_model_node_layer(m, clnet_model_node(m)), 0);
    d.units = 2;
    d.activation = CLNET_ACT_NONE;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    ck_assert_int_eq(clnet_model_layer_count(m), 2);
    ck_assert_uint_eq(clnet_model_param_count(m), 30 + 12);
    ck_assert_int_eq(graph_fd(ctx, m, 3, 71, "shared Dense", 1.0), 0);
    /* The cursor's shape must be the layer's input. */
    CK_OK(ctx, clnet_model_set_node(m, clnet_model_node(m)));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dense_1", clnet_model_reuse(m, 0));
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* Negative control: the checks above must fail on a gradient 3% off. */
START_TEST(graph_fd_catches_a_wrong_gradient)
{
    clnet_context *ctx = test_context();
    clnet_model *m = tiny_vae(ctx, 1.0f);
    ck_assert_int_gt(graph_fd(ctx, m, 3, 61, "perturbed (expected to fail)", 1.03), 0);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Losses on several outputs --------------------------------------------------------- */

/* x (4) -> Dense(3, tanh) -> head A Dense(5) (MSE, weight 0.3) and head B
 * Dense(7, sigmoid) (binary CE summed over features, weight 2). The
 * reported loss is the weighted sum; the gradients (SGD at lr 0 leaves the
 * weights) match finite differences of that loss computed on the host. */
static double host_loss(clnet_context *ctx, clnet_model *m, const clnet_tensor *const *x,
                        const float *ya, const float *yb, int64_t batch)
{
    CK_OK(ctx, clnet_model_forward_multi(m, 1, x, 1));
    const clnet_tensor *a, *b;
    CK_OK(ctx, clnet_model_output_tensor(m, 0, &a, NULL));
    CK_OK(ctx, clnet_model_output_tensor(m, 1, NULL, &b));
    size_t na = (size_t)batch * 5, nb = (size_t)batch * 7;
    float *ha = host_f32(na), *hb = host_f32(nb);
    download(ctx, a, ha, na);
    download(ctx, b, hb, nb);
    double mse = 0, bce = 0;
    for (size_t i = 0; i < na; i++)
        mse += ((double)ha[i] - ya[i]) * ((double)ha[i] - ya[i]);
    for (size_t i = 0; i < nb; i++) {
        double z = hb[i];
        bce += fmax(z, 0) - z * yb[i] + log1p(exp(-fabs(z)));
    }
    free(ha), free(hb);
    (void)na;
    return 0.3 * mse / (double)batch + 2.0 * bce / (double)batch;
}

START_TEST(two_outputs_with_weighted_losses)
{
    clnet_context *ctx = test_context();
    int64_t batch = 3;
    clnet_model *m = model_new(ctx, 1, (int64_t[]){ 4 });
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 3;
    d.activation = CLNET_ACT_TANH;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    clnet_node h = clnet_model_node(m), outs[2];
    d.units = 5;
    d.activation = CLNET_ACT_NONE;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    outs[0] = clnet_model_node(m);
    CK_OK(ctx, clnet_model_set_node(m, h));
    d.units = 7;
    d.activation = CLNET_ACT_SIGMOID;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    outs[1] = clnet_model_node(m);
    CK_OK(ctx, clnet_model_set_outputs(m, 2, outs));
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "2 outputs", clnet_model_compile(m, &p));
    p.optimizer = CLNET_OPTIMIZER_SGD;
    p.sgd.lr = 0.0f;
    p.sgd.momentum = 0.0f;
    p.reduction = CLNET_REDUCTION_SUM;
    p.nlosses = 2;
    p.losses[0] = CLNET_LOSS_MSE;
    p.losses[1] = CLNET_LOSS_BINARY_CROSSENTROPY;
    p.loss_weights[0] = 0.3f;
    p.loss_weights[1] = 2.0f;
    CK_OK(ctx, clnet_model_compile(m, &p));
    uint64_t seed = 81;
    clnet_tensor *tx = node_input(ctx, m, clnet_model_input(m, 0), batch, -1, 1, &seed, NULL);
    float *ya = rand_host((size_t)batch * 5, -1, 1, &seed),
          *yb = rand_host((size_t)batch * 7, 0, 1, &seed);
    clnet_tensor *ta = tensor_from(ctx, 2, (int64_t[]){ batch, 5 }, ya);
    clnet_tensor *tb = tensor_from(ctx, 2, (int64_t[]){ batch, 7 }, yb);
    const clnet_tensor *xs[1] = { tx }, *ys[2] = { ta, tb };
    double loss, want = host_loss(ctx, m, xs, ya, yb, batch);
    CK_OK(ctx, clnet_model_train_on_batch_multi(m, 1, xs, 2, ys, &loss));
    ck_assert_msg(fabs(loss - want) <= 1e-5 * fabs(want), "loss %.8g, host %.8g", loss, want);
    /* Gradients of the weighted, summed loss against finite differences. */
    int failures = 0;
    for (int l = 0; l < m->nlayers; l++)
        for (int k = 0; k < m->layers[l]->nparams; k++) {
            clnet_tensor *t = m->layers[l]->params[k].value;
            size_t n = clnet_tensor_numel(t);
            float *t0 = host_f32(n), *dir = rand_host(n, -1, 1, &seed), *an = host_f32(n),
                  *tp = host_f32(n);
            download(ctx, t, t0, n);
            download(ctx, m->layers[l]->params[k].grad, an, n);
            double analytic = 0, step = 2e-3, f[2];
            for (size_t i = 0; i < n; i++)
                analytic += (double)an[i] * dir[i];
            for (int sgn = 0; sgn < 2; sgn++) {
                for (size_t i = 0; i < n; i++)
                    tp[i] = (float)(t0[i] + (sgn ? -step : step) * dir[i]);
                CK_OK(ctx, clnet_tensor_upload(t, tp, n * sizeof *tp));
                f[sgn] = host_loss(ctx, m, xs, ya, yb, batch);
            }
            CK_OK(ctx, clnet_tensor_upload(t, t0, n * sizeof *t0));
            double numeric = (f[0] - f[1]) / (2 * step);
            if (fabs(numeric - analytic) > 2e-3 * fmax(1.0, fabs(analytic))) {
                failures++;
                fprintf(stderr, "two outputs: %s %s: analytic %.6g, finite difference %.6g\n",
                        m->layers[l]->name, m->layers[l]->params[k].name, analytic, numeric);
            }
            free(t0), free(dir), free(an), free(tp);
        }
    ck_assert_int_eq(failures, 0);
    /* One-output calls refuse a model of two outputs. */
    const clnet_tensor *y;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "clnet_model_forward_multi",
             clnet_model_forward(m, tx, 0, &y, NULL));
    free(ya), free(yb);
    clnet_tensor_destroy(tx);
    clnet_tensor_destroy(ta);
    clnet_tensor_destroy(tb);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- A chain through the graph API gives the bits of the add_* chain -------------------- */

/* conv -> batchnorm -> relu -> maxpool -> flatten -> dense -> dense(softmax),
 * built with add_* alone, or with the cursor moved explicitly before every
 * add, the outputs set, and a dead branch hung off the flatten node (added
 * last, so every other layer keeps its index and its initial weights). */
static clnet_model *chain(clnet_context *ctx, int explicit_nodes)
{
    clnet_model *m = model_new(ctx, 3, (int64_t[]){ 1, 7, 7 });
    clnet_node prev = clnet_model_node(m), flat = -1;
#define STEP(call)                                                                                 \
    do {                                                                                           \
        if (explicit_nodes)                                                                        \
            CK_OK(ctx, clnet_model_set_node(m, prev));                                             \
        CK_OK(ctx, call);                                                                          \
        prev = clnet_model_node(m);                                                                \
    } while (0)
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.filters = 3;
    STEP(clnet_model_add_conv2d(m, &c));
    STEP(
        clnet_model_add_batchnorm(m, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.01f }));
    STEP(clnet_model_add_activation(m, CLNET_ACT_RELU, 0));
    clnet_pool2d_layer_params pp = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
    STEP(clnet_model_add_maxpool2d(m, &pp));
    STEP(clnet_model_add_flatten(m));
    flat = prev;
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 6;
    d.activation = CLNET_ACT_RELU;
    STEP(clnet_model_add_dense(m, &d));
    d.units = 3;
    d.activation = CLNET_ACT_SOFTMAX;
    STEP(clnet_model_add_dense(m, &d));
#undef STEP
    if (explicit_nodes) {
        clnet_node out = prev;
        CK_OK(ctx, clnet_model_set_node(m, flat));
        d.units = 2;
        d.activation = CLNET_ACT_NONE;
        CK_OK(ctx, clnet_model_add_dense(m, &d));
        CK_OK(ctx, clnet_model_set_outputs(m, 1, &out));
    }
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    CK_OK(ctx, clnet_model_compile(m, &p));
    return m;
}

static void same_bits(clnet_context *ctx, const clnet_tensor *a, const clnet_tensor *b,
                      const char *what)
{
    size_t n = clnet_tensor_numel(a);
    ck_assert_uint_eq(n, clnet_tensor_numel(b));
    float *ha = host_f32(n), *hb = host_f32(n);
    download(ctx, a, ha, n);
    download(ctx, b, hb, n);
    ck_assert_msg(memcmp(ha, hb, n * sizeof *ha) == 0, "%s: the two builds differ", what);
    free(ha), free(hb);
}

START_TEST(chain_built_as_graph_gives_the_same_bits)
{
    clnet_context *ctx = test_context();
    clnet_model *a = chain(ctx, 0), *b = chain(ctx, 1);
    ck_assert_int_eq(clnet_model_layer_count(b), clnet_model_layer_count(a) + 1);
    int64_t batch = 5;
    uint64_t seed = 91;
    clnet_tensor *tx = node_input(ctx, a, clnet_model_input(a, 0), batch, 0, 1, &seed, NULL);
    int32_t labels[5] = { 0, 2, 1, 1, 0 };
    clnet_tensor *ty;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &batch, &ty));
    CK_OK(ctx, clnet_tensor_upload(ty, labels, sizeof labels));
    float g[15];
    fill_uniform(g, 15, -1, 1, &seed);
    clnet_tensor *tg = tensor_from(ctx, 2, (int64_t[]){ batch, 3 }, g);
    const clnet_tensor *ya, *yb, *dxa, *dxb;
    CK_OK(ctx, clnet_model_forward(a, tx, 1, &ya, NULL));
    CK_OK(ctx, clnet_model_forward(b, tx, 1, &yb, NULL));
    same_bits(ctx, ya, yb, "forward");
    CK_OK(ctx, clnet_model_backward(a, tg, &dxa));
    CK_OK(ctx, clnet_model_backward(b, tg, &dxb));
    same_bits(ctx, dxa, dxb, "input gradient");
    for (int l = 0; l < clnet_model_layer_count(a); l++)
        for (int k = 0; k < a->layers[l]->nparams; k++)
            if (a->layers[l]->params[k].grad)
                same_bits(ctx, a->layers[l]->params[k].grad, b->layers[l]->params[k].grad,
                          a->layers[l]->name);
    /* The dead branch got zeros, not stale memory. */
    float dead[12 * 2];
    CK_OK(ctx, clnet_model_get_grad(b, clnet_model_layer_count(b) - 1, "kernel", dead, 12 * 2));
    for (int i = 0; i < 24; i++)
        ck_assert(dead[i] == 0.0f);
    double la, lb;
    for (int s = 0; s < 3; s++) {
        CK_OK(ctx, clnet_model_train_on_batch(a, tx, ty, &la, NULL));
        CK_OK(ctx, clnet_model_train_on_batch(b, tx, ty, &lb, NULL));
        ck_assert_msg(la == lb, "step %d: loss %.9g vs %.9g", s, la, lb);
    }
    for (int l = 0; l < clnet_model_layer_count(a); l++)
        for (int k = 0; k < a->layers[l]->nparams; k++)
            same_bits(ctx, a->layers[l]->params[k].value, b->layers[l]->params[k].value,
                      a->layers[l]->name);
    clnet_tensor_destroy(tx);
    clnet_tensor_destroy(ty);
    clnet_tensor_destroy(tg);
    clnet_model_destroy(a);
    clnet_model_destroy(b);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Building: failures leave nothing; bad nodes; clipping; summary; weights -------------- */

START_TEST(failed_adds_leave_no_half_built_layer)
{
    clnet_context *ctx = test_context();
    clnet_model *m = model_new(ctx, 3, (int64_t[]){ 2, 5, 5 });
    clnet_node x = clnet_model_node(m);
    /* Fail each host allocation of add_batchnorm and add_sampling in turn
     * until they succeed: every failure leaves the model as it was. */
    int prev = expect_errors(1); /* the injected failures */
    for (long n = 1; n < 200; n++) {
        clnet__fault_arm_host(n);
        clnet_status st = clnet_model_add_batchnorm(
            m, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.01f });
        const char *fired = clnet__fault_fired();
        clnet__fault_disarm();
        if (!fired) {
            CK_OK(ctx, st);
            break;
        }
        ck_assert_int_ne(st, CLNET_OK);
        ck_assert_int_eq(clnet_model_layer_count(m), 0);
        ck_assert_uint_eq(clnet_model_param_count(m), 0);
        ck_assert_int_eq(clnet_model_node(m), x);
    }
    ck_assert_int_eq(clnet_model_layer_count(m), 1);
    /* Device allocations too: the batchnorm's parameters. */
    clnet__fault_arm("clCreateBuffer", 2, CL_MEM_OBJECT_ALLOCATION_FAILURE);
    clnet_status st =
        clnet_model_add_batchnorm(m, &(clnet_batchnorm_params){ .eps = 1e-3f, .momentum = 0.01f });
    clnet__fault_disarm();
    expect_errors(prev);
    ck_assert_int_ne(st, CLNET_OK);
    ck_assert_int_eq(clnet_model_layer_count(m), 1);
    ck_assert_uint_eq(clnet_model_param_count(m), 4 * 2);
    /* Bad nodes, shapes, after compile. */
    clnet_node bogus[2] = { x, 99 };
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "nodes[1]",
             clnet_model_add_merge(m, CLNET_MERGE_ADD, 2, bogus));
    CK_OK(ctx, clnet_model_add_global_avgpool2d(m));
    clnet_node mixed[2] = { x, clnet_model_node(m) };
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "input 1", clnet_model_add_merge(m, CLNET_MERGE_ADD, 2, mixed));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "exactly 2",
             clnet_model_add_merge(m, CLNET_MERGE_SUBTRACT, 3, (clnet_node[]){ x, x, x }));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "channels", clnet_model_add_global_avgpool2d(m));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "not a node", clnet_model_set_node(m, -1));
    ck_assert_int_eq(clnet_model_layer_count(m), 2);
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    p.loss = CLNET_LOSS_MSE;
    CK_OK(ctx, clnet_model_compile(m, &p));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "after compile",
             clnet_model_add_merge(m, CLNET_MERGE_ADD, 2, (clnet_node[]){ x, x }));
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* 140 Dense(1) layers hold 280 gradients: clipping by the global norm
 * scales every one of them, the 257th and later too. */
START_TEST(clipping_reaches_every_gradient)
{
    clnet_context *ctx = test_context();
    clnet_model *m = model_new(ctx, 1, (int64_t[]){ 1 });
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    for (int i = 0; i < 140; i++)
        CK_OK(ctx, clnet_model_add_dense(m, &d));
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    p.loss = CLNET_LOSS_MSE;
    p.optimizer = CLNET_OPTIMIZER_SGD;
    p.sgd.lr = 1.0f;
    p.sgd.momentum = 0.0f;
    p.clip_norm = 1.0f;
    CK_OK(ctx, clnet_model_compile(m, &p));
    float one = 1.0f, before[2][2], after[2][2];
    for (int i = 0; i < 140; i++) {
        CK_OK(ctx, clnet_model_set_grad(m, i, "kernel", 2, (int64_t[]){ 1, 1 }, &one));
        CK_OK(ctx, clnet_model_set_grad(m, i, "bias", 1, (int64_t[]){ 1 }, &one));
    }
    const int probe[2] = { 0, 139 };
    for (int j = 0; j < 2; j++) {
        CK_OK(ctx, clnet_model_get_param(m, probe[j], "kernel", &before[j][0], 1));
        CK_OK(ctx, clnet_model_get_param(m, probe[j], "bias", &before[j][1], 1));
    }
    CK_OK(ctx, clnet_model_step(m));
    double want = 1.0 / sqrt(280.0);
    for (int j = 0; j < 2; j++) {
        CK_OK(ctx, clnet_model_get_param(m, probe[j], "kernel", &after[j][0], 1));
        CK_OK(ctx, clnet_model_get_param(m, probe[j], "bias", &after[j][1], 1));
        for (int k = 0; k < 2; k++)
            ck_assert_msg(fabs((before[j][k] - after[j][k]) - want) < 1e-5,
                          "layer %d param %d moved %g, want %g", probe[j], k,
                          (double)(before[j][k] - after[j][k]), want);
    }
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(summary_shows_connections_and_weights_round_trip)
{
    clnet_context *ctx = test_context();
    clnet_model *m = residual_net(ctx, 4, 4);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CK_OK(ctx, clnet_model_summary(m, f));
    fclose(f);
    ck_assert_msg(strstr(buf, "Connected to") && strstr(buf, "input_layer (InputLayer)") &&
                      strstr(buf, "add_1 (Add)") && strstr(buf, "conv2d_1, batch_normalization_2"),
                  "summary:\n%s", buf);
    free(buf);
    /* Weights: layers.<i>.<param> as for sequential models. */
    char path[] = "/tmp/clnet-graph-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    CK_OK(ctx, clnet_model_save(m, path));
    clnet_model *b = residual_net(ctx, 4, 4);
    float w = 0.25f;
    CK_OK(ctx, clnet_model_set_param(b, 1, "bias", 1, (int64_t[]){ 3 }, (float[]){ w, w, w }));
    CK_OK(ctx, clnet_model_load(b, path));
    for (int l = 0; l < m->nlayers; l++)
        for (int k = 0; k < m->layers[l]->nparams; k++)
            same_bits(ctx, m->layers[l]->params[k].value, b->layers[l]->params[k].value, "loaded");
    unlink(path);
    clnet_model_destroy(b);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* A file with the names sequential models always had (layers.<i>.<param>,
 * the Activation layer 1 taking an index but no tensors), written here by
 * hand as an older clnet wrote it, loads into the model built with add_*. */
START_TEST(sequential_weight_files_still_load)
{
    clnet_context *ctx = test_context();
    clnet_model *m = model_new(ctx, 1, (int64_t[]){ 3 });
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 2;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    CK_OK(ctx, clnet_model_add_activation(m, CLNET_ACT_TANH, 0));
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    const float k0[6] = { 1, 2, 3, 4, 5, 6 }, b0[2] = { -1, 1 }, k2[4] = { 0.5f, -0.5f, 2, 3 },
                b2[2] = { 7, 8 };
    clnet_safetensors_entry_in e[4] = {
        { "layers.0.kernel", CLNET_F32, 2, { 2, 3 }, k0 },
        { "layers.0.bias", CLNET_F32, 1, { 2 }, b0 },
        { "layers.2.kernel", CLNET_F32, 2, { 2, 2 }, k2 },
        { "layers.2.bias", CLNET_F32, 1, { 2 }, b2 },
    };
    char path[] = "/tmp/clnet-graph-seq-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    const char *meta[] = { "format", "pt", NULL };
    CK_OK(ctx, clnet_safetensors_write(path, e, 4, meta, NULL, 0));
    CK_OK(ctx, clnet_model_load(m, path));
    float got[6];
    CK_OK(ctx, clnet_model_get_param(m, 0, "kernel", got, 6));
    ck_assert(memcmp(got, k0, sizeof k0) == 0);
    CK_OK(ctx, clnet_model_get_param(m, 2, "bias", got, 2));
    ck_assert(memcmp(got, b2, sizeof b2) == 0);
    /* And what it saves carries the same names. */
    CK_OK(ctx, clnet_model_save(m, path));
    clnet_safetensors *st;
    char err[256];
    CK_OK(ctx, clnet_safetensors_load(path, &st, err, sizeof err));
    for (int i = 0; i < 4; i++)
        ck_assert_msg(clnet_safetensors_find(st, e[i].name) != NULL, "%s missing", e[i].name);
    clnet_safetensors_free(st);
    unlink(path);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* evaluate on a graph with a Sampling layer reports the loss plus the KL
 * term of the inference forward (eps from the inference stream). */
START_TEST(evaluate_adds_the_kl_term)
{
    clnet_context *ctx = test_context();
    clnet_model *m = tiny_vae(ctx, 0.5f);
    CK_OK(ctx, clnet_model_hold_noise(m, 0));
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    p.loss = CLNET_LOSS_MSE;
    p.reduction = CLNET_REDUCTION_SUM;
    CK_OK(ctx, clnet_model_compile(m, &p));
    enum { N = 5 };
    uint64_t seed = 101;
    float *x = rand_host(N * 7, -1, 1, &seed), out[N * 7];
    double loss, mae, extra;
    CK_OK(ctx, clnet_model_evaluate(m, &(clnet_dataset_view){ x, x, N }, N, &loss, &mae));
    clnet_tensor *tx = tensor_from(ctx, 2, (int64_t[]){ N, 7 }, x);
    const clnet_tensor *y;
    CK_OK(ctx, clnet_model_forward(m, tx, 0, &y, NULL));
    download(ctx, y, out, N * 7);
    CK_OK(ctx, clnet_model_extra_loss(m, &extra));
    ck_assert(extra > 0);
    double want = extra;
    for (int i = 0; i < N * 7; i++)
        want += ((double)out[i] - x[i]) * ((double)out[i] - x[i]) / N;
    ck_assert_msg(fabs(loss - want) <= 1e-5 * want, "evaluate %.8g, forward + KL %.8g", loss, want);
    free(x);
    clnet_tensor_destroy(tx);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_graph(void)
{
    Suite *s = suite_create("graph");
    TCase *t = tcase_create("layers");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, merge_layers_match_the_reference);
    tcase_add_test(t, concat_and_global_avgpool_match_the_reference);
    tcase_add_test(t, sampling_matches_the_reference);
    tcase_add_test(t, expression_layer_matches_swish);
    tcase_add_test(t, grouped_and_padded_layers_match_the_reference);
    tcase_add_test(t, grouped_and_padded_params_are_checked);
    suite_add_tcase(s, t);
    t = tcase_create("gradients");
    tcase_set_timeout(t, 180);
    tcase_add_test(t, residual_graph_gradients_match_finite_differences);
    tcase_add_test(t, vae_graph_gradients_match_finite_differences);
    tcase_add_test(t, shared_layer_gradients_are_summed);
    tcase_add_test(t, graph_fd_catches_a_wrong_gradient);
    tcase_add_test(t, two_outputs_with_weighted_losses);
    tcase_add_test(t, grouped_padded_graph_gradients_match_finite_differences);
    suite_add_tcase(s, t);
    t = tcase_create("model");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, chain_built_as_graph_gives_the_same_bits);
    tcase_add_test(t, failed_adds_leave_no_half_built_layer);
    tcase_add_test(t, clipping_reaches_every_gradient);
    tcase_add_test(t, summary_shows_connections_and_weights_round_trip);
    tcase_add_test(t, sequential_weight_files_still_load);
    tcase_add_test(t, evaluate_adds_the_kl_term);
    suite_add_tcase(s, t);
    return s;
}
