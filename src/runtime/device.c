/* clnet — device enumeration, the device profile and device choice. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "context_impl.h"

#define MAX_PLATFORMS 32
#define MAX_DEVICES 64

static void info_string(cl_device_id d, cl_device_info what, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    if (clGetDeviceInfo(d, what, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return;
    char *tmp = malloc(n + 1);
    if (!tmp)
        return;
    if (clGetDeviceInfo(d, what, n, tmp, NULL) == CL_SUCCESS) {
        tmp[n] = 0;
        snprintf(buf, size, "%s", tmp);
    }
    free(tmp);
}

static void platform_string(cl_platform_id p, cl_platform_info what, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    if (clGetPlatformInfo(p, what, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return;
    char *tmp = malloc(n + 1);
    if (!tmp)
        return;
    if (clGetPlatformInfo(p, what, n, tmp, NULL) == CL_SUCCESS) {
        tmp[n] = 0;
        snprintf(buf, size, "%s", tmp);
    }
    free(tmp);
}

clnet_status clnet__device_info(cl_platform_id p, cl_device_id d, clnet_device_info *info,
                                char *err, size_t err_size)
{
    memset(info, 0, sizeof *info);
    platform_string(p, CL_PLATFORM_NAME, info->platform_name, sizeof info->platform_name);
    platform_string(p, CL_PLATFORM_VERSION, info->platform_version, sizeof info->platform_version);
    info_string(d, CL_DEVICE_NAME, info->name, sizeof info->name);
    info_string(d, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    info_string(d, CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
    info_string(d, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version,
                sizeof info->opencl_c_version);
    if (sscanf(info->opencl_c_version, "OpenCL C %d.%d", &info->opencl_c_major,
               &info->opencl_c_minor) != 2) {
        info->opencl_c_major = 1;
        info->opencl_c_minor = 0;
    }

    cl_device_type type = 0;
    cl_uint cu = 0, clock = 0, vec = 0;
    cl_ulong gmem = 0, alloc = 0, lmem = 0;
    cl_device_local_mem_type ltype = CL_LOCAL;
    size_t wg = 0;
    cl_device_fp_config fp64 = 0;
    cl_int e = clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
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
        clnet__errbuf(err, err_size, "device \"%s\": clGetDeviceInfo failed: %s (%d)",
                      info->name, clnet__cl_error_name(e), (int)e);
        return clnet__cl_status(e);
    }
    /* Optional in OpenCL 1.2 (0 when absent); an error here just means no fp64. */
    if (clGetDeviceInfo(d, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64, &fp64, NULL) != CL_SUCCESS)
        fp64 = 0;
    char ext[4096];
    info_string(d, CL_DEVICE_EXTENSIONS, ext, sizeof ext);

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
    info->has_fp64 = fp64 != 0;
    info->has_fp16 = strstr(ext, "cl_khr_fp16") != NULL;
    return CLNET_OK;
}

void clnet__profile_init(clnet__profile *prof, const clnet_device_info *info)
{
    clnet_device_info copy = *info; /* info may point into prof */
    memset(prof, 0, sizeof *prof);
    prof->info = copy;
    /* One fixed 1-D work-group size per device: pocl compiles a kernel again
     * for every new local size, so we never vary it per call. */
    size_t want = copy.type == CLNET_DEVICE_GPU ? 256 : 64;
    size_t wg = 1;
    while (wg * 2 <= want && wg * 2 <= copy.max_work_group_size)
        wg *= 2;
    prof->wg_size = wg;
    prof->cl12 = copy.opencl_c_major > 1 || (copy.opencl_c_major == 1 && copy.opencl_c_minor >= 2);
    snprintf(prof->options, sizeof prof->options, "%s-DCLNET_WG=%zu",
             prof->cl12 ? "-cl-std=CL1.2 " : "", prof->wg_size);
}

/* ---- Enumeration ---------------------------------------------------------- */

static const char *no_platform_help =
    "no OpenCL platform found: no OpenCL driver (ICD) is installed or registered in "
    "/etc/OpenCL/vendors (or OCL_ICD_VENDORS points elsewhere). To run on any CPU, "
    "install pocl: apt-get install pocl-opencl-icd";

static clnet_status get_platforms(cl_platform_id *ids, cl_uint *count, char *err, size_t err_size)
{
    cl_uint n = 0;
    cl_int e = clGetPlatformIDs(MAX_PLATFORMS, ids, &n);
    if (e == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (e == CL_SUCCESS && n == 0)) {
        clnet__errbuf(err, err_size, "%s", no_platform_help);
        return CLNET_ERR_NO_PLATFORM;
    }
    if (e != CL_SUCCESS) {
        clnet__errbuf(err, err_size, "clGetPlatformIDs failed: %s (%d)", clnet__cl_error_name(e),
                      (int)e);
        return clnet__cl_status(e);
    }
    *count = n < MAX_PLATFORMS ? n : MAX_PLATFORMS;
    return CLNET_OK;
}

void clnet_system_free(clnet_system *sys)
{
    if (!sys)
        return;
    for (int i = 0; i < sys->platform_count; i++)
        free(sys->platforms[i].devices);
    free(sys->platforms);
    free(sys);
}

static void mark_default(clnet_system *sys)
{
    static const clnet_device_type order[] = { CLNET_DEVICE_GPU, CLNET_DEVICE_CPU,
                                               CLNET_DEVICE_ACCELERATOR, CLNET_DEVICE_OTHER };
    for (size_t o = 0; o < sizeof order / sizeof order[0]; o++)
        for (int p = 0; p < sys->platform_count; p++)
            for (int d = 0; d < sys->platforms[p].device_count; d++)
                if (sys->platforms[p].devices[d].type == order[o]) {
                    sys->platforms[p].devices[d].is_default = 1;
                    return;
                }
}

static clnet_status query(clnet_system **out, cl_platform_id *pids,
                          cl_device_id (*dids)[MAX_DEVICES], char *err, size_t err_size)
{
    *out = NULL;
    cl_uint np = 0;
    clnet_status st = get_platforms(pids, &np, err, err_size);
    if (st)
        return st;
    clnet_system *sys = calloc(1, sizeof *sys);
    if (!sys || !(sys->platforms = calloc(np, sizeof *sys->platforms))) {
        free(sys);
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
            snprintf(pi->note, sizeof pi->note,
                     "no devices: the driver found no hardware it supports");
            continue;
        }
        if (e != CL_SUCCESS) {
            snprintf(pi->note, sizeof pi->note, "skipped: clGetDeviceIDs failed: %s (%d)",
                     clnet__cl_error_name(e), (int)e);
            continue;
        }
        if (nd > MAX_DEVICES)
            nd = MAX_DEVICES;
        if (!(pi->devices = calloc(nd, sizeof *pi->devices))) {
            clnet_system_free(sys);
            clnet__errbuf(err, err_size, "clnet_system_query: out of host memory");
            return CLNET_ERR_HOST_MEMORY;
        }
        for (cl_uint d = 0; d < nd; d++) {
            char derr[200];
            clnet_device_info *di = &pi->devices[pi->device_count];
            if (clnet__device_info(pids[p], dids[p][d], di, derr, sizeof derr) != CLNET_OK) {
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

CLNET_API clnet_status clnet_system_query(clnet_system **out, char *err, size_t err_size)
{
    if (!out) {
        clnet__errbuf(err, err_size, "clnet_system_query: invalid argument: out != NULL");
        return CLNET_ERR_INVALID_ARG;
    }
    cl_platform_id pids[MAX_PLATFORMS];
    device_ids *ids = malloc(sizeof *ids);
    if (!ids) {
        *out = NULL;
        clnet__errbuf(err, err_size, "clnet_system_query: out of host memory");
        return CLNET_ERR_HOST_MEMORY;
    }
    clnet_status st = query(out, pids, *ids, err, err_size);
    free(ids);
    return st;
}

/* ---- Choice ---------------------------------------------------------------- */

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return n == 0;
}

static int spec_matches(const char *spec, const clnet_device_info *di)
{
    int p, d;
    char tail;
    if (sscanf(spec, "%d:%d%c", &p, &d, &tail) == 2)
        return p == di->platform_index && d == di->device_index;
    if (!strcasecmp(spec, "gpu"))
        return di->type == CLNET_DEVICE_GPU;
    if (!strcasecmp(spec, "cpu"))
        return di->type == CLNET_DEVICE_CPU;
    if (!strcasecmp(spec, "accelerator"))
        return di->type == CLNET_DEVICE_ACCELERATOR;
    return contains_nocase(di->name, spec) || contains_nocase(di->platform_name, spec);
}

static const char *type_name(clnet_device_type t)
{
    switch (t) {
    case CLNET_DEVICE_CPU: return "CPU";
    case CLNET_DEVICE_GPU: return "GPU";
    case CLNET_DEVICE_ACCELERATOR: return "accelerator";
    default: return "other";
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

clnet_status clnet__device_select(const char *spec, cl_platform_id *pid, cl_device_id *did,
                                  clnet_device_info *info, char *err, size_t err_size)
{
    cl_platform_id pids[MAX_PLATFORMS];
    device_ids *ids = malloc(sizeof *ids);
    clnet_system *sys = NULL;
    if (!ids) {
        clnet__errbuf(err, err_size, "clnet_context_create: out of host memory");
        return CLNET_ERR_HOST_MEMORY;
    }
    clnet_status st = query(&sys, pids, *ids, err, err_size);
    if (st) {
        free(ids);
        return st;
    }
    const char *from = "spec";
    if (!spec || !*spec) {
        spec = getenv("CLNET_DEVICE");
        from = "CLNET_DEVICE";
        if (spec && !*spec)
            spec = NULL;
    }
    const clnet_device_info *found = NULL;
    for (int p = 0; p < sys->platform_count && !found; p++)
        for (int d = 0; d < sys->platforms[p].device_count && !found; d++) {
            const clnet_device_info *di = &sys->platforms[p].devices[d];
            if (spec ? spec_matches(spec, di) : di->is_default)
                found = di;
        }
    if (found) {
        *info = *found;
        *pid = pids[found->platform_index];
        *did = (*ids)[found->platform_index][found->device_index];
    } else {
        char buf[2048];
        if (spec)
            snprintf(buf, sizeof buf, "no OpenCL device matches %s \"%s\"; devices:", from, spec);
        else
            snprintf(buf, sizeof buf, "no OpenCL device found; platforms:");
        list_devices(sys, buf, sizeof buf);
        clnet__errbuf(err, err_size, "%s", buf);
        st = CLNET_ERR_NO_DEVICE;
    }
    clnet_system_free(sys);
    free(ids);
    return st;
}
