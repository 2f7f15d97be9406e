/* clnet tests — the ONNX reader (suite "onnx", host only): models exported
 * from PyTorch at test time (tests/onnx/export.py) read back node by node and
 * weight by weight, the table of supported ops against docs/onnx.md, and the
 * API's contracts. The malformed-file corpus is in test-onnx-corpus.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "clnet/onnx.h"

void onnx_add_corpus_tests(Suite *s);

/* The source tree: CLNET_SOURCE_ROOT, or the parent of CLNET_SOURCE_CL_DIR. */
static void source_path(char *buf, size_t n, const char *rel)
{
    const char *root = getenv("CLNET_SOURCE_ROOT");
    if (root)
        snprintf(buf, n, "%s/%s", root, rel);
    else
        snprintf(buf, n, "%s/../%s",
                 getenv("CLNET_SOURCE_CL_DIR") ? getenv("CLNET_SOURCE_CL_DIR") : ".", rel);
}

/* ---- Models exported from PyTorch ----------------------------------------- */

static char export_dir[256];
static int export_rc = -1;

/* Unchecked fixture: runs once, in the runner, before the tests fork. */
static void export_models(void)
{
    const char *python = getenv("CLNET_TEST_PYTHON");
    char script[1024], cmd[2048];
    source_path(script, sizeof script, "tests/onnx/export.py");
    snprintf(export_dir, sizeof export_dir, "%s/clnet-onnx.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(export_dir)) {
        export_rc = errno;
        return;
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s'", python ? python : "/usr/bin/python3", script,
             export_dir);
    export_rc = system(cmd);
}

static void remove_models(void)
{
    char cmd[512];
    if (export_dir[0] && strstr(export_dir, "clnet-onnx.")) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", export_dir);
        if (system(cmd))
            fprintf(stderr, "test-onnx: could not remove %s\n", export_dir);
    }
}

/* What export.py printed about one model. */
typedef struct expect_init {
    char name[64];
    int ndim;
    int64_t shape[8];
    double v[4];
} expect_init;

typedef struct expect {
    char file[64];
    size_t nodes;
    char ops[4096];
    size_t n_init;
    expect_init init[16];
} expect;

static void read_expect(const char *model, expect *e)
{
    char path[512], line[8192], kind[16], name[64];
    ck_assert_msg(export_rc == 0,
                  "tests/onnx/export.py failed (%d): needs /usr/bin/python3 with "
                  "torch (Debian's python3-torch) or CLNET_TEST_PYTHON",
                  export_rc);
    snprintf(path, sizeof path, "%s/expect.txt", export_dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    memset(e, 0, sizeof *e);
    while (fgets(line, sizeof line, f)) {
        int off = 0;
        if (sscanf(line, "%15s %63s %n", kind, name, &off) < 2 || strcmp(name, model))
            continue;
        char *rest = line + off;
        rest[strcspn(rest, "\n")] = 0;
        if (!strcmp(kind, "model"))
            ck_assert_int_eq(sscanf(rest, "%63s %zu", e->file, &e->nodes), 2);
        else if (!strcmp(kind, "ops"))
            snprintf(e->ops, sizeof e->ops, "%s", rest);
        else if (!strcmp(kind, "init")) {
            ck_assert_uint_lt(e->n_init, 16);
            char shape[128];
            expect_init *in = &e->init[e->n_init++];
            ck_assert_int_eq(sscanf(rest, "%63s %127s %lf %lf %lf %lf", in->name, shape, &in->v[0],
                                    &in->v[1], &in->v[2], &in->v[3]),
                             6);
            for (char *p = shape; *p && in->ndim < 8; in->ndim++) {
                in->shape[in->ndim] = strtoll(p, &p, 10);
                if (*p == 'x')
                    p++;
            }
        }
    }
    fclose(f);
    ck_assert_msg(e->nodes > 0, "expect.txt has no model %s", model);
}

/* Loads the model and checks it against what PyTorch wrote. */
static clnet_onnx_model *check_model(const char *model, const expect *e)
{
    char path[512], err[1024] = "";
    snprintf(path, sizeof path, "%s/%s", export_dir, e->file);
    clnet_onnx_model *m = NULL;
    clnet_status st = clnet_onnx_model_load(path, &m, err, sizeof err);
    ck_assert_msg(st == CLNET_OK, "%s: %s", model, err);
    const clnet_onnx_graph *g = clnet_onnx_model_graph(m);
    ck_assert_uint_eq(g->n_nodes, e->nodes);
    char ops[4096] = "";
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes && n < sizeof ops; i++)
        n += (size_t)snprintf(ops + n, sizeof ops - n, "%s%s", i ? " " : "", g->nodes[i].op_type);
    ck_assert_str_eq(ops, e->ops);
    for (size_t i = 0; i < e->n_init; i++) {
        const clnet_onnx_tensor *t = clnet_onnx_model_find_tensor(m, e->init[i].name);
        ck_assert_msg(t != NULL, "%s: no initializer %s", model, e->init[i].name);
        ck_assert_int_eq(t->dtype, CLNET_ONNX_FLOAT);
        ck_assert_int_eq(t->ndim, e->init[i].ndim);
        for (int d = 0; d < t->ndim; d++)
            ck_assert_int_eq(t->shape[d], e->init[i].shape[d]);
        const float *x = t->f32;
        const double got[4] = { x[0], x[1], x[2], x[t->numel - 1] };
        for (int k = 0; k < 4; k++)
            ck_assert_msg(got[k] == (double)(float)e->init[i].v[k], "%s: %s value %d: %.9g != %.9g",
                          model, e->init[i].name, k, got[k], e->init[i].v[k]);
    }
    ck_assert_int_eq(g->opset, 13);
    return m;
}

START_TEST(torch_cnn_reads_back)
{
    expect e;
    read_expect("cnn", &e);
    clnet_onnx_model *m = check_model("cnn", &e);
    const clnet_onnx_graph *g = clnet_onnx_model_graph(m);
    ck_assert_uint_eq(g->n_initializers, 8);
    ck_assert_uint_eq(g->n_inputs, 1);
    ck_assert_str_eq(g->inputs[0].name, "x");
    ck_assert_int_eq(g->inputs[0].ndim, 4);
    ck_assert_int_eq(g->inputs[0].shape[0], -1);
    ck_assert_str_eq(g->inputs[0].dim_param[0], "batch");
    ck_assert_int_eq(g->inputs[0].shape[3], 28);
    ck_assert_str_eq(g->outputs[0].name, "y");
    /* The first Conv: kernel_shape [3, 3], input x and the first weight. */
    const clnet_onnx_node *c = &g->nodes[0];
    ck_assert_str_eq(c->inputs[0], "x");
    ck_assert_str_eq(c->inputs[1], "0.weight");
    int found = 0;
    for (size_t i = 0; i < c->n_attrs; i++)
        if (!strcmp(c->attrs[i].name, "kernel_shape")) {
            ck_assert_int_eq(c->attrs[i].type, CLNET_ONNX_ATTR_INTS);
            ck_assert_uint_eq(c->attrs[i].count, 2);
            ck_assert_int_eq(c->attrs[i].ints[0], 3);
            found = 1;
        }
    ck_assert(found);
    char err[1024] = "";
    ck_assert_msg(clnet_onnx_model_check_supported(m, err, sizeof err) == CLNET_OK, "%s", err);
    clnet_onnx_model_destroy(m);
}
END_TEST

START_TEST(torch_lstm_reads_back)
{
    expect e;
    read_expect("lstm", &e);
    clnet_onnx_model *m = check_model("lstm", &e);
    const clnet_onnx_graph *g = clnet_onnx_model_graph(m);
    /* Each LSTM node: W (1, 4*64, in), R (1, 4*64, 64), B (1, 8*64). */
    int lstms = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const clnet_onnx_node *n = &g->nodes[i];
        if (strcmp(n->op_type, "LSTM"))
            continue;
        const clnet_onnx_tensor *w = clnet_onnx_model_find_tensor(m, n->inputs[1]);
        const clnet_onnx_tensor *r = clnet_onnx_model_find_tensor(m, n->inputs[2]);
        const clnet_onnx_tensor *b = clnet_onnx_model_find_tensor(m, n->inputs[3]);
        ck_assert(w && r && b);
        ck_assert_int_eq(w->shape[1], 256);
        ck_assert_int_eq(w->shape[2], lstms ? 64 : 28);
        ck_assert_int_eq(r->shape[2], 64);
        ck_assert_int_eq(b->shape[1], 512);
        lstms++;
    }
    ck_assert_int_eq(lstms, 3);
    char err[1024] = "";
    ck_assert_msg(clnet_onnx_model_check_supported(m, err, sizeof err) == CLNET_OK, "%s", err);
    clnet_onnx_model_destroy(m);
}
END_TEST

START_TEST(torch_external_data_reads_back)
{
    expect e;
    read_expect("ext", &e);
    clnet_onnx_model *m = check_model("ext", &e);
    clnet_onnx_model_destroy(m);
    /* The same bytes from memory: refused without a base directory, read with one. */
    char path[512], err[1024] = "";
    snprintf(path, sizeof path, "%s/ext.onnx", export_dir);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static unsigned char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ck_assert_int_eq(clnet_onnx_model_parse(buf, len, NULL, &m, err, sizeof err), CLNET_ERR_FORMAT);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(err, "initializer 'W'"));
    ck_assert_int_eq(clnet_onnx_model_parse(buf, len, export_dir, &m, err, sizeof err), CLNET_OK);
    ck_assert_uint_eq(clnet_onnx_model_find_tensor(m, "W")->numel, 128);
    clnet_onnx_model_destroy(m);
}
END_TEST

/* ---- The table of supported ops and docs/onnx.md --------------------------- */

/* Every op in the table has a row "| `Op` | ..." in docs/onnx.md listing its
 * attributes, and every such row names an op of the table. */
START_TEST(supported_table_matches_docs)
{
    char path[1024], line[2048];
    source_path(path, sizeof path, "docs/onnx.md");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    size_t count, rows = 0;
    const clnet_onnx_op_support *ops = clnet_onnx_supported_ops(&count);
    int seen[64] = { 0 };
    ck_assert_uint_le(count, 64);
    while (fgets(line, sizeof line, f)) {
        char op[64];
        if (sscanf(line, "| `%63[A-Za-z]` |", op) != 1)
            continue;
        rows++;
        size_t i = 0;
        while (i < count && strcmp(ops[i].op_type, op))
            i++;
        ck_assert_msg(i < count, "docs/onnx.md lists %s, which the table lacks", op);
        seen[i]++;
        for (const char *const *a = ops[i].attrs; *a; a++) {
            char want[80];
            snprintf(want, sizeof want, "`%s`", *a);
            ck_assert_msg(strstr(line, want), "docs/onnx.md: %s lacks attribute %s", op, *a);
        }
    }
    fclose(f);
    for (size_t i = 0; i < count; i++)
        ck_assert_msg(seen[i] == 1, "docs/onnx.md lists %s %d times", ops[i].op_type, seen[i]);
    ck_assert_uint_eq(rows, count);
}
END_TEST

/* ---- The API ---------------------------------------------------------------- */

START_TEST(null_arguments_are_refused)
{
    char err[256] = "";
    clnet_onnx_model *m = (clnet_onnx_model *)&m;
    ck_assert_int_eq(clnet_onnx_model_parse("x", 1, NULL, NULL, err, sizeof err),
                     CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(clnet_onnx_model_parse(NULL, 3, NULL, &m, err, sizeof err),
                     CLNET_ERR_INVALID_ARG);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(clnet_onnx_model_load(NULL, &m, err, sizeof err), CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(clnet_onnx_model_load("/nonexistent/m.onnx", &m, err, sizeof err),
                     CLNET_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/m.onnx: cannot open"));
    ck_assert_int_eq(clnet_onnx_model_load("/", &m, err, sizeof err), CLNET_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
    ck_assert_int_eq(clnet_onnx_model_parse(NULL, 0, NULL, &m, NULL, 0), CLNET_ERR_FORMAT);
    ck_assert_int_eq(clnet_onnx_model_check_supported(NULL, err, sizeof err),
                     CLNET_ERR_INVALID_ARG);
    ck_assert_ptr_null(clnet_onnx_model_graph(NULL));
    ck_assert_ptr_null(clnet_onnx_model_find_tensor(NULL, "x"));
    clnet_onnx_model_destroy(NULL);
}
END_TEST

Suite *suite_onnx(void)
{
    Suite *s = suite_create("onnx");
    TCase *tc = tcase_create("torch");
    tcase_add_unchecked_fixture(tc, export_models, remove_models);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, torch_cnn_reads_back);
    tcase_add_test(tc, torch_lstm_reads_back);
    tcase_add_test(tc, torch_external_data_reads_back);
    suite_add_tcase(s, tc);
    tc = tcase_create("api");
    tcase_add_test(tc, supported_table_matches_docs);
    tcase_add_test(tc, null_arguments_are_refused);
    suite_add_tcase(s, tc);
    onnx_add_corpus_tests(s);
    return s;
}
