/* clnet tests — float64 reference of the grouped convolution
 * (tests/ref-conv-grouped.h): plain loops, the backward passes as scatters
 * of the forward's terms, so they share no index algebra with the device's
 * gathers (cl/conv_grouped.cl). */
#include <stddef.h>

#include "ref-conv-grouped.h"

static size_t at4(int B, int C, int D, int a, int b, int c, int d)
{
    return (((size_t)a * (size_t)B + (size_t)b) * (size_t)C + (size_t)c) * (size_t)D + (size_t)d;
}

/* The input row/column that output (i, j) reads through kernel tap (u, v);
 * 0 when that falls in the zero padding. */
static int tap(const ref_conv2d *p, int i, int j, int u, int v, int *iy, int *ix)
{
    *iy = i * p->stride_h - p->pad_t + u * p->dil_h;
    *ix = j * p->stride_w - p->pad_l + v * p->dil_w;
    return *iy >= 0 && *iy < p->h && *ix >= 0 && *ix < p->w;
}

void ref_conv2d_grouped_forward(const ref_conv2d *p, int groups, const double *x, const double *w,
                                const double *bias, double *y)
{
    int oh = ref_conv2d_out_h(p), ow = ref_conv2d_out_w(p);
    int cg = p->c / groups, kg = p->k / groups;
    for (int n = 0; n < p->n; n++)
        for (int k = 0; k < p->k; k++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    int g = k / kg;
                    double acc = bias ? bias[k] : 0.0;
                    for (int c = 0; c < cg; c++)
                        for (int u = 0; u < p->r; u++)
                            for (int v = 0; v < p->s; v++) {
                                int iy, ix;
                                if (tap(p, i, j, u, v, &iy, &ix))
                                    acc += w[at4(cg, p->r, p->s, k, c, u, v)] *
                                           x[at4(p->c, p->h, p->w, n, g * cg + c, iy, ix)];
                            }
                    y[at4(p->k, oh, ow, n, k, i, j)] = acc;
                }
}

void ref_conv2d_grouped_backward_data(const ref_conv2d *p, int groups, const double *w,
                                      const double *dy, double *dx)
{
    int oh = ref_conv2d_out_h(p), ow = ref_conv2d_out_w(p);
    int cg = p->c / groups, kg = p->k / groups;
    size_t nx = (size_t)p->n * (size_t)p->c * (size_t)p->h * (size_t)p->w;
    for (size_t e = 0; e < nx; e++)
        dx[e] = 0.0;
    for (int n = 0; n < p->n; n++)
        for (int k = 0; k < p->k; k++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    int g = k / kg;
                    double d = dy[at4(p->k, oh, ow, n, k, i, j)];
                    for (int c = 0; c < cg; c++)
                        for (int u = 0; u < p->r; u++)
                            for (int v = 0; v < p->s; v++) {
                                int iy, ix;
                                if (tap(p, i, j, u, v, &iy, &ix))
                                    dx[at4(p->c, p->h, p->w, n, g * cg + c, iy, ix)] +=
                                        d * w[at4(cg, p->r, p->s, k, c, u, v)];
                            }
                }
}

void ref_conv2d_grouped_backward_filter(const ref_conv2d *p, int groups, const double *x,
                                        const double *dy, double *dw)
{
    int oh = ref_conv2d_out_h(p), ow = ref_conv2d_out_w(p);
    int cg = p->c / groups, kg = p->k / groups;
    size_t nw = (size_t)p->k * (size_t)cg * (size_t)p->r * (size_t)p->s;
    for (size_t e = 0; e < nw; e++)
        dw[e] = 0.0;
    for (int n = 0; n < p->n; n++)
        for (int k = 0; k < p->k; k++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    int g = k / kg;
                    double d = dy[at4(p->k, oh, ow, n, k, i, j)];
                    for (int c = 0; c < cg; c++)
                        for (int u = 0; u < p->r; u++)
                            for (int v = 0; v < p->s; v++) {
                                int iy, ix;
                                if (tap(p, i, j, u, v, &iy, &ix))
                                    dw[at4(cg, p->r, p->s, k, c, u, v)] +=
                                        d * x[at4(p->c, p->h, p->w, n, g * cg + c, iy, ix)];
                            }
                }
}
