/* clnet tests — the disk cache of compiled programs: a second context
 * compiles nothing; corrupt, truncated or foreign entries are rebuilt. */
#define _DEFAULT_SOURCE /* mknod, makedev */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "clnet/opencl.h"
#include "runtime/runtime.h"

/* A context on dir that stores what it builds, also on drivers where clnet
 * leaves that to the driver's own cache (pocl: see disk_cache_left_to_pocl). */
static clnet_context *ctx_in(const char *dir)
{
    char err[2048];
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = getenv("CLNET_TEST_DEVICE");
    p.cache_dir = dir;
    clnet_context *ctx = NULL;
    ck_assert_msg(clnet_context_create(&p, &ctx, err, sizeof err) == CLNET_OK, "%s", err);
    CK_OK(ctx, clnet__force_variant(ctx, "diskcache.store", 1));
    return ctx;
}

/* Runs one fill through the context (building the "tensor" program) and
 * checks the result; returns the stats. */
static clnet_context_stats use(clnet_context *ctx)
{
    int64_t n = 31;
    clnet_tensor *t;
    CK_OK(ctx, clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t));
    CK_OK(ctx, clnet_tensor_fill(t, 0.25));
    float v[31];
    download(ctx, t, v, 31);
    for (int i = 0; i < 31; i++)
        ck_assert(v[i] == 0.25f);
    clnet_tensor_destroy(t);
    clnet_context_stats s;
    CK_OK(ctx, clnet_context_get_stats(ctx, &s));
    return s;
}

/* The single cache file in dir (asserts there is exactly one). */
static void only_file(const char *dir, char *path, size_t size)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        ck_assert_msg(strstr(e->d_name, ".tmp") == NULL, "temp file left behind: %s", e->d_name);
        snprintf(path, size, "%s/%s", dir, e->d_name);
        count++;
    }
    closedir(d);
    ck_assert_int_eq(count, 1);
}

static char *temp_dir(void)
{
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/clnet-cache-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

START_TEST(second_context_builds_nothing)
{
    char *dir = temp_dir();
    clnet_context *a = ctx_in(dir);
    clnet_context_stats s = use(a);
    ck_assert_uint_eq(s.programs_built, 1);
    ck_assert_uint_eq(s.programs_loaded, 0);
    clnet_context_destroy(a);
    char path[512];
    only_file(dir, path, sizeof path);

    clnet_context *b = ctx_in(dir);
    s = use(b);
    ck_assert_uint_eq(s.programs_built, 0);
    ck_assert_uint_eq(s.programs_loaded, 1);
    ck_assert_uint_eq(s.cache_rejected, 0);
    clnet_context_destroy(b);
}
END_TEST

typedef enum {
    TRUNCATE_HALF,
    TRUNCATE_HEADER,
    EMPTY,
    FLIP_BINARY,
    FLIP_KEY,
    GARBAGE,
    APPENDED,
    NCORRUPTIONS
} corruption;

static void corrupt(const char *path, corruption how)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)n + 64);
    ck_assert_ptr_nonnull(data);
    ck_assert_int_eq(fread(data, 1, (size_t)n, f), n);
    fclose(f);
    switch (how) {
    case TRUNCATE_HALF:
        n /= 2;
        break;
    case TRUNCATE_HEADER:
        n = 20;
        break;
    case EMPTY:
        n = 0;
        break;
    case FLIP_BINARY:
        data[n - 10] ^= 0x40;
        break;
    case FLIP_KEY:
        data[40] ^= 0x01;
        break;
    case GARBAGE:
        for (long i = 0; i < n; i++)
            data[i] = (unsigned char)(i * 131 + 7);
        break;
    case APPENDED:
        memset(data + n, 0xab, 64);
        n += 64;
        break;
    default:
        break;
    }
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(data, 1, (size_t)n, f), n);
    fclose(f);
    free(data);
}

START_TEST(corrupt_entries_are_rebuilt)
{
    corruption how = (corruption)_i;
    char *dir = temp_dir();
    clnet_context *a = ctx_in(dir);
    use(a);
    clnet_context_destroy(a);
    char path[512];
    only_file(dir, path, sizeof path);
    corrupt(path, how);

    clnet_context *b = ctx_in(dir);
    clnet_context_stats s = use(b);
    ck_assert_msg(s.programs_built == 1 && s.cache_rejected >= 1,
                  "corruption %d: built %llu, rejected %llu", (int)how,
                  (unsigned long long)s.programs_built, (unsigned long long)s.cache_rejected);
    clnet_context_destroy(b);
    /* The rebuilt entry replaced the bad one. */
    clnet_context *c = ctx_in(dir);
    s = use(c);
    ck_assert_uint_eq(s.programs_built, 0);
    ck_assert_uint_eq(s.programs_loaded, 1);
    clnet_context_destroy(c);
}
END_TEST

START_TEST(unwritable_cache_only_costs_speed)
{
    /* A path under a regular file can never be created. */
    char *dir = temp_dir();
    char file[256], sub[300];
    snprintf(file, sizeof file, "%s/file", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(sub, sizeof sub, "%s/cache", file);
    clnet_context *a = ctx_in(sub);
    clnet_context_stats s = use(a);
    ck_assert_uint_eq(s.programs_built, 1);
    clnet_context_destroy(a);
}
END_TEST

START_TEST(empty_dir_disables_cache)
{
    clnet_context *a = ctx_in("");
    clnet_context_stats s = use(a);
    ck_assert_uint_eq(s.programs_built, 1);
    clnet_context_destroy(a);
    a = ctx_in("");
    s = use(a);
    ck_assert_uint_eq(s.programs_built, 1);
    ck_assert_uint_eq(s.programs_loaded, 0);
    clnet_context_destroy(a);
}
END_TEST

START_TEST(environment_chooses_directory)
{
    char *dir = temp_dir();
    char nested[256];
    snprintf(nested, sizeof nested, "%s/a/b", dir);
    setenv("CLNET_CACHE_DIR", nested, 1);
    clnet_context *a = ctx_in(NULL);
    use(a);
    clnet_context_destroy(a);
    char path[512];
    only_file(nested, path, sizeof path);
    /* XDG_CACHE_HOME when CLNET_CACHE_DIR is unset. */
    unsetenv("CLNET_CACHE_DIR");
    setenv("XDG_CACHE_HOME", dir, 1);
    a = ctx_in(NULL);
    use(a);
    clnet_context_destroy(a);
    char xdg[256];
    snprintf(xdg, sizeof xdg, "%s/clnet", dir);
    only_file(xdg, path, sizeof path);
}
END_TEST

/* On pocl clnet neither stores nor loads binaries, whatever
 * POCL_KERNEL_CACHE says: storing compiles every kernel of a program again
 * (docs/speed.md), and pocl's binaries are not safe to share between
 * processes (two_processes_share_a_cache). A second context builds from
 * source, which pocl's own cache makes cheap. Elsewhere clnet stores and
 * loads. */
START_TEST(disk_cache_left_to_pocl)
{
    char *dir = temp_dir();
    clnet_context *a = ctx_in(dir);
    int pocl =
        strstr(clnet_context_device(a)->platform_name, "Portable Computing Language") != NULL;
    ck_assert_int_eq(clnet__context_profile(a)->store_binaries, !pocl);
    CK_OK(a, clnet__force_variant(a, "diskcache.store", -1)); /* the device's default */
    clnet_context_stats s = use(a);
    ck_assert_uint_eq(s.programs_built, 1);
    clnet_context_destroy(a);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int files = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        files += e->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(files, pocl ? 0 : 1);
    if (!pocl)
        return;
    /* An entry another build stored is not loaded on pocl either. */
    a = ctx_in(dir);
    use(a);
    clnet_context_destroy(a);
    a = ctx_in(dir);
    CK_OK(a, clnet__force_variant(a, "diskcache.store", -1));
    s = use(a);
    ck_assert_uint_eq(s.programs_built, 1);
    ck_assert_uint_eq(s.programs_loaded, 0);
    clnet_context_destroy(a);
    const char *env = getenv("POCL_KERNEL_CACHE");
    setenv("POCL_KERNEL_CACHE", "0", 1);
    a = ctx_in(dir);
    ck_assert_int_eq(clnet__context_profile(a)->store_binaries, 0);
    clnet_context_destroy(a);
    if (env)
        setenv("POCL_KERNEL_CACHE", env, 1);
    else
        unsetenv("POCL_KERNEL_CACHE");
}
END_TEST

/* A child process: a context on dir with the device's own cache choice,
 * one fill; exits 0 on success. */
static void child_uses(const char *dir)
{
    char err[2048];
    clnet_context_params p = CLNET_CONTEXT_PARAMS_DEFAULT;
    p.device = getenv("CLNET_TEST_DEVICE");
    p.cache_dir = dir;
    clnet_context *ctx = NULL;
    int ok = clnet_context_create(&p, &ctx, err, sizeof err) == CLNET_OK;
    int64_t n = 31;
    clnet_tensor *t = NULL;
    float v[31];
    ok = ok && !clnet_tensor_create(ctx, CLNET_F32, 1, &n, &t) && !clnet_tensor_fill(t, 0.5) &&
         !clnet_tensor_download(t, v, sizeof v) && v[0] == 0.5f && v[30] == 0.5f;
    if (!ok)
        fprintf(stderr, "child: %s\n", ctx ? clnet_context_errmsg(ctx) : err);
    clnet_tensor_destroy(t);
    clnet_context_destroy(ctx);
    _exit(ok ? 0 : 1);
}

/* Forks n children that run child_uses at once; asserts each exited 0. */
static void run_children(const char *dir, int n)
{
    pid_t pids[4];
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0)
            child_uses(dir);
    }
    for (int i = 0; i < n; i++) {
        int status = 0;
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: %s %d", i,
                      WIFSIGNALED(status) ? "killed by signal" : "exit",
                      WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
}

/* With POCL_KERNEL_CACHE=0, two processes sharing a warm cache used to
 * abort in pocl (its binaries name one temporary directory that every
 * loading process uses and deletes). The children touch OpenCL first, so
 * each reads the environment afresh; this process never does. */
START_TEST(two_processes_share_a_cache)
{
    if (getenv("CK_FORK") && !strcmp(getenv("CK_FORK"), "no"))
        return; /* the children of a process that touched OpenCL inherit a broken runtime */
    char *dir = temp_dir();
    setenv("POCL_KERNEL_CACHE", "0", 1);
    run_children(dir, 1); /* warms the cache */
    run_children(dir, 2);
    run_children(dir, 2);
    unsetenv("POCL_KERNEL_CACHE");
}
END_TEST

typedef enum { SPECIAL_FIFO, SPECIAL_DIR, SPECIAL_SYMLINK, SPECIAL_DEVICE, NSPECIALS } special;

/* A FIFO, a directory, a symbolic link (to /dev/zero) or a device node in
 * place of a cache entry: skipped without opening it for reading (a FIFO
 * blocked the load forever), the program built from source. */
START_TEST(special_files_in_the_cache_dir)
{
    special how = (special)_i;
    char *dir = temp_dir();
    clnet_context *a = ctx_in(dir);
    use(a);
    clnet_context_destroy(a);
    char path[512];
    only_file(dir, path, sizeof path);
    ck_assert_int_eq(unlink(path), 0);
    switch (how) {
    case SPECIAL_FIFO:
        ck_assert_int_eq(mkfifo(path, 0644), 0);
        break;
    case SPECIAL_DIR:
        ck_assert_int_eq(mkdir(path, 0755), 0);
        break;
    case SPECIAL_SYMLINK:
        ck_assert_int_eq(symlink("/dev/zero", path), 0);
        break;
    case SPECIAL_DEVICE:
        /* Needs root (CI has it); else a symbolic link to a device stands in. */
        if (mknod(path, S_IFCHR | 0644, makedev(1, 5)) != 0)
            ck_assert_int_eq(symlink("/dev/urandom", path), 0);
        break;
    default:
        break;
    }
    clnet_context *b = ctx_in(dir);
    CK_OK(b, clnet__force_variant(b, "diskcache.store", 1));
    clnet_context_stats s = use(b);
    ck_assert_uint_eq(s.programs_built, 1);
    ck_assert_uint_eq(s.programs_loaded, 0);
    clnet_context_destroy(b);
    /* Nothing followed the link or wrote through the node. */
    struct stat st;
    ck_assert_int_eq(lstat(path, &st), 0);
    if (how == SPECIAL_DIR)
        ck_assert(S_ISDIR(st.st_mode));
}
END_TEST

/* Reads a whole file; *n its size. */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)len);
    ck_assert_ptr_nonnull(data);
    ck_assert_int_eq(fread(data, 1, (size_t)len, f), len);
    fclose(f);
    *n = (size_t)len;
    return data;
}

/* An entry whose key and checksum are right but whose binary is another
 * program's (CL_INVALID_KERNEL_NAME at clCreateKernel) is dropped and the
 * program rebuilt; it used to fail with CL_INVALID_KERNEL_NAME forever. */
START_TEST(another_programs_binary_is_rebuilt)
{
    char dir[64];
    snprintf(dir, sizeof dir, "%s", temp_dir()); /* temp_dir's buffer is reused below */
    clnet_context *a = ctx_in(dir);
    use(a);
    clnet_context_destroy(a);
    char path[512], opath[512];
    only_file(dir, path, sizeof path);
    char *odir = temp_dir();
    a = ctx_in(odir);
    cl_kernel k;
    CK_OK(a, clnet__kernel_from_source(a, "other",
                                       "__kernel void other_k(__global float *x)\n"
                                       "{ x[get_global_id(0)] = 2.0f; }\n",
                                       NULL, "other_k", &k));
    clnet_context_destroy(a);
    only_file(odir, opath, sizeof opath);
    /* Header (32 bytes: magic, key_len, zero, bin_len, checksum), key, binary. */
    size_t n, on;
    unsigned char *mine = slurp(path, &n), *theirs = slurp(opath, &on);
    uint32_t key_len, okey_len;
    memcpy(&key_len, mine + 8, 4);
    memcpy(&okey_len, theirs + 8, 4);
    uint64_t bin_len = on - 32 - okey_len;
    uint64_t sum = clnet__fnv1a(CLNET_FNV_OFFSET, theirs + 32 + okey_len, bin_len);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    memcpy(mine + 16, &bin_len, 8);
    memcpy(mine + 24, &sum, 8);
    ck_assert_int_eq(fwrite(mine, 1, 32 + key_len, f), 32 + key_len);
    ck_assert_int_eq(fwrite(theirs + 32 + okey_len, 1, bin_len, f), bin_len);
    ck_assert_int_eq(fclose(f), 0);
    free(mine);
    free(theirs);

    clnet_context *b = ctx_in(dir);
    clnet_context_stats s = use(b);
    ck_assert_msg(s.programs_built == 1 && s.cache_rejected >= 1, "built %llu, rejected %llu",
                  (unsigned long long)s.programs_built, (unsigned long long)s.cache_rejected);
    clnet_context_destroy(b);
    /* The rebuilt entry replaced the foreign one. */
    clnet_context *c = ctx_in(dir);
    s = use(c);
    ck_assert_uint_eq(s.programs_built, 0);
    ck_assert_uint_eq(s.programs_loaded, 1);
    clnet_context_destroy(c);
}
END_TEST

Suite *suite_cache(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("disk");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, second_context_builds_nothing);
    tcase_add_loop_test(tc, corrupt_entries_are_rebuilt, 0, NCORRUPTIONS);
    tcase_add_test(tc, unwritable_cache_only_costs_speed);
    tcase_add_test(tc, empty_dir_disables_cache);
    tcase_add_test(tc, environment_chooses_directory);
    tcase_add_test(tc, disk_cache_left_to_pocl);
    tcase_add_test(tc, two_processes_share_a_cache);
    tcase_add_test(tc, another_programs_binary_is_rebuilt);
    suite_add_tcase(s, tc);
    /* A FIFO used to block forever: a short timeout says so. */
    tc = tcase_create("special");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, special_files_in_the_cache_dir, 0, NSPECIALS);
    suite_add_tcase(s, tc);
    return s;
}
