/* clnet tests — devices smaller than usual, weight files that do not fit the
 * model, and the opt-in numerics check. Device limits come from pocl's own
 * variables (POCL_MAX_WORK_GROUP_SIZE, POCL_MEMORY_LIMIT) or from the
 * shim's caps (src/runtime/fault.h); each configuration trains the
 * reference CNN in a process of its own, and must give the unlimited run's
 * losses or fail clearly before anything is enqueued. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clnet/nn.h"
#include "harness.h"
#include "runtime/fault.h"
#include "nn/nn_impl.h"
#include "runtime/runtime.h"

clnet_status faults_build_cnn(clnet_context *ctx, clnet_model **out);

/* pocl reads its variables once per process, and a child of a process that
 * used OpenCL inherits a broken runtime: these tests need Check's fork. */
static int forked(void)
{
    const char *f = getenv("CK_FORK");
    return !(f && !strcmp(f, "no"));
}

static int on_pocl(clnet_context *ctx)
{
    return strstr(clnet_context_device(ctx)->platform_name, "Portable Computing Language") != NULL;
}

/* ---- Training the CNN under a limit, in a child process ---------------------------- */

typedef struct run_result {
    clnet_status st;
    float loss[2];        /* two steps */
    size_t wg;            /* the profile's work-group size */
    long buffers_created; /* clCreateBuffer calls before the failure */
    char msg[1024];
} run_result;

/* Builds the CNN and trains two steps at batch 4 on fixed data. */
static void train_cnn(run_result *r)
{
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = getenv("CLNET_TEST_DEVICE");
    clnet_context *ctx = NULL;
    clnet_model *m = NULL;
    clnet_tensor *x = NULL, *y = NULL;
    clnet__fault_arm("clCreateBuffer", LONG_MAX, CL_SUCCESS); /* counts only */
    r->st = clnet_context_create(&p, &ctx, r->msg, sizeof r->msg);
    if (r->st)
        return;
    r->wg = clnet__context_profile(ctx)->wg_size;
    int64_t xs[4] = { 4, 1, 28, 28 }, b = 4;
    float xv[4 * 784];
    int32_t yv[4] = { 3, 1, 4, 1 };
    uint64_t seed = 5;
    fill_uniform(xv, 4 * 784, 0, 1, &seed);
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    if ((r->st = faults_build_cnn(ctx, &m)) || (r->st = clnet_model_compile(m, &cp)) ||
        (r->st = clnet_tensor_create(ctx, CLNET_F32, 4, xs, &x)) ||
        (r->st = clnet_tensor_upload(x, xv, sizeof xv)) ||
        (r->st = clnet_tensor_create(ctx, CLNET_I32, 1, &b, &y)) ||
        (r->st = clnet_tensor_upload(y, yv, sizeof yv)))
        goto done;
    for (int s = 0; s < 2 && !r->st; s++) {
        double loss = 0;
        r->st = clnet_model_train_on_batch(m, x, y, &loss, NULL);
        r->loss[s] = (float)loss;
    }
done:
    r->buffers_created = clnet__fault_calls();
    if (r->st)
        snprintf(r->msg, sizeof r->msg, "%s", clnet_context_errmsg(ctx));
    clnet_tensor_destroy(x);
    clnet_tensor_destroy(y);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}

/* Runs train_cnn in a child with an environment variable set (name may be
 * NULL) and the shim's caps (may be NULL). */
static run_result run_limited(const char *name, const char *value, const clnet__device_caps *caps)
{
    run_result r;
    memset(&r, 0, sizeof r);
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fd[0]);
        if (name)
            setenv(name, value, 1);
        clnet__fault_device_caps(caps);
        train_cnn(&r);
        ssize_t n = write(fd[1], &r, sizeof r);
        _exit(n == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fd[1]);
    ssize_t n = read(fd[0], &r, sizeof r);
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    ck_assert_msg(n == (ssize_t)sizeof r && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the child training under %s=%s died (status 0x%x)", name ? name : "caps",
                  value ? value : "", status);
    return r;
}

/* The same losses as the unlimited run, up to the order of the reductions
 * (the work-group size sets the tree of every local-memory sum): a relative
 * 1e-5, a few float32 ulps of a loss near 2.3 summed over 4 rows. */
static void check_same_losses(const run_result *ref, const run_result *r, const char *label)
{
    ck_assert_msg(ref->st == CLNET_OK, "the unlimited run failed: %s", ref->msg);
    ck_assert_msg(r->st == CLNET_OK, "%s: %s: %s", label, clnet_status_name(r->st), r->msg);
    for (int s = 0; s < 2; s++)
        ck_assert_msg(fabsf(r->loss[s] - ref->loss[s]) <= 1e-5f * fabsf(ref->loss[s]),
                      "%s: step %d loss %.9g, unlimited %.9g", label, s, (double)r->loss[s],
                      (double)ref->loss[s]);
}

START_TEST(work_group_caps_give_the_same_losses)
{
    if (!forked())
        return;
    run_result ref = run_limited(NULL, NULL, NULL);
    static const size_t limits[] = { 1, 8, 16 };
    for (size_t i = 0; i < 3; i++) {
        char label[64];
        clnet__device_caps caps = { .max_work_group_size = limits[i] };
        run_result r = run_limited(NULL, NULL, &caps);
        snprintf(label, sizeof label, "work-group cap %zu", limits[i]);
        ck_assert_uint_le(r.wg, limits[i]);
        check_same_losses(&ref, &r, label);
    }
}
END_TEST

/* pocl's own limit also reaches CLBlast, whose GEMM kernels need 64
 * work-items (8x8) with clnet's tuned parameters: the GEMM fails, and the
 * message must say so. A limit of 64 or more trains as usual. */
START_TEST(pocl_work_group_limit_trains_or_names_clblast)
{
    if (!forked())
        return;
    run_result ref = run_limited(NULL, NULL, NULL);
    static const char *const limits[] = { "1", "8", "16", "64" };
    for (size_t i = 0; i < 4; i++) {
        char label[64];
        snprintf(label, sizeof label, "POCL_MAX_WORK_GROUP_SIZE=%s", limits[i]);
        run_result r = run_limited("POCL_MAX_WORK_GROUP_SIZE", limits[i], NULL);
        fprintf(stderr, "limits: %s: %s%s%s\n", label, clnet_status_name(r.st), r.st ? ": " : "",
                r.st ? r.msg : "");
        if (r.st == CLNET_OK) {
            check_same_losses(&ref, &r, label);
            continue;
        }
        ck_assert_msg(r.st == CLNET_ERR_UNSUPPORTED || r.st == CLNET_ERR_TOO_LARGE, "%s: %s: %s",
                      label, clnet_status_name(r.st), r.msg);
        ck_assert_msg(strstr(r.msg, "CLBlast") && strstr(r.msg, "work-group"),
                      "%s: the message does not name CLBlast and the work-group limit: %s", label,
                      r.msg);
    }
}
END_TEST

START_TEST(local_memory_cap_gives_the_same_losses_or_a_clear_error)
{
    if (!forked())
        return;
    run_result ref = run_limited(NULL, NULL, NULL);
    clnet__device_caps caps = { .local_mem_bytes = 256 }; /* 8 work-items of 32 bytes */
    run_result r = run_limited(NULL, NULL, &caps);
    ck_assert_uint_eq(r.wg, 8);
    check_same_losses(&ref, &r, "local memory capped at 256 bytes");
    caps.local_mem_bytes = 16; /* less than one work-item needs */
    r = run_limited(NULL, NULL, &caps);
    ck_assert_msg(r.st == CLNET_ERR_UNSUPPORTED && strstr(r.msg, "16 bytes of local memory"),
                  "%s: %s", clnet_status_name(r.st), r.msg);
    ck_assert_int_eq(r.buffers_created, 0);
}
END_TEST

START_TEST(device_without_fp64_gives_the_same_losses)
{
    if (!forked())
        return;
    run_result ref = run_limited(NULL, NULL, NULL);
    clnet__device_caps caps = { .hide_fp64 = 1 };
    run_result r = run_limited(NULL, NULL, &caps);
    check_same_losses(&ref, &r, "fp64 hidden");
    /* No kernel needs fp64 today: the same bits. */
    ck_assert(memcmp(ref.loss, r.loss, sizeof r.loss) == 0);
    /* A variant that needs it is refused before it is built. */
    clnet__fault_device_caps(&caps);
    clnet_context *ctx = test_context();
    ck_assert(!(clnet_context_device(ctx)->features & CLNET_FEATURE_FP64));
    cl_kernel k;
    clnet__fault_arm("clBuildProgram", LONG_MAX, CL_SUCCESS);
    CK_FAILS(
        ctx, CLNET_ERR_UNSUPPORTED, "lacks feature",
        clnet__kernel_features(ctx, CLNET_FEATURE_FP64, "reduce", NULL, NULL, "sum_partial", &k));
    ck_assert_int_eq(clnet__fault_calls(), 0);
    clnet__fault_disarm();
    clnet__fault_device_caps(NULL);
    clnet_context_destroy(ctx);
}
END_TEST

/* A tensor beyond the device's maximum allocation, real or capped, is
 * refused before clCreateBuffer; the capped device still trains. */
START_TEST(tensor_beyond_max_allocation_is_refused_before_allocating)
{
    if (!forked())
        return;
    /* The children first: a fork after this process used OpenCL hangs. */
    run_result ref = run_limited(NULL, NULL, NULL);
    clnet__device_caps caps = { .max_alloc_bytes = 1 << 20 };
    run_result r = run_limited(NULL, NULL, &caps);
    check_same_losses(&ref, &r, "max allocation capped at 1 MiB");
    clnet_context *ctx = test_context();
    uint64_t max = clnet_context_device(ctx)->max_alloc_bytes;
    int64_t n = (int64_t)(max / 4 + 1);
    clnet_tensor *t = NULL;
    clnet__fault_arm("clCreateBuffer", LONG_MAX, CL_SUCCESS);
    CK_FAILS(ctx, CLNET_ERR_TOO_LARGE, "exceed the maximum allocation",
             clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t));
    ck_assert_ptr_null(t);
    ck_assert_int_eq(clnet__fault_calls(), 0);
    clnet__fault_disarm();
    clnet_context_destroy(ctx);
    clnet__fault_device_caps(&caps);
    ctx = test_context();
    n = (1 << 18) + 1;
    clnet__fault_arm("clCreateBuffer", LONG_MAX, CL_SUCCESS);
    CK_FAILS(ctx, CLNET_ERR_TOO_LARGE, "1048576 bytes",
             clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t));
    ck_assert_int_eq(clnet__fault_calls(), 0);
    clnet__fault_disarm();
    clnet__fault_device_caps(NULL);
    clnet_context_destroy(ctx);
}
END_TEST

/* POCL_MEMORY_LIMIT=1 (GiB): the CNN trains as usual. pocl only lowers the
 * memory it reports (it allocated 16 GiB under this limit when asked), so
 * clnet counts a context's buffers against it: past the limit, a clear
 * error before clCreateBuffer, and the context stays usable. */
START_TEST(small_memory_limit_trains_and_fails_clearly_past_it)
{
    if (!forked())
        return;
    run_result ref = run_limited(NULL, NULL, NULL);
    run_result r = run_limited("POCL_MEMORY_LIMIT", "1", NULL);
    check_same_losses(&ref, &r, "POCL_MEMORY_LIMIT=1");
    setenv("POCL_MEMORY_LIMIT", "1", 1);
    clnet_context *ctx = test_context();
    if (!on_pocl(ctx)) {
        clnet_context_destroy(ctx);
        return;
    }
    const clnet_device_info *d = clnet_context_device(ctx);
    ck_assert_msg(d->global_mem_bytes <= (1ull << 30), "global memory %llu",
                  (unsigned long long)d->global_mem_bytes);
    enum { MAX = 64 };
    clnet_tensor *t[MAX] = { 0 };
    int64_t n = (int64_t)(d->max_alloc_bytes / 4);
    clnet_status st = CLNET_OK;
    int k = 0;
    for (; k < MAX && !st; k++)
        st = clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t[k]); /* never touched: no real memory */
    fprintf(stderr, "limits: POCL_MEMORY_LIMIT=1: %d tensors of %lld bytes, then %s: %s\n", k - 1,
            (long long)n * 4, clnet_status_name(st), clnet_context_errmsg(ctx));
    ck_assert_msg(st == CLNET_ERR_DEVICE_MEMORY &&
                      strstr(clnet_context_errmsg(ctx), "exceed the device's global memory"),
                  "allocating past the limit: %s: %s", clnet_status_name(st),
                  clnet_context_errmsg(ctx));
    ck_assert_int_le((int64_t)(k - 1) * n * 4, (int64_t)d->global_mem_bytes);
    for (int i = 0; i < MAX; i++)
        clnet_tensor_destroy(t[i]);
    int64_t small = 1000;
    clnet_tensor *s;
    float sum;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &small, &s));
    CK_OK(ctx, clnet_tensor_fill(s, 0.5));
    CK_OK(ctx, clnet_sum_host(s, &sum));
    ck_assert(sum == 500.0f);
    clnet_tensor_destroy(s);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- Weight files that do not fit the model --------------------------------------- */

/* One tensor of a hand-made file: any dtype name, shape and byte count. */
typedef struct wentry {
    char name[48];
    const char *dtype;
    int ndim;
    int64_t shape[CLNET_MAX_DIMS];
    size_t bytes;
} wentry;

/* Writes a safetensors file by hand (the writer refuses these dtypes): the
 * header, then each tensor's bytes filled with 0x3f (finite floats). */
static void write_weights(const char *path, const wentry *e, int n)
{
    char *json = malloc(1 << 16);
    size_t len = (size_t)snprintf(json, 1 << 16, "{"), off = 0;
    for (int i = 0; i < n; i++) {
        len +=
            (size_t)snprintf(json + len, (1 << 16) - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                             i ? "," : "", e[i].name, e[i].dtype);
        for (int d = 0; d < e[i].ndim; d++)
            len += (size_t)snprintf(json + len, (1 << 16) - len, "%s%lld", d ? "," : "",
                                    (long long)e[i].shape[d]);
        len += (size_t)snprintf(json + len, (1 << 16) - len, "],\"data_offsets\":[%zu,%zu]}", off,
                                off + e[i].bytes);
        off += e[i].bytes;
    }
    len += (size_t)snprintf(json + len, (1 << 16) - len, "}");
    while (len % 8)
        json[len++] = ' ';
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    unsigned char l8[8];
    for (int b = 0; b < 8; b++)
        l8[b] = (unsigned char)((uint64_t)len >> (8 * b));
    fwrite(l8, 1, 8, f);
    fwrite(json, 1, len, f);
    for (size_t i = 0; i < off; i++)
        fputc(0x3f, f);
    ck_assert_int_eq(fclose(f), 0);
    free(json);
}

static size_t numel_of(const wentry *e)
{
    size_t n = 1;
    for (int d = 0; d < e->ndim; d++)
        n *= (size_t)e->shape[d];
    return n;
}

/* The model's parameters as the file names them, with their shapes. */
static int model_entries(clnet_model *m, wentry *e, int cap)
{
    int n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams && n < cap; k++, n++) {
            const clnet_tensor *t = m->layers[i]->params[k].value;
            snprintf(e[n].name, sizeof e[n].name, "layers.%d.%s", i, m->layers[i]->params[k].name);
            e[n].dtype = "F32";
            e[n].ndim = clnet_tensor_shape(t, e[n].shape);
            e[n].bytes = clnet_tensor_numel(t) * 4;
        }
    return n;
}

/* Every parameter's values, concatenated (caller frees). */
static float *read_params(clnet_context *ctx, clnet_model *m, size_t *total)
{
    *total = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++)
            *total += clnet_tensor_numel(m->layers[i]->params[k].value);
    float *v = malloc(*total * sizeof *v), *p = v;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++) {
            size_t n = clnet_tensor_numel(m->layers[i]->params[k].value);
            download(ctx, m->layers[i]->params[k].value, p, n);
            p += n;
        }
    return v;
}

/* Loads a file that does not fit: a specific status, a message naming the
 * tensor, the model's weights untouched and nothing left alive. */
static void reject(clnet_context *ctx, clnet_model *m, const char *path, const char *label,
                   const char *needle, int *count)
{
    size_t total, total2;
    float *before = read_params(ctx, m, &total);
    clnet__live l0, l1;
    clnet__fault_live(&l0);
    clnet_status st = clnet_model_load(m, path);
    clnet__fault_live(&l1);
    ck_assert_msg(st == CLNET_ERR_SHAPE || st == CLNET_ERR_FORMAT, "%s: %s: %s", label,
                  clnet_status_name(st), clnet_context_errmsg(ctx));
    ck_assert_msg(strstr(clnet_context_errmsg(ctx), needle), "%s: \"%s\" lacks \"%s\"", label,
                  clnet_context_errmsg(ctx), needle);
    ck_assert_msg(memcmp(&l0, &l1, sizeof l0) == 0, "%s: live objects changed", label);
    float *after = read_params(ctx, m, &total2);
    ck_assert_msg(memcmp(before, after, total * sizeof *after) == 0, "%s: the weights changed",
                  label);
    free(before);
    free(after);
    (*count)++;
}

/* For every parameter of the reference CNN: missing, renamed, another shape
 * with the same size, one element more, a scalar, and every other dtype
 * (F16, BF16, F64, I32, I64, U8: the byte count that dtype needs); then an
 * extra tensor, an empty file and the LSTM stack's weights. */
START_TEST(weights_that_do_not_fit_the_model_are_rejected)
{
    clnet_context *ctx = test_context();
    clnet_model *m;
    CK_OK(ctx, faults_build_cnn(ctx, &m));
    enum { CAP = 16 };
    wentry good[CAP], e[CAP + 1];
    int n = model_entries(m, good, CAP), count = 0;
    char path[256], label[128];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/clnet-limits-%ld.safetensors", dir && *dir ? dir : "/tmp",
             (long)getpid());
    write_weights(path, good, n);
    CK_OK(ctx, clnet_model_load(m, path)); /* the hand-made file itself fits */
    static const struct {
        const char *dtype;
        size_t size;
    } dtypes[] = { { "F16", 2 }, { "BF16", 2 }, { "F64", 8 },
                   { "I32", 4 }, { "I64", 8 },  { "U8", 1 } };
    for (int k = 0; k < n; k++) {
        const char *name = good[k].name;
        memcpy(e, good, sizeof good);
        memmove(e + k, e + k + 1, (size_t)(n - k - 1) * sizeof *e);
        write_weights(path, e, n - 1);
        snprintf(label, sizeof label, "%s missing", name);
        reject(ctx, m, path, label, name, &count);
        memcpy(e, good, sizeof good);
        snprintf(e[k].name, sizeof e[k].name, "%s_", name);
        write_weights(path, e, n);
        snprintf(label, sizeof label, "%s renamed", name);
        reject(ctx, m, path, label, name, &count);
        memcpy(e, good, sizeof good);
        if (e[k].ndim > 1) { /* the dims reversed: same size, another shape */
            for (int d = 0; d < e[k].ndim / 2; d++) {
                int64_t t = e[k].shape[d];
                e[k].shape[d] = e[k].shape[e[k].ndim - 1 - d];
                e[k].shape[e[k].ndim - 1 - d] = t;
            }
        } else { /* a bias as a (1, n) matrix */
            e[k].ndim = 2;
            e[k].shape[1] = e[k].shape[0];
            e[k].shape[0] = 1;
        }
        write_weights(path, e, n);
        snprintf(label, sizeof label, "%s reshaped", name);
        reject(ctx, m, path, label, name, &count);
        memcpy(e, good, sizeof good);
        e[k].shape[0]++;
        e[k].bytes = numel_of(&e[k]) * 4;
        write_weights(path, e, n);
        snprintf(label, sizeof label, "%s one row more", name);
        reject(ctx, m, path, label, name, &count);
        memcpy(e, good, sizeof good);
        e[k].ndim = 0;
        e[k].bytes = 4;
        write_weights(path, e, n);
        snprintf(label, sizeof label, "%s as a scalar", name);
        reject(ctx, m, path, label, name, &count);
        for (size_t t = 0; t < sizeof dtypes / sizeof dtypes[0]; t++) {
            memcpy(e, good, sizeof good);
            e[k].dtype = dtypes[t].dtype;
            e[k].bytes = numel_of(&e[k]) * dtypes[t].size;
            write_weights(path, e, n);
            snprintf(label, sizeof label, "%s as %s", name, dtypes[t].dtype);
            reject(ctx, m, path, label, dtypes[t].dtype, &count);
        }
    }
    memcpy(e, good, sizeof good);
    e[n] = good[0];
    snprintf(e[n].name, sizeof e[n].name, "layers.99.kernel");
    write_weights(path, e, n + 1);
    reject(ctx, m, path, "an extra tensor", "another model", &count);
    write_weights(path, e, 0);
    reject(ctx, m, path, "no tensors", good[0].name, &count);
    clnet_model *lstm;
    int64_t in[2] = { 28, 28 };
    clnet_rnn_layer_params rp = CLNET_RNN_LAYER_PARAMS_DEFAULT;
    rp.units = 64;
    CK_OK(ctx, clnet_model_create(ctx, 2, in, 1, &lstm));
    CK_OK(ctx, clnet_model_add_lstm(lstm, &rp));
    CK_OK(ctx, clnet_model_save(lstm, path));
    reject(ctx, m, path, "the LSTM's weights", "layers.0.kernel", &count);
    clnet_model_destroy(lstm);
    fprintf(stderr, "limits: %d weight files that do not fit the CNN rejected\n", count);
    ck_assert_int_eq(count, n * 11 + 3);
    unlink(path);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* ---- The numerics check ---------------------------------------------------------- */

/* Dense(8, relu) > Dense(3, softmax) on 4 features, batch 4, with the check
 * as CLNET_CHECK_NUMERICS says (read when the model is created). */
static clnet_model *small_model(clnet_context *ctx, int check)
{
    if (check)
        setenv("CLNET_CHECK_NUMERICS", "1", 1);
    else
        unsetenv("CLNET_CHECK_NUMERICS");
    int64_t in = 4;
    clnet_model *m;
    clnet_dense_params d1 = CLNET_DENSE_PARAMS_DEFAULT, d2 = CLNET_DENSE_PARAMS_DEFAULT;
    d1.units = 8;
    d1.activation = CLNET_ACT_RELU;
    d2.units = 3;
    d2.activation = CLNET_ACT_SOFTMAX;
    clnet_compile_params cp = CLNET_COMPILE_PARAMS_DEFAULT;
    CK_OK(ctx, clnet_model_create(ctx, 1, &in, 3, &m));
    CK_OK(ctx, clnet_model_add_dense(m, &d1));
    CK_OK(ctx, clnet_model_add_dense(m, &d2));
    CK_OK(ctx, clnet_model_compile(m, &cp));
    unsetenv("CLNET_CHECK_NUMERICS");
    return m;
}

typedef struct batch {
    clnet_tensor *x, *y;
    float xv[16];
} batch;

static void make_batch(clnet_context *ctx, batch *b, float poison, int at)
{
    uint64_t seed = 9;
    fill_uniform(b->xv, 16, -1, 1, &seed);
    if (at >= 0)
        b->xv[at] = poison;
    int64_t xs[2] = { 4, 4 }, n = 4;
    int32_t yv[4] = { 0, 1, 2, 1 };
    b->x = tensor_from(ctx, 2, xs, b->xv);
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_I32, 1, &n, &b->y));
    CK_OK(ctx, clnet_tensor_upload(b->y, yv, sizeof yv));
}

static void free_batch(batch *b)
{
    clnet_tensor_destroy(b->x);
    clnet_tensor_destroy(b->y);
}

START_TEST(numerics_check_names_the_input_and_the_layer)
{
    clnet_context *ctx = test_context();
    batch b;
    make_batch(ctx, &b, NAN, 6);
    /* Without the check, a NaN input trains on and the loss is NaN: the
     * negative control that shows what the check catches. */
    clnet_model *m = small_model(ctx, 0);
    double loss = 0;
    CK_OK(ctx, clnet_model_train_on_batch(m, b.x, b.y, &loss, NULL));
    ck_assert(isnan(loss));
    clnet_model_destroy(m);
    m = small_model(ctx, 1);
    size_t total, total2;
    float *before = read_params(ctx, m, &total);
    CK_FAILS(ctx, CLNET_ERR_NUMERICS, "the input x holds nan at element 6",
             clnet_model_train_on_batch(m, b.x, b.y, &loss, NULL));
    float *after = read_params(ctx, m, &total2);
    ck_assert_msg(memcmp(before, after, total * sizeof *after) == 0, "a step was taken");
    free(after);
    free_batch(&b);
    /* An Inf weight in the second layer: its pre-activation is the first
     * non-finite value. */
    make_batch(ctx, &b, 0, -1);
    float *w = malloc(24 * sizeof *w);
    download(ctx, m->layers[1]->params[0].value, w, 24);
    w[5] = INFINITY;
    CK_OK(ctx, clnet_tensor_upload(m->layers[1]->params[0].value, w, 24 * sizeof *w));
    CK_FAILS(ctx, CLNET_ERR_NUMERICS, "layer 1 (dense_2) first gives a non-finite value",
             clnet_model_train_on_batch(m, b.x, b.y, &loss, NULL));
    free(w);
    free(before);
    free_batch(&b);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* A custom loop with a NaN gradient at the output: step refuses, naming the
 * last layer's kernel gradient, and leaves the weights as they were. */
START_TEST(numerics_check_stops_the_step_at_a_bad_gradient)
{
    clnet_context *ctx = test_context();
    clnet_model *m = small_model(ctx, 1);
    batch b;
    make_batch(ctx, &b, 0, -1);
    float dv[12] = { 0.1f, 0.2f, -0.3f, 0, 0, 0, 0, NAN, 0, 0.5f, 0, 0 };
    clnet_tensor *dl = tensor_from(ctx, 2, (int64_t[]){ 4, 3 }, dv);
    CK_OK(ctx, clnet_model_forward(m, b.x, 1, NULL, NULL));
    CK_OK(ctx, clnet_model_backward(m, dl, NULL));
    size_t total, total2;
    float *before = read_params(ctx, m, &total);
    CK_FAILS(ctx, CLNET_ERR_NUMERICS, "layer 1 (dense_2): the gradient of \"kernel\" holds nan",
             clnet_model_step(m));
    float *after = read_params(ctx, m, &total2);
    ck_assert_msg(memcmp(before, after, total * sizeof *after) == 0, "the step changed weights");
    free(before);
    free(after);
    clnet_tensor_destroy(dl);
    free_batch(&b);
    clnet_model_destroy(m);
    clnet_context_destroy(ctx);
}
END_TEST

/* With finite data the check changes nothing: the same losses, bit for bit. */
START_TEST(numerics_check_leaves_finite_training_unchanged)
{
    clnet_context *ctx = test_context();
    batch b;
    make_batch(ctx, &b, 0, -1);
    double loss[2][3];
    for (int check = 0; check < 2; check++) {
        clnet_model *m = small_model(ctx, check);
        for (int s = 0; s < 3; s++)
            CK_OK(ctx, clnet_model_train_on_batch(m, b.x, b.y, &loss[check][s], NULL));
        clnet_model_destroy(m);
    }
    ck_assert(memcmp(loss[0], loss[1], sizeof loss[0]) == 0);
    ck_assert(isfinite(loss[0][2]) && loss[0][2] < loss[0][0]);
    free_batch(&b);
    clnet_context_destroy(ctx);
}
END_TEST

Suite *suite_limits(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = tcase_create("device");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, work_group_caps_give_the_same_losses);
    tcase_add_test(tc, pocl_work_group_limit_trains_or_names_clblast);
    tcase_add_test(tc, local_memory_cap_gives_the_same_losses_or_a_clear_error);
    tcase_add_test(tc, device_without_fp64_gives_the_same_losses);
    tcase_add_test(tc, tensor_beyond_max_allocation_is_refused_before_allocating);
    tcase_add_test(tc, small_memory_limit_trains_and_fails_clearly_past_it);
    suite_add_tcase(s, tc);
    tc = tcase_create("weights");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, weights_that_do_not_fit_the_model_are_rejected);
    suite_add_tcase(s, tc);
    tc = tcase_create("numerics");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, numerics_check_names_the_input_and_the_layer);
    tcase_add_test(tc, numerics_check_stops_the_step_at_a_bad_gradient);
    tcase_add_test(tc, numerics_check_leaves_finite_training_unchanged);
    suite_add_tcase(s, tc);
    return s;
}
