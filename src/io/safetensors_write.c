/* clnet — writing safetensors weight files: every entry checked, then an
 * atomic write (src/io/atomic.h); the reader is src/io/safetensors.c. */
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

/* ---- Writing ------------------------------------------------------------ */

/* Checks one entry and returns its byte size in *bytes. */
static clnet_status check_entry_in(const diag *d, const clnet_safetensors_entry_in *e, size_t i,
                                   uint64_t *bytes)
{
    if (!e->name || !e->name[0] || !clnet__st_utf8_valid(e->name) || !strcmp(e->name, META_KEY))
        return report(d, CLNET_ERR_INVALID_ARG, "invalid argument: entries[%zu].name is %s", i,
                      !e->name                     ? "NULL"
                      : !e->name[0]                ? "empty"
                      : !strcmp(e->name, META_KEY) ? "\"" META_KEY "\", which is reserved"
                                                   : "not valid UTF-8");
    if (e->dtype != CLNET_F32 && e->dtype != CLNET_I32)
        return report(d, CLNET_ERR_INVALID_ARG,
                      "invalid argument: entries[%zu] (\"%.200s\"): dtype %d is not CLNET_F32 or "
                      "CLNET_I32",
                      i, e->name, (int)e->dtype);
    if (e->ndim < 0 || e->ndim > CLNET_MAX_DIMS)
        return report(d, CLNET_ERR_INVALID_ARG,
                      "invalid argument: entries[%zu] (\"%.200s\"): ndim %d is not in [0, %d]", i,
                      e->name, e->ndim, CLNET_MAX_DIMS);
    int overflow = 0;
    uint64_t numel = 1;
    for (int k = 0; k < e->ndim; k++) {
        if (e->shape[k] < 0 || (double)e->shape[k] >= MAX_INT)
            return report(d, CLNET_ERR_INVALID_ARG,
                          "invalid argument: entries[%zu] (\"%.200s\"): shape[%d] = %" PRId64
                          " is not in [0, 2^53)",
                          i, e->name, k, e->shape[k]);
        numel = clnet__st_mul_capped(numel, (uint64_t)e->shape[k], (uint64_t)MAX_INT, &overflow);
    }
    *bytes = clnet__st_mul_capped(numel, 4, (uint64_t)MAX_INT, &overflow);
    if (overflow || *bytes > SIZE_MAX)
        return report(d, CLNET_ERR_INVALID_ARG,
                      "invalid argument: entries[%zu] (\"%.200s\"): too many elements", i, e->name);
    if (!e->data && numel)
        return report(d, CLNET_ERR_INVALID_ARG,
                      "invalid argument: entries[%zu] (\"%.200s\"): data is NULL", i, e->name);
    return CLNET_OK;
}

/* Checks every argument and computes offsets[0..count] (offsets[i] is where
 * entry i begins; offsets[count] is the data size). */
static clnet_status check_write_args(const diag *d, const clnet_safetensors_entry_in *entries,
                                     size_t count, const char *const *kv, uint64_t *offsets)
{
    size_t nkv = 0;
    for (; kv && kv[nkv]; nkv += 2)
        if (!kv[nkv + 1] || !clnet__st_utf8_valid(kv[nkv]) || !clnet__st_utf8_valid(kv[nkv + 1]))
            return report(d, CLNET_ERR_INVALID_ARG,
                          "invalid argument: metadata key \"%.200s\" has %s", kv[nkv],
                          !kv[nkv + 1] ? "no value (metadata_kv must hold pairs)"
                                       : "a key or value that is not valid UTF-8");
    offsets[0] = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t bytes = 0;
        clnet_status st = check_entry_in(d, &entries[i], i, &bytes);
        if (st)
            return st;
        offsets[i + 1] = offsets[i] + bytes;
        if ((double)offsets[i + 1] >= MAX_INT || offsets[i + 1] > SIZE_MAX)
            return report(d, CLNET_ERR_INVALID_ARG,
                          "invalid argument: the tensors hold too "
                          "many bytes");
    }
    size_t n = count > nkv / 2 ? count : nkv / 2;
    const char **names = clnet__malloc((n ? n : 1) * sizeof *names);
    if (!names)
        return report(d, CLNET_ERR_HOST_MEMORY, "out of host memory");
    for (size_t i = 0; i < count; i++)
        names[i] = entries[i].name;
    const char *dup = clnet__st_find_duplicate(names, count);
    clnet_status st = CLNET_OK;
    if (dup)
        st = report(d, CLNET_ERR_INVALID_ARG, "invalid argument: duplicate name \"%.200s\"", dup);
    for (size_t i = 0; !st && i < nkv / 2; i++)
        names[i] = kv[2 * i];
    if (!st && (dup = clnet__st_find_duplicate(names, nkv / 2)))
        st = report(d, CLNET_ERR_INVALID_ARG,
                    "invalid argument: duplicate metadata key "
                    "\"%.200s\"",
                    dup);
    clnet__free(names);
    return st;
}

static int add_uint(cJSON *array, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    /* Raw: cJSON would print large doubles in exponent form. */
    cJSON *item = cJSON_CreateRaw(buf);
    if (item && cJSON_AddItemToArray(array, item))
        return 1;
    cJSON_Delete(item);
    return 0;
}

static int add_entry_json(cJSON *root, const clnet_safetensors_entry_in *e, uint64_t begin,
                          uint64_t end)
{
    cJSON *obj = cJSON_AddObjectToObject(root, e->name);
    cJSON *shape = NULL, *offs = NULL;
    int ok = obj && cJSON_AddStringToObject(obj, "dtype", e->dtype == CLNET_F32 ? "F32" : "I32") &&
             (shape = cJSON_AddArrayToObject(obj, "shape")) != NULL;
    for (int k = 0; ok && k < e->ndim; k++)
        ok = add_uint(shape, (uint64_t)e->shape[k]);
    ok = ok && (offs = cJSON_AddArrayToObject(obj, "data_offsets")) != NULL &&
         add_uint(offs, begin) && add_uint(offs, end);
    return ok;
}

/* The header: compact JSON (metadata first, then the tensors in order) padded
 * with spaces to a multiple of 8 bytes. Caller frees. */
static char *build_header(const clnet_safetensors_entry_in *entries, size_t count,
                          const char *const *kv, const uint64_t *offsets, size_t *len)
{
    cJSON *root = cJSON_CreateObject(), *meta = NULL;
    int ok = root != NULL;
    if (ok && kv && kv[0])
        ok = (meta = cJSON_AddObjectToObject(root, META_KEY)) != NULL;
    for (size_t i = 0; ok && kv && kv[i]; i += 2)
        ok = cJSON_AddStringToObject(meta, kv[i], kv[i + 1]) != NULL;
    for (size_t i = 0; ok && i < count; i++)
        ok = add_entry_json(root, &entries[i], offsets[i], offsets[i + 1]);
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return NULL;
    size_t n = strlen(text), padded = clnet__st_round_up(n, 8);
    char *out = clnet__malloc(padded + 1);
    if (out) {
        memcpy(out, text, n);
        memset(out + n, ' ', padded - n);
        out[padded] = 0;
        *len = padded;
    }
    cJSON_free(text);
    return out;
}

/* Writes n 4-byte values little-endian, whatever the host's byte order. */
static int write_le32(int fd, const void *data, size_t n)
{
    unsigned char chunk[1 << 14];
    const unsigned char *src = data;
    while (n) {
        size_t m = n < sizeof chunk / 4 ? n : sizeof chunk / 4;
        for (size_t i = 0; i < m; i++) {
            uint32_t v;
            memcpy(&v, src + 4 * i, 4);
            for (int b = 0; b < 4; b++)
                chunk[4 * i + b] = (unsigned char)(v >> (8 * b));
        }
        if (!clnet__write_all(fd, chunk, 4 * m))
            return 0;
        src += 4 * m;
        n -= m;
    }
    return 1;
}

static clnet_status write_file(const diag *d, const char *path, const char *header, size_t hlen,
                               const clnet_safetensors_entry_in *entries, size_t count,
                               const uint64_t *offsets)
{
    char msg[1024];
    clnet__atomic_file f;
    clnet_status st = clnet__atomic_begin(&f, path, msg, sizeof msg);
    if (st)
        return report(d, st, "%s", msg);
    unsigned char len8[8];
    for (int b = 0; b < 8; b++)
        len8[b] = (unsigned char)((uint64_t)hlen >> (8 * b));
    int ok = clnet__write_all(f.fd, len8, 8) && clnet__write_all(f.fd, header, hlen);
    for (size_t i = 0; ok && i < count; i++)
        ok = write_le32(f.fd, entries[i].data, (size_t)(offsets[i + 1] - offsets[i]) / 4);
    if ((st = clnet__atomic_end(&f, ok, msg, sizeof msg)))
        return report(d, st, "%s", msg);
    return CLNET_OK;
}

CLNET_API clnet_status clnet_safetensors_write(const char *path,
                                               const clnet_safetensors_entry_in *entries,
                                               size_t count, const char *const *metadata_kv,
                                               char *err, size_t err_size)
{
    diag d = { "clnet_safetensors_write", err, err_size };
    if (!path || !path[0])
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: path is %s",
                      path ? "empty" : "NULL");
    if (!entries && count)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: entries is NULL, count %zu",
                      count);
    if (count > SIZE_MAX / sizeof(uint64_t) - 1)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: count %zu", count);
    uint64_t *offsets = clnet__malloc((count + 1) * sizeof *offsets);
    if (!offsets)
        return report(&d, CLNET_ERR_HOST_MEMORY, "out of host memory");
    clnet_status st = check_write_args(&d, entries, count, metadata_kv, offsets);
    size_t hlen = 0;
    char *header = NULL;
    if (!st && !(header = build_header(entries, count, metadata_kv, offsets, &hlen)))
        st = report(&d, CLNET_ERR_HOST_MEMORY, "out of host memory (building the header)");
    if (!st)
        st = write_file(&d, path, header, hlen, entries, count, offsets);
    clnet__free(header);
    clnet__free(offsets);
    return st;
}
