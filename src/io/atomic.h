/* clnet — atomic file writes (internal): a temporary file next to the target,
 * fsync, rename over the target, then a sync of the directory, so a failure
 * or a kill leaves an existing file as it was. Used by every file the
 * library writes (safetensors weights, PNG grids). */
#ifndef CLNET_IO_ATOMIC_H
#define CLNET_IO_ATOMIC_H

#include <stddef.h>

#include "clnet/status.h"

typedef struct clnet__atomic_file {
    int fd;           /* write the contents here, with clnet__write_all */
    char *tmp;        /* PATH.tmp-PID-N */
    const char *path; /* borrowed */
} clnet__atomic_file;

/* Refuses a target that exists and is not a regular file (a device node, a
 * FIFO, a directory: a rename would replace it), then creates the temporary
 * file. On failure a message goes to msg (it names the path and the cause)
 * and nothing is left behind. */
clnet_status clnet__atomic_begin(clnet__atomic_file *f, const char *path, char *msg,
                                 size_t msg_size);

/* written: whether every write succeeded (errno still holds the failed
 * write's error when it is 0). Syncs, closes and renames; on any failure
 * removes the temporary file and says which step failed:
 * "write of PATH.tmp-... failed: No space left on device; the old file, if
 * any, is unchanged". Always releases f. */
clnet_status clnet__atomic_end(clnet__atomic_file *f, int written, char *msg, size_t msg_size);

/* write(2) until n bytes are written or an error (retrying EINTR): 1 or 0. */
int clnet__write_all(int fd, const void *buf, size_t n);

#endif
