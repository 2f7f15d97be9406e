/* onnx-ref-check — the float64 ONNX interpreter of clnet-bench --onnx
 * (onnx-ref.c) against PyTorch: runs MODEL.onnx on IN.npy and compares
 * with OUT.npy (PyTorch's output for that input, tests/onnx/export_run.py).
 * The reference itself is checked, so that it and the importer cannot
 * share a mistake unseen. Prints the normwise relative error; exit status
 * 0 when it is at most 1e-6 (float32 PyTorch against float64: ~1e-7), 1
 * otherwise or on an error. A test program (tools/bench/test-onnx.sh).
 *   usage: onnx-ref-check MODEL.onnx IN.npy OUT.npy */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <clnet/clnet.h>
#include <clnet/npy.h>

#include "onnx-ref.h"

int main(int argc, char **argv)
{
    char err[1024];
    clnet_onnx_model *om = NULL;
    clnet_npy *x = NULL, *y = NULL;
    onnx_ref_value in = { 0 }, out[1] = { 0 };
    int rc = 1;
    if (argc != 4) {
        fprintf(stderr, "usage: onnx-ref-check MODEL.onnx IN.npy OUT.npy\n");
        return 2;
    }
    if (clnet_onnx_model_load(argv[1], &om, err, sizeof err) ||
        clnet_npy_load(argv[2], &x, err, sizeof err) ||
        clnet_npy_load(argv[3], &y, err, sizeof err)) {
        fprintf(stderr, "onnx-ref-check: %s\n", err);
        goto done;
    }
    const clnet_onnx_graph *g = clnet_onnx_model_graph(om);
    if (g->n_inputs != 1 || g->n_outputs != 1) {
        fprintf(stderr, "onnx-ref-check: %s: one input and one output wanted\n", argv[1]);
        goto done;
    }
    in.ndim = x->ndim;
    in.n = x->numel;
    for (int i = 0; i < x->ndim; i++)
        in.shape[i] = x->shape[i];
    in.d = malloc((in.n ? in.n : 1) * sizeof *in.d);
    if (!in.d)
        goto done;
    for (size_t i = 0; i < in.n; i++)
        in.d[i] = x->data[i];
    if (onnx_ref_run(om, 1, &in, out, NULL, err, sizeof err)) {
        fprintf(stderr, "onnx-ref-check: %s\n", err);
        goto done;
    }
    if (out[0].n != y->numel) {
        fprintf(stderr, "onnx-ref-check: %zu values, PyTorch %zu\n", out[0].n, y->numel);
        goto done;
    }
    double num = 0, den = 0;
    for (size_t i = 0; i < y->numel; i++) {
        double e = out[0].d[i] - y->data[i];
        num += e * e;
        den += out[0].d[i] * out[0].d[i];
    }
    double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    printf("onnx-ref-check: %s: normwise %.3g against PyTorch (limit 1e-6)\n", argv[1], rel);
    rc = !(rel <= 1e-6);
done:
    free(out[0].d);
    free(in.d);
    clnet_npy_free(y);
    clnet_npy_free(x);
    clnet_onnx_model_destroy(om);
    return rc;
}
