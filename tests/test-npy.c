/* clnet tests — NumPy .npy arrays (clnet/npy.h): files as numpy.save writes
 * them, round trips through the writer, and a table of malformed and
 * unsupported headers, every truncation and random byte flips, each
 * rejected with its message; paths that are not regular files. Host only. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

/* A .npy file of version `ver` with dict text `dict` (padded to 64 bytes
 * and newline-terminated as numpy does) and n floats of data. Returns the
 * length; *out is malloc'ed. */
static size_t make_npy(int ver, const char *dict, const float *data, size_t n, unsigned char **out)
{
    size_t pre = ver == 1 ? 10 : 12, dl = strlen(dict), hl = dl + 1;
    while ((pre + hl) % 64)
        hl++;
    size_t len = pre + hl + 4 * n;
    unsigned char *b = malloc(len + 1);
    ck_assert_ptr_nonnull(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)ver;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        b[8 + i] = (unsigned char)(hl >> (8 * i));
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, ' ', hl - dl - 1);
    b[pre + hl - 1] = '\n';
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &data[i], 4);
        for (int k = 0; k < 4; k++)
            b[pre + hl + 4 * i + (size_t)k] = (unsigned char)(u >> (8 * k));
    }
    *out = b;
    return len;
}

static const float six[6] = { 0.5f, -1.0f, 2.25f, 3e-39f, -0.0f, 1e30f };

START_TEST(numpy_files_parse)
{
    /* The dicts numpy.save writes (repr of a sorted dict), in the three
     * versions, and the spellings NumPy's own reader accepts. */
    static const struct {
        const char *dict;
        int ver, ndim;
        int64_t shape[3];
    } ok[] = {
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 1, 2, { 2, 3 } },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 2, 1, { 6 } },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 6, 1), }", 3, 3, { 1, 6, 1 } },
        { "{\"shape\": (3,2), \"descr\": \"<f4\", \"fortran_order\": False}", 1, 2, { 3, 2 } },
        { "{'descr':'=f4','fortran_order':False,'shape':(2,3,)}", 1, 2, { 2, 3 } },
    };
    for (size_t c = 0; c < sizeof ok / sizeof ok[0]; c++) {
        unsigned char *b;
        size_t len = make_npy(ok[c].ver, ok[c].dict, six, 6, &b);
        clnet_npy *a = NULL;
        char err[256] = "";
        ck_assert_msg(clnet_npy_parse(b, len, &a, err, sizeof err) == CLNET_OK, "%s: %s",
                      ok[c].dict, err);
        ck_assert_int_eq(a->ndim, ok[c].ndim);
        for (int i = 0; i < a->ndim; i++)
            ck_assert_int_eq(a->shape[i], ok[c].shape[i]);
        ck_assert_uint_eq(a->numel, 6);
        ck_assert(!memcmp(a->data, six, sizeof six));
        clnet_npy_free(a);
        free(b);
    }
    /* A scalar and an empty array. */
    unsigned char *b;
    clnet_npy *a;
    size_t len = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", six, 1, &b);
    ck_assert_int_eq(clnet_npy_parse(b, len, &a, NULL, 0), CLNET_OK);
    ck_assert(a->ndim == 0 && a->numel == 1 && a->data[0] == 0.5f);
    clnet_npy_free(a);
    free(b);
    len = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", NULL, 0, &b);
    ck_assert_int_eq(clnet_npy_parse(b, len, &a, NULL, 0), CLNET_OK);
    ck_assert(a->ndim == 2 && a->numel == 0 && a->shape[0] == 0 && a->shape[1] == 3);
    clnet_npy_free(a);
    free(b);
}
END_TEST

/* Headers that must fail: the status and a word of the message. */
static const struct {
    const char *dict;
    clnet_status want;
    const char *needle;
} bad_dicts[] = {
    { "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", CLNET_ERR_UNSUPPORTED,
      "dtype '<f8'" },
    { "{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", CLNET_ERR_UNSUPPORTED,
      "dtype '>f4'" },
    { "{'descr': '<i8', 'fortran_order': False, 'shape': (6,), }", CLNET_ERR_UNSUPPORTED,
      "dtype '<i8'" },
    { "{'descr': '|O', 'fortran_order': False, 'shape': (6,), }", CLNET_ERR_UNSUPPORTED,
      "dtype '|O'" },
    { "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", CLNET_ERR_UNSUPPORTED,
      "structured" },
    { "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", CLNET_ERR_UNSUPPORTED,
      "Fortran order" },
    { "{'descr': '<f4', 'fortran_order': 0, 'shape': (6,), }", CLNET_ERR_FORMAT,
      "'fortran_order' is not True or False" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }", CLNET_ERR_FORMAT,
      "needs 28 data bytes but the file holds 24" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", CLNET_ERR_FORMAT,
      "needs 20 data bytes" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", CLNET_ERR_FORMAT,
      "'shape' is not a tuple" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }", CLNET_ERR_FORMAT,
      "'shape' is not a tuple" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (6.0,), }", CLNET_ERR_FORMAT,
      "'shape' is not a tuple" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': [6], }", CLNET_ERR_FORMAT,
      "'shape' is not a tuple" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
      CLNET_ERR_FORMAT, "over 2^63" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2), }",
      CLNET_ERR_FORMAT, "overflows" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,6), }", CLNET_ERR_FORMAT,
      "more dimensions" },
    { "{'descr': '<f4', 'fortran_order': False, }", CLNET_ERR_FORMAT, "lacks 'shape'" },
    { "{'fortran_order': False, 'shape': (6,), }", CLNET_ERR_FORMAT, "lacks 'descr'" },
    { "{'descr': '<f4', 'shape': (6,), }", CLNET_ERR_FORMAT, "lacks 'fortran_order'" },
    { "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", CLNET_ERR_FORMAT,
      "repeats 'descr'" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1, }", CLNET_ERR_FORMAT,
      "unknown header key 'extra'" },
    { "{'descr': '<f4' 'fortran_order': False, 'shape': (6,), }", CLNET_ERR_FORMAT,
      "',' or '}' expected" },
    { "{'descr' '<f4', 'fortran_order': False, 'shape': (6,), }", CLNET_ERR_FORMAT,
      "':' expected" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), } x", CLNET_ERR_FORMAT,
      "text after" },
    { "['descr', '<f4']", CLNET_ERR_FORMAT, "not a Python dict" },
    { "{descr: '<f4', 'fortran_order': False, 'shape': (6,), }", CLNET_ERR_FORMAT,
      "malformed key" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), ", CLNET_ERR_FORMAT,
      "malformed key" },
    { "", CLNET_ERR_FORMAT, "not a Python dict" },
};

START_TEST(bad_headers_are_named)
{
    for (size_t c = 0; c < sizeof bad_dicts / sizeof bad_dicts[0]; c++) {
        unsigned char *b;
        size_t len = make_npy(1, bad_dicts[c].dict, six, 6, &b);
        clnet_npy *a = (clnet_npy *)&len;
        char err[512] = "";
        clnet_status st = clnet_npy_parse(b, len, &a, err, sizeof err);
        ck_assert_msg(st == bad_dicts[c].want, "%s: %s (%s)", bad_dicts[c].dict,
                      clnet_status_name(st), err);
        ck_assert_msg(strstr(err, bad_dicts[c].needle), "%s: message \"%s\" lacks \"%s\"",
                      bad_dicts[c].dict, err, bad_dicts[c].needle);
        ck_assert_ptr_null(a);
        free(b);
    }
}
END_TEST

/* The prefix: magic, version, header length and its terminator. */
START_TEST(bad_prefixes_are_named)
{
    unsigned char *b;
    size_t len =
        make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", six, 6, &b);
    unsigned char *m = malloc(len);
    ck_assert_ptr_nonnull(m);
    static const struct {
        size_t at;
        unsigned char v;
        const char *needle;
    } flips[] = {
        { 0, 0x92, "magic" },     { 3, 'm', "magic" },
        { 6, 0, "version 0.0" },  { 6, 4, "version 4.0" },
        { 7, 1, "version 1.1" },  { 9, 0x7f, "runs past the end" },
        { 9, 0xff, "runs past" }, { 8, 0x7f, "does not end with a newline" },
        { 20, 0, "not ASCII" },   { 20, 0xc3, "not ASCII" },
    };
    for (size_t c = 0; c < sizeof flips / sizeof flips[0]; c++) {
        memcpy(m, b, len);
        m[flips[c].at] = flips[c].v;
        clnet_npy *a;
        char err[512] = "";
        ck_assert_int_eq(clnet_npy_parse(m, len, &a, err, sizeof err), CLNET_ERR_FORMAT);
        ck_assert_msg(strstr(err, flips[c].needle), "flip %zu: \"%s\" lacks \"%s\"", c, err,
                      flips[c].needle);
    }
    /* A version 2.0 header length of 2^32 - 1: over the limit, nothing allocated. */
    unsigned char big[16] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0xff };
    clnet_npy *a;
    char err[512] = "";
    ck_assert_int_eq(clnet_npy_parse(big, sizeof big, &a, err, sizeof err), CLNET_ERR_FORMAT);
    ck_assert_msg(strstr(err, "exceeds the limit"), "%s", err);
    /* Every truncation fails, with a message. */
    for (size_t n = 0; n < len; n++) {
        err[0] = 0;
        ck_assert_int_eq(clnet_npy_parse(b, n, &a, err, sizeof err), CLNET_ERR_FORMAT);
        ck_assert_msg(err[0], "truncation at %zu: no message", n);
    }
    ck_assert_int_eq(clnet_npy_parse(NULL, 0, &a, NULL, 0), CLNET_ERR_FORMAT);
    ck_assert_int_eq(clnet_npy_parse(NULL, 5, &a, NULL, 0), CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(clnet_npy_parse(b, len, NULL, NULL, 0), CLNET_ERR_INVALID_ARG);
    free(m);
    free(b);
}
END_TEST

/* Random byte flips anywhere: never a crash (run under ASan in CI), a valid
 * array or a failure with a message. */
START_TEST(random_flips_never_crash)
{
    unsigned char *b;
    size_t len =
        make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", six, 6, &b);
    unsigned char *m = malloc(len);
    ck_assert_ptr_nonnull(m);
    uint64_t state = 42;
    for (int t = 0; t < 3000; t++) {
        memcpy(m, b, len);
        int flips = 1 + (int)(test_rng(&state) % 4);
        for (int f = 0; f < flips; f++)
            m[test_rng(&state) % len] = (unsigned char)test_rng(&state);
        clnet_npy *a;
        char err[512] = "";
        clnet_status st = clnet_npy_parse(m, len, &a, err, sizeof err);
        if (st == CLNET_OK) {
            ck_assert(a->numel * 4 <= len);
            clnet_npy_free(a);
        } else {
            ck_assert_ptr_null(a);
            ck_assert_msg(err[0], "flip trial %d: %s without a message", t, clnet_status_name(st));
        }
    }
    free(m);
    free(b);
}
END_TEST

/* A temporary directory for the file tests; removed by rm_tree. */
static void tmpdir(char *buf, size_t size)
{
    snprintf(buf, size, "/tmp/clnet-npy-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

START_TEST(write_then_load_round_trips)
{
    char dir[64], path[128], err[512];
    tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a.npy", dir);
    static const struct {
        int ndim;
        int64_t shape[8];
    } shapes[] = {
        { 0, { 0 } },    { 1, { 6 } },          { 2, { 2, 3 } },
        { 2, { 0, 3 } }, { 4, { 1, 3, 1, 2 } }, { 8, { 1, 1, 1, 1, 1, 2, 1, 3 } },
    };
    float data[6];
    memcpy(data, six, sizeof six);
    data[5] = NAN;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        ck_assert_msg(clnet_npy_write(path, shapes[c].ndim, shapes[c].shape, data, err,
                                      sizeof err) == CLNET_OK,
                      "%s", err);
        clnet_npy *a;
        ck_assert_msg(clnet_npy_load(path, &a, err, sizeof err) == CLNET_OK, "%s", err);
        ck_assert_int_eq(a->ndim, shapes[c].ndim);
        size_t numel = 1;
        for (int i = 0; i < a->ndim; i++) {
            ck_assert_int_eq(a->shape[i], shapes[c].shape[i]);
            numel *= (size_t)shapes[c].shape[i];
        }
        ck_assert_uint_eq(a->numel, numel);
        ck_assert(!memcmp(a->data, data, numel * sizeof(float))); /* bits: -0, denormal, NaN */
        clnet_npy_free(a);
        /* The header as numpy writes it, 64-byte aligned. */
        FILE *f = fopen(path, "rb");
        unsigned char head[10];
        ck_assert_uint_eq(fread(head, 1, 10, f), 10);
        fclose(f);
        ck_assert_int_eq((10 + head[8] + 256 * head[9]) % 64, 0);
    }
    /* Bad arguments, and a directory at the path. */
    const int64_t neg[1] = { -1 }, two[1] = { 2 };
    ck_assert_int_eq(clnet_npy_write(path, 1, neg, data, err, sizeof err), CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(clnet_npy_write(path, 9, two, data, err, sizeof err), CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(clnet_npy_write(path, 1, two, NULL, err, sizeof err), CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(clnet_npy_write("", 1, two, data, err, sizeof err), CLNET_ERR_INVALID_ARG);
    ck_assert_int_eq(clnet_npy_write(dir, 1, two, data, err, sizeof err), CLNET_ERR_IO);
    /* Loading what is not a regular file, or nothing. */
    ck_assert_int_eq(clnet_npy_load(dir, &(clnet_npy *){ NULL }, err, sizeof err), CLNET_ERR_IO);
    ck_assert_msg(strstr(err, "not a regular file"), "%s", err);
    char fifo[128];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(clnet_npy_load(fifo, &(clnet_npy *){ NULL }, err, sizeof err), CLNET_ERR_IO);
    ck_assert_int_eq(clnet_npy_write(fifo, 1, two, data, err, sizeof err), CLNET_ERR_IO);
    snprintf(path, sizeof path, "%s/missing.npy", dir);
    ck_assert_int_eq(clnet_npy_load(path, &(clnet_npy *){ NULL }, err, sizeof err), CLNET_ERR_IO);
    ck_assert_msg(strstr(err, "missing.npy: cannot open"), "%s", err);
    unlink(fifo);
    snprintf(path, sizeof path, "%s/a.npy", dir);
    unlink(path);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

Suite *suite_npy(void)
{
    Suite *s = suite_create("npy");
    TCase *tc = tcase_create("host");
    tcase_add_test(tc, numpy_files_parse);
    tcase_add_test(tc, bad_headers_are_named);
    tcase_add_test(tc, bad_prefixes_are_named);
    tcase_add_test(tc, random_flips_never_crash);
    tcase_add_test(tc, write_then_load_round_trips);
    suite_add_tcase(s, tc);
    return s;
}
