/* clnet-bench — the float64 side of the whole-model checks (gan, vae): an
 * activation carried with its rounding-error bound through linear layers,
 * and the normwise criterion on top of the elementwise bounds (docs/bench.md). */
#ifndef CLNET_BENCH_BOUND_H
#define CLNET_BENCH_BOUND_H

#include "bench.h"
#include "ref.h"

/* float32's unit roundoff; the normwise limit ||got - ref|| / ||ref||,
 * scaled by kappa / BENCH_KAPPA_WELL where kappa = ||m|| / ||ref|| exceeds
 * BENCH_KAPPA_WELL. */
#define BENCH_U 0x1.0p-24
#define BENCH_REL_MAX 1e-5
#define BENCH_KAPPA_WELL 20.0

/* An activation (float64), its error bound and the magnitude of the last
 * linear layer's sums (|W| |x| + |b|: what their terms add up to in
 * absolute value), n elements each. */
typedef struct bench_act {
    double *a, *e, *m;
    size_t n;
} bench_act;

/* One linear layer, kernel w->p[k], bias w->p[kb] (kb < 0: none), replacing
 * *t by its output and bound. conv: a convolution (transpose = 0) or a
 * transposed one described by the convolution it transposes (1); NULL: a
 * dense layer of `in` -> `out` on `rows` rows. terms: K, the products one
 * output sums at most. */
typedef struct bench_linear_layer {
    const ref_conv2d *conv;
    int transpose, rows, in, out, terms, channels;
    size_t out_count;
} bench_linear_layer;

clnet_status bench_act_alloc(bench_act *t, size_t n);
void bench_act_free(bench_act *t);
/* The input x (n floats) as the device holds it: exactly. */
clnet_status bench_act_from(bench_act *t, const float *x, size_t n);
/* Replaces *t by the layer's output and bound: kernel w->p[k], bias
 * w->p[kb] (kb < 0: none). */
clnet_status bench_linear(const bench_linear_layer *l, const bench_weights *w, int k, int kb,
                          bench_act *t);
/* ||got - ref|| / ||ref|| as a share of its limit (above). */
double bench_normwise_share(const float *got, const bench_act *r);
/* Marks the whole span [start, start + n) bad when its normwise error is
 * over the limit (a wrong output whose elements all stay within the loose
 * bound); *share keeps the largest share seen. */
void bench_normwise_check(bench_check *out, size_t start, const float *got, const bench_act *r,
                          double *share);

#endif
