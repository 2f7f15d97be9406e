/* clnet tests — tensors: round trips at odd sizes, views, fill, copy, empty
 * and oversized tensors, bad arguments. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clnet/opencl.h"
#include "harness.h"

static const int64_t sizes[] = { 1, 3, 7, 31, 32, 33, 63, 64, 65, 4097, 100003 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

START_TEST(round_trip_is_bitwise)
{
    clnet_context *ctx = test_context();
    int64_t n = sizes[_i];
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    uint64_t seed = 1000 + (uint64_t)n;
    fill_uniform(x, (size_t)n, -1e3f, 1e3f, &seed);
    x[0] = -0.0f; /* signed zero survives */
    clnet_tensor *t = tensor_from(ctx, 1, &n, x);
    memset(y, 0xff, (size_t)n * sizeof *y);
    download(ctx, t, y, (size_t)n);
    ck_assert_int_eq(memcmp(x, y, (size_t)n * sizeof *x), 0);
    clnet_tensor_destroy(t);
    free(x);
    free(y);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(int32_round_trip_and_fill)
{
    clnet_context *ctx = test_context();
    int64_t shape[2] = { 3, 7 };
    int32_t v[21], w[21];
    for (int i = 0; i < 21; i++)
        v[i] = (i - 10) * 1000003;
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 2, shape, &t));
    ck_assert_int_eq(clnet_tensor_dtype(t), CLNET_I32);
    CK_OK(ctx, clnet_tensor_upload(t, v, sizeof v));
    CK_OK(ctx, clnet_tensor_download(t, w, sizeof w));
    ck_assert_int_eq(memcmp(v, w, sizeof v), 0);
    CK_OK(ctx, clnet_tensor_fill(t, -7));
    CK_OK(ctx, clnet_tensor_download(t, w, sizeof w));
    for (int i = 0; i < 21; i++)
        ck_assert_int_eq(w[i], -7);
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "int32", clnet_tensor_fill(t, 0.5));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "int32", clnet_tensor_fill(t, 3e9));
    clnet_tensor_destroy(t);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(shape_queries)
{
    clnet_context *ctx = test_context();
    int64_t shape[4] = { 2, 3, 5, 7 }, got[CLNET_MAX_DIMS];
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 4, shape, &t));
    ck_assert_int_eq(clnet_tensor_ndim(t), 4);
    ck_assert_uint_eq(clnet_tensor_numel(t), 210);
    ck_assert_int_eq(clnet_tensor_dim(t, 1), 3);
    ck_assert_int_eq(clnet_tensor_dim(t, -1), 7);
    ck_assert_int_eq(clnet_tensor_dim(t, 4), 0);
    ck_assert_int_eq(clnet_tensor_shape(t, got), 4);
    ck_assert_int_eq(memcmp(got, shape, sizeof shape), 0);
    ck_assert_ptr_eq(clnet_tensor_context(t), ctx);
    clnet_tensor_destroy(t);
    /* A 0-d tensor holds one element. */
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 0, NULL, &t));
    ck_assert_uint_eq(clnet_tensor_numel(t), 1);
    clnet_tensor_destroy(t);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(views_share_storage)
{
    clnet_context *ctx = test_context();
    int64_t shape[3] = { 5, 3, 7 };
    float x[105], y[105];
    for (int i = 0; i < 105; i++)
        x[i] = (float)i;
    clnet_tensor *t = tensor_from(ctx, 3, shape, x), *r, *s, *s2;
    int64_t flat[2] = { -1, 21 };
    CK_OK(ctx, clnet_tensor_reshape(t, 2, flat, &r));
    ck_assert_int_eq(clnet_tensor_dim(r, 0), 5);
    CK_OK(ctx, clnet_tensor_slice(r, 1, 3, &s));
    ck_assert_uint_eq(clnet_tensor_offset(s), 21);
    ck_assert_uint_eq(clnet_tensor_numel(s), 63);
    /* A slice of a slice. */
    CK_OK(ctx, clnet_tensor_slice(s, 2, 1, &s2));
    ck_assert_uint_eq(clnet_tensor_offset(s2), 63);
    float part[63];
    download(ctx, s, part, 63);
    for (int i = 0; i < 63; i++)
        ck_assert(part[i] == (float)(21 + i));
    CK_OK(ctx, clnet_tensor_fill(s2, -1.0));
    /* The base outlives nothing: destroy it first, the views keep the storage. */
    clnet_tensor_destroy(t);
    clnet_tensor_destroy(r);
    int64_t all = 105;
    clnet_tensor *whole;
    CK_OK(ctx, clnet_tensor_slice(s, 0, 3, &whole));
    download(ctx, whole, part, 63);
    for (int i = 0; i < 63; i++)
        ck_assert(part[i] == (i >= 42 ? -1.0f : (float)(21 + i)));
    (void)all;
    (void)y;
    clnet_tensor_destroy(whole);
    clnet_tensor_destroy(s2);
    clnet_tensor_destroy(s);
    clnet_context_stats st;
    CK_OK(ctx, clnet_context_get_stats(ctx, &st));
    ck_assert_uint_eq(st.buffers_live, 0);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(bad_views_are_refused)
{
    clnet_context *ctx = test_context();
    int64_t shape[2] = { 4, 6 };
    clnet_tensor *t, *v = (clnet_tensor *)1;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, shape, &t));
    int64_t bad[2] = { 5, 5 };
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "holds 25 elements", clnet_tensor_reshape(t, 2, bad, &v));
    ck_assert_ptr_null(v);
    int64_t two_infer[2] = { -1, -1 };
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "only one -1", clnet_tensor_reshape(t, 2, two_infer, &v));
    int64_t noinfer[2] = { -1, 5 };
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "cannot infer", clnet_tensor_reshape(t, 2, noinfer, &v));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "outside [0, 4)", clnet_tensor_slice(t, 3, 2, &v));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "outside", clnet_tensor_slice(t, -1, 1, &v));
    ck_assert_ptr_null(v);
    clnet_tensor_destroy(t);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(fill_and_copy)
{
    clnet_context *ctx = test_context();
    for (size_t k = 0; k < NSIZES; k++) {
        int64_t n = sizes[k];
        guarded g;
        guarded_create(ctx, 1, &n, &g);
        CK_OK(ctx, clnet_tensor_fill(g.view, -3.25));
        guard_check(ctx, &g, "fill");
        float *src = malloc((size_t)n * sizeof *src), *out = malloc((size_t)n * sizeof *out);
        uint64_t seed = 7 + k;
        fill_uniform(src, (size_t)n, -1, 1, &seed);
        clnet_tensor *s = tensor_from(ctx, 1, &n, src);
        CK_OK(ctx, clnet_tensor_copy(s, g.view));
        guard_check(ctx, &g, "copy");
        download(ctx, g.view, out, (size_t)n);
        ck_assert_int_eq(memcmp(src, out, (size_t)n * sizeof *out), 0);
        clnet_tensor_destroy(s);
        guarded_destroy(&g);
        free(src);
        free(out);
    }
    int64_t a = 3, b = 4;
    clnet_tensor *ta, *tb, *ti;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &a, &ta));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &b, &tb));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &a, &ti));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "clnet_tensor_copy", clnet_tensor_copy(tb, ta));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "dtype", clnet_tensor_copy(ti, ta));
    clnet_tensor_destroy(ta);
    clnet_tensor_destroy(tb);
    clnet_tensor_destroy(ti);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(empty_tensors_do_nothing)
{
    clnet_context *ctx = test_context();
    clnet_context_stats before, after;
    CK_OK(ctx, clnet_context_get_stats(ctx, &before));
    int64_t shape[3] = { 0, 5, 3 };
    clnet_tensor *t, *u;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 3, shape, &t));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 3, shape, &u));
    ck_assert_uint_eq(clnet_tensor_numel(t), 0);
    ck_assert_ptr_null(clnet_tensor_cl_mem(t));
    CK_OK(ctx, clnet_tensor_fill(t, 1.0));
    CK_OK(ctx, clnet_tensor_copy(t, u));
    CK_OK(ctx, clnet_tensor_upload(t, NULL, 0));
    CK_OK(ctx, clnet_tensor_download(t, NULL, 0));
    CK_OK(ctx, clnet_tensor_rand_uniform(t, 1, 0, 0, 1));
    CK_OK(ctx, clnet_add(t, t, u));
    float s = 5;
    CK_OK(ctx, clnet_sum_host(t, &s));
    ck_assert(s == 0.0f);
    CK_OK(ctx, clnet_context_get_stats(ctx, &after));
    /* Only clnet_sum_host's one-element result needed a buffer. */
    ck_assert_uint_eq(after.buffers_created - before.buffers_created, 1);
    /* A slice of zero rows of a real tensor is empty too. */
    int64_t n = 4;
    clnet_tensor *r, *e;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &r));
    CK_OK(ctx, clnet_tensor_slice(r, 4, 0, &e));
    ck_assert_ptr_null(clnet_tensor_cl_mem(e));
    clnet_tensor_destroy(e);
    clnet_tensor_destroy(r);
    clnet_tensor_destroy(t);
    clnet_tensor_destroy(u);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(oversized_tensors_are_refused_early)
{
    clnet_context *ctx = test_context();
    clnet_context_stats before, after;
    CK_OK(ctx, clnet_context_get_stats(ctx, &before));
    uint64_t max = clnet_context_device(ctx)->max_alloc_bytes;
    int64_t shape[1] = { (int64_t)(max / 4 + 1) };
    clnet_tensor *t = (clnet_tensor *)1;
    CK_FAILS(ctx, CLNET_ERR_TOO_LARGE, "maximum allocation",
             clnet_tensor_create(ctx, CLNET_F32, 1, shape, &t));
    ck_assert_ptr_null(t);
    int64_t huge[3] = { INT64_C(1) << 40, INT64_C(1) << 40, 16 };
    CK_FAILS(ctx, CLNET_ERR_TOO_LARGE, "overflow",
             clnet_tensor_create(ctx, CLNET_F32, 3, huge, &t));
    CK_OK(ctx, clnet_context_get_stats(ctx, &after));
    ck_assert_uint_eq(after.buffers_created, before.buffers_created);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(bad_arguments_are_named)
{
    clnet_context *ctx = test_context();
    int64_t shape[2] = { 2, -3 };
    clnet_tensor *t;
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "negative",
             clnet_tensor_create(ctx, CLNET_F32, 2, shape, &t));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "ndim", clnet_tensor_create(ctx, CLNET_F32, 9, shape, &t));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "shape != NULL",
             clnet_tensor_create(ctx, CLNET_F32, 2, NULL, &t));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dtype",
             clnet_tensor_create(ctx, (clnet_dtype)7, 1, shape, &t));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "out != NULL",
             clnet_tensor_create(ctx, CLNET_F32, 1, shape, NULL));
    ck_assert_int_eq(clnet_tensor_create(NULL, CLNET_F32, 1, shape, &t), CLNET_ERR_INVALID_ARG);
    int64_t n = 5;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t));
    float buf[5] = { 0 };
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "16 bytes given", clnet_tensor_upload(t, buf, 16));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "24 bytes given", clnet_tensor_download(t, buf, 24));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "src != NULL", clnet_tensor_upload(t, NULL, 20));
    ck_assert_int_eq(clnet_tensor_fill(NULL, 0), CLNET_ERR_INVALID_ARG);
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "lo", clnet_tensor_rand_uniform(t, 1, 0, 1.0f, 0.0f));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "stddev", clnet_tensor_rand_normal(t, 1, 0, 0.0f, -1.0f));
    clnet_tensor_destroy(NULL);
    clnet_tensor_destroy(t);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(gather_rows_in_any_order)
{
    clnet_context *ctx = test_context();
    int64_t sshape[3] = { 7, 3, 5 }, dshape[3] = { 9, 3, 5 }, n = 9;
    float src[105], got[135];
    for (int i = 0; i < 105; i++)
        src[i] = (float)i + 0.5f;
    int32_t idx[9] = { 6, 0, 3, 3, 1, 6, -1, 7, 2 }; /* repeats, and two out of range */
    clnet_tensor *s = tensor_from(ctx, 3, sshape, src), *it;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &n, &it));
    CK_OK(ctx, clnet_tensor_upload(it, idx, sizeof idx));
    guarded g;
    guarded_create(ctx, 3, dshape, &g);
    CK_OK(ctx, clnet_tensor_gather_rows(s, it, g.view));
    guard_check(ctx, &g, "gather_rows");
    download(ctx, g.view, got, 135);
    for (int r = 0; r < 9; r++)
        for (int c = 0; c < 15; c++) {
            float want = idx[r] >= 0 && idx[r] < 7 ? src[idx[r] * 15 + c] : 0.0f;
            ck_assert_msg(got[r * 15 + c] == want, "row %d col %d: %g vs %g", r, c, got[r * 15 + c],
                          want);
        }
    int64_t bad[2] = { 9, 4 };
    clnet_tensor *b;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 2, bad, &b));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "rows of 4", clnet_tensor_gather_rows(s, it, b));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "int32", clnet_tensor_gather_rows(s, s, g.view));
    clnet_tensor_destroy(b);
    guarded_destroy(&g);
    clnet_tensor_destroy(it);
    clnet_tensor_destroy(s);
    clnet_context_destroy(ctx);
}
END_TEST

/* Partial transfers on a view in the middle of its storage (so the view's own
 * offset counts too), at awkward offsets and counts; the host side has NaN
 * guard bands, and the elements outside the range must stay as they were. */
START_TEST(partial_transfers_touch_only_their_range)
{
    clnet_context *ctx = test_context();
    enum { ROWS = 3, COLS = 33, G = 5 };
    int64_t shape[2] = { ROWS, COLS };
    float all[ROWS * COLS], back[ROWS * COLS];
    uint64_t seed = 77;
    fill_uniform(all, ROWS * COLS, -4.0f, 4.0f, &seed);
    clnet_tensor *t = tensor_from(ctx, 2, shape, all), *mid;
    CK_OK(ctx, clnet_tensor_slice(t, 1, 1, &mid)); /* elements [33, 66) of the storage */
    const size_t cases[][2] = { { 0, 33 }, { 0, 1 }, { 32, 1 }, { 7, 3 }, { 1, 31 }, { 33, 0 } };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t off = cases[c][0], cnt = cases[c][1];
        float host[G + COLS + G];
        for (size_t i = 0; i < sizeof host / sizeof *host; i++)
            host[i] = NAN;
        CK_OK(ctx, clnet_tensor_upload(t, all, sizeof all));
        CK_OK(ctx, clnet_tensor_download_range(mid, off, cnt, host + G));
        for (size_t i = 0; i < sizeof host / sizeof *host; i++) {
            int inside = i >= G && i < G + cnt;
            if (inside)
                ck_assert_msg(host[i] == all[COLS + off + i - G], "case %zu: element %zu", c,
                              i - G);
            else
                ck_assert_msg(isnan(host[i]), "case %zu: host guard %zu written", c, i);
        }
        /* Upload the negated range and check every element of the storage. */
        float neg[COLS];
        for (size_t i = 0; i < cnt; i++)
            neg[i] = -all[COLS + off + i];
        CK_OK(ctx, clnet_tensor_upload_range(mid, off, cnt, neg));
        download(ctx, t, back, ROWS * COLS);
        for (size_t i = 0; i < ROWS * COLS; i++) {
            int inside = i >= COLS + off && i < COLS + off + cnt;
            ck_assert_msg(back[i] == (inside ? -all[i] : all[i]), "case %zu: storage element %zu",
                          c, i);
        }
    }
    /* Bounds, including ones whose sum overflows. */
    float one[2];
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "outside the tensor's 33",
             clnet_tensor_download_range(mid, 33, 1, one));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "outside", clnet_tensor_download_range(mid, 32, 2, one));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "outside", clnet_tensor_download_range(mid, 1, SIZE_MAX, one));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "outside", clnet_tensor_upload_range(mid, SIZE_MAX, 2, one));
    CK_FAILS(ctx, CLNET_ERR_SHAPE, "outside", clnet_tensor_upload_range(mid, 34, 0, one));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "dst", clnet_tensor_download_range(mid, 0, 1, NULL));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "src", clnet_tensor_upload_range(mid, 0, 1, NULL));
    ck_assert_int_eq(clnet_tensor_download_range(NULL, 0, 0, one), CLNET_ERR_INVALID_ARG);
    CK_OK(ctx, clnet_tensor_download_range(mid, 5, 0, NULL));
    clnet_tensor_destroy(mid);
    clnet_tensor_destroy(t);
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_tensor(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("tensor");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, round_trip_is_bitwise, 0, NSIZES);
    tcase_add_test(tc, int32_round_trip_and_fill);
    tcase_add_test(tc, shape_queries);
    tcase_add_test(tc, views_share_storage);
    tcase_add_test(tc, bad_views_are_refused);
    tcase_add_test(tc, fill_and_copy);
    tcase_add_test(tc, empty_tensors_do_nothing);
    tcase_add_test(tc, oversized_tensors_are_refused_early);
    tcase_add_test(tc, bad_arguments_are_named);
    tcase_add_test(tc, gather_rows_in_any_order);
    tcase_add_test(tc, partial_transfers_touch_only_their_range);
    suite_add_tcase(s, tc);
    return s;
}
