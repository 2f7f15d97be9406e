/* clnet — data-parallel fit and evaluate (include/clnet/dist.h): every rank
 * computes the same epoch order, trains on its contiguous part of each
 * global batch (gathered on the host, so only its own rows are read), and
 * the loss, accuracy and evaluation are summed over the ranks. Built only
 * with MPI. */
#include <stdlib.h>
#include <string.h>

#include "clnet/callbacks.h"
#include "clnet/history.h"
#include "dist_impl.h"
#include "nn/fit_hooks.h"
#include "tensor/tensor_impl.h"

static int sparse_targets(const clnet_model *m)
{
    return m->compile.loss == CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
}

/* Floats per input row and bytes per target row. */
static void row_sizes(const clnet_model *m, size_t *xrow, size_t *yrow, int *ynd, int64_t *yshape)
{
    *xrow = 1;
    for (int i = 0; i < m->in_ndim; i++)
        *xrow *= (size_t)m->in_shape[i];
    *ynd = sparse_targets(m) ? 0 : clnet_model_output_shape(m, yshape);
    *yrow = sizeof(float);
    for (int i = 0; i < *ynd; i++)
        *yrow *= (size_t)yshape[i];
}

static clnet_status check_data(clnet_dist *d, const clnet_model *m, const char *func,
                               const clnet_dataset_view *v)
{
    if (!v || !v->x || !v->y || v->count <= 0 || v->count > INT32_MAX)
        return clnet__dist_fail(d, m->ctx, CLNET_ERR_INVALID_ARG,
                                "%s: data needs x, y and 1 <= count <= 2^31-1 (count %lld)", func,
                                v ? (long long)v->count : 0LL);
    return CLNET_OK;
}

static attachment *attached(clnet_dist *d, clnet_model *m, const char *func, clnet_status *st)
{
    attachment *a = clnet__dist_find(d, m);
    *st = a ? CLNET_OK
            : clnet__dist_fail(d, m ? m->ctx : NULL, CLNET_ERR_INVALID_ARG,
                               "%s: the model is not attached (clnet_dist_attach)", func);
    return a;
}

/* One rank's part of a batch: host staging rows, device batch buffers
 * (max_rows), and this rank's loss and correct-count accumulators. */
typedef struct shard {
    const clnet_dataset_view *data;
    size_t xrow, yrow;
    float *hx;
    unsigned char *hy;
    clnet_tensor *bx, *by, *loss_sum, *correct_sum;
} shard;

static void shard_free(shard *s)
{
    free(s->hx);
    free(s->hy);
    clnet_tensor_destroy(s->bx);
    clnet_tensor_destroy(s->by);
    clnet_tensor_destroy(s->loss_sum);
    clnet_tensor_destroy(s->correct_sum);
    memset(s, 0, sizeof *s);
}

static clnet_status shard_make(clnet_dist *d, clnet_model *m, const clnet_dataset_view *v,
                               int64_t max_rows, shard *s)
{
    memset(s, 0, sizeof *s);
    s->data = v;
    int64_t xs[CLNET_MAX_DIMS], ys[CLNET_MAX_DIMS], out[CLNET_MAX_DIMS], one = 1;
    int ynd;
    row_sizes(m, &s->xrow, &s->yrow, &ynd, out);
    xs[0] = ys[0] = max_rows;
    memcpy(xs + 1, m->in_shape, (size_t)m->in_ndim * sizeof *xs);
    memcpy(ys + 1, out, (size_t)ynd * sizeof *out);
    s->hx = malloc((size_t)max_rows * s->xrow * sizeof(float));
    s->hy = malloc((size_t)max_rows * s->yrow);
    if (!s->hx || !s->hy)
        return clnet__dist_fail(d, m->ctx, CLNET_ERR_HOST_MEMORY,
                                "clnet_dist_fit: out of host memory");
    clnet_status st;
    if ((st = clnet_tensor_create(m->ctx, CLNET_F32, m->in_ndim + 1, xs, &s->bx)) ||
        (st = clnet_tensor_create(m->ctx, sparse_targets(m) ? CLNET_I32 : CLNET_F32, ynd + 1, ys,
                                  &s->by)) ||
        (st = clnet_tensor_create(m->ctx, CLNET_F32, 0, &one, &s->loss_sum)) ||
        (st = clnet_tensor_create(m->ctx, CLNET_F32, 0, &one, &s->correct_sum)))
        return st;
    return CLNET_OK;
}

/* Gathers rows order[0 .. n) of the dataset on the host (only this rank's
 * rows are read) and uploads them; *x, *y are views of their n rows. */
static clnet_status shard_load(shard *s, const int32_t *order, int64_t n, clnet_tensor **x,
                               clnet_tensor **y)
{
    const unsigned char *ys = s->data->y;
    for (int64_t j = 0; j < n; j++) {
        memcpy(s->hx + (size_t)j * s->xrow, s->data->x + (size_t)order[j] * s->xrow,
               s->xrow * sizeof(float));
        memcpy(s->hy + (size_t)j * s->yrow, ys + (size_t)order[j] * s->yrow, s->yrow);
    }
    *x = *y = NULL;
    clnet_status st;
    if ((st = clnet_tensor_slice(s->bx, 0, n, x)) ||
        (st = clnet_tensor_upload(*x, s->hx, (size_t)n * s->xrow * sizeof(float))) ||
        (st = clnet_tensor_slice(s->by, 0, n, y)))
        return st;
    return clnet_tensor_upload(*y, s->hy, (size_t)n * s->yrow);
}

/* Sums every rank's loss (weighted by rows) and correct count. */
static clnet_status reduce_sums(clnet_dist *d, const clnet_model *m, const shard *s, double sums[2])
{
    float l = 0, c = 0;
    clnet_status st;
    if ((st = clnet_tensor_download(s->loss_sum, &l, sizeof l)) ||
        (st = clnet_tensor_download(s->correct_sum, &c, sizeof c)))
        return st;
    sums[0] = l;
    sums[1] = c;
    return clnet__dist_allreduce(d, m->ctx, sums, 2, MPI_DOUBLE, MPI_SUM, "reducing the loss");
}

/* This rank's rows [lo, hi) of a global batch of n rows. */
static void my_rows(const clnet_dist *d, int64_t n, int64_t *lo, int64_t *hi)
{
    *lo = n * d->rank / d->size;
    *hi = n * (d->rank + 1) / d->size;
}

/* One training step on this rank's part of global rows order[0 .. n). */
static clnet_status fit_step(clnet_dist *d, clnet_model *m, shard *s, const int32_t *order,
                             int64_t n)
{
    int64_t lo, hi;
    my_rows(d, n, &lo, &hi);
    clnet_status st;
    if (lo == hi)
        return (st = clnet_dist_skip_batch(d, m)) ? st : clnet_model_step(m);
    clnet_tensor *x, *y;
    if (!(st = shard_load(s, order + lo, hi - lo, &x, &y)) &&
        !(st = clnet_model_train_on_batch(m, x, y, NULL, NULL)) &&
        !(st = clnet_axpy((float)(hi - lo), m->loss, s->loss_sum)))
        st = clnet_axpy((float)clnet__model_metric_scale(m, hi - lo), m->correct, s->correct_sum);
    clnet_tensor_destroy(x);
    clnet_tensor_destroy(y);
    return st;
}

static clnet_status fit_epoch(clnet_dist *d, clnet_model *m, const clnet_fit_params *p, shard *s,
                              const int32_t *order, int64_t b, clnet_progress *pr, double t0)
{
    int64_t count = s->data->count, steps = (count + b - 1) / b;
    int64_t every = steps < 50 ? 1 : steps / 50;
    pr->steps = steps;
    clnet_status st = CLNET_OK;
    for (int64_t i = 0; i < steps && !st; i++) {
        int64_t n = count - i * b < b ? count - i * b : b;
        if ((st = fit_step(d, m, s, order + i * b, n)))
            break;
        pr->step = i + 1;
        /* Every rank reduces at the same steps, whether or not it reports. */
        if ((i + 1) % every || i + 1 == steps)
            continue;
        double sums[2], seen = (double)(i * b + n);
        if ((st = reduce_sums(d, m, s, sums)))
            break;
        pr->loss = sums[0] / seen;
        pr->accuracy = sums[1] / seen;
        pr->elapsed = clnet__now() - t0;
        pr->eta = pr->elapsed / (double)(i + 1) * (double)(steps - i - 1);
        if (p->progress && d->rank == 0)
            p->progress(p->progress_user, pr);
    }
    return st;
}

/* Copies rank 0's non-trained parameters (running statistics) to every rank. */
static clnet_status sync_untrained(clnet_dist *d, clnet_model *m)
{
    int n = 0;
    for (int i = 0; i < m->nlayers; i++)
        n += m->layers[i]->nparams;
    clnet_tensor **t = calloc((size_t)n + 1, sizeof *t);
    if (!t)
        return clnet__dist_fail(d, m->ctx, CLNET_ERR_HOST_MEMORY,
                                "clnet_dist_fit: out of host memory");
    n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++)
            if (!m->layers[i]->params[k].grad)
                t[n++] = m->layers[i]->params[k].value;
    clnet_status st =
        n ? clnet__dist_bcast_tensors(d, m, t, n, "copying rank 0's running statistics") : CLNET_OK;
    free(t);
    return st;
}

/* ---- History and callbacks over the ranks ----
 * Rank 0 runs the callbacks (src/nn's fit hooks, as clnet_model_fit does):
 * one set of files, one decision. After each hook every rank learns its
 * status (agreed), after epoch_begin rank 0's learning rate (a schedule),
 * after epoch_end whether to stop, after train_end rank 0's weights (early
 * stopping may have restored its best). Every rank appends the epoch's row
 * to its own history: the metrics are the all-reduced ones, the same on
 * every rank; seconds are the rank's own. */

typedef struct hooks {
    int on, rank0, stop;
    clnet__fit_run r; /* rank 0's, when on */
} hooks;

static int run_here(const hooks *h)
{
    return h->on && h->rank0;
}

static clnet_status agree(clnet_dist *d, clnet_model *m, clnet_status local)
{
    return clnet__dist_agree(d, m->ctx, local, "clnet_dist_fit: a callback on rank 0",
                             clnet_context_errmsg(m->ctx));
}

static clnet_status hooks_begin(hooks *h, clnet_dist *d, clnet_model *m, const clnet_fit_params *p,
                                const clnet_dataset_view *data)
{
    if (!h->on)
        return CLNET_OK;
    return agree(d, m, h->rank0 ? clnet__fit_begin(&h->r, m, p, data) : CLNET_OK);
}

static clnet_status hooks_epoch_begin(hooks *h, clnet_dist *d, clnet_model *m, int epoch)
{
    if (!h->on)
        return CLNET_OK;
    clnet_status st = agree(d, m, h->rank0 ? clnet__fit_epoch_begin(&h->r, epoch) : CLNET_OK);
    double lr = h->rank0 ? clnet_model_learning_rate(m) : -1;
    if (!st)
        st = clnet__dist_allreduce(d, m->ctx, &lr, 1, MPI_DOUBLE, MPI_MAX,
                                   "sharing rank 0's learning rate");
    return st || h->rank0 ? st : clnet_model_set_learning_rate(m, lr);
}

static clnet_status hooks_epoch_end(hooks *h, clnet_dist *d, clnet_model *m,
                                    const clnet_fit_params *p, const clnet_progress *pr)
{
    clnet_status st = CLNET_OK;
    if (run_here(h)) {
        st = clnet__fit_epoch_end(&h->r, pr); /* appends rank 0's row */
    } else if (p->history) {
        const clnet_history *hist = p->history;
        int last = hist->count > 0 && hist->epochs ? hist->epochs[hist->count - 1].epoch : 0;
        clnet_epoch_log row = { .epoch = last + 1,
                                .loss = pr->loss,
                                .accuracy = pr->accuracy,
                                .val_loss = pr->val_loss,
                                .val_accuracy = pr->val_accuracy,
                                .lr = clnet_model_learning_rate(m),
                                .seconds = pr->elapsed };
        if ((st = clnet_history_append(p->history, &row)))
            clnet__error(m->ctx, st, "clnet_dist_fit: out of host memory for the history");
    }
    if (!p->history && !h->on)
        return CLNET_OK;
    if ((st = agree(d, m, st)) || !h->on)
        return st;
    int stop = run_here(h) && h->r.stop;
    st = clnet__dist_allreduce(d, m->ctx, &stop, 1, MPI_INT, MPI_MAX, "sharing rank 0's stop");
    h->stop = stop;
    return st;
}

static clnet_status hooks_end(hooks *h, clnet_dist *d, clnet_model *m, clnet_status st)
{
    if (!h->on || st)
        return st;
    if ((st = agree(d, m, h->rank0 ? clnet__fit_end(&h->r, CLNET_OK) : CLNET_OK)))
        return st;
    int n = 0;
    for (int i = 0; i < m->nlayers; i++)
        n += m->layers[i]->nparams;
    clnet_tensor **t = calloc((size_t)n + 1, sizeof *t);
    st = t ? CLNET_OK
           : clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "clnet_dist_fit: out of host memory");
    if ((st = agree(d, m, st))) { /* no rank waits in the copy for one that cannot */
        free(t);
        return st;
    }
    n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++)
            t[n++] = m->layers[i]->params[k].value;
    st = n ? clnet__dist_bcast_tensors(d, m, t, n, "copying rank 0's weights after the callbacks")
           : CLNET_OK;
    free(t);
    return st;
}

CLNET_API clnet_status clnet_dist_fit(clnet_dist *d, clnet_model *m, const clnet_fit_params *p,
                                      const clnet_dataset_view *data)
{
    CLNET_CHECK_ARG(NULL, d != NULL);
    clnet_status st;
    if (!attached(d, m, "clnet_dist_fit", &st))
        return st;
    static const clnet_fit_params defaults = CLNET_FIT_PARAMS_INIT;
    if (!p)
        p = &defaults;
    if (p->epochs < 0 || p->batch_size <= 0)
        return clnet__dist_fail(d, m->ctx, CLNET_ERR_INVALID_ARG,
                                "clnet_dist_fit: params needs epochs >= 0 and batch_size > 0");
    const char *asked = p->validation_split > 0 ? "validation_split"
                        : p->initial_epoch      ? "initial_epoch"
                                                : NULL;
    for (int i = 0; !asked && i < p->ncallbacks && p->callbacks; i++)
        if (p->callbacks[i].batch_end)
            asked = "a callback with batch_end";
    if (asked)
        return clnet__dist_fail(
            d, m->ctx, CLNET_ERR_UNSUPPORTED,
            "clnet_dist_fit: %s is set, and validation_split, initial_epoch and "
            "batch_end hooks are clnet_model_fit's only for now; clnet_dist_fit "
            "takes epochs, batch_size, shuffle, shuffle_seed, validation (held "
            "out data, evaluated over the ranks), history (every rank), "
            "callbacks (run on rank 0) and progress (called on rank 0)",
            asked);
    if (p->ncallbacks < 0 || (p->ncallbacks > 0 && !p->callbacks))
        return clnet__dist_fail(d, m->ctx, CLNET_ERR_INVALID_ARG,
                                "clnet_dist_fit: ncallbacks is %d with callbacks %s", p->ncallbacks,
                                p->callbacks ? "set" : "NULL");
    if ((st = check_data(d, m, "clnet_dist_fit", data)))
        return st;
    int64_t b = p->batch_size < data->count ? p->batch_size : data->count;
    shard s;
    int32_t *order = malloc((size_t)data->count * sizeof *order);
    if (!order)
        return clnet__dist_fail(d, m->ctx, CLNET_ERR_HOST_MEMORY,
                                "clnet_dist_fit: out of host memory");
    if ((st = shard_make(d, m, data, (b + d->size - 1) / d->size, &s)))
        goto done;
    hooks h = { .on = p->ncallbacks > 0, .rank0 = d->rank == 0 };
    if ((st = hooks_begin(&h, d, m, p, data)))
        goto done;
    uint64_t state = p->shuffle_seed;
    for (int e = 1; e <= p->epochs && !st && !h.stop; e++) {
        if ((st = hooks_epoch_begin(&h, d, m, e)))
            break;
        double t0 = clnet__now(), sums[2];
        clnet_progress pr = { .epoch = e,
                              .epochs = p->epochs,
                              .val_loss = -1,
                              .val_accuracy = -1,
                              .metric = clnet__model_metric_name(m) };
        clnet__sample_order(order, data->count, p->shuffle, &state);
        if ((st = clnet_tensor_fill(s.loss_sum, 0)) || (st = clnet_tensor_fill(s.correct_sum, 0)) ||
            (st = fit_epoch(d, m, p, &s, order, b, &pr, t0)) ||
            (st = reduce_sums(d, m, &s, sums)) || (st = sync_untrained(d, m)))
            break;
        pr.loss = sums[0] / (double)data->count;
        pr.accuracy = sums[1] / (double)data->count;
        if (p->validation &&
            (st = clnet_dist_evaluate(d, m, p->validation, (int)b, &pr.val_loss, &pr.val_accuracy)))
            break;
        pr.elapsed = clnet__now() - t0;
        pr.eta = 0;
        pr.end_of_epoch = 1;
        if (p->progress && d->rank == 0)
            p->progress(p->progress_user, &pr);
        if ((st = hooks_epoch_end(&h, d, m, p, &pr)))
            break;
    }
    st = hooks_end(&h, d, m, st);
done:
    shard_free(&s);
    free(order);
    return st;
}

CLNET_API clnet_status clnet_dist_evaluate(clnet_dist *d, clnet_model *m,
                                           const clnet_dataset_view *data, int batch_size,
                                           double *loss, double *accuracy)
{
    CLNET_CHECK_ARG(NULL, d != NULL);
    if (!m)
        return clnet__dist_fail(d, NULL, CLNET_ERR_INVALID_ARG, "clnet_dist_evaluate: m is NULL");
    if (batch_size <= 0)
        return clnet__dist_fail(d, m->ctx, CLNET_ERR_INVALID_ARG,
                                "clnet_dist_evaluate: batch_size is %d (must be positive)",
                                batch_size);
    clnet_status st = check_data(d, m, "clnet_dist_evaluate", data);
    if (st)
        return st;
    size_t xrow, yrow;
    int ynd;
    int64_t yshape[CLNET_MAX_DIMS], lo, hi;
    row_sizes(m, &xrow, &yrow, &ynd, yshape);
    my_rows(d, data->count, &lo, &hi);
    double sums[2] = { 0, 0 }, l = 0, acc = 0;
    if (hi > lo) {
        clnet_dataset_view mine = { data->x + (size_t)lo * xrow,
                                    (const unsigned char *)data->y + (size_t)lo * yrow, hi - lo };
        st = clnet_model_evaluate(m, &mine, batch_size, &l, &acc);
        sums[0] = l * (double)(hi - lo);
        sums[1] = acc * (double)(hi - lo);
    }
    if ((st = clnet__dist_agree(d, m->ctx, st, "clnet_dist_evaluate",
                                clnet_context_errmsg(m->ctx))) ||
        (st = clnet__dist_allreduce(d, m->ctx, sums, 2, MPI_DOUBLE, MPI_SUM,
                                    "reducing the evaluation")))
        return st;
    if (loss)
        *loss = sums[0] / (double)data->count;
    if (accuracy)
        *accuracy = sums[1] / (double)data->count;
    return CLNET_OK;
}
