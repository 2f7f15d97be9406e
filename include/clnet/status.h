/* clnet — status codes returned by every fallible call, and the export macro. */
#ifndef CLNET_STATUS_H
#define CLNET_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CLNET_BUILDING_LIBRARY) && defined(__GNUC__)
#define CLNET_API __attribute__((visibility("default")))
#else
#define CLNET_API
#endif

/* Every fallible public function returns one of these; 0 is success. The
 * details of a failure (the call that failed, the OpenCL error by name, a
 * kernel's build log) are read with clnet_context_errmsg(), or, for calls made
 * before a context exists, from the error buffer the caller passes in. */
typedef enum clnet_status {
    CLNET_OK = 0,
    CLNET_ERR_INVALID_ARG,   /* a NULL, out-of-range or inconsistent argument */
    CLNET_ERR_SHAPE,         /* tensor shapes or dtypes do not fit the operation */
    CLNET_ERR_NO_PLATFORM,   /* no OpenCL platform: no ICD installed */
    CLNET_ERR_NO_DEVICE,     /* no device matches the request */
    CLNET_ERR_TOO_LARGE,     /* beyond a device limit (max allocation, work-group size) */
    CLNET_ERR_HOST_MEMORY,   /* a host allocation failed */
    CLNET_ERR_DEVICE_MEMORY, /* the device could not allocate (CL_MEM_OBJECT_ALLOCATION_FAILURE,
                                ...) */
    CLNET_ERR_BUILD,         /* a kernel failed to compile; the message holds the build log */
    CLNET_ERR_OPENCL,        /* any other OpenCL error; the message names it */
    CLNET_ERR_IO,            /* a file could not be read or written */
    CLNET_ERR_FORMAT,        /* a file or buffer is malformed */
    CLNET_ERR_UNSUPPORTED,   /* the device or build lacks a needed feature */
    CLNET_ERR_INTERNAL,      /* a bug in clnet: please report it */
    CLNET_ERR_NUMERICS       /* a non-finite loss or gradient (CLNET_CHECK_NUMERICS=1) */
} clnet_status;

/* A short constant name for a status ("CLNET_ERR_SHAPE"); never NULL. */
CLNET_API const char *clnet_status_name(clnet_status status);

#ifdef __cplusplus
}
#endif
#endif
