/* clnet fuzzing — libFuzzer target for the ONNX reader. No OpenCL: the
 * reader, protobuf-c and the host allocation wrappers only. Every input must
 * be parsed or rejected with a message; an accepted model must keep the
 * reader's promises (every node input defined earlier, tensor data of the
 * stated size, findable by name), and the support check must not crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clnet/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch_tensor(const clnet_onnx_tensor *t)
{
    size_t numel = 1;
    if (t->ndim < 0 || t->ndim > CLNET_ONNX_MAX_DIMS)
        abort();
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0)
            abort();
        numel *= (size_t)t->shape[d];
    }
    if (numel != t->numel || (t->dtype == CLNET_ONNX_FLOAT) != (t->f32 != NULL))
        abort();
    volatile unsigned char sink = 0;
    const unsigned char *p = t->f32 ? (const void *)t->f32 : (const void *)t->i64;
    size_t bytes = t->numel * (t->f32 ? 4 : 8);
    for (size_t b = 0; b < bytes; b += 64) /* every byte is readable */
        sink ^= p[b];
    if (bytes)
        sink ^= p[bytes - 1];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clnet_onnx_model *m = NULL;
    char err[512];
    err[0] = 0;
    /* No base directory: external data is refused, the fuzzer reads no files. */
    clnet_status s = clnet_onnx_model_parse(data, size, NULL, &m, err, sizeof err);
    if (s != CLNET_OK) {
        if (m || !err[0])
            abort(); /* a failure leaves no result and always says why */
        return 0;
    }
    const clnet_onnx_graph *g = clnet_onnx_model_graph(m);
    if (g->opset < CLNET_ONNX_MIN_OPSET || g->opset > CLNET_ONNX_MAX_OPSET || !g->n_outputs)
        abort();
    for (size_t i = 0; i < g->n_initializers; i++) {
        touch_tensor(&g->initializers[i]);
        if (clnet_onnx_model_find_tensor(m, g->initializers[i].name) != &g->initializers[i])
            abort();
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        const clnet_onnx_node *n = &g->nodes[i];
        if (!n->op_type[0])
            abort();
        for (size_t a = 0; a < n->n_attrs; a++)
            if (n->attrs[a].type == CLNET_ONNX_ATTR_TENSOR)
                touch_tensor(n->attrs[a].t);
        for (size_t k = 0; k < n->n_inputs; k++)
            if (strlen(n->inputs[k]) > size)
                abort();
    }
    clnet_onnx_model_check_supported(m, err, sizeof err);
    clnet_onnx_model_destroy(m);
    return 0;
}
