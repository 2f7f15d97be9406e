/* clnet soak test — trains the reference CNN for many steps (1,000 by
 * default; CLNET_SOAK_STEPS overrides) at batch 8 and checks that neither
 * the host's resident memory nor the device bytes grow after warm-up: each
 * must end within 2% of its value at the end of warm-up (step 100). Prints
 * one line per 100 steps and a closing "N passed, N failed" line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clnet/clnet.h"
#include "runtime/fault.h"

clnet_status faults_build_cnn(clnet_context *ctx, clnet_model **out);

enum { BATCH = 8, BATCHES = 4, WARMUP = 100 };

static long rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static int fail(clnet_context *ctx, const char *what)
{
    fprintf(stderr, "soak: %s: %s\n", what, ctx ? clnet_context_errmsg(ctx) : "");
    printf("0 passed, 1 failed\n");
    return 1;
}

/* Within 2% (and at least one page of slack for the RSS). */
static int flat(double before, double after, double slack)
{
    return after <= before * 1.02 + slack && after >= before * 0.98 - slack;
}

int main(void)
{
    const char *env = getenv("CLNET_SOAK_STEPS");
    long steps = env && atol(env) > WARMUP ? atol(env) : 1000;
    char err[2048];
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = getenv("CLNET_TEST_DEVICE");
    clnet_context *ctx;
    if (clnet_context_create(&p, &ctx, err, sizeof err)) {
        fprintf(stderr, "soak: %s\n", err);
        return fail(NULL, "creating a context");
    }
    clnet_model *m;
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    if (faults_build_cnn(ctx, &m) || clnet_model_compile(m, &cp))
        return fail(ctx, "building the CNN");
    /* A few fixed batches, cycled: the data stays on the device. */
    clnet_tensor *x[BATCHES], *y[BATCHES];
    static float xv[BATCH * 784];
    int32_t yv[BATCH];
    int64_t xs[4] = { BATCH, 1, 28, 28 }, b = BATCH;
    unsigned s = 1;
    for (int k = 0; k < BATCHES; k++) {
        for (int i = 0; i < BATCH * 784; i++)
            xv[i] = (float)((s = s * 1103515245u + 12345u) >> 8 & 0xffff) / 65536.0f;
        for (int i = 0; i < BATCH; i++)
            yv[i] = (int32_t)((s = s * 1103515245u + 12345u) >> 16) % 10;
        if (clnet_tensor_create(ctx, CLNET_F32, 4, xs, &x[k]) ||
            clnet_tensor_upload(x[k], xv, sizeof xv) ||
            clnet_tensor_create(ctx, CLNET_I32, 1, &b, &y[k]) ||
            clnet_tensor_upload(y[k], yv, sizeof yv))
            return fail(ctx, "uploading data");
    }
    long rss0 = 0;
    clnet__live live0 = { 0 }, live;
    clnet_context_stats st0 = { 0 }, st;
    double loss = 0;
    for (long i = 1; i <= steps; i++) {
        if (clnet_model_train_on_batch(m, x[i % BATCHES], y[i % BATCHES], i % 100 ? NULL : &loss,
                                       NULL))
            return fail(ctx, "training");
        if (i == WARMUP) {
            rss0 = rss_bytes();
            clnet__fault_live(&live0);
            clnet_context_get_stats(ctx, &st0);
        }
        if (i % 100 == 0)
            printf("soak: step %ld: loss %.4f, host RSS %.1f MiB, device %.2f MiB in %ld buffers\n",
                   i, loss, rss_bytes() / 1048576.0, (double)live0.device_bytes / 1048576.0,
                   live0.buffers);
    }
    long rss1 = rss_bytes();
    clnet__fault_live(&live);
    clnet_context_get_stats(ctx, &st);
    int ok = rss0 > 0 && flat((double)rss0, (double)rss1, (double)sysconf(_SC_PAGESIZE)) &&
             flat((double)live0.device_bytes, (double)live.device_bytes, 0) &&
             flat((double)st0.bytes_live, (double)st.bytes_live, 0) &&
             live.buffers == live0.buffers && live.host_blocks == live0.host_blocks;
    printf("soak: %ld steps at batch %d: host RSS %ld -> %ld bytes (%+.2f%%), device %lld -> %lld "
           "bytes, %ld -> %ld buffers, %ld -> %ld host blocks\n",
           steps, BATCH, rss0, rss1, 100.0 * (double)(rss1 - rss0) / (double)rss0,
           live0.device_bytes, live.device_bytes, live0.buffers, live.buffers, live0.host_blocks,
           live.host_blocks);
    for (int k = 0; k < BATCHES; k++) {
        clnet_tensor_destroy(x[k]);
        clnet_tensor_destroy(y[k]);
    }
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
    clnet__fault_live(&live);
    ok = ok && live.buffers == 0 && live.device_bytes == 0 && live.contexts == 0 &&
         live.host_blocks == 0;
    printf("%d passed, %d failed\n", ok, !ok);
    return ok ? 0 : 1;
}
