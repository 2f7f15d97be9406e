/* clnet — data-parallel training over MPI (include/clnet/dist.h,
 * docs/dist.md): joining the job, agreeing on failures, a device per rank,
 * parameters broadcast from rank 0, and gradients averaged in buckets with
 * MPI_Iallreduce between backward and step (fit.c: sharded fit, evaluate).
 * Every collective is non-blocking and waited for with a deadline, so a rank
 * that died or hung makes the others fail with a message, never hang. Built
 * only with MPI; dist_none.c stands in without it. */
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist_impl.h"
#include "tensor/tensor_impl.h"

#define DEFAULT_TIMEOUT_S 300.0
#define DEFAULT_BUCKET_BYTES ((size_t)256 << 10)
/* The largest count one MPI call moves (MPI counts are int). */
#define MAX_COUNT ((size_t)1 << 28)

CLNET_API int clnet_dist_launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

/* ---- Errors and waiting ------------------------------------------------------- */

/* Records a message on d (and on ctx when given); returns status. */
clnet_status clnet__dist_fail(clnet_dist *d, const clnet_context *ctx, clnet_status status,
                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, sizeof d->err, fmt, ap);
    va_end(ap);
    if (ctx)
        clnet__error(ctx, status, "%s", d->err);
    return status;
}

static clnet_status mpi_fail(clnet_dist *d, const clnet_context *ctx, int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "MPI error %d", rc);
    d->broken = 1;
    return clnet__dist_fail(d, ctx, CLNET_ERR_IO, "rank %d: %s failed: %s (a rank may have died)",
                            d->rank, what, msg);
}

/* Waits for n requests, driving MPI's progress (a non-blocking collective
 * advances only inside MPI calls), until d->timeout. The first 2 ms poll
 * with sched_yield, for the latency of small reductions; then naps grow
 * from 20 us to 1 ms so that a waiting rank leaves the CPU to the others
 * (ranks on a shared CPU device compute on the same cores). */
static clnet_status wait_reqs(clnet_dist *d, const clnet_context *ctx, int n, MPI_Request *reqs,
                              const char *what)
{
    double t0 = clnet__now();
    long ns = 20000;
    for (;;) {
        int done = 0;
        int rc = MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS)
            return mpi_fail(d, ctx, rc, what);
        if (done)
            return CLNET_OK;
        double waited = clnet__now() - t0;
        if (waited > d->timeout) {
            d->broken = 1;
            return clnet__dist_fail(d, ctx, CLNET_ERR_IO,
                                    "rank %d: %s did not complete within %g s: another rank died, "
                                    "hung or did not make the same call (CLNET_DIST_TIMEOUT sets "
                                    "the limit)",
                                    d->rank, what, d->timeout);
        }
        if (waited < 2e-3) {
            sched_yield();
            continue;
        }
        struct timespec ts = { 0, ns };
        nanosleep(&ts, NULL);
        ns = ns < 1000000 ? ns * 2 : 1000000;
    }
}

clnet_status clnet__dist_allreduce(clnet_dist *d, const clnet_context *ctx, void *buf, int count,
                                   MPI_Datatype type, MPI_Op op, const char *what)
{
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, count, type, op, d->comm, &req);
    return rc != MPI_SUCCESS ? mpi_fail(d, ctx, rc, what) : wait_reqs(d, ctx, 1, &req, what);
}

static clnet_status bcast(clnet_dist *d, const clnet_context *ctx, void *buf, size_t count,
                          MPI_Datatype type, size_t elem, int root, const char *what)
{
    for (size_t off = 0; off < count; off += MAX_COUNT) {
        size_t n = count - off < MAX_COUNT ? count - off : MAX_COUNT;
        MPI_Request req;
        int rc = MPI_Ibcast((char *)buf + off * elem, (int)n, type, root, d->comm, &req);
        clnet_status st =
            rc != MPI_SUCCESS ? mpi_fail(d, ctx, rc, what) : wait_reqs(d, ctx, 1, &req, what);
        if (st)
            return st;
    }
    return CLNET_OK;
}

/* ---- Joining the job ----------------------------------------------------------- */

CLNET_API int clnet_dist_available(void)
{
    return 1;
}

/* The rank among the ranks on this host: how many lower ranks share its
 * processor name (an exchange with a deadline, unlike MPI_Comm_split_type). */
static clnet_status find_local_rank(clnet_dist *d)
{
    char *names = calloc((size_t)d->size, MPI_MAX_PROCESSOR_NAME);
    if (!names)
        return clnet__dist_fail(d, NULL, CLNET_ERR_HOST_MEMORY,
                                "clnet_dist_create: out of host memory");
    char *mine = names + (size_t)d->rank * MPI_MAX_PROCESSOR_NAME;
    int len = 0;
    MPI_Get_processor_name(mine, &len);
    MPI_Request req;
    int rc = MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, names, MPI_MAX_PROCESSOR_NAME,
                            MPI_CHAR, d->comm, &req);
    clnet_status st = rc != MPI_SUCCESS ? mpi_fail(d, NULL, rc, "exchanging host names")
                                        : wait_reqs(d, NULL, 1, &req, "exchanging host names");
    for (int r = 0; !st && r < d->rank; r++)
        d->local_rank +=
            !strncmp(names + (size_t)r * MPI_MAX_PROCESSOR_NAME, mine, MPI_MAX_PROCESSOR_NAME);
    free(names);
    return st;
}

/* A positive number from the environment, else 0. */
static double env_number(const char *name)
{
    const char *s = getenv(name);
    double v = s ? strtod(s, NULL) : 0;
    return v > 0 ? v : 0;
}

static void copy_err(const clnet_dist *d, char *err, size_t err_size)
{
    if (err && err_size)
        snprintf(err, err_size, "%s", d->err);
}

CLNET_API clnet_status clnet_dist_create(const clnet_dist_params *params, clnet_dist **out,
                                         char *err, size_t err_size)
{
    CLNET_CHECK_ARG(NULL, out != NULL);
    *out = NULL;
    clnet_dist_params p = params ? *params : CLNET_DIST_PARAMS_DEFAULT;
    clnet_dist *d = calloc(1, sizeof *d);
    if (!d) {
        if (err && err_size)
            snprintf(err, err_size, "clnet_dist_create: out of host memory");
        return CLNET_ERR_HOST_MEMORY;
    }
    d->comm = MPI_COMM_NULL;
    double env_timeout = env_number("CLNET_DIST_TIMEOUT"),
           env_kib = env_number("CLNET_DIST_BUCKET_KB");
    d->timeout = p.timeout_s > 0 ? p.timeout_s : env_timeout > 0 ? env_timeout : DEFAULT_TIMEOUT_S;
    d->bucket_bytes = p.bucket_bytes ? p.bucket_bytes
                      : env_kib > 0  ? (size_t)(env_kib * 1024)
                                     : DEFAULT_BUCKET_BYTES;
    d->equal_weights = p.equal_weights != 0;
    int inited = 0, provided = 0, rc = MPI_SUCCESS;
    clnet_status st = CLNET_OK;
    MPI_Initialized(&inited);
    if (!inited) {
        if ((rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS)
            st = mpi_fail(d, NULL, rc, "MPI_Init_thread");
        d->finalize = rc == MPI_SUCCESS;
    }
    MPI_Request req;
    MPI_Comm base = p.mpi_comm ? *(const MPI_Comm *)p.mpi_comm : MPI_COMM_WORLD;
    if (!st && (rc = MPI_Comm_idup(base, &d->comm, &req)) != MPI_SUCCESS)
        st = mpi_fail(d, NULL, rc, "MPI_Comm_idup");
    if (!st)
        st = wait_reqs(d, NULL, 1, &req, "duplicating the communicator");
    if (!st && (rc = MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN)) != MPI_SUCCESS)
        st = mpi_fail(d, NULL, rc, "MPI_Comm_set_errhandler");
    if (!st) {
        MPI_Comm_rank(d->comm, &d->rank);
        MPI_Comm_size(d->comm, &d->size);
        st = find_local_rank(d);
    }
    if (st) {
        copy_err(d, err, err_size);
        clnet_dist_destroy(d);
        return st;
    }
    *out = d;
    return CLNET_OK;
}

CLNET_API void clnet_dist_destroy(clnet_dist *d)
{
    if (!d)
        return;
    for (int i = 0; i < MAX_ATTACHED; i++)
        if (d->att[i])
            clnet_dist_detach(d, d->att[i]->m);
    /* After a failed collective a request may still be pending on the
     * communicator, and MPI_Finalize may wait for the ranks that failed:
     * leave both to the process's end (or clnet_dist_abort). */
    if (!d->broken && d->comm != MPI_COMM_NULL)
        MPI_Comm_free(&d->comm);
    if (!d->broken && d->finalize)
        MPI_Finalize();
    free(d);
}

CLNET_API int clnet_dist_rank(const clnet_dist *d)
{
    return d ? d->rank : 0;
}

CLNET_API int clnet_dist_size(const clnet_dist *d)
{
    return d ? d->size : 1;
}

CLNET_API int clnet_dist_local_rank(const clnet_dist *d)
{
    return d ? d->local_rank : 0;
}

CLNET_API const char *clnet_dist_errmsg(const clnet_dist *d)
{
    return d ? d->err : "";
}

CLNET_API void clnet_dist_abort(clnet_dist *d, int exit_code)
{
    if (d)
        MPI_Abort(d->comm != MPI_COMM_NULL ? d->comm : MPI_COMM_WORLD, exit_code);
}

/* ---- Agreeing on failures --------------------------------------------------------- */

/* What the lowest failing rank sends to the others. */
typedef struct failure {
    int status;
    char message[1536];
} failure;

clnet_status clnet__dist_agree(clnet_dist *d, const clnet_context *ctx, clnet_status local,
                               const char *what, const char *message)
{
    int lowest = local ? d->rank : d->size;
    clnet_status st =
        clnet__dist_allreduce(d, ctx, &lowest, 1, MPI_INT, MPI_MIN, "agreeing on failures");
    if (st || lowest == d->size)
        return st;
    failure f = { 0 };
    if (d->rank == lowest) {
        f.status = (int)local;
        snprintf(f.message, sizeof f.message, "%s: %s", what ? what : "",
                 message && *message ? message : clnet_status_name(local));
    }
    if ((st = bcast(d, ctx, &f, sizeof f, MPI_BYTE, 1, lowest, "sharing a failure")))
        return st;
    f.message[sizeof f.message - 1] = 0;
    return clnet__dist_fail(d, ctx, (clnet_status)f.status, "rank %d: %s", lowest, f.message);
}

CLNET_API clnet_status clnet_dist_agree(clnet_dist *d, clnet_status local, const char *what,
                                        const char *message, char *err, size_t err_size)
{
    CLNET_CHECK_ARG(NULL, d != NULL);
    clnet_status st = clnet__dist_agree(d, NULL, local, what, message);
    if (st)
        copy_err(d, err, err_size);
    return st;
}

CLNET_API clnet_status clnet_dist_allreduce_sum(clnet_dist *d, double *values, int n)
{
    CLNET_CHECK_ARG(NULL, d != NULL);
    if (n < 0 || (n > 0 && !values))
        return clnet__dist_fail(
            d, NULL, CLNET_ERR_INVALID_ARG,
            "clnet_dist_allreduce_sum: values must hold n >= 0 doubles (n = %d)", n);
    return n ? clnet__dist_allreduce(d, NULL, values, n, MPI_DOUBLE, MPI_SUM,
                                     "clnet_dist_allreduce_sum")
             : CLNET_OK;
}

/* ---- A device per rank ------------------------------------------------------------- */

/* Entry `index` modulo the count of a comma-separated list. */
static void list_entry(const char *list, int index, char *out, size_t size)
{
    int n = 1;
    for (const char *c = list; *c; c++)
        n += *c == ',';
    int want = index % n;
    const char *s = list;
    for (int i = 0; i < want; i++)
        s = strchr(s, ',') + 1;
    size_t len = strcspn(s, ",");
    snprintf(out, size, "%.*s", (int)(len < size ? len : size - 1), s);
}

/* "P:D" of GPU number local_rank % (number of GPUs); "" without GPUs. */
static void pick_gpu(int local_rank, char *out, size_t size)
{
    clnet_system *sys = NULL;
    out[0] = 0;
    if (clnet_system_query(&sys, NULL, 0))
        return;
    int gpus = 0;
    for (int p = 0; p < sys->platform_count; p++)
        for (int i = 0; i < sys->platforms[p].device_count; i++)
            gpus += sys->platforms[p].devices[i].type == CLNET_DEVICE_GPU;
    for (int p = 0, k = 0; gpus && p < sys->platform_count; p++)
        for (int i = 0; i < sys->platforms[p].device_count; i++)
            if (sys->platforms[p].devices[i].type == CLNET_DEVICE_GPU && k++ == local_rank % gpus)
                snprintf(out, size, "%d:%d", p, i);
    clnet_system_free(sys);
}

CLNET_API clnet_status clnet_dist_context_create(clnet_dist *d, const clnet_context_params *params,
                                                 clnet_context **out, char *err, size_t err_size)
{
    CLNET_CHECK_ARG(NULL, d != NULL && out != NULL);
    *out = NULL;
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    if (params)
        p = *params;
    const char *spec = p.device && *p.device ? p.device : getenv("CLNET_DEVICE");
    char pick[256] = "";
    if (spec && *spec)
        list_entry(spec, d->local_rank, pick, sizeof pick);
    else
        pick_gpu(d->local_rank, pick, sizeof pick);
    p.device = pick[0] ? pick : NULL;
    char msg[1024] = "", what[320];
    clnet_status local = clnet_context_create(&p, out, msg, sizeof msg);
    snprintf(what, sizeof what, "creating its device (spec \"%s\")", pick[0] ? pick : "default");
    clnet_status st = clnet__dist_agree(d, NULL, local, what, msg);
    if (st) {
        clnet_context_destroy(*out);
        *out = NULL;
        copy_err(d, err, err_size);
    }
    return st;
}

/* ---- Parameters ------------------------------------------------------------------------ */

static int trained(const clnet__layer *l, int k)
{
    return l->trainable && l->params[k].grad != NULL;
}

attachment *clnet__dist_find(const clnet_dist *d, const clnet_model *m)
{
    for (int i = 0; d && m && i < MAX_ATTACHED; i++)
        if (d->att[i] && d->att[i]->m == m)
            return d->att[i];
    return NULL;
}

/* The tensors that hold a model's state, in a fixed order: each parameter
 * and its optimizer moments. out has room for 3 per parameter. */
static int state_tensors(const clnet_model *m, clnet_tensor **out)
{
    int n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++) {
            const clnet__param *q = &m->layers[i]->params[k];
            clnet_tensor *t[3] = { q->value, q->m, q->v };
            for (int j = 0; j < 3; j++)
                if (t[j])
                    out[n++] = t[j];
        }
    return n;
}

/* Copies the given tensors from rank 0 to every rank, packed in one buffer. */
clnet_status clnet__dist_bcast_tensors(clnet_dist *d, const clnet_model *m, clnet_tensor **t, int n,
                                       const char *what)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += clnet_tensor_numel(t[i]);
    float *host = malloc((total ? total : 1) * sizeof *host);
    if (!host)
        return clnet__dist_fail(d, m->ctx, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", what);
    clnet_status st = CLNET_OK;
    size_t off = 0;
    for (int i = 0; i < n && !st && d->rank == 0; off += clnet_tensor_numel(t[i++]))
        st = clnet_tensor_download(t[i], host + off, clnet_tensor_numel(t[i]) * sizeof *host);
    /* A rank 0 that cannot read its parameters must not leave the others waiting. */
    if (!(st = clnet__dist_agree(d, m->ctx, st, what, clnet_context_errmsg(m->ctx))))
        st = bcast(d, m->ctx, host, total, MPI_FLOAT, sizeof *host, 0, what);
    off = 0;
    for (int i = 0; i < n && !st && d->rank != 0; off += clnet_tensor_numel(t[i++]))
        st = clnet_tensor_upload(t[i], host + off, clnet_tensor_numel(t[i]) * sizeof *host);
    free(host);
    return st;
}

/* Compares one 64-bit value per item with rank 0's. Returns CLNET_OK and
 * *rank = size when every rank agrees; else the lowest differing rank and
 * its first differing item (n when only the counts differ). */
static clnet_status compare_with_root(clnet_dist *d, const clnet_context *ctx, int n,
                                      const uint64_t *v, int *rank, int *item)
{
    int n0 = n;
    clnet_status st = bcast(d, ctx, &n0, 1, MPI_INT, sizeof n0, 0, "comparing with rank 0");
    uint64_t *v0 = st ? NULL : calloc((size_t)n0 + 1, sizeof *v0);
    if (!st && !v0)
        st = clnet__dist_fail(d, ctx, CLNET_ERR_HOST_MEMORY,
                              "comparing with rank 0: out of host memory");
    if (!st && d->rank == 0)
        memcpy(v0, v, (size_t)n * sizeof *v);
    if (!st)
        st = bcast(d, ctx, v0, (size_t)n0, MPI_UINT64_T, sizeof *v0, 0, "comparing with rank 0");
    int common = n < n0 ? n : n0, first = n == n0 ? -1 : common;
    for (int i = 0; !st && i < common; i++)
        if (v[i] != v0[i]) {
            first = i;
            break;
        }
    int differs = first >= 0 ? d->rank : d->size;
    if (!st)
        st = clnet__dist_allreduce(d, ctx, &differs, 1, MPI_INT, MPI_MIN, "comparing with rank 0");
    *rank = differs;
    *item = first;
    if (!st && *rank < d->size)
        st = bcast(d, ctx, item, 1, MPI_INT, sizeof *item, *rank, "comparing with rank 0");
    free(v0);
    return st;
}

/* One hash per parameter: of its name and shape (layout) or its values. */
static clnet_status param_hashes(const clnet_model *m, int values, uint64_t *h, int *n)
{
    *n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++) {
            const clnet__param *q = &m->layers[i]->params[k];
            int64_t shape[CLNET_MAX_DIMS] = { 0 };
            int nd = clnet_tensor_shape(q->value, shape);
            uint64_t x = clnet__fnv1a(CLNET_FNV_OFFSET, q->name, strlen(q->name));
            x = clnet__fnv1a(x, &nd, sizeof nd);
            x = clnet__fnv1a(x, shape, sizeof shape);
            x = clnet__fnv1a(x, &(int){ trained(m->layers[i], k) }, sizeof(int));
            if (values) {
                size_t bytes = clnet_tensor_numel(q->value) * sizeof(float);
                void *buf = malloc(bytes + 1);
                clnet_status st =
                    buf ? clnet_tensor_download(q->value, buf, bytes)
                        : clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY, "out of host memory");
                if (!st)
                    x = clnet__fnv1a(CLNET_FNV_OFFSET, buf, bytes);
                free(buf);
                if (st)
                    return st;
            }
            h[(*n)++] = x;
        }
    return CLNET_OK;
}

/* "layers.<i>.<name>" of the item-th parameter; "(none)" past the end. */
static void param_name(const clnet_model *m, int item, char *out, size_t size)
{
    snprintf(out, size, "(its parameter count)");
    for (int i = 0, n = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++, n++)
            if (n == item)
                snprintf(out, size, "layers.%d.%s", i, m->layers[i]->params[k].name);
}

/* Collective: every rank's parameters (layout or values) against rank 0's. */
static clnet_status check_against_root(clnet_dist *d, const clnet_model *m, int values,
                                       clnet_status status, const char *what)
{
    int count = 0;
    for (int i = 0; i < m->nlayers; i++)
        count += m->layers[i]->nparams;
    uint64_t *h = calloc((size_t)count + 1, sizeof *h);
    clnet_status st =
        h ? param_hashes(m, values, h, &count)
          : clnet__dist_fail(d, m->ctx, CLNET_ERR_HOST_MEMORY, "%s: out of host memory", what);
    int rank = d->size, item = 0;
    if (!(st = clnet__dist_agree(d, m->ctx, st, what, clnet_context_errmsg(m->ctx))))
        st = compare_with_root(d, m->ctx, count, h, &rank, &item);
    free(h);
    if (st || rank == d->size)
        return st;
    char name[64];
    param_name(m, item, name, sizeof name);
    return clnet__dist_fail(d, m->ctx, status, "%s: rank %d's %s differs from rank 0's", what, rank,
                            name);
}

CLNET_API clnet_status clnet_dist_check_params(clnet_dist *d, const clnet_model *m)
{
    CLNET_CHECK_ARG(NULL, d != NULL);
    if (!m)
        return clnet__dist_fail(d, NULL, CLNET_ERR_INVALID_ARG,
                                "clnet_dist_check_params: m is NULL");
    return check_against_root(d, m, 1, CLNET_ERR_INTERNAL, "clnet_dist_check_params");
}

/* ---- Buckets ------------------------------------------------------------------------------ */

static uint64_t plan_key(const clnet_model *m)
{
    uint64_t h = CLNET_FNV_OFFSET;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++)
            h = clnet__fnv1a(h, &(int){ trained(m->layers[i], k) }, sizeof(int));
    return h;
}

static size_t layer_floats(const clnet__layer *l)
{
    size_t n = 0;
    for (int k = 0; k < l->nparams; k++)
        n += trained(l, k) ? clnet_tensor_numel(l->params[k].value) : 0;
    return n;
}

static void free_plan(attachment *a)
{
    for (int b = 0; b < a->nbuckets; b++)
        free(a->buckets[b].host);
    free(a->buckets);
    a->buckets = NULL;
    a->nbuckets = 0;
}

/* Groups trained layers from the last one down into buckets of at least
 * bucket_bytes (whole layers), and allocates their host buffers. */
static clnet_status plan(attachment *a)
{
    clnet_model *m = a->m;
    free_plan(a);
    a->buckets = calloc((size_t)m->nlayers + 1, sizeof *a->buckets);
    if (!a->buckets)
        return clnet__dist_fail(a->d, m->ctx, CLNET_ERR_HOST_MEMORY,
                                "clnet_dist: out of host memory");
    bucket *cur = NULL;
    size_t bytes = 0;
    for (int i = m->nlayers - 1; i >= 0; i--) {
        size_t n = layer_floats(m->layers[i]);
        if (!n)
            continue;
        if (!cur || bytes >= a->d->bucket_bytes) {
            cur = &a->buckets[a->nbuckets++];
            cur->hi = i;
            cur->floats = a->nbuckets == 1; /* bucket 0's row count */
            bytes = 0;
        }
        cur->lo = i;
        cur->floats += n;
        bytes += n * sizeof(float);
    }
    a->stats.buckets = a->nbuckets;
    a->stats.bytes_per_step = 0;
    for (int b = 0; b < a->nbuckets; b++) {
        if (a->buckets[b].floats > (size_t)INT32_MAX)
            return clnet__dist_fail(
                a->d, m->ctx, CLNET_ERR_TOO_LARGE,
                "clnet_dist: layers %d..%d hold more than 2^31-1 gradients for one "
                "MPI call",
                a->buckets[b].lo, a->buckets[b].hi);
        if (!(a->buckets[b].host = malloc(a->buckets[b].floats * sizeof(float))))
            return clnet__dist_fail(a->d, m->ctx, CLNET_ERR_HOST_MEMORY,
                                    "clnet_dist: out of host memory");
        a->stats.bytes_per_step += a->buckets[b].floats * sizeof(float);
    }
    a->plan_key = plan_key(m);
    return CLNET_OK;
}

static int any_started(const attachment *a)
{
    for (int b = 0; b < a->nbuckets; b++)
        if (a->buckets[b].started)
            return 1;
    return 0;
}

static clnet_status wait_bucket(attachment *a, bucket *b)
{
    char what[96];
    snprintf(what, sizeof what, "gradient allreduce (layers %d..%d, step %lld)", b->lo, b->hi,
             (long long)a->m->step_count + 1);
    clnet_status st = wait_reqs(a->d, a->m->ctx, 1, &b->req, what);
    b->started = 0;
    return st;
}

/* Reads the bucket's gradients (zeros when this rank has no rows), weights
 * them by this rank's rows and starts their reduction. */
static clnet_status start_bucket(attachment *a, int index)
{
    bucket *b = &a->buckets[index];
    clnet_model *m = a->m;
    clnet_status st;
    /* A second backward before a step: its gradients replace the first's. */
    if (b->started && (st = wait_bucket(a, b)))
        return st;
    float weight = a->d->equal_weights ? 1.0f : (float)m->batch;
    /* Wait for backward's kernels first, so that download_s counts only
     * the transfers. */
    if (!a->skip && (st = clnet_context_finish(m->ctx)))
        return st;
    double t0 = clnet__now();
    size_t off = 0;
    for (int i = b->hi; i >= b->lo; i--)
        for (int k = 0; k < m->layers[i]->nparams; k++) {
            if (!trained(m->layers[i], k))
                continue;
            size_t n = clnet_tensor_numel(m->layers[i]->params[k].grad);
            if (a->skip)
                memset(b->host + off, 0, n * sizeof(float));
            else if ((st = clnet_tensor_download(m->layers[i]->params[k].grad, b->host + off,
                                                 n * sizeof(float))))
                return st;
            for (size_t j = 0; weight != 1.0f && !a->skip && j < n; j++)
                b->host[off + j] *= weight;
            off += n;
        }
    if (index == 0)
        b->host[off] = a->skip ? 0.0f : weight;
    a->stats.download_s += clnet__now() - t0;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, b->host, (int)b->floats, MPI_FLOAT, MPI_SUM, a->d->comm,
                            &b->req);
    if (rc != MPI_SUCCESS)
        return mpi_fail(a->d, m->ctx, rc, "starting a gradient allreduce");
    b->started = 1;
    return CLNET_OK;
}

/* Backward finished layer `layer`: drive the reductions in flight, and start
 * the bucket that this layer completes. */
static clnet_status on_grads_ready(void *user, clnet_model *m, int layer)
{
    attachment *a = user;
    clnet_status st;
    if (!any_started(a) && a->plan_key != plan_key(m) && (st = plan(a)))
        return st;
    for (int b = 0; b < a->nbuckets; b++)
        if (a->buckets[b].started) {
            int done;
            MPI_Test(&a->buckets[b].req, &done, MPI_STATUS_IGNORE);
        }
    for (int b = 0; b < a->nbuckets; b++)
        if (a->buckets[b].lo == layer)
            return start_bucket(a, b);
    return CLNET_OK;
}

/* Before the optimizer: wait for every bucket and write back the averages. */
static clnet_status on_before_step(void *user, clnet_model *m)
{
    attachment *a = user;
    clnet_status st;
    if (!any_started(a) && a->plan_key != plan_key(m) && (st = plan(a)))
        return st;
    for (int b = 0; b < a->nbuckets; b++) {
        if (a->buckets[b].started)
            continue;
        if (!a->skip)
            return clnet__dist_fail(
                a->d, m->ctx, CLNET_ERR_INVALID_ARG,
                "clnet_model_step: rank %d: layers %d..%d have no gradients to average: "
                "run backward before every step of a model attached with "
                "clnet_dist_attach (or clnet_dist_skip_batch)",
                a->d->rank, a->buckets[b].lo, a->buckets[b].hi);
        if ((st = start_bucket(a, b)))
            return st;
    }
    a->skip = 0;
    double t0 = clnet__now();
    for (int b = 0; b < a->nbuckets; b++)
        if ((st = wait_bucket(a, &a->buckets[b])))
            return st;
    double t1 = clnet__now();
    a->stats.wait_s += t1 - t0;
    if (!a->nbuckets)
        return CLNET_OK;
    float rows = a->buckets[0].host[a->buckets[0].floats - 1];
    if (!(rows > 0.0f))
        return clnet__dist_fail(
            a->d, m->ctx, CLNET_ERR_INVALID_ARG,
            "clnet_model_step: no rank had rows in this batch (every rank called "
            "clnet_dist_skip_batch)");
    for (int bi = 0; bi < a->nbuckets; bi++) {
        bucket *b = &a->buckets[bi];
        size_t off = 0;
        for (int i = b->hi; i >= b->lo; i--)
            for (int k = 0; k < m->layers[i]->nparams; k++) {
                if (!trained(m->layers[i], k))
                    continue;
                clnet_tensor *g = m->layers[i]->params[k].grad;
                size_t n = clnet_tensor_numel(g);
                for (size_t j = 0; j < n; j++)
                    b->host[off + j] /= rows;
                if ((st = clnet_tensor_upload(g, b->host + off, n * sizeof(float))))
                    return st;
                off += n;
            }
    }
    a->stats.upload_s += clnet__now() - t1;
    a->stats.steps++;
    return CLNET_OK;
}

/* ---- Attaching models ------------------------------------------------------------------------ */

CLNET_API clnet_status clnet_dist_attach(clnet_dist *d, clnet_model *m)
{
    CLNET_CHECK_ARG(NULL, d != NULL);
    if (!m)
        return clnet__dist_fail(d, NULL, CLNET_ERR_INVALID_ARG, "clnet_dist_attach: m is NULL");
    if (!m->compiled)
        return clnet__dist_fail(d, m->ctx, CLNET_ERR_INVALID_ARG,
                                "clnet_dist_attach: compile the model first");
    if (m->hooks.grads_ready || m->hooks.before_step)
        return clnet__dist_fail(d, m->ctx, CLNET_ERR_INVALID_ARG,
                                "clnet_dist_attach: the model is already attached");
    int slot = 0;
    while (slot < MAX_ATTACHED && d->att[slot])
        slot++;
    if (slot == MAX_ATTACHED)
        return clnet__dist_fail(d, m->ctx, CLNET_ERR_INVALID_ARG,
                                "clnet_dist_attach: %d models are attached already", MAX_ATTACHED);
    /* The same architecture everywhere, then rank 0's weights, optimizer
     * moments and step count everywhere. */
    clnet_status st = check_against_root(d, m, 0, CLNET_ERR_SHAPE, "clnet_dist_attach");
    int n = 0;
    for (int i = 0; i < m->nlayers; i++)
        n += 3 * m->layers[i]->nparams;
    clnet_tensor **t = st ? NULL : calloc((size_t)n + 1, sizeof *t);
    if (!st && !t)
        st = clnet__dist_fail(d, m->ctx, CLNET_ERR_HOST_MEMORY,
                              "clnet_dist_attach: out of host memory");
    if (!st)
        st = clnet__dist_bcast_tensors(d, m, t, state_tensors(m, t),
                                       "clnet_dist_attach: copying rank 0's parameters");
    free(t);
    int64_t step = m->step_count;
    if (!st && !(st = bcast(d, m->ctx, &step, 1, MPI_INT64_T, sizeof step, 0, "clnet_dist_attach")))
        m->step_count = step;
    attachment *a = st ? NULL : calloc(1, sizeof *a);
    if (!st && !a)
        st = clnet__dist_fail(d, m->ctx, CLNET_ERR_HOST_MEMORY,
                              "clnet_dist_attach: out of host memory");
    if (st)
        return st;
    a->d = d;
    a->m = m;
    if ((st = plan(a))) {
        free_plan(a);
        free(a);
        return st;
    }
    d->att[slot] = a;
    m->hooks = (clnet__model_hooks){ on_grads_ready, on_before_step, a };
    return CLNET_OK;
}

CLNET_API clnet_status clnet_dist_detach(clnet_dist *d, clnet_model *m)
{
    CLNET_CHECK_ARG(NULL, d != NULL);
    attachment *a = clnet__dist_find(d, m);
    if (!a)
        return clnet__dist_fail(d, m ? m->ctx : NULL, CLNET_ERR_INVALID_ARG,
                                "clnet_dist_detach: the model is not attached to this dist");
    /* A reduction in flight still writes into its buffer: finish it first. */
    for (int b = 0; b < a->nbuckets; b++)
        if (a->buckets[b].started && !d->broken)
            wait_bucket(a, &a->buckets[b]);
    m->hooks = (clnet__model_hooks){ 0 };
    for (int i = 0; i < MAX_ATTACHED; i++)
        if (d->att[i] == a)
            d->att[i] = NULL;
    /* After a failed collective MPI may still write into the buffers of
     * the requests in flight: leave them to the process's end. */
    if (!d->broken)
        free_plan(a);
    free(a);
    return CLNET_OK;
}

CLNET_API clnet_status clnet_dist_skip_batch(clnet_dist *d, clnet_model *m)
{
    CLNET_CHECK_ARG(NULL, d != NULL);
    attachment *a = clnet__dist_find(d, m);
    if (!a)
        return clnet__dist_fail(d, m ? m->ctx : NULL, CLNET_ERR_INVALID_ARG,
                                "clnet_dist_skip_batch: the model is not attached to this dist");
    a->skip = 1;
    return CLNET_OK;
}

CLNET_API clnet_status clnet_dist_get_stats(const clnet_dist *d, const clnet_model *m,
                                            clnet_dist_stats *out)
{
    CLNET_CHECK_ARG(NULL, d != NULL && out != NULL);
    const attachment *a = clnet__dist_find(d, m);
    if (!a)
        return CLNET_ERR_INVALID_ARG;
    *out = a->stats;
    return CLNET_OK;
}
