/* clnet — the error messages of the file readers and writers (safetensors,
 * .npy, ONNX): each call writes "<what>: <problem>" into the caller's buffer,
 * where <what> is the public function or the file's path. Host-only. */
#ifndef CLNET_IO_DIAG_H
#define CLNET_IO_DIAG_H

#include <stddef.h>

#include "clnet/status.h"

#if defined(__GNUC__)
#define CLNET__DIAG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLNET__DIAG_PRINTF(f, a)
#endif

/* Where messages go and what they start with. err may be NULL (or err_size
 * 0): then nothing is written. */
typedef struct clnet__diag {
    const char *what;
    char *err;
    size_t err_size;
} clnet__diag;

/* Writes "<d->what>: <message>" (the message cut at 1 KiB) and returns st. */
clnet_status clnet__diag_report(const clnet__diag *d, clnet_status st, const char *fmt, ...)
    CLNET__DIAG_PRINTF(3, 4);

#endif
