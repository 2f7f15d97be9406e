/* clnet fuzzing — libFuzzer target for the IDX reader (src/io/idx.c), plain
 * and gzip. clnet_idx_load reads a path, so each input is written to one
 * temporary file first. Every input must be loaded or rejected with a
 * message; a loaded array must be as large as its dims say, and readable. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clnet/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static int fd = -1;

static void remove_file(void)
{
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) { /* in memory where there is a tmpfs at /dev/shm */
        snprintf(path, sizeof path, "/dev/shm/clnet-fuzz-idx-XXXXXX");
        if ((fd = mkstemp(path)) < 0) {
            snprintf(path, sizeof path, "/tmp/clnet-fuzz-idx-XXXXXX");
            if ((fd = mkstemp(path)) < 0)
                abort();
        }
        atexit(remove_file);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    clnet_idx *idx = NULL;
    char err[512];
    err[0] = 0;
    clnet_status st = clnet_idx_load(path, &idx, err, sizeof err);
    if (st != CLNET_OK) {
        if (idx || !err[0])
            abort(); /* a failure leaves no result and always says why */
        return 0;
    }
    uint64_t count = 1;
    for (int i = 0; i < idx->ndim; i++)
        count *= (uint64_t)idx->dims[i];
    if (idx->ndim < 1 || idx->ndim > CLNET_MAX_DIMS || count != idx->count || !idx->data ||
        count * idx->elem_size > CLNET_IDX_MAX_BYTES)
        abort();
    volatile unsigned char sink = 0;
    for (size_t b = 0; b < idx->count * idx->elem_size; b += 64) /* every byte is readable */
        sink ^= ((const unsigned char *)idx->data)[b];
    if (idx->count)
        sink ^= ((const unsigned char *)idx->data)[idx->count * idx->elem_size - 1];
    (void)sink;
    clnet_idx_free(idx);
    return 0;
}
