/* clnet-run — runs an ONNX model on an OpenCL device: NumPy .npy inputs in,
 * .npy outputs out (include/clnet/onnx_import.h, include/clnet/npy.h).
 * Public API only. Exit status: 0 done, 1 the model or the device failed,
 * 2 bad usage or an unusable path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clnet/clnet.h>

#include "cli.h"
#include "outfile.h"

#define P "clnet-run"
#define MAX_IO CLNET_MODEL_MAX_IO

static void usage(FILE *f)
{
    fprintf(f, "usage: " P " MODEL.onnx --input [NAME=]FILE.npy [...] --output [NAME=]FILE.npy "
               "[...] [--device SPEC]\n"
               "  Inputs and outputs go by the model's order, or by NAME=. float32 .npy only;\n"
               "  the first dim of each input is the batch. SPEC: gpu, cpu, P:D or a name.\n");
}

/* One --input or --output: an optional NAME= and a path. */
typedef struct io_arg {
    const char *name; /* NULL: by order; else name_len bytes of argv */
    size_t name_len;
    const char *path;
} io_arg;

static void split(const char *text, io_arg *a)
{
    const char *eq = strchr(text, '=');
    const char *dot = strrchr(text, '.');
    /* NAME=FILE; a path with '=' before its extension and no NAME is rare
     * enough that NAME= wins (the name is then checked against the model). */
    a->name = NULL;
    a->name_len = 0;
    a->path = text;
    if (eq && eq != text && (!dot || eq < dot)) {
        a->name = text;
        a->name_len = (size_t)(eq - text);
        a->path = eq + 1;
    }
}

/* The index of the model's value named `name` among n values, -1 if none. */
static int find_value(const clnet_onnx_value *v, size_t n, const io_arg *a)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i].name) == a->name_len && !strncmp(v[i].name, a->name, a->name_len))
            return (int)i;
    return -1;
}

/* Orders the arguments as the model's values: slot[i] is the argument of
 * value i. 0 after a message. */
static int match(const char *option, const io_arg *args, int nargs, const clnet_onnx_value *v,
                 size_t nv, int *slot)
{
    for (size_t i = 0; i < nv; i++)
        slot[i] = -1;
    for (int a = 0; a < nargs; a++) {
        int i = args[a].name ? find_value(v, nv, &args[a]) : a;
        if (i < 0 || i >= (int)nv) {
            /* name, when set, starts the argument's text: NAME=FILE. */
            fprintf(stderr, P ": %s %s: the model has %zu %s (", option,
                    args[a].name ? args[a].name : args[a].path, nv,
                    option[2] == 'i' ? "inputs" : "outputs");
            for (size_t k = 0; k < nv; k++)
                fprintf(stderr, "%s%s", k ? ", " : "", v[k].name);
            fprintf(stderr, ")\n");
            return 0;
        }
        if (slot[i] >= 0) {
            fprintf(stderr, P ": %s: '%s' is given twice\n", option, v[i].name);
            return 0;
        }
        slot[i] = a;
    }
    return 1;
}

int main(int argc, char **argv)
{
    io_arg in[MAX_IO], out[MAX_IO];
    int nin = 0, nout = 0;
    const char *model = NULL, *device = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        int is_in = !strcmp(a, "--input"), is_out = !strcmp(a, "--output");
        if (is_in || is_out || !strcmp(a, "--device")) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                fprintf(stderr, P ": %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (!is_in && !is_out) {
                if (!cli_device(P, a, v))
                    return 2;
                device = v;
            } else if ((is_in ? nin : nout) >= MAX_IO) {
                fprintf(stderr, P ": at most %d %s\n", MAX_IO, a);
                return 2;
            } else {
                split(v, is_in ? &in[nin++] : &out[nout++]);
            }
        } else if (a[0] == '-' || model) {
            fprintf(stderr, P ": unexpected argument \"%s\"\n", a);
            usage(stderr);
            return 2;
        } else {
            model = a;
        }
    }
    if (!model || !nin || !nout) {
        fprintf(stderr, P ": needs MODEL.onnx, --input and --output\n");
        usage(stderr);
        return 2;
    }
    /* Every path before any work. */
    if (!in_check(P, "MODEL", model))
        return 2;
    for (int i = 0; i < nin; i++)
        if (!in_check(P, "--input", in[i].path))
            return 2;
    for (int i = 0; i < nout; i++)
        if (!out_check(P, "--output", out[i].path))
            return 2;

    char err[2048];
    clnet_onnx_model *om;
    if (clnet_onnx_model_load(model, &om, err, sizeof err)) {
        fprintf(stderr, P ": %s\n", err);
        return 1;
    }
    const clnet_onnx_graph *g = clnet_onnx_model_graph(om);
    int islot[MAX_IO], oslot[MAX_IO];
    if (g->n_inputs > MAX_IO || g->n_outputs > MAX_IO ||
        !match("--input", in, nin, g->inputs, g->n_inputs, islot) ||
        !match("--output", out, nout, g->outputs, g->n_outputs, oslot)) {
        clnet_onnx_model_destroy(om);
        return 2;
    }
    for (size_t i = 0; i < g->n_inputs; i++)
        if (islot[i] < 0) {
            fprintf(stderr, P ": no --input for the model's input '%s'\n", g->inputs[i].name);
            clnet_onnx_model_destroy(om);
            return 2;
        }
    int rc = 1, nx = (int)g->n_inputs;
    clnet_npy *arr[MAX_IO] = { NULL };
    clnet_tensor *x[MAX_IO] = { NULL };
    clnet_context *ctx = NULL;
    clnet_model *m = NULL;
    float *host = NULL;
    for (int i = 0; i < nx; i++)
        if (clnet_npy_load(in[islot[i]].path, &arr[i], err, sizeof err)) {
            fprintf(stderr, P ": %s\n", err);
            goto done;
        }
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = device;
    p.log = cli_log_reports;
    if (clnet_context_create(&p, &ctx, err, sizeof err)) {
        fprintf(stderr, P ": %s\n", err);
        goto done;
    }
    if (clnet_onnx_import(ctx, om, &m, err, sizeof err)) {
        fprintf(stderr, P ": %s: %s\n", model, err);
        goto done;
    }
    for (int i = 0; i < nx; i++) {
        if (clnet_tensor_create(ctx, CLNET_F32, arr[i]->ndim, arr[i]->shape, &x[i]) ||
            clnet_tensor_upload(x[i], arr[i]->data, arr[i]->numel * sizeof(float))) {
            fprintf(stderr, P ": input '%s': %s\n", g->inputs[i].name, clnet_context_errmsg(ctx));
            goto done;
        }
    }
    if (clnet_model_forward_multi(m, nx, (const clnet_tensor *const *)x, 0)) {
        fprintf(stderr, P ": %s\n", clnet_context_errmsg(ctx));
        goto done;
    }
    for (size_t k = 0; k < g->n_outputs; k++) {
        if (oslot[k] < 0)
            continue;
        const clnet_tensor *y;
        int64_t shape[CLNET_MAX_DIMS];
        if (clnet_model_output_tensor(m, (int)k, &y, NULL)) {
            fprintf(stderr, P ": %s\n", clnet_context_errmsg(ctx));
            goto done;
        }
        int nd = clnet_tensor_shape(y, shape);
        size_t n = clnet_tensor_numel(y);
        free(host);
        if (!(host = malloc(n * sizeof(float) + 1))) {
            fprintf(stderr, P ": out of memory\n");
            goto done;
        }
        if (clnet_tensor_download(y, host, n * sizeof(float))) {
            fprintf(stderr, P ": %s\n", clnet_context_errmsg(ctx));
            goto done;
        }
        if (clnet_npy_write(out[oslot[k]].path, nd, shape, host, err, sizeof err)) {
            fprintf(stderr, P ": %s\n", err);
            goto done;
        }
    }
    rc = 0;
done:
    free(host);
    for (int i = 0; i < nx; i++) {
        clnet_tensor_destroy(x[i]);
        clnet_npy_free(arr[i]);
    }
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
    clnet_onnx_model_destroy(om);
    return rc;
}
