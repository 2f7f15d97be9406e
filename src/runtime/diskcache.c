/* clnet — the on-disk program cache: device binaries keyed by device,
 * driver, options and source, written atomically, verified on every load. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clnet/version.h"
#include "context_impl.h"

/* File layout (little-endian host order; a foreign file fails the checks):
 *   char magic[8] = "CLNETPC1"; uint32 key_len; uint32 zero; uint64 bin_len;
 *   uint64 checksum (FNV-1a of the binary); key text; binary. */
#define MAGIC "CLNETPC1"
#define HEADER_SIZE 32
#define MAX_FILE (512u << 20)

typedef struct header {
    char magic[8];
    uint32_t key_len, zero;
    uint64_t bin_len, checksum;
} header;

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

static void key_path(const clnet_context *ctx, const char *key, char *path, size_t size)
{
    uint64_t h = clnet__fnv1a(CLNET_FNV_OFFSET, key, strlen(key));
    snprintf(path, size, "%s/%016llx.bin", ctx->cache_dir, (unsigned long long)h);
}

int clnet__diskcache_load(const clnet_context *ctx, const char *key, unsigned char **binary,
                          size_t *size)
{
    char path[4096];
    key_path(ctx, key, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    unsigned char *data = NULL;
    int ok = 0;
    long n = -1;
    header h;
    size_t key_len = strlen(key);
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n < HEADER_SIZE || (unsigned long)n > MAX_FILE || fseek(f, 0, SEEK_SET) != 0 ||
        fread(&h, 1, HEADER_SIZE, f) != HEADER_SIZE)
        goto done;
    /* Every size is checked against the file before anything is allocated. */
    if (memcmp(h.magic, MAGIC, 8) || h.zero || h.key_len != key_len ||
        h.bin_len == 0 || h.bin_len != (uint64_t)n - HEADER_SIZE - key_len)
        goto done;
    if (!(data = clnet__malloc(key_len + h.bin_len)) ||
        fread(data, 1, key_len + h.bin_len, f) != key_len + h.bin_len)
        goto done;
    if (memcmp(data, key, key_len) ||
        clnet__fnv1a(CLNET_FNV_OFFSET, data + key_len, h.bin_len) != h.checksum)
        goto done;
    memmove(data, data + key_len, h.bin_len);
    *binary = data;
    *size = h.bin_len;
    data = NULL;
    ok = 1;
done:
    clnet__free(data);
    fclose(f);
    if (!ok)
        ((clnet_context *)ctx)->stats.cache_rejected += 1;
    return ok;
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

void clnet__diskcache_store(const clnet_context *ctx, const char *key,
                            const unsigned char *binary, size_t size)
{
    char path[4096], tmp[4200];
    key_path(ctx, key, path, sizeof path);
    make_dirs(ctx->cache_dir);
    /* Unique per process and context, so concurrent writers never share a temp file. */
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%p.%llu", path, (long)getpid(), (const void *)ctx,
             (unsigned long long)ctx->stats.programs_built);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return;
    header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, 8);
    h.key_len = (uint32_t)strlen(key);
    h.bin_len = size;
    h.checksum = clnet__fnv1a(CLNET_FNV_OFFSET, binary, size);
    int ok = fwrite(&h, 1, HEADER_SIZE, f) == HEADER_SIZE &&
             fwrite(key, 1, h.key_len, f) == h.key_len && fwrite(binary, 1, size, f) == size;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0)
        unlink(tmp);
}
