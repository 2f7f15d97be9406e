/* clnet — image grids as 8-bit grayscale PNG files (clnet/data.h), encoded
 * with zlib, which the library links already, and written atomically. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "clnet/data.h"
#include "io/atomic.h"
#include "runtime/alloc.h"

/* The most raw pixel bytes a grid may have (1 GiB): far beyond any sample
 * grid, and refused before anything is allocated. */
#define GRID_MAX_BYTES ((uint64_t)1 << 30)

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static clnet_status
fail(char *err, size_t err_size, clnet_status st, const char *fmt, ...)
{
    if (err && err_size) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(err, err_size, "clnet_png_write_grid: %s", msg);
    }
    return st;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Appends one chunk (length, type, data, CRC of type and data) at *pos. */
static void put_chunk(unsigned char *out, size_t *pos, const char *type, const unsigned char *data,
                      size_t len)
{
    unsigned char *p = out + *pos;
    put32(p, (uint32_t)len);
    memcpy(p + 4, type, 4);
    if (len && data != p + 8) /* IDAT is compressed in place */
        memcpy(p + 8, data, len);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, p + 4, (uInt)4);
    for (size_t done = 0; done < len;) {
        size_t n = len - done < 0x40000000u ? len - done : 0x40000000u;
        crc = crc32(crc, p + 8 + done, (uInt)n);
        done += n;
    }
    put32(p + 8 + len, (uint32_t)crc);
    *pos += 12 + len;
}

/* Writes bytes to path atomically (src/io/atomic.h): a failure leaves an
 * existing file as it was. */
static clnet_status write_atomic(const char *path, const unsigned char *bytes, size_t n, char *err,
                                 size_t err_size)
{
    char msg[1024];
    clnet__atomic_file f;
    clnet_status st = clnet__atomic_begin(&f, path, msg, sizeof msg);
    if (!st)
        st = clnet__atomic_end(&f, clnet__write_all(f.fd, bytes, n), msg, sizeof msg);
    return st ? fail(err, err_size, st, "%s", msg) : CLNET_OK;
}

/* One value to a gray level: [lo, hi] to [0, 255], clamped, rounded; NaN is
 * black. */
static unsigned char level(float x, float lo, float scale)
{
    float v = (x - lo) * scale;
    if (!(v > 0.0f))
        return 0;
    return v >= 255.0f ? 255 : (unsigned char)(v + 0.5f);
}

CLNET_API clnet_status clnet_png_write_grid(const char *path, const float *images, int64_t count,
                                            int height, int width, const clnet_png_grid_params *p,
                                            char *err, size_t err_size)
{
    clnet_png_grid_params d = CLNET_PNG_GRID_PARAMS_DEFAULT;
    if (!p)
        p = &d;
    if (!path || !path[0])
        return fail(err, err_size, CLNET_ERR_INVALID_ARG, "invalid argument: path is %s",
                    path ? "empty" : "NULL");
    if (!images)
        return fail(err, err_size, CLNET_ERR_INVALID_ARG, "invalid argument: images is NULL");
    if (count < 1 || height < 1 || width < 1)
        return fail(err, err_size, CLNET_ERR_INVALID_ARG,
                    "invalid argument: count %lld, height %d, width %d (each must be >= 1)",
                    (long long)count, height, width);
    if (p->cols < 0 || p->border < 0 || p->border > 64)
        return fail(err, err_size, CLNET_ERR_INVALID_ARG,
                    "invalid argument: cols %d (>= 0), border %d (0..64)", p->cols, p->border);
    if (!isfinite(p->lo) || !isfinite(p->hi) || !(p->lo < p->hi) ||
        !isfinite(255.0f / (p->hi - p->lo)))
        return fail(err, err_size, CLNET_ERR_INVALID_ARG,
                    "invalid argument: the range [%g, %g] must be finite with lo < hi",
                    (double)p->lo, (double)p->hi);
    /* Sizes in 64 bits, each bounded before the next product. */
    uint64_t cols = (uint64_t)p->cols;
    if (!cols)
        while (cols * cols < (uint64_t)count)
            cols++;
    if (cols > (uint64_t)count)
        cols = (uint64_t)count;
    uint64_t rows = ((uint64_t)count + cols - 1) / cols, b = (uint64_t)p->border;
    uint64_t gw = cols * ((uint64_t)width + b) + b, gh = rows * ((uint64_t)height + b) + b;
    if (cols > GRID_MAX_BYTES || rows > GRID_MAX_BYTES || gw > GRID_MAX_BYTES ||
        gh > GRID_MAX_BYTES || gh * (gw + 1) > GRID_MAX_BYTES)
        return fail(err, err_size, CLNET_ERR_TOO_LARGE,
                    "a grid of %llu x %llu images of %d x %d exceeds %llu bytes",
                    (unsigned long long)rows, (unsigned long long)cols, height, width,
                    (unsigned long long)GRID_MAX_BYTES);
    /* Raw scanlines: a filter byte (0, none) and gw gray levels each. */
    size_t stride = (size_t)gw + 1, raw_n = (size_t)gh * stride;
    unsigned char *raw = clnet__calloc(raw_n, 1);
    uLong zcap = compressBound((uLong)raw_n);
    unsigned char *out = raw ? clnet__malloc(8 + 25 + 12 + (size_t)zcap + 12) : NULL;
    if (!out) {
        clnet__free(raw);
        return fail(err, err_size, CLNET_ERR_HOST_MEMORY, "out of host memory");
    }
    float scale = 255.0f / (p->hi - p->lo);
    size_t pixels = (size_t)height * (size_t)width;
    for (int64_t k = 0; k < count; k++) {
        size_t r0 = (size_t)((uint64_t)k / cols * ((uint64_t)height + b) + b);
        size_t c0 = (size_t)((uint64_t)k % cols * ((uint64_t)width + b) + b);
        const float *img = images + (size_t)k * pixels;
        for (int y = 0; y < height; y++) {
            unsigned char *line = raw + (r0 + (size_t)y) * stride + 1 + c0;
            for (int x = 0; x < width; x++)
                line[x] = level(img[(size_t)y * (size_t)width + (size_t)x], p->lo, scale);
        }
    }
    static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    unsigned char ihdr[13] = { 0 };
    put32(ihdr, (uint32_t)gw);
    put32(ihdr + 4, (uint32_t)gh);
    ihdr[8] = 8; /* bit depth; color type 0 (gray), deflate, filter 0, no interlace */
    memcpy(out, sig, 8);
    size_t pos = 8;
    put_chunk(out, &pos, "IHDR", ihdr, sizeof ihdr);
    /* IDAT's data is compressed straight into place after its 8-byte head. */
    uLong zlen = zcap;
    clnet_status st = CLNET_OK;
    if (compress2(out + pos + 8, &zlen, raw, (uLong)raw_n, 6) != Z_OK || zlen > 0x7fffffffu)
        st = fail(err, err_size, CLNET_ERR_HOST_MEMORY, "zlib could not compress the image");
    if (!st) {
        put_chunk(out, &pos, "IDAT", out + pos + 8, (size_t)zlen);
        put_chunk(out, &pos, "IEND", NULL, 0);
        st = write_atomic(path, out, pos, err, err_size);
    }
    clnet__free(raw);
    clnet__free(out);
    return st;
}
