/* The tools' output files (outfile.h): a check before the work, and a
 * temporary file, fsync and rename for every write, like the library's
 * weight files. */
#define _GNU_SOURCE /* realpath, with the POSIX functions */
#include "outfile.h"

#include <dirent.h>
#include <png.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *kind(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISSOCK(m) ? "a socket"
                         : "not a regular file";
}

/* The directory part of path ("." when none). */
static void dir_of(const char *path, char *buf, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(buf, size, ".");
    else if (slash == path)
        snprintf(buf, size, "/");
    else
        snprintf(buf, size, "%.*s", (int)(slash - path), path);
}

int out_target(const char *path, char *buf, size_t size)
{
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        char *real = realpath(path, NULL);
        int ok = real && strlen(real) < size;
        if (ok)
            memcpy(buf, real, strlen(real) + 1);
        free(real);
        return ok;
    }
    if (strlen(path) >= size)
        return 0;
    memcpy(buf, path, strlen(path) + 1);
    return 1;
}

/* Creates a new temporary file PATH.tmp-PID-N; the fd, or -1 (errno set). */
static int create_temp(const char *path, char *tmp, size_t size)
{
    static unsigned serial;
    for (int attempt = 0; attempt < 100; attempt++) {
        if ((size_t)snprintf(tmp, size, "%s.tmp-%ld-%x", path, (long)getpid(), serial++) >= size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* Why the existing target cannot be replaced, or NULL when it can (or does
 * not exist). */
static const char *target_problem(const char *path, char *why, size_t size)
{
    struct stat ls, st;
    if (lstat(path, &ls) != 0)
        return errno == ENOENT ? NULL : strerror(errno);
    if (stat(path, &st) != 0) {
        snprintf(why, size, "a symlink to nothing (%s)", strerror(errno));
        return why;
    }
    if (S_ISREG(st.st_mode))
        return NULL;
    snprintf(why, size, "%s%s; refusing to replace it (give a regular file)",
             S_ISLNK(ls.st_mode) ? "a symlink to " : "is ", kind(st.st_mode));
    return why;
}

int out_check(const char *prog, const char *option, const char *path)
{
    char why[256], dest[4096], dir[4096], tmp[4200];
    const char *problem = NULL;
    struct stat st;
    if (!path || !*path)
        problem = "an empty path";
    else if ((problem = target_problem(path, why, sizeof why)))
        ;
    else if (!out_target(path, dest, sizeof dest))
        problem = "path too long";
    if (problem) {
        fprintf(stderr, "%s: %s \"%s\": %s\n", prog, option, path ? path : "", problem);
        return 0;
    }
    dir_of(dest, dir, sizeof dir);
    int found = stat(dir, &st) == 0;
    if (!found || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: %s \"%s\": the directory \"%s\": %s\n", prog, option, path, dir,
                found ? "not a directory" : strerror(errno));
        return 0;
    }
    /* The only honest test of "can we create a file there" (root passes
     * access(), a read-only mount or a full inode table does not). */
    int fd = create_temp(dest, tmp, sizeof tmp);
    if (fd < 0) {
        fprintf(stderr, "%s: %s \"%s\": cannot create a file in \"%s\": %s\n", prog, option, path,
                dir, strerror(errno));
        return 0;
    }
    close(fd);
    unlink(tmp);
    out_clean_stale(dest);
    return 1;
}

int in_check(const char *prog, const char *option, const char *path)
{
    struct stat st;
    const char *problem = NULL, *tail = "";
    if (!path || !*path)
        problem = "an empty path";
    else if (stat(path, &st) != 0)
        problem = strerror(errno);
    else if (!S_ISREG(st.st_mode)) {
        problem = kind(st.st_mode);
        tail = ", not a file to read";
    }
    if (problem)
        fprintf(stderr, "%s: %s \"%s\": %s%s\n", prog, option, path ? path : "", problem, tail);
    return !problem;
}

/* Is name PREFIX.tmp-PID-X with a PID that no process on this machine has? */
static int stale_pid(const char *name, const char *base)
{
    size_t len = strlen(base);
    if (strncmp(name, base, len) || strncmp(name + len, ".tmp-", 5))
        return 0;
    const char *p = name + len + 5;
    char *end;
    errno = 0;
    long pid = strtol(p, &end, 10);
    if (end == p || *end != '-' || errno || pid <= 0 || pid == (long)getpid())
        return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int out_clean_stale(const char *path)
{
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        char full[8400];
        struct stat st;
        if (!stale_pid(e->d_name, base) ||
            (size_t)snprintf(full, sizeof full, "%s/%s", dir, e->d_name) >= sizeof full)
            continue;
        if (lstat(full, &st) == 0 && S_ISREG(st.st_mode) && now - st.st_mtime >= 60 &&
            unlink(full) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

int out_open(out_file *o, const char *prog, const char *path)
{
    char why[256];
    const char *problem = target_problem(path, why, sizeof why);
    o->f = NULL;
    o->err = 0;
    o->tmp[0] = 0;
    if (!problem && !out_target(path, o->dest, sizeof o->dest))
        problem = "path too long";
    if (problem) {
        fprintf(stderr, "%s: cannot write \"%s\": %s\n", prog, path, problem);
        return 0;
    }
    int fd = create_temp(o->dest, o->tmp, sizeof o->tmp);
    if (fd < 0 || !(o->f = fdopen(fd, "wb"))) {
        fprintf(stderr, "%s: cannot create a temporary file next to \"%s\": %s\n", prog, path,
                strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(o->tmp);
        }
        return 0;
    }
    return 1;
}

void out_discard(out_file *o)
{
    if (o->f)
        fclose(o->f);
    if (o->tmp[0])
        unlink(o->tmp);
    o->f = NULL;
    o->tmp[0] = 0;
}

int out_commit(out_file *o, const char *prog)
{
    const char *step = NULL;
    int err = 0;
    errno = 0;
    if (o->err || fflush(o->f) != 0 || ferror(o->f))
        step = "write";
    else if (fsync(fileno(o->f)) != 0)
        step = "fsync";
    err = !step ? 0 : o->err ? o->err : errno;
    if (fclose(o->f) != 0 && !step) {
        step = "close";
        err = errno;
    }
    o->f = NULL;
    if (!step && rename(o->tmp, o->dest) != 0) {
        step = "rename";
        err = errno;
    }
    if (step) {
        fprintf(stderr, "%s: %s of \"%s\" failed: %s; the old file, if any, is unchanged\n", prog,
                step, o->dest, err ? strerror(err) : "error");
        unlink(o->tmp);
        o->tmp[0] = 0;
        return 0;
    }
    o->tmp[0] = 0;
    char dir[4096];
    dir_of(o->dest, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { /* make the rename durable; best effort */
        fsync(fd);
        close(fd);
    }
    return 1;
}

int out_write(out_file *o, const void *data, size_t size)
{
    errno = 0;
    if (fwrite(data, 1, size, o->f) == size)
        return 1;
    if (!o->err)
        o->err = errno ? errno : EIO;
    return 0;
}

int out_fail(out_file *o, const char *prog)
{
    fprintf(stderr, "%s: write of \"%s\" failed: %s; the old file, if any, is unchanged\n", prog,
            o->dest, strerror(o->err ? o->err : EIO));
    out_discard(o);
    return 0;
}

static void png_write_cb(png_structp png, png_bytep data, size_t size)
{
    if (!out_write(png_get_io_ptr(png), data, size))
        png_error(png, "write failed");
}

static void png_flush_cb(png_structp png)
{
    (void)png; /* out_commit flushes and syncs */
}

void out_png_io(struct png_struct_def *png, out_file *o)
{
    png_set_write_fn(png, o, png_write_cb, png_flush_cb);
}
