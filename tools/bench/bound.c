/* clnet-bench — float64 activations with error bounds for the whole-model
 * checks (bound.h). */
#include <math.h>
#include <stdlib.h>

#include "bound.h"

clnet_status bench_act_alloc(bench_act *t, size_t n)
{
    t->a = malloc(n * sizeof *t->a);
    t->e = malloc(n * sizeof *t->e);
    t->m = malloc(n * sizeof *t->m);
    t->n = n;
    return t->a && t->e && t->m ? CLNET_OK : CLNET_ERR_HOST_MEMORY;
}

void bench_act_free(bench_act *t)
{
    free(t->a);
    free(t->e);
    free(t->m);
    t->a = t->e = t->m = NULL;
}

/* The input x (n floats) as the device holds it: exactly. */
clnet_status bench_act_from(bench_act *t, const float *x, size_t n)
{
    clnet_status st = bench_act_alloc(t, n);
    for (size_t i = 0; !st && i < n; i++)
        t->a[i] = x[i], t->e[i] = 0.0, t->m[i] = fabs((double)x[i]);
    return st;
}

static void linear_apply(const bench_linear_layer *l, const double *x, const double *w,
                         const double *b, double *y)
{
    if (l->conv && l->transpose)
        ref_conv2d_transpose_forward(l->conv, x, w, b, y);
    else if (l->conv)
        ref_conv2d_forward(l->conv, x, w, b, y);
    else {
        ref_gemm m = { .trans_b = 1,
                       .m = l->rows,
                       .n = l->out,
                       .k = l->in,
                       .lda = l->in,
                       .ldb = l->in,
                       .ldc = l->out,
                       .alpha = 1.0 };
        ref_gemm_forward(&m, x, w, y);
        if (b)
            ref_bias_forward(l->rows, l->out, 1, y, b, y);
    }
}

clnet_status bench_linear(const bench_linear_layer *l, const bench_weights *w, int k, int kb,
                          bench_act *t)
{
    double g = 2.0 * (l->terms + 1) * BENCH_U;
    bench_act y = { 0 };
    double *gb = kb >= 0 ? malloc((size_t)l->channels * sizeof *gb) : NULL;
    clnet_status st = bench_act_alloc(&y, l->out_count);
    if (!st && kb >= 0 && !gb)
        st = CLNET_ERR_HOST_MEMORY;
    if (st) {
        bench_act_free(&y);
        free(gb);
        return st;
    }
    for (int i = 0; kb >= 0 && i < l->channels; i++)
        gb[i] = g * w->abs[kb][i];
    for (size_t i = 0; i < t->n; i++) { /* the input's bound, then its own roundings */
        t->m[i] = fabs(t->a[i]);
        t->e[i] += g * t->m[i];
    }
    linear_apply(l, t->a, w->p[k], kb >= 0 ? w->p[kb] : NULL, y.a);
    linear_apply(l, t->e, w->abs[k], gb, y.e);
    linear_apply(l, t->m, w->abs[k], kb >= 0 ? w->abs[kb] : NULL, y.m);
    free(gb);
    bench_act_free(t);
    *t = y;
    return CLNET_OK;
}

/* ||got - ref|| / ||ref|| as a share of its limit, REL_MAX scaled by
 * kappa / KAPPA_WELL where kappa = ||r->m|| / ||ref|| exceeds KAPPA_WELL. */
double bench_normwise_share(const float *got, const bench_act *r)
{
    double num = 0, den = 0, mag = 0;
    for (size_t i = 0; i < r->n; i++) {
        double d = got[i] - r->a[i];
        num += d * d;
        den += r->a[i] * r->a[i];
        mag += r->m[i] * r->m[i];
    }
    if (!(den > 0))
        return num == 0 ? 0 : INFINITY;
    double kappa = sqrt(mag / den), limit = BENCH_REL_MAX * fmax(1.0, kappa / BENCH_KAPPA_WELL);
    double rel = sqrt(num / den) / limit;
    return isnan(rel) ? INFINITY : rel;
}

/* Marks the whole span [start, start + n) bad when its normwise error is
 * over the limit (a wrong output whose elements all stay within the loose
 * bound). */
void bench_normwise_check(bench_check *out, size_t start, const float *got, const bench_act *r,
                          double *share)
{
    double q = bench_normwise_share(got, r);
    *share = fmax(*share, q);
    if (!(q < 1.0) && !out->bad) {
        out->bad = r->n;
        out->first_bad = start;
        out->first_ref = r->a[0];
        out->first_got = got[0];
    }
}
