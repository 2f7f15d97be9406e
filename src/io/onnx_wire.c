/* clnet — the protobuf wire pre-scan of the ONNX reader: checks an encoded
 * ModelProto against the schema protoc-c generated from onnx.proto, so that a
 * malformed file gets a message naming the field, and protobuf-c's recursive
 * unpacker never meets unbounded nesting. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "io/onnx_internal.h"
#include "onnx.pb-c.h"

#define MAX_FIELDS 64

enum {
    WIRE_VARINT = 0,
    WIRE_I64 = 1,
    WIRE_LEN = 2,
    WIRE_SGROUP = 3,
    WIRE_EGROUP = 4,
    WIRE_I32 = 5
};

/* The path from the ModelProto to the field being read, for messages. */
typedef struct frame {
    const char *field;
    size_t index;
    int repeated;
} frame;

typedef struct scan {
    const onnx_diag *d;
    const unsigned char *base;
    uint64_t mem, mem_cap; /* what protobuf-c will allocate, estimated, and its cap */
    frame path[ONNX_MAX_DEPTH + 1];
    int depth;
} scan;

static clnet_status fail(const scan *s, const unsigned char *at, const char *what)
{
    char path[512] = "";
    size_t n = 0;
    for (int i = 0; i < s->depth && n < sizeof path; i++) {
        if (s->depth > 8 && i >= 4 && i < s->depth - 3) {
            if (i == 4)
                n += (size_t)snprintf(path + n, sizeof path - n, ".(%d more)", s->depth - 7);
            continue;
        }
        int w = s->path[i].repeated
                    ? snprintf(path + n, sizeof path - n, "%s%s[%zu]", i ? "." : "",
                               s->path[i].field, s->path[i].index)
                    : snprintf(path + n, sizeof path - n, "%s%s", i ? "." : "", s->path[i].field);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    return clnet__onnx_report(s->d, CLNET_ERR_FORMAT, "malformed protobuf at byte %zu (%s): %s",
                              (size_t)(at - s->base), n ? path : "ModelProto", what);
}

/* A varint of at most 10 bytes that fits in 64 bits; 0 on success. */
static int read_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (*p >= end)
            return -1;
        unsigned char b = *(*p)++;
        if (i == 9 && b > 1)
            return -1;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* The wire type a scalar field of this type is written with, unpacked. */
static int scalar_wire(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return WIRE_I32;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return WIRE_I64;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return WIRE_LEN;
    default:
        return WIRE_VARINT;
    }
}

/* A packed run of scalars of wire type `wire`: whole elements, valid varints. */
static clnet_status check_packed(scan *s, const unsigned char *p, const unsigned char *end,
                                 int wire)
{
    size_t n = (size_t)(end - p);
    if (wire == WIRE_I32 && n % 4)
        return fail(s, p, "a packed run of 32-bit values is not a multiple of 4 bytes");
    if (wire == WIRE_I64 && n % 8)
        return fail(s, p, "a packed run of 64-bit values is not a multiple of 8 bytes");
    while (wire == WIRE_VARINT && p < end) {
        uint64_t v;
        if (read_varint(&p, end, &v))
            return fail(s, p, "a bad varint in a packed run");
        s->mem += 8; /* one byte on the wire can be 8 unpacked */
    }
    s->mem += n;
    return CLNET_OK;
}

static clnet_status check_message(scan *s, const unsigned char *p, const unsigned char *end,
                                  const ProtobufCMessageDescriptor *desc)
{
    size_t counts[MAX_FIELDS] = { 0 };
    while (p < end) {
        const unsigned char *at = p;
        uint64_t tag, v;
        if (read_varint(&p, end, &tag))
            return fail(s, at, "a truncated or overlong tag");
        uint64_t num = tag >> 3;
        int wire = (int)(tag & 7);
        if (num == 0 || num > 536870911u)
            return fail(s, at, "field number 0 or out of range");
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(desc, (unsigned)num);
        const unsigned char *body = NULL, *body_end = NULL;
        size_t fi = f ? (size_t)(f - desc->fields) : 0;
        int repeated = f && f->label == PROTOBUF_C_LABEL_REPEATED;
        frame *fr = &s->path[s->depth];
        fr->field = f ? f->name : NULL;
        fr->repeated = repeated;
        fr->index = f && fi < MAX_FIELDS ? counts[fi]++ : 0;
        s->depth += f != NULL; /* so that a message names the field */
        switch (wire) {
        case WIRE_VARINT:
            if (read_varint(&p, end, &v))
                return fail(s, at, "a truncated or overlong varint");
            break;
        case WIRE_I64:
        case WIRE_I32: {
            size_t w = wire == WIRE_I64 ? 8 : 4;
            if ((size_t)(end - p) < w)
                return fail(s, at, "a fixed-size value past the end");
            p += w;
            break;
        }
        case WIRE_LEN:
            if (read_varint(&p, end, &v))
                return fail(s, at, "a truncated length");
            if (v > (uint64_t)(end - p))
                return fail(s, at, "a length past the end of its message");
            body = p;
            body_end = p + v;
            p = body_end;
            break;
        default:
            return fail(s, at, "a group or an invalid wire type (3, 4, 6 or 7)");
        }
        if (!f)
            continue; /* an unknown field: skipped, as protobuf does */
        s->mem += wire == WIRE_LEN ? (uint64_t)(body_end - body) + 1 : 8;
        int want = scalar_wire(f->type);
        clnet_status st = CLNET_OK;
        if (wire != want && !(repeated && wire == WIRE_LEN && want != WIRE_LEN))
            st = fail(s, at, "the wrong wire type for this field");
        else if (wire == WIRE_LEN && want != WIRE_LEN)
            st = check_packed(s, body, body_end, want);
        else if (f->type == PROTOBUF_C_TYPE_STRING && memchr(body, 0, (size_t)(body_end - body)))
            st = fail(s, at, "a NUL byte inside a string");
        else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            s->mem += ((const ProtobufCMessageDescriptor *)f->descriptor)->sizeof_message +
                      sizeof(void *);
            if (s->mem > s->mem_cap)
                st = fail(s, at,
                          "so many small messages that unpacking would take more than "
                          "64 MiB + 16 bytes per byte of file");
            else if (s->depth > ONNX_MAX_DEPTH)
                st = fail(s, at, "messages nested deeper than 32");
            else
                st = check_message(s, body, body_end, f->descriptor);
        }
        s->depth--;
        if (st)
            return st;
    }
    return CLNET_OK;
}

clnet_status clnet__onnx_wire_check(const onnx_diag *d, const unsigned char *buf, size_t len)
{
    /* Each message costs its C struct: an empty AttributeProto is 2 bytes on
     * the wire and some 250 in memory. Real models stay far below the cap
     * (their bytes are mostly tensor data); a file of millions of empty
     * messages would otherwise make protobuf-c allocate 100x its size. */
    scan s = { .d = d,
               .base = buf,
               .depth = 0,
               .mem = 0,
               .mem_cap = ((uint64_t)64 << 20) + 16 * (uint64_t)len };
    return check_message(&s, buf, buf + len, &onnx__model_proto__descriptor);
}
