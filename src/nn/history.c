/* clnet — training history (include/clnet/history.h): rows appended by fit,
 * and the CSV writer (temporary file next to the target, fsync, rename). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clnet/history.h"
#include "runtime/alloc.h"

CLNET_API clnet_status clnet_history_append(clnet_history *h, const clnet_epoch_log *row)
{
    if (!h || !row || h->count < 0 || h->count > h->capacity)
        return CLNET_ERR_INVALID_ARG;
    if (h->count == h->capacity) {
        if (h->capacity > (1 << 28))
            return CLNET_ERR_HOST_MEMORY;
        int cap = h->capacity ? 2 * h->capacity : 16;
        clnet_epoch_log *e = clnet__realloc(h->epochs, (size_t)cap * sizeof *e);
        if (!e)
            return CLNET_ERR_HOST_MEMORY;
        h->epochs = e;
        h->capacity = cap;
    }
    h->epochs[h->count++] = *row;
    return CLNET_OK;
}

CLNET_API void clnet_history_free(clnet_history *h)
{
    if (!h)
        return;
    clnet__free(h->epochs);
    *h = CLNET_HISTORY_INIT;
}

static clnet_status fail(char *err, size_t err_size, clnet_status st, const char *fmt, ...)
{
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* A metric the run does not have (-1) is an empty field. */
static void field(FILE *f, double v, const char *fmt)
{
    fputc(',', f);
    if (v >= 0)
        fprintf(f, fmt, v);
}

CLNET_API clnet_status clnet_history_write_csv(const clnet_history *h, const char *path, char *err,
                                               size_t err_size)
{
    if (err && err_size)
        err[0] = 0;
    if (!h || !path || !path[0] || h->count < 0 || (h->count && !h->epochs))
        return fail(err, err_size, CLNET_ERR_INVALID_ARG,
                    "clnet_history_write_csv: invalid argument: %s", !h ? "history is NULL"
                    : !path || !path[0] ? "path is NULL or empty" : "the history is corrupt");
    size_t n = strlen(path) + 16;
    char *tmp = clnet__malloc(n);
    if (!tmp)
        return fail(err, err_size, CLNET_ERR_HOST_MEMORY, "clnet_history_write_csv: out of host memory");
    snprintf(tmp, n, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        clnet_status st = fail(err, err_size, CLNET_ERR_IO, "clnet_history_write_csv: cannot create "
                               "a temporary file next to \"%.400s\": %s", path, strerror(errno));
        clnet__free(tmp);
        return st;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        clnet__free(tmp);
        return fail(err, err_size, CLNET_ERR_IO, "clnet_history_write_csv: fdopen: %s", strerror(errno));
    }
    fputs("epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n", f);
    for (int i = 0; i < h->count; i++) {
        const clnet_epoch_log *r = &h->epochs[i];
        fprintf(f, "%d", r->epoch);
        field(f, r->loss, "%.9g");
        field(f, r->accuracy, "%.9g");
        field(f, r->val_loss, "%.9g");
        field(f, r->val_accuracy, "%.9g");
        field(f, r->lr, "%.9g");
        field(f, r->seconds, "%.3f");
        fputc('\n', f);
    }
    const char *step = ferror(f) ? "write" : fflush(f) ? "write" : fsync(fd) ? "fsync" : NULL;
    int saved = errno;
    if (fclose(f) && !step) {
        step = "close";
        saved = errno;
    }
    if (!step && rename(tmp, path)) {
        step = "rename";
        saved = errno;
    }
    clnet_status st = CLNET_OK;
    if (step) {
        unlink(tmp);
        st = fail(err, err_size, CLNET_ERR_IO, "clnet_history_write_csv: %s of \"%.400s\" failed: "
                  "%s; the old file, if any, is unchanged", step, path, strerror(saved));
    }
    clnet__free(tmp);
    return st;
}
