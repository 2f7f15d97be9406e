/* clnet — the prelude: passed as the first source string of every program.
 * Each kernel file also compiles on its own (every -D constant has a default). */
#pragma OPENCL FP_CONTRACT OFF

#ifndef CLNET_WG
#define CLNET_WG 64
#endif

/* Optional features, one name each whatever the OpenCL C version: kernels are
 * OpenCL C 1.2 and use none of them. A variant that needs one tests
 * CLNET_HAS_*; the host builds it only where clnet__has_features() says the
 * device has it, with the OpenCL C version that defines its macros
 * (clnet__kernel_features), and runs a 1.2 fallback elsewhere. */
#if defined(cl_khr_fp64) || defined(__opencl_c_fp64)
#define CLNET_HAS_FP64 1
#endif
#if defined(cl_khr_fp16)
#define CLNET_HAS_FP16 1
#endif
#if defined(__OPENCL_C_VERSION__) && __OPENCL_C_VERSION__ >= 200 && __OPENCL_C_VERSION__ < 300
#define CLNET_HAS_WORK_GROUP_COLLECTIVES 1
#elif defined(__opencl_c_work_group_collective_functions)
#define CLNET_HAS_WORK_GROUP_COLLECTIVES 1
#endif
#if defined(cl_khr_subgroups) || defined(__opencl_c_subgroups)
#define CLNET_HAS_SUBGROUPS 1
#endif
