/* clnet — custom elementwise ops (src/ops/custom.c). The host prepends the
 * user's expression as clnet_custom_forward(x) or clnet_custom_derivative(x,
 * y) and defines CLNET_CUSTOM_FORWARD or CLNET_CUSTOM_DERIVATIVE; the
 * defaults below (the identity) keep this file a standalone program. */
#pragma OPENCL FP_CONTRACT OFF

#ifndef CLNET_CUSTOM_FORWARD
static float clnet_custom_forward(float x)
{
    return x;
}
#endif

#ifndef CLNET_CUSTOM_DERIVATIVE
static float clnet_custom_derivative(float x, float y)
{
    return 1.0f;
}
#endif

__kernel void custom_forward(__global float *y, ulong yo, __global const float *x, ulong xo,
                             ulong count)
{
    size_t i = get_global_id(0);
    if (i < count)
        y[yo + i] = clnet_custom_forward(x[xo + i]);
}

/* dx = dy * f'(x, y) (+ beta * dx; beta == 0 never reads dx). has_y == 0:
 * no y was given, and the expression sees y = 0. */
__kernel void custom_backward(__global float *dx, ulong dxo, __global const float *x, ulong xo,
                              __global const float *y, ulong yo, int has_y,
                              __global const float *dy, ulong dyo, float beta, ulong count)
{
    size_t i = get_global_id(0);
    if (i >= count)
        return;
    float g = dy[dyo + i] * clnet_custom_derivative(x[xo + i], has_y ? y[yo + i] : 0.0f);
    dx[dxo + i] = beta != 0.0f ? g + beta * dx[dxo + i] : g;
}
