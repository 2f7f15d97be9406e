/* clnet-train — watching and steering a fit: --logdir, --csv, --checkpoint,
 * --early-stopping, --lr-schedule (docs/training.md). One clnet_model_fit
 * over all epochs with the test set as validation data; the epoch lines
 * come from a callback. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../cli.h"
#include "../plot.h"
#include "train.h"

#define P "clnet-train"

int watch_takes(const char *a)
{
    return !strcmp(a, "--logdir") || !strcmp(a, "--csv") || !strcmp(a, "--checkpoint") ||
           !strcmp(a, "--early-stopping") || !strcmp(a, "--lr-schedule") || !strcmp(a, "--plot") ||
           !strcmp(a, "--resume");
}

/* One item of --lr-schedule: "step:N:GAMMA", "exp:GAMMA", "cosine:N[:MIN_LR]",
 * "plateau:PATIENCE[:FACTOR]" or "warmup:N". */
static int schedule_item(char *item, clnet_lr_schedule_params *s, int *kinds)
{
    char *f[4] = { item, NULL, NULL, NULL };
    int n = 1;
    for (char *c = item; *c && n < 4; c++)
        if (*c == ':') {
            *c = 0;
            f[n++] = c + 1;
        }
    const char *o = "--lr-schedule";
    if (!strcmp(f[0], "warmup") && n == 2)
        return cli_int_i(P, o, f[1], 1, 1000000, &s->warmup_epochs);
    (*kinds)++;
    if (!strcmp(f[0], "step") && n == 3) {
        s->kind = CLNET_LR_STEP;
        return cli_int_i(P, o, f[1], 1, 1000000, &s->step_epochs) &&
               cli_real(P, o, f[2], 0.0, 1, 10.0, 0, &s->gamma);
    }
    if (!strcmp(f[0], "exp") && n == 2) {
        s->kind = CLNET_LR_EXPONENTIAL;
        return cli_real(P, o, f[1], 0.0, 1, 10.0, 0, &s->gamma);
    }
    if (!strcmp(f[0], "cosine") && (n == 2 || n == 3)) {
        s->kind = CLNET_LR_COSINE;
        return cli_int_i(P, o, f[1], 1, 1000000, &s->cosine_epochs) &&
               (n == 2 || cli_real(P, o, f[2], 0.0, 0, 10.0, 0, &s->min_lr));
    }
    if (!strcmp(f[0], "plateau") && (n == 2 || n == 3)) {
        s->kind = CLNET_LR_PLATEAU;
        s->factor = 0.1;
        return cli_int_i(P, o, f[1], 0, 1000000, &s->patience) &&
               (n == 2 || cli_real(P, o, f[2], 0.0, 1, 1.0, 1, &s->factor));
    }
    fprintf(stderr,
            P ": --lr-schedule takes step:N:GAMMA, exp:GAMMA, cosine:N[:MIN_LR], "
              "plateau:PATIENCE[:FACTOR], optionally with ,warmup:N; not \"%s\"\n",
            f[0]);
    return 0;
}

/* Output paths are checked before training: a typo in a directory should
 * not cost a whole run. The file itself is written atomically later. */
static int out_path_ok(const char *opt, const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (!path[0] || (slash && !slash[1]) || n >= sizeof dir) {
        fprintf(stderr, P ": %s takes a file path, not \"%s\"\n", opt, path);
        return 0;
    }
    snprintf(dir, sizeof dir, "%.*s", (int)(slash ? (n ? n : 1) : 1), slash ? path : ".");
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, P ": %s %s: the directory \"%s\" does not exist or is not writable\n", opt,
                path, dir);
        return 0;
    }
    if (!strcmp(opt, "--plot")) {
        size_t k = strlen(path);
        if (k < 4 || (strcasecmp(path + k - 4, ".png") && strcasecmp(path + k - 4, ".svg") &&
                      strcasecmp(path + k - 4, ".pdf"))) {
            fprintf(stderr, P ": --plot takes a file ending in .png, .svg or .pdf, not \"%s\"\n",
                    path);
            return 0;
        }
    }
    return 1;
}

int watch_parse(const char *a, const char *v, options *o)
{
    if (!strcmp(a, "--logdir"))
        o->logdir = v;
    else if (!strcmp(a, "--csv"))
        o->csv = v;
    else if (!strcmp(a, "--checkpoint"))
        o->checkpoint = v;
    else if (!strcmp(a, "--plot"))
        o->plot = v;
    else if (!strcmp(a, "--resume")) {
        if (access(v, R_OK) != 0) {
            fprintf(stderr, P ": --resume %s: cannot read the file\n", v);
            return 0;
        }
        o->resume = v;
    } else if (!strcmp(a, "--early-stopping"))
        return cli_int_i(P, a, v, 0, 1000000, &o->early_stopping);
    else if (!strcmp(a, "--lr-schedule")) {
        char copy[256];
        if (!v[0] || strlen(v) >= sizeof copy) {
            fprintf(stderr,
                    P ": --lr-schedule takes a spec shorter than 256 characters, not \"%s\"\n", v);
            return 0;
        }
        snprintf(copy, sizeof copy, "%s", v);
        o->schedule = CLNET_LR_SCHEDULE_PARAMS_DEFAULT;
        int kinds = 0;
        for (char *item = copy, *next; item; item = next) {
            if ((next = strchr(item, ',')))
                *next++ = 0;
            if (!schedule_item(item, &o->schedule, &kinds))
                return 0;
        }
        if (kinds > 1) {
            fprintf(stderr, P ": --lr-schedule takes one schedule (and warmup:N), not \"%s\"\n", v);
            return 0;
        }
        o->schedule_set = 1;
    }
    if (!strcmp(a, "--csv") || !strcmp(a, "--checkpoint") || !strcmp(a, "--plot"))
        return out_path_ok(a, v);
    if (!strcmp(a, "--logdir") && !v[0]) {
        fprintf(stderr, P ": --logdir takes a directory, not an empty string\n");
        return 0;
    }
    return 1;
}

int watch_wanted(const options *o)
{
    return o->logdir || o->csv || o->checkpoint || o->plot || o->early_stopping >= 0 ||
           o->schedule_set || o->resume;
}

/* ---- Curves -------------------------------------------------------------------------------- */

int plot_history(const clnet_history *h, const char *path, char *err, size_t err_size)
{
    int n = h->count;
    double *v = malloc((size_t)(n ? n : 1) * 5 * sizeof *v);
    if (!v) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    double *x = v, *l = v + n, *vl = v + 2 * n, *a = v + 3 * n, *va = v + 4 * n;
    for (int i = 0; i < n; i++) {
        x[i] = h->epochs[i].epoch;
        l[i] = h->epochs[i].loss;
        vl[i] = h->epochs[i].val_loss;
        a[i] = h->epochs[i].accuracy;
        va[i] = h->epochs[i].val_accuracy;
    }
    const plot_series loss[] = { { "train", x, l, n, { 0.12, 0.47, 0.71 }, 0 },
                                 { "test", x, vl, n, { 0.84, 0.15, 0.16 }, 1 } };
    const plot_series acc[] = { { "train", x, a, n, { 0.12, 0.47, 0.71 }, 0 },
                                { "test", x, va, n, { 0.84, 0.15, 0.16 }, 1 } };
    const plot_panel panels[] = { { "loss", "epoch", "loss", loss, 2, 1 },
                                  { "accuracy", "epoch", "accuracy", acc, 2, 0 } };
    int rc = plot_write(path, panels, 2, 1000, 400, err, err_size);
    free(v);
    return rc;
}

/* ---- The fit ---------------------------------------------------------------------------- */

typedef struct printer {
    const options *o;
    int64_t steps; /* per epoch */
    char err[512];
} printer;

/* Prints the epoch line and rewrites the CSV (atomically) after each epoch,
 * so it can be watched while training runs. */
static clnet_status print_epoch(void *user, clnet_model *m, clnet_fit_event *ev)
{
    (void)m;
    printer *p = user;
    const clnet_epoch_log *l = ev->log;
    printf(
        "epoch %d/%d: loss %.4f, train accuracy %.4f, test loss %.4f, test accuracy %.4f, lr %.3g, "
        "%.1f s (%.1f ms/step, testing included)\n",
        ev->epoch, ev->epochs, l->loss, l->accuracy, l->val_loss, l->val_accuracy, l->lr,
        l->seconds, 1e3 * l->seconds / (double)p->steps);
    fflush(stdout);
    return CLNET_OK;
}

static clnet_status write_csv(void *user, clnet_model *m, clnet_fit_event *ev)
{
    (void)m;
    printer *p = user;
    /* The history already holds the earlier epochs; add this one's row. */
    clnet_history h = CLNET_HISTORY_INIT;
    clnet_status st = CLNET_OK;
    for (int i = 0; i < ev->history->count && !st; i++)
        st = clnet_history_append(&h, &ev->history->epochs[i]);
    if (!st)
        st = clnet_history_append(&h, ev->log);
    if (!st)
        st = clnet_history_write_csv(&h, p->o->csv, p->err, sizeof p->err);
    clnet_history_free(&h);
    if (st)
        fprintf(stderr, P ": %s\n", p->err[0] ? p->err : "--csv: out of memory");
    return st;
}

int watch_fit(clnet_context *ctx, const options *o, clnet_model *m, const clnet_dataset_view *tv,
              const clnet_dataset_view *ev, double *test_loss, double *test_acc)
{
    if (o->dist) {
        fprintf(stderr, P ": --logdir, --csv, --checkpoint, --early-stopping, --lr-schedule and "
                          "--plot need a run in one process (not over MPI ranks)\n");
        return 1;
    }
    printer pr = { .o = o, .steps = (tv->count + o->batch_size - 1) / o->batch_size };
    clnet_history h = CLNET_HISTORY_INIT;
    clnet_callback cbs[7];
    int n = 0, rc = 1;
    memset(cbs, 0, sizeof cbs);
    clnet_tblog *tb = NULL;
    char err[1024];
    /* Order: schedule first (sets the epoch's rate), the printer and CSV,
     * then what acts on the metrics. */
    if (o->schedule_set && clnet_callback_lr_schedule(ctx, &o->schedule, &cbs[n++])) {
        rc = fail(ctx, "--lr-schedule");
        goto done;
    }
    cbs[n++] = (clnet_callback){ .epoch_end = print_epoch, .user = &pr };
    if (o->csv)
        cbs[n++] = (clnet_callback){ .epoch_end = write_csv, .user = &pr };
    if (o->logdir) {
        clnet_tensorboard_params tp = { .every_steps = 50, .histograms = 1 };
        if (clnet_tblog_open(o->logdir, &tb, err, sizeof err)) {
            fprintf(stderr, P ": --logdir: %s\n", err);
            goto done;
        }
        if (clnet_callback_tensorboard(ctx, tb, &tp, &cbs[n++])) {
            rc = fail(ctx, "--logdir");
            goto done;
        }
    }
    if (o->early_stopping >= 0) {
        clnet_early_stopping_params ep = CLNET_EARLY_STOPPING_PARAMS_DEFAULT;
        ep.patience = o->early_stopping;
        ep.restore_best_weights = 1;
        if (clnet_callback_early_stopping(ctx, &ep, &cbs[n++])) {
            rc = fail(ctx, "--early-stopping");
            goto done;
        }
    }
    /* Last: the training state holds the other callbacks' state of the
     * epoch just ended (early stopping's wait counter) for --resume. */
    if (o->checkpoint) {
        clnet_checkpoint_params cp = CLNET_CHECKPOINT_PARAMS_DEFAULT;
        cp.path = o->checkpoint;
        cp.save_best_only = 1;
        /* And the training state of every epoch next to it, for --resume. */
        char state[4096];
        snprintf(state, sizeof state, "%s.state", o->checkpoint);
        clnet_checkpoint_params sp = CLNET_CHECKPOINT_PARAMS_DEFAULT;
        sp.path = state;
        sp.training_state = 1;
        if (clnet_callback_checkpoint(ctx, &cp, &cbs[n++]) ||
            clnet_callback_checkpoint(ctx, &sp, &cbs[n++])) {
            rc = fail(ctx, "--checkpoint");
            goto done;
        }
    }
    epoch_log log = { .quiet = o->quiet || !isatty(fileno(stderr)) };
    clnet_fit_params fp = CLNET_FIT_PARAMS_DEFAULT;
    fp.epochs = o->epochs;
    fp.batch_size = o->batch_size;
    fp.shuffle_seed = o->seed * 1000003ull + 1;
    fp.progress = on_progress;
    fp.progress_user = &log;
    fp.validation = ev;
    fp.validation_batch_size = 500; /* as the evaluation without these options */
    fp.history = &h;
    fp.callbacks = cbs;
    fp.ncallbacks = n;
    if (o->resume) {
        if (clnet_model_load_training_state(m, o->resume, &fp.initial_epoch) ||
            clnet_callback_load_state(m, o->resume, cbs, n)) {
            rc = fail(ctx, "--resume");
            goto done;
        }
        if (fp.initial_epoch > o->epochs) {
            fprintf(stderr, P ": --resume: %s holds %d epochs, more than --epochs %d\n", o->resume,
                    fp.initial_epoch, o->epochs);
            goto done;
        }
        printf("resuming after epoch %d from %s\n", fp.initial_epoch, o->resume);
    }
    if (clnet_model_fit(m, &fp, tv)) {
        rc = fail(ctx, "training");
        goto done;
    }
    if (o->early_stopping >= 0) {
        int best, stopped = clnet_callback_stopped_epoch(&cbs[n - 1], &best);
        if (stopped)
            printf("early stopping after epoch %d; weights of epoch %d (best test loss) restored\n",
                   stopped, best);
    }
    if (o->checkpoint)
        printf("checkpoint (the epoch of the best test loss): %s\n", o->checkpoint);
    if (o->logdir)
        printf("TensorBoard events: %s\n", clnet_tblog_path(tb));
    if (o->csv)
        printf("history: %s\n", o->csv);
    if (o->plot && plot_history(&h, o->plot, err, sizeof err)) {
        fprintf(stderr, P ": --plot: %s\n", err);
        goto done;
    }
    if (o->plot)
        printf("curves: %s\n", o->plot);
    /* The test values of the weights the model ends with (restored ones
     * after early stopping), not of the last epoch. */
    if (clnet_model_evaluate(m, ev, 500, test_loss, test_acc)) {
        rc = fail(ctx, "evaluating");
        goto done;
    }
    rc = 0;
done:
    for (int i = 0; i < n; i++)
        clnet_callback_release(&cbs[i]);
    clnet_tblog_close(tb);
    clnet_history_free(&h);
    return rc;
}
