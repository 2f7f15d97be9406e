/* clnet-train lstm / rnn — the reference recurrent stacks on Fashion-MNIST
 * read row by row: 28 steps of 28 features. */
#include <stdio.h>
#include <unistd.h>

#include "train.h"

int train_rnn(clnet_context *ctx, const options *o)
{
    clnet_dataset *train, *test;
    if (load_data(o, &train, &test))
        return 1;
    clnet_model *m = NULL;
    int rc = 1;
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    cp.adam.lr = (float)o->lr;
    if (build_rnn_stack(ctx, o->model, o->seed, &m) || clnet_model_compile(m, &cp)) {
        rc = fail(ctx, "building the model");
        goto done;
    }
    if (!o->quiet)
        clnet_model_summary(m, stdout);
    if (o->load && clnet_model_load(m, o->load)) {
        rc = fail(ctx, "loading weights");
        goto done;
    }
    /* An image (28, 28) is a sequence of 28 rows of 28 pixels as it is. */
    int64_t n = o->limit && (size_t)o->limit < train->count ? o->limit : (int64_t)train->count;
    clnet_dataset_view tv = clnet_dataset_view_of(train), ev = clnet_dataset_view_of(test);
    tv.count = n;
    printf(
        "training on %lld sequences of 28 rows, testing on %lld, batch %d, %d epochs, Adam lr %g\n",
        (long long)n, (long long)test->count, o->batch_size, o->eval_only ? 0 : o->epochs, o->lr);
    fflush(stdout);
    double test_acc = 0, test_loss = 0;
    if (watch_wanted(o) && watch_fit(ctx, o, m, &tv, &ev, &test_loss, &test_acc)) {
        rc = 1;
        goto done;
    }
    for (int e = 1; e <= (o->eval_only || watch_wanted(o) ? 0 : o->epochs); e++) {
        clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
        fp.batch_size = o->batch_size;
        fp.shuffle_seed = o->seed * 1000003ull + (unsigned long long)e;
        epoch_log log = { .quiet = o->quiet || !isatty(fileno(stderr)) };
        fp.progress = on_progress;
        fp.progress_user = &log;
        double t0 = now();
        if (clnet_model_fit(m, &fp, &tv)) {
            rc = fail(ctx, "training");
            goto done;
        }
        double secs = now() - t0;
        if (clnet_model_evaluate(m, &ev, 500, &test_loss, &test_acc)) {
            rc = fail(ctx, "evaluating");
            goto done;
        }
        printf("epoch %d/%d: loss %.4f, train accuracy %.4f, test loss %.4f, test accuracy %.4f, "
               "%.1f s (%.1f ms/step)\n",
               e, o->epochs, log.loss, log.accuracy, test_loss, test_acc, secs,
               1e3 * secs / (double)((n + o->batch_size - 1) / o->batch_size));
        fflush(stdout);
    }
    /* --eval-only and --epochs 0 evaluate what was loaded (or built). */
    if ((o->eval_only || o->epochs == 0) &&
        clnet_model_evaluate(m, &ev, 500, &test_loss, &test_acc)) {
        rc = fail(ctx, "evaluating");
        goto done;
    }
    if (o->save) {
        if (save_weights(ctx, m, o->save))
            goto done;
        printf("saved weights to %s\n", o->save);
    }
    if (o->save_onnx) {
        if (save_onnx(ctx, m, o->save_onnx))
            goto done;
        printf("saved the model as ONNX to %s\n", o->save_onnx);
    }
    printf("test accuracy: %.4f\n", test_acc);
    rc = 0;
done:
    clnet_model_destroy(m);
    clnet_dataset_free(train);
    clnet_dataset_free(test);
    return rc;
}
