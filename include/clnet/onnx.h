/* clnet — ONNX models: a strict reader that turns a .onnx file (or buffer)
 * into a checked, read-only graph on the host. Nothing here touches OpenCL.
 * What is supported and refused is in docs/onnx.md. */
#ifndef CLNET_ONNX_H
#define CLNET_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits the reader enforces before it trusts a size. */
#define CLNET_ONNX_MAX_FILE ((uint64_t)1 << 31)         /* protobuf's 2 GiB message limit */
#define CLNET_ONNX_MAX_TENSOR_BYTES ((uint64_t)1 << 32) /* one tensor, inline or external */
#define CLNET_ONNX_MAX_DIMS 8
#define CLNET_ONNX_MIN_OPSET 11
#define CLNET_ONNX_MAX_OPSET 17

/* Element types the reader keeps. Weights are float32; int64 is kept for the
 * shape-like tensors (Reshape shapes, Gather indices, ...) that exporters
 * write as initializers and Constant nodes. Every other ONNX type is refused
 * by name. */
typedef enum clnet_onnx_dtype {
    CLNET_ONNX_FLOAT = 1, /* ONNX TensorProto.FLOAT */
    CLNET_ONNX_INT64 = 7  /* ONNX TensorProto.INT64 */
} clnet_onnx_dtype;

/* A tensor with its data on the host: an initializer, or the value of a
 * Constant node or a tensor attribute. Row-major. Borrowed from the model:
 * valid until clnet_onnx_model_destroy(). */
typedef struct clnet_onnx_tensor {
    const char *name; /* "" for an attribute's unnamed tensor */
    clnet_onnx_dtype dtype;
    int ndim;                           /* 0..CLNET_ONNX_MAX_DIMS (0: a scalar) */
    int64_t shape[CLNET_ONNX_MAX_DIMS]; /* each >= 0; shape[ndim..] are 0 */
    size_t numel;                       /* product of the shape (1 for a scalar) */
    const float *f32;                   /* numel floats when dtype is FLOAT, else NULL */
    const int64_t *i64;                 /* numel values when dtype is INT64, else NULL */
} clnet_onnx_tensor;

/* A graph input or output. A dimension that is symbolic ("batch") or absent
 * is -1 in shape, with its name (or "") in dim_param. */
typedef struct clnet_onnx_value {
    const char *name;
    clnet_onnx_dtype dtype;
    int ndim;
    int64_t shape[CLNET_ONNX_MAX_DIMS];
    const char *dim_param[CLNET_ONNX_MAX_DIMS]; /* NULL where the dim is a number */
} clnet_onnx_value;

/* Attribute kinds, numbered as ONNX's AttributeProto.AttributeType. */
typedef enum clnet_onnx_attr_type {
    CLNET_ONNX_ATTR_FLOAT = 1,
    CLNET_ONNX_ATTR_INT = 2,
    CLNET_ONNX_ATTR_STRING = 3,
    CLNET_ONNX_ATTR_TENSOR = 4,
    CLNET_ONNX_ATTR_FLOATS = 6,
    CLNET_ONNX_ATTR_INTS = 7,
    CLNET_ONNX_ATTR_STRINGS = 8
} clnet_onnx_attr_type;

/* One node attribute; only the members of its type are set. */
typedef struct clnet_onnx_attr {
    const char *name;
    clnet_onnx_attr_type type;
    float f;                    /* FLOAT */
    int64_t i;                  /* INT */
    const char *s;              /* STRING (NUL-terminated; no NUL inside) */
    const clnet_onnx_tensor *t; /* TENSOR */
    size_t count;               /* FLOATS, INTS, STRINGS: number of values */
    const float *floats;
    const int64_t *ints;
    const char *const *strings;
} clnet_onnx_attr;

/* One node, in the file's order, which the reader has checked is a
 * topological order: every non-empty input names a graph input, an
 * initializer or an output of an earlier node. "" is an omitted optional
 * input or output. */
typedef struct clnet_onnx_node {
    const char *name;    /* the node's name, or "" */
    const char *op_type; /* "Conv" */
    const char *domain;  /* "" for the default ONNX domain */
    size_t n_inputs, n_outputs, n_attrs;
    const char *const *inputs;
    const char *const *outputs;
    const clnet_onnx_attr *attrs;
} clnet_onnx_node;

/* The graph of a loaded model: plain read-only data, borrowed from the model. */
typedef struct clnet_onnx_graph {
    int64_t ir_version;
    int64_t opset;        /* the default domain's opset, CLNET_ONNX_MIN..MAX_OPSET */
    const char *producer; /* producer_name, or "" */
    size_t n_inputs, n_outputs, n_nodes, n_initializers;
    const clnet_onnx_value *inputs; /* graph inputs that are not initializers */
    const clnet_onnx_value *outputs;
    const clnet_onnx_node *nodes;
    const clnet_onnx_tensor *initializers;
} clnet_onnx_graph;

/* A loaded model. Thread-safety: immutable after loading, so any number of
 * threads may read one concurrently. */
typedef struct clnet_onnx_model clnet_onnx_model;

/* Parses an ONNX ModelProto held in buf[0..len) (len <= CLNET_ONNX_MAX_FILE).
 * base_dir is the directory that external-data paths are relative to, or
 * NULL to refuse external data. Everything is checked before it is trusted
 * (docs/onnx.md lists the checks): the protobuf wire format, nesting depth
 * (32) and the memory unpacking would take, the opset, dtypes, shapes and
 * data sizes (overflow-safe), names (every node input resolvable, in
 * topological order; no name defined twice), attributes (at most 256 per
 * node). A violation is CLNET_ERR_FORMAT with a message naming the node,
 * initializer or field. What is valid ONNX but beyond the reader (an opset
 * outside 11-17, a dtype other than FLOAT and INT64, subgraph attributes,
 * segmented or sparse tensors) is CLNET_ERR_UNSUPPORTED, naming what was
 * found. An external-data file that cannot be opened or read is
 * CLNET_ERR_IO; one whose location leaves base_dir is CLNET_ERR_FORMAT. The
 * buffer is only read.
 * On success *out is caller-owned: free it with clnet_onnx_model_destroy().
 * On failure *out is NULL and err (optional, err_size bytes) receives a
 * NUL-terminated message. */
CLNET_API clnet_status clnet_onnx_model_parse(const void *buf, size_t len, const char *base_dir,
                                              clnet_onnx_model **out, char *err, size_t err_size);

/* Reads and parses a file; external data is read relative to the file's
 * directory. CLNET_ERR_IO when the file cannot be opened or read, is not a
 * regular file or is larger than CLNET_ONNX_MAX_FILE. Messages start with
 * the path. Ownership as for the parse. */
CLNET_API clnet_status clnet_onnx_model_load(const char *path, clnet_onnx_model **out, char *err,
                                             size_t err_size);

/* The model's graph; borrowed: valid until the model is destroyed. NULL if
 * model is NULL. */
CLNET_API const clnet_onnx_graph *clnet_onnx_model_graph(const clnet_onnx_model *model);

/* The initializer (or Constant node's value) named `name`, or NULL; a linear
 * search. Borrowed like the graph. */
CLNET_API const clnet_onnx_tensor *clnet_onnx_model_find_tensor(const clnet_onnx_model *model,
                                                                const char *name);

/* Checks every node against the table of supported ops and attributes
 * (clnet_onnx_supported_ops). CLNET_OK if all are supported; otherwise
 * CLNET_ERR_UNSUPPORTED, and err receives ONE message that lists every
 * unsupported op type and every unsupported attribute (or attribute value)
 * by name, each once. */
CLNET_API clnet_status clnet_onnx_model_check_supported(const clnet_onnx_model *model, char *err,
                                                        size_t err_size);

/* Frees a model and everything it holds; NULL is a no-op. */
CLNET_API void clnet_onnx_model_destroy(clnet_onnx_model *model);

/* One row of the table of supported ops: the op type and the attributes
 * accepted on it (a NULL-terminated list; names not in it are unsupported). */
typedef struct clnet_onnx_op_support {
    const char *op_type;
    const char *const *attrs;
    const char *note; /* limits on attribute values, or "" */
} clnet_onnx_op_support;

/* The table of supported ops, in a static array of *count rows. */
CLNET_API const clnet_onnx_op_support *clnet_onnx_supported_ops(size_t *count);

#ifdef __cplusplus
}
#endif
#endif
