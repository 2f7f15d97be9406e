/* clnet — the layout of one disk-cache entry (diskcache.c writes and loads
 * them; cachefile.c checks them, with no context or OpenCL, so that the
 * fuzzer in tests/fuzz can run the check alone). */
#ifndef CLNET_CACHEFILE_H
#define CLNET_CACHEFILE_H

#include <stddef.h>
#include <stdint.h>

/* File layout (little-endian host order; a foreign file fails the checks):
 *   char magic[8] = "CLNETPC1"; uint32 key_len; uint32 zero; uint64 bin_len;
 *   uint64 checksum (FNV-1a of the binary); key text; binary. */
#define MAGIC "CLNETPC1"
#define HEADER_SIZE 32
/* The largest entry read or written: a device binary of clnet's programs is a
 * few MiB at most; a bigger file is not clnet's. */
#define MAX_FILE (256u << 20)

typedef struct header {
    char magic[8];
    uint32_t key_len, zero;
    uint64_t bin_len, checksum;
} header;

/* Checks an entry's bytes (the whole file, n bytes) against key: magic,
 * sizes, key text, checksum; on success the binary is file[*bin_offset..]
 * of *bin_len bytes and 1 is returned, else 0. */
int clnet__diskcache_parse(const unsigned char *file, size_t n, const char *key, size_t *bin_offset,
                           size_t *bin_len);

/* 64-bit FNV-1a, continued from h (start with CLNET_FNV_OFFSET). */
#define CLNET_FNV_OFFSET 0xcbf29ce484222325ull
uint64_t clnet__fnv1a(uint64_t h, const void *data, size_t n);

#endif
