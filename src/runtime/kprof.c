/* clnet — per-kernel device times (clnet_context_kernel_times, CLNET_PROFILE).
 * Off by default and then free: clnet__launch asks for an event only when
 * ctx->kprof is set. Each launch's event is kept with its kernel until the
 * queue is known to have passed it (a finish, a blocking read, the report,
 * or a full pending list, which waits); then its START..END span is added to
 * the kernel's row, found by function name. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context_impl.h"

#define KPROF_PENDING_MAX 4096

struct clnet__kprof {
    int npending, cap_pending;
    cl_event *events;
    cl_kernel *kernels;
    int nrows, cap_rows;
    clnet_kernel_time *rows;
    int lost; /* events whose times could not be read */
};

int clnet__kprof_wanted(const clnet_context_params *params, const clnet__env *env)
{
    return (params && params->profiling == CLNET_PROFILE_KERNELS) || env->profile;
}

clnet_status clnet__kprof_create(clnet_context *ctx)
{
    ctx->kprof = clnet__malloc(sizeof *ctx->kprof);
    if (!ctx->kprof)
        return CLNET_ERR_HOST_MEMORY;
    memset(ctx->kprof, 0, sizeof *ctx->kprof);
    ctx->kprof_report = ctx->profile.env.profile;
    return CLNET_OK;
}

static clnet_kernel_time *row_for(clnet__kprof *kp, const char *name)
{
    for (int i = 0; i < kp->nrows; i++)
        if (!strcmp(kp->rows[i].name, name))
            return &kp->rows[i];
    if (kp->nrows == kp->cap_rows) {
        int cap = kp->cap_rows ? 2 * kp->cap_rows : 32;
        clnet_kernel_time *r = clnet__realloc(kp->rows, (size_t)cap * sizeof *r);
        if (!r)
            return NULL;
        kp->rows = r;
        kp->cap_rows = cap;
    }
    clnet_kernel_time *r = &kp->rows[kp->nrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    return r;
}

/* Adds the times of every pending event (all complete) and releases them. */
static void harvest(clnet__kprof *kp)
{
    for (int i = 0; i < kp->npending; i++) {
        cl_ulong t0 = 0, t1 = 0;
        char name[sizeof kp->rows[0].name] = "?";
        clGetKernelInfo(kp->kernels[i], CL_KERNEL_FUNCTION_NAME, sizeof name - 1, name, NULL);
        name[sizeof name - 1] = 0;
        clnet_kernel_time *r = row_for(kp, name);
        if (r &&
            clGetEventProfilingInfo(kp->events[i], CL_PROFILING_COMMAND_START, sizeof t0, &t0,
                                    NULL) == CL_SUCCESS &&
            clGetEventProfilingInfo(kp->events[i], CL_PROFILING_COMMAND_END, sizeof t1, &t1,
                                    NULL) == CL_SUCCESS &&
            t1 >= t0) {
            r->launches++;
            r->ms += (double)(t1 - t0) * 1e-6;
        } else {
            kp->lost++;
        }
        clReleaseEvent(kp->events[i]);
    }
    kp->npending = 0;
}

void clnet__kprof_completed(clnet_context *ctx)
{
    if (ctx->kprof)
        harvest(ctx->kprof);
}

void clnet__kprof_add(clnet_context *ctx, cl_kernel k, cl_event ev)
{
    clnet__kprof *kp = ctx->kprof;
    if (kp->npending == kp->cap_pending) {
        int cap = kp->cap_pending ? 2 * kp->cap_pending : 256;
        cl_event *e =
            cap <= KPROF_PENDING_MAX ? clnet__realloc(kp->events, (size_t)cap * sizeof *e) : NULL;
        cl_kernel *kk = e ? clnet__realloc(kp->kernels, (size_t)cap * sizeof *kk) : NULL;
        if (e)
            kp->events = e;
        if (kk) {
            kp->kernels = kk;
            kp->cap_pending = cap;
        } else {
            /* Full (or out of memory): wait for what is pending and count it. */
            clWaitForEvents((cl_uint)kp->npending, kp->events);
            harvest(kp);
        }
    }
    if (kp->npending < kp->cap_pending) {
        kp->events[kp->npending] = ev;
        kp->kernels[kp->npending++] = k;
    } else {
        clReleaseEvent(ev);
        kp->lost++;
    }
}

static int by_time(const void *a, const void *b)
{
    double x = ((const clnet_kernel_time *)a)->ms, y = ((const clnet_kernel_time *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

CLNET_API clnet_status clnet_context_kernel_times(clnet_context *ctx, clnet_kernel_time *out,
                                                  int cap, int *count)
{
    CLNET_CHECK_ARG(ctx, ctx != NULL);
    CLNET_CHECK_ARG(ctx, count != NULL && cap >= 0 && (cap == 0 || out != NULL));
    if (!ctx->kprof)
        return clnet__error(ctx, CLNET_ERR_INVALID_ARG,
                            "clnet_context_kernel_times: kernel timing is off: create the context "
                            "with params.profiling = CLNET_PROFILE_KERNELS or set CLNET_PROFILE=1");
    clnet_status st = clnet_context_finish(ctx);
    if (st)
        return st;
    harvest(ctx->kprof);
    qsort(ctx->kprof->rows, (size_t)ctx->kprof->nrows, sizeof *ctx->kprof->rows, by_time);
    *count = ctx->kprof->nrows;
    for (int i = 0; i < cap && i < ctx->kprof->nrows; i++)
        out[i] = ctx->kprof->rows[i];
    return CLNET_OK;
}

CLNET_API clnet_status clnet_context_kernel_times_reset(clnet_context *ctx)
{
    CLNET_CHECK_ARG(ctx, ctx != NULL);
    if (!ctx->kprof)
        return CLNET_OK;
    clnet_status st = clnet_context_finish(ctx);
    harvest(ctx->kprof);
    ctx->kprof->nrows = 0;
    ctx->kprof->lost = 0;
    return st;
}

/* Appends to a growing report; on allocation failure the report is dropped. */
static void add_line(char **buf, size_t *len, size_t *cap, const char *fmt, ...) CLNET_PRINTF(4, 5);
static void add_line(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (!*buf || n < 0)
        return;
    size_t m = strlen(line);
    if (*len + m + 1 > *cap) {
        size_t cap2 = 2 * (*cap + m + 1);
        char *b = clnet__realloc(*buf, cap2);
        if (!b) {
            clnet__free(*buf);
            *buf = NULL;
            return;
        }
        *buf = b;
        *cap = cap2;
    }
    memcpy(*buf + *len, line, m + 1);
    *len += m;
}

/* The CLNET_PROFILE report: one message (status CLNET_OK) to the context's
 * log callback; without a callback it goes nowhere (the library never
 * prints; clnet_log_stderr is the callback that prints it). */
static void report(clnet_context *ctx)
{
    clnet__kprof *kp = ctx->kprof;
    if (!ctx->log)
        return;
    qsort(kp->rows, (size_t)kp->nrows, sizeof *kp->rows, by_time);
    double total = 0;
    uint64_t launches = 0;
    for (int i = 0; i < kp->nrows; i++) {
        total += kp->rows[i].ms;
        launches += kp->rows[i].launches;
    }
    size_t len = 0, cap = 1024;
    char *buf = clnet__malloc(cap);
    if (buf)
        buf[0] = 0;
    add_line(&buf, &len, &cap,
             "clnet profile: %s: %llu kernel launches, %.1f ms of device time%s\n",
             ctx->profile.info.name, (unsigned long long)launches, total,
             kp->lost ? " (some events unreadable)" : "");
    add_line(&buf, &len, &cap, "  %-32s %10s %12s %10s %7s", "kernel", "launches", "total ms",
             "mean us", "share");
    for (int i = 0; i < kp->nrows; i++) {
        const clnet_kernel_time *r = &kp->rows[i];
        add_line(&buf, &len, &cap, "\n  %-32s %10llu %12.2f %10.1f %6.1f%%", r->name,
                 (unsigned long long)r->launches, r->ms,
                 r->launches ? 1e3 * r->ms / r->launches : 0, total > 0 ? 100 * r->ms / total : 0);
    }
    if (buf)
        ctx->log(ctx->log_user, CLNET_OK, buf);
    clnet__free(buf);
}

void clnet__kprof_destroy(clnet_context *ctx)
{
    clnet__kprof *kp = ctx->kprof;
    if (!kp)
        return;
    if (ctx->queue)
        clFinish(ctx->queue);
    harvest(kp);
    if (ctx->kprof_report && kp->nrows)
        report(ctx);
    clnet__free(kp->events);
    clnet__free(kp->kernels);
    clnet__free(kp->rows);
    clnet__free(kp);
    ctx->kprof = NULL;
}
