/* clnet — custom elementwise ops from a user's OpenCL C expression
 * (cl/custom.cl): one program per expression, built on first use and cached
 * like every program (in memory under a name that holds the expression, on
 * disk under a key of the whole source). */
#include <stdio.h>
#include <string.h>

#include "clnet/merge.h"
#include "tensor/tensor_impl.h"

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
static clnet_status custom_kernel(clnet_context *ctx, const char *func, const char *expr,
                                  const char *what, const char *fmt, const char *kname,
                                  cl_kernel *k)
{
    if (!expr)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: %s is NULL", func,
                            what);
    const char *end = memchr(expr, 0, CLNET_CUSTOM_EXPR_MAX + 1);
    size_t len = end ? (size_t)(end - expr) : CLNET_CUSTOM_EXPR_MAX + 1;
    size_t blank = strspn(expr, " \t\r\n\f\v");
    if (blank == len)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: %s is empty", func,
                            what);
    if (len > CLNET_CUSTOM_EXPR_MAX)
        return clnet__error(
            ctx, CLNET_ERR_INVALID_ARG,
            "%s: invalid argument: %s is longer than CLNET_CUSTOM_EXPR_MAX (%d) bytes", func, what,
            CLNET_CUSTOM_EXPR_MAX);
    /* The program's name holds the whole expression: the in-memory cache
     * tells two expressions apart, and a build error names the expression. */
    char name[CLNET_CUSTOM_EXPR_MAX + 64];
    snprintf(name, sizeof name, "%s(%s)", kname, expr);
    char header[CLNET_CUSTOM_EXPR_MAX + 512];
    snprintf(header, sizeof header, fmt, expr);
    return clnet__kernel_templated(ctx, name, "custom", header, NULL, kname, k);
}

CLNET_API clnet_status clnet_custom_forward(const char *expr, const clnet_tensor *x,
                                            clnet_tensor *y)
{
    static const char func[] = "clnet_custom_forward";
    const clnet_tensor *ts[] = { y, x };
    static const char *const names[] = { "y", "x" };
    clnet_context *ctx = clnet__first_ctx(2, ts);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    clnet_status st;
    if ((st = clnet__check_same(ctx, func, 2, ts, names)) ||
        (st = clnet__check_overlap(ctx, func, y, "y", x, "x", 1)))
        return st;
    cl_kernel k;
    if ((st = custom_kernel(ctx, func, expr, "expr", forward_header, "custom_forward", &k)) ||
        y->numel == 0)
        return st;
    clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(y)), CLNET_ARG_ULONG(y->offset),
                       CLNET_ARG_MEM(clnet__mem(x)), CLNET_ARG_ULONG(x->offset),
                       CLNET_ARG_ULONG(y->numel) };
    return clnet__launch1d(ctx, k, func, 5, a, y->numel);
}

CLNET_API clnet_status clnet_custom_backward(const char *dexpr, const clnet_tensor *x,
                                             const clnet_tensor *y, const clnet_tensor *dy,
                                             float beta, clnet_tensor *dx)
{
    static const char func[] = "clnet_custom_backward";
    const clnet_tensor *ts[] = { dx, dy, x, y };
    static const char *const names[] = { "dx", "dy", "x", "y" };
    clnet_context *ctx = clnet__first_ctx(4, ts);
    CLNET_CHECK_ARG(NULL, ctx != NULL);
    clnet_status st;
    if ((st = clnet__check_same(ctx, func, y ? 4 : 3, ts, names)) ||
        (st = clnet__check_overlap(ctx, func, dx, "dx", dy, "dy", 1)) ||
        (st = clnet__check_overlap(ctx, func, dx, "dx", x, "x", 0)) ||
        (st = clnet__check_overlap(ctx, func, dx, "dx", y, "y", 0)))
        return st;
    cl_kernel k;
    if ((st = custom_kernel(ctx, func, dexpr, "dexpr", derivative_header, "custom_backward", &k)) ||
        dx->numel == 0)
        return st;
    const clnet_tensor *yy = y ? y : x;
    clnet__arg a[] = { CLNET_ARG_MEM(clnet__mem(dx)), CLNET_ARG_ULONG(dx->offset),
                       CLNET_ARG_MEM(clnet__mem(x)),  CLNET_ARG_ULONG(x->offset),
                       CLNET_ARG_MEM(clnet__mem(yy)), CLNET_ARG_ULONG(yy->offset),
                       CLNET_ARG_INT(y != NULL),      CLNET_ARG_MEM(clnet__mem(dy)),
                       CLNET_ARG_ULONG(dy->offset),   CLNET_ARG_FLOAT(beta),
                       CLNET_ARG_ULONG(dx->numel) };
    return clnet__launch1d(ctx, k, func, 11, a, dx->numel);
}
