/* clnet tests — writes a TensorBoard event file with every kind of summary
 * and prints, one JSON object per line, what it wrote, for
 * tests/test-tblog.py to compare with what TensorBoard's own reader finds.
 * Usage: tblog-write LOGDIR [fit]; "fit" also trains a small model with the
 * TensorBoard callback and prints the history it logged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clnet/clnet.h"

static int check(clnet_status st, const char *what, const char *msg)
{
    if (st)
        fprintf(stderr, "tblog-write: %s: %s: %s\n", what, clnet_status_name(st), msg);
    return st != CLNET_OK;
}

static void print_floats(const char *key, const float *v, size_t n)
{
    printf("\"%s\": [", key);
    for (size_t i = 0; i < n; i++)
        printf(isfinite(v[i]) ? "%s%.9g" : "%s\"%g\"", i ? ", " : "", (double)v[i]);
    printf("]");
}

/* Trains a 4-6-2 classifier for 3 epochs with the callback: epoch scalars,
 * batch/loss every 2 steps, parameter histograms. */
static int fit(clnet_tblog *w)
{
    char err[1024];
    clnet_context_params cp = CLNET_CONTEXT_PARAMS_DEFAULT;
    cp.device = getenv("CLNET_TEST_DEVICE");
    clnet_context *ctx;
    if (check(clnet_context_create(&cp, &ctx, err, sizeof err), "context", err))
        return 1;
    enum { N = 48 };
    static float x[4 * N];
    static int32_t y[N];
    uint64_t s = 7;
    for (int i = 0; i < N; i++) {
        y[i] = i % 2;
        for (int k = 0; k < 4; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            x[4 * i + k] = (float)((s >> 40) / 16777216.0) - 0.5f + (y[i] ? 1.0f : -1.0f);
        }
    }
    clnet_model *m = NULL;
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 6;
    d.activation = CLNET_ACT_RELU;
    clnet_history h = CLNET_HISTORY_INIT;
    clnet_callback cb = { 0 };
    clnet_status st;
    if ((st = clnet_model_create(ctx, 1, (int64_t[]){ 4 }, 1, &m)) ||
        (st = clnet_model_add_dense(m, &d)))
        goto done;
    d.units = 2;
    d.activation = CLNET_ACT_SOFTMAX;
    clnet_compile_params comp = CLNET_COMPILE_PARAMS_DEFAULT;
    comp.adam.lr = 0.02f;
    clnet_tensorboard_params tp = { .every_steps = 2, .histograms = 1 };
    clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
    fp.epochs = 3;
    fp.batch_size = 16;
    fp.validation_split = 0.25;
    fp.history = &h;
    fp.callbacks = &cb;
    fp.ncallbacks = 1;
    clnet_dataset_view data = { x, y, N };
    if ((st = clnet_model_add_dense(m, &d)) || (st = clnet_model_compile(m, &comp)) ||
        (st = clnet_callback_tensorboard(ctx, w, &tp, &cb)) ||
        (st = clnet_model_fit(m, &fp, &data)))
        goto done;
    for (int e = 0; e < h.count; e++)
        printf("{\"kind\": \"epoch\", \"epoch\": %d, \"loss\": %.17g, \"accuracy\": %.17g, "
               "\"val_loss\": %.17g, \"val_accuracy\": %.17g, \"lr\": %.17g}\n",
               h.epochs[e].epoch, h.epochs[e].loss, h.epochs[e].accuracy, h.epochs[e].val_loss,
               h.epochs[e].val_accuracy, h.epochs[e].lr);
    /* 36 training samples in batches of 16: 3 steps an epoch, 9 in all. */
    printf("{\"kind\": \"fit\", \"steps\": 9, \"every\": 2}\n");
done:
    check(st, "fit", clnet_context_errmsg(ctx));
    clnet_callback_release(&cb);
    clnet_history_free(&h);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
    return st != CLNET_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tblog-write LOGDIR [fit]\n");
        return 2;
    }
    char err[1024];
    clnet_tblog *w;
    if (check(clnet_tblog_open(argv[1], &w, err, sizeof err), "open", err))
        return 1;
    printf("{\"kind\": \"file\", \"path\": \"%s\"}\n", clnet_tblog_path(w));
    /* Scalars, 0 and negative ones too (proto3 writes no default values
     * outside a oneof; simple_value is inside one). */
    static const double sv[] = { 0.0, -1.5, 3.25, 1e-7, 12345.678 };
    for (int i = 0; i < 5; i++) {
        if (check(clnet_tblog_scalar(w, "test/scalar", i * 10, sv[i]), "scalar",
                  clnet_tblog_errmsg(w)))
            return 1;
        printf("{\"kind\": \"scalar\", \"tag\": \"test/scalar\", \"step\": %d, \"value\": %.9g}\n",
               i * 10, (double)(float)sv[i]);
    }
    /* Images: grey 2x3, RGB 5x7, RGBA 4x4; values cover 0..255. */
    static const int shapes[3][3] = { { 2, 3, 1 }, { 5, 7, 3 }, { 4, 4, 4 } };
    for (int i = 0; i < 3; i++) {
        int h = shapes[i][0], wd = shapes[i][1], c = shapes[i][2];
        uint8_t px[5 * 7 * 4];
        for (int k = 0; k < h * wd * c; k++)
            px[k] = (uint8_t)((k * 37 + i * 11) % 256);
        char tag[32];
        snprintf(tag, sizeof tag, "test/image%d", c);
        if (check(clnet_tblog_image(w, tag, i, h, wd, c, px), "image", clnet_tblog_errmsg(w)))
            return 1;
        printf(
            "{\"kind\": \"image\", \"tag\": \"%s\", \"step\": %d, \"height\": %d, \"width\": %d, "
            "\"channels\": %d, \"pixels\": [",
            tag, i, h, wd, c);
        for (int k = 0; k < h * wd * c; k++)
            printf("%s%d", k ? ", " : "", px[k]);
        printf("]}\n");
    }
    /* Histograms: spread values with a NaN and an Inf (skipped), a constant
     * set, one value. */
    static float hv[200];
    for (int i = 0; i < 200; i++)
        hv[i] = (float)sin(i * 0.37) * (float)(1 + i % 7);
    hv[17] = NAN;
    hv[90] = INFINITY;
    static const float flat[] = { 2.5f, 2.5f, 2.5f }, one[] = { -3.0f };
    /* Values on the bucket limits 1, 2, 3 belong to the bucket above. */
    static const float on_limits[] = { 0, 1, 2, 3, 4, 1, 3 };
    const struct {
        const float *v;
        size_t n;
        int buckets;
    } hs[] = { { hv, 200, 0 }, { hv, 200, 7 }, { flat, 3, 4 }, { one, 1, 1 }, { on_limits, 7, 4 } };
    for (int i = 0; i < 5; i++) {
        if (check(clnet_tblog_histogram(w, "test/histogram", i, hs[i].v, hs[i].n, hs[i].buckets),
                  "histogram", clnet_tblog_errmsg(w)))
            return 1;
        printf("{\"kind\": \"histogram\", \"tag\": \"test/histogram\", \"step\": %d, \"buckets\": "
               "%d, ",
               i, hs[i].buckets ? hs[i].buckets : 30);
        print_floats("values", hs[i].v, hs[i].n);
        printf("}\n");
    }
    int rc = argc > 2 && !strcmp(argv[2], "fit") ? fit(w) : 0;
    clnet_tblog_close(w);
    return rc;
}
