/* clnet — the environment knobs: every CLNET_* variable the library reads is
 * read here, once per context, and an unknown value is an error naming the
 * variable and the values it takes. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "context_impl.h"

/* Longest directory name the cache and kernel-source paths can take: file
 * names are appended to it in 4096-byte buffers. */
#define MAX_DIR 3800

/* A variable whose value must be one of `names` (the index of the match is
 * stored; unset or empty: *out = dflt). */
static int pick(const char *var, const char *const *names, int count, int dflt, int *out, char *err,
                size_t err_size)
{
    const char *v = getenv(var);
    *out = dflt;
    if (!v || !*v)
        return 1;
    for (int i = 0; i < count; i++)
        if (!strcmp(v, names[i])) {
            *out = i;
            return 1;
        }
    char allowed[256] = "";
    for (int i = 0; i < count; i++)
        snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s",
                 i ? (i + 1 == count ? " or " : ", ") : "", names[i]);
    clnet__errbuf(err, err_size,
                  "clnet_context_create: environment variable %s=\"%.100s\" is not one of %s "
                  "(unset it for the default)",
                  var, v, allowed);
    return 0;
}

/* A directory variable: empty is allowed (it means "off" for the caller);
 * a value too long for clnet's path buffers, or (must_exist) one that is not
 * a directory, is an error. */
static int dir_var(const char *var, int must_exist, char *err, size_t err_size)
{
    const char *v = getenv(var);
    struct stat st;
    if (!v || !*v)
        return 1;
    if (strlen(v) > MAX_DIR) {
        clnet__errbuf(err, err_size,
                      "clnet_context_create: environment variable %s is %zu bytes long; at most %d",
                      var, strlen(v), MAX_DIR);
        return 0;
    }
    if (must_exist && (stat(v, &st) != 0 || !S_ISDIR(st.st_mode))) {
        clnet__errbuf(err, err_size,
                      "clnet_context_create: environment variable %s=\"%.200s\" is not a "
                      "directory (%s)",
                      var, v, stat(v, &st) != 0 ? strerror(errno) : "another kind of file");
        return 0;
    }
    return 1;
}

/* A positive, finite number (src/dist/dist.c reads these at clnet_dist_create;
 * a context checks them too, so that a typo fails at the start). */
static int positive_var(const char *var, const char *unit, char *err, size_t err_size)
{
    const char *v = getenv(var);
    if (!v || !*v)
        return 1;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end != v && !*end && !errno && isfinite(x) && x > 0)
        return 1;
    clnet__errbuf(err, err_size,
                  "clnet_context_create: environment variable %s=\"%.100s\" is not a positive "
                  "number of %s",
                  var, v, unit);
    return 0;
}

clnet_status clnet__env_read(clnet__env *env, char *err, size_t err_size)
{
    static const char *const gemm[] = { "own", "packed", "clblast" };
    static const char *const onoff[] = { "0", "1" };
    memset(env, 0, sizeof *env);
    int profile, numerics;
    if (!pick("CLNET_GEMM_KERNEL", gemm, 3, -1, &env->gemm_kernel, err, err_size) ||
        !pick("CLNET_PROFILE", onoff, 2, 0, &profile, err, err_size) ||
        !pick("CLNET_CHECK_NUMERICS", onoff, 2, 0, &numerics, err, err_size) ||
        !dir_var("CLNET_CACHE_DIR", 0, err, err_size) ||
        !dir_var("CLNET_KERNEL_DIR", 1, err, err_size) ||
        !dir_var("XDG_CACHE_HOME", 0, err, err_size) || !dir_var("HOME", 0, err, err_size) ||
        !positive_var("CLNET_DIST_TIMEOUT", "seconds", err, err_size) ||
        !positive_var("CLNET_DIST_BUCKET_KB", "KiB", err, err_size))
        return CLNET_ERR_INVALID_ARG;
    env->profile = profile;
    return CLNET_OK;
}
