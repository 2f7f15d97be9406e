/* clnet tests — a corpus of malformed and hostile ONNX files generated from a
 * small valid model built with protobuf-c: every truncation, wrong wire
 * types, lengths past the end, deep nesting, then one semantic fault at a
 * time (huge, negative and too many dims, wrong data sizes, dtypes, dangling
 * names, cycles, duplicate names, opsets, bad external-data paths) and seeded
 * random byte flips. Each file goes through the buffer parser and the file
 * loader; both must refuse it with a message (and, where given, the name of
 * the node or initializer). CLNET_ONNX_CORPUS_DIR=DIR keeps the files. Part
 * of suite "onnx". */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "clnet/onnx.h"
#include "onnx.pb-c.h"

void onnx_add_corpus_tests(Suite *s);

/* ---- The valid model -------------------------------------------------------- */

/* y = Reshape(Relu(Gemm(x, W, B)) + c, shape): x (N, 3), W (4, 3) in raw_data,
 * B (4) in float_data, shape (2) int64, c a Constant node. All storage is in
 * the struct, so a test mutates one field and packs. */
typedef struct base {
    Onnx__ModelProto model;
    Onnx__OperatorSetIdProto opset, *opsets[2];
    Onnx__GraphProto graph;
    Onnx__NodeProto node[5], *nodes[5];
    char *in[5][3], *out[5][1];
    Onnx__AttributeProto transb, cval, *gemm_attrs[2], *const_attrs[1];
    Onnx__TensorProto w, b, shape, c, *inits[3];
    int64_t w_dims[9], b_dims[1], shape_dims[1], shape_data[2];
    float w_data[12], b_data[4], c_data[1];
    Onnx__ValueInfoProto x, y, *ins[1], *outs[1];
    Onnx__TypeProto xt, yt;
    Onnx__TypeProto__Tensor xtt, ytt;
    Onnx__TensorShapeProto xs;
    Onnx__TensorShapeProto__Dimension xd[2], *xds[2];
    Onnx__StringStringEntryProto ext[3], *exts[3];
} base;

static void init_node(base *b, int i, const char *name, const char *op, int nin, const char *i0,
                      const char *i1, const char *i2, const char *out)
{
    Onnx__NodeProto n = ONNX__NODE_PROTO__INIT;
    b->node[i] = n;
    b->nodes[i] = &b->node[i];
    b->in[i][0] = (char *)i0;
    b->in[i][1] = (char *)i1;
    b->in[i][2] = (char *)i2;
    b->out[i][0] = (char *)out;
    b->node[i].name = (char *)name;
    b->node[i].op_type = (char *)op;
    b->node[i].n_input = (size_t)nin;
    b->node[i].input = b->in[i];
    b->node[i].n_output = 1;
    b->node[i].output = b->out[i];
}

static void init_tensor(Onnx__TensorProto *t, const char *name, int32_t dtype, int64_t *dims,
                        size_t ndims)
{
    Onnx__TensorProto z = ONNX__TENSOR_PROTO__INIT;
    *t = z;
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = dtype;
    t->dims = dims;
    t->n_dims = ndims;
}

static void make_base(base *b)
{
    memset(b, 0, sizeof *b);
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    Onnx__OperatorSetIdProto o = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    Onnx__AttributeProto a = ONNX__ATTRIBUTE_PROTO__INIT;
    b->model = m;
    b->opset = o;
    b->graph = g;
    b->model.has_ir_version = 1;
    b->model.ir_version = 8;
    b->model.producer_name = "clnet-tests";
    b->opset.domain = "";
    b->opset.has_version = 1;
    b->opset.version = 13;
    b->opsets[0] = &b->opset;
    b->model.n_opset_import = 1;
    b->model.opset_import = b->opsets;
    b->model.graph = &b->graph;
    init_node(b, 0, "gemm", "Gemm", 3, "x", "W", "B", "h");
    init_node(b, 1, "relu", "Relu", 1, "h", NULL, NULL, "r");
    init_node(b, 2, "const", "Constant", 0, NULL, NULL, NULL, "c");
    init_node(b, 3, "add", "Add", 2, "r", "c", NULL, "a");
    init_node(b, 4, "reshape", "Reshape", 2, "a", "shape", NULL, "y");
    b->transb = a;
    b->transb.name = "transB";
    b->transb.has_type = 1;
    b->transb.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    b->transb.has_i = 1;
    b->transb.i = 1;
    b->gemm_attrs[0] = &b->transb;
    b->node[0].n_attribute = 1;
    b->node[0].attribute = b->gemm_attrs;
    b->cval = a;
    b->cval.name = "value";
    b->cval.has_type = 1;
    b->cval.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    b->cval.t = &b->c;
    b->const_attrs[0] = &b->cval;
    b->node[2].n_attribute = 1;
    b->node[2].attribute = b->const_attrs;
    init_tensor(&b->c, "", 1, NULL, 0);
    b->c_data[0] = 0.5f;
    b->c.n_float_data = 1;
    b->c.float_data = b->c_data;
    b->graph.n_node = 5;
    b->graph.node = b->nodes;
    b->graph.name = "corpus";

    b->w_dims[0] = 4;
    b->w_dims[1] = 3;
    init_tensor(&b->w, "W", 1, b->w_dims, 2);
    for (int i = 0; i < 12; i++)
        b->w_data[i] = (float)i * 0.25f - 1.f;
    b->w.has_raw_data = 1;
    b->w.raw_data.len = sizeof b->w_data;
    b->w.raw_data.data = (uint8_t *)b->w_data;
    b->b_dims[0] = 4;
    init_tensor(&b->b, "B", 1, b->b_dims, 1);
    for (int i = 0; i < 4; i++)
        b->b_data[i] = (float)i;
    b->b.n_float_data = 4;
    b->b.float_data = b->b_data;
    b->shape_dims[0] = 2;
    b->shape_data[0] = 1;
    b->shape_data[1] = -1;
    init_tensor(&b->shape, "shape", 7, b->shape_dims, 1);
    b->shape.n_int64_data = 2;
    b->shape.int64_data = b->shape_data;
    b->inits[0] = &b->w;
    b->inits[1] = &b->b;
    b->inits[2] = &b->shape;
    b->graph.n_initializer = 3;
    b->graph.initializer = b->inits;

    Onnx__ValueInfoProto v = ONNX__VALUE_INFO_PROTO__INIT;
    Onnx__TypeProto tp = ONNX__TYPE_PROTO__INIT;
    Onnx__TypeProto__Tensor tt = ONNX__TYPE_PROTO__TENSOR__INIT;
    Onnx__TensorShapeProto sh = ONNX__TENSOR_SHAPE_PROTO__INIT;
    Onnx__TensorShapeProto__Dimension dim = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
    b->x = b->y = v;
    b->xt = b->yt = tp;
    b->xtt = b->ytt = tt;
    b->xs = sh;
    b->xd[0] = b->xd[1] = dim;
    b->xd[0].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    b->xd[0].dim_param = "N";
    b->xd[1].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    b->xd[1].dim_value = 3;
    b->xds[0] = &b->xd[0];
    b->xds[1] = &b->xd[1];
    b->xs.n_dim = 2;
    b->xs.dim = b->xds;
    b->xtt.has_elem_type = b->ytt.has_elem_type = 1;
    b->xtt.elem_type = b->ytt.elem_type = 1;
    b->xtt.shape = &b->xs;
    b->xt.value_case = b->yt.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    b->xt.tensor_type = &b->xtt;
    b->yt.tensor_type = &b->ytt;
    b->x.name = "x";
    b->x.type = &b->xt;
    b->y.name = "y";
    b->y.type = &b->yt;
    b->ins[0] = &b->x;
    b->outs[0] = &b->y;
    b->graph.n_input = 1;
    b->graph.input = b->ins;
    b->graph.n_output = 1;
    b->graph.output = b->outs;
    for (int i = 0; i < 3; i++) {
        Onnx__StringStringEntryProto e = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
        b->ext[i] = e;
        b->exts[i] = &b->ext[i];
    }
}

static unsigned char *pack_model(const Onnx__ModelProto *m, size_t *len)
{
    *len = onnx__model_proto__get_packed_size(m);
    unsigned char *buf = malloc(*len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(onnx__model_proto__pack(m, buf), *len);
    return buf;
}

/* ---- Running one file --------------------------------------------------------- */

typedef struct corpus {
    char dir[512];
    int keep;
    int files;
} corpus;

static void corpus_open(corpus *c)
{
    const char *keep = getenv("CLNET_ONNX_CORPUS_DIR");
    c->files = 0;
    c->keep = keep != NULL;
    if (keep) {
        snprintf(c->dir, sizeof c->dir, "%s", keep);
        mkdir(c->dir, 0755);
    } else {
        snprintf(c->dir, sizeof c->dir, "%s/clnet-onnx-corpus.XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        ck_assert_ptr_nonnull(mkdtemp(c->dir));
    }
    /* The side file that external-data cases point into: 64 bytes. */
    char path[600];
    snprintf(path, sizeof path, "%s/side.bin", c->dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 64; i++)
        fputc(i, f);
    fclose(f);
}

static void corpus_close(corpus *c)
{
    if (c->keep)
        return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Parses buf from memory and from a file; both must refuse it with the same
 * status and a message holding needle (if any). Returns the status. */
static clnet_status reject(corpus *c, const char *label, const unsigned char *buf, size_t len,
                           const char *needle)
{
    char err[1024] = "", err2[1024] = "", path[700];
    clnet_onnx_model *m = (clnet_onnx_model *)&m;
    clnet_status st = clnet_onnx_model_parse(buf, len, c->dir, &m, err, sizeof err);
    ck_assert_msg(st != CLNET_OK, "%s: accepted", label);
    ck_assert_ptr_null(m);
    ck_assert_msg(st == CLNET_ERR_FORMAT || st == CLNET_ERR_UNSUPPORTED || st == CLNET_ERR_IO,
                  "%s: %s (%s)", label, clnet_status_name(st), err);
    ck_assert_msg(!strncmp(err, "clnet_onnx_model_parse: ", 24) && strlen(err) > 30,
                  "%s: a poor message: '%s'", label, err);
    if (needle)
        ck_assert_msg(strstr(err, needle), "%s: '%s' lacks '%s'", label, err, needle);
    if (test_verbose())
        fprintf(stderr, "%s: %s\n", label, err);
    snprintf(path, sizeof path, "%s/%04d-%s.onnx", c->dir, c->files++, label);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    /* len 0 comes with buf NULL, which fwrite must not get (UBSan under gcc). */
    ck_assert_uint_eq(len ? fwrite(buf, 1, len, f) : 0, len);
    fclose(f);
    ck_assert_int_eq(clnet_onnx_model_load(path, &m, err2, sizeof err2), st);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(err2, err + 24));
    if (!c->keep)
        unlink(path);
    return st;
}

static void reject_model(corpus *c, const char *label, const base *b, const char *needle)
{
    size_t len;
    unsigned char *buf = pack_model(&b->model, &len);
    reject(c, label, buf, len, needle);
    free(buf);
}

/* ---- The tests -------------------------------------------------------------- */

START_TEST(corpus_base_model_is_valid)
{
    base b;
    make_base(&b);
    size_t len;
    unsigned char *buf = pack_model(&b.model, &len);
    char err[1024] = "";
    clnet_onnx_model *m;
    ck_assert_msg(clnet_onnx_model_parse(buf, len, NULL, &m, err, sizeof err) == CLNET_OK, "%s",
                  err);
    const clnet_onnx_graph *g = clnet_onnx_model_graph(m);
    ck_assert_uint_eq(g->n_nodes, 5);
    ck_assert_uint_eq(g->n_initializers, 3);
    ck_assert_int_eq(g->inputs[0].shape[0], -1);
    ck_assert_str_eq(g->inputs[0].dim_param[0], "N");
    ck_assert_int_eq(g->inputs[0].shape[1], 3);
    const clnet_onnx_tensor *w = clnet_onnx_model_find_tensor(m, "W");
    ck_assert_uint_eq(w->numel, 12);
    ck_assert(w->f32[11] == 1.75f);
    ck_assert(clnet_onnx_model_find_tensor(m, "B")->f32[3] == 3.f);
    ck_assert_int_eq(clnet_onnx_model_find_tensor(m, "shape")->i64[1], -1);
    ck_assert(clnet_onnx_model_find_tensor(m, "c")->f32[0] == 0.5f);
    ck_assert_int_eq(clnet_onnx_model_check_supported(m, err, sizeof err), CLNET_OK);
    clnet_onnx_model_destroy(m);
    const char *keep = getenv("CLNET_ONNX_CORPUS_DIR");
    if (keep) { /* the fuzzer's seed (tests/fuzz/corpus-onnx) */
        char path[600];
        snprintf(path, sizeof path, "%s/base.onnx", keep);
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
        fclose(f);
    }
    free(buf);
}
END_TEST

static size_t put_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* The valid graph message with `extra` appended, wrapped as a model. */
static unsigned char *wrap_graph(const base *b, const unsigned char *extra, size_t extra_len,
                                 size_t *len)
{
    size_t glen = onnx__graph_proto__get_packed_size(&b->graph);
    size_t olen = onnx__operator_set_id_proto__get_packed_size(&b->opset);
    unsigned char *buf = malloc(glen + extra_len + olen + 32);
    size_t n = 0;
    buf[n++] = 7 << 3 | 2;
    n += put_varint(buf + n, glen + extra_len);
    n += onnx__graph_proto__pack(&b->graph, buf + n);
    memcpy(buf + n, extra, extra_len);
    n += extra_len;
    buf[n++] = 8 << 3 | 2;
    n += put_varint(buf + n, olen);
    n += onnx__operator_set_id_proto__pack(&b->opset, buf + n);
    *len = n;
    return buf;
}

/* Every proper prefix of the valid file. */
START_TEST(corpus_every_truncation)
{
    corpus c;
    corpus_open(&c);
    base b;
    make_base(&b);
    size_t len;
    unsigned char *buf = pack_model(&b.model, &len);
    ck_assert_uint_ge(len, 250);
    for (size_t n = 0; n < len; n++) {
        char label[64];
        snprintf(label, sizeof label, "truncated-%zu", n);
        unsigned char *copy = malloc(n + 1); /* exactly n bytes readable under ASan */
        memcpy(copy, buf, n);
        reject(&c, label, n ? copy : NULL, n, NULL);
        free(copy);
    }
    free(buf);
    /* Every proper prefix of the graph message, wrapped with its true length:
     * the faults then lie inside nodes, tensors and value infos. */
    size_t glen = onnx__graph_proto__get_packed_size(&b.graph);
    unsigned char *graph = malloc(glen);
    onnx__graph_proto__pack(&b.graph, graph);
    for (size_t n = 0; n < glen; n++) {
        char label[64];
        snprintf(label, sizeof label, "graph-truncated-%zu", n);
        Onnx__GraphProto empty = ONNX__GRAPH_PROTO__INIT;
        base e = b;
        e.graph = empty;
        buf = wrap_graph(&e, graph, n, &len);
        reject(&c, label, buf, len, NULL);
        free(buf);
    }
    free(graph);
    ck_assert_int_ge(c.files, 500);
    corpus_close(&c);
}
END_TEST

/* Wire-level faults: wrong wire types on every field of ModelProto and
 * GraphProto, lengths past the end, bad tags and varints, deep nesting. */
START_TEST(corpus_wire_faults)
{
    corpus c;
    corpus_open(&c);
    base b;
    make_base(&b);
    size_t len;
    unsigned char *good = pack_model(&b.model, &len);
    unsigned char *buf = malloc(len + 64);
    char label[64];
    /* Each known field of ModelProto (1-8, 14, 20) and GraphProto (1-13), with
     * every wire type it must not have. */
    static const int model_fields[] = { 1, 2, 3, 4, 5, 6, 7, 8, 14, 20 };
    for (size_t f = 0; f < sizeof model_fields / sizeof model_fields[0]; f++)
        for (int wire = 0; wire < 8; wire++) {
            int num = model_fields[f];
            int varint_field = num == 1 || num == 5;
            if ((varint_field && wire == 0) || (!varint_field && wire == 2))
                continue;
            size_t n = len;
            memcpy(buf, good, len);
            memset(buf + len, 0, 16);
            n += put_varint(buf + n, (uint64_t)(num << 3 | wire));
            n += wire == 1 ? 8 : wire == 5 ? 4 : 1; /* zeros: the value, or a length 0 */
            snprintf(label, sizeof label, "model-field%d-wire%d", num, wire);
            reject(&c, label, buf, n,
                   wire == 3 || wire == 4 || wire > 5 ? "invalid wire type" : "wrong wire type");
        }
    static const int graph_fields[] = { 1, 2, 5, 10, 11, 12, 13, 14, 15 };
    for (size_t f = 0; f < sizeof graph_fields / sizeof graph_fields[0]; f++)
        for (int wire = 0; wire < 6; wire += 5) { /* varint and fixed32 on message fields */
            int num = graph_fields[f];
            unsigned char extra[8] = { (unsigned char)(num << 3 | wire), 0, 0, 0, 0 };
            unsigned char *w = wrap_graph(&b, extra, wire ? 5 : 2, &len);
            snprintf(label, sizeof label, "graph-field%d-wire%d", num, wire);
            reject(&c, label, w, len, "graph");
            free(w);
        }
    /* A graph.name whose length claims `claim` bytes more than there are. */
    for (uint64_t claim = 1; claim < ((uint64_t)1 << 62); claim = claim * 3 + 1) {
        unsigned char extra[32]; /* tag, a length of up to 10 bytes, 8 bytes */
        size_t n = 0;
        extra[n++] = 2 << 3 | 2;
        n += put_varint(extra + n, claim + 8);
        memcpy(extra + n, "abcdefgh", 8);
        unsigned char *w = wrap_graph(&b, extra, n + 8, &len);
        snprintf(label, sizeof label, "graph-len-%llu", (unsigned long long)claim);
        reject(&c, label, w, len, "past the end");
        free(w);
    }
    /* Bad tags and varints. */
    static const unsigned char bad[][12] = {
        { 0x00, 0x01 },                                                             /* field 0 */
        { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, /* 11 bytes */
        { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },       /* > 64 bits */
        { 0x80 },                               /* truncated tag */
        { 0x3a, 0x80 },                         /* truncated length */
        { 0xf8, 0xff, 0xff, 0xff, 0xff, 0x01 }, /* field > 2^29 */
    };
    static const size_t bad_len[] = { 2, 12, 11, 1, 2, 6 };
    for (size_t i = 0; i < sizeof bad_len / sizeof bad_len[0]; i++) {
        snprintf(label, sizeof label, "bad-varint-%zu", i);
        reject(&c, label, bad[i], bad_len[i], "malformed protobuf");
    }
    /* A NUL inside a string: a node's op_type "Re\1l" with the \1 made 0. */
    b.node[1].op_type = "Re\001l";
    unsigned char *p = pack_model(&b.model, &len);
    unsigned char *hit = memmem(p, len, "Re\001l", 4);
    ck_assert_ptr_nonnull(hit);
    hit[2] = 0;
    reject(&c, "nul-in-op-type", p, len, "NUL byte");
    free(p);
    make_base(&b);
    /* Messages nested past the depth limit: attribute.g > node > attribute.g ... */
    for (int depth = 20; depth <= 2000; depth *= 10) {
        unsigned char *nest = malloc((size_t)depth * 40 + 64);
        size_t n = 0;
        /* Built inside out: each level a node holding an attribute holding a graph. */
        unsigned char *tmp = malloc((size_t)depth * 40 + 64);
        for (int level = 0; level < depth; level++) {
            size_t m = 0;
            /* attribute { g: <graph n bytes> } as node.attribute (5) */
            unsigned char hdr[32];
            size_t h = 0;
            hdr[h++] = 6 << 3 | 2; /* AttributeProto.g */
            h += put_varint(hdr + h, n);
            size_t attr_len = h + n;
            unsigned char hdr2[32];
            size_t h2 = 0;
            hdr2[h2++] = 5 << 3 | 2; /* NodeProto.attribute */
            h2 += put_varint(hdr2 + h2, attr_len);
            size_t node_len = h2 + attr_len;
            unsigned char hdr3[32];
            size_t h3 = 0;
            hdr3[h3++] = 1 << 3 | 2; /* GraphProto.node */
            h3 += put_varint(hdr3 + h3, node_len);
            memcpy(tmp + m, hdr3, h3), m += h3;
            memcpy(tmp + m, hdr2, h2), m += h2;
            memcpy(tmp + m, hdr, h), m += h;
            memcpy(tmp + m, nest, n), m += n;
            memcpy(nest, tmp, m);
            n = m;
        }
        size_t total = 0;
        tmp[total++] = 7 << 3 | 2;
        total += put_varint(tmp + total, n);
        memcpy(tmp + total, nest, n);
        total += n;
        snprintf(label, sizeof label, "nested-%d", depth);
        reject(&c, label, tmp, total, "nested deeper");
        free(nest);
        free(tmp);
    }
    /* Four million empty nodes: 8 MB that protobuf-c would unpack to ~500 MB. */
    size_t bomb_len = (size_t)8 << 20;
    unsigned char *bomb = malloc(bomb_len + 16);
    size_t n = 0;
    bomb[n++] = 7 << 3 | 2;
    n += put_varint(bomb + n, bomb_len);
    for (size_t i = 0; i < bomb_len; i += 2) {
        bomb[n++] = 1 << 3 | 2;
        bomb[n++] = 0;
    }
    reject(&c, "empty-node-bomb", bomb, n, "64 MiB + 16 bytes per byte");
    free(bomb);
    free(buf);
    free(good);
    ck_assert_int_ge(c.files, 100);
    corpus_close(&c);
}
END_TEST

/* One semantic fault at a time, each in a file that is valid protobuf. */
START_TEST(corpus_semantic_faults)
{
    corpus c;
    corpus_open(&c);
    base b;
    char label[64];
#define CASE(name, needle, ...)                                                                    \
    do {                                                                                           \
        make_base(&b);                                                                             \
        __VA_ARGS__;                                                                               \
        reject_model(&c, name, &b, needle);                                                        \
    } while (0)
    /* Shapes: huge (overflowing) dims at each position, negative dims, too many. */
    static const int64_t huge[] = { (int64_t)1 << 31, (int64_t)1 << 32, (int64_t)1 << 40,
                                    (int64_t)1 << 62, INT64_MAX,        (int64_t)3037000500 };
    for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++)
        for (int pos = 0; pos < 2; pos++) {
            snprintf(label, sizeof label, "huge-dim-%zu-%d", h, pos);
            CASE(label, "initializer 'W'", b.w_dims[pos] = huge[h], b.w_dims[1 - pos] = huge[h]);
        }
    for (int64_t neg = -1; neg > -(1 << 20); neg *= 7) {
        snprintf(label, sizeof label, "negative-dim-%lld", (long long)neg);
        CASE(label, "initializer 'W': dim 1 is negative", b.w_dims[1] = neg);
        snprintf(label, sizeof label, "negative-input-dim-%lld", (long long)neg);
        CASE(label, "graph input 'x': dim 1 is negative", b.xd[1].dim_value = neg);
    }
    CASE("nine-dims", "initializer 'W': 9 dims", b.w.n_dims = 9,
         b.w_dims[2] = b.w_dims[3] = b.w_dims[4] = b.w_dims[5] = b.w_dims[6] = b.w_dims[7] =
             b.w_dims[8] = 1);
    /* Data sizes that do not match the shape. */
    for (size_t n = 0; n < 48; n += 5) {
        snprintf(label, sizeof label, "raw-data-%zu-bytes", n);
        CASE(label, "initializer 'W': raw_data holds", b.w.raw_data.len = n);
    }
    for (size_t n = 1; n < 12; n++) {
        snprintf(label, sizeof label, "w-dims-vs-raw-%zu", n);
        CASE(label, "initializer 'W': raw_data holds", b.w_dims[0] = (int64_t)n + 4);
        snprintf(label, sizeof label, "float-data-%zu-values", n);
        CASE(label, "initializer 'B': float_data holds", b.b.n_float_data = n == 4 ? 5 : n);
    }
    CASE("int64-data-count", "initializer 'shape': int64_data holds", b.shape.n_int64_data = 1);
    CASE("no-data", "initializer 'B': no data", b.b.n_float_data = 0);
    CASE("two-data-fields", "initializer 'W': data in more than one field", b.w.n_float_data = 12,
         b.w.float_data = b.w_data);
    CASE("int64-data-on-float", "initializer 'B': data in more than one field",
         b.b.n_float_data = 0, b.b.n_int64_data = 2, b.b.int64_data = b.shape_data);
    CASE("constant-size", "node 'const' (Constant): attribute 'value': float_data holds",
         b.c.n_dims = 1, b.c.dims = b.b_dims);
    /* Element types. */
    static const struct {
        int32_t t;
        const char *name;
    } types[] = {
        { 0, "UNDEFINED" }, { 2, "UINT8" },    { 3, "INT8" },     { 6, "INT32" },
        { 8, "STRING" },    { 9, "BOOL" },     { 10, "FLOAT16" }, { 11, "DOUBLE" },
        { 16, "BFLOAT16" }, { 99, "unknown" },
    };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        snprintf(label, sizeof label, "dtype-%s", types[t].name);
        CASE(label, types[t].name, b.w.data_type = types[t].t);
        snprintf(label, sizeof label, "input-dtype-%s", types[t].name);
        CASE(label, types[t].name, b.xtt.elem_type = types[t].t);
    }
    CASE("no-dtype", "initializer 'B': no data_type", b.b.has_data_type = 0);
    CASE("segment", "initializer 'W': segmented", {
        static Onnx__TensorProto__Segment seg = ONNX__TENSOR_PROTO__SEGMENT__INIT;
        b.w.segment = &seg;
    });
    /* Names: dangling, cycles and out-of-order nodes, missing inputs, duplicates. */
    CASE("dangling-input", "node 'relu' (Relu): input 'nope'", b.in[1][0] = "nope");
    CASE("dangling-initializer", "node 'gemm' (Gemm): input 'W2'", b.in[0][1] = "W2");
    CASE("missing-graph-input", "node 'gemm' (Gemm): input 'x'", b.graph.n_input = 0);
    CASE("cycle-self", "node 'relu' (Relu): input 'r'", b.in[1][0] = "r");
    CASE("cycle-two", "node 'relu' (Relu): input 'a'", b.in[1][0] = "a");
    CASE("cycle-to-end", "node 'gemm' (Gemm): input 'y'", b.in[0][0] = "y");
    CASE("out-of-order", "node 'add' (Add): input 'r'", b.nodes[1] = &b.node[3],
         b.nodes[3] = &b.node[1]);
    CASE("unnamed-node", "node #1 (Relu): input 'q'", b.node[1].name = "", b.in[1][0] = "q");
    CASE("output-twice", "node 'add' (Add): the name 'r' is defined twice", b.out[3][0] = "r");
    CASE("output-shadows-init", "node 'relu' (Relu): the name 'W' is defined twice",
         b.out[1][0] = "W", b.in[3][0] = "W");
    CASE("output-shadows-input", "the name 'x' is defined twice", b.out[1][0] = "x");
    CASE("init-twice", "initializer 'W': the name 'W' is defined twice", b.inits[1] = &b.w);
    CASE("init-no-name", "initializer #1: no name", b.b.name = "");
    CASE("input-no-name", "graph input #0: no name", b.x.name = "");
    CASE("input-no-type", "graph input 'x': not a tensor", b.x.type = NULL);
    CASE("graph-output-dangling", "graph output 'z'", b.y.name = "z");
    CASE("graph-no-outputs", "no outputs", b.graph.n_output = 0);
    CASE("node-no-op", "node 'relu' (): no op_type", b.node[1].op_type = "");
    CASE("attr-no-name", "node 'gemm' (Gemm): an attribute without a name", b.transb.name = "");
    CASE("attr-twice", "attribute 'transB' appears twice", {
        static Onnx__AttributeProto *two[2];
        two[0] = two[1] = &b.transb;
        b.node[0].attribute = two;
        b.node[0].n_attribute = 2;
    });
    CASE("attr-ref", "function attribute", b.transb.ref_attr_name = "t");
    CASE("attr-257", "node 'gemm' (Gemm): 257 attributes (at most 256)", {
        static Onnx__AttributeProto *many[257];
        for (int i = 0; i < 257; i++)
            many[i] = &b.transb;
        b.node[0].attribute = many;
        b.node[0].n_attribute = 257;
    });
    CASE("attr-graph", "subgraph", {
        static Onnx__GraphProto empty = ONNX__GRAPH_PROTO__INIT;
        b.transb.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
        b.transb.g = &empty;
    });
    CASE("attr-bad-type", "attribute type 42", b.transb.type = 42);
    CASE("attr-tensor-missing", "TENSOR without a tensor", b.cval.t = NULL);
    /* The model: opsets, graph. */
    static const int64_t opsets[] = { 0, 1, 7, 9, 10, 18, 19, 100, -1, INT64_MAX };
    for (size_t o = 0; o < sizeof opsets / sizeof opsets[0]; o++) {
        snprintf(label, sizeof label, "opset-%lld", (long long)opsets[o]);
        CASE(label, "clnet reads opsets 11-17", b.opset.version = opsets[o]);
    }
    CASE("opset-missing", "no opset_import", b.model.n_opset_import = 0);
    CASE("opset-other-domain", "no opset_import", b.opset.domain = "com.microsoft");
    CASE("opset-twice", "imported twice", b.opsets[1] = &b.opset, b.model.n_opset_import = 2);
    CASE("no-graph", "no graph", b.model.graph = NULL);
    /* External data: paths that escape, bad numbers, ranges past the side file. */
    static const char *const escapes[] = { "/etc/passwd", "../side.bin", "a/../../side.bin", "..",
                                           "sub/..",      "\\etc\\x",    "a\\..\\..\\x" };
    for (size_t e = 0; e < sizeof escapes / sizeof escapes[0]; e++) {
        snprintf(label, sizeof label, "external-escape-%zu", e);
        CASE(label, "initializer 'W': external-data location", b.w.has_raw_data = 0,
             b.w.has_data_location = 1,
             b.w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL,
             b.ext[0].key = "location", b.ext[0].value = (char *)escapes[e],
             b.w.n_external_data = 1, b.w.external_data = b.exts);
    }
    static const struct {
        const char *off, *len, *needle;
    } ranges[] = {
        { "17", "48", "past the end" },
        { "64", "48", "past the end" },
        { "18446744073709551615", "48", "past the end" },
        { "0", "47", "length 47" },
        { "0", "4096", "length 4096" },
        { "-1", "48", "not a number" },
        { "0x10", "48", "not a number" },
        { "", "48", "not a number" },
        { "99999999999999999999", "48", "not a number" },
        { "0", "4 8", "not a number" },
    };
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        snprintf(label, sizeof label, "external-range-%zu", r);
        CASE(label, ranges[r].needle, b.w.has_raw_data = 0, b.w.has_data_location = 1,
             b.w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL,
             b.ext[0].key = "location", b.ext[0].value = "side.bin", b.ext[1].key = "offset",
             b.ext[1].value = (char *)ranges[r].off, b.ext[2].key = "length",
             b.ext[2].value = (char *)ranges[r].len, b.w.n_external_data = 3,
             b.w.external_data = b.exts);
    }
    /* A symbolic link inside the directory that leads out of it. */
    char link[600];
    snprintf(link, sizeof link, "%s/up", c.dir);
    unlink(link);
    ck_assert_int_eq(symlink("/", link), 0);
    CASE("external-symlink-out", "resolves outside the model's directory", b.w.has_raw_data = 0,
         b.w.has_data_location = 1, b.w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL,
         b.ext[0].key = "location", b.ext[0].value = "up/etc/passwd", b.w.n_external_data = 1,
         b.w.external_data = b.exts);
    unlink(link);
    CASE("external-no-location", "without a location", b.w.has_raw_data = 0,
         b.w.has_data_location = 1,
         b.w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL);
    CASE("external-missing-file", "cannot open external data", b.w.has_raw_data = 0,
         b.w.has_data_location = 1, b.w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL,
         b.ext[0].key = "location", b.ext[0].value = "nothere.bin", b.w.n_external_data = 1,
         b.w.external_data = b.exts);
    CASE("external-and-raw", "more than one field", b.w.has_data_location = 1,
         b.w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL, b.ext[0].key = "location",
         b.ext[0].value = "side.bin", b.w.n_external_data = 1, b.w.external_data = b.exts);
    CASE("data-location-7", "unknown data_location", b.w.has_data_location = 1,
         b.w.data_location = 7);
#undef CASE
    /* The same side file in range is accepted: W from bytes [16, 64). */
    make_base(&b);
    b.w.has_raw_data = 0;
    b.w.has_data_location = 1;
    b.w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    b.ext[0].key = "location";
    b.ext[0].value = "side.bin";
    b.ext[1].key = "offset";
    b.ext[1].value = "16";
    b.w.n_external_data = 2;
    b.w.external_data = b.exts;
    size_t len;
    unsigned char *buf = pack_model(&b.model, &len);
    clnet_onnx_model *m;
    char err[1024] = "";
    ck_assert_msg(clnet_onnx_model_parse(buf, len, c.dir, &m, err, sizeof err) == CLNET_OK, "%s",
                  err);
    const float *w = clnet_onnx_model_find_tensor(m, "W")->f32;
    unsigned char want[4] = { 16, 17, 18, 19 };
    ck_assert_int_eq(memcmp(w, want, 4), 0);
    clnet_onnx_model_destroy(m);
    free(buf);
    ck_assert_int_ge(c.files, 140);
    corpus_close(&c);
}
END_TEST

/* Seeded random byte changes: accepted or refused, never a crash or a leak
 * (ASan and valgrind runs make that strict). */
START_TEST(corpus_random_byte_flips)
{
    base b;
    make_base(&b);
    size_t len;
    unsigned char *good = pack_model(&b.model, &len);
    unsigned char *buf = malloc(len);
    uint64_t rng = 0x19;
    int refused = 0;
    for (int i = 0; i < 2000; i++) {
        memcpy(buf, good, len);
        int flips = 1 + (int)(test_rng(&rng) % 4);
        for (int f = 0; f < flips; f++)
            buf[test_rng(&rng) % len] = (unsigned char)test_rng(&rng);
        clnet_onnx_model *m = NULL;
        char err[512] = "";
        clnet_status st = clnet_onnx_model_parse(buf, len, NULL, &m, err, sizeof err);
        if (st) {
            ck_assert_ptr_null(m);
            ck_assert_msg(strlen(err) > 30, "flip %d: a poor message '%s'", i, err);
            refused++;
        } else {
            ck_assert_ptr_nonnull(clnet_onnx_model_graph(m));
            clnet_onnx_model_check_supported(m, err, sizeof err);
            clnet_onnx_model_destroy(m);
        }
    }
    ck_assert_int_gt(refused, 500);
    free(buf);
    free(good);
}
END_TEST

/* Valid files that use what clnet does not support: every op and attribute
 * is named, each once, in one error. */
START_TEST(unsupported_ops_listed_in_one_error)
{
    base b;
    make_base(&b);
    Onnx__AttributeProto mode = ONNX__ATTRIBUTE_PROTO__INIT, *modes[1] = { &mode };
    mode.name = "mode";
    mode.has_type = 1;
    mode.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    mode.has_s = 1;
    mode.s.data = (uint8_t *)"linear";
    mode.s.len = 6;
    b.node[1].op_type = "Resize"; /* mode 'linear': a value not supported */
    b.node[1].n_attribute = 1;
    b.node[1].attribute = modes;
    b.node[3].op_type = "NonMaxSuppression";
    b.node[4].op_type = "NonMaxSuppression"; /* named once */
    b.node[2].domain = "com.microsoft";
    b.transb.name = "bogus";
    size_t len;
    unsigned char *buf = pack_model(&b.model, &len);
    clnet_onnx_model *m;
    char err[1024] = "";
    ck_assert_msg(clnet_onnx_model_parse(buf, len, NULL, &m, err, sizeof err) == CLNET_OK, "%s",
                  err);
    ck_assert_int_eq(clnet_onnx_model_check_supported(m, err, sizeof err), CLNET_ERR_UNSUPPORTED);
    ck_assert_str_eq(err, "clnet_onnx_model_check_supported: not supported: attribute Gemm.bogus; "
                          "attribute Resize.mode='linear'; op com.microsoft.Constant; "
                          "op NonMaxSuppression");
    clnet_onnx_model_destroy(m);
    free(buf);
}
END_TEST

void onnx_add_corpus_tests(Suite *s)
{
    TCase *tc = tcase_create("corpus");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, corpus_base_model_is_valid);
    tcase_add_test(tc, corpus_every_truncation);
    tcase_add_test(tc, corpus_wire_faults);
    tcase_add_test(tc, corpus_semantic_faults);
    tcase_add_test(tc, corpus_random_byte_flips);
    tcase_add_test(tc, unsupported_ops_listed_in_one_error);
    suite_add_tcase(s, tc);
}
