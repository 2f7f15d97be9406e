/* clnet tests — the op layer (src/ops/op.h): every rule of the one argument
 * checker and its message, the aliasing rule, the shape format, the
 * launch helper's argument count and the registry of variants. */
#include <limits.h>
#include <string.h>

#include "harness.h"
#include "ops/op.h"

/* A 2-D float32 tensor of rows x cols. */
static clnet_tensor *make(clnet_context *ctx, clnet_dtype dtype, int64_t rows, int64_t cols)
{
    int64_t shape[2] = { rows, cols };
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, dtype, 2, shape, &t));
    return t;
}

/* The checker returns `want` and records exactly `msg`. */
#define CK_MSG(ctx, want, msg, call)                                                               \
    do {                                                                                           \
        int prev_ = expect_errors(1);                                                              \
        clnet_status st_ = (call);                                                                 \
        expect_errors(prev_);                                                                      \
        ck_assert_msg(st_ == (want), "%s returned %s, expected %s (%s)", #call,                    \
                      clnet_status_name(st_), clnet_status_name(want), clnet_context_errmsg(ctx)); \
        ck_assert_str_eq(clnet_context_errmsg(ctx), (msg));                                        \
    } while (0)

static const clnet__tspec unary[] = {
    { .name = "x", .rank = 2 },
    { .name = "y", .flags = CLNET_T_OUT, .like = CLNET_LIKE(0) },
};

START_TEST(presence_context_and_dtype)
{
    clnet_context *ctx = test_context(), *other = test_context();
    clnet_tensor *x = make(ctx, CLNET_F32, 3, 4), *y = make(ctx, CLNET_F32, 3, 4);
    clnet_tensor *xi = make(ctx, CLNET_I32, 3, 4), *xo = make(other, CLNET_F32, 3, 4);
    clnet__op op;
    ck_assert_int_eq(CLNET_OP_CHECK(&op, "f", unary, x, y), CLNET_OK);
    ck_assert_ptr_eq(op.ctx, ctx);
    /* All NULL: no context to record on, the status alone. */
    ck_assert_int_eq(CLNET_OP_CHECK(&op, "f", unary, NULL, NULL), CLNET_ERR_INVALID_ARG);
    /* A NULL first argument is reported on the context of the next. */
    CK_MSG(ctx, CLNET_ERR_INVALID_ARG, "f: x: must not be NULL",
           CLNET_OP_CHECK(&op, "f", unary, NULL, y));
    CK_MSG(ctx, CLNET_ERR_INVALID_ARG, "f: y: must not be NULL",
           CLNET_OP_CHECK(&op, "f", unary, x, NULL));
    CK_MSG(ctx, CLNET_ERR_INVALID_ARG, "f: y: belongs to another context",
           CLNET_OP_CHECK(&op, "f", unary, x, xo));
    CK_MSG(other, CLNET_ERR_INVALID_ARG, "f: y: belongs to another context",
           CLNET_OP_CHECK(&op, "f", unary, xo, y));
    CK_MSG(ctx, CLNET_ERR_SHAPE, "f: x: dtype int32 but expected float32",
           CLNET_OP_CHECK(&op, "f", unary, xi, y));
    static const clnet__tspec idx[] = { { .name = "i", .flags = CLNET_T_I32 },
                                        { .name = "a", .flags = CLNET_T_ANY_DTYPE } };
    CK_MSG(ctx, CLNET_ERR_SHAPE, "f: i: dtype float32 but expected int32",
           CLNET_OP_CHECK(&op, "f", idx, x, x));
    ck_assert_int_eq(CLNET_OP_CHECK(&op, "f", idx, xi, x), CLNET_OK);
    ck_assert_int_eq(CLNET_OP_CHECK(&op, "f", idx, xi, xi), CLNET_OK);
    /* An optional tensor may be NULL; given, it is checked like any. */
    static const clnet__tspec opt[] = { { .name = "x" },
                                        { .name = "b", .flags = CLNET_T_OPTIONAL, .rank = 1 } };
    ck_assert_int_eq(CLNET_OP_CHECK(&op, "f", opt, x, NULL), CLNET_OK);
    ck_assert_ptr_null(clnet__op_t(&op, 1));
    CK_MSG(ctx, CLNET_ERR_SHAPE, "f: b: shape (3, 4) but expected 1 dimensions",
           CLNET_OP_CHECK(&op, "f", opt, x, y));
    clnet_tensor *ts[] = { x, y, xi, xo };
    for (int i = 0; i < 4; i++)
        clnet_tensor_destroy(ts[i]);
    clnet_context_destroy(other);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(rank_like_size_and_wanted_shape)
{
    clnet_context *ctx = test_context();
    clnet_tensor *x = make(ctx, CLNET_F32, 3, 4), *y = make(ctx, CLNET_F32, 4, 3);
    clnet_tensor *flat, *s;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, (int64_t[]){ 12 }, &flat));
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 0, NULL, &s));
    clnet__op op;
    CK_MSG(ctx, CLNET_ERR_SHAPE, "f: x: shape (12) but expected 2 dimensions",
           CLNET_OP_CHECK(&op, "f", unary, flat, y));
    CK_MSG(ctx, CLNET_ERR_SHAPE, "f: x: shape () but expected 2 dimensions",
           CLNET_OP_CHECK(&op, "f", unary, s, y));
    CK_MSG(ctx, CLNET_ERR_SHAPE, "f: y: shape (4, 3) but expected (3, 4) (the shape of x)",
           CLNET_OP_CHECK(&op, "f", unary, x, y));
    static const clnet__tspec sized[] = {
        { .name = "x" }, { .name = "y", .flags = CLNET_T_OUT, .size_of = CLNET_SIZE_OF(0) }
    };
    ck_assert_int_eq(CLNET_OP_CHECK(&op, "f", sized, x, flat), CLNET_OK);
    CK_MSG(ctx, CLNET_ERR_SHAPE, "f: y: shape () but expected 12 elements (as x)",
           CLNET_OP_CHECK(&op, "f", sized, x, s));
    /* A shape known only after the geometry. */
    ck_assert_int_eq(CLNET_OP_CHECK(&op, "g", sized, x, y), CLNET_OK);
    ck_assert_int_eq(clnet__op_want_shape(&op, 1, 2, (int64_t[]){ 4, 3 }), CLNET_OK);
    CK_MSG(ctx, CLNET_ERR_SHAPE, "g: y: shape (4, 3) but expected (4, 3, 1)",
           clnet__op_want_shape(&op, 1, 3, (int64_t[]){ 4, 3, 1 }));
    CK_MSG(ctx, CLNET_ERR_SHAPE, "g: x: shape (3, 4) but expected (3, 5)",
           clnet__op_want_shape(&op, 0, 2, (int64_t[]){ 3, 5 }));
    CK_MSG(ctx, CLNET_ERR_INVALID_ARG, "g: alpha is 2",
           clnet__op_fail(&op, CLNET_ERR_INVALID_ARG, "alpha is %d", 2));
    clnet_tensor_destroy(s);
    clnet_tensor_destroy(flat);
    clnet_tensor_destroy(y);
    clnet_tensor_destroy(x);
    clnet_context_destroy(ctx);
}
END_TEST

START_TEST(aliasing_is_by_storage)
{
    clnet_context *ctx = test_context();
    clnet_tensor *base = make(ctx, CLNET_F32, 4, 6), *other = make(ctx, CLNET_F32, 2, 6);
    clnet_tensor *a, *b, *c, *empty;
    CK_OK(ctx, clnet_tensor_slice(base, 0, 2, &a)); /* rows 0-1 */
    CK_OK(ctx, clnet_tensor_slice(base, 1, 2, &b)); /* rows 1-2: overlaps a in part */
    CK_OK(ctx, clnet_tensor_slice(base, 2, 2, &c)); /* rows 2-3: touches a, no overlap */
    CK_OK(ctx, clnet_tensor_slice(base, 0, 0, &empty));
    static const clnet__tspec strict[] = {
        { .name = "x" }, { .name = "y", .flags = CLNET_T_OUT, .like = CLNET_LIKE(0) }
    };
    static const clnet__tspec exact[] = {
        { .name = "x" },
        { .name = "y", .flags = CLNET_T_OUT, .like = CLNET_LIKE(0), .alias = CLNET_ALIAS(0) }
    };
    clnet__op op;
    ck_assert_int_eq(CLNET_OP_CHECK(&op, "f", strict, a, other), CLNET_OK);
    ck_assert_int_eq(CLNET_OP_CHECK(&op, "f", strict, a, c), CLNET_OK);
    CK_MSG(ctx, CLNET_ERR_INVALID_ARG, "f: y: overlaps x", CLNET_OP_CHECK(&op, "f", strict, a, a));
    CK_MSG(ctx, CLNET_ERR_INVALID_ARG, "f: y: overlaps x", CLNET_OP_CHECK(&op, "f", strict, a, b));
    ck_assert_int_eq(CLNET_OP_CHECK(&op, "f", exact, a, a), CLNET_OK);
    CK_MSG(ctx, CLNET_ERR_INVALID_ARG, "f: y: overlaps x in part (only exact aliasing is allowed)",
           CLNET_OP_CHECK(&op, "f", exact, a, b));
    /* Empty tensors overlap nothing. */
    static const clnet__tspec loose[] = { { .name = "x" }, { .name = "y", .flags = CLNET_T_OUT } };
    ck_assert_int_eq(CLNET_OP_CHECK(&op, "f", loose, empty, empty), CLNET_OK);
    /* Two outputs, and an alias allowed with one input only. */
    static const clnet__tspec two[] = {
        { .name = "x" },
        { .name = "g" },
        { .name = "y", .flags = CLNET_T_OUT, .alias = CLNET_ALIAS(0) },
        { .name = "z", .flags = CLNET_T_OUT },
    };
    ck_assert_int_eq(CLNET_OP_CHECK(&op, "f", two, a, other, a, c), CLNET_OK);
    CK_MSG(ctx, CLNET_ERR_INVALID_ARG, "f: y: overlaps g",
           CLNET_OP_CHECK(&op, "f", two, a, c, c, other));
    CK_MSG(ctx, CLNET_ERR_INVALID_ARG, "f: y: overlaps z",
           CLNET_OP_CHECK(&op, "f", two, other, other, a, b));
    CK_MSG(ctx, CLNET_ERR_INVALID_ARG, "f: z: overlaps x",
           CLNET_OP_CHECK(&op, "f", two, a, other, c, a));
    clnet_tensor *ts[] = { empty, c, b, a, other, base };
    for (int i = 0; i < 6; i++)
        clnet_tensor_destroy(ts[i]);
    clnet_context_destroy(ctx);
}
END_TEST

/* The test log handler (tests/harness.c) fails a test on an error it was
 * not told to expect (this case runs with it on), and on nothing else. */
START_TEST(unexpected_errors_are_caught)
{
    ck_assert(unexpected_error(CLNET_ERR_SHAPE));
    ck_assert(!unexpected_error(CLNET_OK)); /* reports pass */
    int prev = expect_errors(1);
    ck_assert_int_eq(prev, 0);
    ck_assert(!unexpected_error(CLNET_ERR_SHAPE));
    expect_errors(prev);
    /* The teardown goes back to the runner's default: on in this suite. */
    allow_unexpected_errors();
    ck_assert(unexpected_error(CLNET_ERR_SHAPE));
}
END_TEST

START_TEST(shape_format)
{
    char buf[64];
    ck_assert_str_eq(clnet__shape_str(0, NULL, buf, sizeof buf), "()");
    ck_assert_str_eq(clnet__shape_str(1, (int64_t[]){ 7 }, buf, sizeof buf), "(7)");
    ck_assert_str_eq(clnet__shape_str(3, (int64_t[]){ 3, 4, 5 }, buf, sizeof buf), "(3, 4, 5)");
    ck_assert_str_eq(clnet__shape_str(2, (int64_t[]){ 3, 4 }, buf, 5), "(3, ");
}
END_TEST

static int count_of(int nargs, const clnet__arg *args)
{
    (void)args;
    return nargs;
}

START_TEST(launch_counts_its_arguments)
{
    /* The count comes from the list: a kernel given one argument too few
     * or too many fails to launch (CL_INVALID_KERNEL_ARGS on clEnqueue, or
     * CL_INVALID_ARG_INDEX on the extra clSetKernelArg). */
    ck_assert_int_eq(count_of(CLNET_ARGS(CLNET_ARG_INT(1), CLNET_ARG_FLOAT(2), CLNET_ARG_ULONG(3))),
                     3);
    clnet_context *ctx = test_context();
    clnet_tensor *x = make(ctx, CLNET_F32, 3, 7), *y = make(ctx, CLNET_F32, 3, 7);
    ck_assert_int_eq(count_of(CLNET_ARGS(CLNET_ARG_TENSOR(x), CLNET_ARG_INT(0))), 3);
    float v[21], w[21];
    for (int i = 0; i < 21; i++)
        v[i] = (float)i - 10.5f;
    CK_OK(ctx, clnet_tensor_upload(x, v, sizeof v));
    CK_OK(ctx, CLNET_RUN1D(ctx, "t", "elementwise", "scale", 21, CLNET_ARG_TENSOR(y),
                           CLNET_ARG_TENSOR(x), CLNET_ARG_ULONG(21), CLNET_ARG_FLOAT(2)));
    CK_OK(ctx, clnet_tensor_download(y, w, sizeof w));
    for (int i = 0; i < 21; i++)
        ck_assert_float_eq(w[i], 2 * v[i]);
    int prev = expect_errors(1);
    clnet_status st =
        CLNET_RUN1D(ctx, "t", "elementwise", "scale", 21, CLNET_ARG_TENSOR(y), CLNET_ARG_TENSOR(x),
                    CLNET_ARG_ULONG(21), CLNET_ARG_FLOAT(2), CLNET_ARG_INT(0));
    expect_errors(prev);
    ck_assert_int_ne(st, CLNET_OK);
    ck_assert_ptr_nonnull(strstr(clnet_context_errmsg(ctx), "t: "));
    /* n = 0 launches nothing, whatever the list. */
    CK_OK(ctx, CLNET_RUN1D(ctx, "t", "elementwise", "scale", 0, CLNET_ARG_INT(0)));
    clnet_tensor_destroy(y);
    clnet_tensor_destroy(x);
    clnet_context_destroy(ctx);
}
END_TEST

/* The registry (src/runtime/knobs.h): every key takes its range and -1
 * (clear); an unknown key, or a value outside the range, is an error. */
START_TEST(variants_come_from_the_registry)
{
    static const struct {
        const char *name;
        int lo, hi;
    } reg[] = {
#define ROW(name, lo, hi) { name, lo, hi },
        CLNET_VARIANTS(ROW)
#undef ROW
    };
    clnet_context *ctx = test_context();
    for (size_t i = 0; i < sizeof reg / sizeof reg[0]; i++) {
        CK_OK(ctx, clnet__force_variant(ctx, reg[i].name, reg[i].lo));
        ck_assert_int_eq(clnet__variant(ctx, reg[i].name, -7), reg[i].lo);
        CK_OK(ctx, clnet__force_variant(ctx, reg[i].name, reg[i].hi));
        ck_assert_int_eq(clnet__variant(ctx, reg[i].name, -7), reg[i].hi);
        if (reg[i].hi < INT_MAX)
            CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "is outside",
                     clnet__force_variant(ctx, reg[i].name, reg[i].hi + 1));
        if (reg[i].lo > 0)
            CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "is outside",
                     clnet__force_variant(ctx, reg[i].name, reg[i].lo - 1));
        CK_OK(ctx, clnet__force_variant(ctx, reg[i].name, -1));
        ck_assert_int_eq(clnet__variant(ctx, reg[i].name, -7), -7);
    }
    CK_MSG(ctx, CLNET_ERR_INVALID_ARG,
           "clnet__force_variant: conv2d.forward = 4 is outside [0, 3] (or < 0 to clear)",
           clnet__force_variant(ctx, "conv2d.forward", CLNET_V_CONV_WIDE + 1));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "no variant named \"conv2d.fwd\"",
             clnet__force_variant(ctx, "conv2d.fwd", 0));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "no variant named",
             clnet__force_variant(ctx, "conv2d.fwd", -1));
    CK_FAILS(ctx, CLNET_ERR_INVALID_ARG, "invalid argument", clnet__force_variant(ctx, NULL, 0));
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_op(void)
{
    Suite *s = suite_create("op");
    TCase *tc = tcase_create("op");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, fail_on_unexpected_errors, allow_unexpected_errors);
    tcase_add_test(tc, presence_context_and_dtype);
    tcase_add_test(tc, rank_like_size_and_wanted_shape);
    tcase_add_test(tc, aliasing_is_by_storage);
    tcase_add_test(tc, shape_format);
    tcase_add_test(tc, unexpected_errors_are_caught);
    tcase_add_test(tc, launch_counts_its_arguments);
    tcase_add_test(tc, variants_come_from_the_registry);
    suite_add_tcase(s, tc);
    return s;
}
