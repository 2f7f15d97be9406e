/* clnet-train cnn — the reference CNN on Fashion-MNIST, in one process or
 * data-parallel over MPI ranks (o->dist; only rank 0 prints and saves). */
#include <stdio.h>
#include <unistd.h>

#include "train.h"

/* Test loss and accuracy, reduced over the ranks in a data-parallel run. */
static clnet_status evaluate(const options *o, clnet_model *m, const clnet_dataset_view *ev,
                             double *loss, double *acc)
{
    return o->dist ? clnet_dist_evaluate(o->dist, m, ev, 500, loss, acc)
                   : clnet_model_evaluate(m, ev, 500, loss, acc);
}

/* What averaging the gradients cost rank 0 over the last epoch, per step. */
static void print_allreduce(const clnet_dist *d, const clnet_model *m, clnet_dist_stats *last,
                            double steps)
{
    clnet_dist_stats s;
    if (clnet_dist_get_stats(d, m, &s))
        return;
    double read = 1e3 * (s.download_s - last->download_s) / steps;
    double wait = 1e3 * (s.wait_s - last->wait_s) / steps;
    double write = 1e3 * (s.upload_s - last->upload_s) / steps;
    printf("  %d ranks: allreduce of %.0f KiB per step in %d bucket(s): %.2f ms/step on rank 0 "
           "(read %.2f, wait %.2f, write %.2f)\n",
           clnet_dist_size(d), (double)s.bytes_per_step / 1024.0, s.buckets, read + wait + write,
           read, wait, write);
    *last = s;
}

int train_cnn(clnet_context *ctx, const options *o)
{
    int lead = clnet_dist_rank(o->dist) == 0;
    /* (main checked --save before a run in one process) */
    if (o->save && lead && o->dist && check_output(o, "--save", o->save))
        return 2;
    if (o->save_onnx && lead && o->dist && check_output(o, "--save-onnx", o->save_onnx))
        return 2;
    clnet_dataset *train, *test;
    if (load_data(o, &train, &test))
        return 1;
    clnet_model *m = NULL;
    int rc = 1;
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    cp.adam.lr = (float)o->lr;
    if (build_cnn(ctx, o->seed, &m) || clnet_model_compile(m, &cp)) {
        rc = fail(ctx, "building the model");
        goto done;
    }
    if (!o->quiet && lead)
        clnet_model_summary(m, stdout);
    if (o->load && clnet_model_load(m, o->load)) {
        rc = fail(ctx, "loading weights");
        goto done;
    }
    /* Every rank starts from rank 0's weights. */
    if (o->dist && clnet_dist_attach(o->dist, m)) {
        rc = fail(ctx, "joining the other ranks");
        goto done;
    }
    int64_t n = o->limit && (size_t)o->limit < train->count ? o->limit : (int64_t)train->count;
    clnet_dataset_view tv = clnet_dataset_view_of(train), ev = clnet_dataset_view_of(test);
    tv.count = n;
    if (lead)
        printf("training on %lld images, testing on %lld, batch %d, %d epochs, Adam lr %g\n",
               (long long)n, (long long)test->count, o->batch_size, o->eval_only ? 0 : o->epochs,
               o->lr);
    fflush(stdout);
    clnet_dist_stats before = { 0 };
    double test_acc = 0, test_loss = 0;
    if (watch_wanted(o) && watch_fit(ctx, o, m, &tv, &ev, &test_loss, &test_acc)) {
        rc = 1;
        goto done;
    }
    for (int e = 1; e <= (o->eval_only || watch_wanted(o) ? 0 : o->epochs); e++) {
        clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
        fp.epochs = 1;
        fp.batch_size = o->batch_size;
        fp.shuffle_seed = o->seed * 1000003ull + (unsigned long long)e;
        epoch_log log = { .quiet = o->quiet || !isatty(fileno(stderr)) };
        fp.progress = on_progress;
        fp.progress_user = &log;
        double t0 = now();
        if (o->dist ? clnet_dist_fit(o->dist, m, &fp, &tv) : clnet_model_fit(m, &fp, &tv)) {
            rc = fail(ctx, "training");
            goto done;
        }
        double secs = now() - t0;
        if (evaluate(o, m, &ev, &test_loss, &test_acc)) {
            rc = fail(ctx, "evaluating");
            goto done;
        }
        double steps = (double)((n + o->batch_size - 1) / o->batch_size);
        if (lead)
            printf(
                "epoch %d/%d: loss %.4f, train accuracy %.4f, test loss %.4f, test accuracy %.4f, "
                "%.1f s (%.1f ms/step)\n",
                e, o->epochs, log.loss, log.accuracy, test_loss, test_acc, secs,
                1e3 * secs / steps);
        if (lead && o->dist)
            print_allreduce(o->dist, m, &before, steps);
        fflush(stdout);
    }
    /* --eval-only and --epochs 0 evaluate what was loaded (or built). */
    if ((o->eval_only || o->epochs == 0) && evaluate(o, m, &ev, &test_loss, &test_acc)) {
        rc = fail(ctx, "evaluating");
        goto done;
    }
    if (o->save && lead) {
        if (save_weights(ctx, m, o->save))
            goto done;
        printf("saved weights to %s\n", o->save);
    }
    if (o->save_onnx && lead) {
        if (save_onnx(ctx, m, o->save_onnx))
            goto done;
        printf("saved the model as ONNX to %s\n", o->save_onnx);
    }
    if (lead)
        printf("test accuracy: %.4f\n", test_acc);
    rc = 0;
done:
    if (o->dist && m)
        clnet_dist_detach(o->dist, m);
    clnet_model_destroy(m);
    clnet_dataset_free(train);
    clnet_dataset_free(test);
    return rc;
}
