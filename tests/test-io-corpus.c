/* clnet tests — a corpus of malformed safetensors files generated from a
 * valid one: every truncation, bad header lengths, bad JSON, every semantic
 * check, and seeded random byte flips. Each file goes through both the
 * buffer parser and the file loader, which must agree. Part of suite "io". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

void io_add_corpus_tests(Suite *s);

/* ---- The valid file and its pieces --------------------------------------- */

#define W "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"
#define B "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}"
#define N "\"n\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[36,44]}"
#define META "\"__metadata__\":{\"format\":\"pt\",\"source\":\"clnet-tests\"}"
/* w with other fields: T(shape, offsets) and a dtype variant. */
#define WS(shape, offs) "{\"w\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":" offs "}}"
#define WD(dtype) "{\"w\":{\"dtype\":" dtype ",\"shape\":[2,3],\"data_offsets\":[0,24]}}"

static const char base_json[] = "{" META "," W "," B "," N "}";
enum { BASE_DATA = 44 };

/* A file: 8-byte little-endian length, header bytes, data bytes i * 7 + 1. */
static unsigned char *build(const char *json, size_t json_len, size_t pad, size_t data_len,
                            size_t *len)
{
    size_t n = json_len + pad;
    unsigned char *buf = malloc(8 + n + data_len + 1);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, json, json_len);
    memset(buf + 8 + json_len, ' ', pad);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + n + i] = (unsigned char)(i * 7 + 1);
    *len = 8 + n + data_len;
    return buf;
}

/* The valid file, its header padded to a multiple of 8 as writers do. */
static unsigned char *build_base(size_t *len, size_t *header_len)
{
    size_t n = sizeof base_json - 1, pad = (8 - n % 8) % 8;
    *header_len = n + pad;
    return build(base_json, n, pad, BASE_DATA, len);
}

/* ---- Running one case ---------------------------------------------------- */

typedef struct corpus {
    char path[256]; /* a scratch file for the loader */
    size_t cases;
} corpus;

static void corpus_open(corpus *c)
{
    const char *base = getenv("TMPDIR");
    snprintf(c->path, sizeof c->path, "%s/clnet-corpus-XXXXXX", base && *base ? base : "/tmp");
    int fd = mkstemp(c->path);
    ck_assert_msg(fd >= 0, "mkstemp failed");
    close(fd);
    c->cases = 0;
}

static void corpus_close(corpus *c)
{
    unlink(c->path);
}

/* Parses buf both ways. Returns the parse status; err receives the parse's
 * message. The loader must return the same status and the same message with
 * the path in front of it. *out receives the parse's result (or NULL). */
static clnet_status run_both(corpus *c, const char *label, const unsigned char *buf, size_t len,
                             char *err, size_t err_size, clnet_safetensors **out)
{
    c->cases++;
    clnet_safetensors *st = (clnet_safetensors *)&st, *st2 = (clnet_safetensors *)&st2;
    clnet_status s = clnet_safetensors_parse(buf, len, &st, err, err_size);
    ck_assert_msg(s == CLNET_OK || s == CLNET_ERR_FORMAT, "%s: parse returned %s: %s", label,
                  clnet_status_name(s), err);
    ck_assert_msg(s == CLNET_OK ? st != NULL : st == NULL, "%s: *out wrong for %s", label,
                  clnet_status_name(s));
    /* A new file each time: ext4 flushes a file truncated and rewritten. */
    unlink(c->path);
    FILE *f = fopen(c->path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    char err2[2048];
    clnet_status s2 = clnet_safetensors_load(c->path, &st2, err2, sizeof err2);
    ck_assert_msg(s2 == s, "%s: load returned %s, parse %s (%s / %s)", label, clnet_status_name(s2),
                  clnet_status_name(s), err2, err);
    if (s) {
        const char *prefix = "clnet_safetensors_parse: ";
        size_t pl = strlen(prefix), fl = strlen(c->path);
        ck_assert_msg(!strncmp(err, prefix, pl) && strlen(err) > pl + 8,
                      "%s: message \"%s\" lacks the prefix or a description", label, err);
        ck_assert_msg(!strncmp(err2, c->path, fl) && !strcmp(err2 + fl + 2, err + pl),
                      "%s: load says \"%s\", parse says \"%s\"", label, err2, err);
    }
    clnet_safetensors_free(st2);
    *out = s ? NULL : st;
    return s;
}

/* A case that must be rejected with a message containing needle. */
static void reject(corpus *c, const char *label, const unsigned char *buf, size_t len,
                   const char *needle)
{
    char err[1024];
    clnet_safetensors *st;
    clnet_status s = run_both(c, label, buf, len, err, sizeof err, &st);
    if (s == CLNET_OK)
        clnet_safetensors_free(st);
    ck_assert_msg(s == CLNET_ERR_FORMAT, "%s: accepted a malformed file", label);
    ck_assert_msg(strstr(err, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", label, err,
                  needle);
}

/* ---- Cases ---------------------------------------------------------------- */

START_TEST(corpus_base_file_is_valid)
{
    corpus c;
    corpus_open(&c);
    size_t len, hlen;
    unsigned char *buf = build_base(&len, &hlen);
    char err[1024];
    clnet_safetensors *st;
    ck_assert_int_eq(run_both(&c, "base", buf, len, err, sizeof err, &st), CLNET_OK);
    ck_assert_uint_eq(st->count, 3);
    ck_assert_str_eq(clnet_safetensors_metadata(st, "source"), "clnet-tests");
    ck_assert_uint_eq(clnet_safetensors_find(st, "n")->offset, 36);
    clnet_safetensors_free(st);
    free(buf);
    corpus_close(&c);
}
END_TEST

START_TEST(corpus_every_truncation)
{
    corpus c;
    corpus_open(&c);
    size_t len, hlen;
    unsigned char *buf = build_base(&len, &hlen);
    char label[64];
    for (size_t cut = 0; cut < len; cut++) {
        snprintf(label, sizeof label, "truncated to %zu of %zu bytes", cut, len);
        reject(&c, label, buf, cut,
               cut < 8          ? "shorter than the 8-byte header length"
               : cut < 8 + hlen ? "runs past the end of the file"
                                : "run past the end of the data section");
    }
    ck_assert_uint_ge(c.cases, 200);
    free(buf);
    corpus_close(&c);
}
END_TEST

START_TEST(corpus_bad_header_lengths)
{
    corpus c;
    corpus_open(&c);
    size_t len, hlen;
    unsigned char *buf = build_base(&len, &hlen);
    const struct {
        uint64_t n;
        const char *needle;
    } cases[] = {
        { 0, "header length 0 is below 2" },
        { 1, "header length 1 is below 2" },
        { 100000001, "header length 100000001 exceeds the limit of 100000000 bytes" },
        { UINT64_MAX, "header length 18446744073709551615 exceeds the limit" },
        { 1ull << 63, "exceeds the limit" },
        { 100000000, "header length 100000000 runs past the end of the file" },
        { 0, "runs past the end of the file" }, /* n = len - 8 + 1, set below */
        { 0, "after its JSON" },                /* n = len - 8: data read as header */
        { 0, "not valid JSON" },                /* n = hlen - 1: the JSON is cut */
        { 0, "not valid JSON" },                /* n = 2: "{\"" */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t n = i == 6   ? len - 7
                     : i == 7 ? len - 8
                     : i == 8 ? sizeof base_json - 2
                     : i == 9 ? 2
                              : cases[i].n;
        unsigned char *b = malloc(len);
        memcpy(b, buf, len);
        for (int k = 0; k < 8; k++)
            b[k] = (unsigned char)(n >> (8 * k));
        char label[64];
        snprintf(label, sizeof label, "header length %llu", (unsigned long long)n);
        reject(&c, label, b, len, cases[i].needle);
        free(b);
    }
    free(buf);
    corpus_close(&c);
}
END_TEST

/* One malformed header: its text (json_len 0: strlen), the data section's
 * length and what the message must say. */
typedef struct bad_case {
    const char *json;
    size_t json_len, data_len;
    const char *needle;
} bad_case;

static const bad_case json_cases[] = {
    /* Not JSON, or not only JSON. */
    { "{" W "," B "," N, 0, 44, "not valid JSON" },
    { "{" W ",}", 0, 24, "not valid JSON" },
    { "{\"w\" ", 0, 0, "not valid JSON" },
    { "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}", 0, 24,
      "not valid JSON" },
    { "{nope}", 0, 0, "not valid JSON" },
    { "{'w':1}", 0, 0, "not valid JSON" },
#define NUL_INSIDE "{\"w\":{\"dtype\":\"F32\"\0,\"shape\":[2,3],\"data_offsets\":[0,24]}}"
    { NUL_INSIDE, sizeof NUL_INSIDE - 1, 24, "control character 0x00 outside strings (byte 19)" },
    { "{\"w\":{\"dtype\":\"F32\",\x0b\"shape\":[2,3],\"data_offsets\":[0,24]}}", 0, 24,
      "control character 0x0b outside strings" },
    { "{" W "}}", 0, 24, "bytes other than whitespace after its JSON" },
    { "{" W "}x", 0, 24, "after its JSON" },
    { "{" W "}\0\0\0", sizeof("{" W "}") + 2, 24, "after its JSON (byte 57)" },
    { "{}{}", 0, 0, "after its JSON" },
    /* Not an object. */
    { "[1,2]", 0, 0, "header does not start with '{'" },
    { "\"str\"", 0, 0, "does not start with '{'" },
    { "12", 0, 0, "does not start with '{'" },
    { "null", 0, 0, "does not start with '{'" },
    { " {}", 0, 0, "does not start with '{' (byte 0 is 0x20)" },
    { "{\"w\":5}", 0, 0, "tensor \"w\": expected an object" },
    { "{\"w\":[1]}", 0, 0, "tensor \"w\": expected an object" },
    { "{\"w\":\"F32\"}", 0, 0, "tensor \"w\": expected an object" },
    /* Duplicates: cJSON keeps them, the parser must not. */
    { "{" W ",\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}}", 0, 36,
      "duplicate tensor name \"w\"" },
    { "{" B "," W ",\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[36,44]}}", 0, 44,
      "duplicate tensor name \"w\"" },
    { "{" META "," META "," W "}", 0, 24, "duplicate tensor name \"__metadata__\"" },
    { "{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}," W "}", 0, 24,
      "duplicate __metadata__ key \"a\"" },
    { "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"I32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 0,
      24, "tensor \"w\": duplicate key \"dtype\"" },
    { "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"shape\":[6],\"data_offsets\":[0,24]}}", 0, 24,
      "duplicate key \"shape\"" },
    /* Keys of a tensor. */
    { "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24],\"extra\":1}}", 0, 24,
      "tensor \"w\": unknown key \"extra\"" },
    { "{\"w\":{\"shape\":[2,3],\"data_offsets\":[0,24]}}", 0, 24,
      "tensor \"w\": missing \"dtype\"" },
    { "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,24]}}", 0, 24, "missing \"shape\"" },
    { "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3]}}", 0, 24, "missing \"data_offsets\"" },
    { "{\"w\":{}}", 0, 0, "missing \"dtype\"" },
    /* Dtypes. */
    { WD("\"F128\""), 0, 24, "tensor \"w\": unknown dtype \"F128\"" },
    { WD("\"f32\""), 0, 24, "unknown dtype \"f32\"" },
    { WD("\"\""), 0, 24, "unknown dtype \"\"" },
    { WD("\"F4\""), 0, 24, "unknown dtype \"F4\"" },
    { WD("4"), 0, 24, "tensor \"w\": \"dtype\" is not a string" },
    { WD("null"), 0, 24, "\"dtype\" is not a string" },
    /* Shapes: non-negative integers below 2^53, at most 8 of them. */
    { WS("[2.5,3]", "[0,24]"), 0, 24,
      "tensor \"w\": shape[0] = 2.5 is not an integer in [0, 2^53)" },
    { WS("[2,-3]", "[0,24]"), 0, 24, "shape[1] = -3 is not an integer in [0, 2^53)" },
    { WS("[1e300]", "[0,24]"), 0, 24, "shape[0] = 1.0000000000000001e+300 is not an integer" },
    { WS("[9007199254740992]", "[0,24]"), 0, 24, "shape[0] = 9007199254740992 is not an integer" },
    { WS("[9007199254740993]", "[0,24]"), 0, 24, "is not an integer in [0, 2^53)" },
    { WS("[18446744073709551617]", "[0,24]"), 0, 24, "is not an integer in [0, 2^53)" },
    { WS("[\"2\",3]", "[0,24]"), 0, 24, "tensor \"w\": shape[0] is not a number" },
    { WS("[null]", "[0,24]"), 0, 24, "shape[0] is not a number" },
    { WS("[2,[3]]", "[0,24]"), 0, 24, "shape[1] is not a number" },
    { WS("\"23\"", "[0,24]"), 0, 24, "tensor \"w\": \"shape\" is not an array" },
    { WS("{}", "[0,24]"), 0, 24, "\"shape\" is not an array" },
    { WS("[1,1,1,1,1,1,1,2,3]", "[0,24]"), 0, 24, "shape has 9 dims, more than 8" },
    /* Integers written as floats, with leading zeros or as -0: cJSON reads
     * them as integers; the text check refuses them. */
    { WS("[2.0,3]", "[0,24]"), 0, 24, "(\"2.\"...) is not an integer" },
    { WS("[2,3E0]", "[0,24]"), 0, 24, "is not an integer: shapes and offsets" },
    { WS("[2,3e0]", "[0,24]"), 0, 24, "is not an integer" },
    { WS("[02,3]", "[0,24]"), 0, 24, "has a leading zero" },
    { WS("[2,3]", "[-0,24]"), 0, 24, "(\"-0\"...) is negative" },
    /* Sizes: overflow-safe, and equal to end - begin. */
    { WS("[4294967296,4294967296,4294967296]", "[0,24]"), 0, 24,
      "tensor \"w\": shape [4294967296, 4294967296, 4294967296] of F32 overflows" },
    { WS("[2147483648,2147483648]", "[0,24]"), 0, 24, "of F32 overflows: too many bytes" },
    { WS("[4503599627370496,4096]", "[0,24]"), 0, 24, "overflows" },
    { WS("[2,3]", "[0,20]"), 0, 20,
      "tensor \"w\": size mismatch: shape [2, 3] of F32 needs 24 bytes, data_offsets [0, 20] "
      "hold 20" },
    { WS("[]", "[0,8]"), 0, 8, "size mismatch: shape [] of F32 needs 4 bytes" },
    { WS("[0]", "[0,4]"), 0, 4, "shape [0] of F32 needs 0 bytes" },
    { "{\"w\":{\"dtype\":\"F64\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 0, 24,
      "shape [2, 3] of F64 needs 48 bytes" },
    { "{\"w\":{\"dtype\":\"BOOL\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 0, 24,
      "shape [2, 3] of BOOL needs 6 bytes" },
    /* Offsets: [begin, end] integers, begin <= end <= the data size. */
    { WS("[2,3]", "[0]"), 0, 24, "tensor \"w\": \"data_offsets\" is not [begin, end]" },
    { WS("[2,3]", "[0,24,24]"), 0, 24, "\"data_offsets\" is not [begin, end]" },
    { WS("[2,3]", "[\"0\",24]"), 0, 24, "\"data_offsets\" is not [begin, end]" },
    { WS("[2,3]", "[0.5,24]"), 0, 24, "\"data_offsets\" is not [begin, end]" },
    { WS("[2,3]", "[-1,24]"), 0, 24, "\"data_offsets\" is not [begin, end]" },
    { WS("[2,3]", "[0,1e20]"), 0, 24, "\"data_offsets\" is not [begin, end]" },
    { WS("[2,3]", "\"0,24\""), 0, 24, "\"data_offsets\" is not [begin, end]" },
    { WS("[2,3]", "[24,0]"), 0, 24, "tensor \"w\": data_offsets [24, 0] have begin > end" },
    { "{" W "," B "," N "}", 0, 40,
      "tensor \"n\": data_offsets [36, 44] run past the end of the data section (40 bytes)" },
    { WS("[2,3]", "[9007199254740967,9007199254740991]"), 0, 24, "run past the end" },
    /* Tiling: no overlap, no gap, nothing left over. */
    { "{" W ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[20,32]}}", 0, 32,
      "tensors \"w\" [0, 24] and \"b\" [20, 32] overlap" },
    { "{" W ",\"v\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 0, 24,
      "overlap" },
    { "{" W ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[28,40]}}", 0, 40,
      "gap in the data section: bytes [24, 28) before tensor \"b\" belong to no tensor" },
    { WS("[2,3]", "[4,28]"), 0, 28, "bytes [0, 4) before tensor \"w\"" },
    { "{" W "," B "," N "}", 0, 48,
      "bytes [44, 48) at the end of the data section belong to no tensor" },
    { "{}", 0, 4, "bytes [0, 4) at the end of the data section" },
    { "{" META "}", 0, 1, "bytes [0, 1) at the end" },
    /* Names. */
    { "{\"\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 0, 24,
      "tensor #0 has an empty name" },
    { "{" W ",\"\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[24,28]}}", 0, 28,
      "tensor #1 has an empty name" },
    /* Metadata: an object of strings. */
    { "{\"__metadata__\":5," W "}", 0, 24, "\"__metadata__\" is not an object" },
    { "{\"__metadata__\":[]," W "}", 0, 24, "\"__metadata__\" is not an object" },
    { "{\"__metadata__\":{\"a\":1}," W "}", 0, 24,
      "\"__metadata__\" value of \"a\" is not a string" },
    { "{\"__metadata__\":{\"a\":null}," W "}", 0, 24, "value of \"a\" is not a string" },
    { "{\"__metadata__\":{\"a\":{\"b\":\"c\"}}," W "}", 0, 24, "value of \"a\" is not a string" },
    /* Text: strict UTF-8, no raw control characters or NUL in strings. */
    { "{\"\xff\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 0, 4,
      "header is not valid UTF-8 (byte 2)" },
    { "{\"\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 0, 4,
      "not valid UTF-8" },
    { "{\"\xed\xa0\x80\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 0, 4,
      "not valid UTF-8" },
    { "{\"\xf4\x90\x80\x80\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 0, 4,
      "not valid UTF-8" },
    { "{\"\xe2\x82\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 0, 4,
      "not valid UTF-8" },
    { "{\"__metadata__\":{\"a\":\"\xfe\"}," W "}", 0, 24, "not valid UTF-8" },
    { "{\"a\x01\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 0, 4,
      "raw control character 0x01 in a string (byte 3)" },
    { "{\"a\tb\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 0, 4,
      "raw control character 0x09" },
    { "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 0, 4,
      "\\u0000 in a string (byte 3): names cannot hold NUL" },
};

START_TEST(corpus_malformed_headers)
{
    corpus c;
    corpus_open(&c);
    char label[96];
    for (size_t i = 0; i < sizeof json_cases / sizeof json_cases[0]; i++) {
        const bad_case *k = &json_cases[i];
        size_t len, jl = k->json_len ? k->json_len : strlen(k->json);
        unsigned char *buf = build(k->json, jl, 0, k->data_len, &len);
        snprintf(label, sizeof label, "json case %zu (%.40s...)", i, k->json);
        reject(&c, label, buf, len, k->needle);
        free(buf);
    }
    /* Nesting deeper than cJSON's limit: refused, without a deep recursion. */
    size_t depth = 5000, n = 0, len;
    char *deep = malloc(2 * depth + 16);
    n += (size_t)sprintf(deep, "{\"w\":");
    memset(deep + n, '[', depth);
    memset(deep + n + depth, ']', depth);
    n += 2 * depth;
    deep[n++] = '}';
    unsigned char *buf = build(deep, n, 0, 0, &len);
    reject(&c, "deep nesting", buf, len, "not valid JSON");
    free(buf);
    free(deep);
    corpus_close(&c);
}
END_TEST

/* A successful parse must describe a consistent file. */
static void check_invariants(const char *label, const clnet_safetensors *st, size_t len)
{
    ck_assert_msg(st->data_size <= len, "%s: data_size", label);
    size_t total = 0;
    for (size_t i = 0; i < st->count; i++) {
        const clnet_safetensors_entry *e = &st->entries[i];
        size_t numel = 1;
        for (int k = 0; k < e->ndim; k++)
            numel *= (size_t)e->shape[k];
        ck_assert_msg(e->name[0] && e->ndim >= 0 && e->ndim <= CLNET_MAX_DIMS, "%s", label);
        ck_assert_msg(clnet_safetensors_dtype_size(e->dtype) == e->elem_size, "%s", label);
        ck_assert_msg(e->numel == numel && e->size == numel * e->elem_size, "%s", label);
        ck_assert_msg(e->offset + e->size <= st->data_size, "%s: entry past the end", label);
        ck_assert_msg(e->data == (const unsigned char *)st->data + e->offset, "%s", label);
        for (size_t j = 0; j < i; j++) {
            const clnet_safetensors_entry *f = &st->entries[j];
            ck_assert_msg(!e->size || !f->size || e->offset + e->size <= f->offset ||
                              f->offset + f->size <= e->offset,
                          "%s: overlap", label);
            ck_assert_msg(strcmp(e->name, f->name), "%s: duplicate", label);
        }
        total += e->size;
    }
    ck_assert_msg(total == st->data_size, "%s: the tensors do not cover the data", label);
}

static void check_same(const char *label, const clnet_safetensors *a, const clnet_safetensors *b)
{
    ck_assert_msg(a->count == b->count && a->data_size == b->data_size &&
                      !memcmp(a->data, b->data, a->data_size),
                  "%s: parses differ", label);
    for (size_t i = 0; i < a->count; i++) {
        const clnet_safetensors_entry *x = &a->entries[i], *y = &b->entries[i];
        ck_assert_msg(!strcmp(x->name, y->name) && !strcmp(x->dtype, y->dtype) &&
                          x->ndim == y->ndim && !memcmp(x->shape, y->shape, sizeof x->shape) &&
                          x->offset == y->offset && x->size == y->size,
                      "%s: entry %zu differs between parses", label, i);
    }
}

/* Seeded random byte changes: a changed header byte is usually rejected,
 * sometimes harmless (a name letter, a padding space, "F32" -> "I32"): then
 * the result must be consistent and parse the same way twice. A changed data
 * byte is always accepted and shows up in the data. */
START_TEST(corpus_random_byte_flips)
{
    corpus c;
    corpus_open(&c);
    size_t len, hlen;
    unsigned char *base = build_base(&len, &hlen);
    unsigned char *buf = malloc(len);
    uint64_t seed = 20240611;
    size_t rejected = 0, accepted = 0;
    char label[128], err[1024];
    for (int t = 0; t < 400; t++) {
        memcpy(buf, base, len);
        size_t pos = (size_t)(test_rng(&seed) % len);
        unsigned char x = (unsigned char)(1 + test_rng(&seed) % 255);
        buf[pos] ^= x;
        snprintf(label, sizeof label, "flip %d: byte %zu 0x%02x -> 0x%02x (seed 20240611)", t, pos,
                 base[pos], buf[pos]);
        clnet_safetensors *st, *again;
        clnet_status s = run_both(&c, label, buf, len, err, sizeof err, &st);
        if (pos >= 8 + hlen)
            ck_assert_msg(s == CLNET_OK, "%s: a data byte change was rejected: %s", label, err);
        if (s) {
            rejected++;
            continue;
        }
        accepted++;
        check_invariants(label, st, len);
        ck_assert_int_eq(clnet_safetensors_parse(buf, len, &again, err, sizeof err), CLNET_OK);
        check_same(label, st, again);
        if (pos >= 8 + hlen)
            ck_assert_int_eq(((const unsigned char *)st->data)[pos - 8 - hlen], buf[pos]);
        clnet_safetensors_free(again);
        clnet_safetensors_free(st);
    }
    ck_assert_msg(rejected > 100 && accepted > 10, "rejected %zu, accepted %zu", rejected,
                  accepted);
    free(buf);
    free(base);
    corpus_close(&c);
}
END_TEST

void io_add_corpus_tests(Suite *s)
{
    TCase *tc = tcase_create("corpus");
    tcase_set_timeout(tc, 300); /* generous: the suite also runs under valgrind */
    tcase_add_test(tc, corpus_base_file_is_valid);
    tcase_add_test(tc, corpus_every_truncation);
    tcase_add_test(tc, corpus_bad_header_lengths);
    tcase_add_test(tc, corpus_malformed_headers);
    tcase_add_test(tc, corpus_random_byte_flips);
    suite_add_tcase(s, tc);
}
