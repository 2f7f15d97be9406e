/* clnet tests — hostile and careless input to the library (issue #16):
 * shape arithmetic at the int64 and int limits (run under UBSan in CI, where
 * a signed overflow fails the test), messages that name the real cause. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clnet/data.h"
#include "harness.h"
#include "runtime/fault.h"

/* ---- Output shapes at the limits ---------------------------------------------- */

typedef struct {
    int64_t h, r;              /* input height, kernel height (widths are 1) */
    int pad, stride, dilation; /* pad: top and bottom */
    clnet_status want;
    int64_t want_h; /* when want is CLNET_OK */
} conv_case;

/* Pads near INT_MAX and heights near INT64_MAX used to overflow (UBSan:
 * signed overflow) and return OK with a wrapped height. */
static const conv_case conv_cases[] = {
    { INT64_MAX, 1, 1, 1, 1, CLNET_ERR_TOO_LARGE, 0 },
    { INT64_MAX - 1, 1, INT_MAX, 1, 1, CLNET_ERR_TOO_LARGE, 0 },
    { 1, 1, INT_MAX, 1, 1, CLNET_OK, 1 + 2 * (int64_t)INT_MAX },
    { INT64_MAX, INT64_MAX, 0, 1, 1, CLNET_OK, 1 },
    { 3, INT64_MAX, 0, 1, INT_MAX, CLNET_ERR_TOO_LARGE, 0 },
    { INT64_MAX - 2 * (int64_t)INT_MAX, 1, INT_MAX, INT_MAX, 1, CLNET_OK,
      (INT64_MAX - 1) / INT_MAX + 1 },
    { 7, 3, 1, 2, 1, CLNET_OK, 4 },
};

START_TEST(conv_output_shape_at_the_limits)
{
    const conv_case *c = &conv_cases[_i];
    clnet_conv2d_params p = CLNET_CONV2D_PARAMS_DEFAULT;
    p.pad_top = p.pad_bottom = c->pad;
    p.stride_h = c->stride;
    p.dilation_h = c->dilation;
    int64_t x[4] = { 1, 1, c->h, 1 }, w[4] = { 1, 1, c->r, 1 }, y[4] = { -1, -1, -1, -1 };
    clnet_status st = clnet_conv2d_output_shape(&p, x, w, y);
    ck_assert_msg(st == c->want, "case %d: %s, want %s (y h %lld)", _i, clnet_status_name(st),
                  clnet_status_name(c->want), (long long)y[2]);
    if (st == CLNET_OK)
        ck_assert_msg(y[2] == c->want_h, "case %d: h %lld, want %lld", _i, (long long)y[2],
                      (long long)c->want_h);
}
END_TEST

START_TEST(transpose_output_shape_at_the_limits)
{
    clnet_conv2d_params p = CLNET_CONV2D_PARAMS_DEFAULT;
    int64_t x[4] = { 1, 1, INT64_MAX, 1 }, w[4] = { 1, 1, 3, 1 }, y[4];
    p.stride_h = 2;
    ck_assert_int_eq(clnet_conv2d_transpose_output_shape(&p, x, w, y), CLNET_ERR_TOO_LARGE);
    p.stride_h = 1;
    x[2] = INT64_MAX - 1;
    ck_assert_int_eq(clnet_conv2d_transpose_output_shape(&p, x, w, y), CLNET_ERR_TOO_LARGE);
    w[2] = INT64_MAX;
    x[2] = 2;
    p.dilation_h = 2;
    ck_assert_int_eq(clnet_conv2d_transpose_output_shape(&p, x, w, y), CLNET_ERR_TOO_LARGE);
    /* Large pads bring it back into range: exact. */
    p = CLNET_CONV2D_PARAMS_DEFAULT;
    x[2] = 5;
    w[2] = 3;
    p.stride_h = INT_MAX;
    p.pad_top = p.pad_bottom = INT_MAX;
    p.output_pad_h = 1;
    ck_assert_int_eq(clnet_conv2d_transpose_output_shape(&p, x, w, y), CLNET_OK);
    ck_assert_int_eq(y[2], 4 * (int64_t)INT_MAX - 2 * (int64_t)INT_MAX + 3 + 1);
}
END_TEST

START_TEST(pool_output_shape_at_the_limits)
{
    clnet_pool2d_params p = CLNET_POOL2D_PARAMS_DEFAULT;
    int64_t x[4] = { 1, 1, INT64_MAX, 4 }, y[4];
    ck_assert_int_eq(clnet_pool2d_output_shape(&p, x, y), CLNET_ERR_TOO_LARGE);
    p.pad_top = p.pad_bottom = INT_MAX;
    p.window_h = INT_MAX;
    x[2] = INT64_MAX - 1;
    ck_assert_int_ne(clnet_pool2d_output_shape(&p, x, y), CLNET_OK);
    x[2] = 2;
    ck_assert_int_ne(clnet_pool2d_output_shape(&p, x, y), CLNET_OK);
}
END_TEST

/* Rows far past the end, at the int64 limits: an error naming the rows
 * (the message's start + count used to overflow). */
START_TEST(slice_bounds_at_the_limits)
{
    clnet_context *ctx = test_context();
    int64_t shape[2] = { 3, 2 };
    clnet_tensor *t, *v = (clnet_tensor *)1;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &t));
    const int64_t bad[][2] = { { 1, INT64_MAX }, { INT64_MAX, INT64_MAX }, { INT64_MAX, 1 },
                               { -1, 1 },        { 0, INT64_MIN },         { INT64_MIN, INT64_MAX },
                               { 3, 1 } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "outside [0, 3)",
                 clnet_tensor_slice(t, bad[i][0], bad[i][1], &v));
        ck_assert_ptr_null(v);
    }
    CK_OK(ctx, clnet_tensor_slice(t, 3, 0, &v));
    clnet_tensor_destroy(v);
    clnet_tensor_destroy(t);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Special files ------------------------------------------------------------- */

/* clnet_idx_load on a FIFO used to block forever (the open waits for a
 * writer); a device never ends. Each is refused at once, named. */
START_TEST(idx_reader_refuses_special_files)
{
    char dir[] = "/tmp/clnet-idx-special-XXXXXX", fifo[64], err[512];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    const char *paths[] = { fifo, dir, "/dev/zero", "/dev/null" };
    const char *says[] = { "not a regular file", "directory", "not a regular file",
                           "not a regular file" };
    for (int i = 0; i < 4; i++) {
        clnet_idx *idx = (clnet_idx *)1;
        err[0] = 0;
        ck_assert_int_eq(clnet_idx_load(paths[i], &idx, err, sizeof err), CLNET_ERR_IO);
        ck_assert_ptr_null(idx);
        ck_assert_msg(strstr(err, paths[i]) && strstr(err, says[i]), "%s", err);
    }
    unlink(fifo);
    rmdir(dir);
}
END_TEST

/* ---- Messages ---------------------------------------------------------------- */

/* A padding value outside the enum used to be taken as VALID. */
START_TEST(bad_padding_enum_is_rejected)
{
    clnet_context *ctx = test_context();
    clnet_model *m;
    CK_OK(ctx, clnet_model_create(ctx, 3, (int64_t[]){ 1, 8, 8 }, 1, &m));
    clnet_conv2d_layer_params c = CLNET_CONV2D_LAYER_PARAMS_DEFAULT;
    c.padding = (clnet_padding)7;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "padding", clnet_model_add_conv2d(m, &c));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "padding", clnet_model_add_conv2d_transpose(m, &c));
    clnet_pool2d_layer_params q = CLNET_POOL2D_LAYER_PARAMS_DEFAULT;
    q.padding = (clnet_padding)-1;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "padding", clnet_model_add_maxpool2d(m, &q));
    ck_assert_int_eq(clnet_model_layer_count(m), 0);
    c.padding = CLNET_PADDING_SAME;
    CK_OK(ctx, clnet_model_add_conv2d(m, &c));
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* predict on a model with no layers used to fail with an empty message. */
START_TEST(empty_model_says_so)
{
    clnet_context *ctx = test_context();
    clnet_model *m;
    CK_OK(ctx, clnet_model_create(ctx, 1, (int64_t[]){ 4 }, 1, &m));
    float x[8] = { 0 }, out[8];
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "no layers", clnet_model_predict(m, x, 2, 2, out));
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* With no file descriptor left the ICD loader cannot open the driver: the
 * message says what went wrong, not "install pocl". The loader reads its registry on first use: a
 * fresh (forked) process is needed. */
START_TEST(registered_icd_that_fails_to_load_is_not_missing)
{
    if (getenv("CK_FORK") && !strcmp(getenv("CK_FORK"), "no"))
        return;
    /* No descriptor left. (With one, the loader gets by when OCL_ICD_VENDORS
     * names a file: it opens one file at a time.) */
    int free_fd = dup(0);
    ck_assert_int_ge(free_fd, 0);
    close(free_fd);
    struct rlimit lim = { (rlim_t)free_fd, (rlim_t)free_fd };
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
    char err[2048];
    clnet_context *ctx = NULL;
    clnet_status st = clnet_context_create(NULL, &ctx, err, sizeof err);
    ck_assert_msg(st == CLNET_ERR_NO_PLATFORM, "%s: %s", clnet_status_name(st),
                  st ? err : "a context with one file descriptor left");
    ck_assert_msg(strstr(err, "apt-get install pocl") == NULL, "%s", err);
    ck_assert_msg(strstr(err, "file descriptors") != NULL, "%s", err);
}
END_TEST

/* The driver out of host memory while listing its devices (seen under
 * ulimit -v) is the host's trouble, not "no OpenCL device found". */
START_TEST(device_listing_out_of_memory_says_so)
{
    char err[2048];
    clnet_context *ctx = NULL;
    clnet__fault_arm("clGetDeviceIDs", 1, CL_OUT_OF_HOST_MEMORY);
    clnet_status st = clnet_context_create(NULL, &ctx, err, sizeof err);
    clnet__fault_disarm();
    ck_assert_msg(st == CLNET_ERR_HOST_MEMORY, "%s: %s", clnet_status_name(st), err);
    ck_assert_msg(strstr(err, "out of host memory") && strstr(err, "clGetDeviceIDs"), "%s", err);
    ck_assert_ptr_null(ctx);
}
END_TEST

Suite *suite_hardening(void)
{
    Suite *s = suite_create("hardening");
    TCase *tc = tcase_create("shapes");
    tcase_add_loop_test(tc, conv_output_shape_at_the_limits, 0,
                        (int)(sizeof conv_cases / sizeof conv_cases[0]));
    tcase_add_test(tc, transpose_output_shape_at_the_limits);
    tcase_add_test(tc, pool_output_shape_at_the_limits);
    tcase_add_test(tc, slice_bounds_at_the_limits);
    suite_add_tcase(s, tc);
    tc = tcase_create("files");
    tcase_set_timeout(tc, 30); /* a FIFO used to block forever */
    tcase_add_test(tc, idx_reader_refuses_special_files);
    suite_add_tcase(s, tc);
    tc = tcase_create("messages");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bad_padding_enum_is_rejected);
    tcase_add_test(tc, empty_model_says_so);
    tcase_add_test(tc, registered_icd_that_fails_to_load_is_not_missing);
    tcase_add_test(tc, device_listing_out_of_memory_says_so);
    suite_add_tcase(s, tc);
    return s;
}
