/* clnet — callbacks in fit (include/clnet/callbacks.h): the learning rate,
 * schedules, early stopping, checkpoints, and the hooks train.c calls to
 * run them and keep the history (src/nn/fit_hooks.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fit_hooks.h"
#include "nn_impl.h"

/* ---- Learning rate ------------------------------------------------------------ */

static float *lr_of(clnet_model *m)
{
    switch (m->compile.optimizer) {
    case CLNET_OPTIMIZER_ADAM:
        return &m->compile.adam.lr;
    case CLNET_OPTIMIZER_SGD:
        return &m->compile.sgd.lr;
    default:
        return &m->compile.rmsprop.lr;
    }
}

CLNET_API double clnet_model_learning_rate(const clnet_model *m)
{
    return m && m->compiled ? *lr_of((clnet_model *)m) : 0.0;
}

CLNET_API clnet_status clnet_model_set_learning_rate(clnet_model *m, double lr)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    if (!m->compiled)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_set_learning_rate: compile the model first");
    if (!(lr >= 0 && lr <= 3.4e38))
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_set_learning_rate: lr must be finite and >= 0 (is %g)",
                            lr);
    *lr_of(m) = (float)lr;
    return CLNET_OK;
}

/* ---- Monitors ------------------------------------------------------------------- */

static const char *monitor_name(clnet_monitor mon)
{
    static const char *names[] = { "val_loss", "val_accuracy", "loss", "accuracy" };
    return mon >= CLNET_MONITOR_VAL_LOSS && mon <= CLNET_MONITOR_ACCURACY ? names[mon] : "?";
}

static int valid_monitor(clnet_monitor mon)
{
    return mon >= CLNET_MONITOR_VAL_LOSS && mon <= CLNET_MONITOR_ACCURACY;
}

/* Reads the monitored value as "lower is better" (accuracies negated). */
static clnet_status monitored(clnet_model *m, const char *who, clnet_monitor mon,
                              const clnet_epoch_log *log, double *out)
{
    double v = mon == CLNET_MONITOR_VAL_LOSS       ? log->val_loss
               : mon == CLNET_MONITOR_VAL_ACCURACY ? log->val_accuracy
               : mon == CLNET_MONITOR_LOSS         ? log->loss
                                                   : log->accuracy;
    if (v < 0)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s monitors %s, which this fit does not have (%s)", who,
                            monitor_name(mon),
                            mon <= CLNET_MONITOR_VAL_ACCURACY && log->val_loss < 0
                                ? "give fit validation data or a validation split"
                                : "the loss has no accuracy");
    *out = mon == CLNET_MONITOR_VAL_ACCURACY || mon == CLNET_MONITOR_ACCURACY ? -v : v;
    if (v != v)
        *out = INFINITY; /* a NaN never improves */
    return CLNET_OK;
}

CLNET_API void clnet_callback_release(clnet_callback *cb)
{
    if (!cb)
        return;
    if (cb->destroy)
        cb->destroy(cb->user);
    memset(cb, 0, sizeof *cb);
}

static void free_user(void *user)
{
    clnet__free(user);
}

/* ---- Schedules ---------------------------------------------------------------------- */

static int schedule_valid(const clnet_lr_schedule_params *p)
{
    if (!(p->kind >= CLNET_LR_CONSTANT && p->kind <= CLNET_LR_PLATEAU) || p->warmup_epochs < 0 ||
        !(p->initial_lr >= 0 && p->initial_lr < 3.4e38) || !(p->min_lr >= 0 && p->min_lr < 3.4e38))
        return 0;
    switch (p->kind) {
    case CLNET_LR_STEP:
        return p->step_epochs >= 1 && p->gamma > 0 && p->gamma < 3.4e38;
    case CLNET_LR_EXPONENTIAL:
        return p->gamma > 0 && p->gamma < 3.4e38;
    case CLNET_LR_COSINE:
        return p->cosine_epochs >= 1;
    case CLNET_LR_PLATEAU:
        return valid_monitor(p->monitor) && p->factor > 0 && p->factor < 1 && p->patience >= 0 &&
               p->min_delta >= 0 && p->cooldown >= 0;
    default:
        return 1;
    }
}

CLNET_API double clnet_lr_schedule_at(const clnet_lr_schedule_params *p, double lr0, int epoch)
{
    static const clnet_lr_schedule_params defaults = CLNET_LR_SCHEDULE_PARAMS_INIT;
    if (!p)
        p = &defaults;
    if (!schedule_valid(p) || epoch < 1 || !(lr0 >= 0))
        return -1;
    if (epoch <= p->warmup_epochs)
        return lr0 * epoch / p->warmup_epochs;
    int k = epoch - 1 - p->warmup_epochs;
    switch (p->kind) {
    case CLNET_LR_STEP:
        return lr0 * pow(p->gamma, k / p->step_epochs);
    case CLNET_LR_EXPONENTIAL:
        return lr0 * pow(p->gamma, k);
    case CLNET_LR_COSINE: {
        double t = k < p->cosine_epochs ? k : p->cosine_epochs;
        return p->min_lr +
               (lr0 - p->min_lr) * (1 + cos(3.14159265358979323846 * t / p->cosine_epochs)) / 2;
    }
    default:
        return lr0;
    }
}

typedef struct schedule_state {
    clnet_lr_schedule_params p;
    double lr0;
    double plateau_lr, best; /* PLATEAU */
    int wait, cooldown, seen;
    int resumed; /* clnet_callback_load_state filled it: keep it once */
} schedule_state;

static clnet_status schedule_train_begin(void *user, clnet_model *m, clnet_fit_event *ev)
{
    (void)ev;
    schedule_state *s = user;
    if (s->resumed) {
        s->resumed = 0;
        return CLNET_OK;
    }
    s->lr0 = s->p.initial_lr > 0 ? s->p.initial_lr : clnet_model_learning_rate(m);
    s->plateau_lr = s->lr0;
    s->best = INFINITY;
    s->wait = s->cooldown = s->seen = 0;
    return CLNET_OK;
}

static clnet_status schedule_epoch_begin(void *user, clnet_model *m, clnet_fit_event *ev)
{
    schedule_state *s = user;
    double lr = clnet_lr_schedule_at(&s->p, s->lr0, ev->epoch);
    if (s->p.kind == CLNET_LR_PLATEAU && ev->epoch > s->p.warmup_epochs)
        lr = s->plateau_lr;
    return clnet_model_set_learning_rate(m, lr);
}

/* Keras' ReduceLROnPlateau (PyTorch's cooldown), counted from the end of
 * warm-up. */
static clnet_status schedule_epoch_end(void *user, clnet_model *m, clnet_fit_event *ev)
{
    schedule_state *s = user;
    if (s->p.kind != CLNET_LR_PLATEAU || ev->epoch <= s->p.warmup_epochs)
        return CLNET_OK;
    double v;
    clnet_status st = monitored(m, "the plateau schedule", s->p.monitor, ev->log, &v);
    if (st)
        return st;
    int better = v < s->best - s->p.min_delta;
    if (better) {
        s->best = v;
        s->wait = 0;
    } else {
        s->wait++;
    }
    /* As PyTorch: epochs in a cooldown do not count as bad ones. */
    if (s->cooldown > 0) {
        s->cooldown--;
        s->wait = 0;
    } else if (!better && s->wait >= s->p.patience && s->plateau_lr > s->p.min_lr) {
        double lr = s->plateau_lr * s->p.factor;
        s->plateau_lr = lr > s->p.min_lr ? lr : s->p.min_lr;
        s->cooldown = s->p.cooldown;
        s->wait = 0;
    }
    return CLNET_OK;
}

CLNET_API clnet_status clnet_callback_lr_schedule(clnet_context *ctx,
                                                  const clnet_lr_schedule_params *p,
                                                  clnet_callback *out)
{
    CLNET_CHECK_ARG(ctx, out != NULL);
    memset(out, 0, sizeof *out);
    static const clnet_lr_schedule_params defaults = CLNET_LR_SCHEDULE_PARAMS_INIT;
    if (!p)
        p = &defaults;
    if (!schedule_valid(p))
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_callback_lr_schedule: invalid params for kind %d (see "
                            "clnet/callbacks.h for each field's range)",
                            (int)p->kind);
    schedule_state *s = clnet__calloc(1, sizeof *s);
    if (!s)
        return clnet__error(ctx, CLNET_ERR_HOST_MEMORY,
                            "clnet_callback_lr_schedule: out of host memory");
    s->p = *p;
    *out = (clnet_callback){ .train_begin = schedule_train_begin,
                             .epoch_begin = schedule_epoch_begin,
                             .epoch_end = schedule_epoch_end,
                             .user = s,
                             .destroy = free_user };
    return CLNET_OK;
}

/* ---- Weight snapshots ------------------------------------------------------------------- */

/* Every parameter (running statistics too) on the host, in layer order. */
typedef struct snapshot {
    float *data;
    size_t n;
} snapshot;

static size_t param_floats(const clnet_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++)
            n += clnet_tensor_numel(m->layers[i]->params[k].value);
    return n;
}

static clnet_status snapshot_take(clnet_model *m, snapshot *s)
{
    size_t n = param_floats(m);
    if (s->n != n) {
        clnet__free(s->data);
        s->n = 0;
        if (!(s->data = clnet__malloc((n ? n : 1) * sizeof(float))))
            return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY,
                                "early stopping: out of host memory");
        s->n = n;
    }
    size_t at = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++) {
            const clnet_tensor *t = m->layers[i]->params[k].value;
            clnet_status st =
                clnet_tensor_download(t, s->data + at, clnet_tensor_numel(t) * sizeof(float));
            if (st)
                return st;
            at += clnet_tensor_numel(t);
        }
    return CLNET_OK;
}

static clnet_status snapshot_restore(clnet_model *m, const snapshot *s)
{
    if (s->n != param_floats(m))
        return clnet__error(m->ctx, CLNET_ERR_INTERNAL,
                            "early stopping: the model changed during fit");
    size_t at = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++) {
            clnet_tensor *t = m->layers[i]->params[k].value;
            clnet_status st =
                clnet_tensor_upload(t, s->data + at, clnet_tensor_numel(t) * sizeof(float));
            if (st)
                return st;
            at += clnet_tensor_numel(t);
        }
    return CLNET_OK;
}

/* ---- Early stopping ---------------------------------------------------------------------- */

typedef struct early_state {
    clnet_early_stopping_params p;
    double best;
    int wait, best_epoch, stopped_epoch;
    snapshot weights;
    int resumed; /* clnet_callback_load_state filled it: keep it once */
} early_state;

static clnet_status early_train_begin(void *user, clnet_model *m, clnet_fit_event *ev)
{
    (void)m;
    (void)ev;
    early_state *s = user;
    if (s->resumed) {
        s->resumed = 0;
        return CLNET_OK;
    }
    s->best = INFINITY;
    s->wait = s->best_epoch = s->stopped_epoch = 0;
    return CLNET_OK;
}

static clnet_status early_epoch_end(void *user, clnet_model *m, clnet_fit_event *ev)
{
    early_state *s = user;
    double v;
    clnet_status st = monitored(m, "early stopping", s->p.monitor, ev->log, &v);
    if (st)
        return st;
    if (v < s->best - s->p.min_delta) {
        s->best = v;
        s->best_epoch = ev->epoch;
        s->wait = 0;
        return s->p.restore_best_weights ? snapshot_take(m, &s->weights) : CLNET_OK;
    }
    if (++s->wait >= s->p.patience) {
        s->stopped_epoch = ev->epoch;
        ev->stop = 1;
    }
    return CLNET_OK;
}

static clnet_status early_train_end(void *user, clnet_model *m, clnet_fit_event *ev)
{
    (void)ev;
    early_state *s = user;
    return s->p.restore_best_weights && s->best_epoch ? snapshot_restore(m, &s->weights) : CLNET_OK;
}

static void early_destroy(void *user)
{
    early_state *s = user;
    if (s)
        clnet__free(s->weights.data);
    clnet__free(s);
}

CLNET_API clnet_status clnet_callback_early_stopping(clnet_context *ctx,
                                                     const clnet_early_stopping_params *p,
                                                     clnet_callback *out)
{
    CLNET_CHECK_ARG(ctx, out != NULL);
    memset(out, 0, sizeof *out);
    static const clnet_early_stopping_params defaults = CLNET_EARLY_STOPPING_PARAMS_INIT;
    if (!p)
        p = &defaults;
    CLNET_CHECK_ARG(ctx, valid_monitor(p->monitor) && p->patience >= 0 && p->min_delta >= 0 &&
                             p->min_delta < INFINITY);
    early_state *s = clnet__calloc(1, sizeof *s);
    if (!s)
        return clnet__error(ctx, CLNET_ERR_HOST_MEMORY,
                            "clnet_callback_early_stopping: out of host memory");
    s->p = *p;
    *out = (clnet_callback){ .train_begin = early_train_begin,
                             .epoch_end = early_epoch_end,
                             .train_end = early_train_end,
                             .user = s,
                             .destroy = early_destroy };
    return CLNET_OK;
}

CLNET_API int clnet_callback_stopped_epoch(const clnet_callback *cb, int *best)
{
    int is_early = cb && cb->epoch_end == early_epoch_end && cb->user;
    const early_state *s = is_early ? cb->user : NULL;
    if (best)
        *best = s ? s->best_epoch : 0;
    return s ? s->stopped_epoch : 0;
}

/* ---- Checkpoints ---------------------------------------------------------------------------- */

typedef struct checkpoint_state {
    clnet_monitor monitor;
    int save_best_only, training_state;
    double best;
    int resumed; /* clnet_callback_load_state filled it: keep it once */
    char path[]; /* the template, "{epoch}" not yet replaced */
} checkpoint_state;

static clnet_status checkpoint_train_begin(void *user, clnet_model *m, clnet_fit_event *ev)
{
    (void)m;
    (void)ev;
    checkpoint_state *s = user;
    if (!s->resumed)
        s->best = INFINITY;
    s->resumed = 0;
    return CLNET_OK;
}

static clnet_status checkpoint_epoch_end(void *user, clnet_model *m, clnet_fit_event *ev)
{
    checkpoint_state *s = user;
    if (s->save_best_only) {
        double v;
        clnet_status st = monitored(m, "the checkpoint", s->monitor, ev->log, &v);
        if (st || !(v < s->best))
            return st;
        s->best = v;
    }
    const char *mark = strstr(s->path, "{epoch}");
    if (!mark)
        return s->training_state ? clnet__save_training_state(m, s->path, ev->epoch, ev->callbacks,
                                                              ev->ncallbacks)
                                 : clnet_model_save(m, s->path);
    size_t n = strlen(s->path) + 16;
    char *path = clnet__malloc(n);
    if (!path)
        return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "checkpoint: out of host memory");
    snprintf(path, n, "%.*s%d%s", (int)(mark - s->path), s->path, ev->log->epoch, mark + 7);
    clnet_status st = s->training_state ? clnet__save_training_state(m, path, ev->epoch,
                                                                     ev->callbacks, ev->ncallbacks)
                                        : clnet_model_save(m, path);
    clnet__free(path);
    return st;
}

CLNET_API clnet_status clnet_callback_checkpoint(clnet_context *ctx,
                                                 const clnet_checkpoint_params *p,
                                                 clnet_callback *out)
{
    CLNET_CHECK_ARG(ctx, out != NULL);
    memset(out, 0, sizeof *out);
    static const clnet_checkpoint_params defaults = CLNET_CHECKPOINT_PARAMS_INIT;
    if (!p)
        p = &defaults;
    CLNET_CHECK_ARG(ctx, p->path != NULL && p->path[0] && valid_monitor(p->monitor));
    size_t n = strlen(p->path);
    checkpoint_state *s = clnet__calloc(1, sizeof *s + n + 1);
    if (!s)
        return clnet__error(ctx, CLNET_ERR_HOST_MEMORY,
                            "clnet_callback_checkpoint: out of host memory");
    s->monitor = p->monitor;
    s->save_best_only = p->save_best_only;
    s->training_state = p->training_state;
    memcpy(s->path, p->path, n + 1);
    *out = (clnet_callback){ .train_begin = checkpoint_train_begin,
                             .epoch_end = checkpoint_epoch_end,
                             .user = s,
                             .destroy = free_user };
    return CLNET_OK;
}

/* ---- State for resuming (resume.c writes and reads it) ---------------------------------- */

enum { KIND_OTHER, KIND_SCHEDULE, KIND_EARLY, KIND_CHECKPOINT };

static int kind_of(const clnet_callback *cb)
{
    if (!cb->user)
        return KIND_OTHER;
    return cb->epoch_end == schedule_epoch_end     ? KIND_SCHEDULE
           : cb->epoch_end == early_epoch_end      ? KIND_EARLY
           : cb->epoch_end == checkpoint_epoch_end ? KIND_CHECKPOINT
                                                   : KIND_OTHER;
}

int clnet__callback_key(const clnet_callback *cbs, int i, char *key, size_t size)
{
    static const char *names[] = { "", "lr_schedule", "early_stopping", "checkpoint" };
    int kind = kind_of(&cbs[i]), k = 0;
    if (kind == KIND_OTHER)
        return 0;
    for (int j = 0; j < i; j++)
        k += kind_of(&cbs[j]) == kind;
    snprintf(key, size, "callback.%s.%d", names[kind], k);
    return 1;
}

/* Doubles as C99 hex floats ("%a"): read back bit for bit by strtod. */
void clnet__callback_state(const clnet_callback *cb, char *buf, size_t size, const float **weights,
                           size_t *nweights)
{
    *weights = NULL;
    *nweights = 0;
    switch (kind_of(cb)) {
    case KIND_SCHEDULE: {
        const schedule_state *s = cb->user;
        snprintf(buf, size, "%a %a %a %d %d %d", s->lr0, s->plateau_lr, s->best, s->wait,
                 s->cooldown, s->seen);
        break;
    }
    case KIND_EARLY: {
        const early_state *s = cb->user;
        snprintf(buf, size, "%a %d %d", s->best, s->wait, s->best_epoch);
        if (s->p.restore_best_weights && s->best_epoch) {
            *weights = s->weights.data;
            *nweights = s->weights.n;
        }
        break;
    }
    case KIND_CHECKPOINT:
        snprintf(buf, size, "%a", ((const checkpoint_state *)cb->user)->best);
        break;
    default:
        snprintf(buf, size, "-");
    }
}

/* Reads n numbers of text ("d" an int, "g" a double) into out[]; the
 * whole string, nothing left over. */
static int parse_numbers(const char *text, const char *kinds, double *out)
{
    const char *at = text;
    for (int i = 0; kinds[i]; i++) {
        char *end;
        while (*at == ' ')
            at++;
        out[i] = strtod(at, &end);
        if (end == at || (kinds[i] == 'd' && (out[i] != floor(out[i]) || fabs(out[i]) > 1e9)))
            return 0;
        at = end;
    }
    return *at == 0;
}

clnet_status clnet__callback_restore(clnet_model *m, clnet_callback *cb, const char *key,
                                     const char *text, const float *weights, size_t nweights,
                                     int apply)
{
    double v[6];
    int kind = kind_of(cb);
    int ok = kind == KIND_SCHEDULE ? parse_numbers(text, "gggddd", v) && v[3] >= 0 && v[4] >= 0
             : kind == KIND_EARLY  ? parse_numbers(text, "gdd", v) && v[1] >= 0 && v[2] >= 0
                                   : kind == KIND_CHECKPOINT && parse_numbers(text, "g", v);
    const early_state *es = kind == KIND_EARLY ? cb->user : NULL;
    int need_weights = es && es->p.restore_best_weights && ok && v[2] > 0;
    if (!ok || (need_weights && nweights != param_floats(m)))
        return clnet__error(m->ctx, CLNET_ERR_FORMAT, "clnet_callback_load_state: %s: \"%s\" %s",
                            key, text,
                            !ok ? "is not this callback's state"
                                : "needs the best weights, of the model's size, next to it");
    if (!apply)
        return CLNET_OK;
    if (kind == KIND_SCHEDULE) {
        schedule_state *s = cb->user;
        s->lr0 = v[0], s->plateau_lr = v[1], s->best = v[2];
        s->wait = (int)v[3], s->cooldown = (int)v[4], s->seen = (int)v[5];
        s->resumed = 1;
    } else if (kind == KIND_EARLY) {
        early_state *s = cb->user;
        if (need_weights) {
            float *w = clnet__malloc((nweights ? nweights : 1) * sizeof(float));
            if (!w)
                return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY,
                                    "clnet_callback_load_state: out of host memory");
            memcpy(w, weights, nweights * sizeof(float));
            clnet__free(s->weights.data);
            s->weights = (snapshot){ w, nweights };
        }
        s->best = v[0], s->wait = (int)v[1], s->best_epoch = (int)v[2];
        s->stopped_epoch = 0;
        s->resumed = 1;
    } else {
        checkpoint_state *s = cb->user;
        s->best = v[0];
        s->resumed = 1;
    }
    return CLNET_OK;
}

/* ---- The hooks fit calls ------------------------------------------------------------------------
 */

enum { HOOK_TRAIN_BEGIN, HOOK_EPOCH_BEGIN, HOOK_BATCH_END, HOOK_EPOCH_END, HOOK_TRAIN_END };

/* Calls one hook of every callback in order; stops at the first error and
 * names the callback, hook and epoch in front of its message. */
static clnet_status run_hook(clnet__fit_run *r, int hook, clnet_fit_event *ev)
{
    static const char *names[] = { "train_begin", "epoch_begin", "batch_end", "epoch_end",
                                   "train_end" };
    for (int i = 0; i < r->p->ncallbacks; i++) {
        const clnet_callback *cb = &r->p->callbacks[i];
        clnet_callback_fn fn = hook == HOOK_TRAIN_BEGIN   ? cb->train_begin
                               : hook == HOOK_EPOCH_BEGIN ? cb->epoch_begin
                               : hook == HOOK_BATCH_END   ? cb->batch_end
                               : hook == HOOK_EPOCH_END   ? cb->epoch_end
                                                          : cb->train_end;
        clnet_status st = fn ? fn(cb->user, r->m, ev) : CLNET_OK;
        if (st) {
            /* The message may already be in the buffer we format into. */
            char prev[512];
            snprintf(prev, sizeof prev, "%s", clnet_context_errmsg(r->m->ctx));
            return clnet__error(r->m->ctx, st,
                                "clnet_model_fit: callback %d's %s at epoch %d "
                                "returned %s: %s",
                                i, names[hook], ev->epoch, clnet_status_name(st), prev);
        }
        r->stop |= ev->stop != 0;
    }
    return CLNET_OK;
}

static clnet_fit_event event(clnet__fit_run *r, int epoch)
{
    return (clnet_fit_event){ .epoch = epoch,
                              .epochs = r->p->epochs,
                              .history = r->p->history,
                              .callbacks = r->p->callbacks,
                              .ncallbacks = r->p->ncallbacks };
}

clnet_status clnet__fit_begin(clnet__fit_run *r, clnet_model *m, const clnet_fit_params *p,
                              const clnet_dataset_view *data)
{
    memset(r, 0, sizeof *r);
    r->m = m;
    r->p = p;
    r->train = *data;
    r->validation = p->validation;
    if (p->initial_epoch < 0 || p->initial_epoch > p->epochs)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_fit: initial_epoch must be in 0..epochs (is %d of %d)",
                            p->initial_epoch, p->epochs);
    if (p->ncallbacks < 0 || (p->ncallbacks > 0 && !p->callbacks))
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_fit: ncallbacks is %d with callbacks %s", p->ncallbacks,
                            p->callbacks ? "set" : "NULL");
    if (!(p->validation_split >= 0 && p->validation_split < 1))
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_fit: validation_split must be in [0, 1) (is %g)",
                            p->validation_split);
    if (p->validation_split > 0 && !p->validation) {
        int64_t nval = (int64_t)((double)data->count * p->validation_split);
        if (nval < 1 || nval >= data->count)
            return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                                "clnet_model_fit: validation_split %g of %lld samples leaves %lld "
                                "for validation and %lld for training; both need one at least",
                                p->validation_split, (long long)data->count, (long long)nval,
                                (long long)(data->count - nval));
        int64_t out[CLNET_MAX_DIMS];
        int nd = clnet_model_output_shape(m, out);
        size_t yrow = 4; /* one int32 label, or prod(output) floats */
        for (int i = 0; m->compile.loss != CLNET_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY && i < nd;
             i++)
            yrow *= (size_t)out[i];
        size_t xrow = 1;
        for (int i = 0; i < m->in_ndim; i++)
            xrow *= (size_t)m->in_shape[i];
        r->train.count = data->count - nval;
        r->val =
            (clnet_dataset_view){ data->x + (size_t)r->train.count * xrow,
                                  (const char *)data->y + (size_t)r->train.count * yrow, nval };
        r->validation = &r->val;
    }
    for (int i = 0; i < p->ncallbacks; i++)
        r->batch_hooks |= p->callbacks[i].batch_end != NULL;
    const clnet_history *h = p->history;
    r->first_epoch = h && h->count > 0 && h->epochs ? h->epochs[h->count - 1].epoch + 1 : 1;
    clnet_fit_event ev = event(r, 0);
    return run_hook(r, HOOK_TRAIN_BEGIN, &ev);
}

clnet_status clnet__fit_skip(clnet__fit_run *r, uint64_t *state, int64_t count)
{
    if (!r->p->initial_epoch || !r->p->shuffle)
        return CLNET_OK;
    int32_t *order = clnet__malloc((size_t)count * sizeof *order);
    if (!order)
        return clnet__error(r->m->ctx, CLNET_ERR_HOST_MEMORY,
                            "clnet_model_fit: out of host memory");
    for (int e = 0; e < r->p->initial_epoch; e++)
        clnet__sample_order(order, count, 1, state);
    clnet__free(order);
    return CLNET_OK;
}

clnet_status clnet__fit_epoch_begin(clnet__fit_run *r, int epoch)
{
    clnet_fit_event ev = event(r, epoch);
    clnet_status st = run_hook(r, HOOK_EPOCH_BEGIN, &ev);
    r->lr = clnet_model_learning_rate(r->m);
    return st;
}

clnet_status clnet__fit_batch_end(clnet__fit_run *r, const clnet_progress *pr)
{
    clnet_fit_event ev = event(r, pr->epoch);
    ev.progress = pr;
    return run_hook(r, HOOK_BATCH_END, &ev);
}

clnet_status clnet__fit_epoch_end(clnet__fit_run *r, const clnet_progress *pr)
{
    clnet_epoch_log log = { .epoch = r->first_epoch + pr->epoch - 1,
                            .loss = pr->loss,
                            .accuracy = pr->accuracy,
                            .val_loss = pr->val_loss,
                            .val_accuracy = pr->val_accuracy,
                            .lr = r->lr,
                            .seconds = pr->elapsed };
    clnet_fit_event ev = event(r, pr->epoch);
    ev.log = &log;
    clnet_status st = run_hook(r, HOOK_EPOCH_END, &ev);
    if (!st && r->p->history && clnet_history_append(r->p->history, &log))
        st = clnet__error(r->m->ctx, CLNET_ERR_HOST_MEMORY,
                          "clnet_model_fit: out of host memory for the history");
    return st;
}

clnet_status clnet__fit_end(clnet__fit_run *r, clnet_status st)
{
    if (st)
        return st;
    clnet_fit_event ev = event(r, 0);
    return run_hook(r, HOOK_TRAIN_END, &ev);
}
