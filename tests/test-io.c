/* clnet tests — IDX and safetensors readers and writers (suite "io",
 * host-only: no OpenCL). Files are generated in a temporary directory; the
 * malformed safetensors corpus lives in test-io-corpus.c. */
#define _XOPEN_SOURCE 700 /* mknod, S_IFCHR */
#include <dirent.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <png.h>
#include <zlib.h>

#include "clnet/data.h"
#include "harness.h"

/* test-io-corpus.c */
void io_add_corpus_tests(Suite *s);

/* ---- Helpers ------------------------------------------------------------ */

static void tmpdir_make(char *dir, size_t size)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, size, "%s/clnet-io-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp(%s) failed", dir);
}

/* Entries in dir other than . and .. */
static int tmpdir_count(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* Removes dir and what the tests put in it (files, empty subdirectories). */
static void tmpdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char path[4096];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
    rmdir(dir);
}

static void put_file(const char *path, const void *buf, size_t n, int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(gzwrite(f, buf, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(f), Z_OK);
        return;
    }
    unlink(path); /* a new file: ext4 flushes a file truncated and rewritten */
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Reads a whole file; caller frees. */
static unsigned char *get_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

/* Asserts a status and, for a failure, that the message contains needle. */
static void expect(const char *label, clnet_status got, clnet_status want, const char *err,
                   const char *needle)
{
    ck_assert_msg(got == want, "%s: returned %s, expected %s (message: %s)", label,
                  clnet_status_name(got), clnet_status_name(want), err);
    if (needle)
        ck_assert_msg(strstr(err, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", label, err,
                      needle);
}

/* ---- IDX ---------------------------------------------------------------- */

/* An IDX image of count host values of elem_size bytes: magic, big-endian
 * dims, big-endian values. Returns the length. */
static size_t idx_build(unsigned char *out, int type, int ndim, const uint32_t *dims,
                        const void *values, size_t elem_size, size_t count)
{
    size_t n = 0;
    out[n++] = 0;
    out[n++] = 0;
    out[n++] = (unsigned char)type;
    out[n++] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++)
        for (int b = 3; b >= 0; b--)
            out[n++] = (unsigned char)(dims[i] >> (8 * b));
    const unsigned char *v = values;
    for (size_t i = 0; i < count; i++, v += elem_size) {
        uint64_t bits = 0;
        if (elem_size == 1)
            bits = v[0];
        if (elem_size == 2) {
            uint16_t x;
            memcpy(&x, v, 2);
            bits = x;
        }
        if (elem_size == 4) {
            uint32_t x;
            memcpy(&x, v, 4);
            bits = x;
        }
        if (elem_size == 8)
            memcpy(&bits, v, 8);
        for (int b = (int)elem_size - 1; b >= 0; b--)
            out[n++] = (unsigned char)(bits >> (8 * b));
    }
    return n;
}

START_TEST(idx_reads_every_type_plain_and_gzip)
{
    static const uint8_t u8[6] = { 0, 1, 127, 128, 255, 7 };
    static const int8_t i8[6] = { -128, -1, 0, 1, 127, 5 };
    static const int16_t i16[6] = { -32768, -1, 0, 1, 32767, 0x1234 };
    static const int32_t i32[6] = { INT32_MIN, -1, 0, 1, INT32_MAX, 0x12345678 };
    const float f32[6] = { -1.5f, -0.0f, 0x1p-149f, FLT_MAX, INFINITY, NAN };
    const double f64[6] = { -1.5, -0.0, 0x1p-1074, DBL_MAX, -INFINITY, 1.0 / 3.0 };
    const struct {
        int type;
        const void *v;
        size_t size;
    } cases[] = {
        { 0x08, u8, 1 },  { 0x09, i8, 1 },  { 0x0B, i16, 2 },
        { 0x0C, i32, 4 }, { 0x0D, f32, 4 }, { 0x0E, f64, 8 },
    };
    char dir[256], path[512], err[512];
    tmpdir_make(dir, sizeof dir);
    unsigned char buf[256];
    for (size_t c = 0; c < 6; c++)
        for (int gz = 0; gz < 2; gz++) {
            /* 2x3 for most types; 1x2x3 for one, to cover ndim 3. */
            int ndim = c == 3 ? 3 : 2;
            uint32_t dims3[3] = { 1, 2, 3 }, dims2[2] = { 2, 3 };
            const uint32_t *dims = ndim == 3 ? dims3 : dims2;
            size_t n = idx_build(buf, cases[c].type, ndim, dims, cases[c].v, cases[c].size, 6);
            snprintf(path, sizeof path, "%s/t%zu%s", dir, c, gz ? ".gz" : "");
            put_file(path, buf, n, gz);
            clnet_idx *idx = NULL;
            clnet_status st = clnet_idx_load(path, &idx, err, sizeof err);
            expect(path, st, CLNET_OK, err, NULL);
            ck_assert_int_eq(idx->type, cases[c].type);
            ck_assert_int_eq(idx->ndim, ndim);
            for (int i = 0; i < ndim; i++)
                ck_assert_int_eq(idx->dims[i], dims[i]);
            ck_assert_int_eq(idx->dims[ndim], 0);
            ck_assert_uint_eq(idx->count, 6);
            ck_assert_uint_eq(idx->elem_size, cases[c].size);
            ck_assert_msg(!memcmp(idx->data, cases[c].v, 6 * cases[c].size),
                          "%s: values differ (bitwise)", path);
            clnet_idx_free(idx);
        }
    clnet_idx_free(NULL);
    tmpdir_remove(dir);
}
END_TEST

START_TEST(idx_accepts_zero_dims_and_max_ndim)
{
    char dir[256], path[512], err[512];
    tmpdir_make(dir, sizeof dir);
    unsigned char buf[256];
    /* A zero dim makes the product 0 whatever the other dims say. */
    const uint32_t zero[3] = { 0, 0xFFFFFFFFu, 0xFFFFFFFFu };
    size_t n = idx_build(buf, 0x0D, 3, zero, NULL, 4, 0);
    snprintf(path, sizeof path, "%s/zero", dir);
    put_file(path, buf, n, 0);
    clnet_idx *idx;
    expect("zero dim", clnet_idx_load(path, &idx, err, sizeof err), CLNET_OK, err, NULL);
    ck_assert_uint_eq(idx->count, 0);
    ck_assert_ptr_nonnull(idx->data);
    clnet_idx_free(idx);
    const uint32_t eight[8] = { 1, 1, 1, 1, 1, 1, 1, 3 };
    const uint8_t v[3] = { 9, 8, 7 };
    n = idx_build(buf, 0x08, 8, eight, v, 1, 3);
    put_file(path, buf, n, 1);
    expect("8 dims", clnet_idx_load(path, &idx, err, sizeof err), CLNET_OK, err, NULL);
    ck_assert_int_eq(idx->ndim, 8);
    ck_assert_uint_eq(idx->count, 3);
    ck_assert_int_eq(((uint8_t *)idx->data)[2], 7);
    clnet_idx_free(idx);
    tmpdir_remove(dir);
}
END_TEST

/* Every strict prefix of a valid file, plain and gzip, is an error naming
 * what is missing; nothing is returned. */
START_TEST(idx_rejects_every_truncation)
{
    char dir[256], path[512], err[512], want[128];
    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/cut", dir);
    const int16_t v[6] = { 1, -2, 3, -4, 5, -6 };
    const uint32_t dims[2] = { 2, 3 };
    unsigned char buf[64];
    size_t n = idx_build(buf, 0x0B, 2, dims, v, 2, 6);
    ck_assert_uint_eq(n, 24);
    for (size_t len = 0; len < n; len++) {
        put_file(path, buf, len, 0);
        clnet_idx *idx = (clnet_idx *)&idx;
        clnet_status st = clnet_idx_load(path, &idx, err, sizeof err);
        if (len < 4)
            snprintf(want, sizeof want, "file has %zu bytes, shorter than the 4-byte IDX magic",
                     len);
        else if (len < 12)
            snprintf(want, sizeof want, "header truncated: expected 2 dims (8 bytes), file has %zu",
                     len - 4);
        else
            snprintf(want, sizeof want, "expected 12 bytes of data, file has %zu", len - 12);
        expect("plain truncation", st, CLNET_ERR_FORMAT, err, want);
        ck_assert_ptr_null(idx);
        ck_assert_msg(strstr(err, path) == err, "message \"%s\" does not start with the path", err);
    }
    /* The same file gzip-compressed, cut at every length of the gzip stream. */
    put_file(path, buf, n, 1);
    size_t gzlen;
    unsigned char *gz = get_file(path, &gzlen);
    for (size_t len = 0; len < gzlen; len++) {
        put_file(path, gz, len, 0);
        clnet_idx *idx = NULL;
        clnet_status st = clnet_idx_load(path, &idx, err, sizeof err);
        expect("gzip truncation", st, CLNET_ERR_FORMAT, err, path);
        ck_assert_ptr_null(idx);
    }
    put_file(path, gz, gzlen, 0);
    clnet_idx *idx = NULL;
    expect("whole gzip", clnet_idx_load(path, &idx, err, sizeof err), CLNET_OK, err, NULL);
    clnet_idx_free(idx);
    free(gz);
    tmpdir_remove(dir);
}
END_TEST

START_TEST(idx_rejects_bad_headers)
{
    char dir[256], path[512], err[512];
    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/bad", dir);
    const struct {
        unsigned char bytes[40];
        size_t len;
        const char *needle;
    } cases[] = {
        { { 1, 0, 8, 1, 0, 0, 0, 1, 5 }, 9, "bad magic 0x01 0x00 0x08 0x01" },
        { { 0, 1, 8, 1, 0, 0, 0, 1, 5 }, 9, "bad magic" },
        { { 0, 0, 0x0A, 1, 0, 0, 0, 1, 5 }, 9, "unknown element type 0x0a" },
        { { 0, 0, 0x0F, 1, 0, 0, 0, 1, 5 }, 9, "unknown element type 0x0f" },
        { { 0, 0, 8, 0, 5 }, 5, "ndim 0 is out of range (1..8)" },
        { { 0, 0, 8, 9 }, 4, "ndim 9 is out of range" },
        { { 0, 0, 8, 255 }, 4, "ndim 255 is out of range" },
        /* 4 dims of 2^32 - 1 bytes: the product overflows 64 bits. */
        { { 0,   0,   8,   4,   255, 255, 255, 255, 255, 255,
            255, 255, 255, 255, 255, 255, 255, 255, 255, 255 },
          20,
          "dims too large" },
        /* f64 65536 x 65536: 2^35 bytes, above the 4 GiB cap. */
        { { 0, 0, 0x0E, 2, 0, 1, 0, 0, 0, 1, 0, 0 }, 12, "dims too large" },
        /* u8 of 2^32 - 1 bytes passes the cap, but the file is short: the
         * error comes after reading, without allocating 4 GiB first. */
        { { 0, 0, 8, 1, 255, 255, 255, 255, 1, 2 },
          10,
          "expected 4294967295 bytes of data, file has 2" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int gz = 0; gz < 2; gz++) {
            put_file(path, cases[c].bytes, cases[c].len, gz);
            clnet_idx *idx = NULL;
            clnet_status st = clnet_idx_load(path, &idx, err, sizeof err);
            expect(cases[c].needle, st, CLNET_ERR_FORMAT, err, cases[c].needle);
            ck_assert_ptr_null(idx);
        }
    tmpdir_remove(dir);
}
END_TEST

START_TEST(idx_rejects_trailing_and_corrupt_data)
{
    char dir[256], path[512], err[512];
    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/x", dir);
    const uint8_t v[5] = { 1, 2, 3, 4, 5 };
    const uint32_t dims[1] = { 4 };
    unsigned char buf[64];
    size_t n = idx_build(buf, 0x08, 1, dims, v, 1, 5); /* one value more than the dims */
    clnet_idx *idx = NULL;
    for (int gz = 0; gz < 2; gz++) {
        put_file(path, buf, n, gz);
        expect("trailing", clnet_idx_load(path, &idx, err, sizeof err), CLNET_ERR_FORMAT, err,
               "trailing data: 1 bytes after the 4 bytes of data");
    }
    /* A gzip stream whose compressed bytes are damaged: inflate or the CRC
     * check fails; never a silent success with wrong data. */
    unsigned char big[4096];
    const uint32_t d1[1] = { 4000 };
    uint8_t vals[4000];
    for (int i = 0; i < 4000; i++)
        vals[i] = (uint8_t)(i * 37 % 251);
    n = idx_build(big, 0x08, 1, d1, vals, 1, 4000);
    put_file(path, big, n, 1);
    size_t gzlen;
    unsigned char *gz = get_file(path, &gzlen);
    for (size_t pos = 12; pos + 8 < gzlen; pos += 7) {
        gz[pos] ^= 0x5a;
        put_file(path, gz, gzlen, 0);
        clnet_status st = clnet_idx_load(path, &idx, err, sizeof err);
        expect("corrupt gzip", st, CLNET_ERR_FORMAT, err, path);
        gz[pos] ^= 0x5a;
    }
    free(gz);
    tmpdir_remove(dir);
}
END_TEST

START_TEST(idx_io_errors_and_bad_args)
{
    char dir[256], path[512], err[512];
    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/missing", dir);
    clnet_idx *idx = (clnet_idx *)&idx;
    expect("missing", clnet_idx_load(path, &idx, err, sizeof err), CLNET_ERR_IO, err,
           "cannot open: No such file or directory");
    ck_assert_ptr_null(idx);
    ck_assert_msg(strstr(err, path) == err, "message \"%s\" does not start with the path", err);
    expect("directory", clnet_idx_load(dir, &idx, err, sizeof err), CLNET_ERR_IO, err,
           "Is a directory");
    expect("NULL path", clnet_idx_load(NULL, &idx, err, sizeof err), CLNET_ERR_INVALID_ARG, err,
           "path != NULL");
    expect("NULL out", clnet_idx_load(path, NULL, err, sizeof err), CLNET_ERR_INVALID_ARG, err,
           "out != NULL");
    /* No error buffer: only the status. */
    ck_assert_int_eq(clnet_idx_load(path, &idx, NULL, 0), CLNET_ERR_IO);
    /* A tiny buffer gets a truncated, terminated message. */
    char small[8];
    memset(small, 'x', sizeof small);
    ck_assert_int_eq(clnet_idx_load(path, &idx, small, sizeof small), CLNET_ERR_IO);
    ck_assert_uint_eq(strlen(small), 7);
    tmpdir_remove(dir);
}
END_TEST

/* ---- MNIST-style datasets ----------------------------------------------- */

/* Writes <split>-images-idx3-ubyte and -labels files into dir. */
static void put_mnist(const char *dir, const char *split, uint32_t count, uint32_t rows,
                      uint32_t cols, const uint8_t *pixels, const uint8_t *labels, int gz)
{
    char path[512];
    unsigned char *buf = malloc(16 + (size_t)count * rows * cols);
    const uint32_t idims[3] = { count, rows, cols }, ldims[1] = { count };
    size_t n = idx_build(buf, 0x08, 3, idims, pixels, 1, (size_t)count * rows * cols);
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, split, gz ? ".gz" : "");
    put_file(path, buf, n, gz);
    n = idx_build(buf, 0x08, 1, ldims, labels, 1, count);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, split, gz ? ".gz" : "");
    put_file(path, buf, n, gz);
    free(buf);
}

START_TEST(dataset_loads_mnist_layout)
{
    char dir[256], path[512], err[512];
    tmpdir_make(dir, sizeof dir);
    enum { N = 7, R = 3, C = 5 };
    uint8_t pix[N * R * C], lab[N];
    for (int i = 0; i < N * R * C; i++)
        pix[i] = (uint8_t)(i * 53 % 256);
    pix[0] = 0;
    pix[1] = 255;
    for (int i = 0; i < N; i++)
        lab[i] = (uint8_t)(i * 3 % 10);
    put_mnist(dir, "t10k", N, R, C, pix, lab, 1);
    clnet_dataset *ds = NULL;
    expect("t10k", clnet_dataset_load_mnist(dir, "t10k", &ds, err, sizeof err), CLNET_OK, err,
           NULL);
    ck_assert_uint_eq(ds->count, N);
    ck_assert_int_eq(ds->rows, R);
    ck_assert_int_eq(ds->cols, C);
    ck_assert_int_eq(ds->classes, 10);
    ck_assert(ds->images[0] == 0.0f && ds->images[1] == 1.0f);
    for (int i = 0; i < N * R * C; i++)
        ck_assert_msg(ds->images[i] == (float)pix[i] / 255.0f, "pixel %d", i);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(ds->labels[i], lab[i]);
    clnet_dataset_free(ds);
    /* Plain files win over .gz ones: make the .gz files garbage. */
    put_mnist(dir, "train", N, R, C, pix, lab, 0);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    put_file(path, "garbage", 7, 0);
    expect("train", clnet_dataset_load_mnist(dir, "train", &ds, err, sizeof err), CLNET_OK, err,
           NULL);
    ck_assert_uint_eq(ds->count, N);
    clnet_dataset_free(ds);
    clnet_dataset_free(NULL);
    tmpdir_remove(dir);
}
END_TEST

START_TEST(dataset_rejects_inconsistent_files)
{
    char dir[256], path[512], err[512];
    tmpdir_make(dir, sizeof dir);
    uint8_t pix[4 * 2 * 2] = { 0 }, lab[4] = { 1, 2, 3, 9 };
    clnet_dataset *ds = (clnet_dataset *)&ds;
    expect("no files", clnet_dataset_load_mnist(dir, "t10k", &ds, err, sizeof err), CLNET_ERR_IO,
           err, "neither t10k-images-idx3-ubyte nor t10k-images-idx3-ubyte.gz exists");
    ck_assert_ptr_null(ds);
    put_mnist(dir, "t10k", 4, 2, 2, pix, lab, 0);
    /* Labels for 3 images only. */
    unsigned char buf[64];
    const uint32_t three[1] = { 3 };
    size_t n = idx_build(buf, 0x08, 1, three, lab, 1, 3);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
    put_file(path, buf, n, 0);
    expect("counts", clnet_dataset_load_mnist(dir, "t10k", &ds, err, sizeof err), CLNET_ERR_FORMAT,
           err, "has 4 images but");
    /* A label of 10. */
    lab[2] = 10;
    put_mnist(dir, "t10k", 4, 2, 2, pix, lab, 0);
    expect("label", clnet_dataset_load_mnist(dir, "t10k", &ds, err, sizeof err), CLNET_ERR_FORMAT,
           err, "label 10 at index 2 is not below 10");
    lab[2] = 3;
    /* Labels as int8, images with 2 dims. */
    n = idx_build(buf, 0x09, 1, (const uint32_t[]){ 4 }, lab, 1, 4);
    put_file(path, buf, n, 0);
    expect("label type", clnet_dataset_load_mnist(dir, "t10k", &ds, err, sizeof err),
           CLNET_ERR_FORMAT, err, "labels must be u8 (0x08) with 1 dim");
    put_mnist(dir, "t10k", 4, 2, 2, pix, lab, 0);
    n = idx_build(buf, 0x08, 2, (const uint32_t[]){ 4, 4 }, pix, 1, 16);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    put_file(path, buf, n, 0);
    expect("image dims", clnet_dataset_load_mnist(dir, "t10k", &ds, err, sizeof err),
           CLNET_ERR_FORMAT, err, "images must be u8 (0x08) with 3 dims");
    n = idx_build(buf, 0x08, 3, (const uint32_t[]){ 4, 0, 2 }, pix, 1, 0);
    put_file(path, buf, n, 0);
    expect("zero rows", clnet_dataset_load_mnist(dir, "t10k", &ds, err, sizeof err),
           CLNET_ERR_FORMAT, err, "image rows 0 is out of range");
    /* Errors of the IDX reader come through. */
    put_file(path, buf, 10, 0);
    expect("truncated", clnet_dataset_load_mnist(dir, "t10k", &ds, err, sizeof err),
           CLNET_ERR_FORMAT, err, "header truncated");
    expect("split", clnet_dataset_load_mnist(dir, "test", &ds, err, sizeof err),
           CLNET_ERR_INVALID_ARG, err, "split is \"test\", expected \"train\" or \"t10k\"");
    expect("NULL split", clnet_dataset_load_mnist(dir, NULL, &ds, err, sizeof err),
           CLNET_ERR_INVALID_ARG, err, "split");
    expect("NULL dir", clnet_dataset_load_mnist(NULL, "t10k", &ds, err, sizeof err),
           CLNET_ERR_INVALID_ARG, err, "dir != NULL");
    expect("NULL out", clnet_dataset_load_mnist(dir, "t10k", NULL, err, sizeof err),
           CLNET_ERR_INVALID_ARG, err, "out != NULL");
    ck_assert_ptr_null(ds);
    tmpdir_remove(dir);
}
END_TEST

/* The real Fashion-MNIST test split, when the Debian package is installed. */
START_TEST(dataset_fashion_mnist_t10k)
{
    struct stat sb;
    if (stat(CLNET_FASHION_MNIST_DIR, &sb) != 0)
        return;
    char err[512];
    clnet_dataset *ds = NULL;
    expect("fashion-mnist",
           clnet_dataset_load_mnist(CLNET_FASHION_MNIST_DIR, "t10k", &ds, err, sizeof err),
           CLNET_OK, err, NULL);
    ck_assert_uint_eq(ds->count, 10000);
    ck_assert_int_eq(ds->rows, 28);
    ck_assert_int_eq(ds->cols, 28);
    size_t per_class[10] = { 0 }, n = ds->count * 28 * 28, zeros = 0;
    for (size_t i = 0; i < ds->count; i++) {
        ck_assert(ds->labels[i] >= 0 && ds->labels[i] < 10);
        per_class[ds->labels[i]]++;
    }
    for (int c = 0; c < 10; c++)
        ck_assert_msg(per_class[c] == 1000, "class %d has %zu images, expected 1000", c,
                      per_class[c]);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = fminf(lo, ds->images[i]);
        hi = fmaxf(hi, ds->images[i]);
        zeros += ds->images[i] == 0.0f;
    }
    ck_assert(lo == 0.0f && hi == 1.0f);
    ck_assert_msg(zeros < n * 3 / 4, "%zu of %zu pixels are 0", zeros, n);
    clnet_dataset_free(ds);
}
END_TEST

/* ---- Safetensors: writing and reading back ------------------------------- */

static const char *const meta_kv[] = { "format", "pt", "note", "h\xc3\xa9llo \"q\"\n\\", NULL };

/* Checks that parsed entries equal what was written, bit for bit. */
static void check_entries(const clnet_safetensors *st, const clnet_safetensors_entry_in *in,
                          size_t count)
{
    ck_assert_uint_eq(st->count, count);
    size_t offset = 0;
    for (size_t i = 0; i < count; i++) {
        const clnet_safetensors_entry *e = &st->entries[i];
        ck_assert_str_eq(e->name, in[i].name);
        ck_assert_str_eq(e->dtype, in[i].dtype == CLNET_F32 ? "F32" : "I32");
        ck_assert_uint_eq(e->elem_size, 4);
        ck_assert_int_eq(e->ndim, in[i].ndim);
        size_t numel = 1;
        for (int k = 0; k < e->ndim; k++) {
            ck_assert_int_eq(e->shape[k], in[i].shape[k]);
            numel *= (size_t)in[i].shape[k];
        }
        ck_assert_uint_eq(e->numel, numel);
        ck_assert_uint_eq(e->offset, offset);
        ck_assert_uint_eq(e->size, 4 * numel);
        ck_assert_ptr_eq(e->data, (const unsigned char *)st->data + offset);
        ck_assert_msg(((uintptr_t)e->data & 3) == 0, "%s: data not 4-byte aligned", e->name);
        ck_assert_msg(numel == 0 || !memcmp(e->data, in[i].data, 4 * numel), "%s: data differs",
                      e->name);
        ck_assert_ptr_eq(clnet_safetensors_find(st, in[i].name), e);
        offset += 4 * numel;
    }
    ck_assert_uint_eq(st->data_size, offset);
    ck_assert_msg(((uintptr_t)st->data & 15) == 0, "data section not 16-byte aligned");
    ck_assert_uint_eq(st->metadata_count, 2);
    ck_assert_str_eq(clnet_safetensors_metadata(st, "format"), "pt");
    ck_assert_str_eq(clnet_safetensors_metadata(st, "note"), meta_kv[3]);
    ck_assert_ptr_null(clnet_safetensors_metadata(st, "absent"));
    ck_assert_ptr_null(clnet_safetensors_find(st, "absent"));
}

START_TEST(safetensors_round_trip)
{
    char dir[256], path[512], err[512];
    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    float w[6] = { 1.5f, -0.0f, 0x1p-149f, FLT_MAX, -INFINITY, 0 };
    uint32_t nan_bits = 0x7fc0dead;
    memcpy(&w[5], &nan_bits, 4);
    int32_t n[5] = { INT32_MIN, -1, 0, INT32_MAX, 7 };
    float scalar = 3.25f, b[7] = { 1, 2, 3, 4, 5, 6, 7 }, deep[3] = { -1, -2, -3 };
    const clnet_safetensors_entry_in in[] = {
        { "layers.0.kernel", CLNET_F32, 2, { 2, 3 }, w },
        { "labels", CLNET_I32, 1, { 5 }, n },
        { "scalar", CLNET_F32, 0, { 0 }, &scalar },
        { "empty", CLNET_F32, 2, { 0, 4 }, NULL },
        { "layers.0.bias", CLNET_F32, 1, { 7 }, b },
        { "deep \xe2\x9c\x93", CLNET_F32, 8, { 1, 1, 1, 1, 1, 1, 1, 3 }, deep },
    };
    const size_t count = sizeof in / sizeof in[0];
    expect("write", clnet_safetensors_write(path, in, count, meta_kv, err, sizeof err), CLNET_OK,
           err, NULL);
    clnet_safetensors *st = NULL;
    expect("load", clnet_safetensors_load(path, &st, err, sizeof err), CLNET_OK, err, NULL);
    check_entries(st, in, count);
    clnet_safetensors_free(st);
    /* The bytes: an 8-byte length, a header padded with spaces to a multiple
     * of 8, then the data; the same result through the buffer parser. */
    size_t len;
    unsigned char *file = get_file(path, &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | file[i];
    ck_assert_uint_eq(hlen % 8, 0);
    ck_assert_uint_eq(len, 8 + hlen + 4 * (6 + 5 + 1 + 7 + 3));
    ck_assert_int_eq(file[8], '{');
    size_t end = 8 + (size_t)hlen;
    while (file[end - 1] == ' ')
        end--;
    ck_assert_int_eq(file[end - 1], '}');
    ck_assert_uint_lt(8 + hlen - end, 8);
    expect("parse", clnet_safetensors_parse(file, len, &st, err, sizeof err), CLNET_OK, err, NULL);
    free(file); /* the result must not depend on the buffer */
    check_entries(st, in, count);
    clnet_safetensors_free(st);
    /* Writing again replaces the file; nothing else is left in the directory. */
    expect("rewrite", clnet_safetensors_write(path, in, 2, meta_kv, err, sizeof err), CLNET_OK, err,
           NULL);
    expect("reload", clnet_safetensors_load(path, &st, err, sizeof err), CLNET_OK, err, NULL);
    check_entries(st, in, 2);
    clnet_safetensors_free(st);
    ck_assert_int_eq(tmpdir_count(dir), 1);
    tmpdir_remove(dir);
}
END_TEST

/* The layout the format's reference writer produces for a small file: a
 * compact header, "__metadata__" first, keys dtype, shape, data_offsets. */
START_TEST(safetensors_writes_reference_layout)
{
    char dir[256], path[512], err[512];
    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    const float a[2] = { 1.0f, -2.0f };
    const clnet_safetensors_entry_in in[1] = { { "a", CLNET_F32, 1, { 2 }, a } };
    const char *const kv[] = { "format", "pt", NULL };
    expect("write", clnet_safetensors_write(path, in, 1, kv, err, sizeof err), CLNET_OK, err, NULL);
    static const char header[] = "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\","
                                 "\"shape\":[2],\"data_offsets\":[0,8]}}   ";
    ck_assert_uint_eq((sizeof header - 1) % 8, 0);
    unsigned char want[8 + sizeof header - 1 + 8] = { sizeof header - 1 };
    memcpy(want + 8, header, sizeof header - 1);
    const unsigned char data[8] = { 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0 };
    memcpy(want + 8 + sizeof header - 1, data, 8);
    size_t len;
    unsigned char *file = get_file(path, &len);
    ck_assert_uint_eq(len, sizeof want);
    ck_assert_msg(!memcmp(file, want, len), "file bytes differ from the expected layout");
    free(file);
    /* No tensors, no metadata: "{}" padded to 8 bytes. */
    expect("empty", clnet_safetensors_write(path, NULL, 0, NULL, err, sizeof err), CLNET_OK, err,
           NULL);
    file = get_file(path, &len);
    ck_assert_uint_eq(len, 16);
    ck_assert(!memcmp(file, "\x08\0\0\0\0\0\0\0{}      ", 16));
    free(file);
    clnet_safetensors *st;
    expect("load empty", clnet_safetensors_load(path, &st, err, sizeof err), CLNET_OK, err, NULL);
    ck_assert_uint_eq(st->count, 0);
    ck_assert_uint_eq(st->data_size, 0);
    clnet_safetensors_free(st);
    tmpdir_remove(dir);
}
END_TEST

/* A safetensors image from header text (padded as given) and data bytes. */
static unsigned char *st_build(const char *json, const void *data, size_t data_len, size_t *len)
{
    size_t n = strlen(json);
    unsigned char *buf = malloc(8 + n + data_len);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, json, n);
    if (data_len)
        memcpy(buf + 8 + n, data, data_len);
    *len = 8 + n + data_len;
    return buf;
}

/* Files from other writers: every dtype, unaligned offsets, empty tensors at
 * a shared offset, a scalar, whitespace padding, and no metadata. */
START_TEST(safetensors_parses_other_writers_files)
{
    const char *json =
        "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
        "\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[6,9]},"
        "\"f\":{\"data_offsets\":[9,17],\"shape\":[2],\"dtype\":\"F32\"},"
        "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[17,17]},"
        "\"z2\":{\"dtype\":\"I64\",\"shape\":[2,0],\"data_offsets\":[17,17]},"
        "\"e\":{\"dtype\":\"BOOL\",\"shape\":[],\"data_offsets\":[17,18]},"
        "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[18,26]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,1],\"data_offsets\":[26,28]}} \t\r\n ";
    unsigned char data[28];
    for (int i = 0; i < 28; i++)
        data[i] = (unsigned char)(i + 1);
    const float f[2] = { 0.5f, -8.0f };
    memcpy(data + 9, f, 8);
    size_t len;
    unsigned char *buf = st_build(json, data, sizeof data, &len);
    char err[512];
    clnet_safetensors *st = NULL;
    expect("parse", clnet_safetensors_parse(buf, len, &st, err, sizeof err), CLNET_OK, err, NULL);
    free(buf);
    ck_assert_uint_eq(st->count, 8);
    ck_assert_uint_eq(st->metadata_count, 0);
    ck_assert_uint_eq(st->data_size, 28);
    static const char *names[8] = { "h", "u", "f", "z", "z2", "e", "d", "b" };
    static const char *dt[8] = { "F16", "U8", "F32", "F32", "I64", "BOOL", "F64", "BF16" };
    static const size_t off[8] = { 0, 6, 9, 17, 17, 17, 18, 26 },
                        numel[8] = { 3, 3, 2, 0, 0, 1, 1, 1 };
    for (int i = 0; i < 8; i++) {
        const clnet_safetensors_entry *e = clnet_safetensors_find(st, names[i]);
        ck_assert_ptr_eq(e, &st->entries[i]);
        ck_assert_str_eq(e->dtype, dt[i]);
        ck_assert_uint_eq(e->offset, off[i]);
        ck_assert_uint_eq(e->numel, numel[i]);
        ck_assert_uint_eq(e->size, numel[i] * clnet_safetensors_dtype_size(dt[i]));
        ck_assert_msg(!memcmp(e->data, data + off[i], e->size), "%s: data differs", names[i]);
    }
    ck_assert_int_eq(st->entries[5].ndim, 0);
    ck_assert_int_eq(st->entries[4].ndim, 2);
    float got[2];
    memcpy(got, clnet_safetensors_find(st, "f")->data, 8); /* unaligned: memcpy */
    ck_assert(got[0] == 0.5f && got[1] == -8.0f);
    clnet_safetensors_free(st);
}
END_TEST

START_TEST(safetensors_lookups_and_bad_args)
{
    static const struct {
        const char *name;
        size_t size;
    } sizes[] = {
        { "F32", 4 }, { "F16", 2 },  { "BF16", 2 }, { "F64", 8 }, { "I64", 8 },
        { "I32", 4 }, { "I16", 2 },  { "I8", 1 },   { "U8", 1 },  { "BOOL", 1 },
        { "f32", 0 }, { "F128", 0 }, { "", 0 },     { NULL, 0 },
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        ck_assert_uint_eq(clnet_safetensors_dtype_size(sizes[i].name), sizes[i].size);
    ck_assert_ptr_null(clnet_safetensors_find(NULL, "a"));
    ck_assert_ptr_null(clnet_safetensors_metadata(NULL, "a"));
    char err[512];
    clnet_safetensors *st = (clnet_safetensors *)&st;
    expect("NULL out", clnet_safetensors_parse("", 0, NULL, err, sizeof err), CLNET_ERR_INVALID_ARG,
           err, "out != NULL");
    expect("NULL buf", clnet_safetensors_parse(NULL, 5, &st, err, sizeof err),
           CLNET_ERR_INVALID_ARG, err, "buf != NULL");
    ck_assert_ptr_null(st);
    expect("empty", clnet_safetensors_parse(NULL, 0, &st, err, sizeof err), CLNET_ERR_FORMAT, err,
           "clnet_safetensors_parse: 0 bytes, shorter than the 8-byte header length");
    size_t len;
    unsigned char *buf = st_build("{}", NULL, 0, &len);
    expect("{}", clnet_safetensors_parse(buf, len, &st, err, sizeof err), CLNET_OK, err, NULL);
    ck_assert_ptr_null(clnet_safetensors_find(st, NULL));
    ck_assert_ptr_null(clnet_safetensors_metadata(st, NULL));
    clnet_safetensors_free(st);
    clnet_safetensors_free(NULL);
    free(buf);
    expect("NULL path", clnet_safetensors_load(NULL, &st, err, sizeof err), CLNET_ERR_INVALID_ARG,
           err, "clnet_safetensors_load: invalid argument: path != NULL");
    expect("load NULL out", clnet_safetensors_load("x", NULL, err, sizeof err),
           CLNET_ERR_INVALID_ARG, err, "out != NULL");
}
END_TEST

START_TEST(safetensors_load_errors)
{
    char dir[256], path[512], err[512];
    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    clnet_safetensors *st = (clnet_safetensors *)&st;
    expect("missing", clnet_safetensors_load(path, &st, err, sizeof err), CLNET_ERR_IO, err,
           "cannot open: No such file or directory");
    ck_assert_ptr_null(st);
    ck_assert_msg(strstr(err, path) == err, "message \"%s\" does not start with the path", err);
    expect("directory", clnet_safetensors_load(dir, &st, err, sizeof err), CLNET_ERR_IO, err,
           "not a regular file");
    put_file(path, "abc", 3, 0);
    expect("short", clnet_safetensors_load(path, &st, err, sizeof err), CLNET_ERR_FORMAT, err,
           "3 bytes, shorter than the 8-byte header length");
    /* A header length of 2^40 in a 16-byte file: refused before any allocation. */
    put_file(path, "\0\0\0\0\0\1\0\0{}      ", 16, 0);
    expect("huge header", clnet_safetensors_load(path, &st, err, sizeof err), CLNET_ERR_FORMAT, err,
           "header length 1099511627776 exceeds the limit of 100000000 bytes");
    put_file(path, "\x09\0\0\0\0\0\0\0{}      ", 16, 0);
    expect("past end", clnet_safetensors_load(path, &st, err, sizeof err), CLNET_ERR_FORMAT, err,
           "header length 9 runs past the end of the file (8 bytes after the 8-byte length)");
    ck_assert_ptr_null(st);
    tmpdir_remove(dir);
}
END_TEST

START_TEST(safetensors_write_rejects_bad_args)
{
    char dir[256], path[512], err[512];
    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    const float x[4] = { 1, 2, 3, 4 };
    const struct {
        clnet_safetensors_entry_in e[2];
        size_t n;
        const char *needle;
    } cases[] = {
        { { { NULL, CLNET_F32, 1, { 4 }, x } }, 1, "entries[0].name is NULL" },
        { { { "", CLNET_F32, 1, { 4 }, x } }, 1, "entries[0].name is empty" },
        { { { "__metadata__", CLNET_F32, 1, { 4 }, x } }, 1, "reserved" },
        { { { "\xff", CLNET_F32, 1, { 4 }, x } }, 1, "entries[0].name is not valid UTF-8" },
        { { { "a", (clnet_dtype)7, 1, { 4 }, x } }, 1, "dtype 7 is not CLNET_F32 or CLNET_I32" },
        { { { "a", CLNET_F32, 9, { 4 }, x } }, 1, "ndim 9 is not in [0, 8]" },
        { { { "a", CLNET_F32, -1, { 4 }, x } }, 1, "ndim -1" },
        { { { "a", CLNET_F32, 2, { 4, -1 }, x } }, 1, "shape[1] = -1 is not in [0, 2^53)" },
        { { { "a", CLNET_F32, 2, { 1ll << 53, 1 }, x } }, 1, "shape[0] = 9007199254740992" },
        { { { "a", CLNET_F32, 2, { 1ll << 30, 1ll << 30 }, x } }, 1, "too many elements" },
        { { { "a", CLNET_F32, 1, { 4 }, NULL } }, 1, "entries[0] (\"a\"): data is NULL" },
        { { { "a", CLNET_F32, 1, { 4 }, x }, { "a", CLNET_I32, 1, { 4 }, x } },
          2,
          "duplicate name \"a\"" },
        { { { "a", CLNET_F32, 1, { 4 }, x }, { "b", CLNET_I32, 1, { 4 }, NULL } },
          2,
          "entries[1] (\"b\"): data is NULL" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        expect(cases[c].needle,
               clnet_safetensors_write(path, cases[c].e, cases[c].n, NULL, err, sizeof err),
               CLNET_ERR_INVALID_ARG, err, cases[c].needle);
    const clnet_safetensors_entry_in ok[1] = { { "a", CLNET_F32, 1, { 4 }, x } };
    const char *const odd[] = { "k", NULL }, *const dup[] = { "k", "1", "k", "2", NULL };
    const char *const bad[] = { "k", "\xc0\xaf", NULL };
    expect("odd", clnet_safetensors_write(path, ok, 1, odd, err, sizeof err), CLNET_ERR_INVALID_ARG,
           err, "metadata key \"k\" has no value");
    expect("dup", clnet_safetensors_write(path, ok, 1, dup, err, sizeof err), CLNET_ERR_INVALID_ARG,
           err, "duplicate metadata key \"k\"");
    expect("utf8", clnet_safetensors_write(path, ok, 1, bad, err, sizeof err),
           CLNET_ERR_INVALID_ARG, err, "not valid UTF-8");
    expect("NULL path", clnet_safetensors_write(NULL, ok, 1, NULL, err, sizeof err),
           CLNET_ERR_INVALID_ARG, err, "path is NULL");
    expect("NULL entries", clnet_safetensors_write(path, NULL, 1, NULL, err, sizeof err),
           CLNET_ERR_INVALID_ARG, err, "entries is NULL");
    ck_assert_int_eq(tmpdir_count(dir), 0); /* nothing was created */
    tmpdir_remove(dir);
}
END_TEST

static int files_equal(const char *path, const void *want, size_t n)
{
    size_t len;
    unsigned char *got = get_file(path, &len);
    int eq = len == n && !memcmp(got, want, n);
    free(got);
    return eq;
}

/* Special files at the paths clnet_safetensors_load and _write take: a FIFO
 * is refused at once (opening it used to wait for a writer forever), and a
 * FIFO, a directory or a device node at the target of a write is refused,
 * never replaced by the rename (as root, /dev/null would have become a
 * regular file). */
START_TEST(safetensors_special_files)
{
    char dir[256], path[512], err[512];
    tmpdir_make(dir, sizeof dir);
    const float x[4] = { 1, 2, 3, 4 };
    const clnet_safetensors_entry_in in[1] = { { "a", CLNET_F32, 1, { 4 }, x } };
    clnet_safetensors *st = NULL;
    snprintf(path, sizeof path, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    alarm(20); /* a blocking open fails the test instead of hanging it */
    expect("fifo load", clnet_safetensors_load(path, &st, err, sizeof err), CLNET_ERR_IO, err,
           "not a regular file");
    expect("fifo write", clnet_safetensors_write(path, in, 1, NULL, err, sizeof err), CLNET_ERR_IO,
           err, "is not a regular file");
    struct stat sb;
    ck_assert(lstat(path, &sb) == 0 && S_ISFIFO(sb.st_mode));
    expect("dir write", clnet_safetensors_write(dir, in, 1, NULL, err, sizeof err), CLNET_ERR_IO,
           err, "is not a regular file");
    snprintf(path, sizeof path, "%s/null", dir);
    if (mknod(path, S_IFCHR | 0666, makedev(1, 3)) == 0) { /* root only: CI runs as root */
        expect("device write", clnet_safetensors_write(path, in, 1, NULL, err, sizeof err),
               CLNET_ERR_IO, err, "is not a regular file");
        ck_assert(lstat(path, &sb) == 0 && S_ISCHR(sb.st_mode));
        unlink(path);
    }
    alarm(0);
    snprintf(path, sizeof path, "%s/fifo", dir);
    unlink(path);
    tmpdir_remove(dir);
}
END_TEST

START_TEST(safetensors_write_fails_cleanly)
{
    char dir[256], path[512], err[512];
    tmpdir_make(dir, sizeof dir);
    static float big[16384];
    for (int i = 0; i < 16384; i++)
        big[i] = (float)i;
    const clnet_safetensors_entry_in in[1] = { { "w", CLNET_F32, 1, { 16384 }, big } };
    /* A directory that does not exist. */
    snprintf(path, sizeof path, "%s/no-such-dir/w.safetensors", dir);
    expect("missing dir", clnet_safetensors_write(path, in, 1, NULL, err, sizeof err), CLNET_ERR_IO,
           err, "No such file or directory");
    ck_assert_msg(strstr(err, "cannot create a temporary file") != NULL, "%s", err);
    ck_assert_int_eq(tmpdir_count(dir), 0);
    /* A write that fails half-way (the file size limit): the old file stays. */
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    static const char old[] = "old contents";
    put_file(path, old, sizeof old, 0);
    struct rlimit saved, small = { 4096, 4096 };
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small.rlim_max = saved.rlim_max;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    clnet_status st = clnet_safetensors_write(path, in, 1, NULL, err, sizeof err);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, prev);
    expect("file size limit", st, CLNET_ERR_IO, err, "write of");
    ck_assert_msg(strstr(err, "File too large") != NULL, "%s", err);
    ck_assert_msg(files_equal(path, old, sizeof old), "the old file changed");
    ck_assert_int_eq(tmpdir_count(dir), 1);
    /* The target is a directory: refused before a temporary file is made
     * (the rename would have failed; safetensors_special_files has the rest). */
    snprintf(path, sizeof path, "%s/subdir", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    expect("directory", clnet_safetensors_write(path, in, 1, NULL, err, sizeof err), CLNET_ERR_IO,
           err, "is not a regular file");
    ck_assert_int_eq(tmpdir_count(dir), 2);
    /* Afterwards a normal write succeeds and replaces the old file. */
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    expect("write", clnet_safetensors_write(path, in, 1, NULL, err, sizeof err), CLNET_OK, err,
           NULL);
    clnet_safetensors *s;
    expect("load", clnet_safetensors_load(path, &s, err, sizeof err), CLNET_OK, err, NULL);
    ck_assert(!memcmp(s->entries[0].data, big, sizeof big));
    clnet_safetensors_free(s);
    ck_assert_int_eq(tmpdir_count(dir), 2);
    tmpdir_remove(dir);
}
END_TEST

/* ---- PNG image grids ---------------------------------------------------------- */

/* Reads an 8-bit gray PNG with libpng (an independent decoder); caller frees. */
static unsigned char *png_read_gray(const char *path, int *w, int *h)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    ck_assert_msg(png_image_begin_read_from_file(&im, path), "libpng: %s", im.message);
    ck_assert_int_eq(im.format & PNG_FORMAT_FLAG_COLOR, 0);
    im.format = PNG_FORMAT_GRAY;
    unsigned char *px = malloc(PNG_IMAGE_SIZE(im));
    ck_assert_msg(png_image_finish_read(&im, NULL, px, 0, NULL), "libpng: %s", im.message);
    *w = (int)im.width;
    *h = (int)im.height;
    return px;
}

/* Expected gray level: round(255 (v - lo) / (hi - lo)), clamped, NaN black. */
static int want_level(float v, float lo, float hi)
{
    double t = 255.0 * ((double)v - lo) / ((double)hi - lo);
    return isnan(t) || t <= 0 ? 0 : t >= 255 ? 255 : (int)floor(t + 0.5);
}

/* Every pixel of the grid: images where the layout puts them, black borders
 * and empty cells, at awkward sizes and in both layouts. */
START_TEST(png_grid_pixels_read_back)
{
    char dir[256], path[300];
    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/grid.png", dir);
    const struct {
        int64_t n;
        int h, w;
        clnet_png_grid_params p;
        int cols, border;
    } cases[] = {
        { 5, 3, 7, CLNET_PNG_GRID_PARAMS_DEFAULT, 3, 1 },
        { 1, 1, 1, CLNET_PNG_GRID_PARAMS_DEFAULT, 1, 1 },
        { 7, 31, 1, { .cols = 2, .lo = 0.0f, .hi = 1.0f, .border = 0 }, 2, 0 },
        { 3, 2, 33, { .cols = 9, .lo = -3.0f, .hi = 5.0f, .border = 3 }, 3, 3 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t n = cases[c].n;
        int h = cases[c].h, w = cases[c].w, cols = cases[c].cols, b = cases[c].border;
        float lo = cases[c].p.lo, hi = cases[c].p.hi;
        size_t total = (size_t)n * (size_t)h * (size_t)w;
        float *img = malloc(total * sizeof *img);
        uint64_t seed = 100 + c;
        /* Levels 0.2 and 0.7 above a gray level (away from rounding ties, and
         * telling rounding from truncation), values past both ends, NaN. */
        for (size_t i = 0; i < total; i++) {
            float u;
            fill_uniform(&u, 1, 0, 1, &seed);
            img[i] = lo + (hi - lo) * ((float)(int)(u * 256) + (i % 2 ? 0.7f : 0.2f)) / 255.0f;
        }
        img[0] = hi + 10;
        if (total > 2) {
            img[1] = lo - 10;
            img[2] = NAN;
        }
        char err[512] = "";
        ck_assert_msg(clnet_png_write_grid(path, img, n, h, w, c == 0 ? NULL : &cases[c].p, err,
                                           sizeof err) == CLNET_OK,
                      "%s", err);
        int gw, gh;
        unsigned char *px = png_read_gray(path, &gw, &gh);
        int rows = (int)((n + cols - 1) / cols);
        ck_assert_int_eq(gw, cols * (w + b) + b);
        ck_assert_int_eq(gh, rows * (h + b) + b);
        for (int y = 0; y < gh; y++)
            for (int x = 0; x < gw; x++) {
                int cy = (y - b) / (h + b), cx = (x - b) / (w + b);
                int iy = y - b - cy * (h + b), ix = x - b - cx * (w + b);
                int64_t k = (int64_t)cy * cols + cx;
                int inside = y >= b && x >= b && iy < h && ix < w && k < n;
                int want =
                    inside ? want_level(
                                 img[((size_t)k * (size_t)h + (size_t)iy) * (size_t)w + (size_t)ix],
                                 lo, hi)
                           : 0;
                ck_assert_msg(px[(size_t)y * (size_t)gw + (size_t)x] == want,
                              "case %zu: pixel (%d, %d) is %d, want %d", c, y, x,
                              px[(size_t)y * (size_t)gw + (size_t)x], want);
            }
        free(px);
        free(img);
    }
    ck_assert_int_eq(tmpdir_count(dir), 1); /* no temporary file left */
    tmpdir_remove(dir);
}
END_TEST

START_TEST(png_grid_refuses_bad_arguments)
{
    char dir[256], path[300], err[512];
    tmpdir_make(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/g.png", dir);
    float img[4] = { 0, 0.5f, -0.5f, 1 };
    clnet_png_grid_params p = CLNET_PNG_GRID_PARAMS_DEFAULT;
    const struct {
        clnet_status st;
        const char *needle;
        clnet_png_grid_params p;
        const char *path;
        const float *img;
        int64_t n;
        int h, w;
    } cases[] = {
        { CLNET_ERR_INVALID_ARG, "path is NULL", p, NULL, img, 1, 2, 2 },
        { CLNET_ERR_INVALID_ARG, "path is empty", p, "", img, 1, 2, 2 },
        { CLNET_ERR_INVALID_ARG, "images is NULL", p, path, NULL, 1, 2, 2 },
        { CLNET_ERR_INVALID_ARG, "count 0", p, path, img, 0, 2, 2 },
        { CLNET_ERR_INVALID_ARG, "height 0", p, path, img, 1, 0, 2 },
        { CLNET_ERR_INVALID_ARG, "width -1", p, path, img, 1, 2, -1 },
        { CLNET_ERR_INVALID_ARG,
          "cols -1",
          { .cols = -1, .lo = 0, .hi = 1, .border = 1 },
          path,
          img,
          1,
          2,
          2 },
        { CLNET_ERR_INVALID_ARG,
          "border 65",
          { .cols = 0, .lo = 0, .hi = 1, .border = 65 },
          path,
          img,
          1,
          2,
          2 },
        { CLNET_ERR_INVALID_ARG, "lo < hi", { .lo = 1, .hi = 1, .border = 1 }, path, img, 1, 2, 2 },
        { CLNET_ERR_INVALID_ARG,
          "finite",
          { .lo = NAN, .hi = 1, .border = 1 },
          path,
          img,
          1,
          2,
          2 },
        { CLNET_ERR_INVALID_ARG,
          "finite",
          { .lo = 0, .hi = INFINITY, .border = 1 },
          path,
          img,
          1,
          2,
          2 },
        { CLNET_ERR_INVALID_ARG,
          "finite",
          { .lo = 0, .hi = 1e-40f, .border = 1 },
          path,
          img,
          1,
          2,
          2 },
        { CLNET_ERR_TOO_LARGE, "exceeds", p, path, img, (int64_t)1 << 40, 1, 1 },
        { CLNET_ERR_TOO_LARGE, "exceeds", p, path, img, 2, INT_MAX, INT_MAX },
        { CLNET_ERR_IO, "cannot create a temporary file", p, "/nonexistent-dir/g.png", img, 1, 2,
          2 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        err[0] = '\0';
        clnet_status st = clnet_png_write_grid(cases[c].path, cases[c].img, cases[c].n, cases[c].h,
                                               cases[c].w, &cases[c].p, err, sizeof err);
        ck_assert_msg(st == cases[c].st && strstr(err, cases[c].needle) &&
                          strstr(err, "clnet_png_write_grid"),
                      "case %zu: status %d, message \"%s\", wanted \"%s\"", c, (int)st, err,
                      cases[c].needle);
    }
    ck_assert_int_eq(tmpdir_count(dir), 0);
    /* A directory at the path is refused before a temporary file is made
     * (src/io/atomic.c): it is still there and empty. */
    char sub[320];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_int_eq(clnet_png_write_grid(sub, img, 1, 2, 2, NULL, err, sizeof err), CLNET_ERR_IO);
    ck_assert_msg(strstr(err, "is not a regular file"), "%s", err);
    ck_assert_int_eq(tmpdir_count(dir), 1);
    ck_assert_int_eq(tmpdir_count(sub), 0);
    /* NULL err is fine. */
    ck_assert_int_eq(clnet_png_write_grid(NULL, img, 1, 2, 2, NULL, NULL, 0),
                     CLNET_ERR_INVALID_ARG);
    rmdir(sub);
    tmpdir_remove(dir);
}
END_TEST

Suite *suite_io(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("idx");
    tcase_set_timeout(tc, 300); /* generous: the suite also runs under valgrind */
    tcase_add_test(tc, idx_reads_every_type_plain_and_gzip);
    tcase_add_test(tc, idx_accepts_zero_dims_and_max_ndim);
    tcase_add_test(tc, idx_rejects_every_truncation);
    tcase_add_test(tc, idx_rejects_bad_headers);
    tcase_add_test(tc, idx_rejects_trailing_and_corrupt_data);
    tcase_add_test(tc, idx_io_errors_and_bad_args);
    suite_add_tcase(s, tc);
    tc = tcase_create("dataset");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, dataset_loads_mnist_layout);
    tcase_add_test(tc, dataset_rejects_inconsistent_files);
    tcase_add_test(tc, dataset_fashion_mnist_t10k);
    suite_add_tcase(s, tc);
    tc = tcase_create("safetensors");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, safetensors_round_trip);
    tcase_add_test(tc, safetensors_writes_reference_layout);
    tcase_add_test(tc, safetensors_parses_other_writers_files);
    tcase_add_test(tc, safetensors_lookups_and_bad_args);
    tcase_add_test(tc, safetensors_load_errors);
    tcase_add_test(tc, safetensors_write_rejects_bad_args);
    tcase_add_test(tc, safetensors_write_fails_cleanly);
    tcase_add_test(tc, safetensors_special_files);
    suite_add_tcase(s, tc);
    tc = tcase_create("png");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, png_grid_pixels_read_back);
    tcase_add_test(tc, png_grid_refuses_bad_arguments);
    suite_add_tcase(s, tc);
    io_add_corpus_tests(s);
    return s;
}
