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
    char (*names)[48] = clnet__calloc((size_t)(n ? n : 1), sizeof *names);
    clnet_status st = e && names ? CLNET_OK
                                 : clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "clnet_model_save: out of host memory");
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
                st = clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "clnet_model_save: out of host memory");
            else
                st = clnet_tensor_download(t, data, clnet_tensor_numel(t) * sizeof(float));
        }
    if (!st) {
        char err[1024];
        const char *meta[] = { "format", "clnet", "clnet_version", CLNET_VERSION_STRING, NULL };
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
            a += (size_t)snprintf(want + a, sizeof want - a, "%s%lld", d ? "x" : "", (long long)shape[d]);
        for (int d = 0; d < e->ndim && b < sizeof got; d++)
            b += (size_t)snprintf(got + b, sizeof got - b, "%s%lld", d ? "x" : "", (long long)e->shape[d]);
        return clnet__error(m->ctx, CLNET_ERR_SHAPE,
                            "clnet_model_load: %s: \"%s\" is %s [%s], the model needs F32 [%s]", path,
                            name, e->dtype, got, want);
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
