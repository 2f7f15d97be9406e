/* clnet tests: the float64 references of GEMM, 2-D convolution, pooling and
 * upsampling, by hand and against finite differences (suite `ref`,
 * tests/test-ref.c). */
#include "harness.h"
#include "ref.h"
#include "ref-check.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- GEMM -------------------------------------------------------------- */

START_TEST(test_gemm_hand)
{
    const double N = NAN, S = -777; /* unread padding; unwritten sentinel */
    /* A = [1 2 3; 4 5 6], B = [7 8; 9 10; 11 12], AB = [58 64; 139 154] */
    double a[8] = { 1, 2, 3, N, 4, 5, 6, N }, at[6] = { 1, 4, 2, 5, 3, 6 };
    double b[9] = { 7, 8, N, 9, 10, N, 11, 12, N }, bt[6] = { 7, 9, 11, 8, 10, 12 };
    double c[6] = { 1, 1, S, 1, 1, S };
    ref_gemm g = { .m = 2, .n = 2, .k = 3, .lda = 4, .ldb = 3, .ldc = 3, .alpha = 2, .beta = 0.5 };
    ref_gemm_forward(&g, a, b, c);
    expect_near("gemm alpha beta ld", 6, c, (const double[]){ 116.5, 128.5, S, 278.5, 308.5, S },
                0);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            double cc[4] = { N, N, N, N }; /* beta 0: NaN must not leak */
            ref_gemm h = { .trans_a = ta,
                           .trans_b = tb,
                           .m = 2,
                           .n = 2,
                           .k = 3,
                           .lda = ta ? 2 : 4,
                           .ldb = 3,
                           .ldc = 2,
                           .alpha = 1,
                           .beta = 0 };
            ref_gemm_forward(&h, ta ? at : a, tb ? bt : b, cc);
            expect_near("gemm trans", 4, cc, (const double[]){ 58, 64, 139, 154 }, 0);
        }
}
END_TEST

START_TEST(test_gemm_strided_batched_hand)
{
    const double S = -777;
    double a[16] = { 1, 2, 3, 0, 4, 5, 6, 0, 2, 4, 6, 0, 8, 10, 12, 0 };
    double b[6] = { 7, 8, 9, 10, 11, 12 };
    double c[10] = { S, S, S, S, S, S, S, S, S, S };
    /* Item 1 has A doubled; B is shared through stride 0; C has a gap. */
    ref_gemm g = { .m = 2,
                   .n = 2,
                   .k = 3,
                   .lda = 4,
                   .ldb = 2,
                   .ldc = 2,
                   .alpha = 1,
                   .beta = 0,
                   .batch = 2,
                   .stride_a = 8,
                   .stride_b = 0,
                   .stride_c = 5 };
    ref_gemm_strided_batched_forward(&g, a, b, c);
    expect_near("gemm batched", 10, c,
                (const double[]){ 58, 64, 139, 154, S, 116, 128, 278, 308, S }, 0);
}
END_TEST

typedef struct gemm_ctx {
    ref_gemm g;
    double *a, *b, *c0;
    size_t nc;
} gemm_ctx;

static void gemm_fwd(const void *v, double *y)
{
    const gemm_ctx *c = v;
    memcpy(y, c->c0, c->nc * sizeof *y);
    if (c->g.batch > 0)
        ref_gemm_strided_batched_forward(&c->g, c->a, c->b, y);
    else
        ref_gemm_forward(&c->g, c->a, c->b, y);
}

/* FD check of dA and dB for g (batch 0: plain; else strided batched).
 * Storage sizes include leading-dimension padding, whose gradient is 0. */
static void gemm_grad_case(ref_gemm g, uint64_t seed)
{
    int items = g.batch > 0 ? g.batch : 1;
    size_t na = (size_t)(g.trans_a ? g.k : g.m) * (size_t)g.lda;
    size_t nb = (size_t)(g.trans_b ? g.n : g.k) * (size_t)g.ldb;
    size_t nc = (size_t)g.m * (size_t)g.ldc;
    if (g.batch > 0) {
        na = g.stride_a * (size_t)items;
        nb = g.stride_b * (size_t)items;
        nc = g.stride_c * (size_t)items;
    }
    double *a = host_f64(na), *b = host_f64(nb), *c0 = host_f64(nc);
    double *dc = host_f64(nc), *da = host_f64(na), *db = host_f64(nb);
    uint64_t s = seed;
    ref_fill_uniform(a, na, -1, 1, &s);
    ref_fill_uniform(b, nb, -1, 1, &s);
    ref_fill_uniform(c0, nc, -1, 1, &s);
    ref_fill_uniform(dc, nc, -1, 1, &s);
    if (g.batch > 0)
        ref_gemm_strided_batched_backward(&g, a, b, dc, da, db);
    else
        ref_gemm_backward(&g, a, b, dc, da, db);
    char what[160];
    gemm_ctx c = { g, a, b, c0, nc };
    snprintf(what, sizeof what, "gemm ta%d tb%d m%d n%d k%d batch%d seed %llu", g.trans_a,
             g.trans_b, g.m, g.n, g.k, g.batch, (unsigned long long)seed);
    check_grad(what, gemm_fwd, &c, a, na, nc, dc, da);
    check_grad(what, gemm_fwd, &c, b, nb, nc, dc, db);
    free(a), free(b), free(c0), free(dc), free(da), free(db);
}

START_TEST(test_gemm_backward_matches_fd)
{
    static const int shapes[][3] = { { 1, 1, 1 }, { 3, 7, 1 }, { 2, 3, 5 }, { 7, 3, 3 } };
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int i = 0; i < 4; i++) {
                int m = shapes[i][0], n = shapes[i][1], k = shapes[i][2];
                ref_gemm g = { .trans_a = ta,
                               .trans_b = tb,
                               .m = m,
                               .n = n,
                               .k = k,
                               .lda = (ta ? m : k) + 2,
                               .ldb = (tb ? k : n) + 1,
                               .ldc = n + 2,
                               .alpha = 1.3,
                               .beta = 0.7 };
                gemm_grad_case(g, 100u + (uint64_t)(ta * 8 + tb * 4 + i));
            }
}
END_TEST

START_TEST(test_gemm_strided_batched_backward_matches_fd)
{
    ref_gemm g = { .trans_a = 1,
                   .trans_b = 0,
                   .m = 3,
                   .n = 2,
                   .k = 4,
                   .lda = 3,
                   .ldb = 2,
                   .ldc = 3,
                   .alpha = -0.8,
                   .beta = 1,
                   .batch = 2,
                   .stride_a = 14,
                   .stride_b = 9,
                   .stride_c = 10 };
    gemm_grad_case(g, 200);
}
END_TEST

/* ---- 2-D convolution --------------------------------------------------- */

static size_t conv_nx(const ref_conv2d *p)
{
    return (size_t)p->n * (size_t)p->c * (size_t)p->h * (size_t)p->w;
}

static size_t conv_nw(const ref_conv2d *p)
{
    return (size_t)p->k * (size_t)p->c * (size_t)p->r * (size_t)p->s;
}

static size_t conv_ny(const ref_conv2d *p)
{
    return (size_t)p->n * (size_t)p->k * (size_t)ref_conv2d_out_h(p) * (size_t)ref_conv2d_out_w(p);
}

static void conv_name(char *buf, size_t len, const char *dir, const ref_conv2d *p, uint64_t seed)
{
    snprintf(buf, len,
             "conv2d %s n%dc%dh%dw%d k%dr%ds%d st%dx%d "
             "pad%d,%d,%d,%d dil%dx%d seed %llu",
             dir, p->n, p->c, p->h, p->w, p->k, p->r, p->s, p->stride_h, p->stride_w, p->pad_t,
             p->pad_b, p->pad_l, p->pad_r, p->dil_h, p->dil_w, (unsigned long long)seed);
}

/* Awkward tiny shapes: 1x1, batch 2, non-square kernels, stride 2,
 * asymmetric padding, dilation 2. */
static const ref_conv2d conv_shapes[] = {
    /* n c h w   k r s   sh sw pt pb pl pr  dh dw */
    { 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1 },
    { 2, 3, 7, 7, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 },
    { 1, 2, 7, 5, 3, 3, 2, 2, 2, 1, 0, 0, 1, 1, 1 },
    { 2, 1, 7, 7, 1, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2 },
    { 1, 3, 3, 7, 2, 1, 3, 2, 1, 0, 1, 1, 1, 1, 2 },
};
#define N_CONV_SHAPES (sizeof conv_shapes / sizeof conv_shapes[0])

START_TEST(test_conv2d_forward_hand)
{
    double x16[16], x9[9], y[9];
    for (int i = 0; i < 16; i++)
        x16[i] = i + 1;
    for (int i = 0; i < 9; i++)
        x9[i] = i + 1;
    /* 4x4 input 1..16, 2x2 kernel [1 2; 3 4]: y(i,j) = 40i + 10j + 44. */
    ref_conv2d p = { 1, 1, 4, 4, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1, 1 };
    ref_conv2d_forward(&p, x16, (const double[]){ 1, 2, 3, 4 }, NULL, y);
    expect_near("conv plain", 9, y, (const double[]){ 44, 54, 64, 84, 94, 104, 124, 134, 144 }, 0);
    /* 3x3 input 1..9, 2x2 ones, stride 2, pad 1: sums of corner blocks. */
    ref_conv2d q = { 1, 1, 3, 3, 1, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1 };
    ref_conv2d_forward(&q, x9, (const double[]){ 1, 1, 1, 1 }, NULL, y);
    expect_near("conv stride pad", 4, y, (const double[]){ 1, 5, 11, 28 }, 0);
    /* Dilation 2: the 2x2 kernel touches the corners 1, 3, 7, 9. */
    ref_conv2d d = { 1, 1, 3, 3, 1, 2, 2, 1, 1, 0, 0, 0, 0, 2, 2 };
    ref_conv2d_forward(&d, x9, (const double[]){ 1, 2, 3, 4 }, NULL, y);
    expect_near("conv dilation", 1, y, (const double[]){ 64 }, 0);
    /* 2 -> 2 channels, 1x1 kernels [1 10; -1 0], bias [0.5 2]. */
    double x2[8] = { 1, 2, 3, 4, 1, 1, 1, 1 }, y2[8];
    ref_conv2d m = { 1, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1 };
    ref_conv2d_forward(&m, x2, (const double[]){ 1, 10, -1, 0 }, (const double[]){ 0.5, 2 }, y2);
    expect_near("conv channels bias", 8, y2,
                (const double[]){ 11.5, 12.5, 13.5, 14.5, 1, 0, -1, -2 }, 0);
}
END_TEST

/* im2col of image n: cols (c*r*s, oh*ow), zeros for padding taps. */
static void im2col(const ref_conv2d *p, const double *x, int n, double *cols)
{
    int oh = ref_conv2d_out_h(p), ow = ref_conv2d_out_w(p);
    size_t row = 0;
    for (int c = 0; c < p->c; c++)
        for (int u = 0; u < p->r; u++)
            for (int v = 0; v < p->s; v++, row++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++) {
                        int iy = i * p->stride_h - p->pad_t + u * p->dil_h;
                        int ix = j * p->stride_w - p->pad_l + v * p->dil_w;
                        int in = iy >= 0 && iy < p->h && ix >= 0 && ix < p->w;
                        size_t e =
                            (((size_t)n * (size_t)p->c + (size_t)c) * (size_t)p->h + (size_t)iy) *
                                (size_t)p->w +
                            (size_t)ix;
                        cols[row * (size_t)(oh * ow) + (size_t)(i * ow + j)] = in ? x[e] : 0.0;
                    }
}

START_TEST(test_conv2d_forward_equals_im2col_gemm_exactly)
{
    /* Exact mode: small integers, every sum exact, so equality is required
     * between two independent formulations. */
    for (size_t t = 0; t < N_CONV_SHAPES; t++) {
        const ref_conv2d *p = &conv_shapes[t];
        int ohw = ref_conv2d_out_h(p) * ref_conv2d_out_w(p);
        int crs = p->c * p->r * p->s;
        double *x = host_f64(conv_nx(p)), *w = host_f64(conv_nw(p));
        double *y = host_f64(conv_ny(p)), *y2 = host_f64(conv_ny(p));
        double *cols = host_f64((size_t)crs * (size_t)ohw), bias[3];
        uint64_t s = 300 + t;
        ref_fill_int(x, conv_nx(p), -8, 8, &s);
        ref_fill_int(w, conv_nw(p), -8, 8, &s);
        ref_fill_int(bias, 3, -8, 8, &s);
        ref_conv2d_forward(p, x, w, bias, y);
        ref_gemm g = {
            .m = p->k, .n = ohw, .k = crs, .lda = crs, .ldb = ohw, .ldc = ohw, .alpha = 1, .beta = 0
        };
        for (int n = 0; n < p->n; n++) {
            im2col(p, x, n, cols);
            ref_gemm_forward(&g, w, cols, y2 + (size_t)n * (size_t)p->k * (size_t)ohw);
        }
        ref_bias_forward(p->n, p->k, ohw, y2, bias, y2);
        char what[200];
        conv_name(what, sizeof what, "forward vs im2col", p, 300 + t);
        expect_near(what, conv_ny(p), y, y2, 0);
        free(x), free(w), free(y), free(y2), free(cols);
    }
}
END_TEST

typedef struct conv_ctx {
    ref_conv2d p;
    double *x, *w, *b;
} conv_ctx;

static void conv_fwd(const void *v, double *y)
{
    const conv_ctx *c = v;
    ref_conv2d_forward(&c->p, c->x, c->w, c->b, y);
}

static void conv_transpose_fwd(const void *v, double *y)
{
    const conv_ctx *c = v;
    ref_conv2d_transpose_forward(&c->p, c->x, c->w, c->b, y);
}

/* The three convolution backwards of shape p against FD. */
static void conv_grad_case(const ref_conv2d *p, uint64_t seed)
{
    size_t nx = conv_nx(p), nw = conv_nw(p), ny = conv_ny(p);
    double *x = host_f64(nx), *w = host_f64(nw), *b = host_f64((size_t)p->k);
    double *dy = host_f64(ny), *dx = host_f64(nx), *dw = host_f64(nw);
    double *db = host_f64((size_t)p->k);
    uint64_t s = seed;
    ref_fill_uniform(x, nx, -1, 1, &s);
    ref_fill_uniform(w, nw, -1, 1, &s);
    ref_fill_uniform(b, (size_t)p->k, -1, 1, &s);
    ref_fill_uniform(dy, ny, -1, 1, &s);
    ref_conv2d_backward_data(p, w, dy, dx);
    ref_conv2d_backward_filter(p, x, dy, dw);
    ref_conv2d_backward_bias(p, dy, db);
    conv_ctx c = { *p, x, w, b };
    char what[200];
    conv_name(what, sizeof what, "backward_data", p, seed);
    check_grad(what, conv_fwd, &c, x, nx, ny, dy, dx);
    conv_name(what, sizeof what, "backward_filter", p, seed);
    check_grad(what, conv_fwd, &c, w, nw, ny, dy, dw);
    conv_name(what, sizeof what, "backward_bias", p, seed);
    check_grad(what, conv_fwd, &c, b, (size_t)p->k, ny, dy, db);
    free(x), free(w), free(b), free(dy), free(dx), free(dw), free(db);
}

START_TEST(test_conv2d_backward_matches_fd)
{
    for (size_t t = 0; t < N_CONV_SHAPES; t++)
        conv_grad_case(&conv_shapes[t], 400 + t);
}
END_TEST

/* The transposed convolution's input is p's output: its gradients are the
 * convolution forward (data) and backward_filter with roles swapped. */
static void conv_transpose_grad_case(const ref_conv2d *p, uint64_t seed)
{
    size_t nin = conv_ny(p), nw = conv_nw(p), nout = conv_nx(p);
    size_t nb = (size_t)p->c;
    double *x = host_f64(nin), *w = host_f64(nw), *b = host_f64(nb);
    double *dy = host_f64(nout), *dx = host_f64(nin), *dw = host_f64(nw);
    double *db = host_f64(nb);
    uint64_t s = seed;
    ref_fill_uniform(x, nin, -1, 1, &s);
    ref_fill_uniform(w, nw, -1, 1, &s);
    ref_fill_uniform(b, nb, -1, 1, &s);
    ref_fill_uniform(dy, nout, -1, 1, &s);
    ref_conv2d_forward(p, dy, w, NULL, dx);
    ref_conv2d_backward_filter(p, dy, x, dw);
    ref_bias_backward(p->n, p->c, p->h * p->w, dy, db);
    conv_ctx c = { *p, x, w, b };
    char what[200];
    conv_name(what, sizeof what, "transpose d(input)", p, seed);
    check_grad(what, conv_transpose_fwd, &c, x, nin, nout, dy, dx);
    conv_name(what, sizeof what, "transpose d(weight)", p, seed);
    check_grad(what, conv_transpose_fwd, &c, w, nw, nout, dy, dw);
    conv_name(what, sizeof what, "transpose d(bias)", p, seed);
    check_grad(what, conv_transpose_fwd, &c, b, nb, nout, dy, db);
    free(x), free(w), free(b), free(dy), free(dx), free(dw), free(db);
}

START_TEST(test_conv2d_transpose_backward_matches_fd)
{
    for (size_t t = 0; t < N_CONV_SHAPES; t++)
        conv_transpose_grad_case(&conv_shapes[t], 500 + t);
}
END_TEST

START_TEST(test_conv2d_transpose_hand)
{
    /* 2x1 input -> 4x2 output, 2x2 kernel, stride 2: each input pixel
     * stamps the kernel times itself into its own 2x2 block, plus bias. */
    ref_conv2d p = { 1, 1, 4, 2, 1, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1 };
    double y[8];
    ref_conv2d_transpose_forward(&p, (const double[]){ 1, -2 }, (const double[]){ 1, 2, 3, 4 },
                                 (const double[]){ 0.5 }, y);
    expect_near("conv transpose", 8, y,
                (const double[]){ 1.5, 2.5, 3.5, 4.5, -1.5, -3.5, -5.5, -7.5 }, 0);
}
END_TEST

/* ---- 2-D pooling ------------------------------------------------------- */

static const ref_pool2d pool_shapes[] = {
    /* n c h w   kh kw sh sw  pt pb pl pr */
    { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 }, { 2, 3, 7, 7, 2, 2, 2, 2, 0, 0, 0, 0, 0 },
    { 1, 2, 7, 5, 3, 2, 2, 1, 1, 1, 0, 1, 0 }, { 2, 1, 6, 7, 3, 3, 2, 2, 1, 1, 1, 1, 0 },
    { 1, 1, 3, 7, 1, 3, 1, 3, 0, 0, 1, 1, 0 },
};
#define N_POOL_SHAPES (sizeof pool_shapes / sizeof pool_shapes[0])

START_TEST(test_pool2d_max_hand)
{
    double x[16] = { 1, 5, 2, 0, 3, 4, 8, 7, 9, 1, 0, 2, 6, 6, 3, 1 }, y[4];
    double dx[16];
    ref_pool2d p = { 1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 0, 0, 0 };
    ref_pool2d_max_forward(&p, x, y);
    expect_near("max pool", 4, y, (const double[]){ 5, 8, 9, 3 }, 0);
    ref_pool2d_max_backward(&p, x, (const double[]){ 1, 2, 3, 4 }, dx);
    expect_near("max pool backward", 16, dx,
                (const double[]){ 0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0, 0, 4, 0 }, 0);
}
END_TEST

START_TEST(test_pool2d_max_ties_go_to_first_in_scan_order)
{
    /* All equal, 2x2 windows at stride 1 on 3x3: each window's top-left. */
    double ones[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 }, dx[9];
    ref_pool2d p = { 1, 1, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 0 };
    ref_pool2d_max_backward(&p, ones, (const double[]){ 1, 1, 1, 1 }, dx);
    expect_near("max ties", 9, dx, (const double[]){ 1, 1, 0, 1, 1, 0, 0, 0, 0 }, 0);
    /* Tie between the second and third elements: the second wins. */
    ref_pool2d q = { 1, 1, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0 };
    ref_pool2d_max_backward(&q, (const double[]){ 0, 3, 3, 0 }, (const double[]){ 1 }, dx);
    expect_near("max ties", 4, dx, (const double[]){ 0, 1, 0, 0 }, 0);
    /* NaN propagates and takes the gradient; the first NaN wins. */
    double xn[4] = { 1, NAN, 5, NAN }, y[1];
    ref_pool2d_max_forward(&q, xn, y);
    ck_assert(isnan(y[0]));
    ref_pool2d_max_backward(&q, xn, (const double[]){ 1 }, dx);
    expect_near("max nan", 4, dx, (const double[]){ 0, 1, 0, 0 }, 0);
}
END_TEST

START_TEST(test_pool2d_avg_hand)
{
    double x[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, y[4], dx[9];
    ref_pool2d p = { 1, 1, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1 };
    ref_pool2d_avg_forward(&p, x, y); /* window sums 1, 5, 11, 28 */
    expect_near("avg incl pad", 4, y, (const double[]){ 0.25, 1.25, 2.75, 7 }, 1e-15);
    p.count_include_pad = 0; /* in-image counts 1, 2, 2, 4 */
    ref_pool2d_avg_forward(&p, x, y);
    expect_near("avg excl pad", 4, y, (const double[]){ 1, 2.5, 5.5, 7 }, 1e-15);
    ref_pool2d_avg_backward(&p, (const double[]){ 1, 2, 2, 4 }, dx);
    expect_near("avg backward", 9, dx, (const double[]){ 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 1e-15);
    /* Non-square 1x3 window on 2x3, padded left and right. */
    double x6[6] = { 1, 2, 3, 4, 5, 6 }, y6[6];
    ref_pool2d q = { 1, 1, 2, 3, 1, 3, 1, 1, 0, 0, 1, 1, 1 };
    ref_pool2d_avg_forward(&q, x6, y6);
    expect_near("avg 1x3 incl pad", 6, y6, (const double[]){ 1, 2, 5.0 / 3, 3, 5, 11.0 / 3 },
                1e-15);
    q.count_include_pad = 0;
    ref_pool2d_avg_forward(&q, x6, y6);
    expect_near("avg 1x3 excl pad", 6, y6, (const double[]){ 1.5, 2, 2.5, 4.5, 5, 5.5 }, 1e-15);
}
END_TEST

typedef struct pool_ctx {
    ref_pool2d p;
    double *x;
    int max;
} pool_ctx;

static void pool_fwd(const void *v, double *y)
{
    const pool_ctx *c = v;
    if (c->max)
        ref_pool2d_max_forward(&c->p, c->x, y);
    else
        ref_pool2d_avg_forward(&c->p, c->x, y);
}

static void pool_grad_case(const ref_pool2d *p, int max, uint64_t seed)
{
    size_t nx = (size_t)p->n * (size_t)p->c * (size_t)p->h * (size_t)p->w;
    size_t ny =
        (size_t)p->n * (size_t)p->c * (size_t)ref_pool2d_out_h(p) * (size_t)ref_pool2d_out_w(p);
    double *x = host_f64(nx), *dy = host_f64(ny), *dx = host_f64(nx);
    uint64_t s = seed;
    fill_distinct(x, nx, &s);
    ref_fill_uniform(dy, ny, -1, 1, &s);
    if (max)
        ref_pool2d_max_backward(p, x, dy, dx);
    else
        ref_pool2d_avg_backward(p, dy, dx);
    pool_ctx c = { *p, x, max };
    char what[200];
    snprintf(what, sizeof what,
             "pool2d %s backward n%dc%dh%dw%d k%dx%d "
             "st%dx%d pad%d,%d,%d,%d incl%d seed %llu",
             max ? "max" : "avg", p->n, p->c, p->h, p->w, p->kh, p->kw, p->stride_h, p->stride_w,
             p->pad_t, p->pad_b, p->pad_l, p->pad_r, p->count_include_pad,
             (unsigned long long)seed);
    check_grad(what, pool_fwd, &c, x, nx, ny, dy, dx);
    free(x), free(dy), free(dx);
}

START_TEST(test_pool2d_max_backward_matches_fd)
{
    for (size_t t = 0; t < N_POOL_SHAPES; t++)
        pool_grad_case(&pool_shapes[t], 1, 600 + t);
}
END_TEST

START_TEST(test_pool2d_avg_backward_matches_fd)
{
    for (size_t t = 0; t < N_POOL_SHAPES; t++)
        for (int incl = 0; incl < 2; incl++) {
            ref_pool2d p = pool_shapes[t];
            p.count_include_pad = incl;
            pool_grad_case(&p, 0, 700 + 2 * t + (uint64_t)incl);
        }
}
END_TEST

/* ---- nearest upsampling ------------------------------------------------ */

START_TEST(test_upsample2d_nearest_hand)
{
    double y[24], dx[4], ones[24];
    ref_upsample2d_nearest_forward(1, 1, 2, 2, 2, 3, (const double[]){ 1, 2, 3, 4 }, y);
    expect_near("upsample", 24, y, (const double[]){ 1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,
                                                     3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4 },
                0);
    for (int i = 0; i < 24; i++)
        ones[i] = i < 12 ? 1 : 0.5;
    ref_upsample2d_nearest_backward(1, 1, 2, 2, 2, 3, ones, dx);
    expect_near("upsample backward", 4, dx, (const double[]){ 6, 6, 3, 3 }, 0);
}
END_TEST

typedef struct up_ctx {
    int n, c, h, w, sh, sw;
    double *x;
} up_ctx;

static void up_fwd(const void *v, double *y)
{
    const up_ctx *u = v;
    ref_upsample2d_nearest_forward(u->n, u->c, u->h, u->w, u->sh, u->sw, u->x, y);
}

START_TEST(test_upsample2d_nearest_backward_matches_fd)
{
    static const int shapes[][6] = { { 1, 1, 1, 1, 1, 1 },
                                     { 2, 3, 3, 7, 2, 3 },
                                     { 1, 2, 7, 3, 3, 1 } };
    for (int t = 0; t < 3; t++) {
        const int *d = shapes[t];
        size_t nx = (size_t)(d[0] * d[1] * d[2] * d[3]);
        size_t ny = nx * (size_t)(d[4] * d[5]);
        double *x = host_f64(nx), *dy = host_f64(ny), *dx = host_f64(nx);
        uint64_t s = 800 + (uint64_t)t;
        ref_fill_uniform(x, nx, -1, 1, &s);
        ref_fill_uniform(dy, ny, -1, 1, &s);
        ref_upsample2d_nearest_backward(d[0], d[1], d[2], d[3], d[4], d[5], dy, dx);
        up_ctx c = { d[0], d[1], d[2], d[3], d[4], d[5], x };
        char what[120];
        snprintf(what, sizeof what, "upsample backward n%dc%dh%dw%d x%dx%d", d[0], d[1], d[2], d[3],
                 d[4], d[5]);
        check_grad(what, up_fwd, &c, x, nx, ny, dy, dx);
        free(x), free(dy), free(dx);
    }
}
END_TEST

/* ---- negative controls ------------------------------------------------- */

START_TEST(test_gradcheck_catches_wrong_gradients)
{
    const ref_conv2d *p = &conv_shapes[1];
    size_t nx = conv_nx(p), nw = conv_nw(p), ny = conv_ny(p);
    double *x = host_f64(nx), *w = host_f64(nw), *dy = host_f64(ny);
    double *dx = host_f64(nx), *fd = host_f64(nx), *zero = host_f64(nx);
    uint64_t s = 1600;
    ref_fill_uniform(x, nx, -1, 1, &s);
    ref_fill_uniform(w, nw, -1, 1, &s);
    ref_fill_uniform(dy, ny, -1, 1, &s);
    ref_conv2d_backward_data(p, w, dy, dx);
    conv_ctx c = { *p, x, w, NULL };
    fd_grad(conv_fwd, &c, x, nx, ny, dy, fd);
    fprintf(stderr, "negative controls (the mismatches below are expected):\n");
    ck_assert(grad_matches("control: correct", nx, fd, dx));
    double keep = dx[17];
    dx[17] += 2.0 * (FD_ATOL + FD_RTOL * fabs(fd[17])); /* one element */
    ck_assert(!grad_matches("control: one element off", nx, fd, dx));
    dx[17] = keep + 1e-4 * fabs(keep); /* inside the per-element band */
    ck_assert(!grad_matches("control: 1e-4 relative", nx, fd, dx));
    dx[17] = NAN;
    ck_assert(!grad_matches("control: NaN", nx, fd, dx));
    dx[17] = keep;
    ck_assert(!grad_matches("control: all zero", nx, fd, zero));
    ck_assert(!grad_matches("control: both zero", nx, zero, zero));
    free(x), free(w), free(dy), free(dx), free(fd), free(zero);
}
END_TEST

/* ---- test cases ------------------------------------------------------ */

void ref_add_spatial_tests(Suite *s)
{
    TCase *tc;
    tc = ref_tcase(s, "gemm");
    tcase_add_test(tc, test_gemm_hand);
    tcase_add_test(tc, test_gemm_strided_batched_hand);
    tcase_add_test(tc, test_gemm_backward_matches_fd);
    tcase_add_test(tc, test_gemm_strided_batched_backward_matches_fd);
    tc = ref_tcase(s, "conv2d");
    tcase_add_test(tc, test_conv2d_forward_hand);
    tcase_add_test(tc, test_conv2d_forward_equals_im2col_gemm_exactly);
    tcase_add_test(tc, test_conv2d_backward_matches_fd);
    tcase_add_test(tc, test_conv2d_transpose_hand);
    tcase_add_test(tc, test_conv2d_transpose_backward_matches_fd);
    tc = ref_tcase(s, "pool2d");
    tcase_add_test(tc, test_pool2d_max_hand);
    tcase_add_test(tc, test_pool2d_max_ties_go_to_first_in_scan_order);
    tcase_add_test(tc, test_pool2d_avg_hand);
    tcase_add_test(tc, test_pool2d_max_backward_matches_fd);
    tcase_add_test(tc, test_pool2d_avg_backward_matches_fd);
    tc = ref_tcase(s, "upsample2d");
    tcase_add_test(tc, test_upsample2d_nearest_hand);
    tcase_add_test(tc, test_upsample2d_nearest_backward_matches_fd);
}

/* The negative control of this file, in the suite's "gradcheck" case. */
void ref_add_spatial_gradcheck(TCase *tc)
{
    tcase_add_test(tc, test_gradcheck_catches_wrong_gradients);
}
