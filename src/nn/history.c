/* clnet — training history (include/clnet/history.h): rows appended by fit,
 * and the CSV writer (one atomic write: src/io/atomic.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clnet/history.h"
#include "io/atomic.h"
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
    *h = CLNET_HISTORY_DEFAULT;
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
                    "clnet_history_write_csv: invalid argument: %s",
                    !h                  ? "history is NULL"
                    : !path || !path[0] ? "path is NULL or empty"
                                        : "the history is corrupt");
    /* The rows in memory (a few hundred bytes an epoch), then one atomic
     * write (src/io/atomic.h): an existing file survives any failure, and a
     * device node or FIFO at path is refused, not replaced. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return fail(err, err_size, CLNET_ERR_HOST_MEMORY,
                    "clnet_history_write_csv: out of host memory");
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
    int bad = ferror(f);
    if (fclose(f) || bad) {
        free(text);
        return fail(err, err_size, CLNET_ERR_HOST_MEMORY,
                    "clnet_history_write_csv: out of host memory");
    }
    char msg[1024];
    clnet__atomic_file af;
    clnet_status st = clnet__atomic_begin(&af, path, msg, sizeof msg);
    if (!st)
        st = clnet__atomic_end(&af, clnet__write_all(af.fd, text, len), msg, sizeof msg);
    free(text); /* open_memstream's buffer comes from malloc */
    return st ? fail(err, err_size, st, "clnet_history_write_csv: %s", msg) : CLNET_OK;
}
