/* onnx-finetune — fine-tunes an imported ONNX classifier on Fashion-MNIST
 * and prints the loss of every step: the clnet half of
 * tools/onnx-finetune.py, which trains the same model in PyTorch on the same
 * batches and puts the two curves side by side (docs/onnx.md,
 * "Fine-tuning"). Not installed; public API only.
 *
 *   onnx-finetune MODEL.onnx [--steps N] [--batch B] [--lr LR]
 *                 [--data DIR] [--device SPEC]
 *
 * Step k trains on training images [k B, (k + 1) B) (modulo the split), in
 * the file's order, with Adam (lr, betas 0.9 and 0.999, eps 1e-8) and
 * sparse cross-entropy: on the probabilities when the model ends in a
 * softmax, else on its logits. Prints "step K loss L" per step (the loss
 * of the batch before the step's update, as PyTorch's loss.item()). Exit
 * status 0, 1 on a failure (the message names it), 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clnet/clnet.h>
#include <clnet/onnx_import.h>

#include "cli.h"

static int usage(void)
{
    fprintf(stderr, "usage: onnx-finetune MODEL.onnx [--steps N] [--batch B] [--lr LR] "
                    "[--data DIR] [--device SPEC]\n");
    return 2;
}

static int failed(clnet_context *ctx, const char *what, clnet_status st)
{
    fprintf(stderr, "onnx-finetune: %s: %s: %s\n", what, clnet_status_name(st),
            ctx ? clnet_context_errmsg(ctx) : "");
    return 1;
}

/* Compiles m with Adam and sparse cross-entropy, on probabilities (a
 * softmax output) or, where compile refuses that, on logits. */
static clnet_status compile(clnet_model *m, double lr)
{
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    cp.adam.lr = (float)lr;
    clnet_status st = clnet_model_compile(m, &cp);
    if (st == CLNET_ERR_INVALID_ARG) {
        cp.from_logits = 1;
        st = clnet_model_compile(m, &cp);
    }
    return st;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *data = CLNET_FASHION_MNIST_DIR, *device = NULL;
    int steps = 100, batch = 32;
    double lr = 1e-3;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (s[0] != '-') {
            if (model)
                return usage();
            model = s;
            continue;
        }
        if (!v)
            return usage();
        i++;
        if (!strcmp(s, "--steps")) {
            if (!cli_int_i("onnx-finetune", s, v, 1, 1000000, &steps))
                return 2;
        } else if (!strcmp(s, "--batch")) {
            if (!cli_int_i("onnx-finetune", s, v, 1, 60000, &batch))
                return 2;
        } else if (!strcmp(s, "--lr")) {
            if (!cli_real("onnx-finetune", s, v, 0.0, 1, 10.0, 0, &lr))
                return 2;
        } else if (!strcmp(s, "--data"))
            data = v;
        else if (!strcmp(s, "--device")) {
            if (!cli_device("onnx-finetune", s, v))
                return 2;
            device = v;
        } else
            return usage();
    }
    if (!model)
        return usage();

    char err[2048];
    clnet_dataset *ds = NULL;
    if (clnet_dataset_load_mnist(data, "train", &ds, err, sizeof err)) {
        fprintf(stderr, "onnx-finetune: %s\n", err);
        return 1;
    }
    clnet_context_params params = CLNET_CONTEXT_PARAMS_DEFAULT;
    params.device = device;
    clnet_context *ctx = NULL;
    clnet_model *m = NULL;
    clnet_tensor *x = NULL, *y = NULL;
    int rc = 1;
    size_t pixels = (size_t)ds->rows * (size_t)ds->cols;
    float *xb = malloc((size_t)batch * pixels * sizeof *xb);
    int32_t *yb = malloc((size_t)batch * sizeof *yb);
    clnet_status st;
    if (!xb || !yb) {
        fprintf(stderr, "onnx-finetune: out of memory\n");
        goto done;
    }
    if (clnet_context_create(&params, &ctx, err, sizeof err)) {
        fprintf(stderr, "onnx-finetune: %s\n", err);
        goto done;
    }
    if (clnet_onnx_import_file(ctx, model, &m, err, sizeof err)) {
        fprintf(stderr, "onnx-finetune: %s\n", err);
        goto done;
    }
    if ((st = compile(m, lr))) {
        rc = failed(ctx, "compile", st);
        goto done;
    }
    if ((st = clnet_tensor_create(ctx, CLNET_F32, 4, (int64_t[]){ batch, 1, ds->rows, ds->cols },
                                  &x)) ||
        (st = clnet_tensor_create(ctx, CLNET_I32, 1, (int64_t[]){ batch }, &y))) {
        rc = failed(ctx, "tensors", st);
        goto done;
    }
    for (int k = 0; k < steps; k++) {
        for (int i = 0; i < batch; i++) {
            size_t n = ((size_t)k * (size_t)batch + (size_t)i) % ds->count;
            memcpy(xb + (size_t)i * pixels, ds->images + n * pixels, pixels * sizeof *xb);
            yb[i] = ds->labels[n];
        }
        double loss = 0;
        if ((st = clnet_tensor_upload(x, xb, (size_t)batch * pixels * sizeof *xb)) ||
            (st = clnet_tensor_upload(y, yb, (size_t)batch * sizeof *yb)) ||
            (st = clnet_model_train_on_batch(m, x, y, &loss, NULL))) {
            rc = failed(ctx, "training", st);
            goto done;
        }
        printf("step %d loss %.9g\n", k, loss);
    }
    rc = 0;
done:
    clnet_tensor_destroy(y);
    clnet_tensor_destroy(x);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
    clnet_dataset_free(ds);
    free(yb);
    free(xb);
    return rc;
}
