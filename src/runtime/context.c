/* clnet — contexts: device, OpenCL context and queue, configuration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clnet/clnet.h"
#include "context_impl.h"
#include "knobs.h"

CLNET_API const char *clnet_version(void)
{
    return CLNET_VERSION_STRING;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = clnet__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* The disk cache directory from params, environment and defaults; NULL when
 * disabled. Returns 0 on allocation failure. */
static int resolve_cache_dir(const char *param, char **out)
{
    char buf[4096];
    const char *env;
    *out = NULL;
    if (param) {
        if (!*param)
            return 1;
        snprintf(buf, sizeof buf, "%s", param);
    } else if ((env = getenv("CLNET_CACHE_DIR")) != NULL) {
        if (!*env)
            return 1;
        snprintf(buf, sizeof buf, "%s", env);
    } else if ((env = getenv("XDG_CACHE_HOME")) != NULL && *env) {
        snprintf(buf, sizeof buf, "%s/clnet", env);
    } else if ((env = getenv("HOME")) != NULL && *env) {
        snprintf(buf, sizeof buf, "%s/.cache/clnet", env);
    } else {
        return 1;
    }
    return (*out = dup_str(buf)) != NULL;
}

static clnet_status finish_setup(clnet_context *ctx, const char *cache_dir, const clnet__env *env,
                                 char *err, size_t err_size)
{
    const char *kdir = getenv("CLNET_KERNEL_DIR");
    if (!resolve_cache_dir(cache_dir, &ctx->cache_dir) ||
        (kdir && *kdir && !(ctx->kernel_dir = dup_str(kdir)))) {
        clnet__errbuf(err, err_size, "clnet_context_create: out of host memory");
        return CLNET_ERR_HOST_MEMORY;
    }
    clnet__profile_init(&ctx->profile, &ctx->profile.info);
    ctx->profile.env = *env;
    /* Device facts that kernels are built with, queried once here, not per
     * call. A failed query only costs the fma. */
    cl_device_fp_config fp = 0;
    if (clGetDeviceInfo(ctx->device, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL) !=
        CL_SUCCESS)
        fp = 0;
    ctx->profile.fma = (fp & CL_FP_FMA) != 0;
    /* Kernels keep local arrays of the work-group size (at least 1): a
     * device with less local memory than one work-item needs fails here,
     * not at its first launch. */
    const clnet_device_info *d = &ctx->profile.info;
    if (d->local_mem_bytes && d->local_mem_bytes < CLNET_LOCAL_BYTES_PER_ITEM) {
        clnet__errbuf(err, err_size,
                      "clnet_context_create: device \"%s\" has %llu bytes of local memory; clnet's "
                      "kernels need %d per work-item",
                      d->name, (unsigned long long)d->local_mem_bytes, CLNET_LOCAL_BYTES_PER_ITEM);
        return CLNET_ERR_UNSUPPORTED;
    }
    return CLNET_OK;
}

/* Opens a context on one device: OpenCL context, queue, caches, profile. */
static clnet_status open_device(const clnet__candidate *c, const clnet_context_params *params,
                                const clnet__env *env, clnet_context **out, char *err,
                                size_t err_size)
{
    clnet_context *ctx = clnet__calloc(1, sizeof *ctx);
    *out = NULL;
    if (!ctx) {
        clnet__errbuf(err, err_size, "clnet_context_create: out of host memory");
        return CLNET_ERR_HOST_MEMORY;
    }
    ctx->log = params->log;
    ctx->log_user = params->log_user;
    ctx->platform = c->platform;
    ctx->device = c->device;
    ctx->profile.info = c->info;
    clnet_status st;
    cl_int e;
    cl_context_properties props[] = { CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform,
                                      0 };
    ctx->context = clCreateContext(props, 1, &ctx->device, NULL, NULL, &e);
    if (e != CL_SUCCESS) {
        clnet__errbuf(err, err_size,
                      "clnet_context_create: clCreateContext failed on \"%s\": %s (%d)",
                      ctx->profile.info.name, clnet__cl_error_name(e), (int)e);
        st = clnet__cl_status(e);
        goto fail;
    }
    ctx->queue = clCreateCommandQueue(
        ctx->context, ctx->device,
        params->profiling || clnet__kprof_wanted(params, env) ? CL_QUEUE_PROFILING_ENABLE : 0, &e);
    if (e != CL_SUCCESS) {
        clnet__errbuf(err, err_size,
                      "clnet_context_create: clCreateCommandQueue failed on \"%s\": %s (%d)",
                      ctx->profile.info.name, clnet__cl_error_name(e), (int)e);
        st = clnet__cl_status(e);
        goto fail;
    }
    if ((st = finish_setup(ctx, params->cache_dir, env, err, err_size)))
        goto fail;
    if (clnet__kprof_wanted(params, env) && (st = clnet__kprof_create(ctx))) {
        clnet__errbuf(err, err_size, "clnet_context_create: out of host memory");
        goto fail;
    }
    *out = ctx;
    return CLNET_OK;
fail:
    clnet_context_destroy(ctx);
    return st;
}

/* Failures that say "this device cannot run clnet" (try the next one), as
 * opposed to the host's own (out of memory). */
static int device_fault(clnet_status st)
{
    return st == CLNET_ERR_BUILD || st == CLNET_ERR_OPENCL || st == CLNET_ERR_DEVICE_MEMORY ||
           st == CLNET_ERR_UNSUPPORTED || st == CLNET_ERR_TOO_LARGE;
}

static void append_note(char *notes, size_t size, const clnet_device_info *d, const char *why)
{
    size_t len = strlen(notes);
    if (len + 1 < size)
        snprintf(notes + len, size - len, "%s%d:%d \"%s\" (%s): %.700s", len ? "; " : "",
                 d->platform_index, d->device_index, d->name, d->platform_name, why);
}

clnet_status clnet__context_create_probed(const clnet_context_params *params, clnet__probe_fn probe,
                                          clnet_context **out, char *err, size_t err_size)
{
    static const clnet_context_params defaults = CLNET_CONTEXT_PARAMS_INIT;
    if (!out) {
        clnet__errbuf(err, err_size, "clnet_context_create: invalid argument: out != NULL");
        return CLNET_ERR_INVALID_ARG;
    }
    *out = NULL;
    if (!params)
        params = &defaults;
    clnet__env env;
    clnet_status st = clnet__env_read(&env, err, err_size);
    if (st)
        return st;
    clnet__candidate *cand;
    int n;
    st = clnet__device_candidates(params->device, &cand, &n, err, err_size);
    if (st)
        return st;
    /* With one device there is nothing to choose: its own errors, at the first
     * build, are as clear as the probe's, and cost nothing now. */
    if (n == 1)
        probe = NULL;
    char notes[3072] = "", why[1536];
    clnet_status last = CLNET_OK;
    for (int i = 0; i < n; i++) {
        clnet_context *ctx;
        st = open_device(&cand[i], params, &env, &ctx, why, sizeof why);
        if (!st && probe && (st = probe(ctx, why, sizeof why)) != CLNET_OK) {
            clnet_context_destroy(ctx);
            ctx = NULL;
        }
        if (!st) {
            if (notes[0])
                clnet__error(ctx, last,
                             "clnet_context_create: chose %d:%d \"%s\" after skipping %s",
                             cand[i].info.platform_index, cand[i].info.device_index,
                             cand[i].info.name, notes);
            clnet__free(cand);
            *out = ctx;
            return CLNET_OK;
        }
        if (n == 1 || !device_fault(st)) {
            clnet__errbuf(err, err_size, "%s", why);
            clnet__free(cand);
            return st;
        }
        append_note(notes, sizeof notes, &cand[i].info, why);
        last = st;
    }
    clnet__errbuf(err, err_size, "clnet_context_create: no usable OpenCL device; tried %s", notes);
    clnet__free(cand);
    return last;
}

CLNET_API clnet_status clnet_context_create(const clnet_context_params *params, clnet_context **out,
                                            char *err, size_t err_size)
{
    return clnet__context_create_probed(params, clnet__probe, out, err, err_size);
}

CLNET_API clnet_status clnet_context_wrap(cl_device_id device, cl_context context,
                                          cl_command_queue queue, const char *cache_dir,
                                          clnet_context **out, char *err, size_t err_size)
{
    if (!out || !device || !context || !queue) {
        clnet__errbuf(err, err_size, "clnet_context_wrap: invalid argument: NULL %s",
                      !out       ? "out"
                      : !device  ? "device"
                      : !context ? "context"
                                 : "queue");
        if (out)
            *out = NULL;
        return CLNET_ERR_INVALID_ARG;
    }
    *out = NULL;
    clnet__env env;
    clnet_status st = clnet__env_read(&env, err, err_size);
    if (st)
        return st;
    clnet_context *ctx = clnet__calloc(1, sizeof *ctx);
    if (!ctx) {
        clnet__errbuf(err, err_size, "clnet_context_wrap: out of host memory");
        return CLNET_ERR_HOST_MEMORY;
    }
    cl_int e =
        clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof ctx->platform, &ctx->platform, NULL);
    if (e != CL_SUCCESS) {
        clnet__errbuf(err, err_size, "clnet_context_wrap: clGetDeviceInfo failed: %s (%d)",
                      clnet__cl_error_name(e), (int)e);
        st = clnet__cl_status(e);
        goto fail;
    }
    if ((st = clnet__device_info_locked(ctx->platform, device, &ctx->profile.info, err, err_size)))
        goto fail;
    clRetainContext(context);
    clRetainCommandQueue(queue);
    ctx->device = device;
    ctx->context = context;
    ctx->queue = queue;
    if ((st = finish_setup(ctx, cache_dir, &env, err, err_size)))
        goto fail;
    *out = ctx;
    return CLNET_OK;
fail:
    clnet_context_destroy(ctx);
    return st;
}

static void program_free(clnet__program *p)
{
    for (int k = 0; k < p->nkernels; k++) {
        clReleaseKernel(p->kernels[k]);
        clnet__free(p->kernel_names[k]);
    }
    clnet__free(p->kernels);
    clnet__free(p->kernel_names);
    if (p->program)
        clReleaseProgram(p->program);
    clnet__free(p->name);
    clnet__free(p->options);
}

CLNET_API void clnet_context_destroy(clnet_context *ctx)
{
    if (!ctx)
        return;
    if (ctx->queue)
        clFinish(ctx->queue);
    clnet__kprof_destroy(ctx); /* before the kernels it names are released */
    for (int i = ctx->nprograms - 1; i >= 0; i--)
        program_free(&ctx->programs[i]);
    clnet__free(ctx->programs);
    clnet__buffer_release(ctx, ctx->workspace, ctx->workspace_bytes);
    clnet__buffer_release(ctx, ctx->gemm_scratch, ctx->gemm_scratch_bytes);
    if (ctx->queue)
        clReleaseCommandQueue(ctx->queue);
    if (ctx->context)
        clReleaseContext(ctx->context);
    clnet__free(ctx->cache_dir);
    clnet__free(ctx->kernel_dir);
    clnet__free(ctx);
}

CLNET_API const char *clnet_context_errmsg(const clnet_context *ctx)
{
    return ctx ? ctx->errmsg : "clnet_context_errmsg: NULL context";
}

CLNET_API const clnet_device_info *clnet_context_device(const clnet_context *ctx)
{
    return ctx ? &ctx->profile.info : NULL;
}

CLNET_API clnet_status clnet_context_finish(clnet_context *ctx)
{
    CLNET_CHECK_ARG(ctx, ctx != NULL);
    ctx->stats.host_waits++;
    cl_int e = clFinish(ctx->queue);
    if (e != CL_SUCCESS)
        return clnet__cl_error(ctx, e, "clFinish", "clnet_context_finish");
    clnet__kprof_completed(ctx);
    return CLNET_OK;
}

CLNET_API clnet_status clnet_context_get_stats(const clnet_context *ctx, clnet_context_stats *out)
{
    CLNET_CHECK_ARG(ctx, ctx != NULL);
    CLNET_CHECK_ARG(ctx, out != NULL);
    *out = ctx->stats;
    return CLNET_OK;
}

CLNET_API cl_context clnet_context_cl_context(const clnet_context *ctx)
{
    return ctx ? ctx->context : NULL;
}

CLNET_API cl_command_queue clnet_context_cl_queue(const clnet_context *ctx)
{
    return ctx ? ctx->queue : NULL;
}

CLNET_API cl_device_id clnet_context_cl_device(const clnet_context *ctx)
{
    return ctx ? ctx->device : NULL;
}

const clnet__profile *clnet__context_profile(const clnet_context *ctx)
{
    return &ctx->profile;
}

int *clnet__context_gemm_params(clnet_context *ctx)
{
    return &ctx->gemm_params;
}

int clnet__has_features(const clnet_context *ctx, unsigned need)
{
    return (ctx->profile.info.features & need) == need;
}

clnet_status clnet__kernel_features(clnet_context *ctx, unsigned need, const char *program,
                                    const char *source, const char *options, const char *name,
                                    cl_kernel *out)
{
    if (!clnet__has_features(ctx, need))
        return clnet__error(ctx, CLNET_ERR_UNSUPPORTED,
                            "kernel \"%s\" in program \"%s\": device \"%s\" lacks feature flags "
                            "0x%x (has 0x%x); use the OpenCL C 1.2 fallback",
                            name, program, ctx->profile.info.name,
                            need & ~ctx->profile.info.features, ctx->profile.info.features);
    /* program.c builds with the profile's options: swap in the feature set for
     * this one call (a context is used by one thread at a time). The program
     * cache keys on the full option string, so the variants never mix. */
    char base[sizeof ctx->profile.options];
    memcpy(base, ctx->profile.options, sizeof base);
    memcpy(ctx->profile.options, ctx->profile.feature_options, sizeof base);
    clnet_status st = source ? clnet__kernel_from_source(ctx, program, source, options, name, out)
                             : clnet__kernel(ctx, program, options, name, out);
    memcpy(ctx->profile.options, base, sizeof base);
    return st;
}

int clnet__variant(const clnet_context *ctx, const char *op, int chosen)
{
    for (int i = 0; i < ctx->nforced; i++)
        if (!strcmp(ctx->forced[i].op, op))
            return ctx->forced[i].value;
    return chosen;
}

/* The registry (knobs.h) as a table. */
static const struct {
    const char *name;
    int lo, hi;
} variants[] = {
#define CLNET_VARIANT_ROW(name, lo, hi) { name, lo, hi },
    CLNET_VARIANTS(CLNET_VARIANT_ROW)
#undef CLNET_VARIANT_ROW
};

clnet_status clnet__force_variant(clnet_context *ctx, const char *op, int value)
{
    CLNET_CHECK_ARG(ctx, op != NULL);
    size_t v = 0, nv = sizeof variants / sizeof variants[0];
    while (v < nv && strcmp(variants[v].name, op))
        v++;
    if (v == nv)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "clnet__force_variant: no variant named \"%.64s\" (src/runtime/knobs.h "
                            "lists them)",
                            op);
    if (value >= 0 && (value < variants[v].lo || value > variants[v].hi))
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "clnet__force_variant: %s = %d is outside [%d, %d] (or < 0 to clear)",
                            op, value, variants[v].lo, variants[v].hi);
    for (int i = 0; i < ctx->nforced; i++)
        if (!strcmp(ctx->forced[i].op, op)) {
            if (value < 0)
                ctx->forced[i] = ctx->forced[--ctx->nforced];
            else
                ctx->forced[i].value = value;
            return CLNET_OK;
        }
    if (value < 0)
        return CLNET_OK;
    if (ctx->nforced == (int)(sizeof ctx->forced / sizeof ctx->forced[0]))
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "clnet__force_variant: too many forced variants");
    snprintf(ctx->forced[ctx->nforced].op, sizeof ctx->forced[0].op, "%s", op);
    ctx->forced[ctx->nforced++].value = value;
    return CLNET_OK;
}
