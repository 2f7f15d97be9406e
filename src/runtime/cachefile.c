/* clnet — checking one disk-cache entry's bytes (cachefile.h): before a
 * byte of the binary is trusted, every size is checked against the file's,
 * then the key text and the checksum. */
#include <string.h>

#include "cachefile.h"

uint64_t clnet__fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int clnet__diskcache_parse(const unsigned char *file, size_t n, const char *key, size_t *bin_offset,
                           size_t *bin_len)
{
    header h;
    size_t key_len = strlen(key);
    if (n < HEADER_SIZE || n > MAX_FILE)
        return 0;
    memcpy(&h, file, HEADER_SIZE);
    if (memcmp(h.magic, MAGIC, 8) || h.zero || h.key_len != key_len || h.bin_len == 0 ||
        key_len > n - HEADER_SIZE || h.bin_len != (uint64_t)(n - HEADER_SIZE - key_len))
        return 0;
    if (memcmp(file + HEADER_SIZE, key, key_len) ||
        clnet__fnv1a(CLNET_FNV_OFFSET, file + HEADER_SIZE + key_len, (size_t)h.bin_len) !=
            h.checksum)
        return 0;
    *bin_offset = HEADER_SIZE + key_len;
    *bin_len = (size_t)h.bin_len;
    return 1;
}
