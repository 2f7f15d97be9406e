/* clnet — training state for resuming (include/clnet/callbacks.h): the
 * parameters, the optimizer's moments, step count, dropout counter, seed
 * and epoch in one safetensors file, and the built-in callbacks' state
 * (metadata "callback.KIND.K", early stopping's best weights as the tensor
 * "callback.KIND.K.best_weights"), so a fit continued from it with
 * initial_epoch gives the same weights, bit for bit, as one never stopped. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clnet/callbacks.h"
#include "clnet/safetensors.h"
#include "fit_hooks.h"
#include "nn_impl.h"

#define STATE_FORMAT "clnet-training-state-1"

/* Every tensor of the state in a fixed order: value, then m and v when the
 * optimizer keeps them. */
typedef struct state_tensor {
    char name[64];
    clnet_tensor *t;
} state_tensor;

static int list_state(const clnet_model *m, state_tensor *out)
{
    int n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++) {
            clnet__param *q = &m->layers[i]->params[k];
            clnet_tensor *ts[3] = { q->value, q->m, q->v };
            static const char *suffix[3] = { "", ".optimizer_m", ".optimizer_v" };
            for (int j = 0; j < 3; j++)
                if (ts[j]) {
                    if (out) {
                        snprintf(out[n].name, sizeof out[n].name, "layers.%d.%s%s", i, q->name,
                                 suffix[j]);
                        out[n].t = ts[j];
                    }
                    n++;
                }
        }
    return n;
}

/* What the callbacks add: metadata pairs and best-weight tensors. */
typedef struct callback_state {
    char key[64], value[160], tensor[80];
} callback_state;

CLNET_API clnet_status clnet_model_save_training_state(const clnet_model *m, const char *path,
                                                       int epoch)
{
    return clnet__save_training_state(m, path, epoch, NULL, 0);
}

clnet_status clnet__save_training_state(const clnet_model *m, const char *path, int epoch,
                                        const clnet_callback *cbs, int ncbs)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, path != NULL && epoch >= 0 && ncbs >= 0 && (cbs || !ncbs));
    if (!m->compiled)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_save_training_state: compile the model first");
    int n = list_state(m, NULL), nt = n, nm = 0;
    state_tensor *ts = clnet__calloc((size_t)n + 1, sizeof *ts);
    clnet_safetensors_entry_in *e = clnet__calloc((size_t)(n + ncbs) + 1, sizeof *e);
    callback_state *cs = clnet__calloc((size_t)ncbs + 1, sizeof *cs);
    const char **meta = clnet__calloc(14 + 2 * (size_t)ncbs, sizeof *meta);
    clnet_status st = ts && e && cs && meta
                          ? CLNET_OK
                          : clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY,
                                         "clnet_model_save_training_state: out of host memory");
    if (!st)
        list_state(m, ts);
    for (int i = 0; i < n && !st; i++) {
        size_t numel = clnet_tensor_numel(ts[i].t);
        void *data = clnet__malloc(numel * sizeof(float) + 1);
        e[i].name = ts[i].name;
        e[i].dtype = CLNET_F32;
        e[i].ndim = clnet_tensor_shape(ts[i].t, e[i].shape);
        e[i].data = data;
        st = data ? clnet_tensor_download(ts[i].t, data, numel * sizeof(float))
                  : clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY,
                                 "clnet_model_save_training_state: out of host memory");
    }
    if (!st) {
        char steps[32], drops[32], seed[32], ep[16], opt[16], err[1024];
        snprintf(steps, sizeof steps, "%" PRId64, m->step_count);
        snprintf(drops, sizeof drops, "%" PRIu64, m->dropout_calls);
        snprintf(seed, sizeof seed, "%" PRIu64, m->seed);
        snprintf(ep, sizeof ep, "%d", epoch);
        snprintf(opt, sizeof opt, "%d", (int)m->compile.optimizer);
        const char *fixed[] = { "format", STATE_FORMAT, "step_count", steps, "dropout_calls", drops,
                                "seed",   seed,         "epoch",      ep,    "optimizer",     opt };
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
            meta[nm++] = fixed[i];
        for (int i = 0; i < ncbs; i++) {
            const float *w;
            size_t nw;
            if (!clnet__callback_key(cbs, i, cs[i].key, sizeof cs[i].key))
                continue;
            clnet__callback_state(&cbs[i], cs[i].value, sizeof cs[i].value, &w, &nw);
            meta[nm++] = cs[i].key;
            meta[nm++] = cs[i].value;
            if (w) { /* borrowed from the callback: not freed below */
                snprintf(cs[i].tensor, sizeof cs[i].tensor, "%s.best_weights", cs[i].key);
                e[nt++] = (clnet_safetensors_entry_in){ .name = cs[i].tensor,
                                                        .dtype = CLNET_F32,
                                                        .ndim = 1,
                                                        .shape = { (int64_t)nw },
                                                        .data = w };
            }
        }
        meta[nm] = NULL;
        if ((st = clnet_safetensors_write(path, e, (size_t)nt, meta, err, sizeof err)))
            clnet__error(m->ctx, st, "clnet_model_save_training_state: %s", err);
    }
    for (int i = 0; e && i < n; i++)
        clnet__free((void *)e[i].data);
    clnet__free(meta);
    clnet__free(cs);
    clnet__free(e);
    clnet__free(ts);
    return st;
}

static int is_callback_entry(const char *name)
{
    return !strncmp(name, "callback.", 9);
}

/* An unsigned decimal metadata value; 0 if missing or malformed. */
static int meta_u64(const clnet_safetensors *f, const char *key, uint64_t *out)
{
    const char *v = clnet_safetensors_metadata(f, key);
    char *end;
    if (!v || !*v || *v == '-')
        return 0;
    *out = strtoull(v, &end, 10);
    return *end == 0;
}

CLNET_API clnet_status clnet_model_load_training_state(clnet_model *m, const char *path, int *epoch)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, path != NULL && epoch != NULL);
    if (!m->compiled)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_model_load_training_state: compile the model first");
    char err[1024];
    clnet_safetensors *f = NULL;
    clnet_status st = clnet_safetensors_load(path, &f, err, sizeof err);
    if (st)
        return clnet__error(m->ctx, st, "clnet_model_load_training_state: %s", err);
    uint64_t steps, drops, seed, ep, opt;
    const char *format = clnet_safetensors_metadata(f, "format");
    int n = list_state(m, NULL);
    state_tensor *ts = clnet__calloc((size_t)n + 1, sizeof *ts);
    if (!ts) {
        st = clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY,
                          "clnet_model_load_training_state: out of host memory");
        goto done;
    }
    if (!format || strcmp(format, STATE_FORMAT) || !meta_u64(f, "step_count", &steps) ||
        !meta_u64(f, "dropout_calls", &drops) || !meta_u64(f, "seed", &seed) ||
        !meta_u64(f, "epoch", &ep) || ep > INT32_MAX || steps > INT64_MAX ||
        !meta_u64(f, "optimizer", &opt)) {
        st = clnet__error(m->ctx, CLNET_ERR_FORMAT,
                          "clnet_model_load_training_state: %s is not a training state saved by "
                          "clnet_model_save_training_state (metadata format \"%s\")",
                          path, format ? format : "missing");
        goto done;
    }
    if (opt != (uint64_t)m->compile.optimizer) {
        st = clnet__error(
            m->ctx, CLNET_ERR_INVALID_ARG,
            "clnet_model_load_training_state: %s was saved with optimizer %d, the model "
            "is compiled with %d",
            path, (int)opt, (int)m->compile.optimizer);
        goto done;
    }
    list_state(m, ts);
    /* Every check first, so a bad file leaves the model as it was. */
    for (int i = 0; i < n && !st; i++) {
        const clnet_safetensors_entry *e = clnet_safetensors_find(f, ts[i].name);
        int64_t shape[CLNET_MAX_DIMS];
        int nd = clnet_tensor_shape(ts[i].t, shape);
        int same = e && !strcmp(e->dtype, "F32") && e->ndim == nd;
        for (int d = 0; same && d < nd; d++)
            same = e->shape[d] == shape[d];
        if (!same)
            st = clnet__error(m->ctx, e ? CLNET_ERR_SHAPE : CLNET_ERR_FORMAT,
                              "clnet_model_load_training_state: %s: \"%s\" is %s; the model needs "
                              "F32 of %zu values",
                              path, ts[i].name, e ? "of another shape or type" : "missing",
                              clnet_tensor_numel(ts[i].t));
    }
    size_t own = 0; /* the model's tensors, without the callbacks' */
    for (size_t i = 0; i < f->count; i++)
        own += !is_callback_entry(f->entries[i].name);
    if (!st && own != (size_t)n)
        st =
            clnet__error(m->ctx, CLNET_ERR_FORMAT,
                         "clnet_model_load_training_state: %s holds %zu tensors, the model's state "
                         "%d: it was saved from another model or optimizer",
                         path, own, n);
    for (int i = 0; i < n && !st; i++) {
        const clnet_safetensors_entry *e = clnet_safetensors_find(f, ts[i].name);
        st = clnet_tensor_upload(ts[i].t, e->data, e->size);
    }
    if (!st) {
        m->step_count = (int64_t)steps;
        m->dropout_calls = drops;
        m->seed = seed;
        *epoch = (int)ep;
    }
done:
    clnet__free(ts);
    clnet_safetensors_free(f);
    return st;
}

CLNET_API clnet_status clnet_callback_load_state(clnet_model *m, const char *path,
                                                 clnet_callback *cbs, int n)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, path != NULL && n >= 0 && (cbs != NULL || n == 0));
    char err[1024];
    clnet_safetensors *f = NULL;
    clnet_status st = clnet_safetensors_load(path, &f, err, sizeof err);
    if (st)
        return clnet__error(m->ctx, st, "clnet_callback_load_state: %s", err);
    const char *format = clnet_safetensors_metadata(f, "format");
    if (!format || strcmp(format, STATE_FORMAT))
        st = clnet__error(m->ctx, CLNET_ERR_FORMAT,
                          "clnet_callback_load_state: %s is not a training state saved by "
                          "clnet_model_save_training_state (metadata format \"%s\")",
                          path, format ? format : "missing");
    /* Two passes: every check, then every change. */
    for (int apply = 0; apply < 2 && !st; apply++)
        for (int i = 0; i < n && !st; i++) {
            char key[64], tensor[80];
            if (!clnet__callback_key(cbs, i, key, sizeof key))
                continue;
            const char *text = clnet_safetensors_metadata(f, key);
            if (!text)
                continue; /* none saved: it starts afresh */
            snprintf(tensor, sizeof tensor, "%s.best_weights", key);
            const clnet_safetensors_entry *w = clnet_safetensors_find(f, tensor);
            int usable = w && !strcmp(w->dtype, "F32") && w->ndim == 1;
            st = clnet__callback_restore(m, &cbs[i], key, text, usable ? w->data : NULL,
                                         usable ? w->numel : 0, apply);
        }
    clnet_safetensors_free(f);
    return st;
}
