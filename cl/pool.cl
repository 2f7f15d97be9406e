/* clnet — 2-D max and average pooling and nearest upsampling, NCHW, float32.
 * Every shape is a kernel argument. Each work-item produces a run of `run`
 * consecutive outputs of one output row (run = 1: one output per work-item;
 * run = the row length: a whole row). Backward passes are gathers: only the
 * work-item that owns a gradient element writes it, adding its terms in a
 * fixed order, so no atomics and the same bits on every run. */
#pragma OPENCL FP_CONTRACT OFF

/* ---- Where a work-item writes --------------------------------------------
 * The output is `planes` planes of `rows` x `cols`; its rows are cut into
 * runs of `run` columns. Work-item g takes run (g % runs) of row g / runs.
 * Returns 0 for the excess work-items of a rounded-up launch. */
typedef struct run_pos {
    ulong plane;         /* n * C + c */
    int row, col0, col1; /* columns [col0, col1) of row `row` */
} run_pos;

static int run_locate(ulong planes, int rows, int cols, int run, run_pos *p)
{
    ulong runs = ((ulong)cols + (ulong)run - 1) / (ulong)run;
    ulong g = get_global_id(0);
    if (g >= planes * (ulong)rows * runs)
        return 0;
    ulong row = g / runs, col0 = (g % runs) * (ulong)run;
    p->plane = row / (ulong)rows;
    p->row = (int)(row % (ulong)rows);
    p->col0 = (int)col0;
    p->col1 = (int)min(col0 + (ulong)run, (ulong)cols);
    return 1;
}

/* ---- Windows ---------------------------------------------------------------
 * Output (i, j) pools input rows i*sh - pt .. + kh-1 and columns j*sw - pl ..
 * + kw-1, clipped to the image (padding is never read). Host checks make
 * every clipped window non-empty. */

/* First maximum of the clipped window with corner (iy0, ix0) in plane xp, in
 * scan order (row by row, left to right), as tests/ref.c decides it: a later
 * element replaces the best only when strictly greater, or when it is NaN and
 * the best is not. So ties go to the first (-0 and +0 too) and the first NaN
 * wins. The common case runs branch-free with a strict > (a NaN never
 * replaces, and is only noted); a window with a NaN is scanned again for its
 * first NaN. Returns the index in the plane; *val receives the value. */
static int window_argmax(__global const float *xp, int h, int w, int iy0, int ix0, int kh, int kw,
                         float *val)
{
    int y0 = max(iy0, 0), y1 = min(iy0 + kh, h);
    int x0 = max(ix0, 0), x1 = min(ix0 + kw, w);
    int at = y0 * w + x0, nan = 0;
    float best = xp[at];
    for (int yy = y0; yy < y1; yy++)
        for (int xx = x0; xx < x1; xx++) {
            float v = xp[yy * w + xx];
            at = v > best ? yy * w + xx : at;
            best = v > best ? v : best;
            nan |= isnan(v);
        }
    for (int yy = y0; nan && yy < y1; yy++)
        for (int xx = x0; nan && xx < x1; xx++)
            if (isnan(xp[yy * w + xx])) {
                at = yy * w + xx;
                best = xp[at];
                nan = 0;
            }
    *val = best;
    return at;
}

/* The divisor of the window with corner (iy0, ix0): kh * kw when padding
 * counts, else the number of image elements it covers. */
static float window_divisor(int h, int w, int iy0, int ix0, int kh, int kw, int include_pad)
{
    if (include_pad)
        return (float)(kh * kw);
    int rows = min(iy0 + kh, h) - max(iy0, 0);
    int cols = min(ix0 + kw, w) - max(ix0, 0);
    return (float)(rows * cols);
}

/* Output windows [*lo, *hi] along one axis that contain input coordinate t:
 * o*s - pad <= t <= o*s - pad + k - 1, and 0 <= o < n. Empty when lo > hi. */
static void windows_covering(int t, int k, int s, int pad, int n, int *lo, int *hi)
{
    int first = t + pad - k + 1;
    *lo = first <= 0 ? 0 : (first + s - 1) / s;
    *hi = min((t + pad) / s, n - 1);
}

/* The windows that reach columns [col0, col1) of input row `row`: output
 * rows [*ilo, *ihi] and columns [*jlo, *jhi]. */
static void run_windows(const run_pos *p, int kh, int kw, int sh, int sw, int pt, int pl, int oh,
                        int ow, int *ilo, int *ihi, int *jlo, int *jhi)
{
    int unused_lo, unused_hi;
    windows_covering(p->row, kh, sh, pt, oh, ilo, ihi);
    windows_covering(p->col0, kw, sw, pl, ow, jlo, &unused_hi);
    windows_covering(p->col1 - 1, kw, sw, pl, ow, &unused_lo, jhi);
}

/* ---- Max pooling -------------------------------------------------------- */

/* One run of max-pooling outputs of x (planes, h, w) into (planes, oh, ow):
 * the maxima into y at yo and/or their plane indices (row * w + column)
 * into idx at io; either pointer may be null. */
static void max_row(__global const float *x, ulong xo, ulong planes, int h, int w, int oh, int ow,
                    int kh, int kw, int sh, int sw, int pt, int pl, int run, __global float *y,
                    ulong yo, __global int *idx, ulong io)
{
    run_pos p;
    if (!run_locate(planes, oh, ow, run, &p))
        return;
    __global const float *xp = x + xo + p.plane * (ulong)h * (ulong)w;
    ulong row = (p.plane * (ulong)oh + (ulong)p.row) * (ulong)ow;
    int iy0 = p.row * sh - pt;
    for (int j = p.col0; j < p.col1; j++) {
        float best;
        int at = window_argmax(xp, h, w, iy0, j * sw - pl, kh, kw, &best);
        if (y)
            y[yo + row + j] = best;
        if (idx)
            idx[io + row + j] = at;
    }
}

/* The maxima into y and/or the plane index (row * w + column) of each
 * window's first maximum into idx (has_y, has_idx: the other buffer is not
 * touched): the forward, the backward's argmax pass, or both at once for
 * training. */
__kernel void pool2d_max_forward(__global const float *x, ulong xo, __global float *y, ulong yo,
                                 __global int *idx, ulong io, int has_y, int has_idx, ulong planes,
                                 int h, int w, int oh, int ow, int kh, int kw, int sh, int sw,
                                 int pt, int pl, int run)
{
    max_row(x, xo, planes, h, w, oh, ow, kh, kw, sh, sw, pt, pl, run, has_y ? y : 0, yo,
            has_idx ? idx : 0, io);
}

/* ---- 2x2 windows, stride 2, inside the image ----------------------------
 * The common pool (the reference CNN's): every window lies inside the image,
 * no two overlap, and an input element belongs to at most one window. One
 * work-item per output row, four windows at a time in float4 lanes. Same
 * results as the general kernels, bit for bit. */

/* Lanes where v replaces the running maximum: strictly greater, or a NaN
 * when the best so far is not one (the first maximum or first NaN wins). */
#define MAX2_STEP(v, off)                                                                          \
    do {                                                                                           \
        int4 take_ = isgreater(v, best) | (isnan(v) & ~isnan(best));                               \
        best = select(best, v, take_);                                                             \
        at = select(at, (int4)(off), take_);                                                       \
    } while (0)

/* y and/or idx (either may be null) of output row g % oh of plane g / oh. */
static void max2x2_row(__global const float *x, ulong xo, ulong planes, int h, int w, int oh,
                       int ow, __global float *y, ulong yo, __global int *idx, ulong io)
{
    ulong g = get_global_id(0);
    if (g >= planes * (ulong)oh)
        return;
    ulong plane = g / (ulong)oh;
    int i = (int)(g % (ulong)oh), base = 2 * i * w;
    __global const float *xp = x + xo + plane * (ulong)h * (ulong)w;
    __global const float *r0 = xp + base, *r1 = r0 + w;
    ulong o = g * (ulong)ow;
    int j = 0;
    for (; j + 4 <= ow; j += 4) {
        float8 top = vload8(0, r0 + 2 * j), bot = vload8(0, r1 + 2 * j);
        float4 best = top.even;
        int4 at = (int4)(0);
        MAX2_STEP(top.odd, 1);
        MAX2_STEP(bot.even, w);
        MAX2_STEP(bot.odd, w + 1);
        if (y)
            vstore4(best, 0, y + yo + o + j);
        if (idx)
            vstore4(at + base + 2 * (j + (int4)(0, 1, 2, 3)), 0, idx + io + o + j);
    }
    for (; j < ow; j++) {
        float best;
        int at = window_argmax(xp, h, w, 2 * i, 2 * j, 2, 2, &best);
        if (y)
            y[yo + o + j] = best;
        if (idx)
            idx[io + o + j] = at;
    }
}

__kernel void pool2d_max2x2_forward(__global const float *x, ulong xo, __global float *y, ulong yo,
                                    __global int *idx, ulong io, int has_y, int has_idx,
                                    ulong planes, int h, int w, int oh, int ow)
{
    max2x2_row(x, xo, planes, h, w, oh, ow, has_y ? y : 0, yo, has_idx ? idx : 0, io);
}

/* dx rows 2i and 2i + 1 (and the rows and columns no window covers) from
 * output row i: each element is 0 + dy of the window whose index names it
 * (0 + dy, as the general kernel's 0 += dy, so -0 becomes +0), else 0. */
__kernel void pool2d_max2x2_backward(__global const int *idx, ulong io, __global const float *dy,
                                     ulong dyo, __global float *dx, ulong dxo, ulong planes, int h,
                                     int w, int oh, int ow)
{
    ulong g = get_global_id(0);
    if (g >= planes * (ulong)oh)
        return;
    ulong plane = g / (ulong)oh;
    int i = (int)(g % (ulong)oh), base = 2 * i * w;
    __global float *dp = dx + dxo + plane * (ulong)h * (ulong)w;
    __global float *d0 = dp + base, *d1 = d0 + w;
    __global const int *ip = idx + io + g * (ulong)ow;
    __global const float *gp = dy + dyo + g * (ulong)ow;
    const float4 z = (float4)(0.0f);
    int j = 0;
    for (; j + 4 <= ow; j += 4) {
        int4 rel = vload4(0, ip + j) - (base + 2 * (j + (int4)(0, 1, 2, 3)));
        float4 v = 0.0f + vload4(0, gp + j);
        float4 tl = select(z, v, rel == 0), tr = select(z, v, rel == 1);
        float4 bl = select(z, v, rel == w), br = select(z, v, rel == w + 1);
        vstore8(shuffle2(tl, tr, (uint8)(0, 4, 1, 5, 2, 6, 3, 7)), 0, d0 + 2 * j);
        vstore8(shuffle2(bl, br, (uint8)(0, 4, 1, 5, 2, 6, 3, 7)), 0, d1 + 2 * j);
    }
    for (; j < ow; j++) {
        int rel = ip[j] - (base + 2 * j);
        float v = 0.0f + gp[j];
        d0[2 * j] = rel == 0 ? v : 0.0f;
        d0[2 * j + 1] = rel == 1 ? v : 0.0f;
        d1[2 * j] = rel == w ? v : 0.0f;
        d1[2 * j + 1] = rel == w + 1 ? v : 0.0f;
    }
    for (int c = 2 * ow; c < w; c++)
        d0[c] = d1[c] = 0.0f;
    for (int r = 2 * oh; i == oh - 1 && r < h; r++)
        for (int c = 0; c < w; c++)
            dp[r * w + c] = 0.0f;
}

/* dx (planes, h, w): each element sums the dy of every window whose first
 * maximum (idx, from pool2d_max_forward or pool2d_max2x2_forward) it is, in row-major window order;
 * 0 if none. The work-item that owns a run of a dx row zeroes it, then visits the windows that
 * reach the run in row-major order and adds each one's dy where its maximum lies inside the run:
 * every element gets its terms, in that order, from its one owner. With run = 1 this is the plain
 * per-element gather; over a whole row each window is read once rather than
 * once per element it covers (2-3x faster on pocl). */
__kernel void pool2d_max_backward(__global const int *idx, ulong io, __global const float *dy,
                                  ulong dyo, __global float *dx, ulong dxo, ulong planes, int h,
                                  int w, int oh, int ow, int kh, int kw, int sh, int sw, int pt,
                                  int pl, int run)
{
    run_pos p;
    if (!run_locate(planes, h, w, run, &p))
        return;
    ulong out_plane = p.plane * (ulong)oh * (ulong)ow;
    __global const int *ip = idx + io + out_plane;
    __global const float *dyp = dy + dyo + out_plane;
    __global float *dxr = dx + dxo + (p.plane * (ulong)h + (ulong)p.row) * (ulong)w;
    for (int ix = p.col0; ix < p.col1; ix++)
        dxr[ix] = 0.0f;
    int ilo, ihi, jlo, jhi;
    run_windows(&p, kh, kw, sh, sw, pt, pl, oh, ow, &ilo, &ihi, &jlo, &jhi);
    int base = p.row * w, lo = base + p.col0, hi = base + p.col1;
    for (int i = ilo; i <= ihi; i++)
        for (int j = jlo; j <= jhi; j++) {
            int at = ip[i * ow + j];
            if (at >= lo && at < hi)
                dxr[at - base] += dyp[i * ow + j];
        }
}

/* ---- Average pooling ------------------------------------------------------ */

/* y = (sum of the window, row-major, in float) / divisor. */
__kernel void pool2d_avg_forward(__global const float *x, ulong xo, __global float *y, ulong yo,
                                 ulong planes, int h, int w, int oh, int ow, int kh, int kw, int sh,
                                 int sw, int pt, int pl, int include_pad, int run)
{
    run_pos p;
    if (!run_locate(planes, oh, ow, run, &p))
        return;
    __global const float *xp = x + xo + p.plane * (ulong)h * (ulong)w;
    __global float *yr = y + yo + (p.plane * (ulong)oh + (ulong)p.row) * (ulong)ow;
    int iy0 = p.row * sh - pt;
    int y0 = max(iy0, 0), y1 = min(iy0 + kh, h);
    for (int j = p.col0; j < p.col1; j++) {
        int ix0 = j * sw - pl;
        int x0 = max(ix0, 0), x1 = min(ix0 + kw, w);
        float acc = 0.0f;
        for (int yy = y0; yy < y1; yy++)
            for (int xx = x0; xx < x1; xx++)
                acc += xp[yy * w + xx];
        yr[j] = acc / window_divisor(h, w, iy0, ix0, kh, kw, include_pad);
    }
}

/* dx: each element sums dy / divisor over the windows that contain it, in
 * row-major window order; 0 if none. Owner-computes as for max: the owner of
 * a run of a dx row zeroes it and adds each window's share to the elements
 * of the run it covers (one divide per window, not per element). */
__kernel void pool2d_avg_backward(__global const float *dy, ulong dyo, __global float *dx,
                                  ulong dxo, ulong planes, int h, int w, int oh, int ow, int kh,
                                  int kw, int sh, int sw, int pt, int pl, int include_pad, int run)
{
    run_pos p;
    if (!run_locate(planes, h, w, run, &p))
        return;
    __global const float *dyp = dy + dyo + p.plane * (ulong)oh * (ulong)ow;
    __global float *dxr = dx + dxo + (p.plane * (ulong)h + (ulong)p.row) * (ulong)w;
    for (int ix = p.col0; ix < p.col1; ix++)
        dxr[ix] = 0.0f;
    int ilo, ihi, jlo, jhi;
    run_windows(&p, kh, kw, sh, sw, pt, pl, oh, ow, &ilo, &ihi, &jlo, &jhi);
    for (int i = ilo; i <= ihi; i++)
        for (int j = jlo; j <= jhi; j++) {
            int ix0 = j * sw - pl;
            float g = dyp[i * ow + j] / window_divisor(h, w, i * sh - pt, ix0, kh, kw, include_pad);
            int x1 = min(ix0 + kw, p.col1);
            for (int ix = max(ix0, p.col0); ix < x1; ix++)
                dxr[ix] += g;
        }
}

/* ---- Nearest upsampling ----------------------------------------------------- */

/* y (planes, h*sh, w*sw): y[i, j] = x[i / sh, j / sw]. */
__kernel void upsample2d_nearest_forward(__global const float *x, ulong xo, __global float *y,
                                         ulong yo, ulong planes, int h, int w, int sh, int sw,
                                         int run)
{
    int oh = h * sh, ow = w * sw;
    run_pos p;
    if (!run_locate(planes, oh, ow, run, &p))
        return;
    __global const float *xr = x + xo + (p.plane * (ulong)h + (ulong)(p.row / sh)) * (ulong)w;
    __global float *yr = y + yo + (p.plane * (ulong)oh + (ulong)p.row) * (ulong)ow;
    for (int j = p.col0; j < p.col1; j++)
        yr[j] = xr[j / sw];
}

/* dx (planes, h, w): the sum of dy over the element's sh x sw block, in
 * row-major order. */
__kernel void upsample2d_nearest_backward(__global const float *dy, ulong dyo, __global float *dx,
                                          ulong dxo, ulong planes, int h, int w, int sh, int sw,
                                          int run)
{
    int ow = w * sw;
    run_pos p;
    if (!run_locate(planes, h, w, run, &p))
        return;
    __global const float *dyb =
        dy + dyo + (p.plane * (ulong)h * (ulong)sh + (ulong)p.row * (ulong)sh) * (ulong)ow;
    __global float *dxr = dx + dxo + (p.plane * (ulong)h + (ulong)p.row) * (ulong)w;
    for (int j = p.col0; j < p.col1; j++) {
        float acc = 0.0f;
        for (int u = 0; u < sh; u++)
            for (int v = 0; v < sw; v++)
                acc += dyb[u * ow + j * sw + v];
        dxr[j] = acc;
    }
}
