/* clnet tests — fit's history and callbacks (clnet/history.h,
 * clnet/callbacks.h): rows that match what fit reported, CSV, stopping from
 * a callback, every learning-rate schedule against rates written out by
 * hand, early stopping and checkpoints on crafted validation losses, and a
 * validation split. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clnet/callbacks.h"
#include "clnet/safetensors.h"
#include "harness.h"
#include "nn/nn_impl.h"

enum { N = 64, MAXE = 12 };

/* Two Gaussian blobs in 4-D, labels 0 and 1. */
static void blobs(int64_t n, float *x, int32_t *y, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i % 2);
        fill_uniform(x + 4 * i, 4, -0.8f, 0.8f, &seed);
        for (int k = 0; k < 4; k++)
            x[4 * i + k] += y[i] ? 1.0f : -1.0f;
    }
}

static clnet_model *small_model(clnet_context *ctx, clnet_optimizer opt, float lr)
{
    clnet_model *m;
    CK_OK(ctx, clnet_model_create(ctx, 1, (int64_t[]){ 4 }, 3, &m));
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 6;
    d.activation = CLNET_ACT_RELU;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    d.units = 2;
    d.activation = CLNET_ACT_SOFTMAX;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    p.optimizer = opt;
    p.adam.lr = p.sgd.lr = lr;
    CK_OK(ctx, clnet_model_compile(m, &p));
    return m;
}

/* All parameters on the host, in layer order (the blob model has 44). */
static void params_of(clnet_context *ctx, clnet_model *m, float *out)
{
    size_t at = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++) {
            size_t n = clnet_tensor_numel(m->layers[i]->params[k].value);
            download(ctx, m->layers[i]->params[k].value, out + at, n);
            at += n;
        }
    ck_assert_int_eq((int)at, 44);
}

/* A user callback that records what fit tells it, optionally replaces the
 * validation loss with a crafted sequence (it runs before the built-ins),
 * keeps each epoch's weights, and stops at a chosen epoch or batch. */
typedef struct recorder {
    clnet_context *ctx;
    int begins, ends, batches, epoch_begins;
    double lr[MAXE], loss[MAXE], val_loss[MAXE];
    const double *craft; /* val_loss for epochs 1.. */
    float weights[MAXE][44];
    int stop_epoch, stop_batch; /* 1-based; 0: never */
    double batch_loss;          /* the last batch_end's running mean */
} recorder;

static clnet_status rec_train_begin(void *user, clnet_model *m, clnet_fit_event *ev)
{
    (void)m;
    ck_assert_int_eq(ev->epoch, 0);
    ((recorder *)user)->begins++;
    return CLNET_OK;
}

static clnet_status rec_epoch_begin(void *user, clnet_model *m, clnet_fit_event *ev)
{
    (void)m;
    recorder *r = user;
    ck_assert_int_eq(ev->epoch, ++r->epoch_begins);
    return CLNET_OK;
}

static clnet_status rec_batch_end(void *user, clnet_model *m, clnet_fit_event *ev)
{
    (void)m;
    recorder *r = user;
    r->batches++;
    ck_assert(ev->progress != NULL && ev->log == NULL);
    ck_assert(ev->progress->loss > 0);
    r->batch_loss = ev->progress->loss;
    if (r->stop_batch && r->batches == r->stop_batch)
        ev->stop = 1;
    return CLNET_OK;
}

static clnet_status rec_epoch_end(void *user, clnet_model *m, clnet_fit_event *ev)
{
    recorder *r = user;
    int e = ev->epoch;
    ck_assert(e >= 1 && e <= MAXE && ev->log != NULL && ev->progress == NULL);
    if (r->craft)
        ev->log->val_loss = r->craft[e - 1];
    r->lr[e - 1] = ev->log->lr;
    r->loss[e - 1] = ev->log->loss;
    r->val_loss[e - 1] = ev->log->val_loss;
    params_of(r->ctx, m, r->weights[e - 1]);
    if (r->stop_epoch == e)
        ev->stop = 1;
    return CLNET_OK;
}

static clnet_status rec_train_end(void *user, clnet_model *m, clnet_fit_event *ev)
{
    (void)m;
    (void)ev;
    ((recorder *)user)->ends++;
    return CLNET_OK;
}

static clnet_callback recorder_callback(recorder *r, int with_batches)
{
    return (clnet_callback){ .train_begin = rec_train_begin,
                             .epoch_begin = rec_epoch_begin,
                             .batch_end = with_batches ? rec_batch_end : NULL,
                             .epoch_end = rec_epoch_end,
                             .train_end = rec_train_end,
                             .user = r };
}

/* The progress callback's end-of-epoch values, to compare with the history. */
typedef struct printed {
    int n;
    double loss[MAXE], acc[MAXE], val_loss[MAXE], val_acc[MAXE];
} printed;

static void on_progress(void *user, const clnet_progress *p)
{
    printed *pr = user;
    if (p->end_of_epoch && pr->n < MAXE) {
        pr->loss[pr->n] = p->loss;
        pr->acc[pr->n] = p->accuracy;
        pr->val_loss[pr->n] = p->val_loss;
        pr->val_acc[pr->n++] = p->val_accuracy;
    }
}

static float xs[4 * N];
static int32_t ys[N];

static clnet_fit_params fit_params(int epochs, const clnet_callback *cbs, int n, clnet_history *h)
{
    clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
    fp.epochs = epochs;
    fp.batch_size = 16;
    fp.callbacks = cbs;
    fp.ncallbacks = n;
    fp.history = h;
    return fp;
}

/* ---- History ----------------------------------------------------------------------- */

START_TEST(history_holds_what_fit_reported)
{
    clnet_context *ctx = test_context();
    blobs(N, xs, ys, 1);
    clnet_model *m = small_model(ctx, CLNET_OPTIMIZER_ADAM, 0.02f);
    clnet_history h = CLNET_HISTORY_INIT;
    printed pr = { 0 };
    clnet_dataset_view data = { xs, ys, N - 24 }, val = { xs + 4 * (N - 24), ys + N - 24, 24 };
    clnet_fit_params fp = fit_params(3, NULL, 0, &h);
    fp.validation = &val;
    fp.progress = on_progress;
    fp.progress_user = &pr;
    CK_OK(ctx, clnet_model_fit(m, &fp, &data));
    ck_assert_int_eq(h.count, 3);
    ck_assert_int_eq(pr.n, 3);
    for (int e = 0; e < 3; e++) {
        ck_assert_int_eq(h.epochs[e].epoch, e + 1);
        ck_assert(h.epochs[e].loss == pr.loss[e] && h.epochs[e].accuracy == pr.acc[e]);
        ck_assert(h.epochs[e].val_loss == pr.val_loss[e] &&
                  h.epochs[e].val_accuracy == pr.val_acc[e]);
        ck_assert(h.epochs[e].loss > 0 && h.epochs[e].accuracy >= 0 && h.epochs[e].val_loss > 0);
        ck_assert(h.epochs[e].lr == (double)0.02f);
        ck_assert(h.epochs[e].seconds > 0);
    }
    /* The last row's validation values are the model's on that data. */
    double vl, va;
    CK_OK(ctx, clnet_model_evaluate(m, &val, 16, &vl, &va));
    ck_assert(vl == h.epochs[2].val_loss && va == h.epochs[2].val_accuracy);
    /* A second fit appends, numbering on. */
    fp.epochs = 2;
    fp.validation = NULL;
    CK_OK(ctx, clnet_model_fit(m, &fp, &data));
    ck_assert_int_eq(h.count, 5);
    ck_assert_int_eq(h.epochs[4].epoch, 5);
    ck_assert(h.epochs[4].val_loss == -1 && h.epochs[4].val_accuracy == -1);
    clnet_history_free(&h);
    ck_assert(h.count == 0 && h.epochs == NULL);
    clnet_history_free(NULL);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(history_csv_is_written_whole)
{
    clnet_history h = CLNET_HISTORY_INIT;
    clnet_epoch_log a = { 1, 0.5, 0.75, 0.625, 0.5, 0.001, 1.25 };
    clnet_epoch_log b = { 2, 0.25, -1, -1, -1, 0.0005, 2.0 };
    ck_assert_int_eq(clnet_history_append(&h, &a), CLNET_OK);
    ck_assert_int_eq(clnet_history_append(&h, &b), CLNET_OK);
    char dir[] = "/tmp/clnet-csv-XXXXXX";
    ck_assert(mkdtemp(dir) != NULL);
    char path[64], err[256];
    snprintf(path, sizeof path, "%s/h.csv", dir);
    ck_assert_int_eq(clnet_history_write_csv(&h, path, err, sizeof err), CLNET_OK);
    FILE *f = fopen(path, "r");
    ck_assert(f != NULL);
    char text[512] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    ck_assert_str_eq(text, "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n"
                           "1,0.5,0.75,0.625,0.5,0.001,1.250\n"
                           "2,0.25,,,,0.0005,2.000\n");
    /* A user's file: 0666 less the umask, as fopen would make it (mkstemp's
     * 0600 hid the CSV from other users). */
    mode_t mask = umask(022);
    umask(mask);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0666 & ~mask);
    /* A FIFO at the path is refused and stays a FIFO (a rename replaced it). */
    char fifo[96];
    snprintf(fifo, sizeof fifo, "%s/p.csv", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(clnet_history_write_csv(&h, fifo, err, sizeof err), CLNET_ERR_IO);
    ck_assert_msg(strstr(err, "not a regular file") != NULL, "%s", err);
    ck_assert(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    unlink(fifo);
    /* Only the file itself is left in the directory: no temporary. */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) = 1", dir);
    ck_assert_int_eq(system(cmd), 0);
    /* A missing directory: an IO error naming the file, nothing written. */
    char bad[96];
    snprintf(bad, sizeof bad, "%s/no/h.csv", dir);
    ck_assert_int_eq(clnet_history_write_csv(&h, bad, err, sizeof err), CLNET_ERR_IO);
    ck_assert_msg(strstr(err, bad) != NULL, "%s", err);
    ck_assert_int_eq(clnet_history_write_csv(NULL, path, err, sizeof err), CLNET_ERR_INVALID_ARG);
    unlink(path);
    rmdir(dir);
    clnet_history_free(&h);
}
END_TEST

/* ---- A user's callback ------------------------------------------------------------ */

START_TEST(a_callback_sees_every_event_and_stops_training)
{
    clnet_context *ctx = test_context();
    blobs(N, xs, ys, 2);
    clnet_dataset_view data = { xs, ys, N };
    clnet_model *m = small_model(ctx, CLNET_OPTIMIZER_ADAM, 0.01f);
    recorder r = { .ctx = ctx, .stop_epoch = 2 };
    clnet_callback cb = recorder_callback(&r, 1);
    clnet_history h = CLNET_HISTORY_INIT;
    clnet_fit_params fp = fit_params(5, &cb, 1, &h);
    CK_OK(ctx, clnet_model_fit(m, &fp, &data));
    /* 64 samples in batches of 16: 4 steps an epoch; stopped after epoch 2. */
    ck_assert_int_eq(h.count, 2);
    ck_assert(r.begins == 1 && r.ends == 1 && r.epoch_begins == 2 && r.batches == 8);
    /* Stopping at a batch ends the epoch there: its row covers 3 batches. */
    r = (recorder){ .ctx = ctx, .stop_batch = 3 };
    CK_OK(ctx, clnet_model_fit(m, &fp, &data));
    ck_assert_int_eq(h.count, 3);
    ck_assert(r.epoch_begins == 1 && r.batches == 3 && r.ends == 1);
    ck_assert_msg(h.epochs[2].loss == r.batch_loss, "%.9g vs %.9g", h.epochs[2].loss, r.batch_loss);
    clnet_history_free(&h);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

static clnet_status failing_hook(void *user, clnet_model *m, clnet_fit_event *ev)
{
    (void)user;
    (void)m;
    return ev->epoch == 2 ? CLNET_ERR_IO : CLNET_OK;
}

START_TEST(errors_name_the_callback_and_the_epoch)
{
    clnet_context *ctx = test_context();
    blobs(N, xs, ys, 2);
    clnet_dataset_view data = { xs, ys, N };
    clnet_model *m = small_model(ctx, CLNET_OPTIMIZER_ADAM, 0.01f);
    recorder r = { .ctx = ctx };
    clnet_callback cbs[2] = { recorder_callback(&r, 0), { .epoch_begin = failing_hook } };
    clnet_fit_params fp = fit_params(4, cbs, 2, NULL);
    CK_FAILS(ctx, CLNET_ERR_IO, "callback 1's epoch_begin at epoch 2",
             clnet_model_fit(m, &fp, &data));
    ck_assert_int_eq(r.ends, 0);
    /* A validation monitor without validation data. */
    clnet_callback es;
    clnet_early_stopping_params ep = CLNET_EARLY_STOPPING_PARAMS_DEFAULT;
    CK_OK(ctx, clnet_callback_early_stopping(ctx, &ep, &es));
    fp = fit_params(2, &es, 1, NULL);
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "monitors val_loss", clnet_model_fit(m, &fp, &data));
    clnet_callback_release(&es);
    fp.ncallbacks = -1;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "ncallbacks", clnet_model_fit(m, &fp, &data));
    fp = fit_params(2, NULL, 0, NULL);
    fp.validation_split = 0.001;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "validation_split", clnet_model_fit(m, &fp, &data));
    /* Invalid params are refused when the callback is made. */
    clnet_lr_schedule_params sp = CLNET_LR_SCHEDULE_PARAMS_DEFAULT;
    sp.kind = CLNET_LR_STEP;
    sp.step_epochs = 0;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "clnet_callback_lr_schedule",
             clnet_callback_lr_schedule(ctx, &sp, &es));
    ck_assert(es.user == NULL);
    ep.patience = -1;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "patience", clnet_callback_early_stopping(ctx, &ep, &es));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "lr", clnet_model_set_learning_rate(m, NAN));
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Schedules ------------------------------------------------------------------------ */

/* Fits `epochs` epochs with SGD (lr 0.1) under the schedule and checks the
 * rate of every epoch, as float32, against `want`. */
static void check_schedule(clnet_context *ctx, const clnet_lr_schedule_params *sp,
                           const double *craft, int epochs, const double *want)
{
    blobs(N, xs, ys, 3);
    clnet_dataset_view data = { xs, ys, N };
    clnet_model *m = small_model(ctx, CLNET_OPTIMIZER_SGD, 0.1f);
    recorder r = { .ctx = ctx, .craft = craft };
    clnet_callback cbs[2] = { recorder_callback(&r, 0) };
    CK_OK(ctx, clnet_callback_lr_schedule(ctx, sp, &cbs[1]));
    clnet_history h = CLNET_HISTORY_INIT;
    clnet_fit_params fp = fit_params(epochs, cbs, 2, &h);
    fp.validation_split = 0.25;
    CK_OK(ctx, clnet_model_fit(m, &fp, &data));
    ck_assert_int_eq(h.count, epochs);
    for (int e = 0; e < epochs; e++) {
        ck_assert_msg(h.epochs[e].lr == (double)(float)want[e],
                      "kind %d epoch %d: lr %.9g, want %.9g", (int)sp->kind, e + 1, h.epochs[e].lr,
                      want[e]);
        if (sp->kind != CLNET_LR_PLATEAU)
            ck_assert(
                fabs(clnet_lr_schedule_at(sp, sp->initial_lr > 0 ? sp->initial_lr : 0.1, e + 1) -
                     want[e]) < 1e-12);
    }
    clnet_callback_release(&cbs[1]);
    ck_assert(cbs[1].user == NULL);
    clnet_history_free(&h);
    clnet_model_destroy(m);
}

START_TEST(each_schedule_gives_the_rates_written_out_by_hand)
{
    clnet_context *ctx = test_context();
    clnet_lr_schedule_params sp = CLNET_LR_SCHEDULE_PARAMS_DEFAULT;
    check_schedule(ctx, &sp, NULL, 3, (double[]){ 0.1, 0.1, 0.1 });
    sp.kind = CLNET_LR_STEP;
    sp.step_epochs = 2;
    sp.gamma = 0.5;
    check_schedule(ctx, &sp, NULL, 5, (double[]){ 0.1, 0.1, 0.05, 0.05, 0.025 });
    sp.kind = CLNET_LR_EXPONENTIAL;
    sp.gamma = 0.5;
    check_schedule(ctx, &sp, NULL, 4, (double[]){ 0.1, 0.05, 0.025, 0.0125 });
    /* Cosine over 4 epochs from 0.1 to 0.02, then flat at 0.02. */
    sp.kind = CLNET_LR_COSINE;
    sp.initial_lr = 0.1; /* not 0.1f: the expected values are rounded once */
    sp.cosine_epochs = 4;
    sp.min_lr = 0.02;
    double c45 = 0.02 + 0.08 * (1 + sqrt(0.5)) / 2, c135 = 0.02 + 0.08 * (1 - sqrt(0.5)) / 2;
    check_schedule(ctx, &sp, NULL, 6, (double[]){ 0.1, c45, 0.06, c135, 0.02, 0.02 });
    /* Two warm-up epochs, then the step schedule from its own epoch 0. */
    sp = CLNET_LR_SCHEDULE_PARAMS_DEFAULT;
    sp.kind = CLNET_LR_STEP;
    sp.step_epochs = 2;
    sp.gamma = 0.5;
    sp.warmup_epochs = 2;
    check_schedule(ctx, &sp, NULL, 6, (double[]){ 0.05, 0.1, 0.1, 0.1, 0.05, 0.05 });
    /* An explicit lr0 wins over the optimizer's. */
    sp = CLNET_LR_SCHEDULE_PARAMS_DEFAULT;
    sp.initial_lr = 0.3;
    sp.warmup_epochs = 3;
    check_schedule(ctx, &sp, NULL, 4, (double[]){ 0.1, 0.2, 0.3, 0.3 });
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(plateau_reduces_after_patience_epochs_without_improvement)
{
    clnet_context *ctx = test_context();
    clnet_lr_schedule_params sp = CLNET_LR_SCHEDULE_PARAMS_DEFAULT;
    sp.kind = CLNET_LR_PLATEAU;
    sp.factor = 0.5;
    sp.patience = 2;
    sp.min_lr = 0.02;
    /* Epoch 2 is the best; 3 and 4 do not improve: epoch 5 runs at 0.05;
     * 5 improves; 6, 7 do not: 0.025 from epoch 8; 8, 9: 0.0125 is below
     * min_lr, so 0.02 from epoch 10. */
    static const double vl[] = { 1.0, 0.8, 0.9, 0.85, 0.7, 0.7, 0.75, 0.71, 0.72, 0.9 };
    check_schedule(ctx, &sp, vl, 10,
                   (double[]){ 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.02 });
    /* min_delta 0.15: 0.8 after 1.0 is an improvement, 0.7 after 0.8 is not. */
    sp.min_delta = 0.15;
    sp.min_lr = 0;
    sp.patience = 1;
    sp.cooldown = 1;
    static const double vl2[] = { 1.0, 0.8, 0.7, 0.7, 0.7, 0.7 };
    /* 3 no: 0.05 from 4; cooldown: 4 does not count; 5 no: 0.025 from 6. */
    check_schedule(ctx, &sp, vl2, 6, (double[]){ 0.1, 0.1, 0.1, 0.05, 0.05, 0.025 });
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Early stopping and checkpoints ------------------------------------------------------- */

START_TEST(early_stopping_stops_and_restores_the_best_weights)
{
    clnet_context *ctx = test_context();
    blobs(N, xs, ys, 4);
    clnet_dataset_view data = { xs, ys, N };
    clnet_model *m = small_model(ctx, CLNET_OPTIMIZER_ADAM, 0.02f);
    static const double vl[] = { 1.0, 0.8, 0.85, 0.9, 0.5, 0.4, 0.3, 0.2 };
    recorder r = { .ctx = ctx, .craft = vl };
    clnet_callback cbs[2] = { recorder_callback(&r, 0) };
    clnet_early_stopping_params ep = CLNET_EARLY_STOPPING_PARAMS_DEFAULT;
    ep.patience = 2;
    ep.restore_best_weights = 1;
    CK_OK(ctx, clnet_callback_early_stopping(ctx, &ep, &cbs[1]));
    clnet_history h = CLNET_HISTORY_INIT;
    clnet_fit_params fp = fit_params(8, cbs, 2, &h);
    fp.validation_split = 0.25;
    CK_OK(ctx, clnet_model_fit(m, &fp, &data));
    /* Best at 2; 3 and 4 do not improve: stopped after epoch 4. */
    ck_assert_int_eq(h.count, 4);
    int best;
    ck_assert_int_eq(clnet_callback_stopped_epoch(&cbs[1], &best), 4);
    ck_assert_int_eq(best, 2);
    float now[44];
    params_of(ctx, m, now);
    ck_assert_int_eq(memcmp(now, r.weights[1], sizeof now), 0);
    ck_assert_int_ne(memcmp(r.weights[3], r.weights[1], sizeof now), 0);
    clnet_callback_release(&cbs[1]);

    /* min_delta 0.25: 0.8 is not better enough than 1.0; patience 0 stops
     * at once, and without restoring the weights stay the last epoch's. */
    ep.min_delta = 0.25;
    ep.patience = 0;
    ep.restore_best_weights = 0;
    CK_OK(ctx, clnet_callback_early_stopping(ctx, &ep, &cbs[1]));
    clnet_history_free(&h);
    r = (recorder){ .ctx = ctx, .craft = vl };
    CK_OK(ctx, clnet_model_fit(m, &fp, &data));
    ck_assert_int_eq(h.count, 2);
    ck_assert_int_eq(clnet_callback_stopped_epoch(&cbs[1], &best), 2);
    ck_assert_int_eq(best, 1);
    params_of(ctx, m, now);
    ck_assert_int_eq(memcmp(now, r.weights[1], sizeof now), 0);
    /* Monitoring an accuracy: higher is better. */
    clnet_callback_release(&cbs[1]);
    ep = CLNET_EARLY_STOPPING_PARAMS_DEFAULT;
    ep.monitor = CLNET_MONITOR_VAL_ACCURACY;
    ep.patience = 1;
    CK_OK(ctx, clnet_callback_early_stopping(ctx, &ep, &cbs[1]));
    ck_assert_int_eq(clnet_callback_stopped_epoch(&cbs[0], NULL), 0);
    clnet_history_free(&h);
    r = (recorder){ .ctx = ctx };
    CK_OK(ctx, clnet_model_fit(m, &fp, &data));
    int stopped = clnet_callback_stopped_epoch(&cbs[1], &best);
    for (int e = 1; e < h.count; e++)
        ck_assert(h.epochs[e].val_accuracy <= h.epochs[best - 1].val_accuracy);
    ck_assert(stopped == 0 || stopped == h.count);
    clnet_callback_release(&cbs[1]);
    clnet_history_free(&h);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

static void load_params(clnet_context *ctx, const char *path, float *out)
{
    clnet_model *m = small_model(ctx, CLNET_OPTIMIZER_ADAM, 0.02f);
    CK_OK(ctx, clnet_model_load(m, path));
    params_of(ctx, m, out);
    clnet_model_destroy(m);
}

START_TEST(checkpoints_keep_the_best_or_every_epoch)
{
    clnet_context *ctx = test_context();
    blobs(N, xs, ys, 5);
    clnet_dataset_view data = { xs, ys, N };
    clnet_model *m = small_model(ctx, CLNET_OPTIMIZER_ADAM, 0.02f);
    char dir[] = "/tmp/clnet-ckpt-XXXXXX";
    ck_assert(mkdtemp(dir) != NULL);
    char best[64], each[64], path[64];
    snprintf(best, sizeof best, "%s/best.safetensors", dir);
    snprintf(each, sizeof each, "%s/e{epoch}.safetensors", dir);
    static const double vl[] = { 1.0, 0.6, 0.7, 0.5, 0.55 };
    recorder r = { .ctx = ctx, .craft = vl };
    clnet_callback cbs[3] = { recorder_callback(&r, 0) };
    clnet_checkpoint_params cp = CLNET_CHECKPOINT_PARAMS_DEFAULT;
    cp.path = best;
    cp.save_best_only = 1;
    CK_OK(ctx, clnet_callback_checkpoint(ctx, &cp, &cbs[1]));
    cp.path = each;
    cp.save_best_only = 0;
    CK_OK(ctx, clnet_callback_checkpoint(ctx, &cp, &cbs[2]));
    clnet_fit_params fp = fit_params(5, cbs, 3, NULL);
    fp.validation_split = 0.25;
    CK_OK(ctx, clnet_model_fit(m, &fp, &data));
    float w[44];
    load_params(ctx, best, w);
    ck_assert_int_eq(memcmp(w, r.weights[3], sizeof w), 0); /* epoch 4: 0.5 */
    for (int e = 1; e <= 5; e++) {
        snprintf(path, sizeof path, "%s/e%d.safetensors", dir, e);
        load_params(ctx, path, w);
        ck_assert_int_eq(memcmp(w, r.weights[e - 1], sizeof w), 0);
        unlink(path);
    }
    unlink(best);
    ck_assert_int_eq(rmdir(dir), 0); /* nothing else was left behind */
    /* A checkpoint that cannot be written stops fit with the IO error. */
    clnet_callback_release(&cbs[1]);
    clnet_callback_release(&cbs[2]);
    cp.path = "/nonexistent/dir/w.safetensors";
    CK_OK(ctx, clnet_callback_checkpoint(ctx, &cp, &cbs[1]));
    r = (recorder){ .ctx = ctx, .craft = vl };
    fp.ncallbacks = 2;
    CK_FAILS(ctx, CLNET_ERR_IO, "callback 1's epoch_end at epoch 1",
             clnet_model_fit(m, &fp, &data));
    ck_assert(strstr(clnet_context_errmsg(ctx), "/nonexistent/dir/w.safetensors") != NULL);
    clnet_callback_release(&cbs[1]);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(validation_split_holds_out_the_last_samples)
{
    clnet_context *ctx = test_context();
    blobs(N, xs, ys, 6);
    clnet_dataset_view data = { xs, ys, N };
    clnet_model *a = small_model(ctx, CLNET_OPTIMIZER_ADAM, 0.02f);
    clnet_model *b = small_model(ctx, CLNET_OPTIMIZER_ADAM, 0.02f);
    clnet_history ha = CLNET_HISTORY_INIT, hb = CLNET_HISTORY_INIT;
    double vl, va;
    clnet_fit_params fp = fit_params(2, NULL, 0, &ha);
    fp.validation_split = 0.25; /* 16 of 64 */
    CK_OK(ctx, clnet_model_fit(a, &fp, &data));
    clnet_dataset_view head = { xs, ys, 48 }, tail = { xs + 4 * 48, ys + 48, 16 };
    fp = fit_params(2, NULL, 0, &hb);
    fp.validation = &tail;
    fp.validation_batch_size = 5; /* 5, 5, 5, 1: the same means up to rounding */
    CK_OK(ctx, clnet_model_fit(b, &fp, &head));
    for (int e = 0; e < 2; e++) {
        ck_assert(ha.epochs[e].loss == hb.epochs[e].loss);
        ck_assert_msg(fabs(ha.epochs[e].val_loss - hb.epochs[e].val_loss) <
                              1e-6 * ha.epochs[e].val_loss &&
                          ha.epochs[e].val_loss > 0,
                      "%.9g vs %.9g", ha.epochs[e].val_loss, hb.epochs[e].val_loss);
        ck_assert(ha.epochs[e].val_accuracy == hb.epochs[e].val_accuracy);
    }
    CK_OK(ctx, clnet_model_evaluate(b, &tail, 5, &vl, &va));
    ck_assert(vl == hb.epochs[1].val_loss && va == hb.epochs[1].val_accuracy);
    clnet_history_free(&ha);
    clnet_history_free(&hb);
    clnet_model_destroy(a);
    clnet_model_destroy(b);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Resuming ---------------------------------------------------------------------------- */

/* 4-8-dropout-2, so that the dropout counter and seed matter too. */
static clnet_model *dropout_model(clnet_context *ctx, clnet_optimizer opt, uint64_t seed)
{
    clnet_model *m;
    CK_OK(ctx, clnet_model_create(ctx, 1, (int64_t[]){ 4 }, seed, &m));
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 8;
    d.activation = CLNET_ACT_RELU;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    CK_OK(ctx, clnet_model_add_dropout(m, 0.3f));
    d.units = 2;
    d.activation = CLNET_ACT_SOFTMAX;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    p.optimizer = opt;
    p.adam.lr = 0.02f;
    p.sgd.lr = 0.05f;
    p.sgd.momentum = 0.9f;
    CK_OK(ctx, clnet_model_compile(m, &p));
    return m;
}

/* Every parameter on the host; returns how many floats. */
static size_t all_params(clnet_context *ctx, clnet_model *m, float *out, size_t cap)
{
    size_t at = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++) {
            size_t n = clnet_tensor_numel(m->layers[i]->params[k].value);
            ck_assert(at + n <= cap);
            download(ctx, m->layers[i]->params[k].value, out + at, n);
            at += n;
        }
    return at;
}

/* LSTM(5) over (7, 4) sequences, then Dense(2, softmax): the recurrent
 * layers' state through a resume (the blobs' rows repeated as steps). */
static clnet_model *lstm_model(clnet_context *ctx, clnet_optimizer opt, uint64_t seed)
{
    clnet_model *m;
    CK_OK(ctx, clnet_model_create(ctx, 2, (int64_t[]){ 7, 4 }, seed, &m));
    clnet_rnn_layer_params r = CLNET_RNN_LAYER_PARAMS_DEFAULT;
    r.units = 5;
    CK_OK(ctx, clnet_model_add_lstm(m, &r));
    clnet_dense_params d = CLNET_DENSE_PARAMS_DEFAULT;
    d.units = 2;
    d.activation = CLNET_ACT_SOFTMAX;
    CK_OK(ctx, clnet_model_add_dense(m, &d));
    clnet_compile_params p = CLNET_COMPILE_PARAMS_DEFAULT;
    p.optimizer = opt;
    p.sgd.lr = 0.05f;
    p.sgd.momentum = 0.9f;
    CK_OK(ctx, clnet_model_compile(m, &p));
    return m;
}

START_TEST(a_resumed_lstm_fit_equals_an_uninterrupted_one_bit_for_bit)
{
    clnet_context *ctx = test_context();
    enum { M = 40 };
    static float seq[M * 7 * 4];
    blobs(M, xs, ys, 12);
    for (int i = 0; i < M; i++)
        for (int t = 0; t < 7; t++)
            for (int k = 0; k < 4; k++)
                seq[(i * 7 + t) * 4 + k] = xs[4 * i + k] * (float)(t + 1) / 7.0f;
    clnet_dataset_view data = { seq, ys, M };
    char dir[] = "/tmp/clnet-resume-lstm-XXXXXX", path[64];
    ck_assert(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/s.state", dir);
    for (int o = 0; o < 2; o++) {
        clnet_optimizer opt = o ? CLNET_OPTIMIZER_SGD : CLNET_OPTIMIZER_ADAM;
        clnet_model *a = lstm_model(ctx, opt, 5), *b = lstm_model(ctx, opt, 6);
        clnet_fit_params fp = fit_params(1, NULL, 0, NULL);
        fp.batch_size = 9;
        CK_OK(ctx, clnet_model_fit(a, &fp, &data));
        CK_OK(ctx, clnet_model_save_training_state(a, path, 1));
        fp.epochs = 3;
        fp.initial_epoch = 1;
        CK_OK(ctx, clnet_model_fit(a, &fp, &data)); /* a goes on without a reload */
        int epoch;
        CK_OK(ctx, clnet_model_load_training_state(b, path, &epoch));
        CK_OK(ctx, clnet_model_fit(b, &fp, &data));
        static float pa[256], pb[256];
        size_t na = all_params(ctx, a, pa, 256), nb = all_params(ctx, b, pb, 256);
        ck_assert(na == nb && na == 4 * 5 * (4 + 5 + 2) + 5 * 2 + 2);
        ck_assert_msg(memcmp(pa, pb, na * sizeof *pa) == 0, "optimizer %d: weights differ", o);
        clnet_model_destroy(a);
        clnet_model_destroy(b);
    }
    unlink(path);
    ck_assert_int_eq(rmdir(dir), 0);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(a_resumed_fit_equals_an_uninterrupted_one_bit_for_bit)
{
    clnet_context *ctx = test_context();
    blobs(N, xs, ys, 8);
    clnet_dataset_view data = { xs, ys, N };
    char dir[] = "/tmp/clnet-resume-XXXXXX";
    ck_assert(mkdtemp(dir) != NULL);
    char path[64];
    snprintf(path, sizeof path, "%s/e{epoch}.state", dir);
    static const clnet_optimizer opts[] = { CLNET_OPTIMIZER_ADAM, CLNET_OPTIMIZER_SGD,
                                            CLNET_OPTIMIZER_RMSPROP };
    for (int o = 0; o < 3; o++) {
        /* One run of 4 epochs that saves its state after each. */
        clnet_model *a = dropout_model(ctx, opts[o], 11);
        clnet_callback cb;
        clnet_checkpoint_params cp = CLNET_CHECKPOINT_PARAMS_DEFAULT;
        cp.path = path;
        cp.training_state = 1;
        CK_OK(ctx, clnet_callback_checkpoint(ctx, &cp, &cb));
        clnet_history ha = CLNET_HISTORY_INIT, hb = CLNET_HISTORY_INIT;
        clnet_fit_params fp = fit_params(4, &cb, 1, &ha);
        fp.batch_size = 12;
        CK_OK(ctx, clnet_model_fit(a, &fp, &data));
        clnet_callback_release(&cb);
        /* A model with another seed and its own first steps, resumed from
         * epoch 2, must end with a's weights exactly. */
        clnet_model *b = dropout_model(ctx, opts[o], 99);
        clnet_fit_params one = fit_params(1, NULL, 0, NULL);
        CK_OK(ctx, clnet_model_fit(b, &one, &data));
        char e2[64];
        snprintf(e2, sizeof e2, "%s/e2.state", dir);
        int epoch = -1;
        CK_OK(ctx, clnet_model_load_training_state(b, e2, &epoch));
        ck_assert_int_eq(epoch, 2);
        fp = fit_params(4, NULL, 0, &hb);
        fp.batch_size = 12;
        fp.initial_epoch = epoch;
        CK_OK(ctx, clnet_model_fit(b, &fp, &data));
        float pa[64], pb[64];
        size_t na = all_params(ctx, a, pa, 64);
        ck_assert(all_params(ctx, b, pb, 64) == na && na == 4 * 8 + 8 + 8 * 2 + 2);
        ck_assert_msg(memcmp(pa, pb, na * sizeof(float)) == 0, "optimizer %d: weights differ", o);
        ck_assert_int_eq(hb.count, 2);
        ck_assert_int_eq(hb.epochs[0].epoch, 3);
        ck_assert(hb.epochs[1].loss == ha.epochs[3].loss);
        /* A weights-only file or another optimizer's state is refused. */
        char w[64];
        snprintf(w, sizeof w, "%s/w.safetensors", dir);
        CK_OK(ctx, clnet_model_save(a, w));
        CK_FAILS(ctx, CLNET_ERR_FORMAT, "not a training state",
                 clnet_model_load_training_state(b, w, &epoch));
        clnet_model *c = dropout_model(ctx, opts[(o + 1) % 3], 1);
        CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "optimizer",
                 clnet_model_load_training_state(c, e2, &epoch));
        clnet_model_destroy(c);
        for (int e = 1; e <= 4; e++) {
            snprintf(w, sizeof w, "%s/e%d.state", dir, e);
            ck_assert_int_eq(unlink(w), 0);
        }
        snprintf(w, sizeof w, "%s/w.safetensors", dir);
        unlink(w);
        fp.initial_epoch = 5;
        CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "initial_epoch", clnet_model_fit(b, &fp, &data));
        clnet_history_free(&ha);
        clnet_history_free(&hb);
        clnet_model_destroy(a);
        clnet_model_destroy(b);
    }
    ck_assert_int_eq(rmdir(dir), 0);
    clnet_context_destroy(ctx);
}
END_TEST

/* Files' bytes equal (both exist). */
static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    ck_assert(fa && fb);
    int ca, cb, same = 1;
    do {
        ca = getc(fa);
        cb = getc(fb);
        same = ca == cb;
    } while (same && ca != EOF);
    fclose(fa);
    fclose(fb);
    return same;
}

/* The callbacks' own state travels in the training state too: resumed
 * after epoch 3, with early stopping one epoch into its wait and the
 * plateau schedule having lowered the rate, the fit lowers the rate, stops
 * and restores the best weights as the fit that never stopped, and writes
 * the same state file byte for byte. */
START_TEST(a_resumed_fit_keeps_early_stopping_and_plateau_state)
{
    clnet_context *ctx = test_context();
    blobs(N, xs, ys, 9);
    clnet_dataset_view data = { xs, ys, N };
    char dir[] = "/tmp/clnet-resume-cb-XXXXXX";
    ck_assert(mkdtemp(dir) != NULL);
    /* Best at 2; 3, 4, 5 do not improve: early stopping (patience 3) stops
     * after 5; the plateau (patience 1) halves the rate after 3 and 5. */
    static const double vl[] = { 1.0, 0.8, 0.9, 0.95, 0.97, 0.99, 1.0, 1.0 };
    char paths[2][64], files[2][64];
    recorder rs[2];
    clnet_history hs[2] = { CLNET_HISTORY_INIT, CLNET_HISTORY_INIT };
    clnet_model *ms[2];
    for (int run = 0; run < 2; run++) {
        snprintf(paths[run], sizeof paths[run], "%s/%c{epoch}.state", dir, "ab"[run]);
        ms[run] = small_model(ctx, CLNET_OPTIMIZER_ADAM, 0.02f);
        rs[run] = (recorder){ .ctx = ctx, .craft = vl };
        clnet_callback cbs[4] = { recorder_callback(&rs[run], 0) };
        clnet_lr_schedule_params sp = CLNET_LR_SCHEDULE_PARAMS_DEFAULT;
        sp.kind = CLNET_LR_PLATEAU;
        sp.factor = 0.5;
        sp.patience = 1;
        CK_OK(ctx, clnet_callback_lr_schedule(ctx, &sp, &cbs[1]));
        clnet_early_stopping_params ep = CLNET_EARLY_STOPPING_PARAMS_DEFAULT;
        ep.patience = 3;
        ep.restore_best_weights = 1;
        CK_OK(ctx, clnet_callback_early_stopping(ctx, &ep, &cbs[2]));
        clnet_checkpoint_params cp = CLNET_CHECKPOINT_PARAMS_DEFAULT;
        cp.path = paths[run];
        cp.training_state = 1;
        CK_OK(ctx, clnet_callback_checkpoint(ctx, &cp, &cbs[3]));
        clnet_fit_params fp = fit_params(8, cbs, 4, &hs[run]);
        fp.validation_split = 0.25;
        if (run == 1) { /* from run a's state after epoch 3 */
            snprintf(files[0], sizeof files[0], "%s/a3.state", dir);
            CK_OK(ctx, clnet_model_load_training_state(ms[1], files[0], &fp.initial_epoch));
            CK_OK(ctx, clnet_callback_load_state(ms[1], files[0], cbs, 4));
            ck_assert_int_eq(fp.initial_epoch, 3);
            rs[1].epoch_begins = 3;
        }
        CK_OK(ctx, clnet_model_fit(ms[run], &fp, &data));
        int best;
        ck_assert_int_eq(clnet_callback_stopped_epoch(&cbs[2], &best), 5);
        ck_assert_int_eq(best, 2);
        for (int i = 1; i < 4; i++)
            clnet_callback_release(&cbs[i]);
    }
    ck_assert_int_eq(hs[0].count, 5);
    ck_assert_int_eq(hs[1].count, 2);
    for (int e = 3; e < 5; e++)
        ck_assert_msg(rs[1].lr[e] == rs[0].lr[e], "epoch %d: lr %g resumed, %g uninterrupted",
                      e + 1, rs[1].lr[e], rs[0].lr[e]);
    ck_assert(rs[0].lr[4] < rs[0].lr[3] && rs[0].lr[3] < rs[0].lr[2]);
    float pa[44], pb[44];
    params_of(ctx, ms[0], pa);
    params_of(ctx, ms[1], pb);
    ck_assert_int_eq(memcmp(pa, rs[0].weights[1], sizeof pa), 0); /* epoch 2's */
    ck_assert_int_eq(memcmp(pb, pa, sizeof pa), 0);
    snprintf(files[0], sizeof files[0], "%s/a5.state", dir);
    snprintf(files[1], sizeof files[1], "%s/b5.state", dir);
    ck_assert_msg(same_file(files[0], files[1]), "the state after epoch 5 differs");
    /* A mangled callback state is refused, naming it; a callback the file
     * holds no state for is left alone. */
    snprintf(files[0], sizeof files[0], "%s/bad.state", dir);
    const char *meta[] = { "format", "clnet-training-state-1", "callback.early_stopping.0",
                           "0x1p+0 x 2", NULL };
    CK_OK(ctx, clnet_safetensors_write(files[0], NULL, 0, meta, NULL, 0));
    clnet_callback more[2];
    clnet_early_stopping_params ep = CLNET_EARLY_STOPPING_PARAMS_DEFAULT;
    CK_OK(ctx, clnet_callback_early_stopping(ctx, &ep, &more[0]));
    clnet_lr_schedule_params sp = CLNET_LR_SCHEDULE_PARAMS_DEFAULT;
    CK_OK(ctx, clnet_callback_lr_schedule(ctx, &sp, &more[1]));
    CK_FAILS(ctx, CLNET_ERR_FORMAT, "callback.early_stopping.0",
             clnet_callback_load_state(ms[0], files[0], more, 2));
    CK_OK(ctx, clnet_callback_load_state(ms[0], files[0], &more[1], 1));
    clnet_callback_release(&more[0]);
    clnet_callback_release(&more[1]);
    unlink(files[0]);
    for (int e = 1; e <= 5; e++)
        for (int run = 0; run < 2; run++) {
            snprintf(files[0], sizeof files[0], "%s/%c%d.state", dir, "ab"[run], e);
            unlink(files[0]);
        }
    for (int run = 0; run < 2; run++) {
        clnet_history_free(&hs[run]);
        clnet_model_destroy(ms[run]);
    }
    ck_assert_int_eq(rmdir(dir), 0);
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_callbacks(void)
{
    Suite *s = suite_create("callbacks");
    TCase *tc = tcase_create("history");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, history_holds_what_fit_reported);
    tcase_add_test(tc, history_csv_is_written_whole);
    suite_add_tcase(s, tc);
    tc = tcase_create("callbacks");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, a_callback_sees_every_event_and_stops_training);
    tcase_add_test(tc, errors_name_the_callback_and_the_epoch);
    tcase_add_test(tc, each_schedule_gives_the_rates_written_out_by_hand);
    tcase_add_test(tc, plateau_reduces_after_patience_epochs_without_improvement);
    tcase_add_test(tc, early_stopping_stops_and_restores_the_best_weights);
    tcase_add_test(tc, checkpoints_keep_the_best_or_every_epoch);
    tcase_add_test(tc, validation_split_holds_out_the_last_samples);
    tcase_add_test(tc, a_resumed_fit_equals_an_uninterrupted_one_bit_for_bit);
    tcase_add_test(tc, a_resumed_lstm_fit_equals_an_uninterrupted_one_bit_for_bit);
    tcase_add_test(tc, a_resumed_fit_keeps_early_stopping_and_plateau_state);
    suite_add_tcase(s, tc);
    return s;
}
