/* clnet — internals of the ONNX reader shared by src/io/onnx.c (loading and
 * checking), src/io/onnx_wire.c (the protobuf wire pre-scan) and
 * src/io/onnx_ops.c (the table of supported ops). */
#ifndef CLNET_IO_ONNX_INTERNAL_H
#define CLNET_IO_ONNX_INTERNAL_H

#include <stddef.h>

#include "clnet/onnx.h"
#include "io/diag.h"

/* The deepest message nesting accepted; ONNX's own models nest about 8 deep
 * (Model > Graph > ValueInfo > Type > Tensor > Shape > Dimension). The bound
 * keeps protobuf-c's recursive unpacking off a hostile stack. */
#define ONNX_MAX_DEPTH 32

/* The most attributes one node may have (ONNX ops define at most ~12); the
 * duplicate check is quadratic in it. */
#define ONNX_MAX_ATTRS 256

/* Where messages go and what they start with (the function or the path). */
typedef clnet__diag onnx_diag;
#define clnet__onnx_report clnet__diag_report

/* Walks buf[0..len) as an encoded onnx.ModelProto before protobuf-c sees it:
 * every tag, varint, length and wire type is checked against the schema,
 * nesting is bounded by ONNX_MAX_DEPTH, strings hold no NUL byte and groups
 * are refused. CLNET_ERR_FORMAT names the field path ("graph.node[3].input")
 * and the byte offset of the problem. */
clnet_status clnet__onnx_wire_check(const onnx_diag *d, const unsigned char *buf, size_t len);

#endif
