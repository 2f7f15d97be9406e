/* clnet — error recording: messages on the context, OpenCL error names. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "context_impl.h"

CLNET_API const char *clnet_status_name(clnet_status s)
{
    switch (s) {
    case CLNET_OK:
        return "CLNET_OK";
    case CLNET_ERR_INVALID_ARG:
        return "CLNET_ERR_INVALID_ARG";
    case CLNET_ERR_SHAPE:
        return "CLNET_ERR_SHAPE";
    case CLNET_ERR_NO_PLATFORM:
        return "CLNET_ERR_NO_PLATFORM";
    case CLNET_ERR_NO_DEVICE:
        return "CLNET_ERR_NO_DEVICE";
    case CLNET_ERR_TOO_LARGE:
        return "CLNET_ERR_TOO_LARGE";
    case CLNET_ERR_HOST_MEMORY:
        return "CLNET_ERR_HOST_MEMORY";
    case CLNET_ERR_DEVICE_MEMORY:
        return "CLNET_ERR_DEVICE_MEMORY";
    case CLNET_ERR_BUILD:
        return "CLNET_ERR_BUILD";
    case CLNET_ERR_OPENCL:
        return "CLNET_ERR_OPENCL";
    case CLNET_ERR_IO:
        return "CLNET_ERR_IO";
    case CLNET_ERR_FORMAT:
        return "CLNET_ERR_FORMAT";
    case CLNET_ERR_UNSUPPORTED:
        return "CLNET_ERR_UNSUPPORTED";
    case CLNET_ERR_INTERNAL:
        return "CLNET_ERR_INTERNAL";
    case CLNET_ERR_NUMERICS:
        return "CLNET_ERR_NUMERICS";
    }
    return "CLNET_ERR_UNKNOWN";
}

const char *clnet__cl_error_name(cl_int err)
{
    switch (err) {
#define E(x)                                                                                       \
    case x:                                                                                        \
        return #x
        E(CL_SUCCESS);
        E(CL_DEVICE_NOT_FOUND);
        E(CL_DEVICE_NOT_AVAILABLE);
        E(CL_COMPILER_NOT_AVAILABLE);
        E(CL_MEM_OBJECT_ALLOCATION_FAILURE);
        E(CL_OUT_OF_RESOURCES);
        E(CL_OUT_OF_HOST_MEMORY);
        E(CL_PROFILING_INFO_NOT_AVAILABLE);
        E(CL_MEM_COPY_OVERLAP);
        E(CL_IMAGE_FORMAT_MISMATCH);
        E(CL_IMAGE_FORMAT_NOT_SUPPORTED);
        E(CL_BUILD_PROGRAM_FAILURE);
        E(CL_MAP_FAILURE);
        E(CL_MISALIGNED_SUB_BUFFER_OFFSET);
        E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST);
        E(CL_COMPILE_PROGRAM_FAILURE);
        E(CL_LINKER_NOT_AVAILABLE);
        E(CL_LINK_PROGRAM_FAILURE);
        E(CL_DEVICE_PARTITION_FAILED);
        E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE);
        E(CL_INVALID_VALUE);
        E(CL_INVALID_DEVICE_TYPE);
        E(CL_INVALID_PLATFORM);
        E(CL_INVALID_DEVICE);
        E(CL_INVALID_CONTEXT);
        E(CL_INVALID_QUEUE_PROPERTIES);
        E(CL_INVALID_COMMAND_QUEUE);
        E(CL_INVALID_HOST_PTR);
        E(CL_INVALID_MEM_OBJECT);
        E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR);
        E(CL_INVALID_IMAGE_SIZE);
        E(CL_INVALID_SAMPLER);
        E(CL_INVALID_BINARY);
        E(CL_INVALID_BUILD_OPTIONS);
        E(CL_INVALID_PROGRAM);
        E(CL_INVALID_PROGRAM_EXECUTABLE);
        E(CL_INVALID_KERNEL_NAME);
        E(CL_INVALID_KERNEL_DEFINITION);
        E(CL_INVALID_KERNEL);
        E(CL_INVALID_ARG_INDEX);
        E(CL_INVALID_ARG_VALUE);
        E(CL_INVALID_ARG_SIZE);
        E(CL_INVALID_KERNEL_ARGS);
        E(CL_INVALID_WORK_DIMENSION);
        E(CL_INVALID_WORK_GROUP_SIZE);
        E(CL_INVALID_WORK_ITEM_SIZE);
        E(CL_INVALID_GLOBAL_OFFSET);
        E(CL_INVALID_EVENT_WAIT_LIST);
        E(CL_INVALID_EVENT);
        E(CL_INVALID_OPERATION);
        E(CL_INVALID_GL_OBJECT);
        E(CL_INVALID_BUFFER_SIZE);
        E(CL_INVALID_MIP_LEVEL);
        E(CL_INVALID_GLOBAL_WORK_SIZE);
        E(CL_INVALID_PROPERTY);
        E(CL_INVALID_IMAGE_DESCRIPTOR);
        E(CL_INVALID_COMPILER_OPTIONS);
        E(CL_INVALID_LINKER_OPTIONS);
        E(CL_INVALID_DEVICE_PARTITION_COUNT);
#undef E
    case -1001:
        return "CL_PLATFORM_NOT_FOUND_KHR";
    default:
        return "CL_UNKNOWN_ERROR";
    }
}

clnet_status clnet__cl_status(cl_int err)
{
    switch (err) {
    case CL_SUCCESS:
        return CLNET_OK;
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    case CL_OUT_OF_RESOURCES:
        return CLNET_ERR_DEVICE_MEMORY;
    case CL_OUT_OF_HOST_MEMORY:
        return CLNET_ERR_HOST_MEMORY;
    case CL_BUILD_PROGRAM_FAILURE:
    case CL_COMPILE_PROGRAM_FAILURE:
    case CL_INVALID_BUILD_OPTIONS:
        return CLNET_ERR_BUILD;
    case CL_INVALID_WORK_GROUP_SIZE:
    case CL_INVALID_BUFFER_SIZE:
        return CLNET_ERR_TOO_LARGE;
    case CL_DEVICE_NOT_FOUND:
        return CLNET_ERR_NO_DEVICE;
    case -1001:
        return CLNET_ERR_NO_PLATFORM;
    default:
        return CLNET_ERR_OPENCL;
    }
}

static void record(const clnet_context *cctx, clnet_status status, const char *fmt, va_list ap)
{
    /* The message buffer is the one piece of a const context that changes
     * on error, like errno; the context is single-threaded by contract. */
    clnet_context *ctx = (clnet_context *)cctx;
    /* Format aside first: callers prefix the previous message by passing
     * clnet_context_errmsg(ctx) as an argument, which is this very buffer. */
    char msg[CLNET_ERRMSG_SIZE];
    vsnprintf(msg, sizeof msg, fmt, ap);
    memcpy(ctx->errmsg, msg, strlen(msg) + 1);
    if (ctx->log)
        ctx->log(ctx->log_user, status, ctx->errmsg);
}

clnet_status clnet__error(const clnet_context *ctx, clnet_status status, const char *fmt, ...)
{
    if (ctx) {
        va_list ap;
        va_start(ap, fmt);
        record(ctx, status, fmt, ap);
        va_end(ap);
    }
    return status;
}

clnet_status clnet__cl_error(const clnet_context *ctx, cl_int err, const char *call,
                             const char *what)
{
    return clnet__error(ctx, clnet__cl_status(err), "%s: %s failed: %s (%d)", what, call,
                        clnet__cl_error_name(err), (int)err);
}

void clnet__errbuf(char *err, size_t err_size, const char *fmt, ...)
{
    if (!err || err_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

double clnet__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

CLNET_API void clnet_log_stderr(void *user, clnet_status status, const char *message)
{
    (void)user;
    /* The one place the library writes to stderr: only when the caller
     * passes this function as its log callback. */
    if (status == CLNET_OK)
        fprintf(stderr, "%s\n", message);
    else
        fprintf(stderr, "clnet: %s: %s\n", clnet_status_name(status), message);
}
