/* clnet — the ONNX reader: protobuf-c unpacks the ModelProto (after the wire
 * pre-scan in onnx_wire.c), then every size, dtype, name and reference is
 * checked while the graph is copied into plain structs (clnet/onnx.h). */
#define _XOPEN_SOURCE 700 /* realpath (XSI), beside the project's POSIX 2008 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

#include "io/onnx_internal.h"
#include "onnx.pb-c.h"
#include "runtime/alloc.h"

/* ---- Errors and memory -------------------------------------------------- */

#define report clnet__onnx_report

/* Every block the model holds is on one list, freed together. */
typedef union block {
    union block *next;
    max_align_t align;
} block;

struct clnet_onnx_model {
    clnet_onnx_graph graph;
    block *blocks;
    size_t n_tensors;                  /* initializers, then Constant values */
    const clnet_onnx_tensor **tensors; /* for find_tensor */
    Onnx__ModelProto *proto;           /* names and attribute arrays point into it */
};

/* count * size zeroed bytes owned by m; NULL on overflow or failure. */
static void *take(clnet_onnx_model *m, size_t count, size_t size)
{
    if (size && count > (SIZE_MAX - sizeof(block)) / size)
        return NULL;
    block *b = clnet__calloc(1, sizeof(block) + count * size);
    if (!b)
        return NULL;
    b->next = m->blocks;
    m->blocks = b;
    return b + 1;
}

static const char *str(const char *s)
{
    return s ? s : "";
}

/* A name for messages: 'name', or #index when the name is empty. */
static const char *label(char *buf, size_t n, const char *name, size_t index)
{
    if (name && *name)
        snprintf(buf, n, "'%.200s'", name);
    else
        snprintf(buf, n, "#%zu", index);
    return buf;
}

/* ---- Tensors ------------------------------------------------------------ */

static const char *dtype_name(int32_t t)
{
    static const char *const names[] = {
        "UNDEFINED", "FLOAT",  "UINT8",     "INT8",       "UINT16",   "INT16",
        "INT32",     "INT64",  "STRING",    "BOOL",       "FLOAT16",  "DOUBLE",
        "UINT32",    "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16",
    };
    return t >= 0 && t < (int32_t)(sizeof names / sizeof names[0]) ? names[t] : "an unknown type";
}

/* Checks a dtype is one the reader keeps; sets its element size. */
static clnet_status check_dtype(const onnx_diag *d, const char *what, int has, int32_t t,
                                size_t *es)
{
    if (!has)
        return report(d, CLNET_ERR_FORMAT, "%s: no data_type", what);
    if (t == CLNET_ONNX_FLOAT || t == CLNET_ONNX_INT64) {
        *es = t == CLNET_ONNX_FLOAT ? 4 : 8;
        return CLNET_OK;
    }
    return report(d, CLNET_ERR_UNSUPPORTED,
                  "%s: data type %s (%" PRId32 ") is not supported (FLOAT weights, INT64 shapes)",
                  what, dtype_name(t), t);
}

/* Reads the external-data keys: location (relative, inside base_dir), offset
 * and length (decimal); the side file must hold [offset, offset + bytes). */
static int parse_u64(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        uint64_t digit = (uint64_t)(*s - '0');
        if (*s < '0' || *s > '9' || x > (UINT64_MAX - digit) / 10)
            return -1;
        x = x * 10 + digit;
    }
    *v = x;
    return 0;
}

static int escapes(const char *loc)
{
    if (loc[0] == '/' || loc[0] == '\\')
        return 1;
    for (const char *p = loc; *p;) {
        size_t n = strcspn(p, "/\\");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 1;
        p += n;
        if (*p)
            p++;
    }
    return 0;
}

static clnet_status read_external(const onnx_diag *d, const char *what, const char *base_dir,
                                  const Onnx__TensorProto *t, size_t bytes, void *dst)
{
    const char *loc = NULL;
    uint64_t off = 0, len = bytes;
    int has_len = 0;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const char *k = str(t->external_data[i]->key), *v = str(t->external_data[i]->value);
        if (!strcmp(k, "location"))
            loc = v;
        else if (!strcmp(k, "offset") || !strcmp(k, "length")) {
            uint64_t x;
            if (parse_u64(v, &x))
                return report(d, CLNET_ERR_FORMAT, "%s: external-data %s '%.40s' is not a number",
                              what, k, v);
            if (k[0] == 'o')
                off = x;
            else {
                len = x;
                has_len = 1;
            }
        }
    }
    if (!loc || !*loc)
        return report(d, CLNET_ERR_FORMAT, "%s: external data without a location", what);
    if (escapes(loc))
        return report(d, CLNET_ERR_FORMAT,
                      "%s: external-data location '%.200s' is absolute or leaves the model's "
                      "directory (..)",
                      what, loc);
    if (has_len && len != bytes)
        return report(d, CLNET_ERR_FORMAT,
                      "%s: external-data length %" PRIu64 " but the shape needs %zu bytes", what,
                      len, bytes);
    if (!base_dir)
        return report(d, CLNET_ERR_FORMAT,
                      "%s: external data ('%.200s') in a model parsed from memory without a "
                      "base directory",
                      what, loc);
    size_t pl = strlen(base_dir) + strlen(loc) + 2;
    char *path = clnet__malloc(pl);
    if (!path)
        return report(d, CLNET_ERR_HOST_MEMORY, "out of host memory");
    snprintf(path, pl, "%s/%s", base_dir, loc);
    clnet_status st = CLNET_OK;
    /* A symbolic link on the way may still lead out: compare real paths. */
    char real_base[PATH_MAX], real_path[PATH_MAX];
    size_t bl = 0;
    int fd = -1;
    if (realpath(base_dir, real_base) && realpath(path, real_path)) {
        bl = strlen(real_base);
        if (strncmp(real_path, real_base, bl) || (real_path[bl] != '/' && bl > 1))
            st = report(d, CLNET_ERR_FORMAT,
                        "%s: external-data location '%.200s' resolves outside the model's "
                        "directory (through a symbolic link)",
                        what, loc);
    }
    struct stat sb;
    if (!st && (fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        st = report(d, CLNET_ERR_IO, "%s: cannot open external data '%.200s': %s", what, loc,
                    strerror(errno));
    else if (!st && (fstat(fd, &sb) || !S_ISREG(sb.st_mode)))
        st = report(d, CLNET_ERR_IO, "%s: external data '%.200s' is not a regular file", what, loc);
    else if (!st && (off > (uint64_t)sb.st_size || bytes > (uint64_t)sb.st_size - off))
        st = report(d, CLNET_ERR_FORMAT,
                    "%s: external data [%" PRIu64 ", +%zu) lies past the end of '%.200s' "
                    "(%" PRIu64 " bytes)",
                    what, off, bytes, loc, (uint64_t)sb.st_size);
    for (size_t done = 0; !st && done < bytes;) {
        ssize_t r = pread(fd, (char *)dst + done, bytes - done, (off_t)(off + done));
        if (r <= 0)
            st = report(d, CLNET_ERR_IO, "%s: reading external data '%.200s': %s", what, loc,
                        r ? strerror(errno) : "the file shrank");
        else
            done += (size_t)r;
    }
    if (fd >= 0)
        close(fd);
    clnet__free(path);
    return st;
}

/* Copies a TensorProto into out, checking dims, sizes and the one data field. */
static clnet_status convert_tensor(clnet_onnx_model *m, const onnx_diag *d, const char *what,
                                   const char *base_dir, const Onnx__TensorProto *t,
                                   clnet_onnx_tensor *out)
{
    size_t es;
    clnet_status st = check_dtype(d, what, t->has_data_type, t->data_type, &es);
    if (st)
        return st;
    if (t->segment)
        return report(d, CLNET_ERR_UNSUPPORTED, "%s: segmented tensors are not supported", what);
    if (t->n_dims > CLNET_ONNX_MAX_DIMS)
        return report(d, CLNET_ERR_FORMAT, "%s: %zu dims (at most %d)", what, t->n_dims,
                      CLNET_ONNX_MAX_DIMS);
    uint64_t numel = 1, cap = CLNET_ONNX_MAX_TENSOR_BYTES / es;
    for (size_t i = 0; i < t->n_dims; i++) {
        int64_t v = t->dims[i];
        if (v < 0)
            return report(d, CLNET_ERR_FORMAT, "%s: dim %zu is negative (%" PRId64 ")", what, i, v);
        if ((uint64_t)v > cap || (numel && (uint64_t)v > cap / numel))
            return report(d, CLNET_ERR_FORMAT,
                          "%s: the shape's size overflows the %" PRIu64 "-byte tensor limit at "
                          "dim %zu (%" PRId64 ")",
                          what, CLNET_ONNX_MAX_TENSOR_BYTES, i, v);
        numel = v ? numel * (uint64_t)v : 0;
        out->shape[i] = v;
    }
    if (numel > SIZE_MAX / es)
        return report(d, CLNET_ERR_TOO_LARGE, "%s: too large for this machine", what);
    out->ndim = (int)t->n_dims;
    out->numel = (size_t)numel;
    out->dtype = (clnet_onnx_dtype)t->data_type;
    size_t bytes = out->numel * es;
    int external =
        t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (t->has_data_location && !external && t->data_location)
        return report(d, CLNET_ERR_FORMAT, "%s: unknown data_location %d", what,
                      (int)t->data_location);
    size_t typed = es == 4 ? t->n_float_data : t->n_int64_data;
    int sources = !!t->has_raw_data + !!typed + !!external + !!t->n_int32_data +
                  !!t->n_string_data + !!t->n_double_data + !!t->n_uint64_data +
                  (es == 4 ? !!t->n_int64_data : !!t->n_float_data);
    if (sources > 1 || (sources == 1 && !t->has_raw_data && !typed && !external))
        return report(d, CLNET_ERR_FORMAT,
                      "%s: data in more than one field, or in a field not of its type", what);
    if (sources == 0 && bytes)
        return report(d, CLNET_ERR_FORMAT, "%s: no data for %zu elements", what, out->numel);
    void *dst = take(m, out->numel ? out->numel : 1, es);
    if (!dst)
        return report(d, CLNET_ERR_HOST_MEMORY, "%s: out of host memory (%zu bytes)", what, bytes);
    if (t->has_raw_data) {
        if (t->raw_data.len != bytes)
            return report(d, CLNET_ERR_FORMAT,
                          "%s: raw_data holds %zu bytes but the shape needs %zu (%zu x %zu)", what,
                          t->raw_data.len, bytes, out->numel, es);
        if (bytes)
            memcpy(dst, t->raw_data.data, bytes); /* little-endian, as the host */
    } else if (typed) {
        if (typed != out->numel)
            return report(d, CLNET_ERR_FORMAT, "%s: %s holds %zu values but the shape needs %zu",
                          what, es == 4 ? "float_data" : "int64_data", typed, out->numel);
        memcpy(dst, es == 4 ? (const void *)t->float_data : (const void *)t->int64_data, bytes);
    } else if (external && (st = read_external(d, what, base_dir, t, bytes, dst)))
        return st;
    if (es == 4)
        out->f32 = dst;
    else
        out->i64 = dst;
    return CLNET_OK;
}

/* ---- Names -------------------------------------------------------------- */

/* An open-addressing set of the names defined so far, each with the index of
 * the node that defines it (-1: a graph input, -2: an initializer). */
typedef struct names {
    const char **key;
    long *node;
    size_t cap;
} names;

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static int names_init(clnet_onnx_model *m, names *n, size_t count)
{
    n->cap = 16;
    while (n->cap < 2 * count + 16)
        n->cap *= 2;
    n->key = take(m, n->cap, sizeof *n->key);
    n->node = take(m, n->cap, sizeof *n->node);
    return n->key && n->node ? 0 : -1;
}

/* The slot of name: its own if present, else the empty one to fill. */
static size_t names_slot(const names *n, const char *name)
{
    size_t i = (size_t)hash(name) & (n->cap - 1);
    while (n->key[i] && strcmp(n->key[i], name))
        i = (i + 1) & (n->cap - 1);
    return i;
}

/* ---- The graph ---------------------------------------------------------- */

static clnet_status convert_value(const onnx_diag *d, const char *kind, size_t index,
                                  const Onnx__ValueInfoProto *v, clnet_onnx_value *out)
{
    char lb[256], what[300];
    snprintf(what, sizeof what, "graph %s %s", kind, label(lb, sizeof lb, v->name, index));
    if (!v->name || !*v->name)
        return report(d, CLNET_ERR_FORMAT, "%s: no name", what);
    out->name = v->name;
    const Onnx__TypeProto *tp = v->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return report(d, CLNET_ERR_UNSUPPORTED,
                      "%s: not a tensor (sequences, maps and sparse "
                      "tensors are not supported)",
                      what);
    size_t es;
    clnet_status st =
        check_dtype(d, what, tp->tensor_type->has_elem_type, tp->tensor_type->elem_type, &es);
    if (st)
        return st;
    out->dtype = (clnet_onnx_dtype)tp->tensor_type->elem_type;
    const Onnx__TensorShapeProto *sh = tp->tensor_type->shape;
    if (!sh)
        return CLNET_OK; /* rank unknown: ndim 0, as ONNX allows */
    if (sh->n_dim > CLNET_ONNX_MAX_DIMS)
        return report(d, CLNET_ERR_FORMAT, "%s: %zu dims (at most %d)", what, sh->n_dim,
                      CLNET_ONNX_MAX_DIMS);
    out->ndim = (int)sh->n_dim;
    for (size_t i = 0; i < sh->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *dim = sh->dim[i];
        out->shape[i] = -1;
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (dim->dim_value < 0)
                return report(d, CLNET_ERR_FORMAT, "%s: dim %zu is negative (%" PRId64 ")", what, i,
                              dim->dim_value);
            out->shape[i] = dim->dim_value;
        } else
            out->dim_param[i] =
                dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                    ? str(dim->dim_param)
                    : "";
    }
    return CLNET_OK;
}

static clnet_status convert_attr(clnet_onnx_model *m, const onnx_diag *d, const char *node,
                                 const Onnx__AttributeProto *a, clnet_onnx_attr *out)
{
    char what[600];
    snprintf(what, sizeof what, "%s: attribute '%.100s'", node, str(a->name));
    if (!a->name || !*a->name)
        return report(d, CLNET_ERR_FORMAT, "%s: an attribute without a name", node);
    if (a->ref_attr_name && *a->ref_attr_name)
        return report(d, CLNET_ERR_FORMAT, "%s refers to a function attribute in the main graph",
                      what);
    out->name = a->name;
    out->type = (clnet_onnx_attr_type)a->type;
    switch (a->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
        out->f = a->f;
        return CLNET_OK;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
        out->i = a->i;
        return CLNET_OK;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: {
        char *s = take(m, a->s.len + 1, 1);
        if (!s)
            return report(d, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", what);
        if (a->s.len && memchr(a->s.data, 0, a->s.len))
            return report(d, CLNET_ERR_FORMAT, "%s: a NUL byte inside the string", what);
        if (a->s.len)
            memcpy(s, a->s.data, a->s.len);
        out->s = s;
        return CLNET_OK;
    }
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: {
        clnet_onnx_tensor *t = take(m, 1, sizeof *t);
        if (!t)
            return report(d, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", what);
        if (!a->t)
            return report(d, CLNET_ERR_FORMAT, "%s: TENSOR without a tensor", what);
        t->name = "";
        out->t = t;
        return convert_tensor(m, d, what, NULL, a->t, t);
    }
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        out->count = a->n_floats;
        out->floats = a->floats;
        return CLNET_OK;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        out->count = a->n_ints;
        out->ints = a->ints;
        return CLNET_OK;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS: {
        char **v = take(m, a->n_strings ? a->n_strings : 1, sizeof *v);
        if (!v)
            return report(d, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", what);
        for (size_t i = 0; i < a->n_strings; i++) {
            size_t len = a->strings[i].len;
            if (len && memchr(a->strings[i].data, 0, len))
                return report(d, CLNET_ERR_FORMAT, "%s: a NUL byte inside string %zu", what, i);
            if (!(v[i] = take(m, len + 1, 1)))
                return report(d, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", what);
            if (len)
                memcpy(v[i], a->strings[i].data, len);
        }
        out->count = a->n_strings;
        out->strings = (const char *const *)v;
        return CLNET_OK;
    }
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
        return report(d, CLNET_ERR_UNSUPPORTED,
                      "%s holds a subgraph (control flow: If, Loop, "
                      "Scan) which is not supported",
                      what);
    default:
        return report(d, CLNET_ERR_UNSUPPORTED, "%s: attribute type %d is not supported", what,
                      (int)a->type);
    }
}

/* Defines one name; a second definition is an error (ONNX graphs are SSA). */
static clnet_status define(const onnx_diag *d, names *n, const char *name, long node,
                           const char *what)
{
    size_t i = names_slot(n, name);
    if (n->key[i])
        return report(d, CLNET_ERR_FORMAT, "%s: the name '%.200s' is defined twice", what, name);
    n->key[i] = name;
    n->node[i] = node;
    return CLNET_OK;
}

static clnet_status convert_node(clnet_onnx_model *m, const onnx_diag *d, names *n, size_t index,
                                 const Onnx__NodeProto *p, clnet_onnx_node *out)
{
    char lb[256], what[400];
    snprintf(what, sizeof what, "node %s (%.60s)", label(lb, sizeof lb, p->name, index),
             str(p->op_type));
    if (!p->op_type || !*p->op_type)
        return report(d, CLNET_ERR_FORMAT, "%s: no op_type", what);
    out->name = str(p->name);
    out->op_type = p->op_type;
    out->domain = str(p->domain);
    out->n_inputs = p->n_input;
    out->n_outputs = p->n_output;
    out->inputs = (const char *const *)p->input;
    out->outputs = (const char *const *)p->output;
    for (size_t i = 0; i < p->n_input; i++) {
        const char *in = p->input[i];
        if (!*in)
            continue; /* an omitted optional input */
        size_t s = names_slot(n, in);
        if (!n->key[s])
            return report(d, CLNET_ERR_FORMAT,
                          "%s: input '%.200s' is not a graph input, an initializer or the output "
                          "of an earlier node (a dangling name, a cycle or nodes out of order)",
                          what, in);
    }
    if (p->n_attribute > ONNX_MAX_ATTRS)
        return report(d, CLNET_ERR_FORMAT, "%s: %zu attributes (at most %d)", what, p->n_attribute,
                      ONNX_MAX_ATTRS);
    clnet_onnx_attr *attrs = take(m, p->n_attribute ? p->n_attribute : 1, sizeof *attrs);
    if (!attrs)
        return report(d, CLNET_ERR_HOST_MEMORY, "out of host memory");
    for (size_t i = 0; i < p->n_attribute; i++) {
        clnet_status st = convert_attr(m, d, what, p->attribute[i], &attrs[i]);
        if (st)
            return st;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(attrs[j].name, attrs[i].name))
                return report(d, CLNET_ERR_FORMAT, "%s: attribute '%.100s' appears twice", what,
                              attrs[i].name);
    }
    out->n_attrs = p->n_attribute;
    out->attrs = attrs;
    for (size_t i = 0; i < p->n_output; i++) {
        clnet_status st;
        if (*p->output[i] && (st = define(d, n, p->output[i], (long)index, what)))
            return st;
    }
    return CLNET_OK;
}

/* The opset of the default domain ("" or "ai.onnx"), which must be in range. */
static clnet_status read_opset(const onnx_diag *d, const Onnx__ModelProto *mp, int64_t *opset)
{
    int found = 0;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        const char *dom = str(o->domain);
        if (*dom && strcmp(dom, "ai.onnx"))
            continue;
        if (found)
            return report(d, CLNET_ERR_FORMAT, "the default domain's opset is imported twice");
        found = 1;
        *opset = o->has_version ? o->version : 0;
    }
    if (!found)
        return report(d, CLNET_ERR_FORMAT, "no opset_import for the default ONNX domain");
    if (*opset < CLNET_ONNX_MIN_OPSET || *opset > CLNET_ONNX_MAX_OPSET)
        return report(d, CLNET_ERR_UNSUPPORTED,
                      "opset %" PRId64 " of the default domain; clnet reads opsets %d-%d "
                      "(re-export with torch.onnx.export(..., opset_version=13))",
                      *opset, CLNET_ONNX_MIN_OPSET, CLNET_ONNX_MAX_OPSET);
    return CLNET_OK;
}

static clnet_status convert_graph(clnet_onnx_model *m, const onnx_diag *d, const char *base_dir,
                                  const Onnx__GraphProto *g)
{
    clnet_onnx_graph *out = &m->graph;
    char lb[256], what[300];
    names n;
    size_t count = g->n_input + g->n_initializer;
    for (size_t i = 0; i < g->n_node; i++)
        count += g->node[i]->n_output;
    clnet_onnx_tensor *init = take(m, g->n_initializer + 1, sizeof *init);
    clnet_onnx_value *ins = take(m, g->n_input + 1, sizeof *ins);
    clnet_onnx_value *outs = take(m, g->n_output + 1, sizeof *outs);
    clnet_onnx_node *nodes = take(m, g->n_node + 1, sizeof *nodes);
    m->tensors = take(m, g->n_initializer + g->n_node + 1, sizeof *m->tensors);
    if (!init || !ins || !outs || !nodes || !m->tensors || names_init(m, &n, count))
        return report(d, CLNET_ERR_HOST_MEMORY, "out of host memory");
    if (g->n_sparse_initializer)
        return report(d, CLNET_ERR_UNSUPPORTED, "sparse initializers are not supported");
    clnet_status st;
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        snprintf(what, sizeof what, "initializer %s", label(lb, sizeof lb, t->name, i));
        if (!t->name || !*t->name)
            return report(d, CLNET_ERR_FORMAT, "%s: no name", what);
        init[i].name = t->name;
        if ((st = convert_tensor(m, d, what, base_dir, t, &init[i])) ||
            (st = define(d, &n, t->name, -2, what)))
            return st;
        m->tensors[m->n_tensors++] = &init[i];
    }
    /* Graph inputs; before IR 4 initializers were listed as inputs too. */
    for (size_t i = 0; i < g->n_input; i++) {
        clnet_onnx_value *v = &ins[out->n_inputs];
        if ((st = convert_value(d, "input", i, g->input[i], v)))
            return st;
        size_t s = names_slot(&n, v->name);
        if (n.key[s] && n.node[s] == -2)
            continue; /* an initializer listed as an input too */
        snprintf(what, sizeof what, "graph input '%.200s'", v->name);
        if ((st = define(d, &n, v->name, -1, what)))
            return st;
        out->n_inputs++;
    }
    for (size_t i = 0; i < g->n_node; i++) {
        if ((st = convert_node(m, d, &n, i, g->node[i], &nodes[i])))
            return st;
        const clnet_onnx_node *nd = &nodes[i];
        if (!strcmp(nd->op_type, "Constant") && !*nd->domain && nd->n_outputs == 1 &&
            nd->n_attrs == 1 && nd->attrs[0].type == CLNET_ONNX_ATTR_TENSOR) {
            clnet_onnx_tensor *t = (clnet_onnx_tensor *)nd->attrs[0].t;
            t->name = nd->outputs[0];
            m->tensors[m->n_tensors++] = t;
        }
    }
    out->n_nodes = g->n_node;
    for (size_t i = 0; i < g->n_output; i++) {
        if ((st = convert_value(d, "output", i, g->output[i], &outs[i])))
            return st;
        if (!n.key[names_slot(&n, outs[i].name)])
            return report(d, CLNET_ERR_FORMAT,
                          "graph output '%.200s' is produced by no node, input or initializer",
                          outs[i].name);
    }
    if (!g->n_output)
        return report(d, CLNET_ERR_FORMAT, "the graph has no outputs");
    out->n_outputs = g->n_output;
    out->n_initializers = g->n_initializer;
    out->initializers = init;
    out->inputs = ins;
    out->outputs = outs;
    out->nodes = nodes;
    return CLNET_OK;
}

/* protobuf-c allocates through clnet's wrappers, so fault tests reach it. */
static void *pb_alloc(void *data, size_t size)
{
    (void)data;
    return clnet__malloc(size ? size : 1);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    clnet__free(p);
}

static clnet_status parse(const onnx_diag *d, const unsigned char *buf, size_t len,
                          const char *base_dir, clnet_onnx_model **out)
{
    if (len == 0)
        return report(d, CLNET_ERR_FORMAT, "an empty buffer is not an ONNX model");
    if ((uint64_t)len > CLNET_ONNX_MAX_FILE)
        return report(d, CLNET_ERR_FORMAT, "%zu bytes: larger than protobuf's 2 GiB limit", len);
    clnet_status st = clnet__onnx_wire_check(d, buf, len);
    if (st)
        return st;
    ProtobufCAllocator alloc = { pb_alloc, pb_free, NULL };
    Onnx__ModelProto *mp = onnx__model_proto__unpack(&alloc, len, buf);
    if (!mp)
        return report(d, CLNET_ERR_FORMAT,
                      "protobuf-c could not unpack the ModelProto (or ran "
                      "out of host memory)");
    clnet_onnx_model *m = clnet__calloc(1, sizeof *m);
    if (!m) {
        onnx__model_proto__free_unpacked(mp, &alloc);
        return report(d, CLNET_ERR_HOST_MEMORY, "out of host memory");
    }
    m->proto = mp; /* kept: node and attribute strings point into it */
    if (!mp->graph)
        st = report(d, CLNET_ERR_FORMAT, "the ModelProto has no graph");
    else if (!(st = read_opset(d, mp, &m->graph.opset)))
        st = convert_graph(m, d, base_dir, mp->graph);
    m->graph.ir_version = mp->has_ir_version ? mp->ir_version : 0;
    if (st) {
        clnet_onnx_model_destroy(m);
        return st;
    }
    m->graph.producer = str(mp->producer_name);
    *out = m;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_onnx_model_parse(const void *buf, size_t len, const char *base_dir,
                                              clnet_onnx_model **out, char *err, size_t err_size)
{
    onnx_diag d = { "clnet_onnx_model_parse", err, err_size };
    if (!out)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: out != NULL");
    *out = NULL;
    if (!buf && len)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: buf != NULL");
    return parse(&d, buf, len, base_dir, out);
}

CLNET_API clnet_status clnet_onnx_model_load(const char *path, clnet_onnx_model **out, char *err,
                                             size_t err_size)
{
    onnx_diag d = { "clnet_onnx_model_load", err, err_size };
    if (!out)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: out != NULL");
    *out = NULL;
    if (!path)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: path != NULL");
    d.what = path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return report(&d, CLNET_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    clnet_status st = CLNET_OK;
    unsigned char *buf = NULL;
    size_t len = 0;
    if (fstat(fd, &sb) != 0)
        st = report(&d, CLNET_ERR_IO, "cannot stat: %s", strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = report(&d, CLNET_ERR_IO, "not a regular file");
    else if ((uint64_t)sb.st_size > CLNET_ONNX_MAX_FILE)
        st = report(&d, CLNET_ERR_IO, "%" PRIu64 " bytes: larger than protobuf's 2 GiB limit",
                    (uint64_t)sb.st_size);
    else if (!(buf = clnet__malloc((len = (size_t)sb.st_size) + 1)))
        st = report(&d, CLNET_ERR_HOST_MEMORY, "out of host memory (%zu bytes)", len);
    for (size_t done = 0; !st && done < len;) {
        ssize_t r = read(fd, buf + done, len - done);
        if (r <= 0)
            st = report(&d, CLNET_ERR_IO, "read failed: %s",
                        r ? strerror(errno) : "the file shrank while being read");
        else
            done += (size_t)r;
    }
    close(fd);
    char *dir = NULL;
    if (!st) {
        const char *slash = strrchr(path, '/');
        size_t dl = slash ? (size_t)(slash - path) : 1;
        if (!(dir = clnet__malloc(dl + 1)))
            st = report(&d, CLNET_ERR_HOST_MEMORY, "out of host memory");
        else {
            memcpy(dir, slash ? path : ".", dl);
            dir[dl] = 0;
            if (slash == path)
                strcpy(dir, "/");
        }
    }
    if (!st)
        st = parse(&d, buf, len, dir, out);
    clnet__free(dir);
    clnet__free(buf);
    return st;
}

CLNET_API const clnet_onnx_graph *clnet_onnx_model_graph(const clnet_onnx_model *model)
{
    return model ? &model->graph : NULL;
}

CLNET_API const clnet_onnx_tensor *clnet_onnx_model_find_tensor(const clnet_onnx_model *model,
                                                                const char *name)
{
    for (size_t i = 0; model && name && i < model->n_tensors; i++)
        if (!strcmp(model->tensors[i]->name, name))
            return model->tensors[i];
    return NULL;
}

CLNET_API void clnet_onnx_model_destroy(clnet_onnx_model *model)
{
    if (!model)
        return;
    if (model->proto) {
        ProtobufCAllocator alloc = { pb_alloc, pb_free, NULL };
        onnx__model_proto__free_unpacked(model->proto, &alloc);
    }
    for (block *b = model->blocks, *next; b; b = next) {
        next = b->next;
        clnet__free(b);
    }
    clnet__free(model);
}
