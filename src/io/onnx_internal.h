/* clnet — internals of the ONNX reader shared by src/io/onnx.c (loading and
 * checking), src/io/onnx_wire.c (the protobuf wire pre-scan) and
 * src/io/onnx_ops.c (the table of supported ops). */
#ifndef CLNET_IO_ONNX_INTERNAL_H
#define CLNET_IO_ONNX_INTERNAL_H

#include <stddef.h>

#include "clnet/onnx.h"

#if defined(__GNUC__)
#define ONNX_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define ONNX_PRINTF(f, a)
#endif

/* The deepest message nesting accepted; ONNX's own models nest about 8 deep
 * (Model > Graph > ValueInfo > Type > Tensor > Shape > Dimension). The bound
 * keeps protobuf-c's recursive unpacking off a hostile stack. */
#define ONNX_MAX_DEPTH 32

/* The most attributes one node may have (ONNX ops define at most ~12); the
 * duplicate check is quadratic in it. */
#define ONNX_MAX_ATTRS 256

/* Where messages go and what they start with (the function or the path). */
typedef struct onnx_diag {
    const char *what;
    char *err;
    size_t err_size;
} onnx_diag;

clnet_status clnet__onnx_report(const onnx_diag *d, clnet_status st, const char *fmt, ...)
    ONNX_PRINTF(3, 4);

/* Walks buf[0..len) as an encoded onnx.ModelProto before protobuf-c sees it:
 * every tag, varint, length and wire type is checked against the schema,
 * nesting is bounded by ONNX_MAX_DEPTH, strings hold no NUL byte and groups
 * are refused. CLNET_ERR_FORMAT names the field path ("graph.node[3].input")
 * and the byte offset of the problem. */
clnet_status clnet__onnx_wire_check(const onnx_diag *d, const unsigned char *buf, size_t len);

#endif
