/* clnet — model weights as safetensors: "layers.<i>.<param>", PyTorch
 * layouts (docs/weights.md). A load checks everything before it changes
 * anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clnet/safetensors.h"
#include "clnet/version.h"
#include "nn_impl.h"
#include "tensor/tensor_impl.h"

static int param_total(const clnet_model *m)
{
    int n = 0;
    for (int i = 0; i < m->nlayers; i++)
        n += m->layers[i]->nparams;
    return n;
}

CLNET_API clnet_status clnet_model_save(const clnet_model *m, const char *path)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, path != NULL);
    int n = param_total(m), k = 0;
    clnet_safetensors_entry_in *e = clnet__calloc((size_t)(n ? n : 1), sizeof *e);
    char(*names)[48] = clnet__calloc((size_t)(n ? n : 1), sizeof *names);
    clnet_status st = e && names ? CLNET_OK
                                 : clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY,
                                                "clnet_model_save: out of host memory");
    for (int i = 0; i < m->nlayers && !st; i++)
        for (int p = 0; p < m->layers[i]->nparams && !st; p++, k++) {
            const clnet_tensor *t = m->layers[i]->params[p].value;
            snprintf(names[k], sizeof names[k], "layers.%d.%s", i, m->layers[i]->params[p].name);
            e[k].name = names[k];
            e[k].dtype = CLNET_F32;
            e[k].ndim = clnet_tensor_shape(t, e[k].shape);
            void *data = clnet__malloc(clnet_tensor_numel(t) * sizeof(float) + 1);
            e[k].data = data;
            if (!data)
                st = clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY,
                                  "clnet_model_save: out of host memory");
            else
                st = clnet_tensor_download(t, data, clnet_tensor_numel(t) * sizeof(float));
        }
    if (!st) {
        char err[1024];
        /* "pt": the layouts are PyTorch's, and Hugging Face loaders look for it. */
        const char *meta[] = { "format", "pt", "clnet_version", CLNET_VERSION_STRING, NULL };
        if ((st = clnet_safetensors_write(path, e, (size_t)n, meta, err, sizeof err)))
            clnet__error(m->ctx, st, "clnet_model_save: %s", err);
    }
    for (int i = 0; e && i < k; i++)
        clnet__free((void *)e[i].data);
    clnet__free(e);
    clnet__free(names);
    return st;
}

/* Checks that entry e fits parameter t; records the mismatch. */
static clnet_status check_entry(const clnet_model *m, const char *path, const char *name,
                                const clnet_safetensors_entry *e, const clnet_tensor *t)
{
    if (!e)
        return clnet__error(m->ctx, CLNET_ERR_FORMAT, "clnet_model_load: %s has no tensor \"%s\"",
                            path, name);
    int64_t shape[CLNET_MAX_DIMS];
    int nd = clnet_tensor_shape(t, shape);
    int same = strcmp(e->dtype, "F32") == 0 && e->ndim == nd;
    for (int d = 0; same && d < nd; d++)
        same = e->shape[d] == shape[d];
    if (!same) {
        char want[96] = "", got[96] = "";
        size_t a = 0, b = 0;
        for (int d = 0; d < nd && a < sizeof want; d++)
            a += (size_t)snprintf(want + a, sizeof want - a, "%s%lld", d ? "x" : "",
                                  (long long)shape[d]);
        for (int d = 0; d < e->ndim && b < sizeof got; d++)
            b += (size_t)snprintf(got + b, sizeof got - b, "%s%lld", d ? "x" : "",
                                  (long long)e->shape[d]);
        return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                            "clnet_model_load: %s: \"%s\" is %s [%s], the model needs F32 [%s]",
                            path, name, e->dtype, got, want);
    }
    return CLNET_OK;
}

CLNET_API clnet_status clnet_model_load(clnet_model *m, const char *path)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, path != NULL);
    char err[1024];
    clnet_safetensors *st_file = NULL;
    clnet_status st = clnet_safetensors_load(path, &st_file, err, sizeof err);
    if (st)
        return clnet__error(m->ctx, st, "clnet_model_load: %s", err);
    char name[48];
    int matched = 0;
    /* Every check first, so a bad file leaves the model as it was. */
    for (int i = 0; i < m->nlayers && !st; i++)
        for (int p = 0; p < m->layers[i]->nparams && !st; p++, matched++) {
            snprintf(name, sizeof name, "layers.%d.%s", i, m->layers[i]->params[p].name);
            st = check_entry(m, path, name, clnet_safetensors_find(st_file, name),
                             m->layers[i]->params[p].value);
        }
    if (!st && (size_t)matched != st_file->count)
        st = clnet__error(m->ctx, CLNET_ERR_FORMAT,
                          "clnet_model_load: %s holds %zu tensors, the model has %d parameters: "
                          "it was saved from another model",
                          path, st_file->count, matched);
    for (int i = 0; i < m->nlayers && !st; i++)
        for (int p = 0; p < m->layers[i]->nparams && !st; p++) {
            snprintf(name, sizeof name, "layers.%d.%s", i, m->layers[i]->params[p].name);
            const clnet_safetensors_entry *e = clnet_safetensors_find(st_file, name);
            st = clnet_tensor_upload(m->layers[i]->params[p].value, e->data, e->size);
        }
    clnet_safetensors_free(st_file);
    return st;
}

/* ---- Parameters in memory --------------------------------------------------------- */

CLNET_API clnet_status clnet_model_layer_index(const clnet_model *m, const char *name, int *index)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, index != NULL);
    *index = -1;
    CLNET_CHECK_ARG(m->ctx, name != NULL);
    for (int i = 0; i < m->nlayers; i++)
        if (!strcmp(m->layers[i]->name, name)) {
            *index = i;
            return CLNET_OK;
        }
    return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                        "clnet_model_layer_index: the model has no layer named \"%s\"", name);
}

CLNET_API const char *clnet_model_layer_name(const clnet_model *m, int layer)
{
    return m && layer >= 0 && layer < m->nlayers ? m->layers[layer]->name : NULL;
}

/* Parameter `name` of layer `layer`, or an error naming what exists. */
static clnet_status find_param(const clnet_model *m, const char *func, int layer, const char *name,
                               clnet__param **out)
{
    *out = NULL;
    if (layer < 0 || layer >= m->nlayers)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG, "%s: layer %d outside [0, %d)", func,
                            layer, m->nlayers);
    clnet__layer *l = m->layers[layer];
    char have[128] = "";
    size_t n = 0;
    for (int p = 0; p < l->nparams; p++) {
        if (name && !strcmp(l->params[p].name, name)) {
            *out = &l->params[p];
            return CLNET_OK;
        }
        if (n < sizeof have)
            n += (size_t)snprintf(have + n, sizeof have - n, "%s\"%s\"", p ? ", " : "",
                                  l->params[p].name);
    }
    return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                        "%s: layer %d (%s) has no parameter \"%s\" (it has %s)", func, layer,
                        l->name, name ? name : "(null)", l->nparams ? have : "none");
}

static clnet_status find_tensor(const clnet_model *m, const char *func, int layer, const char *name,
                                int grad, clnet_tensor **out)
{
    clnet__param *p;
    clnet_status st = find_param(m, func, layer, name, &p);
    if (st)
        return st;
    if (grad && !p->grad)
        return clnet__error(m->ctx, CLNET_ERR_INVALID_ARG,
                            "%s: layer %d (%s): \"%s\" is not trained and has no gradient", func,
                            layer, m->layers[layer]->name, name);
    *out = grad ? p->grad : p->value;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_model_param(clnet_model *m, int layer, const char *name,
                                         clnet_tensor **value)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, value != NULL);
    *value = NULL;
    return find_tensor(m, "clnet_model_param", layer, name, 0, value);
}

CLNET_API clnet_status clnet_model_grad(clnet_model *m, int layer, const char *name,
                                        clnet_tensor **grad)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    CLNET_CHECK_ARG(m->ctx, grad != NULL);
    *grad = NULL;
    return find_tensor(m, "clnet_model_grad", layer, name, 1, grad);
}

static void shape_text(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t n = (size_t)snprintf(buf, size, "(");
    for (int d = 0; d < ndim && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (n < size)
        snprintf(buf + n, size - n, ")");
}

/* Copies count floats of parameter (or gradient) out to dst. */
static clnet_status get_host(const clnet_model *m, const char *func, int layer, const char *name,
                             int grad, float *dst, size_t count)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet_tensor *t;
    clnet_status st = find_tensor(m, func, layer, name, grad, &t);
    if (st)
        return st;
    CLNET_CHECK_ARG(m->ctx, dst != NULL);
    if (count != t->numel) {
        char want[96];
        shape_text(want, sizeof want, t->ndim, t->shape);
        return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                            "%s: layer %d (%s) \"%s\" is %s, %zu floats; dst holds %zu", func,
                            layer, m->layers[layer]->name, name, want, t->numel, count);
    }
    return clnet_tensor_download(t, dst, count * sizeof *dst);
}

/* Copies src, of the given shape, into the parameter (or gradient). */
static clnet_status set_host(clnet_model *m, const char *func, int layer, const char *name,
                             int grad, int ndim, const int64_t *shape, const float *src)
{
    CLNET_CHECK_ARG(NULL, m != NULL);
    clnet_tensor *t;
    clnet_status st = find_tensor(m, func, layer, name, grad, &t);
    if (st)
        return st;
    CLNET_CHECK_ARG(m->ctx, src != NULL && shape != NULL);
    int same = ndim == t->ndim;
    for (int d = 0; same && d < ndim; d++)
        same = shape[d] == t->shape[d];
    if (!same) {
        char want[96], got[96];
        shape_text(want, sizeof want, t->ndim, t->shape);
        shape_text(got, sizeof got, ndim >= 0 && ndim <= CLNET_MAX_DIMS ? ndim : 0, shape);
        return clnet__error(
            m->ctx, CLNET_ERR_SHAPE, "%s: layer %d (%s) \"%s\" is %s; the data given is %s%s", func,
            layer, m->layers[layer]->name, name, want, got,
            ndim == 2 && t->ndim == 2 && shape[0] == t->shape[1] && shape[1] == t->shape[0]
                ? " (transposed: clnet keeps PyTorch's layouts, docs/weights.md)"
                : "");
    }
    return clnet_tensor_upload(t, src, t->numel * sizeof *src);
}

CLNET_API clnet_status clnet_model_get_param(const clnet_model *m, int layer, const char *name,
                                             float *dst, size_t count)
{
    return get_host(m, "clnet_model_get_param", layer, name, 0, dst, count);
}

CLNET_API clnet_status clnet_model_set_param(clnet_model *m, int layer, const char *name, int ndim,
                                             const int64_t *shape, const float *src)
{
    return set_host(m, "clnet_model_set_param", layer, name, 0, ndim, shape, src);
}

CLNET_API clnet_status clnet_model_get_grad(const clnet_model *m, int layer, const char *name,
                                            float *dst, size_t count)
{
    return get_host(m, "clnet_model_get_grad", layer, name, 1, dst, count);
}

CLNET_API clnet_status clnet_model_set_grad(clnet_model *m, int layer, const char *name, int ndim,
                                            const int64_t *shape, const float *src)
{
    return set_host(m, "clnet_model_set_grad", layer, name, 1, ndim, shape, src);
}
