/* clnet — the on-disk program cache: device binaries keyed by device,
 * driver, options and source, written atomically, verified on every load. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clnet/version.h"
#include "context_impl.h"

#include "cachefile.h"

char *clnet__diskcache_key(const clnet_context *ctx, const char *prelude, size_t prelude_len,
                           const char *source, size_t source_len, const char *options)
{
    /* Two independent 64-bit hashes of the sources make a 128-bit digest;
     * the device, driver and options are kept verbatim. */
    uint64_t h1 = clnet__fnv1a(CLNET_FNV_OFFSET, prelude, prelude_len);
    h1 = clnet__fnv1a(h1, "\0", 1);
    h1 = clnet__fnv1a(h1, source, source_len);
    uint64_t h2 = clnet__fnv1a(0x84222325cbf29ce4ull, source, source_len);
    h2 = clnet__fnv1a(h2, "\0", 1);
    h2 = clnet__fnv1a(h2, prelude, prelude_len);
    h2 ^= (uint64_t)source_len * 0x9e3779b97f4a7c15ull + prelude_len;
    const clnet_device_info *d = &ctx->profile.info;
    const char *fmt = "clnet program cache v1\nclnet %s\nplatform %s | %s\ndevice %s | %s\n"
                      "driver %s\noptions %s\nsource %016llx%016llx\n";
    int n = snprintf(NULL, 0, fmt, CLNET_VERSION_STRING, d->platform_name, d->platform_version,
                     d->name, d->vendor, d->driver_version, options, (unsigned long long)h1,
                     (unsigned long long)h2);
    char *key = n > 0 ? clnet__malloc((size_t)n + 1) : NULL;
    if (key)
        snprintf(key, (size_t)n + 1, fmt, CLNET_VERSION_STRING, d->platform_name,
                 d->platform_version, d->name, d->vendor, d->driver_version, options,
                 (unsigned long long)h1, (unsigned long long)h2);
    return key;
}

/* The entry's file name; 0 when the directory name leaves no room for it. */
static int key_path(const clnet_context *ctx, const char *key, char *path, size_t size)
{
    uint64_t h = clnet__fnv1a(CLNET_FNV_OFFSET, key, strlen(key));
    int n = snprintf(path, size, "%s/%016llx.bin", ctx->cache_dir, (unsigned long long)h);
    return n > 0 && (size_t)n < size;
}

/* Reads a whole entry: only a regular file (not a FIFO, which would block
 * the open or the read, a device, a directory or a symbolic link) of at most
 * MAX_FILE bytes. Returns the malloc'd bytes, or NULL. */
static unsigned char *read_entry(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    unsigned char *data = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < HEADER_SIZE ||
        (unsigned long long)st.st_size > MAX_FILE || !(data = clnet__malloc((size_t)st.st_size))) {
        close(fd);
        return NULL;
    }
    size_t n = (size_t)st.st_size, got = 0;
    while (got < n) {
        ssize_t r = read(fd, data + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        clnet__free(data);
        return NULL;
    }
    *size = n;
    return data;
}

int clnet__diskcache_load(const clnet_context *ctx, const char *key, unsigned char **binary,
                          size_t *size)
{
    char path[4096];
    struct stat st;
    size_t n = 0, off = 0, len = 0;
    if (!key_path(ctx, key, path, sizeof path) || lstat(path, &st) != 0)
        return 0; /* no entry: not a rejection */
    unsigned char *data = read_entry(path, &n);
    if (!data || !clnet__diskcache_parse(data, n, key, &off, &len)) {
        clnet__free(data);
        ((clnet_context *)ctx)->stats.cache_rejected += 1;
        return 0;
    }
    memmove(data, data + off, len);
    *binary = data;
    *size = len;
    return 1;
}

void clnet__diskcache_drop(const clnet_context *ctx, const char *key)
{
    char path[4096];
    struct stat st;
    /* Only a regular file is ours to remove. */
    if (key_path(ctx, key, path, sizeof path) && lstat(path, &st) == 0 && S_ISREG(st.st_mode))
        unlink(path);
}

/* mkdir -p; errors are ignored (the open that follows reports them). */
static void make_dirs(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    mkdir(buf, 0755);
}

void clnet__diskcache_store(const clnet_context *ctx, const char *key, const unsigned char *binary,
                            size_t size)
{
    char path[4096], tmp[4200];
    size_t key_len = strlen(key);
    if (size == 0 || size > MAX_FILE - HEADER_SIZE - key_len ||
        !key_path(ctx, key, path, sizeof path))
        return;
    make_dirs(ctx->cache_dir);
    /* Unique per process and context, so concurrent writers never share a temp file. */
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%p.%llu", path, (long)getpid(), (const void *)ctx,
             (unsigned long long)ctx->stats.programs_built);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return;
    }
    header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, 8);
    h.key_len = (uint32_t)key_len;
    h.bin_len = size;
    h.checksum = clnet__fnv1a(CLNET_FNV_OFFSET, binary, size);
    int ok = fwrite(&h, 1, HEADER_SIZE, f) == HEADER_SIZE &&
             fwrite(key, 1, h.key_len, f) == h.key_len && fwrite(binary, 1, size, f) == size;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0)
        unlink(tmp);
}
