/* clnet — the context's layout, private to src/runtime. */
#ifndef CLNET_CONTEXT_IMPL_H
#define CLNET_CONTEXT_IMPL_H

#include "runtime.h"
#include "shim.h"

/* A program built for this context, keyed by name and full options. */
typedef struct clnet__program {
    char *name;
    char *options;
    cl_program program;
    int from_cache; /* built from a disk-cache binary */
    int nkernels;
    char **kernel_names;
    cl_kernel *kernels;
} clnet__program;

struct clnet_context {
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
    clnet__profile profile;

    char *cache_dir;  /* NULL: disk cache off */
    char *kernel_dir; /* CLNET_KERNEL_DIR, or NULL */

    int nprograms, cap_programs;
    clnet__program *programs;

    cl_mem workspace; /* scratch shared by ops, grown on demand */
    size_t workspace_bytes;
    cl_mem gemm_scratch; /* src/ops/gemm.c's packing scratch, never shared */
    size_t gemm_scratch_bytes;

    int gemm_params; /* CLBlast parameters last set (src/ops/gemm.c) */

    int nforced; /* forced kernel variants (tests) */
    struct {
        char op[48];
        int value;
    } forced[16];

    clnet_context_stats stats;
    struct clnet__kprof *kprof; /* kernel timing (kprof.c), NULL when off */
    int kprof_report;           /* print the table at destroy (CLNET_PROFILE) */
    clnet_log_fn log;
    void *log_user;
    char errmsg[CLNET_ERRMSG_SIZE];
    int models_created; /* default model names (src/nn/model.c) */
};

/* Disk cache (diskcache.c). The key text names the device, the driver, the
 * options and a hash of the sources; a file whose key differs, whose sizes
 * disagree or whose checksum fails is rejected (returns 0). */
char *clnet__diskcache_key(const clnet_context *ctx, const char *prelude, size_t prelude_len,
                           const char *source, size_t source_len, const char *options);
int clnet__diskcache_load(const clnet_context *ctx, const char *key, unsigned char **binary,
                          size_t *size);
/* clnet__diskcache_parse (cachefile.h) checks an entry's bytes. */
/* Removes key's entry if it is a regular file (one whose binary failed to
 * yield its kernels). */
void clnet__diskcache_drop(const clnet_context *ctx, const char *key);
/* Best effort: a cache that cannot be written only costs speed. */
void clnet__diskcache_store(const clnet_context *ctx, const char *key, const unsigned char *binary,
                            size_t size);

/* Reads and checks every environment variable the library reads (env.c);
 * on an unknown value, CLNET_ERR_INVALID_ARG and a message naming the
 * variable and its allowed values in err. */
clnet_status clnet__env_read(clnet__env *env, char *err, size_t err_size);

/* Kernel timing (kprof.c). */
typedef struct clnet__kprof clnet__kprof;
int clnet__kprof_wanted(const clnet_context_params *params, const clnet__env *env);
clnet_status clnet__kprof_create(clnet_context *ctx);
void clnet__kprof_destroy(clnet_context *ctx);
/* Keeps a launch's event (owned from now on) for its kernel's row. */
void clnet__kprof_add(clnet_context *ctx, cl_kernel k, cl_event ev);
/* The queue has passed every pending event: add their times. */
void clnet__kprof_completed(clnet_context *ctx);

/* Device profile (device.c). */
clnet_status clnet__device_info(cl_platform_id p, cl_device_id d, clnet_device_info *info,
                                char *err, size_t err_size);
/* The same under the discovery lock (device.c), for a device not found by
 * clnet's own enumeration (clnet_context_wrap). */
clnet_status clnet__device_info_locked(cl_platform_id p, cl_device_id d, clnet_device_info *info,
                                       char *err, size_t err_size);
void clnet__profile_init(clnet__profile *prof, const clnet_device_info *info);

/* A device a spec fits, with what the context needs to open it. */
typedef struct clnet__candidate {
    cl_platform_id platform;
    cl_device_id device;
    clnet_device_info info;
} clnet__candidate;

/* The devices a spec fits (NULL or "": CLNET_DEVICE, else every device in the
 * default order: GPUs, CPUs, accelerators, others), in the order the choice
 * tries them. On success *out is malloc'd (caller frees) and *count >= 1; with
 * none, CLNET_ERR_NO_DEVICE and a message listing the devices there are. */
clnet_status clnet__device_candidates(const char *spec, clnet__candidate **out, int *count,
                                      char *err, size_t err_size);

/* The probe: builds the embedded prelude plus a one-line kernel with the
 * context's base options, runs it with the profile's work-group size and
 * checks what it wrote. It uses the raw OpenCL objects of ctx and leaves no
 * trace (no program kept, no cache file, no counters). On failure err gets
 * the reason (with the build log for CLNET_ERR_BUILD). clnet__probe_source
 * builds `source` instead (it must define clnet_probe as the default does:
 * tests use it to see a build fail). */
typedef clnet_status (*clnet__probe_fn)(clnet_context *ctx, char *err, size_t err_size);
clnet_status clnet__probe(clnet_context *ctx, char *err, size_t err_size);
clnet_status clnet__probe_source(clnet_context *ctx, const char *source, char *err,
                                 size_t err_size);

/* clnet_context_create with a chosen probe (tests pass one that fails on a
 * given device); probe may be NULL (never probe). */
clnet_status clnet__context_create_probed(const clnet_context_params *params, clnet__probe_fn probe,
                                          clnet_context **out, char *err, size_t err_size);

/* Formats into a caller's error buffer (NULL-safe). */
void clnet__errbuf(char *err, size_t err_size, const char *fmt, ...) CLNET_PRINTF(3, 4);

#endif
