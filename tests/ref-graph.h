/* clnet tests: float64 reference of the graph-model primitives
 * (include/clnet/merge.h): elementwise merges, concatenation, global average
 * pooling, VAE sampling and KL divergence, and swish (the custom-op test's
 * expression). Plain loops written for clarity. Backward functions
 * overwrite their outputs (the tests add beta * old themselves). */
#ifndef CLNET_TESTS_REF_GRAPH_H
#define CLNET_TESTS_REF_GRAPH_H

#include <stddef.h>
#include <stdint.h>

/* op: 0 add, 1 subtract, 2 multiply (clnet_merge_op's values).
 * y = x[0] op x[1] op ... op x[n-1] over count elements. */
void ref_merge_forward(int op, int n, size_t count, const double *const *x, double *y);
/* dx[i] = dy * dy/dx[i]: dy (add), -dy for x[1] (subtract), dy times the
 * product of the other inputs (multiply). dx[i] may be NULL (skipped). */
void ref_merge_backward(int op, int n, size_t count, const double *const *x, const double *dy,
                        double *const *dx);

/* Concatenation of n inputs, each (outer, ext[i] * after), into y (outer,
 * sum(ext) * after); the split copies the slices back (dx[i] may be NULL). */
void ref_concat_forward(size_t outer, size_t after, int n, const int64_t *ext,
                        const double *const *x, double *y);
void ref_concat_backward(size_t outer, size_t after, int n, const int64_t *ext, const double *dy,
                         double *const *dx);

/* Global average pooling over planes of hw values: y[p] = mean of plane p;
 * dx[p * hw + k] = dy[p] / hw. */
void ref_gap_forward(size_t planes, size_t hw, const double *x, double *y);
void ref_gap_backward(size_t planes, size_t hw, const double *dy, double *dx);

/* z = mean + exp(logvar / 2) * eps; dmean = dz, dlogvar = dz * eps *
 * exp(logvar / 2) / 2 (either output may be NULL). */
void ref_sampling_forward(size_t n, const double *mean, const double *logvar, const double *eps,
                          double *z);
void ref_sampling_backward(size_t n, const double *logvar, const double *eps, const double *dz,
                           double *dmean, double *dlogvar);

/* kl[r] = -0.5 * sum_j (1 + logvar - mean^2 - exp(logvar)) over row r of
 * cols values; the gradient of s * sum_r kl[r]: dmean = s * mean, dlogvar =
 * s * (exp(logvar) - 1) / 2 (either output may be NULL). */
void ref_kl_rows(size_t rows, size_t cols, const double *mean, const double *logvar, double *kl);
void ref_kl_backward(size_t n, double s, const double *mean, const double *logvar, double *dmean,
                     double *dlogvar);

/* swish: y = x / (1 + exp(-x)); dx = dy * (y + (1 - y) * sigmoid(x)). */
void ref_swish_forward(size_t n, const double *x, double *y);
void ref_swish_backward(size_t n, const double *x, const double *dy, double *dx);

#endif
