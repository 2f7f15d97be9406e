/* clnet tests — float64 reference of the grouped and depthwise convolution
 * (clnet/conv_grouped.h), written for clarity. */
#ifndef CLNET_TEST_REF_CONV_GROUPED_H
#define CLNET_TEST_REF_CONV_GROUPED_H

#include "ref.h"

/* p describes the convolution with p->c input and p->k output channels;
 * groups divides both. x (n, c, h, w); w (k, c/groups, r, s); bias (k) or
 * NULL; y (n, k, oh, ow), oh and ow as ref_conv2d_out_h/w. Output channel k
 * reads input channels g*(c/groups) .. + c/groups - 1, g = k / (k/groups):
 *
 *   y[n,k,i,j] = bias[k] + sum_{c' < c/groups, u, v}
 *                w[k,c',u,v] * x[n, g*(c/groups) + c', iy, ix]
 *
 * with iy, ix as in ref_conv2d_forward and x = 0 outside the image. */
void ref_conv2d_grouped_forward(const ref_conv2d *p, int groups, const double *x, const double *w,
                                const double *bias, double *y);
/* dx (n, c, h, w) from w and dy (n, k, oh, ow). */
void ref_conv2d_grouped_backward_data(const ref_conv2d *p, int groups, const double *w,
                                      const double *dy, double *dx);
/* dw (k, c/groups, r, s) from x and dy. */
void ref_conv2d_grouped_backward_filter(const ref_conv2d *p, int groups, const double *x,
                                        const double *dy, double *dw);

#endif
