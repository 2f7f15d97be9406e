/* clnet — graph models (clnet/graph.h): nodes, the cursor, merge layers,
 * sampling, custom expressions, shared layers, several inputs and outputs.
 * Stubs until the graph core lands: every call refuses with
 * CLNET_ERR_UNSUPPORTED (the header's contracts are final). */
#include "clnet/graph.h"
#include "nn_impl.h"

#define STUB(m, f)                                                                                 \
    return (m) ? clnet__error((m)->ctx, CLNET_ERR_UNSUPPORTED, "%s: not implemented yet", f)      \
               : CLNET_ERR_INVALID_ARG

CLNET_API clnet_node clnet_model_node(const clnet_model *m)
{
    (void)m;
    return -1;
}

CLNET_API clnet_status clnet_model_set_node(clnet_model *m, clnet_node node)
{
    (void)node;
    STUB(m, "clnet_model_set_node");
}

CLNET_API clnet_status clnet_model_add_input(clnet_model *m, int ndim, const int64_t *shape,
                                             clnet_node *node)
{
    (void)ndim, (void)shape, (void)node;
    STUB(m, "clnet_model_add_input");
}

CLNET_API int clnet_model_input_count(const clnet_model *m)
{
    return m ? 1 : 0;
}

CLNET_API clnet_node clnet_model_input(const clnet_model *m, int index)
{
    return m && index == 0 ? 0 : -1;
}

CLNET_API int clnet_model_node_shape(const clnet_model *m, clnet_node node,
                                     int64_t shape[CLNET_MAX_DIMS])
{
    (void)m, (void)node, (void)shape;
    return 0;
}

CLNET_API int clnet_model_node_layer(const clnet_model *m, clnet_node node)
{
    (void)m, (void)node;
    return -1;
}

CLNET_API clnet_status clnet_model_add_merge(clnet_model *m, clnet_merge_op op, int n,
                                             const clnet_node *nodes)
{
    (void)op, (void)n, (void)nodes;
    STUB(m, "clnet_model_add_merge");
}

CLNET_API clnet_status clnet_model_add_concat(clnet_model *m, int axis, int n,
                                              const clnet_node *nodes)
{
    (void)axis, (void)n, (void)nodes;
    STUB(m, "clnet_model_add_concat");
}

CLNET_API clnet_status clnet_model_add_global_avgpool2d(clnet_model *m)
{
    STUB(m, "clnet_model_add_global_avgpool2d");
}

CLNET_API clnet_status clnet_model_add_sampling(clnet_model *m, clnet_node mean, clnet_node logvar,
                                                float kl_weight)
{
    (void)mean, (void)logvar, (void)kl_weight;
    STUB(m, "clnet_model_add_sampling");
}

CLNET_API clnet_status clnet_model_hold_noise(clnet_model *m, int hold)
{
    (void)hold;
    STUB(m, "clnet_model_hold_noise");
}

CLNET_API clnet_status clnet_model_add_expression(clnet_model *m, const char *name,
                                                  const char *fwd_expr, const char *bwd_expr)
{
    (void)name, (void)fwd_expr, (void)bwd_expr;
    STUB(m, "clnet_model_add_expression");
}

CLNET_API clnet_status clnet_model_reuse(clnet_model *m, int layer)
{
    (void)layer;
    STUB(m, "clnet_model_reuse");
}

CLNET_API clnet_status clnet_model_set_outputs(clnet_model *m, int n, const clnet_node *nodes)
{
    (void)n, (void)nodes;
    STUB(m, "clnet_model_set_outputs");
}

CLNET_API int clnet_model_output_count(const clnet_model *m)
{
    return m ? 1 : 0;
}

CLNET_API clnet_node clnet_model_output(const clnet_model *m, int index)
{
    (void)m, (void)index;
    return -1;
}

CLNET_API clnet_status clnet_model_forward_multi(clnet_model *m, int nx,
                                                 const clnet_tensor *const *x, int training)
{
    (void)nx, (void)x, (void)training;
    STUB(m, "clnet_model_forward_multi");
}

CLNET_API clnet_status clnet_model_output_tensor(clnet_model *m, int k, const clnet_tensor **y,
                                                 const clnet_tensor **logits)
{
    (void)k, (void)y, (void)logits;
    STUB(m, "clnet_model_output_tensor");
}

CLNET_API clnet_status clnet_model_node_tensor(clnet_model *m, clnet_node node,
                                               const clnet_tensor **value)
{
    (void)node, (void)value;
    STUB(m, "clnet_model_node_tensor");
}

CLNET_API clnet_status clnet_model_backward_multi(clnet_model *m, int ny,
                                                  const clnet_tensor *const *dlogits, int nx,
                                                  const clnet_tensor **dx)
{
    (void)ny, (void)dlogits, (void)nx, (void)dx;
    STUB(m, "clnet_model_backward_multi");
}

CLNET_API clnet_status clnet_model_train_on_batch_multi(clnet_model *m, int nx,
                                                        const clnet_tensor *const *x, int ny,
                                                        const clnet_tensor *const *y,
                                                        double *loss)
{
    (void)nx, (void)x, (void)ny, (void)y, (void)loss;
    STUB(m, "clnet_model_train_on_batch_multi");
}

CLNET_API clnet_status clnet_model_extra_loss(clnet_model *m, double *loss)
{
    (void)loss;
    STUB(m, "clnet_model_extra_loss");
}
