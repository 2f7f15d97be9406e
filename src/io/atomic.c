/* clnet — atomic file writes (src/io/atomic.h). */
#include "io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/alloc.h"

int clnet__write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return 0;
        p += k;
        n -= (size_t)k;
    }
    return 1;
}

/* Best effort: makes the rename durable by syncing the directory. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? clnet__malloc((size_t)(slash - path) + 2) : NULL;
    if (slash && !dir)
        return;
    if (dir) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    int fd = open(dir ? dir : ".", O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    clnet__free(dir);
}

clnet_status clnet__atomic_begin(clnet__atomic_file *f, const char *path, char *msg,
                                 size_t msg_size)
{
    f->fd = -1;
    f->tmp = NULL;
    f->path = path;
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        snprintf(msg, msg_size,
                 "\"%.400s\" exists and is not a regular file (a device, FIFO or "
                 "directory is never replaced)",
                 path);
        return CLNET_ERR_IO;
    }
    size_t tsize = strlen(path) + 64;
    if (!(f->tmp = clnet__malloc(tsize))) {
        snprintf(msg, msg_size, "out of host memory");
        return CLNET_ERR_HOST_MEMORY;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    for (unsigned attempt = 0; attempt < 100 && f->fd < 0; attempt++) {
        snprintf(f->tmp, tsize, "%s.tmp-%ld-%lx", path, (long)getpid(),
                 (unsigned long)ts.tv_nsec ^ (unsigned long)attempt * 0x9e3779b9ul);
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd < 0 && errno != EEXIST)
            break;
    }
    if (f->fd < 0) {
        snprintf(msg, msg_size, "cannot create a temporary file next to \"%.400s\": %s", path,
                 strerror(errno));
        clnet__free(f->tmp);
        f->tmp = NULL;
        return CLNET_ERR_IO;
    }
    return CLNET_OK;
}

clnet_status clnet__atomic_end(clnet__atomic_file *f, int written, char *msg, size_t msg_size)
{
    const char *step = !written ? "write" : fsync(f->fd) != 0 ? "fsync" : NULL;
    int saved = errno;
    if (close(f->fd) != 0 && !step) {
        step = "close";
        saved = errno;
    }
    if (!step && rename(f->tmp, f->path) != 0) {
        step = "rename";
        saved = errno;
    }
    clnet_status st = CLNET_OK;
    if (step) {
        unlink(f->tmp);
        snprintf(msg, msg_size, "%s of \"%.400s\" failed: %s; the old file, if any, is unchanged",
                 step, step[0] == 'r' ? f->path : f->tmp, strerror(saved));
        st = CLNET_ERR_IO;
    } else {
        sync_parent_dir(f->path);
    }
    clnet__free(f->tmp);
    f->tmp = NULL;
    f->fd = -1;
    return st;
}
