/* clnet tests — the disk cache of compiled programs: a second context
 * compiles nothing; corrupt, truncated or foreign entries are rebuilt. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
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

typedef enum { TRUNCATE_HALF, TRUNCATE_HEADER, EMPTY, FLIP_BINARY, FLIP_KEY, GARBAGE,
               APPENDED, NCORRUPTIONS } corruption;

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
    case TRUNCATE_HALF: n /= 2; break;
    case TRUNCATE_HEADER: n = 20; break;
    case EMPTY: n = 0; break;
    case FLIP_BINARY: data[n - 10] ^= 0x40; break;
    case FLIP_KEY: data[40] ^= 0x01; break;
    case GARBAGE: for (long i = 0; i < n; i++) data[i] = (unsigned char)(i * 131 + 7); break;
    case APPENDED: memset(data + n, 0xab, 64); n += 64; break;
    default: break;
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

/* On pocl with its own cache on, clnet stores nothing (fetching a binary
 * would compile every kernel of the program again: docs/speed.md) and a
 * second context builds from source, which pocl's cache makes cheap; with
 * POCL_KERNEL_CACHE=0 clnet's cache is back. Elsewhere clnet stores. */
START_TEST(disk_cache_left_to_pocl)
{
    char *dir = temp_dir();
    clnet_context *a = ctx_in(dir);
    int pocl = strstr(clnet_context_device(a)->platform_name, "Portable Computing Language") != NULL;
    const char *env = getenv("POCL_KERNEL_CACHE");
    int pocl_caches = pocl && !(env && !strcmp(env, "0"));
    ck_assert_int_eq(clnet__context_profile(a)->store_binaries, !pocl_caches);
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
    ck_assert_int_eq(files, pocl_caches ? 0 : 1);
    if (!pocl)
        return;
    setenv("POCL_KERNEL_CACHE", "0", 1);
    a = ctx_in(dir);
    ck_assert_int_eq(clnet__context_profile(a)->store_binaries, 1);
    clnet_context_destroy(a);
    if (env)
        setenv("POCL_KERNEL_CACHE", env, 1);
    else
        unsetenv("POCL_KERNEL_CACHE");
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
    suite_add_tcase(s, tc);
    return s;
}
