/* clnet — the file readers' and writers' error messages (io/diag.h). */
#include "io/diag.h"

#include <stdarg.h>
#include <stdio.h>

clnet_status clnet__diag_report(const clnet__diag *d, clnet_status st, const char *fmt, ...)
{
    if (d->err && d->err_size) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(d->err, d->err_size, "%s: %s", d->what, msg);
    }
    return st;
}
