/* clnet — IDX dataset files (plain or gzip, through zlib) and MNIST-style
 * image/label pairs. Host-only: every size the file claims is checked before
 * anything it sizes is allocated, and the data is read in growing chunks, so
 * a short file never makes us allocate what its header claims. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "clnet/data.h"
#include "runtime/alloc.h"

#if defined(__GNUC__)
#define IDX_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define IDX_PRINTF(f, a)
#endif

/* The first allocation for the data; it doubles up to the claimed size as
 * data actually arrives. */
#define FIRST_CHUNK ((size_t)1 << 20)

static clnet_status fail(char *err, size_t err_size, clnet_status st, const char *fmt, ...)
    IDX_PRINTF(4, 5);

static clnet_status fail(char *err, size_t err_size, clnet_status st, const char *fmt, ...)
{
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return st;
}

static size_t idx_elem_size(int type)
{
    switch (type) {
    case CLNET_IDX_U8:
    case CLNET_IDX_I8:
        return 1;
    case CLNET_IDX_I16:
        return 2;
    case CLNET_IDX_I32:
    case CLNET_IDX_F32:
        return 4;
    case CLNET_IDX_F64:
        return 8;
    default:
        return 0;
    }
}

/* One open file and where its errors go. */
typedef struct reader {
    gzFile gz;
    const char *path;
    char *err;
    size_t err_size;
} reader;

/* Reads up to n bytes, stopping early only at the end of the input. *got
 * receives the count. A read error is CLNET_ERR_IO, a corrupt gzip stream
 * CLNET_ERR_FORMAT; a gzip stream cut short sets *truncated. */
static clnet_status read_some(reader *r, void *buf, size_t n, size_t *got, int *truncated)
{
    unsigned char *p = buf;
    *got = 0;
    *truncated = 0;
    while (*got < n) {
        size_t want = n - *got;
        unsigned chunk = want > (1u << 30) ? (1u << 30) : (unsigned)want;
        int k = gzread(r->gz, p + *got, chunk);
        if (k < 0) {
            int zerr = 0;
            const char *msg = gzerror(r->gz, &zerr);
            if (zerr == Z_ERRNO)
                return fail(r->err, r->err_size, CLNET_ERR_IO, "%s: read failed: %s", r->path,
                            strerror(errno));
            return fail(r->err, r->err_size, CLNET_ERR_FORMAT, "%s: corrupt gzip data: %s", r->path,
                        msg);
        }
        *got += (size_t)k;
        if ((unsigned)k < chunk)
            break;
    }
    if (*got < n) {
        int zerr = 0;
        gzerror(r->gz, &zerr);
        *truncated = zerr == Z_BUF_ERROR;
    }
    return CLNET_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads the magic and the dims into idx; checks type, ndim and the size. */
static clnet_status read_header(reader *r, clnet_idx *idx)
{
    unsigned char magic[4], dims[4 * CLNET_MAX_DIMS];
    size_t got;
    int trunc;
    clnet_status st = read_some(r, magic, 4, &got, &trunc);
    if (st)
        return st;
    if (got < 4)
        return fail(r->err, r->err_size, CLNET_ERR_FORMAT,
                    "%s: file has %zu bytes, shorter than the 4-byte IDX magic%s", r->path, got,
                    trunc ? " (gzip stream truncated)" : "");
    if (magic[0] != 0 || magic[1] != 0)
        return fail(r->err, r->err_size, CLNET_ERR_FORMAT,
                    "%s: bad magic 0x%02x 0x%02x 0x%02x 0x%02x: an IDX file starts with 0x00 0x00 "
                    "type ndim",
                    r->path, magic[0], magic[1], magic[2], magic[3]);
    idx->elem_size = idx_elem_size(magic[2]);
    if (idx->elem_size == 0)
        return fail(r->err, r->err_size, CLNET_ERR_FORMAT,
                    "%s: unknown element type 0x%02x (known: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, "
                    "0x0D f32, 0x0E f64)",
                    r->path, magic[2]);
    idx->type = (clnet_idx_type)magic[2];
    if (magic[3] == 0 || magic[3] > CLNET_MAX_DIMS)
        return fail(r->err, r->err_size, CLNET_ERR_FORMAT, "%s: ndim %d is out of range (1..%d)",
                    r->path, magic[3], CLNET_MAX_DIMS);
    idx->ndim = magic[3];
    size_t need = 4 * (size_t)idx->ndim;
    if ((st = read_some(r, dims, need, &got, &trunc)))
        return st;
    if (got < need)
        return fail(r->err, r->err_size, CLNET_ERR_FORMAT,
                    "%s: header truncated: expected %d dims (%zu bytes), file has %zu bytes%s",
                    r->path, idx->ndim, need, got, trunc ? " (gzip stream truncated)" : "");
    /* The byte count, with the cap checked at every step so nothing overflows. */
    uint64_t bytes = idx->elem_size, count = 1;
    for (int i = 0; i < idx->ndim; i++) {
        idx->dims[i] = be32(dims + 4 * i);
        count *= (uint64_t)idx->dims[i];
        bytes *= (uint64_t)idx->dims[i];
        if (bytes > CLNET_IDX_MAX_BYTES || bytes > SIZE_MAX)
            return fail(r->err, r->err_size, CLNET_ERR_FORMAT,
                        "%s: dims too large: the data would exceed %llu bytes (dim %d is %lld)",
                        r->path, (unsigned long long)CLNET_IDX_MAX_BYTES, i,
                        (long long)idx->dims[i]);
    }
    idx->count = (size_t)count;
    return CLNET_OK;
}

/* Reads exactly `want` bytes into a buffer that grows as data arrives. */
static clnet_status read_data(reader *r, size_t want, unsigned char **out)
{
    size_t cap = want < FIRST_CHUNK ? want : FIRST_CHUNK, have = 0;
    unsigned char *buf = clnet__malloc(cap ? cap : 1);
    if (!buf)
        return fail(r->err, r->err_size, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", r->path);
    clnet_status st = CLNET_OK;
    while (have < want) {
        if (have == cap) {
            size_t ncap = cap > want / 2 ? want : 2 * cap;
            unsigned char *nbuf = clnet__realloc(buf, ncap);
            if (!nbuf) {
                st = fail(r->err, r->err_size, CLNET_ERR_HOST_MEMORY,
                          "%s: out of host memory (%zu bytes)", r->path, ncap);
                break;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t got;
        int trunc;
        if ((st = read_some(r, buf + have, cap - have, &got, &trunc)))
            break;
        have += got;
        if (have < cap) {
            st = fail(r->err, r->err_size, CLNET_ERR_FORMAT,
                      "%s: truncated: expected %zu bytes of data, file has %zu%s", r->path, want,
                      have, trunc ? " (gzip stream truncated)" : "");
            break;
        }
    }
    if (st) {
        clnet__free(buf);
        return st;
    }
    *out = buf;
    return CLNET_OK;
}

/* After the data: the file must end here (and a gzip stream must be whole). */
static clnet_status check_end(reader *r, size_t data_bytes)
{
    unsigned char extra[64];
    size_t got;
    int trunc;
    clnet_status st = read_some(r, extra, sizeof extra, &got, &trunc);
    if (st)
        return st;
    if (got > 0)
        return fail(r->err, r->err_size, CLNET_ERR_FORMAT,
                    "%s: trailing data: %zu%s bytes after the %zu bytes of data the dims call for",
                    r->path, got, got == sizeof extra ? " or more" : "", data_bytes);
    if (trunc)
        return fail(r->err, r->err_size, CLNET_ERR_FORMAT, "%s: gzip stream truncated", r->path);
    return CLNET_OK;
}

/* Big-endian file order to host order, in place, for any host. */
static void to_host_order(unsigned char *p, size_t count, size_t elem_size)
{
    for (size_t i = 0; i < count; i++, p += elem_size) {
        if (elem_size == 2) {
            uint16_t v = (uint16_t)(p[0] << 8 | p[1]);
            memcpy(p, &v, 2);
        } else if (elem_size == 4) {
            uint32_t v = be32(p);
            memcpy(p, &v, 4);
        } else if (elem_size == 8) {
            uint64_t v = (uint64_t)be32(p) << 32 | be32(p + 4);
            memcpy(p, &v, 8);
        }
    }
}

CLNET_API clnet_status clnet_idx_load(const char *path, clnet_idx **out, char *err, size_t err_size)
{
    if (!out)
        return fail(err, err_size, CLNET_ERR_INVALID_ARG,
                    "clnet_idx_load: invalid argument: out != NULL");
    *out = NULL;
    if (!path)
        return fail(err, err_size, CLNET_ERR_INVALID_ARG,
                    "clnet_idx_load: invalid argument: path != NULL");
    /* Only a regular file: a FIFO would block the open or the reads, a
     * device (/dev/zero) never ends. O_NONBLOCK keeps the open itself from
     * waiting; the file is then read in blocking mode. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return fail(err, err_size, errno == ENOMEM ? CLNET_ERR_HOST_MEMORY : CLNET_ERR_IO,
                    "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    memset(&sb, 0, sizeof sb);
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return fail(err, err_size, CLNET_ERR_IO, "%s: cannot read: %s", path,
                    S_ISREG(sb.st_mode) || !sb.st_mode ? strerror(e)
                    : S_ISDIR(sb.st_mode)              ? strerror(EISDIR)
                                          : "not a regular file (a FIFO, socket or device)");
    }
    errno = 0;
    reader r = { gzdopen(fd, "rb"), path, err, err_size };
    if (!r.gz) {
        close(fd);
        return fail(err, err_size, CLNET_ERR_HOST_MEMORY, "%s: cannot open: out of host memory",
                    path);
    }
    gzbuffer(r.gz, 1u << 17);
    clnet_idx *idx = clnet__calloc(1, sizeof *idx);
    unsigned char *data = NULL;
    clnet_status st = CLNET_ERR_HOST_MEMORY;
    if (!idx) {
        fail(err, err_size, st, "%s: out of host memory", path);
        goto done;
    }
    if ((st = read_header(&r, idx)) || (st = read_data(&r, idx->count * idx->elem_size, &data)))
        goto done;
    idx->data = data;
    if ((st = check_end(&r, idx->count * idx->elem_size)))
        goto done;
    to_host_order(data, idx->count, idx->elem_size);
done:
    gzclose_r(r.gz);
    if (st) {
        clnet_idx_free(idx);
        return st;
    }
    *out = idx;
    return CLNET_OK;
}

CLNET_API void clnet_idx_free(clnet_idx *idx)
{
    if (!idx)
        return;
    clnet__free(idx->data);
    clnet__free(idx);
}

/* ---- MNIST-style datasets --------------------------------------------- */

/* Loads dir/<split>-<kind> or, when that does not exist, the ".gz" file. */
static clnet_status load_part(const char *dir, const char *split, const char *kind, clnet_idx **out,
                              char *path, size_t path_size, char *err, size_t err_size)
{
    struct stat sb;
    int n = snprintf(path, path_size, "%s/%s-%s", dir, split, kind);
    if (n < 0 || (size_t)n + 4 > path_size)
        return fail(err, err_size, CLNET_ERR_INVALID_ARG,
                    "clnet_dataset_load_mnist: invalid argument: dir is too long");
    if (stat(path, &sb) != 0) {
        strcat(path, ".gz");
        if (stat(path, &sb) != 0)
            return fail(err, err_size, CLNET_ERR_IO,
                        "clnet_dataset_load_mnist: neither %s-%s nor %s-%s.gz exists in %s", split,
                        kind, split, kind, dir);
    }
    return clnet_idx_load(path, out, err, err_size);
}

/* The image and label arrays must have the MNIST layout and agree. */
static clnet_status check_pair(const clnet_idx *img, const char *img_path, const clnet_idx *lab,
                               const char *lab_path, char *err, size_t err_size)
{
    if (img->type != CLNET_IDX_U8 || img->ndim != 3)
        return fail(err, err_size, CLNET_ERR_FORMAT,
                    "%s: images must be u8 (0x08) with 3 dims, file has type 0x%02x with %d",
                    img_path, (unsigned)img->type, img->ndim);
    if (lab->type != CLNET_IDX_U8 || lab->ndim != 1)
        return fail(err, err_size, CLNET_ERR_FORMAT,
                    "%s: labels must be u8 (0x08) with 1 dim, file has type 0x%02x with %d",
                    lab_path, (unsigned)lab->type, lab->ndim);
    if (img->dims[0] != lab->dims[0])
        return fail(err, err_size, CLNET_ERR_FORMAT, "%s has %lld images but %s has %lld labels",
                    img_path, (long long)img->dims[0], lab_path, (long long)lab->dims[0]);
    for (int i = 1; i <= 2; i++)
        if (img->dims[i] < 1 || img->dims[i] > INT_MAX)
            return fail(err, err_size, CLNET_ERR_FORMAT, "%s: image %s %lld is out of range",
                        img_path, i == 1 ? "rows" : "cols", (long long)img->dims[i]);
    const uint8_t *l = lab->data;
    for (size_t i = 0; i < lab->count; i++)
        if (l[i] >= 10)
            return fail(err, err_size, CLNET_ERR_FORMAT,
                        "%s: label %u at index %zu is not below 10", lab_path, l[i], i);
    return CLNET_OK;
}

/* Converts checked arrays into a dataset. */
static clnet_status make_dataset(const clnet_idx *img, const clnet_idx *lab, clnet_dataset **out,
                                 char *err, size_t err_size)
{
    clnet_dataset *ds = clnet__calloc(1, sizeof *ds);
    size_t n = img->count, m = lab->count;
    if (ds) {
        ds->images =
            n <= SIZE_MAX / sizeof(float) ? clnet__malloc(n ? n * sizeof(float) : 1) : NULL;
        ds->labels = clnet__malloc(m ? m * sizeof(int32_t) : 1);
    }
    if (!ds || !ds->images || !ds->labels) {
        clnet_dataset_free(ds);
        return fail(err, err_size, CLNET_ERR_HOST_MEMORY,
                    "clnet_dataset_load_mnist: out of host memory");
    }
    ds->count = m;
    ds->rows = (int)img->dims[1];
    ds->cols = (int)img->dims[2];
    ds->classes = 10;
    const uint8_t *p = img->data, *l = lab->data;
    for (size_t i = 0; i < n; i++)
        ds->images[i] = (float)p[i] / 255.0f;
    for (size_t i = 0; i < m; i++)
        ds->labels[i] = l[i];
    *out = ds;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_dataset_load_mnist(const char *dir, const char *split,
                                                clnet_dataset **out, char *err, size_t err_size)
{
    if (!out)
        return fail(err, err_size, CLNET_ERR_INVALID_ARG,
                    "clnet_dataset_load_mnist: invalid argument: out != NULL");
    *out = NULL;
    if (!dir)
        return fail(err, err_size, CLNET_ERR_INVALID_ARG,
                    "clnet_dataset_load_mnist: invalid argument: dir != NULL");
    if (!split || (strcmp(split, "train") != 0 && strcmp(split, "t10k") != 0))
        return fail(err, err_size, CLNET_ERR_INVALID_ARG,
                    "clnet_dataset_load_mnist: invalid argument: split is \"%s\", expected "
                    "\"train\" or \"t10k\"",
                    split ? split : "(null)");
    char img_path[4096], lab_path[4096];
    clnet_idx *img = NULL, *lab = NULL;
    clnet_status st;
    if ((st = load_part(dir, split, "images-idx3-ubyte", &img, img_path, sizeof img_path, err,
                        err_size)) ||
        (st = load_part(dir, split, "labels-idx1-ubyte", &lab, lab_path, sizeof lab_path, err,
                        err_size)) ||
        (st = check_pair(img, img_path, lab, lab_path, err, err_size)))
        goto done;
    st = make_dataset(img, lab, out, err, err_size);
done:
    clnet_idx_free(img);
    clnet_idx_free(lab);
    return st;
}

CLNET_API void clnet_dataset_free(clnet_dataset *ds)
{
    if (!ds)
        return;
    clnet__free(ds->images);
    clnet__free(ds->labels);
    clnet__free(ds);
}
