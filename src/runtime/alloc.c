/* clnet — host allocation wrappers and the fault-injection state shared with
 * the OpenCL shim (shim.c). Inert until a test arms it (fault.h). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fault.h"

enum { ARMED_NONE, ARMED_CL, ARMED_HOST };

static atomic_int armed;      /* ARMED_*: read by every wrapper, relaxed */
static atomic_long calls;     /* counted calls since the arming */
static atomic_long host_live; /* live host blocks */
static long target;           /* the call to fail, 1-based */
static cl_int arm_err;
static char filter[64];           /* "" = every failable OpenCL call */
static const char *_Atomic fired; /* the call that failed, or NULL */

void clnet__fault_arm(const char *call, long n, cl_int err)
{
    atomic_store(&armed, ARMED_NONE);
    snprintf(filter, sizeof filter, "%s", call ? call : "");
    target = n;
    arm_err = err;
    atomic_store(&calls, 0);
    atomic_store(&fired, NULL);
    atomic_store(&armed, ARMED_CL);
}

void clnet__fault_arm_host(long n)
{
    atomic_store(&armed, ARMED_NONE);
    filter[0] = 0;
    target = n;
    atomic_store(&calls, 0);
    atomic_store(&fired, NULL);
    atomic_store(&armed, ARMED_HOST);
}

void clnet__fault_disarm(void)
{
    atomic_store(&armed, ARMED_NONE);
}

const char *clnet__fault_fired(void)
{
    return atomic_load(&fired);
}

long clnet__fault_calls(void)
{
    return atomic_load(&calls);
}

long clnet__fault_host_live(void)
{
    return atomic_load(&host_live);
}

int clnet__fault_check(int host, const char *call, cl_int *err)
{
    int a = atomic_load_explicit(&armed, memory_order_relaxed);
    if (a == ARMED_NONE || (a == ARMED_HOST) != (host != 0))
        return 0;
    if (!host && filter[0] && strcmp(filter, call) != 0)
        return 0;
    if (atomic_fetch_add(&calls, 1) + 1 != target)
        return 0;
    atomic_store(&fired, call);
    if (err)
        *err = arm_err;
    return 1;
}

static void *counted(void *p)
{
    if (p)
        atomic_fetch_add_explicit(&host_live, 1, memory_order_relaxed);
    return p;
}

void *clnet__malloc(size_t n)
{
    return clnet__fault_check(1, "malloc", NULL) ? NULL : counted(malloc(n));
}

void *clnet__calloc(size_t count, size_t size)
{
    return clnet__fault_check(1, "calloc", NULL) ? NULL : counted(calloc(count, size));
}

void *clnet__realloc(void *p, size_t n)
{
    if (clnet__fault_check(1, "realloc", NULL))
        return NULL;
    void *q = realloc(p, n);
    return p ? q : counted(q);
}

void *clnet__aligned_alloc(size_t alignment, size_t n)
{
    return clnet__fault_check(1, "aligned_alloc", NULL) ? NULL
                                                        : counted(aligned_alloc(alignment, n));
}

void clnet__free(void *p)
{
    if (p)
        atomic_fetch_sub_explicit(&host_live, 1, memory_order_relaxed);
    free(p);
}
