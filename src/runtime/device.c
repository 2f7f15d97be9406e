/* clnet — device enumeration, the device profile and device choice. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "context_impl.h"

#define MAX_PLATFORMS 32
#define MAX_DEVICES 64

/* OpenCL 3.0 queries; the headers hide them below CL_TARGET_OPENCL_VERSION 300.
 * A device answers them only if its CL_DEVICE_VERSION is 3.0 or later. */
#define Q_MAX_NUM_SUB_GROUPS 0x105C
#define Q_NON_UNIFORM_WORK_GROUP_SUPPORT 0x1065
#define Q_OPENCL_C_ALL_VERSIONS 0x1066
#define Q_WORK_GROUP_COLLECTIVE_FUNCTIONS_SUPPORT 0x1068
#define Q_OPENCL_C_FEATURES 0x106F
typedef struct {
    cl_uint version; /* major in bits 22-31 */
    char name[64];
} name_version;

/* device_string's error when the host is out of memory (not an OpenCL code). */
#define HOST_OOM 1

/* A device string query, malloc'd and NUL-terminated; NULL when the query
 * fails (*e says why: its OpenCL error, or HOST_OOM). */
static char *device_string(cl_device_id d, cl_device_info what, cl_int *e)
{
    size_t n = 0;
    char *s = NULL;
    if ((*e = clGetDeviceInfo(d, what, 0, NULL, &n)) != CL_SUCCESS)
        return NULL;
    if (!(s = clnet__malloc(n + 1))) {
        *e = HOST_OOM;
        return NULL;
    }
    if (n && (*e = clGetDeviceInfo(d, what, n, s, NULL)) != CL_SUCCESS) {
        clnet__free(s);
        return NULL;
    }
    s[n] = 0;
    return s;
}

static cl_int info_string(cl_device_id d, cl_device_info what, char *buf, size_t size)
{
    cl_int e;
    char *s = device_string(d, what, &e);
    if (s)
        snprintf(buf, size, "%s", s);
    clnet__free(s);
    return s ? CL_SUCCESS : e;
}

static void platform_string(cl_platform_id p, cl_platform_info what, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    if (clGetPlatformInfo(p, what, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return;
    char *tmp = clnet__malloc(n + 1);
    if (!tmp)
        return;
    if (clGetPlatformInfo(p, what, n, tmp, NULL) == CL_SUCCESS) {
        tmp[n] = 0;
        snprintf(buf, size, "%s", tmp);
    }
    clnet__free(tmp);
}

/* Whether a space-separated list holds `word` as a whole word. */
static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *s = list; s && (s = strstr(s, word)) != NULL; s += n)
        if ((s == list || s[-1] == ' ') && (s[n] == 0 || s[n] == ' '))
            return 1;
    return 0;
}

/* A query of a list of cl_name_version (OpenCL 3.0): calls `each` on every
 * entry's major version and name. */
static void name_versions(cl_device_id d, cl_device_info what, unsigned *features,
                          void (*each)(unsigned *features, unsigned major, const char *name))
{
    size_t n = 0;
    if (clGetDeviceInfo(d, what, 0, NULL, &n) != CL_SUCCESS || n < sizeof(name_version))
        return;
    name_version *v = clnet__malloc(n);
    if (v && clGetDeviceInfo(d, what, n, v, NULL) == CL_SUCCESS)
        for (size_t i = 0; i < n / sizeof *v; i++) {
            v[i].name[sizeof v[i].name - 1] = 0;
            each(features, v[i].version >> 22, v[i].name);
        }
    clnet__free(v);
}

static void c_version(unsigned *features, unsigned major, const char *name)
{
    (void)name;
    if (major == 3)
        *features |= CLNET_FEATURE_OPENCL_C_30;
}

static void c_feature(unsigned *features, unsigned major, const char *name)
{
    (void)major;
    if (!strcmp(name, "__opencl_c_subgroups"))
        *features |= CLNET_FEATURE_SUBGROUPS;
    else if (!strcmp(name, "__opencl_c_work_group_collective_functions"))
        *features |= CLNET_FEATURE_WORK_GROUP_COLLECTIVES;
    else if (!strcmp(name, "__opencl_c_fp64"))
        *features |= CLNET_FEATURE_FP64;
}

/* The optional features (CLNET_FEATURE_*), from the extension string, the
 * OpenCL C version and, on OpenCL 3.0 devices, the feature queries. */
static unsigned read_features(cl_device_id d, const clnet_device_info *info, const char *ext)
{
    unsigned f = 0;
    if (has_word(ext, "cl_khr_fp16"))
        f |= CLNET_FEATURE_FP16;
    if (has_word(ext, "cl_khr_fp64"))
        f |= CLNET_FEATURE_FP64;
    if (has_word(ext, "cl_khr_subgroups"))
        f |= CLNET_FEATURE_SUBGROUPS;
    if (info->opencl_c_major == 2) /* core in OpenCL C 2.x, optional again in 3.0 */
        f |= CLNET_FEATURE_WORK_GROUP_COLLECTIVES | CLNET_FEATURE_NON_UNIFORM_WORK_GROUPS;
    int v21 = info->opencl_major > 2 || (info->opencl_major == 2 && info->opencl_minor >= 1);
    cl_uint nsub = 0;
    if (v21 && clGetDeviceInfo(d, Q_MAX_NUM_SUB_GROUPS, sizeof nsub, &nsub, NULL) == CL_SUCCESS &&
        nsub > 0)
        f |= CLNET_FEATURE_SUBGROUPS;
    if (info->opencl_major >= 3) {
        cl_bool nu = CL_FALSE;
        if (clGetDeviceInfo(d, Q_NON_UNIFORM_WORK_GROUP_SUPPORT, sizeof nu, &nu, NULL) ==
                CL_SUCCESS &&
            nu)
            f |= CLNET_FEATURE_NON_UNIFORM_WORK_GROUPS;
        name_versions(d, Q_OPENCL_C_ALL_VERSIONS, &f, c_version);
        if (f & CLNET_FEATURE_OPENCL_C_30)
            name_versions(d, Q_OPENCL_C_FEATURES, &f, c_feature);
    }
    return f;
}

static clnet_status query_failed(char *err, size_t err_size, const char *device, const char *what,
                                 cl_int e)
{
    if (e == HOST_OOM) {
        clnet__errbuf(err, err_size, "device \"%s\": out of host memory (reading %s)", device,
                      what);
        return CLNET_ERR_HOST_MEMORY;
    }
    clnet__errbuf(err, err_size, "device \"%s\": clGetDeviceInfo(%s) failed: %s (%d)", device, what,
                  clnet__cl_error_name(e), (int)e);
    return clnet__cl_status(e);
}

clnet_status clnet__device_info(cl_platform_id p, cl_device_id d, clnet_device_info *info,
                                char *err, size_t err_size)
{
    memset(info, 0, sizeof *info);
    platform_string(p, CL_PLATFORM_NAME, info->platform_name, sizeof info->platform_name);
    platform_string(p, CL_PLATFORM_VERSION, info->platform_version, sizeof info->platform_version);
    /* A string the device will not give makes its profile unknowable: the
     * device is refused (skipped when there are others), never guessed at. */
    char version[128];
    const struct {
        cl_device_info what;
        const char *name;
        char *buf;
        size_t size;
    } strs[] = {
        { CL_DEVICE_NAME, "CL_DEVICE_NAME", info->name, sizeof info->name },
        { CL_DEVICE_VENDOR, "CL_DEVICE_VENDOR", info->vendor, sizeof info->vendor },
        { CL_DRIVER_VERSION, "CL_DRIVER_VERSION", info->driver_version,
          sizeof info->driver_version },
        { CL_DEVICE_OPENCL_C_VERSION, "CL_DEVICE_OPENCL_C_VERSION", info->opencl_c_version,
          sizeof info->opencl_c_version },
        { CL_DEVICE_VERSION, "CL_DEVICE_VERSION", version, sizeof version },
    };
    cl_int e = CL_SUCCESS;
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if ((e = info_string(d, strs[i].what, strs[i].buf, strs[i].size)) != CL_SUCCESS)
            return query_failed(err, err_size, info->name, strs[i].name, e);
    if (sscanf(info->opencl_c_version, "OpenCL C %d.%d", &info->opencl_c_major,
               &info->opencl_c_minor) != 2) {
        info->opencl_c_major = 1;
        info->opencl_c_minor = 0;
    }
    if (sscanf(version, "OpenCL %d.%d", &info->opencl_major, &info->opencl_minor) != 2) {
        info->opencl_major = 1;
        info->opencl_minor = 0;
    }

    cl_device_type type = 0;
    cl_uint cu = 0, clock = 0, vec = 0;
    cl_ulong gmem = 0, alloc = 0, lmem = 0;
    cl_device_local_mem_type ltype = CL_LOCAL;
    size_t wg = 0;
    e = clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    if (e == CL_SUCCESS)
        e = clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    if (e == CL_SUCCESS)
        e = clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof clock, &clock, NULL);
    if (e == CL_SUCCESS)
        e = clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
    if (e == CL_SUCCESS)
        e = clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof alloc, &alloc, NULL);
    if (e == CL_SUCCESS)
        e = clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    if (e == CL_SUCCESS)
        e = clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_TYPE, sizeof ltype, &ltype, NULL);
    if (e == CL_SUCCESS)
        e = clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    if (e == CL_SUCCESS)
        e = clGetDeviceInfo(d, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT, sizeof vec, &vec, NULL);
    if (e != CL_SUCCESS) {
        clnet__errbuf(err, err_size, "device \"%s\": clGetDeviceInfo failed: %s (%d)", info->name,
                      clnet__cl_error_name(e), (int)e);
        return clnet__cl_status(e);
    }
    char *ext = device_string(d, CL_DEVICE_EXTENSIONS, &e);
    if (!ext)
        return query_failed(err, err_size, info->name, "CL_DEVICE_EXTENSIONS", e);
    info->features = read_features(d, info, ext);
    clnet__free(ext);

    info->type = (type & CL_DEVICE_TYPE_GPU)           ? CLNET_DEVICE_GPU
                 : (type & CL_DEVICE_TYPE_CPU)         ? CLNET_DEVICE_CPU
                 : (type & CL_DEVICE_TYPE_ACCELERATOR) ? CLNET_DEVICE_ACCELERATOR
                                                       : CLNET_DEVICE_OTHER;
    info->compute_units = cu;
    info->clock_mhz = clock;
    info->global_mem_bytes = gmem;
    info->max_alloc_bytes = alloc;
    info->local_mem_bytes = lmem;
    info->local_mem_is_global = ltype == CL_GLOBAL;
    info->max_work_group_size = wg;
    info->preferred_vector_width_float = vec;
    info->has_fp64 = (info->features & CLNET_FEATURE_FP64) != 0;
    info->has_fp16 = (info->features & CLNET_FEATURE_FP16) != 0;
    return CLNET_OK;
}

void clnet__profile_init(clnet__profile *prof, const clnet_device_info *info)
{
    clnet_device_info copy = *info; /* info may point into prof */
    memset(prof, 0, sizeof *prof);
    prof->info = copy;
    /* One fixed 1-D work-group size per device: pocl compiles a kernel again
     * for every new local size, so we never vary it per call. Kernels keep at
     * most CLNET_LOCAL_BYTES_PER_ITEM bytes of local memory per work-item. */
    size_t want = copy.type == CLNET_DEVICE_GPU ? 256 : 64;
    size_t wg = 1;
    while (
        wg * 2 <= want && wg * 2 <= copy.max_work_group_size &&
        (copy.local_mem_bytes == 0 || wg * 2 * CLNET_LOCAL_BYTES_PER_ITEM <= copy.local_mem_bytes))
        wg *= 2;
    prof->wg_size = wg;
    prof->cl12 = copy.opencl_c_major > 1 || (copy.opencl_c_major == 1 && copy.opencl_c_minor >= 2);
    /* Optional features need the OpenCL C version that defines them: 2.x where
     * the device compiles 2.x, else 3.0 where it accepts 3.0 (its feature
     * macros), else the base version (extensions only). */
    const char *fstd = copy.opencl_c_major == 2                    ? "-cl-std=CL2.0 "
                       : copy.features & CLNET_FEATURE_OPENCL_C_30 ? "-cl-std=CL3.0 "
                       : prof->cl12                                ? "-cl-std=CL1.2 "
                                                                   : "";
    snprintf(prof->options, sizeof prof->options, "%s-DCLNET_WG=%zu",
             prof->cl12 ? "-cl-std=CL1.2 " : "", prof->wg_size);
    snprintf(prof->feature_options, sizeof prof->feature_options, "%s-DCLNET_WG=%zu", fstd,
             prof->wg_size);
    /* pocl keeps every program it builds in its own disk cache, so a second
     * process builds from source in ~30 ms a program; asking it for a
     * program's binary compiles every kernel in the program for a generic
     * work-group size first, which doubled to quadrupled the first run's
     * compile time (docs/speed.md, "Cold start"). And its binaries are not
     * self-contained: with POCL_KERNEL_CACHE=0 each names one temporary
     * directory that every process loading it uses and deletes, so two
     * processes sharing clnet's cache aborted in pocl, and a binary with bad
     * contents aborts pocl at load, which no check of clnet's can prevent.
     * So on pocl clnet neither stores nor loads binaries (docs/hardening.md). */
    int pocl = strstr(copy.platform_name, "Portable Computing Language") != NULL;
    prof->store_binaries = !pocl;
}

/* ---- Probe ------------------------------------------------------------------ */

static const char probe_source[] = "__kernel void clnet_probe(__global float *x, const int n)\n"
                                   "{\n"
                                   "    int i = (int)get_global_id(0);\n"
                                   "    if (i < n)\n"
                                   "        x[i] = (float)i * 0.5f + 1.0f;\n"
                                   "}\n";

static void build_log(cl_program prog, cl_device_id d, char *buf, size_t size)
{
    size_t n = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(prog, d, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS &&
        (log = clnet__malloc(n + 1)) != NULL &&
        clGetProgramBuildInfo(prog, d, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS)
        log[n] = 0;
    snprintf(buf, size, "%s", log ? log : "(unavailable)");
    clnet__free(log);
}

/* Runs the probe kernel over n items with the profile's work-group size and
 * checks what it wrote. */
static clnet_status probe_run(clnet_context *ctx, cl_kernel k, char *err, size_t err_size)
{
    enum { N = 67 };
    cl_int n = N, e;
    float out[N];
    size_t local = ctx->profile.wg_size, global = (N + local - 1) / local * local;
    const char *call = "clCreateBuffer";
    cl_mem m = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, sizeof out, NULL, &e);
    if (e == CL_SUCCESS) {
        call = "clSetKernelArg";
        e = clSetKernelArg(k, 0, sizeof m, &m);
        if (e == CL_SUCCESS)
            e = clSetKernelArg(k, 1, sizeof n, &n);
    }
    if (e == CL_SUCCESS) {
        call = "clEnqueueNDRangeKernel";
        e = clEnqueueNDRangeKernel(ctx->queue, k, 1, NULL, &global, &local, 0, NULL, NULL);
    }
    if (e == CL_SUCCESS) {
        call = "clEnqueueReadBuffer";
        e = clEnqueueReadBuffer(ctx->queue, m, CL_TRUE, 0, sizeof out, out, 0, NULL, NULL);
    }
    if (m)
        clReleaseMemObject(m);
    if (e != CL_SUCCESS) {
        clnet__errbuf(err, err_size, "probe kernel: %s failed: %s (%d)", call,
                      clnet__cl_error_name(e), (int)e);
        return clnet__cl_status(e);
    }
    for (int i = 0; i < N; i++)
        if (out[i] != (float)i * 0.5f + 1.0f) {
            clnet__errbuf(err, err_size, "probe kernel ran but wrote %g at [%d], not %g", out[i], i,
                          (float)i * 0.5f + 1.0f);
            return CLNET_ERR_UNSUPPORTED;
        }
    return CLNET_OK;
}

clnet_status clnet__probe_source(clnet_context *ctx, const char *source, char *err, size_t err_size)
{
    const clnet__cl_source *prelude = NULL;
    for (size_t i = 0; i < clnet__cl_source_count; i++)
        if (!strcmp(clnet__cl_sources[i].name, "prelude"))
            prelude = &clnet__cl_sources[i];
    if (!prelude) {
        clnet__errbuf(err, err_size, "probe: the prelude is not embedded");
        return CLNET_ERR_INTERNAL;
    }
    const char *strs[2] = { (const char *)prelude->text, source ? source : probe_source };
    size_t lens[2] = { prelude->size, strlen(strs[1]) };
    cl_int e;
    cl_kernel k = NULL;
    cl_program prog = clCreateProgramWithSource(ctx->context, 2, strs, lens, &e);
    if (e != CL_SUCCESS) {
        clnet__errbuf(err, err_size, "probe: clCreateProgramWithSource failed: %s (%d)",
                      clnet__cl_error_name(e), (int)e);
        return clnet__cl_status(e);
    }
    clnet_status st = CLNET_OK;
    if ((e = clBuildProgram(prog, 1, &ctx->device, ctx->profile.options, NULL, NULL)) !=
        CL_SUCCESS) {
        char log[1024];
        build_log(prog, ctx->device, log, sizeof log);
        clnet__errbuf(err, err_size,
                      "probe kernel failed to build with \"%s\": %s (%d); build log: %s",
                      ctx->profile.options, clnet__cl_error_name(e), (int)e, log);
        st = CLNET_ERR_BUILD;
    } else if (!(k = clCreateKernel(prog, "clnet_probe", &e))) {
        clnet__errbuf(err, err_size, "probe: clCreateKernel failed: %s (%d)",
                      clnet__cl_error_name(e), (int)e);
        st = clnet__cl_status(e);
    } else {
        st = probe_run(ctx, k, err, err_size);
    }
    if (k)
        clReleaseKernel(k);
    clReleaseProgram(prog);
    return st;
}

clnet_status clnet__probe(clnet_context *ctx, char *err, size_t err_size)
{
    return clnet__probe_source(ctx, NULL, err, err_size);
}

/* ---- Enumeration ---------------------------------------------------------- */

static const char *no_platform_help =
    "no OpenCL platform found: no OpenCL driver (ICD) is installed or registered in "
    "/etc/OpenCL/vendors (or OCL_ICD_VENDORS points elsewhere). To run on any CPU, "
    "install pocl: apt-get install pocl-opencl-icd";

/* How many ICDs are registered where the loader looks: OCL_ICD_VENDORS (a
 * directory, or one .icd file) or /etc/OpenCL/vendors; *where names it. */
static int registered_icds(const char **where)
{
    const char *dir = getenv("OCL_ICD_VENDORS");
    struct stat st;
    *where = dir && *dir ? dir : "/etc/OpenCL/vendors";
    if (stat(*where, &st) != 0)
        return 0;
    if (S_ISREG(st.st_mode))
        return 1;
    DIR *d = S_ISDIR(st.st_mode) ? opendir(*where) : NULL;
    int n = 0;
    if (!d)
        return errno == EMFILE || errno == ENFILE || errno == ENOMEM ? -1 : 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        n += len > 4 && !strcmp(e->d_name + len - 4, ".icd");
    }
    closedir(d);
    return n;
}

/* No platform: "install pocl" only when no driver is registered at all; a
 * registered one that did not load is the host's trouble (memory, file
 * descriptors) or a broken driver, and the message says which it saw. */
static void no_platform(char *err, size_t err_size, int saved_errno)
{
    const char *where;
    int n = registered_icds(&where);
    if (n == 0) {
        clnet__errbuf(err, err_size, "%s", no_platform_help);
        return;
    }
    const char *cause = saved_errno == ENOMEM ? "out of memory (ulimit -v?)"
                        : saved_errno == EMFILE || saved_errno == ENFILE
                            ? "out of file descriptors (ulimit -n?)"
                            : NULL;
    if (n < 0)
        clnet__errbuf(err, err_size,
                      "no OpenCL platform loaded, and the ICD registry %s cannot be read: %s; the "
                      "host is out of memory or file descriptors (ulimit -v, ulimit -n)",
                      where, strerror(errno));
    else if (cause)
        clnet__errbuf(err, err_size,
                      "no OpenCL platform loaded although %d driver(s) (ICDs) are registered in "
                      "%s: the ICD loader failed: %s",
                      n, where, cause);
    else
        clnet__errbuf(err, err_size,
                      "no OpenCL platform loaded although %d driver(s) (ICDs) are registered in "
                      "%s: the ICD loader could not load them (%s): check that the driver's "
                      "library is installed, and the host's memory and file-descriptor limits "
                      "(ulimit -v, ulimit -n)",
                      n, where, saved_errno ? strerror(saved_errno) : "no reason given");
}

static clnet_status get_platforms(cl_platform_id *ids, cl_uint *count, char *err, size_t err_size)
{
    cl_uint n = 0;
    errno = 0;
    cl_int e = clGetPlatformIDs(MAX_PLATFORMS, ids, &n);
    int saved_errno = errno;
    if (e == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (e == CL_SUCCESS && n == 0)) {
        no_platform(err, err_size, saved_errno);
        return CLNET_ERR_NO_PLATFORM;
    }
    if (e != CL_SUCCESS) {
        clnet__errbuf(err, err_size, "clGetPlatformIDs failed: %s (%d)%s", clnet__cl_error_name(e),
                      (int)e,
                      e == CL_OUT_OF_HOST_MEMORY ? ": the host is out of memory (ulimit -v?)" : "");
        return clnet__cl_status(e);
    }
    *count = n < MAX_PLATFORMS ? n : MAX_PLATFORMS;
    return CLNET_OK;
}

/* Why a platform has no device, with the usual cause for Mesa's two. */
static void empty_platform_note(const char *platform, char *buf, size_t size)
{
    const char *enable = getenv("RUSTICL_ENABLE");
    if (!strcmp(platform, "rusticl") && !(enable && *enable))
        snprintf(buf, size,
                 "no devices: rusticl enables no driver by default; set "
                 "RUSTICL_ENABLE=llvmpipe (CPU) or a GPU driver (radeonsi, iris)");
    else if (!strcmp(platform, "rusticl"))
        snprintf(buf, size, "no devices: RUSTICL_ENABLE=%.60s names no driver with hardware here",
                 enable);
    else if (!strcmp(platform, "Clover"))
        snprintf(buf, size,
                 "no devices: Mesa's Clover drives only AMD GPUs (r600, radeonsi) and "
                 "found none");
    else
        snprintf(buf, size, "no devices: the driver found no hardware it supports");
}

void clnet_system_free(clnet_system *sys)
{
    if (!sys)
        return;
    for (int i = 0; i < sys->platform_count; i++)
        clnet__free(sys->platforms[i].devices);
    clnet__free(sys->platforms);
    clnet__free(sys);
}

/* The default order: GPUs, then CPUs, accelerators and others, each in
 * enumeration order. */
static int type_rank(clnet_device_type t)
{
    switch (t) {
    case CLNET_DEVICE_GPU:
        return 0;
    case CLNET_DEVICE_CPU:
        return 1;
    case CLNET_DEVICE_ACCELERATOR:
        return 2;
    default:
        return 3;
    }
}

static void mark_default(clnet_system *sys)
{
    clnet_device_info *best = NULL;
    for (int p = 0; p < sys->platform_count; p++)
        for (int d = 0; d < sys->platforms[p].device_count; d++) {
            clnet_device_info *di = &sys->platforms[p].devices[d];
            if (!best || type_rank(di->type) < type_rank(best->type))
                best = di;
        }
    if (best)
        best->is_default = 1;
}

static clnet_status query(clnet_system **out, cl_platform_id *pids,
                          cl_device_id (*dids)[MAX_DEVICES], char *err, size_t err_size)
{
    *out = NULL;
    cl_uint np = 0;
    clnet_status st = get_platforms(pids, &np, err, err_size);
    if (st)
        return st;
    clnet_system *sys = clnet__calloc(1, sizeof *sys);
    if (!sys || !(sys->platforms = clnet__calloc(np, sizeof *sys->platforms))) {
        clnet__free(sys);
        clnet__errbuf(err, err_size, "clnet_system_query: out of host memory");
        return CLNET_ERR_HOST_MEMORY;
    }
    sys->platform_count = (int)np;
    for (cl_uint p = 0; p < np; p++) {
        clnet_platform_info *pi = &sys->platforms[p];
        platform_string(pids[p], CL_PLATFORM_NAME, pi->name, sizeof pi->name);
        platform_string(pids[p], CL_PLATFORM_VERSION, pi->version, sizeof pi->version);
        cl_uint nd = 0;
        cl_int e = clGetDeviceIDs(pids[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, dids[p], &nd);
        if (e == CL_DEVICE_NOT_FOUND || (e == CL_SUCCESS && nd == 0)) {
            empty_platform_note(pi->name, pi->note, sizeof pi->note);
            continue;
        }
        if (e == CL_OUT_OF_HOST_MEMORY) { /* the host's fault, not the platform's */
            clnet__errbuf(err, err_size,
                          "clnet_system_query: out of host memory: clGetDeviceIDs on platform "
                          "\"%s\" failed: CL_OUT_OF_HOST_MEMORY (ulimit -v?)",
                          pi->name);
            clnet_system_free(sys);
            return CLNET_ERR_HOST_MEMORY;
        }
        if (e != CL_SUCCESS) {
            snprintf(pi->note, sizeof pi->note, "skipped: clGetDeviceIDs failed: %s (%d)",
                     clnet__cl_error_name(e), (int)e);
            continue;
        }
        if (nd > MAX_DEVICES)
            nd = MAX_DEVICES;
        if (!(pi->devices = clnet__calloc(nd, sizeof *pi->devices))) {
            clnet_system_free(sys);
            clnet__errbuf(err, err_size, "clnet_system_query: out of host memory");
            return CLNET_ERR_HOST_MEMORY;
        }
        for (cl_uint d = 0; d < nd; d++) {
            char derr[200];
            clnet_device_info *di = &pi->devices[pi->device_count];
            clnet_status dst = clnet__device_info(pids[p], dids[p][d], di, derr, sizeof derr);
            if (dst == CLNET_ERR_HOST_MEMORY) { /* the host's fault, not the device's */
                clnet_system_free(sys);
                clnet__errbuf(err, err_size, "clnet_system_query: %s", derr);
                return dst;
            }
            if (dst != CLNET_OK) {
                snprintf(pi->note, sizeof pi->note, "a device was skipped: %s", derr);
                continue;
            }
            di->platform_index = (int)p;
            di->device_index = (int)d;
            pi->device_count++;
        }
    }
    mark_default(sys);
    *out = sys;
    return CLNET_OK;
}

typedef cl_device_id device_ids[MAX_PLATFORMS][MAX_DEVICES];

/* Device discovery runs one thread at a time. The one piece of global state
 * in clnet, and on purpose: the ICD loader and pocl set up their platform and
 * device records on first use without a lock of their own, and threads that
 * enumerate at once crashed inside clGetDeviceInfo (tests/test-runtime.c,
 * threads_create_contexts_at_once). Everything else a context does is its
 * own. */
static pthread_mutex_t discovery_lock = PTHREAD_MUTEX_INITIALIZER;

static clnet_status query_locked(clnet_system **out, cl_platform_id *pids,
                                 cl_device_id (*dids)[MAX_DEVICES], char *err, size_t err_size)
{
    pthread_mutex_lock(&discovery_lock);
    clnet_status st = query(out, pids, dids, err, err_size);
    pthread_mutex_unlock(&discovery_lock);
    return st;
}

clnet_status clnet__device_info_locked(cl_platform_id p, cl_device_id d, clnet_device_info *info,
                                       char *err, size_t err_size)
{
    pthread_mutex_lock(&discovery_lock);
    clnet_status st = clnet__device_info(p, d, info, err, err_size);
    pthread_mutex_unlock(&discovery_lock);
    return st;
}

CLNET_API clnet_status clnet_system_query(clnet_system **out, char *err, size_t err_size)
{
    if (!out) {
        clnet__errbuf(err, err_size, "clnet_system_query: invalid argument: out != NULL");
        return CLNET_ERR_INVALID_ARG;
    }
    cl_platform_id pids[MAX_PLATFORMS];
    device_ids *ids = clnet__malloc(sizeof *ids);
    if (!ids) {
        *out = NULL;
        clnet__errbuf(err, err_size, "clnet_system_query: out of host memory");
        return CLNET_ERR_HOST_MEMORY;
    }
    clnet_status st = query_locked(out, pids, *ids, err, err_size);
    clnet__free(ids);
    return st;
}

/* ---- Choice ---------------------------------------------------------------- */

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return n == 0;
}

/* "P:D" with decimal indices: 1 and *p, *d set; 0 for anything else. An
 * index past 65535 is not wrapped (sscanf's %d turned 4294967296:0 into 0:0):
 * it is -1, which matches no device. */
static int parse_index_spec(const char *spec, int *p, int *d)
{
    int *idx[2] = { p, d };
    const char *c = spec;
    for (int k = 0; k < 2; k++) {
        if (!isdigit((unsigned char)*c))
            return 0;
        long v = 0;
        for (; isdigit((unsigned char)*c); c++)
            v = v > 65535 ? v : v * 10 + (*c - '0');
        *idx[k] = v > 65535 ? -1 : (int)v;
        if (k == 0 && *c++ != ':')
            return 0;
    }
    return *c == '\0';
}

static int spec_matches(const char *spec, const clnet_device_info *di)
{
    int p, d;
    if (parse_index_spec(spec, &p, &d))
        return p == di->platform_index && d == di->device_index;
    if (!strcasecmp(spec, "gpu"))
        return di->type == CLNET_DEVICE_GPU;
    if (!strcasecmp(spec, "cpu"))
        return di->type == CLNET_DEVICE_CPU;
    if (!strcasecmp(spec, "accelerator"))
        return di->type == CLNET_DEVICE_ACCELERATOR;
    /* The platform version too: pocl's platform name does not say "pocl". */
    return contains_nocase(di->name, spec) || contains_nocase(di->platform_name, spec) ||
           contains_nocase(di->platform_version, spec);
}

static const char *type_name(clnet_device_type t)
{
    switch (t) {
    case CLNET_DEVICE_CPU:
        return "CPU";
    case CLNET_DEVICE_GPU:
        return "GPU";
    case CLNET_DEVICE_ACCELERATOR:
        return "accelerator";
    default:
        return "other";
    }
}

/* Appends "P:D name (platform, type)" for every device, and platform notes. */
static void list_devices(const clnet_system *sys, char *buf, size_t size)
{
    size_t len = strlen(buf);
    for (int p = 0; p < sys->platform_count && len + 1 < size; p++) {
        const clnet_platform_info *pi = &sys->platforms[p];
        if (pi->device_count == 0)
            len += (size_t)snprintf(buf + len, size - len, "\n  platform %d \"%s\": %s", p,
                                    pi->name, pi->note);
        for (int d = 0; d < pi->device_count && len + 1 < size; d++)
            len += (size_t)snprintf(buf + len, size - len, "\n  %d:%d  %s (%s, %s)",
                                    pi->devices[d].platform_index, pi->devices[d].device_index,
                                    pi->devices[d].name, pi->name, type_name(pi->devices[d].type));
    }
}

static int candidate_cmp(const void *a, const void *b)
{
    const clnet__candidate *x = a, *y = b;
    int rx = type_rank(x->info.type), ry = type_rank(y->info.type);
    if (rx != ry)
        return rx - ry;
    if (x->info.platform_index != y->info.platform_index)
        return x->info.platform_index - y->info.platform_index;
    return x->info.device_index - y->info.device_index;
}

/* Collects the devices that fit `spec` (NULL: all, in the default order). */
static clnet_status collect(const clnet_system *sys, const char *spec, cl_platform_id *pids,
                            cl_device_id (*dids)[MAX_DEVICES], clnet__candidate **out, int *count)
{
    int n = 0, total = 0;
    for (int p = 0; p < sys->platform_count; p++)
        total += sys->platforms[p].device_count;
    clnet__candidate *c = clnet__calloc(total ? (size_t)total : 1, sizeof *c);
    if (!c)
        return CLNET_ERR_HOST_MEMORY;
    for (int p = 0; p < sys->platform_count; p++)
        for (int d = 0; d < sys->platforms[p].device_count; d++) {
            const clnet_device_info *di = &sys->platforms[p].devices[d];
            if (spec && !spec_matches(spec, di))
                continue;
            c[n].info = *di;
            c[n].platform = pids[di->platform_index];
            c[n].device = dids[di->platform_index][di->device_index];
            n++;
        }
    if (!spec)
        qsort(c, (size_t)n, sizeof *c, candidate_cmp);
    *out = c;
    *count = n;
    return CLNET_OK;
}

clnet_status clnet__device_candidates(const char *spec, clnet__candidate **out, int *count,
                                      char *err, size_t err_size)
{
    *out = NULL;
    *count = 0;
    cl_platform_id pids[MAX_PLATFORMS];
    device_ids *ids = clnet__malloc(sizeof *ids);
    clnet_system *sys = NULL;
    if (!ids) {
        clnet__errbuf(err, err_size, "clnet_context_create: out of host memory");
        return CLNET_ERR_HOST_MEMORY;
    }
    clnet_status st = query_locked(&sys, pids, *ids, err, err_size);
    if (st) {
        clnet__free(ids);
        return st;
    }
    const char *from = "spec";
    if (!spec || !*spec) {
        spec = getenv("CLNET_DEVICE");
        from = "CLNET_DEVICE";
        if (spec && !*spec)
            spec = NULL;
    }
    if ((st = collect(sys, spec, pids, *ids, out, count)))
        clnet__errbuf(err, err_size, "clnet_context_create: out of host memory");
    else if (*count == 0) {
        char buf[2048];
        if (spec)
            snprintf(buf, sizeof buf, "no OpenCL device matches %s \"%s\"; devices:", from, spec);
        else
            snprintf(buf, sizeof buf, "no OpenCL device found; platforms:");
        list_devices(sys, buf, sizeof buf);
        clnet__errbuf(err, err_size, "%s", buf);
        clnet__free(*out);
        *out = NULL;
        st = CLNET_ERR_NO_DEVICE;
    }
    clnet_system_free(sys);
    clnet__free(ids);
    return st;
}
