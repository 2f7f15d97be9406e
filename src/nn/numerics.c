/* clnet — the opt-in numerics check (CLNET_CHECK_NUMERICS=1): training stops
 * at the first non-finite loss or gradient with CLNET_ERR_NUMERICS and a
 * message naming the layer and the tensor. A debugging aid: each step reads
 * the loss and every trained gradient back to the host (one wait and a copy
 * the size of the parameters). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_impl.h"
#include "tensor/tensor_impl.h"

int clnet__numerics_enabled(void)
{
    const char *v = getenv("CLNET_CHECK_NUMERICS");
    return v && *v && strcmp(v, "0") != 0;
}

/* Whether a float32 tensor holds a NaN or an Inf; the first one's index and
 * value. */
static clnet_status scan(const clnet_tensor *t, int *bad, size_t *index, float *value)
{
    *bad = 0;
    if (!t || t->dtype != CLNET_F32 || t->numel == 0)
        return CLNET_OK;
    float *h = clnet__malloc(t->numel * sizeof *h);
    if (!h)
        return clnet__error(t->ctx, CLNET_ERR_HOST_MEMORY, "numerics check: out of host memory");
    clnet_status st = clnet_tensor_download(t, h, t->numel * sizeof *h);
    for (size_t i = 0; !st && i < t->numel && !*bad; i++)
        if (!isfinite(h[i])) {
            *bad = 1;
            *index = i;
            *value = h[i];
        }
    clnet__free(h);
    return st;
}

/* Called with a non-finite loss: names the first activation of the last
 * forward pass that holds a NaN or Inf (the input, or a layer's output). */
static clnet_status blame_forward(clnet_model *m, float loss)
{
    int bad = 0;
    size_t at = 0;
    float v = 0;
    clnet_status st = CLNET_OK;
    for (int i = 0; i < m->ninputs && !st; i++)
        if ((st = scan(m->x[i], &bad, &at, &v)) == CLNET_OK && bad)
            return clnet__error(
                m->ctx, CLNET_ERR_NUMERICS,
                "numerics check: the loss is %g; the input x%s holds %g at element %zu",
                (double)loss, m->ninputs > 1 ? " (one of them)" : "", (double)v, at);
    for (int a = 0; !st && a < m->napps; a++) {
        const clnet__layer *l = m->apps[a].l;
        int i = l->index;
        if ((st = scan(l->has_pre ? l->pre : NULL, &bad, &at, &v)) == CLNET_OK && bad)
            return clnet__error(m->ctx, CLNET_ERR_NUMERICS,
                                "numerics check: the loss is %g; layer %d (%s) first gives a "
                                "non-finite value: its pre-activation holds %g at element %zu",
                                (double)loss, i, l->name, (double)v, at);
        if (!st && (st = scan(m->nodes[m->apps[a].out].act, &bad, &at, &v)) == CLNET_OK && bad)
            return clnet__error(m->ctx, CLNET_ERR_NUMERICS,
                                "numerics check: the loss is %g; layer %d (%s) first gives a "
                                "non-finite value: its output holds %g at element %zu",
                                (double)loss, i, l->name, (double)v, at);
    }
    return st ? st
              : clnet__error(m->ctx, CLNET_ERR_NUMERICS,
                             "numerics check: the loss is %g, from finite outputs (check "
                             "the targets)",
                             (double)loss);
}

clnet_status clnet__check_loss(clnet_model *m)
{
    float loss;
    clnet_status st = clnet_tensor_download(m->loss, &loss, sizeof loss);
    return st ? st : isfinite(loss) ? CLNET_OK : blame_forward(m, loss);
}

clnet_status clnet__check_grads(clnet_model *m)
{
    /* Backward order: the first bad gradient is the one nearest the loss. */
    for (int i = m->nlayers - 1; i >= 0; i--) {
        const clnet__layer *l = m->layers[i];
        for (int k = 0; l->trainable && k < l->nparams; k++) {
            int bad;
            size_t at = 0;
            float v = 0;
            clnet_status st = scan(l->params[k].grad, &bad, &at, &v);
            if (st)
                return st;
            if (bad)
                return clnet__error(m->ctx, CLNET_ERR_NUMERICS,
                                    "numerics check: layer %d (%s): the gradient of \"%s\" holds "
                                    "%g at element %zu; the optimizer step was not taken",
                                    i, l->name, l->params[k].name, (double)v, at);
        }
    }
    return CLNET_OK;
}
