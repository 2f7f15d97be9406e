/* clnet — NumPy .npy float32 arrays (include/clnet/npy.h): a strict parser
 * of the header's Python dict literal, a loader and an atomic writer.
 * Host-only. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clnet/npy.h"
#include "io/atomic.h"
#include "io/diag.h"
#include "runtime/alloc.h"
#include "runtime/checked.h"

static const char MAGIC[6] = { '\x93', 'N', 'U', 'M', 'P', 'Y' };

/* ---- Errors ------------------------------------------------------------- */

typedef clnet__diag diag; /* what: "clnet_npy_parse" or the path */
#define report clnet__diag_report

/* ---- The header's dict literal ------------------------------------------ */

/* A cursor over the header text h[0..n). */
typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted string ('...' or "...", no escapes) into buf (size bytes, NUL
 * terminated); 0 if there is none or it does not fit. */
static int read_string(cursor *c, char *buf, size_t size)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return 0;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= size || (unsigned char)*c->p < 0x20)
            return 0;
        buf[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return 0;
    c->p++;
    buf[n] = 0;
    return 1;
}

/* A word of letters (True, False) into buf. */
static int read_word(cursor *c, char *buf, size_t size)
{
    skip_ws(c);
    size_t n = 0;
    while (c->p < c->end && ((*c->p >= 'A' && *c->p <= 'Z') || (*c->p >= 'a' && *c->p <= 'z'))) {
        if (n + 1 >= size)
            return 0;
        buf[n++] = *c->p++;
    }
    buf[n] = 0;
    return n > 0;
}

/* A tuple of non-negative integers: "()", "(3,)", "(2, 3)", "(2, 3,)".
 * Returns 0 and sets *why on a malformed one. */
static int read_shape(cursor *c, int *ndim, int64_t *shape, const char **why)
{
    *why = "is not a tuple of integers";
    if (!eat(c, '('))
        return 0;
    *ndim = 0;
    if (eat(c, ')'))
        return 1;
    for (;;) {
        skip_ws(c);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return 0;
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (INT64_MAX - (*c->p - '0')) / 10) {
                *why = "has a dimension over 2^63";
                return 0;
            }
            v = v * 10 + (*c->p++ - '0');
        }
        if (*ndim >= CLNET_MAX_DIMS) {
            *why = "has more dimensions than clnet supports (8)";
            return 0;
        }
        shape[(*ndim)++] = v;
        int comma = eat(c, ',');
        if (eat(c, ')'))
            return *ndim > 1 || comma; /* (3) is an int, not a tuple */
        if (!comma)
            return 0;
    }
}

/* Parses the dict h[0..n) into ndim and shape. */
static clnet_status parse_header(const diag *d, const char *h, size_t n, int *ndim, int64_t *shape)
{
    cursor c = { h, h + n };
    int have_descr = 0, have_order = 0, have_shape = 0;
    char key[32], val[32];
    if (!eat(&c, '{'))
        return report(d, CLNET_ERR_FORMAT, "the header is not a Python dict ('{' expected)");
    while (!eat(&c, '}')) {
        if (!read_string(&c, key, sizeof key))
            return report(d, CLNET_ERR_FORMAT, "the header's dict has a malformed key");
        if (!eat(&c, ':'))
            return report(d, CLNET_ERR_FORMAT, "':' expected after header key '%s'", key);
        if (!strcmp(key, "descr")) {
            if (have_descr++)
                return report(d, CLNET_ERR_FORMAT, "the header repeats 'descr'");
            if (!read_string(&c, val, sizeof val))
                return report(d, CLNET_ERR_UNSUPPORTED,
                              "'descr' is not a simple dtype string (a structured dtype?); only "
                              "'<f4' (float32, little-endian) is supported");
            if (strcmp(val, "<f4") && strcmp(val, "=f4") && strcmp(val, "f4"))
                return report(d, CLNET_ERR_UNSUPPORTED,
                              "dtype '%s' is not supported; only '<f4' (float32, little-endian): "
                              "convert with a.astype('<f4')",
                              val);
        } else if (!strcmp(key, "fortran_order")) {
            if (have_order++)
                return report(d, CLNET_ERR_FORMAT, "the header repeats 'fortran_order'");
            if (!read_word(&c, val, sizeof val) || (strcmp(val, "False") && strcmp(val, "True")))
                return report(d, CLNET_ERR_FORMAT, "'fortran_order' is not True or False");
            if (!strcmp(val, "True"))
                return report(d, CLNET_ERR_UNSUPPORTED,
                              "Fortran order is not supported: save np.ascontiguousarray(a)");
        } else if (!strcmp(key, "shape")) {
            const char *why;
            if (have_shape++)
                return report(d, CLNET_ERR_FORMAT, "the header repeats 'shape'");
            if (!read_shape(&c, ndim, shape, &why))
                return report(d, CLNET_ERR_FORMAT, "'shape' %s", why);
        } else {
            return report(d, CLNET_ERR_FORMAT, "unknown header key '%s'", key);
        }
        if (!eat(&c, ',')) {
            if (!eat(&c, '}'))
                return report(d, CLNET_ERR_FORMAT, "',' or '}' expected after '%s'", key);
            break;
        }
    }
    skip_ws(&c);
    if (c.p != c.end)
        return report(d, CLNET_ERR_FORMAT, "text after the header's dict");
    if (!have_descr || !have_order || !have_shape)
        return report(d, CLNET_ERR_FORMAT, "the header lacks '%s'",
                      !have_descr   ? "descr"
                      : !have_order ? "fortran_order"
                                    : "shape");
    return CLNET_OK;
}

/* ---- Parsing ------------------------------------------------------------ */

/* The prefix: magic, version, header length. Sets *start to the header text
 * and *hlen to its length. */
static clnet_status parse_prefix(const diag *d, const unsigned char *b, size_t len, size_t *start,
                                 size_t *hlen)
{
    if (len < 10 || memcmp(b, MAGIC, 6))
        return report(d, CLNET_ERR_FORMAT, "not a .npy file (no \\x93NUMPY magic%s)",
                      len < 10 ? ", or shorter than 10 bytes" : "");
    if (b[6] < 1 || b[6] > 3 || b[7] != 0)
        return report(d, CLNET_ERR_FORMAT, "unknown .npy version %u.%u (1.0, 2.0 and 3.0 exist)",
                      b[6], b[7]);
    uint64_t n;
    if (b[6] == 1) {
        n = (uint64_t)b[8] | (uint64_t)b[9] << 8;
        *start = 10;
    } else {
        if (len < 12)
            return report(d, CLNET_ERR_FORMAT, "truncated in the header length (%zu bytes)", len);
        n = (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
        *start = 12;
    }
    if (n > CLNET_NPY_MAX_HEADER)
        return report(d, CLNET_ERR_FORMAT, "header length %llu exceeds the limit of %d bytes",
                      (unsigned long long)n, CLNET_NPY_MAX_HEADER);
    if (n > len - *start)
        return report(d, CLNET_ERR_FORMAT,
                      "header length %llu runs past the end of the file (%zu bytes)",
                      (unsigned long long)n, len);
    if (n == 0 || b[*start + n - 1] != '\n')
        return report(d, CLNET_ERR_FORMAT, "the header does not end with a newline");
    for (size_t i = 0; i < n; i++)
        if (b[*start + i] == 0 || b[*start + i] >= 0x80)
            return report(d, CLNET_ERR_FORMAT, "the header holds a byte that is not ASCII text");
    *hlen = (size_t)n;
    return CLNET_OK;
}

static clnet_status parse(const diag *d, const unsigned char *b, size_t len, clnet_npy **out)
{
    size_t start = 0, hlen = 0;
    clnet_status st = parse_prefix(d, b, len, &start, &hlen);
    clnet_npy a;
    memset(&a, 0, sizeof a);
    if (st || (st = parse_header(d, (const char *)b + start, hlen, &a.ndim, a.shape)))
        return st;
    int overflow = 0;
    int64_t numel = 1;
    for (int i = 0; i < a.ndim; i++)
        numel = clnet__mul_i64(numel, a.shape[i], &overflow);
    int64_t bytes = clnet__mul_i64(numel, 4, &overflow);
    size_t have = len - start - hlen;
    if (overflow)
        return report(d, CLNET_ERR_FORMAT, "the shape's size overflows");
    if ((uint64_t)bytes != have)
        return report(d, CLNET_ERR_FORMAT,
                      "the shape needs %lld data bytes but the file holds %zu after the header",
                      (long long)bytes, have);
    a.numel = (size_t)numel;
    clnet_npy *r = clnet__malloc(sizeof *r);
    float *data = clnet__malloc(a.numel ? a.numel * sizeof(float) : 1);
    if (!r || !data) {
        clnet__free(r);
        clnet__free(data);
        return report(d, CLNET_ERR_HOST_MEMORY, "out of host memory (%zu floats)", a.numel);
    }
    const unsigned char *p = b + start + hlen;
    for (size_t i = 0; i < a.numel; i++, p += 4) {
        uint32_t u =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(&data[i], &u, 4);
    }
    *r = a;
    r->data = data;
    *out = r;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_npy_parse(const void *buf, size_t len, clnet_npy **out, char *err,
                                       size_t err_size)
{
    diag d = { "clnet_npy_parse", err, err_size };
    if (!out)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: out is NULL");
    *out = NULL;
    if (!buf && len)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: buf is NULL, len %zu", len);
    return parse(&d, buf ? buf : (const void *)"", len, out);
}

CLNET_API clnet_status clnet_npy_load(const char *path, clnet_npy **out, char *err, size_t err_size)
{
    diag d = { "clnet_npy_load", err, err_size };
    if (!out)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: out is NULL");
    *out = NULL;
    if (!path)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: path is NULL");
    d.what = path;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; the type is
     * checked before a byte is read, then reads block again. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return report(&d, CLNET_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    clnet_status st = CLNET_OK;
    unsigned char *buf = NULL;
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1 || fstat(fd, &sb) != 0)
        st = report(&d, CLNET_ERR_IO, "cannot stat: %s", strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = report(&d, CLNET_ERR_IO, "not a regular file");
    else if ((uint64_t)sb.st_size >= SIZE_MAX / 2)
        st = report(&d, CLNET_ERR_HOST_MEMORY, "file too large for this machine");
    else if (!(buf = clnet__malloc((size_t)sb.st_size + 1)))
        st = report(&d, CLNET_ERR_HOST_MEMORY, "out of host memory (%lld bytes)",
                    (long long)sb.st_size);
    size_t len = st ? 0 : (size_t)sb.st_size, got = 0;
    while (!st && got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            st = report(&d, CLNET_ERR_IO, "read failed: %s",
                        r < 0 ? strerror(errno) : "the file shrank while being read");
        else
            got += (size_t)r;
    }
    close(fd);
    if (!st)
        st = parse(&d, buf, len, out);
    clnet__free(buf);
    return st;
}

CLNET_API void clnet_npy_free(clnet_npy *a)
{
    if (!a)
        return;
    clnet__free(a->data);
    clnet__free(a);
}

/* ---- Writing ------------------------------------------------------------ */

CLNET_API clnet_status clnet_npy_write(const char *path, int ndim, const int64_t *shape,
                                       const float *data, char *err, size_t err_size)
{
    diag d = { "clnet_npy_write", err, err_size };
    if (!path || !path[0])
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: path is %s",
                      path ? "empty" : "NULL");
    if (ndim < 0 || ndim > CLNET_MAX_DIMS || (ndim && !shape))
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: ndim %d (0..%d) or shape NULL",
                      ndim, CLNET_MAX_DIMS);
    int overflow = 0;
    int64_t numel = 1;
    /* The dict as numpy.save writes it: "(3,)" for one dimension. */
    char h[512];
    int n = snprintf(h, sizeof h, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: shape[%d] is %lld", i,
                          (long long)shape[i]);
        numel = clnet__mul_i64(numel, shape[i], &overflow);
        n += snprintf(h + n, sizeof h - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    if (overflow || clnet__mul_i64(numel, 4, &overflow) < 0 || overflow)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: the shape's size overflows");
    if (numel && !data)
        return report(&d, CLNET_ERR_INVALID_ARG, "invalid argument: data is NULL");
    n += snprintf(h + n, sizeof h - (size_t)n, "%s), }", ndim == 1 ? "," : "");
    /* Pad with spaces so that magic + version + length + header + '\n' is a
     * multiple of 64 bytes. */
    while ((10 + n + 1) % 64)
        h[n++] = ' ';
    h[n++] = '\n';
    unsigned char prefix[10] = {
        0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 0xff), (unsigned char)(n >> 8)
    };
    char msg[1024];
    clnet__atomic_file f;
    clnet_status st = clnet__atomic_begin(&f, path, msg, sizeof msg);
    if (st)
        return report(&d, st, "%s", msg);
    int ok = clnet__write_all(f.fd, prefix, sizeof prefix) && clnet__write_all(f.fd, h, (size_t)n);
    unsigned char chunk[4096];
    for (size_t i = 0; ok && i < (size_t)numel;) {
        size_t m = 0;
        for (; m < sizeof chunk && i < (size_t)numel; i++, m += 4) {
            uint32_t u;
            memcpy(&u, &data[i], 4);
            for (int b = 0; b < 4; b++)
                chunk[m + (size_t)b] = (unsigned char)(u >> (8 * b));
        }
        ok = clnet__write_all(f.fd, chunk, m);
    }
    if ((st = clnet__atomic_end(&f, ok, msg, sizeof msg)))
        return report(&d, st, "%s", msg);
    return CLNET_OK;
}
