/* clnet — custom elementwise ops from a user's OpenCL C expression
 * (cl/custom.cl): one program per expression, built on first use and cached
 * like every program (in memory under a name that holds the expression, on
 * disk under a key of the whole source). */
#include <stdio.h>
#include <string.h>

#include "clnet/merge.h"
#include "ops/op.h"

/* The generated code in front of cl/custom.cl: the expression on lines of
 * its own, so that a // comment or a line break in it stays inside. */
static const char forward_header[] = "#define CLNET_CUSTOM_FORWARD 1\n"
                                     "static float clnet_custom_forward(float x)\n"
                                     "{\n"
                                     "    return (\n"
                                     "#line 1 \"expression\"\n"
                                     "%s\n"
                                     "    );\n"
                                     "}\n"
                                     "#line 1 \"custom.cl\"\n";
static const char derivative_header[] = "#define CLNET_CUSTOM_DERIVATIVE 1\n"
                                        "static float clnet_custom_derivative(float x, float y)\n"
                                        "{\n"
                                        "    return (\n"
                                        "#line 1 \"expression\"\n"
                                        "%s\n"
                                        "    );\n"
                                        "}\n"
                                        "#line 1 \"custom.cl\"\n";

/* The kernel `kname` for an expression: checked (non-empty, at most
 * CLNET_CUSTOM_EXPR_MAX bytes), then built once per context. */
static clnet_status custom_kernel(const clnet__op *op, const char *expr, const char *what,
                                  const char *fmt, const char *kname, cl_kernel *k)
{
    if (!expr)
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG, "invalid argument: %s is NULL", what);
    const char *end = memchr(expr, 0, CLNET_CUSTOM_EXPR_MAX + 1);
    size_t len = end ? (size_t)(end - expr) : CLNET_CUSTOM_EXPR_MAX + 1;
    size_t blank = strspn(expr, " \t\r\n\f\v");
    if (blank == len)
        return clnet__op_fail(op, CLNET_ERR_INVALID_ARG, "invalid argument: %s is empty", what);
    if (len > CLNET_CUSTOM_EXPR_MAX)
        return clnet__op_fail(
            op, CLNET_ERR_INVALID_ARG,
            "invalid argument: %s is longer than CLNET_CUSTOM_EXPR_MAX (%d) bytes", what,
            CLNET_CUSTOM_EXPR_MAX);
    /* The program's name holds the whole expression: the in-memory cache
     * tells two expressions apart, and a build error names the expression. */
    char name[CLNET_CUSTOM_EXPR_MAX + 64];
    snprintf(name, sizeof name, "%s(%s)", kname, expr);
    char header[CLNET_CUSTOM_EXPR_MAX + 512];
    snprintf(header, sizeof header, fmt, expr);
    return clnet__kernel_templated(op->ctx, name, "custom", header, NULL, kname, k);
}

CLNET_API clnet_status clnet_custom_forward(const char *expr, const clnet_tensor *x,
                                            clnet_tensor *y)
{
    static const clnet__tspec spec[] = {
        { .name = "y", .flags = CLNET_T_OUT, .alias = CLNET_ALIAS(1) },
        { .name = "x", .size_of = CLNET_SIZE_OF(0) },
    };
    clnet__op op;
    cl_kernel k;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, __func__, spec, y, x)) ||
        (st = custom_kernel(&op, expr, "expr", forward_header, "custom_forward", &k)) ||
        y->numel == 0)
        return st;
    return clnet__launch1d(
        op.ctx, k, op.func,
        CLNET_ARGS(CLNET_ARG_TENSOR(y), CLNET_ARG_TENSOR(x), CLNET_ARG_ULONG(y->numel)), y->numel);
}

CLNET_API clnet_status clnet_custom_backward(const char *dexpr, const clnet_tensor *x,
                                             const clnet_tensor *y, const clnet_tensor *dy,
                                             float beta, clnet_tensor *dx)
{
    /* dx may be dy exactly; it overlaps neither x nor y. */
    static const clnet__tspec spec[] = {
        { .name = "dx", .flags = CLNET_T_OUT, .alias = CLNET_ALIAS(1) },
        { .name = "dy", .size_of = CLNET_SIZE_OF(0) },
        { .name = "x", .size_of = CLNET_SIZE_OF(0) },
        { .name = "y", .flags = CLNET_T_OPTIONAL, .size_of = CLNET_SIZE_OF(0) },
    };
    clnet__op op;
    cl_kernel k;
    clnet_status st;
    if ((st = CLNET_OP_CHECK(&op, __func__, spec, dx, dy, x, y)) ||
        (st = custom_kernel(&op, dexpr, "dexpr", derivative_header, "custom_backward", &k)) ||
        dx->numel == 0)
        return st;
    const clnet_tensor *yy = y ? y : x;
    return clnet__launch1d(op.ctx, k, op.func,
                           CLNET_ARGS(CLNET_ARG_TENSOR(dx), CLNET_ARG_TENSOR(x),
                                      CLNET_ARG_TENSOR(yy), CLNET_ARG_INT(y != NULL),
                                      CLNET_ARG_TENSOR(dy), CLNET_ARG_FLOAT(beta),
                                      CLNET_ARG_ULONG(dx->numel)),
                           dx->numel);
}
