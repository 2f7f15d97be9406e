/* clnet — devices and contexts: choosing an OpenCL device, and the context
 * that owns its queue, its compiled kernels and its last error.
 *
 * Params: each clnet_x_params struct here has CLNET_X_PARAMS_INIT, a
 * designated-initializer brace list (for `static const` and local
 * initializers), and CLNET_X_PARAMS_DEFAULT, the same values as a compound
 * literal (for assignment and arguments). A NULL params pointer means the
 * defaults. */
#ifndef CLNET_CONTEXT_H
#define CLNET_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Devices ------------------------------------------------------------ */

typedef enum clnet_device_type {
    CLNET_DEVICE_OTHER = 0,
    CLNET_DEVICE_CPU,
    CLNET_DEVICE_GPU,
    CLNET_DEVICE_ACCELERATOR
} clnet_device_type;

/* Optional device capabilities, as flags in clnet_device_info.features. Each
 * is read from the device (never from the platform's version string). clnet's
 * kernels are OpenCL C 1.2 and need none of them; a kernel variant that uses
 * one is built only where the device has it and always has a fallback. */
enum {
    CLNET_FEATURE_FP16 = 1u << 0,      /* half arithmetic: cl_khr_fp16 */
    CLNET_FEATURE_FP64 = 1u << 1,      /* double: cl_khr_fp64 or __opencl_c_fp64 */
    CLNET_FEATURE_SUBGROUPS = 1u << 2, /* cl_khr_subgroups, __opencl_c_subgroups, or
                                        * OpenCL 2.1+ with sub-groups */
    CLNET_FEATURE_WORK_GROUP_COLLECTIVES =
        1u << 3, /* work_group_reduce_add & co: OpenCL C
                  * 2.x, or __opencl_c_work_group_collective_functions */
    CLNET_FEATURE_NON_UNIFORM_WORK_GROUPS = 1u
                                            << 4, /* OpenCL C 2.x, or 3.0 with
                                                   * CL_DEVICE_NON_UNIFORM_WORK_GROUP_SUPPORT; clnet
                                                   * never relies on it (launches round up) */
    CLNET_FEATURE_OPENCL_C_30 = 1u << 5           /* the compiler accepts -cl-std=CL3.0
                                                   * (CL_DEVICE_OPENCL_C_ALL_VERSIONS lists 3.0) */
};

/* What clnet knows about one device; plain data. */
typedef struct clnet_device_info {
    int platform_index, device_index; /* the "P:D" spec of this device */
    char platform_name[128];
    char platform_version[128];
    char name[128];
    char vendor[128];
    char driver_version[64];
    char opencl_c_version[64]; /* CL_DEVICE_OPENCL_C_VERSION, verbatim */
    int opencl_c_major, opencl_c_minor;
    int opencl_major, opencl_minor; /* the device's OpenCL version (CL_DEVICE_VERSION) */
    unsigned features;              /* CLNET_FEATURE_* flags */
    clnet_device_type type;
    unsigned compute_units;
    unsigned clock_mhz;
    uint64_t global_mem_bytes;
    uint64_t max_alloc_bytes;
    uint64_t local_mem_bytes;
    int local_mem_is_global; /* local memory emulated in global memory (CPUs) */
    size_t max_work_group_size;
    unsigned preferred_vector_width_float;
    int has_fp16, has_fp64;
    int is_default; /* first in the default order (see
                     * clnet_context_params.device); unprobed */
} clnet_device_info;

/* One OpenCL platform and its devices. A platform can have no device (Mesa's
 * Clover on a machine without a supported GPU): then `note` says why. */
typedef struct clnet_platform_info {
    char name[128];
    char version[128];
    char note[256]; /* "" when devices were found */
    int device_count;
    clnet_device_info *devices; /* device_count entries */
} clnet_platform_info;

typedef struct clnet_system {
    int platform_count;
    clnet_platform_info *platforms;
} clnet_system;

/* Lists every OpenCL platform and device. On success *out is caller-owned:
 * free it with clnet_system_free(). On failure *out is NULL and, when err is
 * not NULL, err receives a NUL-terminated message of at most err_size bytes
 * (with CLNET_ERR_NO_PLATFORM it says how to install a driver). */
CLNET_API clnet_status clnet_system_query(clnet_system **out, char *err, size_t err_size);
/* Frees a system listing; NULL is a no-op. */
CLNET_API void clnet_system_free(clnet_system *sys);

/* ---- Contexts ----------------------------------------------------------- */

/* A context: one device, one in-order queue, the kernels built for it and
 * the last error. Thread-safety: a context and everything created from it
 * (tensors included) must be used by one thread at a time; distinct contexts
 * are independent and may be created, used and destroyed from different
 * threads at once (device discovery is serialized inside clnet). */
typedef struct clnet_context clnet_context;

/* Receives every error message a context records (status: the error), and
 * reports with status CLNET_OK: the CLNET_PROFILE=1 kernel-time table when the
 * context is destroyed. The library itself never prints; a program that wants
 * these on stderr passes clnet_log_stderr. */
typedef void (*clnet_log_fn)(void *user, clnet_status status, const char *message);

/* A log callback that prints to stderr: a report as it is, an error as
 * "clnet: CLNET_ERR_...: message". user is ignored. */
CLNET_API void clnet_log_stderr(void *user, clnet_status status, const char *message);

typedef struct clnet_context_params {
    /* Which device. NULL or "": the CLNET_DEVICE environment variable, else the
     * first GPU, else the first CPU, else the first device. Specs: "gpu", "cpu",
     * "accelerator", "P:D" (platform and device index, as clnet-bench --list
     * prints them), or a case-insensitive substring of the device name, the
     * platform name or the platform version ("pocl", "nvidia"). When several devices fit, they are
     * tried in that order and the first one on which a trivial kernel builds and runs is taken: a
     * device whose driver cannot build clnet's kernels is skipped (the context's errmsg then names
     * it and says why). A spec that fits one device takes it without this probe. */
    const char *device;
    /* Where compiled kernels are kept between processes. NULL: the
     * CLNET_CACHE_DIR environment variable, else $XDG_CACHE_HOME/clnet, else
     * ~/.cache/clnet. "" disables the disk cache. On pocl clnet neither
     * stores nor loads binaries (even with POCL_KERNEL_CACHE=0): pocl keeps
     * its own cache, and its binaries are neither cheap to fetch nor safe to
     * share between processes (docs/hardening.md). Only regular files are
     * read from the directory; an entry that fails any check, or whose
     * binary lacks a kernel, is rebuilt from source and replaced. */
    const char *cache_dir;
    /* Non-zero: the queue records profiling events (for the caller's own
     * events through clnet/opencl.h). CLNET_PROFILE_KERNELS: clnet also times
     * every kernel it launches (clnet_context_kernel_times). The environment
     * variable CLNET_PROFILE=1 (or 0; another value fails the creation) turns
     * kernel timing on for every context and sends a table of them to the log
     * callback when the context is destroyed (clnet_log_stderr prints it). */
    int profiling;
    clnet_log_fn log; /* optional; called on every recorded error */
    void *log_user;
} clnet_context_params;

#define CLNET_CONTEXT_PARAMS_INIT                                                                  \
    {                                                                                              \
        .device = NULL, .cache_dir = NULL, .profiling = 0, .log = NULL, .log_user = NULL           \
    }
#define CLNET_CONTEXT_PARAMS_DEFAULT ((clnet_context_params)CLNET_CONTEXT_PARAMS_INIT)

/* Creates a context. params may be NULL (all defaults). On success *out is
 * caller-owned: destroy it with clnet_context_destroy(); if devices were
 * skipped (see clnet_context_params.device), clnet_context_errmsg() says which
 * and why, and the log callback receives the same note. On failure *out is
 * NULL and err (optional) receives the message, as for clnet_system_query;
 * when every device that fits failed its probe, it names each and why. */
CLNET_API clnet_status clnet_context_create(const clnet_context_params *params, clnet_context **out,
                                            char *err, size_t err_size);

/* Destroys a context and its kernels. Every tensor created from it must have
 * been destroyed first. NULL is a no-op. */
CLNET_API void clnet_context_destroy(clnet_context *ctx);

/* The message of the last failure recorded on ctx ("" if none). Borrowed:
 * valid until the next call on ctx. */
CLNET_API const char *clnet_context_errmsg(const clnet_context *ctx);

/* The device the context runs on. Borrowed; valid until ctx is destroyed. */
CLNET_API const clnet_device_info *clnet_context_device(const clnet_context *ctx);

/* Waits until all work queued on ctx has finished. */
CLNET_API clnet_status clnet_context_finish(clnet_context *ctx);

/* Counters since the context was created, for tests and benchmarks. */
typedef struct clnet_context_stats {
    uint64_t programs_built;  /* compiled from source */
    uint64_t programs_loaded; /* loaded from the disk cache */
    uint64_t cache_rejected;  /* disk-cache entries found unusable and rebuilt */
    uint64_t buffers_created; /* clCreateBuffer calls */
    uint64_t buffers_live;    /* device buffers alive now */
    uint64_t bytes_live;      /* device bytes alive now */
    uint64_t kernel_launches;
    uint64_t host_waits;  /* blocking reads, writes and finishes */
    double build_seconds; /* wall time spent building or loading programs */
} clnet_context_stats;

CLNET_API clnet_status clnet_context_get_stats(const clnet_context *ctx, clnet_context_stats *out);

/* ---- Kernel timing --------------------------------------------------------
 * With kernel timing on (clnet_context_params.profiling = CLNET_PROFILE_KERNELS,
 * or CLNET_PROFILE=1 in the environment), each kernel launch records an event;
 * its device time (profiling START to END) is added to the kernel's row.
 * Costs an event per launch; off, it costs nothing. GEMMs run by CLBlast are
 * not included (CLBlast launches its own kernels). */
#define CLNET_PROFILE_QUEUE 1
#define CLNET_PROFILE_KERNELS 2

typedef struct clnet_kernel_time {
    char name[64]; /* the kernel's function name */
    uint64_t launches;
    double ms; /* device time, summed over launches */
} clnet_kernel_time;

/* Waits for queued work, then writes the rows (most time first) into
 * out[0 .. min(cap, *count)) and the number of rows into *count. Kernel
 * timing off: CLNET_ERR_INVALID_ARG. */
CLNET_API clnet_status clnet_context_kernel_times(clnet_context *ctx, clnet_kernel_time *out,
                                                  int cap, int *count);
/* Waits for queued work and clears the rows (e.g. after warm-up). */
CLNET_API clnet_status clnet_context_kernel_times_reset(clnet_context *ctx);

#ifdef __cplusplus
}
#endif
#endif
