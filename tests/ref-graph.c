/* clnet tests: float64 reference of the graph-model primitives (see
 * ref-graph.h). */
#include <math.h>

#include "ref-graph.h"

void ref_merge_forward(int op, int n, size_t count, const double *const *x, double *y)
{
    for (size_t e = 0; e < count; e++) {
        double acc = x[0][e];
        for (int i = 1; i < n; i++)
            acc = op == 2 ? acc * x[i][e] : op == 1 ? acc - x[i][e] : acc + x[i][e];
        y[e] = acc;
    }
}

void ref_merge_backward(int op, int n, size_t count, const double *const *x, const double *dy,
                        double *const *dx)
{
    for (int i = 0; i < n; i++) {
        if (!dx[i])
            continue;
        for (size_t e = 0; e < count; e++) {
            double d = op == 1 && i == 1 ? -1.0 : 1.0;
            for (int j = 0; op == 2 && j < n; j++)
                if (j != i)
                    d *= x[j][e];
            dx[i][e] = dy[e] * d;
        }
    }
}

/* to_y != 0: x -> y; else y -> x. */
static void concat_copy(size_t outer, size_t after, int n, const int64_t *ext, double *const *x,
                        double *y, int to_y)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += (size_t)ext[i];
    size_t y_inner = total * after, off = 0;
    for (int i = 0; i < n; i++) {
        size_t inner = (size_t)ext[i] * after;
        for (size_t o = 0; o < outer && x[i]; o++)
            for (size_t j = 0; j < inner; j++) {
                if (to_y)
                    y[o * y_inner + off + j] = x[i][o * inner + j];
                else
                    x[i][o * inner + j] = y[o * y_inner + off + j];
            }
        off += inner;
    }
}

void ref_concat_forward(size_t outer, size_t after, int n, const int64_t *ext,
                        const double *const *x, double *y)
{
    concat_copy(outer, after, n, ext, (double *const *)x, y, 1);
}

void ref_concat_backward(size_t outer, size_t after, int n, const int64_t *ext, const double *dy,
                         double *const *dx)
{
    concat_copy(outer, after, n, ext, dx, (double *)dy, 0);
}

void ref_gap_forward(size_t planes, size_t hw, const double *x, double *y)
{
    for (size_t p = 0; p < planes; p++) {
        double s = 0;
        for (size_t k = 0; k < hw; k++)
            s += x[p * hw + k];
        y[p] = s / (double)hw;
    }
}

void ref_gap_backward(size_t planes, size_t hw, const double *dy, double *dx)
{
    for (size_t p = 0; p < planes; p++)
        for (size_t k = 0; k < hw; k++)
            dx[p * hw + k] = dy[p] / (double)hw;
}

void ref_sampling_forward(size_t n, const double *mean, const double *logvar, const double *eps,
                          double *z)
{
    for (size_t i = 0; i < n; i++)
        z[i] = mean[i] + exp(logvar[i] / 2) * eps[i];
}

void ref_sampling_backward(size_t n, const double *logvar, const double *eps, const double *dz,
                           double *dmean, double *dlogvar)
{
    for (size_t i = 0; i < n; i++) {
        if (dmean)
            dmean[i] = dz[i];
        if (dlogvar)
            dlogvar[i] = dz[i] * eps[i] * exp(logvar[i] / 2) / 2;
    }
}

void ref_kl_rows(size_t rows, size_t cols, const double *mean, const double *logvar, double *kl)
{
    for (size_t r = 0; r < rows; r++) {
        double s = 0;
        for (size_t j = 0; j < cols; j++) {
            double m = mean[r * cols + j], lv = logvar[r * cols + j];
            s += 1 + lv - m * m - exp(lv);
        }
        kl[r] = -0.5 * s;
    }
}

void ref_kl_backward(size_t n, double s, const double *mean, const double *logvar, double *dmean,
                     double *dlogvar)
{
    for (size_t i = 0; i < n; i++) {
        if (dmean)
            dmean[i] = s * mean[i];
        if (dlogvar)
            dlogvar[i] = s * (exp(logvar[i]) - 1) / 2;
    }
}

void ref_swish_forward(size_t n, const double *x, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] / (1 + exp(-x[i]));
}

void ref_swish_backward(size_t n, const double *x, const double *dy, double *dx)
{
    for (size_t i = 0; i < n; i++) {
        double s = 1 / (1 + exp(-x[i])), y = x[i] * s;
        dx[i] = dy[i] * (y + (1 - y) * s);
    }
}
