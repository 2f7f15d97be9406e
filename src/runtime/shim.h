/* clnet — the OpenCL shim. Every OpenCL call in src/runtime goes through a
 * wrapper of the same signature: the macros below rename the calls, so the
 * code reads as plain OpenCL and a new call cannot bypass the shim (a call
 * the shim lacks fails to link). The wrappers count live objects and device
 * bytes and fail a chosen call when a test arms them (fault.h). CLBlast, in
 * src/ops/gemm.c, calls OpenCL itself and is not shimmed. */
#ifndef CLNET_SHIM_H
#define CLNET_SHIM_H

#include "clnet/opencl.h"

#define CLNET_SHIM_LIST(X)                                                                         \
    X(cl_int, clGetPlatformIDs, (cl_uint a, cl_platform_id * b, cl_uint * c))                      \
    X(cl_int, clGetPlatformInfo,                                                                   \
      (cl_platform_id a, cl_platform_info b, size_t c, void *d, size_t *e))                        \
    X(cl_int, clGetDeviceIDs,                                                                      \
      (cl_platform_id a, cl_device_type b, cl_uint c, cl_device_id * d, cl_uint * e))              \
    X(cl_int, clGetDeviceInfo, (cl_device_id a, cl_device_info b, size_t c, void *d, size_t *e))   \
    X(cl_context, clCreateContext,                                                                 \
      (const cl_context_properties *a, cl_uint b, const cl_device_id *c,                           \
       void(CL_CALLBACK * d)(const char *, const void *, size_t, void *), void *e, cl_int *f))     \
    X(cl_int, clRetainContext, (cl_context a))                                                     \
    X(cl_int, clReleaseContext, (cl_context a))                                                    \
    X(cl_command_queue, clCreateCommandQueue,                                                      \
      (cl_context a, cl_device_id b, cl_command_queue_properties c, cl_int * d))                   \
    X(cl_int, clRetainCommandQueue, (cl_command_queue a))                                          \
    X(cl_int, clReleaseCommandQueue, (cl_command_queue a))                                         \
    X(cl_int, clFinish, (cl_command_queue a))                                                      \
    X(cl_mem, clCreateBuffer, (cl_context a, cl_mem_flags b, size_t c, void *d, cl_int *e))        \
    X(cl_int, clReleaseMemObject, (cl_mem a))                                                      \
    X(cl_int, clEnqueueReadBuffer,                                                                 \
      (cl_command_queue a, cl_mem b, cl_bool c, size_t d, size_t e, void *f, cl_uint g,            \
       const cl_event *h, cl_event *i))                                                            \
    X(cl_int, clEnqueueWriteBuffer,                                                                \
      (cl_command_queue a, cl_mem b, cl_bool c, size_t d, size_t e, const void *f, cl_uint g,      \
       const cl_event *h, cl_event *i))                                                            \
    X(cl_program, clCreateProgramWithSource,                                                       \
      (cl_context a, cl_uint b, const char **c, const size_t *d, cl_int *e))                       \
    X(cl_program, clCreateProgramWithBinary,                                                       \
      (cl_context a, cl_uint b, const cl_device_id *c, const size_t *d, const unsigned char **e,   \
       cl_int *f, cl_int *g))                                                                      \
    X(cl_int, clBuildProgram,                                                                      \
      (cl_program a, cl_uint b, const cl_device_id *c, const char *d,                              \
       void(CL_CALLBACK * e)(cl_program, void *), void *f))                                        \
    X(cl_int, clGetProgramInfo, (cl_program a, cl_program_info b, size_t c, void *d, size_t *e))   \
    X(cl_int, clGetProgramBuildInfo,                                                               \
      (cl_program a, cl_device_id b, cl_program_build_info c, size_t d, void *e, size_t *f))       \
    X(cl_int, clReleaseProgram, (cl_program a))                                                    \
    X(cl_kernel, clCreateKernel, (cl_program a, const char *b, cl_int *c))                         \
    X(cl_int, clReleaseKernel, (cl_kernel a))                                                      \
    X(cl_int, clSetKernelArg, (cl_kernel a, cl_uint b, size_t c, const void *d))                   \
    X(cl_int, clEnqueueNDRangeKernel,                                                              \
      (cl_command_queue a, cl_kernel b, cl_uint c, const size_t *d, const size_t *e,               \
       const size_t *f, cl_uint g, const cl_event *h, cl_event *i))                                \
    X(cl_int, clReleaseEvent, (cl_event a))

#define CLNET_SHIM_DECLARE(ret, name, args) ret clnet__shim_##name args;
CLNET_SHIM_LIST(CLNET_SHIM_DECLARE)
#undef CLNET_SHIM_DECLARE

#ifndef CLNET_SHIM_IMPL
#define clGetPlatformIDs clnet__shim_clGetPlatformIDs
#define clGetPlatformInfo clnet__shim_clGetPlatformInfo
#define clGetDeviceIDs clnet__shim_clGetDeviceIDs
#define clGetDeviceInfo clnet__shim_clGetDeviceInfo
#define clCreateContext clnet__shim_clCreateContext
#define clRetainContext clnet__shim_clRetainContext
#define clReleaseContext clnet__shim_clReleaseContext
#define clCreateCommandQueue clnet__shim_clCreateCommandQueue
#define clRetainCommandQueue clnet__shim_clRetainCommandQueue
#define clReleaseCommandQueue clnet__shim_clReleaseCommandQueue
#define clFinish clnet__shim_clFinish
#define clCreateBuffer clnet__shim_clCreateBuffer
#define clReleaseMemObject clnet__shim_clReleaseMemObject
#define clEnqueueReadBuffer clnet__shim_clEnqueueReadBuffer
#define clEnqueueWriteBuffer clnet__shim_clEnqueueWriteBuffer
#define clCreateProgramWithSource clnet__shim_clCreateProgramWithSource
#define clCreateProgramWithBinary clnet__shim_clCreateProgramWithBinary
#define clBuildProgram clnet__shim_clBuildProgram
#define clGetProgramInfo clnet__shim_clGetProgramInfo
#define clGetProgramBuildInfo clnet__shim_clGetProgramBuildInfo
#define clReleaseProgram clnet__shim_clReleaseProgram
#define clCreateKernel clnet__shim_clCreateKernel
#define clReleaseKernel clnet__shim_clReleaseKernel
#define clSetKernelArg clnet__shim_clSetKernelArg
#define clEnqueueNDRangeKernel clnet__shim_clEnqueueNDRangeKernel
#define clReleaseEvent clnet__shim_clReleaseEvent
#endif

#endif
