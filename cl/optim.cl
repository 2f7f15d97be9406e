/* clnet — optimizer steps and gradient clipping (src/ops/optim.c). Each step
 * kernel updates one element per work-item in place; per-step scalars come
 * from the host. Clipping reduces in a fixed order (no atomics). */
#pragma OPENCL FP_CONTRACT OFF

/* Flags (keep in sync with src/ops/optim.c). */
#define OPT_FIRST 1      /* t == 1: the state's old contents are ignored */
#define OPT_L2 2         /* g' = grad + weight_decay * param */
#define OPT_MOMENTUM 4   /* SGD keeps a momentum buffer */
#define OPT_NESTEROV 8   /* SGD's Nesterov direction */
#define OPT_DECOUPLED 16 /* AdamW: param *= decay before the step */

/* SGD: buf = first ? g' : momentum * buf + damp1 * g' (damp1 = 1 - dampening);
 * dir = nesterov ? g' + momentum * buf : buf; param -= lr * dir. Without
 * OPT_MOMENTUM, dir = g' and buf is never touched. */
__kernel void sgd_step(__global float *p, ulong po, __global const float *g, ulong go,
                       __global float *buf, ulong bo, ulong n, float lr, float momentum,
                       float damp1, float wd, int flags)
{
    ulong i = get_global_id(0);
    if (i >= n)
        return;
    float pv = p[po + i], gv = g[go + i];
    if (flags & OPT_L2)
        gv = gv + wd * pv;
    if (flags & OPT_MOMENTUM) {
        float b = (flags & OPT_FIRST) ? gv : momentum * buf[bo + i] + damp1 * gv;
        buf[bo + i] = b;
        gv = (flags & OPT_NESTEROV) ? gv + momentum * b : b;
    }
    p[po + i] = pv - lr * gv;
}

/* Adam / AdamW with host scalars: omb1 = 1 - beta1, omb2 = 1 - beta2,
 * step = lr / (1 - beta1^t), rbc2 = 1 / sqrt(1 - beta2^t), decay = 1 - lr *
 * weight_decay (AdamW). As PyTorch: denom = sqrt(v) / sqrt(bc2) + eps;
 * param -= step * (m / denom). */
__kernel void adam_step(__global float *p, ulong po, __global const float *g, ulong go,
                        __global float *m, ulong mo, __global float *v, ulong vo, ulong n,
                        float beta1, float omb1, float beta2, float omb2, float eps, float wd,
                        float decay, float step, float rbc2, int flags)
{
    ulong i = get_global_id(0);
    if (i >= n)
        return;
    float pv = p[po + i], gv = g[go + i];
    if (flags & OPT_L2)
        gv = gv + wd * pv;
    if (flags & OPT_DECOUPLED)
        pv = pv * decay;
    float mv = (flags & OPT_FIRST) ? 0.0f : m[mo + i];
    float vv = (flags & OPT_FIRST) ? 0.0f : v[vo + i];
    mv = beta1 * mv + omb1 * gv;
    vv = beta2 * vv + omb2 * (gv * gv);
    m[mo + i] = mv;
    v[vo + i] = vv;
    float denom = sqrt(vv) * rbc2 + eps;
    p[po + i] = pv - step * (mv / denom);
}

/* RMSprop: s = alpha * s + (1 - alpha) * g'^2; param -= lr * (g' / (sqrt(s) + eps)). */
__kernel void rmsprop_step(__global float *p, ulong po, __global const float *g, ulong go,
                           __global float *s, ulong so, ulong n, float lr, float alpha, float oma,
                           float eps, float wd, int flags)
{
    ulong i = get_global_id(0);
    if (i >= n)
        return;
    float pv = p[po + i], gv = g[go + i];
    if (flags & OPT_L2)
        gv = gv + wd * pv;
    float sv = alpha * s[so + i] + oma * (gv * gv);
    s[so + i] = sv;
    p[po + i] = pv - lr * (gv / (sqrt(sv) + eps));
}

/* ---- Clipping by global norm ---------------------------------------------------- */

/* A strided, fixed-order sum of a[i] * a[i] for i < n by one group of
 * CLNET_WG work-items; every work-item receives the sum. */
static float group_sumsq(__global const float *a, ulong n, ulong first, ulong stride, int squares,
                         __local float *scratch)
{
    int lid = (int)get_local_id(0);
    float acc = 0.0f;
    for (ulong i = first + (ulong)lid; i < n; i += stride)
        acc += squares ? a[i] * a[i] : a[i];
    return group_sum(scratch, acc);
}

/* out[oo + group] = sum of x[xo + i]^2 over the group's strided share of n. */
__kernel void sumsq_partial(__global const float *x, ulong xo, ulong n, __global float *out,
                            ulong oo)
{
    __local float scratch[CLNET_WG];
    ulong stride = get_num_groups(0) * CLNET_WG;
    float s = group_sumsq(x + xo, n, get_group_id(0) * CLNET_WG, stride, 1, scratch);
    if (get_local_id(0) == 0)
        out[oo + get_group_id(0)] = s;
}

/* One group: norm = sqrt(sum of the count partials); coef = max_norm /
 * (norm + 1e-6) when below 1, else 1 (also for a NaN norm). */
__kernel void clip_coef(__global float *part, ulong count, float max_norm, ulong co,
                        __global float *norm_out, ulong no, int has_norm)
{
    __local float scratch[CLNET_WG];
    float norm = sqrt(group_sumsq(part, count, 0, CLNET_WG, 0, scratch));
    if (get_local_id(0) == 0) {
        float c = max_norm / (norm + 1e-6f);
        part[co] = c < 1.0f ? c : 1.0f;
        if (has_norm)
            norm_out[no] = norm;
    }
}

/* x *= coef when coef < 1 (read from device memory); else nothing is written. */
__kernel void clip_apply(__global float *x, ulong xo, ulong n, __global const float *coef, ulong co)
{
    ulong i = get_global_id(0);
    float c = coef[co];
    if (i >= n || !(c < 1.0f))
        return;
    x[xo + i] = x[xo + i] * c;
}
