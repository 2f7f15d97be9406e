/* clnet — reading safetensors weight files: a strict parser (every length,
 * name, dtype, shape and offset checked before it is trusted) and a loader;
 * the writer is src/io/safetensors_write.c. Host-only; JSON through cJSON. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "clnet/safetensors.h"
#include "io/atomic.h"
#include "io/diag.h"
#include "io/safetensors_impl.h"
#include "runtime/alloc.h"

/* ---- Small helpers ------------------------------------------------------ */

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    { "F32", 4 }, { "F16", 2 }, { "BF16", 2 }, { "F64", 8 },     { "I64", 8 },
    { "I32", 4 }, { "I16", 2 }, { "I8", 1 },   { "U8", 1 },      { "BOOL", 1 },
    { "U16", 2 }, { "U32", 4 }, { "U64", 8 },  { "F8_E4M3", 1 }, { "F8_E5M2", 1 },
};

/* The canonical (static) name of a dtype and its size; NULL if unknown. */
static const char *dtype_lookup(const char *name, size_t *size)
{
    for (size_t i = 0; name && i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(name, dtypes[i].name)) {
            *size = dtypes[i].size;
            return dtypes[i].name;
        }
    return NULL;
}

CLNET_API size_t clnet_safetensors_dtype_size(const char *dtype)
{
    size_t size = 0;
    return dtype_lookup(dtype, &size) ? size : 0;
}

/* a * b, or 0 with *overflow set when it exceeds limit. */
uint64_t clnet__st_mul_capped(uint64_t a, uint64_t b, uint64_t limit, int *overflow)
{
    if (a != 0 && b > limit / a) {
        *overflow = 1;
        return 0;
    }
    return a * b;
}

/* The length of the valid UTF-8 sequence at p (n bytes left), or 0. Strict:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len = c < 0x80 ? 1 : c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    if (len <= 1)
        return len;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0) || (c == 0xF0 && p[1] < 0x90) ||
        (c == 0xF4 && p[1] >= 0x90))
        return 0;
    return len;
}

int clnet__st_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = utf8_seq(p + i, n - i)))
            return 0;
    return 1;
}

static void format_shape(char *buf, size_t size, const int64_t *shape, int ndim)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first string that occurs twice among n, or NULL. Sorts `names`. */
const char *clnet__st_find_duplicate(const char **names, size_t n)
{
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_str_ptr);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(names[i - 1], names[i]))
            return names[i];
    return NULL;
}

/* ---- Header text -------------------------------------------------------- */

/* Checks what cJSON lets through: the header must be UTF-8 without raw
 * control characters (other than JSON's whitespace between tokens) or
 * "\u0000" in strings, and every number must be written
 * as a non-negative integer without leading zeros (cJSON reads "1.0", "1e0"
 * and "-0" as integers; the reference implementation refuses them). Runs on
 * JSON that cJSON accepted, so strings are properly closed. */
static clnet_status check_header_text(const diag *d, const unsigned char *h, size_t n)
{
    int in_string = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = h[i];
        size_t k = utf8_seq(h + i, n - i);
        if (!k)
            return report(d, CLNET_ERR_FORMAT, "header is not valid UTF-8 (byte %zu)", i);
        if (in_string) {
            if (c < 0x20)
                return report(d, CLNET_ERR_FORMAT,
                              "header has a raw control character 0x%02x in a string (byte %zu)", c,
                              i);
            if (c == '\\' && i + 5 < n && !memcmp(h + i + 1, "u0000", 5))
                return report(d, CLNET_ERR_FORMAT,
                              "header has \\u0000 in a string (byte %zu): names cannot hold NUL",
                              i);
            if (c == '\\')
                k = 2;
            in_string = c != '"';
        } else if (c == '"') {
            in_string = 1;
        } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            /* cJSON skips every byte <= 0x20 as whitespace; JSON does not. */
            return report(d, CLNET_ERR_FORMAT,
                          "header has a control character 0x%02x outside "
                          "strings (byte %zu)",
                          c, i);
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i + (c == '-');
            while (j < n && h[j] >= '0' && h[j] <= '9')
                j++;
            int frac = j < n && (h[j] == '.' || h[j] == 'e' || h[j] == 'E');
            const char *why = c == '-'                  ? "is negative"
                              : frac                    ? "is not an integer"
                              : (c == '0' && j > i + 1) ? "has a leading zero"
                                                        : NULL;
            size_t shown = j - i + (size_t)frac; /* the token, and the '.' or 'e' after it */
            if (why)
                return report(d, CLNET_ERR_FORMAT,
                              "header number at byte %zu (\"%.*s\"...) %s: shapes and offsets "
                              "are non-negative integers",
                              i, (int)(shown < 24 ? shown : 24), (const char *)h + i, why);
            k = j - i;
        }
        i += k;
    }
    return CLNET_OK;
}

/* ---- Tensor entries ----------------------------------------------------- */

/* A JSON number that is an integer in [0, 2^53). */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double x = v->valuedouble;
    if (!(x >= 0 && x < MAX_INT) || (double)(uint64_t)x != x)
        return 0;
    *out = (uint64_t)x;
    return 1;
}

static clnet_status parse_shape(const diag *d, const char *name, const cJSON *shape,
                                clnet_safetensors_entry *e)
{
    if (!cJSON_IsArray(shape))
        return report(d, CLNET_ERR_FORMAT, "tensor \"%.200s\": \"shape\" is not an array", name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > CLNET_MAX_DIMS)
        return report(d, CLNET_ERR_FORMAT, "tensor \"%.200s\": shape has %d dims, more than %d",
                      name, ndim, CLNET_MAX_DIMS);
    int i = 0, overflow = 0;
    uint64_t numel = 1;
    for (const cJSON *v = shape->child; v; v = v->next, i++) {
        uint64_t dim;
        if (!json_uint(v, &dim)) {
            if (!cJSON_IsNumber(v))
                return report(d, CLNET_ERR_FORMAT, "tensor \"%.200s\": shape[%d] is not a number",
                              name, i);
            return report(d, CLNET_ERR_FORMAT,
                          "tensor \"%.200s\": shape[%d] = %.17g is not an integer in [0, 2^53)",
                          name, i, v->valuedouble);
        }
        e->shape[i] = (int64_t)dim;
        numel = clnet__st_mul_capped(numel, dim, SIZE_MAX, &overflow);
    }
    e->ndim = ndim;
    char buf[256];
    format_shape(buf, sizeof buf, e->shape, ndim);
    uint64_t bytes = clnet__st_mul_capped(numel, e->elem_size, SIZE_MAX, &overflow);
    if (overflow)
        return report(d, CLNET_ERR_FORMAT,
                      "tensor \"%.200s\": shape %s of %s overflows: too many bytes", name, buf,
                      e->dtype);
    e->numel = (size_t)numel;
    if (bytes != e->size)
        return report(d, CLNET_ERR_FORMAT,
                      "tensor \"%.200s\": size mismatch: shape %s of %s needs %" PRIu64
                      " bytes, data_offsets [%zu, %zu] hold %zu",
                      name, buf, e->dtype, bytes, e->offset, e->offset + e->size, e->size);
    return CLNET_OK;
}

static clnet_status parse_offsets(const diag *d, const char *name, const cJSON *offs,
                                  size_t data_size, clnet_safetensors_entry *e)
{
    uint64_t be[2];
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_uint(offs->child, &be[0]) ||
        !json_uint(offs->child->next, &be[1]))
        return report(d, CLNET_ERR_FORMAT,
                      "tensor \"%.200s\": \"data_offsets\" is not [begin, end] with integers in "
                      "[0, 2^53)",
                      name);
    if (be[0] > be[1])
        return report(d, CLNET_ERR_FORMAT,
                      "tensor \"%.200s\": data_offsets [%" PRIu64 ", %" PRIu64 "] have begin > end",
                      name, be[0], be[1]);
    if (be[1] > data_size)
        return report(d, CLNET_ERR_FORMAT,
                      "tensor \"%.200s\": data_offsets [%" PRIu64 ", %" PRIu64 "] run past the end "
                      "of the data section (%zu bytes)",
                      name, be[0], be[1], data_size);
    e->offset = (size_t)be[0];
    e->size = (size_t)(be[1] - be[0]);
    return CLNET_OK;
}

/* One tensor's object: exactly the keys dtype, shape and data_offsets. */
static clnet_status parse_entry(const diag *d, const cJSON *item, size_t data_size,
                                clnet_safetensors_entry *e)
{
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return report(d, CLNET_ERR_FORMAT, "tensor \"%.200s\": expected an object", name);
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *k = item->child; k; k = k->next) {
        const cJSON **slot = !strcmp(k->string, "dtype")          ? &dtype
                             : !strcmp(k->string, "shape")        ? &shape
                             : !strcmp(k->string, "data_offsets") ? &offs
                                                                  : NULL;
        if (!slot)
            return report(d, CLNET_ERR_FORMAT, "tensor \"%.200s\": unknown key \"%.200s\"", name,
                          k->string);
        if (*slot)
            return report(d, CLNET_ERR_FORMAT, "tensor \"%.200s\": duplicate key \"%s\"", name,
                          k->string);
        *slot = k;
    }
    if (!dtype || !shape || !offs)
        return report(d, CLNET_ERR_FORMAT, "tensor \"%.200s\": missing \"%s\"", name,
                      !dtype   ? "dtype"
                      : !shape ? "shape"
                               : "data_offsets");
    e->name = name;
    if (!cJSON_IsString(dtype))
        return report(d, CLNET_ERR_FORMAT, "tensor \"%.200s\": \"dtype\" is not a string", name);
    if (!(e->dtype = dtype_lookup(dtype->valuestring, &e->elem_size)))
        return report(d, CLNET_ERR_FORMAT, "tensor \"%.200s\": unknown dtype \"%.40s\"", name,
                      dtype->valuestring);
    clnet_status st = parse_offsets(d, name, offs, data_size, e);
    return st ? st : parse_shape(d, name, shape, e);
}

static clnet_status parse_metadata(const diag *d, const cJSON *item)
{
    if (!cJSON_IsObject(item))
        return report(d, CLNET_ERR_FORMAT, "\"" META_KEY "\" is not an object");
    for (const cJSON *k = item->child; k; k = k->next)
        if (!cJSON_IsString(k))
            return report(d, CLNET_ERR_FORMAT,
                          "\"" META_KEY "\" value of \"%.200s\" is not a string", k->string);
    return CLNET_OK;
}

/* Metadata keys must be unique too (cJSON keeps duplicates). */
static clnet_status check_metadata_keys(const diag *d, const cJSON *meta)
{
    size_t m = 0;
    for (const cJSON *k = meta->child; k; k = k->next)
        m++;
    const char **keys = clnet__malloc((m ? m : 1) * sizeof *keys);
    if (!keys)
        return report(d, CLNET_ERR_HOST_MEMORY, "out of host memory");
    m = 0;
    for (const cJSON *k = meta->child; k; k = k->next)
        keys[m++] = k->string;
    const char *dup = clnet__st_find_duplicate(keys, m);
    clnet_status st =
        dup ? report(d, CLNET_ERR_FORMAT, "duplicate " META_KEY " key \"%.200s\"", dup) : CLNET_OK;
    clnet__free(keys);
    return st;
}

static int cmp_offset(const void *a, const void *b)
{
    const clnet_safetensors_entry *x = *(const clnet_safetensors_entry *const *)a;
    const clnet_safetensors_entry *y = *(const clnet_safetensors_entry *const *)b;
    size_t xe = x->offset + x->size, ye = y->offset + y->size;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return xe < ye ? -1 : xe > ye;
}

/* The tensors' byte ranges, sorted by begin, must tile [0, data_size). */
static clnet_status check_tiling(const diag *d, const clnet_safetensors_entry **sorted, size_t n,
                                 size_t data_size)
{
    if (n > 1)
        qsort(sorted, n, sizeof *sorted, cmp_offset);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        const clnet_safetensors_entry *e = sorted[i];
        if (e->offset < pos)
            return report(d, CLNET_ERR_FORMAT,
                          "tensors \"%.200s\" [%zu, %zu] and \"%.200s\" [%zu, %zu] overlap",
                          sorted[i - 1]->name, sorted[i - 1]->offset,
                          sorted[i - 1]->offset + sorted[i - 1]->size, e->name, e->offset,
                          e->offset + e->size);
        if (e->offset > pos)
            return report(d, CLNET_ERR_FORMAT,
                          "gap in the data section: bytes [%zu, %zu) before tensor \"%.200s\" "
                          "belong to no tensor",
                          pos, e->offset, e->name);
        pos = e->offset + e->size;
    }
    if (pos != data_size)
        return report(d, CLNET_ERR_FORMAT,
                      "bytes [%zu, %zu) at the end of the data section belong to no tensor", pos,
                      data_size);
    return CLNET_OK;
}

/* ---- The parse ---------------------------------------------------------- */

typedef struct st_impl {
    clnet_safetensors pub; /* first: the public pointer is this struct */
    clnet_safetensors_entry *entries;
    clnet_safetensors_meta *meta;
    void *block; /* holds the data section */
} st_impl;

/* Checks the 8-byte header length n against the buffer's length. */
static clnet_status check_header_len(const diag *d, uint64_t n, size_t len)
{
    if (n < 2)
        return report(d, CLNET_ERR_FORMAT,
                      "header length %" PRIu64 " is below 2 (the shortest header is \"{}\")", n);
    if (n > CLNET_SAFETENSORS_MAX_HEADER)
        return report(d, CLNET_ERR_FORMAT,
                      "header length %" PRIu64 " exceeds the limit of %" PRIu64 " bytes", n,
                      CLNET_SAFETENSORS_MAX_HEADER);
    if (n > len - 8)
        return report(d, CLNET_ERR_FORMAT,
                      "header length %" PRIu64 " runs past the end of the "
                      "file (%zu bytes after the 8-byte length)",
                      n, len - 8);
    return CLNET_OK;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Parses the JSON header text into a cJSON tree: valid JSON, an object,
 * followed by nothing but whitespace, and passing check_header_text. */
static clnet_status parse_json(const diag *d, const unsigned char *h, size_t n, cJSON **out)
{
    *out = NULL;
    if (h[0] != '{')
        return report(d, CLNET_ERR_FORMAT, "header does not start with '{' (byte 0 is 0x%02x)",
                      h[0]);
    /* A NUL-terminated copy: cJSON never reads past it, whatever its length logic. */
    char *text = clnet__malloc(n + 1);
    if (!text)
        return report(d, CLNET_ERR_HOST_MEMORY, "out of host memory (%zu-byte header)", n);
    memcpy(text, h, n);
    text[n] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    size_t pos = end ? (size_t)(end - text) : 0;
    clnet__free(text);
    if (!root)
        return report(d, CLNET_ERR_FORMAT, "header is not valid JSON (error near byte %zu)", pos);
    for (size_t i = pos; i < n; i++)
        if (h[i] != ' ' && h[i] != '\t' && h[i] != '\n' && h[i] != '\r') {
            cJSON_Delete(root);
            return report(d, CLNET_ERR_FORMAT,
                          "header has bytes other than whitespace after its JSON (byte %zu)", i);
        }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return report(d, CLNET_ERR_FORMAT, "header is not a JSON object");
    }
    *out = root;
    return CLNET_OK;
}

/* Validates every tensor of the tree into ents (borrowing names from the
 * tree); *meta receives the metadata object or NULL. */
static clnet_status validate(const diag *d, const cJSON *root, size_t data_size,
                             clnet_safetensors_entry *ents, size_t *count, const cJSON **meta,
                             const char **names, const clnet_safetensors_entry **sorted)
{
    size_t n = 0, nkeys = 0;
    clnet_status st;
    *meta = NULL;
    for (const cJSON *item = root->child; item; item = item->next) {
        names[nkeys++] = item->string;
        if (!item->string[0])
            return report(d, CLNET_ERR_FORMAT, "tensor #%zu has an empty name", nkeys - 1);
        if (!strcmp(item->string, META_KEY)) {
            if ((st = parse_metadata(d, item)))
                return st;
            *meta = item;
            continue;
        }
        memset(&ents[n], 0, sizeof ents[n]);
        if ((st = parse_entry(d, item, data_size, &ents[n])))
            return st;
        sorted[n] = &ents[n];
        n++;
    }
    const char *dup = clnet__st_find_duplicate(names, nkeys);
    if (dup)
        return report(d, CLNET_ERR_FORMAT, "duplicate tensor name \"%.200s\"", dup);
    if (*meta && (st = check_metadata_keys(d, *meta)))
        return st;
    *count = n;
    return check_tiling(d, sorted, n, data_size);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = clnet__malloc(n);
    return p ? memcpy(p, s, n) : NULL;
}

/* Moves validated entries and metadata into res, copying the strings. */
static clnet_status fill_result(const diag *d, st_impl *res, clnet_safetensors_entry *ents,
                                size_t n, const cJSON *meta, const unsigned char *data)
{
    res->entries = ents;
    res->pub.entries = ents;
    for (size_t i = 0; i < n; i++) {
        ents[i].data = data + ents[i].offset;
        if (!(ents[i].name = dup_str(ents[i].name))) {
            res->pub.count = i; /* the first i names are ours to free */
            return report(d, CLNET_ERR_HOST_MEMORY, "out of host memory");
        }
    }
    res->pub.count = n;
    size_t m = 0;
    for (const cJSON *k = meta ? meta->child : NULL; k; k = k->next)
        m++;
    if (m && !(res->meta = clnet__calloc(m, sizeof *res->meta)))
        return report(d, CLNET_ERR_HOST_MEMORY, "out of host memory");
    res->pub.metadata = res->meta;
    for (const cJSON *k = meta ? meta->child : NULL; k; k = k->next) {
        clnet_safetensors_meta *mm = &res->meta[res->pub.metadata_count++];
        mm->key = dup_str(k->string);
        mm->value = dup_str(k->valuestring);
        if (!mm->key || !mm->value)
            return report(d, CLNET_ERR_HOST_MEMORY, "out of host memory");
    }
    return CLNET_OK;
}

size_t clnet__st_round_up(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

/* Parses buf[0..len). owned, if not NULL, is the aligned block that holds
 * buf: on success the result takes it over and its data points into it;
 * otherwise the data section is copied. */
static clnet_status parse(const diag *d, const unsigned char *buf, size_t len, void *owned,
                          clnet_safetensors **out)
{
    if (len < 8)
        return report(d, CLNET_ERR_FORMAT, "%zu bytes, shorter than the 8-byte header length", len);
    uint64_t hlen = le64(buf);
    clnet_status st = check_header_len(d, hlen, len);
    if (st)
        return st;
    const unsigned char *h = buf + 8, *data = h + hlen;
    size_t n = (size_t)hlen, data_size = len - 8 - n, nkeys = 0;
    cJSON *root = NULL;
    if ((st = parse_json(d, h, n, &root)))
        return st;
    for (const cJSON *item = root->child; item; item = item->next)
        nkeys++;
    st = CLNET_ERR_HOST_MEMORY;
    st_impl *res = clnet__calloc(1, sizeof *res);
    clnet_safetensors_entry *ents = clnet__calloc(nkeys ? nkeys : 1, sizeof *ents);
    const char **names = clnet__calloc(nkeys ? nkeys : 1, sizeof *names);
    const clnet_safetensors_entry **sorted = clnet__calloc(nkeys ? nkeys : 1, sizeof *sorted);
    const cJSON *meta = NULL;
    size_t count = 0;
    if (!res || !ents || !names || !sorted) {
        report(d, st, "out of host memory (%zu header keys)", nkeys);
        goto done;
    }
    if ((st = validate(d, root, data_size, ents, &count, &meta, names, sorted)) ||
        (st = check_header_text(d, h, n)))
        goto done;
    if (!owned) {
        unsigned char *copy =
            clnet__aligned_alloc(DATA_ALIGN, clnet__st_round_up(data_size + 1, DATA_ALIGN));
        if (!copy) {
            st = report(d, CLNET_ERR_HOST_MEMORY, "out of host memory (%zu bytes of data)",
                        data_size);
            goto done;
        }
        memcpy(copy, data, data_size);
        res->block = copy;
        data = copy;
    }
    res->pub.data = data;
    res->pub.data_size = data_size;
    st = fill_result(d, res, ents, count, meta, data);
    ents = NULL; /* res owns them now */
done:
    clnet__free(sorted);
    clnet__free(names);
    clnet__free(ents);
    cJSON_Delete(root);
    if (st) {
        clnet_safetensors_free(res ? &res->pub : NULL);
        return st;
    }
    if (owned)
        res->block = owned;
    *out = &res->pub;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_safetensors_parse(const void *buf, size_t len, clnet_safetensors **out,
                                               char *err, size_t err_size)
{
    diag d = { "clnet_safetensors_parse", err, err_size };
    if (!out)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: out != NULL");
    *out = NULL;
    if (!buf && len)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: buf != NULL || len == 0");
    return parse(&d, buf ? buf : "", len, NULL, out);
}

/* Reads the whole file into a block placed so that the data section starts
 * DATA_ALIGN-aligned. The header length is checked before the block is
 * allocated, so a short file never makes us allocate what it claims. */
static clnet_status read_file(const diag *d, FILE *f, size_t len, void **block, unsigned char **buf)
{
    unsigned char head[8];
    size_t pad = 0, have = len < 8 ? len : 8;
    if (fread(head, 1, have, f) != have)
        return report(d, CLNET_ERR_IO, "read failed: %s",
                      ferror(f) ? strerror(errno) : "the file shrank while being read");
    if (len >= 8) {
        uint64_t hlen = le64(head);
        clnet_status st = check_header_len(d, hlen, len);
        if (st)
            return st;
        pad = (DATA_ALIGN - (size_t)((8 + hlen) % DATA_ALIGN)) % DATA_ALIGN;
    }
    unsigned char *b =
        clnet__aligned_alloc(DATA_ALIGN, clnet__st_round_up(pad + len + 1, DATA_ALIGN));
    if (!b)
        return report(d, CLNET_ERR_HOST_MEMORY, "out of host memory (%zu bytes)", len);
    memcpy(b + pad, head, have);
    if (fread(b + pad + have, 1, len - have, f) != len - have) {
        int shrank = !ferror(f);
        clnet__free(b);
        return report(d, CLNET_ERR_IO, "read failed: %s",
                      shrank ? "the file shrank while being read" : strerror(errno));
    }
    *block = b;
    *buf = b + pad;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_safetensors_load(const char *path, clnet_safetensors **out, char *err,
                                              size_t err_size)
{
    diag d = { "clnet_safetensors_load", err, err_size };
    if (!out)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: out != NULL");
    *out = NULL;
    if (!path)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: path != NULL");
    d.what = path;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; the type is
     * checked below before a byte is read, and blocking restored for reads. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    FILE *f = NULL;
    if (fd >= 0) {
        int fl = fcntl(fd, F_GETFL);
        if (fl == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1 || !(f = fdopen(fd, "rb")))
            close(fd);
    }
    if (!f)
        return report(&d, CLNET_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    clnet_status st = CLNET_OK;
    void *block = NULL;
    unsigned char *buf = NULL;
    if (fstat(fileno(f), &sb) != 0)
        st = report(&d, CLNET_ERR_IO, "cannot stat: %s", strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = report(&d, CLNET_ERR_IO, "not a regular file");
    else if ((uint64_t)sb.st_size > SIZE_MAX - 2 * DATA_ALIGN)
        st = report(&d, CLNET_ERR_HOST_MEMORY, "file too large for this machine");
    else
        st = read_file(&d, f, (size_t)sb.st_size, &block, &buf);
    fclose(f);
    if (!st && (st = parse(&d, buf, (size_t)sb.st_size, block, out)))
        clnet__free(block);
    return st;
}

CLNET_API const clnet_safetensors_entry *clnet_safetensors_find(const clnet_safetensors *st,
                                                                const char *name)
{
    for (size_t i = 0; st && name && i < st->count; i++)
        if (!strcmp(st->entries[i].name, name))
            return &st->entries[i];
    return NULL;
}

CLNET_API const char *clnet_safetensors_metadata(const clnet_safetensors *st, const char *key)
{
    for (size_t i = 0; st && key && i < st->metadata_count; i++)
        if (!strcmp(st->metadata[i].key, key))
            return st->metadata[i].value;
    return NULL;
}

CLNET_API void clnet_safetensors_free(clnet_safetensors *st)
{
    if (!st)
        return;
    st_impl *impl = (st_impl *)st;
    for (size_t i = 0; i < st->count; i++)
        clnet__free((void *)impl->entries[i].name);
    clnet__free(impl->entries);
    for (size_t i = 0; i < st->metadata_count; i++) {
        clnet__free((void *)impl->meta[i].key);
        clnet__free((void *)impl->meta[i].value);
    }
    clnet__free(impl->meta);
    clnet__free(impl->block);
    clnet__free(impl);
}
