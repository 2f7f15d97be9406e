/* clnet — the runtime's internal interface: what src/tensor and src/ops use
 * to record errors, get kernels and launch them. Only src/runtime calls the
 * OpenCL API beyond passing a cl_mem along. */
#ifndef CLNET_RUNTIME_H
#define CLNET_RUNTIME_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "clnet/opencl.h"
#include "clnet/context.h"
#include "alloc.h"
#include "knobs.h"

#if defined(__GNUC__)
#define CLNET_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLNET_PRINTF(f, a)
#endif

#define CLNET_ERRMSG_SIZE 8192

/* ---- Errors ------------------------------------------------------------- */

/* Records a formatted message on ctx (and sends it to the log callback);
 * returns status so callers can `return clnet__error(...)`. */
clnet_status clnet__error(const clnet_context *ctx, clnet_status status, const char *fmt, ...)
    CLNET_PRINTF(3, 4);
/* Records a failed OpenCL call: "<what>: <call> failed: CL_XXX (-n)". */
clnet_status clnet__cl_error(const clnet_context *ctx, cl_int err, const char *call,
                             const char *what);
/* The status that an OpenCL error code maps to. */
clnet_status clnet__cl_status(cl_int err);
/* "CL_INVALID_VALUE" for -30; "CL_UNKNOWN_ERROR" for codes it does not know. */
const char *clnet__cl_error_name(cl_int err);

/* Checks an argument; on failure records "<func>: invalid argument: <cond>"
 * and returns CLNET_ERR_INVALID_ARG from the calling function. ctx may be
 * NULL (then only the status is returned). */
#define CLNET_CHECK_ARG(ctx, cond)                                                                 \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return clnet__error((ctx), CLNET_ERR_INVALID_ARG, "%s: invalid argument: %s",          \
                                __func__, #cond);                                                  \
    } while (0)

/* ---- Device profile ------------------------------------------------------ */

/* Kernels use at most this many bytes of local memory per work-item of the
 * profile's work-group size (e.g. a float4 and a float scratch array); the
 * work-group size is chosen so that it fits the device's local memory. */
#define CLNET_LOCAL_BYTES_PER_ITEM 32

/* The environment knobs (env.c), read and checked once when a context is
 * created: an unknown value fails clnet_context_create. */
typedef struct clnet__env {
    int gemm_kernel; /* CLNET_GEMM_KERNEL: -1 unset (the device's
                      * choice), else 0 own, 1 packed, 2 clblast */
    int profile;     /* CLNET_PROFILE=1 */
} clnet__env;

/* Read once when the context is created; picks kernel variants. */
typedef struct clnet__profile {
    clnet_device_info info;
    size_t wg_size;            /* the 1-D work-group size every kernel uses */
    int cl12;                  /* device compiles OpenCL C 1.2 */
    char options[256];         /* base build options for every program:
                                * -cl-std=CL1.2 (where the device has it) */
    char feature_options[256]; /* the same for a variant that needs an optional
                                * feature: -cl-std=CL2.0 or CL3.0 where the
                                * device compiles it, so the feature's macros
                                * (cl/prelude.cl: CLNET_HAS_*) are defined */
    int store_binaries;        /* use clnet's disk cache (load and store); 0 where
                                * the driver caches programs itself and its
                                * binaries are neither cheap nor safe to share
                                * (pocl; docs/speed.md, docs/hardening.md). Tests
                                * force 1 with the variant "diskcache.store". */
    int fma;                   /* a hardware single-precision fma (CL_FP_FMA) */
    clnet__env env;            /* the environment, as read at creation */
} clnet__profile;

/* Non-zero when the device has every feature in `need` (CLNET_FEATURE_*
 * flags of clnet/context.h). */
int clnet__has_features(const clnet_context *ctx, unsigned need);

/* A kernel variant that needs optional features: as clnet__kernel (or, with
 * source != NULL, clnet__kernel_from_source), built with the profile's
 * feature_options in place of its base options. When the device lacks one
 * of `need`, returns CLNET_ERR_UNSUPPORTED (recorded on ctx) and the caller
 * runs its fallback, an OpenCL C 1.2 variant; every such variant must have
 * one. */
clnet_status clnet__kernel_features(clnet_context *ctx, unsigned need, const char *program,
                                    const char *source, const char *options, const char *name,
                                    cl_kernel *out);

/* ---- Kernels ------------------------------------------------------------- */

/* Returns the kernel `name` from program `program` (a file name in cl/,
 * without ".cl") built with the profile's base options plus `options` (may be
 * NULL). Built on first use, then cached in memory and on disk. The kernel is
 * borrowed: valid until ctx is destroyed. */
clnet_status clnet__kernel(clnet_context *ctx, const char *program, const char *options,
                           const char *name, cl_kernel *out);

/* Builds a program from an explicit source (tests: a broken kernel yields its
 * build log). Same caching as clnet__kernel. */
clnet_status clnet__kernel_from_source(clnet_context *ctx, const char *program_name,
                                       const char *source, const char *options, const char *name,
                                       cl_kernel *out);

/* A program made of `header` (generated code, e.g. a user's expression)
 * followed by the kernel file `template_name` (cl/, without ".cl"), cached
 * under `program_name` like any program: the name must tell apart every
 * header (it is the in-memory cache key with the options; the disk cache
 * keys on the whole source). */
clnet_status clnet__kernel_templated(clnet_context *ctx, const char *program_name,
                                     const char *template_name, const char *header,
                                     const char *options, const char *name, cl_kernel *out);

/* Kernel arguments: build an array with these and pass it to clnet__launch. */
typedef struct clnet__arg {
    size_t size;
    int is_local; /* local memory of `size` bytes, no value */
    union {
        cl_mem mem;
        cl_int i;
        cl_uint u;
        cl_ulong ul;
        cl_long l;
        cl_float f;
    } v;
} clnet__arg;

#define CLNET_ARG_MEM(m) ((clnet__arg){ sizeof(cl_mem), 0, { .mem = (m) } })
#define CLNET_ARG_INT(x) ((clnet__arg){ sizeof(cl_int), 0, { .i = (cl_int)(x) } })
#define CLNET_ARG_UINT(x) ((clnet__arg){ sizeof(cl_uint), 0, { .u = (cl_uint)(x) } })
#define CLNET_ARG_ULONG(x) ((clnet__arg){ sizeof(cl_ulong), 0, { .ul = (cl_ulong)(x) } })
#define CLNET_ARG_LONG(x) ((clnet__arg){ sizeof(cl_long), 0, { .l = (cl_long)(x) } })
#define CLNET_ARG_FLOAT(x) ((clnet__arg){ sizeof(cl_float), 0, { .f = (cl_float)(x) } })
#define CLNET_ARG_LOCAL(bytes) ((clnet__arg){ (bytes), 1, { .ul = 0 } })

/* Kernel arguments as a list: CLNET_ARGS(a, b, c) expands to the count and
 * the array, for the (nargs, args) parameters of the launch functions, so
 * that no launch carries a hand-counted number. */
#define CLNET_ARGS(...)                                                                            \
    (int)(sizeof((clnet__arg[]){ __VA_ARGS__ }) / sizeof(clnet__arg)), (const clnet__arg[])        \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

/* Sets the arguments and enqueues an ND-range of `dims` dimensions. global
 * sizes are rounded up to multiples of local (non-uniform work-groups are
 * never assumed): kernels guard against the excess. local may be NULL (the
 * driver chooses). `what` names the operation for error messages. */
clnet_status clnet__launch(clnet_context *ctx, cl_kernel k, const char *what, int nargs,
                           const clnet__arg *args, int dims, const size_t *global,
                           const size_t *local);

/* A 1-D launch with the profile's work-group size over n work-items. */
clnet_status clnet__launch1d(clnet_context *ctx, cl_kernel k, const char *what, int nargs,
                             const clnet__arg *args, size_t n);

/* ---- Buffers ------------------------------------------------------------- */

clnet_status clnet__buffer_create(clnet_context *ctx, size_t bytes, cl_mem *out);
void clnet__buffer_release(clnet_context *ctx, cl_mem mem, size_t bytes);
clnet_status clnet__buffer_write(clnet_context *ctx, cl_mem mem, size_t offset_bytes, size_t bytes,
                                 const void *src);
clnet_status clnet__buffer_read(clnet_context *ctx, cl_mem mem, size_t offset_bytes, size_t bytes,
                                void *dst);

/* A scratch buffer of at least `bytes`, owned by the context and valid until
 * the next call that asks for one. The queue is in order, so one operation may
 * use it for its own temporaries; it must not keep data there across calls. */
clnet_status clnet__workspace(clnet_context *ctx, size_t bytes, cl_mem *out);

/* The same, a second buffer that only src/ops/gemm.c uses (to pack A and B),
 * so that callers may pass views of the workspace to clnet__gemm. Grown on
 * demand, kept until the context is destroyed, counted in the context's
 * stats like any buffer. */
clnet_status clnet__gemm_scratch(clnet_context *ctx, size_t bytes, cl_mem *out);

/* Kernel variants. An op that has several implementations (direct or
 * im2col convolution, a tiled or a simple kernel) asks which one to run with
 * clnet__variant(ctx, "conv2d.forward", chosen), passing the one it would
 * choose by shape and device; tests force each variant in turn with
 * clnet__force_variant (value < 0 clears). Names are "<op>.<direction>";
 * every name and the values it takes are registered in knobs.h, and forcing
 * a name or a value not there is CLNET_ERR_INVALID_ARG. */
int clnet__variant(const clnet_context *ctx, const char *op, int chosen);
clnet_status clnet__force_variant(clnet_context *ctx, const char *op, int value);

const clnet__profile *clnet__context_profile(const clnet_context *ctx);

/* src/ops/gemm.c's record of the CLBlast parameter set it last gave CLBlast
 * for this context (0 until the first GEMM); see clnet__gemm_params_applied
 * in src/ops/gemm.h. The context owns it because CLBlast's own state is
 * per device and process, and an override costs ~0.7 ms: too much per call. */
int *clnet__context_gemm_params(clnet_context *ctx);

/* ---- Embedded kernel sources (generated from cl/ at build time) --------- */

typedef struct clnet__cl_source {
    const char *name; /* file name without ".cl" */
    const unsigned char *text;
    size_t size;
} clnet__cl_source;

extern const clnet__cl_source clnet__cl_sources[];
extern const size_t clnet__cl_source_count;

/* ---- Small helpers --------------------------------------------------------- */

/* 64-bit FNV-1a (cachefile.c), continued from h (start with CLNET_FNV_OFFSET). */
#define CLNET_FNV_OFFSET 0xcbf29ce484222325ull
uint64_t clnet__fnv1a(uint64_t h, const void *data, size_t n);

/* Monotonic seconds. */
double clnet__now(void);

#endif
