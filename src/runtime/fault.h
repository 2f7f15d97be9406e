/* clnet — test-only control of the OpenCL and host-allocation shims
 * (src/runtime/shim.c, alloc.c): fail the n-th call with a chosen error,
 * count what is alive, and make the device look smaller than it is. Compiled
 * into every build, inert until armed: an unarmed call costs one relaxed
 * atomic load. The state is process-wide (a host allocation fails before
 * any context exists) and meant for one test thread at a time; the counters
 * themselves are atomic. Not part of the public API. */
#ifndef CLNET_FAULT_H
#define CLNET_FAULT_H

#include <stddef.h>

#include "clnet/opencl.h"

/* What clnet holds right now, process-wide: OpenCL objects it created or
 * retained and has not released, bytes of its live buffers, and live host
 * blocks from clnet__malloc and friends. CLBlast's own objects are not
 * counted (it calls OpenCL itself; see docs/hardening.md). */
typedef struct clnet__live {
    long contexts, queues, programs, kernels, buffers, events;
    long long device_bytes;
    long host_blocks;
} clnet__live;

void clnet__fault_live(clnet__live *out);

/* Fails the n-th (1-based) failable OpenCL call made from now on with err:
 * the wrapper returns err (or NULL with *errcode_ret = err) without calling
 * the driver. call names one function ("clBuildProgram") to count only its
 * calls, or is NULL for every failable call. Releases are never failed.
 * Replaces any earlier arming; one failure per arming. */
void clnet__fault_arm(const char *call, long n, cl_int err);
/* Fails the n-th host allocation made from now on (it returns NULL). */
void clnet__fault_arm_host(long n);
/* Stops injecting; counts are kept until the next arm. */
void clnet__fault_disarm(void);
/* The name of the call that the armed fault failed ("clCreateBuffer",
 * "malloc", ...), or NULL when it has not fired. */
const char *clnet__fault_fired(void);
/* Calls counted since the last arm (the failed one included): OpenCL calls
 * that match the filter, or host allocations. */
long clnet__fault_calls(void);

/* Device limits lower than the device's own, applied by the shim to what
 * clGetDeviceInfo answers (so the profile, the work-group size, the
 * allocation checks and feature choices all see them); 0 keeps a limit as
 * it is. Takes effect for contexts created afterwards. NULL clears. */
typedef struct clnet__device_caps {
    size_t max_work_group_size;
    cl_ulong local_mem_bytes;
    cl_ulong max_alloc_bytes;
    int hide_fp64; /* drop cl_khr_fp64 and __opencl_c_fp64 */
} clnet__device_caps;

void clnet__fault_device_caps(const clnet__device_caps *caps);

/* Between the shims: whether this call (host != 0: an allocation) is the
 * one to fail; then *err (may be NULL) receives the armed error. */
int clnet__fault_check(int host, const char *call, cl_int *err);
long clnet__fault_host_live(void);

#endif
