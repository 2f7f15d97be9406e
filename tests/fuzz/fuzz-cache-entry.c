/* clnet fuzzing — libFuzzer target for the disk cache's entry check
 * (src/runtime/cachefile.c): any bytes are accepted only when every size
 * adds up to the file's, the key matches and the checksum holds. No OpenCL.
 * The key is fixed; the seed corpus holds entries written with it
 * (tests/fuzz/cache-corpus). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cachefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key[] = "clnet program cache v1\nfuzz\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0, len = 0;
    if (!clnet__diskcache_parse(data, size, key, &off, &len))
        return 0;
    if (off != HEADER_SIZE + strlen(key) || len == 0 || off + len != size ||
        memcmp(data + HEADER_SIZE, key, strlen(key)) ||
        clnet__fnv1a(CLNET_FNV_OFFSET, data + off, len) !=
            ((const header *)(const void *)data)->checksum)
        abort();
    return 0;
}
