/* clnet — batch normalization and dropout kernels (src/ops/norm.c).
 * Per-channel sums are two-stage reductions in a fixed order: stage 1
 * gives each of G work-groups per channel a strided share of the channel and
 * merges its work-items by a tree; stage 2 merges a channel's G partials in
 * index order. No atomics: the same inputs on one device give the same bits. */
#pragma OPENCL FP_CONTRACT OFF

/* Which optional tensors are present (keep in sync with src/ops/norm.c). */
#define BN_GAMMA 1
#define BN_BETA 2
#define BN_RMEAN 4
#define BN_RVAR 8
#define BN_DGAMMA 16
#define BN_DBETA 32
#define BN_TRAINING 64

/* ---- Walking one channel ------------------------------------------------ */

/* Element j (0 <= j < m = N * hw) of channel c of x (N, C, hw) lies at
 * (j / hw) * C * hw + c * hw + j % hw. A work-item visits j = t, t + T, ...
 * and steps (n, e) = (j / hw, j % hw) without dividing per element. */
typedef struct walk {
    ulong n, e, dn, de, hw, chw;
} walk;

static walk walk_start(ulong t, ulong T, ulong hw, int C)
{
    walk w = { t / hw, t % hw, T / hw, T % hw, hw, (ulong)C * hw };
    return w;
}

static ulong walk_index(const walk *w)
{
    return w->n * w->chw + w->e;
}

static void walk_next(walk *w)
{
    w->n += w->dn;
    w->e += w->de;
    if (w->e >= w->hw) {
        w->e -= w->hw;
        w->n++;
    }
}

/* The apply kernels: work-item g takes elements [*i0, *i1) of x (N, C, hw)
 * holding n elements, a run of at most `run` elements of one plane (n, c),
 * and *c its channel; 0 for the excess work-items of a rounded-up launch.
 * run = 1 is one element per work-item (GPUs); a long run divides once per
 * run instead of per element, and its loop vectorizes (CPUs). */
static int plane_run(ulong n, ulong hw, int C, ulong run, ulong *i0, ulong *i1, int *c)
{
    ulong g = get_global_id(0), runs = (hw + run - 1) / run;
    ulong plane = g / runs, e0 = (g % runs) * run;
    if (plane * hw >= n)
        return 0;
    *c = (int)(plane % (ulong)C);
    *i0 = plane * hw + e0;
    *i1 = plane * hw + min(e0 + run, hw);
    return 1;
}

/* ---- Statistics ------------------------------------------------------------ */

/* The statistics take two passes over x (Chan, Golub and LeVeque's corrected
 * two-pass algorithm): pass 1 sums x into a provisional mean mu0; pass 2
 * sums d = x - mu0 and d * d. Then mean = mu0 + sum d / m and the sum of
 * squared deviations is sum d^2 - (sum d)^2 / m, which removes the first-order
 * effect of mu0's rounding error: the variance stays accurate when the mean is
 * large against the spread. */

/* A work-group's fixed-order sums of d and d * d over its share of channel c
 * (d = x - shift[c] when centered, else x), into part[po + 2 * grp ...].
 * Group grp = c * G + g; launched with C * G groups of CLNET_WG. */
__kernel void bn_stats_partial(__global const float *x, ulong xo, ulong m, ulong hw, int C, int G,
                               __global const float *shift, ulong so, int centered,
                               __global float *part, ulong po)
{
    __local float2 l2[CLNET_WG];
    int lid = (int)get_local_id(0), grp = (int)get_group_id(0);
    int c = grp / G, g = grp % G;
    ulong T = (ulong)G * CLNET_WG, t = (ulong)g * CLNET_WG + (ulong)lid;
    walk w = walk_start(t, T, hw, C);
    __global const float *xc = x + xo + (ulong)c * hw;
    float mu = centered ? shift[so + c] : 0.0f;
    float s1 = 0.0f, s2 = 0.0f;
    for (ulong j = t; j < m; j += T, walk_next(&w)) {
        float d = xc[walk_index(&w)] - mu;
        s1 += d;
        s2 += d * d;
    }
    float2 r = group_sum2(l2, (float2)(s1, s2));
    if (lid == 0) {
        part[po + 2 * (ulong)grp] = r.x;
        part[po + 2 * (ulong)grp + 1] = r.y;
    }
}

/* Pass 1's end, one work-item per channel: mu0 = (sum of the G partials in
 * order) / m. */
__kernel void bn_mean_final(__global const float *part, ulong po, int C, int G, ulong m,
                            __global float *mu0, ulong uo)
{
    int c = (int)get_global_id(0);
    if (c >= C)
        return;
    float s = 0.0f;
    for (int g = 0; g < G; g++)
        s += part[po + 2 * ((ulong)c * G + g)];
    mu0[uo + c] = s / (float)m;
}

/* Pass 2's end, one work-item per channel: sums the G partials in order,
 * writes mean = mu0 + s1 / m and invstd = 1 / sqrt(var + eps) with var = q /
 * m, q = s2 - s1 * s1 / m (>= 0), and updates the running statistics (the
 * variance unbiased: q / (m - 1)). */
__kernel void bn_stats_final(__global const float *part, ulong po, int C, int G, ulong m,
                             __global const float *mu0, ulong uo, float eps, float momentum,
                             int flags, __global float *mean_out, ulong mo,
                             __global float *invstd_out, ulong io, __global float *rmean, ulong rmo,
                             __global float *rvar, ulong rvo)
{
    int c = (int)get_global_id(0);
    if (c >= C)
        return;
    float s1 = 0.0f, s2 = 0.0f;
    for (int g = 0; g < G; g++) {
        ulong k = po + 2 * ((ulong)c * G + g);
        s1 += part[k];
        s2 += part[k + 1];
    }
    float fm = (float)m;
    float mean = mu0[uo + c] + s1 / fm;
    float q = s2 - s1 * (s1 / fm);
    q = q < 0.0f ? 0.0f : q; /* a select, not fmax: a NaN stays NaN */
    mean_out[mo + c] = mean;
    invstd_out[io + c] = 1.0f / sqrt(q / fm + eps);
    float keep = 1.0f - momentum;
    if (flags & BN_RMEAN)
        rmean[rmo + c] = keep * rmean[rmo + c] + momentum * mean;
    if (flags & BN_RVAR)
        rvar[rvo + c] = keep * rvar[rvo + c] + momentum * (q / (float)(m - 1));
}

/* Inference statistics, one work-item per channel: mean = running_mean,
 * invstd = 1 / sqrt(running_var + eps). */
__kernel void bn_infer_stats(__global const float *rmean, ulong rmo, __global const float *rvar,
                             ulong rvo, int C, float eps, __global float *mean_out, ulong mo,
                             __global float *invstd_out, ulong io)
{
    int c = (int)get_global_id(0);
    if (c >= C)
        return;
    mean_out[mo + c] = rmean[rmo + c];
    invstd_out[io + c] = 1.0f / sqrt(rvar[rvo + c] + eps);
}

/* y = gamma * ((x - mean) * invstd) + beta over one plane_run per work-item. */
__kernel void bn_forward_apply(__global const float *x, ulong xo, __global float *y, ulong yo,
                               ulong n, ulong hw, int C, __global const float *mean, ulong mo,
                               __global const float *invstd, ulong io, __global const float *gamma,
                               ulong go, __global const float *beta, ulong bo, int flags, ulong run)
{
    ulong i0, i1;
    int c;
    if (!plane_run(n, hw, C, run, &i0, &i1, &c))
        return;
    float g = (flags & BN_GAMMA) ? gamma[go + c] : 1.0f;
    float b = (flags & BN_BETA) ? beta[bo + c] : 0.0f;
    float mu = mean[mo + c], is = invstd[io + c];
    for (ulong i = i0; i < i1; i++)
        y[yo + i] = g * ((x[xo + i] - mu) * is) + b;
}

/* ---- Backward ---------------------------------------------------------------- */

/* Stage 1 of the gradient sums: group c * G + g writes its share's sum of dy
 * and of dy * xhat, xhat = (x - mean) * invstd, to part[po + 2 * grp ...]. */
__kernel void bn_grad_partial(__global const float *x, ulong xo, __global const float *dy,
                              ulong dyo, ulong m, ulong hw, int C, int G,
                              __global const float *mean, ulong mo, __global const float *invstd,
                              ulong io, __global float *part, ulong po)
{
    __local float2 l2[CLNET_WG];
    int lid = (int)get_local_id(0), grp = (int)get_group_id(0);
    int c = grp / G, g = grp % G;
    ulong T = (ulong)G * CLNET_WG, t = (ulong)g * CLNET_WG + (ulong)lid;
    walk w = walk_start(t, T, hw, C);
    __global const float *xc = x + xo + (ulong)c * hw;
    __global const float *dc = dy + dyo + (ulong)c * hw;
    float mu = mean[mo + c], is = invstd[io + c];
    float s = 0.0f, sx = 0.0f;
    for (ulong j = t; j < m; j += T, walk_next(&w)) {
        ulong k = walk_index(&w);
        float d = dc[k];
        s += d;
        sx += d * ((xc[k] - mu) * is);
    }
    float2 r = group_sum2(l2, (float2)(s, sx));
    if (lid == 0) {
        part[po + 2 * (ulong)grp] = r.x;
        part[po + 2 * (ulong)grp + 1] = r.y;
    }
}

/* Stage 2, one work-item per channel: sums the G partials in order into
 * dbeta = sum dy and dgamma = sum dy * xhat (when wanted), and writes the
 * coefficients of dx to coef[co + 3c ...]: gamma * invstd, then (training)
 * dbeta / m and dgamma / m, or (inference) 0 and 0. */
__kernel void bn_grad_final(__global const float *part, ulong po, int C, int G, ulong m, int flags,
                            __global const float *gamma, ulong go, __global const float *invstd,
                            ulong io, __global float *dgamma, ulong dgo, __global float *dbeta,
                            ulong dbo, __global float *coef, ulong co)
{
    int c = (int)get_global_id(0);
    if (c >= C)
        return;
    float s = 0.0f, sx = 0.0f;
    for (int g = 0; g < G; g++) {
        ulong k = po + 2 * ((ulong)c * G + g);
        s += part[k];
        sx += part[k + 1];
    }
    if (flags & BN_DBETA)
        dbeta[dbo + c] = s;
    if (flags & BN_DGAMMA)
        dgamma[dgo + c] = sx;
    float gm = (flags & BN_GAMMA) ? gamma[go + c] : 1.0f;
    int training = (flags & BN_TRAINING) != 0;
    coef[co + 3 * (ulong)c] = gm * invstd[io + c];
    coef[co + 3 * (ulong)c + 1] = training ? s / (float)m : 0.0f;
    coef[co + 3 * (ulong)c + 2] = training ? sx / (float)m : 0.0f;
}

/* dx = gamma * invstd * (dy - dbeta / m - xhat * dgamma / m) in training,
 * dx = gamma * invstd * dy in inference, over one plane_run per work-item.
 * dx may alias x or dy (each element is read before it is written). */
__kernel void bn_backward_apply(__global const float *x, ulong xo, __global const float *dy,
                                ulong dyo, __global float *dx, ulong dxo, ulong n, ulong hw, int C,
                                __global const float *mean, ulong mo, __global const float *invstd,
                                ulong io, __global const float *coef, ulong co, int flags,
                                ulong run)
{
    ulong i0, i1;
    int c;
    if (!plane_run(n, hw, C, run, &i0, &i1, &c))
        return;
    ulong k = co + 3 * (ulong)c;
    float a = coef[k], s = coef[k + 1], sx = coef[k + 2];
    float mu = mean[mo + c], is = invstd[io + c];
    if (flags & BN_TRAINING) {
        for (ulong i = i0; i < i1; i++) {
            float xhat = (x[xo + i] - mu) * is;
            dx[dxo + i] = a * ((dy[dyo + i] - s) - xhat * sx);
        }
    } else {
        for (ulong i = i0; i < i1; i++)
            dx[dxo + i] = a * dy[dyo + i];
    }
}

/* ---- Dropout ------------------------------------------------------------------ */

/* Block b (Philox counter {b, stream}, key seed: the prelude's
 * philox4x32_10) decides elements 4b .. 4b + 3, one word each: keep =
 * (word >> 8) * 2^-24 >= rate, exactly the uniform draw of
 * clnet_tensor_rand_uniform. y = keep ? x * scale : 0, a select so that a
 * dropped NaN gives 0. mask (when has_mask) gets 1 or 0. Work-item g runs
 * blocks 8g .. 8g + 7 in vector lanes (philox4x32_10_x8): elements 32g ..
 * 32g + 31. */
__kernel void dropout(__global const float *x, ulong xo, __global float *y, ulong yo,
                      __global float *mask, ulong mko, int has_mask, ulong n, uint key_lo,
                      uint key_hi, uint stream_lo, uint stream_hi, float rate, float scale)
{
    ulong g = get_global_id(0), e0 = 32 * g;
    if (e0 >= n)
        return;
    ulong8 b = (ulong8)(8 * g) + (ulong8)(0, 1, 2, 3, 4, 5, 6, 7);
    uint8 c0 = convert_uint8(b), c1 = convert_uint8(b >> 32);
    uint8 c2 = (uint8)(stream_lo), c3 = (uint8)(stream_hi);
    philox4x32_10_x8(&c0, &c1, &c2, &c3, (uint2)(key_lo, key_hi));
    uint w[4][8];
    vstore8(c0, 0, w[0]);
    vstore8(c1, 0, w[1]);
    vstore8(c2, 0, w[2]);
    vstore8(c3, 0, w[3]);
    int count = (int)min((ulong)32, n - e0);
    for (int e = 0; e < count; e++) {
        ulong i = e0 + (ulong)e;
        int keep = (float)(w[e % 4][e / 4] >> 8) * 0x1.0p-24f >= rate;
        float v = x[xo + i];
        y[yo + i] = keep ? v * scale : 0.0f;
        if (has_mask)
            mask[mko + i] = keep ? 1.0f : 0.0f;
    }
}
