/* clnet-bench — measuring one case on one context: the first call apart,
 * a warm-up, then timed repetitions by wall clock (the primary measure) and
 * by profiling markers on the context's queue (where the device has them). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <clnet/opencl.h>

#include "bench.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted x[0..n-1], linearly interpolated. */
static double quantile(const double *x, int n, double q)
{
    double pos = q * (n - 1);
    int i = (int)pos;
    if (i >= n - 1)
        return x[n - 1];
    return x[i] + (pos - i) * (x[i + 1] - x[i]);
}

static void fail(bench_result *r, clnet_context *ctx, const char *what, clnet_status st)
{
    const char *msg = clnet_context_errmsg(ctx);
    r->ok = 0;
    snprintf(r->error, sizeof r->error, "%s: %s%s%s", what, clnet_status_name(st),
             msg && *msg ? ": " : "", msg ? msg : "");
}

/* Wall seconds of `inner` operations queued back to back and one finish. */
static clnet_status timed_ops(clnet_context *ctx, const bench_suite *s, void *state, int inner,
                              double *seconds)
{
    double t0 = bench_now();
    clnet_status st = CLNET_OK;
    for (int i = 0; i < inner && !st; i++)
        st = s->run(state);
    if (!st)
        st = clnet_context_finish(ctx);
    *seconds = bench_now() - t0;
    return st;
}

/* Device seconds between two markers, < 0 when the queue has no profiling
 * information for them. Markers only use the interop header; a small public
 * timer API would do the same (see docs/bench.md). */
static double marker_span(cl_event e0, cl_event e1)
{
    cl_ulong t0 = 0, t1 = 0;
    if (clGetEventProfilingInfo(e0, CL_PROFILING_COMMAND_END, sizeof t0, &t0, NULL) != CL_SUCCESS ||
        clGetEventProfilingInfo(e1, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) != CL_SUCCESS ||
        t1 < t0)
        return -1.0;
    return (double)(t1 - t0) * 1e-9;
}

/* One timed repetition; *event_s < 0 if markers gave nothing. */
static clnet_status repetition(clnet_context *ctx, const bench_suite *s, void *state, int inner,
                               double *wall_s, double *event_s)
{
    cl_command_queue q = clnet_context_cl_queue(ctx);
    cl_event e0 = NULL, e1 = NULL;
    *event_s = -1.0;
    if (clEnqueueMarkerWithWaitList(q, 0, NULL, &e0) != CL_SUCCESS)
        e0 = NULL;
    double t0 = bench_now();
    clnet_status st = CLNET_OK;
    for (int i = 0; i < inner && !st; i++)
        st = s->run(state);
    if (e0 && !st && clEnqueueMarkerWithWaitList(q, 0, NULL, &e1) != CL_SUCCESS)
        e1 = NULL;
    if (!st)
        st = clnet_context_finish(ctx);
    *wall_s = bench_now() - t0;
    if (!st && e0 && e1)
        *event_s = marker_span(e0, e1);
    if (e1)
        clReleaseEvent(e1);
    if (e0)
        clReleaseEvent(e0);
    return st;
}

static void summarize(bench_result *r, double *ms, double *ev_ms, int reps)
{
    int have_events = 1;
    for (int i = 0; i < reps; i++)
        have_events &= ev_ms[i] >= 0.0;
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    r->median_ms = quantile(ms, reps, 0.5);
    r->q1_ms = quantile(ms, reps, 0.25);
    r->q3_ms = quantile(ms, reps, 0.75);
    r->min_ms = ms[0];
    r->max_ms = ms[reps - 1];
    if (have_events) {
        qsort(ev_ms, (size_t)reps, sizeof *ev_ms, cmp_double);
        r->event_ms = quantile(ev_ms, reps, 0.5);
    }
}

/* Warm-up and repetitions, after the first call. */
static void measure(clnet_context *ctx, const bench_suite *s, void *state, const bench_options *o,
                    bench_result *r)
{
    double warm_s;
    clnet_status st = timed_ops(ctx, s, state, 1, &warm_s);
    if (st) {
        fail(r, ctx, "warm-up", st);
        return;
    }
    /* Short ops run back to back until a repetition lasts target_s: one
     * finish per op would time the host's wait rather than the op. */
    double one = warm_s;
    int inner = one > 0 ? (int)ceil(o->target_s / one) : 1000;
    inner = inner < 1 ? 1 : inner > 1000 ? 1000 : inner;
    int reps = o->reps;
    if (reps > 3 && one * inner * reps > o->case_budget_s) { /* a slow device: fewer reps */
        int fit = (int)(o->case_budget_s / (one * inner));
        reps = fit > 3 ? fit : 3;
    }
    double *ms = malloc(2 * (size_t)reps * sizeof *ms);
    if (!ms) {
        fail(r, ctx, "repetitions", CLNET_ERR_HOST_MEMORY);
        return;
    }
    double *ev_ms = ms + reps;
    for (int i = 0; i < reps && !st; i++) {
        double wall, ev;
        st = repetition(ctx, s, state, inner, &wall, &ev);
        ms[i] = wall * 1e3 / inner;
        ev_ms[i] = ev >= 0 ? ev * 1e3 / inner : -1.0;
    }
    if (st)
        fail(r, ctx, "repetition", st);
    else {
        r->reps = reps;
        r->inner = inner;
        summarize(r, ms, ev_ms, reps);
    }
    free(ms);
}

void bench_run_case(clnet_context *ctx, const bench_suite *s, const bench_case *c,
                    const bench_options *o, void **ref_cache, int inject_fault, bench_result *r)
{
    r->suite = s->name;
    r->c = *c;
    r->ok = 1;
    r->event_ms = -1.0;
    r->first_warm_ms = -1.0;
    void *state = NULL;
    clnet_status st = s->setup(ctx, c, &state);
    if (!st) /* the setup's uploads and fills are not part of the first call */
        st = clnet_context_finish(ctx);
    if (st) {
        fail(r, ctx, "setup", st);
        if (state)
            s->teardown(state);
        return;
    }
    double first;
    st = timed_ops(ctx, s, state, 1, &first);
    r->first_ms = first * 1e3;
    if (st)
        fail(r, ctx, "first call", st);
    else
        measure(ctx, s, state, o, r);
    if (r->ok && o->check && s->check) {
        st = s->check(state, c, ref_cache, inject_fault, &r->check);
        if (st)
            fail(r, ctx, "check", st);
    }
    s->teardown(state);
}

double bench_first_call(clnet_context *ctx, const bench_suite *s, const bench_case *c)
{
    void *state = NULL;
    if (s->setup(ctx, c, &state) || clnet_context_finish(ctx)) {
        if (state)
            s->teardown(state);
        return -1.0;
    }
    double t;
    clnet_status st = timed_ops(ctx, s, state, 1, &t);
    s->teardown(state);
    return st ? -1.0 : t * 1e3;
}
