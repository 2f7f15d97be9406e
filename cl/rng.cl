/* clnet — Philox4x32-10 random fills (Salmon et al., "Parallel random numbers:
 * as easy as 1, 2, 3", SC 2011). Element i takes word i % 4 of
 * Philox(counter = {i / 4 as 64 bits, stream as 64 bits}, key = seed), so the
 * numbers do not depend on the device or the launch geometry. The generator,
 * philox4x32_10, is in the prelude (cl/norm.cl's dropout uses it too). */
#pragma OPENCL FP_CONTRACT OFF

/* The upper 24 bits as a float in [0, 1): exact in float32. */
static float u01(uint r)
{
    return (float)(r >> 8) * 0x1.0p-24f;
}

static uint4 block(ulong b, uint2 key, uint2 stream)
{
    return philox4x32_10((uint4)((uint)b, (uint)(b >> 32), stream.x, stream.y), key);
}

__kernel void rand_uniform(__global float *x, ulong off, ulong n, uint key_lo, uint key_hi,
                           uint stream_lo, uint stream_hi, float lo, float hi)
{
    ulong b = get_global_id(0);
    if (4 * b >= n)
        return;
    uint4 r = block(b, (uint2)(key_lo, key_hi), (uint2)(stream_lo, stream_hi));
    uint w[4] = { r.x, r.y, r.z, r.w };
    float span = hi - lo;
    for (int j = 0; j < 4; j++)
        if (4 * b + j < n)
            x[off + 4 * b + j] = lo + span * u01(w[j]);
}

/* Box-Muller on word pairs (0, 1) and (2, 3); u1 in (0, 1] keeps log finite. */
__kernel void rand_normal(__global float *x, ulong off, ulong n, uint key_lo, uint key_hi,
                          uint stream_lo, uint stream_hi, float mean, float stddev)
{
    ulong b = get_global_id(0);
    if (4 * b >= n)
        return;
    uint4 r = block(b, (uint2)(key_lo, key_hi), (uint2)(stream_lo, stream_hi));
    uint w[4] = { r.x, r.y, r.z, r.w };
    float z[4];
    for (int j = 0; j < 4; j += 2) {
        float u1 = (float)((w[j] >> 8) + 1u) * 0x1.0p-24f;
        float u2 = u01(w[j + 1]);
        float rad = sqrt(-2.0f * log(u1));
        float th = 6.2831853071795864769f * u2;
        z[j] = rad * cos(th);
        z[j + 1] = rad * sin(th);
    }
    for (int j = 0; j < 4; j++)
        if (4 * b + j < n)
            x[off + 4 * b + j] = mean + stddev * z[j];
}
