/* clnet — devices and contexts: choosing an OpenCL device, and the context
 * that owns its queue, its compiled kernels and its last error. */
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

/* What clnet knows about one device; plain data. */
typedef struct clnet_device_info {
    int platform_index, device_index;  /* the "P:D" spec of this device */
    char platform_name[128];
    char platform_version[128];
    char name[128];
    char vendor[128];
    char driver_version[64];
    char opencl_c_version[64];         /* CL_DEVICE_OPENCL_C_VERSION, verbatim */
    int opencl_c_major, opencl_c_minor;
    clnet_device_type type;
    unsigned compute_units;
    unsigned clock_mhz;
    uint64_t global_mem_bytes;
    uint64_t max_alloc_bytes;
    uint64_t local_mem_bytes;
    int local_mem_is_global;           /* local memory emulated in global memory (CPUs) */
    size_t max_work_group_size;
    unsigned preferred_vector_width_float;
    int has_fp16, has_fp64;
    int is_default;                    /* what a NULL spec picks */
} clnet_device_info;

/* One OpenCL platform and its devices. A platform can have no device (Mesa's
 * Clover on a machine without a supported GPU): then `note` says why. */
typedef struct clnet_platform_info {
    char name[128];
    char version[128];
    char note[256];                    /* "" when devices were found */
    int device_count;
    clnet_device_info *devices;        /* device_count entries */
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
 * are independent and may be used from different threads. */
typedef struct clnet_context clnet_context;

/* Receives every error message a context records. */
typedef void (*clnet_log_fn)(void *user, clnet_status status, const char *message);

typedef struct clnet_context_params {
    /* Which device. NULL or "": the CLNET_DEVICE environment variable, else the
     * first GPU, else the first CPU, else the first device. Specs: "gpu", "cpu",
     * "accelerator", "P:D" (platform and device index, as clnet-bench --list
     * prints them), or a case-insensitive substring of the device or platform
     * name ("pocl", "nvidia"). */
    const char *device;
    /* Where compiled kernels are kept between processes. NULL: the
     * CLNET_CACHE_DIR environment variable, else $XDG_CACHE_HOME/clnet, else
     * ~/.cache/clnet. "" disables the disk cache. */
    const char *cache_dir;
    int profiling;                     /* non-zero: the queue records profiling events */
    clnet_log_fn log;                  /* optional; called on every recorded error */
    void *log_user;
} clnet_context_params;

#define CLNET_CONTEXT_PARAMS_DEFAULT { NULL, NULL, 0, NULL, NULL }

/* Creates a context. params may be NULL (all defaults). On success *out is
 * caller-owned: destroy it with clnet_context_destroy(). On failure *out is
 * NULL and err (optional) receives the message, as for clnet_system_query. */
CLNET_API clnet_status clnet_context_create(const clnet_context_params *params,
                                            clnet_context **out, char *err, size_t err_size);

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
    uint64_t programs_built;           /* compiled from source */
    uint64_t programs_loaded;          /* loaded from the disk cache */
    uint64_t cache_rejected;           /* disk-cache entries found unusable and rebuilt */
    uint64_t buffers_created;          /* clCreateBuffer calls */
    uint64_t buffers_live;             /* device buffers alive now */
    uint64_t bytes_live;               /* device bytes alive now */
    uint64_t kernel_launches;
    uint64_t host_waits;               /* blocking reads, writes and finishes */
    double build_seconds;              /* wall time spent building or loading programs */
} clnet_context_stats;

CLNET_API clnet_status clnet_context_get_stats(const clnet_context *ctx, clnet_context_stats *out);

#ifdef __cplusplus
}
#endif
#endif
