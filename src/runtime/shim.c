/* clnet — the OpenCL shim (shim.h): wrappers that count live objects and
 * device bytes, fail a call when a test arms them, and cap what the device
 * reports (fault.h). */
#include <stdatomic.h>
#include <string.h>

#define CLNET_SHIM_IMPL
#include "shim.h"
#include "fault.h"

static atomic_long live_contexts, live_queues, live_programs, live_kernels, live_buffers,
    live_events;
static atomic_llong live_bytes;

static atomic_int caps_set;
static clnet__device_caps caps;

void clnet__fault_live(clnet__live *out)
{
    out->contexts = atomic_load(&live_contexts);
    out->queues = atomic_load(&live_queues);
    out->programs = atomic_load(&live_programs);
    out->kernels = atomic_load(&live_kernels);
    out->buffers = atomic_load(&live_buffers);
    out->events = atomic_load(&live_events);
    out->device_bytes = atomic_load(&live_bytes);
    out->host_blocks = clnet__fault_host_live();
}

void clnet__fault_device_caps(const clnet__device_caps *c)
{
    atomic_store(&caps_set, 0);
    if (c) {
        caps = *c;
        atomic_store(&caps_set, 1);
    }
}

/* An armed failure of a call that returns a status. */
#define FAIL_STATUS(name)                                                                          \
    do {                                                                                           \
        cl_int e_;                                                                                 \
        if (clnet__fault_check(0, #name, &e_))                                                     \
            return e_;                                                                             \
    } while (0)

/* An armed failure of a call that returns an object and reports in *errp. */
#define FAIL_OBJECT(name, errp)                                                                    \
    do {                                                                                           \
        cl_int e_;                                                                                 \
        if (clnet__fault_check(0, #name, &e_)) {                                                   \
            if (errp)                                                                              \
                *(errp) = e_;                                                                      \
            return NULL;                                                                           \
        }                                                                                          \
    } while (0)

static void count(atomic_long *counter, const void *obj)
{
    if (obj)
        atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

static cl_int released(atomic_long *counter, cl_int e)
{
    if (e == CL_SUCCESS)
        atomic_fetch_sub_explicit(counter, 1, memory_order_relaxed);
    return e;
}

/* ---- Platforms and devices ---------------------------------------------------- */

cl_int clnet__shim_clGetPlatformIDs(cl_uint a, cl_platform_id *b, cl_uint *c)
{
    FAIL_STATUS(clGetPlatformIDs);
    return clGetPlatformIDs(a, b, c);
}

cl_int clnet__shim_clGetPlatformInfo(cl_platform_id a, cl_platform_info b, size_t c, void *d,
                                     size_t *e)
{
    FAIL_STATUS(clGetPlatformInfo);
    return clGetPlatformInfo(a, b, c, d, e);
}

cl_int clnet__shim_clGetDeviceIDs(cl_platform_id a, cl_device_type b, cl_uint c, cl_device_id *d,
                                  cl_uint *e)
{
    FAIL_STATUS(clGetDeviceIDs);
    return clGetDeviceIDs(a, b, c, d, e);
}

/* Blanks a whole word of a space-separated list in place (same length). */
static void blank_word(char *list, size_t size, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i + n <= size && list[i]; i++)
        if ((i == 0 || list[i - 1] == ' ') && !strncmp(list + i, word, n) &&
            (list[i + n] == 0 || list[i + n] == ' '))
            memset(list + i, ' ', n);
}

#define Q_OPENCL_C_FEATURES 0x106F /* OpenCL 3.0: a cl_name_version list */

static void apply_caps(cl_device_info what, size_t size, void *value)
{
    if (!atomic_load_explicit(&caps_set, memory_order_relaxed) || !value)
        return;
    if (what == CL_DEVICE_MAX_WORK_GROUP_SIZE && size >= sizeof(size_t) &&
        caps.max_work_group_size && *(size_t *)value > caps.max_work_group_size)
        *(size_t *)value = caps.max_work_group_size;
    if (what == CL_DEVICE_LOCAL_MEM_SIZE && size >= sizeof(cl_ulong) && caps.local_mem_bytes &&
        *(cl_ulong *)value > caps.local_mem_bytes)
        *(cl_ulong *)value = caps.local_mem_bytes;
    if (what == CL_DEVICE_MAX_MEM_ALLOC_SIZE && size >= sizeof(cl_ulong) && caps.max_alloc_bytes &&
        *(cl_ulong *)value > caps.max_alloc_bytes)
        *(cl_ulong *)value = caps.max_alloc_bytes;
    if (what == CL_DEVICE_EXTENSIONS && caps.hide_fp64)
        blank_word(value, size, "cl_khr_fp64");
    if (what == Q_OPENCL_C_FEATURES && caps.hide_fp64) {
        typedef struct {
            cl_uint version;
            char name[64];
        } name_version;
        name_version *v = value;
        for (size_t i = 0; i < size / sizeof *v; i++)
            if (!strncmp(v[i].name, "__opencl_c_fp64", sizeof v[i].name))
                memcpy(v[i].name, "__clnet_hidden", sizeof "__clnet_hidden");
    }
}

cl_int clnet__shim_clGetDeviceInfo(cl_device_id a, cl_device_info b, size_t c, void *d, size_t *e)
{
    FAIL_STATUS(clGetDeviceInfo);
    cl_int err = clGetDeviceInfo(a, b, c, d, e);
    if (err == CL_SUCCESS)
        apply_caps(b, c, d);
    return err;
}

/* ---- Contexts and queues ------------------------------------------------------ */

cl_context
clnet__shim_clCreateContext(const cl_context_properties *a, cl_uint b, const cl_device_id *c,
                            void(CL_CALLBACK *d)(const char *, const void *, size_t, void *),
                            void *e, cl_int *f)
{
    FAIL_OBJECT(clCreateContext, f);
    cl_context ctx = clCreateContext(a, b, c, d, e, f);
    count(&live_contexts, ctx);
    return ctx;
}

cl_int clnet__shim_clRetainContext(cl_context a)
{
    FAIL_STATUS(clRetainContext);
    cl_int e = clRetainContext(a);
    if (e == CL_SUCCESS)
        count(&live_contexts, a);
    return e;
}

cl_int clnet__shim_clReleaseContext(cl_context a)
{
    return released(&live_contexts, clReleaseContext(a));
}

cl_command_queue clnet__shim_clCreateCommandQueue(cl_context a, cl_device_id b,
                                                  cl_command_queue_properties c, cl_int *d)
{
    FAIL_OBJECT(clCreateCommandQueue, d);
    cl_command_queue q = clCreateCommandQueue(a, b, c, d);
    count(&live_queues, q);
    return q;
}

cl_int clnet__shim_clRetainCommandQueue(cl_command_queue a)
{
    FAIL_STATUS(clRetainCommandQueue);
    cl_int e = clRetainCommandQueue(a);
    if (e == CL_SUCCESS)
        count(&live_queues, a);
    return e;
}

cl_int clnet__shim_clReleaseCommandQueue(cl_command_queue a)
{
    return released(&live_queues, clReleaseCommandQueue(a));
}

cl_int clnet__shim_clFinish(cl_command_queue a)
{
    FAIL_STATUS(clFinish);
    return clFinish(a);
}

/* ---- Buffers ------------------------------------------------------------------ */

cl_mem clnet__shim_clCreateBuffer(cl_context a, cl_mem_flags b, size_t c, void *d, cl_int *e)
{
    FAIL_OBJECT(clCreateBuffer, e);
    cl_mem m = clCreateBuffer(a, b, c, d, e);
    if (m) {
        count(&live_buffers, m);
        atomic_fetch_add_explicit(&live_bytes, (long long)c, memory_order_relaxed);
    }
    return m;
}

cl_int clnet__shim_clReleaseMemObject(cl_mem a)
{
    size_t bytes = 0;
    if (clGetMemObjectInfo(a, CL_MEM_SIZE, sizeof bytes, &bytes, NULL) != CL_SUCCESS)
        bytes = 0;
    cl_int e = clReleaseMemObject(a);
    if (e == CL_SUCCESS)
        atomic_fetch_sub_explicit(&live_bytes, (long long)bytes, memory_order_relaxed);
    return released(&live_buffers, e);
}

static void count_event(const cl_event *ev, cl_int e)
{
    if (e == CL_SUCCESS && ev)
        count(&live_events, *ev);
}

cl_int clnet__shim_clEnqueueReadBuffer(cl_command_queue a, cl_mem b, cl_bool c, size_t d, size_t e,
                                       void *f, cl_uint g, const cl_event *h, cl_event *i)
{
    FAIL_STATUS(clEnqueueReadBuffer);
    cl_int err = clEnqueueReadBuffer(a, b, c, d, e, f, g, h, i);
    count_event(i, err);
    return err;
}

cl_int clnet__shim_clEnqueueWriteBuffer(cl_command_queue a, cl_mem b, cl_bool c, size_t d, size_t e,
                                        const void *f, cl_uint g, const cl_event *h, cl_event *i)
{
    FAIL_STATUS(clEnqueueWriteBuffer);
    cl_int err = clEnqueueWriteBuffer(a, b, c, d, e, f, g, h, i);
    count_event(i, err);
    return err;
}

cl_int clnet__shim_clReleaseEvent(cl_event a)
{
    return released(&live_events, clReleaseEvent(a));
}

/* ---- Programs and kernels ------------------------------------------------------- */

cl_program clnet__shim_clCreateProgramWithSource(cl_context a, cl_uint b, const char **c,
                                                 const size_t *d, cl_int *e)
{
    FAIL_OBJECT(clCreateProgramWithSource, e);
    cl_program p = clCreateProgramWithSource(a, b, c, d, e);
    count(&live_programs, p);
    return p;
}

cl_program clnet__shim_clCreateProgramWithBinary(cl_context a, cl_uint b, const cl_device_id *c,
                                                 const size_t *d, const unsigned char **e,
                                                 cl_int *f, cl_int *g)
{
    FAIL_OBJECT(clCreateProgramWithBinary, g);
    cl_program p = clCreateProgramWithBinary(a, b, c, d, e, f, g);
    count(&live_programs, p);
    return p;
}

cl_int clnet__shim_clBuildProgram(cl_program a, cl_uint b, const cl_device_id *c, const char *d,
                                  void(CL_CALLBACK *e)(cl_program, void *), void *f)
{
    FAIL_STATUS(clBuildProgram);
    return clBuildProgram(a, b, c, d, e, f);
}

cl_int clnet__shim_clGetProgramInfo(cl_program a, cl_program_info b, size_t c, void *d, size_t *e)
{
    FAIL_STATUS(clGetProgramInfo);
    return clGetProgramInfo(a, b, c, d, e);
}

cl_int clnet__shim_clGetProgramBuildInfo(cl_program a, cl_device_id b, cl_program_build_info c,
                                         size_t d, void *e, size_t *f)
{
    FAIL_STATUS(clGetProgramBuildInfo);
    return clGetProgramBuildInfo(a, b, c, d, e, f);
}

cl_int clnet__shim_clReleaseProgram(cl_program a)
{
    return released(&live_programs, clReleaseProgram(a));
}

cl_kernel clnet__shim_clCreateKernel(cl_program a, const char *b, cl_int *c)
{
    FAIL_OBJECT(clCreateKernel, c);
    cl_kernel k = clCreateKernel(a, b, c);
    count(&live_kernels, k);
    return k;
}

cl_int clnet__shim_clReleaseKernel(cl_kernel a)
{
    return released(&live_kernels, clReleaseKernel(a));
}

cl_int clnet__shim_clSetKernelArg(cl_kernel a, cl_uint b, size_t c, const void *d)
{
    FAIL_STATUS(clSetKernelArg);
    return clSetKernelArg(a, b, c, d);
}

cl_int clnet__shim_clEnqueueNDRangeKernel(cl_command_queue a, cl_kernel b, cl_uint c,
                                          const size_t *d, const size_t *e, const size_t *f,
                                          cl_uint g, const cl_event *h, cl_event *i)
{
    FAIL_STATUS(clEnqueueNDRangeKernel);
    cl_int err = clEnqueueNDRangeKernel(a, b, c, d, e, f, g, h, i);
    count_event(i, err);
    return err;
}
