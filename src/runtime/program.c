/* clnet — kernel programs: sources (embedded or CLNET_KERNEL_DIR), building
 * with the device's options, the in-memory cache and the disk cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context_impl.h"

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = clnet__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Reads cl/<name>.cl from CLNET_KERNEL_DIR, or finds the embedded copy. On
 * success *text is malloc'd and NUL-terminated. */
static clnet_status load_source(clnet_context *ctx, const char *name, char **text, size_t *len)
{
    *text = NULL;
    if (ctx->kernel_dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.cl", ctx->kernel_dir, name);
        FILE *f = fopen(path, "rb");
        if (!f)
            return clnet__error(ctx, CLNET_ERR_IO,
                                "kernel source %s (CLNET_KERNEL_DIR): cannot open", path);
        long n = -1;
        if (fseek(f, 0, SEEK_END) == 0)
            n = ftell(f);
        if (n >= 0 && !(*text = clnet__malloc((size_t)n + 1))) {
            fclose(f);
            return clnet__error(ctx, CLNET_ERR_HOST_MEMORY, "kernel source %s: out of host memory",
                                path);
        }
        if (n < 0 || fseek(f, 0, SEEK_SET) != 0 || fread(*text, 1, (size_t)n, f) != (size_t)n) {
            fclose(f);
            clnet__free(*text);
            *text = NULL;
            return clnet__error(ctx, CLNET_ERR_IO, "kernel source %s: read failed", path);
        }
        fclose(f);
        (*text)[n] = 0;
        *len = (size_t)n;
        return CLNET_OK;
    }
    for (size_t i = 0; i < clnet__cl_source_count; i++)
        if (!strcmp(clnet__cl_sources[i].name, name)) {
            if (!(*text = clnet__malloc(clnet__cl_sources[i].size + 1)))
                return clnet__error(ctx, CLNET_ERR_HOST_MEMORY,
                                    "kernel source %s: out of host memory", name);
            memcpy(*text, clnet__cl_sources[i].text, clnet__cl_sources[i].size);
            (*text)[clnet__cl_sources[i].size] = 0;
            *len = clnet__cl_sources[i].size;
            return CLNET_OK;
        }
    return clnet__error(ctx, CLNET_ERR_INTERNAL, "kernel program \"%s\" is not embedded", name);
}

static clnet_status build_error(clnet_context *ctx, cl_program prog, cl_int e, const char *name,
                                const char *options)
{
    size_t n = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS &&
        (log = clnet__malloc(n + 1)) != NULL &&
        clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS)
        log[n] = 0;
    clnet_status st = clnet__error(
        ctx, clnet__cl_status(e) == CLNET_ERR_OPENCL ? CLNET_ERR_BUILD : clnet__cl_status(e),
        "building kernel program \"%s\" for device \"%s\" with options "
        "\"%s\": clBuildProgram failed: %s (%d)\nbuild log:\n%s",
        name, ctx->profile.info.name, options, clnet__cl_error_name(e), (int)e,
        log ? log : "(unavailable)");
    clnet__free(log);
    return st;
}

/* Returns the device binary of a built program (malloc'd), or NULL. */
static unsigned char *program_binary(clnet_context *ctx, cl_program prog, size_t *size)
{
    size_t n = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL) != CL_SUCCESS || !n)
        return NULL;
    unsigned char *bin = clnet__malloc(n);
    if (bin && clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) != CL_SUCCESS) {
        clnet__free(bin);
        return NULL;
    }
    (void)ctx;
    *size = n;
    return bin;
}

static cl_program try_binary(clnet_context *ctx, const char *key, const char *options)
{
    unsigned char *bin = NULL;
    size_t size = 0;
    if (!clnet__diskcache_load(ctx, key, &bin, &size))
        return NULL;
    cl_int e, bst;
    const unsigned char *cbin = bin;
    cl_program prog =
        clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &size, &cbin, &bst, &e);
    clnet__free(bin);
    if (e == CL_SUCCESS && bst == CL_SUCCESS &&
        clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL) == CL_SUCCESS)
        return prog;
    if (e == CL_SUCCESS)
        clReleaseProgram(prog);
    ctx->stats.cache_rejected++;
    return NULL;
}

/* Builds a program: from clnet's disk cache where it is on for this device
 * and allow_load, else from source (then stored). *from_cache says which. */
static clnet_status build(clnet_context *ctx, const char *name, const char *prelude,
                          size_t prelude_len, const char *src, size_t src_len, const char *options,
                          int allow_load, cl_program *out, int *from_cache)
{
    double t0 = clnet__now();
    int use_cache = clnet__variant(ctx, "diskcache.store", ctx->profile.store_binaries);
    char *key = ctx->cache_dir && use_cache
                    ? clnet__diskcache_key(ctx, prelude, prelude_len, src, src_len, options)
                    : NULL;
    cl_program prog = key && allow_load ? try_binary(ctx, key, options) : NULL;
    *from_cache = prog != NULL;
    if (prog) {
        ctx->stats.programs_loaded++;
    } else {
        const char *strs[2] = { prelude, src };
        size_t lens[2] = { prelude_len, src_len };
        cl_int e;
        prog = clCreateProgramWithSource(ctx->context, 2, strs, lens, &e);
        if (e != CL_SUCCESS) {
            clnet__free(key);
            return clnet__cl_error(ctx, e, "clCreateProgramWithSource", name);
        }
        e = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
        if (e != CL_SUCCESS) {
            clnet_status st = build_error(ctx, prog, e, name, options);
            clReleaseProgram(prog);
            clnet__free(key);
            return st;
        }
        ctx->stats.programs_built++;
        size_t size = 0;
        unsigned char *bin = key ? program_binary(ctx, prog, &size) : NULL;
        if (bin)
            clnet__diskcache_store(ctx, key, bin, size);
        clnet__free(bin);
    }
    clnet__free(key);
    ctx->stats.build_seconds += clnet__now() - t0;
    *out = prog;
    return CLNET_OK;
}

static clnet__program *find_program(clnet_context *ctx, const char *name, const char *options)
{
    for (int i = 0; i < ctx->nprograms; i++)
        if (!strcmp(ctx->programs[i].name, name) && !strcmp(ctx->programs[i].options, options))
            return &ctx->programs[i];
    return NULL;
}

static clnet_status add_program(clnet_context *ctx, const char *name, const char *options,
                                cl_program prog, clnet__program **out)
{
    if (ctx->nprograms == ctx->cap_programs) {
        int cap = ctx->cap_programs ? 2 * ctx->cap_programs : 16;
        clnet__program *p = clnet__realloc(ctx->programs, (size_t)cap * sizeof *p);
        if (!p) {
            clReleaseProgram(prog);
            return clnet__error(ctx, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", name);
        }
        ctx->programs = p;
        ctx->cap_programs = cap;
    }
    clnet__program *p = &ctx->programs[ctx->nprograms];
    memset(p, 0, sizeof *p);
    p->name = dup_str(name);
    p->options = dup_str(options);
    p->program = prog;
    if (!p->name || !p->options) {
        clnet__free(p->name);
        clnet__free(p->options);
        clReleaseProgram(prog);
        return clnet__error(ctx, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", name);
    }
    ctx->nprograms++;
    *out = p;
    return CLNET_OK;
}

/* The kernel kname of p (created once). A program from the disk cache that
 * lacks it reports that in *cl_err (CL_INVALID_KERNEL_NAME) without recording
 * an error: the caller builds it again. */
static clnet_status program_kernel(clnet_context *ctx, clnet__program *p, const char *kname,
                                   cl_kernel *out, cl_int *cl_err)
{
    *cl_err = CL_SUCCESS;
    for (int k = 0; k < p->nkernels; k++)
        if (!strcmp(p->kernel_names[k], kname)) {
            *out = p->kernels[k];
            return CLNET_OK;
        }
    cl_int e;
    cl_kernel k = clCreateKernel(p->program, kname, &e);
    *cl_err = e;
    if (e == CL_INVALID_KERNEL_NAME && p->from_cache)
        return CLNET_ERR_OPENCL;
    if (e != CL_SUCCESS)
        return clnet__error(ctx, clnet__cl_status(e),
                            "kernel \"%s\" in program \"%s\": clCreateKernel failed: %s (%d)",
                            kname, p->name, clnet__cl_error_name(e), (int)e);
    char **names = clnet__realloc(p->kernel_names, (size_t)(p->nkernels + 1) * sizeof *names);
    if (names)
        p->kernel_names = names;
    cl_kernel *ks =
        names ? clnet__realloc(p->kernels, (size_t)(p->nkernels + 1) * sizeof *ks) : NULL;
    if (ks)
        p->kernels = ks;
    char *nm = ks ? dup_str(kname) : NULL;
    if (!nm) {
        clReleaseKernel(k);
        return clnet__error(ctx, CLNET_ERR_HOST_MEMORY, "kernel \"%s\": out of host memory", kname);
    }
    p->kernel_names[p->nkernels] = nm;
    p->kernels[p->nkernels++] = k;
    *out = k;
    return CLNET_OK;
}

/* Loads the prelude and, unless src is given, the program's source. */
static clnet_status sources(clnet_context *ctx, const char *name, const char **src, size_t *src_len,
                            char **own, char **prelude, size_t *prelude_len)
{
    size_t own_len = 0;
    clnet_status st = load_source(ctx, "prelude", prelude, prelude_len);
    if (st || *src)
        return st;
    if ((st = load_source(ctx, name, own, &own_len)))
        return st;
    *src = *own;
    *src_len = own_len;
    return CLNET_OK;
}

/* A program loaded from clnet's disk cache lacks a kernel its source has
 * (another program's binary under this key, say): the entry is dropped and
 * the program built again from source. Kernels already taken from the old
 * program keep it alive until the context goes. */
static clnet_status rebuild(clnet_context *ctx, clnet__program *p, const char *src, size_t src_len)
{
    char *own = NULL, *prelude = NULL;
    size_t prelude_len = 0;
    cl_program prog = NULL;
    int from_cache;
    clnet_status st = sources(ctx, p->name, &src, &src_len, &own, &prelude, &prelude_len);
    if (!st) {
        char *key = ctx->cache_dir
                        ? clnet__diskcache_key(ctx, prelude, prelude_len, src, src_len, p->options)
                        : NULL;
        if (key)
            clnet__diskcache_drop(ctx, key);
        clnet__free(key);
        ctx->stats.cache_rejected++;
        st = build(ctx, p->name, prelude, prelude_len, src, src_len, p->options, 0, &prog,
                   &from_cache);
    }
    if (!st) {
        clReleaseProgram(p->program);
        p->program = prog;
        p->from_cache = 0;
    }
    clnet__free(own);
    clnet__free(prelude);
    return st;
}

static clnet_status get_kernel(clnet_context *ctx, const char *name, const char *src,
                               size_t src_len, const char *extra, const char *kname, cl_kernel *out)
{
    char options[1024];
    snprintf(options, sizeof options, "%s%s%s", ctx->profile.options, extra && *extra ? " " : "",
             extra ? extra : "");
    clnet__program *p = find_program(ctx, name, options);
    clnet_status st = CLNET_OK;
    if (!p) {
        char *own = NULL, *prelude = NULL;
        size_t prelude_len = 0;
        const char *s = src;
        size_t s_len = src_len;
        cl_program prog = NULL;
        int from_cache = 0;
        if (!(st = sources(ctx, name, &s, &s_len, &own, &prelude, &prelude_len)) &&
            !(st = build(ctx, name, prelude, prelude_len, s, s_len, options, 1, &prog,
                         &from_cache)) &&
            !(st = add_program(ctx, name, options, prog, &p)))
            p->from_cache = from_cache;
        clnet__free(own);
        clnet__free(prelude);
        if (st)
            return st;
    }
    cl_int e;
    st = program_kernel(ctx, p, kname, out, &e);
    if (st && p->from_cache && e == CL_INVALID_KERNEL_NAME) {
        if ((st = rebuild(ctx, p, src, src_len)))
            return st;
        st = program_kernel(ctx, p, kname, out, &e);
    }
    return st;
}

clnet_status clnet__kernel(clnet_context *ctx, const char *program, const char *options,
                           const char *name, cl_kernel *out)
{
    return get_kernel(ctx, program, NULL, 0, options, name, out);
}

clnet_status clnet__kernel_templated(clnet_context *ctx, const char *program_name,
                                     const char *template_name, const char *header,
                                     const char *options, const char *name, cl_kernel *out)
{
    CLNET_CHECK_ARG(ctx, header != NULL);
    char full[1024];
    snprintf(full, sizeof full, "%s%s%s", ctx->profile.options, options && *options ? " " : "",
             options ? options : "");
    clnet__program *p = find_program(ctx, program_name, full);
    if (p) {
        /* A cached binary without the kernel goes on to get_kernel, which
         * rebuilds it from the full source. */
        cl_int e;
        clnet_status kst = program_kernel(ctx, p, name, out, &e);
        if (!(kst && p->from_cache && e == CL_INVALID_KERNEL_NAME))
            return kst;
    }
    char *text = NULL, *src = NULL;
    size_t len = 0, hlen = strlen(header);
    clnet_status st = load_source(ctx, template_name, &text, &len);
    if (!st && !(src = clnet__malloc(hlen + len + 1)))
        st = clnet__error(ctx, CLNET_ERR_HOST_MEMORY, "kernel program \"%s\": out of host memory",
                          program_name);
    if (!st) {
        memcpy(src, header, hlen);
        memcpy(src + hlen, text, len + 1);
        st = get_kernel(ctx, program_name, src, hlen + len, options, name, out);
    }
    clnet__free(src);
    clnet__free(text);
    return st;
}

clnet_status clnet__kernel_from_source(clnet_context *ctx, const char *program_name,
                                       const char *source, const char *options, const char *name,
                                       cl_kernel *out)
{
    CLNET_CHECK_ARG(ctx, source != NULL);
    return get_kernel(ctx, program_name, source, strlen(source), options, name, out);
}
